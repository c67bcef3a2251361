"""Framework names against the laws PyTorch, Keras and JAX document.

Every name of :func:`initsim.framework_names.names` is checked against its
framework's documented law, written out again here from the frameworks'
documentation (``torch.nn.init``, ``keras.initializers``,
``jax.nn.initializers``) and not from initsim's formulas:

* the fans (each framework's rule, recomputed), the exact ``variance()`` and
  ``mean()`` and the :class:`~initsim.initializers.LawSpec` equal the
  documented values to 1e-12 relative (truncated moments by 30-digit
  ``mpmath`` quadrature);
* ``N = 10**6`` draws agree with the exact mean and variance (z-tests) and
  with the documented distribution (Kolmogorov-Smirnov against ``scipy.stats``
  ``norm`` / ``uniform`` and the truncated normal);
* deterministic laws (zeros, ones, constant, eye, identity, dirac, stft) give
  exactly the documented tensors; orthogonal and delta-orthogonal tensors
  have the documented ``W W^T = gain^2 I`` (or ``W^T W``) structure, centre
  tap and mean square, and Haar-distributed entries (KS);
* complex dtypes: real and imaginary parts each carry half the variance and
  are uncorrelated, ``E|W - EW|^2 = var``, with KS tests of the marginal,
  radial and angular laws, and the complex truncation constant against a
  30-digit integration;
* every dtype comes back as asked, and bounded laws stay inside their bounds
  in float16 and float32.

Error rates
-----------
Each z-test rejects at ``|z| > Z_CRIT = 5.327``, a two-sided level of
``ALPHA_Z = 1e-7``; each KS test rejects at ``p < ALPHA_KS = 1e-6``. The
standard error of a sample variance comes from the documented fourth central
moment (real iid laws) or, for the complex and matrix statistics, from the
sample's own fourth moment (with ``N = 10**6`` its relative error is about
1e-3, which moves the level negligibly). Some 200 KS tests and 400 z-tests
run by default, so a correct implementation fails one of them for a random
choice of seeds with probability below 3e-4 (Bonferroni); the seeds are fixed
(``zlib.crc32`` of the case id), so runs are reproducible. Every kind of test has a negative control
(a plain normal where a truncated one is documented, a variance 5 % off, a
mean 0.01 standard deviations off, correlated or unbalanced complex parts,
JAX's complex truncation constant, QR without the sign fix) that the same
test, at the same size and level, must reject.
"""

from __future__ import annotations

import inspect
import math
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import mpmath
import numpy as np
import pytest
from scipy import signal, special, stats

from initsim import framework_names as fw
from initsim import initializers as ini

N = 10**6
ALPHA_Z = 1e-7
Z_CRIT = float(stats.norm.isf(ALPHA_Z / 2))  # 5.327
ALPHA_KS = 1e-6
REL = 1e-12

# Keras' and JAX's documented constant: the standard deviation of a standard
# normal truncated to [-2, 2].
KERAS_TRUNC_STD = 0.87962566103423978
# JAX's constant for the complex truncated normal (jax.nn.initializers.variance_scaling).
JAX_COMPLEX_TRUNC_STD = 0.95311164380491208

# Weight shapes of 10**6 entries: fans (1000, 4000) in each framework's layout.
TORCH_SHAPE = (1000, 250, 2, 2)
KERAS_SHAPE = (2, 2, 250, 1000)

# The names without a complex law (initializers.py module docstring).
NO_COMPLEX = frozenset(
    {
        "torch.uniform_",
        "torch.trunc_normal_",
        "torch.sparse_",
        "torch.default_weight",
        "torch.default_bias",
        "keras.RandomUniform",
        "keras.TruncatedNormal",
        "jax.uniform",
        "jax.truncated_normal",
    }
)


def seed_of(*parts: object) -> int:
    return zlib.crc32(repr(parts).encode())


def make(name: str, **params: Any) -> ini.Initializer:
    return ini.get(name, **{**fw.lookup(name).example, **params})


# --------------------------------------------------------------------------- documented fans


def torch_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    # torch.nn.init._calculate_fan_in_and_fan_out: (out, in, *kernel).
    if len(shape) < 2:
        raise ValueError("torch needs >= 2 dims")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def keras_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    # keras.src.initializers.random_initializers.compute_fans: (*kernel, in, out).
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def jax_fans(
    shape: tuple[int, ...], in_axis: Any = -2, out_axis: Any = -1, batch_axis: Any = ()
) -> tuple[int, int]:
    # jax._src.nn.initializers._compute_fans.
    if len(shape) <= 1:
        raise ValueError("jax needs >= 2 dims")

    def size(axes: Any) -> int:
        return shape[axes] if isinstance(axes, int) else math.prod(shape[i] for i in axes)

    in_size, out_size, batch_size = size(in_axis), size(out_axis), size(batch_axis)
    receptive = math.prod(shape) // in_size // out_size // batch_size
    return in_size * receptive, out_size * receptive


# --------------------------------------------------------------------------- documented laws


@cache
def truncnorm_moments(loc: float, scale: float, low: float, high: float) -> tuple[float, ...]:
    """Mean, variance and 4th central moment of N(loc, scale^2) on [low, high] (30 digits)."""
    with mpmath.workdps(30):
        a = (mpmath.mpf(low) - loc) / scale
        b = (mpmath.mpf(high) - loc) / scale

        def phi(t: Any) -> Any:
            return mpmath.exp(-t * t / 2)

        # Beyond 40 std the mass is below exp(-800); split where the density varies.
        lo, hi = max(a, -40), min(b, 40)
        pts = [lo, *(t for t in (-8, -4, -2, 0, 2, 4, 8) if lo < t < hi), hi]
        z = mpmath.quad(phi, pts)
        m1 = mpmath.quad(lambda t: t * phi(t), pts) / z
        c2 = mpmath.quad(lambda t: (t - m1) ** 2 * phi(t), pts) / z
        c4 = mpmath.quad(lambda t: (t - m1) ** 4 * phi(t), pts) / z
        s = mpmath.mpf(scale)
        return float(loc + s * m1), float(s**2 * c2), float(s**4 * c4)


@dataclass(frozen=True)
class Doc:
    """A documented iid law: ``normal`` (loc, scale), ``uniform`` (low, high) or
    ``truncnorm`` (parent loc, scale; absolute bounds low, high)."""

    kind: str
    loc: float = 0.0
    scale: float = 0.0
    low: float = 0.0
    high: float = 0.0

    @property
    def moments(self) -> tuple[float, float, float]:
        if self.kind == "normal":
            return self.loc, self.scale**2, 3 * self.scale**4
        if self.kind == "uniform":
            w = self.high - self.low
            return (self.low + self.high) / 2, w * w / 12, w**4 / 80
        return truncnorm_moments(self.loc, self.scale, self.low, self.high)

    @property
    def mean(self) -> float:
        return self.moments[0]

    @property
    def var(self) -> float:
        return self.moments[1]

    def scipy(self) -> Any:
        if self.kind == "normal":
            return stats.norm(self.loc, self.scale)
        if self.kind == "uniform":
            return stats.uniform(self.low, self.high - self.low)
        a, b = (self.low - self.loc) / self.scale, (self.high - self.loc) / self.scale
        return stats.truncnorm(a, b, loc=self.loc, scale=self.scale)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        if self.kind != "truncnorm":
            return self.scipy().cdf(x)
        # scipy's truncnorm.cdf takes ~0.7 s per 10**6 points; this is the same
        # function (test_fast_truncnorm_cdf_is_scipys checks it on a grid).
        a, b = (self.low - self.loc) / self.scale, (self.high - self.loc) / self.scale
        lo, hi = special.ndtr(a), special.ndtr(b)
        z = (np.clip(x, self.low, self.high) - self.loc) / self.scale
        return np.clip((special.ndtr(z) - lo) / (hi - lo), 0.0, 1.0)

    @property
    def spec_law(self) -> str:
        return {"normal": "gaussian", "uniform": "uniform", "truncnorm": "truncated_gaussian"}[
            self.kind
        ]


