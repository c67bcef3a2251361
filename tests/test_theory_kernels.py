"""Kernel quantities (initsim.theory.kernels): dual, derivative and second-derivative kernels,
slopes and curvature of the mean-field maps, NNGP and NTK.

References are independent of initsim: 30-digit mpmath (closed forms evaluated at
high precision; two-dimensional expectations reduced to one-dimensional
``mp.quad`` by the closed conditional expectation ``E[g(m + sd Z)]`` of the
inner variable; for tanh, sigmoid, silu and softplus, which have none, stored
values of a two-dimensional 30-digit Gauss-Legendre ``mp.quad``, recomputed by
the ``slow`` test), finite differences of initsim's own maps, and the
empirical NTK of wide random networks from explicit numpy Jacobians.

Statistical tests use fixed seeds (they cannot flake) and tolerances of ``Z = 5``
standard errors (two-sided false-rejection rate about 6e-7 had the seed been random).
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from scipy import integrate

from initsim import activations as A
from initsim import theory as T
from initsim.theory import kernels as K

Z = 5.0
MP_LAMBDA = mp.mpf("1.0507009873554804934193349852946")
MP_ALPHA = mp.mpf("1.6732632423543772848170429916717")
CLOSED = [A.get("relu"), A.get("leaky_relu", slope=0.2), A.get("leaky_relu", slope=-0.5)]
CLOSED += [A.get("linear"), A.get("erf")]
# the registry as of this module (others are being added; they take the generic paths)
NAMES = ["linear", "relu", "leaky_relu", "elu", "selu", "gelu", "silu", "softplus", "sigmoid"]
NAMES += ["tanh", "erf", "hard_tanh"]
ALL_ACTS = [A.get(n) for n in NAMES] + [A.get("elu", alpha=0.5), CLOSED[1], CLOSED[2]]


def ids(acts):
    return [a.label for a in acts]


# ----------------------------------------------------------------------------------
# 30-digit references
# ----------------------------------------------------------------------------------


def _Phi(x):
    return mp.ncdf(x)


def _pdf(x):
    return mp.npdf(x)


def _lin_piece(m, sd, a, b):
    """E[X; a < X < b], X ~ N(m, sd^2)."""
    lo = -mp.inf if a == -mp.inf else (a - m) / sd
    hi = mp.inf if b == mp.inf else (b - m) / sd
    return m * (_Phi(hi) - _Phi(lo)) + sd * (_pdf(lo) - _pdf(hi))


def _exp_neg(m, sd):
    """E[exp(X); X < 0], X ~ N(m, sd^2)."""
    return mp.exp(m + sd * sd / 2) * _Phi(-(m + sd * sd) / sd)


def _elu_consts(act):
    if act.name == "elu":
        return mp.mpf(act.param), mp.mpf(1)
    return MP_ALPHA, MP_LAMBDA


def mp_inner(act, which, m, sd):
    """E[g(m + sd Z)] in closed form, g = phi ("phi") or phi' ("dphi"), sd > 0."""
    name = act.name
    if name == "linear":
        return m if which == "phi" else mp.mpf(1)
    if name in ("relu", "leaky_relu"):
        a = mp.mpf(act.param) if name == "leaky_relu" else mp.mpf(0)
        if which == "phi":
            return a * m + (1 - a) * _lin_piece(m, sd, 0, mp.inf)
        return a + (1 - a) * _Phi(m / sd)
    if name in ("elu", "selu"):
        al, lam = _elu_consts(act)
        if which == "phi":
            return lam * (_lin_piece(m, sd, 0, mp.inf) + al * (_exp_neg(m, sd) - _Phi(-m / sd)))
        return lam * (_Phi(m / sd) + al * _exp_neg(m, sd))
    if name == "hard_tanh":
        if which == "phi":
            return _lin_piece(m, sd, -1, 1) + _Phi((m - 1) / sd) - _Phi((-1 - m) / sd)
        return _Phi((1 - m) / sd) - _Phi((-1 - m) / sd)
    if name == "erf":
        t2 = 1 + 2 * sd * sd
        if which == "phi":
            return mp.erf(m / mp.sqrt(t2))
        return 2 / mp.sqrt(mp.pi) * mp.exp(-m * m / t2) / mp.sqrt(t2)
    if name == "gelu":  # Stein's lemma: E[Phi(X)], E[pdf(X)] in closed form
        t = mp.sqrt(1 + sd * sd)
        if which == "phi":
            return m * _Phi(m / t) + sd * sd * _pdf(m / t) / t
        return _Phi(m / t) + m * _pdf(m / t) / t**3
    raise KeyError(name)


def mp_phi(act, which, x):
    name = act.name
    if name == "linear":
        return x if which == "phi" else mp.mpf(1)
    if name in ("relu", "leaky_relu"):
        a = mp.mpf(act.param) if name == "leaky_relu" else mp.mpf(0)
        if which == "phi":
            return x if x > 0 else a * x
        return mp.mpf(1) if x > 0 else a
    if name in ("elu", "selu"):
        al, lam = _elu_consts(act)
        if which == "phi":
            return lam * (x if x > 0 else al * mp.expm1(x))
        return lam * (1 if x >= 0 else al * mp.exp(x))
    if name == "hard_tanh":
        if which == "phi":
            return max(mp.mpf(-1), min(mp.mpf(1), x))
        return mp.mpf(1) if -1 < x < 1 else mp.mpf(0)
    if name == "erf":
        return mp.erf(x) if which == "phi" else 2 / mp.sqrt(mp.pi) * mp.exp(-x * x)
    if name == "gelu":
        return x * _Phi(x) if which == "phi" else _Phi(x) + x * _pdf(x)
    raise KeyError(name)


MP_KINKS = {"relu": [0], "leaky_relu": [0], "elu": [0], "selu": [0], "hard_tanh": [-1, 1]}


