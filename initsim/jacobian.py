"""Input-output Jacobian spectra of random deep nets: Monte Carlo and theory.

For a net with ``h_l = W_l x_{l-1} + b_l``, ``x_l = phi(h_l)`` (``l = 1..L``),
the input-output Jacobian is

``J = dx_L / dx_0 = D_L W_L ... D_1 W_1``,  ``D_l = diag(phi'(h_l))``,

an ``n_L x n_0`` matrix that depends on the input through the ``D_l``. Its
singular values ``s_1 >= ... >= s_k`` (``k = min(n_0, n_L)``) describe how
the net stretches small perturbations of the input: "dynamical isometry"
(Saxe et al., 2014; Pennington, Schoenholz and Ganguli, 2017) is their
concentration near 1.

Normalisation used throughout
-----------------------------
The *spectrum* of a net is the empirical distribution of the ``k`` squared
singular values ``s_i^2``: the eigenvalues of ``J J^T`` when
``n_L <= n_0``, of ``J^T J`` otherwise (so the ``|n_L - n_0|`` structural
zero eigenvalues of the larger Gram matrix are left out). Its moments are

``m_1 = tr(J J^T) / k``,  ``m_2 = tr((J J^T)^2) / k``,

and :meth:`JacobianSpectrum.moments` averages them over nets (the moments
of the spectrum pooled over nets). The theory functions below return
``E[m_1]`` and ``E[m_2]`` in the same normalisation.

Exact finite-width moments for linear Gaussian nets
---------------------------------------------------
Let ``A = J J^T`` after some layers and ``A' = W A W^T`` after one more, with
``W`` an ``n x n_in`` matrix of iid ``N(0, s2)`` entries, ``s2 = sigma_w2 / n_in``,
independent of ``A``. With rows ``w_i`` of ``W``,
``tr A' = sum_i w_i^T A w_i`` and ``tr A'^2 = sum_{i,j} (w_i^T A w_j)^2``; the
Gaussian identities ``E (w^T A w)^2 = s2^2 ((tr A)^2 + 2 tr A^2)`` and, for
independent ``w, v``, ``E (w^T A v)^2 = s2^2 tr A^2`` give the closed linear
recursion

- ``E[tr A'] = n s2 E[tr A]``
- ``E[(tr A')^2] = s2^2 (n^2 E[(tr A)^2] + 2 n E[tr A^2])``
- ``E[tr A'^2] = s2^2 (n E[(tr A)^2] + n (n + 1) E[tr A^2])``

started from ``A = I_{n_0}`` (``tr A = n_0``, ``(tr A)^2 = n_0^2``,
``tr A^2 = n_0``). It is exact at every width (one layer gives the Wishart
moment ``E tr (W W^T)^2 = s2^2 n n_0 (n + n_0 + 1)``). With ``sigma_w2 = 1``
and equal widths ``n``, ``E[m_1] = 1`` and ``E[m_2] -> L + 1`` as
``n -> infinity`` (the second Fuss-Catalan number of order ``L``).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from scipy import integrate
from threadpoolctl import threadpool_limits

from initsim import activations as _activations
from initsim import initializers as _initializers
from initsim.rng import net_keys, root_key
from initsim.seeding import SeedLike, as_seed_sequence
from initsim.simulation import (
    _check_int,
    _config_hash,
    _input,
    _jsonable,
    _threading_layer,
    _widths,
    versions,
)

__all__ = [
    "JacobianSpectrum",
    "derivative_moments",
    "jacobian_spectrum",
    "linear_gaussian_moments",
    "linear_gaussian_moments_limit",
    "linear_gaussian_trace_moments",
    "orthogonal_linear_singular_value",
    "psg_spectrum_variance",
]

#: First coefficient ``s_1`` of the S-transform of ``W W^T`` for each weight law.
_S1 = {"gaussian": -1.0, "orthogonal": 0.0}


# --------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class JacobianSpectrum:
    """Singular values of the input-output Jacobians of many random nets.

    Attributes
    ----------
    singular_values : numpy.ndarray (nets, min(n_0, n_L))
        Per net, the singular values of ``J = D_L W_L ... D_1 W_1`` in
        descending order; a row of NaN for a net whose Jacobian overflowed.
    provenance : dict
        Seed, configuration and its hash, kernel, threads, threading layer,
        versions (as :func:`initsim.simulate`).
    """

    singular_values: np.ndarray
    provenance: dict[str, Any]

    @property
    def nets(self) -> int:
        """Number of nets."""
        return int(self.singular_values.shape[0])

    @property
    def max_singular_value(self) -> np.ndarray:
        """Largest singular value of each net's Jacobian, shape (nets,)."""
        return self.singular_values.max(axis=1)

    def per_net_moments(self) -> np.ndarray:
        """First two moments of each net's spectrum.

        Returns
        -------
        numpy.ndarray (nets, 2)
            Column 0: ``m_1 = mean_i s_i^2``; column 1: ``m_2 = mean_i s_i^4``
            (``tr(J J^T)/k`` and ``tr((J J^T)^2)/k``, ``k = min(n_0, n_L)``).
        """
        s2 = self.singular_values**2
        return np.stack([s2.mean(axis=1), (s2 * s2).mean(axis=1)], axis=1)

    def moments(self) -> tuple[float, float]:
        """Moments of the spectrum of ``J J^T`` pooled over nets.

        Returns
        -------
        (float, float)
            ``(mu1, mu2)``: the means over nets of the per-net ``m_1`` and
            ``m_2`` (:meth:`per_net_moments`).
        """
        m = self.per_net_moments().mean(axis=0)
        return float(m[0]), float(m[1])

    def moment_standard_errors(self) -> tuple[float, float]:
        """Monte Carlo standard errors of :meth:`moments` (nets are iid).

        Returns
        -------
        (float, float)
            Sample standard deviation over nets of ``m_1`` and ``m_2``,
            divided by ``sqrt(nets)``; NaN for a single net.
        """
        if self.nets < 2:
            return math.nan, math.nan
        se = self.per_net_moments().std(axis=0, ddof=1) / math.sqrt(self.nets)
        return float(se[0]), float(se[1])

    def spectrum_variance(self, normalized: bool = False) -> float:
        """Variance of the pooled spectrum of ``J J^T``.

        Parameters
        ----------
        normalized : bool
            Return ``mu2 / mu1^2 - 1`` (the variance of the spectrum rescaled
            to mean 1) instead of ``mu2 - mu1^2``.

        Returns
        -------
        float
            The quantity :func:`psg_spectrum_variance` predicts at large
            width (the two forms agree at criticality, where ``mu1 = 1``).
        """
        mu1, mu2 = self.moments()
        return mu2 / (mu1 * mu1) - 1.0 if normalized else mu2 - mu1 * mu1

    def spectrum_variance_standard_error(self, normalized: bool = False) -> float:
        """Monte Carlo standard error of :meth:`spectrum_variance` (delta method).

        Parameters
        ----------
        normalized : bool
            As for :meth:`spectrum_variance`.

        Returns
        -------
        float
            ``sqrt(g^T C g / nets)`` with ``C`` the covariance over nets of
            ``(m_1, m_2)`` and ``g`` the gradient of the statistic; NaN for a
            single net.
        """
        if self.nets < 2:
            return math.nan
        pm = self.per_net_moments()
        mu1, mu2 = pm.mean(axis=0)
        if normalized:
            grad = np.array([-2.0 * mu2 / mu1**3, 1.0 / mu1**2])
        else:
            grad = np.array([-2.0 * mu1, 1.0])
        cov = np.cov(pm.T)
        return float(math.sqrt(max(grad @ cov @ grad, 0.0) / self.nets))


