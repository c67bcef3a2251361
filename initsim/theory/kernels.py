"""Kernel quantities: dual and derivative kernels, slopes of the maps, NNGP and NTK.

Conventions as in :mod:`initsim.theory`: a layer computes ``h = W x + b``
with ``sigma_w2 = n_in Var(W_ij)`` and ``sigma_b2 = Var(b_i)``; ``z`` is a
standard normal variable and ``E_q[f] = E[f(sqrt(q) z)]``. ``(u, v)`` is a
centred bivariate normal pair with variances ``q1``, ``q2`` and correlation
``c``, written ``u = sqrt(q1) z1``, ``v = sqrt(q2) (c z1 + s z2)`` with
``s = sqrt((1 - c)(1 + c))`` and ``z1``, ``z2`` independent standard normal.

* :func:`dual_kernel` ``E[phi(u) phi(v)]``, :func:`derivative_kernel`
  ``E[phi'(u) phi'(v)]`` and :func:`second_derivative_kernel`
  ``E[phi''(u) phi''(v)]`` (distributional ``phi''`` at kinks), at unequal
  variances. Price's theorem links them: with ``rho = c sqrt(q1 q2)`` the
  covariance, ``d/d rho`` of each is the next.
* :func:`c_map_slope` ``C'(c)`` and :func:`c_map_curvature` ``C''(c)`` of
  the correlation map ``C(c) = (sigma_w2 E[phi(u) phi(v)] + sigma_b2) /
  q^l`` at the fixed point ``q*`` (``C'(1) = chi_1``), and
  :func:`q_map_slope` ``F'(q)`` of the length map
  ``F(q) = sigma_w2 E_q[phi^2] + sigma_b2``.
* :func:`ntk_map`: the NNGP kernel and the neural tangent kernel of an MLP
  in the NTK parametrisation (Jacot et al. 2018, Lee et al. 2019), layer by
  layer, as an :class:`NTKProfile`.

Numerical methods and accuracy
------------------------------
Closed forms (in floating point, well conditioned up to ``c = +-1``):

* linear: ``rho``, ``1`` and ``0``;
* relu and leaky_relu with slope ``a`` (``phi = a x + (1 - a) relu(x)``;
  arc-cosine kernels of Cho and Saul 2009):
  ``sqrt(q1 q2) (a c + (1 - a)^2 (s + (pi - theta) c) / (2 pi))``,
  ``a + (1 - a)^2 (pi - theta) / (2 pi)`` and
  ``(1 - a)^2 / (2 pi sqrt(q1 q2) s)``, with ``theta = arccos c``. The
  angles are computed as ``theta = 2 atan2(sqrt(1 - c), sqrt(1 + c))`` and
  ``pi - theta = 2 atan2(sqrt(1 + c), sqrt(1 - c))`` (accurate to a few
  ulp also next to ``c = +-1``, where ``arccos`` loses half the digits),
  and for ``c < 0`` the kernel ``(sin d - d cos d) / (2 pi)``,
  ``d = pi - theta``, is summed as its Taylor series when ``d < 1``, so
  that it keeps its relative accuracy as it vanishes like ``d^3 / 3`` at
  ``c -> -1``;
* erf (Williams 1997), with ``D = (1 + 2 q1)(1 + 2 q2) - 4 rho^2 =
  1 + 2 (q1 + q2) + 4 q1 q2 s^2`` (a sum of positive terms):
  ``(2 / pi) arcsin(2 rho / sqrt((1 + 2 q1)(1 + 2 q2)))`` evaluated as
  ``(2 / pi) atan2(2 rho, sqrt(D))``, ``(4 / pi) / sqrt(D)`` and
  ``(16 / pi) rho / D^(3/2)``.

Measured against the formulas evaluated with 50-digit :mod:`mpmath` on
``c`` in ``{+-1, +-(1 - 1e-6), +-(1 - 1e-12), ...}`` and variances
``1e-3 .. 1e3`` (tests/test_theory_kernels.py, which allows ``4e-15``):
relative error at most ``9e-16``; for leaky_relu with ``a > 0`` resp.
``a < 0``, whose kernel resp. derivative kernel changes sign (``a c`` and
``(1 - a)^2 k(c)`` cancel), relative to ``sqrt(E[g(u)^2] E[g(v)^2])`` there.
Down to ``c = -1 + 1e-15`` the relu kernel keeps ``4e-15`` relative.
Against the two-dimensional 30-digit integrals the closed forms agree to
``7e-16`` relative.

Everything else uses a composite 12-point Gauss-Legendre rule over
``|z1|, |z2| <= 13`` (the Gaussian beyond carries less than ``1e-37``): the
outer variable ``z1`` on panels that break at the kinks of ``phi`` (in
``u``), at the scales where ``phi`` and the Gaussian change, and, graded
with widths ``s / |c|`` times ``0.25 .. 8``, around ``z1 = k / (c
sqrt(q2))``, where the inner average of a kinked ``phi(v)`` is smoothed only
over a width ``s``; the inner variable ``z2`` on panels that break, row by
row, exactly where ``v`` crosses a kink or a feature. At ``c = +-1`` the
pair is degenerate and the rule is one-dimensional; at ``c = 0`` and at
``c = 1`` with ``q1 = q2`` the one-dimensional expectations of
:mod:`initsim.theory.gaussian` are used. Measured against 30-digit
:mod:`mpmath` (one-dimensional outer ``mp.quad`` of the closed conditional
expectation of the inner variable: gelu, elu, selu, hard_tanh, and the
closed-form activations) and against the closed forms run through the same
rule (relu, leaky_relu, linear, erf), on 45 points per activation with
``|c| <= 1 - 1e-9`` and variances ``0.01 .. 100``: absolute error at most
``3.4e-16 sqrt(E[g(u)^2] E[g(v)^2])`` for ``g = phi, phi'`` (tests allow
``2e-15``); tanh, sigmoid, silu and softplus agree with stored
two-dimensional 30-digit values to the same ``2e-15``. ``E[phi'' phi'']``
(below): relative error at most ``2e-15`` (``8e-15`` for hard_tanh's
exponentially small values; tests allow ``5e-14``). One evaluation of the
rule costs about 10-40 ms.

``E[phi''(u) phi''(v)]`` splits ``phi'' = r + sum_k J_k delta(x - k)`` into
its regular part ``r`` (written out per activation) and the jumps ``J_k`` of
``phi'`` at the kinks ``k``: ``E[r(u) r(v)]`` by the two-dimensional rule,
``J_k p_u(k) E[r(v) | u = k]`` (and the same with ``u``, ``v`` swapped) by
a one-dimensional rule, and ``J_k J_m p(k, m)`` from the bivariate density
``p`` (infinite at ``c = +-1`` when ``(k, m)`` lies on the degenerate
support). An activation without a written-out ``r`` (added to the registry
later) falls back to a Richardson-extrapolated central difference in ``c``
of the derivative kernel, ``E[phi'' phi''] = dK'/dc / sqrt(q1 q2)`` (steps
``h, h / 2, h / 4`` with ``h = min(0.04, 1 - |c|)``; for ``|c| > 0.99``
one-sided, five steps from 0.04): measured against the split above on
tanh, erf, gelu, silu, sigmoid and softplus at variances 0.3 .. 5 and
``c`` in ``[-1, 1]``, absolute error at most ``1e-6`` (tanh, erf) resp.
``2e-8`` (the others); not reliable for kinked activations next to
``c = +-1``, where the kernel is singular.

References
----------
Y. Cho and L. K. Saul, Kernel methods for deep learning, NeurIPS 2009.

C. K. I. Williams, Computing with infinite networks, NeurIPS 1997.

A. Jacot, F. Gabriel and C. Hongler, Neural tangent kernel: convergence and
generalization in neural networks, NeurIPS 2018.

J. Lee, L. Xiao, S. S. Schoenholz, Y. Bahri, R. Novak, J. Sohl-Dickstein
and J. Pennington, Wide neural networks of any depth evolve as linear models
under gradient descent, NeurIPS 2019.

R. Price, A useful theorem for nonlinear devices having Gaussian inputs,
IRE Transactions on Information Theory 4 (1958).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from initsim._validate import check_int
from initsim.activations import SELU_ALPHA, SELU_LAMBDA, Activation
from initsim.theory._checks import (
    as_activation,
    as_real,
    check_c0,
    check_q0,
    check_sigma_b2,
    check_sigma_w2,
)
from initsim.theory.gaussian import (
    DPHI,
    DPHI2,
    DQ_PHI2,
    PHI,
    PHI2,
    FloatArray,
    expect_scalar,
    reduce_shaped,
)
from initsim.theory.meanfield import fixed_point

__all__ = [
    "NTKProfile",
    "c_map_curvature",
    "c_map_slope",
    "derivative_kernel",
    "dual_kernel",
    "ntk_map",
    "q_map_slope",
    "second_derivative_kernel",
]

_INV_SQRT_2PI = 0.39894228040143267793994825337358
_TWO_PI = 2.0 * math.pi

Func = Callable[[FloatArray], FloatArray]

# ----------------------------------------------------------------------------------
# Argument checks
# ----------------------------------------------------------------------------------


def _activation(activation: Any) -> Activation:
    try:
        return as_activation(activation)
    except TypeError:
        raise ValueError(
            f"activation must be a registry name or an Activation, got {activation!r}"
        ) from None


def _positive(name: str, value: Any) -> float:
    v = as_real(name, value)
    if not (math.isfinite(v) and v > 0.0):
        raise ValueError(f"{name} must be finite and > 0 (valid range (0, inf)), got {v!r}")
    return v


def _correlation(value: Any) -> float:
    v = as_real("c", value)
    if not (-1.0 <= v <= 1.0):
        raise ValueError(f"c must be a correlation in [-1, 1], got {v!r}")
    return v


# ----------------------------------------------------------------------------------
# Closed forms
# ----------------------------------------------------------------------------------


def _angles(c: float) -> tuple[float, float]:
    """Return ``(arccos c, pi - arccos c)``, both accurate next to ``c = +-1``."""
    a, b = math.sqrt(1.0 - c), math.sqrt(1.0 + c)
    return 2.0 * math.atan2(a, b), 2.0 * math.atan2(b, a)


def _sin_minus_d_cos(d: float) -> float:
    """Return ``sin d - d cos d`` for ``0 <= d < 1`` by its Taylor series (no cancellation)."""
    # sum_{k >= 1} (-1)^(k+1) 2k d^(2k+1) / (2k+1)!; 12 terms reach 1e-17 relative at d = 1
    d2 = d * d
    term = d * d2 / 6.0  # d^3 / 3!
    total = 0.0
    for k in range(1, 13):
        total += 2.0 * k * term
        term *= -d2 / ((2 * k + 2) * (2 * k + 3))
    return total


def _relu_k1(c: float) -> float:
    """Return ``E[relu(x) relu(y)]`` at unit variances and correlation ``c`` (Cho and Saul)."""
    _, d = _angles(c)  # d = pi - arccos c
    if c >= 0.0 or d >= 1.0:
        return (math.sqrt((1.0 - c) * (1.0 + c)) + d * c) / _TWO_PI
    return _sin_minus_d_cos(d) / _TWO_PI


def _relu_k0(c: float) -> float:
    """Return ``E[relu'(x) relu'(y)] = P(x > 0, y > 0) = (pi - arccos c) / (2 pi)``."""
    return _angles(c)[1] / _TWO_PI


def _root_product(q1: float, q2: float) -> float:
    """Return ``sqrt(q1 q2)``, rounded once where the product neither over- nor underflows."""
    p = q1 * q2
    return math.sqrt(p) if 1e-300 < p < 1e300 else math.sqrt(q1) * math.sqrt(q2)


def _closed(act: Activation, q1: float, q2: float, c: float, which: str) -> float | None:
    """Closed-form kernel or None (``which``: "phi", "dphi" or "d2")."""
    name = act.name
    r12 = _root_product(q1, q2)
    s = math.sqrt((1.0 - c) * (1.0 + c))
    if name in ("linear", "relu", "leaky_relu"):
        a = {"linear": 1.0, "relu": 0.0}.get(name, act.param)
        w = (1.0 - a) * (1.0 - a)
        if which == "phi":
            return r12 * (a * c + w * _relu_k1(c)) if w != 0.0 else r12 * c
        if which == "dphi":
            return a + w * _relu_k0(c)
        if w == 0.0:
            return 0.0
        return w / (_TWO_PI * r12 * s) if s > 0.0 else math.inf
    if name == "erf":
        d = 1.0 + 2.0 * (q1 + q2) + 4.0 * q1 * q2 * s * s
        if d < 1e300:
            if which == "phi":
                return (2.0 / math.pi) * math.atan2(2.0 * c * r12, math.sqrt(d))
            if which == "dphi":
                return (4.0 / math.pi) / math.sqrt(d)
            return (16.0 / math.pi) * c * r12 / d**1.5
        # E = D / (q1 q2): no overflow for huge variances
        e = (1.0 / q1) * (1.0 / q2) + 2.0 / q1 + 2.0 / q2 + 4.0 * s * s
        if which == "phi":
            return (2.0 / math.pi) * math.atan2(2.0 * c, math.sqrt(e))
        if which == "dphi":
            return (4.0 / math.pi) / (r12 * math.sqrt(e))
        return (16.0 / math.pi) * c / (r12 * r12 * e**1.5)
    return None


# ----------------------------------------------------------------------------------
# Composite Gauss-Legendre rules
# ----------------------------------------------------------------------------------

_GL_X, _GL_W = np.polynomial.legendre.leggauss(12)
_Z_MAX = 13.0  # pdf(13) ~ 1e-37
_X_FEAT = np.array([0.0, 0.5, 1.0, 2.0, 3.0, 4.5, 6.0, 8.0, 11.0, 15.0, 20.0, 30.0, 45.0])
_X_FEAT = np.unique(np.concatenate([_X_FEAT, -_X_FEAT]))
_Z_FEAT = np.array([0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.5, 10.0, 11.5])
_Z_FEAT = np.concatenate([[-_Z_MAX, 0.0, _Z_MAX], _Z_FEAT, -_Z_FEAT])
_OFFSETS = np.array([0.25, 0.5, 1.0, 2.0, 4.0, 8.0])
_OFFSETS = np.concatenate([[0.0], _OFFSETS, -_OFFSETS])


def _nodes(edges: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Gauss-Legendre nodes and weights (times the normal density) on sorted ``edges``."""
    edges = np.unique(np.clip(edges[np.isfinite(edges)], -_Z_MAX, _Z_MAX))
    left = edges[:-1, None]
    width = np.diff(edges)[:, None]
    z = (left + 0.5 * (_GL_X + 1.0) * width).ravel()
    w = (0.5 * _GL_W * width).ravel() * np.exp(-0.5 * z * z) * _INV_SQRT_2PI
    return z, w