def mp_kernel(act, which, q1, q2, c):
    """E[g(u) g(v)] = E_z1[g(sqrt(q1) z1) E[g(v) | z1]] at 30 digits (|c| < 1)."""
    with mp.workdps(30):
        q1, q2, c = mp.mpf(q1), mp.mpf(q2), mp.mpf(c)
        r1, r2, s = mp.sqrt(q1), mp.sqrt(q2), mp.sqrt((1 - c) * (1 + c))
        kinks = MP_KINKS.get(act.name, [0])
        pts = {mp.mpf(x) for x in (0, -3, 3, -1.5, 1.5)} | {mp.mpf(k) / r1 for k in kinks}
        if c != 0:  # where the inner expectation turns sharply (width s / |c|)
            pts |= {
                (mp.mpf(k) / r2 - o * s) / c for k in kinks for o in (0, 0.5, -0.5, 2, -2, 6, -6)
            }
        pts = sorted(p for p in pts if abs(p) < 30)

        def f(z):
            return mp_phi(act, which, r1 * z) * mp_inner(act, which, c * r2 * z, s * r2) * _pdf(z)

        return mp.quad(f, [-mp.inf, *pts, mp.inf])


MP_JUMPS = {
    "relu": lambda a: [(0, mp.mpf(1))],
    "leaky_relu": lambda a: [(0, 1 - mp.mpf(a.param))],
    "elu": lambda a: [(0, 1 - mp.mpf(a.param))],
    "selu": lambda a: [(0, MP_LAMBDA * (1 - MP_ALPHA))],
    "hard_tanh": lambda a: [(-1, mp.mpf(1)), (1, mp.mpf(-1))],
    "erf": lambda a: [],
    "gelu": lambda a: [],
}


def mp_regular_d2(act, x):
    name = act.name
    if name in ("elu", "selu"):
        al, lam = _elu_consts(act)
        return lam * al * mp.exp(x) if x < 0 else mp.mpf(0)
    if name == "gelu":
        return _pdf(x) * (2 - x * x)
    if name == "erf":
        return -4 / mp.sqrt(mp.pi) * x * mp.exp(-x * x)
    return mp.mpf(0)


def mp_d2_kernel(act, q1, q2, c):
    """E[phi''(u) phi''(v)] conditioning on u: E[phi''(v) | u] = d/dm E[phi'(m + sd Z)].

    (The other route to the one in initsim, which splits phi'' in both variables.)
    """
    with mp.workdps(30):
        q1, q2, c = mp.mpf(q1), mp.mpf(q2), mp.mpf(c)
        r1, r2, s = mp.sqrt(q1), mp.sqrt(q2), mp.sqrt((1 - c) * (1 + c))

        def g(u):
            return mp.diff(lambda m: mp_inner(act, "dphi", m, s * r2), c * r2 * u / r1)

        total = mp.fsum(j * _pdf(k / r1) / r1 * g(mp.mpf(k)) for k, j in MP_JUMPS[act.name](act))
        if act.name in ("elu", "selu", "gelu", "erf"):
            total += mp.quad(
                lambda z: mp_regular_d2(act, r1 * z) * g(r1 * z) * _pdf(z),
                [-mp.inf, -2, 0, 2, mp.inf],
            )
        return total


def mp_closed(act, which, q1, q2, c):
    """The closed-form kernels written out at 30 digits (no care for conditioning)."""
    with mp.workdps(50):  # 50 digits: the relu kernel cancels like (1 + c)^(3/2) at c -> -1
        q1, q2, c = mp.mpf(q1), mp.mpf(q2), mp.mpf(c)
        r12, s = mp.sqrt(q1 * q2), mp.sqrt(1 - c * c)
        if act.name == "erf":
            d = (1 + 2 * q1) * (1 + 2 * q2) - 4 * c * c * q1 * q2
            return {
                "phi": 2 / mp.pi * mp.asin(2 * c * r12 / mp.sqrt((1 + 2 * q1) * (1 + 2 * q2))),
                "dphi": 4 / mp.pi / mp.sqrt(d),
                "d2": 16 / mp.pi * c * r12 / d**1.5,
            }[which]
        a = {"linear": mp.mpf(1), "relu": mp.mpf(0)}.get(act.name, mp.mpf(act.param))
        w = (1 - a) ** 2
        theta = mp.acos(c)
        if which == "phi":
            return r12 * (a * c + w * (s + (mp.pi - theta) * c) / (2 * mp.pi))
        if which == "dphi":
            return a + w * (mp.pi - theta) / (2 * mp.pi)
        return w / (2 * mp.pi * r12 * s) if s > 0 else (mp.inf if w else mp.mpf(0))


# 2-D 30-digit Gauss-Legendre mp.quad over [-14, 14]^2 (panels at 0, +-3, +-6), maxdegree 6,
# at the float inputs (0.7 is 0.69999999999999995559...); recomputed by
# test_stored_references_against_mpmath (slow, about 2 minutes).
STORED = [
    ("tanh", "phi", 1.0, 2.5, 0.7, "0.3084504709510249753421703002"),
    ("tanh", "dphi", 1.0, 2.5, 0.7, "0.304748740290154561555917979"),
    ("tanh", "phi", 0.3, 4.0, -0.95, "-0.3198759941840089089626571733"),
    ("tanh", "dphi", 0.3, 4.0, -0.95, "0.3417911173029474024913182583"),
    ("tanh", "phi", 2.0, 2.0, 0.999, "0.5192772267317466225545182584"),
    ("sigmoid", "phi", 1.5, 0.5, 0.4, "0.2650280040917205452435067406"),
    ("silu", "dphi", 2.0, 0.5, -0.6, "0.1799842824439095893069881188"),
    ("softplus", "phi", 0.7, 3.0, 0.9, "1.122367286722146982290252571"),
]


def _mp_smooth(name, which):
    sig = lambda x: 1 / (1 + mp.exp(-x))  # noqa: E731
    return {
        ("tanh", "phi"): mp.tanh,
        ("tanh", "dphi"): lambda x: mp.sech(x) ** 2,
        ("sigmoid", "phi"): sig,
        ("silu", "dphi"): lambda x: sig(x) * (1 + x * (1 - sig(x))),
        ("softplus", "phi"): lambda x: mp.log1p(mp.exp(x)),
    }[(name, which)]


def _scale(act, which, q1, q2):
    code = {"phi": 1, "dphi": 3}[which]  # gaussian.PHI2, DPHI2
    from initsim.theory.gaussian import expect_scalar

    return math.sqrt(expect_scalar(act, q1, code) * expect_scalar(act, q2, code))


# ----------------------------------------------------------------------------------
# Closed forms
# ----------------------------------------------------------------------------------

