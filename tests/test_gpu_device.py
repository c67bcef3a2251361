"""GPU backend against the CPU engine: same seed, same draws, same statistics.

Runs on a real NVIDIA GPU when numba-cuda sees one, and otherwise skips
(with the reason). ``tests/test_gpu_cudasim.py`` runs this same module in a
subprocess under the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1`` must be set
before numba is imported, and this session's conftest has imported it), with
``INITSIM_TEST_CUDASIM=1`` and tiny sizes.

Tolerance. Every random number is the same on both devices (Philox is exact
integer arithmetic; the ziggurat's fast path is one multiplication). What
differs is rounding: the GPU sums over units in a tree, the CPU left to
right (relative error up to ``n * 2**-53``, about 1e-13 for the sizes here),
the GPU may fuse a multiply and an add, and libdevice's ``exp``/``tanh``/
``log1p`` can differ from the CPU's libm in the last ulp; a few layers
propagate these with a gain of order 1. So real-valued statistics must agree
to ``rtol=1e-12``, plus ``atol=1e-13`` times the field's scale (its largest
value; for the activation mean and variance, which can be 0 exactly, the
largest ``sqrt(E[y^2])`` and ``E[y^2]``, the sizes their rounding errors are
relative to); counts (dead and saturated fractions, first
non-finite layer, histograms) must agree exactly. A single wrong draw moves
the statistics by about ``1/width``, far outside these bounds.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest

from initsim.result import SUMMARY_FIELDS
from initsim.rng import Purpose, fill_normals, fill_uniforms, net_keys, philox_blocks, root_key

SIM = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


def _skip_reason() -> str | None:
    if SIM:
        if os.environ.get("INITSIM_TEST_CUDASIM") != "1":
            return "CUDA simulator: run through tests/test_gpu_cudasim.py"
        return None
    # at collection, warnings are errors; whatever importing CUDA says shows up in the tests
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from numba import cuda
        except Exception as exc:  # numba without its CUDA target
            return f"numba.cuda cannot be imported ({exc}); install initsim[cuda]"
        try:
            ok = cuda.is_available()
        except Exception as exc:
            return f"numba-cuda cannot initialise CUDA ({exc})"
    if not ok:
        return "no NVIDIA GPU or driver visible to numba-cuda (cuda.is_available() is False)"
    return None


_REASON = _skip_reason()
pytestmark = [
    pytest.mark.skipif(_REASON is not None, reason=_REASON or ""),
    pytest.mark.usefixtures("warm_kernels"),
    # numba-cuda's performance hints for the tiny test launches (the driver silences its own)
    pytest.mark.filterwarnings("ignore:Grid size"),
]

RTOL = 1e-12
ATOL_REL = 1e-13
COUNT_FIELDS = ("dead_fraction", "saturated_fraction")

# Sizes: tiny in the simulator (it runs every GPU thread as a Python thread),
# larger on a GPU so that threads own several unit pairs and blocks are full.
if SIM:
    NETS, DEPTH, WIDTH, WIDTHS, NIN = 2, 3, 9, [7, 6, 9], 5
else:
    NETS, DEPTH, WIDTH, WIDTHS, NIN = 40, 6, 301, [129, 64, 300, 77, 256, 33], 97


def assert_same(gpu, cpu) -> None:
    """GPU and CPU results agree (see the module docstring for the tolerance)."""
    assert gpu.q.shape == cpu.q.shape
    for name in SUMMARY_FIELDS:
        g, c = getattr(gpu, name), getattr(cpu, name)
        if c is None:
            assert g is None, name
            continue
        if name in COUNT_FIELDS:
            np.testing.assert_array_equal(g, c, err_msg=name)
            continue
        finite = np.isfinite(c)
        np.testing.assert_array_equal(np.isfinite(g), finite, err_msg=name)
        ref = c
        if name in ("act_mean", "act_var"):
            # a mean or variance of values of size |y| is rounded relative to E[y^2]
            with np.errstate(over="ignore", invalid="ignore"):
                second = cpu.act_var + cpu.act_mean**2
            ref = np.sqrt(second) if name == "act_mean" else second
            # E[y^2] can overflow where the mean and variance themselves are finite
            ref = np.where(np.isfinite(ref), ref, np.abs(c))
        scale = float(np.max(np.abs(ref[finite]))) if finite.any() else 0.0
        np.testing.assert_allclose(
            g[finite], c[finite], rtol=RTOL, atol=ATOL_REL * scale, err_msg=name
        )
    np.testing.assert_array_equal(gpu.first_nonfinite_layer, cpu.first_nonfinite_layer)
    if cpu.histograms is None:
        assert gpu.histograms is None
    else:
        for key in ("h", "act", "h_edges", "act_edges"):
            np.testing.assert_array_equal(gpu.histograms[key], cpu.histograms[key], err_msg=key)


def both(**kw):
    from initsim.simulation import simulate

    return simulate(device="cuda", **kw), simulate(device="cpu", **kw)


# ---------------------------------------------------------------- random streams
# Philox4x32-10 known answers (Random123's kat_vectors).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    (
        (0xFFFFFFFF,) * 4,
        (0xFFFFFFFF, 0xFFFFFFFF),
        (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD),
    ),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


def _device_philox(ctr: np.ndarray, key: tuple[int, int]) -> np.ndarray:
    from numba import cuda

    from initsim.gpu.streams import philox_kernel

    d_out = cuda.to_device(np.zeros_like(ctr))
    grid = (ctr.shape[0] + 31) // 32
    philox_kernel[grid, 32](cuda.to_device(ctr), np.uint64(key[0]), np.uint64(key[1]), d_out)
    return d_out.copy_to_host()


@pytest.mark.parametrize(("ctr", "key", "expected"), KAT)
def test_philox_known_answers(ctr, key, expected):
    got = _device_philox(np.array([ctr], dtype=np.uint64), key)
    assert tuple(int(v) for v in got[0]) == expected
    assert tuple(int(v) for v in philox_blocks(np.array([ctr]), key)[0]) == expected


def test_philox_matches_cpu_on_many_counters():
    rng = np.random.default_rng(8)
    ctr = rng.integers(0, 2**32, size=(40, 4), dtype=np.uint64)
    key = (0x12345678, 0x9ABCDEF0)
    np.testing.assert_array_equal(_device_philox(ctr, key), philox_blocks(ctr, key))


def _device_draws(kind: str, key, c2: int, c3: int, index: np.ndarray) -> np.ndarray:
    from numba import cuda

    from initsim.gpu import streams

    d_idx = cuda.to_device(np.ascontiguousarray(index, dtype=np.int64))
    d_out = cuda.to_device(np.zeros(index.shape[0]))
    grid = (index.shape[0] + 31) // 32
    args = (np.uint64(key[0]), np.uint64(key[1]), np.uint64(c2), np.uint64(c3), d_idx)
    if kind == "normal":
        ki, wi, fi = (cuda.to_device(a) for a in streams.tables())
        streams.normals_at_kernel[grid, 32](*args, ki, wi, fi, d_out)
    else:
        streams.uniforms_at_kernel[grid, 32](*args, d_out)
    return d_out.copy_to_host()


def _slow_path_indices(key, c2: int, c3: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices < n whose normal leaves the ziggurat's fast path: (tail, other)."""
    from initsim import rng as _rng

    blocks = philox_blocks(
        np.stack(
            [np.arange(n // 2), np.zeros(n // 2), np.full(n // 2, c2), np.full(n // 2, c3)]
        ).T.astype(np.uint64),
        (int(key[0]), int(key[1])),
    ).astype(np.uint64)
    words = np.empty(n, dtype=np.uint64)
    words[0::2] = (blocks[:, 0] << np.uint64(32)) | blocks[:, 1]
    words[1::2] = (blocks[:, 2] << np.uint64(32)) | blocks[:, 3]
    idx = (words & np.uint64(0xFF)).astype(np.int64)
    rabs = (words >> np.uint64(9)) & np.uint64(0x000FFFFFFFFFFFFF)
    slow = rabs >= _rng._KI[idx]
    return np.flatnonzero(slow & (idx == 0)), np.flatnonzero(slow & (idx != 0))


@pytest.mark.parametrize("net", [0, 3, 1000])
def test_normals_match_cpu(net):
    key = net_keys(root_key(2024), net, net + 1)[0]
    c2, c3 = Purpose.WEIGHTS, 7
    n = 40000
    tail, other = _slow_path_indices(key, c2, c3, n)
    # the test must exercise both rejection branches
    assert tail.size >= 1 and other.size >= 10
    starts = np.array([0, 1, 999, 2**20 + 1])
    index = np.concatenate([tail, other[:40], *(s + np.arange(24) for s in starts)])
    ref = np.array([_cpu_normal(key, c2, c3, int(i)) for i in index])
    got = _device_draws("normal", key, c2, c3, index)
    # slow-path tail values go through log1p: libm and libdevice may differ in the last ulp
    in_tail = np.abs(ref) >= 3.6541528853610088
    np.testing.assert_array_equal(got[~in_tail], ref[~in_tail])
    np.testing.assert_allclose(got[in_tail], ref[in_tail], rtol=4e-16, atol=0)
    assert in_tail.sum() >= tail.size


def _cpu_normal(key, c2: int, c3: int, i: int) -> float:
    out = np.empty(1)
    fill_normals(np.uint64(key[0]), np.uint64(key[1]), np.uint64(c2), np.uint64(c3), i, out)
    return float(out[0])


def test_uniforms_match_cpu():
    key = net_keys(root_key(7), 5, 6)[0]
    index = np.concatenate([np.arange(33), 2**21 + np.arange(7)])
    ref = np.array([_cpu_uniform(key, 4, 2, int(i)) for i in index])
    got = _device_draws("uniform", key, 4, 2, index)
    np.testing.assert_array_equal(got, ref)


def _cpu_uniform(key, c2: int, c3: int, i: int) -> float:
    out = np.empty(1)
    fill_uniforms(np.uint64(key[0]), np.uint64(key[1]), np.uint64(c2), np.uint64(c3), i, out)
    return float(out[0])


# ---------------------------------------------------------------- exact sampler
EXACT_CASES = [
    pytest.param(dict(activation="relu"), id="relu-forward"),
    pytest.param(
        dict(activation="relu", backward=True, bias_std=0.2, input="gaussian", histograms=7),
        id="relu-backward-bias-hist",
    ),
    pytest.param(
        dict(activation="tanh", backward=True, width=WIDTHS, input_dim=NIN, init="lecun_normal"),
        id="tanh-backward-widths",
    ),
]


@pytest.mark.parametrize("kw", EXACT_CASES)
def test_exact_matches_cpu(kw):
    args = dict(depth=DEPTH, width=WIDTH, nets=NETS, method="exact", seed=11)
    args.update(kw)
    if isinstance(args["width"], list):
        args["depth"] = len(args["width"])
    gpu, cpu = both(**args)
    assert gpu.provenance["device"] == "cuda" and cpu.provenance["device"] == "cpu"
    assert gpu.provenance["config_sha256"] == cpu.provenance["config_sha256"]
    assert_same(gpu, cpu)


def test_exact_given_input_and_small_blocks(monkeypatch):
    """Threads that own several unit pairs (a block smaller than the layer)."""
    from initsim.gpu import driver

    block = 4 if SIM else 32
    monkeypatch.setattr(driver, "_pow2_block", lambda units, lo, hi: block)
    x = np.linspace(-1.0, 2.0, NIN)
    gpu, cpu = both(
        activation="tanh",
        depth=DEPTH,
        width=WIDTH,
        input_dim=NIN,
        input=x,
        nets=NETS,
        method="exact",
        backward=True,
        seed=3,
    )
    assert f"block {block}" in gpu.provenance["kernel"]
    assert_same(gpu, cpu)


# the simulator computes with numpy scalars, which warn on overflow; a GPU does not
@pytest.mark.filterwarnings("ignore::RuntimeWarning" if SIM else "error::RuntimeWarning")
def test_exact_overflow_is_reported_like_cpu():
    """Exploding nets: the same first non-finite layer, inf/NaN in the same places."""
    gpu, cpu = both(
        activation="relu",
        init=_big_normal(),
        depth=4,
        width=WIDTH,
        nets=NETS,
        method="exact",
        backward=True,
        seed=1,
    )
    assert (cpu.first_nonfinite_layer > 0).all()
    assert_same(gpu, cpu)


def _big_normal():
    from initsim import initializers

    return initializers.get("normal", std=1e100)  # inf by layer 2


def test_gpu_runs_are_deterministic_and_chunk_invariant():
    from initsim.simulation import simulate

    kw = dict(activation="relu", depth=2, width=WIDTH, nets=NETS, backward=True, seed=5)
    a = simulate(device="cuda", method="exact", **kw)
    b = simulate(device="cuda", method="exact", chunk_size=1, **kw)
    for name in ("q", "act_var", "grad_sq"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_cli_device_cuda_matches_cpu(capsys):
    import json

    from initsim.cli import main

    docs = []
    for device in ("cuda", "cpu"):
        argv = ["simulate", "--device", device, "--depth", "2", "--width", str(WIDTH)]
        assert main([*argv, "--nets", "2", "--backward", "--json", "--per-net"]) == 0
        docs.append(json.loads(capsys.readouterr().out))
    gpu, cpu = docs
    assert gpu["provenance"]["device"] == "cuda" and cpu["provenance"]["device"] == "cpu"
    for name in ("q", "grad_sq"):
        np.testing.assert_allclose(gpu[name], cpu[name], rtol=RTOL)


# ---------------------------------------------------------------- exact sampler, B inputs
def _psd_cases() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((9, 5))
    low = rng.standard_normal((5, 2))  # rank 2 of 5
    spread = np.diag([1e-9, 1e-3, 1.0, 1e3, 1e6])  # far apart in scale, not in relative gap
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    nan = x.T @ x
    nan[1, 3] = nan[3, 1] = np.inf
    dead = x.copy()
    dead[:, 2] = 0.0  # input 2 died at this layer
    return [
        x.T @ x,
        low @ low.T,
        q @ spread @ q.T,
        np.zeros((5, 5)),
        3.0 * np.eye(5),
        nan,
        dead.T @ dead,
    ]


def test_device_psd_factor_matches_cpu():
    """The in-kernel Jacobi factor: same rank, R (up to rounding), G^+ and NaN handling."""
    from numba import cuda

    from initsim.engine.gram import psd_factor as cpu_factor
    from initsim.gpu.gram_kernels import psd_factor_kernel

    gs = np.stack(_psd_cases())
    k, b = gs.shape[0], gs.shape[1]
    rs, pinvs = np.zeros_like(gs), np.zeros_like(gs)
    ranks = np.zeros(k, dtype=np.int64)
    out = [cuda.to_device(a) for a in (rs, pinvs, ranks)]
    work = [cuda.to_device(np.zeros_like(gs)), cuda.to_device(np.zeros_like(gs))]
    psd_factor_kernel[1, k](cuda.to_device(gs), *out, *work, cuda.to_device(np.zeros((k, b))))
    rs, pinvs, ranks = (a.copy_to_host() for a in out)
    for c in range(k):
        r, pinv, rank = cpu_factor(gs[c])
        assert ranks[c] == rank, c
        if rank < 0:
            assert np.all(np.isnan(rs[c])) and np.all(np.isnan(pinvs[c]))
            continue
        # both factors are backward stable: G^+ is within eps ||G|| ||G^+||^2 of the truth
        top = float(np.abs(gs[c]).max())
        norm_pinv = float(np.abs(pinv).max())
        np.testing.assert_allclose(pinvs[c], pinv, rtol=0, atol=1e-12 * top * norm_pinv**2 + 1e-300)
        np.testing.assert_allclose(rs[c][:rank].T @ rs[c][:rank], gs[c], atol=1e-12 * top)
        if c in (0, 1):  # well-separated eigenvalues: the same eigenvectors, the same signs
            np.testing.assert_allclose(rs[c][:rank], r, rtol=0, atol=1e-12 * top**0.5)
        dead = np.diag(gs[c]) == 0.0  # an exactly-zero input stays exactly zero
        assert not rs[c][:, dead].any() and not pinvs[c][:, dead].any(), c


GRAM_CASES = [
    pytest.param(dict(activation="relu", inputs=3), id="relu-B3-forward"),
    pytest.param(
        dict(
            activation="tanh",
            inputs=2,
            backward=True,
            bias_std=0.2,
            input="gaussian",
            histograms=7,
            width=WIDTHS,
            input_dim=NIN,
        ),
        id="tanh-B2-backward-bias-hist-widths",
    ),
    # more inputs than units: rank-deficient Grams in every layer
    pytest.param(
        dict(activation="relu", inputs=3, backward=True, width=2, input_dim=2),
        id="relu-B3-rank-deficient",
    ),
]


@pytest.mark.parametrize("kw", GRAM_CASES)
def test_exact_several_inputs_matches_cpu(kw):
    args = dict(depth=DEPTH, width=WIDTH, nets=NETS, method="exact", seed=13)
    args.update(kw)
    if isinstance(args["width"], list):
        args["depth"] = len(args["width"])
    gpu, cpu = both(**args)
    assert gpu.provenance["kernel"].startswith(f"cuda exact (Gram, {args['inputs']} inputs")
    assert cpu.provenance["kernel"] == "exact (Gram)"
    assert_same(gpu, cpu)


# one or three inputs only: each B compiles its own kernel, and the orthogonal
# backward kernel takes about a minute to compile
ORTHOGONAL_CASES = [
    pytest.param(dict(inputs=1, bias_std=0.1, histograms=5), id="B1-bias-hist"),
    # widening layers: the backward frame Psi_2 has n_out - rank > n_in - rank rows
    pytest.param(dict(inputs=3, width=sorted(WIDTHS[:3])), id="B3-widths"),
    # 3 inputs into 5 units: k = n_in - rank = 2 <= r_M, the core is K itself
    pytest.param(dict(inputs=3, width=5, input_dim=5), id="B3-small-k"),
]


@pytest.mark.parametrize("kw", ORTHOGONAL_CASES)
def test_exact_orthogonal_matches_cpu(kw):
    """Haar frames by Cholesky QR (twice) here, by Householder on the CPU."""
    from initsim import initializers

    args = dict(
        activation="tanh", init=initializers.get("orthogonal", gain=1.2), depth=3, width=WIDTH,
        input_dim=NIN, nets=NETS, method="exact", backward=True, input="gaussian", seed=19,
    )  # fmt: skip
    args.update(kw)
    if isinstance(args["width"], list):
        args["depth"] = len(args["width"])
        args["input_dim"] = min(args["width"])
    gpu, cpu = both(**args)
    assert gpu.provenance["kernel"].startswith("cuda exact (Gram, orthogonal")
    assert_same(gpu, cpu)


@pytest.mark.filterwarnings("ignore::RuntimeWarning" if SIM else "error::RuntimeWarning")
def test_exact_several_inputs_dead_and_overflowing_nets_like_cpu():
    """A zero input (rank-0 Grams, zero gradients) and exploding nets (NaN factors)."""
    # relu, 3 inputs, backward: the kernel relu-B3-rank-deficient compiled (GPU time)
    zero = np.zeros((3, NIN))
    gpu, cpu = both(
        activation="relu", depth=3, width=WIDTH, input_dim=NIN, input=zero, inputs=3,
        nets=NETS, method="exact", backward=True, seed=2,
    )  # fmt: skip
    assert np.all(cpu.q == 0.0)
    assert_same(gpu, cpu)
    gpu, cpu = both(
        activation="linear", init=_big_normal(), depth=4, width=WIDTH, inputs=2,
        nets=NETS, method="exact", backward=True, seed=1,
    )  # fmt: skip
    assert (cpu.first_nonfinite_layer > 0).all()
    assert_same(gpu, cpu)


# ---------------------------------------------------------------- dense sampler
DENSE_CASES = [
    pytest.param(dict(activation="relu", init="he_normal", backward=True), id="gauss-relu"),
    pytest.param(
        dict(
            activation="tanh",
            init="he_uniform",
            backward=True,
            bias_std=0.3,
            inputs=2,
            input="gaussian",
            histograms=5,
        ),
        id="uniform-tanh-B2",
    ),
    pytest.param(dict(activation="relu", init="identity", inputs=2), id="identity-B2"),
]


@pytest.mark.parametrize("kw", DENSE_CASES)
def test_dense_matches_cpu(kw):
    args = dict(depth=len(WIDTHS), width=WIDTHS, input_dim=NIN, nets=NETS, method="dense", seed=21)
    args.update(kw)
    gpu, cpu = both(**args)
    assert gpu.provenance["kernel"].startswith("cuda dense")
    assert_same(gpu, cpu)


def _stored_law_specs():
    from initsim.initializers import LawSpec

    return [
        # the truncated sampler's four methods: wide and narrow intervals about the
        # mean, an interval in the tail (close and far), and one below the mean
        LawSpec("truncated_gaussian", loc=0.1, scale=0.5, low=-1.0, high=1.2),
        LawSpec("truncated_gaussian", loc=0.0, scale=1.0, low=-0.5, high=0.7),
        LawSpec("truncated_gaussian", loc=0.0, scale=1.0, low=2.0, high=2.3),
        LawSpec("truncated_gaussian", loc=0.0, scale=1.0, low=1.5, high=9.0),
        LawSpec("truncated_gaussian", loc=1.0, scale=2.0, low=-9.0, high=-2.0),
        LawSpec("sparse", scale=0.7, sparsity=0.4),
        LawSpec("sparse", scale=0.7, sparsity=1.0),
        LawSpec("orthogonal", gain=1.5),
    ]


@pytest.mark.parametrize("spec_index", range(8))
def test_stored_weight_matrices_match_cpu(spec_index):
    """fill_kernel's matrices against the CPU's fill_weights, tall, square and wide."""
    from numba import cuda

    from initsim.engine import laws
    from initsim.gpu.streams import tables
    from initsim.gpu.weight_fill import fill_kernel, work_floats

    spec = _stored_law_specs()[spec_index]
    code, params = laws.encode(spec)
    widths = np.array([5, 9, 9, 4, 6] if SIM else [40, 97, 97, 33, 64])
    depth, nmax = len(widths) - 1, int(widths.max())
    keys = net_keys(root_key(17), 0, 2)
    wts = cuda.device_array((2, depth, nmax * nmax))
    work = cuda.device_array((2, depth, work_floats(code, nmax)))
    fill_kernel[1, 2 * depth](
        cuda.to_device(keys),
        cuda.to_device(widths),
        code,
        cuda.to_device(np.tile(params, (depth, 1))),
        *(cuda.to_device(a) for a in tables()),
        wts,
        work,
    )
    got = wts.copy_to_host()
    for net in range(2):
        for t in range(depth):
            shape = (int(widths[t + 1]), int(widths[t]))
            want = laws.sample_weights((code, params), keys[net], t, shape)
            w = got[net, t, : shape[0] * shape[1]].reshape(shape)
            if spec.law == "orthogonal":  # Householder here, LAPACK there: rounding apart
                np.testing.assert_allclose(w, want, rtol=0, atol=1e-13 * spec.gain)
            else:  # the same draws; only a fused multiply-add may move the last bit
                np.testing.assert_allclose(w, want, rtol=1e-15, atol=0)


@pytest.mark.parametrize(
    "init",
    [
        pytest.param(("orthogonal", {}), id="orthogonal"),
        pytest.param(("truncated_normal", {}), id="truncated"),
        pytest.param(("sparse", {"sparsity": 0.3}), id="sparse"),
    ],
)
def test_dense_stored_laws_match_cpu(init):
    from initsim import initializers

    ini = initializers.get(init[0], **init[1])
    gpu, cpu = both(
        activation="tanh", init=ini, depth=len(WIDTHS), width=WIDTHS, input_dim=NIN,
        inputs=2, input="gaussian", nets=NETS, method="dense", backward=True, seed=8,
    )  # fmt: skip
    assert gpu.provenance["kernel"].startswith("cuda dense (stored weights")
    assert_same(gpu, cpu)


def test_dense_constant_law_matches_cpu():
    from initsim import initializers

    init = initializers.get("constant", value=1.0 / math.sqrt(NIN))
    # relu with two inputs: the kernel the identity case compiled (compilation costs GPU time)
    gpu, cpu = both(
        activation="relu",
        init=init,
        depth=2,
        width=WIDTH,
        input_dim=NIN,
        inputs=2,
        input="gaussian",
        nets=2,
        method="dense",
    )
    assert_same(gpu, cpu)


# ---------------------------------------------------------------- layers wider than shared memory
@pytest.mark.parametrize(
    ("kw", "wide"),
    [
        pytest.param(dict(method="exact", backward=True), 6000, id="exact"),
        pytest.param(dict(method="exact", inputs=3, backward=True), 3000, id="gram"),
        pytest.param(dict(method="dense", inputs=2, backward=True), 3000, id="dense"),
        pytest.param(dict(method="dense", init="orthogonal"), None, id="dense-stored"),
    ],
)
def test_buffers_too_big_for_shared_memory_go_to_global_memory(kw, wide, monkeypatch):
    """Each kernel's global-buffer variant: real wide layers on a GPU (where cheap enough),
    forced by a tiny shared-memory budget in the simulator."""
    from initsim.gpu import driver

    width = WIDTH
    if SIM or wide is None:
        monkeypatch.setattr(driver, "_SHARED_LIMIT", 256 * 16)  # less than the static part
    else:
        width = wide  # more than 48 KiB of per-unit buffers per block
    args = dict(activation="tanh", depth=3, width=width, nets=3, input="gaussian", seed=6)
    args.update(kw)
    gpu, cpu = both(**args)
    assert "global buffers" in gpu.provenance["kernel"]
    assert_same(gpu, cpu)


# ---------------------------------------------------------------- what the GPU refuses
@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(method="exact", inputs=17), "inputs=17"),
    ],
)
def test_unsupported_on_gpu_names_the_parameter(kw, match):
    from initsim.simulation import simulate

    args = dict(depth=2, width=4, nets=1)
    args.update(kw)
    with pytest.raises(ValueError, match=match) as info:
        simulate(device="cuda", **args)
    assert "device='cpu'" in str(info.value)


def test_auto_on_gpu_runs_the_exact_sampler_up_to_16_inputs():
    from initsim.simulation import simulate

    # 3 inputs, relu, forward: the kernel of relu-B3-forward (compilation costs GPU time)
    for inputs, method in ((3, "exact"), (17, "dense")):
        kw = dict(depth=2, width=8, nets=1, inputs=inputs, input="gaussian")
        if inputs <= 16:
            assert simulate(**kw).provenance["method"] == method  # the CPU's choice
        assert simulate(device="cuda", **kw).provenance["method"] == method
    orth = simulate(device="cuda", init="orthogonal", depth=2, width=8, nets=1)
    assert orth.provenance["method"] == "exact"
