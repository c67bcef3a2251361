"""Tests for initsim.initializers.

Parity: the variance formulas PyTorch, Keras and JAX document are written out
again here, independently of the module. Statistics: every test on samples is
a hypothesis test with a stated false-rejection rate and a fixed seed, and a
negative control shows the same test rejects a planted wrong variance.
"""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy import integrate, stats

import initsim.initializers as ini
from initsim.initializers import ALIASES, LAWS, LawSpec, fans, gain, get, names

# Per-test false-rejection rate of every two-sided statistical test below
# (the probability that a correct sampler fails it for a random seed; the
# seeds are fixed, so runs are reproducible).
ALPHA = 1e-4

# Parameters for the schemes that have a required parameter.
REQUIRED = {
    "constant": {"value": 0.25},
    "sparse": {"sparsity": 0.3},
    "torch_bias_default": {"fan_in": 64},
}
# Random schemes of 2-D weights (delta_orthogonal, a random convolution law, is
# tested with the other framework schemes in tests/test_framework_parity.py).
RANDOM_SCHEMES = [
    n
    for n in names()
    if n not in ("zeros", "ones", "constant", "identity", "dirac", "stft", "delta_orthogonal")
]


def make(name: str, **params: object) -> ini.Initializer:
    return get(name, **{**REQUIRED.get(name, {}), **params})


def to_keras(shape: tuple[int, ...]) -> tuple[int, ...]:
    """(out, in, *kernel) -> (*kernel, in, out)."""
    return (*shape[2:], shape[1], shape[0])


# --------------------------------------------------------------------------- reference formulas
# Written from the frameworks' documentation/source, not from initsim.


def torch_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    receptive = 1
    for k in shape[2:]:
        receptive *= k
    return shape[1] * receptive, shape[0] * receptive


def jax_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    # jax.nn.initializers._compute_fans with in_axis=-2, out_axis=-1
    receptive = math.prod(shape) / shape[-2] / shape[-1]
    return int(shape[-2] * receptive), int(shape[-1] * receptive)


def torch_gain(nonlinearity: str, param: float | None = None) -> float:
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    table = {"tanh": 5.0 / 3, "relu": math.sqrt(2.0), "selu": 3.0 / 4}
    return table.get(nonlinearity, 1.0)


def torch_kaiming_normal_var(shape, a, mode, nonlinearity):
    fan_in, fan_out = torch_fans(shape)
    std = torch_gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else fan_out)
    return std**2


def torch_kaiming_uniform_var(shape, a, mode, nonlinearity):
    fan_in, fan_out = torch_fans(shape)
    std = torch_gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else fan_out)
    bound = math.sqrt(3.0) * std
    return bound**2 / 3


def torch_xavier_normal_var(shape, g):
    fan_in, fan_out = torch_fans(shape)
    return (g * math.sqrt(2.0 / (fan_in + fan_out))) ** 2


def torch_xavier_uniform_var(shape, g):
    fan_in, fan_out = torch_fans(shape)
    a = g * math.sqrt(6.0 / (fan_in + fan_out))
    return a**2 / 3


# scipy's truncnorm is accurate for the standard [-2, 2] case.
TRUNC2_VAR = float(stats.truncnorm.var(-2.0, 2.0))


def keras_variance_scaling_var(shape, scale, mode, distribution):
    fan_in, fan_out = jax_fans(shape)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    scale = scale / max(1.0, n)
    if distribution == "truncated_normal":
        stddev = math.sqrt(scale) / 0.87962566103423978
        return stddev**2 * TRUNC2_VAR
    if distribution == "untruncated_normal":
        return scale
    limit = math.sqrt(3.0 * scale)
    return limit**2 / 3


TORCH_SHAPES = [(7, 5), (6, 3, 5), (8, 4, 3, 3), (4, 2, 3, 3, 2)]


# --------------------------------------------------------------------------- acceptance, fans, gain


def test_acceptance_he_normal_is_exactly_two_over_fan_in():
    assert get("he_normal").variance(100, 50) == 0.02
    for n in (1, 3, 7, 100, 256, 1000, 4096):
        assert get("he_normal").variance(n, 5) == 2.0 / n
        assert get("kaiming_uniform").variance(n, 5) == 2.0 / n
        assert get("he_normal").sigma_w2(n, 5) == pytest.approx(2.0, rel=1e-15)


@pytest.mark.parametrize(
    ("shape", "layout", "expected"),
    [
        ((5, 3), "torch", (3, 5)),
        ((3, 5), "keras", (3, 5)),
        ((16, 8, 3, 3), "torch", (72, 144)),
        ((3, 3, 8, 16), "keras", (72, 144)),
        ((4, 2, 5), "torch", (10, 20)),
        ((2, 3, 1, 4, 6), "torch", (72, 48)),
    ],
)
def test_fans_known_values(shape, layout, expected):
    assert fans(shape, layout) == expected


@pytest.mark.parametrize("shape", TORCH_SHAPES)
def test_fans_match_torch_and_jax_formulas(shape):
    assert fans(shape) == torch_fans(shape)
    assert fans(to_keras(shape), "keras") == jax_fans(to_keras(shape))
    assert fans(shape) == fans(to_keras(shape), "keras")


@pytest.mark.parametrize(
    ("nonlinearity", "param", "expected"),
    [
        ("linear", None, 1.0),
        ("conv1d", None, 1.0),
        ("conv2d", None, 1.0),
        ("conv3d", None, 1.0),
        ("conv_transpose1d", None, 1.0),
        ("conv_transpose2d", None, 1.0),
        ("conv_transpose3d", None, 1.0),
        ("sigmoid", None, 1.0),
        ("tanh", None, 5.0 / 3),
        ("relu", None, math.sqrt(2.0)),
        ("selu", None, 0.75),
        ("leaky_relu", None, math.sqrt(2.0 / (1 + 0.01**2))),
        ("leaky_relu", 0.0, math.sqrt(2.0)),
        ("leaky_relu", 0.2, math.sqrt(2.0 / 1.04)),
        ("LeakY_ReLU", math.sqrt(5.0), math.sqrt(1.0 / 3.0)),
        ("relu", 0.3, math.sqrt(2.0)),  # param ignored, as in PyTorch
    ],
)
def test_gain_matches_torch_calculate_gain(nonlinearity, param, expected):
    assert gain(nonlinearity, param) == pytest.approx(expected, rel=1e-15)


# --------------------------------------------------------------------------- parity