# --------------------------------------------------------------------------
# Monte Carlo
# --------------------------------------------------------------------------
def _nonnegative_real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0.0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
    return v


def jacobian_spectrum(
    *,
    activation: str | _activations.Activation = "linear",
    init: str | Any = "he_normal",
    depth: int,
    width: int | Sequence[int],
    input_dim: int | None = None,
    nets: int,
    seed: SeedLike = 0,
    threads: int | None = None,
    input: str | np.ndarray = "sphere",
    bias_std: float = 0.0,
) -> JacobianSpectrum:
    """Singular values of the input-output Jacobian of many random nets.

    Net ``k`` draws its weights, biases and input from its own stream keyed by
    ``(seed, k)``, exactly as ``simulate(method="dense", inputs=1)`` does,
    propagates the input to get ``D_l = diag(phi'(h_l))`` and returns the
    singular values of ``J = D_L W_L ... D_1 W_1``. Results are bit-identical
    for any ``threads``, and net ``k``'s values do not depend on ``nets``.

    Parameters
    ----------
    activation : str or Activation
        Name from :func:`initsim.activations.names`.
    init : str or initializer
        Name from :func:`initsim.initializers.names` or an initializer object;
        any entry law (the weights are materialised).
    depth : int
        Number of layers ``L`` (>= 1).
    width : int or sequence of int
        Width of every layer, or one width per layer (``n_1 .. n_L``).
    input_dim : int, optional
        Input dimension ``n_0``; defaults to the first width.
    nets : int
        Number of independent random nets.
    seed : int, SeedSequence, Generator or None
        Seed of the whole run (recorded in the provenance).
    threads : int, optional
        Numba threads (default: all available).
    input : {"sphere", "gaussian"} or array
        The input at which ``J`` is taken: "sphere" (radius ``sqrt(n_0)``),
        "gaussian" (iid N(0, 1), per net), or an array of shape (input_dim,),
        the same for every net. Irrelevant for linear nets.
    bias_std : float
        Standard deviation ``sigma_b`` of the iid Gaussian biases.

    Returns
    -------
    JacobianSpectrum
        Singular values (nets, min(n_0, n_L)) and provenance.

    Raises
    ------
    ValueError
        For any invalid parameter; the message names it.

    Notes
    -----
    Cost per net: ``sum_l n_l n_{l-1} n_0`` multiply-adds for the products
    and one SVD of an ``n_L x n_0`` matrix; memory ``O(n_max n_0)`` per thread.

    Examples
    --------
    >>> r = jacobian_spectrum(activation="linear", init="lecun_normal", depth=4,
    ...                       width=64, nets=20, seed=0)
    >>> r.singular_values.shape
    (20, 64)
    """
    from initsim.engine import laws as _laws
    from initsim.engine.jacobian_kernel import jacobian_kernel

    depth = _check_int("depth", depth)
    nets = _check_int("nets", nets)
    widths = _widths(depth, width, input_dim)
    bias_std = _nonnegative_real("bias_std", bias_std)
    try:
        act = _activations.get(activation)
    except TypeError as err:
        raise ValueError(f"activation: {err}") from None
    try:
        ini = _initializers.get(init)
    except TypeError as err:
        raise ValueError(f"init: {err}") from None
    input_mode, given = _input(input, int(widths[0]), 1)
    max_threads = numba.config.NUMBA_NUM_THREADS
    if threads is not None:
        threads = _check_int("threads", threads)
        if threads > max_threads:
            raise ValueError(f"threads must be between 1 and {max_threads}; got {threads}")

    fans = [(int(widths[t]), int(widths[t + 1])) for t in range(depth)]
    encoded_of = {f: _laws.encode(ini.law_spec(*f)) for f in set(fans)}
    law_codes = np.array([encoded_of[f][0] for f in fans], dtype=np.int64)
    law_params = np.ascontiguousarray(np.stack([encoded_of[f][1] for f in fans]))

    ss = as_seed_sequence(seed)
    root = root_key(ss)
    config: dict[str, Any] = {
        "quantity": "jacobian_spectrum",
        "activation": act.name,
        "activation_param": act.param,
        "init": ini.name,
        "init_params": {k: _jsonable(v) for k, v in ini.params.items()},
        "widths": widths.tolist(),
        "bias_std": bias_std,
        "nets": nets,
        "input": input if isinstance(input, str) else "array",
    }
    if not isinstance(input, str):
        config["input_sha256"] = hashlib.sha256(given.tobytes()).hexdigest()

    sv = np.empty((nets, int(min(widths[0], widths[-1]))))
    previous_threads = numba.get_num_threads()
    started = time.perf_counter()
    try:
        if threads is not None:
            numba.set_num_threads(threads)
        # nets are spread over the Numba threads: one-thread BLAS/LAPACK inside
        # the kernel (no oversubscription, deterministic products and SVDs)
        with threadpool_limits(limits=1, user_api="blas"):
            jacobian_kernel(
                net_keys(root, 0, nets),
                widths,
                law_codes,
                law_params,
                bias_std,
                act.code,
                act.param,
                input_mode,
                given,
                sv,
            )
    finally:
        numba.set_num_threads(previous_threads)
    elapsed = time.perf_counter() - started

    provenance = {
        "seed_entropy": str(ss.entropy),
        "spawn_key": list(ss.spawn_key),
        "root_key": [int(w) for w in root],
        "config": config,
        "config_sha256": _config_hash(config),
        "method": "dense",
        "kernel": "jacobian (dense)",
        "threads": threads if threads is not None else previous_threads,
        "threading_layer": _threading_layer(),
        "elapsed_s": elapsed,
        "versions": versions(),
    }
    return JacobianSpectrum(singular_values=sv, provenance=provenance)


