"""Law tests of the residual exact sampler: ``method="exact"`` against ``method="dense"``.

The residual exact sampler (:mod:`initsim.engine.residual_exact`) draws each
branch product ``W X`` from its conditional law and conditions the backward
pass on it (no gradient-independence assumption). ``method="dense"`` draws
every branch matrix and back-propagates through ``W^T``: the ground truth.
For every case in CASES (Gaussian, Haar-orthogonal and mixed branch weights;
one or three inputs; relu or tanh; no norm, Pre-LN or Post-LN with LayerNorm
or RMSNorm; one or two branch layers) the two samplers are run with
independent seeds, and each column of the family below gets a two-sample
Kolmogorov-Smirnov test; Holm's method combines the columns at the
family-wise level ALPHA = 1e-3. With the fixed seeds the outcome is
deterministic.

The family, for a net of ``L`` blocks (``q[l]`` and ``grad_sq[l]`` the mean
squares of ``x^{l+1}`` and of the gradient with respect to it, 1-based in the
names; ``grad_sq[L]`` is the output direction's):

- ``q[l]`` for every block (the forward law);
- ``grad_sq[l]`` for every block;
- ``grad_sq/out[l] = grad_sq[l] / grad_sq[L]`` for ``l < L``: the backward
  gain from the output. Every gradient is linear in the output direction
  ``g^L ~ N(0, I)``, whose squared norm (a chi-square with ``n B`` degrees
  of freedom, independent of the net) is a common factor of all of them;
  dividing it out removes that noise, which at these widths hides much of
  what a wrong backward pass changes. This column catches the "dropped"
  control in every case, and gradient independence (GI) with Post-LN and in
  the orthogonal Pre-RMSNorm case (20,000 nets of the latter at width 5:
  scaled KS distance 5.7 against 3.8 for ``grad_sq[1]``);
- ``grad_sq*gain/out[l] = grad_sq/out[l] * q[l] / q[L]``: times the inverse
  forward gain from block ``l`` to the output, as the MLP test
  (``tests/test_backward_laws.py``) does. Without a norm, relu branches and
  no biases, ``x^L`` is positively homogeneous of degree 1 in ``x^l``, so
  Euler's identity ``x^l . dL/dx^l = g^L . x^L`` ties the gradient to the
  forward gain, and GI breaks the tie. It is this column that catches GI
  without a norm (20,000 nets: scaled KS distance 5.1 for Gaussian, 4.3 for
  orthogonal weights, against at most 1.3 for every ``grad_sq`` and
  ``grad_sq/out`` column) and in the Gaussian Pre-LN case (3.8 against at
  most 1.1). With Post-LN every ``q`` is ``var / (var + eps)``, nearly 1,
  and it repeats ``grad_sq/out``.

The columns are rounded to 36 significant bits (:func:`_quantise`) to merge
atoms that two implementations spread over a few ulps. ``grad_sq`` has no
column for ``x^0``, so the backward pass through the first block is not
observed; through the second and third it is (the kernel runs the same code
for every block).

For residual nets the skip path carries much of the gradient, so GI errors
are smaller than in an MLP of the same width. The streams are therefore
narrow (width 4 or 5, branch width 4 to 6, three blocks, where the
conditioning matters most) and ``alpha`` is 0.7 (1.5 in the one-layer
Post-LN case, where at 0.7 and width 5 the "dropped" control's scaled KS
distance is about 2.2 at 20,000 nets, against 2.9 at 1.5 and width 4);
``skip`` keeps its default 1. Orthogonal exact backward passes need
``n_out >= n_in`` in every branch layer: ``width_branch >= width`` there.

Negative controls, in plain numpy (:func:`numpy_sample`: materialised
weights, the model of :mod:`initsim.engine.residual`), each held against
the same dense sample with the same family:

- "conditioned": forward through drawn ``W``, backward through the same
  ``W``: a second ground truth, which must pass (the controls' harness has
  the right input, output-direction, weight and norm laws);
- "independent": backward through an independent copy ``W'`` of every
  branch matrix (GI), which must be rejected;
- "dropped": backward through ``P W^T``, ``P`` the projection off
  ``col(X)`` for each branch matrix with layer input ``X`` (the part of
  ``W^T D`` inside the span of the layer's inputs removed), which must be
  rejected.

Sizes. The net counts in CASES come from a power study (not kept in the
repository: each sampler and control drawn at 40 times a case's count, with
seeds other than the tests', cut into 40 disjoint replicates, each run
through this module's family and Holm test against its own dense replicate;
about 5.5 min on two cores), which measured at those counts, in every case:

- power against the "independent" (GI) control 40/40, and against the
  "dropped" control 40/40. The largest scaled KS distance over the family
  averaged 3.9 to 6.5 for GI and 4.3 (one-layer Post-LN) to 50 for
  "dropped", against the threshold 2.23 that Holm's smallest level
  ``ALPHA / 10`` puts on it; the normal approximation of the replicates'
  spread puts every miss rate below 1e-4 (the largest: 8e-5, GI, mixed
  weights; 9e-6, GI, Gaussian Pre-LN). At half the counts the GI miss rate
  is up to 5e-2 (mixed weights: 37/40) and the one-layer Post-LN
  "dropped" one 2e-3;
- false rejections at ALPHA, of exact vs dense and of the "conditioned"
  control: 0/40 in every case (at a family-wise 0.05: 0 to 3 of 40).
  With 300,000 nets per sampler no case rejects at a family-wise 0.05,
  for exact vs dense or for the conditioned control, nor with 10^6 nets
  (two seeds) exact vs dense for orthogonal-1in-relu and mixed weights.

Run time: about 10 s for the module (after the kernels are compiled).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from scipy import stats

from initsim import simulate
from initsim.checks import holm
from initsim.residual import make_residual_plan

pytestmark = pytest.mark.usefixtures("warm_kernels")

ALPHA = 1e-3  # family-wise level of each case's Holm family
BLOCKS = 3
CONTROLS = ("conditioned", "independent", "dropped")
_CHUNK = 4096  # nets per numpy batch


@dataclass(frozen=True)
class Case:
    """One law-test case: the residual net, inputs per net and the net count."""

    name: str
    init: str | tuple[str, ...]  # one initializer, or one per branch layer
    inputs: int
    activation: str
    norm: str
    nets: int
    index: int  # seeds this case's streams
    norm_kind: str = "layernorm"
    width: int = 5
    width_branch: int = 4
    branch_layers: int = 2
    alpha: float = 0.7

    @property
    def id(self) -> str:
        norm = "none" if self.norm == "none" else f"{self.norm}-{self.norm_kind}"
        return f"{self.name}-{self.inputs}in-{self.activation}-{norm}-m{self.branch_layers}"

    def simulate_kwargs(self, nets: int | None = None) -> dict[str, Any]:
        return {
            "arch": "residual",
            "activation": self.activation,
            "init": list(self.init) if isinstance(self.init, tuple) else self.init,
            "depth": BLOCKS,
            "width": self.width,
            "width_branch": self.width_branch,
            "branch_layers": self.branch_layers,
            "alpha": self.alpha,
            "norm": self.norm,
            "norm_kind": self.norm_kind,
            "inputs": self.inputs,
            "nets": self.nets if nets is None else nets,
            "backward": True,
        }

    def seed(self, stream: str) -> int:
        """Independent seeds for the samplers and controls of this case."""
        return 1000 * (self.index + 1) + ("exact", "dense", *CONTROLS).index(stream)


# Net counts from the power study (module docstring): power >= 0.99 against both controls.
# Orthogonal exact backward passes need n_out >= n_in: width_branch >= width there.
CASES = [
    Case("gaussian", "he_normal", 1, "relu", "none", 12000, 0),
    Case("gaussian", "lecun_normal", 3, "tanh", "pre", 20000, 1),
    Case(
        "gaussian", "lecun_normal", 1, "tanh", "post", 40000, 2, width=4, branch_layers=1, alpha=1.5
    ),
    Case("orthogonal", "orthogonal", 1, "relu", "none", 20000, 3, width=4, width_branch=4),
    Case(
        "orthogonal", "orthogonal", 3, "tanh", "pre", 10000, 4, norm_kind="rmsnorm", width_branch=5
    ),
    Case("mixed", ("orthogonal", "he_normal"), 3, "relu", "post", 6000, 5, width_branch=6),
]
CASE_PARAMS = [pytest.param(c, id=c.id) for c in CASES]


@dataclass(frozen=True)
class Sample:
    """Per-net mean squares of the stream and of its gradient, both (nets, blocks)."""

    q: np.ndarray
    grad_sq: np.ndarray

    def head(self, nets: int) -> Sample:
        return Sample(self.q[:nets], self.grad_sq[:nets])

    def split(self, parts: int) -> list[Sample]:
        n = self.q.shape[0] // parts
        return [
            Sample(self.q[k * n : (k + 1) * n], self.grad_sq[k * n : (k + 1) * n])
            for k in range(parts)
        ]


def engine_sample(
    case: Case, method: str, seed: int, nets: int | None = None
) -> tuple[Sample, dict]:
    r = simulate(**case.simulate_kwargs(nets), method=method, seed=seed, progress=False)
    assert r.grad_sq is not None
    return Sample(r.q, r.grad_sq), r.provenance


# ----------------------------------------------------------------- numpy controls
def _phi(activation: str, h: np.ndarray) -> np.ndarray:
    return np.maximum(h, 0.0) if activation == "relu" else np.tanh(h)


def _dphi(activation: str, h: np.ndarray) -> np.ndarray:
    return (h > 0.0).astype(float) if activation == "relu" else 1.0 - np.tanh(h) ** 2


def haar(rng: np.random.Generator, nets: int, rows: int, cols: int) -> np.ndarray:
    """``nets`` Haar-distributed ``rows x cols`` matrices (orthonormal columns or rows)."""
    wide = rows < cols
    z = rng.standard_normal((nets, cols, rows) if wide else (nets, rows, cols))
    q, r = np.linalg.qr(z)
    # the sign fix makes Q Haar (numpy's QR does not fix the signs of R's diagonal)
    q = q * np.where(np.diagonal(r, axis1=1, axis2=2) < 0.0, -1.0, 1.0)[:, None, :]
    return np.swapaxes(q, 1, 2) if wide else q


def _weights(rng: np.random.Generator, spec: Any, nets: int, rows: int, cols: int) -> np.ndarray:
    """``nets`` draws of a ``rows x cols`` branch matrix of law ``spec`` (a LawSpec)."""
    if spec.law == "orthogonal":
        return spec.gain * haar(rng, nets, rows, cols)
    assert spec.law == "gaussian" and spec.loc == 0.0, spec
    return spec.scale * rng.standard_normal((nets, rows, cols))


def _norm(kind: str, z: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """LayerNorm or RMSNorm over the units (axis 1) of each input: ``(y, s)``, ``y = c / s``."""
    c = z - z.mean(axis=1, keepdims=True) if kind == "layernorm" else z
    s = np.sqrt(np.mean(c**2, axis=1, keepdims=True) + eps)
    return c / s, s


def _norm_t(kind: str, dy: np.ndarray, y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``J_N^T dy``: ``(dy - mean(dy) - y mean(dy y)) / s`` (no ``mean(dy)`` for RMSNorm)."""
    md = dy.mean(axis=1, keepdims=True) if kind == "layernorm" else 0.0
    return (dy - md - y * np.mean(dy * y, axis=1, keepdims=True)) / s