@pytest.mark.parametrize("shape", TORCH_SHAPES)
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize(
    ("nonlinearity", "a"),
    [
        ("leaky_relu", 0.0),
        ("leaky_relu", 0.2),
        ("leaky_relu", math.sqrt(5.0)),
        ("relu", 0.0),
        ("tanh", 0.0),
        ("selu", 0.0),
        ("linear", 0.0),
        ("conv2d", 0.0),
        ("sigmoid", 0.0),
    ],
)
@pytest.mark.parametrize("distribution", ["normal", "truncated_normal"])
def test_he_variance_matches_torch_kaiming(shape, mode, nonlinearity, a, distribution):
    normal = get(
        "kaiming_normal", a=a, mode=mode, nonlinearity=nonlinearity, distribution=distribution
    )
    uniform = get("kaiming_uniform", a=a, mode=mode, nonlinearity=nonlinearity)
    expect_n = torch_kaiming_normal_var(shape, a, mode, nonlinearity)
    expect_u = torch_kaiming_uniform_var(shape, a, mode, nonlinearity)
    for layout, s in (("torch", shape), ("keras", to_keras(shape))):
        assert normal.variance(*fans(s, layout)) == pytest.approx(expect_n, rel=1e-13)
        assert normal.variance_for_shape(s, layout) == pytest.approx(expect_n, rel=1e-13)
        assert uniform.variance(*fans(s, layout)) == pytest.approx(expect_u, rel=1e-13)
    spec = uniform.law_spec(*fans(shape))
    fan = torch_fans(shape)[0 if mode == "fan_in" else 1]
    torch_bound = torch_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    assert spec.high == pytest.approx(torch_bound, rel=1e-13)
    assert spec.low == -spec.high


@pytest.mark.parametrize("shape", TORCH_SHAPES)
@pytest.mark.parametrize("g", [1.0, 0.5, 5.0 / 3, math.sqrt(2.0)])
def test_glorot_variance_matches_torch_xavier(shape, g):
    for layout, s in (("torch", shape), ("keras", to_keras(shape))):
        fi, fo = fans(s, layout)
        assert get("xavier_normal", gain=g).variance(fi, fo) == pytest.approx(
            torch_xavier_normal_var(shape, g), rel=1e-13
        )
        assert get("xavier_uniform", gain=g).variance(fi, fo) == pytest.approx(
            torch_xavier_uniform_var(shape, g), rel=1e-13
        )
    fi, fo = torch_fans(shape)
    assert get("glorot_uniform", gain=g).law_spec(fi, fo).high == pytest.approx(
        g * math.sqrt(6.0 / (fi + fo)), rel=1e-13
    )
    assert get("glorot_normal", gain=g).law_spec(fi, fo).scale == pytest.approx(
        g * math.sqrt(2.0 / (fi + fo)), rel=1e-13
    )


@pytest.mark.parametrize("shape", [to_keras(s) for s in TORCH_SHAPES])
@pytest.mark.parametrize("scale", [1.0, 2.0, 0.37])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution", ["truncated_normal", "untruncated_normal", "uniform"])
def test_variance_scaling_matches_keras_and_jax(shape, scale, mode, distribution):
    init = get("variance_scaling", scale=scale, mode=mode, distribution=distribution)
    expected = keras_variance_scaling_var(shape, scale, mode, distribution)
    assert init.variance(*fans(shape, "keras")) == pytest.approx(expected, rel=1e-13)
    assert init.variance_for_shape(shape, "keras") == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("shape", [to_keras(s) for s in TORCH_SHAPES])
@pytest.mark.parametrize(
    ("name", "scale", "mode"),
    [
        ("he_normal", 2.0, "fan_in"),
        ("glorot_normal", 1.0, "fan_avg"),
        ("lecun_normal", 1.0, "fan_in"),
    ],
)
def test_named_keras_jax_schemes(shape, name, scale, mode):
    # keras/jax `he_normal` etc. are VarianceScaling(scale, mode, "truncated_normal").
    fi, fo = fans(shape, "keras")
    truncated = get(name, distribution="truncated_normal")
    expected = keras_variance_scaling_var(shape, scale, mode, "truncated_normal")
    assert truncated.variance(fi, fo) == pytest.approx(expected, rel=1e-13)
    uniform = get(name.replace("normal", "uniform"))
    expected_u = keras_variance_scaling_var(shape, scale, mode, "uniform")
    assert uniform.variance(fi, fo) == pytest.approx(expected_u, rel=1e-13)
    spec = truncated.law_spec(fi, fo)
    assert spec.law == "truncated_gaussian"
    fan = {"fan_in": fi, "fan_avg": (fi + fo) / 2}[mode]
    keras_stddev = math.sqrt(scale / fan) / 0.87962566103423978
    assert spec.scale == pytest.approx(keras_stddev, rel=1e-13)
    assert (spec.low, spec.high) == (-2.0 * spec.scale, 2.0 * spec.scale)


def test_truncation_constant_is_std_of_truncated_standard_normal():
    assert ini.TRUNCATED_NORMAL_STD_FACTOR == pytest.approx(math.sqrt(TRUNC2_VAR), rel=1e-15)


@pytest.mark.parametrize("shape", TORCH_SHAPES)
def test_torch_linear_default_matches_torch(shape):
    # nn.Linear/ConvNd: kaiming_uniform_(w, a=sqrt(5))
    expected = torch_kaiming_uniform_var(shape, math.sqrt(5.0), "fan_in", "leaky_relu")
    init = get("torch_linear_default")
    fi, fo = fans(shape)
    assert init.variance(fi, fo) == pytest.approx(expected, rel=1e-13)
    assert init.variance(fi, fo) == 1.0 / (3.0 * fi)
    assert init.law_spec(fi, fo).high == pytest.approx(1.0 / math.sqrt(fi), rel=1e-15)


@pytest.mark.parametrize("shape", TORCH_SHAPES)
@pytest.mark.parametrize("g", [1.0, 2.5, -0.5])
@pytest.mark.parametrize("layout", ["torch", "keras"])
def test_orthogonal_variance_matches_flattening_exactly(shape, g, layout):
    s = shape if layout == "torch" else to_keras(shape)
    if layout == "torch":
        rows, cols = s[0], math.prod(s[1:])
    else:
        rows, cols = math.prod(s[:-1]), s[-1]
    init = get("orthogonal", gain=g)
    expected = g**2 / max(rows, cols)
    assert init.variance_for_shape(s, layout) == pytest.approx(expected, rel=1e-15)
    w = init.sample(s, seed=3, layout=layout)
    # sum of squares of a gain-scaled semi-orthogonal matrix is gain^2 min(rows, cols)
    assert np.mean(w**2) == pytest.approx(expected, rel=1e-12)
    if len(s) == 2:
        assert init.variance(*fans(s, layout)) == pytest.approx(expected, rel=1e-15)


def test_orthogonal_conv_variance_differs_from_fan_formula():
    init = get("orthogonal")
    # torch (out=4, in=2, k=3): flattened 4 x 6, fans (6, 12)
    assert init.variance_for_shape((4, 2, 3)) == pytest.approx(1.0 / 6.0)
    assert init.variance(*fans((4, 2, 3))) == pytest.approx(1.0 / 12.0)


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.3, 0.7, 0.95])
@pytest.mark.parametrize(("fan_in", "fan_out"), [(20, 10), (7, 33)])
def test_sparse_variance_formula(sparsity, fan_in, fan_out):
    std = 0.05
    n_zero = math.ceil(sparsity * fan_out)
    expected = std**2 * (fan_out - n_zero) / fan_out
    assert get("sparse", sparsity=sparsity, std=std).variance(fan_in, fan_out) == pytest.approx(
        expected, rel=1e-15
    )


