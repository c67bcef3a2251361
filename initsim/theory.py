"""Mean-field theory of signal and gradient propagation, and exact finite-width ReLU laws.

Conventions (as everywhere in initsim): a layer computes ``h = W x + b`` and
``x_next = phi(h)`` with ``sigma_w2 = n_in Var(W_ij)`` and ``sigma_b2 =
Var(b_i)``; ``q^l`` is the mean over units of ``h^2`` at hidden layer ``l``
and ``q^0 = ||x^0||^2 / n_0`` is the input's second moment. ``z`` is a
standard normal variable and ``E_q[f] = E[f(sqrt(q) z)]``.

Mean field (infinite width; Poole et al. 2016, Schoenholz et al. 2017)
------------------------------------------------------------------------
* length map: ``q^1 = sigma_w2 q^0 + sigma_b2`` and
  ``q^l = F(q^{l-1}) = sigma_w2 E_{q^{l-1}}[phi^2] + sigma_b2``
  (:func:`q_map`);
* correlation map of two inputs of equal norm:
  ``c^l = (sigma_w2 E[phi(u_1) phi(u_2)] + sigma_b2) / q^l`` with
  ``(u_1, u_2)`` centred bivariate normal of variance ``q^{l-1}`` and
  correlation ``c^{l-1}`` (:func:`c_map`);
* fixed point ``q*`` (:func:`fixed_point`), ``chi_1 = sigma_w2 E_{q*}[phi'^2]``
  (:func:`chi1`), the order-to-chaos line ``chi_1 = 1``
  (:func:`critical_sigma_w2`, :func:`phase`) and the depth scales
  ``xi_q = -1 / ln F'(q*)``, ``xi_c = -1 / ln chi_c`` (:func:`depth_scales`);
* mean squared back-propagated gradient (:func:`gradient_factor`,
  :func:`grad_sq_map`), under the gradient-independence assumption.

Finite width (ReLU, Gaussian He weights, no bias; Hanin and Rolnick 2018)
-------------------------------------------------------------------------
Given the previous layer, one ReLU layer of width ``n`` multiplies
``||x||^2 / n`` by ``R = (2 / n) chi^2_K`` with ``K ~ Binomial(n, 1/2)``
the number of active units, independently across layers. Hence
:func:`relu_length_moments`, :func:`relu_dead_probability`,
:func:`relu_length_ratio_law` and :func:`relu_log_length_moments`.

Numerical methods and accuracy
------------------------------
* One-dimensional expectations (:func:`gaussian_expectation`) use closed
  forms where they exist (linear, relu, leaky_relu, hard_tanh; erf's
  ``phi2`` and ``dphi2``; gelu's and the odd or centred activations' ``phi``)
  and otherwise adaptive Gauss-Kronrod quadrature (QUADPACK's ``qagp``
  through :func:`scipy.integrate.quad`) of the even part
  ``(f(sqrt(q) z) + f(-sqrt(q) z)) pdf(z)`` over ``0 <= z <= 40``, with
  break points at the kinks of ``phi`` and at the scales where ``phi`` and
  the Gaussian change (so saturating activations at large ``q`` are
  resolved); the integrand is a compiled Numba ``cfunc``. Agreement with
  30-digit :mod:`mpmath` quadrature is about ``1e-15`` relative (tests
  check ``1e-10``) for every registry activation and kind on
  ``1e-4 <= q <= 1e3``; where ``E[phi]`` vanishes by cancellation (selu at
  ``q = 1``, by design) the error is about ``1e-16 sqrt(E[phi^2])``.
  Fixed-order Gauss-Hermite rules are *not* used: they fail for saturating
  activations at large ``q``.
* Two-dimensional expectations (:func:`c_map`, the chaotic-phase
  ``chi_c``) use closed forms for linear, relu and leaky_relu (arc-cosine
  kernels of Cho and Saul 2009) and erf (arcsine kernel of Williams 1997);
  otherwise a composite Gauss-Legendre rule in the rotated coordinates
  ``u_{1,2} = sqrt(q) (a z_1 +- b z_2)``, ``a = sqrt((1 + c) / 2)``,
  ``b = sqrt((1 - c) / 2)``, whose panels break at the kinks and at the
  scales of ``phi`` and of the Gaussian, for the outer variable and
  (row by row) for the inner one. For ``c >= 0`` the map is evaluated as
  ``1 - c^l = sigma_w2 E[(phi(u_1) - phi(u_2))^2] / (2 q^l)``, which keeps
  ``1 - c`` accurate to about ``1e-12`` relative as ``c -> 1``. Checked
  against the closed forms (run through the generic rule), against the
  one-dimensional quadrature at ``c = 0, +-1`` and against nested
  :mod:`mpmath` quadrature: absolute error below ``1e-11`` in ``c``.

References
----------
B. Poole, S. Lahiri, M. Raghu, J. Sohl-Dickstein and S. Ganguli, Exponential
expressivity in deep neural networks through transient chaos, NeurIPS 2016.

S. S. Schoenholz, J. Gilmer, S. Ganguli and J. Sohl-Dickstein, Deep
information propagation, ICLR 2017.

Y. Cho and L. K. Saul, Kernel methods for deep learning, NeurIPS 2009.

C. K. I. Williams, Computing with infinite networks, NeurIPS 1997.

B. Hanin and D. Rolnick, How to start training: the effect of initialization
and architecture, NeurIPS 2018.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import integrate, optimize, special

from initsim import activations
from initsim.activations import Activation, dphi_scalar, phi_scalar
from initsim.seeding import SeedLike, as_generator

__all__ = [
    "KINDS",
    "PHASE_TOL",
    "ReluLengthRatioLaw",
    "c_map",
    "chi1",
    "correlation_fixed_point",
    "critical_sigma_w2",
    "depth_scales",
    "fixed_point",
    "gaussian_expectation",
    "grad_sq_map",
    "gradient_factor",
    "linear_length_moments",
    "phase",
    "q_map",
    "relu_dead_probability",
    "relu_length_moments",
    "relu_length_ratio_law",
    "relu_log_length_moments",
]

FloatArray = npt.NDArray[np.float64]

#: The expectations :func:`gaussian_expectation` computes.
KINDS: tuple[str, ...] = ("phi", "phi2", "phi4", "dphi2")

# integrand codes of the compiled integrand (the last two are internal)
_PHI, _PHI2, _PHI4, _DPHI2, _DQ_PHI2, _DPHI = 0, 1, 2, 3, 4, 5
_KIND_CODES = {"phi": _PHI, "phi2": _PHI2, "phi4": _PHI4, "dphi2": _DPHI2}

_INV_SQRT_2PI = 0.39894228040143267793994825337358
#: |chi_1 - 1| at or below this counts as critical in :func:`phase`.
PHASE_TOL = 1e-8
# Largest q the fixed-point search explores before reporting q* = inf.
_Q_MAX = 1e100
# Homogeneous activations: |sigma_w2 E_1[phi^2] - 1| below this is exactly marginal.
_MARGINAL_TOL = 1e-12
# 1 - c for the scan of the chaotic correlation map (after 1e-9 .. 1e-2)
_C_GRID = np.array([0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0])


# ----------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------


def _act(activation: str | Activation) -> Activation:
    return activations.get(activation)


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None


def _check_sigma_w2(value: Any, length: int | None = None) -> FloatArray | float:
    """Check sigma_w2: finite and > 0, a scalar or (with ``length``) one per layer."""
    if np.ndim(value) == 0:
        v = _real("sigma_w2", value)
        if not (math.isfinite(v) and v > 0.0):
            raise ValueError(f"sigma_w2 must be finite and > 0 (valid range (0, inf)), got {v!r}")
        return v
    if length is None:
        raise ValueError(f"sigma_w2 must be a scalar here, got an array of shape {np.shape(value)}")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"sigma_w2 must be real numbers, got {value!r}") from None
    if arr.ndim != 1 or arr.shape[0] != length:
        raise ValueError(
            f"sigma_w2 must be a scalar or one value per layer (length {length}), "
            f"got shape {arr.shape}"
        )
    if not (np.all(np.isfinite(arr)) and np.all(arr > 0.0)):
        raise ValueError(
            f"sigma_w2 must be finite and > 0 (valid range (0, inf)) in every layer, got {value!r}"
        )
    return arr


def _check_sigma_b2(value: Any) -> float:
    v = _real("sigma_b2", value)
    if not (math.isfinite(v) and v >= 0.0):
        raise ValueError(f"sigma_b2 must be finite and >= 0 (valid range [0, inf)), got {v!r}")
    return v


def _check_q0(value: Any) -> float:
    v = _real("q0", value)
    if not (math.isfinite(v) and v > 0.0):
        raise ValueError(f"q0 must be finite and > 0 (valid range (0, inf)), got {v!r}")
    return v


def _check_c0(value: Any) -> float:
    v = _real("c0", value)
    if not (-1.0 <= v <= 1.0):
        raise ValueError(f"c0 must be a correlation in [-1, 1], got {v!r}")
    return v


def _check_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_widths(widths: Any) -> list[int]:
    """``[n_0, n_1, ..., n_L]``: at least two positive integers."""
    if isinstance(widths, str | bytes) or np.ndim(widths) != 1:
        raise ValueError(
            f"widths must be a sequence [n_0, n_1, ..., n_L] of integers >= 1, got {widths!r}"
        )
    out = []
    for w in widths:
        if isinstance(w, bool | np.bool_) or not isinstance(w, numbers.Integral) or w < 1:
            raise ValueError(
                f"widths must be a sequence [n_0, n_1, ..., n_L] of integers >= 1, got {widths!r}"
            )
        out.append(int(w))
    if len(out) < 2:
        raise ValueError(
            f"widths must list the input width and at least one hidden width "
            f"([n_0, n_1, ..., n_L], length >= 2), got {widths!r}"
        )
    return out


# ----------------------------------------------------------------------------------
# One-dimensional Gaussian expectations
# ----------------------------------------------------------------------------------


def _integrand_py(n: int, xx: Any) -> float:  # pragma: no cover - compiled by _integrand
    """Quadrature integrand ``f(z; code, param, s, kind)`` (``xx = [z, code, param, s, kind]``).

    The even part ``g(s z) + g(-s z)`` of the kind's function ``g`` times the
    standard normal density; ``kind`` 4 is ``phi(x) phi'(x) z / s`` (so that
    its expectation is ``d E_q[phi^2] / dq``) and kind 5 is ``phi'``.
    """
    z = xx[0]
    code = int(xx[1])
    param = xx[2]
    s = xx[3]
    kind = int(xx[4])
    w = math.exp(-0.5 * z * z) * _INV_SQRT_2PI
    if w == 0.0:
        return 0.0
    acc = 0.0
    for sign in (1.0, -1.0):
        x = sign * s * z
        if kind == 0:
            v = phi_scalar(code, param, x)
        elif kind == 1:
            p = phi_scalar(code, param, x)
            v = p * p
        elif kind == 2:
            p = phi_scalar(code, param, x)
            v = p * p
            v = v * v
        elif kind == 3:
            d = dphi_scalar(code, param, x)
            v = d * d
        elif kind == 4:
            v = phi_scalar(code, param, x) * dphi_scalar(code, param, x) * (sign * z) / s
        else:
            v = dphi_scalar(code, param, x)
        acc += v
    return acc * w


@functools.cache
def _integrand() -> Any:
    """Compile :func:`_integrand_py` once (cached on disk) as a C callback."""
    import numba
    from numba import types

    sig = types.float64(types.intc, types.CPointer(types.float64))
    return numba.cfunc(sig, cache=True, error_model="numpy")(_integrand_py)


@functools.cache
def _low_level_callable() -> Any:
    from scipy import LowLevelCallable

    return LowLevelCallable(_integrand().ctypes)


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
        _low_level_callable(),
        0.0,
        _Z_MAX,
        args=(float(act.code), float(act.param), s, float(code)),
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
    if code == _PHI:
        return p0
    if code == _PHI2:
        return p0 * p0
    if code == _PHI4:
        return p0**4
    if code == _DPHI2:
        return _one_sided_dphi2_at_zero(act)
    if code == _DPHI:
        d = act.dphi(np.array([1e-300, -1e-300]))
        return float(0.5 * (d[0] + d[1]))
    # _DQ_PHI2: E[phi'^2 + phi phi''] at 0 (heat equation); phi'' only matters if phi(0) != 0
    val = _one_sided_dphi2_at_zero(act)
    if p0 != 0.0:
        h = 1e-5
        d = act.dphi(np.array([h, -h]))
        val += p0 * float(d[0] - d[1]) / (2.0 * h)
    return val


def _limit_inf(act: Activation, code: int) -> float:
    """Return the q -> inf limit of E_q[g] (finite when g has limits at +-inf)."""
    if code in (_DPHI2, _DPHI):
        d = act.dphi(np.array([np.inf, -np.inf]))
        g = d * d if code == _DPHI2 else d
        return float(0.5 * (g[0] + g[1]))
    if act.bounded:
        p = act.phi(np.array([np.inf, -np.inf]))
        g = {_PHI: p, _PHI2: p * p, _PHI4: p**4}.get(code)
        if g is None:  # _DQ_PHI2 of a bounded activation decays like q^(-1/2)
            return 0.0
        return float(0.5 * (g[0] + g[1]))
    if code == _PHI:
        big = act.phi(np.array([1e300, -1e300]))
        v = float(big[0] + big[1])
        return 0.0 if v == 0.0 else math.copysign(math.inf, v)
    if code == _DQ_PHI2:
        return _limit_inf(act, _DPHI2) if act.positively_homogeneous else math.nan
    return math.inf


def _closed_form(act: Activation, q: FloatArray, code: int) -> FloatArray | None:
    """Return the closed form on finite q > 0, or None where there is none."""
    name = act.name
    if code == _PHI and (act.odd or name in ("tanh", "erf", "hard_tanh")):
        return np.zeros_like(q)
    if name == "linear":
        return {
            _PHI: np.zeros_like(q),
            _PHI2: q.copy(),
            _PHI4: 3.0 * q * q,
            _DPHI2: np.ones_like(q),
            _DQ_PHI2: np.ones_like(q),
            _DPHI: np.ones_like(q),
        }[code]
    if name in ("relu", "leaky_relu"):
        a = act.param if name == "leaky_relu" else 0.0
        return {
            _PHI: (1.0 - a) * np.sqrt(q / (2.0 * math.pi)),
            _PHI2: 0.5 * (1.0 + a * a) * q,
            _PHI4: 1.5 * (1.0 + a**4) * q * q,
            _DPHI2: np.full_like(q, 0.5 * (1.0 + a * a)),
            _DQ_PHI2: np.full_like(q, 0.5 * (1.0 + a * a)),
            _DPHI: np.full_like(q, 0.5 * (1.0 + a)),
        }[code]
    if name == "hard_tanh":
        # E[z^(2k); |z| < t] = (2k-1)!! P(chi^2_{2k+1} <= t^2), t = 1 / sqrt(q): no cancellation.
        x = 0.5 / q  # t^2 / 2
        tail = special.erfc(np.sqrt(x))  # P(|z| > t)
        inside = special.erf(np.sqrt(x))  # P(|z| < t)
        return {
            _PHI2: q * special.gammainc(1.5, x) + tail,
            _PHI4: 3.0 * q * q * special.gammainc(2.5, x) + tail,
            _DPHI2: inside,
            _DQ_PHI2: special.gammainc(1.5, x),
            _DPHI: inside,
        }[code]
    if name == "erf":
        if code == _PHI2:
            # (2/pi) arcsin(2q / (1 + 2q)), written as an arctan (well conditioned as q -> inf)
            return (2.0 / math.pi) * np.arctan(2.0 * q / np.sqrt(1.0 + 4.0 * q))
        if code == _DPHI2:
            return (4.0 / math.pi) / np.sqrt(1.0 + 4.0 * q)
        if code == _DPHI:
            return (2.0 / math.sqrt(math.pi)) / np.sqrt(1.0 + 2.0 * q)
        return None
    if name == "sigmoid" and code == _PHI:
        return np.full_like(q, 0.5)  # sigmoid - 1/2 is odd
    if name == "gelu" and code == _PHI:
        return q / np.sqrt(2.0 * math.pi * (1.0 + q))  # Stein: E[x Phi(x)] = q E[pdf(x)]
    return None


def _expect(act: Activation, q: FloatArray, code: int) -> FloatArray:
    """E_q[g] for an array of q >= 0 (inf allowed: the limit)."""
    out = np.empty_like(q)
    with np.errstate(over="ignore"):  # huge q: unbounded moments overflow to inf, as they should
        return _expect_into(act, q, code, out)


def _expect_into(act: Activation, q: FloatArray, code: int, out: FloatArray) -> FloatArray:
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
def _e(act: Activation, q: float, code: int) -> float:
    """Scalar E_q[g], cached (fixed-point searches revisit the same q)."""
    return float(_expect(act, np.array([float(q)]), code)[0])


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
    (``phi = q / sqrt(2 pi (1 + q))``); ``phi`` of odd activations is 0 and
    of sigmoid 1/2. Everything else is adaptive quadrature (see the module
    notes): about ``1e-12`` relative accuracy on ``1e-4 <= q <= 1e3``.

    Examples
    --------
    >>> gaussian_expectation("relu", 2.0, "phi2")
    1.0
    >>> round(gaussian_expectation("tanh", 1.0, "dphi2"), 6)
    0.464403
    """
    act = _act(activation)
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
        return _e(act, float(qa), code)
    flat = qa.ravel()
    return _expect(act, flat, code).reshape(qa.shape)


