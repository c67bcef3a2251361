"""Gaussian expectations of an activation: closed forms and quadrature.

This module owns the numerical integration machinery behind the mean-field
maps of :mod:`initsim.theory.meanfield` and the finite-width corrections of
:mod:`initsim.theory.finite_width`:

* one-dimensional expectations ``E[f(sqrt(q) z)]`` of ``f = phi, phi^2,
  phi^4, phi'^2`` (:func:`gaussian_expectation`; internally also
  ``phi phi' z / sqrt(q)`` and ``phi'``): closed forms, the ``q -> 0`` and
  ``q -> inf`` limits, and adaptive quadrature of a compiled Numba ``cfunc``
  integrand;
* two-dimensional expectations over a centred bivariate normal pair
  (``E[phi(u_1) phi(u_2)]``, ``E[phi'(u_1) phi'(u_2)]`` and the gap
  ``E[(phi(u_1) - phi(u_2))^2] / 2``): closed arc-cosine and arcsine
  kernels, or a composite Gauss-Legendre rule;
* what the other theory modules use (not re-exported by :mod:`initsim.theory`):
  the integrand codes :data:`PHI` ... :data:`DPHI`, :func:`expect_array`,
  :func:`expect_scalar`, :func:`bivariate`, :func:`through_gap`, :func:`reduce_shaped` and the
  ``FloatArray`` alias.

Shaped activations (:func:`initsim.activations.shaped`) without an input
shift reduce to their base at a scaled variance (:func:`reduce_shaped`), so
the affine erf family ``a erf(b x) + c`` has the arcsine kernel in closed
form; other shaped and registered activations go through the quadratures
below, their compiled functions in the integrand.

Numerical methods and accuracy
------------------------------
* One-dimensional expectations (:func:`gaussian_expectation`) use closed
  forms where they exist (linear, relu, leaky_relu, hard_tanh, abs, square,
  sin, cos; erf's ``phi2`` and ``dphi2``; gelu's and the odd or centred
  activations' ``phi``) and otherwise adaptive Gauss-Kronrod quadrature
  (QUADPACK's ``qagp`` through :func:`scipy.integrate.quad`) of the even part
  ``(f(sqrt(q) z) + f(-sqrt(q) z)) pdf(z)`` over ``0 <= z <= 40``, with
  break points at the kinks of ``phi`` and at the scales where ``phi`` and
  the Gaussian change (so saturating activations at large ``q`` are
  resolved); the integrand is a compiled Numba ``cfunc``. Agreement with
  30-digit :mod:`mpmath` quadrature is about ``1e-15`` relative (tests
  check ``4e-15``) for every registry activation and kind on
  ``1e-4 <= q <= 1e3``; where ``E[phi]`` vanishes by cancellation (selu at
  ``q = 1``, by design) the error is about ``1e-16 sqrt(E[phi^2])``. The
  quadrature cannot resolve values far below its absolute error (about
  ``1e-17`` times the integrand's size): ``E[cos] = exp(-q / 2)`` at large
  ``q`` is therefore taken from its closed form only. sin and cos have no
  limits at ``+-inf``; their ``q -> inf`` limits are those of the closed forms
  (``E[sin^2] -> 1/2`` and so on).
  Fixed-order Gauss-Hermite rules are *not* used: they fail for saturating
  activations at large ``q``.
* Two-dimensional expectations (:func:`~initsim.theory.c_map`, the
  chaotic-phase ``chi_c``) use closed forms for linear, relu, leaky_relu and
  abs (arc-cosine kernels of Cho and Saul 2009; ``|x| = relu(x) + relu(-x)``),
  erf (arcsine kernel of Williams 1997), square (Isserlis) and sin, cos
  (``E[sin u_1 sin u_2] = e^(-q) sinh(q c)``, ``E[cos u_1 cos u_2] =
  e^(-q) cosh(q c)``); their gaps ``E[(phi(u_1) - phi(u_2))^2] / 2`` are
  written without cancellation (a few ``1e-16`` relative for ``1 - c`` down
  to ``1e-12``; erf's is the difference of its kernels). The arc-cosine
  kernels use ``sqrt((1 - c) (1 + c))`` and ``theta = atan2`` of it: the
  former ``sqrt(1 - c^2)`` and ``1/2 - k1`` lost ``eps / (1 - c)`` relative
  (``1e-6`` in relu's gap at ``1 - c = 1e-8``). Otherwise a composite
  Gauss-Legendre rule in the rotated coordinates
  ``u_{1,2} = sqrt(q) (a z_1 +- b z_2)``, ``a = sqrt((1 + c) / 2)``,
  ``b = sqrt((1 - c) / 2)``, whose panels break at the kinks and at the
  scales of ``phi`` and of the Gaussian (and, for sin and cos, every ``pi``
  in ``x``, so that no panel spans more than one period of the products),
  for the outer variable and (row by row) for the inner one. For ``c >= 0``
  the correlation map is evaluated as
  ``1 - c^l = sigma_w2 E[(phi(u_1) - phi(u_2))^2] / (2 q^l)``, which keeps
  ``1 - c`` accurate to about ``1e-12`` relative as ``c -> 1``.
  Checked against the closed forms (run through the generic rule), against
  the one-dimensional quadrature at ``c = 0, +-1`` and against nested
  :mod:`mpmath` quadrature: absolute error below ``1e-11`` in ``c``.

References
----------
Y. Cho and L. K. Saul, Kernel methods for deep learning, NeurIPS 2009.

C. K. I. Williams, Computing with infinite networks, NeurIPS 1997.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import integrate, special

from initsim._jit import jit
from initsim.activations import Activation, dphi_scalar, phi_scalar
from initsim.theory._checks import as_activation

__all__ = ["KINDS", "gaussian_expectation"]

FloatArray = npt.NDArray[np.float64]

#: The expectations :func:`gaussian_expectation` computes.
KINDS: tuple[str, ...] = ("phi", "phi2", "phi4", "dphi2")

#: Integrand codes ``g`` of :func:`expect_array` and :func:`expect_scalar`: ``phi``,
#: ``phi^2``, ``phi^4``, ``phi'^2``, ``d E_q[phi^2] / dq`` (as ``phi phi' z / sqrt(q)``)
#: and ``phi'``; the last two are not kinds of :func:`gaussian_expectation`.
PHI, PHI2, PHI4, DPHI2, DQ_PHI2, DPHI = 0, 1, 2, 3, 4, 5
_KIND_CODES = {"phi": PHI, "phi2": PHI2, "phi4": PHI4, "dphi2": DPHI2}

_INV_SQRT_2PI = 0.39894228040143267793994825337358
#: Activations without limits at +-inf, whose quadratures need panels per period.
_PERIODIC = ("sin", "cos")


# ----------------------------------------------------------------------------------
# One-dimensional Gaussian expectations
# ----------------------------------------------------------------------------------


@jit(inline="always")
def _kind_value(kind, p, d, zs, s):
    """Return the kind's function of ``p = phi(x)`` and ``d = phi'(x)`` at ``x = s zs``.

    ``phi``, ``phi^2``, ``phi^4``, ``phi'^2``, ``phi phi' z / s`` (whose
    expectation is ``d E_q[phi^2] / dq``) or ``phi'``.
    """
    if kind == 0:
        return p
    if kind == 1:
        return p * p
    if kind == 2:
        v = p * p
        return v * v
    if kind == 3:
        return d * d
    if kind == 4:
        return p * d * zs / s
    return d


def _integrand_py(n: int, xx: Any) -> float:  # pragma: no cover - compiled by _integrand
    """Quadrature integrand ``(g(s z) + g(-s z)) pdf(z)`` of a built-in, possibly shaped, phi.

    ``xx = [z, code, param, s, kind, in_scale, in_shift, out_scale,
    out_shift]``; ``g`` is :func:`_kind_value` of ``phi_hat``.
    """
    z, code, param, s, kind = xx[0], int(xx[1]), xx[2], xx[3], int(xx[4])
    a_in, b_in, a_out, b_out = xx[5], xx[6], xx[7], xx[8]
    w = math.exp(-0.5 * z * z) * _INV_SQRT_2PI
    if w == 0.0:
        return 0.0
    acc = 0.0
    for sign in (1.0, -1.0):
        u = a_in * (sign * s * z) + b_in
        p = a_out * (phi_scalar(code, param, u) + b_out) if kind not in (3, 5) else 0.0
        d = a_out * a_in * dphi_scalar(code, param, u) if kind >= 3 else 0.0
        acc += _kind_value(kind, p, d, sign * z, s)
    return acc * w


_SIG = "float64(intc, CPointer(float64))"


@functools.cache
def _integrand() -> Any:
    """Compile :func:`_integrand_py` once (cached on disk) as a C callback."""
    import numba

    return numba.cfunc(_SIG, cache=True, error_model="numpy")(_integrand_py)


@functools.cache
def _user_integrand(user: Any) -> Any:
    """Compile the integrand of a registered activation, its compiled functions built in."""
    import numba

    phi_c, dphi_c = user.phi_c, user.dphi_c

    def integrand(n: int, xx: Any) -> float:  # pragma: no cover - compiled
        """:func:`_integrand_py` with the registered ``phi`` and ``phi'``."""
        z, s, kind = xx[0], xx[3], int(xx[4])
        a_in, b_in, a_out, b_out = xx[5], xx[6], xx[7], xx[8]
        w = math.exp(-0.5 * z * z) * _INV_SQRT_2PI
        if w == 0.0:
            return 0.0
        acc = 0.0
        for sign in (1.0, -1.0):
            u = a_in * (sign * s * z) + b_in
            p = a_out * (phi_c(u) + b_out) if kind not in (3, 5) else 0.0
            d = a_out * a_in * dphi_c(u) if kind >= 3 else 0.0
            acc += _kind_value(kind, p, d, sign * z, s)
        return acc * w

    return numba.cfunc(_SIG, error_model="numpy")(integrand)