def _quad1(f: Func, kinks: FloatArray, m: float, sd: float) -> float:
    """Return ``E[f(m + sd z)]`` (``sd >= 0``)."""
    if sd == 0.0:
        return float(f(np.array([m]))[0])
    with np.errstate(over="ignore"):
        feats = (np.concatenate([_X_FEAT, kinks]) - m) / sd
    z, w = _nodes(np.concatenate([_Z_FEAT, feats]))
    return float(np.dot(w, f(m + sd * z)))


def _quad_line(
    f: Func, g: Func, kf: FloatArray, kg: FloatArray, q1: float, q2: float, sign: float
) -> float:
    """Return ``E[f(sqrt(q1) z) g(sign sqrt(q2) z)]`` (the pair at ``c = sign = +-1``)."""
    r1, r2 = math.sqrt(q1), math.sqrt(q2)
    pts = [_Z_FEAT, np.concatenate([_X_FEAT, kf]) / r1, sign * np.concatenate([_X_FEAT, kg]) / r2]
    with np.errstate(over="ignore"):
        z, w = _nodes(np.concatenate(pts))
    return float(np.dot(w, f(r1 * z) * g(sign * r2 * z)))


def _quad2(
    f: Func, g: Func, kf: FloatArray, kg: FloatArray, q1: float, q2: float, c: float
) -> float:
    """Return ``E[f(u) g(v)]`` for the pair ``(u, v)`` (variances q1, q2, correlation c)."""
    s = math.sqrt((1.0 - c) * (1.0 + c))
    if s == 0.0:
        return _quad_line(f, g, kf, kg, q1, q2, math.copysign(1.0, c))
    r1, r2 = math.sqrt(q1), math.sqrt(q2)
    featf = np.concatenate([_X_FEAT, kf])
    featg = np.concatenate([_X_FEAT, kg])
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        pts = [_Z_FEAT, featf / r1]
        if c != 0.0:  # where the inner average of g(v) changes: g's features and kinks
            pts.append(featg / (c * r2))
            if kg.size:
                pts.append(((kg[:, None] / r2) - s * _OFFSETS[None, :]).ravel() / c)
        z1, w1 = _nodes(np.concatenate([p.ravel() for p in pts]))
        fu = f(r1 * z1)
        live = fu != 0.0
        z1, w1, fu = z1[live], w1[live], fu[live]
        if z1.size == 0:
            return 0.0
        # inner variable z2, panels breaking where v = sqrt(q2) (c z1 + s z2) crosses a feature
        cols = [
            np.broadcast_to(_Z_FEAT, (z1.size, _Z_FEAT.size)),
            (featg[None, :] / r2 - c * z1[:, None]) / s,
        ]
        edges = np.sort(np.clip(np.concatenate(cols, axis=1), -_Z_MAX, _Z_MAX), axis=1)
    widths = np.diff(edges, axis=1)
    order = np.argsort(widths == 0.0, axis=1, kind="stable")  # empty panels last
    left = np.take_along_axis(edges[:, :-1], order, axis=1)
    widths = np.take_along_axis(widths, order, axis=1)
    keep = int((widths > 0.0).sum(axis=1).max())
    left, widths = left[:, :keep], widths[:, :keep]
    z2 = (left[..., None] + 0.5 * (_GL_X + 1.0) * widths[..., None]).reshape(z1.size, -1)
    w2 = (0.5 * _GL_W * widths[..., None]).reshape(z1.size, -1)
    w2 = w2 * np.exp(-0.5 * z2 * z2) * _INV_SQRT_2PI
    gv = g(r2 * (c * z1[:, None] + s * z2))
    inner = np.einsum("ij,ij->i", gv, w2)
    return float(np.dot(w1 * fu, inner))