C_EDGE = [-1.0, -1 + 1e-12, -1 + 1e-6, -0.9, -0.3, 0.0, 0.2, 0.7, 1 - 1e-6, 1 - 1e-12, 1.0]
Q_PAIRS = [(1.0, 1.0), (1e-3, 1e3), (2.5, 0.4), (1e3, 1e3), (1e-3, 1e-3)]


@pytest.mark.parametrize("act", CLOSED, ids=ids(CLOSED))
def test_closed_forms_against_30_digit_formulas(act):
    # Relative error, except where leaky_relu's kernels change sign (a c + (1 - a)^2 k(c)
    # cancels there): relative to sqrt(E[g(u)^2] E[g(v)^2]) then.
    # Measured over this grid (c down to 1e-12 from +-1, q 1e-3 .. 1e3): 8.9e-16.
    worst = 0.0
    for q1, q2 in Q_PAIRS:
        for c in C_EDGE:
            for which, fn in (
                ("phi", K.dual_kernel),
                ("dphi", K.derivative_kernel),
                ("d2", K.second_derivative_kernel),
            ):
                got = fn(act, q1, q2, c)
                ref = mp_closed(act, which, q1, q2, c)
                if mp.isinf(ref):
                    assert got == math.inf, (which, q1, q2, c)
                    continue
                scale = abs(ref)
                if act.name == "leaky_relu" and which != "d2":
                    scale = max(scale, _scale(act, which, q1, q2))
                if scale == 0:
                    assert got == 0.0, (which, q1, q2, c, got)
                else:
                    worst = max(worst, float(abs(got - ref) / scale))
    assert worst <= 4e-15


@pytest.mark.parametrize("act", CLOSED[:2] + CLOSED[3:], ids=ids(CLOSED[:2] + CLOSED[3:]))
@pytest.mark.parametrize(("q1", "q2", "c"), [(0.01, 3.0, 1 - 1e-9), (2.5, 0.4, -0.7)])
def test_closed_forms_are_the_gaussian_integrals(act, q1, q2, c):
    # the formulas themselves, against the 30-digit integral (measured 6.6e-16)
    for which, fn in (("phi", K.dual_kernel), ("dphi", K.derivative_kernel)):
        ref = mp_kernel(act, which, q1, q2, c)
        assert fn(act, q1, q2, c) == pytest.approx(float(ref), rel=4e-15, abs=1e-300)


def test_relu_kernel_keeps_relative_accuracy_as_it_vanishes_at_c_minus_one():
    # E[relu(u) relu(v)] ~ (pi - arccos c)^3 / (6 pi) at c -> -1: the series branch
    for eps in (1e-4, 1e-8, 1e-12, 1e-15):
        c = -1.0 + eps
        ref = mp_closed(A.get("relu"), "phi", 1.0, 1.0, c)
        assert K.dual_kernel("relu", 1.0, 1.0, c) == pytest.approx(float(ref), rel=4e-15)


# ----------------------------------------------------------------------------------
# The generic rule
# ----------------------------------------------------------------------------------

GRID = [(1.0, 1.0, 0.5), (0.01, 3.0, -0.999), (2.5, 0.4, 0.99999), (100.0, 0.7, -0.2)]
GRID += [(0.3, 30.0, 1 - 1e-9), (1.0, 4.0, 1.0), (5.0, 0.2, -1.0), (3.0, 3.0, -1 + 1e-9)]


@pytest.mark.parametrize("act", CLOSED, ids=ids(CLOSED))
def test_generic_rule_reproduces_the_closed_forms(act):
    # measured: 6e-16 (phi, dphi, scaled) and 4e-16 (d2, relative)
    for q1, q2, c in GRID:
        for which in ("phi", "dphi"):
            exact = K._closed(act, q1, q2, c, which)
            got = K._generic(act, q1, q2, c, which)
            assert abs(got - exact) <= 2e-15 * _scale(act, which, q1, q2), (which, q1, q2, c)
        if abs(c) < 1.0:
            exact = K._closed(act, q1, q2, c, "d2")
            assert K._generic(act, q1, q2, c, "d2") == pytest.approx(exact, rel=1e-13, abs=1e-300)


MP_GENERIC = [
    ("gelu", 0.01, 3.0, 0.999999),
    ("elu", 2.5, 0.4, -0.99),
    ("selu", 0.3, 30.0, 0.9999),
    ("hard_tanh", 4.0, 0.5, 0.3),
]


def _act(name):
    return A.get("elu", alpha=0.5) if name == "elu" else A.get(name)


@pytest.mark.parametrize(("name", "q1", "q2", "c"), MP_GENERIC)
def test_generic_rule_against_mpmath(name, q1, q2, c):
    # measured over 90 points (q 0.01 .. 100, c to 1e-9 from +-1) per activation: 6e-16 scaled
    act = _act(name)
    for which in ("phi", "dphi"):
        ref = float(mp_kernel(act, which, q1, q2, c))
        got = (K.dual_kernel if which == "phi" else K.derivative_kernel)(act, q1, q2, c)
        assert abs(got - ref) <= 2e-15 * _scale(act, which, q1, q2), (which, got, ref)


@pytest.mark.parametrize(("name", "which", "q1", "q2", "c", "ref"), STORED)
def test_generic_rule_against_stored_mpmath_values(name, which, q1, q2, c, ref):
    act = A.get(name)
    got = (K.dual_kernel if which == "phi" else K.derivative_kernel)(act, q1, q2, c)
    assert abs(got - float(ref)) <= 2e-15 * _scale(act, which, q1, q2)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "which", "q1", "q2", "c", "ref"), STORED)
def test_stored_references_against_mpmath(name, which, q1, q2, c, ref):
    f = _mp_smooth(name, which)
    with mp.workdps(30):
        q1, q2, c = mp.mpf(q1), mp.mpf(q2), mp.mpf(c)
        r1, r2, s = mp.sqrt(q1), mp.sqrt(q2), mp.sqrt((1 - c) * (1 + c))
        pts = [-14, -6, -3, 0, 3, 6, 14]
        val = mp.quad(
            lambda z1, z2: f(r1 * z1) * f(r2 * (c * z1 + s * z2)) * _pdf(z1) * _pdf(z2),
            pts,
            pts,
            method="gauss-legendre",
            maxdegree=6,
        )
        assert abs(val - mp.mpf(ref)) <= mp.mpf("1e-25")


