"""The weight-initializer catalogue of PyTorch, Keras and JAX, with exact laws.

Every scheme is an immutable :class:`Initializer` that knows

* the exact mean and variance of one weight entry as a function of
  ``(fan_in, fan_out)`` (:meth:`Initializer.mean`, :meth:`Initializer.variance`,
  :meth:`Initializer.sigma_w2`), truncation included;
* which fans it reads off a weight shape (:meth:`Initializer.fans`, through
  its :class:`FanRule`), so that ``init.variance(*init.fans(shape))`` is the
  variance of an entry of ``init.sample(shape)`` for every scheme and shape;
* a concrete description of the entry law (:meth:`Initializer.law_spec`,
  a :class:`LawSpec`) that a Numba kernel can sample from;
* how to sample a weight tensor (:meth:`Initializer.sample`), in PyTorch
  layout ``(out, in, *kernel)`` or Keras/JAX layout ``(*kernel, in, out)``,
  as float64, float32, float16, complex64 or complex128.

Schemes are looked up by name with :func:`get` (aliases such as
``kaiming_normal`` or ``xavier_uniform`` are accepted); :func:`fans` and
:func:`gain` reproduce PyTorch's ``_calculate_fan_in_and_fan_out`` and
``calculate_gain``. Framework-exact names (``"torch.kaiming_normal_"``,
``"keras.HeNormal"``, ``"jax.he_normal"``), with each framework's parameter
names, defaults, law and fan computation, are declared once in
:mod:`initsim.framework_names` and also go through :func:`get`.

Where the frameworks disagree, the initsim names (``he_normal``, ...) follow
PyTorch and the other behaviour is one parameter away; each docstring says
which. The main difference: Keras and JAX draw ``*_normal`` schemes from a
normal truncated at two standard deviations and rescaled so that the
variance is unchanged, PyTorch from a plain normal. Here
``distribution="normal"`` (PyTorch) is the default and
``distribution="truncated_normal"`` gives the Keras/JAX law; the variance is
the same either way. A Keras class name without a prefix (``"HeNormal"``)
means what Keras means (truncated), as ``"keras.HeNormal"`` does.

Complex dtypes follow JAX: ``E|W - E W|^2`` is the variance, split equally
between uncorrelated real and imaginary parts; a complex normal has
independent ``N(0, var/2)`` parts, a complex "uniform" is uniform on a disc,
and a complex truncated normal is a complex normal whose modulus is cut at
two (complex) standard deviations, rescaled by
:data:`COMPLEX_TRUNCATED_NORMAL_STD_FACTOR`.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import numbers
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from initsim.seeding import SeedLike, as_generator

__all__ = [
    "ALIASES",
    "COMPLEX_TRUNCATED_NORMAL_STD_FACTOR",
    "DTYPES",
    "LAWS",
    "LAYOUTS",
    "NONLINEARITIES",
    "STFT",
    "TRUNCATED_NORMAL_STD_FACTOR",
    "Constant",
    "DeltaOrthogonal",
    "Dirac",
    "FanRule",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "Identity",
    "Initializer",
    "LawSpec",
    "LecunNormal",
    "LecunUniform",
    "Normal",
    "Ones",
    "Orthogonal",
    "Sparse",
    "TorchBiasDefault",
    "TorchLinearDefault",
    "TruncatedNormal",
    "Uniform",
    "VarianceScaling",
    "Zeros",
    "catalogue",
    "fans",
    "gain",
    "get",
    "names",
]

#: The entry laws, the vocabulary of :attr:`Initializer.law` and :attr:`LawSpec.law`.
LAWS: tuple[str, ...] = (
    "gaussian",
    "uniform",
    "truncated_gaussian",
    "orthogonal",
    "constant",
    "sparse",
    "identity",
    "dirac",
    "delta_orthogonal",
    "stft",
)

#: Laws of convolution kernels only (3-D and more): the MLP engine cannot sample them.
CONVOLUTION_LAWS: tuple[str, ...] = ("dirac", "delta_orthogonal", "stft")

#: Weight layouts: PyTorch ``(out, in, *kernel)`` and Keras/JAX ``(*kernel, in, out)``.
LAYOUTS: tuple[str, ...] = ("torch", "keras")

#: Standard deviation of a standard normal truncated to [-2, 2] (Keras/JAX use
#: this constant to rescale their truncated ``variance_scaling`` draws).
TRUNCATED_NORMAL_STD_FACTOR: float = 0.87962566103423978

#: Standard deviation ``sqrt(E|z|^2)`` of a complex standard normal (``E|z|^2 = 1``)
#: whose modulus is truncated to ``|z| <= 2``: ``|z|^2`` is then Exp(1) cut at 4, so
#: ``E|z|^2 = 1 - 4 / (e^4 - 1)``. JAX's ``variance_scaling`` divides by
#: 0.95311164380491208 instead, ``sqrt(1 - 5 e^-4)``: it omits the normalisation
#: by ``1 - e^-4``, so its complex truncated draws have variance
#: ``(0.961963 / 0.953112)^2 = 1.0186`` times ``scale / fan``.
COMPLEX_TRUNCATED_NORMAL_STD_FACTOR: float = math.sqrt(1.0 - 4.0 / math.expm1(4.0))

#: The dtypes :meth:`Initializer.sample` draws (float64 is the default).
DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "complex64", "complex128")

_LINEAR_NONLINEARITIES: tuple[str, ...] = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
)

#: Names accepted by :func:`gain` (PyTorch's ``calculate_gain``).
NONLINEARITIES: tuple[str, ...] = (*_LINEAR_NONLINEARITIES, "tanh", "relu", "leaky_relu", "selu")

_FAN_MODES: tuple[str, ...] = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
_NORMAL_DISTRIBUTIONS: tuple[str, ...] = ("normal", "truncated_normal")
_VS_DISTRIBUTIONS: tuple[str, ...] = ("normal", "truncated_normal", "uniform")
# Keras 3 calls the plain normal "untruncated_normal".
_DISTRIBUTION_ALIASES: Mapping[str, str] = MappingProxyType({"untruncated_normal": "normal"})


# --------------------------------------------------------------------------- validation


def _real(name: str, value: Any, *, positive: bool = False, nonzero: bool = False) -> float:
    """Return ``value`` as a finite float, or raise a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite real number; got {value!r}")
    try:
        v = float(value)
    except OverflowError:
        raise ValueError(f"{name} must be finite; got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite; got {v!r}")
    if positive and v <= 0.0:
        raise ValueError(f"{name} must be > 0; got {v!r}")
    if nonzero and v == 0.0:
        raise ValueError(f"{name} must be nonzero; got {v!r}")
    return v


def _positive_int(name: str, value: Any) -> int:
    """Return ``value`` as a positive int (integral floats accepted), or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    if isinstance(value, numbers.Integral):
        v = int(value)
    else:
        f = float(value)
        if not (math.isfinite(f) and f.is_integer()):
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
        v = int(f)
    if v <= 0:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return v


def _choice(
    name: str, value: Any, valid: Sequence[str], aliases: Mapping[str, str] | None = None
) -> str:
    """Return the canonical spelling of ``value`` among ``valid``, or raise."""
    if isinstance(value, str):
        key = value.strip().lower()
        key = (aliases or {}).get(key, key)
        if key in valid:
            return key
    raise ValueError(f"{name} must be one of {', '.join(map(repr, valid))}; got {value!r}")


def _check_layout(layout: Any) -> str:
    return _choice("layout", layout, LAYOUTS)


def _check_shape(shape: Any, min_dims: int = 1, *, allow_zero: bool = False) -> tuple[int, ...]:
    """Return ``shape`` as a tuple of ints >= 1 (>= 0 with ``allow_zero``), >= ``min_dims`` long."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if isinstance(shape, str):
        raise ValueError(f"shape must be a sequence of integers; got {shape!r}")
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"shape must be a sequence of integers; got {shape!r}") from None
    smallest = 0 if allow_zero else 1
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < smallest:
            raise ValueError(
                f"shape must contain integers >= {smallest} only (every dimension "
                f"{'>= 0' if allow_zero else '>= 1'}); got {shape!r}"
            )
    if len(dims) < min_dims:
        raise ValueError(
            f"shape must have at least {min_dims} dimensions here; got {len(dims)}: {shape!r}"
        )
    return tuple(int(d) for d in dims)


def _check_fans(fan_in: Any, fan_out: Any) -> tuple[int, int]:
    return _positive_int("fan_in", fan_in), _positive_int("fan_out", fan_out)


def _check_dtype(dtype: Any) -> np.dtype:
    """Return ``dtype`` as a numpy dtype among :data:`DTYPES`, or raise naming them."""
    try:
        dt = None if dtype is None else np.dtype(dtype)  # numpy reads None as float64
    except TypeError:
        dt = None
    if dt is None or dt.name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
    return dt


def _num(x: float) -> str:
    """Format a coefficient for a variance-law text."""
    return f"{x:.6g}"


# --------------------------------------------------------------------------- fans and gains

Axes = int | tuple[int, ...]
_LOW_RANK_RULES: tuple[str, ...] = ("error", "keras")


def _check_axes(name: str, axes: Any, *, allow_none: bool) -> Axes | None:
    """Return ``axes`` as an int or a tuple of ints (lists accepted), or raise naming ``name``."""
    if axes is None and allow_none:
        return None
    if isinstance(axes, numbers.Integral) and not isinstance(axes, bool):
        return int(axes)
    if isinstance(axes, Sequence) and not isinstance(axes, str):
        if all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in axes):
            return tuple(int(a) for a in axes)
    what = "an int, a sequence of ints" + (" or None" if allow_none else "")
    raise ValueError(f"{name} must be {what}; got {axes!r}")