# ----------------------------------------------------------------------------------
# Second derivatives: regular parts and jumps
# ----------------------------------------------------------------------------------


def _dsig(x: FloatArray) -> FloatArray:
    """sigmoid'(x) = sigmoid(x) sigmoid(-x), overflow-free."""
    e = np.exp(-np.abs(x))
    return e / ((1.0 + e) * (1.0 + e))


def _d2_elu(x: FloatArray, p: float) -> FloatArray:
    return np.where(x < 0.0, p * np.exp(np.minimum(x, 0.0)), 0.0)


def _d2_selu(x: FloatArray, p: float) -> FloatArray:
    return np.where(x < 0.0, SELU_LAMBDA * SELU_ALPHA * np.exp(np.minimum(x, 0.0)), 0.0)


def _d2_gelu(x: FloatArray, p: float) -> FloatArray:
    xc = np.clip(x, -40.0, 40.0)
    return _INV_SQRT_2PI * np.exp(-0.5 * xc * xc) * (2.0 - xc * xc)


def _d2_silu(x: FloatArray, p: float) -> FloatArray:
    return _dsig(x) * (2.0 - x * np.tanh(0.5 * x))


def _d2_softplus(x: FloatArray, p: float) -> FloatArray:
    return _dsig(x)


def _d2_sigmoid(x: FloatArray, p: float) -> FloatArray:
    return -_dsig(x) * np.tanh(0.5 * x)


