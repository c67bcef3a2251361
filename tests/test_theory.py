"""Mean-field theory and Gaussian expectations (initsim.theory) and the ``initsim theory`` command.

The finite-width laws are tested in test_theory_finite_width.py, the Jacobian
theory in test_theory_jacobian.py.

Statistical tests use fixed seeds (so they cannot flake) and tolerances of
``Z`` Monte Carlo standard errors: ``Z = 5`` is a two-sided false-rejection
rate of about 6e-7 per comparison, had the seed been random.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate

from initsim import activations as A
from initsim import theory as T
from initsim.theory.gaussian import _bivariate_quadrature, _closed_form, _quad_expect, bivariate

Z = 5.0  # Monte Carlo tolerance in standard errors (alpha ~ 6e-7 two-sided)
NAMES = A.names()
# every registry activation, plus parameter values that move the kinks' weights
ACTS = [A.get(n) for n in NAMES] + [
    A.get("leaky_relu", slope=0.2),
    A.get("leaky_relu", slope=-0.5),
    A.get("elu", alpha=0.5),
]
ACT_IDS = [a.label for a in ACTS]


# ----------------------------------------------------------------------------------
# Independent high-precision references (mpmath, 30 digits)
# ----------------------------------------------------------------------------------

MP_LAMBDA = mp.mpf("1.0507009873554804934193349852946")
MP_ALPHA = mp.mpf("1.6732632423543772848170429916717")


def _mp_sigmoid(x):
    return 1 / (1 + mp.exp(-x))


def _mp_Phi(x):
    return mp.erfc(-x / mp.sqrt(2)) / 2


def _mp_pdf(x):
    return mp.exp(-x * x / 2) / mp.sqrt(2 * mp.pi)


def mp_activation(act):
    """phi, phi' and the kinks, written independently of initsim with mpmath."""
    name, p = act.name, mp.mpf(act.param)
    if name == "linear":
        return (lambda x: x), (lambda x: mp.mpf(1)), []
    if name == "relu":
        return (lambda x: x if x > 0 else mp.mpf(0)), (lambda x: mp.mpf(x > 0)), [0]
    if name == "leaky_relu":
        return (lambda x: x if x > 0 else p * x), (lambda x: mp.mpf(1) if x > 0 else p), [0]
    if name == "elu":
        return (
            (lambda x: x if x > 0 else p * mp.expm1(x)),
            (lambda x: mp.mpf(1) if x >= 0 else p * mp.exp(x)),
            [0],
        )
    if name == "selu":
        return (
            (lambda x: MP_LAMBDA * x if x > 0 else MP_LAMBDA * MP_ALPHA * mp.expm1(x)),
            (lambda x: MP_LAMBDA if x >= 0 else MP_LAMBDA * MP_ALPHA * mp.exp(x)),
            [0],
        )
    if name == "gelu":
        return (lambda x: x * _mp_Phi(x)), (lambda x: _mp_Phi(x) + x * _mp_pdf(x)), []
    if name == "silu":
        s = _mp_sigmoid
        return (lambda x: x * s(x)), (lambda x: s(x) * (1 + x * (1 - s(x)))), []
    if name == "softplus":
        return (lambda x: mp.log1p(mp.exp(x))), _mp_sigmoid, []
    if name == "sigmoid":
        s = _mp_sigmoid
        return s, (lambda x: s(x) * (1 - s(x))), []
    if name == "tanh":
        return mp.tanh, (lambda x: mp.sech(x) ** 2), []
    if name == "erf":
        return mp.erf, (lambda x: 2 / mp.sqrt(mp.pi) * mp.exp(-x * x)), []
    if name == "hard_tanh":
        return (
            (lambda x: max(mp.mpf(-1), min(mp.mpf(1), x))),
            (lambda x: mp.mpf(-1 < x < 1)),
            [-1, 1],
        )
    if name == "abs":
        return abs, mp.sign, [0]
    if name == "sin":
        return mp.sin, mp.cos, []
    if name == "cos":
        return mp.cos, (lambda x: -mp.sin(x)), []
    if name == "softsign":
        return (lambda x: x / (1 + abs(x))), (lambda x: 1 / (1 + abs(x)) ** 2), []
    if name == "atan":
        return mp.atan, (lambda x: 1 / (1 + x * x)), []
    if name == "asinh":
        return mp.asinh, (lambda x: 1 / mp.sqrt(1 + x * x)), []
    if name == "bent_identity":
        return (
            (lambda x: (mp.sqrt(x * x + 1) - 1) / 2 + x),
            (lambda x: x / (2 * mp.sqrt(x * x + 1)) + 1),
            [],
        )
    if name == "square":
        return (lambda x: x * x), (lambda x: 2 * x), []
    if name == "gelu_tanh":
        k, c3 = mp.sqrt(2 / mp.pi), mp.mpf("0.044715")

        def u(x):
            return k * (x + c3 * x**3)

        def half(x):  # (1 + tanh(u)) / 2 = 1 / (1 + e^(-2u)), without cancellation
            return 1 / (1 + mp.exp(-2 * u(x)))

        return (
            (lambda x: x * half(x)),
            (lambda x: half(x) + x * mp.sech(u(x)) ** 2 * k * (1 + 3 * c3 * x * x) / 2),
            [],
        )
    raise AssertionError(name)


def mp_expectation(act, q, kind):
    """E[f(sqrt(q) z)] by 30-digit tanh-sinh quadrature of the even part, split at kinks."""
    with mp.workdps(30):
        phi, dphi, kinks = mp_activation(act)
        f = {
            "phi": phi,
            "phi2": lambda x: phi(x) ** 2,
            "phi4": lambda x: phi(x) ** 4,
            "dphi2": lambda x: dphi(x) ** 2,
        }[kind]
        s = mp.sqrt(mp.mpf(q))
        pts = {mp.mpf(0), mp.mpf(3), mp.mpf(8)}
        pts |= {abs(mp.mpf(k)) / s for k in kinks if k != 0}
        pts |= {mp.mpf(x) / s for x in (1, 5) if x / s < 30}
        return mp.quad(lambda z: (f(s * z) + f(-s * z)) * _mp_pdf(z), [*sorted(pts), mp.inf])