# --------------------------------------------------------------------------
# Theory: linear nets
# --------------------------------------------------------------------------
def _theory_widths(widths: Sequence[int]) -> list[int]:
    try:
        ws = [_check_int("widths", w) for w in widths]
    except TypeError:
        raise ValueError(f"widths must be a sequence of ints n_0..n_L; got {widths!r}") from None
    if len(ws) < 2:
        raise ValueError(f"widths must give n_0 .. n_L with L >= 1 (two or more); got {ws}")
    return ws


def _per_layer(name: str, value: float | Sequence[float], depth: int) -> list[float]:
    vals = [value] * depth if np.ndim(value) == 0 else list(value)  # type: ignore[arg-type]
    if len(vals) != depth:
        raise ValueError(f"{name} must be a number or one per layer ({depth}); got {len(vals)}")
    out = []
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
            raise ValueError(f"{name} must be a finite number > 0; got {v!r}")
        if not math.isfinite(float(v)) or float(v) <= 0.0:
            raise ValueError(f"{name} must be a finite number > 0; got {v!r}")
        out.append(float(v))
    return out


def linear_gaussian_trace_moments(
    widths: Sequence[int], sigma_w2: float | Sequence[float] = 1.0
) -> tuple[float, float, float]:
    """Exact trace moments of ``J J^T`` for a linear net with Gaussian weights.

    Weights of layer ``l`` are iid ``N(0, sigma_w2 / n_{l-1})``; ``J = W_L ... W_1``.
    The recursion (module docstring) is exact at every finite width.

    Parameters
    ----------
    widths : sequence of int
        ``n_0, n_1, ..., n_L`` (L >= 1).
    sigma_w2 : float or sequence of float
        ``sigma_w2`` for every layer, or one per layer (> 0).

    Returns
    -------
    (float, float, float)
        ``E[tr(J J^T)]``, ``E[(tr J J^T)^2]`` and ``E[tr((J J^T)^2)]``.

    Examples
    --------
    One layer ``3 -> 5`` is a Wishart matrix, ``E tr((J J^T)^2) = s2^2 n n_0 (n + n_0 + 1)``:

    >>> tr, tr_sq, tr2 = linear_gaussian_trace_moments([3, 5], 1.0)
    >>> round(tr, 12), round(tr2, 12)
    (5.0, 15.0)
    """
    ws = _theory_widths(widths)
    sw = _per_layer("sigma_w2", sigma_w2, len(ws) - 1)
    n0 = float(ws[0])
    tr, tr_sq, tr2 = n0, n0 * n0, n0
    for n_in, n, s in zip(ws[:-1], ws[1:], sw, strict=True):
        s2 = s / n_in
        tr, tr_sq, tr2 = (
            n * s2 * tr,
            s2 * s2 * (n * n * tr_sq + 2.0 * n * tr2),
            s2 * s2 * (n * tr_sq + n * (n + 1.0) * tr2),
        )
    return tr, tr_sq, tr2


