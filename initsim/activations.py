"""The activation registry: ``phi`` and ``phi'`` for compiled kernels and for numpy.

Every activation is identified inside compiled code by a small integer
``code`` (the module constants :data:`LINEAR`, :data:`RELU`, ...) and one
float ``param`` (the slope of ``leaky_relu``, the ``alpha`` of ``elu``; 0.0
where unused). Kernels call

* :func:`phi_scalar` ``(code, param, x) -> phi(x)`` and
* :func:`dphi_scalar` ``(code, param, x) -> phi'(x)``,

compiled scalar functions usable from any other ``@jit`` function, including
``parallel=True`` ``prange`` bodies; :func:`phi_array` and :func:`dphi_array`
apply them to 1-D arrays. The Python layer works with :class:`Activation`
objects obtained from :func:`get`; their :meth:`Activation.phi` and
:meth:`Activation.dphi` methods are independent vectorised numpy twins of the
compiled scalars (tests check that the two agree).

Conventions, identical in the compiled and the numpy versions:

* NaN in gives NaN out, for ``phi`` and ``phi'`` alike.
* ``+-inf`` give the limits: ``relu(inf) = inf``, ``sigmoid(+-inf) = 1, 0``,
  ``tanh(+-inf) = +-1``, ``gelu(-inf) = silu(-inf) = -0.0``,
  ``softplus(-inf) = 0``, ``atan(+-inf) = +-pi/2``, ``softsign(+-inf) = +-1``,
  ``bent_identity(+-inf) = +-inf``; ``phi'(+-inf)`` is the limit of ``phi'``
  (``bent_identity'(+-inf) = 1.5, 0.5``). The exceptions are ``sin`` and
  ``cos``, which have no limit: ``sin(+-inf)``, ``cos(+-inf)`` and their
  derivatives there are NaN (as in IEEE 754 and numpy).
  No extreme input raises or warns (softplus, sigmoid and friends are
  evaluated in overflow-free forms); a result too large for a float
  (``square(1e200)``, ``selu(1.75e308)``) is ``inf``, silently.
* Derivatives at kinks (where ``phi'`` jumps) are fixed as follows:
  ``relu'(0) = 0``, ``leaky_relu'(0) = slope``, ``elu'(0) = 1`` and
  ``selu'(0) = lambda`` (right derivatives), ``hard_tanh'(+-1) = 0``
  (derivative 1 only strictly inside ``(-1, 1)``) and ``abs'(0) = 0`` (the
  sign function, as in PyTorch's autograd; it is also
  ``relu'(x) - relu'(-x)`` at 0 with ``relu'(0) = 0``). The kink locations
  are listed in :attr:`Activation.kinks`.

The catalogue (canonical names; ``param`` in brackets):

=================  ===================================================  ==========
name               phi(x)                                               param
=================  ===================================================  ==========
``linear``         ``x``
``relu``           ``max(x, 0)``
``leaky_relu``     ``x if x > 0 else slope * x``                        slope=0.01
``elu``            ``x if x > 0 else alpha * (exp(x) - 1)``             alpha=1.0
``selu``           ``lambda * elu(x; alpha)``, fixed constants
``gelu``           ``x * Phi(x)``, Phi the normal cdf (exact)
``silu``           ``x * sigmoid(x)``
``softplus``       ``log(1 + exp(x))``
``sigmoid``        ``1 / (1 + exp(-x))``
``tanh``           ``tanh(x)``
``erf``            ``erf(x)``
``hard_tanh``      ``clip(x, -1, 1)``
``abs``            ``|x|``
``sin``            ``sin(x)``
``cos``            ``cos(x)``
``softsign``       ``x / (1 + |x|)``
``atan``           ``arctan(x)``
``asinh``          ``arcsinh(x) = log(x + sqrt(x^2 + 1))``
``bent_identity``  ``(sqrt(x^2 + 1) - 1) / 2 + x``
``square``         ``x^2``
``gelu_tanh``      ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``
=================  ===================================================  ==========

``gelu_tanh`` is PyTorch's ``GELU(approximate="tanh")`` (also HuggingFace's
``gelu_new`` / ``gelu_pytorch_tanh``); it is evaluated as the equal
``x * sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3))``, which does not cancel for
negative ``x``. Integer codes 12 ... 20 (:data:`ABS` ... :data:`GELU_TANH`)
were added after the first twelve; codes are never renumbered.

Beyond the catalogue:

* :func:`shaped` transforms any activation affinely, ``phi_hat(x) =
  output_scale (phi(input_scale x + input_shift) + output_shift)`` (DKS, TAT,
  :func:`affine_erf`);
* :func:`register` adds a user's own Python ``phi`` (compiled with Numba,
  validated by :mod:`initsim.user_activation`), and :func:`get` also accepts
  a ``"module:function"`` reference, registered on first use.

Kernels take either kind through one argument, the tuple
:attr:`Activation.kernel`, evaluated by :func:`act_phi` and :func:`act_dphi`
(a built-in unshaped activation goes straight to :func:`phi_scalar`, so its
results are bit-identical to calling it directly).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import numpy.typing as npt
from scipy import special

from initsim._jit import jit

__all__ = [
    "ABS",
    "ASINH",
    "ATAN",
    "BENT_IDENTITY",
    "COS",
    "ELU",
    "ERF",
    "GELU",
    "GELU_TANH",
    "GENERIC",
    "HARD_TANH",
    "IDENTITY_AFFINE",
    "LEAKY_RELU",
    "LINEAR",
    "RELU",
    "SELU",
    "SELU_ALPHA",
    "SELU_LAMBDA",
    "SIGMOID",
    "SILU",
    "SIN",
    "SOFTPLUS",
    "SOFTSIGN",
    "SQUARE",
    "TANH",
    "USER",
    "Activation",
    "act_dphi",
    "act_phi",
    "affine_erf",
    "dphi_array",
    "dphi_scalar",
    "get",
    "names",
    "phi_array",
    "phi_scalar",
    "register",
    "registered",
    "shaped",
    "unregister",
]

# --- codes used inside compiled kernels (stable: they may be stored with results) ---
LINEAR = 0
RELU = 1
LEAKY_RELU = 2
ELU = 3
SELU = 4
GELU = 5
SILU = 6
SOFTPLUS = 7
SIGMOID = 8
TANH = 9
ERF = 10
HARD_TANH = 11
ABS = 12
SIN = 13
COS = 14
SOFTSIGN = 15
ATAN = 16
ASINH = 17
BENT_IDENTITY = 18
SQUARE = 19
GELU_TANH = 20
#: The base code of a registered (user) activation, whose compiled functions
#: travel in the kernel tuple (:attr:`Activation.kernel`).
USER = 1000
#: The fast-path code of a shaped or registered activation: no built-in fast path
#: (ReLU's branch-free gate, the linear shortcut) applies to it.
GENERIC = -1
#: ``(input_scale, input_shift, output_scale, output_shift)`` of an unshaped activation.
IDENTITY_AFFINE = (1.0, 0.0, 1.0, 0.0)

#: SELU's scale and alpha (Klambauer et al. 2017), as in PyTorch.
SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717
# lambda * alpha, correctly rounded (the float product is 1 ulp low): selu(-inf) = -this.
_SELU_LA = 1.7580993408473768599402175208123

_INV_SQRT2 = 0.70710678118654752440084436210485  # 1 / sqrt(2)
_INV_SQRT2PI = 0.39894228040143267793994825337358  # 1 / sqrt(2 pi)
_TWO_OVER_SQRTPI = 1.1283791670955125738961589031215  # 2 / sqrt(pi)
# Beyond these cut-offs the exact result rounds to the value returned there, so
# clamping is exact and avoids inf * 0 = NaN at x = +-inf:
# |x| * Phi(-|x|) underflows to 0 for |x| > 39, and Phi'(x) terms vanish too.
_GELU_CUT = 40.0
# exp(-750) underflows to 0, so sigmoid(-750) == 0 and silu(x) == -0.0 below it.
_SILU_CUT = 750.0
# gelu_tanh = x * sigmoid(2 u), u = sqrt(2/pi) x (1 + 0.044715 x^2): at |x| = 30,
# 2 u ~ 1973, so sigmoid(2 u) is exactly 1 (or 0) beyond: clamping x there is exact.
_GELU_TANH_CUT = 30.0
_GELU_TANH_K = 0.79788456080286535587989211986876  # sqrt(2 / pi)
_GELU_TANH_C = 0.044715
# softsign: beyond 1e300 x / (1 + |x|) rounds to +-1; clamping avoids inf / inf.
_SOFTSIGN_CUT = 1e300


# ----------------------------------------------------------------------------------
# Compiled scalars
# ----------------------------------------------------------------------------------


@jit("float64(int64, float64, float64)")
def phi_scalar(code: int, param: float, x: float) -> float:
    """Evaluate the activation ``code`` at ``x`` (compiled; no validation).

    Parameters
    ----------
    code : int
        Activation code (:data:`RELU`, ...); an unknown code returns NaN.
    param : float
        The activation's parameter (slope, alpha), 0.0 where unused.
    x : float
        Pre-activation.

    Returns
    -------
    float
        ``phi(x)``; NaN for NaN input; limits at ``+-inf``.
    """
    if x != x:  # NaN propagates for every activation
        return x
    if code == LINEAR:
        return x
    elif code == RELU:
        return x if x > 0.0 else 0.0
    elif code == LEAKY_RELU:
        if x > 0.0:
            return x
        # slope 0 is relu: avoid 0 * -inf = NaN
        return param * x if param != 0.0 else 0.0
    elif code == ELU:
        return x if x > 0.0 else param * math.expm1(x)
    elif code == SELU:
        return SELU_LAMBDA * x if x > 0.0 else _SELU_LA * math.expm1(x)
    elif code == GELU:
        if x < -_GELU_CUT:
            return -0.0
        return 0.5 * x * math.erfc(-x * _INV_SQRT2)
    elif code == SILU:
        if x < -_SILU_CUT:
            return -0.0
        e = math.exp(-abs(x))
        s = 1.0 / (1.0 + e) if x >= 0.0 else e / (1.0 + e)
        return x * s
    elif code == SOFTPLUS:
        return max(x, 0.0) + math.log1p(math.exp(-abs(x)))
    elif code == SIGMOID:
        e = math.exp(-abs(x))
        return 1.0 / (1.0 + e) if x >= 0.0 else e / (1.0 + e)
    elif code == TANH:
        return math.tanh(x)
    elif code == ERF:
        return math.erf(x)
    elif code == HARD_TANH:
        if x > 1.0:
            return 1.0
        elif x < -1.0:
            return -1.0
        return x
    elif code == ABS:
        return abs(x)
    elif code == SIN:
        if abs(x) == math.inf:  # no limit; also keeps the pure-Python run from raising
            return math.nan
        return math.sin(x)
    elif code == COS:
        if abs(x) == math.inf:
            return math.nan
        return math.cos(x)
    elif code == SOFTSIGN:
        xc = min(max(x, -_SOFTSIGN_CUT), _SOFTSIGN_CUT)  # exact: +-1 beyond; no inf / inf
        return xc / (1.0 + abs(xc))
    elif code == ATAN:
        return math.atan(x)
    elif code == ASINH:
        return math.asinh(x)
    elif code == BENT_IDENTITY:
        a = abs(x)
        if a == math.inf:
            return x
        # g = sqrt(x^2 + 1) - 1 without cancellation; beyond 1e150 it rounds to |x|
        g = x * x / (math.sqrt(1.0 + x * x) + 1.0) if a <= 1e150 else a
        return 0.5 * g + x
    elif code == SQUARE:
        return x * x
    elif code == GELU_TANH:
        # 0.5 x (1 + tanh(u)) = x sigmoid(2 u); clamping is exact beyond the cut
        xm = max(x, -_GELU_TANH_CUT)
        xc = min(xm, _GELU_TANH_CUT)
        t = 2.0 * _GELU_TANH_K * xc * (1.0 + _GELU_TANH_C * xc * xc)
        e = math.exp(-abs(t))
        s = 1.0 / (1.0 + e) if t >= 0.0 else e / (1.0 + e)
        return xm * s
    return math.nan


@jit("float64(int64, float64, float64)")
def dphi_scalar(code: int, param: float, x: float) -> float:
    """Evaluate the derivative of activation ``code`` at ``x`` (compiled).

    Kink conventions: ``relu'(0) = 0``, ``leaky_relu'(0) = slope``,
    ``elu'(0) = 1``, ``selu'(0) = lambda``, ``hard_tanh'(+-1) = 0``,
    ``abs'(0) = 0``.

    Parameters
    ----------
    code : int
        Activation code (:data:`RELU`, ...); an unknown code returns NaN.
    param : float
        The activation's parameter (slope, alpha), 0.0 where unused.
    x : float
        Pre-activation.

    Returns
    -------
    float
        ``phi'(x)``; NaN for NaN input; limits at ``+-inf``.
    """
    if x != x:
        return x
    if code == LINEAR:
        return 1.0
    elif code == RELU:
        return 1.0 if x > 0.0 else 0.0
    elif code == LEAKY_RELU:
        return 1.0 if x > 0.0 else param
    elif code == ELU:
        return 1.0 if x >= 0.0 else param * math.exp(x)
    elif code == SELU:
        return SELU_LAMBDA if x >= 0.0 else _SELU_LA * math.exp(x)
    elif code == GELU:
        # Phi(x) + x * pdf(x); clamping is exact beyond the cut (see _GELU_CUT).
        xc = min(max(x, -_GELU_CUT), _GELU_CUT)
        return 0.5 * math.erfc(-xc * _INV_SQRT2) + xc * _INV_SQRT2PI * math.exp(-0.5 * xc * xc)
    elif code == SILU:
        # s * (1 + x * (1 - s)) with 1 - s = sigmoid(-x) computed without cancellation.
        xc = min(max(x, -_SILU_CUT), _SILU_CUT)
        e = math.exp(-abs(xc))
        if xc >= 0.0:
            s = 1.0 / (1.0 + e)
            sm = e / (1.0 + e)
        else:
            s = e / (1.0 + e)
            sm = 1.0 / (1.0 + e)
        return s * (1.0 + xc * sm)
    elif code == SOFTPLUS:
        e = math.exp(-abs(x))
        return 1.0 / (1.0 + e) if x >= 0.0 else e / (1.0 + e)
    elif code == SIGMOID:
        e = math.exp(-abs(x))
        return e / ((1.0 + e) * (1.0 + e))
    elif code == TANH:
        # sech^2 x = 4 e / (1 + e)^2 with e = exp(-2|x|): accurate, no overflow.
        e = math.exp(-2.0 * min(abs(x), 400.0))  # exp(-800) == 0; avoids -2 * 1e308 = -inf
        return 4.0 * e / ((1.0 + e) * (1.0 + e))
    elif code == ERF:
        xc = min(max(x, -_GELU_CUT), _GELU_CUT)  # exp(-1600) == 0; avoids x * x overflow
        return _TWO_OVER_SQRTPI * math.exp(-xc * xc)
    elif code == HARD_TANH:
        return 1.0 if -1.0 < x < 1.0 else 0.0
    elif code == ABS:
        if x > 0.0:
            return 1.0
        return -1.0 if x < 0.0 else 0.0
    elif code == SIN:
        if abs(x) == math.inf:
            return math.nan
        return math.cos(x)
    elif code == COS:
        if abs(x) == math.inf:
            return math.nan
        return -math.sin(x)
    elif code == SOFTSIGN:
        t = 1.0 / (1.0 + abs(x))  # t * t underflows gracefully where (1 + |x|)^2 overflows
        return t * t
    elif code == ATAN:
        a = abs(x)
        if a <= 1.0:
            return 1.0 / (1.0 + x * x)
        t = 1.0 / a
        return t * t / (1.0 + t * t)
    elif code == ASINH:
        a = abs(x)
        if a <= 1.0:
            return 1.0 / math.sqrt(1.0 + x * x)
        t = 1.0 / a
        return t / math.sqrt(1.0 + t * t)
    elif code == BENT_IDENTITY:
        # 1 + x / (2 sqrt(x^2 + 1)), the ratio written without overflow
        a = abs(x)
        if a <= 1.0:
            r = x / math.sqrt(1.0 + x * x)
        else:
            t = 1.0 / a
            r = math.copysign(1.0 / math.sqrt(1.0 + t * t), x)
        return 1.0 + 0.5 * r
    elif code == SQUARE:
        return 2.0 * x
    elif code == GELU_TANH:
        # s + x s (1 - s) 2 u'(x), s = sigmoid(2 u), 1 - s = sigmoid(-2 u) without cancellation
        xc = min(max(x, -_GELU_TANH_CUT), _GELU_TANH_CUT)
        t = 2.0 * _GELU_TANH_K * xc * (1.0 + _GELU_TANH_C * xc * xc)
        e = math.exp(-abs(t))
        if t >= 0.0:
            s = 1.0 / (1.0 + e)
            sm = e / (1.0 + e)
        else:
            s = e / (1.0 + e)
            sm = 1.0 / (1.0 + e)
        dt = 2.0 * _GELU_TANH_K * (1.0 + 3.0 * _GELU_TANH_C * xc * xc)
        return s + xc * dt * s * sm
    return math.nan


@numba.cfunc(numba.float64(numba.float64), cache=True)
def _no_function(x: float) -> float:  # pragma: no cover - a compiled placeholder
    """Fill the function slots of a built-in's kernel tuple (never called)."""
    return math.nan