# ----------------------------------------------------------------------------------
# Two-dimensional Gaussian expectations
# ----------------------------------------------------------------------------------

_GL_X, _GL_W = np.polynomial.legendre.leggauss(12)
_Z2_MAX = 13.0  # pdf(13) ~ 1e-37: negligible for integrands growing at most like x^2
_X_FEATURES_2D = np.array([0.0, 0.5, 1.0, 2.0, 3.0, 4.5, 6.0, 8.0, 11.0, 15.0, 20.0, 30.0, 45.0])
_Z_FEATURES_2D = np.array([0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.5, 10.0, 11.5])
_KINK_OFFSETS = np.array([0.25, 0.5, 1.0, 2.0, 4.0, 8.0])


def _gl_nodes(edges: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Gauss-Legendre nodes and weights on the panels ``edges[..., k:k+2]`` (last axis)."""
    left = edges[..., :-1, None]
    width = np.diff(edges, axis=-1)[..., None]
    nodes = left + 0.5 * (_GL_X + 1.0) * width
    weights = 0.5 * _GL_W * width
    return nodes.reshape(*edges.shape[:-1], -1), weights.reshape(*edges.shape[:-1], -1)


def _bivariate_quadrature(act: Activation, q: float, c: float, which: str) -> float:
    """E over (u1, u2) ~ N(0, q [[1, c], [c, 1]]) by composite Gauss-Legendre.

    ``which``: "phi" -> E[phi(u1) phi(u2)], "dphi" -> E[phi'(u1) phi'(u2)],
    "gap" -> E[(phi(u1) - phi(u2))^2] / 2 (= E_q[phi^2] - E[phi(u1) phi(u2)]).
    """
    s = math.sqrt(q)
    sa = s * math.sqrt(0.5 * (1.0 + c))
    sb = s * math.sqrt(0.5 * (1.0 - c))
    kinks = np.array((*act.kinks, 0.0))
    feats = np.unique(np.concatenate([_X_FEATURES_2D, -_X_FEATURES_2D, kinks]))
    # outer variable z1 on [-Z, Z]
    pts = [np.array([-_Z2_MAX, 0.0, _Z2_MAX]), _Z_FEATURES_2D, -_Z_FEATURES_2D]
    if sa > 0.0:
        pts.append(feats / sa)
        pts.append((kinks[:, None] + np.concatenate([_KINK_OFFSETS, -_KINK_OFFSETS]) * sb) / sa)
    outer = np.unique(np.clip(np.concatenate([p.ravel() for p in pts]), -_Z2_MAX, _Z2_MAX))
    z1, w1 = _gl_nodes(outer)
    w1 = w1 * np.exp(-0.5 * z1 * z1) * _INV_SQRT_2PI
    v = sa * z1[:, None]
    # inner variable t = |z2| on [0, Z], panels breaking where v +- sb t crosses a feature
    cols = [np.broadcast_to(np.concatenate([[0.0, _Z2_MAX], _Z_FEATURES_2D]), (z1.size, 14))]
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
    t = (left[..., None] + 0.5 * (_GL_X + 1.0) * widths[..., None]).reshape(z1.size, -1)
    wt = (0.5 * _GL_W * widths[..., None]).reshape(z1.size, -1)
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
    inner = np.einsum("ij,ij->i", g, wt)
    return float(np.dot(w1, inner))


def _arccos_kernels(c: float) -> tuple[float, float]:
    """Relu kernels at unit variance: E[relu relu] and E[relu' relu'] (Cho and Saul 2009)."""
    theta = math.acos(c)
    k1 = (math.sqrt(max(0.0, 1.0 - c * c)) + (math.pi - theta) * c) / (2.0 * math.pi)
    k0 = (math.pi - theta) / (2.0 * math.pi)
    return k1, k0


def _bivariate(act: Activation, q: float, c: float, which: str) -> float:
    """E[phi(u1) phi(u2)] ("phi"), E[phi' phi'] ("dphi") or the gap (see above)."""
    c = min(1.0, max(-1.0, c))
    name = act.name
    closed: float | None = None
    if name in ("linear", "relu", "leaky_relu"):
        a = {"linear": 1.0, "relu": 0.0}.get(name, act.param)
        k1, k0 = _arccos_kernels(c)
        # leaky(x) = a x + (1 - a) relu(x), E[u1 relu(u2)] = q c / 2
        phi_k = a * q * c + (1.0 - a) ** 2 * q * k1
        if which == "dphi":
            closed = a + (1.0 - a) ** 2 * k0
        elif which == "phi":
            closed = phi_k
        else:
            closed = 0.5 * (1.0 + a * a) * q - phi_k
    elif name == "erf":
        phi_k = (2.0 / math.pi) * math.asin(2.0 * q * c / (1.0 + 2.0 * q))
        if which == "dphi":
            closed = (4.0 / math.pi) / math.sqrt((1.0 + 2.0 * q) ** 2 - (2.0 * q * c) ** 2)
        elif which == "phi":
            closed = phi_k
        else:
            closed = _e(act, q, _PHI2) - phi_k
    if closed is not None:
        return closed
    if c == 1.0:
        return {"phi": _e(act, q, _PHI2), "dphi": _e(act, q, _DPHI2), "gap": 0.0}[which]
    if c == 0.0 and which != "gap":
        m = _e(act, q, _PHI if which == "phi" else _DPHI)
        return m * m
    return _bivariate_quadrature(act, q, c, which)


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
            q[t] = np.nan if np.isnan(prev) else sw[t] * _e(act, prev, _PHI2) + sigma_b2
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
    act = _act(activation)
    depth = _check_int("depth", depth)
    sw = np.broadcast_to(_check_sigma_w2(sigma_w2, depth), (depth,)).astype(np.float64)
    return _q_sequence(act, sw, _check_sigma_b2(sigma_b2), _check_q0(q0))


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
    two-dimensional composite Gauss-Legendre rule (module notes), evaluated
    for ``c >= 0`` as ``1 - c^l = sigma_w2 E[(phi(u_1) - phi(u_2))^2] /
    (2 q^l)`` so that ``1 - c^l`` stays accurate as ``c^l -> 1``; absolute
    accuracy about ``1e-11`` in ``c``. Each layer costs about 10-50 ms
    with the generic rule.

    Examples
    --------
    >>> float(c_map("relu", 2.0, 0.0, 0.0, 2)[1])  # 1 / pi
    0.3183098861837907
    """
    act = _act(activation)
    depth = _check_int("depth", depth)
    sw = np.broadcast_to(_check_sigma_w2(sigma_w2, depth), (depth,)).astype(np.float64)
    sb = _check_sigma_b2(sigma_b2)
    c0 = _check_c0(c0)
    q0 = _check_q0(q0)
    q = _q_sequence(act, sw, sb, q0)
    c = np.empty(depth)
    c[0] = min(1.0, max(-1.0, (sw[0] * q0 * c0 + sb) / q[0]))
    closed = act.name in ("linear", "relu", "leaky_relu", "erf")
    for t in range(1, depth):
        qp, cp = q[t - 1], c[t - 1]
        if not (math.isfinite(qp) and qp > 0.0 and math.isfinite(q[t])) or math.isnan(cp):
            c[t] = math.nan
            continue
        if cp >= 0.0 and not closed:
            val = 1.0 - sw[t] * _bivariate(act, qp, cp, "gap") / q[t]
        else:
            val = (sw[t] * _bivariate(act, qp, cp, "phi") + sb) / q[t]
        c[t] = min(1.0, max(-1.0, val))
    return c


# ----------------------------------------------------------------------------------
# Fixed points, chi_1, phases, depth scales
# ----------------------------------------------------------------------------------


def _homogeneous_gain(act: Activation) -> float:
    """E_1[phi^2] for a positively homogeneous activation (F(q) = sigma_w2 k q + sigma_b2)."""
    return _e(act, 1.0, _PHI2)


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
        return sw * _e(act, q, _PHI2) + sb - q

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
    f0 = sw * _e(act, 0.0, _PHI2) + sb  # F(0)
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
    slope = sw * _e(act, 0.0, _DPHI2)
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
    act = _act(activation)
    sw = float(_check_sigma_w2(sigma_w2))
    sb = _check_sigma_b2(sigma_b2)
    return _fixed_point_cached(act, sw, sb)


def _chi1(act: Activation, sw: float, sb: float) -> float:
    qs = _fixed_point_cached(act, sw, sb)
    return sw * _e(act, qs, _DPHI2)


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
    act = _act(activation)
    return _chi1(act, float(_check_sigma_w2(sigma_w2)), _check_sigma_b2(sigma_b2))


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
    ``1e-8`` only.
    """
    act = _act(activation)
    sb = _check_sigma_b2(sigma_b2)
    if act.positively_homogeneous:
        return 1.0 / _e(act, 1.0, _DPHI2)

    def f(sw: float) -> float:
        return _chi1(act, sw, sb) - 1.0

    # grid 2^k / 16, plus the point where q* = 0 stops being stable (sigma_b2 = 0,
    # phi(0) = 0: chi_1 = sigma_w2 E_0[phi'^2] there, exactly 1 at its right end)
    grid = [2.0**k / 16.0 for k in range(45)]
    if sb == 0.0 and float(act.phi(0.0)) == 0.0:
        grid = sorted([*grid, 1.0 / _e(act, 0.0, _DPHI2)])
    lo = hi = math.nan
    f_lo = f(1e-9)
    if f_lo >= 0.0:
        raise ValueError(f"{act.label}: chi_1 >= 1 already at sigma_w2 = 1e-9")
    lo = 1e-9
    for sw in grid:
        f_sw = f(sw)
        if abs(f_sw) <= 1e-13:
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
    tol = _real("tol", tol)
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
            if c >= 0.0 and act.name not in ("linear", "relu", "leaky_relu", "erf"):
                return (1.0 - c) - sw * _bivariate(act, qs, c, "gap") / qs
            return (sw * _bivariate(act, qs, c, "phi") + sb) / qs - c

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
    chi_c = sw * _bivariate(act, qs, cs, "dphi")
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
    act = _act(activation)
    return _correlation_fixed_point(
        act, float(_check_sigma_w2(sigma_w2)), _check_sigma_b2(sigma_b2)
    )


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
    act = _act(activation)
    sw = float(_check_sigma_w2(sigma_w2))
    sb = _check_sigma_b2(sigma_b2)
    qs = _fixed_point_cached(act, sw, sb)
    if math.isinf(qs):
        return math.inf, math.inf
    x1 = _chi1(act, sw, sb)
    if act.positively_homogeneous:
        fprime = sw * _homogeneous_gain(act)
    elif qs == 0.0:
        fprime = x1
    else:
        fprime = sw * _e(act, qs, _DQ_PHI2)

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
    act = _act(activation)
    sw = float(_check_sigma_w2(sigma_w2))
    ratio = _real("width_ratio", width_ratio)
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
    act = _act(activation)
    ws = _check_widths(widths)
    depth = len(ws) - 1
    sw = np.broadcast_to(_check_sigma_w2(sigma_w2, depth), (depth,)).astype(np.float64)
    q = _q_sequence(act, sw, _check_sigma_b2(sigma_b2), _check_q0(q0))
    d2 = _expect(act, np.where(np.isnan(q), np.inf, q), _DPHI2)
    out = np.empty(depth)
    out[-1] = d2[-1]
    with np.errstate(over="ignore"):  # exploding gradients overflow to inf
        for t in range(depth - 2, -1, -1):
            out[t] = d2[t] * sw[t + 1] * (ws[t + 2] / ws[t + 1]) * out[t + 1]
    return out


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
    ws = _check_widths(widths)
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
    ws = _check_widths(widths)
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
    ws = _check_widths(widths)
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
    return ReluLengthRatioLaw(_check_int("n", n))


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
    n = _check_int("n", n)
    k = np.arange(1, n + 1, dtype=np.float64)
    w = _binom_half_pmf(k, n)
    w = w / w.sum()
    psi = special.digamma(0.5 * k)
    m_psi = float(np.dot(w, psi))
    mean = math.log(4.0 / n) + m_psi
    var = float(np.dot(w, special.polygamma(1, 0.5 * k)) + np.dot(w, (psi - m_psi) ** 2))
    return mean, var