def mp_q_map(act, sigma_w2, sigma_b2, q0):
    """q^1 .. q^L of the length map at 30 digits, from its definition (independent of initsim).

    ``q^1 = sigma_w2_1 q0 + sigma_b2`` (the input is not passed through phi) and
    ``q^l = sigma_w2_l E[phi(sqrt(q^{l-1}) z)^2] + sigma_b2``; entry ``l - 1`` of
    ``sigma_w2`` is layer ``l``'s.
    """
    with mp.workdps(30):
        sb = mp.mpf(sigma_b2)
        q = [mp.mpf(sigma_w2[0]) * mp.mpf(q0) + sb]
        for sw in sigma_w2[1:]:
            q.append(mp.mpf(sw) * mp_expectation(act, q[-1], "phi2") + sb)
    return q


def mp_grad_sq(act, sigma_w2, sigma_b2, q0, widths):
    """Mean-field E[delta_l^2], l = 1..L, at 30 digits, as one closed product per layer.

    The backward pass starts from ``delta_L = u * phi'(h_L)`` with a unit-variance
    output direction ``u`` (no weight layer, so no sigma_w2 factor for it) and
    ``delta_l = phi'(h_l) (W_{l+1}^T delta_{l+1})`` with ``Var(W_{l+1}) = sigma_w2_{l+1} / n_l``.
    Under gradient independence, with ``h_k ~ N(0, q^k)``,
    ``E[delta_l^2] = prod_{k=l..L} E[phi'(h_k)^2] * prod_{k=l+1..L} sigma_w2_k n_k / n_{k-1}``.
    """
    q = mp_q_map(act, sigma_w2, sigma_b2, q0)
    depth = len(q)
    with mp.workdps(30):
        d2 = [mp_expectation(act, qk, "dphi2") for qk in q]
        out = []
        for layer in range(1, depth + 1):
            val = mp.mpf(1)
            for k in range(layer, depth + 1):
                val *= d2[k - 1]
            for k in range(layer + 1, depth + 1):
                val *= mp.mpf(sigma_w2[k - 1]) * widths[k] / widths[k - 1]
            out.append(float(val))
    return np.array(out)


# The claim (initsim.theory.gaussian, README): relative agreement with 30-digit mpmath of
# about 1e-15 on 1e-4 <= q <= 1e3, and about 1e-16 sqrt(E[phi^2]) absolute where E[phi]
# vanishes by cancellation. Measured on the default and the slow fine grid: worst
# relative error 1.5e-15 (elu's E[phi] at q = 1e-4), worst absolute one 4.7e-17
# sqrt(E[phi^2]) (selu's E[phi] at q = 1, which is 0 by design).
MP_RTOL = 4e-15
MP_PHI_ATOL = 1e-15  # in units of sqrt(E[phi^2])


def _check_against_mpmath(acts, qs):
    for act in acts:
        for q in qs:
            for kind in T.KINDS:
                ref = mp_expectation(act, q, kind)
                got = T.gaussian_expectation(act, q, kind)
                # E[phi] can vanish by cancellation (odd phi; selu at q = 1, by design):
                # there the error is judged against the size of phi, sqrt(E[phi^2])
                scale = math.sqrt(T.gaussian_expectation(act, q, "phi2")) if kind == "phi" else 0
                tol = MP_RTOL * abs(ref) + MP_PHI_ATOL * scale + 1e-300
                assert abs(got - ref) <= tol, (act.label, q, kind, got, float(ref))


def test_gaussian_expectation_matches_mpmath():
    # q spans 7 decades; 44 is where fixed-order Gauss-Hermite already fails for sigmoid
    _check_against_mpmath([A.get(n) for n in NAMES], [1e-4, 44.0, 1e3])


def test_gaussian_expectation_matches_mpmath_with_parameters():
    _check_against_mpmath(ACTS[len(NAMES) :], [0.3, 500.0])


@pytest.mark.slow
def test_gaussian_expectation_matches_mpmath_on_a_fine_grid():
    _check_against_mpmath(ACTS, np.logspace(-4, 3, 15).tolist())


def test_closed_forms_agree_with_the_generic_quadrature():
    """Every closed form against the adaptive quadrature that would be used without it."""
    codes = {"phi": 0, "phi2": 1, "phi4": 2, "dphi2": 3}
    checked = 0
    for act in ACTS:
        for kind, code in codes.items():
            for q in [1e-4, 0.02, 0.7, 3.0, 60.0, 1e3]:
                closed = _closed_form(act, np.array([q]), code)
                if closed is None:
                    continue
                quad = _quad_expect(act, q, code)
                # E[cos] = e^(-q/2) is below the quadrature's absolute resolution at
                # large q: judge E[phi] also against the size of phi, as MP_PHI_ATOL does
                atol = MP_PHI_ATOL * math.sqrt(_quad_expect(act, q, 1)) if code == 0 else 1e-300
                assert closed[0] == pytest.approx(quad, rel=1e-11, abs=atol), (act.label, kind)
                checked += 1
    assert checked > 100


def test_literature_closed_forms():
    q = np.array([1e-3, 0.5, 2.0, 50.0])
    assert np.allclose(T.gaussian_expectation("relu", q, "phi2"), q / 2, rtol=1e-15)
    assert np.allclose(T.gaussian_expectation("relu", q, "phi"), np.sqrt(q / (2 * np.pi)))
    assert np.allclose(T.gaussian_expectation("relu", q, "phi4"), 1.5 * q * q)
    assert np.all(T.gaussian_expectation("relu", q, "dphi2") == 0.5)
    # Williams (1997): E[erf(sqrt(q) z)^2] = (2/pi) arcsin(2q / (1 + 2q))
    ref = 2 / np.pi * np.arcsin(2 * q / (1 + 2 * q))
    assert np.allclose(T.gaussian_expectation("erf", q, "phi2"), ref, rtol=1e-13)
    assert T.gaussian_expectation("linear", 3.0, "phi4") == 27.0


