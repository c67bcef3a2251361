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
of the spectrum pooled over nets). The theory functions return
``E[m_1]`` and ``E[m_2]`` in the same normalisation.

Theory
------
The predictions (exact finite-width moments of linear Gaussian nets, the
orthogonal linear net, Pennington, Schoenholz and Ganguli's large-width
variance) live in :mod:`initsim.theory.jacobian` and are re-exported here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from initsim import activations as _activations
from initsim.plan import make_plan
from initsim.provenance import (
    config_hash,
    numba_threads,
    seed_record,
    threading_layer,
    versions,
)
from initsim.result import mean_and_se
from initsim.rng import net_keys, root_key
from initsim.seeding import SeedLike, as_seed_sequence
from initsim.theory.jacobian import (
    derivative_moments,
    linear_gaussian_moments,
    linear_gaussian_moments_limit,
    linear_gaussian_trace_moments,
    orthogonal_linear_singular_value,
    psg_spectrum_variance,
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
        # an exploding net's s^4 exceeds the float64 range: inf is then the answer
        with np.errstate(over="ignore", invalid="ignore"):
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
        m, _ = mean_and_se(self.per_net_moments())  # no overflow for finite moments
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
        _, se = mean_and_se(self.per_net_moments())  # no overflow for finite moments
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
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            mu1, mu2 = pm.mean(axis=0)
            if normalized:
                grad = np.array([-2.0 * mu2 / mu1**3, 1.0 / mu1**2])
            else:
                grad = np.array([-2.0 * mu1, 1.0])
            cov = np.cov(pm.T)
            var = grad @ cov @ grad
        return float(math.sqrt(max(var, 0.0) / self.nets))


# --------------------------------------------------------------------------
# Monte Carlo
# --------------------------------------------------------------------------
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
    initsim.plan.RunTooLargeError
        (a ValueError) When the run needs more memory than is available
        (:func:`initsim.plan.make_plan` with ``kernel="jacobian"``).

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
    from initsim.engine.jacobian_kernel import jacobian_kernel

    # the dense sampler's plan with one input: net k draws what simulate's net k draws
    plan = make_plan(
        activation=activation,
        init=init,
        depth=depth,
        width=width,
        input_dim=input_dim,
        bias_std=bias_std,
        nets=nets,
        input=input,
        method="dense",
        threads=threads,
        kernel="jacobian",  # its memory estimate (refused here if the machine lacks it)
    )
    law_codes, law_params = plan.law_table
    widths = plan.widths
    ss = as_seed_sequence(seed)
    root = root_key(ss)
    config: dict[str, Any] = {"quantity": "jacobian_spectrum", **plan.net_config()}
    config.update(plan.input_config())

    sv = np.empty((plan.nets, int(min(widths[0], widths[-1]))))
    act = plan.activation
    started = time.perf_counter()
    # nets are spread over the Numba threads: one-thread BLAS/LAPACK inside the
    # kernel (no oversubscription, deterministic products and SVDs)
    with numba_threads(plan.threads) as used_threads, threadpool_limits(1, user_api="blas"):
        jacobian_kernel(
            net_keys(root, 0, plan.nets),
            widths,
            law_codes,
            law_params,
            plan.bias_std,
            act.kernel,
            plan.input_code,
            plan.given,
            sv,
        )
    elapsed = time.perf_counter() - started

    provenance = {
        **seed_record(ss, root),
        "config": config,
        "config_sha256": config_hash(config),
        "method": "dense",
        "kernel": "jacobian (dense)",
        "threads": used_threads,
        "threading_layer": threading_layer(),
        "elapsed_s": elapsed,
        "versions": versions(),
    }
    return JacobianSpectrum(singular_values=sv, provenance=provenance)
