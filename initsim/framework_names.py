"""Framework-exact initializer names: PyTorch's, Keras' and JAX's, declared once.

A framework name is ``"<framework>.<name>"`` with the framework's own
spelling: ``"torch.kaiming_normal_"``, ``"keras.HeNormal"`` (or its snake-case
and compatibility aliases, ``"keras.he_normal"``, ``"keras.OrthogonalInitializer"``),
``"jax.he_normal"``. The full module paths work too
(``"torch.nn.init.kaiming_normal_"``, ``"keras.initializers.HeNormal"``,
``"tf.keras.initializers.HeNormal"``, ``"jax.nn.initializers.he_normal"``).
:func:`initsim.initializers.get` looks them up here, with the framework's
parameter names and defaults, and returns the initsim scheme that draws the
framework's law, carrying the framework's fan computation (its
:class:`~initsim.initializers.FanRule`: PyTorch ``(out, in, *kernel)``,
Keras ``(*kernel, in, out)`` with its rule for 0-d and 1-d shapes and its
``input_axes`` / ``output_axes``, JAX's ``in_axis`` / ``out_axis`` /
``batch_axis``) and its name. Without a prefix, a Keras class name
(``"HeNormal"``) means the Keras scheme and a PyTorch function name with its
trailing underscore (``"constant_"``) the PyTorch one.

Parameters that only pick a random stream (PyTorch ``generator``, Keras
``seed``) are accepted and ignored, with a warning when they are not None:
initsim draws from ``sample(shape, seed=...)``. Dtypes are given to
:meth:`~initsim.initializers.Initializer.sample`, not to the name.

:func:`catalogue` lists every name with its law, variance and fans;
:func:`differences` the names that mean different laws in different
frameworks; :func:`markdown_tables` renders both for the README.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from initsim import initializers as _I
from initsim.initializers import FanRule, Initializer

__all__ = [
    "FRAMEWORKS",
    "SEPARATOR",
    "FrameworkName",
    "Param",
    "catalogue",
    "differences",
    "lookup",
    "markdown_tables",
    "names",
    "parameter_hint",
    "resolve",
]

#: The frameworks, in the order tables list them.
FRAMEWORKS: tuple[str, ...] = ("torch", "keras", "jax")
#: Between the framework and its name: ``"keras" + SEPARATOR + "HeNormal"``.
SEPARATOR = "."

_TITLES: Mapping[str, str] = MappingProxyType({"torch": "PyTorch", "keras": "Keras", "jax": "JAX"})
_MODULE_PATHS: tuple[tuple[str, str], ...] = (
    ("torch.nn.init.", "torch."),
    ("tf.keras.initializers.", "keras."),
    ("keras.initializers.", "keras."),
    ("jax.nn.initializers.", "jax."),
)


class _Required:
    def __repr__(self) -> str:
        return "<required>"


#: The default of a parameter the framework requires.
REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Param:
    """One parameter of a framework initializer, as the framework spells it.

    Parameters
    ----------
    name : str
        The framework's name for it.
    default : object
        The framework's default, or :data:`REQUIRED`.
    """

    name: str
    default: Any = REQUIRED


@dataclass(frozen=True)
class FrameworkName:
    """One initializer of one framework: its spelling, parameters, law and fans.

    Parameters
    ----------
    framework : str
        One of :data:`FRAMEWORKS`.
    name : str
        The framework's spelling, e.g. ``"kaiming_normal_"``, ``"HeNormal"``.
    aliases : tuple of str
        The framework's other spellings of the same initializer.
    params : tuple of Param
        The framework's parameters, in its order, with its defaults.
    build : callable
        Called with every parameter (defaults filled in); returns the initsim
        scheme, labelled with this name and the framework's fan rule.
    promise : str
        The law the framework documents, in a few words.
    concept : str
        The same-named idea across frameworks (``"he_normal"``), for
        :func:`differences`.
    ignored : tuple of str
        Parameters accepted and ignored (random-stream arguments).
    example : mapping
        Values of required parameters for :func:`catalogue`.
    """

    framework: str
    name: str
    aliases: tuple[str, ...]
    params: tuple[Param, ...]
    build: Callable[..., Initializer]
    promise: str
    concept: str
    ignored: tuple[str, ...] = ()
    example: Mapping[str, Any] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        """``framework + SEPARATOR + name``."""
        return f"{self.framework}{SEPARATOR}{self.name}"

    def signature(self) -> str:
        """Return the call as the framework documents it, e.g. ``"HeNormal(seed=None)"``."""
        args = []
        for p in self.params:
            args.append(p.name if p.default is REQUIRED else f"{p.name}={p.default!r}")
        return f"{self.name}({', '.join(args)})"

    def resolve(self, params: Mapping[str, Any]) -> Initializer:
        """Return the initsim scheme for these framework parameters.

        Parameters
        ----------
        params : mapping
            Parameters by the framework's names; missing ones take the
            framework's defaults.

        Returns
        -------
        Initializer
            The scheme, with this name and the framework's fan rule.

        Raises
        ------
        ValueError
            For an unknown or missing parameter (the message names the
            framework's spelling of a misspelt one) or an invalid value.
        """
        valid = [p.name for p in self.params]
        for key in params:
            if key not in valid:
                raise ValueError(
                    f"unknown parameter {key!r} for {self.full_name}"
                    f"{parameter_hint(key, valid, _TITLES[self.framework])}; valid "
                    f"parameters: {', '.join(valid) or 'none'}"
                )
        filled = {}
        for p in self.params:
            if p.name in params:
                filled[p.name] = params[p.name]
            elif p.default is REQUIRED:
                raise ValueError(f"{self.full_name} requires the parameter {p.name!r}")
            else:
                filled[p.name] = p.default
        for key in self.ignored:
            if filled.get(key) is not None:
                warnings.warn(
                    f"{self.full_name}: {key}={filled[key]!r} is ignored; initsim draws "
                    "from its own seed, sample(shape, seed=...)",
                    UserWarning,
                    stacklevel=4,
                )
            filled.pop(key, None)
        init, rule = self.build(**filled)
        return init._relabelled(rule, self.full_name)


# --------------------------------------------------------------------------- spelling hints

# Names the frameworks give the same idea; an unknown parameter that shares a
# group with a valid one gets the valid spelling in the error.
_SPELLINGS: tuple[frozenset[str], ...] = (
    frozenset({"std", "stddev"}),
    frozenset({"a", "minval", "lower"}),
    frozenset({"b", "maxval", "upper"}),
    frozenset({"gain", "scale"}),
    frozenset({"val", "value"}),
    frozenset({"in_axis", "input_axes"}),
    frozenset({"out_axis", "output_axes", "column_axis"}),
    frozenset({"generator", "seed", "key", "rng"}),
)


def parameter_hint(key: str, valid: Sequence[str], who: str = "initsim") -> str:
    """Return ``" (Keras spells it 'stddev')"`` when ``key`` is another spelling of a valid name.

    Parameters
    ----------
    key : str
        The unknown parameter.
    valid : sequence of str
        The parameters the initializer accepts.
    who : str
        Whose spelling the valid ones are, for the message.

    Returns
    -------
    str
        The hint, or ``""`` when there is none.
    """
    if key == "dtype":
        return "; give the dtype to sample(shape, seed, dtype=...)"
    for group in _SPELLINGS:
        if key in group:
            match = [v for v in valid if v in group and v != key]
            if match:
                return f" ({who} spells it {match[0]!r})"
            if group >= {"seed", "generator"}:
                return "; the random stream is sample(shape, seed=...)'s"
    return ""


# --------------------------------------------------------------------------- fan rules

_TORCH = _I.TORCH_FAN_RULE
_KERAS = FanRule("keras", low_rank="keras")
_KERAS_DISTRIBUTIONS: Mapping[str, str] = MappingProxyType(
    {
        "truncated_normal": "truncated_normal",
        "normal": "truncated_normal",
        "untruncated_normal": "normal",
        "uniform": "uniform",
    }
)
_JAX_DISTRIBUTIONS: tuple[str, ...] = ("truncated_normal", "normal", "uniform")


def _keras_rule(who: str, input_axes: Any, output_axes: Any) -> FanRule:
    """Keras' fans: its default rule, or products over both given axis lists."""
    if input_axes is None and output_axes is None:
        return _KERAS
    if input_axes is None or output_axes is None:
        raise ValueError(
            f"{who}: Keras reads input_axes only together with output_axes (with one of "
            f"them it silently uses its default fans); give both; got "
            f"input_axes={input_axes!r}, output_axes={output_axes!r}"
        )

    def as_tuple(name: str, axes: Any) -> tuple[int, ...]:
        checked = _I._check_axes(name, axes, allow_none=False)
        return (checked,) if isinstance(checked, int) else checked

    return FanRule(
        "keras",
        in_axis=as_tuple("input_axes", input_axes),
        out_axis=as_tuple("output_axes", output_axes),
        receptive_field=False,
        low_rank="keras",
    )


def _jax_rule(in_axis: Any, out_axis: Any, batch_axis: Any) -> FanRule:
    """JAX's ``_compute_fans``: keras layout, any axes, shapes of rank >= 2."""
    rule = FanRule("keras", in_axis=in_axis, out_axis=out_axis, batch_axis=batch_axis)
    if rule.in_axis == -2 and rule.out_axis == -1 and rule.batch_axis == ():
        return FanRule("keras")
    return rule


def _keras_choice(who: str, name: str, value: Any, valid: Sequence[str]) -> str:
    if isinstance(value, str) and value.lower() in valid:
        return value.lower()
    raise ValueError(f"{name} of {who} must be one of {', '.join(map(repr, valid))}; got {value!r}")


def _torch_scalar(who: str, val: Any) -> float:
    return _I._real(f"val of {who}", val)


def _column_rule(column_axis: Any) -> FanRule:
    axis = _I._check_axes("column_axis", column_axis, allow_none=False)
    if not isinstance(axis, int):
        raise ValueError(f"column_axis must be one int; got {column_axis!r}")
    return FanRule("keras") if axis == -1 else FanRule("keras", out_axis=axis)


def _delta_column(column_axis: Any) -> FanRule:
    axis = _I._check_axes("column_axis", column_axis, allow_none=False)
    if axis not in (-2, -1, 0, 1):
        raise ValueError(
            "column_axis of jax.delta_orthogonal indexes the (in, out) centre matrix: it must "
            f"be -2, -1, 0 or 1; got {column_axis!r}"
        )
    # Either orientation draws the same Haar in x out matrix: the law does not change.
    return FanRule("keras")


# --------------------------------------------------------------------------- the table

_G = "generator"
_S = "seed"
_AXES_K = (Param(_S, None), Param("input_axes", None), Param("output_axes", None))
_AXES_J = (Param("in_axis", -2), Param("out_axis", -1), Param("batch_axis", ()))


def _named_keras(
    who: str, make: Callable[[], Initializer]
) -> Callable[..., tuple[Initializer, FanRule]]:
    def build(input_axes: Any = None, output_axes: Any = None) -> tuple[Initializer, FanRule]:
        return make(), _keras_rule(f"keras.{who}", input_axes, output_axes)

    return build


def _named_jax(make: Callable[[], Initializer]) -> Callable[..., tuple[Initializer, FanRule]]:
    def build(in_axis: Any = -2, out_axis: Any = -1, batch_axis: Any = ()) -> Any:
        return make(), _jax_rule(in_axis, out_axis, batch_axis)

    return build


def _keras_vs(
    scale: float = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
    input_axes: Any = None,
    output_axes: Any = None,
) -> tuple[Initializer, FanRule]:
    who = "keras.VarianceScaling"
    mode = _keras_choice(who, "mode", mode, ("fan_in", "fan_out", "fan_avg"))
    dist = _keras_choice(who, "distribution", distribution, tuple(_KERAS_DISTRIBUTIONS))
    init = _I.VarianceScaling(scale=scale, mode=mode, distribution=_KERAS_DISTRIBUTIONS[dist])
    return init, _keras_rule(who, input_axes, output_axes)


def _jax_vs(
    scale: float, mode: str, distribution: str, in_axis: Any, out_axis: Any, batch_axis: Any
) -> tuple[Initializer, FanRule]:
    who = "jax.variance_scaling"
    mode = _keras_choice(who, "mode", mode, ("fan_in", "fan_out", "fan_avg", "fan_geo_avg"))
    dist = _keras_choice(who, "distribution", distribution, _JAX_DISTRIBUTIONS)
    init = _I.VarianceScaling(scale=scale, mode=mode, distribution=dist)
    return init, _jax_rule(in_axis, out_axis, batch_axis)


def _truncated_relative(mean: float, std: float, lower: float, upper: float) -> Initializer:
    mean = _I._real("mean", mean)
    std = _I._real("stddev", std, positive=True)
    return _I.TruncatedNormal(mean=mean, std=std, a=mean + lower * std, b=mean + upper * std)


def _torch(
    name: str,
    params: tuple[Param, ...],
    build: Callable[..., Initializer],
    promise: str,
    concept: str,
    aliases: tuple[str, ...] = (),
    example: Mapping[str, Any] | None = None,
) -> FrameworkName:
    def labelled(**kw: Any) -> tuple[Initializer, FanRule]:
        return build(**kw), _TORCH

    ignored = (_G,) if any(p.name == _G for p in params) else ()
    return FrameworkName(
        "torch", name, aliases, params, labelled, promise, concept, ignored, example or {}
    )


def _keras(
    name: str,
    params: tuple[Param, ...],
    build: Callable[..., tuple[Initializer, FanRule]],
    promise: str,
    concept: str,
    aliases: tuple[str, ...] = (),
) -> FrameworkName:
    ignored = (_S,) if any(p.name == _S for p in params) else ()
    return FrameworkName("keras", name, aliases, params, build, promise, concept, ignored)


def _jax(
    name: str,
    params: tuple[Param, ...],
    build: Callable[..., tuple[Initializer, FanRule]],
    promise: str,
    concept: str,
    aliases: tuple[str, ...] = (),
    example: Mapping[str, Any] | None = None,
) -> FrameworkName:
    return FrameworkName("jax", name, aliases, params, build, promise, concept, (), example or {})


def _plain(make: Callable[..., Initializer], rule: FanRule) -> Callable[..., Any]:
    def build(**kw: Any) -> tuple[Initializer, FanRule]:
        return make(**kw), rule

    return build


_HE = ("a", 0), ("mode", "fan_in"), ("nonlinearity", "leaky_relu")
_TRUNC = "truncated_normal"

_ENTRIES: tuple[FrameworkName, ...] = (
    # ---------------------------------------------------------------- PyTorch torch.nn.init
    _torch(
        "uniform_",
        (Param("a", 0.0), Param("b", 1.0), Param(_G, None)),
        lambda a, b: _I.Uniform(a, b),
        "U(a, b)",
        "uniform",
        ("uniform",),
    ),
    _torch(
        "normal_",
        (Param("mean", 0.0), Param("std", 1.0), Param(_G, None)),
        lambda mean, std: _I.Normal(mean, std),
        "N(mean, std^2)",
        "normal",
        ("normal",),
    ),
    _torch(
        "trunc_normal_",
        (Param("mean", 0.0), Param("std", 1.0), Param("a", -2.0), Param("b", 2.0), Param(_G, None)),
        lambda mean, std, a, b: _I.TruncatedNormal(mean, std, a, b),
        "N(mean, std^2) cut to the absolute interval [a, b], not rescaled",
        "truncated_normal",
    ),
    _torch(
        "constant_",
        (Param("val"),),
        lambda val: _I.Constant(_torch_scalar("torch.constant_", val)),
        "every entry val (a scalar)",
        "constant",
        ("constant",),
        example={"val": 0.0},
    ),
    _torch("ones_", (), _I.Ones, "every entry 1", "ones"),
    _torch("zeros_", (), _I.Zeros, "every entry 0", "zeros"),
    _torch("eye_", (), _I.Identity, "the identity matrix (2-D)", "identity", ("eye",)),
    _torch(
        "dirac_",
        (Param("groups", 1),),
        lambda groups: _I.Dirac(groups=groups),
        "identity through a conv: 1 at the centre tap k // 2",
        "dirac",
        ("dirac",),
    ),
    _torch(
        "xavier_uniform_",
        (Param("gain", 1.0), Param(_G, None)),
        lambda gain: _I.GlorotUniform(gain),
        "U(+-gain sqrt(6 / (fan_in + fan_out)))",
        "glorot_uniform",
        ("xavier_uniform",),
    ),
    _torch(
        "xavier_normal_",
        (Param("gain", 1.0), Param(_G, None)),
        lambda gain: _I.GlorotNormal(gain),
        "N(0, gain^2 2 / (fan_in + fan_out)), plain",
        "glorot_normal",
        ("xavier_normal",),
    ),
    _torch(
        "kaiming_uniform_",
        (*(Param(k, v) for k, v in _HE), Param(_G, None)),
        lambda a, mode, nonlinearity: _I.HeUniform(a, mode, nonlinearity),
        "U(+-gain sqrt(3 / fan)), gain = calculate_gain(nonlinearity, a)",
        "he_uniform",
        ("kaiming_uniform",),
    ),
    _torch(
        "kaiming_normal_",
        (*(Param(k, v) for k, v in _HE), Param(_G, None)),
        lambda a, mode, nonlinearity: _I.HeNormal(a, mode, nonlinearity),
        "N(0, gain^2 / fan), plain",
        "he_normal",
        ("kaiming_normal",),
    ),
    _torch(
        "orthogonal_",
        (Param("gain", 1.0), Param(_G, None)),
        lambda gain: _I.Orthogonal(gain),
        "Haar orthogonal shape[0] x rest, times gain",
        "orthogonal",
        ("orthogonal",),
    ),
    _torch(
        "sparse_",
        (Param("sparsity"), Param("std", 0.01), Param(_G, None)),
        lambda sparsity, std: _I.Sparse(sparsity, std),
        "N(0, std^2), ceil(sparsity rows) zeros per column",
        "sparse",
        ("sparse",),
        example={"sparsity": 0.1},
    ),
    _torch(
        "default_weight",
        (),
        _I.TorchLinearDefault,
        "nn.Linear / nn.ConvNd reset_parameters: kaiming_uniform_(a=sqrt(5)) = U(+-1/sqrt(fan_in))",
        "layer_default_weight",
        ("Linear.weight", "Conv1d.weight", "Conv2d.weight", "Conv3d.weight"),
    ),
    _torch(
        "default_bias",
        (Param("fan_in"),),
        lambda fan_in: _I.TorchBiasDefault(fan_in),
        "nn.Linear / nn.ConvNd reset_parameters: U(+-1/sqrt(fan_in of the weight))",
        "layer_default_bias",
        ("Linear.bias", "Conv1d.bias", "Conv2d.bias", "Conv3d.bias"),
        example={"fan_in": 256},
    ),
    # ---------------------------------------------------------------- Keras 3 keras.initializers
    _keras(
        "Constant",
        (Param("value", 0.0),),
        _plain(lambda value: _I.Constant(value), _KERAS),
        "every entry value (an array broadcasts)",
        "constant",
        ("constant",),
    ),
    _keras("Zeros", (), _plain(_I.Zeros, _KERAS), "every entry 0", "zeros", ("zeros", "zero")),
    _keras("Ones", (), _plain(_I.Ones, _KERAS), "every entry 1", "ones", ("ones", "one")),
    _keras(
        "RandomNormal",
        (Param("mean", 0.0), Param("stddev", 0.05), Param(_S, None)),
        _plain(lambda mean, stddev: _I.Normal(mean, stddev), _KERAS),
        "N(mean, stddev^2)",
        "normal",
        ("random_normal", "normal"),
    ),
    _keras(
        "RandomUniform",
        (Param("minval", -0.05), Param("maxval", 0.05), Param(_S, None)),
        _plain(lambda minval, maxval: _I.Uniform(minval, maxval), _KERAS),
        "U(minval, maxval)",
        "uniform",
        ("random_uniform", "uniform"),
    ),
    _keras(
        "TruncatedNormal",
        (Param("mean", 0.0), Param("stddev", 0.05), Param(_S, None)),
        _plain(lambda mean, stddev: _truncated_relative(mean, stddev, -2.0, 2.0), _KERAS),
        "N(mean, stddev^2) cut at mean +- 2 stddev, not rescaled",
        "truncated_normal",
        ("truncated_normal",),
    ),
    _keras(
        "VarianceScaling",
        (Param("scale", 1.0), Param("mode", "fan_in"), Param("distribution", _TRUNC), *_AXES_K),
        _keras_vs,
        "variance scale / fan; 'normal' means truncated (Keras 3)",
        "variance_scaling",
        ("variance_scaling",),
    ),
    _keras(
        "GlorotUniform",
        _AXES_K,
        _named_keras("GlorotUniform", _I.GlorotUniform),
        "U(+-sqrt(6 / (fan_in + fan_out)))",
        "glorot_uniform",
        ("glorot_uniform",),
    ),
    _keras(
        "GlorotNormal",
        _AXES_K,
        _named_keras("GlorotNormal", lambda: _I.GlorotNormal(distribution=_TRUNC)),
        "truncated normal, variance 2 / (fan_in + fan_out)",
        "glorot_normal",
        ("glorot_normal",),
    ),
    _keras(
        "HeUniform",
        _AXES_K,
        _named_keras("HeUniform", _I.HeUniform),
        "U(+-sqrt(6 / fan_in))",
        "he_uniform",
        ("he_uniform",),
    ),
    _keras(
        "HeNormal",
        _AXES_K,
        _named_keras("HeNormal", lambda: _I.HeNormal(distribution=_TRUNC)),
        "truncated normal, variance 2 / fan_in",
        "he_normal",
        ("he_normal",),
    ),
    _keras(
        "LecunUniform",
        _AXES_K,
        _named_keras("LecunUniform", _I.LecunUniform),
        "U(+-sqrt(3 / fan_in))",
        "lecun_uniform",
        ("lecun_uniform",),
    ),
    _keras(
        "LecunNormal",
        _AXES_K,
        _named_keras("LecunNormal", lambda: _I.LecunNormal(distribution=_TRUNC)),
        "truncated normal, variance 1 / fan_in",
        "lecun_normal",
        ("lecun_normal",),
    ),
    _keras(
        "Orthogonal",
        (Param("gain", 1.0), Param(_S, None)),
        _plain(lambda gain: _I.Orthogonal(gain), _KERAS),
        "Haar orthogonal rest x shape[-1], times gain",
        "orthogonal",
        ("orthogonal", "OrthogonalInitializer"),
    ),
    _keras(
        "Identity",
        (Param("gain", 1.0),),
        _plain(lambda gain: _I.Identity(gain), _KERAS),
        "gain times the identity matrix (2-D)",
        "identity",
        ("identity", "IdentityInitializer"),
    ),
    _keras(
        "STFT",
        (
            Param("side", "real"),
            Param("window", "hann"),
            Param("scaling", "density"),
            Param("periodic", False),
        ),
        _plain(
            lambda side, window, scaling, periodic: _I.STFT(side, window, scaling, periodic), _KERAS
        ),
        "windowed DFT kernels (T, 1, F) for Conv1D",
        "stft",
        ("stft", "STFTInitializer"),
    ),
    # ---------------------------------------------------------------- JAX jax.nn.initializers
    _jax("zeros", (), _plain(_I.Zeros, FanRule("keras")), "every entry 0", "zeros"),
    _jax("ones", (), _plain(_I.Ones, FanRule("keras")), "every entry 1", "ones"),
    _jax(
        "constant",
        (Param("value"),),
        _plain(lambda value: _I.Constant(value), FanRule("keras")),
        "every entry value (an array broadcasts)",
        "constant",
        example={"value": 0.0},
    ),
    _jax(
        "uniform",
        (Param("scale", 1e-2),),
        _plain(
            lambda scale: _I.Uniform(0.0, _I._real("scale", scale, positive=True)), FanRule("keras")
        ),
        "U[0, scale)",
        "uniform",
    ),
    _jax(
        "normal",
        (Param("stddev", 1e-2),),
        _plain(lambda stddev: _I.Normal(0.0, stddev), FanRule("keras")),
        "N(0, stddev^2)",
        "normal",
    ),
    _jax(
        "truncated_normal",
        (Param("stddev", 1e-2), Param("lower", -2.0), Param("upper", 2.0)),
        _plain(
            lambda stddev, lower, upper: _truncated_relative(0.0, stddev, lower, upper),
            FanRule("keras"),
        ),
        "N(0, stddev^2) cut at [lower, upper] stddev, not rescaled",
        "truncated_normal",
    ),
    _jax(
        "variance_scaling",
        (Param("scale"), Param("mode"), Param("distribution"), *_AXES_J),
        _jax_vs,
        "variance scale / fan; 'normal' is plain, 'truncated_normal' truncated",
        "variance_scaling",
        example={"scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal"},
    ),
    _jax(
        "glorot_uniform",
        _AXES_J,
        _named_jax(_I.GlorotUniform),
        "U(+-sqrt(6 / (fan_in + fan_out)))",
        "glorot_uniform",
        ("xavier_uniform",),
    ),
    _jax(
        "glorot_normal",
        _AXES_J,
        _named_jax(lambda: _I.GlorotNormal(distribution=_TRUNC)),
        "truncated normal, variance 2 / (fan_in + fan_out)",
        "glorot_normal",
        ("xavier_normal",),
    ),
    _jax(
        "lecun_uniform",
        _AXES_J,
        _named_jax(_I.LecunUniform),
        "U(+-sqrt(3 / fan_in))",
        "lecun_uniform",
    ),
    _jax(
        "lecun_normal",
        _AXES_J,
        _named_jax(lambda: _I.LecunNormal(distribution=_TRUNC)),
        "truncated normal, variance 1 / fan_in",
        "lecun_normal",
    ),
    _jax(
        "he_uniform",
        _AXES_J,
        _named_jax(_I.HeUniform),
        "U(+-sqrt(6 / fan_in))",
        "he_uniform",
        ("kaiming_uniform",),
    ),
    _jax(
        "he_normal",
        _AXES_J,
        _named_jax(lambda: _I.HeNormal(distribution=_TRUNC)),
        "truncated normal, variance 2 / fan_in",
        "he_normal",
        ("kaiming_normal",),
    ),
    _jax(
        "orthogonal",
        (Param("scale", 1.0), Param("column_axis", -1)),
        lambda scale, column_axis: (_I.Orthogonal(scale), _column_rule(column_axis)),
        "Haar orthogonal rest x shape[column_axis], times scale",
        "orthogonal",
    ),
    _jax(
        "delta_orthogonal",
        (Param("scale", 1.0), Param("column_axis", -1)),
        lambda scale, column_axis: (_I.DeltaOrthogonal(scale), _delta_column(column_axis)),
        "Haar orthogonal (in, out) at the centre tap (k - 1) // 2, zeros elsewhere",
        "delta_orthogonal",
    ),
)


def _index() -> dict[str, dict[str, FrameworkName]]:
    table: dict[str, dict[str, FrameworkName]] = {f: {} for f in FRAMEWORKS}
    for entry in _ENTRIES:
        for spelling in (entry.name, *entry.aliases):
            if spelling in table[entry.framework]:  # pragma: no cover - a table typo
                raise RuntimeError(f"{entry.framework}.{spelling} is declared twice")
            table[entry.framework][spelling] = entry
    return table


_BY_NAME: dict[str, dict[str, FrameworkName]] = _index()


def names(framework: str | None = None) -> list[str]:
    """Return the framework names (``"keras.HeNormal"``), aliases excluded.

    Parameters
    ----------
    framework : {"torch", "keras", "jax"} or None
        Only this framework's; None: all, in :data:`FRAMEWORKS` order.

    Returns
    -------
    list of str
        The full names.
    """
    fws = FRAMEWORKS if framework is None else (_check_framework(framework, framework),)
    return [e.full_name for e in _ENTRIES if e.framework in fws]


def _check_framework(framework: str, name: str) -> str:
    if framework not in FRAMEWORKS:
        raise ValueError(
            f"unknown framework {framework!r} in {name!r}; valid frameworks: "
            f"{', '.join(FRAMEWORKS)} (e.g. 'torch.kaiming_normal_', 'keras.HeNormal', "
            "'jax.he_normal')"
        )
    return framework


def lookup(name: str) -> FrameworkName:
    """Return the table entry of a framework name.

    Parameters
    ----------
    name : str
        ``"<framework>.<name>"`` (or a full module path such as
        ``"torch.nn.init.kaiming_normal_"``); the name is case-sensitive, as
        the frameworks' own are.

    Returns
    -------
    FrameworkName
        The entry.

    Raises
    ------
    ValueError
        For an unknown framework or name; the message lists the framework's
        names and the closest match.
    """
    text = name.strip()
    for path, short in _MODULE_PATHS:
        if text.startswith(path):
            text = short + text[len(path) :]
            break
    framework, sep, rest = text.partition(SEPARATOR)
    if not sep:
        raise ValueError(f"a framework name looks like 'keras.HeNormal'; got {name!r}")
    _check_framework(framework, name)
    entry = _BY_NAME[framework].get(rest)
    if entry is None:
        spellings = sorted(_BY_NAME[framework])
        close = difflib.get_close_matches(rest, spellings, n=1)
        hint = f" (did you mean {framework}.{close[0]}?)" if close else ""
        raise ValueError(
            f"unknown {_TITLES[framework]} initializer {rest!r} in {name!r}{hint}; "
            f"{framework} names: {', '.join(e.name for e in _ENTRIES if e.framework == framework)}"
        )
    return entry


def resolve(name: str, params: Mapping[str, Any]) -> Initializer:
    """Return the initsim scheme of a framework name with the framework's parameters.

    Parameters
    ----------
    name : str
        A framework name (see :func:`lookup`).
    params : mapping
        Parameters by the framework's names.

    Returns
    -------
    Initializer
        The scheme, labelled with the name and the framework's fan rule.
    """
    return lookup(name).resolve(params)


def unprefixed(name: str) -> str | None:
    """Return the framework name an unprefixed spelling means, if it is one.

    A Keras class name (``"HeNormal"``, ``"OrthogonalInitializer"``) means the
    Keras scheme; a PyTorch function name with its trailing underscore
    (``"kaiming_normal_"``) the PyTorch one.

    Parameters
    ----------
    name : str
        What the user wrote.

    Returns
    -------
    str or None
        The full framework name, or None.
    """
    text = name.strip()
    entry = _BY_NAME["keras"].get(text)
    if entry is not None and text[:1].isupper():
        return f"keras{SEPARATOR}{text}"
    if text.endswith("_") and text in _BY_NAME["torch"]:
        return f"torch{SEPARATOR}{text}"
    return None


# --------------------------------------------------------------------------- tables


def _default(entry: FrameworkName, extra: Mapping[str, Any] | None = None) -> Initializer:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return entry.resolve({**entry.example, **(extra or {})})


# Parameter values beyond the defaults on which frameworks' laws are compared:
# Keras reads distribution="normal" as truncated, JAX as plain.
_PROBE_PARAMS: Mapping[str, tuple[Mapping[str, Any], ...]] = MappingProxyType(
    {"variance_scaling": ({"distribution": "normal"},)}
)


# A 3x3 convolution with 4 input and 8 output channels, and an 8 x 4 dense
# layer, each in the framework's own layout: the shapes the laws are compared on.
_PROBES: Mapping[str, tuple[tuple[int, ...], tuple[int, ...]]] = MappingProxyType(
    {"torch": ((8, 4, 3, 3), (8, 4)), "keras": ((3, 3, 4, 8), (4, 8))}
)


def _law_key(init: Initializer) -> tuple[Any, ...]:
    """Return what two frameworks share when they mean one law: law, mean, probe variances."""
    key: list[Any] = [init.law]
    for shape in _PROBES[init.fan_rule.layout]:
        try:
            fi, fo = init.fans(shape) if init._needs_fans else (1, 1)
            key.append((round(init.variance(fi, fo), 14), round(init.mean(fi, fo), 14)))
        except ValueError:
            key.append(None)
    return tuple(key)


def catalogue() -> list[dict[str, Any]]:
    """Return one row per framework name: its signature, initsim scheme, law, variance and fans.

    Returns
    -------
    list of dict
        In table order; keys ``name`` (full), ``framework``, ``aliases``,
        ``signature`` (the framework's call with its defaults), ``promise``
        (the framework's documented law), ``initsim`` (the scheme's repr at
        the defaults; required parameters take the catalogue's example
        values), ``law``, ``variance_law`` and ``fans`` (the fan rule in words).
    """
    rows = []
    for entry in _ENTRIES:
        init = _default(entry)
        rows.append(
            {
                "name": entry.full_name,
                "framework": entry.framework,
                "aliases": list(entry.aliases),
                "signature": entry.signature(),
                "promise": entry.promise,
                "initsim": repr(init._relabelled(_I.TORCH_FAN_RULE, None)),
                "law": init.law,
                "variance_law": init.variance_law,
                "fans": init.fan_rule.describe(),
                "concept": entry.concept,
            }
        )
    return rows


def differences() -> list[dict[str, Any]]:
    """Return the names that mean different laws in different frameworks.

    Two frameworks' initializers of one idea (``he_normal``: PyTorch's
    ``kaiming_normal_``, Keras' ``HeNormal``, JAX's ``he_normal``) differ when
    their law, or the mean or variance of an entry of the same 3x3
    convolution or dense layer (each in its framework's layout), differ at
    the frameworks' defaults.

    Returns
    -------
    list of dict
        Keys ``concept``, ``with`` (parameters given beyond the defaults,
        e.g. ``{"distribution": "normal"}``) and ``names``: ``[{"name",
        "signature", "promise", "law", "variance_law"}, ...]``, one per
        framework having the idea.
    """
    groups: dict[str, list[FrameworkName]] = {}
    for entry in _ENTRIES:
        groups.setdefault(entry.concept, []).append(entry)
    out = []
    for concept, entries in groups.items():
        if len({e.framework for e in entries}) < 2:
            continue
        for extra in ({}, *_PROBE_PARAMS.get(concept, ())):
            inits = [_default(e, extra) for e in entries]
            if len({_law_key(i) for i in inits}) < 2:
                continue
            out.append(
                {
                    "concept": concept,
                    "with": dict(extra),
                    "names": [
                        {
                            "name": e.full_name,
                            "signature": e.signature(),
                            "promise": e.promise,
                            "law": i.law,
                            "variance_law": i.variance_law,
                        }
                        for e, i in zip(entries, inits, strict=True)
                    ],
                }
            )
    return out


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_tables() -> str:
    """Return the README's framework-name table and its differences section, in Markdown.

    Returns
    -------
    str
        Generated from :func:`catalogue` and :func:`differences`; the README
        holds exactly this text (a test checks it).
    """
    lines = [
        "| framework name and defaults (aliases) | initsim scheme | law | Var(W_ij) | fans |",
        "|---|---|---|---|---|",
    ]
    for row in catalogue():
        aliases = f" ({', '.join(row['aliases'])})" if row["aliases"] else ""
        lines.append(
            f"| `{row['framework']}.{row['signature']}`{_md(aliases)} | "
            f"`{_md(row['initsim'])}` | {row['law']} | {_md(row['variance_law'])} | "
            f"{_md(row['fans'])} |"
        )
    lines += ["", "Differences between frameworks (the same name, different laws):", ""]
    for diff in differences():
        parts = "; ".join(f"`{n['name']}` {n['law']}, {_md(n['promise'])}" for n in diff["names"])
        given = ", ".join(f"{k}={v!r}" for k, v in diff["with"].items())
        lines.append(f"* **{diff['concept']}**{f' ({given})' if given else ''}: {parts}.")
    return "\n".join(lines) + "\n"
