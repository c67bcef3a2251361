"""Activation shaping (initsim.theory.shaping): DKS, TAT and the trainable depth.

The conditions are checked against independent references: 30-digit mpmath
quadrature of the transformed activations (written here with mpmath, not with
initsim), a leaky-ReLU slope found by a separate root finder on the
arc-cosine C map (itself verified against a semi-analytic mpmath integral),
initsim's own mean-field c_map, and scipy's nested adaptive quadrature.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import mpmath as mp
import numpy as np
import pytest
from scipy import integrate, optimize

from initsim import activations as A
from initsim import theory as T
from initsim.theory.shaping import Shaping, dks, tat, trainable_depth

TOL = 1e-9  # the brief's tolerance on every condition
QUAD_TOL = 1e-12  # what the module's own quadrature achieves against mpmath

mp.mp.dps = 30

# ----------------------------------------------------------------------------------
# mpmath twins: phi, phi', phi'' and where phi is not smooth
# ----------------------------------------------------------------------------------


def _mp_sigmoid(x):
    return 1 / (1 + mp.exp(-x))


def _mp_pdf(x):
    return mp.exp(-x * x / 2) / mp.sqrt(2 * mp.pi)


def _mp_Phi(x):
    return mp.erfc(-x / mp.sqrt(2)) / 2


MP_ACTS = {
    "tanh": (
        mp.tanh,
        lambda x: 1 / mp.cosh(x) ** 2,
        lambda x: -2 * mp.tanh(x) / mp.cosh(x) ** 2,
        [],
    ),
    "softplus": (
        lambda x: mp.log1p(mp.exp(x)),
        _mp_sigmoid,
        lambda x: _mp_sigmoid(x) * (1 - _mp_sigmoid(x)),
        [],
    ),
    "gelu": (
        lambda x: x * _mp_Phi(x),
        lambda x: _mp_Phi(x) + x * _mp_pdf(x),
        lambda x: (2 - x * x) * _mp_pdf(x),
        [],
    ),
    "elu": (
        lambda x: x if x > 0 else mp.expm1(x),
        lambda x: mp.mpf(1) if x >= 0 else mp.exp(x),
        lambda x: mp.mpf(0) if x >= 0 else mp.exp(x),
        [0],
    ),
    "sigmoid": (
        _mp_sigmoid,
        lambda x: _mp_sigmoid(x) * (1 - _mp_sigmoid(x)),
        lambda x: _mp_sigmoid(x) * (1 - _mp_sigmoid(x)) * (1 - 2 * _mp_sigmoid(x)),
        [],
    ),
}


def mp_conditions(s: Shaping) -> dict[str, mp.mpf]:
    """E[phi_hat], Q(1), Q'(1) = E[z phi_hat phi_hat'], C'(1), C''(1) at 30 digits."""
    phi, dphi, d2phi, kinks = MP_ACTS[s.base.name]
    a, b = mp.mpf(s.input_scale), mp.mpf(s.input_shift)
    g, d = mp.mpf(s.output_scale), mp.mpf(s.output_shift)

    def f(z):
        return g * (phi(a * z + b) + d)

    def df(z):
        return g * a * dphi(a * z + b)

    def d2f(z):
        return g * a * a * d2phi(a * z + b)

    pts = sorted({(k - b) / a for k in kinks} | {mp.mpf(0), (-b) / a})
    span = [-mp.inf, *pts, mp.inf]

    def e(h):
        return mp.quad(lambda z: h(z) * _mp_pdf(z), span)

    return {
        "mean": e(f),
        "Q(1)": e(lambda z: f(z) ** 2),
        "Q'(1)": e(lambda z: z * f(z) * df(z)),
        "C'(1)": e(lambda z: df(z) ** 2),
        "C''(1)": e(lambda z: d2f(z) ** 2),
    }


# ----------------------------------------------------------------------------------
# DKS
# ----------------------------------------------------------------------------------

DKS_ACTS = ["tanh", "softplus", "gelu", "elu", "sigmoid"]