def linear_gaussian_moments(
    widths: Sequence[int], sigma_w2: float | Sequence[float] = 1.0
) -> tuple[float, float]:
    """Exact expected first two moments of the spectrum of a linear Gaussian net.

    Parameters
    ----------
    widths : sequence of int
        ``n_0, n_1, ..., n_L`` (L >= 1).
    sigma_w2 : float or sequence of float
        ``sigma_w2`` for every layer, or one per layer (> 0).

    Returns
    -------
    (float, float)
        ``E[m_1] = E tr(J J^T) / k`` and ``E[m_2] = E tr((J J^T)^2) / k``
        with ``k = min(n_0, n_L)``: what :meth:`JacobianSpectrum.moments`
        estimates. ``E[m_1] = prod(sigma_w2) n_L / k``.
    """
    ws = _theory_widths(widths)
    tr, _, tr2 = linear_gaussian_trace_moments(ws, sigma_w2)
    k = float(min(ws[0], ws[-1]))
    return tr / k, tr2 / k


def linear_gaussian_moments_limit(depth: int, sigma_w2: float = 1.0) -> tuple[float, float]:
    """Infinite-width limit of :func:`linear_gaussian_moments` at equal widths.

    Parameters
    ----------
    depth : int
        Number of layers ``L``.
    sigma_w2 : float
        The same ``sigma_w2`` for every layer.

    Returns
    -------
    (float, float)
        ``(sigma_w2^L, sigma_w2^(2L) (L + 1))``: at ``sigma_w2 = 1`` the
        spectrum has mean 1 and variance ``L`` (Fuss-Catalan law).
    """
    depth = _check_int("depth", depth)
    (s,) = _per_layer("sigma_w2", sigma_w2, 1)
    return s**depth, s ** (2 * depth) * (depth + 1.0)


