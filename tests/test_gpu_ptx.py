"""Every GPU kernel compiles for a real GPU (PTX for compute capability 9.0), without one.

The CUDA simulator runs the kernels' Python source, so it cannot see what only
the CUDA target rejects or types differently: a numpy function without a CUDA
implementation (``np.empty`` inside a kernel), or ``math.ceil``, which is
float64 there and an int on the CPU. NVVM and NVRTC, from the
``nvidia-cuda-nvcc-cu12`` and ``nvidia-cuda-nvrtc-cu12`` wheels of the test
extra, compile PTX with no driver and no GPU. numba-cuda asks the current
device for its compute capability when it compiles the device functions a
kernel calls; here the test answers for it (9.0, an H100). Where the wheel's
``ptxas`` is there too, the PTX is assembled for sm_90 as well (register and
shared-memory limits). Skipped where the CUDA compilers cannot be loaded.
"""

from __future__ import annotations

import subprocess
import types as pytypes
import warnings
from pathlib import Path

import pytest

CC = (9, 0)


def _compiler_missing() -> str | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from numba import cuda

            def probe(x):
                x[0] = 1.0

            cuda.compile_ptx(probe, "void(float64[:])", cc=CC)
        except Exception as exc:  # no numba-cuda, NVVM or NVRTC
            return f"cannot compile PTX here ({type(exc).__name__}: {exc})"
    return None


def _ptxas() -> Path | None:
    try:
        import nvidia.cuda_nvcc as nvcc
    except ImportError:
        return None
    exe = Path(next(iter(nvcc.__path__))) / "bin" / "ptxas"
    return exe if exe.is_file() else None


_MISSING = _compiler_missing()
pytestmark = [
    pytest.mark.skipif(_MISSING is not None, reason=_MISSING or ""),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


@pytest.fixture
def as_if_on_a_gpu(monkeypatch):
    """Device functions compile for the compute capability of a pretend current device."""
    import numba.cuda.dispatcher as dispatcher

    monkeypatch.setattr(
        dispatcher, "get_current_device", lambda: pytypes.SimpleNamespace(compute_capability=CC)
    )


def _signatures():
    from numba import types

    def a(dtype, ndim):
        return types.Array(dtype, ndim, "C")

    f8, i8, u8 = types.float64, types.int64, types.uint64
    tail = (a(u8, 1), a(f8, 1), a(f8, 1), a(f8, 3), a(i8, 1), a(i8, 2), a(i8, 2))
    edges = (a(f8, 1), f8, a(f8, 1), a(f8, 1))  # given, saturation threshold, histogram edges
    exact = (a(u8, 2), a(i8, 1), a(f8, 1), f8, f8, i8, *edges, *tail)
    dense = (a(u8, 2), a(i8, 1), i8, a(f8, 2), f8, f8, i8, *edges, *tail, a(f8, 3), a(f8, 3))
    tables = (a(u8, 1), a(f8, 1), a(f8, 1))
    return {
        # scratch, weights, spill buffer: every kernel's trailing arguments
        "exact": (*exact, a(f8, 3), a(f8, 3), a(f8, 2)),
        "gram": (*exact, a(f8, 3), a(f8, 3), a(f8, 2)),
        "dense": (*dense, a(f8, 2)),
        "fill": (a(u8, 2), a(i8, 1), i8, a(f8, 2), *tables, a(f8, 3), a(f8, 3)),
        "psd": (a(f8, 3), a(f8, 3), a(f8, 3), a(i8, 1), a(f8, 3), a(f8, 3), a(f8, 2)),
    }


def _kernel(kind: str, backward: bool, spill: bool, orthogonal: bool):
    from initsim.activations import TANH
    from initsim.gpu import dense_kernels, exact_kernels, gram_kernels, weight_fill

    if kind == "exact":
        return exact_kernels.exact_kernel(32, TANH, backward, True, None, spill)
    if kind == "gram":
        return gram_kernels.gram_kernel(2, 32, TANH, backward, True, None, spill, orthogonal)
    if kind == "dense":
        return dense_kernels.dense_kernel(2, 128, TANH, backward, True, None, spill)
    if kind == "fill":
        return weight_fill.fill_kernel
    return gram_kernels.psd_factor_kernel


CASES = [
    pytest.param("exact", False, False, False, id="exact-forward"),
    pytest.param("exact", True, True, False, id="exact-backward-global-buffers"),
    pytest.param("gram", False, False, False, id="gram-forward"),
    pytest.param("gram", True, True, False, id="gram-backward-global-buffers"),
    # the heaviest compile (about 80 s on two cores): in the slow suite, which CI also runs
    pytest.param("gram", True, False, True, id="gram-orthogonal-backward", marks=pytest.mark.slow),
    pytest.param("dense", True, False, False, id="dense-backward"),
    pytest.param("dense", False, True, False, id="dense-forward-global-buffers"),
    pytest.param("fill", False, False, False, id="weight-fill"),
    pytest.param("psd", False, False, False, id="psd-factor"),
]


@pytest.mark.parametrize(("kind", "backward", "spill", "orthogonal"), CASES)
def test_kernel_compiles_to_ptx(kind, backward, spill, orthogonal, as_if_on_a_gpu, tmp_path):
    from numba import cuda

    kern = _kernel(kind, backward, spill, orthogonal)
    ptx, _ = cuda.compile_ptx(kern.py_func, _signatures()[kind], cc=CC)
    assert ".visible .entry" in ptx and f".target sm_{CC[0]}{CC[1]}" in ptx
    ptxas = _ptxas()
    if ptxas is not None:
        src = tmp_path / "kernel.ptx"
        src.write_text(ptx)
        arch = f"-arch=sm_{CC[0]}{CC[1]}"
        cmd = [str(ptxas), arch, "-v", str(src), "-o", str(tmp_path / "kernel.cubin")]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "Used" in done.stderr and "registers" in done.stderr
