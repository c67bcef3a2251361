"""Finite-width theory: exact ReLU and linear length laws, and the delta-method ``q`` correction.

This module owns what the theory says at finite width ``n``.

Exact laws (ReLU or linear, Gaussian weights, no bias; Hanin and Rolnick 2018)
------------------------------------------------------------------------------
Given the previous layer, one ReLU layer of width ``n`` multiplies
``||x||^2 / n`` by ``R = (2 / n) chi^2_K`` with ``K ~ Binomial(n, 1/2)``
the number of active units, independently across layers. Hence
:func:`relu_length_moments`, :func:`relu_dead_probability`,
:func:`relu_length_ratio_law` and :func:`relu_log_length_moments`; a linear
net with ``sigma_w2 = 1`` has :func:`linear_length_moments`.

Delta-method correction of the ``q`` recursion (any activation)
---------------------------------------------------------------
At finite width the per-net ``q^l`` fluctuates, and for a nonlinear ``phi``
the mean of the next layer is not the mean-field map of the mean. Let
``s_l`` be the conditional variance of one pre-activation of layer ``l``
given the previous layer (so ``E[q^l] = E[s_l]``). With Gaussian weights and
biases,

- ``s_1 = sigma_w2 q0 + sigma_b2``;
- given ``s_l``, the ``n_l`` pre-activations are iid ``N(0, s_l)``, so
  ``Y_l = mean_i phi(h_i)^2`` has mean ``G(s_l)`` and variance
  ``(G4(s_l) - G(s_l)^2) / n_l`` with ``G(s) = E[phi(sqrt(s) z)^2]`` and
  ``G4(s) = E[phi(sqrt(s) z)^4]``;
- ``s_{l+1} = sigma_w2 Y_l + sigma_b2`` and
  ``q^l | s_l ~ s_l chi^2_{n_l} / n_l``.

Propagating the mean ``mu`` and variance ``nu`` of ``s`` to second order
(``E f(s) ~ f(mu) + f''(mu) nu / 2``, ``Var f(s) ~ f'(mu)^2 nu``) gives
``E[q^l]`` and ``Var(q^l)`` with errors ``O(1/n^2)`` (:func:`q_moments`).
For ReLU and linear ``phi`` (``G`` linear, ``G4`` quadratic) the recursion is
exact, and reproduces Hanin and Rolnick's ``E[M^2] = prod (1 + 5/n_l)``.

References
----------
B. Hanin and D. Rolnick, How to start training: the effect of initialization
and architecture, NeurIPS 2018.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special

from initsim._validate import check_int
from initsim.activations import Activation
from initsim.seeding import SeedLike, as_generator
from initsim.theory._checks import check_widths
from initsim.theory.gaussian import FloatArray, gaussian_expectation

__all__ = [
    "ReluLengthRatioLaw",
    "linear_length_moments",
    "q_moments",
    "relu_dead_probability",
    "relu_length_moments",
    "relu_length_ratio_law",
    "relu_log_length_moments",
]

# ----------------------------------------------------------------------------------
# Finite width: ReLU (and linear) nets with Gaussian weights, no bias
# ----------------------------------------------------------------------------------


def relu_length_moments(widths: Sequence[int]) -> tuple[float, float]:
    """First two moments of the squared-length ratio of a He-initialised ReLU net.

    ``M_L = (||x^L||^2 / n_L) / (||x^0||^2 / n_0)`` for a fixed input,
    Gaussian weights with ``sigma_w2 = 2``, no bias, ``x^l = relu(h^l)``:
    ``E[M_L] = 1`` and ``E[M_L^2] = prod_{l=1}^{L} (1 + 5 / n_l)``
    (Hanin and Rolnick 2018, Theorem 5). ``M_L`` is a product of
    independent per-layer ratios with the law of
    :func:`relu_length_ratio_law`.

    Parameters
    ----------
    widths : sequence of int
        ``[n_0, n_1, ..., n_L]``; ``n_0`` does not enter.

    Returns
    -------
    (float, float)
        ``(E[M_L], E[M_L^2])``.

    Raises
    ------
    ValueError
        If ``widths`` has fewer than two entries or an entry ``< 1``.

    Examples
    --------
    >>> relu_length_moments([3, 5, 5])
    (1.0, 4.0)
    """
    ws = check_widths(widths)
    return 1.0, float(np.prod([1.0 + 5.0 / n for n in ws[1:]]))


def linear_length_moments(widths: Sequence[int]) -> tuple[float, float]:
    """First two moments of ``M_L`` for a linear net with ``sigma_w2 = 1`` (LeCun), no bias.

    Each layer multiplies ``||x||^2 / n`` by ``chi^2_{n_l} / n_l``, so
    ``E[M_L] = 1`` and ``E[M_L^2] = prod_{l=1}^{L} (1 + 2 / n_l)``.

    Parameters
    ----------
    widths : sequence of int
        ``[n_0, n_1, ..., n_L]``; ``n_0`` does not enter.

    Returns
    -------
    (float, float)
        ``(E[M_L], E[M_L^2])``.

    Raises
    ------
    ValueError
        If ``widths`` has fewer than two entries or an entry ``< 1``.
    """
    ws = check_widths(widths)
    return 1.0, float(np.prod([1.0 + 2.0 / n for n in ws[1:]]))


def relu_dead_probability(widths: Sequence[int]) -> float:
    """Probability that some hidden layer of a bias-free ReLU net is entirely inactive.

    Given a nonzero input to layer ``l``, its ``n_l`` pre-activations are
    independent, symmetric and a.s. nonzero (any symmetric weight law with
    no atom, no bias), so the whole layer is off with probability
    ``2^{-n_l}``; a dead layer kills every later one. Hence
    ``P(dead) = 1 - prod_{l=1}^{L} (1 - 2^{-n_l})``.

    Parameters
    ----------
    widths : sequence of int
        ``[n_0, n_1, ..., n_L]``; ``n_0`` does not enter.

    Returns
    -------
    float
        The probability that ``x^L = 0``.

    Raises
    ------
    ValueError
        If ``widths`` has fewer than two entries or an entry ``< 1``.

    Examples
    --------
    >>> relu_dead_probability([3, 1, 2])
    0.625
    """
    ws = check_widths(widths)
    alive = 0.0
    for n in ws[1:]:
        alive += math.log1p(-(2.0**-n))
    return float(-math.expm1(alive))


def _binom_half_pmf(k: FloatArray, n: int) -> FloatArray:
    """P(K = k) for K ~ Binomial(n, 1/2), through log-gamma (no overflow for large n)."""
    log_p = special.gammaln(n + 1.0) - special.gammaln(k + 1.0) - special.gammaln(n - k + 1.0)
    return np.exp(log_p - n * math.log(2.0))


@dataclass(frozen=True)
class ReluLengthRatioLaw:
    """Exact law of one ReLU layer's squared-length ratio ``R = (2 / n) chi^2_K``.

    ``K ~ Binomial(n, 1/2)`` counts the active units and, given ``K``, the
    sum of the active units' squared standardised pre-activations is
    ``chi^2_K`` (``R = 0`` when ``K = 0``, probability ``2^{-n}``). This is
    ``(||x^l||^2 / n_l) / (||x^{l-1}||^2 / n_{l-1})`` for He-initialised
    Gaussian weights, no bias.

    Attributes
    ----------
    n : int
        The layer width, ``>= 1``.
    """

    n: int

    def _pmf(self) -> tuple[FloatArray, FloatArray]:
        k = np.arange(self.n + 1, dtype=np.float64)
        return k, _binom_half_pmf(k, self.n)

    @property
    def p_zero(self) -> float:
        """The atom at 0, ``P(R = 0) = 2^{-n}``."""
        return 2.0**-self.n

    def mean(self) -> float:
        """Return ``E[R]`` (``= 1``), summed over the binomial law of ``K``.

        Returns
        -------
        float
            ``sum_k P(K = k) 2 k / n``.
        """
        k, p = self._pmf()
        return float(np.dot(p, 2.0 * k / self.n))

    def var(self) -> float:
        """Return ``Var(R)`` (``= 5 / n``), from ``E[(chi^2_k)^2] = k^2 + 2 k``.

        Returns
        -------
        float
            ``sum_k P(K = k) (4 / n^2) (k^2 + 2 k) - E[R]^2``.
        """
        k, p = self._pmf()
        second = float(np.dot(p, (k * k + 2.0 * k) * 4.0 / self.n**2))
        return second - self.mean() ** 2

    def std(self) -> float:
        """Return the standard deviation ``sqrt(Var(R))``.

        Returns
        -------
        float
            ``sqrt(5 / n)``.
        """
        return math.sqrt(self.var())

    def cdf(self, x: npt.ArrayLike) -> float | FloatArray:
        """Distribution function ``P(R <= x)``.

        Parameters
        ----------
        x : float or array_like
            Points.

        Returns
        -------
        float or numpy.ndarray
            ``sum_k P(K = k) P(chi^2_k <= n x / 2)`` (the ``k = 0`` term is
            the atom at 0), with the shape of ``x``.
        """
        xa = np.asarray(x, dtype=np.float64)
        k, p = self._pmf()
        y = 0.5 * self.n * np.maximum(xa.ravel(), 0.0)[:, None]
        cond = special.gammainc(0.5 * k[None, 1:], 0.5 * y)  # P(chi^2_k <= y), k >= 1
        out = p[0] + cond @ p[1:]
        out = np.where(xa.ravel() < 0.0, 0.0, np.minimum(out, 1.0))
        out = np.where(np.isnan(xa.ravel()), np.nan, out)
        return float(out[0]) if xa.ndim == 0 else out.reshape(xa.shape)

    def sf(self, x: npt.ArrayLike) -> float | FloatArray:
        """Survival function ``P(R > x) = 1 - cdf(x)``.

        Parameters
        ----------
        x : float or array_like
            Points.

        Returns
        -------
        float or numpy.ndarray
            ``1 - cdf(x)``.
        """
        c = self.cdf(x)
        return 1.0 - c

    def rvs(self, size: int | tuple[int, ...] | None = None, seed: SeedLike = None) -> Any:
        """Draw from the law: ``K ~ Binomial(n, 1/2)``, then ``R = (2 / n) chi^2_K``.

        Parameters
        ----------
        size : int or tuple of int, optional
            Output shape (None: one float).
        seed : int, SeedSequence, Generator or None
            Randomness (see :mod:`initsim.seeding`).

        Returns
        -------
        float or numpy.ndarray
            The draws.
        """
        rng = as_generator(seed)
        k = rng.binomial(self.n, 0.5, size=size)
        r = (4.0 / self.n) * rng.standard_gamma(0.5 * np.asarray(k, dtype=np.float64))
        return float(r) if size is None else r


def relu_length_ratio_law(n: int) -> ReluLengthRatioLaw:
    """Return the exact law of one ReLU layer's squared-length ratio.

    See :class:`ReluLengthRatioLaw`.

    Parameters
    ----------
    n : int
        The layer width, ``>= 1``.

    Returns
    -------
    ReluLengthRatioLaw
        With ``mean()``, ``var()``, ``cdf(x)``, ``sf(x)`` and ``rvs(size, seed)``.

    Raises
    ------
    ValueError
        If ``n`` is not an integer ``>= 1``.

    Examples
    --------
    >>> law = relu_length_ratio_law(10)
    >>> round(law.mean(), 12), round(law.var(), 12)
    (1.0, 0.5)
    """
    return ReluLengthRatioLaw(check_int("n", n))


def relu_log_length_moments(n: int) -> tuple[float, float]:
    """Mean and variance of ``ln R`` for one ReLU layer, conditioned on ``K >= 1``.

    ``ln R = ln(2 / n) + ln chi^2_K``; given ``K = k >= 1``,
    ``E[ln chi^2_k] = psi(k / 2) + ln 2`` and ``Var(ln chi^2_k) = psi'(k / 2)``
    (digamma and trigamma). Averaging over ``P(K = k | K >= 1)`` with the law
    of total variance gives the result. ``ln R = -inf`` when ``K = 0``
    (probability ``2^{-n}``), hence the conditioning; across layers the
    logarithms add (Hanin and Rolnick 2018: ``ln M_L`` of a net that stays
    alive has mean and variance ``sum_l`` of these).

    Parameters
    ----------
    n : int
        The layer width, ``>= 1``.

    Returns
    -------
    (float, float)
        ``(E[ln R | K >= 1], Var(ln R | K >= 1))``.

    Raises
    ------
    ValueError
        If ``n`` is not an integer ``>= 1``.
    """
    n = check_int("n", n)
    k = np.arange(1, n + 1, dtype=np.float64)
    w = _binom_half_pmf(k, n)
    w = w / w.sum()
    psi = special.digamma(0.5 * k)
    m_psi = float(np.dot(w, psi))
    mean = math.log(4.0 / n) + m_psi
    var = float(np.dot(w, special.polygamma(1, 0.5 * k)) + np.dot(w, (psi - m_psi) ** 2))
    return mean, var


# ----------------------------------------------------------------------------------
# Finite width, any activation: delta-method moments of q
# ----------------------------------------------------------------------------------


def _derivatives(f: Callable[[float], float], x: float) -> tuple[float, float, float]:
    """f, f' and f'' at ``x > 0`` by central differences with a relative step."""
    h = 1e-3 * x
    fm, f0, fp = f(x - h), f(x), f(x + h)
    return f0, (fp - fm) / (2 * h), (fp - 2 * f0 + fm) / (h * h)