def _u(bound: float) -> Doc:
    return Doc("uniform", low=-bound, high=bound)


def torch_gain(nonlinearity: str, a: float) -> float:
    # torch.nn.init.calculate_gain, as its table documents.
    return {
        "linear": 1.0,
        "sigmoid": 1.0,
        "tanh": 5.0 / 3,
        "relu": math.sqrt(2.0),
        "leaky_relu": math.sqrt(2.0 / (1 + a**2)),
        "selu": 3.0 / 4,
    }[nonlinearity]


# PyTorch torch.nn.init: (fans, *documented parameters with their defaults) -> law.
def t_uniform(f, a=0.0, b=1.0):
    return Doc("uniform", low=a, high=b)


def t_normal(f, mean=0.0, std=1.0):
    return Doc("normal", loc=mean, scale=std)


def t_trunc_normal(f, mean=0.0, std=1.0, a=-2.0, b=2.0):
    return Doc("truncnorm", loc=mean, scale=std, low=a, high=b)


def t_xavier_uniform(f, gain=1.0):
    return _u(gain * math.sqrt(6.0 / (f[0] + f[1])))


def t_xavier_normal(f, gain=1.0):
    return Doc("normal", scale=gain * math.sqrt(2.0 / (f[0] + f[1])))


def _torch_fan(f, mode):
    return f[0] if mode == "fan_in" else f[1]


