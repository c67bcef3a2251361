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
  ``softplus(-inf) = 0``; ``phi'(+-inf)`` is the limit of ``phi'``.
  No extreme input raises or warns (softplus, sigmoid and friends are
  evaluated in overflow-free forms).
* Derivatives at kinks (where ``phi'`` jumps) are fixed as follows:
  ``relu'(0) = 0``, ``leaky_relu'(0) = slope``, ``elu'(0) = 1`` and
  ``selu'(0) = lambda`` (right derivatives), and ``hard_tanh'(+-1) = 0``
  (derivative 1 only strictly inside ``(-1, 1)``). The kink locations are
  listed in :attr:`Activation.kinks`.

The catalogue (canonical names; ``param`` in brackets):

==============  ===========================================  ==========
name            phi(x)                                       param
==============  ===========================================  ==========
``linear``      ``x``
``relu``        ``max(x, 0)``
``leaky_relu``  ``x if x > 0 else slope * x``                 slope=0.01
``elu``         ``x if x > 0 else alpha * (exp(x) - 1)``      alpha=1.0
``selu``        ``lambda * elu(x; alpha)``, fixed constants
``gelu``        ``x * Phi(x)``, Phi the normal cdf (exact)
``silu``        ``x * sigmoid(x)``
``softplus``    ``log(1 + exp(x))``
``sigmoid``     ``1 / (1 + exp(-x))``
``tanh``        ``tanh(x)``
``erf``         ``erf(x)``
``hard_tanh``   ``clip(x, -1, 1)``
==============  ===========================================  ==========
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special

from initsim._jit import jit

__all__ = [
    "ELU",
    "ERF",
    "GELU",
    "HARD_TANH",
    "LEAKY_RELU",
    "LINEAR",
    "RELU",
    "SELU",
    "SELU_ALPHA",
    "SELU_LAMBDA",
    "SIGMOID",
    "SILU",
    "SOFTPLUS",
    "TANH",
    "Activation",
    "dphi_array",
    "dphi_scalar",
    "get",
    "names",
    "phi_array",
    "phi_scalar",
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
    return math.nan


@jit("float64(int64, float64, float64)")
def dphi_scalar(code: int, param: float, x: float) -> float:
    """Evaluate the derivative of activation ``code`` at ``x`` (compiled).

    Kink conventions: ``relu'(0) = 0``, ``leaky_relu'(0) = slope``,
    ``elu'(0) = 1``, ``selu'(0) = lambda``, ``hard_tanh'(+-1) = 0``.

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
    return math.nan


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
        relu, leaky_relu). Such nets propagate any input scale exactly.
    odd : bool
        ``phi(-x) == -phi(x)`` for all ``x`` (linear, tanh, erf, hard_tanh;
        leaky_relu only when ``slope == 1``).
    bounded : bool
        ``sup |phi(x)| < inf`` (sigmoid, tanh, erf, hard_tanh).
    nonnegative : bool
        ``phi(x) >= 0`` for all ``x`` (relu, softplus, sigmoid; leaky_relu
        with ``slope <= 0``). Such activations have a nonzero mean under a
        centred Gaussian input.
    can_be_dead : bool
        ``phi`` and ``phi'`` are both exactly 0 on the whole half-line
        ``x <= 0`` (relu; leaky_relu with ``slope == 0``): a unit whose
        pre-activation stays there passes neither signal nor gradient. Smooth
        activations that merely underflow to 0 (gelu, silu far left) are not
        flagged.
    kinks : tuple of float
        The points where ``phi'`` jumps (relu: ``(0.0,)``, hard_tanh:
        ``(-1.0, 1.0)``; empty for smooth activations and for elu with
        ``alpha == 1``). Finite differences of ``phi`` are only meaningful
        away from them.
    gain_name : str or None
        The ``nonlinearity`` name PyTorch's ``torch.nn.init.calculate_gain``
        uses for this activation, or None if it has none.
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
        return _as_result(_TWINS[self.code][0](xa, self.param))

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
        return _as_result(_TWINS[self.code][1](xa, self.param))

    @property
    def params(self) -> dict[str, float]:
        """The named parameters, such that ``get(a.name, **a.params) == a``."""
        spec = _SPECS[self.name]
        return {spec.param_name: self.param} if spec.param_name is not None else {}

    @property
    def label(self) -> str:
        """A short human-readable label, e.g. ``"leaky_relu(slope=0.01)"``."""
        inner = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"{self.name}({inner})" if inner else self.name

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
        key = get(name).name
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
}

#: Accepted alternative spellings: PyTorch module names in lower case, and "swish".
_ALIASES: dict[str, str] = {
    "identity": "linear",
    "leakyrelu": "leaky_relu",
    "hardtanh": "hard_tanh",
    "swish": "silu",
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


def _metadata(code: int, p: float) -> dict[str, Any]:
    return {
        "positively_homogeneous": code in (LINEAR, RELU, LEAKY_RELU),
        "odd": code in (LINEAR, TANH, ERF, HARD_TANH) or (code == LEAKY_RELU and p == 1.0),
        "bounded": code in (SIGMOID, TANH, ERF, HARD_TANH),
        "nonnegative": code in (RELU, SOFTPLUS, SIGMOID) or (code == LEAKY_RELU and p <= 0.0),
        "can_be_dead": code == RELU or (code == LEAKY_RELU and p == 0.0),
        "kinks": (
            (0.0,)
            if code in (RELU, SELU)
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
        (silu). An :class:`Activation` is returned as is, or re-built with
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
        return get(name.name, **{**name.params, **params})
    if not isinstance(name, str):
        raise TypeError(f"activation name must be a str or an Activation, got {type(name)!r}")
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = _ALIASES.get(key, key)
    spec = _SPECS.get(key)
    if spec is None:
        raise ValueError(
            f"unknown activation {name!r}; valid names: {', '.join(names())} "
            f"(aliases: {', '.join(sorted(_ALIASES))})"
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
