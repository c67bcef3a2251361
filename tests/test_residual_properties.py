"""Hypothesis properties of residual nets: exact identities that hold for any size.

* With ``alpha = 0``, or a zero-initialised last branch layer (no biases), the
  stream stays exactly ``x^0`` (bitwise) through every block, for any width,
  depth, branch shape and activation (``norm="none"`` or ``"pre"``), with
  either sampler.
* Permuting the hidden units of a branch (the rows of ``W_k`` and its bias,
  the columns of ``W_{k+1}``) changes nothing: the stream, the gradient of
  ``x^0`` and every recorded statistic agree to rounding. The kernel draws
  its own weights, so this is checked on its numpy twin given the weights
  explicitly (:func:`initsim.engine.residual_reference.residual_reference_net`
  with ``weights=``), which ``test_the_twin_given_the_kernels_weights_is_the_kernel``
  ties to the kernel: given the matrices the kernel drew, it reproduces the
  kernel's stats to 1e-12.
* A LayerNorm output (``eps = 0``) has exactly unit mean square and zero
  mean per input; an RMSNorm output unit mean square; a BatchNorm output
  zero mean and unit mean square per unit (to rounding, 1e-12).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from initsim.activations import get as get_activation
from initsim.engine import laws
from initsim.engine import residual as R
from initsim.engine.residual_reference import reference_weights, residual_reference_net
from initsim.initializers import get as get_init
from initsim.rng import net_keys, root_key

ACTS = st.sampled_from(["relu", "tanh", "gelu", "sigmoid", "linear"])


def _stream(
    seed: int, n: int, nb: int, m: int, blocks: int, alpha: float, zero_last: bool,
    act: str, norm: int, sampler: int,
) -> np.ndarray:  # fmt: skip
    spec = [laws.encode(get_init("he_normal").law_spec(4, 4))] * m
    if zero_last:
        spec[-1] = laws.encode(get_init("zeros").law_spec(4, 4))
    codes = np.array([c for c, _ in spec] * blocks, dtype=np.int64)
    params = np.vstack([p for _, p in spec] * blocks)
    a = get_activation(act)
    key = net_keys(root_key(seed), 0, 1)[0]
    stats = np.zeros((blocks, R.N_RES_STATS))
    xs = np.zeros((blocks + 1, n))
    R.residual_net(
        key[0], key[1], n, nb, m, blocks, codes, params, sampler, 0.0, a.kernel,
        np.full(blocks, alpha), np.ones(blocks), np.ones(blocks), 1.0, norm, R.LAYERNORM,
        1e-5, 1, np.zeros(1), 1, False, 1e-2, stats, xs, np.zeros(n),
    )  # fmt: skip
    return xs


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 24),
    nb=st.integers(1, 24),
    m=st.integers(1, 3),
    blocks=st.integers(1, 6),
    act=ACTS,
    zero_last=st.booleans(),
    pre=st.booleans(),
    sampler=st.sampled_from([R.SAMPLER_DENSE, R.SAMPLER_EXACT]),
)
def test_a_zero_branch_leaves_the_stream_exactly_x0(
    seed, n, nb, m, blocks, act, zero_last, pre, sampler
):
    alpha = 1.0 if zero_last else 0.0
    norm = R.NORM_PRE if pre else R.NORM_NONE
    xs = _stream(seed, n, nb, m, blocks, alpha, zero_last, act, norm, sampler)
    for row in xs[1:]:
        assert np.array_equal(row, xs[0])  # bitwise


@given(
    z=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=6, max_size=60),
    kind=st.sampled_from([R.LAYERNORM, R.RMSNORM, R.BATCHNORM]),
    b=st.integers(2, 3),
)
def test_normalised_outputs_have_unit_mean_square(z, kind, b):
    z = np.asarray(z[: (len(z) // b) * b])
    n = z.size // b
    mat = z.reshape(n, b)  # unit-major: unit i owns z[i*b:(i+1)*b]
    axis = 1 if kind == R.BATCHNORM else 0  # BatchNorm over the inputs of each unit
    spread = mat.std(axis=axis) if kind != R.RMSNORM else np.sqrt((mat**2).mean(axis=axis))
    if np.any(spread < 1e-6 * max(1.0, np.abs(mat).max())):
        return  # a constant row has no scale to normalise
    y = np.empty_like(z)
    s = np.empty(max(n, b))
    R.normalize(z.copy(), y, s, n, b, kind, 0.0)
    ym = y.reshape(n, b)
    np.testing.assert_allclose((ym**2).mean(axis=axis), 1.0, rtol=1e-12)
    if kind != R.RMSNORM:
        np.testing.assert_allclose(ym.mean(axis=axis), 0.0, atol=1e-12)


# ---------------------------------------------------------------- hidden-unit permutations
def _twin_config(n, nb, m, blocks, act, norm, kind, b, seed):
    """Kernel arguments by name for a He/Gaussian net with biases (dense sampler)."""
    a = get_activation(act)
    spec = [laws.encode(get_init("he_normal").law_spec(4, 4))] * m
    return {
        "n": n, "nb": nb, "m": m, "blocks": blocks,
        "law_codes": np.array([c for c, _ in spec] * blocks, dtype=np.int64),
        "law_params": np.vstack([p for _, p in spec] * blocks),
        "sampler": R.SAMPLER_DENSE, "bias_std": 0.3, "act": a.kernel,
        "alpha": np.linspace(0.5, 1.0, blocks), "skip": np.ones(blocks),
        "in_scale": np.ones(blocks), "act_scale": 1.0, "norm": norm, "norm_kind": kind,
        "eps": 1e-5, "input_mode": 0, "given": np.zeros(1), "n_inputs": b,
        "backward": True, "sat_threshold": 1e-2,
    }  # fmt: skip


def test_the_twin_given_the_kernels_weights_is_the_kernel():
    c = _twin_config(6, 5, 3, 3, "tanh", R.NORM_PRE, R.LAYERNORM, 2, 0)
    key = net_keys(root_key(3), 0, 1)[0]
    stats = np.zeros((c["blocks"], R.N_RES_STATS))
    xs = np.zeros((c["blocks"] + 1, c["n"] * c["n_inputs"]))
    grad0 = np.zeros(c["n"] * c["n_inputs"])
    R.residual_net(key[0], key[1], *c.values(), stats, xs, grad0)
    ws, bs = reference_weights(key, *(c[k] for k in WEIGHT_ARGS))
    trace = residual_reference_net(key, **c, weights=ws, biases=bs)
    np.testing.assert_allclose(trace.stats, stats, rtol=1e-12)
    # entrywise to rounding on the scale of the gradient (single entries cancel)
    np.testing.assert_allclose(trace.grad0.ravel(), grad0, rtol=0, atol=1e-12 * np.abs(grad0).max())


WEIGHT_ARGS = ("n", "nb", "m", "blocks", "law_codes", "law_params", "bias_std")


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 8),
    nb=st.integers(2, 8),
    m=st.integers(2, 3),
    blocks=st.integers(1, 3),
    act=ACTS,
    norm=st.sampled_from([R.NORM_NONE, R.NORM_PRE, R.NORM_POST]),
    kind=st.sampled_from([R.LAYERNORM, R.RMSNORM]),
    b=st.integers(1, 3),
    data=st.data(),
)
def test_permuting_hidden_units_of_a_branch_changes_nothing(
    seed, n, nb, m, blocks, act, norm, kind, b, data
):
    c = _twin_config(n, nb, m, blocks, act, norm, kind, b, seed)
    key = net_keys(root_key(seed), 0, 1)[0]
    ws, bs = reference_weights(key, *(c[k] for k in WEIGHT_ARGS))
    blk = data.draw(st.integers(0, blocks - 1), label="block")
    k = data.draw(st.integers(0, m - 2), label="hidden layer")
    perm = np.asarray(data.draw(st.permutations(range(nb)), label="perm"))
    t = blk * m + k
    pw, pb = list(ws), list(bs)
    pw[t], pb[t] = ws[t][perm], bs[t][perm]
    pw[t + 1] = ws[t + 1][:, perm]
    if np.any(perm != np.arange(nb)):  # a different parameter vector ...
        assert not np.array_equal(pw[t], ws[t])
    base = residual_reference_net(key, **c, weights=ws, biases=bs)
    moved = residual_reference_net(key, **c, weights=pw, biases=pb)
    # ... computing the same net: only the order of the sums over hidden units changes
    assert base.first == moved.first == 0
    np.testing.assert_allclose(moved.stats, base.stats, rtol=1e-9, atol=1e-12)
    for xa, xb in zip(moved.xs, base.xs, strict=True):
        np.testing.assert_allclose(xa, xb, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(moved.grad0, base.grad0, rtol=1e-9, atol=1e-12)