def q_moments(
    activation: str | Activation,
    sigma_w2: float | Sequence[float],
    sigma_b2: float,
    q0: float,
    widths: Sequence[int],
    q0_var: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and variance of ``q^l`` at finite width, and the mean-field means.

    Parameters
    ----------
    activation : str or Activation
        The activation.
    sigma_w2 : float or sequence of float
        ``n_in Var(W_ij)``, one value or one per layer.
    sigma_b2 : float
        ``Var(b_i)``.
    q0 : float
        Mean of ``||x||^2 / n_0``.
    widths : sequence of int
        ``n_0, n_1, ..., n_L``.
    q0_var : float
        Variance of ``||x||^2 / n_0`` across nets (0 for a fixed-norm input,
        ``2 / n_0`` for an iid standard Gaussian input).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        ``E[q^l]``, ``Var(q^l)`` (both with the finite-width corrections) and
        the mean-field ``q^l``, for ``l = 1..L``.
    """
    n = np.asarray(widths, dtype=float)[1:]
    depth = len(n)
    sw = np.broadcast_to(np.asarray(sigma_w2, dtype=float), (depth,))

    # numpy scalars, not Python floats: a diverging net's moments overflow to inf
    # (flagged by the callers) instead of raising OverflowError from ``x ** 2``
    def g2(s: float) -> np.float64:
        return np.float64(gaussian_expectation(activation, s, "phi2"))

    def g4(s: float) -> np.float64:
        return np.float64(gaussian_expectation(activation, s, "phi4"))

    mean = np.empty(depth)
    var = np.empty(depth)
    mf = np.empty(depth)
    mu = sw[0] * q0 + sigma_b2
    nu = sw[0] ** 2 * q0_var
    m_mf = mu
    with np.errstate(over="ignore", invalid="ignore"):  # diverging nets: inf, not warnings
        for t in range(depth):
            mean[t] = mu
            var[t] = nu + 2.0 * (mu * mu + nu) / n[t]
            mf[t] = m_mf
            if t + 1 == depth:
                break
            if mu <= 0.0 or not np.isfinite(mu):
                mean[t + 1 :] = var[t + 1 :] = mf[t + 1 :] = np.nan if mu != 0.0 else 0.0
                break
            g, dg, d2g = _derivatives(g2, mu)
            w, _, d2w = _derivatives(lambda s: g4(s) - g2(s) ** 2, mu)
            ey = g + 0.5 * d2g * nu
            vy = dg * dg * nu + (w + 0.5 * d2w * nu) / n[t]
            mu = sw[t + 1] * ey + sigma_b2
            nu = sw[t + 1] ** 2 * max(vy, 0.0)
            m_mf = sw[t + 1] * g2(m_mf) + sigma_b2
    return mean, var, mf