def test_vectorised_shapes_and_limits():
    q = np.array([[0.1, 1.0], [10.0, 100.0]])
    out = T.gaussian_expectation("tanh", q, "phi2")
    assert isinstance(out, np.ndarray) and out.shape == (2, 2)
    for i in range(2):
        for j in range(2):
            assert out[i, j] == T.gaussian_expectation("tanh", float(q[i, j]), "phi2")
    assert isinstance(T.gaussian_expectation("tanh", 1.0, "phi2"), float)
    # q -> 0+ and q -> inf limits
    assert T.gaussian_expectation("relu", 0.0, "dphi2") == 0.5  # mean of one-sided limits
    assert T.gaussian_expectation("hard_tanh", 0.0, "dphi2") == 1.0
    assert T.gaussian_expectation("sigmoid", 0.0, "phi2") == 0.25
    assert T.gaussian_expectation("tanh", math.inf, "phi2") == 1.0
    assert T.gaussian_expectation("sigmoid", math.inf, "phi2") == 0.5
    assert T.gaussian_expectation("tanh", math.inf, "dphi2") == 0.0
    assert T.gaussian_expectation("relu", math.inf, "phi2") == math.inf
    assert T.gaussian_expectation("gelu", math.inf, "dphi2") == 0.5
    # continuity at the ends
    assert T.gaussian_expectation("tanh", 1e-12, "dphi2") == pytest.approx(1.0, abs=1e-11)
    assert T.gaussian_expectation("sigmoid", 1e12, "phi2") == pytest.approx(0.5, abs=1e-6)


@given(
    name=st.sampled_from(NAMES),
    q=st.floats(min_value=1e-3, max_value=1e2, allow_nan=False, allow_infinity=False),
)
def test_moment_inequalities(name, q):
    m1 = T.gaussian_expectation(name, q, "phi")
    m2 = T.gaussian_expectation(name, q, "phi2")
    m4 = T.gaussian_expectation(name, q, "phi4")
    assert m1 * m1 <= m2 * (1 + 1e-12)  # Jensen
    assert m2 * m2 <= m4 * (1 + 1e-12)  # Cauchy-Schwarz
    assert T.gaussian_expectation(name, q, "dphi2") >= 0.0


@pytest.mark.parametrize("act", ACTS, ids=ACT_IDS)
def test_gaussian_expectation_against_monte_carlo(act):
    rng = np.random.default_rng(20240601)
    z = rng.standard_normal(400_000)
    for q in (0.5, 4.0):
        x = math.sqrt(q) * z
        p, d = np.asarray(act.phi(x)), np.asarray(act.dphi(x))
        for kind, f in {"phi": p, "phi2": p * p, "phi4": p**4, "dphi2": d * d}.items():
            se = f.std(ddof=1) / math.sqrt(f.size)
            theory = T.gaussian_expectation(act, q, kind)
            assert abs(f.mean() - theory) <= Z * se + 1e-12, (act.label, q, kind)


# ----------------------------------------------------------------------------------
# Two-dimensional expectations and the correlation map
# ----------------------------------------------------------------------------------

C_GRID = [-1.0, -0.9, -0.3, 0.0, 0.5, 0.9, 0.999, 1 - 1e-8, 1.0]


@pytest.mark.parametrize(
    "act",
    [A.get("relu"), A.get("leaky_relu", slope=0.2), A.get("erf"), A.get("linear")],
    ids=lambda a: a.label,
)
def test_bivariate_rule_reproduces_the_closed_kernels(act):
    """The generic 2-D rule, run on activations with known kernels (kinks, saturation)."""
    for q in [1e-4, 0.1, 1.0, 10.0, 1e3]:
        scale = {
            "phi": T.gaussian_expectation(act, q, "phi2"),
            "gap": T.gaussian_expectation(act, q, "phi2"),
            "dphi": T.gaussian_expectation(act, q, "dphi2"),
        }
        for c in C_GRID:
            for which in ("phi", "dphi", "gap"):
                exact = bivariate(act, q, c, which)
                num = _bivariate_quadrature(act, q, c, which)
                assert abs(num - exact) <= 1e-12 * scale[which], (q, c, which)


def test_bivariate_gap_is_relatively_accurate_near_c_equal_one():
    """E[(phi(u1) - phi(u2))^2] / 2 for relu against 40-digit arithmetic, 1 - c down to 1e-10.

    The claim (initsim.theory.gaussian): 1 - c stays accurate to about 1e-12 relative as
    c -> 1; measured at most 1.5e-12 (q = 1e-3, 1 - c = 1e-10).
    """
    with mp.workdps(40):
        for q in (1e-3, 1.0, 1e3):
            for c in (0.99, 1 - 1e-6, 1 - 1e-10):
                cm = mp.mpf(c)
                k1 = (mp.sqrt(1 - cm * cm) + (mp.pi - mp.acos(cm)) * cm) / (2 * mp.pi)
                ref = mp.mpf(q) / 2 - mp.mpf(q) * k1
                got = _bivariate_quadrature(A.get("relu"), q, c, "gap")
                assert abs(got - ref) <= 3e-12 * ref, (q, c, float(abs(got - ref) / ref))


@pytest.mark.parametrize("act", ACTS, ids=ACT_IDS)
def test_bivariate_rule_at_c_in_minus_one_zero_one(act):
    """c = 1: E[phi^2]; c = 0: E[phi]^2; c = -1: E[phi(x) phi(-x)] (1-D quadrature)."""
    for q in (0.05, 2.0, 300.0):
        s = math.sqrt(q)
        e2 = T.gaussian_expectation(act, q, "phi2")
        e1 = T.gaussian_expectation(act, q, "phi")
        assert _bivariate_quadrature(act, q, 1.0, "phi") == pytest.approx(e2, rel=1e-12)
        assert abs(_bivariate_quadrature(act, q, 0.0, "phi") - e1 * e1) <= 1e-12 * e2
        pts = sorted({1.0 / s, 3.0 / s, 1.0, 4.0} | {abs(k) / s for k in act.kinks if k})
        anti = integrate.quad(
            lambda z, s=s: 2 * act.phi(s * z) * act.phi(-s * z) * math.exp(-z * z / 2),
            0,
            40,
            points=[p for p in pts if p < 40],
            limit=500,
            epsabs=0,
            epsrel=1e-13,
            full_output=1,
        )[0]
        anti /= math.sqrt(2 * math.pi)
        assert abs(_bivariate_quadrature(act, q, -1.0, "phi") - anti) <= 1e-11 * e2