@pytest.mark.parametrize(
    ("name", "q1", "q2", "c"),
    [
        ("elu", 2.5, 0.4, 0.99),
        ("selu", 0.05, 3.0, -0.8),
        ("gelu", 30.0, 0.7, -0.2),
        ("hard_tanh", 1.0, 2.0, 0.6),
        ("erf", 2.5, 0.4, 0.99),
    ],
)
def test_second_derivative_kernel_against_mpmath(name, q1, q2, c):
    # measured: 7e-16 relative (8e-15 for hard_tanh's small values)
    act = _act(name)
    ref = float(mp_d2_kernel(act, q1, q2, c))
    assert K._d2_kernel(act, q1, q2, c) == pytest.approx(ref, rel=5e-14)


def test_second_derivative_kernel_is_infinite_where_kinks_meet():
    assert K.second_derivative_kernel("hard_tanh", 2.0, 2.0, 1.0) == math.inf
    assert K.second_derivative_kernel("hard_tanh", 2.0, 2.0, -1.0) == -math.inf
    assert K.second_derivative_kernel("relu", 1.0, 3.0, -1.0) == math.inf
    # kinks at +-1 do not meet for unequal variances on the line v = -sqrt(q2 / q1) u
    assert math.isfinite(K.second_derivative_kernel("hard_tanh", 1.0, 2.0, -1.0))
    # smooth activations stay finite at c = +-1: the one-dimensional line rule
    for c in (1.0, -1.0):
        got = K.second_derivative_kernel("tanh", 0.7, 1.9, c)
        x = 1.0 if c > 0 else -1.0
        d2 = K._D2_REGULAR["tanh"]

        def f(z, x=x, d2=d2):
            return d2(np.sqrt(0.7) * z, 0.0) * d2(x * np.sqrt(1.9) * z, 0.0) * np.exp(-z * z / 2)

        ref = integrate.quad(f, -12, 12, epsabs=0, epsrel=1e-13, limit=200)[0] / math.sqrt(
            2 * math.pi
        )
        assert got == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("name", ["tanh", "gelu", "selu", "hard_tanh"])
def test_price_theorem_links_the_kernels_at_unequal_variances(name):
    # d/dc E[phi phi] = sqrt(q1 q2) E[phi' phi'], d/dc E[phi' phi'] = sqrt(q1 q2) E[phi'' phi'']
    act = A.get(name)
    q1, q2, h = 0.6, 2.2, 1e-3
    r12 = math.sqrt(q1 * q2)
    for c in (-0.6, 0.8):
        for low, high in (
            (K.dual_kernel, K.derivative_kernel),
            (K.derivative_kernel, K.second_derivative_kernel),
        ):
            d1 = (low(act, q1, q2, c + h) - low(act, q1, q2, c - h)) / (2 * h)
            d2 = (low(act, q1, q2, c + h / 2) - low(act, q1, q2, c - h / 2)) / h
            fd = (4 * d2 - d1) / 3  # Richardson: O(h^4)
            assert fd == pytest.approx(r12 * high(act, q1, q2, c), rel=1e-8, abs=1e-10)


def test_degenerate_and_independent_pairs():
    act = A.get("tanh")
    # c = 1 with unequal variances: E[phi(sqrt(q1) z) phi(sqrt(q2) z)]
    for c, sign in ((1.0, 1.0), (-1.0, -1.0)):
        ref = integrate.quad(
            lambda z, sign=sign: (
                math.tanh(math.sqrt(0.5) * z)
                * math.tanh(sign * math.sqrt(3.0) * z)
                * math.exp(-z * z / 2)
            ),
            -13,
            13,
            epsabs=0,
            epsrel=1e-13,
        )[0] / math.sqrt(2 * math.pi)
        assert K.dual_kernel(act, 0.5, 3.0, c) == pytest.approx(ref, rel=1e-13)
        assert K._generic(act, 0.5, 3.0, c * (1 - 1e-13), "phi") == pytest.approx(ref, rel=1e-11)
    # c = 0: independent
    m1 = T.gaussian_expectation("gelu", 0.5, "phi")
    m2 = T.gaussian_expectation("gelu", 3.0, "phi")
    assert K.dual_kernel("gelu", 0.5, 3.0, 0.0) == pytest.approx(m1 * m2, rel=1e-14)
    assert K._generic(A.get("gelu"), 0.5, 3.0, 1e-14, "phi") == pytest.approx(m1 * m2, rel=1e-12)
    # c = 1, q1 = q2: the one-dimensional expectations
    assert K.dual_kernel("selu", 1.7, 1.7, 1.0) == T.gaussian_expectation("selu", 1.7, "phi2")
    assert K.derivative_kernel("selu", 1.7, 1.7, 1.0) == T.gaussian_expectation(
        "selu", 1.7, "dphi2"
    )


@pytest.mark.parametrize("act", ALL_ACTS, ids=ids(ALL_ACTS))
def test_symmetries(act):
    for fn in (K.dual_kernel, K.derivative_kernel, K.second_derivative_kernel):
        a, b = fn(act, 0.4, 2.0, 0.6), fn(act, 2.0, 0.4, 0.6)
        assert a == pytest.approx(b, rel=1e-13, abs=1e-15)
    if act.odd:  # phi odd: E[phi(u) phi(-v)] = -E[phi(u) phi(v)]
        assert K.dual_kernel(act, 0.4, 2.0, -0.6) == pytest.approx(
            -K.dual_kernel(act, 0.4, 2.0, 0.6), rel=1e-13
        )


def test_equal_variance_kernels_match_the_gaussian_module():
    from initsim.theory.gaussian import bivariate

    for name in ("tanh", "gelu", "hard_tanh", "elu"):
        act = A.get(name)
        for c in (-0.8, 0.3, 0.97):
            for which, fn in (("phi", K.dual_kernel), ("dphi", K.derivative_kernel)):
                got, ref = fn(act, 1.3, 1.3, c), bivariate(act, 1.3, c, which)
                assert abs(got - ref) <= 1e-11 * _scale(act, which, 1.3, 1.3)