@functools.cache
def _low_level_callable(user: Any = None) -> Any:
    from scipy import LowLevelCallable

    cfunc = _integrand() if user is None else _user_integrand(user)
    return LowLevelCallable(cfunc.ctypes)


_Z_MAX = 40.0  # pdf(40) underflows: nothing beyond contributes
_X_FEATURES = (0.25, 1.0, 3.0, 8.0, 25.0)  # where the activations change (x-space)
_Z_FEATURES = (1.0, 2.0, 4.0, 7.0, 11.0)  # where the Gaussian changes (z-space)


def _quad_expect(act: Activation, q: float, code: int) -> float:
    """E[g(sqrt(q) z)] by adaptive quadrature of the even part on [0, Z_MAX]."""
    s = math.sqrt(q)
    pts = {abs(k) / s for k in act.kinks if k != 0.0}
    pts.update(x / s for x in _X_FEATURES)
    pts.update(_Z_FEATURES)
    points = sorted(p for p in pts if 0.0 < p < _Z_MAX)
    res = integrate.quad(
        _low_level_callable(act.user),
        0.0,
        _Z_MAX,
        args=(
            float(act.code),
            float(act.param),
            s,
            float(code),
            *(float(v) for v in act.affine),
        ),
        points=points,
        epsabs=0.0,
        epsrel=1e-13,
        limit=500,
        full_output=1,
    )
    # QUADPACK may report "roundoff detected" (ier 2) when 1e-13 is at the level
    # of rounding; the value is then as good as double precision allows.
    return float(res[0])