def _nested_reference(act, q, c):
    """E[(phi(u1) - phi(u2))^2] / 2 by nested adaptive quadrature (double precision)."""
    s, a, b = math.sqrt(q), math.sqrt((1 + c) / 2), math.sqrt((1 - c) / 2)

    def inner(z1):
        v = s * a * z1
        pts = sorted({abs(k - v) / (s * b) for k in (*act.kinks, 0.0)} | {1.0, 3.0})
        val = integrate.quad(
            lambda t: (act.phi(v + s * b * t) - act.phi(v - s * b * t)) ** 2 * math.exp(-t * t / 2),
            0,
            15,
            points=[p for p in pts if 0 < p < 15],
            limit=200,
            epsabs=0,
            epsrel=1e-11,
            full_output=1,  # no IntegrationWarning at the roundoff level
        )[0]
        return val / math.sqrt(2 * math.pi)

    pts = sorted({k / (s * a) for k in (*act.kinks, 0.0)} | {-3.0, -1.0, 1.0, 3.0})
    val = integrate.quad(
        lambda z: inner(z) * math.exp(-z * z / 2),
        -13,
        13,
        points=[p for p in pts if -13 < p < 13],
        limit=200,
        epsabs=0,
        epsrel=1e-10,
        full_output=1,
    )[0]
    return val / math.sqrt(2 * math.pi)


@pytest.mark.parametrize(("name", "q", "c"), [("tanh", 1e3, 0.9), ("hard_tanh", 2.0, 0.7)])
def test_bivariate_rule_against_nested_adaptive_quadrature(name, q, c):
    act = A.get(name)
    ref = _nested_reference(act, q, c)
    # as accurate as the reference's requested epsrel 1e-10 (measured 1.6e-15)
    assert _bivariate_quadrature(act, q, c, "gap") == pytest.approx(ref, rel=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "q", "c"), [("tanh", 1.0, 0.5), ("sigmoid", 44.0, 0.3), ("selu", 1.0, -0.4)]
)
def test_bivariate_rule_against_nested_mpmath(name, q, c):
    act = A.get(name)
    phi, _, kinks = mp_activation(act)
    with mp.workdps(15):
        s, a, b = mp.sqrt(q), mp.sqrt((1 + mp.mpf(c)) / 2), mp.sqrt((1 - mp.mpf(c)) / 2)

        def inner(z1):
            v = s * a * z1
            pts = sorted({abs((k - v) / (s * b)) for k in [*kinks, 0]} | {mp.mpf(2), mp.mpf(5)})
            f = lambda t: (phi(v + s * b * t) - phi(v - s * b * t)) ** 2 * _mp_pdf(t)  # noqa: E731
            return mp.quad(f, [mp.mpf(0), *[p for p in pts if 0 < p < 20], mp.inf])

        pts = sorted({mp.mpf(k) / (s * a) for k in kinks} | {mp.mpf(x) for x in (-5, -2, 0, 2, 5)})
        ref = mp.quad(lambda z: inner(z) * _mp_pdf(z), [-mp.inf, *pts, mp.inf])
    assert _bivariate_quadrature(act, q, c, "gap") == pytest.approx(float(ref), rel=1e-11)


@pytest.mark.parametrize("act", ACTS, ids=ACT_IDS)
@pytest.mark.parametrize(("c0", "sw", "sb"), [(0.4, 1.7, 0.1), (-0.6, 1.2, 0.0)])
def test_c_map_against_monte_carlo(act, c0, sw, sb):
    q0 = 1.3
    q1, q2 = T.q_map(act, sw, sb, q0, 2)
    c = T.c_map(act, sw, sb, c0, 2, q0=q0)
    assert c[0] == pytest.approx((sw * q0 * c0 + sb) / q1, rel=1e-15)
    rng = np.random.default_rng(7)
    z1, z2 = rng.standard_normal((2, 400_000))
    u1 = math.sqrt(q1) * z1
    u2 = math.sqrt(q1) * (c[0] * z1 + math.sqrt(1 - c[0] ** 2) * z2)
    prod = np.asarray(act.phi(u1)) * np.asarray(act.phi(u2))
    mc = (sw * prod.mean() + sb) / q2
    se = sw * prod.std(ddof=1) / math.sqrt(prod.size) / q2
    assert abs(c[1] - mc) <= Z * se, (act.label, c[1], mc, se)


def test_relu_arccosine_and_erf_arcsine_maps():
    # Cho & Saul: He init, no bias, orthogonal inputs -> c^2 = 1/pi
    c = T.c_map("relu", 2.0, 0.0, 0.0, 2)
    assert c[0] == 0.0 and c[1] == pytest.approx(1 / math.pi, rel=1e-15)
    # the normalised arc-cosine map, iterated, for a generic starting correlation
    c = T.c_map("relu", 2.0, 0.0, 0.3, 6)
    ref = [0.3]
    for _ in range(5):
        x = ref[-1]
        ref.append((math.sqrt(1 - x * x) + (math.pi - math.acos(x)) * x) / math.pi)
    assert np.allclose(c, ref, rtol=1e-14)
    # Williams: erf with bias, one step of the arcsine kernel
    sw, sb, q0, c0 = 1.8, 0.2, 0.7, 0.35
    q1 = sw * q0 + sb
    q2 = sw * 2 / math.pi * math.asin(2 * q1 / (1 + 2 * q1)) + sb  # E[erf(u)^2], Williams
    c1 = (sw * q0 * c0 + sb) / q1
    c2 = (sw * 2 / math.pi * math.asin(2 * q1 * c1 / (1 + 2 * q1)) + sb) / q2
    assert T.c_map("erf", sw, sb, c0, 2, q0=q0)[1] == pytest.approx(c2, rel=1e-14)
    # linear: c stays put without bias
    assert np.allclose(T.c_map("linear", 0.8, 0.0, -0.4, 5), -0.4, rtol=1e-14)