@pytest.mark.parametrize("name", ["tanh", "silu"])
def test_finite_difference_fallback_of_the_second_derivative_kernel(name):
    # the path for activations without a written-out phi'' (none at present)
    act = A.get(name)
    for q1, q2, c in ((1.0, 1.0, 0.3), (0.3, 2.0, -0.9), (1.5, 1.5, 0.995), (0.5, 0.8, -1.0)):
        assert K._d2_finite_difference(act, q1, q2, c) == pytest.approx(
            K._d2_kernel(act, q1, q2, c), abs=1e-6
        )


# ----------------------------------------------------------------------------------
# Slopes and curvature of the maps
# ----------------------------------------------------------------------------------

MAP_CASES = [
    ("tanh", 1.5, 0.05),
    ("tanh", 2.5, 0.3),
    ("erf", 1.2, 0.1),
    ("gelu", 1.5, 0.2),
    ("selu", 1.0, 0.0),
    ("elu", 1.3, 0.1),
    ("softplus", 0.6, 0.05),
    ("sigmoid", 4.0, 0.1),
    ("hard_tanh", 1.3, 0.1),
    ("relu", 2.0, 0.0),
    ("leaky_relu", 1.5, 0.2),
    ("linear", 0.8, 0.3),
]


@pytest.mark.parametrize(("name", "sw", "sb"), MAP_CASES)
def test_slope_at_one_is_chi1(name, sw, sb):
    assert K.c_map_slope(name, sw, sb, 1.0) == pytest.approx(T.chi1(name, sw, sb), abs=1e-10)


def test_slope_at_zero_and_infinite_fixed_points_is_chi1():
    for name, sw, sb in (("tanh", 0.8, 0.0), ("elu", 3.0, 0.0), ("relu", 1.5, 0.0)):
        qs = T.fixed_point(name, sw, sb)
        assert qs in (0.0, math.inf)
        assert K.c_map_slope(name, sw, sb, 1.0) == pytest.approx(T.chi1(name, sw, sb), abs=1e-12)
    # elu at q* = 0 with a kink at 0: the orthant average of the one-sided slopes
    act = A.get("elu", alpha=0.5)
    assert T.fixed_point(act, 0.5, 0.0) == 0.0
    pp = 0.25 + math.asin(0.3) / (2 * math.pi)  # P(u > 0, v > 0) = P(u < 0, v < 0)
    expect = 0.5 * ((1 + 0.5**2) * pp + 2 * 0.5 * (0.5 - pp))  # slopes 1 and 0.5
    assert K.c_map_slope(act, 0.5, 0.0, 0.3) == pytest.approx(expect, rel=1e-14)


def test_slope_at_the_chaotic_fixed_point_is_chi_c():
    for name, sw, sb in (("tanh", 3.0, 0.05), ("erf", 3.0, 0.1), ("tanh", 4.0, 0.1)):
        cs, chi_c = T.correlation_fixed_point(name, sw, sb)
        assert cs < 1.0
        assert K.c_map_slope(name, sw, sb, cs) == pytest.approx(chi_c, abs=1e-10)


def _c_map_step(name, sw, sb, q, c):
    """(c^1, c^2) of initsim.theory.c_map with q^1 = q and c^1 = c (first layer sigma_w2 = 1)."""
    q0 = q - sb
    out = T.c_map(name, [1.0, sw], sb, (c * q - sb) / q0, 2, q0=q0)
    return float(out[0]), float(out[1])


@pytest.mark.parametrize(("name", "sw", "sb"), [MAP_CASES[i] for i in (0, 2, 3, 4, 5, 8)])
def test_slope_and_curvature_against_finite_differences_of_c_map(name, sw, sb):
    h, tested = 2e-3, 0
    for q in (None, 2.0):
        qq = T.fixed_point(name, sw, sb) if q is None else q
        for c in (-0.5, 0.3, 0.8):
            if abs(((c - 2 * h) * qq - sb) / (qq - sb)) > 1.0:
                continue  # c^1 = c is out of reach of the first layer (c0 would leave [-1, 1])
            tested += 1
            pts = [_c_map_step(name, sw, sb, qq, c + k * h) for k in (-2, -1, 0, 1, 2)]
            x = [p[0] for p in pts]
            y = [p[1] for p in pts]
            # divided differences on the abscissae c_map returns, Richardson-combined
            d1 = (y[3] - y[1]) / (x[3] - x[1])
            d2 = (y[4] - y[0]) / (x[4] - x[0])
            assert K.c_map_slope(name, sw, sb, c, q) == pytest.approx((4 * d1 - d2) / 3, abs=1e-8)
            curv = (y[3] + y[1] - 2 * y[2]) / h**2
            assert K.c_map_curvature(name, sw, sb, c, q) == pytest.approx(curv, abs=1e-5)
    assert tested >= 3


@pytest.mark.parametrize("name", ["tanh", "gelu", "elu", "hard_tanh", "erf", "softplus"])
def test_curvature_is_the_derivative_of_the_slope(name):
    sw, sb, q = 1.4, 0.1, 0.9
    for c in (-0.7, 0.2, 0.9):
        h = 1e-3
        d1 = (K.c_map_slope(name, sw, sb, c + h, q) - K.c_map_slope(name, sw, sb, c - h, q)) / (
            2 * h
        )
        d2 = (
            K.c_map_slope(name, sw, sb, c + h / 2, q) - K.c_map_slope(name, sw, sb, c - h / 2, q)
        ) / h
        assert K.c_map_curvature(name, sw, sb, c, q) == pytest.approx(
            (4 * d2 - d1) / 3, rel=1e-8, abs=1e-10
        )


