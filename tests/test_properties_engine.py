"""Properties of the engine and the catalogue, for every case hypothesis can find.

Statistical properties state their error rate: each example is a test at
level ALPHA, and hypothesis runs at most a few dozen examples per profile,
so a correct engine fails one of them with probability below 30 * ALPHA.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from initsim import initializers, simulate
from tests import strategies as S

pytestmark = pytest.mark.usefixtures("warm_kernels")

ALPHA = 1e-4
FIELDS = ("q", "act_mean", "act_var", "dead_fraction", "saturated_fraction", "grad_sq")


# ----------------------------------------------------------------- catalogue
@given(
    scale=S.scales,
    mode=S.variance_scaling_modes,
    distribution=S.variance_scaling_distributions,
    fan_in=S.fans,
    fan_out=S.fans,
)
def test_variance_scaling_variance_is_scale_over_fan(scale, mode, distribution, fan_in, fan_out):
    init = initializers.get("variance_scaling", scale=scale, mode=mode, distribution=distribution)
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    assert init.variance(fan_in, fan_out) == pytest.approx(scale / fan, rel=1e-12)


@given(
    name=st.sampled_from(
        [
            "lecun_normal",
            "lecun_uniform",
            "glorot_normal",
            "glorot_uniform",
            "he_normal",
            "he_uniform",
        ]
    ),
    fan_in=S.fans,
    fan_out=S.fans,
)
def test_named_schemes_are_variance_scaling(name, fan_in, fan_out):
    scale, mode = {"lecun": (1.0, "fan_in"), "glorot": (2.0, "fan_sum"), "he": (2.0, "fan_in")}[
        name.split("_")[0]
    ]
    fan = fan_in + fan_out if mode == "fan_sum" else fan_in
    assert initializers.get(name).variance(fan_in, fan_out) == pytest.approx(scale / fan, rel=1e-12)


# ---------------------------------------------------------- engine invariants
@given(
    seed=S.seeds,
    threads=S.thread_counts,
    chunk=st.integers(1, 9),
    method=S.methods,
    activation=S.activation_names,
    inputs=st.integers(1, 3),
)
def test_same_seed_same_bits_for_any_threads_and_chunking(
    seed, threads, chunk, method, activation, inputs
):
    kw = dict(
        activation=activation,
        init="he_normal",
        depth=3,
        width=6,
        nets=9,
        inputs=inputs,
        input="gaussian",
        backward=True,
        method=method,
        seed=seed,
        bias_std=0.1,
    )
    threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    a = simulate(threads=1, **kw)
    b = simulate(threads=threads, chunk_size=chunk, **kw)
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    np.testing.assert_array_equal(a.first_nonfinite_layer, b.first_nonfinite_layer)


# ----------------------------------------------------- statistical invariants
def _z_pvalue(samples, expected):
    se = samples.std(ddof=1) / np.sqrt(samples.size)
    return 2 * stats.norm.sf(abs(samples.mean() - expected) / se)


@given(seed=S.seeds, width=st.integers(16, 64), depth=st.integers(1, 6), scale=st.floats(0.5, 2.0))
def test_linear_nets_scale_q_by_sigma_w2_per_layer(seed, width, depth, scale):
    """E[q^L] = sigma_w2^L q0 at any width (q0 = 1: sphere inputs)."""
    init = initializers.get("variance_scaling", scale=scale)
    r = simulate(activation="linear", init=init, depth=depth, width=width, nets=3000, seed=seed)
    assert _z_pvalue(r.q[:, -1], scale**depth) > ALPHA


@given(
    seed=S.seeds,
    widths=st.lists(st.integers(8, 96), min_size=2, max_size=2, unique=True),
    depth=st.integers(2, 6),
)
def test_he_relu_q_does_not_depend_on_width(seed, widths, depth):
    """E[q^L] is 2 at every width: Welch test of the difference between two widths."""
    a, b = (
        simulate(
            activation="relu", init="he_normal", depth=depth, width=w, nets=2000, seed=seed + k
        ).q[:, -1]
        for k, w in enumerate(widths)
    )
    se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert 2 * stats.norm.sf(abs(a.mean() - b.mean()) / se) > ALPHA
    assert _z_pvalue(a, 2.0) > ALPHA and _z_pvalue(b, 2.0) > ALPHA


@given(
    seed=S.seeds,
    activation=st.sampled_from(["relu", "tanh", "linear", "sigmoid"]),
    init=S.exact_inits,
    inputs=st.integers(1, 2),
)
def test_exact_and_dense_samplers_agree_in_law(seed, activation, init, inputs):
    """Two-sample KS on q and grad_sq at the last layer (Bonferroni over the two)."""
    kw = dict(
        activation=activation,
        init=init,
        depth=3,
        width=10,
        nets=400,
        inputs=inputs,
        input="gaussian",
        backward=True,
    )
    ex = simulate(method="exact", seed=seed, **kw)
    de = simulate(method="dense", seed=seed + 1, **kw)
    for f in ("q", "grad_sq"):
        assert stats.ks_2samp(getattr(ex, f)[:, -1], getattr(de, f)[:, -1]).pvalue > ALPHA / 2
