"""The Monte Carlo engine: twins, invariance, exact mean-field laws, divergence, bad input."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from scipy import stats

from initsim import activations, initializers, simulate
from initsim.engine import laws
from initsim.engine.exact import INPUT_GAUSSIAN, INPUT_GIVEN, INPUT_SPHERE
from initsim.engine.gram import psd_factor
from initsim.engine.reference import dense_reference, exact_reference, gram_reference
from initsim.rng import net_keys, root_key

pytestmark = pytest.mark.usefixtures("warm_kernels")

FIELDS = ("q", "act_mean", "act_var", "dead_fraction", "saturated_fraction", "grad_sq")
# A kernel and its numpy twin agree to rounding error (initsim.engine.reference). Worst
# relative differences measured: exact 7.8e-15, dense 2.5e-14, Gram 2.2e-13 (eleven
# inputs into narrower orthogonal layers: rank-deficient Grams, whose pseudo-inverses
# amplify rounding); every twin comparison below allows TWIN_RTOL, TWIN_ATOL for entries
# that cancel to about 0.
TWIN_RTOL = 1e-12
TWIN_ATOL = 1e-14


def _stack(r):
    cols = [getattr(r, f) for f in FIELDS[:5]]
    cols.append(r.grad_sq if r.grad_sq is not None else np.zeros_like(r.q))
    return np.stack(cols, axis=-1)


# ---------------------------------------------------------------- numpy twins
@pytest.mark.parametrize("act_name", ["relu", "tanh", "sigmoid", "linear"])
@pytest.mark.parametrize("bias_std", [0.0, 0.3])
def test_exact_kernel_matches_numpy_twin(act_name, bias_std):
    widths = [7, 12, 5, 9]
    r = simulate(
        activation=act_name,
        init="glorot_normal",
        depth=3,
        width=widths[1:],
        input_dim=7,
        nets=4,
        bias_std=bias_std,
        backward=True,
        method="exact",
        seed=3,
    )
    act = activations.get(act_name)
    ini = initializers.get("glorot_normal")
    w = np.array(widths)
    wstd = np.sqrt([ini.variance(widths[t], widths[t + 1]) for t in range(3)])
    keys = net_keys(root_key(3), 0, 4)
    got = _stack(r)
    for k in range(4):
        ref, first = exact_reference(
            keys[k], w, wstd, bias_std, act, INPUT_SPHERE, np.zeros(0), True, 1e-2
        )
        np.testing.assert_allclose(got[k], ref, rtol=TWIN_RTOL, atol=TWIN_ATOL)
        assert first == r.first_nonfinite_layer[k] == 0


@pytest.mark.parametrize(
    ("init", "params"),
    [
        ("he_normal", {}),
        ("uniform", {"a": -0.3, "b": 0.5}),
        ("orthogonal", {"gain": 1.2}),
        ("sparse", {"sparsity": 0.3, "std": 0.4}),
        ("constant", {"value": 0.1}),
    ],
)
@pytest.mark.parametrize("n_inputs", [1, 3])
def test_dense_kernel_matches_numpy_twin(init, params, n_inputs):
    widths = [6, 8, 5, 7]
    ini = initializers.get(init, **params)
    x = np.random.default_rng(0).standard_normal((n_inputs, 6))
    r = simulate(
        activation="tanh",
        init=ini,
        depth=3,
        width=widths[1:],
        input_dim=6,
        nets=3,
        inputs=n_inputs,
        input=x,
        bias_std=0.2,
        backward=True,
        method="dense",
        seed=5,
    )
    act = activations.get("tanh")
    enc = [laws.encode(ini.law_spec(widths[t], widths[t + 1])) for t in range(3)]
    params_arr = np.stack([p for _, p in enc])
    keys = net_keys(root_key(5), 0, 3)
    given = np.ascontiguousarray(x.T).ravel()
    got = _stack(r)
    for k in range(3):
        ref, _ = dense_reference(
            keys[k],
            np.array(widths),
            enc[0][0],
            params_arr,
            0.2,
            act,
            INPUT_GIVEN,
            given,
            n_inputs,
            True,
            1e-2,
        )
        np.testing.assert_allclose(got[k], ref, rtol=TWIN_RTOL, atol=TWIN_ATOL)


@pytest.mark.parametrize(
    ("init", "widths", "backward"),
    [
        ("he_normal", [5, 9, 4, 7], True),
        ("orthogonal", [5, 9, 9, 12], True),  # n_out >= n_in: exact backward
        ("orthogonal", [9, 5, 7, 4], False),  # narrowing layers: forward only
    ],
)
@pytest.mark.parametrize("n_inputs", [1, 3, 11])  # 11 > every width: rank-deficient Grams
def test_gram_kernel_matches_numpy_twin(init, widths, backward, n_inputs):
    ini = initializers.get(init)
    x = np.random.default_rng(1).standard_normal((n_inputs, widths[0]))
    r = simulate(
        activation="tanh",
        init=ini,
        depth=3,
        width=widths[1:],
        input_dim=widths[0],
        nets=3,
        inputs=n_inputs,
        input=x,
        bias_std=0.1,
        backward=backward,
        method="exact",
        seed=9,
    )
    single = n_inputs == 1 and init == "he_normal"  # Gaussian weights, one input: O(n) kernel
    assert r.provenance["kernel"] == ("exact (single input)" if single else "exact (Gram)")
    keys = net_keys(root_key(9), 0, 3)
    got = _stack(r)
    given = np.ascontiguousarray(x.T).ravel()
    if single:
        wstd = np.sqrt([ini.variance(widths[t], widths[t + 1]) for t in range(3)])
        for k in range(3):
            ref, first = exact_reference(
                keys[k],
                np.array(widths),
                wstd,
                0.1,
                activations.get("tanh"),
                INPUT_GIVEN,
                given,
                backward,
                1e-2,
            )
            np.testing.assert_allclose(got[k], ref, rtol=TWIN_RTOL, atol=TWIN_ATOL)
            assert first == r.first_nonfinite_layer[k] == 0
        return
    orth = init == "orthogonal"
    scale = np.array(
        [
            ini.law_spec(widths[t], widths[t + 1]).gain
            if orth
            else np.sqrt(ini.variance(widths[t], widths[t + 1]))
            for t in range(3)
        ]
    )
    for k in range(3):
        ref, _ = gram_reference(
            keys[k],
            np.array(widths),
            orth,
            scale,
            0.1,
            activations.get("tanh"),
            INPUT_GIVEN,
            given,
            n_inputs,
            backward,
            1e-2,
        )
        np.testing.assert_allclose(got[k], ref, rtol=TWIN_RTOL, atol=TWIN_ATOL)


def test_gram_kernel_with_one_input_equals_single_input_kernel():
    """Same draws, same algebra: the B-input kernel at B = 1 reproduces the O(n) kernel."""
    from initsim.engine import gram as eb
    from initsim.engine.exact import exact_single_input

    widths = np.array([6, 10, 8, 9])
    wstd = np.sqrt(2.0 / widths[:-1])
    keys = net_keys(root_key(2), 0, 5)
    empty = np.zeros((5, 3, 0), dtype=np.int64)
    outs = []
    for run in ("single", "gram"):
        stats, first = np.zeros((5, 3, 6)), np.zeros(5, dtype=np.int64)
        args = (0.2, activations.get("relu").kernel, INPUT_SPHERE, np.zeros(0))
        tail = (True, 1e-2, np.zeros(3), np.zeros(3), stats, first, empty, empty.copy())
        if run == "single":
            exact_single_input(keys, widths, wstd, *args, *tail)
        else:
            eb.gram_kernel(keys, widths, eb.LAW_GAUSSIAN, wstd, *args, 1, *tail)
        outs.append(stats)
    np.testing.assert_allclose(outs[0], outs[1], rtol=TWIN_RTOL, atol=TWIN_ATOL)


def test_psd_factor_handles_rank_deficiency():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 7))  # rank 4 Gram of size 7
    g = x.T @ x
    r, pinv, rank = psd_factor(g)
    assert rank == 4 and r.shape == (4, 7)
    np.testing.assert_allclose(r.T @ r, g, atol=1e-10)
    np.testing.assert_allclose(g @ pinv @ g, g, atol=1e-9)
    r0, p0, rank0 = psd_factor(np.zeros((3, 3)))
    assert rank0 == 0 and r0.shape == (0, 3) and not np.any(p0)


def test_psd_factor_keeps_a_dead_input_exactly_dead():
    """An input that is exactly 0 gets exactly zero columns in R and G^+ (W 0 = 0).

    eigh leaks rounding (~1e-16) into such a column in a few percent of Gram matrices; a
    leak revives the input downstream (relu'(+-1e-16) is a coin flip instead of 0).
    """
    rng = np.random.default_rng(3)
    leaks = 0
    for _ in range(300):
        x = rng.standard_normal((5, 3))
        x[:, 1] = 0.0
        g = x.T @ x
        lam, vec = np.linalg.eigh(g)
        leaks += bool(np.any(vec[1, lam > 1e-10 * lam.max()] != 0.0))
        r, pinv, rank = psd_factor(g)
        assert rank == 2
        assert not r[:, 1].any() and not pinv[:, 1].any() and not pinv[1].any()
        np.testing.assert_allclose(r.T @ r, g, rtol=0, atol=1e-13 * g.max())
    assert leaks > 0  # the case the zeroing is for does occur


@pytest.mark.parametrize("init", ["gaussian", "orthogonal"])
def test_gram_kernel_overflowing_nets_turn_nan_instead_of_raising(init):
    """A Gram matrix that overflows used to raise from inside LAPACK (eigh of inf).

    Linear units: an overflowed layer stays non-finite (ReLU could zero it again).
    """
    ini = (
        initializers.VarianceScaling(scale=1e40)
        if init == "gaussian"
        else initializers.Orthogonal(gain=1e20)
    )
    r = simulate(
        activation="linear",
        init=ini,
        depth=30,
        width=5,
        nets=4,
        inputs=3,
        input="gaussian",
        backward=True,
        method="exact",
        seed=4,
    )
    assert r.provenance["kernel"] == "exact (Gram)"
    first = r.first_nonfinite_layer
    assert np.all((first > 1) & (first < 30))
    for k in range(4):
        assert np.all(np.isfinite(r.q[k, : first[k] - 1]))
        assert not np.any(np.isfinite(r.q[k, first[k] - 1 :]))
    # the overflowed layers' Gram factors are NaN, so are the gradients through them
    assert not np.any(np.isfinite(r.grad_sq[:, 0]))
    orth = init == "orthogonal"
    scale = np.full(30, ini.law_spec(5, 5).gain if orth else ini.variance(5, 5) ** 0.5)
    ref, ref_first = gram_reference(
        net_keys(root_key(4), 0, 1)[0],
        np.full(31, 5),
        orth,
        scale,
        0.0,
        activations.get("linear"),
        INPUT_GAUSSIAN,
        np.zeros(0),
        3,
        True,
        1e-2,
    )
    assert ref_first == first[0]
    np.testing.assert_allclose(_stack(r)[0], ref, rtol=TWIN_RTOL, atol=0)


def test_dead_and_rank_deficient_layers_give_no_nan():
    zero = np.zeros((4, 6))
    for init in ("he_normal", "orthogonal"):
        r = simulate(
            activation="relu",
            init=init,
            depth=3,
            width=6,
            nets=3,
            inputs=4,
            input=zero,
            backward=True,
            method="exact",
        )
        assert np.all(r.q == 0.0) and np.all(np.isfinite(r.grad_sq))
        assert np.all(r.first_nonfinite_layer == 0)
        many = simulate(
            activation="relu",
            init=init,
            depth=4,
            width=5,
            nets=3,
            inputs=20,
            input="gaussian",
            backward=True,
            method="exact",
        )
        assert np.all(np.isfinite(many.q)) and np.all(np.isfinite(many.grad_sq))
        assert np.all(many.q > 0)


# ------------------------------------------------------------- reproducibility
@pytest.mark.parametrize(
    ("method", "init", "inputs"),
    [
        ("exact", "he_normal", 1),
        ("exact", "he_normal", 3),
        ("exact", "orthogonal", 2),
        ("dense", "he_normal", 1),
        ("dense", "he_uniform", 3),
    ],
)
def test_bitwise_identical_for_threads_and_chunks(method, init, inputs):
    kw = dict(
        activation="relu",
        init=init,
        depth=6,
        width=16,
        nets=23,
        inputs=inputs,
        input="gaussian",
        seed=11,
        backward=True,
        method=method,
        bias_std=0.1,
        histograms=8,
    )
    base = simulate(threads=1, chunk_size=23, **kw)
    for threads, chunk in [(2, 23), (4, 5), (1, 1), (2, 7)]:
        if threads > numba.config.NUMBA_NUM_THREADS:
            continue
        other = simulate(threads=threads, chunk_size=chunk, **kw)
        for f in FIELDS:
            np.testing.assert_array_equal(getattr(base, f), getattr(other, f), err_msg=f)
        np.testing.assert_array_equal(base.histograms["h"], other.histograms["h"])
        np.testing.assert_array_equal(base.histograms["act"], other.histograms["act"])
    different = simulate(threads=1, **{**kw, "seed": 12})
    assert not np.array_equal(base.q, different.q)


def test_provenance_is_recorded():
    r = simulate(depth=2, width=8, nets=3, seed=4, threads=1)
    p = r.provenance
    assert p["seed_entropy"] == "4"
    assert p["method"] == "exact"
    assert p["threads"] == 1
    assert len(p["config_sha256"]) == 64
    assert set(p["versions"]) == {"initsim", "numpy", "numba", "scipy", "python"}
    assert p["threading_layer"] != ""
    same = simulate(depth=2, width=8, nets=3, seed=4, threads=1)
    assert same.provenance["config_sha256"] == p["config_sha256"]
    other = simulate(depth=3, width=8, nets=3, seed=4, threads=1)
    assert other.provenance["config_sha256"] != p["config_sha256"]


# ---------------------------------------------- exact laws, checked statistically
# Each test's false-rejection probability is at most ALPHA (Holm over layers).
ALPHA = 1e-3


def _holm_reject(pvalues, alpha=ALPHA):
    p = np.sort(np.asarray(pvalues))
    m = len(p)
    return bool(np.any(p <= alpha / (m - np.arange(m))))


def _mean_pvalues(samples, expected):
    """Two-sided z-test p-values that each column's mean equals ``expected``."""
    n = samples.shape[0]
    se = samples.std(axis=0, ddof=1) / np.sqrt(n)
    z = (samples.mean(axis=0) - expected) / se
    return 2 * stats.norm.sf(np.abs(z))


@pytest.mark.parametrize("method", ["exact", "dense"])
def test_he_relu_keeps_q_constant_and_lecun_halves_it(method):
    nets = 2000 if method == "exact" else 300
    he = simulate(
        activation="relu",
        init="he_normal",
        depth=8,
        width=24,
        nets=nets,
        seed=1,
        method=method,
        backward=True,
    )
    assert not _holm_reject(_mean_pvalues(he.q, 2.0))
    # E[grad_sq] is 1/2 at every layer: u has unit variance and E[relu'(h)^2] = 1/2
    assert not _holm_reject(_mean_pvalues(he.grad_sq, 0.5))
    lecun = simulate(
        activation="relu", init="lecun_normal", depth=8, width=24, nets=nets, seed=2, method=method
    )
    halves = 0.5 ** np.arange(8)
    assert not _holm_reject(_mean_pvalues(lecun.q, halves))
    # negative control: the He law is rejected for the LeCun nets
    assert _holm_reject(_mean_pvalues(lecun.q, 2.0 * np.ones(8)))


def test_variance_of_q_matches_finite_width_law():
    """Var(q^1) for a sphere input: q^1 = (2/n) chi^2_n, so Var = 8/n exactly."""
    n = 16
    r = simulate(activation="relu", init="he_normal", depth=1, width=n, nets=4000, seed=8)
    var = r.q[:, 0].var(ddof=1)
    chi = (r.nets - 1) * var / (8 / n)
    # the sample variance of a scaled chi-square is not chi-square; use a generous
    # normal approximation with the law's kurtosis: Var(s^2) ~ sigma^4 (2/(N-1) + k/N)
    kurt = 12 / n
    se = (8 / n) * np.sqrt(2 / (r.nets - 1) + kurt / r.nets)
    assert abs(var - 8 / n) < stats.norm.isf(ALPHA / 2) * se, (var, chi)


@pytest.mark.parametrize("act_name", ["relu", "tanh", "linear"])
@pytest.mark.parametrize("init", ["he_normal", "orthogonal"])
# 10 inputs into 12 units: the orthogonal backward pass's k = n_in - rank <= r_M branch
@pytest.mark.parametrize("n_inputs", [1, 3, 10])
def test_exact_and_dense_samplers_have_the_same_law(act_name, init, n_inputs):
    """Two-sample Kolmogorov-Smirnov per layer on q and grad_sq (Holm, alpha 1e-3)."""
    kw = dict(
        activation=act_name,
        init=init,
        depth=4,
        width=[12, 12, 16, 16],
        input_dim=12,
        nets=600,
        backward=True,
        inputs=n_inputs,
        input="gaussian",
    )
    ex = simulate(method="exact", seed=21, **kw)
    de = simulate(method="dense", seed=22, **kw)
    pvals = []
    for f in ("q", "grad_sq"):
        for t in range(4):
            res = stats.ks_2samp(getattr(ex, f)[:, t], getattr(de, f)[:, t])
            pvals.append(res.pvalue)
    assert not _holm_reject(pvals)


# -------------------------------------------------------------------- divergence
def test_divergence_is_reported_without_warnings():
    ini = initializers.get("variance_scaling", scale=4.0)
    r = simulate(activation="linear", init=ini, depth=1000, width=32, nets=5, seed=0, backward=True)
    first = r.first_nonfinite_layer
    assert np.all(first > 400) and np.all(first < 700), first
    for k in range(5):
        layer = first[k] - 1
        assert np.all(np.isfinite(r.q[k, :layer]))
        assert not np.isfinite(r.q[k, layer])
        assert np.all(~np.isfinite(r.q[k, layer + 2 :]))


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"depth": 0}, "depth"),
        ({"width": 0}, "width"),
        ({"width": [8, 8]}, "width"),
        ({"nets": -1}, "nets"),
        ({"inputs": 0}, "inputs"),
        ({"bias_std": -0.1}, "bias_std"),
        ({"bias_std": float("nan")}, "bias_std"),
        ({"activation": "relux"}, "relu"),
        ({"init": "he_nromal"}, "he_normal"),
        ({"method": "fast"}, "method"),
        ({"input": "cube"}, "input"),
        ({"input": np.ones(5)}, "input"),
        ({"input": np.full(8, np.nan)}, "input"),
        ({"threads": 0}, "threads"),
        ({"threads": 10_000}, "threads"),
        ({"histograms": {"bins": 4, "h_range": (1, 0)}}, "h_range"),
        ({"init": "uniform", "method": "exact"}, "dense"),
        (
            {"init": "orthogonal", "width": [8, 4, 4], "backward": True, "method": "exact"},
            "n_out >= n_in",
        ),
    ],
)
def test_bad_input_names_the_parameter(kwargs, match):
    base = dict(depth=3, width=8, nets=2)
    with pytest.raises(ValueError, match=match):
        simulate(**{**base, **kwargs})