def _d2_tanh(x: FloatArray, p: float) -> FloatArray:
    e = np.exp(-2.0 * np.minimum(np.abs(x), 400.0))
    return -2.0 * np.tanh(x) * (4.0 * e / ((1.0 + e) * (1.0 + e)))


def _d2_erf(x: FloatArray, p: float) -> FloatArray:
    xc = np.clip(x, -40.0, 40.0)
    return -(4.0 / math.sqrt(math.pi)) * xc * np.exp(-xc * xc)


#: The regular part of ``phi''`` per activation; None: identically zero off the kinks.
_D2_REGULAR: dict[str, Callable[[FloatArray, float], FloatArray] | None] = {
    "linear": None,
    "relu": None,
    "leaky_relu": None,
    "hard_tanh": None,
    "elu": _d2_elu,
    "selu": _d2_selu,
    "gelu": _d2_gelu,
    "silu": _d2_silu,
    "softplus": _d2_softplus,
    "sigmoid": _d2_sigmoid,
    "tanh": _d2_tanh,
    "erf": _d2_erf,
}


def _jumps(act: Activation) -> list[tuple[float, float]]:
    """Return ``(k, phi'(k+) - phi'(k-))`` for each kink ``k`` of ``phi``."""
    out = []
    for k in act.kinks:
        d = act.dphi(np.array([np.nextafter(k, math.inf), np.nextafter(k, -math.inf)]))
        jump = float(d[0] - d[1])
        if jump != 0.0:
            out.append((float(k), jump))
    return out


def _pair_density(x: float, y: float, c: float, s: float) -> float:
    """Density of standardised ``(x, y)`` with correlation ``c`` (``s = sqrt(1 - c^2)``)."""
    # x^2 - 2 c x y + y^2 without cancellation next to c = +-1
    if c >= 0.0:
        num = (x - y) ** 2 + 2.0 * (1.0 - c) * x * y
    else:
        num = (x + y) ** 2 - 2.0 * (1.0 + c) * x * y
    if s == 0.0:
        return math.inf if num == 0.0 else 0.0
    return math.exp(-0.5 * num / (s * s)) / (_TWO_PI * s)


def _d2_kernel(act: Activation, q1: float, q2: float, c: float) -> float:
    """Return ``E[phi''(u) phi''(v)]`` through the regular part and the jumps of ``phi'``."""
    reg = _D2_REGULAR[act.name]
    r1, r2 = math.sqrt(q1), math.sqrt(q2)
    s = math.sqrt((1.0 - c) * (1.0 + c))
    kinks = np.array(act.kinks, dtype=np.float64)
    jumps = _jumps(act)
    total = 0.0
    if reg is not None:
        kinks = np.union1d(kinks, [0.0])  # elu's and selu's phi'' jumps at 0
        p = act.param

        def r(x: FloatArray) -> FloatArray:
            return reg(x, p)

        total += _quad2(r, r, kinks, kinks, q1, q2, c)
        for k, jump in jumps:
            # E[delta(u - k) r(v)] = p_u(k) E[r(v) | u = k], v | u = k ~ N(c r2 k / r1, q2 s^2)
            pu = math.exp(-0.5 * (k / r1) ** 2) * _INV_SQRT_2PI / r1
            pv = math.exp(-0.5 * (k / r2) ** 2) * _INV_SQRT_2PI / r2
            total += jump * pu * _quad1(r, kinks, c * r2 * k / r1, r2 * s)
            total += jump * pv * _quad1(r, kinks, c * r1 * k / r2, r1 * s)
    singular = 0.0
    for k, jk in jumps:
        for m, jm in jumps:
            dens = _pair_density(k / r1, m / r2, c, s)
            if math.isinf(dens):
                singular += jk * jm
            else:
                total += jk * jm * dens / (r1 * r2)
    if singular != 0.0:
        return math.copysign(math.inf, singular)
    return total


def _d2_finite_difference(act: Activation, q1: float, q2: float, c: float) -> float:
    """Return ``E[phi'' phi'']`` as ``dK'/dc / sqrt(q1 q2)``, Richardson-extrapolated."""

    def kd(x: float) -> float:
        return _kernel(act, q1, q2, min(1.0, max(-1.0, x)), "dphi")

    room = 1.0 - abs(c)
    if room >= 0.01:  # central differences, errors O(h^2), O(h^4), O(h^6)
        h = min(0.04, room)
        d = [(kd(c + t) - kd(c - t)) / (2.0 * t) for t in (h, h / 2, h / 4)]
        r1 = [(4.0 * d[i + 1] - d[i]) / 3.0 for i in range(2)]
        val = (16.0 * r1[1] - r1[0]) / 15.0
    else:  # one-sided towards the interior, errors O(h) .. O(h^5) eliminated in turn
        sgn = -1.0 if c > 0.0 else 1.0
        k0 = kd(c)
        table = [(kd(c + sgn * t) - k0) / (sgn * t) for t in 0.04 / 2.0 ** np.arange(5)]
        for order in range(1, 5):
            f = 2.0**order
            table = [(f * table[i + 1] - table[i]) / (f - 1.0) for i in range(len(table) - 1)]
        val = table[0]
    return val / (math.sqrt(q1) * math.sqrt(q2))


# ----------------------------------------------------------------------------------
# Kernels
# ----------------------------------------------------------------------------------