# --------------------------------------------------------------------------- law specs


def variance_from_spec(spec: LawSpec, fan_in: int, fan_out: int) -> float:
    """Variance of one entry computed from the spec alone."""
    if spec.law == "gaussian":
        return spec.scale**2
    if spec.law == "uniform":
        return (spec.high - spec.low) ** 2 / 12
    if spec.law == "truncated_gaussian":
        alpha = (spec.low - spec.loc) / spec.scale
        beta = (spec.high - spec.loc) / spec.scale
        return spec.scale**2 * float(stats.truncnorm.var(alpha, beta))
    if spec.law == "sparse":
        return spec.scale**2 * (fan_out - math.ceil(spec.sparsity * fan_out)) / fan_out
    if spec.law in ("orthogonal", "delta_orthogonal"):
        return spec.gain**2 / max(fan_in, fan_out)
    return 0.0  # constant, identity, dirac, stft


@pytest.mark.parametrize("name", names())
@pytest.mark.parametrize(("fan_in", "fan_out"), [(64, 32), (10, 300)])
def test_law_spec_agrees_with_variance(name, fan_in, fan_out):
    init = make(name)
    spec = init.law_spec(fan_in, fan_out)
    assert spec.law == init.law
    assert spec.law in LAWS
    assert init.variance(fan_in, fan_out) == pytest.approx(
        variance_from_spec(spec, fan_in, fan_out), rel=1e-12, abs=0.0
    )
    assert init.sigma_w2(fan_in, fan_out) == fan_in * init.variance(fan_in, fan_out)


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("zeros", {}, 0.0),
        ("ones", {}, 1.0),
        ("constant", {"value": -2.5}, -2.5),
        ("normal", {"mean": 0.7, "std": 3.0}, 0.7),
        ("uniform", {"a": -1.0, "b": 4.0}, 1.5),
        ("he_normal", {}, 0.0),
        ("orthogonal", {}, 0.0),
        ("identity", {}, 0.0),
        ("dirac", {}, 0.0),
        ("sparse", {"sparsity": 0.2}, 0.0),
    ],
)
def test_means(name, params, expected):
    assert get(name, **params).mean(30, 40) == expected


def test_truncated_mean_is_the_truncated_mean():
    init = get("truncated_normal", mean=0.5, std=1.0, a=0.0, b=3.0)
    expected = 0.5 + float(stats.truncnorm.mean(-0.5, 2.5))
    assert init.mean(1, 1) == pytest.approx(expected, rel=1e-13)
    assert init.law_spec(5, 5) == LawSpec(
        "truncated_gaussian", loc=0.5, scale=1.0, low=0.0, high=3.0
    )


def test_deterministic_schemes_have_zero_variance():
    for name in ("zeros", "ones", "constant", "identity", "dirac"):
        assert make(name).variance(17, 9) == 0.0
        assert make(name).sigma_w2(17, 9) == 0.0


# --------------------------------------------------------------------------- statistical tests


def gaussian_variance_pvalue(x: np.ndarray, mean: float, var: float) -> float:
    """Two-sided p-value of H0: x iid N(mean, var); sum((x-mean)^2)/var ~ chi2(n) exactly."""
    t = float(np.sum((x - mean) ** 2) / var)
    return 2.0 * min(stats.chi2.cdf(t, x.size), stats.chi2.sf(t, x.size))


def moment_variance_pvalue(x: np.ndarray, mean: float, var: float, kurtosis: float) -> float:
    """Two-sided p-value for Var = var with the asymptotic normal law of mean((x-mean)^2).

    Var((x-mean)^2) = var^2 (kurtosis - 1), kurtosis = mu4 / var^2 (3 for a Gaussian).
    """
    z = (np.mean((x - mean) ** 2) - var) / (var * math.sqrt((kurtosis - 1.0) / x.size))
    return float(2.0 * stats.norm.sf(abs(z)))


def mean_pvalue(x: np.ndarray, mean: float, var: float) -> float:
    """Two-sided z-test p-value of E[x] = mean with known variance (CLT)."""
    z = (np.mean(x) - mean) / math.sqrt(var / x.size)
    return float(2.0 * stats.norm.sf(abs(z)))


def quad_truncnorm(mu: float, sigma: float, a: float, b: float) -> tuple[float, float, float]:
    """Mean, variance and kurtosis of a truncated normal by adaptive quadrature.

    Independent of the module; moments are taken about the point c of the
    standardised interval nearest 0, with the density scaled to 1 there.
    """
    al, be = (a - mu) / sigma, (b - mu) / sigma
    c = min(max(0.0, al), be)
    mom = [
        integrate.quad(
            lambda x, k=k: (x - c) ** k * math.exp(-(x * x - c * c) / 2), al, be, epsrel=1e-12
        )[0]
        for k in range(5)
    ]
    m1, m2, m3, m4 = (m / mom[0] for m in mom[1:])
    var = m2 - m1**2
    mu4 = m4 - 4 * m3 * m1 + 6 * m2 * m1**2 - 3 * m1**4
    return mu + sigma * (c + m1), sigma**2 * var, mu4 / var**2


UNIFORM_KURTOSIS = 9.0 / 5.0
TRUNC2_KURTOSIS = 3.0 + float(stats.truncnorm.stats(-2.0, 2.0, moments="k"))


@pytest.mark.parametrize(
    ("name", "params", "shape", "layout"),
    [
        ("he_normal", {}, (300, 200), "torch"),
        ("he_normal", {"mode": "fan_out", "nonlinearity": "tanh"}, (3, 3, 40, 64), "keras"),
        ("glorot_normal", {"gain": 2.0}, (256, 128), "torch"),
        ("lecun_normal", {}, (64, 32, 5), "torch"),
        ("variance_scaling", {"scale": 0.5, "mode": "fan_avg"}, (200, 300), "keras"),
        ("normal", {"mean": 0.3, "std": 2.0}, (250, 240), "torch"),
    ],
)
def test_gaussian_samples_have_the_stated_variance(name, params, shape, layout):
    init = get(name, **params)
    x = init.sample(shape, seed=20240601, layout=layout).ravel()
    assert x.dtype == np.float64
    fi, fo = fans(shape, layout)
    mean, var = init.mean(fi, fo), init.variance(fi, fo)
    assert gaussian_variance_pvalue(x, mean, var) > ALPHA
    assert mean_pvalue(x, mean, var) > ALPHA