def numpy_sample(case: Case, nets: int, seed: int, mode: str) -> Sample:
    """Forward through drawn branch weights, backward as ``mode`` says (module docstring).

    The model of :mod:`initsim.engine.residual` at ``simulate``'s defaults:
    inputs uniform on the sphere of radius ``sqrt(n)``, output direction
    ``g^L ~ N(0, I)``, no biases, ``skip``, ``in_scale`` and ``act_scale`` 1.
    Arrays are ``(nets, units, inputs)``.
    """
    if mode not in CONTROLS:
        raise ValueError(f"mode must be one of {CONTROLS}; got {mode!r}")
    plan = make_residual_plan(
        **{k: v for k, v in case.simulate_kwargs(nets).items() if k != "arch"}, method="dense"
    )
    assert plan.bias_std == 0.0 and plan.act_scale == 1.0 and plan.input == "sphere"
    assert np.all(plan.skip == 1.0) and np.all(plan.in_scale == 1.0)
    n, m, b, act = plan.width, plan.branch_layers, plan.inputs, case.activation
    kind, eps, alpha = plan.norm_kind, plan.eps, plan.alpha
    fans = [plan.fans(k) for k in range(m)]
    rng = np.random.default_rng(seed)
    q = np.empty((nets, BLOCKS))
    grad_sq = np.empty((nets, BLOCKS))
    for lo in range(0, nets, _CHUNK):
        c = min(_CHUNK, nets - lo)
        x = rng.standard_normal((c, n, b))
        x *= np.sqrt(n) / np.linalg.norm(x, axis=1, keepdims=True)
        tape = []  # per block: the branch input's norm, each matrix's input and draw, ...
        for blk in range(BLOCKS):
            pre = _norm(kind, x, eps) if plan.norm == "pre" else None
            u = pre[0] if pre is not None else x
            # m >= 2: F = W_m phi(... phi(W_1 u)); m == 1: F = W_1 phi(u)
            hs = [u] if m == 1 else []  # what enters each nonlinearity
            a = _phi(act, u) if m == 1 else u
            ins, ws = [], []
            for k, (fan_in, fan_out) in enumerate(fans):
                w = _weights(rng, plan.laws[k], c, fan_out, fan_in)
                ins.append(a)
                ws.append(w)
                a = w @ a
                if k < m - 1:
                    hs.append(a)
                    a = _phi(act, a)
            z = x + alpha[blk] * a
            post = _norm(kind, z, eps) if plan.norm == "post" else None
            x = post[0] if post is not None else z
            tape.append((pre, post, hs, ins, ws))
            q[lo : lo + c, blk] = np.mean(x**2, axis=(1, 2))
        g = rng.standard_normal((c, n, b))
        grad_sq[lo : lo + c, BLOCKS - 1] = np.mean(g**2, axis=(1, 2))
        for blk in range(BLOCKS - 1, 0, -1):  # the gradient with respect to x^0 is not recorded
            pre, post, hs, ins, ws = tape[blk]
            gz = _norm_t(kind, g, *post) if post is not None else g
            d = alpha[blk] * gz
            for k in range(m - 1, -1, -1):
                w = ws[k]
                if mode == "independent":  # gradient independence: a fresh W' of the same law
                    w = _weights(rng, plan.laws[k], c, *w.shape[1:])
                d = np.swapaxes(w, 1, 2) @ d
                if mode == "dropped":  # remove the part inside col(X)
                    d = d - ins[k] @ (np.linalg.pinv(ins[k]) @ d)
                if m == 1:
                    d = d * _dphi(act, hs[0])
                elif k > 0:
                    d = d * _dphi(act, hs[k - 1])
            if pre is not None:
                d = _norm_t(kind, d, *pre)
            g = gz + d
            grad_sq[lo : lo + c, blk - 1] = np.mean(g**2, axis=(1, 2))
    return Sample(q, grad_sq)


