"""The residual kernel (initsim.engine.residual) against its numpy twin, invariances, gradients.

Both samplers: the dense one and the exact one (initsim.engine.residual_exact); the exact
sampler's law against the dense one is tested in tests/test_residual_exact_laws.py.
The Python layer (simulate(arch="residual")) is tested in tests/test_residual_api.py.
"""

from __future__ import annotations

import itertools

import numba
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from initsim.activations import GELU, LINEAR, RELU, TANH, Activation
from initsim.engine import laws
from initsim.engine import residual as R
from initsim.engine.exact import INPUT_GAUSSIAN, INPUT_GIVEN, INPUT_SPHERE
from initsim.engine.residual_reference import (
    finite_difference_input_gradient,
    norm_backward_reference,
    norm_reference,
    residual_reference,
    residual_reference_net,
)
from initsim.rng import net_keys, root_key

# Kernel and twin agree to rounding: the worst relative difference over the dense-sampler
# tests below is under 3e-15 (2.7e-14 seen in a wider sweep: pre-BatchNorm over B = 3
# inputs, m = 1); over the exact-sampler ones 1.6e-13 (the Gram path's eigh and QR).
TWIN_RTOL = 1e-12

# The kernel's arguments after ``keys``, in its order.
ARG_NAMES = (
    "n", "nb", "m", "blocks", "law_codes", "law_params", "sampler", "bias_std", "act",
    "alpha", "skip", "in_scale", "act_scale", "norm", "norm_kind", "eps", "input_mode",
    "given", "n_inputs", "backward", "sat_threshold",
)  # fmt: skip
KINDS = (R.LAYERNORM, R.RMSNORM, R.BATCHNORM)
NORMS = (R.NORM_NONE, R.NORM_PRE, R.NORM_POST)
SAMPLERS = pytest.mark.parametrize(
    "sampler", [R.SAMPLER_DENSE, R.SAMPLER_EXACT], ids=["dense", "exact"]
)


def gaussian_laws(n, nb, m, blocks, gain=1.0):
    """He-like Gaussian laws: scale gain / sqrt(fan_in) for every matrix."""
    codes = np.full(blocks * m, laws.GAUSSIAN, dtype=np.int64)
    params = np.zeros((blocks * m, laws.N_PARAMS))
    for t in range(blocks * m):
        k = t % m
        fan_in = n if (m == 1 or k == 0) else nb
        params[t, laws.P_SCALE] = gain / np.sqrt(fan_in)
    return codes, params


def config(**over):
    """A small net's kernel arguments by name (every type as the Python layer passes it)."""
    c = {
        "n": 6,
        "nb": 5,
        "m": 2,
        "blocks": 3,
        "sampler": R.SAMPLER_DENSE,
        "bias_std": 0.0,
        "code": TANH,
        "param": 0.0,
        "act_scale": 1.3,
        "norm": R.NORM_NONE,
        "norm_kind": R.LAYERNORM,
        "eps": 1e-5,
        "input_mode": INPUT_GAUSSIAN,
        "given": np.zeros(1),
        "n_inputs": 2,
        "backward": True,
        "sat_threshold": 1e-2,
        "gain": 1.2,
    }
    c.update(over)
    blocks = c["blocks"]
    c.setdefault("alpha", np.linspace(0.4, 0.9, blocks))
    c.setdefault("skip", np.linspace(1.0, 0.8, blocks))
    c.setdefault("in_scale", np.linspace(1.2, 0.7, blocks))
    if "law_codes" not in c:
        c["law_codes"], c["law_params"] = gaussian_laws(c["n"], c["nb"], c["m"], blocks, c["gain"])
    del c["gain"]
    for k in ("n", "nb", "m", "blocks", "sampler", "code", "norm", "norm_kind", "input_mode",
              "n_inputs"):  # fmt: skip
        c[k] = int(c[k])
    for k in ("bias_std", "param", "act_scale", "eps", "sat_threshold"):
        c[k] = float(c[k])
    for k in ("alpha", "skip", "in_scale", "law_params", "given"):
        c[k] = np.ascontiguousarray(c[k], dtype=np.float64)
    c["law_codes"] = np.ascontiguousarray(c["law_codes"], dtype=np.int64)
    c["backward"] = bool(c["backward"])
    c["act"] = Activation("twin", c.pop("code"), c.pop("param")).kernel
    return c