def test_curvature_closed_cases_and_limits():
    for c in (-0.9, 0.0, 0.5, 1 - 1e-10):
        expect = 1.0 / (math.pi * math.sqrt((1 - c) * (1 + c)))
        assert K.c_map_curvature("relu", 2.0, 0.0, c) == pytest.approx(expect, rel=1e-12)
    assert K.c_map_curvature("relu", 2.0, 0.0, 1.0) == math.inf
    assert K.c_map_curvature("linear", 1.0, 0.2, 0.4) == 0.0
    # q* = 0: only the jump of phi' at 0 survives, sigma_w2 J^2 / (2 pi sqrt(1 - c^2))
    act = A.get("elu", alpha=0.5)
    assert K.c_map_curvature(act, 0.5, 0.0, 0.3) == pytest.approx(
        0.5 * 0.25 / (2 * math.pi * math.sqrt(1 - 0.09)), rel=1e-14
    )
    assert K.c_map_curvature("tanh", 0.8, 0.0, 0.3) == 0.0
    # q* = inf: refused unless positively homogeneous
    with pytest.raises(ValueError, match="q"):
        K.c_map_curvature("elu", 3.0, 0.0, 0.3)
    assert K.c_map_curvature("relu", 3.0, 0.0, 0.0) == pytest.approx(1.5 / math.pi, rel=1e-14)


@pytest.mark.parametrize(("name", "sw", "sb"), MAP_CASES)
def test_q_map_slope_against_finite_differences_of_q_map(name, sw, sb):
    for q in (0.5, 3.0):
        qq = q + sb

        def fmap(x, name=name, sw=sw, sb=sb):
            return float(T.q_map(name, [1.0, sw], sb, x - sb, 2)[1])  # F(x)

        h = 1e-3 * qq
        d1 = (fmap(qq + h) - fmap(qq - h)) / (2 * h)
        d2 = (fmap(qq + h / 2) - fmap(qq - h / 2)) / h
        assert K.q_map_slope(name, sw, sb, qq) == pytest.approx((4 * d2 - d1) / 3, rel=1e-8)


@pytest.mark.parametrize("name", ["tanh", "gelu", "silu", "softplus", "sigmoid", "erf"])
def test_q_map_slope_is_the_expectation_of_phi_prime_squared_plus_phi_phi_second(name):
    act = A.get(name)
    d2 = K._D2_REGULAR[name]
    q = 1.7

    def f(z):
        x = math.sqrt(q) * z
        xs = np.array([x])
        return (float(act.dphi(x)) ** 2 + float(act.phi(x)) * float(d2(xs, 0.0)[0])) * math.exp(
            -z * z / 2
        )

    ref = 1.3 * integrate.quad(f, -14, 14, epsabs=0, epsrel=1e-13, limit=200)[0]
    assert K.q_map_slope(act, 1.3, 0.0, q) == pytest.approx(ref / math.sqrt(2 * math.pi), rel=1e-12)


def test_q_map_slope_closed_cases_fixed_point_and_depth_scale():
    assert K.q_map_slope("relu", 2.0, 0.1) == 1.0
    assert K.q_map_slope("leaky_relu", 1.0, 0.0, 5.0) == pytest.approx(0.5 * (1 + 0.01**2))
    assert K.q_map_slope("linear", 0.7, 0.0, 2.0) == 0.7
    assert K.q_map_slope("tanh", 1.3, 0.0, 0.0) == 1.3  # q -> 0: phi'(0)^2
    xi_q, _ = T.depth_scales("tanh", 1.5, 0.05)
    slope = K.q_map_slope("tanh", 1.5, 0.05, None)
    assert slope == pytest.approx(math.exp(-1 / xi_q), rel=1e-13)
    assert slope == K.q_map_slope("tanh", 1.5, 0.05, T.fixed_point("tanh", 1.5, 0.05))
    with pytest.raises(ValueError, match="q"):
        K.q_map_slope("elu", 3.0, 0.0, None)  # q* = inf


# ----------------------------------------------------------------------------------
# NNGP and NTK
# ----------------------------------------------------------------------------------


def test_ntk_relu_he_and_relu_without_bias():
    p = K.ntk_map("relu", 2.0, 0.0, 4, q0=1.0)
    np.testing.assert_array_equal(p.nngp_diag, 2.0)
    np.testing.assert_array_equal(p.ntk_diag, [2.0, 4.0, 6.0, 8.0, 10.0])
    assert p.depth == 4
    # Theta^l(x, x) = l Sigma^l(x, x) for relu without bias, any sigma_w2 and q0
    p = K.ntk_map("relu", 1.3, 0.0, 5, q0=0.7)
    np.testing.assert_allclose(p.ntk_diag, np.arange(1, 7) * p.nngp_diag, rtol=1e-14)


def _arccos_recursion(sw, sb, depth, q0, c0, a=0.0):
    """NNGP and NTK pairs of a (leaky) relu net by the arc-cosine kernels, written anew."""
    kd = [sw * q0 + sb]
    kc = [sw * q0 * c0 + sb]
    td, tc = [kd[0]], [kc[0]]
    for _ in range(depth):
        q, c = kd[-1], kc[-1] / kd[-1]
        t = math.acos(max(-1.0, min(1.0, c)))
        k1 = (math.sqrt(1 - c * c) + (math.pi - t) * c) / (2 * math.pi)
        k0 = (math.pi - t) / (2 * math.pi)
        dd = sw * (a + (1 - a) ** 2 / 2)
        dc = sw * (a + (1 - a) ** 2 * k0)
        kd.append(sw * q * (1 + a * a) / 2 + sb)
        kc.append(sw * q * (a * c + (1 - a) ** 2 * k1) + sb)
        td.append(kd[-1] + td[-1] * dd)
        tc.append(kc[-1] + tc[-1] * dc)
    return np.array(kd), np.array(kc), np.array(td), np.array(tc)


@pytest.mark.parametrize(("sw", "sb", "c0", "a"), [(2.0, 0.0, 0.3, 0.0), (1.6, 0.2, -0.5, 0.1)])
def test_ntk_cross_terms_against_arc_cosine_recursion(sw, sb, c0, a):
    act = A.get("leaky_relu", slope=a) if a else A.get("relu")
    p = K.ntk_map(act, sw, sb, 6, q0=1.3, c0=c0)
    kd, kc, td, tc = _arccos_recursion(sw, sb, 6, 1.3, c0, a)
    for got, ref in ((p.nngp_diag, kd), (p.nngp_cross, kc), (p.ntk_diag, td), (p.ntk_cross, tc)):
        np.testing.assert_allclose(got, ref, rtol=1e-13)