def _generic(act: Activation, q1: float, q2: float, c: float, which: str) -> float:
    """Return the kernel by quadrature (no closed form): "phi", "dphi" or "d2"."""
    if which == "d2":
        if act.name not in _D2_REGULAR:
            return _d2_finite_difference(act, q1, q2, c)
        return _d2_kernel(act, q1, q2, c)
    if c == 0.0:  # independent
        code = PHI if which == "phi" else DPHI
        return expect_scalar(act, q1, code) * expect_scalar(act, q2, code)
    if c == 1.0 and q1 == q2:
        return expect_scalar(act, q1, PHI2 if which == "phi" else DPHI2)
    kinks = np.array(act.kinks, dtype=np.float64)
    twin = act.phi if which == "phi" else act.dphi

    def f(x: FloatArray) -> FloatArray:
        return np.asarray(twin(x))

    return _quad2(f, f, kinks, kinks, q1, q2, c)


@functools.lru_cache(maxsize=8192)
def _kernel(act: Activation, q1: float, q2: float, c: float, which: str) -> float:
    parts = reduce_shaped(act)
    if parts is not None:  # a (phi(s x) + b): the base's kernel at variances s^2 q
        base, s, a, b = parts
        p1, p2 = s * s * q1, s * s * q2
        if which == "d2":
            return a * a * s**4 * _kernel(base, p1, p2, c, "d2")
        if which == "dphi":
            return (a * s) ** 2 * _kernel(base, p1, p2, c, "dphi")
        means = expect_scalar(base, p1, PHI) + expect_scalar(base, p2, PHI) if b != 0.0 else 0.0
        return a * a * (_kernel(base, p1, p2, c, "phi") + b * means + b * b)
    closed = _closed(act, q1, q2, c, which)
    if closed is not None:
        return closed
    return _generic(act, q1, q2, c, which)


def dual_kernel(activation: str | Activation, q1: float, q2: float, c: float) -> float:
    """Return the dual kernel ``E[phi(u) phi(v)]`` of a centred bivariate normal pair.

    ``(u, v)`` has variances ``q1``, ``q2`` and correlation ``c``
    (covariance ``c sqrt(q1 q2)``); the variances may differ.

    Parameters
    ----------
    activation : str or Activation
        The activation ``phi``.
    q1 : float
        Variance of ``u``, finite and ``> 0``.
    q2 : float
        Variance of ``v``, finite and ``> 0``.
    c : float
        Correlation, in ``[-1, 1]``.

    Returns
    -------
    float
        The expectation.

    Raises
    ------
    ValueError
        For an unknown activation or a parameter outside its range (the
        message names it).

    Notes
    -----
    Closed forms for linear (``c sqrt(q1 q2)``), relu and leaky_relu (the
    arc-cosine kernel of Cho and Saul 2009,
    ``sqrt(q1 q2) (sqrt(1 - c^2) + (pi - arccos c) c) / (2 pi)`` for relu)
    and erf (Williams 1997,
    ``(2 / pi) arcsin(2 c sqrt(q1 q2) / sqrt((1 + 2 q1)(1 + 2 q2)))``);
    otherwise a composite Gauss-Legendre rule. Accuracy: see the module
    notes (closed forms a few ulp; the rule about ``2e-15`` absolute,
    relative to ``sqrt(E[phi(u)^2] E[phi(v)^2])``).

    Examples
    --------
    >>> round(dual_kernel("relu", 1.0, 4.0, 0.0), 12)  # 2 E[relu(z)]^2 = 1 / pi
    0.318309886184
    >>> dual_kernel("linear", 2.0, 8.0, 0.5)
    2.0
    """
    act = _activation(activation)
    q1, q2 = _positive("q1", q1), _positive("q2", q2)
    return _kernel(act, q1, q2, _correlation(c), "phi")


def derivative_kernel(activation: str | Activation, q1: float, q2: float, c: float) -> float:
    """Return the derivative kernel ``E[phi'(u) phi'(v)]`` of a centred bivariate normal pair.

    By Price's theorem it is ``d E[phi(u) phi(v)] / d rho`` with
    ``rho = c sqrt(q1 q2)`` the covariance.

    Parameters
    ----------
    activation : str or Activation
        The activation ``phi``.
    q1 : float
        Variance of ``u``, finite and ``> 0``.
    q2 : float
        Variance of ``v``, finite and ``> 0``.
    c : float
        Correlation, in ``[-1, 1]``.

    Returns
    -------
    float
        The expectation (``phi'`` at a kink as fixed by
        :mod:`initsim.activations`; a null set, it does not matter for
        ``q1, q2 > 0``).

    Raises
    ------
    ValueError
        For an unknown activation or a parameter outside its range.

    Notes
    -----
    Closed forms for linear (1), relu (``(pi - arccos c) / (2 pi)``),
    leaky_relu with slope ``a`` (``a + (1 - a)^2 (pi - arccos c) / (2 pi)``)
    and erf (``(4 / pi) / sqrt((1 + 2 q1)(1 + 2 q2) - 4 c^2 q1 q2)``);
    otherwise the composite rule of the module notes.

    Examples
    --------
    >>> derivative_kernel("relu", 1.0, 3.0, 1.0)
    0.5
    >>> derivative_kernel("relu", 1.0, 3.0, -1.0)
    0.0
    """
    act = _activation(activation)
    q1, q2 = _positive("q1", q1), _positive("q2", q2)
    return _kernel(act, q1, q2, _correlation(c), "dphi")


def second_derivative_kernel(activation: str | Activation, q1: float, q2: float, c: float) -> float:
    """Return the second-derivative kernel ``E[phi''(u) phi''(v)]`` (distributional ``phi''``).

    ``d E[phi'(u) phi'(v)] / d rho`` (Price's theorem). At a kink ``k``
    where ``phi'`` jumps by ``J``, ``phi''`` holds ``J delta(x - k)``: for
    relu the kernel is the density of ``(u, v)`` at the origin,
    ``1 / (2 pi sqrt(q1 q2 (1 - c^2)))``, infinite at ``c = +-1``.

    Parameters
    ----------
    activation : str or Activation
        The activation ``phi``.
    q1 : float
        Variance of ``u``, finite and ``> 0``.
    q2 : float
        Variance of ``v``, finite and ``> 0``.
    c : float
        Correlation, in ``[-1, 1]``.

    Returns
    -------
    float
        The expectation; ``+-inf`` where two kinks meet on the support of a
        degenerate pair (``c = +-1``).

    Raises
    ------
    ValueError
        For an unknown activation or a parameter outside its range.

    Notes
    -----
    Closed forms: linear 0, leaky_relu ``(1 - a)^2 / (2 pi sqrt(q1 q2) s)``,
    erf ``(16 / pi) c sqrt(q1 q2) / D^(3/2)`` with ``s`` and ``D`` as in
    the module notes. Otherwise the regular part of ``phi''`` and the jumps
    of ``phi'`` are integrated separately (module notes).

    Examples
    --------
    >>> round(second_derivative_kernel("relu", 1.0, 1.0, 0.0), 12)  # 1 / (2 pi)
    0.159154943092
    """
    act = _activation(activation)
    q1, q2 = _positive("q1", q1), _positive("q2", q2)
    return _kernel(act, q1, q2, _correlation(c), "d2")