def args(c):
    return tuple(c[k] for k in ARG_NAMES)


def keys_for(nets, seed=7):
    return net_keys(root_key(seed), 0, nets)


def run_kernel(keys, c):
    stats = np.zeros((keys.shape[0], c["blocks"], R.N_RES_STATS))
    first = np.full(keys.shape[0], -1, dtype=np.int64)
    with threadpool_limits(1, "blas"):
        R.residual_kernel(keys, *args(c), stats, first)
    return stats, first


def run_net(key, c):
    """One net through the kernel's own per-net function, keeping the stream and grad x^0."""
    total = c["n"] * c["n_inputs"]
    stats = np.zeros((c["blocks"], R.N_RES_STATS))
    xs = np.zeros((c["blocks"] + 1, total))
    grad0 = np.full(total, np.nan)
    with threadpool_limits(1, "blas"):
        first = R.residual_net(np.uint64(key[0]), np.uint64(key[1]), *args(c), stats, xs, grad0)
    b = c["n_inputs"]
    return stats, first, [x.reshape(c["n"], b) for x in xs], grad0.reshape(c["n"], b)


def check_twin(c, nets=3, seed=7):
    keys = keys_for(nets, seed)
    got, first = run_kernel(keys, c)
    ref, ref_first = residual_reference(keys, *args(c))
    np.testing.assert_allclose(got, ref, rtol=TWIN_RTOL, atol=0.0, equal_nan=True)
    np.testing.assert_array_equal(first, ref_first)
    if not c["backward"]:
        assert np.all(np.isnan(got[:, :, R.R_GRAD_SQ]))
    return got, first


@pytest.fixture(scope="module", autouse=True)
def warm_residual():
    """Compile (or load from the cache) the kernel and its per-net function once."""
    c = config(n=3, nb=2, blocks=2, n_inputs=2)
    run_kernel(keys_for(2), c)
    run_net(keys_for(1)[0], c)


# ---------------------------------------------------------------- the twin
def test_stat_names_follow_the_columns():
    names = R.residual_stat_names()
    assert len(names) == R.N_RES_STATS
    cols = (R.R_Q, R.R_SHARE, R.R_BRANCH_Q, R.R_DEAD, R.R_SATURATED, R.R_GRAD_SQ)
    assert [names[i] for i in cols] == ["q", "branch_share", "branch_q", "dead", "saturated",
                                        "grad_sq"]  # fmt: skip


@SAMPLERS
@pytest.mark.parametrize("m", [1, 2, 3])
@pytest.mark.parametrize("kind", KINDS, ids=["layernorm", "rmsnorm", "batchnorm"])
@pytest.mark.parametrize("norm", NORMS, ids=["none", "pre", "post"])
def test_kernel_matches_twin_for_every_norm(norm, kind, m, sampler):
    b = 3 if kind == R.BATCHNORM else 2
    check_twin(config(norm=norm, norm_kind=kind, m=m, n_inputs=b, bias_std=0.2, sampler=sampler))


@SAMPLERS
@pytest.mark.parametrize("backward", [True, False])
@pytest.mark.parametrize("bias_std", [0.0, 0.3])
@pytest.mark.parametrize(("code", "param"), [(RELU, 0.0), (TANH, 0.0), (GELU, 0.0)])
@pytest.mark.parametrize("m", [1, 2, 3])
def test_kernel_matches_twin_for_activations_and_biases(
    m, code, param, bias_std, backward, sampler
):
    c = config(m=m, code=code, param=param, bias_std=bias_std, backward=backward,
               norm=R.NORM_PRE, norm_kind=R.RMSNORM, nb=7, sampler=sampler)  # fmt: skip
    check_twin(c)