@jit(inline="always")
def act_phi(act, x):
    """Evaluate ``phi_hat(x)`` of a kernel tuple (compiled; no validation).

    ``act`` is :attr:`Activation.kernel`: ``(fast, base, param, in_scale,
    in_shift, out_scale, out_shift, phi_fn, dphi_fn)``. A built-in unshaped
    activation (``fast == base``) is :func:`phi_scalar` itself; otherwise
    ``phi_hat(x) = out_scale * (phi(in_scale * x + in_shift) + out_shift)``
    with ``phi`` the built-in ``base`` or, for :data:`USER`, the registered
    compiled ``phi_fn``. NaN in gives NaN out.
    """
    if act[0] != GENERIC:
        return phi_scalar(act[0], act[2], x)
    if x != x:
        return x
    u = act[3] * x + act[4]
    if act[1] == USER:
        v = act[7](u)
    else:
        v = phi_scalar(act[1], act[2], u)
    return act[5] * (v + act[6])


@jit(inline="always")
def act_dphi(act, x):
    """Evaluate ``phi_hat'(x) = out_scale * in_scale * phi'(in_scale * x + in_shift)``.

    See :func:`act_phi`; a built-in unshaped activation is :func:`dphi_scalar`.
    """
    if act[0] != GENERIC:
        return dphi_scalar(act[0], act[2], x)
    if x != x:
        return x
    u = act[3] * x + act[4]
    if act[1] == USER:
        d = act[8](u)
    else:
        d = dphi_scalar(act[1], act[2], u)
    return act[5] * act[3] * d