# ----------------------------------------------------------------- the law test
def column_names(blocks: int = BLOCKS) -> list[str]:
    one = range(1, blocks + 1)
    below = range(1, blocks)
    return (
        [f"q[{k}]" for k in one]
        + [f"grad_sq[{k}]" for k in one]
        + [f"grad_sq/out[{k}]" for k in below]
        + [f"grad_sq*gain/out[{k}]" for k in below]
    )


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros(np.broadcast_shapes(a.shape, b.shape)), where=b > 0.0)


def _quantise(x: np.ndarray, bits: int = 36) -> np.ndarray:
    """Round to ``bits`` significant bits (relative error below ``2**-bits``, about 1.5e-11).

    The family has atoms: a relu branch whose first layer's pre-activations are
    all negative (one net in 16 at branch width 4) is exactly 0, so the block
    is the identity and ``q`` sits at the input's mean square, 1. The engine
    and numpy spread such an atom over a few ulps in different ways (their
    sums run in different orders), which the KS test, at 10^5 nets, sees as a
    difference of law (min p about 1e-28 for q[1] of gaussian-1in-relu at
    300,000 nets before this rounding). Rounding far above the ulps and far
    below any statistical resolution merges each atom into one value.
    """
    mantissa, exponent = np.frexp(x)
    return np.ldexp(np.round(mantissa * 2.0**bits) / 2.0**bits, exponent)