@SAMPLERS
@pytest.mark.parametrize("input_mode", [INPUT_SPHERE, INPUT_GIVEN])
def test_kernel_matches_twin_for_each_input_mode(input_mode, sampler):
    n, b = 6, 3
    given = np.random.default_rng(2).standard_normal(n * b) if input_mode == INPUT_GIVEN else None
    c = config(input_mode=input_mode, n_inputs=b, norm=R.NORM_POST, norm_kind=R.BATCHNORM,
               sampler=sampler, **({"given": given} if given is not None else {}))  # fmt: skip
    check_twin(c)


@pytest.mark.parametrize("bias_std", [0.0, 0.3])
@pytest.mark.parametrize(("code", "param"), [(RELU, 0.0), (TANH, 0.0)])
@pytest.mark.parametrize("norm", NORMS, ids=["none", "pre", "post"])
@pytest.mark.parametrize("m", [1, 2, 3])
def test_exact_one_input_shortcut_matches_the_twin(m, norm, code, param, bias_std):
    # one input, Gaussian matrices: the kernel's O(n) path (s ||x|| z and its conditioned
    # backward pass) against the twin's Gram formulas with B = 1
    c = config(m=m, norm=norm, code=code, param=param, bias_std=bias_std, n_inputs=1, nb=7,
               sampler=R.SAMPLER_EXACT)  # fmt: skip
    got, _ = check_twin(c, nets=4)
    assert np.all(np.isfinite(got))