def _resolve_axes(name: str, axes: Axes, ndim: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Return ``axes`` as non-negative indices into a shape of ``ndim`` dimensions."""
    listed = (axes,) if isinstance(axes, int) else axes
    out = []
    for a in listed:
        if not -ndim <= a < ndim:
            raise ValueError(
                f"{name}={axes!r} is out of range for a shape of {ndim} dimensions "
                f"{shape!r} (valid axes: -{ndim} .. {ndim - 1})"
            )
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}={axes!r} names an axis twice (shape {shape!r})")
    return tuple(out)


@dataclass(frozen=True, repr=False)
class FanRule:
    """How a scheme reads ``(fan_in, fan_out)`` off a weight shape.

    The three frameworks differ here, and each framework name of
    :mod:`initsim.framework_names` carries its framework's rule.

    Parameters
    ----------
    layout : {"torch", "keras"}
        The default axes: ``"torch"`` reads ``(out, in, *kernel)`` (in axis 1,
        out axis 0), ``"keras"`` reads ``(*kernel, in, out)`` (in axis -2,
        out axis -1). Also the layout :meth:`Initializer.sample` uses when
        it is given none.
    in_axis, out_axis : int, tuple of int or None
        The axes whose sizes multiply into the input (output) size; negative
        indices count from the end (JAX ``in_axis`` / ``out_axis``, Keras
        ``input_axes`` / ``output_axes``). None: the layout's axis.
    batch_axis : int or tuple of int
        Axes counted in neither fan (JAX ``batch_axis``).
    receptive_field : bool
        True: the axes in none of the three multiply both fans, the
        receptive field of a convolution (PyTorch, Keras without axes, JAX).
        False: they are ignored (Keras with ``input_axes`` and ``output_axes``).
    low_rank : {"error", "keras"}
        Shapes of fewer than 2 dimensions: an error (PyTorch, JAX), or Keras'
        rule ``fan_in = fan_out = 1`` for a 0-d shape and ``shape[0]`` for a
        1-d one (used when no axes are given).

    Notes
    -----
    With in-axes ``I``, out-axes ``O`` and batch axes ``B``:
    ``fan_in = prod(shape[I]) * r`` and ``fan_out = prod(shape[O]) * r``, where
    ``r`` is the product of the other dimensions (1 without receptive field).
    """

    layout: str = "torch"
    in_axis: Axes | None = None
    out_axis: Axes | None = None
    batch_axis: Axes = ()
    receptive_field: bool = True
    low_rank: str = "error"

    def __post_init__(self) -> None:
        set_ = functools.partial(object.__setattr__, self)
        set_("layout", _check_layout(self.layout))
        set_("in_axis", _check_axes("in_axis", self.in_axis, allow_none=True))
        set_("out_axis", _check_axes("out_axis", self.out_axis, allow_none=True))
        set_("batch_axis", _check_axes("batch_axis", self.batch_axis, allow_none=False))
        if not isinstance(self.receptive_field, bool):
            raise ValueError(f"receptive_field must be a bool; got {self.receptive_field!r}")
        set_("low_rank", _choice("low_rank", self.low_rank, _LOW_RANK_RULES))

    def __repr__(self) -> str:
        given = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default
        ]
        return f"FanRule({', '.join(given)})"

    @property
    def default_axes(self) -> tuple[int, int]:
        """The layout's ``(in_axis, out_axis)``: ``(1, 0)`` torch, ``(-2, -1)`` keras."""
        return (1, 0) if self.layout == "torch" else (-2, -1)

    def fans(self, shape: Sequence[int]) -> tuple[int, int]:
        """Return ``(fan_in, fan_out)`` of a weight of shape ``shape``.

        Parameters
        ----------
        shape : sequence of int
            The weight shape (every dimension >= 1).

        Returns
        -------
        tuple of int
            ``(fan_in, fan_out)``.

        Raises
        ------
        ValueError
            If the shape has a dimension < 1, is of rank < 2 under
            ``low_rank="error"``, or an axis is out of range or repeated.
        """
        dims = _check_shape(shape, min_dims=0)
        axes_given = self.in_axis is not None or self.out_axis is not None
        if len(dims) < 2 and self.low_rank == "keras" and not axes_given:
            return (1, 1) if not dims else (dims[0], dims[0])
        if len(dims) < 2:
            raise ValueError(
                f"fans need a shape of at least 2 dimensions (weight shapes such as "
                f"(out, in) or (*kernel, in, out)); got {len(dims)}: {shape!r}"
            )
        ndim = len(dims)
        d_in, d_out = self.default_axes
        in_ax = _resolve_axes("in_axis", d_in if self.in_axis is None else self.in_axis, ndim, dims)
        out_ax = _resolve_axes(
            "out_axis", d_out if self.out_axis is None else self.out_axis, ndim, dims
        )
        batch_ax = _resolve_axes("batch_axis", self.batch_axis, ndim, dims)
        used = in_ax + out_ax + batch_ax
        if len(set(used)) != len(used):
            raise ValueError(
                f"in_axis={self.in_axis!r}, out_axis={self.out_axis!r} and "
                f"batch_axis={self.batch_axis!r} must name different axes of {dims!r}"
            )
        receptive = (
            math.prod(d for i, d in enumerate(dims) if i not in used) if self.receptive_field else 1
        )
        fan_in = math.prod(dims[i] for i in in_ax) * receptive
        fan_out = math.prod(dims[i] for i in out_ax) * receptive
        return fan_in, fan_out

    def describe(self) -> str:
        """Return the rule in words, e.g. ``"(*kernel, in, out); 0-d, 1-d: Keras' rule"``.

        Returns
        -------
        str
            The layout or axes, the receptive field and the low-rank rule.
        """
        if self.in_axis is None and self.out_axis is None and self.batch_axis == ():
            text = "(out, in, *kernel)" if self.layout == "torch" else "(*kernel, in, out)"
        else:
            d_in, d_out = self.default_axes
            ins = d_in if self.in_axis is None else self.in_axis
            outs = d_out if self.out_axis is None else self.out_axis
            text = f"{self.layout} layout, in axes {ins}, out axes {outs}"
            if self.batch_axis != ():
                text += f", batch axes {self.batch_axis}"
            if not self.receptive_field:
                text += ", other axes ignored"
        if self.low_rank == "keras":
            return text + "; 0-d: 1, 1-d: shape[0]"
        return text + "; rank >= 2"


#: The rule of the initsim names: PyTorch's ``_calculate_fan_in_and_fan_out``.
TORCH_FAN_RULE = FanRule()


def fans(
    shape: Sequence[int],
    layout: str = "torch",
    *,
    in_axis: Axes | None = None,
    out_axis: Axes | None = None,
    batch_axis: Axes = (),
) -> tuple[int, int]:
    """Return ``(fan_in, fan_out)`` of a weight tensor, as PyTorch, Keras and JAX compute them.

    These are the fans of the variance-scaling schemes. A scheme's own fans
    (an orthogonal matrix's are the sides of the matrix it flattens the
    shape into) are :meth:`Initializer.fans`.

    Parameters
    ----------
    shape : sequence of int
        The weight shape, at least 2-D.
    layout : {"torch", "keras"}
        ``"torch"``: ``(out, in, *kernel)``, so ``fan_in = shape[1] * r`` and
        ``fan_out = shape[0] * r`` with ``r = prod(shape[2:])`` (PyTorch's
        ``_calculate_fan_in_and_fan_out``). ``"keras"``: ``(*kernel, in, out)``,
        so ``fan_in = shape[-2] * r`` and ``fan_out = shape[-1] * r`` with
        ``r = prod(shape[:-2])`` (Keras ``compute_fans``, JAX's default
        ``in_axis=-2, out_axis=-1``).
    in_axis, out_axis : int, tuple of int or None
        Other input (output) axes, as JAX's ``in_axis`` / ``out_axis``
        (negative indices and tuples); None: the layout's.
    batch_axis : int or tuple of int
        Axes in neither fan (JAX ``batch_axis``).

    Returns
    -------
    tuple of int
        ``(fan_in, fan_out)``.

    Raises
    ------
    ValueError
        If ``shape`` has fewer than 2 dimensions or a dimension < 1, an axis
        is out of range or repeated, or ``layout`` is unknown.
    """
    rule = FanRule(layout, in_axis=in_axis, out_axis=out_axis, batch_axis=batch_axis)
    return rule.fans(shape)


def _check_nonlinearity(nonlinearity: Any) -> str:
    return _choice("nonlinearity", nonlinearity, NONLINEARITIES)


def _negative_slope(param: Any) -> float:
    return 0.01 if param is None else _real("param (negative slope)", param)


def gain(nonlinearity: str, param: float | None = None) -> float:
    """Return the recommended gain for a nonlinearity, as PyTorch's ``calculate_gain``.

    Parameters
    ----------
    nonlinearity : str
        One of :data:`NONLINEARITIES` (case-insensitive): ``linear``,
        ``conv1d``, ``conv2d``, ``conv3d``, ``conv_transpose1d/2d/3d`` and
        ``sigmoid`` give 1; ``tanh`` 5/3; ``relu`` sqrt(2); ``leaky_relu``
        sqrt(2 / (1 + s^2)); ``selu`` 3/4.
    param : float, optional
        The negative slope ``s`` of ``leaky_relu`` (default 0.01, as PyTorch);
        ignored for the other nonlinearities, as in PyTorch.

    Returns
    -------
    float
        The gain; a weight variance ``gain**2 / fan`` keeps the second moment
        of signals through the nonlinearity (approximately, for tanh/selu).

    Raises
    ------
    ValueError
        If ``nonlinearity`` is unknown or ``param`` is not a finite number.
    """
    key = _check_nonlinearity(nonlinearity)
    if key in _LINEAR_NONLINEARITIES:
        return 1.0
    if key == "tanh":
        return 5.0 / 3
    if key == "relu":
        return math.sqrt(2.0)
    if key == "selu":
        return 3.0 / 4
    slope = _negative_slope(param)
    return math.sqrt(2.0 / (1 + slope**2))


def _gain2(nonlinearity: str, param: float | None) -> float:
    """Return ``gain(nonlinearity, param)**2`` computed without a square root.

    ``math.sqrt(2.0)**2 == 2.0000000000000004``; He's variance ``2 / fan_in``
    must come out exactly, so the squares are computed directly.
    """
    key = _check_nonlinearity(nonlinearity)
    if key in _LINEAR_NONLINEARITIES:
        return 1.0
    if key == "tanh":
        return 25.0 / 9.0
    if key == "relu":
        return 2.0
    if key == "selu":
        return 9.0 / 16.0
    slope = _negative_slope(param)
    return 2.0 / (1 + slope**2)


# --------------------------------------------------------------------------- truncated normal

# Gauss-Legendre rule for the truncated-normal moments. After the change of
# variables below the integrand is exp(-k t - t^2/2) on [0, T] with
# k T + T^2/2 <= 40, an entire function that 100 nodes integrate to double
# precision; the mass beyond T is below exp(-40) ~ 4e-18 relative.
_QUAD_NODES = 100
_TAIL_CUTOFF = 40.0


@functools.cache
def _unit_gauss_legendre() -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(_QUAD_NODES)
    return (x + 1.0) / 2.0, w / 2.0


def _half_piece(k: float, length: float) -> tuple[float, float, float, float]:
    """Integrate ``t**j * exp(-k t - t**2 / 2)`` over ``[0, length]`` for j = 0, 1, 2.

    Returns ``(T, N0, N1, N2)`` with the integral for ``j`` equal to
    ``T**(j + 1) * Nj``, where ``T = min(length, t_eff)`` and ``t_eff`` solves
    ``k t + t**2 / 2 = 40``.
    """
    two_c = 2.0 * _TAIL_CUTOFF
    t_eff = two_c / (k + math.hypot(k, math.sqrt(two_c)))
    span = min(length, t_eff)
    y, w = _unit_gauss_legendre()
    t = span * y
    g = w * np.exp(-k * t - 0.5 * t * t)
    return span, float(np.sum(g)), float(np.sum(g * y)), float(np.sum(g * y * y))


def _truncnorm_moments(mu: float, sigma: float, a: float, b: float) -> tuple[float, float]:
    """Return the exact ``(mean, variance)`` of N(mu, sigma^2) truncated to [a, b].

    The textbook formulas (``1 + (alpha phi(alpha) - beta phi(beta)) / Z -
    mean^2``) cancel catastrophically in the tails and for narrow intervals
    (scipy 1.17's ``truncnorm.stats`` is wrong there). Instead the moments are
    taken about the point ``c`` of [alpha, beta] nearest 0 (standardised
    units), where ``x = c +- t`` and the density is proportional to
    ``exp(-|c| t - t^2/2)``: no cancellation beyond a factor ~4 remains.
    """
    alpha = (a - mu) / sigma
    beta = (b - mu) / sigma
    width = (b - a) / sigma
    pieces: list[tuple[float, float, float]]  # (direction, k, length)
    if alpha >= 0.0:
        origin, pieces = a, [(1.0, alpha, width)]
    elif beta <= 0.0:
        origin, pieces = b, [(-1.0, -beta, width)]
    else:
        origin, pieces = mu, [(1.0, 0.0, beta), (-1.0, 0.0, -alpha)]
    if not all(math.isfinite(k) for _, k, _ in pieces):
        # (a - mu) / sigma overflowed: all mass sits within sigma^2 / |a - mu|
        # < 1e-308 sigma of the bound, so the law is a point mass in float64.
        return origin, 0.0
    done = [(d, *_half_piece(k, length)) for d, k, length in pieces]
    t_ref = max(span for _, span, *_ in done)
    m0 = m1 = m2 = 0.0
    for d, span, n0, n1, n2 in done:
        r = span / t_ref
        m0 += r * n0
        m1 += d * r * r * n1
        m2 += r * r * r * n2
    e1, e2 = m1 / m0, m2 / m0
    scale = sigma * t_ref
    mean = min(max(origin + scale * e1, a), b)
    # Truncating a normal never increases its variance; the clamp only removes
    # quadrature rounding (~1e-15 relative) when the bounds are far out.
    return mean, min(scale * scale * max(e2 - e1 * e1, 0.0), sigma * sigma)


def _sample_truncnorm(
    rng: np.random.Generator, mu: float, sigma: float, a: float, b: float, size: int
) -> np.ndarray:
    """Draw ``size`` exact samples of N(mu, sigma^2) truncated to [a, b].

    Rejection sampling (Robert 1995), each proposal chosen so that at least
    24 % of draws are accepted whatever the bounds:

    * standardised lower bound >= 0.5: ``x = a + sigma t``, ``t`` from the
      exponential law of rate ``alpha`` truncated to the interval, accepted
      with probability ``exp(-t^2/2)`` (mirror image for an upper bound <= -0.5);
    * otherwise a standardised width <= 1: uniform proposals on [a, b],
      accepted with probability ``exp(-(x^2 - m^2)/2)``, ``m`` the smallest
      ``|x|`` on the interval;
    * otherwise plain normal draws kept when they fall in [a, b].

    Each is exact in law. The final clip only absorbs the rounding of
    ``a + sigma t`` (a few ulps): it never moves probability mass onto the
    bounds the way clamping a normal draw would.
    """
    out = np.empty(size, dtype=np.float64)
    alpha = (a - mu) / sigma
    beta = (b - mu) / sigma
    width = (b - a) / sigma
    filled = 0
    while filled < size:
        batch = 2 * (size - filled) + 16
        if alpha >= 0.5 or beta <= -0.5:
            k = alpha if alpha >= 0.5 else -beta
            if math.isinf(k):
                x = np.full(batch, a if alpha >= 0.5 else b)
            else:
                q = -math.expm1(-k * width)
                t = -np.log1p(-rng.random(batch) * q) / k
                keep = rng.random(batch) < np.exp(-0.5 * t * t)
                t = t[keep]
                x = a + sigma * t if alpha >= 0.5 else b - sigma * t
        elif width <= 1.0:
            m2 = 0.0 if alpha <= 0.0 <= beta else min(alpha * alpha, beta * beta)
            x = a + (b - a) * rng.random(batch)
            z = (x - mu) / sigma
            x = x[rng.random(batch) < np.exp(-0.5 * (z * z - m2))]
        else:
            x = mu + sigma * rng.standard_normal(batch)
            x = x[(x >= a) & (x <= b)]
        take = x[: size - filled]
        out[filled : filled + take.size] = take
        filled += take.size
    return np.clip(out, a, b, out=out)


# --------------------------------------------------------------------------- law spec


@dataclass(frozen=True)
class LawSpec:
    """A concrete description of the law of one weight entry, for sampling kernels.

    Parameters
    ----------
    law : str
        One of :data:`LAWS`.
    loc : float
        Mean of the Gaussian, or of the parent Gaussian of a truncated one; 0 otherwise.
    scale : float
        Standard deviation of the Gaussian, of the parent Gaussian of a
        truncated one, or of the nonzero entries of a sparse law; 0 otherwise.
    low, high : float
        Bounds of a uniform law, or the *absolute* truncation bounds of a
        truncated Gaussian; 0 otherwise.
    value : float
        The value of a constant law; 0 otherwise.
    sparsity : float
        Sparse law: the fraction ``s`` of each column set to zero (exactly
        ``ceil(s * rows)`` entries per column); 0 otherwise.
    gain : float
        Multiplier of orthogonal, identity and dirac laws; 1 otherwise.

    Notes
    -----
    The spec describes one entry. Orthogonal, sparse, identity and dirac
    laws couple the entries of a matrix; a kernel must sample those as
    matrices (see :meth:`Initializer.sample`), not entry by entry.
    """

    law: str
    loc: float = 0.0
    scale: float = 0.0
    low: float = 0.0
    high: float = 0.0
    value: float = 0.0
    sparsity: float = 0.0
    gain: float = 1.0

    def is_centred(self) -> bool:
        """Return whether the entries are random, zero-mean and symmetric about 0.

        These are the weights mean-field theory covers (:mod:`initsim.checks`,
        the report's theory lines). Per law:

        * ``gaussian``, ``sparse``: ``loc == 0``;
        * ``uniform``: ``low == -high`` (``uniform(0, 1)`` is not centred);
        * ``truncated_gaussian``: ``loc == 0`` and ``low == -high``;
        * ``orthogonal``: always (a Haar matrix has the law of ``-W``);
        * ``constant``, ``identity``, ``dirac``: never, since the weights are
          deterministic (even ``zeros``, a point mass at 0).

        Returns
        -------
        bool
            True for a zero-mean symmetric random law.
        """
        if self.law in ("gaussian", "sparse"):
            return self.loc == 0.0
        if self.law == "uniform":
            return self.low == -self.high
        if self.law == "truncated_gaussian":
            return self.loc == 0.0 and self.low == -self.high
        return self.law == "orthogonal"


# --------------------------------------------------------------------------- base class


def _from_params(
    cls: type[Initializer],
    params: dict[str, Any],
    fan_rule: FanRule = TORCH_FAN_RULE,
    framework_name: str | None = None,
) -> Initializer:
    return cls(**params)._relabelled(fan_rule, framework_name)


def _cast_into(
    out: np.ndarray, dtype: np.dtype, low: float, high: float, *, open_high: bool = False
) -> np.ndarray:
    """Cast real draws to ``dtype``, keeping them in ``[low, high]`` after rounding.

    With ``open_high`` (uniform laws: ``[low, high)`` in every framework) a
    draw that rounds onto ``high`` goes to the next representable value below.
    """
    res = out.astype(dtype)
    if dtype == np.float64:
        return res
    lo, hi = dtype.type(low), dtype.type(high)
    if float(lo) < low:
        lo = np.nextafter(lo, dtype.type(np.inf))
    if float(hi) > high or (open_high and float(hi) == high):
        hi = np.nextafter(hi, dtype.type(-np.inf))
    return np.clip(res, lo, hi, out=res)


def _complex_normal(rng: np.random.Generator, size: int) -> np.ndarray:
    """Complex standard normals: independent N(0, 1/2) real and imaginary parts."""
    re = rng.standard_normal(size)
    im = rng.standard_normal(size)
    return (re + 1j * im) * math.sqrt(0.5)


def _complex_polar(r: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return ``r e^{i theta}`` with theta uniform on [0, 2 pi)."""
    return r * np.exp(2j * math.pi * rng.random(r.size))


class Initializer(ABC):
    """Base class of all initializers: an immutable scheme with an exact entry law.

    Subclasses validate their parameters in ``__init__`` and store them with
    :meth:`_set_params`; instances compare equal when their class,
    parameters and :class:`FanRule` are equal, and are hashable and
    picklable. For complex dtypes :meth:`variance` is ``E|W - E W|^2``.
    """

    #: Canonical name, as accepted by :func:`get`.
    name: ClassVar[str] = ""
    _law: ClassVar[str] = ""
    # False for schemes whose law does not depend on the fans: they also
    # accept 0-d and 1-D shapes (biases) in `sample`.
    _needs_fans: ClassVar[bool] = True
    # The numbers of dimensions a shape may have (None: any >= the minimum rank).
    _ranks: ClassVar[tuple[int, ...] | None] = None
    # The minimum rank (None: 2 for fan-scaled laws under a rank >= 2 fan rule, else 0).
    _min_rank: ClassVar[int | None] = None
    # Whether the scheme has a complex law (module docstring); False: a real-only law.
    _complex: ClassVar[bool] = True
    _params: Mapping[str, Any]
    _fan_rule: FanRule
    _framework_name: str | None

    def _set_params(self, **params: Any) -> None:
        object.__setattr__(self, "_params", MappingProxyType(dict(params)))
        object.__setattr__(self, "_fan_rule", TORCH_FAN_RULE)
        object.__setattr__(self, "_framework_name", None)

    def _relabelled(self, fan_rule: FanRule, framework_name: str | None) -> Initializer:
        """Return a copy with another fan rule and framework name."""
        new = object.__new__(type(self))
        object.__setattr__(new, "_params", self._params)
        object.__setattr__(new, "_fan_rule", fan_rule)
        object.__setattr__(new, "_framework_name", framework_name)
        return new

    def with_fan_rule(self, fan_rule: FanRule) -> Initializer:
        """Return this scheme reading its fans off shapes with ``fan_rule``.

        Parameters
        ----------
        fan_rule : FanRule
            E.g. ``FanRule("keras", in_axis=(0, 1), out_axis=-1)``.

        Returns
        -------
        Initializer
            The same law; :meth:`fans`, :meth:`sample` and
            :meth:`variance_for_shape` use the new rule.
        """
        if not isinstance(fan_rule, FanRule):
            raise ValueError(f"fan_rule must be a FanRule; got {fan_rule!r}")
        return self._relabelled(fan_rule, self._framework_name)

    # -- value semantics ------------------------------------------------------------------
    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self) or not isinstance(other, Initializer):
            return NotImplemented
        return dict(self._params) == dict(other._params) and self._fan_rule == other._fan_rule

    def __hash__(self) -> int:
        return hash((type(self), tuple(self._params.items()), self._fan_rule))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        text = f"{type(self).__name__}({args})"
        if self._fan_rule != TORCH_FAN_RULE:
            text += f".with_fan_rule({self._fan_rule!r})"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        args = (type(self), dict(self._params), self._fan_rule, self._framework_name)
        return (_from_params, args)

    # -- description ----------------------------------------------------------------------
    @property
    def params(self) -> dict[str, Any]:
        """The parameters, as accepted by :func:`get` (a fresh dict)."""
        return dict(self._params)

    @property
    def aliases(self) -> tuple[str, ...]:
        """Other names :func:`get` accepts for this scheme."""
        return tuple(sorted(k for k, v in ALIASES.items() if v == self.name))

    @property
    def fan_rule(self) -> FanRule:
        """How :meth:`fans` reads a shape (PyTorch's rule unless a framework name set another)."""
        return self._fan_rule

    @property
    def framework_name(self) -> str | None:
        """The framework name this scheme was looked up by (``"keras.HeNormal"``), if any."""
        return self._framework_name

    @property
    def law(self) -> str:
        """The entry law, one of :data:`LAWS`."""
        return self._law

    @property
    @abstractmethod
    def variance_law(self) -> str:
        """Human-readable exact variance of one entry, e.g. ``"2 / fan_in"``."""

    def describe(self) -> str:
        """Return a one-line description: parameters, law, variance law and fans.

        Returns
        -------
        str
            For example ``"HeNormal(a=0.0, ...): gaussian law, Var(W_ij) = 2 / fan_in"``,
            prefixed by the framework name when there is one.
        """
        text = f"{self!r}: {self.law} law, Var(W_ij) = {self.variance_law}"
        if self._framework_name:
            text = f"{self._framework_name} = {text}; fans: {self._fan_rule.describe()}"
        return text

    # -- moments --------------------------------------------------------------------------
    @abstractmethod
    def variance(self, fan_in: int, fan_out: int) -> float:
        """Return the exact variance of one weight entry.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans, from :meth:`fans` for a weight shape.

        Returns
        -------
        float
            ``Var(W_ij)`` (``E|W_ij - E W_ij|^2`` for complex dtypes, the same
            number); see the class docstring for the formula.
        """

    def mean(self, fan_in: int, fan_out: int) -> float:
        """Return the exact mean of one weight entry.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans, from :meth:`fans` for a weight shape.

        Returns
        -------
        float
            ``E[W_ij]``; 0.0 unless the class docstring says otherwise.
        """
        _check_fans(fan_in, fan_out)
        return 0.0

    def sigma_w2(self, fan_in: int, fan_out: int) -> float:
        """Return ``sigma_w2 = fan_in * Var(W_ij)``, the mean-field weight variance.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans.

        Returns
        -------
        float
            ``fan_in * self.variance(fan_in, fan_out)`` (He: 2, LeCun: 1,
            Glorot: ``2 fan_in / (fan_in + fan_out)``).
        """
        fi, fo = _check_fans(fan_in, fan_out)
        return fi * self.variance(fi, fo)

    def _rule(self, layout: str | None) -> FanRule:
        """Return the fan rule with ``layout`` (None: the rule's own) substituted."""
        if layout is None:
            return self._fan_rule
        layout = _check_layout(layout)
        if layout == self._fan_rule.layout:
            return self._fan_rule
        return dataclasses.replace(self._fan_rule, layout=layout)

    def fans(self, shape: Sequence[int], layout: str | None = None) -> tuple[int, int]:
        """Return the ``(fan_in, fan_out)`` this scheme's variance takes for ``shape``.

        ``self.variance(*self.fans(shape))`` is exactly the variance of an
        entry of ``self.sample(shape)``. For variance-scaling schemes these
        are the framework's fans (:attr:`fan_rule`); for :class:`Orthogonal`
        the sides of the matrix the shape is flattened into.

        Parameters
        ----------
        shape : sequence of int
            The weight shape.
        layout : {"torch", "keras"} or None
            How ``shape`` is read; None: the fan rule's layout (``"torch"``
            for the initsim names, the framework's for framework names).

        Returns
        -------
        tuple of int
            ``(fan_in, fan_out)``.

        Raises
        ------
        ValueError
            If the fans of ``shape`` are undefined under the rule.
        """
        rule = self._rule(layout)
        dims = _check_shape(shape, min_dims=0)
        self._check_drawable(dims, rule, shape)
        return self._fans_by(rule, dims)

    def _fans_by(self, rule: FanRule, shape: tuple[int, ...]) -> tuple[int, int]:
        """Fans under ``rule`` (overridden by matrix laws)."""
        return rule.fans(shape)

    def variance_for_shape(self, shape: Sequence[int], layout: str | None = None) -> float:
        """Return the exact variance of one entry of ``self.sample(shape, layout=layout)``.

        Equal to ``self.variance(*self.fans(shape, layout))``; schemes whose
        law does not depend on the fans also answer for 0-d and 1-D shapes.

        Parameters
        ----------
        shape : sequence of int
            The weight shape.
        layout : {"torch", "keras"} or None
            The layout of ``shape`` (None: the fan rule's).

        Returns
        -------
        float
            ``Var(W_ij)``.
        """
        rule = self._rule(layout)
        dims = _check_shape(shape, min_dims=0)
        self._check_drawable(dims, rule, shape)
        if not self._needs_fans:
            return self.variance(1, 1)
        return self.variance(*self._fans_by(rule, dims))

    @abstractmethod
    def law_spec(self, fan_in: int, fan_out: int) -> LawSpec:
        """Return the concrete entry law for these fans.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans.

        Returns
        -------
        LawSpec
            The law, with the fans substituted into its parameters.
        """

    # -- sampling -------------------------------------------------------------------------
    def _check_drawable(self, dims: tuple[int, ...], rule: FanRule, shape: Any) -> None:
        """Raise if this scheme cannot draw a tensor of shape ``dims`` (its rank or sizes)."""
        if self._ranks is not None:
            if len(dims) not in self._ranks:
                listed = ", ".join(map(str, self._ranks))
                raise ValueError(f"{self.name} needs a {listed}-D shape; got shape={shape!r}")
            return
        if self._min_rank is not None:
            low = self._min_rank
        else:
            low = 2 if self._needs_fans and rule.low_rank == "error" else 0
        if len(dims) < low:
            raise ValueError(
                f"{self.name} needs a shape of at least {low} dimensions (it scales by the "
                f"fans of a weight such as (out, in) or (*kernel, in, out)); got "
                f"shape={shape!r}"
            )

    def sample(
        self,
        shape: Sequence[int],
        seed: SeedLike = None,
        layout: str | None = None,
        dtype: Any = "float64",
    ) -> np.ndarray:
        """Draw a weight tensor.

        Parameters
        ----------
        shape : sequence of int
            The weight shape: ``(out, in, *kernel)`` for ``layout="torch"``,
            ``(*kernel, in, out)`` for ``layout="keras"``. Schemes whose law
            does not depend on the fans (zeros, ones, constant, normal,
            uniform, truncated_normal, torch_bias_default) also accept 0-d
            and 1-D shapes, as do variance-scaling schemes under Keras' fan
            rule. A shape with a zero dimension gives an empty array (as JAX
            does; PyTorch warns and leaves a zero-element tensor as it is).
        seed : int, SeedSequence, Generator or None
            Passed through :func:`initsim.seeding.as_generator`; the same
            seed gives the same tensor.
        layout : {"torch", "keras"} or None
            How ``shape`` is read (see :class:`FanRule`); None: the fan
            rule's layout (``"torch"`` for the initsim names, ``"keras"``
            for ``keras.*`` and ``jax.*`` names).
        dtype : {"float64", "float32", "float16", "complex64", "complex128"}
            The array's dtype (a numpy dtype or its name; None is refused,
            though numpy would read it as float64). Real draws are made in
            float64 and rounded: bounded laws stay inside their bounds, and a
            uniform's upper bound stays excluded. Complex laws are described
            in the module docstring.

        Returns
        -------
        numpy.ndarray
            An array of shape ``shape`` and dtype ``dtype``.

        Raises
        ------
        ValueError
            If the shape, layout, dtype or seed is invalid for this scheme, or
            the scheme has no complex law and a complex dtype is asked for.
        """
        rule = self._rule(layout)
        dt = _check_dtype(dtype)
        dims = _check_shape(shape, min_dims=0, allow_zero=True)
        self._check_drawable(dims, rule, shape)
        if dt.kind == "c" and not self._complex:
            raise ValueError(
                f"{self.name} has no complex law (complex laws are defined, as in JAX, for "
                "normal, the variance-scaling family, orthogonal and the deterministic "
                f"schemes); use a real dtype; got dtype={dt.name!r}"
            )
        rng = as_generator(seed)
        if 0 in dims:
            return np.zeros(dims, dtype=dt)
        return self._draw(dims, rule, rng, dt)

    def _draw(
        self, shape: tuple[int, ...], rule: FanRule, rng: np.random.Generator, dtype: np.dtype
    ) -> np.ndarray:
        """Draw iid entries from :meth:`law_spec` (overridden by matrix laws)."""
        fi, fo = self._fans_by(rule, shape) if self._needs_fans else (1, 1)
        spec = self.law_spec(fi, fo)
        size = math.prod(shape)
        if dtype.kind == "c":
            var = self.variance(fi, fo)
            return self._complex_iid(spec, var, size, rng).astype(dtype).reshape(shape)
        low, high, open_high = -math.inf, math.inf, False
        if spec.law == "gaussian":
            flat = spec.loc + spec.scale * rng.standard_normal(size)
        elif spec.law == "uniform":
            flat = rng.uniform(spec.low, spec.high, size)
            low, high = spec.low, spec.high
            open_high = True
        elif spec.law == "truncated_gaussian":
            flat = _sample_truncnorm(rng, spec.loc, spec.scale, spec.low, spec.high, size)
            low, high = spec.low, spec.high
        elif spec.law == "constant":
            flat = np.full(size, spec.value, dtype=np.float64)
        else:  # pragma: no cover - matrix laws override _draw
            raise NotImplementedError(spec.law)
        flat = np.asarray(flat, dtype=np.float64)
        return _cast_into(flat, dtype, low, high, open_high=open_high).reshape(shape)

    def _complex_iid(
        self, spec: LawSpec, var: float, size: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Draw complex iid entries: gaussian and constant laws (variance scaling adds more)."""
        if spec.law == "gaussian":
            return spec.loc + spec.scale * _complex_normal(rng, size)
        if spec.law == "constant":
            return np.full(size, spec.value, dtype=np.complex128)
        raise NotImplementedError(spec.law)  # pragma: no cover - _complex is False there


# --------------------------------------------------------------------------- constants


class _ConstantLaw(Initializer):
    """Shared behaviour of zeros, ones and constant."""

    _law = "constant"
    _needs_fans = False

    @property
    def _value(self) -> float:
        value = self._params.get("value", 0.0)
        if isinstance(value, tuple):
            raise ValueError(
                f"an array-valued constant ({self!r}) has no single-entry law: it can be "
                "sampled, but not simulated or put through the theory"
            )
        return float(value)

    def _check_drawable(self, dims: tuple[int, ...], rule: FanRule, shape: Any) -> None:
        super()._check_drawable(dims, rule, shape)
        value = self._params.get("value", 0.0)
        if isinstance(value, tuple):
            arr_shape = np.shape(value)
            try:
                np.broadcast_shapes(arr_shape, dims)
            except ValueError:
                raise ValueError(
                    f"constant value of shape {arr_shape} cannot be broadcast to shape={shape!r}"
                ) from None
            if np.broadcast_shapes(arr_shape, dims) != dims:
                raise ValueError(
                    f"constant value of shape {arr_shape} cannot be broadcast to shape={shape!r}"
                )

    def _draw(
        self, shape: tuple[int, ...], rule: FanRule, rng: np.random.Generator, dtype: np.dtype
    ) -> np.ndarray:
        value = self._params.get("value", 0.0)
        if not isinstance(value, tuple):
            return super()._draw(shape, rule, rng, dtype)
        return np.array(np.broadcast_to(np.asarray(value, dtype=np.float64), shape), dtype=dtype)

    @property
    def variance_law(self) -> str:
        """``"0 (deterministic)"``."""
        return "0 (deterministic)"

    def variance(self, fan_in: int, fan_out: int) -> float:
        """Return 0.0: every entry equals the constant.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans (validated, otherwise unused).

        Returns
        -------
        float
            0.0.
        """
        _check_fans(fan_in, fan_out)
        return 0.0

    def mean(self, fan_in: int, fan_out: int) -> float:
        """Return the constant value.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans (validated, otherwise unused).

        Returns
        -------
        float
            The value every entry takes; for an array-valued constant the
            mean of the array, which is the mean over the entries of any
            shape it broadcasts to.
        """
        _check_fans(fan_in, fan_out)
        value = self._params.get("value", 0.0)
        if isinstance(value, tuple):
            return float(np.mean(value))
        return self._value

    def law_spec(self, fan_in: int, fan_out: int) -> LawSpec:
        """Return ``LawSpec("constant", value=...)``.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans (validated, otherwise unused).

        Returns
        -------
        LawSpec
            The constant law.
        """
        _check_fans(fan_in, fan_out)
        return LawSpec("constant", value=self._value)


class Zeros(_ConstantLaw):
    """All entries 0 (PyTorch ``zeros_``, Keras/JAX ``zeros``).

    Notes
    -----
    Deterministic: ``Var(W_ij) = 0`` and ``E[W_ij] = 0``.
    """

    name = "zeros"

    def __init__(self) -> None:
        self._set_params()


class Ones(_ConstantLaw):
    """All entries 1 (PyTorch ``ones_``, Keras/JAX ``ones``).

    Notes
    -----
    Deterministic: ``Var(W_ij) = 0`` and ``E[W_ij] = 1``.
    """

    name = "ones"

    @property
    def _value(self) -> float:
        return 1.0

    def __init__(self) -> None:
        self._set_params()


def _constant_value(value: Any) -> float | tuple[Any, ...]:
    """Return a finite real, or an array of them as nested tuples (hashable, JSON-like)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return _real("value", value)
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.dtype == object or isinstance(value, str | bytes | bool):
        raise ValueError(f"value must be a finite real number or an array of them; got {value!r}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"value must be finite everywhere; got {value!r}")
    if arr.ndim == 0:
        return float(arr)

    def nest(a: np.ndarray) -> Any:
        return tuple(nest(x) for x in a) if a.ndim > 1 else tuple(float(x) for x in a)

    return nest(arr)


class Constant(_ConstantLaw):
    """All entries equal ``value`` (PyTorch ``constant_``, Keras/JAX ``constant``).

    Parameters
    ----------
    value : float or array_like
        The finite value of every entry (required, as in PyTorch). An array
        (Keras' and JAX's ``constant`` accept one) is broadcast to the shape
        by numpy's rules; it is stored as nested tuples.

    Notes
    -----
    Deterministic: ``Var(W_ij) = 0`` and ``E[W_ij] = value`` (an array's
    mean for an array). An array-valued constant has no single-entry
    :meth:`law_spec`, so it can be sampled but not simulated.
    """

    name = "constant"

    def __init__(self, value: float) -> None:
        self._set_params(value=_constant_value(value))


# --------------------------------------------------------------------------- plain laws


class Normal(Initializer):
    """Entries iid N(mean, std^2) (PyTorch ``normal_``, Keras ``RandomNormal``).

    Parameters
    ----------
    mean : float
        Mean of every entry (finite).
    std : float
        Standard deviation (finite, > 0). Keras calls it ``stddev``.

    Notes
    -----
    Exactly ``Var(W_ij) = std^2`` and ``E[W_ij] = mean``, independent of the
    fans. Complex dtypes: ``mean`` plus independent ``N(0, std^2 / 2)`` real
    and imaginary parts (JAX ``normal``).
    """

    name = "normal"
    _law = "gaussian"
    _needs_fans = False

    def __init__(self, mean: float = 0.0, std: float = 1.0) -> None:
        self._set_params(mean=_real("mean", mean), std=_real("std", std, positive=True))

    @property
    def variance_law(self) -> str:
        """``std^2`` as a number."""
        return _num(self._params["std"] ** 2)

    def variance(self, fan_in: int, fan_out: int) -> float:
        """Return ``std^2``.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans (validated, otherwise unused).

        Returns
        -------
        float
            ``std**2``.
        """
        _check_fans(fan_in, fan_out)
        return self._params["std"] ** 2

    def mean(self, fan_in: int, fan_out: int) -> float:
        """Return the ``mean`` parameter.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans (validated, otherwise unused).

        Returns
        -------
        float
            ``mean``.
        """
        _check_fans(fan_in, fan_out)
        return self._params["mean"]

    def law_spec(self, fan_in: int, fan_out: int) -> LawSpec:
        """Return ``LawSpec("gaussian", loc=mean, scale=std)``.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans (validated, otherwise unused).

        Returns
        -------
        LawSpec
            The Gaussian law.
        """
        _check_fans(fan_in, fan_out)
        return LawSpec("gaussian", loc=self._params["mean"], scale=self._params["std"])


class Uniform(Initializer):
    """Entries iid U(a, b) (PyTorch ``uniform_``, Keras ``RandomUniform(minval, maxval)``).

    Parameters
    ----------
    a, b : float
        Finite bounds with ``a < b``.

    Notes
    -----
    Exactly ``Var(W_ij) = (b - a)^2 / 12`` and ``E[W_ij] = (a + b) / 2``.
    """

    name = "uniform"
    _law = "uniform"
    _needs_fans = False
    _complex = False

    def __init__(self, a: float = 0.0, b: float = 1.0) -> None:
        lo, hi = _real("a", a), _real("b", b)
        if not lo < hi:
            raise ValueError(f"uniform needs a < b; got a={lo!r}, b={hi!r}")
        if not math.isfinite(hi - lo):
            raise ValueError(f"b - a must be finite; got a={lo!r}, b={hi!r}")
        self._set_params(a=lo, b=hi)

    @property
    def variance_law(self) -> str:
        """``(b - a)^2 / 12`` as a number."""
        return _num(self.variance(1, 1))

    def variance(self, fan_in: int, fan_out: int) -> float:
        """Return ``(b - a)^2 / 12``.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans (validated, otherwise unused).

        Returns
        -------
        float
            ``(b - a)**2 / 12``.
        """
        _check_fans(fan_in, fan_out)
        return (self._params["b"] - self._params["a"]) ** 2 / 12.0

    def mean(self, fan_in: int, fan_out: int) -> float:
        """Return ``(a + b) / 2``.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans (validated, otherwise unused).

        Returns
        -------
        float
            The midpoint of [a, b].
        """
        _check_fans(fan_in, fan_out)
        return 0.5 * self._params["a"] + 0.5 * self._params["b"]

    def law_spec(self, fan_in: int, fan_out: int) -> LawSpec:
        """Return ``LawSpec("uniform", low=a, high=b)``.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans (validated, otherwise unused).

        Returns
        -------
        LawSpec
            The uniform law.
        """
        _check_fans(fan_in, fan_out)
        return LawSpec("uniform", low=self._params["a"], high=self._params["b"])


class TruncatedNormal(Initializer):
    """N(mean, std^2) conditioned on [a, b], absolute bounds (PyTorch ``trunc_normal_``).

    Parameters
    ----------
    mean : float
        Mean of the parent normal (finite).
    std : float
        Standard deviation of the parent normal (finite, > 0).
    a, b : float
        *Absolute* truncation bounds, finite, ``a < b``, as in PyTorch (so
        with ``std=0.02`` the default [-2, 2] is +-100 std: almost no
        truncation). Keras ``TruncatedNormal(mean, stddev)`` and JAX
        ``truncated_normal(stddev)`` instead cut at +-2 std *relative* to the
        mean and do not rescale: that is ``a = mean - 2 std, b = mean + 2 std``
        here, with variance ``0.7737 std^2``.

    Notes
    -----
    With ``alpha = (a - mean) / std``, ``beta = (b - mean) / std``,
    ``Z = Phi(beta) - Phi(alpha)``, the entry law has exactly

    * ``E[W_ij] = mean + std (phi(alpha) - phi(beta)) / Z``,
    * ``Var(W_ij) = std^2 [1 + (alpha phi(alpha) - beta phi(beta)) / Z
      - ((phi(alpha) - phi(beta)) / Z)^2]``,

    independent of the fans. They are evaluated without the cancellation of
    these formulas, so they stay accurate in far tails (e.g. [5, 6] for a
    standard parent or bounds 5000 std away) and on tiny intervals.
    Sampling is exact rejection sampling: no sample ever falls outside
    [a, b], and no mass is clamped onto the bounds (PyTorch's ``trunc_normal_``
    uses an erfinv transform followed by a clamp, which loses accuracy when
    the bounds are far in the tail).
    """

    name = "truncated_normal"
    _law = "truncated_gaussian"
    _needs_fans = False
    _complex = False

    def __init__(
        self, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0
    ) -> None:
        mu = _real("mean", mean)
        sd = _real("std", std, positive=True)
        lo, hi = _real("a", a), _real("b", b)
        if not lo < hi:
            raise ValueError(f"truncated_normal needs bounds a < b; got a={lo!r}, b={hi!r}")
        self._set_params(mean=mu, std=sd, a=lo, b=hi)

    @functools.cached_property
    def _moments(self) -> tuple[float, float]:
        p = self._params
        return _truncnorm_moments(p["mean"], p["std"], p["a"], p["b"])

    @property
    def variance_law(self) -> str:
        """The truncated variance as a number."""
        return f"{_num(self._moments[1])} (std^2 times the truncation factor of [a, b])"

    def variance(self, fan_in: int, fan_out: int) -> float:
        """Return the exact variance of the truncated normal (see Notes of the class).

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans (validated, otherwise unused).

        Returns
        -------
        float
            ``Var(W_ij)``, at most ``std**2``.
        """
        _check_fans(fan_in, fan_out)
        return self._moments[1]

    def mean(self, fan_in: int, fan_out: int) -> float:
        """Return the exact mean of the truncated normal (see Notes of the class).

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans (validated, otherwise unused).

        Returns
        -------
        float
            ``E[W_ij]``, inside [a, b].
        """
        _check_fans(fan_in, fan_out)
        return self._moments[0]

    def law_spec(self, fan_in: int, fan_out: int) -> LawSpec:
        """Return ``LawSpec("truncated_gaussian", loc=mean, scale=std, low=a, high=b)``.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans (validated, otherwise unused).

        Returns
        -------
        LawSpec
            The truncated law with absolute bounds.
        """
        _check_fans(fan_in, fan_out)
        p = self._params
        return LawSpec("truncated_gaussian", loc=p["mean"], scale=p["std"], low=p["a"], high=p["b"])


# --------------------------------------------------------------------------- variance scaling


def _mode_fan(mode: str, fan_in: int, fan_out: int) -> float:
    if mode == "fan_in":
        return float(fan_in)
    if mode == "fan_out":
        return float(fan_out)
    if mode == "fan_geo_avg":
        return math.sqrt(fan_in) * math.sqrt(fan_out)
    return (fan_in + fan_out) / 2.0


class _VarianceScalingLaw(Initializer):
    """Shared behaviour of the ``scale / fan`` family (LeCun, Glorot, He, VarianceScaling)."""

    @abstractmethod
    def _scheme(self) -> tuple[float, str, str]:
        """Return ``(scale, mode, distribution)``."""

    @property
    def law(self) -> str:
        """``"gaussian"``, ``"truncated_gaussian"`` or ``"uniform"``, from the distribution."""
        return {
            "normal": "gaussian",
            "truncated_normal": "truncated_gaussian",
            "uniform": "uniform",
        }[self._scheme()[2]]

    @property
    def variance_law(self) -> str:
        """``scale / fan`` with the numbers substituted, e.g. ``"2 / fan_in"``."""
        scale, mode, _ = self._scheme()
        if mode == "fan_avg":
            return f"{_num(2.0 * scale)} / (fan_in + fan_out)"
        if mode == "fan_geo_avg":
            return f"{_num(scale)} / sqrt(fan_in * fan_out)"
        return f"{_num(scale)} / {mode}"

    def variance(self, fan_in: int, fan_out: int) -> float:
        """Return ``scale / fan`` for the scheme's mode (see the class docstring).

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans.

        Returns
        -------
        float
            ``Var(W_ij)``, the same for every distribution.
        """
        fi, fo = _check_fans(fan_in, fan_out)
        scale, mode, _ = self._scheme()
        return scale / _mode_fan(mode, fi, fo)

    def law_spec(self, fan_in: int, fan_out: int) -> LawSpec:
        """Return the entry law with variance ``scale / fan``.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans.

        Returns
        -------
        LawSpec
            ``gaussian`` with ``scale = sqrt(var)``; ``uniform`` on
            ``+-sqrt(3 var)``; or ``truncated_gaussian`` with parent
            ``scale = sqrt(var) / 0.87962566103423978`` and absolute bounds
            ``+-2 scale``.
        """
        var = self.variance(fan_in, fan_out)
        dist = self._scheme()[2]
        if dist == "normal":
            return LawSpec("gaussian", scale=math.sqrt(var))
        if dist == "uniform":
            limit = math.sqrt(3.0 * var)
            return LawSpec("uniform", low=-limit, high=limit)
        std = math.sqrt(var) / TRUNCATED_NORMAL_STD_FACTOR
        return LawSpec("truncated_gaussian", scale=std, low=-2.0 * std, high=2.0 * std)

    def _complex_iid(
        self, spec: LawSpec, var: float, size: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Draw JAX's complex laws of variance ``var``: normal, uniform disc, truncated disc."""
        dist = self._scheme()[2]
        if dist == "normal":
            return math.sqrt(var) * _complex_normal(rng, size)
        if dist == "uniform":
            # uniform on the disc of radius sqrt(2 var): E|z|^2 = var
            return _complex_polar(np.sqrt(2.0 * var * rng.random(size)), rng)
        # |z|^2 of a complex standard normal is Exp(1); cut at 2^2 = 4 by inversion
        kept = -math.expm1(-4.0)  # P(|z|^2 <= 4)
        r2 = -np.log1p(-kept * rng.random(size))
        std = math.sqrt(var) / COMPLEX_TRUNCATED_NORMAL_STD_FACTOR
        return _complex_polar(std * np.sqrt(r2), rng)


class VarianceScaling(_VarianceScalingLaw):
    """Keras/JAX ``VarianceScaling``: variance ``scale / fan``.

    Parameters
    ----------
    scale : float
        Finite, > 0.
    mode : {"fan_in", "fan_out", "fan_avg", "fan_geo_avg"}
        ``fan`` is ``fan_in``, ``fan_out``, ``(fan_in + fan_out) / 2`` or
        ``sqrt(fan_in fan_out)`` (JAX's ``fan_geo_avg``).
    distribution : {"normal", "truncated_normal", "uniform"}
        ``"normal"``: N(0, scale/fan) (JAX ``"normal"``, Keras
        ``"untruncated_normal"``, also accepted). ``"truncated_normal"``:
        N(0, s^2) truncated to [-2 s, 2 s] with
        ``s = sqrt(scale/fan) / 0.87962566103423978``, the standard deviation of
        a standard normal truncated to [-2, 2], so the variance is
        ``scale / fan`` (Keras default). ``"uniform"``: U(-l, l) with
        ``l = sqrt(3 scale / fan)``. Note: the default here is ``"normal"``,
        whereas Keras defaults to ``"truncated_normal"`` (and Keras 2 read
        ``"normal"`` as truncated).

    Notes
    -----
    Exactly ``Var(W_ij) = scale / fan`` for every distribution (the truncated
    variant up to the 17-digit constant, i.e. to double precision) and
    ``E[W_ij] = 0``. Complex dtypes (as JAX): ``"normal"`` has independent
    ``N(0, var/2)`` parts; ``"uniform"`` is uniform on the disc of radius
    ``sqrt(2 var)``; ``"truncated_normal"`` is a complex normal with its
    modulus cut at two complex standard deviations, rescaled by
    :data:`COMPLEX_TRUNCATED_NORMAL_STD_FACTOR`, so ``E|W_ij|^2 = var``
    exactly for all three (JAX's own constant leaves the truncated one 1.86 %
    too wide). The whole family (LeCun, Glorot, He) shares these laws.
    """

    name = "variance_scaling"

    def __init__(
        self, scale: float = 1.0, mode: str = "fan_in", distribution: str = "normal"
    ) -> None:
        self._set_params(
            scale=_real("scale", scale, positive=True),
            mode=_choice("mode", mode, _FAN_MODES),
            distribution=_choice(
                "distribution", distribution, _VS_DISTRIBUTIONS, _DISTRIBUTION_ALIASES
            ),
        )

    def _scheme(self) -> tuple[float, str, str]:
        p = self._params
        return p["scale"], p["mode"], p["distribution"]


class LecunNormal(_VarianceScalingLaw):
    """LeCun normal (Keras/JAX ``lecun_normal``): variance ``1 / fan_in``.

    Parameters
    ----------
    distribution : {"normal", "truncated_normal"}
        ``"normal"`` (default): N(0, 1/fan_in). ``"truncated_normal"``: the
        Keras/JAX law, a normal truncated at +-2 parent std and rescaled by
        1/0.87962566103423978 so the variance is unchanged.

    Notes
    -----
    Exactly ``Var(W_ij) = 1 / fan_in`` (``sigma_w2 = 1``), ``E[W_ij] = 0``.
    Same as ``VarianceScaling(1.0, "fan_in", distribution)``. PyTorch has no
    named LeCun initializer. (The seed document calls this scheme "Xavier".)
    """

    name = "lecun_normal"

    def __init__(self, distribution: str = "normal") -> None:
        self._set_params(
            distribution=_choice(
                "distribution", distribution, _NORMAL_DISTRIBUTIONS, _DISTRIBUTION_ALIASES
            )
        )

    def _scheme(self) -> tuple[float, str, str]:
        return 1.0, "fan_in", self._params["distribution"]


class LecunUniform(_VarianceScalingLaw):
    """LeCun uniform (Keras/JAX ``lecun_uniform``): U(-l, l), ``l = sqrt(3 / fan_in)``.

    Notes
    -----
    Exactly ``Var(W_ij) = 1 / fan_in`` (``sigma_w2 = 1``), ``E[W_ij] = 0``.
    Same as ``VarianceScaling(1.0, "fan_in", "uniform")``.
    """

    name = "lecun_uniform"

    def __init__(self) -> None:
        self._set_params()

    def _scheme(self) -> tuple[float, str, str]:
        return 1.0, "fan_in", "uniform"


class GlorotNormal(_VarianceScalingLaw):
    """Glorot/Xavier normal (PyTorch ``xavier_normal_``, Keras/JAX ``glorot_normal``).

    Parameters
    ----------
    gain : float
        Multiplier of the standard deviation as in PyTorch (finite, > 0;
        a negative gain would give the same symmetric law, and PyTorch
        rejects it when sampling). Keras/JAX have no gain (gain = 1).
    distribution : {"normal", "truncated_normal"}
        ``"normal"`` (default, PyTorch): N(0, gain^2 2/(fan_in + fan_out)).
        ``"truncated_normal"`` (Keras/JAX): truncated at +-2 parent std and
        rescaled by 1/0.87962566103423978 so the variance is unchanged.

    Notes
    -----
    Exactly ``Var(W_ij) = gain^2 * 2 / (fan_in + fan_out)``, ``E[W_ij] = 0``;
    PyTorch's ``std = gain * sqrt(2 / (fan_in + fan_out))``. Same as
    ``VarianceScaling(gain**2, "fan_avg", distribution)``.
    """

    name = "glorot_normal"

    def __init__(self, gain: float = 1.0, distribution: str = "normal") -> None:
        self._set_params(
            gain=_real("gain", gain, positive=True),
            distribution=_choice(
                "distribution", distribution, _NORMAL_DISTRIBUTIONS, _DISTRIBUTION_ALIASES
            ),
        )

    def _scheme(self) -> tuple[float, str, str]:
        return self._params["gain"] ** 2, "fan_avg", self._params["distribution"]


class GlorotUniform(_VarianceScalingLaw):
    """Glorot/Xavier uniform (PyTorch ``xavier_uniform_``, Keras/JAX ``glorot_uniform``).

    Parameters
    ----------
    gain : float
        Multiplier of the bound as in PyTorch (finite, > 0). Keras/JAX: gain = 1.

    Notes
    -----
    U(-l, l) with ``l = gain * sqrt(6 / (fan_in + fan_out))``: exactly
    ``Var(W_ij) = gain^2 * 2 / (fan_in + fan_out)``, ``E[W_ij] = 0``. Same as
    ``VarianceScaling(gain**2, "fan_avg", "uniform")``.
    """

    name = "glorot_uniform"

    def __init__(self, gain: float = 1.0) -> None:
        self._set_params(gain=_real("gain", gain, positive=True))

    def _scheme(self) -> tuple[float, str, str]:
        return self._params["gain"] ** 2, "fan_avg", "uniform"


def _he_params(a: Any, mode: Any, nonlinearity: Any) -> dict[str, Any]:
    return {
        "a": _real("a", a),
        "mode": _choice("mode", mode, ("fan_in", "fan_out")),
        "nonlinearity": _check_nonlinearity(nonlinearity),
    }


class HeNormal(_VarianceScalingLaw):
    """He/Kaiming normal (PyTorch ``kaiming_normal_``, Keras/JAX ``he_normal``).

    Parameters
    ----------
    a : float
        Negative slope of the rectifier, used only with
        ``nonlinearity="leaky_relu"`` (ignored otherwise, as in PyTorch).
    mode : {"fan_in", "fan_out"}
        ``fan_in`` preserves the forward second moment, ``fan_out`` the backward.
    nonlinearity : str
        One of :data:`NONLINEARITIES`; ``gain = gain(nonlinearity, a)``. The
        default ``"leaky_relu"`` with ``a = 0`` gives gain sqrt(2), as PyTorch.
    distribution : {"normal", "truncated_normal"}
        ``"normal"`` (default, PyTorch): N(0, gain^2 / fan).
        ``"truncated_normal"`` (Keras/JAX ``he_normal``): truncated at +-2
        parent std and rescaled by 1/0.87962566103423978, same variance.

    Notes
    -----
    Exactly ``Var(W_ij) = gain^2 / fan`` with ``fan`` = ``fan_in`` or
    ``fan_out``; with the defaults ``2 / fan_in`` (``sigma_w2 = 2``), and
    ``E[W_ij] = 0``. PyTorch's ``std = gain / sqrt(fan)``. Same as
    ``VarianceScaling(gain**2, mode, distribution)``.
    """

    name = "he_normal"

    def __init__(
        self,
        a: float = 0.0,
        mode: str = "fan_in",
        nonlinearity: str = "leaky_relu",
        distribution: str = "normal",
    ) -> None:
        params = _he_params(a, mode, nonlinearity)
        params["distribution"] = _choice(
            "distribution", distribution, _NORMAL_DISTRIBUTIONS, _DISTRIBUTION_ALIASES
        )
        self._set_params(**params)

    def _scheme(self) -> tuple[float, str, str]:
        p = self._params
        return _gain2(p["nonlinearity"], p["a"]), p["mode"], p["distribution"]


class HeUniform(_VarianceScalingLaw):
    """He/Kaiming uniform (PyTorch ``kaiming_uniform_``, Keras/JAX ``he_uniform``).

    Parameters
    ----------
    a : float
        Negative slope, used only with ``nonlinearity="leaky_relu"``.
    mode : {"fan_in", "fan_out"}
        Which fan to scale by.
    nonlinearity : str
        One of :data:`NONLINEARITIES`; ``gain = gain(nonlinearity, a)``,
        sqrt(2) with the defaults.

    Notes
    -----
    U(-l, l) with ``l = gain * sqrt(3 / fan)``: exactly
    ``Var(W_ij) = gain^2 / fan`` (``2 / fan_in`` with the defaults) and
    ``E[W_ij] = 0``. Same as ``VarianceScaling(gain**2, mode, "uniform")``.
    PyTorch's layer default is this scheme with ``a = sqrt(5)``, see
    :class:`TorchLinearDefault`.
    """

    name = "he_uniform"

    def __init__(
        self, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
    ) -> None:
        self._set_params(**_he_params(a, mode, nonlinearity))

    def _scheme(self) -> tuple[float, str, str]:
        p = self._params
        return _gain2(p["nonlinearity"], p["a"]), p["mode"], "uniform"


class TorchLinearDefault(Initializer):
    """PyTorch's default for ``nn.Linear`` and ``nn.ConvNd`` weights.

    ``kaiming_uniform_(w, a=sqrt(5))``, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    Notes
    -----
    Exactly ``Var(W_ij) = 1 / (3 fan_in)`` (``sigma_w2 = 1/3``: signals
    shrink with depth under ReLU) and ``E[W_ij] = 0``. PyTorch draws the
    bias from the same interval: :class:`TorchBiasDefault`. PyTorch computes
    ``fan_in`` from ``weight.shape[1]`` also for ``ConvTranspose``, whose
    weight is ``(in, out / groups, *kernel)``: the torch fan rule on that
    shape reproduces it.
    """

    name = "torch_linear_default"
    _law = "uniform"
    _complex = False

    def __init__(self) -> None:
        self._set_params()

    @property
    def variance_law(self) -> str:
        """``"1 / (3 * fan_in)"``."""
        return "1 / (3 * fan_in)"

    def variance(self, fan_in: int, fan_out: int) -> float:
        """Return ``1 / (3 fan_in)``.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans.

        Returns
        -------
        float
            ``1 / (3 * fan_in)``.
        """
        fi, _ = _check_fans(fan_in, fan_out)
        return 1.0 / (3.0 * fi)

    def law_spec(self, fan_in: int, fan_out: int) -> LawSpec:
        """Return ``LawSpec("uniform", low=-1/sqrt(fan_in), high=1/sqrt(fan_in))``.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans.

        Returns
        -------
        LawSpec
            The uniform law.
        """
        fi, _ = _check_fans(fan_in, fan_out)
        bound = 1.0 / math.sqrt(fi)
        return LawSpec("uniform", low=-bound, high=bound)


class TorchBiasDefault(Initializer):
    """PyTorch's default for the bias of ``nn.Linear`` and ``nn.ConvNd``.

    ``uniform_(bias, -1/sqrt(fan_in), 1/sqrt(fan_in))`` with ``fan_in`` the
    fan_in of the layer's *weight* (``fans(weight.shape)[0]``), which a 1-D
    bias shape does not carry: it is the parameter.

    Parameters
    ----------
    fan_in : int
        The weight's fan_in (>= 1), e.g. ``in_features`` of ``nn.Linear`` or
        ``in_channels / groups * prod(kernel_size)`` of ``nn.Conv2d``.

    Notes
    -----
    Exactly ``Var(b_i) = 1 / (3 fan_in)`` and ``E[b_i] = 0`` whatever the
    fans given to :meth:`variance` (the law does not depend on the bias
    shape). Accepts any shape, 1-D biases in particular.
    """

    name = "torch_bias_default"
    _law = "uniform"
    _needs_fans = False
    _complex = False

    def __init__(self, fan_in: int) -> None:
        self._set_params(fan_in=_positive_int("fan_in", fan_in))

    @property
    def variance_law(self) -> str:
        """``"1 / (3 * fan_in)"`` with the weight's fan_in substituted."""
        return f"1 / (3 * {self._params['fan_in']})"

    def variance(self, fan_in: int, fan_out: int) -> float:
        """Return ``1 / (3 fan_in)`` of the weight (the parameter).

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans (validated, otherwise unused).

        Returns
        -------
        float
            ``1 / (3 * self.params["fan_in"])``.
        """
        _check_fans(fan_in, fan_out)
        return 1.0 / (3.0 * self._params["fan_in"])

    def law_spec(self, fan_in: int, fan_out: int) -> LawSpec:
        """Return ``LawSpec("uniform", low=-1/sqrt(fan_in), high=1/sqrt(fan_in))``.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans (validated, otherwise unused).

        Returns
        -------
        LawSpec
            The uniform law of the weight's fan_in.
        """
        _check_fans(fan_in, fan_out)
        bound = 1.0 / math.sqrt(self._params["fan_in"])
        return LawSpec("uniform", low=-bound, high=bound)


# --------------------------------------------------------------------------- matrix laws


def _out_axis(rule: FanRule, shape: tuple[int, ...]) -> int:
    """Return the axis an orthogonal matrix keeps as its own side (the rule's out axis)."""
    axis = rule.default_axes[1] if rule.out_axis is None else rule.out_axis
    if not isinstance(axis, int):
        raise ValueError(
            f"an orthogonal law separates one axis (JAX column_axis); got out_axis={axis!r}"
        )
    return _resolve_axes("column_axis", axis, len(shape), shape)[0]


def _haar(rows: int, cols: int, rng: np.random.Generator, complex_: bool) -> np.ndarray:
    """Draw a Haar (semi-)orthogonal, or unitary, ``rows x cols`` matrix (QR, sign/phase fix)."""
    n, k = max(rows, cols), min(rows, cols)
    tall = _complex_normal(rng, n * k).reshape(n, k) if complex_ else rng.standard_normal((n, k))
    q, r = np.linalg.qr(tall)
    d = np.diag(r)
    q = q * (d / np.abs(d) if complex_ else np.sign(d))
    return q.T if rows < cols else q


class Orthogonal(Initializer):
    """Haar-random (semi-)orthogonal matrix times ``gain`` (PyTorch ``orthogonal_``).

    The tensor is flattened to a matrix that keeps one axis, the fan rule's
    out axis, as a side: ``shape[0] x prod(shape[1:])`` in torch layout
    (PyTorch), ``prod(shape[:-1]) x shape[-1]`` in keras layout (Keras and
    JAX ``orthogonal``; JAX's ``column_axis`` picks another axis). A Gaussian
    matrix of the taller orientation is QR-factorised, Q's columns are
    multiplied by ``sign(diag(R))`` (which makes Q Haar-distributed), and the
    result is transposed back if needed: ``W W^T = gain^2 I`` when the matrix
    is wide, ``W^T W = gain^2 I`` otherwise. Complex dtypes give a Haar
    unitary (phases ``diag(R) / |diag(R)|``), as JAX.

    Parameters
    ----------
    gain : float
        Finite and nonzero. A negative gain is allowed (``-Q`` is Haar too, and
        PyTorch accepts it); zero is rejected (use :class:`Zeros`). JAX
        calls it ``scale``.

    Notes
    -----
    Exactly ``Var(W_ij) = gain^2 / max(rows, cols)`` and ``E[W_ij] = 0``.
    :meth:`fans` returns the sides of the flattened matrix, ``(numel /
    shape[out], shape[out])``: so ``variance(*init.fans(shape))`` is exact for
    every shape. (For conv weights they differ from :func:`fans`: torch
    ``(64, 32, 3, 3)`` flattens to 64 x 288, while PyTorch's fans are
    ``(288, 576)``.)
    """

    name = "orthogonal"
    _law = "orthogonal"
    _min_rank = 2

    def __init__(self, gain: float = 1.0) -> None:
        self._set_params(gain=_real("gain", gain, nonzero=True))

    @property
    def variance_law(self) -> str:
        """``gain^2 / max(fan_in, fan_out)`` with gain substituted."""
        return f"{_num(self._params['gain'] ** 2)} / max(fan_in, fan_out)"

    def variance(self, fan_in: int, fan_out: int) -> float:
        """Return ``gain^2 / max(fan_in, fan_out)``, fans from :meth:`fans`.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans: the sides of the flattened matrix.

        Returns
        -------
        float
            ``Var(W_ij)``.
        """
        fi, fo = _check_fans(fan_in, fan_out)
        return self._params["gain"] ** 2 / max(fi, fo)

    def _fans_by(self, rule: FanRule, shape: tuple[int, ...]) -> tuple[int, int]:
        side = shape[_out_axis(rule, shape)]
        return math.prod(shape) // side, side

    def law_spec(self, fan_in: int, fan_out: int) -> LawSpec:
        """Return ``LawSpec("orthogonal", gain=gain)``.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans (validated, otherwise unused).

        Returns
        -------
        LawSpec
            The orthogonal law (a matrix law: sample whole matrices).
        """
        _check_fans(fan_in, fan_out)
        return LawSpec("orthogonal", gain=self._params["gain"])

    def _draw(
        self, shape: tuple[int, ...], rule: FanRule, rng: np.random.Generator, dtype: np.dtype
    ) -> np.ndarray:
        axis = _out_axis(rule, shape)
        side = shape[axis]
        rest = math.prod(shape) // side
        gain = self._params["gain"]
        if rule.out_axis is None and rule.layout == "torch":
            # PyTorch's orientation: shape[0] x prod(shape[1:]).
            w = gain * _haar(side, rest, rng, dtype.kind == "c")
            return np.ascontiguousarray(w.reshape(shape), dtype=dtype)
        w = gain * _haar(rest, side, rng, dtype.kind == "c")
        moved = (*shape[:axis], *shape[axis + 1 :], side)
        return np.ascontiguousarray(np.moveaxis(w.reshape(moved), -1, axis), dtype=dtype)


class _DeterministicLaw(Initializer):
    """Shared behaviour of identity and dirac: fixed tensors, zero variance."""

    @property
    def variance_law(self) -> str:
        """``"0 (deterministic)"``."""
        return "0 (deterministic)"

    def variance(self, fan_in: int, fan_out: int) -> float:
        """Return 0.0: the tensor is deterministic.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans (validated, otherwise unused).

        Returns
        -------
        float
            0.0.
        """
        _check_fans(fan_in, fan_out)
        return 0.0

    def mean(self, fan_in: int, fan_out: int) -> float:
        """Return 0.0, the value of the off-diagonal entries.

        The tensor is deterministic: entries are ``gain`` on the (block)
        diagonal and 0 elsewhere, so "the mean of one entry" depends on its
        position; 0.0 is returned by convention.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans (validated, otherwise unused).

        Returns
        -------
        float
            0.0.
        """
        _check_fans(fan_in, fan_out)
        return 0.0

    def law_spec(self, fan_in: int, fan_out: int) -> LawSpec:
        """Return ``LawSpec(law, gain=gain)``.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans (validated, otherwise unused).

        Returns
        -------
        LawSpec
            The deterministic law.
        """
        _check_fans(fan_in, fan_out)
        return LawSpec(self._law, gain=self._params["gain"])


class Identity(_DeterministicLaw):
    """``gain`` times the identity matrix (PyTorch ``eye_``, Keras/JAX ``identity``).

    Parameters
    ----------
    gain : float
        Finite and nonzero (negative gives ``-I``). PyTorch's ``eye_`` has no
        gain (gain = 1).

    Notes
    -----
    2-D shapes only; rectangular shapes get ``gain`` on the main diagonal.
    The same matrix in either layout. Deterministic: ``Var(W_ij) = 0``;
    :meth:`mean` returns 0.0 by convention (see there).
    """

    name = "identity"
    _law = "identity"
    _ranks = (2,)

    def __init__(self, gain: float = 1.0) -> None:
        self._set_params(gain=_real("gain", gain, nonzero=True))

    def _draw(
        self, shape: tuple[int, ...], rule: FanRule, rng: np.random.Generator, dtype: np.dtype
    ) -> np.ndarray:
        out = np.zeros(shape, dtype=dtype)
        np.fill_diagonal(out, self._params["gain"])
        return out


class Dirac(_DeterministicLaw):
    """Dirac delta conv weights: an identity map through a conv (PyTorch ``dirac_``).

    Parameters
    ----------
    groups : int
        Number of groups (>= 1); the output channels must be divisible by it.
        Within each group, output channel ``d`` copies input channel ``d`` for
        ``d < min(out // groups, in)``.
    gain : float
        Finite and nonzero value at the kernel centre (``shape[k] // 2``);
        PyTorch's ``dirac_`` has no gain (gain = 1).

    Notes
    -----
    3-, 4- and 5-D shapes only: ``(out, in, *kernel)`` in torch layout,
    ``(*kernel, in, out)`` in keras layout (the transpose). Deterministic:
    ``Var(W_ij) = 0``; :meth:`mean` returns 0.0 by convention (see there).
    """

    name = "dirac"
    _law = "dirac"
    _ranks = (3, 4, 5)

    def __init__(self, groups: int = 1, gain: float = 1.0) -> None:
        self._set_params(
            groups=_positive_int("groups", groups), gain=_real("gain", gain, nonzero=True)
        )

    def _check_drawable(self, dims: tuple[int, ...], rule: FanRule, shape: Any) -> None:
        super()._check_drawable(dims, rule, shape)
        n_out = _kernel_split(dims, rule.layout)[1]
        groups = self._params["groups"]
        if n_out % groups:
            raise ValueError(f"groups={groups} must divide the number of output channels ({n_out})")

    def _draw(
        self, shape: tuple[int, ...], rule: FanRule, rng: np.random.Generator, dtype: np.dtype
    ) -> np.ndarray:
        n_in, n_out, kernel = _kernel_split(shape, rule.layout)
        groups = self._params["groups"]
        per_group = n_out // groups
        centre = tuple(k // 2 for k in kernel)
        out = np.zeros(shape, dtype=dtype)
        for g in range(groups):
            for d in range(min(per_group, n_in)):
                if rule.layout == "torch":
                    out[(g * per_group + d, d, *centre)] = self._params["gain"]
                else:
                    out[(*centre, d, g * per_group + d)] = self._params["gain"]
        return out


def _kernel_split(shape: tuple[int, ...], layout: str) -> tuple[int, int, tuple[int, ...]]:
    """``(n_in, n_out, kernel)`` of a convolution shape in ``layout``."""
    if layout == "torch":
        return shape[1], shape[0], shape[2:]
    return shape[-2], shape[-1], shape[:-2]


class DeltaOrthogonal(Orthogonal):
    """Delta-orthogonal convolution kernel (JAX ``delta_orthogonal``; Xiao et al. 2018).

    A Haar (semi-)orthogonal ``in x out`` matrix times ``gain`` at the
    kernel's centre tap, zeros at every other tap: the convolution starts as
    an orthogonal map of the channels at every position (arXiv:1806.05393).

    Parameters
    ----------
    gain : float
        Finite and nonzero (JAX calls it ``scale``).

    Notes
    -----
    3-, 4- and 5-D shapes, ``(*kernel, in, out)`` in keras layout (JAX) or
    ``(out, in, *kernel)`` in torch layout, with ``in <= out`` (JAX raises
    otherwise). The centre tap is ``(k - 1) // 2`` along each kernel axis, as
    JAX (PyTorch's :class:`Dirac` uses ``k // 2``; they differ for even
    ``k``). Each entry has mean 0; the centre-tap entries have variance
    ``gain^2 / out`` and the others 0, so an entry at a uniformly random
    position has exactly ``Var(W_ij) = gain^2 / (out prod(kernel)) =
    gain^2 / max(fan_in, fan_out)`` with the convolution fans of :func:`fans`.
    Complex dtypes: a Haar unitary at the centre. A subclass of
    :class:`Orthogonal` for its gain and its variance formula only.
    """

    name = "delta_orthogonal"
    _law = "delta_orthogonal"
    _ranks = (3, 4, 5)
    _min_rank = None

    def law_spec(self, fan_in: int, fan_out: int) -> LawSpec:
        """Return ``LawSpec("delta_orthogonal", gain=gain)`` (a convolution law).

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans (validated, otherwise unused).

        Returns
        -------
        LawSpec
            The law; kernels cannot sample it entry by entry.
        """
        _check_fans(fan_in, fan_out)
        return LawSpec("delta_orthogonal", gain=self._params["gain"])

    def _fans_by(self, rule: FanRule, shape: tuple[int, ...]) -> tuple[int, int]:
        return FanRule(rule.layout).fans(shape)

    def _check_drawable(self, dims: tuple[int, ...], rule: FanRule, shape: Any) -> None:
        super()._check_drawable(dims, rule, shape)
        n_in, n_out, _ = _kernel_split(dims, rule.layout)
        if n_in > n_out:
            raise ValueError(
                f"delta_orthogonal needs in <= out channels (as JAX); got in={n_in}, "
                f"out={n_out} in shape={shape!r} ({rule.layout} layout)"
            )

    def _draw(
        self, shape: tuple[int, ...], rule: FanRule, rng: np.random.Generator, dtype: np.dtype
    ) -> np.ndarray:
        n_in, n_out, kernel = _kernel_split(shape, rule.layout)
        centre = tuple((k - 1) // 2 for k in kernel)
        w = self._params["gain"] * _haar(n_in, n_out, rng, dtype.kind == "c")
        out = np.zeros(shape, dtype=dtype)
        if rule.layout == "torch":
            out[(slice(None), slice(None), *centre)] = w.T
        else:
            out[(*centre, slice(None), slice(None))] = w
        return out


_STFT_SIDES: tuple[str, ...] = ("real", "imag")
_STFT_SCALINGS: tuple[str, ...] = ("density", "spectrum")


def _stft_window(window: Any) -> str | tuple[float, ...] | None:
    """Validate an STFT window: None, a ``scipy.signal.get_window`` name, or values."""
    if window is None:
        return None
    if isinstance(window, str):
        from scipy import signal

        try:
            signal.get_window(window, 1)
        except ValueError as err:
            raise ValueError(
                f"window={window!r} is not a scipy.signal.windows name ({err})"
            ) from None
        return window
    arr = np.asarray(window, dtype=np.float64) if not isinstance(window, bool) else None
    if arr is None or arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ValueError(
            f"window must be None, a scipy.signal.windows name or a 1-D array of finite "
            f"values; got {window!r}"
        )
    return tuple(float(v) for v in arr)


class STFT(_DeterministicLaw):
    """Keras' ``STFT`` initializer: the real or imaginary DFT kernels of a Conv1D.

    For a keras-layout shape ``(T, C, F)`` (frame length, input channels,
    ``fft_length / 2 + 1`` frequency bins) entry ``[t, c, f]`` is
    ``cos(-2 pi t f / N)`` (``side="real"``) or ``sin(-2 pi t f / N)``
    (``"imag"``), ``N = 2 (F - 1)``, times the window ``w[t]`` divided by the
    window's scaling: ``sqrt(sum w^2)`` (``"density"``), ``sum |w|``
    (``"spectrum"``) or 1 (None). Torch layout ``(F, C, T)`` holds the same
    kernel transposed (``nn.Conv1d``).

    Parameters
    ----------
    side : {"real", "imag"}
        Which part of the transform the kernel computes.
    window : str, array_like or None
        A ``scipy.signal.get_window`` name (``"hann"``, ``"hamming"``, ...),
        ``T`` window values, or None for none.
    scaling : {"density", "spectrum"} or None
        The window normalisation (L2 or L1); None for none.
    periodic : bool
        Periodic (``fftbins=True``) rather than symmetric windows.

    Notes
    -----
    Deterministic: ``Var(W_ij) = 0``; :meth:`mean` returns 0.0 by
    convention. Keras returns ``(T, 1, F)`` whatever ``C``; here the kernel
    is the same for every input channel, so any ``C`` gets the shape asked
    for. Needs ``F >= 2`` (Keras divides by zero at ``F = 1``).
    """

    name = "stft"
    _law = "stft"
    _ranks = (3,)

    def __init__(
        self,
        side: str = "real",
        window: str | Sequence[float] | None = "hann",
        scaling: str | None = "density",
        periodic: bool = False,
    ) -> None:
        if not isinstance(periodic, bool | np.bool_):
            raise ValueError(f"periodic must be a bool; got {periodic!r}")
        self._set_params(
            side=_choice("side", side, _STFT_SIDES),
            window=_stft_window(window),
            scaling=None if scaling is None else _choice("scaling", scaling, _STFT_SCALINGS),
            periodic=bool(periodic),
        )

    def law_spec(self, fan_in: int, fan_out: int) -> LawSpec:
        """Return ``LawSpec("stft")`` (a convolution law).

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans (validated, otherwise unused).

        Returns
        -------
        LawSpec
            The law; kernels cannot sample it entry by entry.
        """
        _check_fans(fan_in, fan_out)
        return LawSpec("stft")

    def _check_drawable(self, dims: tuple[int, ...], rule: FanRule, shape: Any) -> None:
        super()._check_drawable(dims, rule, shape)
        frames, _, bins = dims if rule.layout == "keras" else dims[::-1]
        if bins < 2:
            raise ValueError(f"stft needs at least 2 frequency bins; got shape={shape!r}")
        window = self._params["window"]
        if isinstance(window, tuple) and len(window) != frames:
            raise ValueError(
                f"the window has {len(window)} values but the frame length is {frames} "
                f"(shape={shape!r})"
            )

    def _draw(
        self, shape: tuple[int, ...], rule: FanRule, rng: np.random.Generator, dtype: np.dtype
    ) -> np.ndarray:
        frames, channels, bins = shape if rule.layout == "keras" else shape[::-1]
        p = self._params
        time = np.arange(frames, dtype=np.float64)[:, None]
        freq = np.arange(bins, dtype=np.float64)[None, :] / (2 * (bins - 1))
        args = (-2.0 * time) * freq * math.pi
        kernel = np.cos(args) if p["side"] == "real" else np.sin(args)
        if p["window"] is not None:
            if isinstance(p["window"], str):
                from scipy import signal

                win = signal.get_window(p["window"], frames, fftbins=p["periodic"])
            else:
                win = np.asarray(p["window"])
            scale = 1.0
            if p["scaling"] == "density":
                scale = math.sqrt(float(np.sum(np.square(win))))
            elif p["scaling"] == "spectrum":
                scale = float(np.sum(np.abs(win)))
            kernel = kernel * win[:, None] / scale
        full = np.broadcast_to(kernel[:, None, :], (frames, channels, bins))
        if rule.layout == "torch":
            full = full.transpose(2, 1, 0)
        return np.array(full, dtype=dtype)


def _sparse_zeros(sparsity: float, rows: int) -> int:
    # Same float arithmetic as PyTorch's sparse_: 0.07 * 100 == 7.000000000000001 -> 8 zeros.
    return math.ceil(sparsity * rows)


class Sparse(Initializer):
    """Sparse normal matrix (PyTorch ``sparse_``).

    Entries are N(0, std^2); then in each column (torch layout ``(out, in)``:
    the weights leaving one input unit) exactly ``ceil(sparsity * rows)``
    entries, chosen uniformly at random, are set to zero. ``rows = out =
    fan_out``. In keras layout ``(in, out)`` the same law is applied to the
    transpose (each row gets the zeros). Fully determined by the seed.

    Parameters
    ----------
    sparsity : float
        Fraction of zeros per column, in [0, 1) (required, as in PyTorch).
    std : float
        Standard deviation of the nonzero entries (finite, > 0).

    Notes
    -----
    Exactly ``Var(W_ij) = std^2 (fan_out - ceil(sparsity fan_out)) / fan_out``
    and ``E[W_ij] = 0``; the variance depends on ``fan_out`` (the number of
    rows), not on ``fan_in``. ``ceil`` uses PyTorch's float arithmetic.
    2-D shapes only.
    """

    name = "sparse"
    _law = "sparse"
    _ranks = (2,)
    _complex = False

    def __init__(self, sparsity: float, std: float = 0.01) -> None:
        s = _real("sparsity", sparsity)
        if not 0.0 <= s < 1.0:
            raise ValueError(f"sparsity must be in [0, 1); got {s!r}")
        self._set_params(sparsity=s, std=_real("std", std, positive=True))

    @property
    def variance_law(self) -> str:
        """``std^2 (fan_out - ceil(sparsity fan_out)) / fan_out`` with numbers."""
        p = self._params
        return (
            f"{_num(p['std'] ** 2)} * (fan_out - ceil({_num(p['sparsity'])} * fan_out)) / fan_out"
        )

    def variance(self, fan_in: int, fan_out: int) -> float:
        """Return ``std^2 (fan_out - ceil(sparsity fan_out)) / fan_out``.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans; ``fan_out`` is the number of rows.

        Returns
        -------
        float
            ``Var(W_ij)``.
        """
        _, fo = _check_fans(fan_in, fan_out)
        p = self._params
        return p["std"] ** 2 * (fo - _sparse_zeros(p["sparsity"], fo)) / fo

    def law_spec(self, fan_in: int, fan_out: int) -> LawSpec:
        """Return ``LawSpec("sparse", scale=std, sparsity=sparsity)``.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans (validated, otherwise unused).

        Returns
        -------
        LawSpec
            The sparse law (a matrix law: zeros are placed per column).
        """
        _check_fans(fan_in, fan_out)
        return LawSpec("sparse", scale=self._params["std"], sparsity=self._params["sparsity"])

    def _draw(
        self, shape: tuple[int, ...], rule: FanRule, rng: np.random.Generator, dtype: np.dtype
    ) -> np.ndarray:
        layout = rule.layout
        rows, cols = shape if layout == "torch" else shape[::-1]
        w = self._params["std"] * rng.standard_normal((rows, cols))
        n_zeros = _sparse_zeros(self._params["sparsity"], rows)
        if n_zeros:
            # argsort of iid uniforms: a uniformly random permutation per column.
            order = np.argsort(rng.random((rows, cols)), axis=0)
            np.put_along_axis(w, order[:n_zeros], 0.0, axis=0)
        return np.ascontiguousarray(w if layout == "torch" else w.T, dtype=dtype)

    def _fans_by(self, rule: FanRule, shape: tuple[int, ...]) -> tuple[int, int]:
        # The zeros are placed per column of the (out, in) matrix: its rows are the fan_out.
        return (shape[1], shape[0]) if rule.layout == "torch" else (shape[0], shape[1])


# --------------------------------------------------------------------------- registry

_CLASSES: tuple[type[Initializer], ...] = (
    Zeros,
    Ones,
    Constant,
    Normal,
    Uniform,
    TruncatedNormal,
    VarianceScaling,
    LecunNormal,
    LecunUniform,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    TorchLinearDefault,
    Orthogonal,
    Identity,
    Dirac,
    DeltaOrthogonal,
    STFT,
    Sparse,
    TorchBiasDefault,
)
_REGISTRY: Mapping[str, type[Initializer]] = MappingProxyType({c.name: c for c in _CLASSES})

#: Alternative names accepted by :func:`get`, mapped to canonical names.
ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "xavier_normal": "glorot_normal",
        "xavier_uniform": "glorot_uniform",
        "kaiming_normal": "he_normal",
        "kaiming_uniform": "he_uniform",
        "eye": "identity",
        "trunc_normal": "truncated_normal",
    }
)

# Parameters used by `catalogue` for the schemes with a required parameter.
_EXAMPLE_PARAMS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {"constant": {"value": 0.0}, "sparse": {"sparsity": 0.1}}
)


def names() -> list[str]:
    """Return the canonical initializer names, sorted.

    Returns
    -------
    list of str
        Every name :func:`get` accepts, aliases (:data:`ALIASES`) excluded.
    """
    return sorted(_REGISTRY)


def _normalise_name(name: str) -> str:
    # "HeNormal" / "kaiming-normal" / "kaiming_normal_" -> "he_normal" etc.
    key = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name.strip())
    key = re.sub(r"_+", "_", key.lower().replace("-", "_")).strip("_")
    return ALIASES.get(key, key)


def get(name: str | Initializer, **params: Any) -> Initializer:
    """Return the initializer called ``name`` with ``params``.

    Parameters
    ----------
    name : str or Initializer
        A canonical name (:func:`names`) or alias (:data:`ALIASES`),
        case-insensitive (``"kaiming-normal"``); a framework name
        (``"torch.kaiming_normal_"``, ``"keras.HeNormal"``, ``"jax.he_normal"``:
        :mod:`initsim.framework_names`), with the framework's parameters.
        Without a prefix, a Keras class name (``"HeNormal"``: truncated, as
        Keras) means the Keras scheme and a PyTorch function name with its
        trailing underscore (``"constant_"``) the PyTorch one. An
        :class:`Initializer` is returned unchanged.
    **params
        The scheme's parameters, e.g. ``get("he_normal", mode="fan_out")``,
        or the framework's, e.g. ``get("keras.RandomNormal", stddev=0.1)``.

    Returns
    -------
    Initializer
        The immutable initializer.

    Raises
    ------
    ValueError
        If the name or framework is unknown (the message lists the valid
        names), a parameter is unknown or missing (the message names it,
        gives the right spelling of another framework's, and lists the valid
        ones), or a parameter value is invalid.
    """
    if isinstance(name, Initializer):
        if params:
            raise ValueError(
                f"params ({', '.join(params)}) cannot be given with an Initializer object; "
                f"got {name!r}"
            )
        return name
    if not isinstance(name, str):
        raise ValueError(f"name must be a str or an Initializer; got {name!r}")
    from initsim import framework_names

    full = name if "." in name else framework_names.unprefixed(name)
    if full is not None:
        return framework_names.resolve(full, params)
    cls = _REGISTRY.get(_normalise_name(name))
    if cls is None:
        raise ValueError(
            f"unknown initializer name {name!r}; valid names: {', '.join(names())} "
            f"(aliases: {', '.join(sorted(ALIASES))})"
        )
    signature = inspect.signature(cls.__init__)
    accepted = [p for p in signature.parameters.values() if p.name != "self"]
    valid = [p.name for p in accepted]
    for key in params:
        if key not in valid:
            listed = ", ".join(valid) if valid else "none"
            hint = framework_names.parameter_hint(key, valid)
            raise ValueError(
                f"unknown parameter {key!r} for {cls.name}{hint}; valid parameters: {listed}"
            )
    for p in accepted:
        if p.default is inspect.Parameter.empty and p.name not in params:
            raise ValueError(f"{cls.name} requires the parameter {p.name!r}")
    return cls(**params)


def catalogue(fan_in: int = 256, fan_out: int = 256) -> list[dict[str, Any]]:
    """Return one row per scheme, for printing a table.

    Parameters
    ----------
    fan_in, fan_out : int
        The fans at which to evaluate each scheme's variance (positive).

    Returns
    -------
    list of dict
        Sorted by name; keys ``name``, ``aliases`` (tuple), ``law``,
        ``params`` (the defaults; ``constant`` uses ``value=0.0`` and
        ``sparse`` ``sparsity=0.1`` as examples of their required
        parameter), ``variance_law`` (text), ``variance`` (the exact
        variance of one entry at these fans) and ``sigma_w2``
        (``fan_in * variance``).
    """
    rows = []
    for key in names():
        example = {"fan_in": fan_in} if key == "torch_bias_default" else {}
        init = get(key, **_EXAMPLE_PARAMS.get(key, example))
        variance = init.variance(fan_in, fan_out)
        rows.append(
            {
                "name": key,
                "aliases": list(init.aliases),
                "law": init.law,
                "params": init.params,
                "variance_law": init.variance_law,
                "variance": variance,
                "sigma_w2": init.sigma_w2(fan_in, fan_out),
            }
        )
    return rows