@pytest.mark.parametrize("name", DKS_ACTS)
@pytest.mark.parametrize(("depth", "zeta"), [(100, 1.5), (10, 3.0)])
def test_dks_conditions_against_mpmath(name, depth, zeta):
    s = dks(name, depth, zeta=zeta)
    assert s.method == "dks" and s.depth == depth and s.zeta == zeta
    assert s.input_scale > 0.0 and s.output_scale > 0.0
    ref = mp_conditions(s)
    local = mp.mpf(zeta) ** (mp.mpf(1) / depth)
    assert abs(ref["Q(1)"] - 1) < TOL
    assert abs(ref["Q'(1)"] - 1) < TOL
    assert abs(ref["mean"]) < TOL  # C(0) = E[phi_hat]^2 = 0
    assert abs(ref["C'(1)"] - local) < TOL
    assert abs(ref["C'(1)"] ** depth - zeta) < TOL  # C_net'(1) = C'(1)^depth
    # the reported achieved values are the module's quadrature: mpmath-accurate
    got = s.conditions()
    assert set(got) == {"Q(1)", "Q'(1)", "C(0)", "C'(1)", "C_net'(1)"}
    assert abs(got["Q(1)"] - ref["Q(1)"]) < QUAD_TOL
    assert abs(got["Q'(1)"] - ref["Q'(1)"]) < QUAD_TOL
    assert abs(got["C'(1)"] - ref["C'(1)"]) < QUAD_TOL
    assert abs(got["C(0)"] - ref["mean"] ** 2) < QUAD_TOL
    assert max(abs(v) for v in s.condition_errors().values()) < 1e-12
    assert s.condition_targets()["C_net'(1)"] == zeta


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "silu", "erf", "selu"])
def test_dks_other_activations_meet_their_conditions(name):
    s = dks(name, 20, zeta=1.5)
    errs = s.condition_errors()
    assert max(abs(v) for v in errs.values()) < 1e-12
    # homogeneous relu has one degree of freedom fewer: Q'(1) is not imposed
    assert ("Q'(1)" in errs) == (name != "relu")
    # check the reported values independently from phi_hat itself with scipy quad
    for key, fn in [
        ("Q(1)", lambda z: s.phi(z) ** 2),
        ("C'(1)", lambda z: s.dphi(z) ** 2),
    ]:
        pts = [0.0] + [(k - s.input_shift) / s.input_scale for k in s.base.kinks]
        val = _scipy_expect(fn, pts)
        assert abs(val - s.conditions()[key]) < 1e-10


def test_dks_leaky_relu_solves_the_slope_and_relu_fixes_the_shift():
    s = dks(A.get("leaky_relu", slope=0.3), 10, zeta=1.5)
    slope = s.base.param
    assert s.input_scale == 1.0 and s.input_shift == 0.0
    # C'(1) of the centred, normalised leaky ReLU in closed form
    c1 = 1.0 / (1.0 - (1.0 - slope) ** 2 / (math.pi * (1.0 + slope * slope)))
    assert abs(c1 - 1.5**0.1) < 1e-13
    r_lo = dks("relu", 10, zeta=1.5)  # local target 1.041 < 1 / (1 - 1/pi): shift +1
    r_hi = dks("relu", 1, zeta=2.0)  # local target 2 > 1.4669: shift -1
    assert r_lo.input_shift == 1.0 and r_hi.input_shift == -1.0


def test_dks_symmetric_solutions_are_canonical_and_deterministic():
    s = dks("tanh", 30)
    assert s.input_scale > 0.0 and s.input_shift >= 0.0
    assert dks("tanh", 30) == s
    # the mirror image (-input_shift, -output_shift) meets the same conditions:
    # mirror(x) = -phi_hat(-x), so it is a genuine pair and the choice is a convention
    mirror = dataclasses.replace(s, input_shift=-s.input_shift, output_shift=-s.output_shift)
    x = np.linspace(-3, 3, 7)
    np.testing.assert_allclose(mirror.phi(x), -np.asarray(s.phi(-x)), rtol=0, atol=1e-14)


def test_dks_example_values():
    s = dks("tanh", 100, zeta=1.5)
    assert s.input_scale == pytest.approx(0.0904379454104, rel=1e-9)
    assert s.input_shift == pytest.approx(0.560106691029, rel=1e-9)
    assert s.output_scale == pytest.approx(14.9025257296, rel=1e-9)
    assert s.output_shift == pytest.approx(-0.505004376779, rel=1e-9)


# ----------------------------------------------------------------------------------
# Kernel maps of a Shaping
# ----------------------------------------------------------------------------------


def _scipy_expect(fn, points):
    pts = sorted(p for p in points if -12.0 < p < 12.0)
    edges = [-12.0, *pts, 12.0]
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        total += integrate.quad(
            lambda z: float(fn(z)) * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi),
            lo,
            hi,
            epsabs=1e-14,
            epsrel=1e-13,
            limit=200,
        )[0]
    return total


