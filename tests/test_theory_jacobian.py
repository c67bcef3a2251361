"""Theory of Jacobian spectra (initsim.theory.jacobian): exact linear-net moments, PSG inputs.

Deterministic checks of the formulas against closed forms and high-precision
quadrature; the Monte Carlo comparisons with :func:`initsim.jacobian_spectrum`
are in test_jacobian.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from initsim import jacobian
from initsim.theory import jacobian as theory_jacobian
from initsim.theory.jacobian import (
    derivative_moments,
    linear_gaussian_moments,
    linear_gaussian_moments_limit,
    linear_gaussian_trace_moments,
    orthogonal_linear_singular_value,
    psg_spectrum_variance,
)


def test_initsim_jacobian_reexports_the_theory():
    for name in theory_jacobian.__all__:
        assert name in jacobian.__all__, name
        assert getattr(jacobian, name) is getattr(theory_jacobian, name), name


# --------------------------------------------------------------------------
# linear nets: exact finite-width theory
# --------------------------------------------------------------------------
def test_exact_formula_small_cases():
    # one layer: Wishart moments E tr(WW^T) = sw n, E tr((WW^T)^2) = s2^2 n n0 (n + n0 + 1)
    for n0, n, sw in [(3, 5, 1.0), (7, 2, 1.7), (1, 1, 0.5)]:
        tr, tr_sq, tr2 = linear_gaussian_trace_moments([n0, n], sw)
        s2 = sw / n0
        assert tr == pytest.approx(sw * n, rel=1e-14)
        assert tr2 == pytest.approx(s2**2 * n * n0 * (n + n0 + 1), rel=1e-14)
        # (tr W W^T) / s2 is chi-square with n n0 degrees of freedom
        assert tr_sq == pytest.approx(s2**2 * ((n * n0) ** 2 + 2 * n * n0), rel=1e-14)
    # scalar chain: J = prod w_l, E J^4 = prod 3 s_l^2
    sws = [0.5, 2.0, 1.3, 0.9]
    _, _, tr2 = linear_gaussian_trace_moments([1] * 5, sws)
    assert tr2 == pytest.approx(np.prod([3 * s**2 for s in sws]), rel=1e-14)
    # E m1 = prod(sigma_w2) n_L / min(n_0, n_L)
    m1, _ = linear_gaussian_moments([4, 9, 3, 11], [1.1, 0.7, 2.0])
    assert m1 == pytest.approx(1.1 * 0.7 * 2.0 * 11 / 4, rel=1e-14)
    # homogeneity: m2 scales as sigma_w2^(2L)
    _, a = linear_gaussian_moments([5, 6, 7], 1.0)
    _, b = linear_gaussian_moments([5, 6, 7], 1.5)
    assert b == pytest.approx(1.5**4 * a, rel=1e-14)


@pytest.mark.parametrize("depth", [1, 3, 10])
def test_large_width_limit_of_exact_second_moment(depth):
    prev = math.inf
    for n in [10, 100, 1000, 10_000, 100_000]:
        m1, m2 = linear_gaussian_moments([n] * (depth + 1), 1.0)
        assert m1 == pytest.approx(1.0, rel=1e-13)
        assert depth + 1 < m2 < prev  # decreases to its limit from above
        # finite-width excess is about L (L + 1) / (2 n)
        assert m2 - (depth + 1) == pytest.approx(depth * (depth + 1) / (2 * n), rel=2 * depth / n)
        prev = m2
    assert m2 == pytest.approx(depth + 1, rel=1e-4)
    assert linear_gaussian_moments_limit(depth) == (1.0, depth + 1.0)
    assert linear_gaussian_moments_limit(depth, 2.0) == (2.0**depth, 4.0**depth * (depth + 1))


# --------------------------------------------------------------------------
# Pennington, Schoenholz and Ganguli (2017)
# --------------------------------------------------------------------------
def test_derivative_moments_known_values():
    assert derivative_moments("linear", 0.7) == pytest.approx((1.0, 1.0), rel=1e-12)
    assert derivative_moments("relu", 2.3) == pytest.approx((0.5, 0.5), rel=1e-12)
    # hard_tanh: phi' = 1 on [-1, 1]: mu1 = mu2 = P(|h| < 1)
    p = 2 * stats.norm.cdf(1 / math.sqrt(0.7)) - 1
    assert derivative_moments("hard_tanh", 0.7) == pytest.approx((p, p), rel=1e-12)
    # tanh against mpmath at 30 digits
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 30
    q = mpmath.mpf("0.7")

    def mom(k):
        return mpmath.quad(
            lambda z: (1 - mpmath.tanh(mpmath.sqrt(q) * z) ** 2) ** (2 * k) * mpmath.npdf(z),
            [-mpmath.inf, 0, mpmath.inf],
        )

    mu1, mu2 = derivative_moments("tanh", 0.7)
    assert mu1 == pytest.approx(float(mom(1)), rel=1e-12)
    assert mu2 == pytest.approx(float(mom(2)), rel=1e-12)
    assert derivative_moments("tanh", 0.0) == (1.0, 1.0)
    # linear nets: L for Gaussian weights (Fuss-Catalan variance), 0 for orthogonal
    # (mu1 = mu2 = 1 to the quadrature's ~1e-12: mu2 / mu1^2 to 3e-12, times L = 7)
    assert psg_spectrum_variance("linear", 7, 1.0, "gaussian") == pytest.approx(7.0, rel=3e-12)
    assert psg_spectrum_variance("linear", 7, 1.0, "orthogonal") == pytest.approx(0.0, abs=2.1e-11)


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: linear_gaussian_moments([3]), "widths"),
        (lambda: linear_gaussian_moments([3, 0]), "widths"),
        (lambda: linear_gaussian_moments([3, 4], -1.0), "sigma_w2"),
        (lambda: linear_gaussian_moments([3, 4, 5], [1.0]), "sigma_w2"),
        (lambda: linear_gaussian_trace_moments([3, 4], math.inf), "sigma_w2"),
        (lambda: linear_gaussian_moments_limit(0), "depth"),
        (lambda: orthogonal_linear_singular_value(3, 0.0), "gain"),
        (lambda: psg_spectrum_variance("tanh", 3, 0.5, "uniform"), "weights"),
        (lambda: psg_spectrum_variance("tanh", 0, 0.5), "depth"),
        (lambda: derivative_moments("tanh", -0.5), "q_star"),
        (lambda: psg_spectrum_variance("relu", 3, 0.0), "mu1"),
    ],
)
def test_theory_bad_input(call, name):
    with pytest.raises(ValueError, match=name):
        call()