def columns(s: Sample) -> np.ndarray:
    """The family's per-net statistics, (nets, 4 * blocks - 2) (module docstring)."""
    back = _ratio(s.grad_sq[:, :-1], s.grad_sq[:, -1:])
    inv_gain = _ratio(s.q[:, :-1], s.q[:, -1:])
    return _quantise(np.hstack([s.q, s.grad_sq, back, back * inv_gain]))


def family_ks(a: Sample, b: Sample) -> tuple[np.ndarray, np.ndarray]:
    """Per column: the KS distance scaled by ``sqrt(n m / (n + m))``, and its p-value."""
    ca, cb = columns(a), columns(b)
    assert np.isfinite(ca).all() and np.isfinite(cb).all()
    tests = [stats.ks_2samp(ca[:, j], cb[:, j]) for j in range(ca.shape[1])]
    scale = np.sqrt(len(ca) * len(cb) / (len(ca) + len(cb)))
    return scale * np.array([t.statistic for t in tests]), np.array([t.pvalue for t in tests])


def family_pvalues(a: Sample, b: Sample) -> np.ndarray:
    return family_ks(a, b)[1]


def describe(p: np.ndarray, rejected: np.ndarray) -> str:
    return ", ".join(
        f"{name}: p={v:.2e}{' REJECTED' if r else ''}"
        for name, v, r in zip(column_names(), p, rejected, strict=True)
    )