def test_local_c_map_against_nested_scipy_quadrature():
    s = dks("softplus", 20, zeta=2.0)
    for c in (-0.7, 0.35, 0.9):
        r = math.sqrt(1.0 - c * c)

        def inner(u, c=c, r=r):
            # E[phi_hat(v) | u] with v = c u + r w
            return _scipy_expect(lambda w: s.phi(c * u + r * w), [])

        ref = _scipy_expect(lambda u: s.phi(u) * inner(u), [])
        assert abs(s.local_c_map(c) - ref) < 1e-10


def test_local_c_map_generic_rule_against_leaky_closed_form():
    # DKS leaky ReLU is centred (output_shift != 0): its C map goes through the
    # generic bivariate rule; compare with gamma^2 (K(c) - E[leaky]^2), K from Cho-Saul.
    s = dks("leaky_relu", 5, zeta=1.5)
    a, g = s.base.param, s.output_scale
    mean = (1.0 - a) / math.sqrt(2.0 * math.pi)
    for c in (-0.95, -0.3, 0.2, 0.6, 0.99, 0.999999):
        k1 = (math.sqrt(1.0 - c * c) + (math.pi - math.acos(c)) * c) / (2.0 * math.pi)
        ref = g * g * (a * c + (1.0 - a) ** 2 * k1 - mean * mean)
        assert abs(s.local_c_map(c) - ref) < 1e-12
    assert s.local_c_map(1.0) == pytest.approx(1.0, abs=1e-14)
    assert abs(s.local_c_map(0.0)) < 1e-14


def test_dks_network_maps():
    s = dks("tanh", 50, zeta=1.5)
    assert abs(s.network_c_map(0.0)) < 1e-12  # C(0) = 0 is a fixed point
    assert s.network_c_map(1.0) == pytest.approx(1.0, abs=1e-12)
    # near c = 1 the network map has slope zeta: 1 - C_net(1 - e) ~ zeta e
    e = 1e-6
    assert (1.0 - s.network_c_map(1.0 - e)) / e == pytest.approx(1.5, rel=1e-4)
    assert s.q_map_at_1() == pytest.approx(1.0, abs=1e-14)
    assert s.q_slope_at_1() == pytest.approx(1.0, abs=1e-13)
    assert s.network_q_map(1.0) == pytest.approx(1.0, abs=1e-12)
    # Q'(1) = 1: a small change of q is neither amplified nor damped to first order
    q = s.local_q_map(1.0 + 1e-5)
    assert s.q_map(1.0 + 1e-5) == q
    assert (q - 1.0) / 1e-5 == pytest.approx(1.0, rel=1e-4)


def test_phi_and_dphi_are_vectorised_and_consistent():
    s = dks("gelu", 10)
    x = np.linspace(-4.0, 4.0, 41).reshape(41, 1)
    y, dy = s.phi(x), s.dphi(x)
    assert y.shape == x.shape and dy.shape == x.shape
    assert isinstance(s.phi(0.5), float) and isinstance(s.dphi(0.5), float)
    h = 1e-6
    fd = (np.asarray(s.phi(x + h)) - np.asarray(s.phi(x - h))) / (2 * h)
    np.testing.assert_allclose(dy, fd, rtol=1e-7, atol=1e-7)
    base = A.get("gelu")
    manual = s.output_scale * (base.phi(s.input_scale * x + s.input_shift) + s.output_shift)
    np.testing.assert_array_equal(y, manual)


