"""Theory of input-output Jacobian spectra: exact linear-net moments and PSG's large-width law.

This module owns the predictions that :func:`initsim.jacobian.jacobian_spectrum`
(the Monte Carlo half, in :mod:`initsim.jacobian`, which re-exports every name
here) is compared with. For ``h_l = W_l x_{l-1} + b_l``, ``x_l = phi(h_l)``,
the Jacobian is ``J = D_L W_L ... D_1 W_1`` with ``D_l = diag(phi'(h_l))``.

Normalisation used throughout
-----------------------------
The *spectrum* of a net is the empirical distribution of the
``k = min(n_0, n_L)`` squared singular values ``s_i^2`` of ``J``. Its moments
are ``m_1 = tr(J J^T) / k`` and ``m_2 = tr((J J^T)^2) / k``, and the functions
below return ``E[m_1]`` and ``E[m_2]`` (what
:meth:`initsim.jacobian.JacobianSpectrum.moments` estimates).

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

References
----------
J. Pennington, S. S. Schoenholz and S. Ganguli, Resurrecting the sigmoid in
deep learning through dynamical isometry: theory and practice, NeurIPS 2017.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import integrate

from initsim import activations as _activations
from initsim._validate import check_int, check_real

__all__ = [
    "derivative_moments",
    "linear_gaussian_moments",
    "linear_gaussian_moments_limit",
    "linear_gaussian_trace_moments",
    "orthogonal_linear_singular_value",
    "psg_spectrum_variance",
]

#: First coefficient ``s_1`` of the S-transform of ``W W^T`` for each weight law.
_S1 = {"gaussian": -1.0, "orthogonal": 0.0}


# --------------------------------------------------------------------------
# Validation (the same checks, and messages, as the Monte Carlo half's)
# --------------------------------------------------------------------------
# --------------------------------------------------------------------------
# Theory: linear nets
# --------------------------------------------------------------------------
def _theory_widths(widths: Sequence[int]) -> list[int]:
    try:
        ws = [check_int("widths", w) for w in widths]
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
        with ``k = min(n_0, n_L)``: what
        :meth:`initsim.jacobian.JacobianSpectrum.moments` estimates.
        ``E[m_1] = prod(sigma_w2) n_L / k``.
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
    depth = check_int("depth", depth)
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
    depth = check_int("depth", depth)
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
    q = check_real("q_star", minimum=0.0, value=q_star)
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
    (:meth:`initsim.jacobian.JacobianSpectrum.spectrum_variance` with
    ``normalized=True``).

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
        :meth:`initsim.jacobian.JacobianSpectrum.spectrum_variance`. Finite width adds
        corrections of relative order ``L / n`` (for linear Gaussian nets the
        exact excess is about ``L (L + 1) / (2 n)``, see
        :func:`linear_gaussian_moments`; measured for tanh at ``L = 8``: about
        +6% (Gaussian) and +2% (orthogonal) at ``n = 256``, +3% and +1% at
        ``n = 512``).
    """
    depth = check_int("depth", depth)
    if weights not in _S1:
        raise ValueError(f"weights must be one of {', '.join(_S1)}; got {weights!r}")
    mu1, mu2 = derivative_moments(activation, q_star)
    if mu1 == 0.0:
        raise ValueError(f"phi' vanishes almost surely at q_star={q_star}: mu1 = 0")
    return depth * (mu2 / (mu1 * mu1) - 1.0 - _S1[weights])
