"""The weight-initializer catalogue of PyTorch, Keras and JAX, with exact laws.

Every scheme is an immutable :class:`Initializer` that knows

* the exact mean and variance of one weight entry as a function of
  ``(fan_in, fan_out)`` (:meth:`Initializer.mean`, :meth:`Initializer.variance`,
  :meth:`Initializer.sigma_w2`), truncation included;
* a concrete description of the entry law (:meth:`Initializer.law_spec`,
  a :class:`LawSpec`) that a Numba kernel can sample from;
* how to sample a weight tensor (:meth:`Initializer.sample`), in PyTorch
  layout ``(out, in, *kernel)`` or Keras/JAX layout ``(*kernel, in, out)``.

Schemes are looked up by name with :func:`get` (aliases such as
``kaiming_normal`` or ``xavier_uniform`` are accepted); :func:`fans` and
:func:`gain` reproduce PyTorch's ``_calculate_fan_in_and_fan_out`` and
``calculate_gain``.

Where the frameworks disagree the default follows PyTorch and the other
behaviour is one parameter away; each docstring says which. The main
difference: Keras and JAX draw ``*_normal`` schemes from a normal truncated
at two standard deviations and rescaled so that the variance is unchanged,
PyTorch from a plain normal. Here ``distribution="normal"`` (PyTorch) is the
default and ``distribution="truncated_normal"`` gives the Keras/JAX law; the
variance is the same either way.
"""

from __future__ import annotations

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
    "LAWS",
    "LAYOUTS",
    "NONLINEARITIES",
    "TRUNCATED_NORMAL_STD_FACTOR",
    "Constant",
    "Dirac",
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
)

#: Weight layouts: PyTorch ``(out, in, *kernel)`` and Keras/JAX ``(*kernel, in, out)``.
LAYOUTS: tuple[str, ...] = ("torch", "keras")

#: Standard deviation of a standard normal truncated to [-2, 2] (Keras/JAX use
#: this constant to rescale their truncated ``variance_scaling`` draws).
TRUNCATED_NORMAL_STD_FACTOR: float = 0.87962566103423978

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

_FAN_MODES: tuple[str, ...] = ("fan_in", "fan_out", "fan_avg")
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