@jit
def phi_array(code: int, param: float, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Fill ``out[i] = phi(x[i])`` for 1-D float64 arrays (compiled; no validation).

    Parameters
    ----------
    code : int
        Activation code.
    param : float
        The activation's parameter.
    x : numpy.ndarray
        1-D float64 pre-activations.
    out : numpy.ndarray
        1-D float64 output of the same length (may be ``x`` itself).

    Returns
    -------
    numpy.ndarray
        ``out``.
    """
    for i in range(x.shape[0]):
        out[i] = phi_scalar(code, param, x[i])
    return out


@jit
def dphi_array(code: int, param: float, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Fill ``out[i] = phi'(x[i])`` for 1-D float64 arrays (compiled; no validation).

    Parameters
    ----------
    code : int
        Activation code.
    param : float
        The activation's parameter.
    x : numpy.ndarray
        1-D float64 pre-activations.
    out : numpy.ndarray
        1-D float64 output of the same length (may be ``x`` itself).

    Returns
    -------
    numpy.ndarray
        ``out``.
    """
    for i in range(x.shape[0]):
        out[i] = dphi_scalar(code, param, x[i])
    return out


# ----------------------------------------------------------------------------------
# numpy twins (independent of the compiled scalars; same formulas and conventions)
# ----------------------------------------------------------------------------------

FloatArray = npt.NDArray[np.float64]


def _keep_nan(x: FloatArray, y: FloatArray) -> FloatArray:
    return np.where(np.isnan(x), x, y)


def _sigmoid_np(x: FloatArray) -> FloatArray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))


def _phi_linear(x: FloatArray, p: float) -> FloatArray:
    return x.copy()


def _dphi_linear(x: FloatArray, p: float) -> FloatArray:
    return _keep_nan(x, np.ones_like(x))


def _phi_relu(x: FloatArray, p: float) -> FloatArray:
    return _keep_nan(x, np.where(x > 0.0, x, 0.0))


def _dphi_relu(x: FloatArray, p: float) -> FloatArray:
    return _keep_nan(x, np.where(x > 0.0, 1.0, 0.0))


def _phi_leaky_relu(x: FloatArray, p: float) -> FloatArray:
    if p == 0.0:
        return _phi_relu(x, p)
    with np.errstate(over="ignore"):  # |slope| > 1 can overflow to -inf, as it should
        return np.where(x > 0.0, x, p * np.minimum(x, 0.0))


def _dphi_leaky_relu(x: FloatArray, p: float) -> FloatArray:
    return _keep_nan(x, np.where(x > 0.0, 1.0, p))


def _phi_elu(x: FloatArray, p: float) -> FloatArray:
    return np.where(x > 0.0, x, p * np.expm1(np.minimum(x, 0.0)))


def _dphi_elu(x: FloatArray, p: float) -> FloatArray:
    return _keep_nan(x, np.where(x >= 0.0, 1.0, p * np.exp(np.minimum(x, 0.0))))


def _phi_selu(x: FloatArray, p: float) -> FloatArray:
    neg = _SELU_LA * np.expm1(np.minimum(x, 0.0))
    with np.errstate(over="ignore"):  # lambda > 1: x near the float max overflows to inf
        return np.where(x > 0.0, SELU_LAMBDA * x, neg)


def _dphi_selu(x: FloatArray, p: float) -> FloatArray:
    neg = _SELU_LA * np.exp(np.minimum(x, 0.0))
    return _keep_nan(x, np.where(x >= 0.0, SELU_LAMBDA, neg))


def _phi_gelu(x: FloatArray, p: float) -> FloatArray:
    xc = np.maximum(x, -_GELU_CUT)
    return np.where(x < -_GELU_CUT, -0.0, 0.5 * xc * special.erfc(-xc * _INV_SQRT2))