def orthogonal_linear_singular_value(depth: int, gain: float = 1.0) -> float:
    """Every singular value of a linear net of square Haar-orthogonal layers.

    ``J = g^L Q_L ... Q_1`` is ``g^L`` times an orthogonal matrix, so all
    ``n`` singular values equal ``|g|^L`` exactly (equal widths only).

    Parameters
    ----------
    depth : int
        Number of layers ``L``.
    gain : float
        The orthogonal initializer's gain ``g`` (> 0).

    Returns
    -------
    float
        ``gain ** depth``.
    """
    depth = _check_int("depth", depth)
    (g,) = _per_layer("gain", gain, 1)
    return g**depth


# --------------------------------------------------------------------------
# Theory: Pennington, Schoenholz and Ganguli (2017), large width, criticality
# --------------------------------------------------------------------------
def _gaussian_expectation(f: Any, q: float, breaks: Sequence[float]) -> float:
    """``E f(sqrt(q) z)``, z ~ N(0, 1), by adaptive quadrature split at ``breaks``."""
    sq = math.sqrt(q)
    c = 1.0 / math.sqrt(2.0 * math.pi)

    def integrand(z: float) -> float:
        return float(f(sq * z)) * c * math.exp(-0.5 * z * z)

    # split at the activation's kinks (in z units) and at 0, where the mass is
    cuts = sorted({0.0, *(b / sq for b in breaks)})
    edges = [-math.inf, *cuts, math.inf]
    total = 0.0
    for a, b in itertools.pairwise(edges):
        val, _ = integrate.quad(integrand, a, b, epsabs=1e-15, epsrel=1e-12, limit=200)
        total += val
    return total


