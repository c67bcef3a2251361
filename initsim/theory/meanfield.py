"""Mean-field (infinite-width) theory of signal and gradient propagation.

This module owns the length and correlation maps and what follows from them
(Poole et al. 2016, Schoenholz et al. 2017; conventions in
:mod:`initsim.theory`):

* length map: ``q^1 = sigma_w2 q^0 + sigma_b2`` and
  ``q^l = F(q^{l-1}) = sigma_w2 E_{q^{l-1}}[phi^2] + sigma_b2``
  (:func:`q_map`);
* correlation map of two inputs of equal norm:
  ``c^l = (sigma_w2 E[phi(u_1) phi(u_2)] + sigma_b2) / q^l`` with
  ``(u_1, u_2)`` centred bivariate normal of variance ``q^{l-1}`` and
  correlation ``c^{l-1}`` (:func:`c_map`);
* fixed point ``q*`` (:func:`fixed_point`), ``chi_1 = sigma_w2 E_{q*}[phi'^2]``
  (:func:`chi1`), the order-to-chaos line ``chi_1 = 1``
  (:func:`critical_sigma_w2`, :func:`phase`), the correlation fixed point
  (:func:`correlation_fixed_point`) and the depth scales
  ``xi_q = -1 / ln F'(q*)``, ``xi_c = -1 / ln chi_c`` (:func:`depth_scales`);
* mean squared back-propagated gradient (:func:`gradient_factor`,
  :func:`grad_sq_map`), under the gradient-independence assumption.

The Gaussian expectations they need, and their accuracy, are in
:mod:`initsim.theory.gaussian`.

References
----------
B. Poole, S. Lahiri, M. Raghu, J. Sohl-Dickstein and S. Ganguli, Exponential
expressivity in deep neural networks through transient chaos, NeurIPS 2016.

S. S. Schoenholz, J. Gilmer, S. Ganguli and J. Sohl-Dickstein, Deep
information propagation, ICLR 2017.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from scipy import optimize

from initsim._validate import check_int
from initsim.activations import Activation
from initsim.theory._checks import (
    as_activation,
    as_real,
    check_c0,
    check_q0,
    check_sigma_b2,
    check_sigma_w2,
    check_widths,
)
from initsim.theory.gaussian import (
    DPHI2,
    DQ_PHI2,
    PHI2,
    FloatArray,
    bivariate,
    expect_array,
    expect_scalar,
    gaussian_expectation,
    through_gap,
)

__all__ = [
    "PHASE_TOL",
    "c_map",
    "chi1",
    "correlation_fixed_point",
    "critical_sigma_w2",
    "depth_scales",
    "fixed_point",
    "grad_sq_map",
    "gradient_factor",
    "phase",
    "q_map",
]

#: |chi_1 - 1| at or below this counts as critical in :func:`phase`.
PHASE_TOL = 1e-8
# Largest q the fixed-point search explores before reporting q* = inf.
_Q_MAX = 1e100
# Homogeneous activations: |sigma_w2 E_1[phi^2] - 1| below this is exactly marginal.
_MARGINAL_TOL = 1e-12
# 1 - c for the scan of the chaotic correlation map (after 1e-9 .. 1e-2)
_C_GRID = np.array([0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0])


# ----------------------------------------------------------------------------------
# Maps
# ----------------------------------------------------------------------------------


def _q_sequence(act: Activation, sw: FloatArray, sigma_b2: float, q0: float) -> FloatArray:
    depth = sw.shape[0]
    q = np.empty(depth)
    with np.errstate(over="ignore"):  # a diverging map overflows to inf: that is the answer
        q[0] = sw[0] * q0 + sigma_b2
        for t in range(1, depth):
            prev = q[t - 1]
            q[t] = np.nan if np.isnan(prev) else sw[t] * expect_scalar(act, prev, PHI2) + sigma_b2
    return q


def q_map(
    activation: str | Activation,
    sigma_w2: float | Sequence[float] | FloatArray,
    sigma_b2: float,
    q0: float,
    depth: int,
) -> FloatArray:
    """Mean-field length map: ``q^1, ..., q^depth``.

    ``q^1 = sigma_w2 q^0 + sigma_b2`` (the input is not passed through
    ``phi``) and ``q^l = sigma_w2 E[phi(sqrt(q^{l-1}) z)^2] + sigma_b2``
    (Poole et al. 2016, eq. 3).

    Parameters
    ----------
    activation : str or Activation
        The activation.
    sigma_w2 : float or sequence of float
        ``n_in Var(W_ij)``: one value, or one per layer (length ``depth``;
        entry ``l - 1`` is layer ``l``'s).
    sigma_b2 : float
        ``Var(b_i) >= 0``.
    q0 : float
        Input second moment ``||x^0||^2 / n_0 > 0``.
    depth : int
        Number of hidden layers, ``>= 1``.

    Returns
    -------
    numpy.ndarray
        Shape ``(depth,)``; entry ``l - 1`` is ``q^l``. A map that
        overflows gives ``inf`` for unbounded activations (and the
        ``q -> inf`` limit of ``F`` for bounded ones).

    Raises
    ------
    ValueError
        For an unknown activation, ``sigma_w2 <= 0`` or non-finite,
        ``sigma_b2 < 0``, ``q0 <= 0`` or ``depth < 1``.

    Examples
    --------
    >>> q_map("relu", 2.0, 0.0, 1.0, 3)
    array([2., 2., 2.])
    """
    act = as_activation(activation)
    depth = check_int("depth", depth)
    sw = np.broadcast_to(check_sigma_w2(sigma_w2, depth), (depth,)).astype(np.float64)
    return _q_sequence(act, sw, check_sigma_b2(sigma_b2), check_q0(q0))


def c_map(
    activation: str | Activation,
    sigma_w2: float | Sequence[float] | FloatArray,
    sigma_b2: float,
    c0: float,
    depth: int,
    q0: float = 1.0,
) -> FloatArray:
    """Mean-field correlation map of two inputs of equal norm: ``c^1, ..., c^depth``.

    ``c^1 = (sigma_w2 q^0 c^0 + sigma_b2) / q^1`` and
    ``c^l = (sigma_w2 E[phi(u_1) phi(u_2)] + sigma_b2) / q^l``, where
    ``(u_1, u_2)`` is centred bivariate normal with variances ``q^{l-1}`` and
    correlation ``c^{l-1}`` and ``q^l`` comes from :func:`q_map`
    (Poole et al. 2016, eq. 5).

    Parameters
    ----------
    activation : str or Activation
        The activation.
    sigma_w2 : float or sequence of float
        ``n_in Var(W_ij)``, one value or one per layer.
    sigma_b2 : float
        ``Var(b_i) >= 0``.
    c0 : float
        Correlation of the two inputs, in ``[-1, 1]``.
    depth : int
        Number of hidden layers, ``>= 1``.
    q0 : float, optional
        Common input second moment ``||x||^2 / n_0`` (default 1).

    Returns
    -------
    numpy.ndarray
        Shape ``(depth,)``; entry ``l - 1`` is ``c^l``. NaN from the layer
        where ``q^{l-1}`` overflows on.

    Raises
    ------
    ValueError
        For invalid parameters (see :func:`q_map`) or ``|c0| > 1``.

    Notes
    -----
    Closed forms: linear (``E[u_1 u_2] = q c``), relu (the arc-cosine
    kernel ``q (sqrt(1 - c^2) + (pi - arccos c) c) / (2 pi)``, Cho and Saul
    2009), leaky_relu (``a q c + (1 - a)^2`` times the relu kernel) and erf
    (``(2 / pi) arcsin(2 q c / (1 + 2 q))``, Williams 1997). Otherwise a
    two-dimensional composite Gauss-Legendre rule (:mod:`initsim.theory.gaussian`), evaluated
    for ``c >= 0`` as ``1 - c^l = sigma_w2 E[(phi(u_1) - phi(u_2))^2] /
    (2 q^l)`` so that ``1 - c^l`` stays accurate as ``c^l -> 1``; absolute
    accuracy about ``1e-11`` in ``c``. Each layer costs about 10-50 ms
    with the generic rule.

    Examples
    --------
    >>> float(c_map("relu", 2.0, 0.0, 0.0, 2)[1])  # 1 / pi
    0.3183098861837907
    """
    act = as_activation(activation)
    depth = check_int("depth", depth)
    sw = np.broadcast_to(check_sigma_w2(sigma_w2, depth), (depth,)).astype(np.float64)
    sb = check_sigma_b2(sigma_b2)
    c0 = check_c0(c0)
    q0 = check_q0(q0)
    q = _q_sequence(act, sw, sb, q0)
    c = np.empty(depth)
    c[0] = min(1.0, max(-1.0, (sw[0] * q0 * c0 + sb) / q[0]))
    for t in range(1, depth):
        qp, cp = q[t - 1], c[t - 1]
        if not (math.isfinite(qp) and qp > 0.0 and math.isfinite(q[t])) or math.isnan(cp):
            c[t] = math.nan
            continue
        if through_gap(act, cp):
            val = 1.0 - sw[t] * bivariate(act, qp, cp, "gap") / q[t]
        else:
            val = (sw[t] * bivariate(act, qp, cp, "phi") + sb) / q[t]
        c[t] = min(1.0, max(-1.0, val))
    return c


# ----------------------------------------------------------------------------------
# Fixed points, chi_1, phases, depth scales
# ----------------------------------------------------------------------------------


def _homogeneous_gain(act: Activation) -> float:
    """E_1[phi^2] for a positively homogeneous activation (F(q) = sigma_w2 k q + sigma_b2)."""
    return expect_scalar(act, 1.0, PHI2)


@functools.lru_cache(maxsize=4096)
def _fixed_point_cached(act: Activation, sw: float, sb: float) -> float:
    start = sw + sb  # q^1 from q^0 = 1
    if act.positively_homogeneous:
        r = sw * _homogeneous_gain(act)
        if abs(r - 1.0) <= _MARGINAL_TOL:
            return start if sb == 0.0 else math.inf
        if r > 1.0:
            return math.inf
        return sb / (1.0 - r)

    def g(q: float) -> float:
        return sw * expect_scalar(act, q, PHI2) + sb - q

    g_start = g(start)
    if g_start == 0.0:
        return start
    xtol_rel = 4e-15
    if g_start > 0.0:  # the map increases: the first fixed point above start
        cap = math.inf
        if act.bounded:
            p = act.phi(np.array([np.inf, -np.inf]))
            cap = sw * float(np.max(p * p)) + sb  # F(q) <= cap for every q
        lo = start
        while True:
            hi = min(4.0 * lo, cap) if cap > lo else 4.0 * lo
            if hi > _Q_MAX:
                return math.inf
            if g(hi) <= 0.0:
                break
            lo = hi
        return optimize.brentq(g, lo, hi, xtol=1e-300, rtol=xtol_rel, maxiter=500)
    # the map decreases: the first fixed point below start
    f0 = sw * expect_scalar(act, 0.0, PHI2) + sb  # F(0)
    hi = start
    if f0 > 0.0:
        while hi > 1e-6 * f0:
            lo = 0.1 * hi
            if g(lo) >= 0.0:
                return optimize.brentq(g, lo, hi, xtol=1e-300, rtol=xtol_rel, maxiter=500)
            hi = lo
        return optimize.brentq(g, 0.0, hi, xtol=1e-300, rtol=xtol_rel, maxiter=500)
    # F(0) = 0: q = 0 is a fixed point; near it F(q) ~ slope q. A sign change
    # must clear the quadrature's relative noise (activations such as
    # hard_tanh have F(q) = q up to e^(-1/(2q)) at small q).
    slope = sw * expect_scalar(act, 0.0, DPHI2)
    floor = 1e-300 if slope > 1.0 + _MARGINAL_TOL else 1e-12 * start
    while hi > floor:
        lo = 0.1 * hi
        if g(lo) > 1e-13 * lo:
            return optimize.brentq(g, lo, hi, xtol=1e-300, rtol=xtol_rel, maxiter=500)
        hi = lo
    return 0.0


def fixed_point(activation: str | Activation, sigma_w2: float, sigma_b2: float) -> float:
    """Return the fixed point ``q*`` of the length map reached from ``q^0 = 1``.

    ``q* = lim_{l -> inf} q^l`` for :func:`q_map` with ``q0 = 1``, i.e. the
    first solution of ``q = F(q) = sigma_w2 E[phi(sqrt(q) z)^2] + sigma_b2``
    met when iterating from ``q^1 = sigma_w2 + sigma_b2`` (stable from that
    side; for an increasing ``F`` this is exactly where the iteration
    converges).

    Parameters
    ----------
    activation : str or Activation
        The activation.
    sigma_w2 : float
        ``n_in Var(W_ij) > 0``.
    sigma_b2 : float
        ``Var(b_i) >= 0``.

    Returns
    -------
    float
        ``q* >= 0``, possibly ``0.0`` or ``inf``.

    Raises
    ------
    ValueError
        For an unknown activation, ``sigma_w2 <= 0`` or ``sigma_b2 < 0``.

    Notes
    -----
    Special cases:

    * positively homogeneous activations (linear, relu, leaky_relu) have
      ``F(q) = r q + sigma_b2`` with ``r = sigma_w2 E_1[phi^2]`` (relu:
      ``sigma_w2 / 2``): ``q* = sigma_b2 / (1 - r)`` for ``r < 1`` (0
      without bias), ``inf`` for ``r > 1``; at ``r = 1`` (within
      ``1e-12``, e.g. relu with He's ``sigma_w2 = 2``) every ``q`` is fixed
      without bias and ``q* = q^1 = sigma_w2`` (relu He: 2), while any bias
      makes ``q`` grow linearly: ``inf``.
    * ``q* = 0`` when ``sigma_b2 = 0``, ``phi(0) = 0`` and the map decays
      to 0 (tanh or erf with ``sigma_w2 <= 1`` resp. ``<= pi / 4``; relu
      with ``sigma_w2 < 2``). A positive fixed point below ``1e-12``
      (``1e-300`` when ``F'(0) > 1``) is reported as 0.
    * ``inf`` when ``F(q) > q`` up to ``q = 1e100`` (unbounded activations
      with too large ``sigma_w2``, e.g. elu or gelu with ``sigma_w2 > 2``).

    Examples
    --------
    >>> fixed_point("relu", 2.0, 0.0)
    2.0
    >>> fixed_point("tanh", 1.0, 0.0)
    0.0
    """
    act = as_activation(activation)
    sw = float(check_sigma_w2(sigma_w2))
    sb = check_sigma_b2(sigma_b2)
    return _fixed_point_cached(act, sw, sb)


def _chi1(act: Activation, sw: float, sb: float) -> float:
    qs = _fixed_point_cached(act, sw, sb)
    return sw * expect_scalar(act, qs, DPHI2)


def chi1(activation: str | Activation, sigma_w2: float, sigma_b2: float) -> float:
    """Slope of the correlation map at ``c = 1``: ``chi_1 = sigma_w2 E[phi'(sqrt(q*) z)^2]``.

    ``chi_1 < 1``: ordered (correlations converge to 1, gradients vanish);
    ``chi_1 > 1``: chaotic (nearby inputs decorrelate, gradients explode);
    Poole et al. 2016, eq. 7; Schoenholz et al. 2017, eq. 5. It is also the
    per-layer factor of the mean squared gradient at the fixed point.

    Parameters
    ----------
    activation : str or Activation
        The activation.
    sigma_w2 : float
        ``n_in Var(W_ij) > 0``.
    sigma_b2 : float
        ``Var(b_i) >= 0``.

    Returns
    -------
    float
        ``chi_1`` at ``q* =`` :func:`fixed_point`. For ``q* = 0`` the
        expectation is its ``q -> 0+`` limit (``phi'(0)^2``, or the mean of
        the one-sided limits at a kink); for ``q* = inf`` its ``q -> inf``
        limit (relu: ``sigma_w2 / 2`` for every ``q``).

    Raises
    ------
    ValueError
        For invalid parameters.

    Examples
    --------
    >>> chi1("relu", 2.0, 0.0)
    1.0
    """
    act = as_activation(activation)
    return _chi1(act, float(check_sigma_w2(sigma_w2)), check_sigma_b2(sigma_b2))


def critical_sigma_w2(activation: str | Activation, sigma_b2: float) -> float:
    """Return the ``sigma_w2`` on the order-to-chaos line ``chi_1(sigma_w2, sigma_b2) = 1``.

    Parameters
    ----------
    activation : str or Activation
        The activation.
    sigma_b2 : float
        ``Var(b_i) >= 0``.

    Returns
    -------
    float
        The smallest ``sigma_w2`` with ``chi_1 = 1`` (relative accuracy about
        ``1e-13``): relu 2 and linear 1 for every ``sigma_b2``, leaky_relu
        ``2 / (1 + a^2)``; tanh 1 and erf ``pi / 4`` at ``sigma_b2 = 0``,
        increasing with ``sigma_b2`` (the critical line of Poole et al. 2016
        and Schoenholz et al. 2017).

    Raises
    ------
    ValueError
        For invalid parameters; if ``chi_1 < 1`` for every
        ``sigma_w2 <= 2^40``; or if ``chi_1`` jumps across 1 without taking
        the value 1 (a discontinuous transition: the fixed point ``q*``
        jumps, e.g. gelu or silu without bias, where ``q*`` goes from 0 to
        ``inf``). The message says where.

    Notes
    -----
    Positively homogeneous activations: ``1 / E[phi'^2]`` in closed form.
    Otherwise ``chi_1 - 1`` is scanned on the grid ``sigma_w2 = 2^k / 16``
    until it changes sign and the root is polished by Brent's method. With
    ``sigma_b2 = 0`` and ``phi(0) = 0`` the grid also holds
    ``1 / E_0[phi'^2]`` (``1 / phi'(0)^2``), where ``q* = 0`` loses
    stability and ``chi_1 = 1`` exactly: there ``chi_1 - 1`` only grows
    quadratically on the right, which a root finder would resolve to
    ``1e-8`` only. A grid point is taken as the root when ``|chi_1 - 1|``
    is below ``1e-13``, or ``1e-10`` for a registered activation whose
    ``phi'`` is derived numerically (about ``1e-12`` accurate: at such a
    touching point a root finder would turn that error into ``1e-6``).
    """
    act = as_activation(activation)
    sb = check_sigma_b2(sigma_b2)
    if act.positively_homogeneous:
        return 1.0 / expect_scalar(act, 1.0, DPHI2)

    def f(sw: float) -> float:
        return _chi1(act, sw, sb) - 1.0

    # grid 2^k / 16, plus the point where q* = 0 stops being stable (sigma_b2 = 0,
    # phi(0) = 0: chi_1 = sigma_w2 E_0[phi'^2] there, exactly 1 at its right end)
    grid = [2.0**k / 16.0 for k in range(45)]
    if sb == 0.0 and float(act.phi(0.0)) == 0.0:
        grid = sorted([*grid, 1.0 / expect_scalar(act, 0.0, DPHI2)])
    lo = hi = math.nan
    f_lo = f(1e-9)
    if f_lo >= 0.0:
        raise ValueError(f"{act.label}: chi_1 >= 1 already at sigma_w2 = 1e-9")
    lo = 1e-9
    # how exactly chi_1 can be computed: a numerically derived phi' (a registered
    # activation without dphi) is good to about 1e-12, not 1e-15
    tol = 1e-10 if act.user is not None and act.user.derived_dphi else 1e-13
    for sw in grid:
        f_sw = f(sw)
        if abs(f_sw) <= tol:
            return sw
        if f_sw > 0.0:
            hi = sw
            break
        lo = sw
    if math.isnan(hi):
        raise ValueError(f"{act.label}: chi_1 < 1 for every sigma_w2 up to 2^40")
    root = optimize.brentq(f, lo, hi, xtol=1e-300, rtol=1e-14, maxiter=500)
    miss = f(root)
    if abs(miss) > 1e-9:
        raise ValueError(
            f"{act.label} with sigma_b2 = {sb:g} has no critical sigma_w2: chi_1 jumps across 1 "
            f"(from {f(lo * (1 - 1e-12) if lo > 0 else lo) + 1:.6g} to {f(hi) + 1:.6g}) at "
            f"sigma_w2 = {root:.12g}, where the fixed point q* jumps "
            f"(q* = {_fixed_point_cached(act, root * (1 - 1e-9), sb):.6g} just below, "
            f"{_fixed_point_cached(act, root * (1 + 1e-9), sb):.6g} just above)"
        )
    return root


def phase(
    activation: str | Activation, sigma_w2: float, sigma_b2: float, *, tol: float = PHASE_TOL
) -> str:
    """Phase of the initialization: ``"ordered"``, ``"critical"`` or ``"chaotic"``.

    Parameters
    ----------
    activation : str or Activation
        The activation.
    sigma_w2 : float
        ``n_in Var(W_ij) > 0``.
    sigma_b2 : float
        ``Var(b_i) >= 0``.
    tol : float, optional
        ``|chi_1 - 1| <= tol`` counts as critical (default ``1e-8``,
        :data:`PHASE_TOL`: well above the ``~1e-13`` error of
        :func:`chi1` and of :func:`critical_sigma_w2`).

    Returns
    -------
    str
        ``"ordered"`` if ``chi_1 < 1 - tol``, ``"chaotic"`` if
        ``chi_1 > 1 + tol``, else ``"critical"``.

    Raises
    ------
    ValueError
        For invalid parameters or ``tol < 0``.

    Examples
    --------
    >>> phase("relu", 2.0, 0.0)
    'critical'
    >>> phase("tanh", 1.5, 0.05)
    'ordered'
    >>> phase("tanh", 2.5, 0.05)
    'chaotic'
    """
    tol = as_real("tol", tol)
    if not (math.isfinite(tol) and tol >= 0.0):
        raise ValueError(f"tol must be finite and >= 0, got {tol!r}")
    x = chi1(activation, sigma_w2, sigma_b2)
    if x < 1.0 - tol:
        return "ordered"
    if x > 1.0 + tol:
        return "chaotic"
    return "critical"


def _correlation_fixed_point(act: Activation, sw: float, sb: float) -> tuple[float, float]:
    qs = _fixed_point_cached(act, sw, sb)
    x1 = _chi1(act, sw, sb)
    if x1 <= 1.0 + PHASE_TOL or not (0.0 < qs < math.inf):
        return 1.0, x1
    if act.odd and sb == 0.0:
        cs = 0.0
    else:

        def delta(c: float) -> float:  # C(c) - c at q*, written through the gap
            if through_gap(act, c):
                return (1.0 - c) - sw * bivariate(act, qs, c, "gap") / qs
            return (sw * bivariate(act, qs, c, "phi") + sb) / qs - c

        # descend from c = 1 (where C(c) < c in the chaotic phase) to the first sign change
        grid = 1.0 - np.concatenate([10.0 ** np.arange(-9, -1), _C_GRID])
        hi = 1.0
        cs = -1.0
        for c in grid:
            d = delta(float(c))
            if d >= 0.0:
                cs = (
                    float(c)
                    if d == 0.0
                    else optimize.brentq(delta, float(c), hi, xtol=1e-15, rtol=1e-15)
                )
                break
            hi = float(c)
    chi_c = sw * bivariate(act, qs, cs, "dphi")
    return cs, chi_c


def correlation_fixed_point(
    activation: str | Activation, sigma_w2: float, sigma_b2: float
) -> tuple[float, float]:
    """Stable fixed point ``c*`` of the correlation map and its slope ``chi_c*``.

    Parameters
    ----------
    activation : str or Activation
        The activation.
    sigma_w2 : float
        ``n_in Var(W_ij) > 0``.
    sigma_b2 : float
        ``Var(b_i) >= 0``.

    Returns
    -------
    (float, float)
        ``(c*, chi_c*)`` with ``chi_c* = sigma_w2 E[phi'(u_1) phi'(u_2)]`` at
        ``(q*, c*)`` (Schoenholz et al. 2017, eq. 9). In the ordered and
        critical phases ``c* = 1`` and ``chi_c* = chi_1``; in the chaotic
        phase ``c* < 1`` is the largest solution below 1 of ``c = C(c)`` at
        ``q*`` (0 for odd activations without bias) and ``chi_c* < 1``. If
        ``q*`` is 0 or infinite the map has no interior fixed point and
        ``(1, chi_1)`` is returned.

    Raises
    ------
    ValueError
        For invalid parameters.
    """
    act = as_activation(activation)
    return _correlation_fixed_point(act, float(check_sigma_w2(sigma_w2)), check_sigma_b2(sigma_b2))


def depth_scales(
    activation: str | Activation, sigma_w2: float, sigma_b2: float
) -> tuple[float, float]:
    """Depth scales ``(xi_q, xi_c)`` of Schoenholz et al. 2017.

    ``|q^l - q*| ~ exp(-l / xi_q)`` and ``|c^l - c*| ~ exp(-l / xi_c)``
    with

    * ``xi_q^{-1} = -ln(sigma_w2 E[phi'(u)^2 + phi(u) phi''(u)])`` at
      ``u = sqrt(q*) z`` (eq. 6), i.e. ``-ln F'(q*)``; computed without
      ``phi''`` as ``F'(q) = sigma_w2 E[phi(u) phi'(u) z] / sqrt(q)``
      (exact also for kinked activations), and ``F'(0) = chi_1``;
    * ``xi_c^{-1} = -ln chi_c*`` (eq. 9): ``-ln chi_1`` in the ordered
      phase, ``inf`` at criticality, and in the chaotic phase
      ``-ln(sigma_w2 E[phi'(u_1) phi'(u_2)])`` at the correlation fixed
      point ``c* < 1`` (see :func:`correlation_fixed_point`; ``-ln chi_1``
      would be negative there).

    Parameters
    ----------
    activation : str or Activation
        The activation.
    sigma_w2 : float
        ``n_in Var(W_ij) > 0``.
    sigma_b2 : float
        ``Var(b_i) >= 0``.

    Returns
    -------
    (float, float)
        ``(xi_q, xi_c)``, each positive or ``inf``. ``inf`` means no
        exponential convergence: the slope is ``>= 1`` (criticality, or
        ``F'(q*) = 1`` as for relu He without bias), or ``q*`` is infinite
        (both scales are then ``inf``; e.g. relu with ``sigma_w2 > 2``).

    Raises
    ------
    ValueError
        For invalid parameters.

    Notes
    -----
    For ``q* = 0`` (no bias, ordered) both slopes equal ``chi_1`` and the
    formulas are formal: e.g. relu's normalised correlation map does not
    depend on the scale of ``q``.

    Examples
    --------
    >>> depth_scales("relu", 2.0, 0.0)
    (inf, inf)
    """
    act = as_activation(activation)
    sw = float(check_sigma_w2(sigma_w2))
    sb = check_sigma_b2(sigma_b2)
    qs = _fixed_point_cached(act, sw, sb)
    if math.isinf(qs):
        return math.inf, math.inf
    x1 = _chi1(act, sw, sb)
    if act.positively_homogeneous:
        fprime = sw * _homogeneous_gain(act)
    elif qs == 0.0:
        fprime = x1
    else:
        fprime = sw * expect_scalar(act, qs, DQ_PHI2)

    def scale(slope: float) -> float:
        return -1.0 / math.log(slope) if 0.0 < slope < 1.0 else (0.0 if slope == 0 else math.inf)

    xi_q = scale(fprime)
    if abs(x1 - 1.0) <= PHASE_TOL:
        return xi_q, math.inf
    _, chi_c = _correlation_fixed_point(act, sw, sb)
    return xi_q, scale(chi_c)


# ----------------------------------------------------------------------------------
# Gradients
# ----------------------------------------------------------------------------------


def gradient_factor(
    activation: str | Activation, sigma_w2: float, q: float, width_ratio: float = 1.0
) -> float:
    """Per-layer factor of the mean squared back-propagated gradient.

    ``sigma_w2 (n_{l+1} / n_l) E[phi'(sqrt(q^l) z)^2]``: the ratio
    ``E[delta_l^2] / E[delta_{l+1}^2]`` under the gradient-independence
    assumption (Schoenholz et al. 2017, eq. 12; ``chi_1`` at ``q = q*`` and
    equal widths).

    Parameters
    ----------
    activation : str or Activation
        The activation.
    sigma_w2 : float
        ``n_in Var(W_ij) > 0`` of the weights ``W_{l+1}``.
    q : float
        ``q^l >= 0``.
    width_ratio : float, optional
        ``n_{l+1} / n_l > 0`` (default 1).

    Returns
    -------
    float
        The factor.

    Raises
    ------
    ValueError
        For invalid parameters.
    """
    act = as_activation(activation)
    sw = float(check_sigma_w2(sigma_w2))
    ratio = as_real("width_ratio", width_ratio)
    if not (math.isfinite(ratio) and ratio > 0.0):
        raise ValueError(f"width_ratio must be finite and > 0, got {ratio!r}")
    return sw * ratio * float(gaussian_expectation(act, q, "dphi2"))


def grad_sq_map(
    activation: str | Activation,
    sigma_w2: float | Sequence[float] | FloatArray,
    sigma_b2: float,
    q0: float,
    widths: Sequence[int],
) -> FloatArray:
    """Mean-field mean over units of ``delta_l^2`` for ``l = 1..L``.

    Under the engine's convention the backward pass starts from
    ``delta_L = u * phi'(h_L)`` with ``u ~ N(0, I)`` and continues with
    ``delta_l = phi'(h_l) * (W_{l+1}^T delta_{l+1})``. With the gradient
    independence assumption (Schoenholz et al. 2017):
    ``E[delta_L^2] = E[phi'^2](q^L)`` and
    ``E[delta_l^2] = E[phi'^2](q^l) sigma_w2 (n_{l+1} / n_l) E[delta_{l+1}^2]``.

    Parameters
    ----------
    activation : str or Activation
        The activation.
    sigma_w2 : float or sequence of float
        ``n_in Var(W_ij)``, one value or one per layer (length ``L``).
    sigma_b2 : float
        ``Var(b_i) >= 0``.
    q0 : float
        Input second moment ``> 0``.
    widths : sequence of int
        ``[n_0, n_1, ..., n_L]`` (``L = len(widths) - 1`` hidden layers;
        ``n_0`` does not enter).

    Returns
    -------
    numpy.ndarray
        Shape ``(L,)``; entry ``l - 1`` is the prediction for layer ``l``.

    Raises
    ------
    ValueError
        For invalid parameters.

    Examples
    --------
    >>> grad_sq_map("relu", 2.0, 0.0, 1.0, [4, 8, 8, 8])
    array([0.5, 0.5, 0.5])
    """
    act = as_activation(activation)
    ws = check_widths(widths)
    depth = len(ws) - 1
    sw = np.broadcast_to(check_sigma_w2(sigma_w2, depth), (depth,)).astype(np.float64)
    q = _q_sequence(act, sw, check_sigma_b2(sigma_b2), check_q0(q0))
    d2 = expect_array(act, np.where(np.isnan(q), np.inf, q), DPHI2)
    out = np.empty(depth)
    out[-1] = d2[-1]
    with np.errstate(over="ignore"):  # exploding gradients overflow to inf
        for t in range(depth - 2, -1, -1):
            out[t] = d2[t] * sw[t + 1] * (ws[t + 2] / ws[t + 1]) * out[t + 1]
    return out