def test_c_map_keeps_one_minus_c_accurate():
    """In the ordered phase 1 - c^l shrinks by chi_1 per layer once c is near 1."""
    sw, sb = 1.5, 0.05
    qs = T.fixed_point("tanh", sw, sb)
    q0 = (qs - sb) / sw  # q^l = q* from layer 1 on
    c = T.c_map("tanh", sw, sb, 1 - 1e-7, 40, q0=q0)
    ratios = (1 - c[1:]) / (1 - c[:-1])
    assert np.all(1 - c > 0) and 1 - c[-1] < 1e-7 * 0.95**38
    assert np.allclose(ratios, T.chi1("tanh", sw, sb), rtol=1e-6)


# ----------------------------------------------------------------------------------
# q map, fixed points, chi_1, the critical line, phases, depth scales
# ----------------------------------------------------------------------------------


def test_q_map_basics():
    assert np.all(T.q_map("relu", 2.0, 0.0, 1.0, 50) == 2.0)  # He keeps q constant
    assert np.array_equal(T.q_map("linear", 0.5, 0.0, 8.0, 4), [4, 2, 1, 0.5])
    # overflow is inf, silently (warnings are errors here)
    assert T.q_map("relu", 3.0, 0.0, 1.0, 2000)[-1] == math.inf


def test_q_map_with_bias_in_closed_form():
    """relu: E[relu(u)^2] = q / 2, so q^l = sigma_w2 q^{l-1} / 2 + sigma_b2; linear: no 1/2."""
    sw, sb, q0 = [1.5, 2.5, 0.7, 3.0], 0.2, 1.3
    for name, gain in (("relu", 0.5), ("linear", 1.0), (A.get("leaky_relu", slope=0.2), 0.52)):
        ref = [sw[0] * q0 + sb]
        for s in sw[1:]:
            ref.append(s * gain * ref[-1] + sb)
        np.testing.assert_allclose(T.q_map(name, sw, sb, q0, 4), ref, rtol=1e-15, atol=0)


@pytest.mark.parametrize(("sw", "sb", "q0"), [([1.0, 2.0, 0.5], 0.1, 2.0), (1.7, 0.0, 0.6)])
@pytest.mark.parametrize("name", ["tanh", "gelu"])
def test_q_map_against_mpmath(name, sw, sb, q0):
    """The length map, layer by layer, against its definition at 30 digits."""
    sws = sw if isinstance(sw, list) else [sw] * 3
    q = T.q_map(name, sw, sb, q0, 3)
    assert q[0] == sws[0] * q0 + sb  # layer 1 is affine in q0: no phi
    ref = np.array([float(x) for x in mp_q_map(A.get(name), sws, sb, q0)])
    # each layer adds one expectation (relative error ~1e-15, MP_RTOL) and shrinks the
    # error it inherits by q F'(q) / F(q) <= 1
    np.testing.assert_allclose(q, ref, rtol=MP_RTOL, atol=0)


@pytest.mark.parametrize(
    ("name", "sw", "sb", "expected"),
    [
        ("relu", 2.0, 0.0, 2.0),  # every q is fixed: the limit from q0 = 1
        ("relu", 1.0, 0.1, 0.2),  # sigma_b2 / (1 - sigma_w2 / 2)
        ("relu", 1.0, 0.0, 0.0),
        ("relu", 3.0, 0.0, math.inf),
        ("relu", 2.0, 0.1, math.inf),
        ("linear", 0.5, 0.1, 0.2),
        ("linear", 1.0, 0.0, 1.0),
        ("tanh", 1.0, 0.0, 0.0),
        ("tanh", 0.5, 0.0, 0.0),
        ("erf", math.pi / 4, 0.0, 0.0),
        ("hard_tanh", 1.0, 0.0, 0.0),
        ("gelu", 3.0, 0.0, math.inf),
        ("selu", 1.0, 0.0, 1.0),  # self-normalising: E[selu(z)^2] = 1
    ],
)
def test_fixed_point_special_cases(name, sw, sb, expected):
    assert T.fixed_point(name, sw, sb) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("name", "sw", "sb"),
    [
        ("tanh", 1.5, 0.05),
        ("tanh", 4.0, 0.3),
        ("sigmoid", 20.0, 0.1),
        ("hard_tanh", 2.0, 0.1),
        ("erf", 2.0, 0.1),
        ("elu", 1.5, 0.1),
        ("softplus", 1.0, 0.0),
        ("silu", 1.0, 1.0),
        ("gelu", 1.5, 0.2),
        ("tanh", 1.2, 0.0),
    ],
)
def test_fixed_point_is_the_limit_of_the_q_map(name, sw, sb):
    qs = T.fixed_point(name, sw, sb)
    assert sw * T.gaussian_expectation(name, qs, "phi2") + sb == pytest.approx(qs, rel=1e-12)
    assert T.q_map(name, sw, sb, 1.0, 400)[-1] == pytest.approx(qs, rel=1e-9)


def _mp_tanh_critical(sb):
    """Tanh critical line, parametrised by q*: sigma_w2 = 1 / E[sech^4], sigma_b2 = q - ..."""
    with mp.workdps(25):

        def e(f, q):
            s = mp.sqrt(q)
            return 2 * mp.quad(lambda z: f(s * z) * _mp_pdf(z), [0, 1 / s, 3, mp.inf])

        def sw_of(q):
            return 1 / e(lambda x: mp.sech(x) ** 4, q)

        def sb_of(q):
            return q - sw_of(q) * e(lambda x: mp.tanh(x) ** 2, q)

        q = mp.findroot(lambda q: sb_of(q) - sb, mp.mpf(0.5))
        return float(sw_of(q)), float(q)