def test_uniform_with_method_exact_names_the_law():
    with pytest.raises(ValueError, match=r"'uniform'.*dense"):
        simulate(init="uniform", method="exact", depth=2, width=4, nets=1)


def test_auto_method_choice():
    assert simulate(init="he_normal", depth=2, width=8, nets=2).provenance["method"] == "exact"
    assert simulate(init="he_uniform", depth=2, width=8, nets=2).provenance["method"] == "dense"

    def method(**kw):
        return simulate(depth=2, nets=2, **kw).provenance["method"]

    assert method(init="he_normal", width=64, inputs=3) == "exact"
    # many inputs through narrow layers: materialising W beats B x B Grams
    assert method(init="he_normal", width=8, inputs=100) == "dense"
    assert method(init="orthogonal", width=64) == "exact"
    assert method(init="orthogonal", width=[8, 4], backward=True) == "dense"


def test_histograms_count_every_value():
    r = simulate(
        activation="tanh",
        init="he_normal",
        depth=3,
        width=10,
        nets=7,
        inputs=4,
        histograms={"bins": 6, "h_range": (-1, 1), "act_range": (-0.5, 0.5)},
        seed=0,
    )
    h = r.histograms
    assert h["h"].shape == (3, 8) and h["act"].shape == (3, 8)
    np.testing.assert_array_equal(h["h"].sum(axis=1), 7 * 10 * 4)
    np.testing.assert_array_equal(h["act"].sum(axis=1), 7 * 10 * 4)
    assert h["h"][:, 0].sum() > 0 and h["h"][:, -1].sum() > 0  # out-of-range slots used
    assert h["h_edges"].shape == (7,)