def _one_sided_dphi2_at_zero(act: Activation) -> float:
    """lim_{q -> 0+} E_q[phi'^2] = (phi'(0+)^2 + phi'(0-)^2) / 2."""
    d = act.dphi(np.array([1e-300, -1e-300]))
    return float(0.5 * (d[0] ** 2 + d[1] ** 2))


def _limit_zero(act: Activation, code: int) -> float:
    """Return the q -> 0+ limit of E_q[g]."""
    p0 = float(act.phi(0.0))
    if code == PHI:
        return p0
    if code == PHI2:
        return p0 * p0
    if code == PHI4:
        return p0**4
    if code == DPHI2:
        return _one_sided_dphi2_at_zero(act)
    if code == DPHI:
        d = act.dphi(np.array([1e-300, -1e-300]))
        return float(0.5 * (d[0] + d[1]))
    # DQ_PHI2: E[phi'^2 + phi phi''] at 0 (heat equation); phi'' only matters if phi(0) != 0
    val = _one_sided_dphi2_at_zero(act)
    if p0 != 0.0:
        h = 1e-5
        d = act.dphi(np.array([h, -h]))
        val += p0 * float(d[0] - d[1]) / (2.0 * h)
    return val


def _limit_inf(act: Activation, code: int) -> float:
    """Return the q -> inf limit of E_q[g] (finite when g has limits at +-inf)."""
    if act.name in _PERIODIC:
        # sin and cos have no limits at +-inf, but their moments do (the closed forms)
        return {PHI: 0.0, PHI2: 0.5, PHI4: 0.375, DPHI2: 0.5, DQ_PHI2: 0.0, DPHI: 0.0}[code]
    if code == DPHI and act.name == "square":
        return 0.0  # E[2 x] = 0 for every q
    if code in (DPHI2, DPHI):
        d = act.dphi(np.array([np.inf, -np.inf]))
        g = d * d if code == DPHI2 else d
        return float(0.5 * (g[0] + g[1]))
    if act.bounded:
        p = act.phi(np.array([np.inf, -np.inf]))
        g = {PHI: p, PHI2: p * p, PHI4: p**4}.get(code)
        if g is None:  # DQ_PHI2 of a bounded activation decays like q^(-1/2)
            return 0.0
        return float(0.5 * (g[0] + g[1]))
    if code == PHI:
        big = act.phi(np.array([1e300, -1e300]))
        v = float(big[0] + big[1])
        return 0.0 if v == 0.0 else math.copysign(math.inf, v)
    if code == DQ_PHI2:
        return _limit_inf(act, DPHI2) if act.positively_homogeneous else math.nan
    return math.inf