# ----------------------------------------------------------------------------------
# Slopes of the maps
# ----------------------------------------------------------------------------------


def _sign_limit(a: float, b: float, c: float) -> float:
    """Return ``E[g(u) g(v)]``, ``g = a`` on ``x > 0`` and ``b`` on ``x < 0`` (orthant sums)."""
    pp = _relu_k0(c)  # P(u > 0, v > 0) = P(u < 0, v < 0)
    return (a * a + b * b) * pp + 2.0 * a * b * (0.5 - pp)


def _dphi_kernel_at(act: Activation, q: float, c: float) -> float:
    """``E[phi'(u) phi'(v)]`` at equal variance ``q`` in ``[0, inf]`` (0 and inf: the limits)."""
    if act.positively_homogeneous:  # the kernel does not depend on q
        return _kernel(act, 1.0, 1.0, c, "dphi")
    if 0.0 < q < math.inf:
        return _kernel(act, q, q, c, "dphi")
    if q == 0.0:
        if 0.0 in act.kinks:
            d = act.dphi(np.array([5e-324, -5e-324]))
            return _sign_limit(float(d[0]), float(d[1]), c)
        return float(act.dphi(0.0)) ** 2
    d = act.dphi(np.array([np.inf, -np.inf]))
    return _sign_limit(float(d[0]), float(d[1]), c)


def _map_args(
    activation: Any, sigma_w2: Any, sigma_b2: Any, c: Any, q: Any
) -> tuple[Activation, float, float, float, float | None]:
    act = _activation(activation)
    sw = float(check_sigma_w2(sigma_w2))
    sb = check_sigma_b2(sigma_b2)
    cc = _correlation(c)
    qq = None if q is None else _positive("q", q)
    return act, sw, sb, cc, qq


def c_map_slope(
    activation: str | Activation,
    sigma_w2: float,
    sigma_b2: float,
    c: float,
    q: float | None = None,
) -> float:
    """Slope ``C'(c)`` of the mean-field correlation map.

    ``C(c) = (sigma_w2 E[phi(u) phi(v)] + sigma_b2) / F(q)`` maps the
    correlation ``c`` of two inputs of equal length ``q`` at one layer to
    the next (:func:`initsim.theory.c_map`; ``F(q) = sigma_w2 E_q[phi^2] +
    sigma_b2`` is the next length). Price's theorem (``d/d rho`` with
    ``rho = q c``) gives ``C'(c) = sigma_w2 q E[phi'(u) phi'(v)] / F(q)``,
    and at the fixed point ``q = q* = F(q*)``:
    ``C'(c) = sigma_w2 E[phi'(u) phi'(v)]``, so ``C'(1) = chi_1``
    (:func:`initsim.theory.chi1`) and ``C'(c*) = chi_c*``.

    Parameters
    ----------
    activation : str or Activation
        The activation.
    sigma_w2 : float
        ``n_in Var(W_ij) > 0``.
    sigma_b2 : float
        ``Var(b_i) >= 0``.
    c : float
        The correlation, in ``[-1, 1]``.
    q : float, optional
        The common length ``q^{l-1} > 0`` of the two inputs. Default: the
        fixed point ``q*`` (:func:`initsim.theory.fixed_point`).

    Returns
    -------
    float
        ``C'(c)``. For ``q* = 0`` or ``q* = inf`` (``q`` not given) the
        ``q -> 0+`` resp. ``q -> inf`` limit of ``sigma_w2 E[phi'(u)
        phi'(v)]``, as in :func:`initsim.theory.chi1` (``phi'(0)^2``, or the
        orthant average of the one-sided slopes at a kink resp. at
        ``+-inf``); for positively homogeneous activations the kernel does
        not depend on ``q``.

    Raises
    ------
    ValueError
        For an unknown activation or a parameter outside its range.

    Examples
    --------
    >>> c_map_slope("relu", 2.0, 0.0, 1.0)
    1.0
    >>> round(c_map_slope("relu", 2.0, 0.0, 0.0), 12)
    0.5
    """
    act, sw, sb, cc, qq = _map_args(activation, sigma_w2, sigma_b2, c, q)
    if qq is None:
        return sw * _dphi_kernel_at(act, fixed_point(act, sw, sb), cc)
    return sw * qq * _kernel(act, qq, qq, cc, "dphi") / (sw * expect_scalar(act, qq, PHI2) + sb)