def test_tanh_critical_line_matches_an_independent_computation():
    assert T.critical_sigma_w2("tanh", 0.0) == 1.0  # Poole et al. 2016
    for sb in (0.05, 0.5):
        sw_ref, q_ref = _mp_tanh_critical(sb)
        sw = T.critical_sigma_w2("tanh", sb)
        # claimed relative accuracy about 1e-13 (measured 7e-16); q* inherits it, times
        # d ln q* / d ln sigma_w2 (1.9 at sigma_b2 = 0.05, 1.0 at 0.5), plus the fixed-point
        # search's own 4e-15 (measured 2e-15)
        assert sw == pytest.approx(sw_ref, rel=2e-13)
        assert T.fixed_point("tanh", sw, sb) == pytest.approx(q_ref, rel=5e-13)
        assert T.phase("tanh", sw, sb) == "critical"
    assert 1.7 < T.critical_sigma_w2("tanh", 0.05) < 1.8  # Schoenholz et al. 2017, Fig. 1


def test_other_critical_points():
    assert T.critical_sigma_w2("erf", 0.0) == pytest.approx(math.pi / 4, rel=1e-14)
    assert T.critical_sigma_w2("relu", 0.0) == 2.0
    assert T.critical_sigma_w2("relu", 0.3) == 2.0
    assert T.critical_sigma_w2("linear", 0.1) == 1.0
    a = 0.2
    assert T.critical_sigma_w2(A.get("leaky_relu", slope=a), 0.0) == pytest.approx(2 / (1 + a * a))
    assert T.critical_sigma_w2("hard_tanh", 0.0) == 1.0
    for name, sb in [("erf", 0.2), ("sigmoid", 0.1), ("elu", 0.05), ("selu", 0.5), ("gelu", 0.5)]:
        sw = T.critical_sigma_w2(name, sb)
        # phase(): chi1 and critical_sigma_w2 are good to ~1e-13 (measured 4e-16)
        assert T.chi1(name, sw, sb) == pytest.approx(1.0, abs=2e-13), name
        assert T.chi1(name, 0.99 * sw, sb) < 1.0 < T.chi1(name, 1.01 * sw, sb), name


def test_discontinuous_transition_has_no_critical_point():
    # gelu without bias: q* jumps from 0 (chi_1 = sigma_w2 / 4) to inf (chi_1 = sigma_w2 / 2)
    with pytest.raises(ValueError, match="no critical sigma_w2"):
        T.critical_sigma_w2("gelu", 0.0)


def test_phases():
    assert T.phase("tanh", 1.5, 0.05) == "ordered"
    assert T.phase("tanh", 2.5, 0.05) == "chaotic"
    assert T.phase("tanh", 1.0, 0.0) == "critical"
    assert T.phase("relu", 2.0, 0.0) == "critical"
    assert T.phase("relu", 2.0 * (1 + 1e-6), 0.0) == "chaotic"
    assert T.phase("relu", 2.0 * (1 + 1e-6), 0.0, tol=1e-5) == "critical"
    assert T.phase("relu", 1.9, 0.0) == "ordered"
    assert T.chi1("relu", 1.9, 0.3) == pytest.approx(0.95)
    assert T.chi1("tanh", 0.5, 0.0) == 0.5  # q* = 0: phi'(0)^2 = 1
    assert T.chi1("erf", 0.5, 0.0) == pytest.approx(0.5 * 4 / math.pi)


def _slope_of_q_map(name, sw, sb, qs, h=1e-4):
    """F'(q*) by a central difference of F(q) = sw E[phi^2](q) + sb."""
    f = [sw * T.gaussian_expectation(name, qs * (1 + e), "phi2") + sb for e in (h, -h)]
    return (f[0] - f[1]) / (2 * h * qs)


@pytest.mark.parametrize(
    ("name", "sw", "sb"),
    [("tanh", 1.5, 0.05), ("hard_tanh", 2.0, 0.1), ("sigmoid", 20.0, 0.1), ("elu", 1.5, 0.1)],
)
def test_depth_scale_of_q_matches_the_q_map(name, sw, sb):
    # hard_tanh: phi phi'' has delta masses at the kinks, which the q-derivative form includes
    xi_q, _ = T.depth_scales(name, sw, sb)
    qs = T.fixed_point(name, sw, sb)
    assert math.exp(-1 / xi_q) == pytest.approx(_slope_of_q_map(name, sw, sb, qs), rel=1e-6)
    # and the q map itself: start at q^1 = q* (1 + 1e-4), deviations shrink by F'(q*)
    q = T.q_map(name, sw, sb, (qs * (1 + 1e-4) - sb) / sw, 6)
    d = q - qs
    assert np.allclose(d[2:] / d[1:-1], math.exp(-1 / xi_q), rtol=1e-3)


def test_depth_scale_of_c_in_the_ordered_phase():
    sw, sb = 1.5, 0.05
    _, xi_c = T.depth_scales("tanh", sw, sb)
    assert xi_c == pytest.approx(-1 / math.log(T.chi1("tanh", sw, sb)), rel=1e-14)


def test_depth_scale_of_c_in_the_chaotic_phase():
    sw, sb = 2.5, 0.05
    c_star, chi_c = T.correlation_fixed_point("tanh", sw, sb)
    assert 0.0 < c_star < 1.0 and chi_c < 1.0 < T.chi1("tanh", sw, sb)
    _, xi_c = T.depth_scales("tanh", sw, sb)
    assert xi_c == pytest.approx(-1 / math.log(chi_c), rel=1e-14)
    # start on q^1 = q* and c^1 = c* + 1e-5: deviations shrink by chi_c per layer
    qs = T.fixed_point("tanh", sw, sb)
    q0 = (qs - sb) / sw
    c0 = ((c_star + 1e-5) * qs - sb) / (sw * q0)
    c = T.c_map("tanh", sw, sb, c0, 8, q0=q0)
    eps = c - c_star
    assert eps[0] == pytest.approx(1e-5, rel=1e-9)
    assert np.allclose(eps[1:] / eps[:-1], chi_c, rtol=1e-4)
    # odd activation, no bias: c* = 0
    assert T.correlation_fixed_point("tanh", 2.0, 0.0)[0] == 0.0


