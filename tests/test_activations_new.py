"""The activations added in issue 17 (codes 12-20) and their Gaussian expectations.

abs, sin, cos, softsign, atan, asinh, bent_identity, square and gelu_tanh: the
registry entries, the pure-Python scalars (what the CUDA simulator runs), the
closed forms and kernels of :mod:`initsim.theory.gaussian` against 30-digit
:mod:`mpmath` references written independently of initsim, the closed forms
against the generic quadrature, and the arc-cosine kernel near ``c = 1``.

The parametrized tests of ``tests/test_activations.py`` (compiled vs numpy twin,
compiled vs 40-digit mpmath, limits, no warnings, finite differences, metadata
witnesses) iterate over every registry name and so cover these activations too.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable

import mpmath as mp
import numpy as np
import pytest

from initsim import activations as A
from initsim import theory as T
from initsim.theory import gaussian as G

EPS = np.finfo(np.float64).eps
NEW = ("abs", "sin", "cos", "softsign", "atan", "asinh", "bent_identity", "square", "gelu_tanh")
CLOSED_1D = ("abs", "square", "sin", "cos")  # the new closed forms of _closed_form
CLOSED_2D = ("abs", "square", "sin", "cos")  # the new closed kernels of bivariate
CODES = {"phi": G.PHI, "phi2": G.PHI2, "phi4": G.PHI4, "dphi2": G.DPHI2}
ALL_CODES = {**CODES, "dq_phi2": G.DQ_PHI2, "dphi": G.DPHI}


# ----------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------


def test_codes_are_stable() -> None:
    # Codes may be stored with results: the first twelve never move, new ones append.
    expected = {
        "abs": 12,
        "sin": 13,
        "cos": 14,
        "softsign": 15,
        "atan": 16,
        "asinh": 17,
        "bent_identity": 18,
        "square": 19,
        "gelu_tanh": 20,
    }
    old = ["linear", "relu", "leaky_relu", "elu", "selu", "gelu", "silu", "softplus"]
    old += ["sigmoid", "tanh", "erf", "hard_tanh"]
    for code, name in enumerate(old):
        assert A.get(name).code == code
    for name, code in expected.items():
        assert A.get(name).code == code == getattr(A, name.upper()), name
    assert tuple(expected) == NEW
    assert all(A.get(n).gain_name is None for n in NEW)  # torch has no gain for them
    assert all(A.get(n).params == {} for n in NEW)


GRID = np.concatenate(
    [
        [-np.inf, -1e308, -1e300, -1e200, -1e150, -1e6, -31.0, -30.0, -22.0, -1.0, -0.0],
        [0.0, 5e-324, 1e-300, 1.0, 22.0, 30.0, 31.0, 1e6, 1e150, 1e200, 1e300, 1e308],
        [np.inf, np.nan],
        np.linspace(-40.0, 40.0, 1601),
        np.logspace(-300, 300, 301),
        -np.logspace(-300, 300, 301),
    ]
)


@pytest.mark.parametrize("name", NEW)
def test_pure_python_scalars_match_compiled(name: str) -> None:
    # initsim.gpu compiles phi_scalar.py_func for the device; the CUDA simulator runs it
    # as plain Python, where math.sin(inf) would raise: it must give NaN, bit for bit
    # what the compiled scalar gives (both call the C library).
    act = A.get(name)
    xc = A.phi_array(act.code, act.param, GRID, np.empty_like(GRID))
    dxc = A.dphi_array(act.code, act.param, GRID, np.empty_like(GRID))
    xp = np.array([A.phi_scalar.py_func(act.code, act.param, float(v)) for v in GRID])
    dxp = np.array([A.dphi_scalar.py_func(act.code, act.param, float(v)) for v in GRID])
    np.testing.assert_array_equal(xp, xc)
    np.testing.assert_array_equal(dxp, dxc)


@pytest.mark.parametrize("name", ["abs", "cos", "square"])
def test_even_activations_are_even(name: str) -> None:
    act = A.get(name)
    x = GRID[np.isfinite(GRID)]
    x = x[np.abs(x) < 1e150]
    assert np.array_equal(act.phi(-x), act.phi(x))
    assert np.array_equal(act.dphi(-x), -act.dphi(x))
    assert not act.odd


def test_documented_limits_and_conventions() -> None:
    inf = math.inf
    for name in ("sin", "cos"):  # no limit at +-inf: NaN (IEEE 754, numpy)
        act = A.get(name)
        for x in (-inf, inf):
            assert math.isnan(A.phi_scalar(act.code, 0.0, x))
            assert math.isnan(A.dphi_scalar(act.code, 0.0, x))
            assert math.isnan(act.phi(x)) and math.isnan(act.dphi(x))
    assert A.get("atan").phi(inf) == math.pi / 2  # the bound, attained only in the limit
    assert A.get("softsign").phi(-1e300) == -1.0
    assert A.get("bent_identity").phi(-1e300) == -5e299  # (|x| - 1) / 2 + x, exactly
    assert A.get("bent_identity").dphi(-inf) == 0.5
    assert A.get("square").phi(1e200) == inf  # true overflow, silently
    assert A.get("gelu_tanh").phi(-inf) == 0.0 and A.get("gelu_tanh").dphi(inf) == 1.0
    # abs'(0) = 0 (sign(0), as in PyTorch's autograd); kink listed at 0
    assert A.dphi_scalar(A.ABS, 0.0, 0.0) == 0.0 and A.get("abs").kinks == (0.0,)
    assert A.get("softsign").kinks == () and A.get("square").kinks == ()


def test_gelu_tanh_is_pytorchs_tanh_approximation() -> None:
    """Our ``x sigmoid(2u)`` against PyTorch's formula ``0.5 x (1 + tanh(u))`` in numpy.

    PyTorch's form rounds ``1 + tanh(u)`` to about ``eps`` absolute, so for ``x < 0``
    it loses relative accuracy (all of it beyond ``x ~ -6``) while ours keeps it
    (checked against mpmath in tests/test_activations.py): the difference is measured
    at most ``1.7 eps |x|`` on ``[-12, 12]``, and ``4.0e-16`` relative for ``x > 0``.
    """
    x = np.linspace(-12.0, 12.0, 24001)
    torch_form = 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    ours = np.asarray(A.get("gelu_tanh").phi(x))
    # PyTorch's form rounds 1 + tanh(u) to ~eps absolute: its error is ~eps |x| / 2
    np.testing.assert_array_less(np.abs(ours - torch_form), 2 * EPS * np.abs(x) + 1e-300)
    right = x > 0.0
    np.testing.assert_allclose(ours[right], torch_form[right], rtol=4 * EPS)
    # and the exact gelu is close, but different (max |difference| 4.7e-4)
    gelu = np.asarray(A.get("gelu").phi(x))
    assert 1e-4 < np.abs(ours - gelu).max() < 1e-3


# ----------------------------------------------------------------------------------
# 30-digit mpmath references, independent of initsim
# ----------------------------------------------------------------------------------

_K = mp.sqrt(2 / mp.pi)
_C3 = mp.mpf("0.044715")


def _gelu_tanh_mp(x):
    u = _K * (x + _C3 * x**3)
    return x / (1 + mp.exp(-2 * u))  # 0.5 x (1 + tanh u), without cancellation


def _dgelu_tanh_mp(x):
    u = _K * (x + _C3 * x**3)
    return 1 / (1 + mp.exp(-2 * u)) + x * mp.sech(u) ** 2 * _K * (1 + 3 * _C3 * x * x) / 2


#: phi and phi' of each new activation, from the definitions (abs and softsign have
#: their kink / phi'' jump at 0, an end point of the even-part integrals below).
MP_ACTS: dict[str, tuple[Callable, Callable]] = {
    "abs": (abs, mp.sign),
    "sin": (mp.sin, mp.cos),
    "cos": (mp.cos, lambda x: -mp.sin(x)),
    "softsign": (lambda x: x / (1 + abs(x)), lambda x: 1 / (1 + abs(x)) ** 2),
    "atan": (mp.atan, lambda x: 1 / (1 + x * x)),
    "asinh": (mp.asinh, lambda x: 1 / mp.sqrt(1 + x * x)),
    "bent_identity": (
        lambda x: (mp.sqrt(x * x + 1) - 1) / 2 + x,
        lambda x: x / (2 * mp.sqrt(x * x + 1)) + 1,
    ),
    "square": (lambda x: x * x, lambda x: 2 * x),
    "gelu_tanh": (_gelu_tanh_mp, _dgelu_tanh_mp),
}


def _mp_pdf(z):
    return mp.exp(-z * z / 2) / mp.sqrt(2 * mp.pi)


def mp_expectation(name: str, q: float, kind: str):
    """E[g(sqrt(q) z)] by 30-digit tanh-sinh quadrature of the even part.

    Split at the kinks, at the activation's and the Gaussian's scales and, for sin
    and cos, every ``pi / sqrt(q)`` (one panel per half period) out to ``z = 10``.
    ``dq_phi2`` is ``d E_q[phi^2] / dq = E[phi(x) phi'(x) x] / q``.
    """
    phi, dphi = MP_ACTS[name]
    with mp.workdps(30):
        s = mp.sqrt(mp.mpf(q))
        f = {
            "phi": phi,
            "phi2": lambda x: phi(x) ** 2,
            "phi4": lambda x: phi(x) ** 4,
            "dphi2": lambda x: dphi(x) ** 2,
            "dq_phi2": lambda x: phi(x) * dphi(x) * x / (s * s),
            "dphi": dphi,
        }[kind]
        pts = {mp.mpf(0), mp.mpf(3), mp.mpf(8)}
        pts |= {mp.mpf(x) / s for x in (1, 5) if x / s < 30}
        if name in ("sin", "cos"):
            pts |= {k * mp.pi / s for k in range(1, int(10 * s / mp.pi) + 1)}
        return mp.quad(lambda z: (f(s * z) + f(-s * z)) * _mp_pdf(z), [*sorted(pts), mp.inf])


# ----------------------------------------------------------------------------------
# One-dimensional expectations
# ----------------------------------------------------------------------------------

# Measured worst relative error against the 30-digit references, over q in
# {1e-4, 0.3, 3, 44, 1e3} (sin, cos: {1e-4, 0.3, 3, 20}) and the six integrands:
#   closed forms: abs 6.6e-17, square 7.3e-17, sin 1.0e-16, cos 1.0e-16;
#   quadrature: softsign 4.3e-16, atan 4.3e-16, asinh 3.7e-16, bent_identity 3.0e-16,
#   gelu_tanh 5.8e-16 (its E[phi] at q = 1e-4);
# E[phi] of the odd ones is exactly 0. The claim of initsim.theory.gaussian is 4e-15.
MP_RTOL = 4e-15
MP_PHI_ATOL = 1e-15  # in units of sqrt(E[phi^2]), where E[phi] or E[phi'] cancels
Q_1D = [1e-4, 0.3, 3.0, 44.0, 1e3]
Q_1D_PERIODIC = [1e-4, 0.3, 3.0, 20.0]  # larger q: the formula check below


@pytest.mark.parametrize("name", NEW)
def test_expectations_match_mpmath(name: str) -> None:
    act = A.get(name)
    for q in Q_1D_PERIODIC if name in ("sin", "cos") else Q_1D:
        for kind, code in ALL_CODES.items():
            ref = mp_expectation(name, q, kind)
            got = G.expect_scalar(act, q, code)
            if kind in ("phi", "dphi"):  # can vanish by cancellation: judge on the scale
                size = "phi2" if kind == "phi" else "dphi2"
                scale = math.sqrt(float(mp_expectation(name, q, size)))
            else:
                scale = 0.0
            tol = MP_RTOL * abs(ref) + MP_PHI_ATOL * scale + 1e-300
            assert abs(got - ref) <= tol, (name, q, kind, got, float(ref))


def test_periodic_closed_forms_at_large_q_against_the_formulas_in_mpmath() -> None:
    """sin, cos: the float closed forms against the same formulas at 60 digits, q to 1e4.

    Checks the expm1 forms (E[sin^2] = (1 - e^(-2q)) / 2 and E[sin^4] =
    (3 - 4 e^(-2q) + e^(-8q)) / 8 written as ``m^2 (3 + 2e + e^2) / 8``): measured
    relative error <= 1.8e-16, including q = 1e-10 where the direct forms cancel
    (which is why the references are evaluated at 60 digits: they cancel too).
    """
    with mp.workdps(60):
        for q in [1e-10, 1e-6, 1e-2, 44.0, 300.0, 1e3, 1e4]:
            qm = mp.mpf(q)
            e = mp.exp(-2 * qm)
            ref = {
                "sin": {
                    "phi2": (1 - e) / 2,
                    "phi4": (3 - 4 * e + e**4) / 8,
                    "dphi2": (1 + e) / 2,
                    "dq_phi2": e,
                    "dphi": mp.exp(-qm / 2),
                },
                "cos": {
                    "phi": mp.exp(-qm / 2),
                    "phi2": (1 + e) / 2,
                    "phi4": (3 + 4 * e + e**4) / 8,
                    "dphi2": (1 - e) / 2,
                    "dq_phi2": -e,
                },
            }
            for name, table in ref.items():
                for kind, r in table.items():
                    got = G.expect_scalar(A.get(name), q, ALL_CODES[kind])
                    assert abs(got - r) <= 1e-15 * abs(r) + 1e-300, (name, q, kind)


@pytest.mark.parametrize("name", CLOSED_1D)
def test_closed_forms_agree_with_the_generic_quadrature(name: str) -> None:
    """Every new closed form against the adaptive quadrature used without it.

    Measured worst relative difference 7.1e-16 for abs and square, 3.2e-15 for sin
    and cos (d E[phi^2] / dq = +-e^(-2q) at q = 3); E[cos] = e^(-q/2), E[sin'] and
    +-e^(-2q) fall below the quadrature's absolute resolution (~1e-17) at large q,
    hence the absolute floor.
    """
    act = A.get(name)
    for code in ALL_CODES.values():
        for q in [1e-4, 0.02, 0.7, 3.0, 60.0, 1e3]:
            closed = G._closed_form(act, np.array([q]), code)
            assert closed is not None
            quad = G._quad_expect(act, q, code)
            # E[phi], E[phi'] and d E[phi^2] / dq can be tiny by cancellation: judged
            # against the size of their integrands (Cauchy-Schwarz) there
            e2, d2 = G._quad_expect(act, q, G.PHI2), G._quad_expect(act, q, G.DPHI2)
            size = {G.PHI: e2, G.DPHI: d2, G.DQ_PHI2: e2 * d2 / q}.get(code, 0.0)
            atol = 1e-15 * math.sqrt(size)
            assert abs(closed[0] - quad) <= 1e-13 * abs(quad) + atol, (name, q, code)


def test_limits_in_q() -> None:
    E = T.gaussian_expectation
    for name in ("sin", "cos"):  # limits of the moments although phi has none at inf
        assert E(name, math.inf, "phi2") == 0.5 and E(name, math.inf, "dphi2") == 0.5
        assert E(name, math.inf, "phi4") == 0.375 and E(name, math.inf, "phi") == 0.0
        for kind in ("phi", "phi2", "phi4", "dphi2"):
            assert E(name, 1e8, kind) == pytest.approx(E(name, math.inf, kind), abs=1e-15)
            assert E(name, 1e-12, kind) == pytest.approx(E(name, 0.0, kind), abs=1e-11)
    assert E("cos", 0.0, "phi2") == 1.0 and E("cos", 0.0, "dphi2") == 0.0
    assert E("abs", 0.0, "dphi2") == 1.0 and E("abs", math.inf, "dphi2") == 1.0
    assert E("square", math.inf, "phi") == math.inf
    assert G.expect_scalar(A.get("square"), math.inf, G.DPHI) == 0.0
    assert E("atan", math.inf, "phi2") == math.pi**2 / 4
    assert E("softsign", math.inf, "phi2") == 1.0
    assert E("bent_identity", math.inf, "dphi2") == (1.5**2 + 0.5**2) / 2
    assert E("gelu_tanh", math.inf, "dphi2") == 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in NEW:
            for q in (0.0, math.inf):
                for code in ALL_CODES.values():
                    G.expect_scalar(A.get(name), q, code)  # no warning, no error


def test_literature_values() -> None:
    q = np.array([1e-3, 0.5, 2.0, 50.0])
    E = T.gaussian_expectation
    np.testing.assert_allclose(E("abs", q, "phi"), np.sqrt(2 * q / np.pi), rtol=1e-15)
    np.testing.assert_array_equal(E("abs", q, "phi2"), q)
    np.testing.assert_array_equal(E("square", q, "phi4"), 105 * q**4)
    np.testing.assert_allclose(E("sin", q, "phi2"), -np.expm1(-2 * q) / 2, rtol=1e-15)
    np.testing.assert_allclose(E("cos", q, "phi"), np.exp(-q / 2), rtol=1e-15)


# ----------------------------------------------------------------------------------
# Two-dimensional expectations
# ----------------------------------------------------------------------------------


@functools.cache
def _hermite_rule(n: int) -> tuple[list, list]:
    """n-point Gauss-Hermite rule for N(0, 1) at 40 digits (Newton from numpy's nodes)."""
    x0, _ = np.polynomial.hermite_e.hermegauss(n)
    xs, ws = [], []
    with mp.workdps(40):
        for start in x0:
            x = mp.mpf(start)
            for _ in range(6):
                h0, h1 = mp.mpf(1), x
                for k in range(1, n):
                    h0, h1 = h1, x * h1 - k * h0  # He_{k-1}, He_k
                x -= h1 / (n * h0)  # He_n' = n He_{n-1}
            h0, h1 = mp.mpf(1), x
            for k in range(1, n):
                h0, h1 = h1, x * h1 - k * h0
            xs.append(x)
            ws.append(mp.factorial(n) / (n * n * h0 * h0))
    return xs, ws


def mp_bivariate_smooth(name: str, q: float, c: float, which: str):
    """E[f(u1) f(u2)], f = phi or phi', by a Gauss-Hermite product rule at 30 digits.

    ``u1 = s z1``, ``u2 = s (c z1 + sqrt(1 - c^2) z2)``. 8 x 8 points are exact for
    square; for sin and cos (60 x 60) the rule's error on ``exp(i w z)`` is about
    ``w^(2n) n! / (2n)!`` with frequencies ``w <= 2 sqrt(q)``: below 1e-20 for
    ``q <= 10`` (40 points left 4.6e-13 at q = 10, c = -0.95).
    """
    phi, dphi = MP_ACTS[name]
    f = phi if which == "phi" else dphi
    xs, ws = _hermite_rule(8 if name == "square" else 60)
    with mp.workdps(30):
        s, cm = mp.sqrt(mp.mpf(q)), mp.mpf(c)
        r = mp.sqrt(1 - cm * cm)
        return mp.fsum(
            wi * wj * f(s * xi) * f(s * (cm * xi + r * xj))
            for xi, wi in zip(xs, ws, strict=True)
            for xj, wj in zip(xs, ws, strict=True)
        )


def mp_bivariate_abs(q: float, c: float, which: str):
    """E[|u1| |u2|] or E[sign u1 sign u2] in polar coordinates, 30 digits.

    With ``(z1, z2) = rho (cos a, sin a)`` and ``c = cos b``: ``u1 = s rho cos a``,
    ``u2 = s rho cos(a - b)``; ``E[rho^2] = 2`` and ``a`` is uniform, so the
    expectations are one-dimensional integrals over ``a``, split at the kinks.
    """
    with mp.workdps(30):
        b = mp.acos(mp.mpf(c))
        kinks = sorted(
            {
                mp.pi / 2,
                3 * mp.pi / 2,
                (b + mp.pi / 2) % (2 * mp.pi),
                (b + 3 * mp.pi / 2) % (2 * mp.pi),
            }
        )
        pts = [mp.mpf(0), *kinks, 2 * mp.pi]
        if which == "phi":
            g = lambda a: abs(mp.cos(a)) * abs(mp.cos(a - b))  # noqa: E731
            return mp.mpf(q) / mp.pi * mp.quad(g, pts)
        g = lambda a: mp.sign(mp.cos(a)) * mp.sign(mp.cos(a - b))  # noqa: E731
        return mp.quad(g, pts) / (2 * mp.pi)


def mp_bivariate(name: str, q: float, c: float, which: str):
    if name == "abs":
        return mp_bivariate_abs(q, c, which)
    return mp_bivariate_smooth(name, q, c, which)


# Measured worst relative error of the closed kernels against these references over
# the grid below (phi, dphi, gap = E_q[phi^2] - E[phi phi] at 30 digits):
# abs 1.7e-16, 3.3e-16, 5.3e-16; square 1.2e-16, 5.6e-17, 1.8e-16;
# sin 1.5e-16, 2.6e-16, 1.7e-16; cos 2.6e-16, 1.5e-16, 1.7e-16.
KERNEL_RTOL = 4e-15


@pytest.mark.parametrize("name", CLOSED_2D)
def test_closed_kernels_match_mpmath(name: str) -> None:
    act = A.get(name)
    for q in (0.3, 2.0, 10.0):
        e2 = {w: mp_expectation(name, q, k) for w, k in (("phi", "phi2"), ("dphi", "dphi2"))}
        for c in (-0.95, -0.4, 0.0, 0.3, 0.8, 0.99):
            ref = {w: mp_bivariate(name, q, c, w) for w in ("phi", "dphi")}
            for which in ("phi", "dphi"):
                got = G.bivariate(act, q, c, which)
                # sin's kernel is 0 at c = 0: judged on the scale E_q[phi^2] there
                tol = KERNEL_RTOL * abs(ref[which]) + 1e-16 * e2[which]
                assert abs(got - ref[which]) <= tol, (name, q, c, which, got, float(ref[which]))
            ref_gap = e2["phi"] - ref["phi"]
            got_gap = G.bivariate(act, q, c, "gap")
            assert abs(got_gap - ref_gap) <= KERNEL_RTOL * abs(ref_gap) + 1e-16 * e2["phi"]


C_GRID = [-1.0, -0.9, -0.3, 0.0, 0.5, 0.9, 0.999, 1 - 1e-8, 1.0]


@pytest.mark.parametrize("name", CLOSED_2D)
def test_generic_rule_reproduces_the_new_closed_kernels(name: str) -> None:
    """The generic 2-D rule run on the new closed kernels (sin, cos with periodic panels).

    Measured worst absolute difference, in units of E_q[phi^2] (E_q[phi'^2] for dphi):
    abs 5.7e-16, square 6.6e-16, sin 8.9e-16, cos 7.8e-16 on q in [1e-4, 100].
    """
    act = A.get(name)
    for q in [1e-4, 0.1, 1.0, 10.0, 100.0]:
        scale = {
            "phi": T.gaussian_expectation(act, q, "phi2"),
            "gap": T.gaussian_expectation(act, q, "phi2"),
            "dphi": T.gaussian_expectation(act, q, "dphi2"),
        }
        for c in C_GRID:
            for which in ("phi", "dphi", "gap"):
                exact = G.bivariate(act, q, c, which)
                num = G._bivariate_quadrature(act, q, c, which)
                assert abs(num - exact) <= 1e-12 * scale[which], (q, c, which, num, exact)


def _mp_gap(act: A.Activation, q: float, c: float):
    """E_q[phi^2] - E[phi(u1) phi(u2)] from the textbook kernels, at 50 digits.

    The subtraction cancels ``log10(1 / (1 - c))`` digits, which 50 digits afford.
    """
    name = act.name
    with mp.workdps(50):
        qm, cm = mp.mpf(q), mp.mpf(c)
        a = mp.mpf(act.param) if name == "leaky_relu" else mp.mpf(0)

        def k1(x):
            return (mp.sqrt(1 - x * x) + (mp.pi - mp.acos(x)) * x) / (2 * mp.pi)

        if name in ("relu", "leaky_relu"):
            return (1 + a * a) * qm / 2 - (a * qm * cm + (1 - a) ** 2 * qm * k1(cm))
        if name == "linear":
            return qm - qm * cm
        if name == "abs":
            return qm - 2 * qm * (mp.sqrt(1 - cm * cm) + cm * mp.asin(cm)) / mp.pi
        if name == "square":
            return 3 * qm**2 - qm**2 * (1 + 2 * cm * cm)
        if name == "sin":
            return mp.exp(-qm) * (mp.sinh(qm) - mp.sinh(qm * cm))
        return mp.exp(-qm) * (mp.cosh(qm) - mp.cosh(qm * cm))


GAP_ACTS = [
    A.get("relu"),
    A.get("leaky_relu"),
    A.get("leaky_relu", slope=-0.5),
    A.get("linear"),
    *(A.get(n) for n in CLOSED_2D),
]


@pytest.mark.parametrize("act", GAP_ACTS, ids=lambda a: a.label)
def test_closed_gaps_are_relatively_accurate_near_c_equal_one(act: A.Activation) -> None:
    """The closed gaps E[(phi(u1) - phi(u2))^2] / 2 keep their relative accuracy as c -> 1.

    Measured worst relative error 3.3e-16 (1 - c down to 1e-12, q from 1e-3 to 1e3),
    for relu, leaky_relu, linear, abs, square, sin and cos; also at c -> -1 for abs,
    whose gap is even in c. (relu's gap written as q/2 - q k1(c) was 1.2e-6 off at
    1 - c = 1e-8: see test_arccos_kernel_gap_near_one.)
    """
    for q in (1e-3, 1.0, 1e3):
        for d in (0.5, 1e-4, 1e-8, 1e-12):
            for c in (1.0 - d, -(1.0 - d)) if act.name == "abs" else (1.0 - d,):
                ref = _mp_gap(act, q, c)
                got = G.bivariate(act, q, c, "gap")
                assert abs(got - ref) <= 4e-15 * abs(ref), (q, c, got, float(ref))


def test_arccos_kernel_gap_near_one() -> None:
    """Issue 17, item 3: relu's kernel and its gap to c = 1, 1 - c down to 1e-12.

    Against 50-digit mpmath of the same formulas (k1 = (sqrt(1 - c^2) + (pi - arccos c) c)
    / (2 pi), k0 = (pi - arccos c) / (2 pi)) at the same float c. The former
    ``sqrt(max(0, 1 - c*c))`` with ``1/2 - k1`` for the gap had, at 1 - c = 1e-4, 1e-8,
    1e-12: sqrt relative error 1.3e-13, 2.8e-10, 2.5e-13 and gap relative error
    5.3e-12, 1.2e-6, 3.0e-7 (asserted below; math.acos itself was accurate, and k1
    only 1.2e-14 off). Now, measured: sqrt((1 - c)(1 + c)) <= 5.1e-17, theta =
    atan2(...) <= 6.8e-17, k1 <= 2.9e-17 and the gap g1 <= 6.4e-17.
    """
    # 50 digits: the reference 1/2 - k1 itself cancels log10(1 / (1 - c)) digits, and
    # at 30 digits it was only good to 1.3e-15 at 1 - c = 1e-12
    with mp.workdps(50):
        for d in (1e-4, 1e-8, 1e-12):
            c = 1.0 - d
            cm = mp.mpf(c)
            theta = mp.acos(cm)
            k1_ref = (mp.sqrt(1 - cm * cm) + (mp.pi - theta) * cm) / (2 * mp.pi)
            k0_ref = (mp.pi - theta) / (2 * mp.pi)
            k1, k0, g1, g0 = G._arccos_kernels(c)
            assert abs(k1 - k1_ref) <= 2e-16 * k1_ref
            assert abs(k0 - k0_ref) <= 2e-16 * k0_ref
            g1_ref = mp.mpf(1) / 2 - k1_ref
            assert abs(g1 - g1_ref) <= 1e-15 * g1_ref, (d, float(abs(g1 - g1_ref) / g1_ref))
            assert abs(g0 - theta / (2 * mp.pi)) <= 1e-15 * theta / (2 * mp.pi)
            # relu's gap through bivariate, and what the former formula gave
            assert abs(G.bivariate(A.get("relu"), 1.0, c, "gap") - g1_ref) <= 1e-15 * g1_ref
            old_theta = math.acos(c)
            old_k1 = (math.sqrt(max(0.0, 1.0 - c * c)) + (math.pi - old_theta) * c) / (2 * math.pi)
            old_err = abs(0.5 - old_k1 - g1_ref) / g1_ref
            assert old_err > {1e-4: 1e-12, 1e-8: 1e-7, 1e-12: 1e-7}[d]  # would fail 1e-12