def c_map_curvature(
    activation: str | Activation,
    sigma_w2: float,
    sigma_b2: float,
    c: float,
    q: float | None = None,
) -> float:
    """Curvature ``C''(c)`` of the mean-field correlation map.

    With :func:`c_map_slope`'s notation,
    ``C''(c) = sigma_w2 q^2 E[phi''(u) phi''(v)] / F(q)``
    (Price's theorem twice), ``sigma_w2 q* E[phi''(u) phi''(v)]`` at the
    fixed point; ``phi''`` is taken in the sense of distributions
    (:func:`second_derivative_kernel`): relu with He's ``sigma_w2 = 2``
    gives ``1 / (pi sqrt(1 - c^2))``.

    Parameters
    ----------
    activation : str or Activation
        The activation.
    sigma_w2 : float
        ``n_in Var(W_ij) > 0``.
    sigma_b2 : float
        ``Var(b_i) >= 0``.
    c : float
        The correlation, in ``[-1, 1]``.
    q : float, optional
        The common length ``q^{l-1} > 0``; default the fixed point ``q*``.

    Returns
    -------
    float
        ``C''(c)``; ``+-inf`` at ``c = +-1`` for kinked activations (a kink
        at ``q`` scale meets itself). For ``q* = 0`` (``q`` not given) the
        ``q -> 0+`` limit, ``sigma_w2 J^2 / (2 pi sqrt(1 - c^2))`` with
        ``J`` the jump of ``phi'`` at 0 (0 for activations smooth at 0).

    Raises
    ------
    ValueError
        For an unknown activation, a parameter outside its range, or
        ``q* = inf`` (``q`` not given) for an activation that is not
        positively homogeneous: the limit is not computed; pass ``q``.

    Examples
    --------
    >>> round(c_map_curvature("relu", 2.0, 0.0, 0.0), 12)  # 1 / pi
    0.318309886184
    """
    act, sw, sb, cc, qq = _map_args(activation, sigma_w2, sigma_b2, c, q)
    if qq is not None:
        f = sw * expect_scalar(act, qq, PHI2) + sb
        return sw * qq * qq * _kernel(act, qq, qq, cc, "d2") / f
    qs = fixed_point(act, sw, sb)
    if act.positively_homogeneous:  # q E[phi'' phi''] does not depend on q
        return sw * _kernel(act, 1.0, 1.0, cc, "d2")
    if math.isinf(qs):
        raise ValueError(
            f"{act.label} with sigma_w2 = {sw:g}, sigma_b2 = {sb:g} has q* = inf; "
            f"pass the length q (valid range (0, inf)) explicitly"
        )
    if qs == 0.0:
        jump = dict(_jumps(act)).get(0.0, 0.0)
        if jump == 0.0:
            return 0.0
        s = math.sqrt((1.0 - cc) * (1.0 + cc))
        return sw * jump * jump / (_TWO_PI * s) if s > 0.0 else math.inf
    return sw * qs * _kernel(act, qs, qs, cc, "d2")


def q_map_slope(
    activation: str | Activation,
    sigma_w2: float,
    sigma_b2: float,
    q: float | None = 1.0,
) -> float:
    """Slope ``F'(q)`` of the mean-field length map ``F(q) = sigma_w2 E_q[phi^2] + sigma_b2``.

    ``d E[phi(sqrt(q) z)^2] / dq = E[phi(x) phi'(x) z] / sqrt(q)``
    (``x = sqrt(q) z``; Gaussian integration by parts turns it into
    ``E[phi'(x)^2 + phi(x) phi''(x)]``, Schoenholz et al. 2017, eq. 6); the
    first form needs no ``phi''`` and is exact for kinked activations (relu:
    ``F(q) = sigma_w2 q / 2 + sigma_b2``, slope ``sigma_w2 / 2``). At the
    fixed point it is the slope behind the depth scale
    ``xi_q = -1 / ln F'(q*)`` of :func:`initsim.theory.depth_scales`.

    Parameters
    ----------
    activation : str or Activation
        The activation.
    sigma_w2 : float
        ``n_in Var(W_ij) > 0``.
    sigma_b2 : float
        ``Var(b_i) >= 0`` (checked; the slope does not depend on it).
    q : float or None, optional
        The length, finite and ``>= 0`` (default 1; 0 gives the
        ``q -> 0+`` limit); None: the fixed point ``q*``
        (:func:`initsim.theory.fixed_point`, which must be finite).

    Returns
    -------
    float
        ``F'(q)``, by closed forms where :mod:`initsim.theory.gaussian` has
        them and otherwise adaptive quadrature (about ``1e-15`` relative).

    Raises
    ------
    ValueError
        For an unknown activation or a parameter outside its range, or
        ``q=None`` with ``q* = inf``.

    Examples
    --------
    >>> q_map_slope("relu", 2.0, 0.1)
    1.0
    """
    act = _activation(activation)
    sw = float(check_sigma_w2(sigma_w2))
    sb = check_sigma_b2(sigma_b2)
    if q is None:
        qq = fixed_point(act, sw, sb)
        if math.isinf(qq):
            raise ValueError(
                f"{act.label} with sigma_w2 = {sw:g}, sigma_b2 = {sb:g} has q* = inf; "
                f"pass the length q (valid range [0, inf)) explicitly"
            )
    else:
        qq = as_real("q", q)
        if not (math.isfinite(qq) and qq >= 0.0):
            raise ValueError(f"q must be finite and >= 0 (valid range [0, inf)), got {qq!r}")
    return sw * expect_scalar(act, qq, DQ_PHI2)


# ----------------------------------------------------------------------------------
# NNGP and NTK
# ----------------------------------------------------------------------------------


def _frozen(x: FloatArray) -> FloatArray:
    x = np.asarray(x, dtype=np.float64)
    x.flags.writeable = False
    return x


@dataclass(frozen=True)
class NTKProfile:
    """NNGP kernel and neural tangent kernel of an MLP, layer by layer (:func:`ntk_map`).

    Every array has shape ``(depth + 1,)``; entry ``l - 1`` belongs to the
    pre-activation ``h^l`` of layer ``l``: ``l = 1 .. depth`` are the
    hidden layers and ``l = depth + 1`` is the linear readout, the network
    output ``f = h^{depth+1}``. ``x`` and ``x'`` are the two inputs (equal
    length ``q0``, correlation ``c0``). Arrays are read-only.

    Attributes
    ----------
    activation : str
        The activation's label.
    sigma_w2 : numpy.ndarray
        ``sigma_w2`` of layers ``1 .. depth + 1``.
    sigma_b2 : float
        ``sigma_b^2``, every layer's.
    q0 : float
        ``||x||^2 / n_0 = ||x'||^2 / n_0``.
    c0 : float
        ``x . x' / (n_0 q0)``.
    nngp_diag, nngp_cross : numpy.ndarray
        ``Sigma^l(x, x)`` (the mean-field length ``q^l``) and
        ``Sigma^l(x, x')``.
    nngp_corr : numpy.ndarray
        ``Sigma^l(x, x') / Sigma^l(x, x)`` (the correlation map ``c^l``).
    dot_diag, dot_cross : numpy.ndarray
        ``Sigmadot^l(x, x) = sigma_w2 E[phi'(u)^2]`` and
        ``Sigmadot^l(x, x')``; entry 0 (layer 1, which has none) is NaN.
    ntk_diag, ntk_cross : numpy.ndarray
        ``Theta^l(x, x)`` and ``Theta^l(x, x')``: the NTK of ``h^l`` with
        respect to the parameters of layers ``1 .. l``; ``[-1]`` is the
        network's NTK.
    ntk_corr : numpy.ndarray
        ``Theta^l(x, x') / Theta^l(x, x)``.
    """

    activation: str
    sigma_w2: FloatArray
    sigma_b2: float
    q0: float
    c0: float
    nngp_diag: FloatArray
    nngp_cross: FloatArray
    nngp_corr: FloatArray
    dot_diag: FloatArray
    dot_cross: FloatArray
    ntk_diag: FloatArray
    ntk_cross: FloatArray
    ntk_corr: FloatArray

    @property
    def depth(self) -> int:
        """The number of hidden layers."""
        return int(self.nngp_diag.shape[0]) - 1