def derivative_moments(
    activation: str | _activations.Activation, q_star: float
) -> tuple[float, float]:
    """Moments ``mu_k = E[phi'(h)^(2k)]``, ``h ~ N(0, q_star)``, for k = 1, 2.

    Parameters
    ----------
    activation : str or Activation
        The activation.
    q_star : float
        Pre-activation variance (the fixed point ``q*``), >= 0.

    Returns
    -------
    (float, float)
        ``(mu1, mu2)`` by adaptive quadrature (relative accuracy ~1e-12),
        split at the activation's kinks.
    """
    act = _activations.get(activation)
    q = _nonnegative_real("q_star", q_star)
    if q == 0.0:
        d0 = float(act.dphi(0.0))
        return d0**2, d0**4
    mu1 = _gaussian_expectation(lambda h: act.dphi(h) ** 2, q, act.kinks)
    mu2 = _gaussian_expectation(lambda h: act.dphi(h) ** 4, q, act.kinks)
    return mu1, mu2


def psg_spectrum_variance(
    activation: str | _activations.Activation,
    depth: int,
    q_star: float,
    weights: str = "gaussian",
) -> float:
    """Large-width variance of the ``J J^T`` spectrum at criticality (PSG 2017).

    Pennington, Schoenholz and Ganguli, "Resurrecting the sigmoid in deep
    learning through dynamical isometry" (NeurIPS 2017): with every layer at
    the fixed point ``q*`` and ``chi = sigma_w2 mu1 = 1``,

    ``sigma^2_{JJ^T} = L (mu2 / mu1^2 - 1 - s1)``,

    where ``s1`` is the first S-transform coefficient of ``W W^T``: -1 for
    Gaussian and 0 for orthogonal weights. The mean of the spectrum is
    ``(sigma_w2 mu1)^L = 1``.

    Why: ``J J^T`` is asymptotically a free product of ``L`` copies of
    ``W^T W`` and of ``D^2``; the S-transform of a law with mean ``m`` and
    variance ``v`` is ``(1 - (v / m^2) z + O(z^2)) / m``, and S-transforms
    multiply, so the *normalised* variances add:
    ``v / m^2 = L (mu2 / mu1^2 - 1) + L (-s1)``. Away from criticality the
    right-hand side is still the normalised variance
    (:meth:`JacobianSpectrum.spectrum_variance` with ``normalized=True``).

    Parameters
    ----------
    activation : str or Activation
        The activation.
    depth : int
        Number of layers ``L``.
    q_star : float
        The fixed point ``q*`` of the length map (>= 0).
    weights : {"gaussian", "orthogonal"}
        Weight law.

    Returns
    -------
    float
        ``sigma^2_{JJ^T}``; compare with
        :meth:`JacobianSpectrum.spectrum_variance`. Finite width adds
        corrections of relative order ``L / n`` (for linear Gaussian nets the
        exact excess is about ``L (L + 1) / (2 n)``, see
        :func:`linear_gaussian_moments`; measured for tanh at ``L = 8``: about
        +5% (Gaussian) and +2% (orthogonal) at ``n = 256``).
    """
    depth = _check_int("depth", depth)
    if weights not in _S1:
        raise ValueError(f"weights must be one of {', '.join(_S1)}; got {weights!r}")
    mu1, mu2 = derivative_moments(activation, q_star)
    if mu1 == 0.0:
        raise ValueError(f"phi' vanishes almost surely at q_star={q_star}: mu1 = 0")
    return depth * (mu2 / (mu1 * mu1) - 1.0 - _S1[weights])