def test_ntk_linear_net_closed_form():
    # Sigma^m = sw^m q0 c0 + sb (1 + sw + ... + sw^(m-1)); Theta^L = sum_m Sigma^m sw^(L-m)
    sw, sb, q0, c0, depth = 1.3, 0.2, 0.8, 0.4, 5
    p = K.ntk_map("linear", sw, sb, depth, q0=q0, c0=c0)
    m = np.arange(1, depth + 2)
    sig = sw**m * q0 * c0 + sb * np.array([sum(sw**k for k in range(j)) for j in m])
    theta = np.array([sum(sig[j - 1] * sw ** (L - j) for j in range(1, L + 1)) for L in m])
    np.testing.assert_allclose(p.nngp_cross, sig, rtol=1e-14)
    np.testing.assert_allclose(p.ntk_cross, theta, rtol=1e-14)
    # without bias: Theta^L = L sw^L q0 c0
    p = K.ntk_map("linear", sw, 0.0, depth, q0=q0, c0=c0)
    np.testing.assert_allclose(p.ntk_cross, m * sw**m * q0 * c0, rtol=1e-14)


@pytest.mark.parametrize(("name", "sw", "sb"), [("tanh", 1.5, 0.05), ("gelu", 1.8, 0.02)])
def test_ntk_profile_against_the_mean_field_maps(name, sw, sb):
    depth = 4
    p = K.ntk_map(name, sw, sb, depth, q0=1.2, c0=0.6)
    np.testing.assert_allclose(p.nngp_diag, T.q_map(name, sw, sb, 1.2, depth + 1), rtol=1e-14)
    np.testing.assert_allclose(p.nngp_corr, T.c_map(name, sw, sb, 0.6, depth + 1, 1.2), atol=1e-11)
    for t in range(1, depth + 1):
        q = p.nngp_diag[t - 1]
        assert p.dot_diag[t] == pytest.approx(T.gradient_factor(name, sw, q), rel=1e-14)
    assert math.isnan(p.dot_diag[0]) and math.isnan(p.dot_cross[0])
    # the unrolled form Theta^L = sum_m Sigma^m prod_{m < k <= L} Sigmadot^k
    for diag, kern, dot in ((True, p.nngp_diag, p.dot_diag), (False, p.nngp_cross, p.dot_cross)):
        want = [sum(kern[m] * np.prod(dot[m + 1 : L + 1]) for m in range(L + 1)) for L in range(5)]
        np.testing.assert_allclose(p.ntk_diag if diag else p.ntk_cross, want, rtol=1e-13)
    # c0 = 1: the cross entries are the diagonal ones, exactly
    p1 = K.ntk_map(name, sw, sb, depth, q0=1.2)
    np.testing.assert_array_equal(p1.ntk_cross, p1.ntk_diag)
    np.testing.assert_array_equal(p1.nngp_corr, 1.0)


def test_ntk_profile_per_layer_sigma_w2_and_read_only_arrays():
    p = K.ntk_map("relu", [2.0, 2.0, 1.0], 0.0, 2)
    np.testing.assert_array_equal(p.nngp_diag, [2.0, 2.0, 1.0])
    np.testing.assert_array_equal(p.ntk_diag, [2.0, 4.0, 1.0 + 4.0 * 0.5])
    with pytest.raises(ValueError):
        p.ntk_diag[0] = 1.0
    with pytest.raises(ValueError, match="sigma_w2"):
        K.ntk_map("relu", [2.0, 2.0], 0.0, 2)  # needs depth + 1 values
    # an overflowing net: inf on the diagonal from there on, NaN elsewhere
    p = K.ntk_map("linear", 1e200, 0.0, 3, c0=0.5)
    assert p.nngp_diag[1] == math.inf and np.isnan(p.ntk_cross[2:]).all()


# --- the empirical NTK of wide random nets -------------------------------------------


def _inputs(n0, q0, c0, rng):
    a, b = rng.standard_normal(n0), rng.standard_normal(n0)
    a /= np.linalg.norm(a)
    b -= (b @ a) * a
    b /= np.linalg.norm(b)
    return math.sqrt(n0 * q0) * a, math.sqrt(n0 * q0) * (c0 * a + math.sqrt(1 - c0 * c0) * b)


def _net(widths, rng):
    ws = [rng.standard_normal((widths[i + 1], widths[i])) for i in range(len(widths) - 1)]
    bs = [rng.standard_normal(widths[i + 1]) for i in range(len(widths) - 1)]
    return ws, bs


def _forward(act, ws, bs, sw, sb, x):
    """Pre-activations h^1 .. h^{L+1} and layer inputs x^0 .. x^L (NTK parametrisation)."""
    hs, xs = [], [x]
    for t, (w, b) in enumerate(zip(ws, bs, strict=True)):
        h = math.sqrt(sw / w.shape[1]) * (w @ xs[-1]) + math.sqrt(sb) * b
        hs.append(h)
        if t < len(ws) - 1:
            xs.append(np.asarray(act.phi(h)))
    return hs, xs


def _backward(act, ws, sw, hs):
    """delta^l = d f / d h^l for the scalar output f = h^{L+1}."""
    deltas = [np.ones(1)]
    for t in range(len(ws) - 1, 0, -1):
        back = math.sqrt(sw / ws[t].shape[1]) * (ws[t].T @ deltas[0])
        deltas.insert(0, back * np.asarray(act.dphi(hs[t - 1])))
    return deltas


def jacobian(act, ws, bs, sw, sb, x):
    """The explicit Jacobian d f / d theta, theta = (W^1, b^1, ..., W^{L+1}, b^{L+1})."""
    hs, xs = _forward(act, ws, bs, sw, sb, x)
    deltas = _backward(act, ws, sw, hs)
    parts = []
    for t, w in enumerate(ws):
        parts.append(math.sqrt(sw / w.shape[1]) * np.outer(deltas[t], xs[t]).ravel())
        parts.append(math.sqrt(sb) * deltas[t])
    return np.concatenate(parts)


def empirical_ntk(act, ws, bs, sw, sb, x, y):
    """J(x) . J(y) summed layer by layer without forming J (the same sum, reordered)."""
    hx, xx = _forward(act, ws, bs, sw, sb, x)
    hy, xy = _forward(act, ws, bs, sw, sb, y)
    dx, dy = _backward(act, ws, sw, hx), _backward(act, ws, sw, hy)
    return sum((dx[t] @ dy[t]) * (sw / w.shape[1] * (xx[t] @ xy[t]) + sb) for t, w in enumerate(ws))