@functools.cache
def _dense(case: Case) -> Sample:
    sample, prov = engine_sample(case, "dense", case.seed("dense"))
    assert prov["method"] == "dense" and prov["kernel"] == "residual (dense)", prov["kernel"]
    return sample


# ----------------------------------------------------------------- tests
def test_the_family_has_one_name_per_column() -> None:
    s = Sample(np.ones((3, BLOCKS)), np.ones((3, BLOCKS)))
    assert columns(s).shape == (3, len(column_names()))


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_exact_residual_sampler_has_the_dense_law(case: Case) -> None:
    exact, prov = engine_sample(case, "exact", case.seed("exact"))
    assert prov["method"] == "exact" and prov["kernel"] == "residual (exact)", prov["kernel"]
    p = family_pvalues(exact, _dense(case))
    rejected = holm(p, ALPHA)
    assert not rejected.any(), (
        f"{case.id}, {case.nets} nets: the exact residual sampler departs from the dense one "
        f"(KS per column, Holm at {ALPHA}): {describe(p, rejected)}"
    )


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_conditioned_numpy_control_has_the_dense_law(case: Case) -> None:
    # the controls' harness is right: only the backward weights differ below
    control = numpy_sample(case, case.nets, case.seed("conditioned"), "conditioned")
    p = family_pvalues(control, _dense(case))
    rejected = holm(p, ALPHA)
    assert not rejected.any(), (
        f"{case.id}: the numpy forward/backward through the same W departs from the dense "
        f"sampler: {describe(p, rejected)}"
    )


@pytest.mark.parametrize("mode", ["independent", "dropped"])
@pytest.mark.parametrize("case", CASE_PARAMS)
def test_the_law_test_rejects_an_unconditioned_backward_pass(case: Case, mode: str) -> None:
    control = numpy_sample(case, case.nets, case.seed(mode), mode)
    p = family_pvalues(control, _dense(case))
    rejected = holm(p, ALPHA)
    assert rejected.any(), (
        f"{case.id}, {case.nets} nets: the law test cannot tell the {mode!r} backward pass "
        f"from the dense one (KS per column, Holm at {ALPHA}): {describe(p, rejected)}"
    )