def _closed_form(act: Activation, q: FloatArray, code: int) -> FloatArray | None:
    """Return the closed form on finite q > 0, or None where there is none."""
    name = act.name
    if code == PHI and (act.odd or name in ("tanh", "erf", "hard_tanh")):
        return np.zeros_like(q)
    if name == "linear":
        return {
            PHI: np.zeros_like(q),
            PHI2: q.copy(),
            PHI4: 3.0 * q * q,
            DPHI2: np.ones_like(q),
            DQ_PHI2: np.ones_like(q),
            DPHI: np.ones_like(q),
        }[code]
    if name in ("relu", "leaky_relu"):
        a = act.param if name == "leaky_relu" else 0.0
        return {
            PHI: (1.0 - a) * np.sqrt(q / (2.0 * math.pi)),
            PHI2: 0.5 * (1.0 + a * a) * q,
            PHI4: 1.5 * (1.0 + a**4) * q * q,
            DPHI2: np.full_like(q, 0.5 * (1.0 + a * a)),
            DQ_PHI2: np.full_like(q, 0.5 * (1.0 + a * a)),
            DPHI: np.full_like(q, 0.5 * (1.0 + a)),
        }[code]
    if name == "hard_tanh":
        # E[z^(2k); |z| < t] = (2k-1)!! P(chi^2_{2k+1} <= t^2), t = 1 / sqrt(q): no cancellation.
        x = 0.5 / q  # t^2 / 2
        tail = special.erfc(np.sqrt(x))  # P(|z| > t)
        inside = special.erf(np.sqrt(x))  # P(|z| < t)
        return {
            PHI2: q * special.gammainc(1.5, x) + tail,
            PHI4: 3.0 * q * q * special.gammainc(2.5, x) + tail,
            DPHI2: inside,
            DQ_PHI2: special.gammainc(1.5, x),
            DPHI: inside,
        }[code]
    if name == "erf":
        if code == PHI2:
            # (2/pi) arcsin(2q / (1 + 2q)), written as an arctan (well conditioned as q -> inf)
            return (2.0 / math.pi) * np.arctan(2.0 * q / np.sqrt(1.0 + 4.0 * q))
        if code == DPHI2:
            return (4.0 / math.pi) / np.sqrt(1.0 + 4.0 * q)
        if code == DPHI:
            return (2.0 / math.sqrt(math.pi)) / np.sqrt(1.0 + 2.0 * q)
        return None
    if name == "abs":
        return {
            PHI: np.sqrt(2.0 * q / math.pi),
            PHI2: q.copy(),
            PHI4: 3.0 * q * q,
            DPHI2: np.ones_like(q),
            DQ_PHI2: np.ones_like(q),
            DPHI: np.zeros_like(q),
        }[code]
    if name == "square":
        return {
            PHI: q.copy(),
            PHI2: 3.0 * q * q,
            PHI4: 105.0 * q**4,
            DPHI2: 4.0 * q,
            DQ_PHI2: 6.0 * q,
            DPHI: np.zeros_like(q),
        }[code]
    if name in _PERIODIC:
        # E cos(k x) = exp(-k^2 q / 2); powers reduced to multiple angles. With
        # e = exp(-2 q) and m = 1 - e (from expm1): E sin^2 = m / 2, E cos^2 = (1 + e) / 2,
        # E sin^4 = (3 - 4 e + e^4) / 8 = m^2 (3 + 2 e + e^2) / 8 (no cancellation as
        # q -> 0), E cos^4 = (3 + 4 e + e^4) / 8.
        e = np.exp(-2.0 * q)
        m = -np.expm1(-2.0 * q)
        sin2, cos2 = 0.5 * m, 0.5 * (1.0 + e)
        if name == "sin":
            return {
                PHI: np.zeros_like(q),
                PHI2: sin2,
                PHI4: m * m * (3.0 + 2.0 * e + e * e) / 8.0,
                DPHI2: cos2,
                DQ_PHI2: e,
                DPHI: np.exp(-0.5 * q),
            }[code]
        return {
            PHI: np.exp(-0.5 * q),
            PHI2: cos2,
            PHI4: (3.0 + 4.0 * e + e**4) / 8.0,
            DPHI2: sin2,
            DQ_PHI2: -e,
            DPHI: np.zeros_like(q),
        }[code]
    if name == "sigmoid" and code == PHI:
        return np.full_like(q, 0.5)  # sigmoid - 1/2 is odd
    if name == "gelu" and code == PHI:
        return q / np.sqrt(2.0 * math.pi * (1.0 + q))  # Stein: E[x Phi(x)] = q E[pdf(x)]
    return None


def expect_array(act: Activation, q: FloatArray, code: int) -> FloatArray:
    """Return ``E_q[g]`` for an array of ``q >= 0`` (``inf`` allowed: the limit).

    Parameters
    ----------
    act : Activation
        The activation.
    q : numpy.ndarray
        Variances ``>= 0``, one-dimensional, unchecked.
    code : int
        The integrand (:data:`PHI` ... :data:`DPHI`).

    Returns
    -------
    numpy.ndarray
        The expectations, shaped like ``q``.
    """
    out = np.empty_like(q)
    with np.errstate(over="ignore"):  # huge q: unbounded moments overflow to inf, as they should
        return _expect_into(act, q, code, out)


def reduce_shaped(act: Activation) -> tuple[Activation, float, float, float] | None:
    """``(phi, in_scale, out_scale, out_shift)`` of a shaped activation without input shift.

    For such a ``phi_hat(x) = a (phi(s x) + b)`` every Gaussian expectation
    is one of ``phi`` at the variance ``s^2 q`` (centred Gaussians are
    symmetric, so the sign of ``s`` does not matter): the closed forms of
    ``phi`` (the arcsine kernel for the affine erf family, the arc-cosine
    kernels for shaped ReLUs) then apply. None for any other activation.
    """
    if not act.is_shaped or act.affine[1] != 0.0:
        return None
    a_in, _, a_out, b_out = act.affine
    return act.unshaped, a_in, a_out, b_out


def _reduced_expectation(act: Activation, q: FloatArray, code: int) -> FloatArray | None:
    """``E_q[g(phi_hat)]`` through :func:`reduce_shaped`, or None where it does not reduce."""
    parts = reduce_shaped(act)
    if parts is None:
        return None
    base, a_in, a, b = parts
    if b != 0.0 and code in (PHI4, DQ_PHI2):  # these would need E[phi^3], E[phi'']
        return None
    qb = a_in * a_in * q
    if code == PHI:
        return a * (expect_array(base, qb, PHI) + b)
    if code == PHI2:
        mean = expect_array(base, qb, PHI) if b != 0.0 else 0.0
        return a * a * (expect_array(base, qb, PHI2) + 2.0 * b * mean + b * b)
    if code == PHI4:
        return a**4 * expect_array(base, qb, PHI4)
    if code == DPHI2:
        return (a * a_in) ** 2 * expect_array(base, qb, DPHI2)
    if code == DQ_PHI2:
        return (a * a_in) ** 2 * expect_array(base, qb, DQ_PHI2)
    return a * a_in * expect_array(base, qb, DPHI)