def _dphi_gelu(x: FloatArray, p: float) -> FloatArray:
    xc = np.clip(x, -_GELU_CUT, _GELU_CUT)
    return 0.5 * special.erfc(-xc * _INV_SQRT2) + xc * _INV_SQRT2PI * np.exp(-0.5 * xc * xc)


def _phi_silu(x: FloatArray, p: float) -> FloatArray:
    xc = np.maximum(x, -_SILU_CUT)
    return np.where(x < -_SILU_CUT, -0.0, xc * _sigmoid_np(xc))


def _dphi_silu(x: FloatArray, p: float) -> FloatArray:
    xc = np.clip(x, -_SILU_CUT, _SILU_CUT)
    s = _sigmoid_np(xc)
    return _keep_nan(x, s * (1.0 + xc * _sigmoid_np(-xc)))


def _phi_softplus(x: FloatArray, p: float) -> FloatArray:
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def _dphi_softplus(x: FloatArray, p: float) -> FloatArray:
    return _keep_nan(x, _sigmoid_np(x))


def _phi_sigmoid(x: FloatArray, p: float) -> FloatArray:
    return _keep_nan(x, _sigmoid_np(x))


def _dphi_sigmoid(x: FloatArray, p: float) -> FloatArray:
    e = np.exp(-np.abs(x))
    return e / ((1.0 + e) * (1.0 + e))


def _phi_tanh(x: FloatArray, p: float) -> FloatArray:
    return np.tanh(x)


def _dphi_tanh(x: FloatArray, p: float) -> FloatArray:
    e = np.exp(-2.0 * np.minimum(np.abs(x), 400.0))
    return 4.0 * e / ((1.0 + e) * (1.0 + e))


def _phi_erf(x: FloatArray, p: float) -> FloatArray:
    return special.erf(x)


def _dphi_erf(x: FloatArray, p: float) -> FloatArray:
    xc = np.clip(x, -_GELU_CUT, _GELU_CUT)
    return _TWO_OVER_SQRTPI * np.exp(-xc * xc)


def _phi_hard_tanh(x: FloatArray, p: float) -> FloatArray:
    return np.clip(x, -1.0, 1.0)


def _dphi_hard_tanh(x: FloatArray, p: float) -> FloatArray:
    return _keep_nan(x, np.where((x > -1.0) & (x < 1.0), 1.0, 0.0))


def _phi_abs(x: FloatArray, p: float) -> FloatArray:
    return np.abs(x)


def _dphi_abs(x: FloatArray, p: float) -> FloatArray:
    return _keep_nan(x, np.where(x > 0.0, 1.0, np.where(x < 0.0, -1.0, 0.0)))


def _finite_or_nan(x: FloatArray, f: Callable[[FloatArray], FloatArray]) -> FloatArray:
    """``f(x)`` where ``x`` is finite, NaN at ``+-inf`` (sin and cos have no limit there)."""
    inf = np.isinf(x)
    return np.where(inf, np.nan, f(np.where(inf, 0.0, x)))


def _phi_sin(x: FloatArray, p: float) -> FloatArray:
    return _finite_or_nan(x, np.sin)


def _dphi_sin(x: FloatArray, p: float) -> FloatArray:
    return _finite_or_nan(x, np.cos)


def _phi_cos(x: FloatArray, p: float) -> FloatArray:
    return _finite_or_nan(x, np.cos)


def _dphi_cos(x: FloatArray, p: float) -> FloatArray:
    return _finite_or_nan(x, lambda v: -np.sin(v))


def _phi_softsign(x: FloatArray, p: float) -> FloatArray:
    xc = np.clip(x, -_SOFTSIGN_CUT, _SOFTSIGN_CUT)
    return xc / (1.0 + np.abs(xc))


def _dphi_softsign(x: FloatArray, p: float) -> FloatArray:
    t = 1.0 / (1.0 + np.abs(x))
    return t * t


def _phi_atan(x: FloatArray, p: float) -> FloatArray:
    return np.arctan(x)