@pytest.mark.parametrize(
    ("name", "params", "shape", "layout", "kurtosis"),
    [
        ("he_uniform", {}, (300, 200), "torch", UNIFORM_KURTOSIS),
        ("glorot_uniform", {"gain": 1.5}, (3, 3, 32, 48), "keras", UNIFORM_KURTOSIS),
        ("lecun_uniform", {}, (128, 256), "torch", UNIFORM_KURTOSIS),
        ("torch_linear_default", {}, (64, 32, 3, 3), "torch", UNIFORM_KURTOSIS),
        ("uniform", {"a": -1.0, "b": 3.0}, (200, 250), "torch", UNIFORM_KURTOSIS),
        (
            "variance_scaling",
            {"scale": 2.0, "mode": "fan_out", "distribution": "uniform"},
            (5, 64, 128),
            "keras",
            UNIFORM_KURTOSIS,
        ),
        ("he_normal", {"distribution": "truncated_normal"}, (300, 200), "torch", TRUNC2_KURTOSIS),
        (
            "glorot_normal",
            {"distribution": "truncated_normal"},
            (3, 3, 32, 48),
            "keras",
            TRUNC2_KURTOSIS,
        ),
        (
            "lecun_normal",
            {"distribution": "truncated_normal"},
            (256, 256),
            "torch",
            TRUNC2_KURTOSIS,
        ),
        (
            "variance_scaling",
            {"mode": "fan_avg", "distribution": "truncated_normal"},
            (200, 300),
            "keras",
            TRUNC2_KURTOSIS,
        ),
    ],
)
def test_non_gaussian_samples_have_the_stated_variance(name, params, shape, layout, kurtosis):
    init = get(name, **params)
    x = init.sample(shape, seed=777, layout=layout).ravel()
    fi, fo = fans(shape, layout)
    mean, var = init.mean(fi, fo), init.variance(fi, fo)
    assert moment_variance_pvalue(x, mean, var, kurtosis) > ALPHA
    assert mean_pvalue(x, mean, var) > ALPHA
    spec = init.law_spec(fi, fo)
    assert spec.low <= x.min() and x.max() <= spec.high


def test_negative_control_planted_wrong_variance_is_rejected():
    # He weights (Var = 2/n) tested against the seed's typo Var = 1/n, and
    # against a 5 % error: both must be rejected at ALPHA.
    n = 200
    init = get("he_normal")
    x = init.sample((300, n), seed=20240601).ravel()
    assert gaussian_variance_pvalue(x, 0.0, 2.0 / n) > ALPHA
    assert gaussian_variance_pvalue(x, 0.0, 1.0 / n) < 1e-12
    assert gaussian_variance_pvalue(x, 0.0, 2.1 / n) < ALPHA
    u = get("he_uniform").sample((300, n), seed=777).ravel()
    assert moment_variance_pvalue(u, 0.0, 2.0 / n, UNIFORM_KURTOSIS) > ALPHA
    assert moment_variance_pvalue(u, 0.0, 1.0 / n, UNIFORM_KURTOSIS) < 1e-12
    assert moment_variance_pvalue(u, 0.0, 2.1 / n, UNIFORM_KURTOSIS) < ALPHA


def test_variance_tests_reject_at_their_nominal_rate():
    # Calibration of the two helpers under H0 at level 0.1: 400 replicates,
    # the rejection count must lie in its central binomial 1 - 2e-4 interval.
    level, reps = 0.1, 400
    rng = np.random.default_rng(11)
    rej_g = sum(
        gaussian_variance_pvalue(rng.normal(0, 2, 500), 0.0, 4.0) < level for _ in range(reps)
    )
    rej_u = sum(
        moment_variance_pvalue(rng.uniform(-1, 1, 2000), 0.0, 1 / 3, UNIFORM_KURTOSIS) < level
        for _ in range(reps)
    )
    lo, hi = stats.binom.ppf([ALPHA, 1 - ALPHA], reps, level)
    assert lo <= rej_g <= hi
    assert lo <= rej_u <= hi


def test_orthogonal_entry_law_across_matrices():
    # One entry of a Haar matrix: gain * (coordinate of a uniform unit vector in
    # R^n), n = max(rows, cols): Var = gain^2/n, kurtosis 3n/(n+2).
    g, rows, cols = 1.7, 6, 10
    init = get("orthogonal", gain=g)
    rng = np.random.default_rng(5)
    x = np.array([init.sample((rows, cols), seed=rng)[2, 3] for _ in range(4000)])
    n = max(rows, cols)
    assert moment_variance_pvalue(x, 0.0, g**2 / n, 3.0 * n / (n + 2)) > ALPHA
    assert mean_pvalue(x, 0.0, g**2 / n) > ALPHA
    # negative control: the (wrong) iid-Gaussian-per-fan_in variance g^2 / 6
    assert moment_variance_pvalue(x, 0.0, g**2 / 6, 3.0 * n / (n + 2)) < ALPHA


@pytest.mark.parametrize("layout", ["torch", "keras"])
def test_sparse_sample_law(layout):
    sparsity, std, rows, cols = 0.3, 0.02, 90, 400
    init = get("sparse", sparsity=sparsity, std=std)
    shape = (rows, cols) if layout == "torch" else (cols, rows)
    w = init.sample(shape, seed=8, layout=layout)
    w = w if layout == "torch" else w.T  # now (rows = fan_out, cols = fan_in)
    n_zero = math.ceil(sparsity * rows)
    assert np.all(np.sum(w == 0.0, axis=0) == n_zero)
    # nonzeros are iid N(0, std^2): sum of squares / std^2 ~ chi2((rows - n_zero) cols)
    nonzero = w[w != 0.0]
    assert nonzero.size == (rows - n_zero) * cols
    assert gaussian_variance_pvalue(nonzero, 0.0, std**2) > ALPHA
    var = init.variance_for_shape(shape, layout)
    assert var == init.variance(cols, rows)
    assert np.mean(w**2) == pytest.approx(var, rel=5 * math.sqrt(2.0 / nonzero.size))
    # zero positions are uniform over rows: per-row zero counts O_r have mean
    # E = cols p and covariance cols p (1 - p) R/(R-1) (I - J/R) (sampling
    # without replacement within each column), so T ~ chi2(R - 1) asymptotically.
    assert zero_pattern_pvalue(w == 0.0, n_zero) > ALPHA
    # negative control: always zeroing the first n_zero rows is rejected
    planted = np.zeros_like(w, dtype=bool)
    planted[:n_zero] = True
    assert zero_pattern_pvalue(planted, n_zero) < ALPHA


def zero_pattern_pvalue(zeros: np.ndarray, n_zero: int) -> float:
    rows, cols = zeros.shape
    p = n_zero / rows
    expected = cols * p
    counts = zeros.sum(axis=1)
    t = float(np.sum((counts - expected) ** 2) * (rows - 1) / (rows * expected * (1 - p)))
    return 2.0 * min(stats.chi2.cdf(t, rows - 1), stats.chi2.sf(t, rows - 1))


def test_sparse_uses_torch_float_arithmetic_for_the_zero_count():
    # 0.07 * 100 == 7.000000000000001 in float, so PyTorch zeroes 8 entries per column.
    w = get("sparse", sparsity=0.07).sample((100, 50), seed=0)
    assert np.all(np.sum(w == 0.0, axis=0) == 8)
    assert get("sparse", sparsity=0.07, std=1.0).variance(50, 100) == pytest.approx(0.92)


# --------------------------------------------------------------------------- truncated normal