def _expect_into(act: Activation, q: FloatArray, code: int, out: FloatArray) -> FloatArray:
    reduced = _reduced_expectation(act, q, code)
    if reduced is not None:
        out[:] = reduced
        return out
    zero = q == 0.0
    inf = np.isinf(q)
    mid = ~(zero | inf)
    if zero.any():
        out[zero] = _limit_zero(act, code)
    if inf.any():
        out[inf] = _limit_inf(act, code)
    if mid.any():
        qm = q[mid]
        closed = _closed_form(act, qm, code)
        if closed is None:
            closed = np.array([_quad_expect(act, float(x), code) for x in qm])
        out[mid] = closed
    return out


@functools.lru_cache(maxsize=65536)
def expect_scalar(act: Activation, q: float, code: int) -> float:
    """Return ``E_q[g]`` for one ``q``, cached (fixed-point searches revisit the same q).

    Parameters
    ----------
    act : Activation
        The activation.
    q : float
        Variance ``>= 0`` (``inf`` allowed), unchecked.
    code : int
        The integrand (:data:`PHI` ... :data:`DPHI`).

    Returns
    -------
    float
        The expectation.
    """
    return float(expect_array(act, np.array([float(q)]), code)[0])


def gaussian_expectation(
    activation: str | Activation, q: npt.ArrayLike, kind: str
) -> float | FloatArray:
    """Gaussian expectation ``E[f(sqrt(q) z)]``, ``z ~ N(0, 1)``.

    Parameters
    ----------
    activation : str or Activation
        The activation ``phi`` (a registry name or an :class:`Activation`).
    q : float or array_like
        Variance(s) of the pre-activation, ``q >= 0``. ``q = 0`` gives the
        limit ``q -> 0+`` (``f(0)``, or for ``dphi2`` the mean of the two
        one-sided limits at a kink); ``q = inf`` gives the limit
        ``q -> inf`` (finite for bounded ``f``, e.g. ``(f(inf) + f(-inf)) / 2``).
    kind : {"phi", "phi2", "phi4", "dphi2"}
        ``f = phi``, ``phi^2``, ``phi^4`` or ``phi'^2``.

    Returns
    -------
    float or numpy.ndarray
        The expectation; a float for scalar ``q``, else an array of
        ``q``'s shape.

    Raises
    ------
    ValueError
        If ``kind`` is not one of :data:`KINDS`, ``q`` is negative or NaN,
        or the activation is unknown.

    Notes
    -----
    Closed forms: linear (``0, q, 3 q^2, 1``); relu
    (``sqrt(q / (2 pi)), q / 2, 3 q^2 / 2, 1 / 2``); leaky_relu with slope
    ``a`` (``(1 - a) sqrt(q / (2 pi)), (1 + a^2) q / 2,
    3 (1 + a^4) q^2 / 2, (1 + a^2) / 2``); erf
    (``phi2 = (2 / pi) arcsin(2 q / (1 + 2 q))``,
    ``dphi2 = (4 / pi) / sqrt(1 + 4 q)``); hard_tanh (normal and
    chi-square distribution functions at ``1 / sqrt(q)``); gelu
    (``phi = q / sqrt(2 pi (1 + q))``); abs (``sqrt(2 q / pi), q, 3 q^2,
    1``); square (``q, 3 q^2, 105 q^4, 4 q``); sin and cos, with
    ``e = exp(-2 q)``: ``E[sin^2] = (1 - e) / 2``, ``E[cos^2] = (1 + e) / 2``,
    ``E[sin^4] = (3 - 4 e + e^4) / 8``, ``E[cos^4] = (3 + 4 e + e^4) / 8``,
    ``E[cos] = exp(-q / 2)`` (expm1 forms, no cancellation as ``q -> 0``);
    ``phi`` of odd activations is 0 and of sigmoid 1/2. Everything else is
    adaptive quadrature (see the module notes): about ``1e-12`` relative
    accuracy on ``1e-4 <= q <= 1e3``.

    Examples
    --------
    >>> gaussian_expectation("relu", 2.0, "phi2")
    1.0
    >>> round(gaussian_expectation("tanh", 1.0, "dphi2"), 6)
    0.464403
    """
    act = as_activation(activation)
    if kind not in _KIND_CODES:
        raise ValueError(f"kind must be one of {', '.join(map(repr, KINDS))}; got {kind!r}")
    try:
        qa = np.asarray(q, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"q must be real number(s) >= 0, got {q!r}") from None
    if np.any(np.isnan(qa)) or np.any(qa < 0.0):
        raise ValueError(f"q must be >= 0 (valid range [0, inf]), got {q!r}")
    code = _KIND_CODES[kind]
    if qa.ndim == 0:
        return expect_scalar(act, float(qa), code)
    flat = qa.ravel()
    return expect_array(act, flat, code).reshape(qa.shape)


# ----------------------------------------------------------------------------------
# Two-dimensional Gaussian expectations
# ----------------------------------------------------------------------------------

