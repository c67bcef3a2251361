"""Tests for initsim.activations: compiled scalars, numpy twins, metadata, registry."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numba import prange
from scipy import special

from initsim import activations as A
from initsim._jit import jit

EPS = np.finfo(np.float64).eps
TINY = np.finfo(np.float64).tiny
SUBNORMAL = np.finfo(np.float64).smallest_subnormal

# Every canonical activation with default parameters, plus non-default parameters
# that exercise the param-dependent branches (and slope 0 / slope 1 edge cases).
ACTS = [A.get(n) for n in A.names()] + [
    A.get("leaky_relu", slope=0.2),
    A.get("leaky_relu", slope=0.0),
    A.get("leaky_relu", slope=1.0),
    A.get("leaky_relu", slope=-0.5),
    A.get("elu", alpha=0.5),
    A.get("elu", alpha=2.5),
]
IDS = [a.label for a in ACTS]
HYP = settings(deadline=None)  # example counts come from the active profile


@pytest.fixture(scope="module", autouse=True)
def compiled() -> None:
    """Compile (or load from cache) the array helpers once for the module."""
    x = np.linspace(-2.0, 2.0, 5)
    for code in sorted({A.get(n).code for n in A.names()}):
        A.phi_array(code, 1.0, x, np.empty_like(x))
        A.dphi_array(code, 1.0, x, np.empty_like(x))


def c_phi(act: A.Activation, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float64).ravel()
    return A.phi_array(act.code, act.param, x, np.empty_like(x))


def c_dphi(act: A.Activation, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float64).ravel()
    return A.dphi_array(act.code, act.param, x, np.empty_like(x))


# --- compiled scalars vs numpy twins ------------------------------------------------

# Compiled and numpy versions use the same formulas, so most agree bit for bit.
# The exceptions are the special functions, which come from different libraries:
# numba's math.tanh/erf/erfc call the C library, the twins call np.tanh and
# scipy.special.erf/erfc. Those differ by <= 3 ulp for tanh and erf. scipy's
# erfc is less accurate in the far tail (up to ~500 ulp for arguments near 26,
# while the C library stays within 3 ulp, checked against mpmath below) and
# flushes to zero where the C library returns subnormals; gelu's derivative also
# cancels near its root x ~ -0.75. Hence gelu gets rtol 1e-12 plus a small atol.
#
# exp, expm1 and log1p differ too where numpy dispatches them to its SIMD (AVX-512)
# kernels while numba calls the C library (numpy 2.4, numba 0.68, glibc 2.36 on an
# AVX-512 Xeon; elsewhere they may agree bit for bit). Measured worst cases of
# phi and phi', over GRID and over a dense grid (2.7e7 points: linspaces on [-750, 750],
# +-logspace(-320, 3), uniform draws, and dense around silu's root and x in [-712, -705]),
# for every parameter in ACTS; rtol = (worst ulp) * eps, atol covers results below the
# smallest normal (x < -708, exp(x) subnormal: 1 ulp there is a whole subnormal step):
#   elu (expm1, exp)        <= 2 ulp (1 for alpha <= 1; alpha scales the 1-step subnormal
#                           difference of exp to <= 3 steps). GRID: 36 of 2442 phi values
#                           differ at alpha 1, by 1 ulp.
#   selu (expm1, exp)       <= 2 ulp, subnormal <= 2 steps (lambda alpha ~ 1.76).
#   sigmoid (exp)           <= 4 ulp (phi'; phi <= 2), subnormal <= 1 step.
#   softplus (log1p, exp)   <= 3 ulp (phi; phi' <= 2), subnormal <= 1 step.
#   silu (exp)              <= 3 ulp, but phi' = s (1 + x (1 - s)) cancels for x in
#                           [-5.1, -0.9] around its root x ~ -1.28 (up to 1.4e4 ulp,
#                           absolute <= eps / 2, reached), and x * s with s subnormal
#                           keeps the error of s (absolute <= 4e-321).
#   gelu_tanh (exp)         <= 3 ulp relative (phi <= 2 on 6e6 points in [-40, 40]);
#                           phi' cancels near its root x ~ -0.75 like silu's (absolute
#                           <= eps / 2 for x in [-2.8, -0.6], measured 0.5 eps).
#   atan, asinh             <= 1 ulp (np.arctan / np.arcsinh vs the C library; 1.08 ulp
#                           relative to the value for asinh), on 5.4e6 points incl.
#                           +-logspace(-320, 308).
#   abs, sin, cos, softsign, bent_identity, square: bit for bit on the same points.
TWIN_TOL = {
    "gelu_tanh": (3 * EPS, EPS / 2),
    "atan": (2 * EPS, 0.0),
    "asinh": (2 * EPS, 0.0),
    "tanh": (4 * EPS, 0.0),
    "erf": (4 * EPS, 0.0),
    "gelu": (1e-12, 1e-15),
    "elu": (2 * EPS, 3 * SUBNORMAL),
    "selu": (2 * EPS, 2 * SUBNORMAL),
    "sigmoid": (4 * EPS, SUBNORMAL),
    "softplus": (3 * EPS, SUBNORMAL),
    "silu": (3 * EPS, EPS / 2),
}

GRID = np.array(
    [
        *(-np.inf, -1e308, -1e300, -1e6, -1e3, -750.5, -745.0, -709.0, -100.0, -40.5, -39.0),
        *(-37.7, -30.0, -20.0, -10.0, -1.5, -1.0, -0.75, -0.5, -1e-300, -5e-324, -0.0, 0.0),
        *(5e-324, 1e-300, 1e-8, 0.5, 1.0, 1.5, 10.0, 20.0, 40.5, 100.0, 709.0, 750.5, 1e3),
        *(1e6, 1e300, 1e308, np.inf, np.nan),
    ]
)
GRID = np.concatenate([GRID, np.linspace(-12.0, 12.0, 2401)])


def assert_twin(act: A.Activation, x: np.ndarray) -> None:
    rtol, atol = TWIN_TOL.get(act.name, (0.0, 0.0))
    np.testing.assert_allclose(c_phi(act, x), act.phi(x), rtol=rtol, atol=atol)
    np.testing.assert_allclose(c_dphi(act, x), act.dphi(x), rtol=rtol, atol=atol)


@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_compiled_matches_twin_on_grid(act: A.Activation) -> None:
    assert_twin(act, GRID)


@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_scalar_dispatcher_matches_array_helper(act: A.Activation) -> None:
    # phi_scalar / dphi_scalar called directly (not through phi_array).
    xs = [-1e3, -2.0, -1.0, 0.0, 0.3, 1.0, 1e3, math.inf, -math.inf]
    got = np.array([A.phi_scalar(act.code, act.param, v) for v in xs])
    dgot = np.array([A.dphi_scalar(act.code, act.param, v) for v in xs])
    np.testing.assert_array_equal(got, c_phi(act, np.array(xs)))
    np.testing.assert_array_equal(dgot, c_dphi(act, np.array(xs)))
    assert math.isnan(A.phi_scalar(act.code, act.param, math.nan))
    assert math.isnan(A.dphi_scalar(act.code, act.param, math.nan))


@pytest.mark.parametrize("act", ACTS, ids=IDS)
@HYP
@given(
    x=st.lists(
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
        | st.floats(min_value=-1e300, max_value=1e300, allow_nan=False),
        min_size=1,
        max_size=20,
    )
)
def test_compiled_matches_twin_hypothesis(act: A.Activation, x: list[float]) -> None:
    assert_twin(act, np.array(x))


def test_unknown_code_gives_nan() -> None:
    assert math.isnan(A.phi_scalar(99, 0.0, 1.0))
    assert math.isnan(A.dphi_scalar(-1, 0.0, 1.0))


def test_usable_from_cached_parallel_kernel() -> None:
    @jit(parallel=True)
    def kernel(code: int, param: float, x: np.ndarray, out: np.ndarray) -> None:
        for i in prange(x.shape[0]):
            out[i] = A.phi_scalar(code, param, x[i]) + A.dphi_scalar(code, param, x[i])

    act = A.get("gelu")
    x = np.linspace(-5.0, 5.0, 1001)
    out = np.empty_like(x)
    kernel(act.code, act.param, x, out)
    np.testing.assert_array_equal(out, c_phi(act, x) + c_dphi(act, x))


# --- conventions: nan, inf, kinks, no warnings ---------------------------------------

LAMBDA_ALPHA = 1.7580993408473768  # correctly rounded lambda * alpha (mpmath)
# (phi(-inf), phi(+inf), phi'(-inf), phi'(+inf)) as functions of param
LIMITS = {
    "linear": lambda p: (-np.inf, np.inf, 1.0, 1.0),
    "relu": lambda p: (0.0, np.inf, 0.0, 1.0),
    "leaky_relu": lambda p: (0.0 if p == 0 else -np.sign(p) * np.inf, np.inf, p, 1.0),
    "elu": lambda p: (-p, np.inf, 0.0, 1.0),
    "selu": lambda p: (-LAMBDA_ALPHA, np.inf, 0.0, A.SELU_LAMBDA),
    "gelu": lambda p: (0.0, np.inf, 0.0, 1.0),
    "silu": lambda p: (0.0, np.inf, 0.0, 1.0),
    "softplus": lambda p: (0.0, np.inf, 0.0, 1.0),
    "sigmoid": lambda p: (0.0, 1.0, 0.0, 0.0),
    "tanh": lambda p: (-1.0, 1.0, 0.0, 0.0),
    "erf": lambda p: (-1.0, 1.0, 0.0, 0.0),
    "hard_tanh": lambda p: (-1.0, 1.0, 0.0, 0.0),
    "abs": lambda p: (np.inf, np.inf, -1.0, 1.0),
    "sin": lambda p: (np.nan, np.nan, np.nan, np.nan),  # no limits: NaN, documented
    "cos": lambda p: (np.nan, np.nan, np.nan, np.nan),
    "softsign": lambda p: (-1.0, 1.0, 0.0, 0.0),
    "atan": lambda p: (-math.pi / 2, math.pi / 2, 0.0, 0.0),
    "asinh": lambda p: (-np.inf, np.inf, 0.0, 0.0),
    "bent_identity": lambda p: (-np.inf, np.inf, 0.5, 1.5),
    "square": lambda p: (np.inf, np.inf, -np.inf, np.inf),
    "gelu_tanh": lambda p: (0.0, np.inf, 0.0, 1.0),
}
#: Activations without limits at +-inf (phi and phi' are NaN there, as documented).
NO_LIMIT = {"sin", "cos"}
#: Activations whose value overflows to inf for |x| <= 1e300 (square: x^2).
TRUE_OVERFLOW = {"square"}


def test_limits_table_covers_registry() -> None:
    assert set(LIMITS) == set(A.names())


@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_inf_and_nan(act: A.Activation) -> None:
    x = np.array([-np.inf, np.inf, np.nan])
    lo, hi, dlo, dhi = LIMITS[act.name](act.param)
    for phi, dphi in ((act.phi, act.dphi), (lambda v: c_phi(act, v), lambda v: c_dphi(act, v))):
        y, dy = phi(x), dphi(x)
        np.testing.assert_array_equal(y, [lo, hi, np.nan])
        np.testing.assert_array_equal(dy, [dlo, dhi, np.nan])


@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_no_floating_point_errors_at_extremes(act: A.Activation) -> None:
    x = np.array([-np.inf, -1e300, -1e3, -745.5, 5e-324, 1e3, 1e300, np.inf, np.nan])
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        y, dy = act.phi(x), act.dphi(x)
        y1, dy1 = act.phi(1e3), act.dphi(-1e3)  # scalar path
    assert np.isnan(y[-1]) and np.isnan(dy[-1])
    # sin and cos have no limit at +-inf: NaN there (documented), finite elsewhere
    inner = slice(1, -2) if act.name in NO_LIMIT else slice(0, -1)
    assert not np.isnan(y[inner]).any() and not np.isnan(dy[inner]).any()
    # square: x^2 overflows for |x| > 1.3e154 and phi'(+-inf) = +-inf (true values)
    big = 1e150 if act.name in TRUE_OVERFLOW else np.inf
    assert np.isfinite(y[1:-2][np.abs(x[1:-2]) < big]).all()
    assert np.isfinite(dy[inner][np.abs(x[inner]) < big]).all()
    assert isinstance(y1, float) and isinstance(dy1, float)


def test_true_overflow_gives_inf_silently() -> None:
    # selu(x) = lambda * x overflows for x near the float max: inf, without a warning.
    selu = A.get("selu")
    assert selu.phi(1.75e308) == np.inf
    assert c_phi(selu, np.array([1.75e308]))[0] == np.inf
    leaky = A.get("leaky_relu", slope=2.0)
    assert leaky.phi(-1.7e308) == -np.inf
    for name, x in (("square", -1e200), ("bent_identity", 1.7e308)):
        act = A.get(name)
        assert act.phi(x) == np.inf and c_phi(act, np.array([x]))[0] == np.inf, name


def test_kink_conventions() -> None:
    cases = [
        (A.get("relu"), 0.0, 0.0),
        (A.get("relu"), -0.0, 0.0),
        (A.get("leaky_relu"), 0.0, 0.01),
        (A.get("leaky_relu", slope=0.3), 0.0, 0.3),
        (A.get("elu"), 0.0, 1.0),
        (A.get("elu", alpha=0.5), 0.0, 1.0),
        (A.get("selu"), 0.0, A.SELU_LAMBDA),
        (A.get("hard_tanh"), 1.0, 0.0),
        (A.get("hard_tanh"), -1.0, 0.0),
        (A.get("hard_tanh"), np.nextafter(1.0, 0.0), 1.0),
        (A.get("hard_tanh"), np.nextafter(-1.0, 0.0), 1.0),
        (A.get("abs"), 0.0, 0.0),
        (A.get("abs"), -0.0, 0.0),
        (A.get("abs"), 5e-324, 1.0),
        (A.get("abs"), -5e-324, -1.0),
    ]
    for act, x, expected in cases:
        assert act.dphi(x) == expected, (act.label, x)
        assert A.dphi_scalar(act.code, act.param, x) == expected, (act.label, x)


# --- derivatives ----------------------------------------------------------------------


def smooth_breaks(act: A.Activation) -> tuple[float, ...]:
    # Kinks, plus points where phi'' jumps (elu with alpha=1 and softsign are C^1 but
    # not C^2 at 0), where the central difference is only O(h) accurate.
    return (*act.kinks, 0.0) if act.name in ("elu", "softsign") else act.kinks


def fd(act: A.Activation, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    return (c_phi(act, x + h) - c_phi(act, x - h)) / (2 * h)


@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_dphi_matches_finite_difference_on_grid(act: A.Activation) -> None:
    x = np.linspace(-8.0, 8.0, 1601) + 1e-3 / 3  # grid shifted off the kinks
    for k in smooth_breaks(act):
        x = x[np.abs(x - k) > 1e-3]
    np.testing.assert_allclose(c_dphi(act, x), fd(act, x), rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("act", ACTS, ids=IDS)
@HYP
@given(x=st.floats(min_value=-30.0, max_value=30.0, allow_nan=False))
def test_dphi_matches_finite_difference_hypothesis(act: A.Activation, x: float) -> None:
    assume(all(abs(x - k) > 1e-3 for k in smooth_breaks(act)))
    xa = np.array([x])
    np.testing.assert_allclose(c_dphi(act, xa), fd(act, xa), rtol=1e-6, atol=1e-8)


# --- high-precision reference (mpmath, if installed) ------------------------------


def mp_reference(act: A.Activation, x: float, mp) -> tuple[float, float]:
    v = mp.mpf(x)
    p = mp.mpf(act.param)
    lam, al = mp.mpf(A.SELU_LAMBDA), mp.mpf(A.SELU_ALPHA)
    sig = 1 / (1 + mp.exp(-v))
    # gelu_tanh from its definition 0.5 v (1 + tanh(u)), with (1 + tanh u) / 2 written
    # as 1 / (1 + e^(-2u)) (equal; the tanh form cancels for u << 0 even at 40 digits)
    k, c3 = mp.sqrt(2 / mp.pi), mp.mpf("0.044715")
    u = k * (v + c3 * v**3)
    half = 1 / (1 + mp.exp(-2 * u))
    table = {
        "linear": (v, 1),
        "relu": (max(v, 0), 1 if v > 0 else 0),
        "leaky_relu": (v if v > 0 else p * v, 1 if v > 0 else p),
        "elu": (v if v > 0 else p * mp.expm1(v), 1 if v >= 0 else p * mp.exp(v)),
        "selu": (lam * (v if v > 0 else al * mp.expm1(v)), lam * (1 if v >= 0 else al * mp.exp(v))),
        "gelu": (v * mp.ncdf(v), mp.ncdf(v) + v * mp.npdf(v)),
        "silu": (v * sig, sig * (1 + v * (1 - sig))),
        "softplus": (mp.log1p(mp.exp(v)), sig),
        "sigmoid": (sig, sig * (1 - sig)),
        "tanh": (mp.tanh(v), mp.sech(v) ** 2),
        "erf": (mp.erf(v), 2 / mp.sqrt(mp.pi) * mp.exp(-v * v)),
        "hard_tanh": (min(max(v, -1), 1), 1 if -1 < v < 1 else 0),
        "abs": (abs(v), mp.sign(v)),
        "sin": (mp.sin(v), mp.cos(v)),
        "cos": (mp.cos(v), -mp.sin(v)),
        "softsign": (v / (1 + abs(v)), 1 / (1 + abs(v)) ** 2),
        "atan": (mp.atan(v), 1 / (1 + v * v)),
        "asinh": (mp.asinh(v), 1 / mp.sqrt(1 + v * v)),
        "bent_identity": ((mp.sqrt(v * v + 1) - 1) / 2 + v, v / (2 * mp.sqrt(v * v + 1)) + 1),
        "square": (v * v, 2 * v),
        "gelu_tanh": (v * half, half + v * mp.sech(u) ** 2 * k * (1 + 3 * c3 * v * v) / 2),
    }
    y, dy = table[act.name]
    return float(y), float(dy)


@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_compiled_accuracy_against_mpmath(act: A.Activation) -> None:
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 40
    x = np.concatenate([np.linspace(-30.0, 30.0, 241), [-1e-8, 1e-8, -0.7518, 700.0]])
    ref = np.array([mp_reference(act, v, mp) for v in x])
    # exp(-x^2) and the normal tail Phi(x) amplify the rounding of x by ~x^2, so the
    # attainable relative accuracy degrades like x^2 * eps; gelu' cancels near -0.75.
    rtol = 8 * EPS * np.maximum(1.0, x * x)
    np.testing.assert_array_less(np.abs(c_phi(act, x) - ref[:, 0]), rtol * np.abs(ref[:, 0]) + TINY)
    np.testing.assert_array_less(
        np.abs(c_dphi(act, x) - ref[:, 1]), rtol * np.abs(ref[:, 1]) + 4 * EPS
    )


# --- known values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params", "x", "phi", "dphi"),
    [
        ("gelu", {}, 1.0, 0.8413447460685429, 1.0833154705876864),
        ("gelu", {}, -1.0, -0.15865525393145705, -0.0833154705876863),
        ("gelu", {}, 0.0, 0.0, 0.5),
        ("selu", {}, 1.0, 1.0507009873554805, 1.0507009873554805),
        ("selu", {}, -1.0, -1.1113307378125628, 0.6467686030348141),
        ("softplus", {}, 0.0, math.log(2.0), 0.5),
        ("softplus", {}, -30.0, 9.357622968839737e-14, 9.357622968839299e-14),
        ("softplus", {}, 1000.0, 1000.0, 1.0),
        ("softplus", {}, -1000.0, 0.0, 0.0),
        ("sigmoid", {}, 0.0, 0.5, 0.25),
        ("sigmoid", {}, 1000.0, 1.0, 0.0),
        ("sigmoid", {}, -1000.0, 0.0, 0.0),
        ("silu", {}, 1.0, 0.7310585786300049, 0.9276705118714867),
        ("tanh", {}, 1.0, 0.7615941559557649, 0.4199743416140261),
        ("erf", {}, 1.0, 0.8427007929497149, 0.4151074974205947),
        ("elu", {}, -1.0, -0.6321205588285577, 0.36787944117144233),
        ("elu", {"alpha": 2.0}, -1.0, -1.2642411176571153, 0.7357588823428847),
        ("leaky_relu", {}, -2.0, -0.02, 0.01),
        ("leaky_relu", {"slope": 0.2}, 3.0, 3.0, 1.0),
        ("relu", {}, -3.0, 0.0, 0.0),
        ("relu", {}, 3.0, 3.0, 1.0),
        ("hard_tanh", {}, 0.25, 0.25, 1.0),
        ("hard_tanh", {}, -7.0, -1.0, 0.0),
        ("linear", {}, -2.5, -2.5, 1.0),
        # new activations (values from 40-digit mpmath)
        ("abs", {}, -2.5, 2.5, -1.0),
        ("sin", {}, 1.0, 0.8414709848078965, 0.5403023058681398),
        ("cos", {}, 1.0, 0.5403023058681398, -0.8414709848078965),
        ("softsign", {}, -3.0, -0.75, 0.0625),
        ("atan", {}, 1.0, 0.7853981633974483, 0.5),
        ("asinh", {}, 1.0, 0.881373587019543, 0.7071067811865476),
        ("bent_identity", {}, 1.0, 1.2071067811865475, 1.3535533905932737),
        ("bent_identity", {}, -1.0, -0.7928932188134524, 0.6464466094067263),
        ("square", {}, -3.0, 9.0, -6.0),
        ("gelu_tanh", {}, 1.0, 0.8411919906082767, 1.0829640838457826),
        ("gelu_tanh", {}, -1.0, -0.1588080093917233, -0.08296408384578255),
    ],
)
def test_known_values(name: str, params: dict, x: float, phi: float, dphi: float) -> None:
    act = A.get(name, **params)
    for got, want in (
        (act.phi(x), phi),
        (act.dphi(x), dphi),
        (A.phi_scalar(act.code, act.param, x), phi),
        (A.dphi_scalar(act.code, act.param, x), dphi),
    ):
        assert got == pytest.approx(want, rel=4 * EPS, abs=0.0), (name, x)


def test_selu_constants() -> None:
    assert A.SELU_LAMBDA == 1.0507009873554805
    assert A.SELU_ALPHA == 1.6732632423543772
    assert A.get("selu").phi(-np.inf) == -1.7580993408473768
    assert A.phi_scalar(A.SELU, 0.0, -np.inf) == -1.7580993408473768


def test_against_scipy_references() -> None:
    x = np.linspace(-30.0, 30.0, 6001)
    np.testing.assert_allclose(A.get("sigmoid").phi(x), special.expit(x), rtol=4 * EPS)
    np.testing.assert_allclose(A.get("softplus").phi(x), np.logaddexp(0.0, x), rtol=4 * EPS)
    np.testing.assert_allclose(A.get("silu").phi(x), x * special.expit(x), rtol=4 * EPS)
    np.testing.assert_allclose(A.get("gelu").phi(x), x * special.ndtr(x), rtol=1e-12)
    np.testing.assert_allclose(A.get("erf").phi(x), special.erf(x), rtol=0)
    np.testing.assert_allclose(A.get("tanh").dphi(x), 1 / np.cosh(x) ** 2, rtol=16 * EPS)
    elu = A.get("elu", alpha=1.5)
    np.testing.assert_allclose(elu.phi(x), np.where(x > 0, x, 1.5 * np.expm1(x)), rtol=0)


# --- metadata -------------------------------------------------------------------------

XS = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False)
SCALES = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False)
# A fixed grid on which unflagged activations must visibly violate each property.
WITNESS = np.linspace(-4.0, 4.0, 81)


def test_expected_flags() -> None:
    by_flag = {
        "positively_homogeneous": {"linear", "relu", "leaky_relu", "abs"},
        "odd": {"linear", "tanh", "erf", "hard_tanh", "sin", "softsign", "atan", "asinh"},
        "bounded": {"sigmoid", "tanh", "erf", "hard_tanh", "sin", "cos", "softsign", "atan"},
        "nonnegative": {"relu", "softplus", "sigmoid", "abs", "square"},
        "can_be_dead": {"relu"},
    }
    for flag, expected in by_flag.items():
        assert {n for n in A.names() if getattr(A.get(n), flag)} == expected, flag
    assert A.get("leaky_relu", slope=1.0).odd
    assert A.get("leaky_relu", slope=0.0).can_be_dead
    assert A.get("leaky_relu", slope=0.0).nonnegative


def test_gain_names() -> None:
    expected = {
        "linear": "linear",
        "relu": "relu",
        "leaky_relu": "leaky_relu",
        "tanh": "tanh",
        "sigmoid": "sigmoid",
        "selu": "selu",
    }
    for n in A.names():
        assert A.get(n).gain_name == expected.get(n), n


def flagged(flag: str) -> list[A.Activation]:
    return [a for a in ACTS if getattr(a, flag)]


def one(act: A.Activation, x: float) -> float:
    return float(c_phi(act, np.array([x]))[0])


@pytest.mark.parametrize("act", flagged("positively_homogeneous"), ids=lambda a: a.label)
@HYP
@given(x=XS, a=SCALES)
def test_positive_homogeneity(act: A.Activation, x: float, a: float) -> None:
    assert act.phi(a * x) == pytest.approx(a * act.phi(x), rel=4 * EPS, abs=1e-300)
    assert one(act, a * x) == pytest.approx(a * one(act, x), rel=4 * EPS, abs=1e-300)


@pytest.mark.parametrize("act", flagged("odd"), ids=lambda a: a.label)
@HYP
@given(x=XS)
def test_oddness(act: A.Activation, x: float) -> None:
    assert act.phi(-x) == -act.phi(x)
    assert one(act, -x) == -one(act, x)


@pytest.mark.parametrize("act", flagged("bounded"), ids=lambda a: a.label)
@HYP
@given(x=st.floats(allow_nan=False))
def test_boundedness(act: A.Activation, x: float) -> None:
    bound = math.pi / 2 if act.name == "atan" else 1.0
    if act.name in NO_LIMIT and math.isinf(x):
        assert math.isnan(act.phi(x)) and math.isnan(one(act, x))  # documented
        return
    assert abs(act.phi(x)) <= bound
    assert abs(one(act, x)) <= bound


@pytest.mark.parametrize("act", flagged("nonnegative"), ids=lambda a: a.label)
@HYP
@given(x=st.floats(allow_nan=False))
def test_nonnegativity(act: A.Activation, x: float) -> None:
    assert act.phi(x) >= 0.0
    assert one(act, x) >= 0.0


@pytest.mark.parametrize("act", flagged("can_be_dead"), ids=lambda a: a.label)
@HYP
@given(x=st.floats(max_value=0.0, allow_nan=False))
def test_dead_half_line(act: A.Activation, x: float) -> None:
    xa = np.array([x])
    assert [act.phi(x), act.dphi(x), c_phi(act, xa)[0], c_dphi(act, xa)[0]] == [0.0] * 4


@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_unflagged_properties_fail_somewhere(act: A.Activation) -> None:
    # A flag left False must be visibly false: each property has a witness on a grid.
    w = WITNESS
    violated = {
        "positively_homogeneous": np.abs(act.phi(2.0 * w) - 2.0 * act.phi(w)).max() > 1e-3,
        "odd": np.abs(act.phi(-w) + act.phi(w)).max() > 1e-3,
        # asinh grows only like log: asinh(1e300) ~ 691
        "bounded": np.abs(act.phi(np.array([-1e300, 1e300]))).max() > 1e2,
        "nonnegative": act.phi(w).min() < -1e-3,
        "can_be_dead": (np.abs(act.phi(w[w < 0])) + np.abs(act.dphi(w[w < 0]))).max() > 1e-3,
    }
    for flag, is_violated in violated.items():
        assert getattr(act, flag) is not is_violated, (act.label, flag)


@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_kinks_are_where_the_derivative_jumps(act: A.Activation) -> None:
    h = 1e-9
    for k in act.kinks:
        assert abs(act.dphi(k + h) - act.dphi(k - h)) > 1e-3, (act.label, k)
    # Elsewhere (including at 0 and +-1 when they are not kinks) phi' is continuous.
    x = np.concatenate([np.linspace(-3.0, 3.0, 601), [-1.0, 0.0, 1.0]])
    x = x[[all(abs(v - k) > 2 * h for k in act.kinks) for v in x]]
    assert np.abs(act.dphi(x + h) - act.dphi(x - h)).max() < 1e-6


# --- registry -------------------------------------------------------------------------


def test_names_and_codes() -> None:
    ns = A.names()
    assert ns == sorted(ns) and len(ns) == 21
    codes = [A.get(n).code for n in ns]
    assert sorted(codes) == list(range(21))
    assert A.get("relu").code == A.RELU and A.get("hard_tanh").code == A.HARD_TANH
    assert A.get("gelu").code == A.GELU and A.get("linear").code == A.LINEAR


def test_lookup_is_case_insensitive_and_knows_aliases() -> None:
    assert A.get("ReLU") == A.get("relu")
    assert A.get(" Leaky-ReLU ") == A.get("leaky_relu")
    assert A.get("LeakyReLU", slope=0.1) == A.get("leaky_relu", slope=0.1)
    assert A.get("identity") == A.get("linear")
    assert A.get("swish") == A.get("silu")
    assert A.get("Hardtanh") == A.get("hard_tanh")
    assert A.get("hard tanh").name == "hard_tanh"
    assert A.get("arctan") == A.get("atan") and A.get("arcsinh") == A.get("asinh")
    assert A.get("BentIdentity") == A.get("bent_identity")
    assert A.get("gelu_new") == A.get("gelu_pytorch_tanh") == A.get("GELU-tanh")


def test_defaults_and_params_roundtrip() -> None:
    assert A.get("leaky_relu").param == 0.01
    assert A.get("elu").param == 1.0
    assert A.get("tanh").param == 0.0
    for act in ACTS:
        assert A.get(act.name, **act.params) == act
    assert A.get("elu", alpha=2).params == {"alpha": 2.0}
    assert A.get("leaky_relu", slope=0.2).label == "leaky_relu(slope=0.2)"
    assert A.get("tanh").label == "tanh"


def test_from_param_rebuilds_stored_activations() -> None:
    # Stored configs hold the name and the unnamed param; from_param maps it back.
    for act in ACTS:
        assert A.Activation.from_param(act.name, act.param) == act
    assert A.Activation.from_param("leaky_relu", 0.2) == A.get("leaky_relu", slope=0.2)
    assert A.Activation.from_param("elu", 2.5) == A.get("elu", alpha=2.5)
    assert A.Activation.from_param("LeakyReLU", 0.0).params == {"slope": 0.0}
    assert A.Activation.from_param("leaky_relu") == A.get("leaky_relu")  # default slope
    assert A.Activation.from_param("tanh", 0.0) == A.Activation.from_param("tanh") == A.get("tanh")
    with pytest.raises(ValueError, match="tanh takes no parameter"):
        A.Activation.from_param("tanh", 0.5)
    with pytest.raises(ValueError, match="'alpha' must be > 0"):
        A.Activation.from_param("elu", 0.0)
    with pytest.raises(ValueError, match="unknown activation"):
        A.Activation.from_param("softmax", 0.0)


def test_activation_passthrough_and_override() -> None:
    act = A.get("leaky_relu", slope=0.3)
    assert A.get(act) is act
    other = A.get(act, slope=0.5)
    assert other.param == 0.5 and other.name == "leaky_relu"
    with pytest.raises(ValueError, match="alpha"):
        A.get(act, alpha=1.0)


def test_activation_is_frozen_and_hashable() -> None:
    act = A.get("relu")
    with pytest.raises(dataclasses.FrozenInstanceError):
        act.param = 1.0  # type: ignore[misc]
    assert len({act, A.get("relu"), A.get("tanh")}) == 2


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown activation 'softmax'") as info:
        A.get("softmax")
    for n in A.names():
        assert n in str(info.value)


def test_non_string_name_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="str or an Activation"):
        A.get(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("leaky_relu", {"slope": math.inf}, "'slope' must be finite"),
        ("leaky_relu", {"slope": math.nan}, "'slope' must be finite"),
        ("leaky_relu", {"slope": "steep"}, "'slope' must be a real number"),
        ("leaky_relu", {"slope": True}, "'slope' must be a real number"),
        ("leaky_relu", {"alpha": 1.0}, "takes only 'slope'.*'alpha'"),
        ("elu", {"alpha": 0.0}, "'alpha' must be > 0"),
        ("elu", {"alpha": -1.0}, "'alpha' must be > 0"),
        ("elu", {"alpha": math.inf}, "'alpha' must be finite"),
        ("elu", {"slope": 0.1}, "takes only 'alpha'.*'slope'"),
        ("tanh", {"slope": 0.1}, "takes no parameters.*'slope'"),
        ("selu", {"alpha": 1.0, "scale": 2.0}, "'alpha', 'scale'"),
    ],
)
def test_bad_params_name_the_parameter(name: str, params: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        A.get(name, **params)