BOUNDS_CASES = [
    (0.0, 1.0, -2.0, 2.0),
    (0.0, 1.0, 5.0, 6.0),
    (0.0, 1.0, -6.0, -5.0),
    (0.0, 1e-3, 5.0, 6.0),
    (0.0, 1.0, 5000.0, 6000.0),
    (0.0, 1e-12, -2.0, 2.0),
    (0.0, 1e-300, 5.0, 6.0),
    (0.0, 1e-310, -2.0, 2.0),
    (100.0, 1.0, -1.0, 1.0),
    (0.0, 1.0, -1e-12, 1e-12),
    (0.0, 1.0, 0.3, 0.31),
    (3.0, 1e6, -1.0, 1.0),
    (0.0, 1.0, 30.0, 1e300),
    (0.0, 1.0, -0.6, 1e4),
]


@pytest.mark.parametrize(("mean", "std", "a", "b"), BOUNDS_CASES)
def test_truncated_normal_never_leaves_its_bounds(mean, std, a, b):
    init = get("truncated_normal", mean=mean, std=std, a=a, b=b)
    x = init.sample((200, 250), seed=42)
    assert a <= x.min() and x.max() <= b
    assert a <= init.mean(1, 1) <= b
    popoviciu = ((b - a) / 2) ** 2 if b - a < 1e150 else math.inf
    assert 0.0 <= init.variance(1, 1) <= min(std**2, popoviciu)
    if (a - mean) / std < 1e300 and (mean - b) / std < 1e300:
        # no clamping: no probability mass sits on the bounds
        assert not np.any((x == a) | (x == b))


def mp_truncnorm(mu: float, sigma: float, a: float, b: float, mp) -> tuple[float, float]:
    """Mean and variance from the closed forms in 80-digit arithmetic."""
    mp.mp.dps = 80
    al, be = (mp.mpf(a) - mu) / sigma, (mp.mpf(b) - mu) / sigma
    z = mp.ncdf(-al) - mp.ncdf(-be) if al >= 0 else mp.ncdf(be) - mp.ncdf(al)
    pa, pb = mp.npdf(al), mp.npdf(be)
    m = (pa - pb) / z
    v = 1 + (al * pa - be * pb) / z - m * m
    return float(mu + sigma * m), float(sigma * sigma * v)


@pytest.mark.parametrize(
    ("mean", "std", "a", "b"),
    [
        (0.0, 1.0, -2.0, 2.0),
        (0.0, 1.0, 5.0, 6.0),
        (0.0, 1.0, -6.0, -5.0),
        (0.0, 1e-3, 5.0, 6.0),
        (0.0, 1.0, 5000.0, 6000.0),
        (0.0, 1.0, -1e-12, 1e-12),
        (0.0, 1.0, 30.0, 30.0000001),
        (3.0, 2.0, -1.0, 0.5),
        (100.0, 1.0, -1.0, 1.0),
        (0.0, 1.0, 37.0, 1e4),
        (0.0, 0.02, -2.0, 2.0),
        (0.0, 1.0, -0.01, 1e-8),
        (0.0, 1.0, 0.3, 0.31),
    ],
)
def test_truncated_moments_are_exact(mean, std, a, b):
    mp = pytest.importorskip("mpmath")
    init = get("truncated_normal", mean=mean, std=std, a=a, b=b)
    ref_mean, ref_var = mp_truncnorm(mean, std, a, b, mp)
    assert init.mean(1, 1) == pytest.approx(ref_mean, rel=1e-13, abs=1e-300)
    assert init.variance(1, 1) == pytest.approx(ref_var, rel=1e-12)


@pytest.mark.parametrize(
    ("mean", "std", "a", "b"),
    [(0.0, 1.0, -2.0, 2.0), (1.0, 2.0, -1.0, 6.0), (0.5, 1.0, 0.0, 3.0), (0.0, 1.0, 5.0, 6.0)],
)
def test_truncated_moments_match_scipy_where_scipy_is_accurate(mean, std, a, b):
    init = get("truncated_normal", mean=mean, std=std, a=a, b=b)
    al, be = (a - mean) / std, (b - mean) / std
    m, v = stats.truncnorm.stats(al, be, loc=mean, scale=std, moments="mv")
    assert init.mean(1, 1) == pytest.approx(float(m), rel=1e-12)
    assert init.variance(1, 1) == pytest.approx(float(v), rel=1e-12)


@pytest.mark.parametrize(
    ("mean", "std", "a", "b"),
    [
        (0.0, 1.0, -2.0, 2.0),
        (1.0, 2.0, -1.0, 6.0),
        (0.0, 1.0, 5.0, 6.0),
        (100.0, 1.0, -1.0, 1.0),
        (0.0, 1.0, 0.3, 0.31),
        (0.0, 1.0, -0.6, 10.0),
    ],
)
def test_truncated_samples_match_exact_moments(mean, std, a, b):
    init = get("truncated_normal", mean=mean, std=std, a=a, b=b)
    x = init.sample((400, 500), seed=99).ravel()
    exact_mean, exact_var = init.mean(1, 1), init.variance(1, 1)
    q_mean, q_var, kurtosis = quad_truncnorm(mean, std, a, b)
    assert exact_mean == pytest.approx(q_mean, rel=1e-10, abs=1e-12)
    assert exact_var == pytest.approx(q_var, rel=1e-9)
    assert mean_pvalue(x, exact_mean, exact_var) > ALPHA
    assert moment_variance_pvalue(x, exact_mean, exact_var, kurtosis) > ALPHA
    # negative control: clamping N(mean, std^2) to [a, b] has a different variance
    clamped = np.clip(np.random.default_rng(99).normal(mean, std, x.size), a, b)
    assert (
        moment_variance_pvalue(clamped, exact_mean, exact_var, kurtosis) < ALPHA
        or mean_pvalue(clamped, exact_mean, exact_var) < ALPHA
    )


def test_keras_style_truncation_is_relative():
    init = get("he_normal", distribution="truncated_normal")
    x = init.sample((500, 100), seed=1)
    s = math.sqrt(2.0 / 100) / 0.87962566103423978
    assert np.abs(x).max() <= 2.0 * s
    assert np.abs(x).max() > 1.9 * s  # the bounds are reached, not a narrower law
    assert init.law == "truncated_gaussian"


# --------------------------------------------------------------------------- deterministic schemes


@pytest.mark.parametrize(("shape", "g"), [((4, 4), 1.0), ((3, 5), 2.0), ((6, 2), -1.5)])
@pytest.mark.parametrize("layout", ["torch", "keras"])
def test_identity(shape, g, layout):
    w = get("eye", gain=g).sample(shape, layout=layout)
    assert np.array_equal(w, g * np.eye(*shape))