def test_depth_scales_special_cases():
    assert T.depth_scales("relu", 2.0, 0.0) == (math.inf, math.inf)
    assert T.depth_scales("relu", 3.0, 0.0) == (math.inf, math.inf)  # q* = inf
    xi_q, xi_c = T.depth_scales("relu", 1.0, 0.1)
    assert xi_q == xi_c == pytest.approx(1 / math.log(2))
    assert T.depth_scales("tanh", T.critical_sigma_w2("tanh", 0.05), 0.05)[1] == math.inf


# ----------------------------------------------------------------------------------
# Gradients
# ----------------------------------------------------------------------------------


def test_gradient_factor_and_grad_sq_map_closed_forms():
    """relu: E[relu'(h)^2] = 1/2 at every q, so the maps are products of known numbers."""
    assert T.gradient_factor("relu", 2.0, 5.0) == 1.0
    assert T.gradient_factor("relu", 2.0, 5.0, width_ratio=3.0) == 3.0
    assert T.gradient_factor("linear", 0.7, 2.0, width_ratio=0.5) == 0.35
    assert np.array_equal(T.grad_sq_map("relu", 2.0, 0.0, 1.0, [4, 8, 8, 8]), [0.5, 0.5, 0.5])
    # widths enter as n_{l+1} / n_l: [., 8, 16, 32] -> factors 2 * 16/8 / 2 = 2 per step
    assert np.array_equal(T.grad_sq_map("relu", 2.0, 0.0, 1.0, [4, 8, 16, 32]), [2.0, 1.0, 0.5])
    # per-layer sigma_w2: layer l's gradient carries sigma_w2 of layers l+1..L, not its own
    g = T.grad_sq_map("relu", [3.0, 1.0, 4.0], 0.3, 1.0, [4, 8, 8, 8])
    np.testing.assert_allclose(g, [0.5 * 0.5 * 0.5 * 1.0 * 4.0, 0.5 * 0.5 * 4.0, 0.5], rtol=1e-15)
    # the output direction u has unit variance: E[delta_L^2] = E[phi'(h_L)^2]
    assert T.grad_sq_map("linear", 0.3, 0.0, 1.0, [2, 3])[0] == 1.0


@pytest.mark.parametrize("q", [1e-3, 0.7, 40.0])
def test_gradient_factor_against_mpmath(q):
    ref = mp_expectation(A.get("tanh"), q, "dphi2")
    got = T.gradient_factor("tanh", 1.5, q, width_ratio=0.25)
    assert abs(got - 0.375 * ref) <= MP_RTOL * 0.375 * ref


@pytest.mark.parametrize("sb", [0.0, 0.1])
def test_grad_sq_map_tanh_against_an_independent_product(sb):
    """tanh, per-layer sigma_w2 and widths: every layer against the closed product at 30 digits."""
    sw = [1.0, 2.0, 0.5, 1.6]
    widths = [3, 5, 5, 10, 4]
    got = T.grad_sq_map("tanh", sw, sb, 1.5, widths)
    ref = mp_grad_sq(A.get("tanh"), sw, sb, 1.5, widths)
    # layer l multiplies L - l + 1 expectations (each to MP_RTOL) and inherits the q map's
    # error: a relative error of at most about L MP_RTOL
    np.testing.assert_allclose(got, ref, rtol=len(sw) * MP_RTOL, atol=0)
    # n_0 does not enter
    assert np.array_equal(T.grad_sq_map("tanh", sw, sb, 1.5, [7, *widths[1:]]), got)


def test_grad_sq_map_against_monte_carlo_linear_nets():
    """Linear nets: the backward pass is independent of the forward one, so the map is exact."""
    widths = [5, 7, 3, 6]
    sw = np.array([1.3, 0.7, 2.0])
    nets = 20_000
    rng = np.random.default_rng(11)
    delta = rng.standard_normal((nets, widths[-1]))  # delta_L = u * phi'(h_L), phi' = 1
    sq = [np.mean(delta**2, axis=1)]
    for layer in range(len(widths) - 1, 1, -1):  # W_layer maps n_{layer-1} -> n_layer
        n_in, n_out = widths[layer - 1], widths[layer]
        w = rng.standard_normal((nets, n_out, n_in)) * math.sqrt(sw[layer - 1] / n_in)
        delta = np.einsum("koi,ko->ki", w, delta)
        sq.append(np.mean(delta**2, axis=1))
    sq = np.array(sq[::-1])  # layers 1..L
    pred = T.grad_sq_map("linear", sw, 0.0, 1.0, widths)
    se = sq.std(axis=1, ddof=1) / math.sqrt(nets)
    assert np.all(np.abs(sq.mean(axis=1) - pred) <= Z * se), (sq.mean(axis=1), pred)