def ntk_map(
    activation: str | Activation,
    sigma_w2: float | Sequence[float] | FloatArray,
    sigma_b2: float,
    depth: int,
    *,
    q0: float = 1.0,
    c0: float = 1.0,
) -> NTKProfile:
    """NNGP kernel and NTK of an infinitely wide MLP in the NTK parametrisation.

    The network has ``depth`` hidden layers and a linear readout:
    ``h^1 = (sigma_w / sqrt(n_0)) W^1 x + sigma_b b^1`` and
    ``h^{l+1} = (sigma_w / sqrt(n_l)) W^{l+1} phi(h^l) + sigma_b b^{l+1}``
    for ``l = 1 .. depth``, output ``f = h^{depth+1}``, every ``W_ij`` and
    ``b_i`` standard normal and trained (Jacot et al. 2018; Lee et al.
    2019). As the widths ``n_1 .. n_depth -> inf`` (Jacot et al.,
    Theorem 1):

    * ``Sigma^1 = sigma_w2 x . x' / n_0 + sigma_b2``,
      ``Sigma^{l+1} = sigma_w2 E[phi(u) phi(v)] + sigma_b2``;
    * ``Sigmadot^{l+1} = sigma_w2 E[phi'(u) phi'(v)]``;
    * ``Theta^1 = Sigma^1``, ``Theta^{l+1} = Sigma^{l+1} + Theta^l Sigmadot^{l+1}``,

    with ``(u, v)`` centred normal of covariance ``Sigma^l`` on
    ``{x, x'}``. In the standard parametrisation (``W_ij ~ N(0, sigma_w2 /
    n_in)`` trained directly) the NNGP kernels are the same, while each
    layer's weights contribute to the NTK with an extra factor
    ``n_in / sigma_w2`` and its biases with ``1 / sigma_b2`` (the chain rule
    through ``W = sqrt(sigma_w2 / n_in) W~``); that NTK is not computed
    here. Unrolled:
    ``Theta^L = sum_{m <= L} Sigma^m prod_{m < k <= L} Sigmadot^k``. E.g.
    relu without bias: ``Theta^l(x, x) = l Sigma^l(x, x)`` (He,
    ``sigma_w2 = 2``: ``2 l q0``); linear: ``Theta^l(x, x') = l
    sigma_w2^l q0 c0`` without bias.

    Parameters
    ----------
    activation : str or Activation
        The activation.
    sigma_w2 : float or sequence of float
        ``sigma_w^2 > 0``, one value or one per layer ``1 .. depth + 1``
        (the last is the readout's).
    sigma_b2 : float
        ``sigma_b^2 >= 0`` (every layer, the readout included).
    depth : int
        Number of hidden layers, ``>= 1``.
    q0 : float, optional
        ``||x||^2 / n_0 = ||x'||^2 / n_0 > 0`` (default 1).
    c0 : float, optional
        Correlation ``x . x' / (n_0 q0)`` of the inputs, in ``[-1, 1]``
        (default 1: ``x' = x``, cross entries equal the diagonal ones).

    Returns
    -------
    NTKProfile
        The kernels of layers ``1 .. depth + 1``. From the layer where
        ``Sigma^l(x, x)`` overflows on, entries are NaN (diagonal: ``inf``).

    Raises
    ------
    ValueError
        For an unknown activation or a parameter outside its range.

    Notes
    -----
    Diagonal expectations are one-dimensional (:mod:`initsim.theory.gaussian`),
    cross ones the kernels of :func:`dual_kernel` and
    :func:`derivative_kernel` at equal variances (for activations without
    closed forms about 20-80 ms per layer); ``c0 = 1`` keeps ``c^l = 1``
    exactly.

    Examples
    --------
    >>> p = ntk_map("relu", 2.0, 0.0, 3)
    >>> p.nngp_diag.tolist(), p.ntk_diag.tolist()
    ([2.0, 2.0, 2.0, 2.0], [2.0, 4.0, 6.0, 8.0])
    """
    act = _activation(activation)
    depth = check_int("depth", depth)
    n = depth + 1
    sw = np.broadcast_to(check_sigma_w2(sigma_w2, n), (n,)).astype(np.float64)
    sb = check_sigma_b2(sigma_b2)
    q0 = check_q0(q0)
    c0 = check_c0(c0)
    kd, kc, dd, dc, td, tc = (np.full(n, np.nan) for _ in range(6))
    kd[0] = sw[0] * q0 + sb
    kc[0] = sw[0] * q0 * c0 + sb
    td[0], tc[0] = kd[0], kc[0]
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, n):
            q = float(kd[t - 1])
            if not (math.isfinite(q) and q > 0.0):
                kd[t:] = math.inf if math.isinf(q) else math.nan
                break
            c = min(1.0, max(-1.0, float(kc[t - 1]) / q))
            kd[t] = sw[t] * expect_scalar(act, q, PHI2) + sb
            dd[t] = sw[t] * expect_scalar(act, q, DPHI2)
            if c == 1.0:
                kc[t], dc[t] = kd[t], dd[t]
            else:
                kc[t] = sw[t] * _kernel(act, q, q, c, "phi") + sb
                dc[t] = sw[t] * _kernel(act, q, q, c, "dphi")
            td[t] = kd[t] + td[t - 1] * dd[t]
            tc[t] = kc[t] + tc[t - 1] * dc[t]
        kcorr = np.clip(kc / kd, -1.0, 1.0)
        tcorr = tc / td
    return NTKProfile(
        activation=act.label,
        sigma_w2=_frozen(sw),
        sigma_b2=sb,
        q0=q0,
        c0=c0,
        nngp_diag=_frozen(kd),
        nngp_cross=_frozen(kc),
        nngp_corr=_frozen(kcorr),
        dot_diag=_frozen(dd),
        dot_cross=_frozen(dc),
        ntk_diag=_frozen(td),
        ntk_cross=_frozen(tc),
        ntk_corr=_frozen(tcorr),
    )