def t_kaiming_uniform(f, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    return _u(torch_gain(nonlinearity, a) * math.sqrt(3.0 / _torch_fan(f, mode)))


def t_kaiming_normal(f, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    return Doc("normal", scale=torch_gain(nonlinearity, a) / math.sqrt(_torch_fan(f, mode)))


def t_default_weight(f):
    # nn.Linear.reset_parameters: kaiming_uniform_(a=sqrt(5)) = U(+-1/sqrt(fan_in)).
    return _u(1.0 / math.sqrt(f[0]))


def t_default_bias(f, *, fan_in):
    # nn.Linear.reset_parameters: the bias is U(+-1/sqrt(fan_in of the weight)).
    return _u(1.0 / math.sqrt(fan_in))


# Keras 3 keras.initializers.
def k_random_normal(f, mean=0.0, stddev=0.05):
    return Doc("normal", loc=mean, scale=stddev)


def k_random_uniform(f, minval=-0.05, maxval=0.05):
    return Doc("uniform", low=minval, high=maxval)


def k_truncated_normal(f, mean=0.0, stddev=0.05):
    return Doc("truncnorm", loc=mean, scale=stddev, low=mean - 2 * stddev, high=mean + 2 * stddev)


def k_variance_scaling(f, scale=1.0, mode="fan_in", distribution="truncated_normal"):
    n = {"fan_in": f[0], "fan_out": f[1], "fan_avg": (f[0] + f[1]) / 2}[mode]
    if distribution in ("truncated_normal", "normal"):  # Keras 3: "normal" is truncated
        s = math.sqrt(scale / n) / KERAS_TRUNC_STD
        return Doc("truncnorm", scale=s, low=-2 * s, high=2 * s)
    if distribution == "untruncated_normal":
        return Doc("normal", scale=math.sqrt(scale / n))
    assert distribution == "uniform"
    return _u(math.sqrt(3.0 * scale / n))


def _keras_named(scale: float, mode: str, distribution: str) -> Callable[..., Doc]:
    def law(f):
        return k_variance_scaling(f, scale, mode, distribution)

    return law


# JAX jax.nn.initializers.
def j_uniform(f, scale=1e-2):
    return Doc("uniform", low=0.0, high=scale)


def j_normal(f, stddev=1e-2):
    return Doc("normal", scale=stddev)


def j_truncated_normal(f, stddev=1e-2, lower=-2.0, upper=2.0):
    return Doc("truncnorm", scale=stddev, low=lower * stddev, high=upper * stddev)


def j_variance_scaling(f, scale, mode, distribution):
    n = {
        "fan_in": f[0],
        "fan_out": f[1],
        "fan_avg": (f[0] + f[1]) / 2,
        "fan_geo_avg": math.sqrt(f[0] * f[1]),
    }[mode]
    if distribution == "truncated_normal":
        s = math.sqrt(scale / n) / KERAS_TRUNC_STD
        return Doc("truncnorm", scale=s, low=-2 * s, high=2 * s)
    if distribution == "normal":  # JAX: plain
        return Doc("normal", scale=math.sqrt(scale / n))
    assert distribution == "uniform"
    return _u(math.sqrt(3.0 * scale / n))


def _jax_named(scale: float, mode: str, distribution: str) -> Callable[..., Doc]:
    def law(f):
        return j_variance_scaling(f, scale, mode, distribution)

    return law


IID: dict[str, Callable[..., Doc]] = {
    "torch.uniform_": t_uniform,
    "torch.normal_": t_normal,
    "torch.trunc_normal_": t_trunc_normal,
    "torch.xavier_uniform_": t_xavier_uniform,
    "torch.xavier_normal_": t_xavier_normal,
    "torch.kaiming_uniform_": t_kaiming_uniform,
    "torch.kaiming_normal_": t_kaiming_normal,
    "torch.default_weight": t_default_weight,
    "torch.default_bias": t_default_bias,
    "keras.RandomNormal": k_random_normal,
    "keras.RandomUniform": k_random_uniform,
    "keras.TruncatedNormal": k_truncated_normal,
    "keras.VarianceScaling": k_variance_scaling,
    "keras.GlorotUniform": _keras_named(1.0, "fan_avg", "uniform"),
    "keras.GlorotNormal": _keras_named(1.0, "fan_avg", "truncated_normal"),
    "keras.HeUniform": _keras_named(2.0, "fan_in", "uniform"),
    "keras.HeNormal": _keras_named(2.0, "fan_in", "truncated_normal"),
    "keras.LecunUniform": _keras_named(1.0, "fan_in", "uniform"),
    "keras.LecunNormal": _keras_named(1.0, "fan_in", "truncated_normal"),
    "jax.uniform": j_uniform,
    "jax.normal": j_normal,
    "jax.truncated_normal": j_truncated_normal,
    "jax.variance_scaling": j_variance_scaling,
    "jax.glorot_uniform": _jax_named(1.0, "fan_avg", "uniform"),
    "jax.glorot_normal": _jax_named(1.0, "fan_avg", "truncated_normal"),
    "jax.lecun_uniform": _jax_named(1.0, "fan_in", "uniform"),
    "jax.lecun_normal": _jax_named(1.0, "fan_in", "truncated_normal"),
    "jax.he_uniform": _jax_named(2.0, "fan_in", "uniform"),
    "jax.he_normal": _jax_named(2.0, "fan_in", "truncated_normal"),
}
DETERMINISTIC = frozenset(
    {
        "torch.constant_",
        "torch.ones_",
        "torch.zeros_",
        "torch.eye_",
        "torch.dirac_",
        "keras.Constant",
        "keras.Zeros",
        "keras.Ones",
        "keras.Identity",
        "keras.STFT",
        "jax.zeros",
        "jax.ones",
        "jax.constant",
    }
)
MATRIX = frozenset(
    {
        "torch.orthogonal_",
        "torch.sparse_",
        "keras.Orthogonal",
        "jax.orthogonal",
        "jax.delta_orthogonal",
    }
)

# Documented defaults of the parameters the law functions above do not take
# (random streams and fan axes) and of the matrix and deterministic names.
REQ = fw.REQUIRED
OTHER_DEFAULTS: dict[str, dict[str, Any]] = {
    "torch.constant_": {"val": REQ},
    "torch.ones_": {},
    "torch.zeros_": {},
    "torch.eye_": {},
    "torch.dirac_": {"groups": 1},
    "torch.orthogonal_": {"gain": 1.0, "generator": None},
    "torch.sparse_": {"sparsity": REQ, "std": 0.01, "generator": None},
    "keras.Constant": {"value": 0.0},
    "keras.Zeros": {},
    "keras.Ones": {},
    "keras.Orthogonal": {"gain": 1.0, "seed": None},
    "keras.Identity": {"gain": 1.0},
    "keras.STFT": {"side": "real", "window": "hann", "scaling": "density", "periodic": False},
    "jax.zeros": {},
    "jax.ones": {},
    "jax.constant": {"value": REQ},
    "jax.orthogonal": {"scale": 1.0, "column_axis": -1},
    "jax.delta_orthogonal": {"scale": 1.0, "column_axis": -1},
}
STREAM_AND_AXES = {
    "generator": None,
    "seed": None,
    "input_axes": None,
    "output_axes": None,
    "in_axis": -2,
    "out_axis": -1,
    "batch_axis": (),
}


def documented_defaults(name: str) -> dict[str, Any]:
    if name not in IID:
        return OTHER_DEFAULTS[name]
    out = {}
    for p in list(inspect.signature(IID[name]).parameters.values())[1:]:
        out[p.name] = REQ if p.default is inspect.Parameter.empty else p.default
    return out


@pytest.mark.parametrize("name", fw.names())
def test_documented_defaults(name):
    entry = fw.lookup(name)
    doc = documented_defaults(name)
    given = {p.name: p.default for p in entry.params}
    for key, value in doc.items():
        assert key in given, f"{name}: the documented parameter {key!r} is missing"
        assert given[key] == value or (given[key] is REQ and value is REQ), (name, key)
    for key in set(given) - set(doc):
        assert key in STREAM_AND_AXES, f"{name}: undocumented parameter {key!r}"
        assert given[key] == STREAM_AND_AXES[key], (name, key)


def test_every_name_is_checked_against_a_documented_law():
    covered = set(IID) | DETERMINISTIC | MATRIX
    assert covered == set(fw.names())
    assert not (set(IID) & DETERMINISTIC) and not (set(IID) & MATRIX)


# --------------------------------------------------------------------------- iid cases


# Laws that do not depend on the weight's fans (a 1-D bias has none).
FANLESS = frozenset({"torch.default_bias"})


@dataclass(frozen=True)
class Case:
    name: str
    params: dict[str, Any]
    shape: tuple[int, ...]

    @property
    def id(self) -> str:
        args = ",".join(f"{k}={v}" for k, v in self.params.items())
        default = self.shape in ((), _default_shape(self.name))
        return f"{self.name}({args})" + ("" if default else f"{self.shape}")

    def doc_fans(self) -> tuple[int, int] | None:
        if self.name in FANLESS:
            return None
        fwk = self.name.split(".")[0]
        if fwk == "torch":
            return torch_fans(self.shape)
        if fwk == "keras":
            return keras_fans(self.shape)
        axes = {k: v for k, v in self.params.items() if k in ("in_axis", "out_axis", "batch_axis")}
        return jax_fans(self.shape, **axes)

    def doc(self) -> Doc:
        law_params = {k: v for k, v in self.params.items() if k not in STREAM_AND_AXES}
        return IID[self.name](self.doc_fans(), **{**fw.lookup(self.name).example, **law_params})

    def init(self) -> ini.Initializer:
        return make(self.name, **self.params)


def _default_shape(name: str) -> tuple[int, ...]:
    if name == "torch.default_bias":
        return (N,)
    return TORCH_SHAPE if name.startswith("torch.") else KERAS_SHAPE


EXTRA: list[tuple[str, dict[str, Any]]] = [
    ("torch.uniform_", {"a": -3.0, "b": 0.5}),
    ("torch.normal_", {"mean": 0.3, "std": 0.02}),
    # Absolute bounds: [-1, 3] around mean 0.5 with std 2 is [-0.75, 1.25] std.
    ("torch.trunc_normal_", {"mean": 0.5, "std": 2.0, "a": -1.0, "b": 3.0}),
    # The default bounds are absolute: with std 0.02 they cut at +-100 std.
    ("torch.trunc_normal_", {"std": 0.02}),
    ("torch.xavier_uniform_", {"gain": 2.5}),
    ("torch.xavier_normal_", {"gain": 0.5}),
    *[
        (name, params)
        for name in ("torch.kaiming_uniform_", "torch.kaiming_normal_")
        for params in (
            {"mode": "fan_out"},
            {"nonlinearity": "tanh"},
            {"a": 0.2},
            {"a": 0.2, "mode": "fan_out", "nonlinearity": "leaky_relu"},
            {"nonlinearity": "relu", "mode": "fan_out"},
            {"nonlinearity": "linear"},
            {"nonlinearity": "selu"},
            {"a": 3.0, "nonlinearity": "relu"},  # a is ignored unless leaky_relu
        )
    ],
    ("torch.default_bias", {"fan_in": 7}),
    ("keras.RandomNormal", {"mean": -0.1, "stddev": 0.3}),
    ("keras.RandomUniform", {"minval": 0.0, "maxval": 2.0}),
    ("keras.TruncatedNormal", {"mean": 1.0, "stddev": 0.2}),
    ("keras.VarianceScaling", {"distribution": "normal"}),
    ("keras.VarianceScaling", {"distribution": "untruncated_normal"}),
    ("keras.VarianceScaling", {"distribution": "uniform"}),
    ("keras.VarianceScaling", {"scale": 2.0, "mode": "fan_out"}),
    ("keras.VarianceScaling", {"scale": 0.5, "mode": "fan_avg", "distribution": "uniform"}),
    ("keras.VarianceScaling", {"scale": 3.0, "mode": "fan_avg", "distribution": "normal"}),
    ("jax.uniform", {"scale": 3.0}),
    ("jax.normal", {"stddev": 0.5}),
    ("jax.truncated_normal", {"stddev": 2.0, "lower": -1.0, "upper": 3.0}),
    *[
        ("jax.variance_scaling", {"scale": s, "mode": m, "distribution": d})
        for s, m, d in (
            (2.0, "fan_geo_avg", "normal"),
            (1.0, "fan_geo_avg", "truncated_normal"),
            (1.0, "fan_geo_avg", "uniform"),
            (1.0, "fan_avg", "uniform"),
            (0.5, "fan_out", "truncated_normal"),
            (1.0, "fan_in", "normal"),
        )
    ],
]
AXIS_CASES = [
    # JAX's in_axis / out_axis / batch_axis: fans (250, 1000) and (500, 2000).
    Case(
        "jax.variance_scaling",
        {
            "scale": 1.0,
            "mode": "fan_in",
            "distribution": "normal",
            "in_axis": 0,
            "out_axis": -1,
            "batch_axis": 1,
        },
        (250, 4, 1000),
    ),
    Case(
        "jax.variance_scaling",
        {
            "scale": 2.0,
            "mode": "fan_avg",
            "distribution": "uniform",
            "in_axis": (0, 1),
            "out_axis": 2,
        },
        (5, 100, 2000),
    ),
    Case("jax.he_normal", {"in_axis": 1, "out_axis": 0}, (4000, 250)),
    # Keras' 1-D rule: fan_in = fan_out = shape[0].
    Case("keras.HeUniform", {}, (N,)),
    Case("keras.GlorotNormal", {}, (N,)),
]
CASES = (
    [Case(n, {}, _default_shape(n)) for n in IID]
    + [Case(n, p, _default_shape(n)) for n, p in EXTRA]
    + AXIS_CASES
)


def by_id(cases):
    return pytest.mark.parametrize("case", cases, ids=[c.id for c in cases])


def z_mean(x: np.ndarray, mean: float, var: float) -> float:
    return float((x.mean() - mean) / math.sqrt(var / x.size))


def z_var(x: np.ndarray, mean: float, var: float, mu4: float) -> float:
    """z of the mean square about the known mean; SE from the known 4th central moment."""
    return float((np.mean((x - mean) ** 2) - var) / math.sqrt((mu4 - var * var) / x.size))


def z_empirical(y: np.ndarray, target: float) -> float:
    """z of the mean of ``y`` against ``target``, SE from the sample."""
    return float((y.mean() - target) / (y.std(ddof=1) / math.sqrt(y.size)))


def ks_p(x: np.ndarray, cdf: Callable[[np.ndarray], np.ndarray]) -> float:
    return float(stats.kstest(np.ravel(x), cdf).pvalue)


@by_id(CASES)
def test_iid_law_is_the_documented_one(case):
    init, doc = case.init(), case.doc()
    if case.name in FANLESS:
        fans = (1, 1)
        with pytest.raises(ValueError):
            init.fans(case.shape)  # torch's fan rule needs >= 2 dims
        assert init.variance(3, 5) == init.variance(1, 1)
    else:
        fans = init.fans(case.shape)
        assert fans == case.doc_fans()
    mean, var, mu4 = doc.moments
    assert math.isclose(init.variance(*fans), var, rel_tol=REL)
    assert math.isclose(init.variance_for_shape(case.shape), var, rel_tol=REL)
    assert math.isclose(init.mean(*fans), mean, rel_tol=REL, abs_tol=REL * math.sqrt(var))
    spec = init.law_spec(*fans)
    assert spec.law == doc.spec_law == init.law
    if doc.kind != "uniform":
        assert math.isclose(spec.loc, doc.loc, rel_tol=REL, abs_tol=0.0)
        assert math.isclose(spec.scale, doc.scale, rel_tol=REL)
    if doc.kind != "normal":
        assert math.isclose(spec.low, doc.low, rel_tol=REL, abs_tol=0.0)
        assert math.isclose(spec.high, doc.high, rel_tol=REL, abs_tol=0.0)

    x = init.sample(case.shape, seed=seed_of(case.id))
    assert x.shape == case.shape and x.dtype == np.float64
    if doc.kind != "normal":
        assert doc.low <= x.min() and x.max() <= doc.high
    zm, zv = z_mean(x, mean, var), z_var(x, mean, var, mu4)
    assert abs(zm) < Z_CRIT, f"mean: z = {zm:.2f}"
    assert abs(zv) < Z_CRIT, f"variance: z = {zv:.2f}"
    p = ks_p(x, doc.cdf)
    assert p >= ALPHA_KS, f"KS against the documented {doc}: p = {p:.3g}"


@by_id([c for c in CASES if c.doc().kind == "truncnorm"])
def test_fast_truncnorm_cdf_is_scipys(case):
    doc = case.doc()
    grid = np.linspace(doc.low - doc.scale, doc.high + doc.scale, 2001)
    np.testing.assert_allclose(doc.cdf(grid), doc.scipy().cdf(grid), rtol=0, atol=1e-13)
    # scipy's moments where they are reliable (moderate bounds).
    mean, var = (float(v) for v in doc.scipy().stats("mv"))
    assert math.isclose(doc.mean, mean, rel_tol=1e-9, abs_tol=1e-9 * doc.scale)
    assert math.isclose(doc.var, var, rel_tol=1e-9)


def test_documented_constants():
    # 0.87962566103423978 is the std of a standard normal truncated to [-2, 2].
    _, var, _ = truncnorm_moments(0.0, 1.0, -2.0, 2.0)
    assert math.isclose(math.sqrt(var), KERAS_TRUNC_STD, rel_tol=1e-15)
    assert ini.TRUNCATED_NORMAL_STD_FACTOR == KERAS_TRUNC_STD
    # Keras' TruncatedNormal / JAX's truncated_normal are not rescaled: 0.7737 std^2.
    assert math.isclose(k_truncated_normal(None, stddev=1.0).var, 0.7737413, rel_tol=1e-6)


def test_keras_low_rank_fans_and_torch_jax_refuse_them():
    he = ini.get("keras.HeNormal")
    assert he.fans(()) == (1, 1) and he.fans((7,)) == (7, 7)
    assert he.variance(*he.fans(())) == 2.0
    bound = 2 * math.sqrt(2.0) / KERAS_TRUNC_STD
    x = he.sample((), seed=5)
    assert x.shape == () and abs(float(x)) <= bound
    for name in ("torch.kaiming_normal_", "jax.he_normal", "jax.variance_scaling"):
        init = make(name)
        with pytest.raises(ValueError):
            init.sample((10,), seed=0)
        with pytest.raises(ValueError):
            init.fans((10,))


def test_keras_has_no_fan_geo_avg_but_jax_has():
    with pytest.raises(ValueError):
        ini.get("keras.VarianceScaling", mode="fan_geo_avg")
    init = ini.get("jax.variance_scaling", scale=1.0, mode="fan_geo_avg", distribution="normal")
    assert math.isclose(init.variance(100, 400), 1.0 / 200.0, rel_tol=REL)


# --------------------------------------------------------------------------- power of the tests


def _sample(doc: Doc, seed: int, n: int = N) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return doc.scipy().rvs(size=n, random_state=rng)


def test_ks_rejects_a_plain_normal_where_a_truncated_one_is_documented():
    doc = Case("keras.HeNormal", {}, KERAS_SHAPE).doc()
    plain = np.random.default_rng(11).normal(0.0, math.sqrt(doc.var), N)  # same variance
    assert ks_p(plain, doc.cdf) < ALPHA_KS
    # and the other way round: torch's plain normal against Keras' truncated draws.
    trunc = make("keras.HeNormal").sample(KERAS_SHAPE, seed=12)
    torch_doc = Doc("normal", scale=math.sqrt(doc.var))
    assert ks_p(trunc, torch_doc.cdf) < ALPHA_KS
    # Keras 3 reads distribution="normal" as truncated: not its untruncated_normal law.
    k3 = make("keras.VarianceScaling", distribution="normal").sample(KERAS_SHAPE, seed=13)
    assert (
        ks_p(
            k3, k_variance_scaling(keras_fans(KERAS_SHAPE), 1.0, "fan_in", "untruncated_normal").cdf
        )
        < ALPHA_KS
    )
    # a uniform of the same variance.
    uni = np.random.default_rng(14).uniform(-1, 1, N) * math.sqrt(3 * doc.var)
    assert ks_p(uni, doc.cdf) < ALPHA_KS


def test_ks_rejects_truncation_relative_to_the_mean_for_torch():
    # torch's trunc_normal_ bounds are absolute; reading them as mean +- 2 std is wrong.
    case = Case("torch.trunc_normal_", {"mean": 0.5, "std": 2.0, "a": -1.0, "b": 3.0}, TORCH_SHAPE)
    relative = Doc("truncnorm", loc=0.5, scale=2.0, low=0.5 - 4.0, high=0.5 + 4.0)
    assert ks_p(_sample(relative, 21), case.doc().cdf) < ALPHA_KS


@pytest.mark.parametrize("kind", ["normal", "uniform", "truncnorm"])
def test_z_tests_reject_a_variance_5_percent_off_and_a_shifted_mean(kind):
    doc = {
        "normal": Doc("normal", scale=0.3),
        "uniform": _u(0.3),
        "truncnorm": Doc("truncnorm", scale=0.3, low=-0.6, high=0.6),
    }[kind]
    mean, var, mu4 = doc.moments
    x = _sample(doc, seed_of("power", kind))
    # the correct law passes ...
    assert abs(z_var(x, mean, var, mu4)) < Z_CRIT and abs(z_mean(x, mean, var)) < Z_CRIT
    # ... a variance 5 % too large or too small fails,
    assert abs(z_var(x * math.sqrt(1.05), mean, var, mu4)) > Z_CRIT
    assert abs(z_var(x * math.sqrt(0.95), mean, var, mu4)) > Z_CRIT
    # and a mean 1 % of a standard deviation off fails.
    assert abs(z_mean(x + 0.01 * math.sqrt(var), mean, var)) > Z_CRIT
    # the KS test, too, sees the 5 % variance error.
    assert ks_p(x * math.sqrt(1.05), doc.cdf) < ALPHA_KS


def test_z_test_rejects_an_unrescaled_truncation():
    # Keras' TruncatedNormal law (not rescaled) where VarianceScaling is documented.
    case = Case("keras.VarianceScaling", {}, KERAS_SHAPE)
    doc = case.doc()
    mean, var, mu4 = doc.moments
    wrong = _sample(
        Doc("truncnorm", scale=math.sqrt(var), low=-2 * math.sqrt(var), high=2 * math.sqrt(var)), 31
    )
    assert abs(z_var(wrong, mean, var, mu4)) > Z_CRIT


# --------------------------------------------------------------------------- deterministic laws


def _stft(shape, side="real", window="hann", scaling="density", periodic=False):
    # keras.initializers.STFT (keras/src/initializers/constant_initializers.py).
    frames, channels, bins = shape
    t = np.arange(frames)[:, None, None]
    f = np.arange(bins)[None, None, :] / (2 * (bins - 1))
    args = -2 * math.pi * t * f
    kernel = np.cos(args) if side == "real" else np.sin(args)
    if window is not None:
        if isinstance(window, str):
            win = getattr(signal.windows, window)(frames, sym=not periodic)
        else:
            win = np.asarray(window, dtype=np.float64)
        win = win.reshape(frames, 1, 1)
        scale = 1.0
        if scaling == "density":
            scale = math.sqrt(np.sum(win**2))
        elif scaling == "spectrum":
            scale = np.sum(np.abs(win))
        kernel = kernel * win / scale
    return np.broadcast_to(kernel, (frames, channels, bins))


def _dirac(shape, groups=1):
    # torch.nn.init.dirac_.
    out = np.zeros(shape)
    per = shape[0] // groups
    for g in range(groups):
        for d in range(min(per, shape[1])):
            out[(g * per + d, d, *(k // 2 for k in shape[2:]))] = 1.0
    return out


DET_CASES = [
    ("torch.zeros_", {}, (6, 4, 3), lambda s: np.zeros(s)),
    ("torch.ones_", {}, (6, 4, 3), lambda s: np.ones(s)),
    ("torch.constant_", {}, (6, 4), lambda s: np.zeros(s)),
    ("torch.constant_", {"val": -1.5}, (6, 4, 3), lambda s: np.full(s, -1.5)),
    ("torch.eye_", {}, (3, 5), lambda s: np.eye(*s)),
    ("torch.eye_", {}, (5, 3), lambda s: np.eye(*s)),
    ("torch.dirac_", {}, (6, 4, 3, 3), _dirac),
    ("torch.dirac_", {}, (3, 5, 2, 4), _dirac),  # even kernels: centre k // 2
    ("torch.dirac_", {"groups": 3}, (6, 2, 5), lambda s: _dirac(s, 3)),
    ("torch.dirac_", {"groups": 2}, (8, 3, 3, 3, 3), lambda s: _dirac(s, 2)),
    ("keras.Zeros", {}, (3, 4, 6), lambda s: np.zeros(s)),
    ("keras.Zeros", {}, (), lambda s: np.zeros(s)),
    ("keras.Ones", {}, (5,), lambda s: np.ones(s)),
    ("keras.Constant", {}, (3, 4, 6), lambda s: np.zeros(s)),
    ("keras.Constant", {"value": 2.5}, (3, 4, 6), lambda s: np.full(s, 2.5)),
    (
        "keras.Constant",
        {"value": [1.0, 2.0, 3.0]},
        (4, 3),
        lambda s: np.broadcast_to([1.0, 2.0, 3.0], s),
    ),
    ("keras.Identity", {}, (4, 4), lambda s: np.eye(4)),
    ("keras.Identity", {"gain": 2.5}, (3, 5), lambda s: 2.5 * np.eye(*s)),
    ("keras.Identity", {"gain": -0.5}, (5, 3), lambda s: -0.5 * np.eye(*s)),
    ("keras.STFT", {}, (16, 1, 9), _stft),
    (
        "keras.STFT",
        {"side": "imag", "scaling": "spectrum", "periodic": True},
        (16, 2, 9),
        lambda s: _stft(s, "imag", "hann", "spectrum", True),
    ),
    ("keras.STFT", {"window": None}, (8, 1, 5), lambda s: _stft(s, window=None)),
    (
        "keras.STFT",
        {"window": "hamming", "scaling": None},
        (10, 1, 6),
        lambda s: _stft(s, window="hamming", scaling=None),
    ),
    (
        "keras.STFT",
        {"window": [1.0, 2.0, 3.0, 4.0]},
        (4, 1, 3),
        lambda s: _stft(s, window=[1.0, 2.0, 3.0, 4.0]),
    ),
    ("jax.zeros", {}, (3, 4, 6), lambda s: np.zeros(s)),
    ("jax.ones", {}, (3, 4, 6), lambda s: np.ones(s)),
    ("jax.constant", {}, (3, 4), lambda s: np.zeros(s)),
    ("jax.constant", {"value": -0.25}, (3, 4, 6), lambda s: np.full(s, -0.25)),
    (
        "jax.constant",
        {"value": [[1.0], [2.0]]},
        (2, 5),
        lambda s: np.broadcast_to([[1.0], [2.0]], s),
    ),
]


@pytest.mark.parametrize(
    ("name", "params", "shape", "expected"),
    DET_CASES,
    ids=[f"{n}({','.join(f'{k}={v}' for k, v in p.items())}){s}" for n, p, s, _ in DET_CASES],
)
def test_deterministic_law_is_exactly_the_documented_tensor(name, params, shape, expected):
    init = make(name, **params)
    want = np.asarray(expected(shape), dtype=np.float64)
    # Exact, except STFT: cos(-2 pi t f / N) with the product taken in another
    # order differs by a few ulps of the argument (at most 2 pi T).
    atol = 0.0
    if name == "keras.STFT":
        atol = 8 * np.finfo(np.float64).eps * 2 * math.pi * shape[0] * float(np.max(np.abs(want)))
    for seed in (0, 1):
        got = init.sample(shape, seed=seed)
        assert got.shape == shape and got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=0, atol=atol)
    value = params.get("val", params.get("value", 0.0))
    if init.law == "constant" and not isinstance(value, list):
        expected_mean = 1.0 if name.endswith(("ones_", "Ones", "ones")) else float(value)
        assert init.variance(1, 1) == 0.0 and init.mean(1, 1) == expected_mean
    for dtype in ini.DTYPES:
        got = init.sample(shape, seed=0, dtype=dtype)
        assert got.dtype == np.dtype(dtype)
        eps = float(np.finfo(np.dtype(dtype)).eps)
        np.testing.assert_allclose(
            got.astype(np.complex128),
            want,
            rtol=0,
            atol=atol + eps * float(np.max(np.abs(want))),
        )


# --------------------------------------------------------------------------- orthogonal


def _torch_matrix(w, shape, params):
    return w.reshape(shape[0], -1)  # orthogonal_: shape[0] x rest


def _keras_matrix(w, shape, params):
    return w.reshape(-1, shape[-1])  # Orthogonal: rest x shape[-1]


def _jax_matrix(w, shape, params):
    axis = params.get("column_axis", -1)  # orthogonal: rest x shape[column_axis]
    return np.moveaxis(w, axis, -1).reshape(-1, shape[axis])


ORTHO_CASES = [
    ("torch.orthogonal_", {}, (4, 6, 3, 3), _torch_matrix),  # 4 x 54, wide
    ("torch.orthogonal_", {"gain": 1.7}, (64, 8), _torch_matrix),  # tall
    ("torch.orthogonal_", {"gain": -0.5}, (8, 8), _torch_matrix),
    ("keras.Orthogonal", {}, (3, 3, 4, 8), _keras_matrix),  # 36 x 8, tall
    ("keras.Orthogonal", {"gain": 2.0}, (2, 16), _keras_matrix),  # wide
    ("jax.orthogonal", {}, (3, 3, 4, 8), _jax_matrix),
    ("jax.orthogonal", {"scale": 0.3, "column_axis": 0}, (5, 3, 4), _jax_matrix),  # 12 x 5
    ("jax.orthogonal", {"column_axis": 1}, (3, 20, 2), _jax_matrix),  # 6 x 20
    ("jax.orthogonal", {"column_axis": -3}, (7, 2, 2), _jax_matrix),  # 4 x 7
]
ORTHO_IDS = [f"{n}({','.join(f'{k}={v}' for k, v in p.items())}){s}" for n, p, s, _ in ORTHO_CASES]


@pytest.mark.parametrize("dtype", ["float64", "complex128", "complex64"])
@pytest.mark.parametrize(("name", "params", "shape", "matrix"), ORTHO_CASES, ids=ORTHO_IDS)
def test_orthogonal_structure_and_mean_square(name, params, shape, matrix, dtype):
    init = make(name, **params)
    gain = params.get("gain", params.get("scale", 1.0))
    w = init.sample(shape, seed=seed_of(name, params, shape), dtype=dtype)
    assert w.shape == shape and w.dtype == np.dtype(dtype)
    m = matrix(w.astype(np.complex128), shape, params)
    rows, cols = m.shape
    gram = m @ m.conj().T if rows <= cols else m.conj().T @ m
    atol = 1e-12 if dtype != "complex64" else 2e-6
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(rows, cols)), rtol=0, atol=atol * gain**2)
    if dtype == "float64":
        assert np.all(np.isreal(m))
    # mean square = gain^2 min(r, c) / (r c) = gain^2 / max(r, c), deterministic.
    documented = gain**2 / max(rows, cols)
    mean_square = float(np.mean(np.abs(m) ** 2))
    assert math.isclose(init.variance(*init.fans(shape)), documented, rel_tol=REL)
    assert math.isclose(mean_square, documented, rel_tol=1e-12 if dtype != "complex64" else 1e-6)
    assert init.mean(*init.fans(shape)) == 0.0


# Haar law of one entry of an n x n Haar orthogonal matrix (n = max side): the
# first column is uniform on the sphere S^{n-1}, so (1 + W_ij) / 2 ~ Beta((n-1)/2, (n-1)/2);
# for n = 3 that is U(-1, 1). Complex (Haar unitary): |W_ij|^2 ~ Beta(1, n - 1), phase uniform.
HAAR_DRAWS = 20_000
HAAR_CASES = [
    ("torch.orthogonal_", (3, 3), 3),
    ("torch.orthogonal_", (3, 5), 5),
    ("keras.Orthogonal", (5, 3), 5),
    ("jax.orthogonal", (2, 5), 5),
    ("jax.orthogonal", (4, 4), 4),
]


def _haar_entries(draw: Callable[[np.random.Generator], np.ndarray], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([draw(rng) for _ in range(HAAR_DRAWS)])


def _entry_cdf(n: int) -> Callable[[np.ndarray], np.ndarray]:
    beta = stats.beta((n - 1) / 2, (n - 1) / 2)
    return lambda x: beta.cdf((1 + x) / 2)


@pytest.mark.parametrize(
    ("name", "shape", "n"), HAAR_CASES, ids=[f"{c[0]}{c[1]}" for c in HAAR_CASES]
)
def test_orthogonal_entries_are_haar(name, shape, n):
    init = make(name)
    e = _haar_entries(
        lambda rng: init.sample(shape, seed=rng)[[0, -1], [0, -1]], seed_of(name, shape)
    )
    for j in range(2):
        p = ks_p(e[:, j], _entry_cdf(n))
        assert p >= ALPHA_KS, f"entry {j}: p = {p:.3g}"


@pytest.mark.parametrize("name", ["torch.orthogonal_", "keras.Orthogonal", "jax.orthogonal"])
def test_complex_orthogonal_is_haar_unitary(name):
    init = make(name)
    e = _haar_entries(
        lambda rng: init.sample((3, 3), seed=rng, dtype="complex128")[0, 0],
        seed_of(name, "complex"),
    )
    assert ks_p(np.abs(e) ** 2, stats.beta(1, 2).cdf) >= ALPHA_KS
    assert ks_p(np.angle(e), stats.uniform(-math.pi, 2 * math.pi).cdf) >= ALPHA_KS


def test_haar_ks_rejects_qr_without_the_sign_fix():
    def real(rng):
        return np.linalg.qr(rng.standard_normal((3, 3)))[0][0, 0]

    assert ks_p(_haar_entries(real, 41), _entry_cdf(3)) < ALPHA_KS

    def cplx(rng):
        z = rng.standard_normal((3, 3)) + 1j * rng.standard_normal((3, 3))
        return np.linalg.qr(z)[0][0, 0]

    e = _haar_entries(cplx, 42)
    assert ks_p(np.angle(e), stats.uniform(-math.pi, 2 * math.pi).cdf) < ALPHA_KS


DELTA_CASES = [
    ({}, (3, 4, 8)),
    ({"column_axis": -2}, (3, 4, 8)),
    ({"scale": 1.5}, (4, 4, 6, 6)),  # even kernels: centre (k - 1) // 2 = 1
    ({"scale": -0.7}, (3, 2, 5, 2, 3)),
    ({}, (1, 5, 5)),
    ({"scale": 2.0}, (2, 3, 3, 7)),
]


@pytest.mark.parametrize("dtype", ["float64", "complex128", "complex64"])
@pytest.mark.parametrize(("params", "shape"), DELTA_CASES, ids=[f"{p}{s}" for p, s in DELTA_CASES])
def test_delta_orthogonal_centre_tap_and_mean_square(params, shape, dtype):
    init = make("jax.delta_orthogonal", **params)
    scale = params.get("scale", 1.0)
    w = init.sample(shape, seed=seed_of("delta", params, shape), dtype=dtype)
    assert w.shape == shape and w.dtype == np.dtype(dtype)
    kernel, n_in, n_out = shape[:-2], shape[-2], shape[-1]
    centre = tuple((k - 1) // 2 for k in kernel)
    m = w[centre].astype(np.complex128)
    rest = w.astype(np.complex128).copy()
    rest[centre] = 0
    assert np.all(rest == 0), "non-centre taps must be zero"
    atol = 1e-12 if dtype != "complex64" else 2e-6
    np.testing.assert_allclose(
        m @ m.conj().T, scale**2 * np.eye(n_in), rtol=0, atol=atol * scale**2
    )
    kprod = math.prod(kernel)
    documented = scale**2 * n_in / (kprod * n_in * n_out)
    fi, fo = keras_fans(shape)
    assert (fi, fo) == init.fans(shape)
    assert math.isclose(documented, scale**2 / max(fi, fo), rel_tol=REL)
    assert math.isclose(init.variance(fi, fo), documented, rel_tol=REL)
    assert math.isclose(
        float(np.mean(np.abs(w.astype(np.complex128)) ** 2)),
        documented,
        rel_tol=1e-12 if dtype != "complex64" else 1e-6,
    )


def test_delta_orthogonal_entries_are_haar():
    init = make("jax.delta_orthogonal")
    e = _haar_entries(
        lambda rng: init.sample((3, 3, 5), seed=rng)[1, [0, 2], [0, 4]], seed_of("delta-haar")
    )
    for j in range(2):
        assert ks_p(e[:, j], _entry_cdf(5)) >= ALPHA_KS


def test_delta_orthogonal_needs_in_at_most_out():
    with pytest.raises(ValueError):
        make("jax.delta_orthogonal").sample((3, 8, 4), seed=0)
    with pytest.raises(ValueError):
        make("jax.delta_orthogonal").sample((8, 4), seed=0)


# --------------------------------------------------------------------------- sparse


@pytest.mark.parametrize(
    ("params", "shape"),
    [
        ({}, (1000, 1000)),
        ({"sparsity": 0.07, "std": 0.5}, (100, 10_000)),
        ({"sparsity": 0.0, "std": 2.0}, (1000, 1000)),
    ],
    ids=["default", "sparsity=0.07", "sparsity=0"],
)
def test_torch_sparse_is_the_documented_law(params, shape):
    init = make("torch.sparse_", **params)
    sparsity = params.get("sparsity", 0.1)
    std = params.get("std", 0.01)
    rows, cols = shape
    zeros = math.ceil(sparsity * rows)  # torch.nn.init.sparse_: int(math.ceil(sparsity * rows))
    documented = std**2 * (rows - zeros) / rows
    assert math.isclose(init.variance(*init.fans(shape)), documented, rel_tol=REL)
    assert init.mean(*init.fans(shape)) == 0.0
    w = init.sample(shape, seed=seed_of("sparse", params))
    is_zero = w == 0.0
    assert np.all(is_zero.sum(axis=0) == zeros), "exactly ceil(sparsity rows) zeros per column"
    # Nonzero entries: N(0, std^2); the sum of squares is std^2 chi2(K), K nonzeros.
    k = cols * (rows - zeros)
    z_sq = (np.sum(w**2) / w.size - documented) / (std**2 * math.sqrt(2 * k) / w.size)
    z_sum = np.sum(w) / (std * math.sqrt(k))
    assert abs(z_sq) < Z_CRIT and abs(z_sum) < Z_CRIT
    assert ks_p(w[~is_zero], stats.norm(0, std).cdf) >= ALPHA_KS
    # Zero positions uniform: the zeros in one row are Binomial(cols, zeros / rows).
    if zeros:
        q = zeros / rows
        for row in (0, rows - 1):
            z_row = (is_zero[row].sum() - cols * q) / math.sqrt(cols * q * (1 - q))
            assert abs(z_row) < Z_CRIT


# --------------------------------------------------------------------------- complex laws


@cache
def complex_trunc_std() -> tuple[Any, Any]:
    """sqrt(E|z|^2) of a complex normal (E|z|^2 = 1) conditioned on |z| <= 2, by quadrature.

    |z| has density 2 r exp(-r^2); no closed form is used.
    """
    with mpmath.workdps(30):
        mass = mpmath.quad(lambda r: 2 * r * mpmath.exp(-r * r), [0, 2])
        second = mpmath.quad(lambda r: 2 * r**3 * mpmath.exp(-r * r), [0, 2])
        return mpmath.sqrt(second / mass), mpmath.sqrt(second)


def test_complex_truncation_constant_and_jax_is_off():
    true, unnormalised = complex_trunc_std()
    c = ini.COMPLEX_TRUNCATED_NORMAL_STD_FACTOR
    assert abs(c - true) / true < 1e-12
    # JAX's constant is sqrt(E[|z|^2 ; |z| <= 2]) without dividing by P(|z| <= 2):
    assert abs(JAX_COMPLEX_TRUNC_STD - unnormalised) / unnormalised < 1e-12
    assert abs(JAX_COMPLEX_TRUNC_STD - true) / true > 9e-3  # 0.92 % too small: variance +1.86 %
    assert math.isclose(float((true / JAX_COMPLEX_TRUNC_STD) ** 2), 1.0186, rel_tol=1e-4)


@dataclass(frozen=True)
class ComplexCase:
    name: str
    params: dict[str, Any]
    kind: str  # "normal", "disc" or "truncated_disc": the documented complex law

    @property
    def id(self) -> str:
        return Case(self.name, self.params, ()).id


COMPLEX_CASES = [
    ComplexCase("torch.normal_", {}, "normal"),
    ComplexCase("torch.normal_", {"mean": 0.3, "std": 0.02}, "normal"),
    ComplexCase("torch.xavier_normal_", {"gain": 0.5}, "normal"),
    ComplexCase("torch.xavier_uniform_", {}, "disc"),
    ComplexCase("torch.kaiming_normal_", {"mode": "fan_out"}, "normal"),
    ComplexCase("torch.kaiming_uniform_", {"nonlinearity": "tanh"}, "disc"),
    ComplexCase("keras.RandomNormal", {"mean": -0.1, "stddev": 0.3}, "normal"),
    ComplexCase("keras.VarianceScaling", {}, "truncated_disc"),
    ComplexCase("keras.VarianceScaling", {"distribution": "normal"}, "truncated_disc"),
    ComplexCase("keras.VarianceScaling", {"distribution": "untruncated_normal"}, "normal"),
    ComplexCase("keras.VarianceScaling", {"distribution": "uniform", "mode": "fan_avg"}, "disc"),
    ComplexCase("keras.HeNormal", {}, "truncated_disc"),
    ComplexCase("keras.GlorotUniform", {}, "disc"),
    ComplexCase("keras.LecunNormal", {}, "truncated_disc"),
    ComplexCase("jax.normal", {}, "normal"),
    ComplexCase("jax.variance_scaling", {}, "truncated_disc"),
    ComplexCase(
        "jax.variance_scaling",
        {"scale": 2.0, "mode": "fan_geo_avg", "distribution": "normal"},
        "normal",
    ),
    ComplexCase(
        "jax.variance_scaling", {"scale": 1.0, "mode": "fan_avg", "distribution": "uniform"}, "disc"
    ),
    ComplexCase("jax.he_normal", {}, "truncated_disc"),
    ComplexCase("jax.glorot_uniform", {}, "disc"),
]


def complex_checks(w: np.ndarray, mean: float, var: float, kind: str) -> dict[str, float]:
    """The z statistics and KS p-values of a complex sample against its documented law."""
    d = np.ravel(w).astype(np.complex128) - mean
    re, im = d.real, d.imag
    out = {
        "z mean Re": z_mean(re, 0.0, var / 2),
        "z mean Im": z_mean(im, 0.0, var / 2),
        "z Var Re = var/2": z_empirical(re * re, var / 2),
        "z Var Im = var/2": z_empirical(im * im, var / 2),
        "z Corr(Re, Im) = 0": z_empirical(re * im, 0.0),
        "z E|W - EW|^2 = var": z_empirical(re * re + im * im, var),
    }
    r2 = re * re + im * im
    angle = stats.uniform(-math.pi, 2 * math.pi).cdf
    if kind == "normal":
        marginal = stats.norm(0.0, math.sqrt(var / 2)).cdf
        out["KS Re"] = ks_p(re, marginal)
        out["KS Im"] = ks_p(im, marginal)
    elif kind == "disc":
        out["KS |W|^2 / (2 var) ~ U(0, 1)"] = ks_p(r2 / (2 * var), stats.uniform(0, 1).cdf)
    else:
        c2 = float(complex_trunc_std()[0] ** 2)
        out["KS |W|^2 c^2 / var ~ Exp(1) | < 4"] = ks_p(r2 * c2 / var, stats.truncexpon(4.0).cdf)
    out["KS angle ~ U(-pi, pi)"] = ks_p(np.angle(d), angle)
    return out


def _assert_passes(checks: dict[str, float]) -> None:
    bad = {
        k: v
        for k, v in checks.items()
        if (k.startswith("z") and abs(v) >= Z_CRIT) or (k.startswith("KS") and v < ALPHA_KS)
    }
    assert not bad, bad


def _rejected(checks: dict[str, float], key: str) -> bool:
    v = checks[key]
    return abs(v) >= Z_CRIT if key.startswith("z") else v < ALPHA_KS


@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
@pytest.mark.parametrize("case", COMPLEX_CASES, ids=[c.id for c in COMPLEX_CASES])
def test_complex_law(case, dtype):
    shape = TORCH_SHAPE if case.name.startswith("torch.") else KERAS_SHAPE
    init = make(case.name, **case.params)
    fans = init.fans(shape)
    var, mean = init.variance(*fans), init.mean(*fans)
    doc = Case(case.name, case.params, shape).doc()
    assert math.isclose(var, doc.var, rel_tol=REL)
    w = init.sample(shape, seed=seed_of(case.id, dtype), dtype=dtype)
    assert w.shape == shape and w.dtype == np.dtype(dtype)
    _assert_passes(complex_checks(w, mean, var, case.kind))
    if case.kind == "disc":
        assert np.max(np.abs(w.astype(np.complex128) - mean)) <= math.sqrt(2 * var) * (1 + 1e-6)
    if case.kind == "truncated_disc":
        bound = 2 * math.sqrt(var) / float(complex_trunc_std()[0])
        assert np.max(np.abs(w.astype(np.complex128))) <= bound * (1 + 1e-6)


def test_complex_checks_have_power():
    var = 0.02
    rng = np.random.default_rng(51)
    re, im = rng.standard_normal(N), rng.standard_normal(N)
    good = (re + 1j * im) * math.sqrt(var / 2)
    _assert_passes(complex_checks(good, 0.0, var, "normal"))
    # all variance in the real part: both part-variance tests and KS reject.
    lopsided = complex_checks(
        re * math.sqrt(0.6 * var) + 1j * im * math.sqrt(0.4 * var), 0.0, var, "normal"
    )
    assert _rejected(lopsided, "z Var Re = var/2") and _rejected(lopsided, "z Var Im = var/2")
    assert _rejected(lopsided, "KS Re") and not _rejected(lopsided, "z E|W - EW|^2 = var")
    # correlated parts with the right marginals: the correlation test rejects.
    rho = 0.02
    corr = (re + 1j * (rho * re + math.sqrt(1 - rho**2) * im)) * math.sqrt(var / 2)
    assert _rejected(complex_checks(corr, 0.0, var, "normal"), "z Corr(Re, Im) = 0")
    # a real sample, or a disc drawn as a square: the angle test rejects.
    square = (rng.uniform(-1, 1, N) + 1j * rng.uniform(-1, 1, N)) * math.sqrt(1.5 * var)
    assert _rejected(complex_checks(square, 0.0, var, "disc"), "KS angle ~ U(-pi, pi)")
    assert _rejected(complex_checks(square, 0.0, var, "disc"), "KS |W|^2 / (2 var) ~ U(0, 1)")
    # JAX's truncation constant: the draws are 1.86 % too wide.
    true = float(complex_trunc_std()[0])
    trunc = make("keras.HeNormal").sample(KERAS_SHAPE, seed=52, dtype="complex128")
    v = make("keras.HeNormal").variance(*keras_fans(KERAS_SHAPE))
    _assert_passes(complex_checks(trunc, 0.0, v, "truncated_disc"))
    jax_like = complex_checks(trunc * (true / JAX_COMPLEX_TRUNC_STD), 0.0, v, "truncated_disc")
    assert _rejected(jax_like, "z E|W - EW|^2 = var")
    assert _rejected(jax_like, "KS |W|^2 c^2 / var ~ Exp(1) | < 4")
    # an untruncated complex normal where the truncated disc is documented.
    plain = complex_checks(good * math.sqrt(v / var), 0.0, v, "truncated_disc")
    assert _rejected(plain, "KS |W|^2 c^2 / var ~ Exp(1) | < 4")


@pytest.mark.parametrize("name", sorted(NO_COMPLEX))
@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_no_complex_law_raises(name, dtype):
    shape = (6, 4) if name.startswith("torch.") else (4, 6)
    with pytest.raises(ValueError, match="complex"):
        make(name).sample(shape, seed=0, dtype=dtype)


# --------------------------------------------------------------------------- dtypes and bounds


def small_shape(name: str) -> tuple[int, ...]:
    if name in ("torch.eye_", "torch.sparse_", "keras.Identity"):
        return (4, 6)
    if name == "keras.STFT":
        return (8, 1, 5)
    return (6, 4, 3) if name.startswith("torch.") else (3, 4, 6)


@pytest.mark.parametrize("dtype", list(ini.DTYPES))
@pytest.mark.parametrize("name", fw.names())
def test_every_dtype(name, dtype):
    init, shape = make(name), small_shape(name)
    if np.dtype(dtype).kind == "c" and name in NO_COMPLEX:
        with pytest.raises(ValueError):
            init.sample(shape, seed=0, dtype=dtype)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w = init.sample(shape, seed=0, dtype=dtype)
    assert w.dtype == np.dtype(dtype) and w.shape == shape
    assert np.all(np.isfinite(w))
    if name in DETERMINISTIC:
        ref = init.sample(shape, seed=0)
        np.testing.assert_array_equal(w, ref.astype(dtype))


BOUNDED = [c for c in CASES if c.doc().kind != "normal"]


@pytest.mark.parametrize("dtype", ["float16", "float32"])
@by_id(BOUNDED)
def test_bounded_laws_stay_inside_their_bounds_after_rounding(case, dtype):
    doc = case.doc()
    w = case.init().sample(case.shape, seed=seed_of(case.id, dtype), dtype=dtype)
    assert w.dtype == np.dtype(dtype)
    w64 = w.astype(np.float64)
    assert doc.low <= w64.min() and w64.max() <= doc.high


# Keras' RandomUniform and JAX's uniform document a half-open interval
# [minval, maxval) / [0, scale); when the upper bound is exactly representable
# in float16, initsim's rounding of float64 draws lands on it.
HALF_OPEN = [
    Case("jax.uniform", {"scale": 3.0}, KERAS_SHAPE),
    Case("keras.RandomUniform", {"minval": 0.0, "maxval": 2.0}, KERAS_SHAPE),
]


@by_id(HALF_OPEN)
def test_half_open_uniform_excludes_its_upper_bound_in_float16(case):
    w = case.init().sample(case.shape, seed=seed_of(case.id), dtype="float16")
    assert float(w.max()) < case.doc().high