# ----------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: T.q_map("tanh", 0.0, 0.0, 1.0, 3), "sigma_w2"),
        (lambda: T.q_map("tanh", -1.0, 0.0, 1.0, 3), "sigma_w2"),
        (lambda: T.q_map("tanh", math.inf, 0.0, 1.0, 3), "sigma_w2"),
        (lambda: T.q_map("tanh", math.nan, 0.0, 1.0, 3), "sigma_w2"),
        (lambda: T.q_map("tanh", [1.0, 2.0], 0.0, 1.0, 3), "sigma_w2"),
        (lambda: T.q_map("tanh", [1.0, 0.0, 1.0], 0.0, 1.0, 3), "sigma_w2"),
        (lambda: T.fixed_point("tanh", [1.0, 2.0], 0.0), "sigma_w2"),
        (lambda: T.q_map("tanh", 1.0, -0.1, 1.0, 3), "sigma_b2"),
        (lambda: T.chi1("tanh", 1.0, math.nan), "sigma_b2"),
        (lambda: T.q_map("tanh", 1.0, 0.0, 0.0, 3), "q0"),
        (lambda: T.q_map("tanh", 1.0, 0.0, -2.0, 3), "q0"),
        (lambda: T.q_map("tanh", 1.0, 0.0, 1.0, 0), "depth"),
        (lambda: T.q_map("tanh", 1.0, 0.0, 1.0, 2.5), "depth"),
        (lambda: T.q_map("tanh", 1.0, 0.0, 1.0, True), "depth"),
        (lambda: T.c_map("tanh", 1.0, 0.0, 1.5, 3), "c0"),
        (lambda: T.c_map("tanh", 1.0, 0.0, -1.01, 3), "c0"),
        (lambda: T.c_map("tanh", 1.0, 0.0, 0.5, -1), "depth"),
        (lambda: T.grad_sq_map("tanh", 1.0, 0.0, 1.0, [3, 0, 2]), "widths"),
        (lambda: T.grad_sq_map("tanh", 1.0, 0.0, 1.0, [3]), "widths"),
        (lambda: T.gaussian_expectation("tanh", -1.0, "phi2"), "q must be"),
        (lambda: T.gaussian_expectation("tanh", [1.0, math.nan], "phi2"), "q must be"),
        (lambda: T.gaussian_expectation("tanh", 1.0, "phi3"), "kind"),
        (lambda: T.gaussian_expectation("tanhh", 1.0, "phi2"), "unknown activation"),
        (lambda: T.fixed_point("nope", 1.0, 0.0), "unknown activation"),
        (lambda: T.gradient_factor("tanh", 1.0, 1.0, width_ratio=0.0), "width_ratio"),
        (lambda: T.phase("tanh", 1.0, 0.0, tol=-1.0), "tol"),
        (lambda: T.critical_sigma_w2("tanh", -1.0), "sigma_b2"),
    ],
)
def test_bad_input_raises_value_error_naming_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ----------------------------------------------------------------------------------
# The package: its face and its imports
# ----------------------------------------------------------------------------------


def test_face_reexports_the_submodules_objects():
    from initsim.theory import finite_width, gaussian, kernels, meanfield, residual, shaping

    owners = {}
    for mod in (gaussian, meanfield, finite_width, residual, shaping, kernels):
        for name in mod.__all__:
            assert name not in owners, name  # each public name has one home
            owners[name] = mod
    assert sorted(T.__all__) == sorted(owners)
    for name, mod in owners.items():
        assert getattr(T, name) is getattr(mod, name), name


def _python(code):
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    return proc.stdout.strip()


def test_theory_imports_neither_the_simulation_nor_numba_eagerly():
    # theory/ may not import the Monte Carlo modules (no cycle with initsim.jacobian)
    loaded = _python(
        "import sys, initsim.theory, initsim.theory.jacobian; "
        "print(sorted(m for m in ('initsim.simulation', 'initsim.jacobian', 'initsim.engine') "
        "if m in sys.modules))"
    )
    assert loaded == "[]"
    # import initsim stays lazy; the theory (Numba cfunc integrand) loads Numba on use
    assert _python("import initsim, sys; print('numba' in sys.modules)") == "False"


# ----------------------------------------------------------------------------------
# The command line
# ----------------------------------------------------------------------------------


def _run_cli(capsys, *argv):
    from initsim.cli.theory import register

    parser = argparse.ArgumentParser(prog="initsim")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    code = args.func(args)
    return code, capsys.readouterr().out


def test_cli_text_output(capsys):
    code, out = _run_cli(
        capsys, "theory", "--activation", "tanh", "--sigma-w2", "1.5", "--sigma-b2", "0.05"
    )
    assert code == 0
    values = {
        line.split("=")[0].strip(): line.split("=")[1].split()[0]
        for line in out.splitlines()
        if line.startswith("  ")
    }
    assert float(values["q*"]) == pytest.approx(T.fixed_point("tanh", 1.5, 0.05), rel=1e-5)
    assert float(values["chi1"]) == pytest.approx(T.chi1("tanh", 1.5, 0.05), rel=1e-5)
    xi_q, xi_c = T.depth_scales("tanh", 1.5, 0.05)
    assert float(values["xi_q"]) == pytest.approx(xi_q, rel=1e-5)
    assert float(values["xi_c"]) == pytest.approx(xi_c, rel=1e-5)
    assert values["phase"] == "ordered"


def test_cli_json_output(capsys):
    code, out = _run_cli(capsys, "theory", "--sigma-w2", "2.5", "--sigma-b2", "0.05", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["activation"] == "tanh" and doc["phase"] == "chaotic"
    assert doc["chi1"] == T.chi1("tanh", 2.5, 0.05)
    assert doc["xi_c"] == T.depth_scales("tanh", 2.5, 0.05)[1]
    assert 0 < doc["c_star"] < 1
    code, out = _run_cli(capsys, "theory", "--activation", "relu", "--sigma-w2", "2", "--json")
    doc = json.loads(out)
    assert doc["phase"] == "critical" and doc["xi_q"] == "inf" and doc["q_star"] == 2.0


def test_cli_critical_line_mode(capsys):
    code, out = _run_cli(capsys, "theory", "--sigma-b2", "0.05")
    assert code == 0 and "critical sigma_w2" in out
    sw = T.critical_sigma_w2("tanh", 0.05)
    assert f"{sw:.10g}" in out
    code, out = _run_cli(capsys, "theory", "--activation", "erf", "--json")
    doc = json.loads(out)
    assert doc["critical_sigma_w2"] == pytest.approx(math.pi / 4, rel=1e-14)
    assert doc["q_star"] == 0.0 and doc["sigma_b2"] == 0.0


def test_cli_bad_input(capsys):
    with pytest.raises(ValueError, match="sigma_b2"):
        _run_cli(capsys, "theory", "--sigma-w2", "1.0", "--sigma-b2", "-1")
    with pytest.raises(ValueError, match="unknown activation"):
        _run_cli(capsys, "theory", "--activation", "nope")
    from initsim.cli import main

    assert main(["theory", "--sigma-w2", "0"]) == 2
    assert "sigma_w2" in capsys.readouterr().err
    assert main(["theory", "--activation", "gelu"]) == 2  # no critical point without bias
    assert "no critical sigma_w2" in capsys.readouterr().err