def test_shaping_is_frozen():
    s = dks("tanh", 10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.input_scale = 2.0  # type: ignore[misc]


# ----------------------------------------------------------------------------------
# TAT: leaky ReLU
# ----------------------------------------------------------------------------------


def leaky_cmap(c: float, a: float) -> float:
    """Normalised leaky-ReLU C map, written here from the formula of the brief."""
    return c + (1 - a) ** 2 / (math.pi * (1 + a * a)) * (math.sqrt(1 - c * c) - c * math.acos(c))


def mp_leaky_cmap(c, a):
    """E[phi(u) phi(v)] for phi = sqrt(2 / (1 + a^2)) leaky(x; a), by conditioning on u.

    v | u ~ N(c u, 1 - c^2); E[leaky(v) | u] = a m + (1 - a) (m Phi(m/s) + s pdf(m/s)).
    """
    c, a = mp.mpf(c), mp.mpf(a)
    s = mp.sqrt(1 - c * c)

    def leaky(x):
        return x if x > 0 else a * x

    def cond_mean(u):
        m = c * u
        return a * m + (1 - a) * (m * _mp_Phi(m / s) + s * _mp_pdf(m / s))

    val = mp.quad(lambda u: leaky(u) * cond_mean(u) * _mp_pdf(u), [-mp.inf, 0, mp.inf])
    return 2 / (1 + a * a) * val


@pytest.mark.parametrize("a", [0.0, 0.2, 0.57, 0.9])
@pytest.mark.parametrize("c", [-0.8, 0.0, 0.3, 0.9])
def test_leaky_cmap_formula_against_mpmath(a, c):
    assert abs(leaky_cmap(c, a) - mp_leaky_cmap(c, a)) < 1e-14


def independent_alpha(depth: int, eta: float) -> float:
    def f(a):
        c = 0.0
        for _ in range(depth):
            c = leaky_cmap(c, a)
        return c - eta

    return optimize.brentq(f, 0.0, 1.0, xtol=1e-15)


@pytest.mark.parametrize("depth", [10, 50, 100])
@pytest.mark.parametrize("eta", [0.9, 0.5])
def test_tat_leaky_relu(depth, eta):
    if depth == 10 and eta == 0.9:  # relu itself reaches only C_net(0) = 0.87 at depth 10
        with pytest.raises(ValueError, match="eta"):
            tat("leaky_relu", depth, eta=eta)
        return
    s = tat("leaky_relu", depth, eta=eta)
    a = s.base.param
    assert s.method == "tat" and s.eta == eta and s.tau is None
    assert 0.0 < a < 1.0
    assert abs(a - independent_alpha(depth, eta)) < TOL
    assert s.output_scale == math.sqrt(2.0 / (1.0 + a * a))
    assert (s.input_scale, s.input_shift, s.output_shift) == (1.0, 0.0, 0.0)
    assert abs(s.network_c_map(0.0) - eta) < TOL
    assert abs(s.q_map_at_1() - 1.0) < TOL
    assert max(abs(v) for v in s.condition_errors().values()) < 1e-13
    # initsim's mean-field c_map (its own leaky kernel; layer 1 is the linear input layer)
    ref = T.c_map(s.base, s.output_scale**2, 0.0, 0.0, depth + 1)[-1]
    assert abs(ref - eta) < TOL
    # relu given as the family gives the same shaping
    assert tat("relu", depth, eta=eta) == s


def test_relu_degenerates_while_tat_keeps_eta():
    depth = 100
    relu_c0 = T.c_map("relu", 2.0, 0.0, 0.0, depth + 1)[-1]  # He-initialised relu
    assert relu_c0 > 0.99
    s = tat("leaky_relu", depth, eta=0.9)
    assert abs(s.network_c_map(0.0) - 0.9) < 1e-12
    # the shaped net keeps distinguishing inputs everywhere on [-1, 1)
    assert s.network_c_map(-1.0) < s.network_c_map(0.5) < 0.99


def test_tat_example_value():
    s = tat("leaky_relu", 100, eta=0.9)
    assert s.base.param == pytest.approx(0.57043953105872, rel=1e-10)


# ----------------------------------------------------------------------------------
# TAT: smooth activations
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tanh", "softplus", "gelu", "sigmoid"])
@pytest.mark.parametrize("depth", [10, 100])
def test_tat_smooth_conditions_against_mpmath(name, depth):
    tau = 0.3
    s = tat(name, depth, tau=tau)
    assert s.tau == tau and s.eta is None
    ref = mp_conditions(s)
    assert abs(ref["Q(1)"] - 1) < TOL
    assert abs(ref["Q'(1)"] - 1) < TOL
    assert abs(ref["C'(1)"] - 1) < TOL
    assert abs(depth * ref["C''(1)"] - tau) < TOL
    got = s.conditions()
    assert abs(got["C''(1)"] - ref["C''(1)"]) < QUAD_TOL
    # the accepted solution has sup |phi_hat'| < 2
    x = np.linspace(-30, 30, 200001)
    assert np.max(np.abs(s.dphi(x))) < 2.0


def test_tat_smooth_curvature_of_the_network_map():
    s = tat("tanh", 20, tau=0.3)
    # C_net(1 - e) = 1 - e + tau e^2 / 2 + O(e^3) (C_net'(1) = 1, C_net''(1) = tau)
    e = 1e-2
    got = s.network_c_map(1.0 - e)
    assert (got - (1.0 - e)) / (0.5 * e * e) == pytest.approx(0.3, rel=2e-2)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "softplus", "gelu", "silu", "erf", "elu"])
