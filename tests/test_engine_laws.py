"""Tests for initsim.engine.laws: encoding, kernel vs numpy twin, threads, laws.

Statistical tests use fixed seeds and a false-rejection rate of ALPHA = 1e-4
each (KS, binomial and chi-square tests; z-tests at |z| > 3.89), so a correct
sampler fails one of them with probability about 1e-4 per test per seed
change; with the fixed seeds the outcome is deterministic. Negative controls
show that the same tests reject deliberately wrong laws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from initsim import rng
from initsim.engine import laws as L

ALPHA = 1e-4
Z_CRIT = stats.norm.isf(ALPHA / 2)  # two-sided z-test at ALPHA
HYP = settings(deadline=None)  # example count from the active profile (tests/conftest.py)


@dataclass(frozen=True)
class Spec:
    """Stand-in for initsim.initializers.LawSpec (duck typed)."""

    law: str
    loc: float = 0.0
    scale: float = 1.0
    low: float = -1.0
    high: float = 1.0
    value: float = 0.0
    sparsity: float = 0.1
    gain: float = 1.0


SPECS = {
    "gaussian": Spec("gaussian", loc=0.25, scale=1.7),
    "uniform": Spec("uniform", low=-0.3, high=0.8),
    "truncated_gaussian": Spec("truncated_gaussian", loc=0.1, scale=0.5, low=-0.4, high=1.2),
    "orthogonal": Spec("orthogonal", gain=1.3),
    "constant": Spec("constant", value=-0.7),
    "sparse": Spec("sparse", sparsity=0.3, scale=0.2),
    "identity": Spec("identity", gain=2.5),
}
REPRODUCIBLE = ["gaussian", "uniform", "constant", "identity", "orthogonal", "sparse"]
RANDOM = ["gaussian", "uniform", "truncated_gaussian", "orthogonal", "sparse"]
SHAPES = [(1, 1), (1, 7), (7, 1), (6, 6), (9, 4), (4, 9)]


def keys_for(seed: int, n: int) -> np.ndarray:
    return rng.net_keys(rng.root_key(seed), 0, n)


def reference(spec: Spec, key: np.ndarray, layer: int, shape: tuple[int, int]) -> np.ndarray:
    code, params = L.encode(spec)
    out = np.empty(shape)
    L.fill_weights_reference(code, params, key[0], key[1], layer, out)
    return out


def many(spec: Spec, seed: int, nets: int, shape: tuple[int, int], layer: int = 0) -> np.ndarray:
    return np.stack([L.sample_weights(spec, k, layer, shape) for k in keys_for(seed, nets)])


@pytest.fixture(scope="module", autouse=True)
def compiled() -> None:
    """Compile (or load from cache) the kernel once for the module."""
    key = keys_for(0, 1)[0]
    for spec in SPECS.values():
        L.sample_weights(spec, key, 0, (3, 2))


# --------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------
def test_encode_layout() -> None:
    for name, spec in SPECS.items():
        code, params = L.encode(spec)
        assert L.LAW_NAMES[code] == name
        assert params.shape == (L.N_PARAMS,) and params.dtype == np.float64
    _, p = L.encode(SPECS["truncated_gaussian"])
    np.testing.assert_array_equal(p[[L.P_LOC, L.P_SCALE, L.P_LOW, L.P_HIGH]], [0.1, 0.5, -0.4, 1.2])
    _, p = L.encode(SPECS["sparse"])
    assert p[L.P_SPARSITY] == 0.3 and p[L.P_SCALE] == 0.2
    _, p = L.encode(SPECS["identity"])
    assert p[L.P_GAIN] == 2.5
    _, p = L.encode(SPECS["constant"])
    assert p[L.P_VALUE] == -0.7
    # infinite truncation bounds are allowed
    code, p = L.encode(Spec("truncated_gaussian", low=-math.inf, high=0.0))
    assert code == L.TRUNCATED_GAUSSIAN and p[L.P_LOW] == -math.inf


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (Spec("dirac"), ["dirac", "conv"]),
        (Spec("laplace"), ["laplace", "gaussian", "truncated_gaussian", "orthogonal"]),
        (Spec("gaussian", scale=-1.0), ["gaussian", "scale"]),
        (Spec("gaussian", loc=math.nan), ["gaussian", "loc"]),
        (Spec("uniform", low=1.0, high=0.0), ["uniform", "low", "high"]),
        (Spec("uniform", high=math.inf), ["uniform", "high"]),
        (Spec("truncated_gaussian", scale=0.0), ["truncated_gaussian", "scale"]),
        (Spec("truncated_gaussian", low=1.0, high=1.0), ["truncated_gaussian", "low"]),
        (Spec("truncated_gaussian", high=math.nan), ["truncated_gaussian", "high"]),
        (Spec("truncated_gaussian", scale=1e-300, low=1e10, high=math.inf), ["low", "scale"]),
        (Spec("sparse", sparsity=1.5), ["sparse", "sparsity"]),
        (Spec("sparse", scale=-0.1), ["sparse", "scale"]),
        (Spec("orthogonal", gain=math.inf), ["orthogonal", "gain"]),
        (Spec("constant", value="big"), ["constant", "value"]),  # type: ignore[arg-type]
    ],
)
def test_encode_errors_name_law_and_parameter(spec: Spec, words: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        L.encode(spec)
    for word in words:
        assert word in str(info.value)


def test_encode_missing_attribute() -> None:
    @dataclass
    class Partial:
        law: str = "gaussian"
        loc: float = 0.0

    with pytest.raises(ValueError, match="'scale'"):
        L.encode(Partial())
    with pytest.raises(ValueError, match="'law'"):
        L.encode(object())


def test_sample_weights_input_checks() -> None:
    key = keys_for(0, 1)[0]
    code, params = L.encode(SPECS["gaussian"])
    np.testing.assert_array_equal(
        L.sample_weights((code, params), key, 1, (3, 4)),
        L.sample_weights(SPECS["gaussian"], key, 1, (3, 4)),
    )
    with pytest.raises(ValueError, match="code"):
        L.sample_weights((17, params), key, 0, (2, 2))
    with pytest.raises(ValueError, match="params"):
        L.sample_weights((code, params[:3]), key, 0, (2, 2))
    with pytest.raises(ValueError, match="key"):
        L.sample_weights(SPECS["gaussian"], [1, 2, 3], 0, (2, 2))
    with pytest.raises(ValueError, match="shape"):
        L.sample_weights(SPECS["gaussian"], key, 0, (0, 2))
    with pytest.raises(ValueError, match="layer"):
        L.sample_weights(SPECS["gaussian"], key, -1, (2, 2))


# --------------------------------------------------------------------------
# Kernel vs numpy twin, stream mapping, determinism
# --------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("law", REPRODUCIBLE)
def test_kernel_matches_reference(law: str, shape: tuple[int, int]) -> None:
    key = keys_for(11, 3)[2]
    got = L.sample_weights(SPECS[law], key, 3, shape)
    want = reference(SPECS[law], key, 3, shape)
    if law == "orthogonal":  # LAPACK via numba vs numpy: agree to rounding
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    else:
        np.testing.assert_array_equal(got, want)


@HYP
@given(
    law=st.sampled_from(REPRODUCIBLE),
    n_out=st.integers(1, 12),
    n_in=st.integers(1, 12),
    layer=st.integers(0, 2**32 - 1),
    seed=st.integers(0, 2**63),
    x=st.floats(-5.0, 5.0, allow_nan=False),
    s=st.floats(0.0, 3.0, allow_nan=False),
    frac=st.floats(0.0, 1.0, allow_nan=False),
)
def test_kernel_matches_reference_property(
    law: str, n_out: int, n_in: int, layer: int, seed: int, x: float, s: float, frac: float
) -> None:
    spec = Spec(law, loc=x, scale=s, low=x, high=x + s, value=x, sparsity=frac, gain=s)
    key = keys_for(seed, 1)[0]
    got = L.sample_weights(spec, key, layer, (n_out, n_in))
    want = reference(spec, key, layer, (n_out, n_in))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * max(1.0, s))


def test_gaussian_entry_is_normal_number_row_major() -> None:
    key = keys_for(5, 1)[0]
    n_out, n_in, layer = 5, 7, 4
    W = L.sample_weights(Spec("gaussian", loc=0.0, scale=1.0), key, layer, (n_out, n_in))
    one = np.empty(1)
    for i, j in [(0, 0), (0, 6), (3, 2), (4, 6)]:
        rng.fill_normals(
            key[0], key[1], np.uint64(rng.Purpose.WEIGHTS), np.uint64(layer), i * n_in + j, one
        )
        assert W[i, j] == one[0]
    # sparse nonzeros and orthogonal's Gaussian matrix use the same numbers
    S = L.sample_weights(Spec("sparse", sparsity=0.4, scale=2.0), key, layer, (n_out, n_in))
    nz = S != 0.0
    np.testing.assert_array_equal(S[nz], 2.0 * W[nz])


def test_identity_and_constant() -> None:
    key = keys_for(1, 1)[0]
    np.testing.assert_array_equal(
        L.sample_weights(Spec("identity", gain=0.5), key, 0, (3, 5)), 0.5 * np.eye(3, 5)
    )
    np.testing.assert_array_equal(
        L.sample_weights(Spec("identity", gain=1.0), key, 0, (5, 3)), np.eye(5, 3)
    )
    np.testing.assert_array_equal(
        L.sample_weights(Spec("constant", value=0.125), key, 0, (4, 2)), np.full((4, 2), 0.125)
    )


@pytest.mark.parametrize("law", RANDOM)
def test_determinism_and_stream_separation(law: str) -> None:
    keys = keys_for(3, 2)
    spec = SPECS[law]
    shape = (8, 6)
    a = L.sample_weights(spec, keys[0], 2, shape)
    np.testing.assert_array_equal(a, L.sample_weights(spec, keys[0], 2, shape))
    assert np.all(np.isfinite(a))
    assert not np.array_equal(a, L.sample_weights(spec, keys[0], 3, shape))
    assert not np.array_equal(a, L.sample_weights(spec, keys[1], 2, shape))


def test_unknown_code_fills_nan() -> None:
    W = np.zeros((2, 3))
    L.fill_weights(99, np.zeros(L.N_PARAMS), np.uint64(1), np.uint64(2), 0, W)
    assert np.all(np.isnan(W))


# --------------------------------------------------------------------------
# Inside a prange over nets: independent of the thread count
# --------------------------------------------------------------------------
@numba.njit(parallel=True)
def _all_nets(code, params, keys, layer, out):
    for net in numba.prange(keys.shape[0]):
        L.fill_weights(code, params, keys[net, 0], keys[net, 1], layer, out[net])


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
def test_prange_thread_invariance() -> None:
    counts = [t for t in (1, 2, 4) if t <= numba.config.NUMBA_NUM_THREADS]
    keys = keys_for(21, 12)
    shape = (7, 5)
    previous = numba.get_num_threads()
    try:
        for law, spec in SPECS.items():
            code, params = L.encode(spec)
            serial = np.stack([L.sample_weights(spec, k, 6, shape) for k in keys])
            results = []
            for threads in counts:
                numba.set_num_threads(threads)
                out = np.full((len(keys), *shape), np.nan)
                _all_nets(code, params, keys, 6, out)
                results.append(out)
            for other in results[1:]:
                np.testing.assert_array_equal(results[0], other, err_msg=law)
            np.testing.assert_array_equal(results[0], serial, err_msg=law)
    finally:
        numba.set_num_threads(previous)


# --------------------------------------------------------------------------
# Laws: KS tests at ALPHA, with negative controls
# --------------------------------------------------------------------------
def test_gaussian_law_and_negative_control() -> None:
    spec = Spec("gaussian", loc=-0.4, scale=0.3)
    x = L.sample_weights(spec, keys_for(31, 1)[0], 1, (150, 120)).ravel()
    assert stats.kstest(x, stats.norm(-0.4, 0.3).cdf).pvalue > ALPHA
    # negative control: the same test rejects a scale 10% too large
    wrong = L.sample_weights(
        Spec("gaussian", loc=-0.4, scale=0.33), keys_for(32, 1)[0], 1, (150, 120)
    ).ravel()
    assert stats.kstest(wrong, stats.norm(-0.4, 0.3).cdf).pvalue < ALPHA


def test_uniform_law() -> None:
    x = L.sample_weights(
        Spec("uniform", low=-2.0, high=0.5), keys_for(33, 1)[0], 0, (150, 120)
    ).ravel()
    assert x.min() >= -2.0 and x.max() < 0.5
    assert stats.kstest(x, stats.uniform(-2.0, 2.5).cdf).pvalue > ALPHA


# (loc, scale, low, high): one case per branch of the sampler
TRUNC_CASES = {
    "centre-wide-normal-rejection": (0.5, 2.0, -3.0, 4.0),
    "centre-narrow-uniform": (0.0, 1.0, -0.5, 1.0),
    "pytorch-default-std0.02": (0.0, 0.02, -2.0, 2.0),
    "half-normal": (0.0, 1.0, 0.0, math.inf),
    "far-tail-8-9": (0.0, 1.0, 8.0, 9.0),
    "narrow-tail-uniform": (0.0, 1.0, 2.0, 2.4),
    "far-narrow-tail-uniform": (0.0, 1.0, 8.0, 8.12),
    "one-sided-exponential": (0.0, 1.0, 0.3, math.inf),
    "left-tail-reflected": (1.0, 2.0, -math.inf, -7.0),
    "narrow-left-tail-uniform": (0.0, 1.0, -2.4, -2.0),
    "wide-right-tail-exponential": (0.0, 1.0, 1.0, 3.0),
    "short-right-tail-exponential": (0.0, 1.0, 1.0, 1.8),
    "tiny-scale": (0.3, 1e-9, 0.3 - 1e-9, 0.3 + 3e-9),
    "small-scale-far-left": (0.0, 1e-3, -0.012, -0.0105),
    "far-far-tail": (0.0, 1.0, 30.0, 30.5),
}


@pytest.mark.parametrize("case", list(TRUNC_CASES))
def test_truncated_law(case: str) -> None:
    loc, scale, low, high = TRUNC_CASES[case]
    spec = Spec("truncated_gaussian", loc=loc, scale=scale, low=low, high=high)
    key = keys_for(41, 1)[0]
    x = L.sample_weights(spec, key, 2, (100, 150)).ravel()
    assert np.all(np.isfinite(x))
    assert x.min() >= low and x.max() <= high
    assert np.count_nonzero((x == low) | (x == high)) <= 2  # no atoms: nothing was clamped
    law = stats.truncnorm((low - loc) / scale, (high - loc) / scale, loc=loc, scale=scale)
    assert stats.kstest(x, law.cdf).pvalue > ALPHA
    # the numpy twin (inverse CDF, independent algorithm) has the same law
    y = reference(spec, key, 2, (100, 150)).ravel()
    assert y.min() >= low and y.max() <= high
    assert stats.ks_2samp(x, y).pvalue > ALPHA


def test_truncated_negative_control_clamping_is_rejected() -> None:
    # clamping a N(0,1) to [-0.5, 1] puts atoms at the bounds: KS must notice
    z = L.sample_weights(Spec("gaussian", loc=0.0, scale=1.0), keys_for(42, 1)[0], 0, (100, 150))
    clamped = np.clip(z.ravel(), -0.5, 1.0)
    assert stats.kstest(clamped, stats.truncnorm(-0.5, 1.0).cdf).pvalue < ALPHA


@HYP
@given(
    loc=st.floats(-1e3, 1e3, allow_nan=False),
    log_scale=st.floats(-12.0, 3.0),
    a=st.floats(-40.0, 40.0),
    width=st.floats(1e-6, 80.0),
    inf_low=st.booleans(),
    inf_high=st.booleans(),
    seed=st.integers(0, 2**32),
)
def test_truncated_always_inside_bounds(
    loc: float, log_scale: float, a: float, width: float, inf_low: bool, inf_high: bool, seed: int
) -> None:
    scale = 10.0**log_scale
    low = -math.inf if inf_low else loc + scale * a
    high = math.inf if inf_high else loc + scale * (a + width)
    if not low < high:
        return
    x = L.sample_weights(
        Spec("truncated_gaussian", loc=loc, scale=scale, low=low, high=high),
        keys_for(seed, 1)[0],
        1,
        (6, 5),
    )
    assert np.all(np.isfinite(x))
    assert x.min() >= low and x.max() <= high


# --------------------------------------------------------------------------
# Sparse
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sparsity", "rows"), [(0.0, 9), (0.1, 10), (0.3, 10), (0.7, 10), (0.5, 7), (1.0, 6), (0.9, 3)]
)
def test_sparse_exact_zero_count(sparsity: float, rows: int) -> None:
    want = L.sparse_zero_count(sparsity, rows)
    assert want == min(rows, math.ceil(sparsity * rows))  # PyTorch's count
    W = L.sample_weights(
        Spec("sparse", sparsity=sparsity, scale=1.0), keys_for(7, 1)[0], 0, (rows, 13)
    )
    np.testing.assert_array_equal((W == 0.0).sum(axis=0), np.full(13, want))


def test_sparse_float_ceiling_matches_pytorch() -> None:
    # 0.07 * 100 == 7.000000000000001 in doubles, so PyTorch zeros 8 rows, not 7
    assert L.sparse_zero_count(0.07, 100) == 8
    W = L.sample_weights(Spec("sparse", sparsity=0.07, scale=1.0), keys_for(8, 1)[0], 0, (100, 3))
    np.testing.assert_array_equal((W == 0.0).sum(axis=0), [8, 8, 8])
    for sparsity in [*np.linspace(0.0, 1.0, 41), 0.14, 0.29, 0.57]:
        for rows in (3, 10, 17, 100):
            W = L.sample_weights(
                Spec("sparse", sparsity=float(sparsity), scale=1.0), keys_for(8, 1)[0], 0, (rows, 2)
            )
            assert (W[:, 0] == 0.0).sum() == L.sparse_zero_count(float(sparsity), rows)


def test_sparse_law() -> None:
    rows, cols, nets, sparsity, scale = 10, 8, 400, 0.3, 0.2
    W = many(Spec("sparse", sparsity=sparsity, scale=scale), 9, nets, (rows, cols))
    k = L.sparse_zero_count(sparsity, rows)
    nonzero = W[W != 0.0]
    assert nonzero.size == nets * cols * (rows - k)
    assert stats.kstest(nonzero, stats.norm(0.0, scale).cdf).pvalue > ALPHA
    # zero positions: each row of a column is zero with probability k / rows
    counts = (W == 0.0).sum(axis=(0, 2))  # per row, over nets and columns
    assert stats.chisquare(counts).pvalue > ALPHA
    # and independently across columns: pairs (row in col 0, row in col 1)
    z0 = W[:, :, 0] == 0.0
    z1 = W[:, :, 1] == 0.0
    joint = np.einsum("ni,nj->ij", z0.astype(float), z1.astype(float)).ravel()
    assert stats.chisquare(joint).pvalue > ALPHA
    # negative control: zeros always in the first k rows fail the row test
    biased = np.zeros(rows)
    biased[:k] = nets * cols
    assert stats.chisquare(biased + 1.0).pvalue < ALPHA


# --------------------------------------------------------------------------
# Orthogonal
# --------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 1), (6, 6), (9, 4), (4, 9), (1, 5), (5, 1), (40, 40)])
def test_orthogonal_is_orthogonal(shape: tuple[int, int]) -> None:
    gain = 1.7
    for key in keys_for(51, 3):
        W = L.sample_weights(Spec("orthogonal", gain=gain), key, 1, shape)
        gram = W @ W.T if shape[0] <= shape[1] else W.T @ W
        np.testing.assert_allclose(gram, gain**2 * np.eye(min(shape)), rtol=0, atol=1e-10)


@pytest.mark.parametrize("shape", [(5, 5), (7, 3), (3, 7)])
def test_orthogonal_is_haar(shape: tuple[int, int]) -> None:
    # One entry per net (cycling through positions, all with the same marginal):
    # an entry u of a uniform unit vector in R^m has u^2 ~ Beta(1/2, (m-1)/2), sign fair.
    nets, gain = 2000, 0.8
    W = many(Spec("orthogonal", gain=gain), 52, nets, shape) / gain
    n_out, n_in = shape
    m = max(shape)
    idx = np.arange(nets)
    u = W[idx, idx % n_out, (idx // n_out) % n_in]
    assert stats.kstest(u**2, stats.beta(0.5, (m - 1) / 2).cdf).pvalue > ALPHA
    assert stats.binomtest(int((u > 0).sum()), nets).pvalue > ALPHA
    # sign correction: diagonal entries are symmetric (raw Householder QR makes W[0,0] < 0)
    d = W[:, 0, 0]
    assert stats.binomtest(int((d > 0).sum()), nets).pvalue > ALPHA
    if n_out == n_in:
        # Haar O(n), n >= 4: E tr = 0, E tr^2 = 1, Var tr^2 = 2
        tr = np.trace(W, axis1=1, axis2=2)
        assert abs(tr.mean()) * math.sqrt(nets) < Z_CRIT
        assert abs((tr**2).mean() - 1.0) / math.sqrt(2.0 / nets) < Z_CRIT


def test_orthogonal_negative_control_without_sign_fix() -> None:
    # Q from QR of the same Gaussian matrices, without the sign correction
    nets, n = 2000, 5
    G = many(Spec("gaussian", loc=0.0, scale=1.0), 52, nets, (n, n))
    raw = np.stack([np.linalg.qr(g)[0] for g in G])
    d = raw[:, 0, 0]
    tr = np.trace(raw, axis1=1, axis2=2)
    rejected = (
        stats.binomtest(int((d > 0).sum()), nets).pvalue < ALPHA
        or abs(tr.mean()) * math.sqrt(nets) > Z_CRIT
    )
    assert rejected