def conv_same(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Cross-correlation with 'same' zero padding; w (out, in, *k) odd k, x (in, *spatial)."""
    kernel = w.shape[2:]
    pad = [(0, 0)] + [(k // 2, k // 2) for k in kernel]
    xp = np.pad(x, pad)
    nd = len(kernel)
    windows = np.lib.stride_tricks.sliding_window_view(xp, kernel, axis=tuple(range(1, nd + 1)))
    # windows: (in, *spatial, *kernel)
    return np.tensordot(w, windows, axes=([1, *range(2, 2 + nd)], [0, *range(1 + nd, 1 + 2 * nd)]))


@pytest.mark.parametrize("kernel", [(3,), (3, 5), (3, 3, 1)])
def test_dirac_conv_is_identity(kernel):
    channels = 4
    w = get("dirac", gain=2.0).sample((channels, channels, *kernel))
    x = np.random.default_rng(0).normal(size=(channels, *[7] * len(kernel)))
    assert np.allclose(conv_same(w, x), 2.0 * x)
    assert np.count_nonzero(w) == channels


def test_dirac_groups_match_torch_loop():
    w = get("dirac", groups=2).sample((4, 2, 3))
    expected = np.zeros((4, 2, 3))
    for g in range(2):
        for d in range(2):
            expected[g * 2 + d, d, 1] = 1.0
    assert np.array_equal(w, expected)
    # more outputs per group than inputs: only min(out // groups, in) copies
    w = get("dirac", groups=1).sample((5, 2, 3, 3))
    assert np.count_nonzero(w) == 2


@pytest.mark.parametrize("shape", [(6, 3, 3), (4, 4, 3, 5), (2, 4, 3, 3, 3)])
@pytest.mark.parametrize("groups", [1, 2])
def test_dirac_keras_layout_is_the_transpose(shape, groups):
    init = get("dirac", groups=groups)
    torch_w = init.sample(shape)
    keras_w = init.sample(to_keras(shape), layout="keras")
    axes = (*range(2, len(shape)), 1, 0)
    assert np.array_equal(keras_w, np.transpose(torch_w, axes))


def test_orthogonal_keras_2d_is_torch_transpose():
    # (square shapes are flattened identically in both layouts, so there the
    # two samples are equal rather than transposed)
    for shape in [(5, 9), (9, 5)]:
        a = get("orthogonal").sample(shape, seed=4)
        b = get("orthogonal").sample(shape[::-1], seed=4, layout="keras")
        assert np.array_equal(a, b.T)


def test_sparse_keras_layout_is_the_transpose():
    init = get("sparse", sparsity=0.25, std=1.0)
    a = init.sample((12, 30), seed=6)
    b = init.sample((30, 12), seed=6, layout="keras")
    assert np.array_equal(a, b.T)


# --------------------------------------------------------------------------- registry and API


def test_names_aliases_and_get():
    assert names() == sorted(names())
    assert {
        "zeros", "ones", "constant", "normal", "uniform", "truncated_normal", "lecun_normal",
        "lecun_uniform", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform",
        "variance_scaling", "orthogonal", "identity", "dirac", "sparse", "torch_linear_default",
        "torch_bias_default", "delta_orthogonal", "stft",
    } == set(names())  # fmt: skip
    for alias, canonical in ALIASES.items():
        assert canonical in names()
        assert alias not in names()
        assert type(make(alias)) is type(make(canonical))
    assert get("kaiming_normal") == get("he_normal")
    assert get("XAVIER_Uniform") == get("glorot_uniform")
    # A Keras class name means Keras' law: truncated, read in Keras' layout.
    assert get("HeNormal") == get("he_normal", distribution="truncated_normal").with_fan_rule(
        ini.FanRule("keras", low_rank="keras")
    )
    assert get("HeNormal").framework_name == "keras.HeNormal"
    assert get("kaiming_normal_", mode="fan_out") == get("he_normal", mode="fan_out")
    init = get("orthogonal", gain=2.0)
    assert get(init) is init
    assert get("he_normal").aliases == ("kaiming_normal",)
    for name in names():
        assert make(name).name == name


def test_params_and_value_semantics():
    init = get("he_normal", mode="FAN_OUT", a=0.1)
    assert init.params == {
        "a": 0.1,
        "mode": "fan_out",
        "nonlinearity": "leaky_relu",
        "distribution": "normal",
    }
    assert get("variance_scaling", distribution="untruncated_normal").params["distribution"] == (
        "normal"
    )
    init.params["a"] = 5.0  # a copy
    assert init.params["a"] == 0.1
    with pytest.raises(AttributeError):
        init.a = 3.0  # type: ignore[attr-defined]
    assert init == get("he_normal", mode="fan_out", a=0.1)
    assert init != get("he_normal")
    assert len({init, get("he_normal", mode="fan_out", a=0.1)}) == 1
    for name in names():
        obj = make(name)
        assert pickle.loads(pickle.dumps(obj)) == obj
        assert copy.deepcopy(obj) == obj
        assert name in repr(obj) or type(obj).__name__ in repr(obj)


def test_catalogue_and_describe():
    rows = ini.catalogue()
    assert [r["name"] for r in rows] == names()
    by_name = {r["name"]: r for r in rows}
    assert by_name["he_normal"]["variance_law"] == "2 / fan_in"
    assert by_name["he_normal"]["variance"] == 2.0 / 256
    assert by_name["he_normal"]["sigma_w2"] == 2.0
    assert by_name["he_normal"]["aliases"] == ["kaiming_normal"]
    assert by_name["glorot_uniform"]["variance_law"] == "2 / (fan_in + fan_out)"
    assert by_name["torch_linear_default"]["variance"] == pytest.approx(1 / 768)
    wide = {r["name"]: r for r in ini.catalogue(fan_in=100, fan_out=50)}
    assert wide["he_normal"]["variance"] == 0.02
    assert wide["glorot_normal"]["sigma_w2"] == pytest.approx(100 * 2 / 150)
    assert by_name["orthogonal"]["law"] == "orthogonal"
    for r in rows:
        assert r["law"] in LAWS
        assert r["variance"] == pytest.approx(get(r["name"], **r["params"]).variance(256, 256))
    assert get("glorot_normal", gain=2.0).variance_law == "8 / (fan_in + fan_out)"
    assert "2 / fan_in" in get("kaiming_normal").describe()


def test_fan_free_schemes_accept_1d_shapes_and_others_do_not():
    assert get("normal").sample(7, seed=0).shape == (7,)
    assert get("truncated_normal").sample((5,), seed=0).shape == (5,)
    assert np.all(get("ones").sample((3,)) == 1.0)
    with pytest.raises(ValueError, match="shape"):
        get("he_normal").sample((5,))


# --------------------------------------------------------------------------- hypothesis

dims = st.integers(min_value=1, max_value=12)
fan = st.integers(min_value=1, max_value=10_000)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


@given(
    scale=st.floats(min_value=1e-6, max_value=1e6, allow_nan=False),
    mode=st.sampled_from(["fan_in", "fan_out", "fan_avg"]),
    distribution=st.sampled_from(["normal", "truncated_normal", "uniform"]),
    fan_in=fan,
    fan_out=fan,
)
def test_variance_scaling_is_scale_over_fan(scale, mode, distribution, fan_in, fan_out):
    init = get("variance_scaling", scale=scale, mode=mode, distribution=distribution)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    assert init.variance(fan_in, fan_out) == pytest.approx(scale / n, rel=1e-15)
    assert init.sigma_w2(fan_in, fan_out) == fan_in * init.variance(fan_in, fan_out)
    assert variance_from_spec(init.law_spec(fan_in, fan_out), fan_in, fan_out) == pytest.approx(
        scale / n, rel=1e-12
    )


@given(
    a=st.floats(min_value=-10, max_value=10, allow_nan=False),
    nonlinearity=st.sampled_from(ini.NONLINEARITIES),
    mode=st.sampled_from(["fan_in", "fan_out"]),
    fan_in=fan,
    fan_out=fan,
)
def test_he_variance_is_gain_squared_over_fan(a, nonlinearity, mode, fan_in, fan_out):
    init = get("he_uniform", a=a, mode=mode, nonlinearity=nonlinearity)
    n = fan_in if mode == "fan_in" else fan_out
    assert init.variance(fan_in, fan_out) == pytest.approx(
        torch_gain(nonlinearity, a) ** 2 / n, rel=1e-14
    )
    assert gain(nonlinearity, a) == pytest.approx(torch_gain(nonlinearity, a), rel=1e-15)


@given(name=st.sampled_from(names()), fan_in=fan, fan_out=fan)
def test_sigma_w2_is_fan_in_times_variance(name, fan_in, fan_out):
    init = make(name)
    var = init.variance(fan_in, fan_out)
    assert var >= 0.0
    assert init.sigma_w2(fan_in, fan_out) == fan_in * var
    assert math.isfinite(init.mean(fan_in, fan_out))


@given(out=dims, inp=dims, kernel=st.lists(dims, min_size=0, max_size=3))
def test_fans_torch_and_keras_layouts_agree(out, inp, kernel):
    torch_shape = (out, inp, *kernel)
    keras_shape = (*kernel, inp, out)
    receptive = math.prod(kernel)
    assert fans(torch_shape) == (inp * receptive, out * receptive)
    assert fans(keras_shape, "keras") == fans(torch_shape)
    # swapping in/out swaps the fans
    assert fans((inp, out, *kernel)) == fans(torch_shape)[::-1]


@given(
    shape=st.lists(st.integers(1, 9), min_size=2, max_size=4).map(tuple),
    g=st.floats(min_value=0.01, max_value=100, allow_nan=False) | st.floats(-100, -0.01),
    seed=seeds,
    layout=st.sampled_from(["torch", "keras"]),
)
def test_orthogonal_rows_or_columns_are_orthonormal(shape, g, seed, layout):
    w = get("orthogonal", gain=g).sample(shape, seed=seed, layout=layout)
    assert w.shape == shape
    if layout == "torch":
        m = w.reshape(shape[0], -1)
    else:
        m = w.reshape(-1, shape[-1])
    rows, cols = m.shape
    gram = m @ m.T if rows <= cols else m.T @ m
    assert np.allclose(gram, g**2 * np.eye(min(rows, cols)), rtol=0, atol=1e-10 * g**2)


@given(
    name=st.sampled_from(["zeros", "ones", "constant"]),
    value=st.floats(-1e6, 1e6, allow_nan=False),
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple),
    layout=st.sampled_from(["torch", "keras"]),
)
def test_constant_schemes_give_identical_rows(name, value, shape, layout):
    init = get(name, value=value) if name == "constant" else get(name)
    w = init.sample(shape, layout=layout)
    expected = {"zeros": 0.0, "ones": 1.0, "constant": value}[name]
    assert np.all(w == w[0])
    assert np.all(w == expected)
    assert init.mean(3, 4) == expected


@given(
    name=st.sampled_from(RANDOM_SCHEMES),
    seed=seeds,
    other=seeds,
    layout=st.sampled_from(["torch", "keras"]),
)
def test_same_seed_same_sample_different_seed_different_sample(name, seed, other, layout):
    assume(seed != other)
    init = make(name)
    shape = (6, 5)
    a = init.sample(shape, seed=seed, layout=layout)
    assert np.array_equal(a, init.sample(shape, seed=seed, layout=layout))
    assert np.array_equal(a, init.sample(shape, seed=np.random.SeedSequence(seed), layout=layout))
    assert not np.array_equal(a, init.sample(shape, seed=other, layout=layout))


@given(
    mean=st.floats(-1e3, 1e3, allow_nan=False),
    log_std=st.floats(-300, 3),
    a=st.floats(-1e3, 1e3, allow_nan=False),
    log_width=st.floats(-12, 3),
    seed=seeds,
)
def test_truncated_normal_bounds_and_moment_invariants(mean, log_std, a, log_width, seed):
    std = 10.0**log_std
    b = a + 10.0**log_width
    assume(a < b)
    init = get("truncated_normal", mean=mean, std=std, a=a, b=b)
    x = init.sample(300, seed=seed)
    assert a <= x.min() and x.max() <= b
    m, v = init.mean(1, 1), init.variance(1, 1)
    assert a <= m <= b
    assert 0.0 <= v <= min(std**2, (b - a) ** 2 / 4) * (1 + 1e-12)


# --------------------------------------------------------------------------- bad input

BAD_INPUT = [
    (lambda: get("nope"), r"unknown initializer name 'nope'.*he_normal"),
    (lambda: get(3), "name"),
    (lambda: get(get("he_normal"), mode="fan_out"), "params"),
    (lambda: get("he_normal", gain=2.0), "'gain'.*valid parameters: a, mode"),
    (lambda: get("zeros", value=1.0), "'value'"),
    (lambda: get("he_normal", mode="fan_avg"), "mode"),
    (lambda: get("variance_scaling", mode="fan_max"), "mode"),
    (lambda: get("variance_scaling", distribution="cauchy"), "distribution"),
    (lambda: get("he_normal", distribution="uniform"), "distribution"),
    (lambda: get("he_normal", nonlinearity="swish"), "nonlinearity.*leaky_relu"),
    (lambda: get("he_normal", a=float("nan")), "a must be finite"),
    (lambda: get("sparse"), "sparsity"),
    (lambda: get("constant"), "value"),
    (lambda: get("sparse", sparsity=1.0), r"sparsity must be in \[0, 1\)"),
    (lambda: get("sparse", sparsity=-0.1), "sparsity"),
    (lambda: get("sparse", sparsity=float("nan")), "sparsity"),
    (lambda: get("sparse", sparsity=0.1, std=0.0), "std"),
    (lambda: get("normal", std=0.0), "std must be > 0"),
    (lambda: get("normal", std=-1.0), "std"),
    (lambda: get("normal", std=float("inf")), "std"),
    (lambda: get("normal", mean=float("nan")), "mean"),
    (lambda: get("normal", std="1"), "std"),
    (lambda: get("truncated_normal", std=0.0), "std"),
    (lambda: get("truncated_normal", mean=float("inf")), "mean"),
    (lambda: get("truncated_normal", a=1.0, b=1.0), "a < b"),
    (lambda: get("truncated_normal", a=2.0, b=-2.0), "a < b"),
    (lambda: get("truncated_normal", b=float("inf")), "b must be finite"),
    (lambda: get("uniform", a=1.0, b=0.0), "a < b"),
    (lambda: get("uniform", a=float("-inf")), "a must be finite"),
    (lambda: get("variance_scaling", scale=0.0), "scale must be > 0"),
    (lambda: get("variance_scaling", scale=float("inf")), "scale"),
    (lambda: get("constant", value=float("nan")), "value"),
    (lambda: get("glorot_normal", gain=0.0), "gain"),
    (lambda: get("glorot_uniform", gain=-1.0), "gain"),
    (lambda: get("orthogonal", gain=0.0), "gain must be nonzero"),
    (lambda: get("identity", gain=float("nan")), "gain"),
    (lambda: get("dirac", groups=0), "groups"),
    (lambda: get("dirac", groups=1.5), "groups"),
    (lambda: get("dirac", groups=3).sample((4, 4, 3)), "groups"),
    (lambda: fans((5,)), "shape"),
    (lambda: fans((3, 0)), "shape"),
    (lambda: fans((3, -2, 3)), "shape"),
    (lambda: fans((3, 4), layout="tf"), "layout"),
    (lambda: fans(None), "shape"),
    (lambda: get("he_normal").variance(0, 5), "fan_in"),
    (lambda: get("he_normal").variance(5, -1), "fan_out"),
    (lambda: get("he_normal").variance(2.5, 3), "fan_in"),
    (lambda: get("normal").variance(True, 3), "fan_in"),
    (lambda: get("he_normal").law_spec(0, 3), "fan_in"),
    (lambda: get("he_normal").sigma_w2(3, 0), "fan_out"),
    (lambda: get("he_normal").sample((3, -1)), "shape"),
    (lambda: get("normal").sample((2, 1.5, 3)), "shape"),
    (lambda: get("he_normal").sample((3, 4), layout="jax"), "layout"),
    (lambda: get("he_normal").sample((3, 4), seed=-1), "seed"),
    (lambda: get("orthogonal").sample((4,)), "shape"),
    (lambda: get("orthogonal").variance_for_shape((4,)), "shape"),
    (lambda: get("identity").sample((3, 3, 3)), "shape"),
    (lambda: get("dirac").sample((3, 3)), "shape"),
    (lambda: get("dirac").sample((2, 2, 2, 2, 2, 2)), "shape"),
    (lambda: get("sparse", sparsity=0.5).sample((3, 3, 3)), "shape"),
    (lambda: gain("swish"), "nonlinearity.*tanh"),
    (lambda: gain("leaky_relu", float("nan")), "param"),
    (lambda: gain("leaky_relu", "0.1"), "param"),
]


@pytest.mark.parametrize(("call", "match"), BAD_INPUT)
def test_bad_input_raises_value_error_naming_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------- law vocabulary

DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")


def emitted_laws() -> dict[str, str]:
    """Every law an initializer of the catalogue can emit -> one scheme that emits it.

    Each scheme with its defaults (or :data:`REQUIRED`), and once per value of
    its ``distribution`` parameter where it has one (variance_scaling,
    lecun_normal, glorot_normal, he_normal).
    """
    laws: dict[str, str] = {}
    for name in names():
        variants = [make(name)]
        if "distribution" in make(name).params:
            for d in DISTRIBUTIONS:
                try:
                    variants.append(make(name, distribution=d))
                except ValueError:  # e.g. he_normal has no uniform distribution
                    continue
        for init in variants:
            for fan_in, fan_out in ((64, 32), (10, 300)):
                laws.setdefault(init.law_spec(fan_in, fan_out).law, repr(init))
    return laws


def test_every_emitted_law_has_an_engine_law_code():
    from initsim.engine.laws import LAW_CODES, encode

    laws = emitted_laws()
    assert set(laws) == set(LAWS)  # the enumeration reaches every law of the vocabulary
    for law, example in laws.items():
        if law in ini.CONVOLUTION_LAWS:  # the engine refuses them, with the reason
            with pytest.raises(ValueError, match="convolution"):
                encode(LawSpec(law))
            continue
        assert law in LAW_CODES, f"{law!r} (emitted by {example}) has no engine law code"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (LawSpec("gaussian", scale=0.3), True),
        (LawSpec("gaussian", loc=0.1, scale=0.3), False),
        (LawSpec("uniform", low=-0.5, high=0.5), True),
        (LawSpec("uniform", low=0.0, high=1.0), False),
        (LawSpec("uniform", low=-0.5, high=1.0), False),
        (LawSpec("truncated_gaussian", scale=1.0, low=-2.0, high=2.0), True),
        (LawSpec("truncated_gaussian", scale=1.0, low=-math.inf, high=math.inf), True),
        (LawSpec("truncated_gaussian", scale=1.0, low=-1.0, high=2.0), False),
        (LawSpec("truncated_gaussian", loc=0.5, scale=1.0, low=-2.0, high=2.0), False),
        (LawSpec("orthogonal", gain=2.0), True),
        (LawSpec("sparse", scale=0.01, sparsity=0.1), True),
        (LawSpec("constant", value=0.0), False),  # deterministic, even at 0
        (LawSpec("constant", value=1.0), False),
        (LawSpec("identity"), False),
        (LawSpec("dirac"), False),
    ],
)
def test_law_spec_is_centred(spec, expected):
    assert spec.is_centred() is expected


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("uniform", {"a": 0.0, "b": 1.0}, False),  # mean 0.5, though LawSpec.loc == 0
        ("uniform", {"a": -0.3, "b": 0.3}, True),
        ("normal", {"mean": 0.1}, False),
        ("normal", {}, True),
        ("truncated_normal", {}, True),
        ("truncated_normal", {"a": -1.0, "b": 2.0}, False),
        ("truncated_normal", {"mean": 0.5, "a": -1.5, "b": 2.5}, False),
        ("he_normal", {}, True),
        ("he_normal", {"distribution": "truncated_normal"}, True),
        ("he_uniform", {}, True),
        ("lecun_normal", {}, True),
        ("lecun_uniform", {}, True),
        ("glorot_normal", {}, True),
        ("glorot_uniform", {}, True),
        ("variance_scaling", {"distribution": "uniform"}, True),
        ("torch_linear_default", {}, True),
        ("orthogonal", {"gain": -0.5}, True),
        ("sparse", {"sparsity": 0.3}, True),
        ("zeros", {}, False),
        ("ones", {}, False),
        ("constant", {"value": 0.25}, False),
        ("identity", {}, False),
        ("dirac", {}, False),
    ],
)
def test_is_centred_of_catalogue_laws(name, params, expected):
    init = make(name, **params)
    assert init.law_spec(30, 40).is_centred() is expected


@pytest.mark.parametrize("name", names())
def test_centred_laws_have_zero_mean(name):
    init = make(name)
    for fan_in, fan_out in ((64, 32), (10, 300)):
        if init.law_spec(fan_in, fan_out).is_centred():
            assert init.mean(fan_in, fan_out) == 0.0
            assert init.variance(fan_in, fan_out) > 0.0