def test_explicit_jacobian_against_finite_differences_and_the_layer_sum():
    rng = np.random.default_rng(1)
    act, sw, sb = A.get("tanh"), 1.4, 0.1
    ws, bs = _net([5, 7, 6, 1], rng)
    x, y = _inputs(5, 1.0, 0.3, rng)
    jac = jacobian(act, ws, bs, sw, sb, x)
    theta = np.concatenate([p.ravel() for wb in zip(ws, bs, strict=True) for p in wb])
    shapes = [p.shape for wb in zip(ws, bs, strict=True) for p in wb]

    def f(th):
        parts, k = [], 0
        for s in shapes:
            n = int(np.prod(s))
            parts.append(th[k : k + n].reshape(s))
            k += n
        return float(_forward(act, parts[0::2], parts[1::2], sw, sb, x)[0][-1][0])

    h = 1e-6
    fd = np.array([(f(theta + h * e) - f(theta - h * e)) / (2 * h) for e in np.eye(theta.size)])
    np.testing.assert_allclose(jac, fd, atol=1e-8)
    jy = jacobian(act, ws, bs, sw, sb, y)
    assert empirical_ntk(act, ws, bs, sw, sb, x, y) == pytest.approx(jac @ jy, rel=1e-13)


def _wrong_variants(p):
    """NTKs of mistaken recursions: no Sigmadot factor, NNGP only, diagonal Sigmadot in the pair."""
    no_dot_d, no_dot_c = np.cumsum(p.nngp_diag)[-1], np.cumsum(p.nngp_cross)[-1]
    mixed = p.nngp_cross[0]
    for t in range(1, p.depth + 1):
        mixed = p.nngp_cross[t] + mixed * p.dot_diag[t]
    return [(no_dot_d, no_dot_c), (p.nngp_diag[-1], p.nngp_cross[-1]), (p.ntk_diag[-1], mixed)]


@pytest.mark.parametrize(
    ("name", "sw", "sb"), [("relu", 1.2, 0.1), ("tanh", 1.5, 0.05), ("gelu", 1.8, 0.02)]
)
def test_ntk_against_empirical_ntk_of_wide_nets(name, sw, sb):
    # width 2000, 3 hidden layers: one net's NTK scatters by 4-12 % (finite width),
    # so 6 nets per case; Z = 5 standard errors of their mean
    act, depth, width, n0, q0, c0, nets = A.get(name), 3, 2000, 40, 1.0, 0.5, 6
    p = K.ntk_map(act, sw, sb, depth, q0=q0, c0=c0)
    widths = [n0] + [width] * depth + [1]
    vals = []
    for seed in range(nets):
        rng = np.random.default_rng([17, seed])
        x, y = _inputs(n0, q0, c0, rng)
        ws, bs = _net(widths, rng)
        vals.append([empirical_ntk(act, ws, bs, sw, sb, u, v) for u, v in ((x, x), (x, y))])
    vals = np.array(vals)
    mean, se = vals.mean(axis=0), vals.std(axis=0, ddof=1) / math.sqrt(nets)
    theory = np.array([p.ntk_diag[-1], p.ntk_cross[-1]])
    assert np.all(se <= 0.06 * theory)  # the test has power: the mean is within 6 %
    assert np.all(np.abs(mean - theory) <= Z * se), (mean, theory, se)
    for wrong in _wrong_variants(p):
        assert np.any(np.abs(mean - np.array(wrong)) > Z * se), (wrong, mean, se)


# ----------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------

GOOD = {
    K.dual_kernel: {"activation": "tanh", "q1": 1.0, "q2": 2.0, "c": 0.5},
    K.derivative_kernel: {"activation": "tanh", "q1": 1.0, "q2": 2.0, "c": 0.5},
    K.second_derivative_kernel: {"activation": "tanh", "q1": 1.0, "q2": 2.0, "c": 0.5},
    K.c_map_slope: {"activation": "tanh", "sigma_w2": 1.5, "sigma_b2": 0.1, "c": 0.5, "q": 1.0},
    K.c_map_curvature: {"activation": "tanh", "sigma_w2": 1.5, "sigma_b2": 0.1, "c": 0.5, "q": 1.0},
    K.q_map_slope: {"activation": "tanh", "sigma_w2": 1.5, "sigma_b2": 0.1, "q": 1.0},
    K.ntk_map: {"activation": "tanh", "sigma_w2": 1.5, "sigma_b2": 0.1, "depth": 2, "q0": 1.0},
}
BAD = {
    "activation": ["nope", 3, None],
    "q1": [0.0, -1.0, math.inf, math.nan, "x", True],
    "q2": [0.0, -1.0, math.inf, math.nan, None],
    "c": [1.5, -1.0000001, math.nan, "x", False],
    "sigma_w2": [0.0, -1.0, math.inf, math.nan, "x", True],
    "sigma_b2": [-0.1, math.inf, math.nan, "x"],
    "q": [-1.0, math.inf, math.nan, "x"],
    "depth": [0, -1, 2.5, True, "3"],
    "q0": [0.0, -2.0, math.inf, math.nan],
    "c0": [1.5, -2.0, math.nan],
}
BAD_CASES = [
    (fn, param, value)
    for fn, kwargs in GOOD.items()
    for param in (*kwargs, *(("c0",) if fn is K.ntk_map else ()))
    for value in BAD[param]
]


@pytest.mark.parametrize(
    ("fn", "param", "value"),
    BAD_CASES,
    ids=[f"{fn.__name__}-{param}-{value!r}" for fn, param, value in BAD_CASES],
)
def test_bad_input_names_the_parameter(fn, param, value):
    kwargs = dict(GOOD[fn])
    kwargs[param] = value
    with pytest.raises(ValueError, match=param if param != "activation" else "activation"):
        fn(**kwargs)


def test_q_zero_is_valid_for_the_length_slope_only():
    assert K.q_map_slope("tanh", 1.5, 0.1, 0.0) == 1.5
    with pytest.raises(ValueError, match="q must be finite and > 0"):
        K.c_map_slope("tanh", 1.5, 0.1, 0.5, 0.0)


def test_good_calls_succeed():
    for fn, kwargs in GOOD.items():
        fn(**kwargs)
