"""Finite-width theory (initsim.theory.finite_width): exact ReLU/linear laws and q_moments.

Statistical tests use fixed seeds (so they cannot flake) and tolerances of
``Z`` Monte Carlo standard errors: ``Z = 5`` is a two-sided false-rejection
rate of about 6e-7 per comparison, had the seed been random. The tests of
:func:`q_moments` are deterministic: exact laws, and the ``1/n`` terms of the
delta method derived here independently (heat equation plus quadrature).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate, special

from initsim import theory as T
from initsim.theory import finite_width as FW

Z = 5.0  # Monte Carlo tolerance in standard errors (alpha ~ 6e-7 two-sided)
# q_moments' central differences of G'' leave ~1e-10 relative rounding where G'' = 0
FD_RTOL = 2e-10


# ----------------------------------------------------------------------------------
# Exact laws (Hanin and Rolnick 2018)
# ----------------------------------------------------------------------------------


def _simulate_length_ratio(widths, sigma_w2, phi, nets, seed):
    rng = np.random.default_rng(seed)
    x0 = np.linspace(-1.0, 2.0, widths[0])  # one fixed input
    x = np.broadcast_to(x0, (nets, widths[0]))
    for n_in, n_out in itertools.pairwise(widths):
        w = rng.standard_normal((nets, n_out, n_in)) * math.sqrt(sigma_w2 / n_in)
        x = phi(np.einsum("koi,ki->ko", w, x))
    return (np.sum(x**2, axis=1) / widths[-1]) / (np.sum(x0**2) / widths[0])


@pytest.mark.parametrize(
    ("moments", "sigma_w2", "phi"),
    [
        (FW.relu_length_moments, 2.0, lambda h: np.maximum(h, 0.0)),
        (FW.linear_length_moments, 1.0, lambda h: h),
    ],
    ids=["relu", "linear"],
)
def test_length_moments_against_monte_carlo(moments, sigma_w2, phi):
    widths = [6, 10, 8, 12]
    m = _simulate_length_ratio(widths, sigma_w2, phi, 40_000, seed=3)
    m1, m2 = moments(widths)
    assert m1 == 1.0
    assert abs(m.mean() - m1) <= Z * m.std(ddof=1) / math.sqrt(m.size)
    assert abs(np.mean(m**2) - m2) <= Z * np.std(m**2, ddof=1) / math.sqrt(m.size)
    # a negative control: the infinite-width answer E[M^2] = 1 is rejected
    assert abs(np.mean(m**2) - 1.0) > Z * np.std(m**2, ddof=1) / math.sqrt(m.size)


def test_length_moment_formulas():
    assert FW.relu_length_moments([3, 5, 5]) == (1.0, 4.0)
    assert FW.linear_length_moments([9, 2, 4]) == (1.0, 3.0)
    assert FW.relu_dead_probability([3, 1, 2]) == 0.625
    assert FW.relu_dead_probability([3, 1]) == 0.5
    assert FW.relu_dead_probability([7, 64, 64]) == pytest.approx(2 * 2.0**-64, rel=1e-12)


def test_dead_probability_against_monte_carlo():
    nets = 40_000
    for widths in ([3, 1, 2], [2, 2, 2, 2], [4, 1, 1, 3]):
        m = _simulate_length_ratio(widths, 2.0, lambda h: np.maximum(h, 0.0), nets, seed=5)
        dead = np.mean(m == 0.0)
        p = FW.relu_dead_probability(widths)
        assert abs(dead - p) <= Z * math.sqrt(p * (1 - p) / nets), widths


@pytest.mark.parametrize("n", [1, 2, 3, 7, 50])
def test_relu_length_ratio_law_moments(n):
    law = FW.relu_length_ratio_law(n)
    assert law.mean() == pytest.approx(1.0, rel=1e-13)
    assert law.var() == pytest.approx(5.0 / n, rel=1e-12)
    assert law.p_zero == 2.0**-n
    assert law.cdf(0.0) == pytest.approx(2.0**-n, rel=1e-14)
    assert law.cdf(-1.0) == 0.0
    assert law.cdf(1e6) == pytest.approx(1.0)
    x = np.array([0.1, 0.5, 1.0, 2.0])
    assert np.all(np.diff(law.cdf(x)) > 0)
    assert np.allclose(law.sf(x), 1 - law.cdf(x))


@pytest.mark.parametrize("n", [1, 3, 12])
def test_relu_length_ratio_law_against_its_definition(n):
    """R = (2/n) sum_i z_i^2 1{z_i > 0} sampled directly, against cdf, mean and var."""
    law = FW.relu_length_ratio_law(n)
    size = 200_000
    z = np.random.default_rng(17).standard_normal((size, n))
    r = (2.0 / n) * np.sum(np.where(z > 0, z * z, 0.0), axis=1)
    for x in (0.0, 0.3, 1.0, 2.5):
        p = law.cdf(x)
        assert abs(np.mean(r <= x) - p) <= Z * math.sqrt(p * (1 - p) / size) + 1e-12, x
    assert abs(r.mean() - law.mean()) <= Z * r.std(ddof=1) / math.sqrt(size)
    assert abs(r.var(ddof=1) - law.var()) <= Z * np.std((r - 1) ** 2) / math.sqrt(size)
    draws = law.rvs(size=size, seed=23)
    assert draws.shape == (size,)
    assert abs(draws.mean() - 1.0) <= Z * math.sqrt(law.var() / size)
    for x in (0.0, 0.3, 1.0, 2.5):
        p = law.cdf(x)
        assert abs(np.mean(draws <= x) - p) <= Z * math.sqrt(p * (1 - p) / size) + 1e-12
    assert isinstance(law.rvs(seed=1), float)
    assert np.array_equal(law.rvs(size=5, seed=4), law.rvs(size=5, seed=4))


@pytest.mark.parametrize("n", [1, 3, 20])
def test_relu_log_length_moments_against_monte_carlo(n):
    size = 200_000
    z = np.random.default_rng(29).standard_normal((size, n))
    r = (2.0 / n) * np.sum(np.where(z > 0, z * z, 0.0), axis=1)
    log_r = np.log(r[r > 0])  # conditioned on K >= 1
    mean, var = FW.relu_log_length_moments(n)
    assert abs(log_r.mean() - mean) <= Z * log_r.std(ddof=1) / math.sqrt(log_r.size)
    dev = (log_r - log_r.mean()) ** 2
    assert abs(dev.mean() - var) <= Z * dev.std(ddof=1) / math.sqrt(log_r.size)
    if n == 1:  # R = 2 z^2 given z > 0: E ln = ln 2 + psi(1/2) + ln 2, Var = psi'(1/2)
        assert mean == pytest.approx(math.log(4.0) + special.digamma(0.5) + 0.0, rel=1e-14)
        assert var == pytest.approx(math.pi**2 / 2, rel=1e-14)


# ----------------------------------------------------------------------------------
# The delta-method moments of q (q_moments)
# ----------------------------------------------------------------------------------


def _prefix_products(widths, per_layer):
    """prod_{k <= l} per_layer(n_k) for l = 1..L."""
    return np.cumprod([per_layer(n) for n in widths[1:]])


@pytest.mark.parametrize("q0_var", [0.0, 0.25])
def test_q_moments_linear_is_the_exact_chi_square_law(q0_var):
    """Linear, no bias: q^l = q^0 prod_k (sw_k chi^2_{n_k} / n_k), so the moments are exact.

    With sigma_w2 = 1 and q0 = 1 that is linear_length_moments; per-layer sigma_w2 and the
    input's own fluctuation (q0_var) enter as E[q^l] = q0 prod sw_k and
    E[(q^l)^2] = (q0^2 + q0_var) prod sw_k^2 prod (1 + 2 / n_k).
    """
    widths = [9, 4, 30, 7, 200]
    mean, var, mf = FW.q_moments("linear", 1.0, 0.0, 1.0, widths, q0_var)
    for depth in range(1, len(widths)):
        m1, m2 = FW.linear_length_moments(widths[: depth + 1])
        # (q_moments takes G'' by central differences: ~1e-10 rounding where G'' = 0;
        # measured at most 6e-11)
        assert mean[depth - 1] == pytest.approx(m1, rel=FD_RTOL)
        expected_var = (1.0 + q0_var) * m2 - m1 * m1
        assert var[depth - 1] == pytest.approx(expected_var, rel=FD_RTOL)
    assert np.array_equal(mf, np.ones(len(widths) - 1))
    # per-layer sigma_w2 and q0
    sw = np.array([0.5, 2.0, 1.3, 0.8])
    q0 = 1.7
    mean, var, mf = FW.q_moments("linear", sw, 0.0, q0, widths, q0_var)
    scale = q0 * np.cumprod(sw)
    second = (
        (q0 * q0 + q0_var) * np.cumprod(sw * sw) * _prefix_products(widths, lambda n: 1 + 2 / n)
    )
    np.testing.assert_allclose(mean, scale, rtol=FD_RTOL)
    np.testing.assert_allclose(mf, scale, rtol=1e-15)
    np.testing.assert_allclose(var, second - scale**2, rtol=FD_RTOL)
    # control: the infinite-width answer (no fluctuation) is far off
    assert np.all(var > 0.01 * scale**2)


def test_q_moments_relu_reproduces_hanin_rolnick():
    """He ReLU, no bias: q^L | x^{L-1} ~ 2 (||x^{L-1}||^2 / n_{L-1}) chi^2_{n_L} / n_L.

    So E[q^L] = 2 q0 and E[(q^L)^2] = (2 q0)^2 (1 + 2 / n_L) E[M_{L-1}^2], with
    E[M_{L-1}^2] = prod_{l < L} (1 + 5 / n_l) from relu_length_moments.
    """
    widths = [5, 3, 12, 6, 40]
    q0 = 0.6
    mean, var, mf = FW.q_moments("relu", 2.0, 0.0, q0, widths)
    np.testing.assert_allclose(mean, 2 * q0, rtol=FD_RTOL)
    np.testing.assert_allclose(mf, 2 * q0, rtol=1e-15)
    for depth in range(1, len(widths)):
        m2 = 1.0 if depth == 1 else FW.relu_length_moments(widths[:depth])[1]
        expected = (2 * q0) ** 2 * ((1 + 2 / widths[depth]) * m2 - 1)
        assert var[depth - 1] == pytest.approx(expected, rel=FD_RTOL), depth
        # control: the linear net's law (1 + 2 / n per layer) is not the ReLU one
        if depth > 1:
            linear = FW.linear_length_moments(widths[: depth + 1])[1] - 1
            assert abs(var[depth - 1] / (2 * q0) ** 2 - linear) > 1e-2 * linear


def _tanh_moment(k, q):
    """E[tanh(sqrt(q) z)^(2k)] by adaptive quadrature, independent of initsim."""
    s = math.sqrt(q)

    def f(z):
        return 2.0 * math.tanh(s * z) ** (2 * k) * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)

    return integrate.quad(
        f, 0.0, 40.0, points=[1.0 / s, 3.0 / s, 1.0, 4.0], epsabs=0, epsrel=1e-13, limit=200
    )[0]


def _tanh_first_order(sw, sb, q0, depth):
    """Mean-field q^l and the 1/n coefficients of E[q^l] - q^l and Var(q^l), tanh, equal widths.

    G(q) = E[tanh^2], G4(q) = E[tanh^4]; by the heat equation (d/dq E_q[f] = E_q[f''] / 2)
    G' = E[2 - 8 t^2 + 6 t^4] / 2 and G'' = E[-16 + 136 t^2 - 240 t^4 + 120 t^6] / 4 with
    t = tanh(sqrt(q) z). With s_l the conditional variance of layer l, to first order in 1/n:
    n Var(s_{l+1}) = sw^2 (G'^2 n Var(s_l) + G4 - G^2), n (E s_{l+1} - q^{l+1}) =
    sw (G' n (E s_l - q^l) + G'' n Var(s_l) / 2), and n Var(q^l) = n Var(s_l) + 2 (q^l)^2.
    """
    q = sw * q0 + sb
    b = d = 0.0  # n Var(s_1) and n (E s_1 - q^1): the input is fixed
    mf, bias, nvar = [], [], []
    for _ in range(depth):
        mf.append(q)
        bias.append(d)
        nvar.append(b + 2.0 * q * q)
        e2, e4, e6 = (_tanh_moment(k, q) for k in (1, 2, 3))
        g1 = 0.5 * (2 - 8 * e2 + 6 * e4)
        g2 = 0.25 * (-16 + 136 * e2 - 240 * e4 + 120 * e6)
        b, d = sw * sw * (g1 * g1 * b + e4 - e2 * e2), sw * (g1 * d + 0.5 * g2 * b)
        q = sw * e2 + sb
    return np.array(mf), np.array(bias), np.array(nvar)


@pytest.mark.parametrize(("sw", "sb", "q0"), [(1.5, 0.05, 1.0), (2.5, 0.2, 0.4)])
def test_q_moments_tanh_tends_to_mean_field_with_one_over_width_terms(sw, sb, q0):
    depth = 6
    mf_ref, bias_ref, nvar_ref = _tanh_first_order(sw, sb, q0, depth)
    q_map = T.q_map("tanh", sw, sb, q0, depth)
    # the reference is independent; the README's ~1e-15 for the expectations carries over
    np.testing.assert_allclose(mf_ref, q_map, rtol=4e-15)
    for n in (10**5, 10**6):
        mean, var, mf = FW.q_moments("tanh", sw, sb, q0, [7] + [n] * depth)
        np.testing.assert_allclose(mf, q_map, rtol=1e-14)  # the mean-field column is q_map
        # E[q^l] -> q^l and Var(q^l) -> 0 like 1/n, with the coefficients derived above
        # (at n = 1e5 the O(1/n^2) remainder is a few 1e-6 of them: measured 3.6e-6 for
        # n Var, 1.2e-6 for the mean's coefficient, which the finite differences of
        # q_moments hold near 5e-7 also at n = 1e6)
        np.testing.assert_allclose(n * var, nvar_ref, rtol=1e-5)
        np.testing.assert_allclose(n * (mean - mf), bias_ref, rtol=1e-5, atol=1e-9)
    assert var[0] == 2 * (sw * q0 + sb) ** 2 / n  # layer 1 is exactly chi-square
    # the mean correction starts at layer 3 (s_2 fluctuates, s_1 does not); it is tested
    assert bias_ref[1] == 0.0 and np.all(np.abs(bias_ref[2:]) > 1e-2)


# ----------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: FW.relu_length_moments([3, -2]), "widths"),
        (lambda: FW.linear_length_moments([3, 2.5]), "widths"),
        (lambda: FW.relu_dead_probability(5), "widths"),
        (lambda: FW.relu_length_ratio_law(0), "n must be"),
        (lambda: FW.relu_log_length_moments(0), "n must be"),
    ],
)
def test_bad_input_raises_value_error_naming_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()