def _split_at_one(x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(|x| > 1, x where |x| <= 1 else 0, 1 / |x| where |x| > 1 else 0)``; NaN stays in x."""
    a = np.abs(x)
    big = a > 1.0
    return big, np.where(big, 0.0, x), np.where(big, 1.0 / np.where(big, a, 1.0), 0.0)


def _dphi_atan(x: FloatArray, p: float) -> FloatArray:
    big, small, t = _split_at_one(x)
    return np.where(big, t * t / (1.0 + t * t), 1.0 / (1.0 + small * small))


def _phi_asinh(x: FloatArray, p: float) -> FloatArray:
    return np.arcsinh(x)


def _dphi_asinh(x: FloatArray, p: float) -> FloatArray:
    big, small, t = _split_at_one(x)
    return np.where(big, t / np.sqrt(1.0 + t * t), 1.0 / np.sqrt(1.0 + small * small))


def _phi_bent_identity(x: FloatArray, p: float) -> FloatArray:
    a = np.abs(x)
    mid = a <= 1e150
    xs = np.where(mid, x, 0.0)
    g = np.where(mid, xs * xs / (np.sqrt(1.0 + xs * xs) + 1.0), a)
    xf = np.where(np.isinf(x), 0.0, x)
    with np.errstate(over="ignore"):  # beyond ~1.2e308 the value overflows to inf, as it should
        return np.where(np.isinf(x), x, 0.5 * g + xf)


def _dphi_bent_identity(x: FloatArray, p: float) -> FloatArray:
    big, small, t = _split_at_one(x)
    r = np.where(
        big, np.copysign(1.0 / np.sqrt(1.0 + t * t), x), small / np.sqrt(1.0 + small * small)
    )
    return 1.0 + 0.5 * r


def _phi_square(x: FloatArray, p: float) -> FloatArray:
    with np.errstate(over="ignore"):  # |x| > 1.3e154 overflows to inf, as it should
        return x * x


def _dphi_square(x: FloatArray, p: float) -> FloatArray:
    with np.errstate(over="ignore"):
        return 2.0 * x


def _gelu_tanh_t(xc: FloatArray) -> FloatArray:
    return 2.0 * _GELU_TANH_K * xc * (1.0 + _GELU_TANH_C * xc * xc)


def _phi_gelu_tanh(x: FloatArray, p: float) -> FloatArray:
    xm = np.maximum(x, -_GELU_TANH_CUT)
    xc = np.minimum(xm, _GELU_TANH_CUT)
    return xm * _sigmoid_np(_gelu_tanh_t(xc))


def _dphi_gelu_tanh(x: FloatArray, p: float) -> FloatArray:
    xc = np.clip(x, -_GELU_TANH_CUT, _GELU_TANH_CUT)
    t = _gelu_tanh_t(xc)
    s, sm = _sigmoid_np(t), _sigmoid_np(-t)
    dt = 2.0 * _GELU_TANH_K * (1.0 + 3.0 * _GELU_TANH_C * xc * xc)
    return _keep_nan(x, s + xc * dt * s * sm)


_Twin = Callable[[FloatArray, float], FloatArray]

_TWINS: dict[int, tuple[_Twin, _Twin]] = {
    LINEAR: (_phi_linear, _dphi_linear),
    RELU: (_phi_relu, _dphi_relu),
    LEAKY_RELU: (_phi_leaky_relu, _dphi_leaky_relu),
    ELU: (_phi_elu, _dphi_elu),
    SELU: (_phi_selu, _dphi_selu),
    GELU: (_phi_gelu, _dphi_gelu),
    SILU: (_phi_silu, _dphi_silu),
    SOFTPLUS: (_phi_softplus, _dphi_softplus),
    SIGMOID: (_phi_sigmoid, _dphi_sigmoid),
    TANH: (_phi_tanh, _dphi_tanh),
    ERF: (_phi_erf, _dphi_erf),
    HARD_TANH: (_phi_hard_tanh, _dphi_hard_tanh),
    ABS: (_phi_abs, _dphi_abs),
    SIN: (_phi_sin, _dphi_sin),
    COS: (_phi_cos, _dphi_cos),
    SOFTSIGN: (_phi_softsign, _dphi_softsign),
    ATAN: (_phi_atan, _dphi_atan),
    ASINH: (_phi_asinh, _dphi_asinh),
    BENT_IDENTITY: (_phi_bent_identity, _dphi_bent_identity),
    SQUARE: (_phi_square, _dphi_square),
    GELU_TANH: (_phi_gelu_tanh, _dphi_gelu_tanh),
}


def _as_result(y: Any) -> FloatArray | float:
    y = np.asarray(y, dtype=np.float64)
    return float(y) if y.ndim == 0 else y


# ----------------------------------------------------------------------------------
# The Activation object and the registry
# ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Activation:
    """One activation function with its parameter and its properties.

    Build instances with :func:`get`, which validates the parameter and fills
    in the metadata; the constructor itself does not check anything.

    Attributes
    ----------
    name : str
        Canonical name (see :func:`names`).
    code : int
        Integer code passed to the compiled :func:`phi_scalar` /
        :func:`dphi_scalar`.
    param : float
        The one float parameter: ``slope`` for ``leaky_relu``, ``alpha`` for
        ``elu``, 0.0 otherwise.
    positively_homogeneous : bool
        ``phi(a x) == a phi(x)`` for all ``a > 0`` and all ``x`` (linear,
        relu, leaky_relu, abs). Such nets propagate any input scale exactly.
    odd : bool
        ``phi(-x) == -phi(x)`` for all ``x`` (linear, tanh, erf, hard_tanh,
        sin, softsign, atan, asinh; leaky_relu only when ``slope == 1``).
        abs, cos and square are even, which is not flagged.
    bounded : bool
        ``sup |phi(x)| < inf`` (sigmoid, tanh, erf, hard_tanh, sin, cos,
        softsign: bound 1; atan: bound ``pi / 2``).
    nonnegative : bool
        ``phi(x) >= 0`` for all ``x`` (relu, softplus, sigmoid, abs, square;
        leaky_relu with ``slope <= 0``). Such activations have a nonzero mean under a
        centred Gaussian input.
    can_be_dead : bool
        ``phi`` and ``phi'`` are both exactly 0 on the whole half-line
        ``x <= 0`` (relu; leaky_relu with ``slope == 0``): a unit whose
        pre-activation stays there passes neither signal nor gradient. Smooth
        activations that merely underflow to 0 (gelu, silu far left) are not
        flagged.
    kinks : tuple of float
        The points where ``phi'`` jumps (relu, abs: ``(0.0,)``, hard_tanh:
        ``(-1.0, 1.0)``; empty for smooth activations and for elu with
        ``alpha == 1``; softsign, like elu with ``alpha == 1``, is C^1 but
        its ``phi''`` jumps at 0, which is not listed). Finite differences
        of ``phi`` are only meaningful away from them.
    gain_name : str or None
        The ``nonlinearity`` name PyTorch's ``torch.nn.init.calculate_gain``
        uses for this activation, or None if it has none.
    affine : tuple of 4 floats
        ``(input_scale, input_shift, output_scale, output_shift)`` of a shaped
        activation (:func:`shaped`): ``phi_hat(x) = output_scale *
        (phi(input_scale * x + input_shift) + output_shift)``, with ``phi``
        the base given by :attr:`code` (or :attr:`user`);
        :data:`IDENTITY_AFFINE` for an unshaped one.
    user : initsim.user_activation.UserFunction or None
        The compiled functions of a registered activation (:func:`register`);
        :attr:`code` is then :data:`USER`.
    base : str or None
        The name of the activation a shaped one transforms (None if unshaped).
    """

    name: str
    code: int
    param: float = 0.0
    positively_homogeneous: bool = False
    odd: bool = False
    bounded: bool = False
    nonnegative: bool = False
    can_be_dead: bool = False
    kinks: tuple[float, ...] = ()
    gain_name: str | None = None
    affine: tuple[float, float, float, float] = IDENTITY_AFFINE
    user: Any = None
    base: str | None = None

    @property
    def is_shaped(self) -> bool:
        """Whether :attr:`affine` is not the identity."""
        return self.affine != IDENTITY_AFFINE

    @property
    def is_builtin(self) -> bool:
        """A built-in activation, unshaped: the only kind the closed forms and the GPU know."""
        return self.user is None and not self.is_shaped

    @property
    def unshaped(self) -> Activation:
        """The base activation ``phi`` of a shaped one (the activation itself if unshaped)."""
        if not self.is_shaped:
            return self
        if self.user is not None:
            return get(self.user.name, **dict(self.user.params))
        assert self.base is not None
        return Activation.from_param(self.base, self.param)

    @property
    def kernel(self) -> tuple[Any, ...]:
        """The tuple the compiled kernels take (:func:`act_phi`, :func:`act_dphi`).

        ``(fast, base, param, in_scale, in_shift, out_scale, out_shift, phi_fn,
        dphi_fn)``: ``fast`` is :attr:`code` for an unshaped built-in and
        :data:`GENERIC` otherwise; the function slots hold the compiled
        callbacks of a registered activation (a placeholder otherwise). One
        Numba specialisation serves every activation.
        """
        a_in, b_in, a_out, b_out = (float(v) for v in self.affine)
        if self.user is not None:
            fns = (self.user.phi_c, self.user.dphi_c)
        else:
            fns = (_no_function, _no_function)
        fast = self.code if self.is_builtin else GENERIC
        return (int(fast), int(self.code), float(self.param), a_in, b_in, a_out, b_out, *fns)

    def _base_phi(self, x: FloatArray) -> FloatArray:
        if self.user is not None:
            with np.errstate(all="ignore"):  # the user's arithmetic: inf / inf and such
                return np.asarray(self.user.phi_ufunc(x), dtype=np.float64)
        return _TWINS[self.code][0](x, self.param)

    def _base_dphi(self, x: FloatArray) -> FloatArray:
        if self.user is not None:
            with np.errstate(all="ignore"):
                return np.asarray(self.user.dphi_ufunc(x), dtype=np.float64)
        return _TWINS[self.code][1](x, self.param)

    def phi(self, x: npt.ArrayLike) -> FloatArray | float:
        """Evaluate the activation with numpy (the twin of :func:`phi_scalar`).

        Parameters
        ----------
        x : array_like
            Pre-activations; converted to float64.

        Returns
        -------
        numpy.ndarray or float
            ``phi(x)`` with the shape of ``x`` (a float for scalar input).
        """
        xa = np.asarray(x, dtype=np.float64)
        if not self.is_shaped:
            return _as_result(self._base_phi(xa))
        a_in, b_in, a_out, b_out = self.affine
        return _as_result(_keep_nan(xa, a_out * (self._base_phi(a_in * xa + b_in) + b_out)))

    def dphi(self, x: npt.ArrayLike) -> FloatArray | float:
        """Evaluate the derivative with numpy (the twin of :func:`dphi_scalar`).

        Parameters
        ----------
        x : array_like
            Pre-activations; converted to float64.

        Returns
        -------
        numpy.ndarray or float
            ``phi'(x)`` with the shape of ``x`` (a float for scalar input),
            with the module's conventions at kinks.
        """
        xa = np.asarray(x, dtype=np.float64)
        if not self.is_shaped:
            return _as_result(self._base_dphi(xa))
        a_in, b_in, a_out, _ = self.affine
        return _as_result(_keep_nan(xa, a_out * a_in * self._base_dphi(a_in * xa + b_in)))

    @property
    def params(self) -> dict[str, float]:
        """The named parameters, such that ``get(a.name, **a.params) == a``.

        For a shaped activation these are its base's parameters.
        """
        if self.user is not None:
            return dict(self.user.params)
        spec = _SPECS[self.base if self.base is not None else self.name]
        return {spec.param_name: self.param} if spec.param_name is not None else {}

    @property
    def label(self) -> str:
        """A short human-readable label, e.g. ``"leaky_relu(slope=0.01)"``."""
        inner = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        if self.is_shaped:
            return self.name
        return f"{self.name}({inner})" if inner else self.name

    def config(self) -> dict[str, Any]:
        """Return the activation's entries of a run's stored config (and of its hash).

        Returns
        -------
        dict
            ``activation`` (the name) and ``activation_param`` always; for a
            shaped activation ``activation_base`` and ``activation_affine``;
            for a registered one ``activation_params``,
            ``activation_source`` (its ``module:attribute`` reference, or
            None), ``activation_source_sha256`` and ``activation_dphi``
            (``"given"`` or ``"numerical"``). :meth:`from_config` reads them
            back.
        """
        out: dict[str, Any] = {"activation": self.name, "activation_param": self.param}
        if self.is_shaped:
            out["activation_base"] = self.base
            out["activation_affine"] = [float(v) for v in self.affine]
        if self.user is not None:
            out["activation_params"] = dict(self.user.params)
            out["activation_source"] = self.user.reference
            out["activation_source_sha256"] = self.user.source_hash
            out["activation_dphi"] = "numerical" if self.user.derived_dphi else "given"
        return out

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Activation:
        """Rebuild the activation of a stored config (see :meth:`config`).

        Parameters
        ----------
        cfg : mapping
            A run's config (``result.provenance["config"]``).

        Returns
        -------
        Activation
            The activation. A registered one is looked up by name, or
            imported again from its ``activation_source`` reference.

        Raises
        ------
        ValueError
            If the activation cannot be rebuilt (an unknown name, a
            registered activation that is neither registered in this process
            nor importable, or a source whose hash changed).
        """
        name = cfg["activation"]
        user_params = cfg.get("activation_params")
        base_name = cfg.get("activation_base")
        affine = cfg.get("activation_affine")
        source = cfg.get("activation_source")
        if user_params is not None or source is not None:
            root = base_name if base_name is not None else name
            try:
                act = get(root, **dict(user_params or {}))
            except ValueError:
                if source is None:
                    raise
                act = get(source, **dict(user_params or {}))
            want = cfg.get("activation_source_sha256")
            if want is not None and act.user is not None and act.user.source_hash != want:
                raise ValueError(
                    f"activation {root!r}: its source changed since the run (sha256 "
                    f"{act.user.source_hash[:12]} now, {str(want)[:12]} recorded)"
                )
        elif base_name is not None:
            act = cls.from_param(base_name, float(cfg.get("activation_param", 0.0)))
        else:
            return cls.from_param(name, float(cfg.get("activation_param", 0.0)))
        if affine is not None:
            a_in, b_in, a_out, b_out = (float(v) for v in affine)
            act = shaped(
                act,
                input_scale=a_in,
                input_shift=b_in,
                output_scale=a_out,
                output_shift=b_out,
                name=name,
            )
        return act

    @classmethod
    def from_param(cls, name: str, param: float | None = None) -> Activation:
        """Rebuild an activation from its name and its unnamed :attr:`param`.

        Stored configs (the provenance of :func:`initsim.simulate` and
        :func:`initsim.jacobian_spectrum`) hold ``activation`` and
        ``activation_param``; this maps the number back to the activation's
        own parameter name (``slope`` for ``leaky_relu``, ``alpha`` for
        ``elu``), so that ``Activation.from_param(a.name, a.param) == a``.

        Parameters
        ----------
        name : str
            An activation name, as accepted by :func:`get`.
        param : float, optional
            The value of :attr:`param`; None gives the activation's default.
            Activations without a parameter accept only None or 0.0 (what
            :attr:`param` holds for them).

        Returns
        -------
        Activation
            The activation, validated as by :func:`get`.

        Raises
        ------
        ValueError
            If the name is unknown, the value is invalid for the parameter,
            or a nonzero ``param`` is given to an activation without one.
        """
        act = get(name)
        if not act.is_builtin:
            if param not in (None, 0.0, act.param):
                raise ValueError(f"{act.name} takes no unnamed parameter; got param={param!r}")
            return act
        key = act.name
        param_name = _SPECS[key].param_name
        if param is None:
            return get(key)
        if param_name is None:
            if param != 0.0:
                raise ValueError(f"{key} takes no parameter; got param={param!r}")
            return get(key)
        return get(key, **{param_name: param})


@dataclass(frozen=True)
class _Spec:
    code: int
    gain_name: str | None = None
    param_name: str | None = None
    default: float = 0.0


_SPECS: dict[str, _Spec] = {
    "linear": _Spec(LINEAR, "linear"),
    "relu": _Spec(RELU, "relu"),
    "leaky_relu": _Spec(LEAKY_RELU, "leaky_relu", "slope", 0.01),
    "elu": _Spec(ELU, None, "alpha", 1.0),
    "selu": _Spec(SELU, "selu"),
    "gelu": _Spec(GELU),
    "silu": _Spec(SILU),
    "softplus": _Spec(SOFTPLUS),
    "sigmoid": _Spec(SIGMOID, "sigmoid"),
    "tanh": _Spec(TANH, "tanh"),
    "erf": _Spec(ERF),
    "hard_tanh": _Spec(HARD_TANH),
    # none of these has a torch.nn.init.calculate_gain name
    "abs": _Spec(ABS),
    "sin": _Spec(SIN),
    "cos": _Spec(COS),
    "softsign": _Spec(SOFTSIGN),
    "atan": _Spec(ATAN),
    "asinh": _Spec(ASINH),
    "bent_identity": _Spec(BENT_IDENTITY),
    "square": _Spec(SQUARE),
    "gelu_tanh": _Spec(GELU_TANH),
}

#: Accepted alternative spellings: PyTorch module names in lower case, "swish",
#: numpy's names of the inverse functions, and HuggingFace's names of tanh-gelu.
_ALIASES: dict[str, str] = {
    "identity": "linear",
    "leakyrelu": "leaky_relu",
    "hardtanh": "hard_tanh",
    "swish": "silu",
    "arctan": "atan",
    "arcsinh": "asinh",
    "bentidentity": "bent_identity",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
}


def names() -> list[str]:
    """Return the canonical activation names, sorted.

    Returns
    -------
    list of str
        Names accepted by :func:`get` (aliases not included).
    """
    return sorted(_SPECS)


def _check_param(name: str, param_name: str, value: Any) -> float:
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"{name}: parameter {param_name!r} must be a real number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name}: parameter {param_name!r} must be a real number, got {value!r}"
        ) from None
    if not math.isfinite(v):
        raise ValueError(f"{name}: parameter {param_name!r} must be finite, got {v!r}")
    if param_name == "alpha" and v <= 0.0:
        raise ValueError(f"{name}: parameter 'alpha' must be > 0, got {v!r}")
    return v


_ODD = (LINEAR, TANH, ERF, HARD_TANH, SIN, SOFTSIGN, ATAN, ASINH)
_BOUNDED = (SIGMOID, TANH, ERF, HARD_TANH, SIN, COS, SOFTSIGN, ATAN)
_NONNEGATIVE = (RELU, SOFTPLUS, SIGMOID, ABS, SQUARE)


def _metadata(code: int, p: float) -> dict[str, Any]:
    return {
        "positively_homogeneous": code in (LINEAR, RELU, LEAKY_RELU, ABS),
        "odd": code in _ODD or (code == LEAKY_RELU and p == 1.0),
        "bounded": code in _BOUNDED,
        "nonnegative": code in _NONNEGATIVE or (code == LEAKY_RELU and p <= 0.0),
        "can_be_dead": code == RELU or (code == LEAKY_RELU and p == 0.0),
        "kinks": (
            (0.0,)
            if code in (RELU, SELU, ABS)
            or (code == LEAKY_RELU and p != 1.0)
            or (code == ELU and p != 1.0)
            else (-1.0, 1.0)
            if code == HARD_TANH
            else ()
        ),
    }


def get(name: str | Activation, **params: float) -> Activation:
    """Look up an activation by name, with its parameter.

    Parameters
    ----------
    name : str or Activation
        Canonical name (see :func:`names`), case-insensitive, with ``-`` or
        space accepted for ``_``. Aliases: ``identity`` (linear),
        ``leakyrelu`` (leaky_relu), ``hardtanh`` (hard_tanh), ``swish``
        (silu), ``arctan`` (atan), ``arcsinh`` (asinh), ``bentidentity``
        (bent_identity), ``gelu_new`` and ``gelu_pytorch_tanh``
        (gelu_tanh). An :class:`Activation` is returned as is, or re-built with
        ``params`` overriding its own.
    **params : float
        ``slope`` for ``leaky_relu`` (default 0.01, any finite value) or
        ``alpha`` for ``elu`` (default 1.0, finite and > 0). Other
        activations take none.

    Returns
    -------
    Activation
        The activation, with its metadata.

    Raises
    ------
    TypeError
        If ``name`` is neither a string nor an :class:`Activation`.
    ValueError
        If the name is unknown (the message lists the valid names), a
        parameter is not accepted by this activation, or its value is invalid
        (the message names the parameter).
    """
    if isinstance(name, Activation):
        if not params:
            return name
        if name.is_shaped:
            raise ValueError(
                f"{name.name} is shaped: build it again with shaped() to change its parameters"
            )
        return get(name.name, **{**name.params, **params})
    if not isinstance(name, str):
        raise TypeError(f"activation name must be a str or an Activation, got {type(name)!r}")
    if ":" in name:
        return _from_reference(name, params)
    if name.strip() in _USER:
        return _user_variant(_USER[name.strip()], params)
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = _ALIASES.get(key, key)
    spec = _SPECS.get(key)
    if spec is None:
        extra = f"; registered: {', '.join(sorted(_USER))}" if _USER else ""
        raise ValueError(
            f"unknown activation {name!r}; valid names: {', '.join(names())} "
            f"(aliases: {', '.join(sorted(_ALIASES))}){extra}, or a 'module:function' "
            "reference to your own"
        )
    accepted = {spec.param_name} if spec.param_name is not None else set()
    unknown = sorted(set(params) - accepted)
    if unknown:
        takes = f"takes only {spec.param_name!r}" if accepted else "takes no parameters"
        raise ValueError(f"{key} {takes}; got unknown parameter(s) {', '.join(map(repr, unknown))}")
    param = 0.0
    if spec.param_name is not None:
        param = _check_param(key, spec.param_name, params.get(spec.param_name, spec.default))
    return Activation(
        name=key,
        code=spec.code,
        param=param,
        gain_name=spec.gain_name,
        **_metadata(spec.code, param),
    )


# ----------------------------------------------------------------------------------
# Shaped activations and users' own
# ----------------------------------------------------------------------------------


def shaped(
    base: str | Activation,
    *,
    input_scale: float = 1.0,
    input_shift: float = 0.0,
    output_scale: float = 1.0,
    output_shift: float = 0.0,
    name: str | None = None,
) -> Activation:
    """Transform an activation affinely: ``out_scale (phi(in_scale x + in_shift) + out_shift)``.

    This is the form of DKS and TAT (:func:`initsim.theory.dks`,
    :func:`initsim.theory.tat`; their :attr:`~initsim.theory.Shaping.activation`)
    and of the affine erf family (:func:`affine_erf`). The result is an
    activation like any other: it can be simulated (CPU kernels), checked and
    put through the theory (by quadrature, or through the base's closed forms
    when ``input_shift == 0``).

    Parameters
    ----------
    base : str or Activation
        The activation transformed (built-in or registered; not itself shaped).
    input_scale, output_scale : float
        Finite and nonzero.
    input_shift, output_shift : float
        Finite.
    name : str, optional
        The name of the result; by default one that spells the transform, e.g.
        ``"1.5*(tanh(0.8*x+0.1)+-0.08)"``.

    Returns
    -------
    Activation
        The shaped activation (:attr:`Activation.base` names ``base``).

    Raises
    ------
    ValueError
        If a parameter is not finite, a scale is 0, or ``base`` is shaped.
    """
    act = get(base)
    if act.is_shaped:
        raise ValueError(f"base: {act.name} is already shaped; shape its base instead")
    vals = {}
    for key, v in (
        ("input_scale", input_scale),
        ("input_shift", input_shift),
        ("output_scale", output_scale),
        ("output_shift", output_shift),
    ):
        vals[key] = _check_param("shaped", key, v)
    for key in ("input_scale", "output_scale"):
        if vals[key] == 0.0:
            raise ValueError(f"shaped: {key} must be nonzero, got 0.0")
    a_in, b_in, a_out, b_out = (
        vals["input_scale"],
        vals["input_shift"],
        vals["output_scale"],
        vals["output_shift"],
    )
    affine = (a_in, b_in, a_out, b_out)
    if affine == IDENTITY_AFFINE:
        return act
    label = name or f"{a_out:.6g}*({act.label}({a_in:.6g}*x+{b_in:.6g})+{b_out:.6g})"
    if label in _SPECS or label in _ALIASES or label in _USER:
        raise ValueError(f"name: {label!r} is an activation's name already")
    # Metadata of the transform: exact statements about phi_hat from those of phi.
    centred_in, centred_out = b_in == 0.0, b_out == 0.0
    kinks = tuple(sorted((k - b_in) / a_in for k in act.kinks))
    return Activation(
        name=label,
        code=act.code,
        param=act.param,
        positively_homogeneous=act.positively_homogeneous and centred_in and centred_out,
        odd=act.odd and centred_in and centred_out,
        bounded=act.bounded,
        nonnegative=act.nonnegative and b_out >= 0.0 and a_out > 0.0,
        can_be_dead=act.can_be_dead and a_in > 0.0 and centred_in and centred_out,
        kinks=kinks,
        gain_name=None,
        affine=affine,
        user=act.user,
        base=act.name,
    )


def affine_erf(a: float = 1.0, b: float = 1.0, c: float = 0.0) -> Activation:
    """Return ``a * erf(b x) + c``, the affine erf family (a :func:`shaped` erf).

    Its Gaussian kernels are closed forms (the arcsine kernel of erf at
    variances scaled by ``b^2``): ``E[phi(u) phi(v)] = a^2 (2/pi)
    arcsin(2 b^2 S12 / sqrt((1 + 2 b^2 S11)(1 + 2 b^2 S22))) + c^2``.

    Parameters
    ----------
    a, b : float
        Output and input scales, finite and nonzero.
    c : float
        Offset, finite.

    Returns
    -------
    Activation
        Named ``"erf_affine(a=..., b=..., c=...)"``.
    """
    for key, v in (("a", a), ("b", b), ("c", c)):
        _check_param("affine_erf", key, v)
    a, b, c = float(a), float(b), float(c)
    if a == 0.0 or b == 0.0:
        raise ValueError(f"affine_erf: a and b must be nonzero, got a={a!r}, b={b!r}")
    if (a, b, c) == (1.0, 1.0, 0.0):
        return get("erf")
    return shaped(
        "erf",
        input_scale=b,
        output_scale=a,
        output_shift=c / a,
        name=f"erf_affine(a={a:g}, b={b:g}, c={c:g})",
    )


#: Registered activations by name: the unparameterised (default-parameter) one.
_USER: dict[str, Activation] = {}
#: The Python functions and parameter declarations of each registered name.
#: (phi, dphi, parameter defaults, bounded, kinks, module reference)
_USER_SOURCES: dict[str, tuple[Any, ...]] = {}
#: Compiled variants, by (name, parameters).
_USER_VARIANTS: dict[tuple[str, tuple[tuple[str, float], ...]], Activation] = {}


def register(
    name: str,
    phi: Callable[..., float],
    dphi: Callable[..., float] | None = None,
    *,
    params: Mapping[str, float] | None = None,
    bounded: bool | None = None,
    kinks: tuple[float, ...] | None = None,
    replace: bool = False,
    _reference: str | None = None,
) -> Activation:
    """Register your own activation, compiled for the kernels and known to the theory.

    ``phi`` (and ``dphi``) are plain Python functions of one float, written
    with the ``math`` module and scalar arithmetic so Numba can compile them
    (:mod:`initsim.user_activation` says how they are validated). After
    registration ``get(name)`` returns the activation everywhere a name is
    accepted: :func:`initsim.simulate`, :func:`initsim.check`, the theory,
    :func:`initsim.verify`, studies and the CLI (which also accept a
    ``module:function`` reference, registered on first use).

    Parameters
    ----------
    name : str
        The name; not a built-in name or alias, no ``:``.
    phi : callable
        ``phi(x, **params) -> float``.
    dphi : callable, optional
        ``phi'(x, **params)``. Without it the derivative is derived
        numerically (a five-point difference, about ``1e-12`` relative for
        smooth functions; see :mod:`initsim.user_activation`).
    params : mapping of str to float, optional
        Keyword parameters of ``phi`` and ``dphi`` with their default values;
        ``get(name, beta=2.0)`` compiles the variant.
    bounded : bool, optional
        Whether ``sup |phi| < inf``; by default measured (finite limits at
        ``+-inf``).
    kinks : tuple of float, optional
        Where ``phi'`` jumps; by default detected in ``[-12, 12]``.
    replace : bool, default False
        Allow replacing an activation registered under the same name.

    Returns
    -------
    Activation
        The registered activation (code :data:`USER`).

    Raises
    ------
    ValueError
        For a bad name, a bad parameter value, or a function that raises,
        returns NaN for finite input or cannot be compiled (the message names
        the function).
    """
    if not isinstance(name, str) or not name.strip() or (":" in name and _reference is None):
        raise ValueError(f"name must be a non-empty str without ':', got {name!r}")
    name = name.strip()
    key = name.lower().replace("-", "_").replace(" ", "_")
    if key in _SPECS or key in _ALIASES:
        raise ValueError(f"name: {name!r} is a built-in activation; choose another name")
    if name in _USER and not replace:
        raise ValueError(f"name: {name!r} is registered already (pass replace=True to replace it)")
    if not callable(phi):
        raise TypeError(f"phi must be callable, got {type(phi)!r}")
    if dphi is not None and not callable(dphi):
        raise TypeError(f"dphi must be callable or None, got {type(dphi)!r}")
    defaults = {k: _check_param(name, k, v) for k, v in dict(params or {}).items()}
    if kinks is not None:
        kinks = tuple(sorted(_check_param(name, "kinks", k) for k in kinks))
    if bounded is not None and not isinstance(bounded, bool):
        raise ValueError(f"bounded must be True, False or None, got {bounded!r}")
    source = (phi, dphi, defaults, bounded, kinks, _reference)
    act = _compile_variant(name, source, defaults)
    for k in [k for k in _USER_VARIANTS if k[0] == name]:
        del _USER_VARIANTS[k]
    _USER[name] = act
    _USER_SOURCES[name] = source
    _USER_VARIANTS[(name, act.user.params)] = act
    return act


def unregister(name: str) -> None:
    """Forget a registered activation (a no-op for an unknown name)."""
    _USER.pop(name, None)
    _USER_SOURCES.pop(name, None)
    for k in [k for k in _USER_VARIANTS if k[0] == name]:
        del _USER_VARIANTS[k]


def registered() -> list[str]:
    """Return the names of the registered activations, sorted."""
    return sorted(_USER)


def _compile_variant(name: str, source: tuple[Any, ...], values: dict[str, float]) -> Activation:
    from initsim import user_activation as ua

    phi, dphi, _, bounded, kinks, reference = source
    fn = ua.compile_user(name, phi, dphi, params=values, reference=reference, kinks=kinks)
    grid = ua.PROBE
    with np.errstate(all="ignore"):
        y = fn.phi_ufunc(grid)
        d = fn.dphi_ufunc(grid)
        neg_y = fn.phi_ufunc(-grid)
        ends = fn.phi_ufunc(np.array([np.inf, -np.inf]))
    if bounded is None:
        bounded = bool(np.all(np.isfinite(ends)))
    neg = grid < 0.0
    return Activation(
        name=name,
        code=USER,
        param=0.0,
        positively_homogeneous=False,
        odd=bool(np.array_equal(neg_y, -y)),
        bounded=bounded,
        nonnegative=bool(np.all(y >= 0.0)),
        can_be_dead=bool(np.all(y[neg] == 0.0) and np.all(d[neg] == 0.0)),
        kinks=fn.kinks,
        gain_name=None,
        user=fn,
    )


def _user_variant(act: Activation, params: Mapping[str, Any]) -> Activation:
    if not params:
        return act
    name = act.name
    source = _USER_SOURCES[name]
    defaults = source[2]
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        takes = (
            f"takes only {', '.join(map(repr, defaults))}" if defaults else "takes no parameters"
        )
        listed = ", ".join(map(repr, unknown))
        raise ValueError(f"{name} {takes}; got unknown parameter(s) {listed}")
    values = {**defaults, **{k: _check_param(name, k, v) for k, v in params.items()}}
    key = (name, tuple(sorted(values.items())))
    if key not in _USER_VARIANTS:
        _USER_VARIANTS[key] = _compile_variant(name, source, values)
    return _USER_VARIANTS[key]


def _from_reference(reference: str, params: Mapping[str, Any]) -> Activation:
    """``get("module:function")``: the registered activation of a user's module."""
    from initsim import user_activation as ua

    text = reference.strip()
    if text in _USER:
        return _user_variant(_USER[text], params)
    obj, text = ua.resolve_reference(text)
    if isinstance(obj, Activation):
        return get(obj, **params) if params else obj
    if not callable(obj):
        raise ValueError(
            f"activation reference {reference!r} is a {type(obj).__name__}, not a function "
            "or an Activation"
        )
    dphi = getattr(obj, "dphi", None)
    declared = getattr(obj, "params", None)
    act = register(
        text, obj, dphi if callable(dphi) else None, params=declared, replace=True, _reference=text
    )
    return _user_variant(act, params)