def _check_shape(shape: Any, min_dims: int = 1) -> tuple[int, ...]:
    """Return ``shape`` as a tuple of positive ints with at least ``min_dims`` entries."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"shape must be a sequence of positive integers; got {shape!r}") from None
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral) or d <= 0:
            raise ValueError(
                f"shape must contain positive integers only (every dimension >= 1); got {shape!r}"
            )
    if len(dims) < min_dims:
        raise ValueError(
            f"shape must have at least {min_dims} dimensions here; got {len(dims)}: {shape!r}"
        )
    return tuple(int(d) for d in dims)


def _check_fans(fan_in: Any, fan_out: Any) -> tuple[int, int]:
    return _positive_int("fan_in", fan_in), _positive_int("fan_out", fan_out)


def _num(x: float) -> str:
    """Format a coefficient for a variance-law text."""
    return f"{x:.6g}"


# --------------------------------------------------------------------------- fans and gains


def fans(shape: Sequence[int], layout: str = "torch") -> tuple[int, int]:
    """Return ``(fan_in, fan_out)`` of a weight tensor, as PyTorch and Keras compute them.

    Parameters
    ----------
    shape : sequence of int
        The weight shape, at least 2-D.
    layout : {"torch", "keras"}
        ``"torch"``: ``(out, in, *kernel)``, so ``fan_in = shape[1] * r`` and
        ``fan_out = shape[0] * r`` with ``r = prod(shape[2:])`` (PyTorch's
        ``_calculate_fan_in_and_fan_out``). ``"keras"``: ``(*kernel, in, out)``,
        so ``fan_in = shape[-2] * r`` and ``fan_out = shape[-1] * r`` with
        ``r = prod(shape[:-2])`` (Keras ``_compute_fans``, JAX's default
        ``in_axis=-2, out_axis=-1``).

    Returns
    -------
    tuple of int
        ``(fan_in, fan_out)``.

    Raises
    ------
    ValueError
        If ``shape`` has fewer than 2 dimensions or a dimension < 1, or
        ``layout`` is unknown.
    """
    layout = _check_layout(layout)
    dims = _check_shape(shape, min_dims=2)
    if layout == "torch":
        receptive = math.prod(dims[2:])
        return dims[1] * receptive, dims[0] * receptive
    receptive = math.prod(dims[:-2])
    return dims[-2] * receptive, dims[-1] * receptive


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


def _from_params(cls: type[Initializer], params: dict[str, Any]) -> Initializer:
    return cls(**params)


class Initializer(ABC):
    """Base class of all initializers: an immutable scheme with an exact entry law.

    Subclasses validate their parameters in ``__init__`` and store them with
    :meth:`_set_params`; instances compare equal when their class and
    parameters are equal, and are hashable and picklable.
    """

    #: Canonical name, as accepted by :func:`get`.
    name: ClassVar[str] = ""
    _law: ClassVar[str] = ""
    # False for schemes whose law does not depend on the fans: they also
    # accept 1-D shapes (biases) in `sample`.
    _needs_fans: ClassVar[bool] = True
    _params: Mapping[str, Any]

    def _set_params(self, **params: Any) -> None:
        object.__setattr__(self, "_params", MappingProxyType(dict(params)))

    # -- value semantics ------------------------------------------------------------------
    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self) or not isinstance(other, Initializer):
            return NotImplemented
        return dict(self._params) == dict(other._params)

    def __hash__(self) -> int:
        return hash((type(self), tuple(self._params.items())))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"{type(self).__name__}({args})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_from_params, (type(self), dict(self._params)))

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
    def law(self) -> str:
        """The entry law, one of :data:`LAWS`."""
        return self._law

    @property
    @abstractmethod
    def variance_law(self) -> str:
        """Human-readable exact variance of one entry, e.g. ``"2 / fan_in"``."""

    def describe(self) -> str:
        """Return a one-line description: parameters, law and variance law.

        Returns
        -------
        str
            For example ``"HeNormal(a=0.0, ...): gaussian law, Var(W_ij) = 2 / fan_in"``.
        """
        return f"{self!r}: {self.law} law, Var(W_ij) = {self.variance_law}"

    # -- moments --------------------------------------------------------------------------
    @abstractmethod
    def variance(self, fan_in: int, fan_out: int) -> float:
        """Return the exact variance of one weight entry.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans, e.g. from :func:`fans`.

        Returns
        -------
        float
            ``Var(W_ij)``; see the class docstring for the formula.
        """

    def mean(self, fan_in: int, fan_out: int) -> float:
        """Return the exact mean of one weight entry.

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans, e.g. from :func:`fans`.

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

    def variance_for_shape(self, shape: Sequence[int], layout: str = "torch") -> float:
        """Return the exact variance of one entry of ``self.sample(shape, layout=layout)``.

        Equal to ``self.variance(*fans(shape, layout))`` except for
        :class:`Orthogonal`, whose variance depends on how the shape is
        flattened into a matrix.

        Parameters
        ----------
        shape : sequence of int
            The weight shape.
        layout : {"torch", "keras"}
            The layout of ``shape``.

        Returns
        -------
        float
            ``Var(W_ij)``.
        """
        layout = _check_layout(layout)
        if not self._needs_fans:
            _check_shape(shape)
            return self.variance(1, 1)
        return self.variance(*fans(shape, layout))

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
    def sample(
        self, shape: Sequence[int], seed: SeedLike = None, layout: str = "torch"
    ) -> np.ndarray:
        """Draw a weight tensor.

        Parameters
        ----------
        shape : sequence of int
            The weight shape: ``(out, in, *kernel)`` for ``layout="torch"``,
            ``(*kernel, in, out)`` for ``layout="keras"``. Schemes whose law
            does not depend on the fans (zeros, ones, constant, normal,
            uniform, truncated_normal) also accept 1-D shapes.
        seed : int, SeedSequence, Generator or None
            Passed through :func:`initsim.seeding.as_generator`; the same
            seed gives the same tensor.
        layout : {"torch", "keras"}
            How ``shape`` is read (see :func:`fans`).

        Returns
        -------
        numpy.ndarray
            A float64 array of shape ``shape``.

        Raises
        ------
        ValueError
            If the shape, layout or seed is invalid for this scheme.
        """
        layout = _check_layout(layout)
        dims = _check_shape(shape, min_dims=2 if self._needs_fans else 1)
        rng = as_generator(seed)
        return self._sample(dims, layout, rng)

    def _sample(self, shape: tuple[int, ...], layout: str, rng: np.random.Generator) -> np.ndarray:
        """Draw iid entries from :meth:`law_spec` (overridden by matrix laws)."""
        fi, fo = fans(shape, layout) if self._needs_fans else (1, 1)
        spec = self.law_spec(fi, fo)
        size = math.prod(shape)
        if spec.law == "gaussian":
            flat = spec.loc + spec.scale * rng.standard_normal(size)
        elif spec.law == "uniform":
            flat = rng.uniform(spec.low, spec.high, size)
        elif spec.law == "truncated_gaussian":
            flat = _sample_truncnorm(rng, spec.loc, spec.scale, spec.low, spec.high, size)
        elif spec.law == "constant":
            flat = np.full(size, spec.value, dtype=np.float64)
        else:  # pragma: no cover - matrix laws override _sample
            raise NotImplementedError(spec.law)
        return np.asarray(flat, dtype=np.float64).reshape(shape)