_GL_X, _GL_W = np.polynomial.legendre.leggauss(12)
_Z2_MAX = 13.0  # pdf(13) ~ 1e-37: negligible for integrands growing at most like x^2
_X_FEATURES_2D = np.array([0.0, 0.5, 1.0, 2.0, 3.0, 4.5, 6.0, 8.0, 11.0, 15.0, 20.0, 30.0, 45.0])
_Z_FEATURES_2D = np.array([0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.5, 10.0, 11.5])
_KINK_OFFSETS = np.array([0.25, 0.5, 1.0, 2.0, 4.0, 8.0])
_PERIODIC_MAX = 250  # periodic panel breaks per side (q up to ~6e3 resolved)
_CHUNK_POINTS = 1 << 20  # inner nodes evaluated at once (memory ~ 10 arrays of this)


def _gl_nodes(edges: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Gauss-Legendre nodes and weights on the panels ``edges[..., k:k+2]`` (last axis)."""
    left = edges[..., :-1, None]
    width = np.diff(edges, axis=-1)[..., None]
    nodes = left + 0.5 * (_GL_X + 1.0) * width
    weights = 0.5 * _GL_W * width
    return nodes.reshape(*edges.shape[:-1], -1), weights.reshape(*edges.shape[:-1], -1)


def _periodic_features(s: float) -> FloatArray:
    """Panel breaks every ``pi`` in x for sin and cos, out to ``9 sqrt(2)`` standard deviations.

    A 12-point Gauss-Legendre panel integrates ``cos(w t)`` over ``w h = 2 pi`` (one
    period of the products ``phi(u1) phi(u2)``, whose frequency is twice phi's) to about
    ``1e-19`` relative. The count is capped at :data:`_PERIODIC_MAX` per side (``q`` up
    to about ``6e3``); beyond, the panels thin out and the rule degrades.
    """
    n = min(int(9.0 * math.sqrt(2.0) * s / math.pi), _PERIODIC_MAX)
    k = math.pi * np.arange(1, n + 1, dtype=np.float64)
    return np.concatenate([k, -k])


def _bivariate_quadrature(act: Activation, q: float, c: float, which: str) -> float:
    """E over (u1, u2) ~ N(0, q [[1, c], [c, 1]]) by composite Gauss-Legendre.

    ``which``: "phi" -> E[phi(u1) phi(u2)], "dphi" -> E[phi'(u1) phi'(u2)],
    "gap" -> E[(phi(u1) - phi(u2))^2] / 2 (= E_q[phi^2] - E[phi(u1) phi(u2)]).
    For sin and cos the panels also break every ``pi`` (:func:`_periodic_features`).
    """
    s = math.sqrt(q)
    sa = s * math.sqrt(0.5 * (1.0 + c))
    sb = s * math.sqrt(0.5 * (1.0 - c))
    kinks = np.array((*act.kinks, 0.0))
    parts = [_X_FEATURES_2D, -_X_FEATURES_2D, kinks]
    if act.name in _PERIODIC:
        parts.append(_periodic_features(s))
    feats = np.unique(np.concatenate(parts))
    # outer variable z1 on [-Z, Z]
    pts = [np.array([-_Z2_MAX, 0.0, _Z2_MAX]), _Z_FEATURES_2D, -_Z_FEATURES_2D]
    if sa > 0.0:
        pts.append(feats / sa)
        pts.append((kinks[:, None] + np.concatenate([_KINK_OFFSETS, -_KINK_OFFSETS]) * sb) / sa)
    outer = np.unique(np.clip(np.concatenate([p.ravel() for p in pts]), -_Z2_MAX, _Z2_MAX))
    z1, w1 = _gl_nodes(outer)
    w1 = w1 * np.exp(-0.5 * z1 * z1) * _INV_SQRT_2PI
    # rows in chunks of about _CHUNK_POINTS inner nodes (the periodic panels are many)
    ncols = 14 + (2 * feats.size if sb > 0.0 else 0)
    step = max(1, _CHUNK_POINTS // (ncols * _GL_X.size))
    inner = np.concatenate(
        [_inner_rows(act, sa * z1[i : i + step], sb, feats, which) for i in range(0, z1.size, step)]
    )
    return float(np.dot(w1, inner))


def _inner_rows(
    act: Activation, v: FloatArray, sb: float, feats: FloatArray, which: str
) -> FloatArray:
    """Return the inner integrals over ``t = |z2|`` for the outer rows ``v = sa z1``."""
    v = v[:, None]
    # inner variable t = |z2| on [0, Z], panels breaking where v +- sb t crosses a feature
    cols = [np.broadcast_to(np.concatenate([[0.0, _Z2_MAX], _Z_FEATURES_2D]), (v.shape[0], 14))]
    if sb > 0.0:
        cols += [(feats[None, :] - v) / sb, (v - feats[None, :]) / sb]
    edges = np.sort(np.clip(np.concatenate(cols, axis=1), 0.0, _Z2_MAX), axis=1)
    widths = np.diff(edges, axis=1)
    # move empty panels to the end of each row and drop columns empty in every row
    order = np.argsort(widths == 0.0, axis=1, kind="stable")
    left = np.take_along_axis(edges[:, :-1], order, axis=1)
    widths = np.take_along_axis(widths, order, axis=1)
    keep = int((widths > 0.0).sum(axis=1).max())
    left, widths = left[:, :keep], widths[:, :keep]
    t = (left[..., None] + 0.5 * (_GL_X + 1.0) * widths[..., None]).reshape(v.shape[0], -1)
    wt = (0.5 * _GL_W * widths[..., None]).reshape(v.shape[0], -1)
    wt = 2.0 * wt * np.exp(-0.5 * t * t) * _INV_SQRT_2PI  # 2: both signs of z2
    u1 = v + sb * t
    u2 = v - sb * t
    if which == "phi":
        g = np.asarray(act.phi(u1)) * np.asarray(act.phi(u2))
    elif which == "dphi":
        g = np.asarray(act.dphi(u1)) * np.asarray(act.dphi(u2))
    else:
        d = np.asarray(act.phi(u1)) - np.asarray(act.phi(u2))
        g = 0.5 * d * d
    return np.einsum("ij,ij->i", g, wt)


def _sin_minus_theta_cos(theta: float) -> float:
    """``sin(theta) - theta cos(theta)`` for ``0 <= theta <= pi``, accurate as theta -> 0.

    The direct form cancels (both terms are ``theta - O(theta^3)``); below 1 the
    series ``sum_k (-1)^(k+1) 2k theta^(2k+1) / (2k+1)!`` (terms decreasing) is used.
    """
    if theta > 1.0:
        return math.sin(theta) - theta * math.cos(theta)
    t2 = theta * theta
    term = theta  # theta^(2k+1) / (2k+1)!, k = 0
    acc = 0.0
    for k in range(1, 12):  # the first term left out, k = 12, is < 1e-25 of the sum
        term *= -t2 / ((2 * k) * (2 * k + 1))
        acc -= 2 * k * term
    return acc


def _arccos_kernels(c: float) -> tuple[float, float, float, float]:
    """Relu kernels at unit variance (Cho and Saul 2009), and their gaps to c = 1.

    Returns ``(k1, k0, g1, g0)``: ``k1 = E[relu(u) relu(v)]``,
    ``k0 = E[relu'(u) relu'(v)]`` for unit-variance ``u, v`` with correlation
    ``c``, and ``g1 = 1/2 - k1``, ``g0 = 1/2 - k0`` computed without cancellation.
    ``sqrt(1 - c^2)`` is formed as ``sqrt((1 - c) (1 + c))`` and ``theta =
    arccos(c)`` as ``atan2`` of it, both accurate to a few ulp for every ``c``
    (``1 - c*c`` loses ``eps / (1 - c)`` relative); the gap
    ``g1 = (pi (1 - c) - (sin theta - theta cos theta)) / (2 pi)`` has no
    cancellation as ``c -> 1`` (the first term dominates), where ``1/2 - k1``
    would lose ``eps / (1 - c)`` relative.
    """
    s = math.sqrt((1.0 - c) * (1.0 + c))
    theta = math.atan2(s, c)
    k1 = (s + (math.pi - theta) * c) / (2.0 * math.pi)
    k0 = (math.pi - theta) / (2.0 * math.pi)
    g1 = (math.pi * (1.0 - c) - _sin_minus_theta_cos(theta)) / (2.0 * math.pi)
    g0 = theta / (2.0 * math.pi)
    return k1, k0, g1, g0


def _abs_kernels(c: float) -> tuple[float, float, float]:
    """Unit-variance abs kernels: ``E[|u| |v|]``, ``E[sign u sign v]`` and the gap.

    ``|x| = relu(x) + relu(-x)`` gives ``E[|u| |v|] = 2 (k1(c) + k1(-c)) =
    (2 / pi) (sqrt(1 - c^2) + c arcsin c)`` and ``E[sign u sign v] =
    2 (k0(c) - k0(-c)) = (2 / pi) arcsin c``. The gap ``1 - E[|u| |v|]`` is
    even in ``c`` and equals ``(1 - |c|) - (2 / pi) (sin theta - theta cos theta)``
    with ``theta = arccos |c|``, free of cancellation as ``|c| -> 1``.
    """
    a = abs(c)
    s = math.sqrt((1.0 - a) * (1.0 + a))
    theta = math.atan2(s, a)
    phi_k = (2.0 / math.pi) * (s + a * (0.5 * math.pi - theta))
    dphi_k = math.copysign((2.0 / math.pi) * (0.5 * math.pi - theta), c)
    gap = (1.0 - a) - (2.0 / math.pi) * _sin_minus_theta_cos(theta)
    return phi_k, dphi_k, gap


def _sin_kernel(q: float, c: float) -> float:
    """``E[sin u sin v] = e^(-q) sinh(q c) = (e^(-q (1 - c)) - e^(-q (1 + c))) / 2``.

    Written as ``-sign(c) e^(-q (1 - |c|)) expm1(-2 q |c|) / 2``: no overflow, no
    cancellation as ``q c -> 0``.
    """
    a = abs(c)
    return math.copysign(-0.5 * math.exp(-q * (1.0 - a)) * math.expm1(-2.0 * q * a), c)


def _cos_kernel(q: float, c: float) -> float:
    """``E[cos u cos v] = e^(-q) cosh(q c) = (e^(-q (1 - c)) + e^(-q (1 + c))) / 2``."""
    return 0.5 * (math.exp(-q * (1.0 - c)) + math.exp(-q * (1.0 + c)))


#: Activations whose correlation map is taken from the kernel itself: their closed
#: ``E[phi(u_1) phi(u_2)]`` is accurate as ``c -> 1`` (erf's gap is no better).
_KERNEL_FORM = ("linear", "relu", "leaky_relu", "erf")


def through_gap(act: Activation, c: float) -> bool:
    """Whether a C-map at ``c`` is evaluated as ``1 - c' = E[gap] / q`` (keeps ``1 - c`` accurate).

    True for ``c >= 0`` unless the activation's closed kernel is as accurate
    (linear, relu, leaky_relu, erf); the one rule of :func:`initsim.theory.c_map`,
    the chaotic ``c*`` search and the residual C-map.
    """
    return c >= 0.0 and act.name not in _KERNEL_FORM


def bivariate(act: Activation, q: float, c: float, which: str) -> float:
    """Return a bivariate expectation over ``(u1, u2) ~ N(0, q [[1, c], [c, 1]])``.

    Closed kernels for linear, relu, leaky_relu, abs (arc-cosine kernels),
    erf (arcsine kernel), square (Isserlis) and sin, cos (``E[sin u sin v] =
    e^(-q) sinh(q c)``, ``E[cos u cos v] = e^(-q) cosh(q c)``), the
    one-dimensional expectations at ``c = 1`` and ``c = 0``, else
    :func:`_bivariate_quadrature`. The closed gaps (all but erf's) are
    written without cancellation: relative accuracy about ``1e-15`` as
    ``c -> 1``.

    Parameters
    ----------
    act : Activation
        The activation.
    q : float
        The common variance ``> 0``.
    c : float
        The correlation (clipped to ``[-1, 1]``).
    which : {"phi", "dphi", "gap"}
        ``E[phi(u1) phi(u2)]``, ``E[phi'(u1) phi'(u2)]`` or the gap
        ``E[(phi(u1) - phi(u2))^2] / 2``.

    Returns
    -------
    float
        The expectation.
    """
    c = min(1.0, max(-1.0, c))
    parts = reduce_shaped(act)
    if parts is not None:
        base, a_in, a, b = parts
        qb = a_in * a_in * q
        if which == "gap":
            return a * a * bivariate(base, qb, c, "gap")
        if which == "dphi":
            return (a * a_in) ** 2 * bivariate(base, qb, c, "dphi")
        mean = expect_scalar(base, qb, PHI) if b != 0.0 else 0.0
        return a * a * (bivariate(base, qb, c, "phi") + 2.0 * b * mean + b * b)
    name = act.name
    closed: float | None = None
    if name in ("linear", "relu", "leaky_relu"):
        a = {"linear": 1.0, "relu": 0.0}.get(name, act.param)
        k1, k0, g1, _ = _arccos_kernels(c)
        # leaky(x) = a x + (1 - a) relu(x), E[u1 relu(u2)] = q c / 2
        if which == "dphi":
            closed = a + (1.0 - a) ** 2 * k0
        elif which == "phi":
            closed = a * q * c + (1.0 - a) ** 2 * q * k1
        else:  # (1 + a^2) q / 2 - phi_k, written through the gaps 1 - c and g1
            closed = q * (a * (1.0 - c) + (1.0 - a) ** 2 * g1)
    elif name == "abs":
        phi_k, dphi_k, gap = _abs_kernels(c)
        closed = {"phi": q * phi_k, "dphi": dphi_k, "gap": q * gap}[which]
    elif name == "square":
        # Isserlis: E[u^2 v^2] = q^2 (1 + 2 c^2); gap 3 q^2 - that = 2 q^2 (1 - c) (1 + c)
        closed = {
            "phi": q * q * (1.0 + 2.0 * c * c),
            "dphi": 4.0 * q * c,
            "gap": 2.0 * q * q * (1.0 - c) * (1.0 + c),
        }[which]
    elif name in _PERIODIC:
        # E[sin^2] - E[sin u sin v] = (1 - e^(-q (1 - c))) (1 + e^(-q (1 + c))) / 2,
        # E[cos^2] - E[cos u cos v] = (1 - e^(-q (1 - c))) (1 - e^(-q (1 + c))) / 2
        sin_k, cos_k = _sin_kernel(q, c), _cos_kernel(q, c)
        m = -math.expm1(-q * (1.0 - c))
        if name == "sin":
            gap = 0.5 * m * (1.0 + math.exp(-q * (1.0 + c)))
            closed = {"phi": sin_k, "dphi": cos_k, "gap": gap}[which]
        else:
            gap = -0.5 * m * math.expm1(-q * (1.0 + c))
            closed = {"phi": cos_k, "dphi": sin_k, "gap": gap}[which]
    elif name == "erf":
        phi_k = (2.0 / math.pi) * math.asin(2.0 * q * c / (1.0 + 2.0 * q))
        if which == "dphi":
            closed = (4.0 / math.pi) / math.sqrt((1.0 + 2.0 * q) ** 2 - (2.0 * q * c) ** 2)
        elif which == "phi":
            closed = phi_k
        else:
            closed = expect_scalar(act, q, PHI2) - phi_k
    if closed is not None:
        return closed
    if c == 1.0:
        return {
            "phi": expect_scalar(act, q, PHI2),
            "dphi": expect_scalar(act, q, DPHI2),
            "gap": 0.0,
        }[which]
    if c == 0.0 and which != "gap":
        m = expect_scalar(act, q, PHI if which == "phi" else DPHI)
        return m * m
    return _bivariate_quadrature(act, q, c, which)