@pytest.mark.parametrize("b", [1, 3])
@pytest.mark.parametrize("norm", NORMS, ids=["none", "pre", "post"])
@pytest.mark.parametrize("m", [1, 2, 3])
def test_exact_orthogonal_and_zero_matrices_match_the_twin(m, norm, b):
    # square branches (n_out >= n_in everywhere, as the orthogonal backward pass needs);
    # orthogonal first layer, Gaussian inner ones, a zero last layer in every other block
    n = 6
    codes, params = gaussian_laws(n, n, m, 4)
    for t in range(4 * m):
        if t % m == 0:
            codes[t], params[t] = laws.ORTHOGONAL, 0.0
            params[t, laws.P_GAIN] = 1.3
        elif t % m == m - 1 and (t // m) % 2:
            codes[t], params[t] = laws.CONSTANT, 0.0
    c = config(n=n, nb=n, m=m, blocks=4, law_codes=codes, law_params=params, n_inputs=b,
               norm=norm, sampler=R.SAMPLER_EXACT, bias_std=0.1)  # fmt: skip
    got, _ = check_twin(c, nets=4)
    assert np.all(np.isfinite(got))


def test_exact_orthogonal_forward_of_a_narrowing_layer_matches_the_twin():
    # n_out < n_in is fine forward (the backward pass refuses it in the Python layer)
    codes, params = gaussian_laws(6, 4, 2, 3)
    codes[:], params[:] = laws.ORTHOGONAL, 0.0
    params[:, laws.P_GAIN] = 0.9
    c = config(n=6, nb=4, law_codes=codes, law_params=params, n_inputs=2, backward=False,
               sampler=R.SAMPLER_EXACT)  # fmt: skip
    check_twin(c)


@pytest.mark.parametrize("b", [1, 3])
def test_exact_sampler_keeps_a_zero_input_exactly_zero(b):
    # W 0 = 0: a zero stream (no biases) stays zero, forward and backward to finite values
    n = 5
    c = config(n=n, nb=4, m=2, n_inputs=b, input_mode=INPUT_GIVEN, given=np.zeros(n * b),
               sampler=R.SAMPLER_EXACT, code=TANH)  # fmt: skip
    got, first = check_twin(c, nets=2)
    assert np.all(got[:, :, R.R_Q] == 0.0) and np.all(got[:, :, R.R_BRANCH_Q] == 0.0)
    assert np.all(first == 0) and np.all(np.isfinite(got[:, :, R.R_GRAD_SQ]))


def test_the_two_samplers_draw_from_different_substreams():
    # the same key gives different numbers (exact: FORWARD/BACKWARD, dense: WEIGHTS) ...
    dense, _ = run_kernel(keys_for(3), config())
    exact, _ = run_kernel(keys_for(3), config(sampler=R.SAMPLER_EXACT))
    assert not np.any(dense[:, :, R.R_BRANCH_Q] == exact[:, :, R.R_BRANCH_Q])
    # ... but the same input: the first block's branch input is the same
    np.testing.assert_array_equal(
        run_net(keys_for(1)[0], config())[2][0], run_net(keys_for(1)[0], config(sampler=1))[2][0]
    )


def test_dead_and_saturated_columns_are_not_vacuous():
    # relu with strongly negative-biased units kills some; a large threshold saturates many
    c = config(code=RELU, bias_std=2.0, nb=8, n_inputs=2, sat_threshold=0.5, m=3)
    got, _ = check_twin(c, nets=6)
    assert np.any(got[:, :, R.R_DEAD] > 0)
    c = config(code=TANH, gain=4.0, sat_threshold=0.5, m=1)
    got, _ = check_twin(c, nets=4)
    assert np.any(got[:, :, R.R_SATURATED] > 0)
    # dead means phi(h) == 0, before act_scale: act_scale = 0 kills no tanh unit
    got, _ = check_twin(config(code=TANH, act_scale=0.0, m=2), nets=2)
    assert np.all(got[:, :, R.R_DEAD] == 0.0)
    assert np.all(got[:, 1:, R.R_BRANCH_Q] > 0.0)


def _mixed_laws(n, nb, m, blocks):
    """Gaussian first layer, orthogonal / uniform / sparse inner ones, a zero last layer."""
    codes, params = gaussian_laws(n, nb, m, blocks)
    inner = [laws.ORTHOGONAL, laws.UNIFORM, laws.SPARSE]
    for blk in range(blocks):
        for k in range(1, m - 1):
            t = blk * m + k
            codes[t] = inner[(blk + k) % 3]
            params[t] = 0.0
            params[t, laws.P_GAIN] = 1.1
            params[t, laws.P_LOW], params[t, laws.P_HIGH] = -0.6, 0.7
            params[t, laws.P_SPARSITY], params[t, laws.P_SCALE] = 0.3, 0.5
        t = blk * m + m - 1
        codes[t] = laws.CONSTANT
        params[t] = 0.0  # value 0
    return codes, params


@pytest.mark.parametrize("m", [1, 2, 4])
def test_zero_last_layer_makes_every_block_the_skip_exactly(m):
    n, nb, blocks = 6, 5, 4
    codes, params = _mixed_laws(n, nb, m, blocks)
    c = config(m=m, blocks=blocks, law_codes=codes, law_params=params, n_inputs=2)
    got, _ = check_twin(c)
    assert np.all(got[:, :, R.R_SHARE] == 0.0)
    stats, first, xs, _ = run_net(keys_for(1)[0], c)
    assert first == 0
    for blk in range(blocks):
        np.testing.assert_array_equal(xs[blk + 1], c["skip"][blk] * xs[blk])  # bitwise
    np.testing.assert_array_equal(stats, got[0])
    # the same laws with a norm and biases still match the twin
    check_twin({**c, "norm": R.NORM_PRE, "bias_std": 0.1})


def test_branch_share_of_an_all_zero_block_is_zero():
    n, b, m, blocks = 5, 2, 2, 3
    codes, params = _mixed_laws(n, 4, m, blocks)
    c = config(n=n, nb=4, m=m, blocks=blocks, n_inputs=b, law_codes=codes, law_params=params,
               input_mode=INPUT_GIVEN, given=np.zeros(n * b))  # fmt: skip
    got, first = check_twin(c, nets=2)
    assert np.all(got[:, :, R.R_SHARE] == 0.0)  # 0 / 0
    assert np.all(got[:, :, R.R_Q] == 0.0)
    assert np.all(first == 0)


@SAMPLERS
def test_backward_off_leaves_the_forward_bit_for_bit(sampler):
    c = config(norm=R.NORM_POST, m=3, bias_std=0.1, sampler=sampler)
    on, first_on = run_kernel(keys_for(4), c)
    off, first_off = run_kernel(keys_for(4), {**c, "backward": False})
    np.testing.assert_array_equal(on[:, :, : R.R_GRAD_SQ], off[:, :, : R.R_GRAD_SQ])
    assert np.all(np.isfinite(on[:, :, R.R_GRAD_SQ]))
    assert np.all(np.isnan(off[:, :, R.R_GRAD_SQ]))
    np.testing.assert_array_equal(first_on, first_off)


@SAMPLERS
@pytest.mark.parametrize("backward", [True, False])
def test_overflowing_nets_stop_with_nan_rows(backward, sampler):
    c = config(code=LINEAR, gain=40.0, alpha=np.full(12, 1e40), blocks=12, m=2,
               backward=backward, sampler=sampler)  # fmt: skip
    got, first = check_twin(c, nets=3)
    assert np.all(first > 0)
    for k in range(3):
        f = int(first[k])
        assert not np.isfinite(got[k, f - 1, R.R_Q])
        assert np.all(np.isfinite(got[k, : f - 1, R.R_Q]))
        assert np.all(np.isnan(got[k, f:]))
        assert np.all(np.isnan(got[k, :, R.R_GRAD_SQ]))


# ---------------------------------------------------------------- invariances
def _invariance_config(sampler, b=3):
    return config(norm=R.NORM_PRE, norm_kind=R.LAYERNORM, m=3, bias_std=0.2, n=8, nb=6,
                  n_inputs=b, code=RELU, sampler=sampler)  # fmt: skip


INVARIANCE_CASES = pytest.mark.parametrize(
    ("sampler", "b"),
    [(R.SAMPLER_DENSE, 3), (R.SAMPLER_EXACT, 1), (R.SAMPLER_EXACT, 3)],
    ids=["dense", "exact-1in", "exact-3in"],
)


@INVARIANCE_CASES
def test_stats_are_bitwise_the_same_for_1_and_2_threads(sampler, b):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs NUMBA_NUM_THREADS >= 2")
    c = _invariance_config(sampler, b)
    keys = keys_for(9)
    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run_kernel(keys, c)
        numba.set_num_threads(2)
        two = run_kernel(keys, c)
    finally:
        numba.set_num_threads(previous)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


@INVARIANCE_CASES
@pytest.mark.parametrize("split", [1, 4, 8])
def test_stats_are_bitwise_the_same_for_any_chunking(split, sampler, b):
    c = _invariance_config(sampler, b)
    keys = keys_for(9)
    whole, first = run_kernel(keys, c)
    lo, lo_first = run_kernel(np.ascontiguousarray(keys[:split]), c)
    hi, hi_first = run_kernel(np.ascontiguousarray(keys[split:]), c)
    np.testing.assert_array_equal(whole, np.concatenate([lo, hi]))
    np.testing.assert_array_equal(first, np.concatenate([lo_first, hi_first]))


# ---------------------------------------------------------------- the backward pass
@pytest.mark.parametrize("m", [1, 2, 3])
@pytest.mark.parametrize(("norm", "kind"), list(itertools.product(NORMS, KINDS)))
def test_backward_matches_finite_differences(norm, kind, m):
    n, b = 4, 3
    x0 = np.random.default_rng(11).standard_normal((n, b))
    c = config(n=n, nb=3, m=m, blocks=2, n_inputs=b, norm=norm, norm_kind=kind,
               input_mode=INPUT_GIVEN, given=x0.ravel(), bias_std=0.2, eps=1e-3)  # fmt: skip
    key = keys_for(1, seed=5)[0]
    trace = residual_reference_net(key, **c)
    fd = finite_difference_input_gradient(key, x0, trace.direction, **c)
    np.testing.assert_allclose(trace.grad0, fd, rtol=1e-6, atol=1e-8 * np.max(np.abs(fd)))
    # the kernel's own backward, down to x^0
    stats, first, xs, grad0 = run_net(key, c)
    assert first == 0
    np.testing.assert_array_equal(xs[0], x0)
    np.testing.assert_allclose(grad0, trace.grad0, rtol=TWIN_RTOL, atol=1e-15)
    np.testing.assert_allclose(stats, trace.stats, rtol=TWIN_RTOL, atol=0.0)


@pytest.mark.parametrize("kind", KINDS, ids=["layernorm", "rmsnorm", "batchnorm"])
def test_norm_backward_is_the_transpose_of_the_jacobian(kind):
    # the explicit Jacobian of the twin's norm, column by column from central differences
    rng = np.random.default_rng(3)
    z = rng.standard_normal((5, 3))
    dy = rng.standard_normal((5, 3))
    y, s = norm_reference(z, kind, 1e-3)
    step = 1e-6
    jt_dy = np.empty_like(z)
    for idx in np.ndindex(*z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += step
        zm[idx] -= step
        col = (norm_reference(zp, kind, 1e-3)[0] - norm_reference(zm, kind, 1e-3)[0]) / (2 * step)
        jt_dy[idx] = np.sum(col * dy)
    np.testing.assert_allclose(norm_backward_reference(dy, y, s, kind), jt_dy, rtol=1e-7)
    # the compiled pair agrees with the twin's
    yk = np.empty(z.size)
    sk = np.empty(5)
    R.normalize(z.ravel(), yk, sk, 5, 3, kind, 1e-3)
    np.testing.assert_allclose(yk, y.ravel(), rtol=TWIN_RTOL)
    dz = np.empty(z.size)
    R.normalize_backward(dy.ravel(), yk, sk, 5, 3, kind, dz)
    np.testing.assert_allclose(dz, norm_backward_reference(dy, y, s, kind).ravel(),
                               rtol=TWIN_RTOL, atol=1e-15)  # fmt: skip


# ---------------------------------------------------------------- norms
@pytest.mark.parametrize("kind", KINDS, ids=["layernorm", "rmsnorm", "batchnorm"])
def test_normalize_with_zero_eps_gives_zero_mean_and_unit_mean_square(kind):
    n, b = 7, 4
    z = 3.0 + 2.5 * np.random.default_rng(4).standard_normal((n, b))
    y = np.empty(n * b)
    s = np.empty(max(n, b))
    R.normalize(z.ravel(), y, s, n, b, kind, 0.0)
    y = y.reshape(n, b)
    axis = 1 if kind == R.BATCHNORM else 0
    np.testing.assert_allclose(np.mean(y**2, axis=axis), 1.0, rtol=0, atol=1e-12)
    if kind != R.RMSNORM:
        np.testing.assert_allclose(np.mean(y, axis=axis), 0.0, rtol=0, atol=1e-12)


def test_post_layernorm_stream_has_zero_mean_and_unit_mean_square_rows():
    c = config(norm=R.NORM_POST, norm_kind=R.LAYERNORM, eps=0.0, n=9, n_inputs=3, bias_std=0.3)
    stats, first, xs, _ = run_net(keys_for(1)[0], c)
    assert first == 0
    for x in xs[1:]:
        np.testing.assert_allclose(np.mean(x, axis=0), 0.0, rtol=0, atol=1e-12)
        np.testing.assert_allclose(np.mean(x**2, axis=0), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(stats[:, R.R_Q], 1.0, rtol=0, atol=1e-12)
    got, _ = check_twin(c)
    np.testing.assert_allclose(got[:, :, R.R_Q], 1.0, rtol=0, atol=1e-12)