# --------------------------------------------------------------------------- constants


class _ConstantLaw(Initializer):
    """Shared behaviour of zeros, ones and constant."""

    _law = "constant"
    _needs_fans = False

    @property
    def _value(self) -> float:
        return float(self._params.get("value", 0.0))

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
            The value every entry takes.
        """
        _check_fans(fan_in, fan_out)
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


class Constant(_ConstantLaw):
    """All entries equal ``value`` (PyTorch ``constant_``, Keras/JAX ``constant``).

    Parameters
    ----------
    value : float
        The finite value of every entry (required, as in PyTorch).

    Notes
    -----
    Deterministic: ``Var(W_ij) = 0`` and ``E[W_ij] = value``.
    """

    name = "constant"

    def __init__(self, value: float) -> None:
        self._set_params(value=_real("value", value))


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
    Exactly ``Var(W_ij) = std^2`` and ``E[W_ij] = mean``, independent of the fans.
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


class VarianceScaling(_VarianceScalingLaw):
    """Keras/JAX ``VarianceScaling``: variance ``scale / fan``.

    Parameters
    ----------
    scale : float
        Finite, > 0.
    mode : {"fan_in", "fan_out", "fan_avg"}
        ``fan`` is ``fan_in``, ``fan_out`` or ``(fan_in + fan_out) / 2``.
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
    ``E[W_ij] = 0``.
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
    bias from the same interval; this class covers the weight only.
    """

    name = "torch_linear_default"
    _law = "uniform"

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


# --------------------------------------------------------------------------- matrix laws


def _matrix_dims(shape: tuple[int, ...], layout: str) -> tuple[int, int]:
    """Return how orthogonal flattens ``shape``: ``(rows, cols)``."""
    if layout == "torch":
        return shape[0], math.prod(shape[1:])
    return math.prod(shape[:-1]), shape[-1]


class Orthogonal(Initializer):
    """Haar-random (semi-)orthogonal matrix times ``gain`` (PyTorch ``orthogonal_``).

    The tensor is flattened to a ``rows x cols`` matrix: ``rows = shape[0]``,
    ``cols = prod(shape[1:])`` in torch layout (PyTorch), ``rows =
    prod(shape[:-1])``, ``cols = shape[-1]`` in keras layout (Keras/JAX
    ``orthogonal``). A Gaussian matrix of the taller orientation is
    QR-factorised, Q's columns are multiplied by ``sign(diag(R))`` (which
    makes Q Haar-distributed), and the result is transposed back if needed:
    ``W W^T = gain^2 I`` when ``rows <= cols``, ``W^T W = gain^2 I`` otherwise.

    Parameters
    ----------
    gain : float
        Finite and nonzero. A negative gain is allowed (``-Q`` is Haar too, and
        PyTorch accepts it); zero is rejected (use :class:`Zeros`).

    Notes
    -----
    Exactly ``Var(W_ij) = gain^2 / max(rows, cols)`` and ``E[W_ij] = 0``.
    :meth:`variance` treats the matrix as ``fan_out x fan_in`` and returns
    ``gain^2 / max(fan_in, fan_out)``, exact for 2-D weights. For conv
    weights the flattening differs from the fans (torch ``(out, in, k)``
    flattens to ``out x (in k)``, while ``fan_in = in k``, ``fan_out = out k``):
    use :meth:`variance_for_shape` for the variance of a conv sample.
    """

    name = "orthogonal"
    _law = "orthogonal"

    def __init__(self, gain: float = 1.0) -> None:
        self._set_params(gain=_real("gain", gain, nonzero=True))

    @property
    def variance_law(self) -> str:
        """``gain^2 / max(fan_in, fan_out)`` with gain substituted."""
        return f"{_num(self._params['gain'] ** 2)} / max(fan_in, fan_out)"

    def variance(self, fan_in: int, fan_out: int) -> float:
        """Return ``gain^2 / max(fan_in, fan_out)`` (matrix ``fan_out x fan_in``).

        Parameters
        ----------
        fan_in, fan_out : int
            Positive fans.

        Returns
        -------
        float
            ``Var(W_ij)`` of a 2-D orthogonal weight.
        """
        fi, fo = _check_fans(fan_in, fan_out)
        return self._params["gain"] ** 2 / max(fi, fo)

    def variance_for_shape(self, shape: Sequence[int], layout: str = "torch") -> float:
        """Return ``gain^2 / max(rows, cols)`` for the flattened ``shape``.

        Parameters
        ----------
        shape : sequence of int
            The weight shape, at least 2-D.
        layout : {"torch", "keras"}
            How ``shape`` is flattened (see the class docstring).

        Returns
        -------
        float
            ``Var(W_ij)`` of ``self.sample(shape, layout=layout)``.
        """
        layout = _check_layout(layout)
        rows, cols = _matrix_dims(_check_shape(shape, min_dims=2), layout)
        return self._params["gain"] ** 2 / max(rows, cols)

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

    def _sample(self, shape: tuple[int, ...], layout: str, rng: np.random.Generator) -> np.ndarray:
        rows, cols = _matrix_dims(shape, layout)
        tall = rng.standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(tall)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return np.ascontiguousarray(self._params["gain"] * q, dtype=np.float64).reshape(shape)


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

    def __init__(self, gain: float = 1.0) -> None:
        self._set_params(gain=_real("gain", gain, nonzero=True))

    def _sample(self, shape: tuple[int, ...], layout: str, rng: np.random.Generator) -> np.ndarray:
        if len(shape) != 2:
            raise ValueError(f"identity needs a 2-D shape; got shape={shape!r}")
        out = np.zeros(shape, dtype=np.float64)
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

    def __init__(self, groups: int = 1, gain: float = 1.0) -> None:
        self._set_params(
            groups=_positive_int("groups", groups), gain=_real("gain", gain, nonzero=True)
        )

    def _sample(self, shape: tuple[int, ...], layout: str, rng: np.random.Generator) -> np.ndarray:
        if len(shape) not in (3, 4, 5):
            raise ValueError(f"dirac needs a 3-, 4- or 5-D shape; got shape={shape!r}")
        if layout == "torch":
            n_out, n_in, kernel = shape[0], shape[1], shape[2:]
        else:
            n_out, n_in, kernel = shape[-1], shape[-2], shape[:-2]
        groups = self._params["groups"]
        if n_out % groups:
            raise ValueError(f"groups={groups} must divide the number of output channels ({n_out})")
        per_group = n_out // groups
        centre = tuple(k // 2 for k in kernel)
        out = np.zeros(shape, dtype=np.float64)
        for g in range(groups):
            for d in range(min(per_group, n_in)):
                if layout == "torch":
                    out[(g * per_group + d, d, *centre)] = self._params["gain"]
                else:
                    out[(*centre, d, g * per_group + d)] = self._params["gain"]
        return out


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

    def _sample(self, shape: tuple[int, ...], layout: str, rng: np.random.Generator) -> np.ndarray:
        if len(shape) != 2:
            raise ValueError(f"sparse needs a 2-D shape; got shape={shape!r}")
        rows, cols = shape if layout == "torch" else shape[::-1]
        w = self._params["std"] * rng.standard_normal((rows, cols))
        n_zeros = _sparse_zeros(self._params["sparsity"], rows)
        if n_zeros:
            # argsort of iid uniforms: a uniformly random permutation per column.
            order = np.argsort(rng.random((rows, cols)), axis=0)
            np.put_along_axis(w, order[:n_zeros], 0.0, axis=0)
        return w if layout == "torch" else np.ascontiguousarray(w.T)


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
    Sparse,
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
        case-insensitive; Keras class names (``"HeNormal"``) and PyTorch
        function names (``"kaiming_normal_"``) also work. An
        :class:`Initializer` is returned unchanged.
    **params
        The scheme's parameters, e.g. ``get("he_normal", mode="fan_out")``.

    Returns
    -------
    Initializer
        The immutable initializer.

    Raises
    ------
    ValueError
        If the name is unknown (the message lists the valid names), a
        parameter is unknown or missing (the message names it and lists the
        valid ones), or a parameter value is invalid.
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
            raise ValueError(
                f"unknown parameter {key!r} for {cls.name}; valid parameters: {listed}"
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
        init = get(key, **_EXAMPLE_PARAMS.get(key, {}))
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
