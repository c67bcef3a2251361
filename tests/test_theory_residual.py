"""Residual-network theory (initsim.theory.residual): closed forms, mpmath, Monte Carlo.

Statistical tests use fixed seeds (so they cannot flake) and tolerances of
``Z`` Monte Carlo standard errors: ``Z = 5`` is a two-sided false-rejection
rate of about 6e-7 per comparison, had the seed been random (about 100
comparisons here: below 1e-4 for the module). Every z-test has a negative
control, the same test against the theory with ``alpha`` 5 % too large,
which must reject at the sizes used.

The Monte Carlo is plain numpy written here (:func:`simulate`): it
materialises every weight matrix of every net with
``numpy.random.default_rng(seed)``, runs the blocks forward and
back-propagates ``L = u . x^L``, ``u ~ N(0, I)``. Its backward pass is checked
against finite differences first.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from scipy import integrate

from initsim import activations as A
from initsim import theory as T
from initsim.theory import residual as R

Z = 5.0  # Monte Carlo tolerance in standard errors (alpha ~ 6e-7 two-sided)
RTOL = 1e-13  # closed forms and mpmath references


# ----------------------------------------------------------------------------------
# A plain-numpy residual net (the model of initsim.theory.residual)
# ----------------------------------------------------------------------------------


def _leaky(a):
    return (lambda h: np.where(h > 0, h, a * h)), (lambda h: np.where(h > 0, 1.0, a))


PHIS = {
    "relu": (lambda h: np.maximum(h, 0.0), lambda h: (h > 0).astype(float)),
    "linear": (lambda h: h, np.ones_like),
    "tanh": (np.tanh, lambda h: 1.0 / np.cosh(h) ** 2),
    "leaky_relu(0.2)": _leaky(0.2),
}


def _norm(x, kind, eps):
    """N(x) over the units (last axis) and the map v -> J_N(x)^T v (J_N is symmetric)."""
    if kind == "rmsnorm":
        r = np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)

        def jt(v):
            return v / r - x * np.mean(x * v, axis=-1, keepdims=True) / r**3

        return x / r, jt
    xc = x - x.mean(axis=-1, keepdims=True)
    sd = np.sqrt(np.mean(xc * xc, axis=-1, keepdims=True) + eps)
    y = xc / sd

    def jt(v):
        mv = v.mean(axis=-1, keepdims=True)
        return (v - mv - y * np.mean(y * v, axis=-1, keepdims=True)) / sd

    return y, jt


def _per_block(v, depth):
    return np.broadcast_to(np.asarray(v, dtype=float), (depth,))


def _draw_blocks(rng, k, n, nb, m, depth, sw, sb2, law):
    """Weights and biases of ``k`` nets: blocks[t] = [(W, b) per branch layer]."""
    fans = (
        [(n, n)] if m == 1 else [(n if j == 0 else nb, n if j == m - 1 else nb) for j in range(m)]
    )
    blocks = []
    for _ in range(depth):
        layer = []
        for j, (fan_in, fan_out) in enumerate(fans):
            std = math.sqrt(sw[j] / fan_in)
            if law == "normal":
                w = std * rng.standard_normal((k, fan_out, fan_in))
            else:  # uniform with the same variance
                w = std * math.sqrt(3.0) * rng.uniform(-1.0, 1.0, (k, fan_out, fan_in))
            b = math.sqrt(sb2) * rng.standard_normal((k, fan_out))
            layer.append((w, b))
        blocks.append(layer)
    return blocks


def _forward(x, blocks, c):
    """Run the blocks; return q per block (k, depth) and a tape for :func:`_backward`."""
    f, _ = c["phi"]
    q = np.empty((x.shape[0], len(blocks)))
    tape = []
    for t, layer in enumerate(blocks):
        jt_in = jt_out = None
        if c["norm"] == "pre":
            un, jt_in = _norm(x, c["kind"], c["eps"])
            u = c["s"][t] * un
        else:
            u = c["s"][t] * x
        pre = []
        if len(layer) == 1:
            pre.append(u)
            w, b = layer[0]
            branch = np.einsum("koi,ki->ko", w, c["g"] * f(u)) + b
        else:
            h = np.einsum("koi,ki->ko", layer[0][0], u) + layer[0][1]
            for w, b in layer[1:]:
                pre.append(h)
                h = np.einsum("koi,ki->ko", w, c["g"] * f(h)) + b
            branch = h
        z = c["skip"][t] * x + c["alpha"][t] * branch
        x, jt_out = _norm(z, c["kind"], c["eps"]) if c["norm"] == "post" else (z, None)
        q[:, t] = np.mean(x * x, axis=1)
        tape.append((layer, pre, jt_in, jt_out))
    return x, q, tape


def _backward(u, tape, c):
    """Back-propagate ``u``: mean squares at every block output, and the gradient at x^0."""
    _, df = c["phi"]
    grad_sq = np.empty((u.shape[0], len(tape)))
    g = u
    for t in range(len(tape) - 1, -1, -1):
        grad_sq[:, t] = np.mean(g * g, axis=1)
        layer, pre, jt_in, jt_out = tape[t]
        gz = jt_out(g) if jt_out is not None else g
        v = np.einsum("koi,ko->ki", layer[-1][0], c["alpha"][t] * gz)
        for j in range(len(pre) - 1, -1, -1):
            v = c["g"] * df(pre[j]) * v
            if len(layer) > 1:
                v = np.einsum("koi,ko->ki", layer[j][0], v)
        v = c["s"][t] * (jt_in(v) if jt_in is not None else v)
        g = c["skip"][t] * gz + v
    return grad_sq, g


def _config(depth, phi, alpha, skip, in_scale, act_scale, norm, kind, eps):
    return {
        "phi": PHIS[phi],
        "alpha": _per_block(alpha, depth),
        "skip": _per_block(skip, depth),
        "s": _per_block(in_scale, depth),
        "g": act_scale,
        "norm": norm,
        "kind": kind,
        "eps": eps,
    }


def simulate(
    seed, *, nets, n, nb, m, depth, phi="relu", sw=2.0, sb2=0.0, alpha=1.0, skip=1.0,
    in_scale=1.0, act_scale=1.0, norm="none", kind="rmsnorm", eps=0.0, law="normal",
    backward=False, q0=1.0, chunk=1000,
):  # fmt: skip
    """q (and grad_sq) per net and block, inputs uniform on the sphere of radius sqrt(n q0)."""
    c = _config(depth, phi, alpha, skip, in_scale, act_scale, norm, kind, eps)
    sw = np.broadcast_to(np.asarray(sw, dtype=float), (m,))
    rng = np.random.default_rng(seed)
    qs, gs = [], []
    for lo in range(0, nets, chunk):
        k = min(chunk, nets - lo)
        x = rng.standard_normal((k, n))
        x *= np.sqrt(n * q0) / np.linalg.norm(x, axis=1, keepdims=True)
        blocks = _draw_blocks(rng, k, n, nb, m, depth, sw, sb2, law)
        _, q, tape = _forward(x, blocks, c)
        qs.append(q)
        if backward:
            gs.append(_backward(rng.standard_normal((k, n)), tape, c)[0])
    return np.concatenate(qs), (np.concatenate(gs) if backward else None)


def zscores(samples, theory):
    """Per-block z-scores of the sample means of ``samples`` (nets, blocks) against ``theory``."""
    se = samples.std(axis=0, ddof=1) / math.sqrt(samples.shape[0])
    return (samples.mean(axis=0) - theory) / se


@pytest.mark.parametrize("norm", ["none", "pre", "post"])
@pytest.mark.parametrize("kind", ["rmsnorm", "layernorm"])
@pytest.mark.parametrize("m", [1, 2, 3])
def test_the_simulators_backward_pass_matches_finite_differences(norm, kind, m):
    rng = np.random.default_rng(7)
    n, nb, depth = 5, 4, 3
    c = _config(depth, "tanh", [0.7, 0.5, 0.9], 0.8, [1.0, 0.6, 1.3], 1.2, norm, kind, 1e-3)
    blocks = _draw_blocks(rng, 1, n, nb, m, depth, [1.5, 2.0, 0.7][:m], 0.1, "normal")
    x0 = rng.standard_normal((1, n))
    u = rng.standard_normal((1, n))
    _, _, tape = _forward(x0, blocks, c)
    _, grad = _backward(u, tape, c)
    h = 1e-6
    fd = np.empty(n)
    for i in range(n):
        e = np.zeros((1, n))
        e[0, i] = h
        up = np.sum(u * _forward(x0 + e, blocks, c)[0])
        down = np.sum(u * _forward(x0 - e, blocks, c)[0])
        fd[i] = (up - down) / (2 * h)
    np.testing.assert_allclose(grad[0], fd, rtol=1e-7, atol=1e-9)


# ----------------------------------------------------------------------------------
# Closed forms (ReLU, leaky ReLU, linear)
# ----------------------------------------------------------------------------------


def _close(got, want, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want, dtype=float), rtol=rtol, atol=0)


def test_relu_q_map_closed_forms_none():
    L = 6
    a = np.array([0.3, 0.5, 0.7, 0.9, 1.1, 1.3])
    # m = 2, He/He: E[q^l] = prod (1 + alpha^2 * 2 * 2 / 2)
    _close(R.residual_q_map("relu", 2.0, 0.5, L), (1 + 0.25 * 2) ** np.arange(1, L + 1))
    _close(R.residual_q_map("relu", 2.0, a, L), np.cumprod(1 + 2 * a**2))
    # per-layer sigma, skip, q0: (skip^2 + alpha^2 s1 s2 / 2)
    _close(
        R.residual_q_map("relu", [2.0, 1.5], 0.5, L, 3.0, skip=0.9),
        3.0 * (0.81 + 0.25 * 1.5) ** np.arange(1, L + 1),
    )
    # m = 3: two relus, sigma_1 sigma_2 sigma_3 / 4; m = 1: sigma / 2
    _close(
        R.residual_q_map("relu", [2.0, 1.5, 1.2], 0.5, L, branch_layers=3),
        (1 + 0.25 * 2 * 1.5 * 1.2 / 4) ** np.arange(1, L + 1),
    )
    _close(R.residual_q_map("relu", 2.0, a, L, branch_layers=1), np.cumprod(1 + a**2))
    # linear m = 1 and leaky relu (slope 0.2: (1 + 0.04) / 2)
    _close(R.residual_q_map("linear", 1.0, a, L, branch_layers=1), np.cumprod(1 + a**2))
    lk = A.get("leaky_relu", slope=0.2)
    _close(R.residual_q_map(lk, 2.0, a, L), np.cumprod(1 + a**2 * 4 * 0.52))
    # in_scale s and act_scale g: alpha^2 s^2 g^2 s1 s2 / 2
    s = np.linspace(1.0, 0.5, L)
    _close(
        R.residual_q_map("relu", 2.0, 0.5, L, in_scale=s, act_scale=1.5),
        np.cumprod(1 + 0.25 * s**2 * 2.25 * 2),
    )


def test_relu_q_map_closed_forms_with_bias():
    # m = 2: Q_F(q) = s2 (s1 q + b) / 2 + b; m = 1: Q_F(q) = s1 q / 2 + b
    L, b, a, s1, s2 = 5, 0.1, 0.6, 2.0, 1.5
    for m, qf in ((2, lambda q: s2 * (s1 * q + b) / 2 + b), (1, lambda q: s1 * q / 2 + b)):
        want, q = [], 1.3
        for _ in range(L):
            q = q + a * a * qf(q)
            want.append(q)
        sw = [s1, s2] if m == 2 else s1
        got = R.residual_q_map("relu", sw, a, L, 1.3, branch_layers=m, sigma_b2=b)
        _close(got, want)


def test_relu_q_map_closed_forms_pre_and_post():
    L = 6
    a = np.linspace(0.2, 1.2, L)
    # pre (eps = 0): q^l = skip^2 q^{l-1} + alpha^2 Q_F(1); skip 1: q0 + sum alpha^2 * 2
    _close(R.residual_q_map("relu", 2.0, a, L, 2.0, norm="pre"), 2.0 + np.cumsum(2 * a**2))
    want, q = [], 2.0
    for al in a:
        q = 0.81 * q + al**2 * 2 * 1.5 * 0.49 / 4
        want.append(q)
    got = R.residual_q_map(
        "relu", [2.0, 1.5, 0.49], a, L, 2.0, norm="pre", skip=0.9, branch_layers=3
    )
    _close(got, want)
    # with eps: the branch input has mean square q / (q + eps)
    eps = 0.5
    want, q = [], 2.0
    for al in a:
        q = q + al**2 * 2 * q / (q + eps)
        want.append(q)
    _close(R.residual_q_map("relu", 2.0, a, L, 2.0, norm="pre", eps=eps), want)
    # post: exactly 1 (eps = 0), else p / (p + eps)
    _close(R.residual_q_map("relu", 2.0, a, L, 5.0, norm="post"), np.ones(L))
    want, q = [], 5.0
    for al in a:
        p = q + al**2 * 2 * q
        q = p / (p + eps)
        want.append(q)
    _close(R.residual_q_map("relu", 2.0, a, L, 5.0, norm="post", eps=eps), want)


def test_nf_bookkeeping_holds_for_a_variance_preserving_branch():
    # NF-ResNet: x^{l+1} = x^l + alpha F(x^l / beta_l), beta_l^2 = 1 + l alpha^2, is exact when
    # Q_F(1) = 1: relu with gamma needs sigma_1^2 = 1 and sigma_2^2 gamma^2 / 2 = 1.
    L, a = 8, 0.2
    gamma = R.nf_gamma("relu")
    beta = np.sqrt(1 + np.arange(L) * a * a)
    got = R.residual_q_map("relu", [1.0, 2.0 / gamma**2], a, L, in_scale=1 / beta, act_scale=gamma)
    _close(got, 1 + np.arange(1, L + 1) * a * a)


def test_relu_grad_map_closed_forms():
    L = 6
    a = np.linspace(0.2, 1.2, L)
    # none: g^{l-1} = (skip^2 + alpha_l^2 chi_F) g^l, chi_F = s1 s2 / 2 (m = 2), s1 (m = 1) / 2
    fac = 0.81 + a**2 * 2 * 1.5 / 2
    want = np.append(np.cumprod(fac[:0:-1])[::-1], 1.0)
    _close(R.residual_grad_map("relu", [2.0, 1.5], a, L, skip=0.9), want)
    fac = 1 + a**2 * 2 * 1.5 * 0.7 / 4  # m = 3
    want = np.append(np.cumprod(fac[:0:-1])[::-1], 1.0)
    _close(R.residual_grad_map("relu", [2.0, 1.5, 0.7], a, L, branch_layers=3), want)
    fac = 1 + a**2 * 1.5 / 2  # m = 1
    want = np.append(np.cumprod(fac[:0:-1])[::-1], 1.0)
    _close(R.residual_grad_map("relu", 1.5, a, L, branch_layers=1), want)
    # the hidden width does not enter; the gradient does not depend on q0 (homogeneous)
    _close(R.residual_grad_map("relu", [2.0, 1.5], a, L, 7.0, skip=0.9),
           R.residual_grad_map("relu", [2.0, 1.5], a, L, skip=0.9))  # fmt: skip
    # pre (eps = 0, skip 1): g^l = q^L / q^l
    q = R.residual_q_map("relu", 2.0, a, L, 1.5, norm="pre")
    _close(R.residual_grad_map("relu", 2.0, a, L, 1.5, norm="pre"), q[-1] / q)
    # post relu: factor (skip^2 + alpha^2 c) / (skip^2 q + alpha^2 c q) = 1 / q = 1
    _close(R.residual_grad_map("relu", 2.0, a, L, 3.0, norm="post", skip=0.7), np.ones(L))
    # post with eps: q^{l-1} = p / (p + eps) after the first block
    eps = 0.1
    qs = np.concatenate([[3.0], R.residual_q_map("relu", 2.0, a, L, 3.0, norm="post", eps=eps)])
    fac = [(1 + a[t] ** 2 * 2) / ((1 + a[t] ** 2 * 2) * qs[t] + eps) for t in range(L)]
    want = np.append(np.cumprod(np.array(fac)[:0:-1])[::-1], 1.0)
    _close(R.residual_grad_map("relu", 2.0, a, L, 3.0, norm="post", eps=eps), want)


def _kappa(c):
    """Normalised arc-cosine kernel of relu (Cho and Saul 2009): E[relu relu] / E[relu^2]."""
    c = min(1.0, max(-1.0, c))
    return (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c) / math.pi


@pytest.mark.parametrize("m", [1, 2, 3])
def test_relu_c_map_closed_form(m):
    L = 8
    a = np.linspace(0.3, 1.5, L)
    skip = 0.9
    sw = [2.0, 1.3, 0.8][:m]
    chi = np.prod(sw) / 2 ** (1 if m == 1 else m - 1)  # Q_F(q) / q
    depth_k = 1 if m == 1 else m - 1  # relus in the branch
    want, c = [], -0.4
    for al in a:
        kf = c
        for _ in range(depth_k):
            kf = _kappa(kf)
        c = (skip**2 * c + al**2 * chi * kf) / (skip**2 + al**2 * chi)
        want.append(c)
    got = R.residual_c_map(
        "relu", sw if m > 1 else sw[0], a, L, -0.4, 2.5, branch_layers=m, skip=skip
    )
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)


# ----------------------------------------------------------------------------------
# Mean field of other activations: mpmath references and the plain-MLP limit
# ----------------------------------------------------------------------------------


def _mp_pdf(z):
    return mp.exp(-z * z / 2) / mp.sqrt(2 * mp.pi)


def _mp_Phi(x):
    return mp.erfc(-x / mp.sqrt(2)) / 2


def _mp_sig(x):
    return 1 / (1 + mp.exp(-x))


_SELU_L = mp.mpf("1.0507009873554804934193349852946")
_SELU_A = mp.mpf("1.6732632423543772848170429916717")

#: phi and phi' written independently with mpmath (default parameters), and kinks
MP_PHI = {
    "linear": (lambda x: x, lambda x: mp.mpf(1), []),
    "relu": (lambda x: max(x, mp.mpf(0)), lambda x: mp.mpf(x > 0), [0]),
    "leaky_relu": (lambda x: x if x > 0 else x / 100, None, [0]),
    "elu": (lambda x: x if x > 0 else mp.expm1(x), None, [0]),
    "selu": (lambda x: _SELU_L * (x if x > 0 else _SELU_A * mp.expm1(x)), None, [0]),
    "gelu": (lambda x: x * _mp_Phi(x), lambda x: _mp_Phi(x) + x * _mp_pdf(x), []),
    "silu": (lambda x: x * _mp_sig(x), None, []),
    "softplus": (lambda x: mp.log1p(mp.exp(x)), None, []),
    "sigmoid": (_mp_sig, None, []),
    "tanh": (mp.tanh, lambda x: mp.sech(x) ** 2, []),
    "erf": (mp.erf, None, []),
    "hard_tanh": (lambda x: max(mp.mpf(-1), min(mp.mpf(1), x)), None, [-1, 1]),
}


def _mp_e(f, q, kinks=()):
    """E[f(sqrt(q) z)] by 30-digit quadrature, split at the kinks."""
    s = mp.sqrt(q)
    pts = sorted({mp.mpf(0), *(mp.mpf(k) / s for k in kinks)})
    return mp.quad(lambda z: f(s * z) * _mp_pdf(z), [-mp.inf, *pts, mp.inf])


def mp_residual(name, sw, alpha, depth, q0, m, norm, skip=1.0, eps=0.0):
    """The maps of the module docstring at 30 digits (q^1..q^L and g^1..g^L)."""
    phi, dphi, _ = MP_PHI[name]
    with mp.workdps(30):
        sw = [mp.mpf(v) for v in sw]
        skip, eps = mp.mpf(skip), mp.mpf(eps)

        def branch(qu):
            if m == 1:
                qf = sw[0] * _mp_e(lambda x: phi(x) ** 2, qu)
                return qf, sw[0] * _mp_e(lambda x: dphi(x) ** 2, qu)
            qk, chi = sw[0] * qu, sw[0]
            for k in range(1, m):
                chi *= sw[k] * _mp_e(lambda x: dphi(x) ** 2, qk)
                qk = sw[k] * _mp_e(lambda x: phi(x) ** 2, qk)
            return qk, chi

        qs, facs = [mp.mpf(q0)], []
        for t in range(depth):
            a2 = mp.mpf(alpha[t]) ** 2
            q = qs[-1]
            qu = q / (q + eps) if norm == "pre" else q
            qf, chi = branch(qu)
            p = skip**2 * q + a2 * qf
            qs.append(p / (p + eps) if norm == "post" else p)
            fac = skip**2 + a2 * chi / ((q + eps) if norm == "pre" else 1)
            facs.append(fac / (p + eps) if norm == "post" else fac)
        grads = [mp.mpf(1)]
        for t in range(depth - 1, 0, -1):
            grads.insert(0, facs[t] * grads[0])
        return np.array([float(v) for v in qs[1:]]), np.array([float(v) for v in grads])


@pytest.mark.parametrize(
    ("name", "sw", "m", "norm", "eps"),
    [
        ("tanh", [1.5, 2.0], 2, "none", 0.0),
        ("tanh", [1.5, 2.0], 2, "pre", 0.1),
        ("tanh", [1.5, 2.0], 2, "post", 0.1),
        ("tanh", [1.2], 1, "none", 0.0),
        ("gelu", [2.0, 1.0, 1.7], 3, "none", 0.0),
    ],
)
def test_maps_match_mpmath(name, sw, m, norm, eps):
    alpha = [0.9, 0.6, 1.1]
    q_ref, g_ref = mp_residual(name, sw, alpha, 3, 0.8, m, norm, skip=0.95, eps=eps)
    kw = {"branch_layers": m, "norm": norm, "skip": 0.95, "eps": eps}
    sigma = sw if m > 1 else sw[0]
    _close(R.residual_q_map(name, sigma, alpha, 3, 0.8, **kw), q_ref, rtol=4e-14)
    _close(R.residual_grad_map(name, sigma, alpha, 3, 0.8, **kw), g_ref, rtol=4e-14)


@pytest.mark.parametrize("name", ["tanh", "erf", "gelu"])
def test_one_layer_branch_without_skip_is_the_plain_mlp(name):
    # skip 0, alpha 1, m = 1: x^l = W phi(x^{l-1}) + b is the MLP's pre-activation h^{l+1}
    sw, sb, L = 1.7, 0.05, 4
    q_mlp = T.q_map(name, sw, sb, 0.9, L + 1)
    c_mlp = T.c_map(name, sw, sb, 0.2, L + 1, 0.9)
    kw = {"branch_layers": 1, "skip": 0.0, "sigma_b2": sb}
    _close(R.residual_q_map(name, sw, 1.0, L, q_mlp[0], **kw), q_mlp[1:], rtol=1e-14)
    c = R.residual_c_map(name, sw, 1.0, L, c_mlp[0], q_mlp[0], **kw)
    np.testing.assert_allclose(c, c_mlp[1:], rtol=0, atol=1e-11)


# ----------------------------------------------------------------------------------
# Rank collapse and depth regimes
# ----------------------------------------------------------------------------------


def test_rank_collapse_at_alpha_one_follows_the_inverse_square_law():
    # He/He relu, m = 2: c' = (c + 2 kappa(c)) / 3 and kappa(c) = c + (2 sqrt(2) / (3 pi)) e^{3/2}
    # + O(e^{5/2}) with e = 1 - c, so e' = e - a e^{3/2}, a = 4 sqrt(2) / (9 pi), and
    # e^l ~ 4 / (a^2 l^2) = 81 pi^2 / (8 l^2).
    c = R.residual_c_map("relu", 2.0, 1.0, 10_000, 0.0)
    assert np.all(np.diff(c) > 0)
    assert (1 - c[-1]) * 10_000**2 == pytest.approx(81 * math.pi**2 / 8, rel=0.01)


def test_correlation_at_alpha_inverse_sqrt_depth_tends_to_the_ode():
    # alpha^2 = 1 / L: c^{l+1} - c^l = (2 / L) (kappa(c) - c) / (1 + 2 / L): the Euler scheme of
    # dc/dt = 2 (kappa(c) - c) on [0, 1]; c stays away from 1 at every depth
    sol = integrate.solve_ivp(
        lambda _t, y: [2 * (_kappa(y[0]) - y[0])], (0, 1), [0.0], rtol=1e-12, atol=1e-14
    )
    limit = sol.y[0, -1]
    ends = [R.residual_c_map("relu", 2.0, L**-0.5, L, 0.0)[-1] for L in (10, 100, 1000)]
    assert all(c < 0.45 for c in ends)
    errs = [abs(c - limit) for c in ends]
    assert errs[2] < 1e-3 and errs[2] < errs[1] < errs[0]
    # collapse at alpha = 1 at the same depths
    assert R.residual_c_map("relu", 2.0, 1.0, 1000, 0.0)[-1] > 0.9999


def test_depth_regimes_table():
    rows = R.depth_regimes()
    assert [(r["beta"], r["depth"]) for r in rows] == [
        (b, L) for b in (0.25, 0.5, 1.0) for L in (10, 100, 1000)
    ]
    by = {(r["beta"], r["depth"]): r for r in rows}
    for (b, L), r in by.items():
        assert r["alpha"] == L**-b
        assert r["ratio"] == pytest.approx((1 + 2 * L ** (-2 * b)) ** L, rel=1e-12)
    # beta = 1/2: e^2 within 1 % at L = 1000 (error ~ kappa^2 / (2 L) = 0.2 %)
    half = by[(0.5, 1000)]
    assert half["regime"] == "finite" and half["limit"] == pytest.approx(math.e**2, rel=1e-14)
    assert half["ratio"] == pytest.approx(math.e**2, rel=0.01)
    assert abs(half["ratio"] / math.e**2 - 1) < abs(by[(0.5, 100)]["ratio"] / math.e**2 - 1)
    # beta < 1/2 explodes (~ exp(2 L^(1/2))), beta > 1/2 tends to 1 (ratio - 1 ~ 2 / L)
    assert by[(0.25, 1000)]["regime"] == "explodes" and by[(0.25, 1000)]["limit"] == math.inf
    assert by[(0.25, 10)]["ratio"] < by[(0.25, 100)]["ratio"] < by[(0.25, 1000)]["ratio"]
    assert by[(0.25, 1000)]["ratio"] > 1e25
    assert by[(1.0, 1000)]["regime"] == "identity" and by[(1.0, 1000)]["limit"] == 1.0
    assert by[(1.0, 1000)]["ratio"] - 1 == pytest.approx(2e-3, rel=2e-3)


def test_depth_regimes_other_settings():
    # tanh: the beta = 1/2 limit is q(1) / q0 of dq/dt = Q_F(q)
    rows = R.depth_regimes("tanh", 1.5, betas=(0.5,), depths=(100, 1000), q0=0.5)
    assert rows[1]["ratio"] == pytest.approx(rows[1]["limit"], rel=2e-3)
    assert abs(rows[1]["ratio"] - rows[1]["limit"]) < abs(rows[0]["ratio"] - rows[0]["limit"])
    # relu with bias: q(1) = (q0 + B / kappa) e^kappa - B / kappa
    rows = R.depth_regimes(betas=(0.5,), depths=(1000,), sigma_b2=0.1, q0=2.0)
    b = 2 * 0.1 / 2 + 0.1
    assert rows[0]["limit"] == pytest.approx(((2.0 + b / 2) * math.e**2 - b / 2) / 2.0, rel=1e-14)
    assert rows[0]["ratio"] == pytest.approx(rows[0]["limit"], rel=0.01)
    # pre: q^L = q0 + L^(1 - 2 beta) Q_F(1), so 1 + Q_F(1) / q0 at every depth for beta = 1/2
    rows = R.depth_regimes(betas=(0.25, 0.5), depths=(10, 1000), norm="pre")
    assert [r["ratio"] for r in rows[2:]] == pytest.approx([3.0, 3.0], rel=1e-13)
    assert rows[1]["ratio"] == pytest.approx(1 + 1000**0.5 * 2, rel=1e-13)


# ----------------------------------------------------------------------------------
# Monte Carlo: exact finite-width laws (ReLU/linear, m >= 2 or linear m = 1)
# ----------------------------------------------------------------------------------

EXACT = {
    "relu-m2-he": dict(n=16, nb=16, m=2, depth=6, alpha=0.7),
    "relu-m3-all-knobs": dict(
        n=12, nb=20, m=3, depth=5, sw=[2.0, 1.5, 1.0], sb2=0.1,
        alpha=[0.5, 0.6, 0.7, 0.8, 0.9], skip=0.9, in_scale=[1.0, 0.8, 0.7, 0.6, 0.5],
        act_scale=1.3,
    ),
    "leaky-m2-uniform-weights": dict(n=10, nb=10, m=2, depth=5, alpha=0.8, phi="leaky_relu(0.2)",
                                     law="uniform"),
    "linear-m1": dict(n=8, nb=8, m=1, depth=5, alpha=0.8, phi="linear", sw=1.0),
    "relu-pre-rmsnorm": dict(n=16, nb=16, m=2, depth=5, alpha=0.8, norm="pre", kind="rmsnorm"),
    "relu-pre-layernorm": dict(n=16, nb=24, m=2, depth=5, alpha=0.8, norm="pre",
                               kind="layernorm", skip=0.9),
}  # fmt: skip
_ACT = {"relu": "relu", "linear": "linear", "leaky_relu(0.2)": A.get("leaky_relu", slope=0.2)}


def _theory(cfg, fn, alpha_factor=1.0):
    alpha = np.asarray(cfg["alpha"], dtype=float) * alpha_factor
    return fn(
        _ACT[cfg.get("phi", "relu")], cfg.get("sw", 2.0), alpha, cfg["depth"],
        branch_layers=cfg["m"], norm=cfg.get("norm", "none"), skip=cfg.get("skip", 1.0),
        sigma_b2=cfg.get("sb2", 0.0), in_scale=cfg.get("in_scale", 1.0),
        act_scale=cfg.get("act_scale", 1.0),
    )  # fmt: skip


@pytest.mark.parametrize("name", list(EXACT))
def test_exact_finite_width_laws_against_monte_carlo(name):
    """E[q^l] (and E[grad_sq^l] for norm none) are exact at widths 8-24: z-test per block."""
    cfg = EXACT[name]
    backward = cfg.get("norm", "none") == "none"
    q, g = simulate(11, nets=20_000, backward=backward, **cfg)
    z = zscores(q, _theory(cfg, R.residual_q_map))
    assert np.all(np.abs(z) < Z), z
    # negative control: alpha 5 % too large is rejected
    z_bad = zscores(q, _theory(cfg, R.residual_q_map, 1.05))
    assert np.max(np.abs(z_bad)) > Z, z_bad
    if backward:
        gt = _theory(cfg, R.residual_grad_map)
        z = zscores(g, gt)
        assert np.all(np.abs(z) < Z), z
        z_bad = zscores(g, _theory(cfg, R.residual_grad_map, 1.05))
        assert np.max(np.abs(z_bad)) > Z, z_bad


def test_one_relu_layer_per_branch_is_mean_field_only():
    # m = 1 relu acts on the stream, whose entries are not symmetric after block 1: block 1 is
    # exact (sign-symmetric input), later blocks exceed the map by ~1.1 / n (relative)
    devs = {}
    for n in (8, 32):
        q, _ = simulate(5, nets=20_000, n=n, nb=n, m=1, depth=5, alpha=0.8)
        th = R.residual_q_map("relu", 2.0, 0.8, 5, branch_layers=1)
        z = zscores(q, th)
        assert abs(z[0]) < Z
        devs[n] = q.mean(axis=0)[-1] / th[-1] - 1
        if n == 8:
            assert z[-1] > Z  # outside the exact regime
    assert 0.5 < (32 * devs[32]) / (8 * devs[8]) < 2.0, devs  # O(1/n)


def test_norm_gradients_are_mean_field_with_order_one_over_n_terms():
    # pre-RMSNorm relu: the forward map is exact, the gradient map drops O(1/n) terms (the
    # fluctuations of 1/q, the removed direction); measured: g exceeds the map by ~2.5-3 / n
    devs = {}
    for n in (8, 32):
        q, g = simulate(
            9, nets=10_000, n=n, nb=n, m=2, depth=4, alpha=0.8, norm="pre", backward=True
        )
        gt = R.residual_grad_map("relu", 2.0, 0.8, 4, norm="pre")
        assert np.all(np.abs(zscores(q, R.residual_q_map("relu", 2.0, 0.8, 4, norm="pre"))) < Z)
        devs[n] = g.mean(axis=0)[0] / gt[0] - 1
        if n == 8:
            assert zscores(g, gt)[0] > Z
    assert 0.5 < (32 * devs[32]) / (8 * devs[8]) < 2.0, devs


# ----------------------------------------------------------------------------------
# Monte Carlo: tanh, mean field with the delta-method O(1/n) correction
# ----------------------------------------------------------------------------------


def _tanh_shortcut(seed, nets, n, nb, depth, s1, s2, alpha, q0=1.0):
    """Exact-in-law sampler of q^l for a Gaussian m = 2 tanh branch, no bias, norm none.

    Given x, W_1 x ~ N(0, s1 q I_nb) and, given a = tanh(W_1 x), W_2 a ~ N(0, c I_n) with
    c = s2 ||a||^2 / nb, independent of x's direction, so ||x + alpha W_2 a||^2 / n =
    q + 2 alpha sqrt(c q / n) z + alpha^2 c chi^2_n / n: the chain of q needs no matrices.
    """
    rng = np.random.default_rng(seed)
    q = np.full(nets, q0)
    out = np.empty((nets, depth))
    for t in range(depth):
        h = np.sqrt(s1 * q)[:, None] * rng.standard_normal((nets, nb))
        c2 = alpha**2 * s2 * np.mean(np.tanh(h) ** 2, axis=1)
        q = (
            q
            + 2 * np.sqrt(c2 * q / n) * rng.standard_normal(nets)
            + c2 * rng.chisquare(n, nets) / n
        )
        out[:, t] = q
    return out


def _delta_correction(q_samples, s1, s2, alpha, mf, q0=1.0):
    """O(1/n) bias of E[q^l] against the map (delta method; Var(q^l) from the samples).

    With Gaussian weights the branch is exact given its input: E[q^{l+1} | q^l] =
    q^l + alpha^2 Q_F(q^l), Q_F(q) = s2 G(s1 q), G(s) = E[tanh(sqrt(s) z)^2]. So the bias d
    obeys d^{l+1} = d^l + alpha^2 (Q_F'(m^l) d^l + Q_F''(m^l) Var(q^l) / 2) + O(1/n^2).
    """
    var = q_samples.var(axis=0, ddof=1)
    m = np.concatenate([[q0], mf])

    def G(s):
        return float(T.gaussian_expectation("tanh", s, "phi2"))

    d = [0.0]
    for t in range(1, q_samples.shape[1]):
        x = s1 * m[t]
        h = 1e-3 * x
        g1 = (G(x + h) - G(x - h)) / (2 * h)
        g2 = (G(x + h) - 2 * G(x) + G(x - h)) / h**2
        d.append(d[-1] + alpha**2 * (s2 * s1 * g1 * d[-1] + s2 * s1**2 * g2 / 2 * var[t - 1]))
    return np.array(d)


@pytest.mark.parametrize(("n", "how"), [(32, "materialised"), (512, "shortcut")])
def test_tanh_length_map_is_mean_field_with_a_one_over_n_correction(n, how):
    """|mean - map| <= Z SE + 2 |d|, d the delta-method O(1/n) correction (2: its remainder)."""
    s1 = s2 = 2.0
    alpha, depth = 0.8, 6
    if how == "materialised":
        q, _ = simulate(2, nets=8000, n=n, nb=n, m=2, depth=depth, phi="tanh", sw=2.0, alpha=alpha)
    else:
        q = _tanh_shortcut(1, 20_000, n, n, depth, s1, s2, alpha)
    mf = R.residual_q_map("tanh", 2.0, alpha, depth)
    se = q.std(axis=0, ddof=1) / math.sqrt(q.shape[0])
    d = _delta_correction(q, s1, s2, alpha, mf)
    tol = Z * se + 2 * np.abs(d)
    assert np.all(np.abs(q.mean(axis=0) - mf) <= tol), (q.mean(axis=0) - mf, tol)
    assert np.all(np.abs(d[1:]) < 0.02 * mf[1:])  # the correction is small ...
    assert np.all(d[1:] < 0)  # ... and negative: G is concave at these q
    bad = R.residual_q_map("tanh", 2.0, 1.05 * alpha, depth)
    assert np.all(np.abs(q.mean(axis=0) - bad) > tol)  # negative control, every block


# ----------------------------------------------------------------------------------
# NF-ResNet gamma
# ----------------------------------------------------------------------------------


def _mp_gamma(name):
    phi, _, kinks = MP_PHI[name]
    with mp.workdps(30):
        mean = _mp_e(phi, 1, kinks)
        second = _mp_e(lambda x: phi(x) ** 2, 1, kinks)
        return 1 / mp.sqrt(second - mean * mean)


@pytest.mark.parametrize("name", sorted(MP_PHI))
def test_nf_gamma_matches_mpmath(name):
    ref = _mp_gamma(name)
    got = R.nf_gamma(name)
    assert abs(got - ref) <= 1e-12 * ref, (name, got, float(ref))


def test_nf_gamma_known_values_and_aliases():
    assert R.nf_gamma("relu") == pytest.approx(1 / math.sqrt(0.5 - 0.5 / math.pi), rel=1e-15)
    assert R.nf_gamma("selu") == pytest.approx(1.0, abs=1e-12)  # selu: unit variance by design
    assert R.nf_gamma("identity") == R.nf_gamma("linear") == 1.0
    assert R.nf_gamma("swish") == R.nf_gamma("silu")


def test_published_nf_gammas_are_sample_estimates():
    # The nfnets constants (float32 prints) are all too large by 3e-4 .. 9e-4 relative: sample
    # estimates, not quadrature (float32 rounding alone would be ~1e-7). Exact for identity.
    errs = {name: R.nf_gamma_error(name) for name in R.NF_GAMMA_PUBLISHED}
    print({k: f"{v:.3e}" for k, v in errs.items()})
    assert errs.pop("linear") == 0.0
    assert all(3e-4 < e < 9e-4 for e in errs.values()), errs
    # the published number against the 30-digit mpmath gamma, independently of nf_gamma
    for name, value in R.NF_GAMMA_PUBLISHED.items():
        ref = float(_mp_gamma(name))
        assert R.nf_gamma_error(name) == pytest.approx((value - ref) / ref, rel=1e-9, abs=1e-15)


# ----------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------

BAD = [
    ({"norm": "middle"}, "norm must be one of"),
    ({"alpha": -0.1}, "alpha"),
    ({"alpha": math.inf}, "alpha"),
    ({"alpha": math.nan}, "alpha"),
    ({"alpha": [1.0, 1.0]}, "alpha as a sequence must give one value per block"),
    ({"alpha": "big"}, "alpha"),
    ({"branch_layers": 0}, "branch_layers"),
    ({"branch_layers": 1.5}, "branch_layers"),
    ({"sigma_w2": [2.0, 2.0, 2.0]}, "sigma_w2 must be one value or one value per branch layer"),
    ({"sigma_w2": -1.0}, "sigma_w2"),
    ({"sigma_w2": [2.0, math.nan]}, "sigma_w2"),
    ({"depth": 0}, "depth"),
    ({"q0": 0.0}, "q0"),
    ({"sigma_b2": -0.1}, "sigma_b2"),
    ({"skip": math.nan}, "skip"),
    ({"skip": [1.0] * 4}, "skip"),
    ({"in_scale": -1.0}, "in_scale"),
    ({"act_scale": -1.0}, "act_scale"),
    ({"eps": -1e-5}, "eps"),
    ({"activation": "no_such"}, "no_such"),
]
_GOOD = {"activation": "relu", "sigma_w2": 2.0, "alpha": 0.5, "depth": 3}


@pytest.mark.parametrize("fn", [R.residual_q_map, R.residual_grad_map, R.residual_c_map])
@pytest.mark.parametrize(("kwargs", "match"), BAD, ids=[m for _, m in BAD])
def test_bad_input_is_a_clear_error(fn, kwargs, match):
    args = {**_GOOD, **kwargs}
    if fn is R.residual_c_map:
        args["c0"] = 0.3
    with pytest.raises(ValueError, match=match):
        fn(**args)


def test_bad_input_other_functions():
    with pytest.raises(ValueError, match="c0"):
        R.residual_c_map("relu", 2.0, 0.5, 3, 1.5)
    with pytest.raises(ValueError, match="no published NF-ResNet gamma"):
        R.nf_gamma_error("erf")
    with pytest.raises(ValueError, match="no published NF-ResNet gamma"):
        R.nf_gamma_error(A.get("leaky_relu", slope=0.2))
    with pytest.raises(ValueError, match="norm must be one of none, pre"):
        R.depth_regimes(norm="post")
    with pytest.raises(ValueError, match="betas"):
        R.depth_regimes(betas=(-0.5,))
    with pytest.raises(ValueError, match="betas"):
        R.depth_regimes(betas=())
    with pytest.raises(ValueError, match="depths"):
        R.depth_regimes(depths=(0,))