def test_dead_fraction_with_many_inputs():
    """A unit is dead only if its output is 0 for every input."""
    r = simulate(activation="relu", init="he_normal", depth=2, width=64, nets=20, inputs=1, seed=0)
    # one input, no bias: h_i = (sigma_w ||x||) z_i with fresh z_i in every layer, so each of
    # the 20 * 2 * 64 units is dead independently with probability 1/2 (while x != 0, which
    # fails with probability 2^-64): the dead count is Binomial(2560, 1/2)
    units = r.nets * 2 * 64
    dead = round(r.dead_fraction.mean() * units)
    assert stats.binomtest(dead, units, 0.5).pvalue > ALPHA
    # negative control: a dead probability of 0.44 is rejected at these sizes
    assert stats.binomtest(dead, units, 0.44).pvalue < ALPHA
    r = simulate(
        activation="relu",
        init="he_normal",
        depth=2,
        width=64,
        nets=20,
        inputs=50,
        input="gaussian",
        seed=0,
    )
    # layer 1: w_i . x_b are iid N(0, |w_i|^2) over 50 Gaussian inputs: dead w.p. 2^-50
    assert np.all(r.dead_fraction[:, 0] == 0.0)
    assert r.dead_fraction.mean() < 0.05
    r = simulate(activation="tanh", init="he_normal", depth=2, width=64, nets=5, seed=0)
    assert r.dead_fraction.max() == 0.0