def test_second_derivatives_against_finite_differences(name):
    from initsim.theory.shaping import _D2PHI

    act = A.get(name)
    x = np.linspace(-6.0, 6.0, 121) + 0.013  # avoid elu's jump of phi'' at 0
    h = 1e-5
    fd = (np.asarray(act.dphi(x + h)) - np.asarray(act.dphi(x - h))) / (2 * h)
    np.testing.assert_allclose(_D2PHI[name](act, x), fd, rtol=1e-7, atol=1e-8)


# ----------------------------------------------------------------------------------
# Trainable depth
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "sw", "sb", "expected_phase"),
    [
        ("tanh", 1.5, 0.05, "ordered"),
        ("tanh", 2.5, 0.05, "chaotic"),
        ("erf", 0.5, 0.0, "ordered"),
        ("relu", 1.5, 0.1, "ordered"),
    ],
)
def test_trainable_depth_finite_off_criticality(name, sw, sb, expected_phase):
    assert T.phase(name, sw, sb) == expected_phase
    d = trainable_depth(name, sw, sb)
    assert math.isfinite(d) and d > 0.0
    assert d == 6.0 * T.depth_scales(name, sw, sb)[1]


@pytest.mark.parametrize("sb", [0.0, 0.05])
def test_trainable_depth_infinite_at_criticality(sb):
    sw = T.critical_sigma_w2("tanh", sb)
    assert trainable_depth("tanh", sw, sb) == math.inf
    assert T.depth_scales("tanh", sw, sb)[1] == math.inf
    # grows without bound as the critical line is approached
    assert trainable_depth("tanh", sw * 1.01, sb) > trainable_depth("tanh", sw * 1.1, sb)


# ----------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [0, -3, 1.5, True, "10", None])
def test_bad_depth(depth):
    with pytest.raises(ValueError, match="depth"):
        dks("tanh", depth)
    with pytest.raises(ValueError, match="depth"):
        tat("leaky_relu", depth)


@pytest.mark.parametrize("zeta", [1.0, 0.5, 0.0, -2.0, math.nan, math.inf, "x", None, True])
def test_bad_zeta(zeta):
    with pytest.raises(ValueError, match="zeta"):
        dks("tanh", 10, zeta=zeta)


def test_unreachable_zeta_for_leaky_relu():
    with pytest.raises(ValueError, match="zeta"):
        dks("leaky_relu", 1, zeta=10.0)


@pytest.mark.parametrize("eta", [0.0, 1.0, 1.2, -0.1, math.nan, "x"])
def test_bad_eta(eta):
    with pytest.raises(ValueError, match="eta"):
        tat("leaky_relu", 100, eta=eta)


def test_eta_unreachable_at_small_depth():
    with pytest.raises(ValueError, match="eta"):
        tat("leaky_relu", 3, eta=0.9)


@pytest.mark.parametrize("tau", [0.0, -1.0, math.inf, math.nan])
def test_bad_tau(tau):
    with pytest.raises(ValueError, match="tau"):
        tat("tanh", 10, tau=tau)


@pytest.mark.parametrize("activation", ["nope", 3, None, ["tanh"]])
def test_bad_activation(activation):
    with pytest.raises(ValueError, match="activation"):
        dks(activation, 10)
    with pytest.raises(ValueError, match="activation"):
        tat(activation, 10)
    with pytest.raises(ValueError, match="activation"):
        trainable_depth(activation, 1.0, 0.0)


@pytest.mark.parametrize("activation", ["linear", "selu", "hard_tanh", A.get("elu", alpha=0.5)])
def test_tat_unsupported_activation(activation):
    with pytest.raises(ValueError, match="activation"):
        tat(activation, 10)


def test_dks_unsupported_activation():
    with pytest.raises(ValueError, match="activation"):
        dks("linear", 10)
    with pytest.raises(ValueError, match="hard_tanh"):  # Q'(1) < 1 always: unreachable
        dks("hard_tanh", 10)


def test_bad_trainable_depth_arguments():
    with pytest.raises(ValueError, match="sigma_w2"):
        trainable_depth("tanh", 0.0, 0.0)
    with pytest.raises(ValueError, match="sigma_b2"):
        trainable_depth("tanh", 1.0, -1.0)


def test_bad_map_arguments():
    s = tat("leaky_relu", 50)
    with pytest.raises(ValueError, match="c"):
        s.local_c_map(1.5)
    with pytest.raises(ValueError, match="c"):
        s.network_c_map(math.nan)
    with pytest.raises(ValueError, match="q"):
        s.local_q_map(-1.0)
