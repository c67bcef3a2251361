"""Host side of the GPU backend: availability, validation, launches.

:func:`make_kernel` is what :func:`initsim.simulate` calls for
``device="cuda"``: it checks that this run can go to the GPU (raising a
``ValueError`` that names the parameter or law when it cannot, and a
``RuntimeError`` when there is no usable GPU), compiles the kernel once per
process and returns a callable with the CPU kernels' interface: it takes a
chunk of net keys and fills that chunk's ``stats``, ``first_nonfinite`` and
histogram arrays.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from initsim.engine.laws import LAW_CODES
from initsim.gpu import CUDA_HELP, EXACT_MAX_INPUTS

if TYPE_CHECKING:  # pragma: no cover
    from initsim.plan import RunPlan

__all__ = [
    "DENSE_LAWS",
    "GpuKernel",
    "WeightFill",
    "cuda_available",
    "device_name",
    "make_kernel",
    "require_cuda",
]

#: Weight laws the GPU dense sampler generates: every law of the CPU's
#: (:data:`initsim.engine.laws.LAW_CODES`), entry by entry from the counters or
#: materialised first by :mod:`initsim.gpu.weight_fill`.
DENSE_LAWS = tuple(LAW_CODES)
#: Shared memory a block may use without an opt-in (bytes).
_SHARED_LIMIT = 48 * 1024
#: Bound on a launch's global scratch (the dense kernel's stored pre-activations,
#: the Gram kernel's per-layer factors), which caps the nets per launch.
_SCRATCH_BYTES = 1 << 30
#: The same bound when the launch also holds materialised weight matrices.
_WEIGHTS_BYTES = 8 << 30


def cuda_available() -> bool:
    """Return whether numba-cuda is importable and sees a GPU (or the simulator).

    Returns
    -------
    bool
        True when ``device="cuda"`` can run here.
    """
    try:
        from numba import cuda
    except Exception:  # numba without a CUDA target, broken toolkit
        return False
    try:
        return bool(cuda.is_available())
    except Exception:
        return False


def require_cuda() -> None:
    """Raise ``RuntimeError`` (naming ``device``) unless a GPU can be used.

    Raises
    ------
    RuntimeError
        When numba-cuda or a GPU is missing.
    """
    if not cuda_available():
        raise RuntimeError(CUDA_HELP)


def device_name() -> str:
    """Return the name of the current CUDA device ("simulator" under CUDASIM).

    Returns
    -------
    str
        The device name.
    """
    from numba import config, cuda

    if config.ENABLE_CUDASIM:
        return "CUDA simulator"
    name = cuda.get_current_device().name
    return name.decode() if isinstance(name, bytes) else str(name)


def _min_block() -> int:
    """Smallest default block: a warp on a GPU; 4 threads in the simulator.

    The simulator runs each thread as a Python thread, so small blocks keep
    it fast (and make threads own several units, which tests that path).
    """
    from numba import config

    return 4 if config.ENABLE_CUDASIM else 32


def _pow2_block(units: int, lo: int, hi: int) -> int:
    b = 1 << max(0, math.ceil(math.log2(max(1, units))))
    return int(min(hi, max(lo, b)))


def _tables() -> tuple[Any, Any, Any]:
    from numba import cuda

    from initsim.gpu.streams import tables

    return tuple(cuda.to_device(a) for a in tables())  # type: ignore[return-value]


def make_kernel(
    plan: RunPlan,
    *,
    block: int | None = None,
    shuffle: bool | None = None,
    max_registers: int | None = None,
) -> tuple[GpuKernel, str]:
    """Bind a planned run to its GPU kernel: ``(kernel(keys, out), kernel name)``.

    Parameters
    ----------
    plan : initsim.plan.RunPlan
        The validated run (:func:`initsim.plan.make_plan` with ``device="cuda"``).
    block : int, optional
        Threads per block (a power of two); default from the widths.
    shuffle : bool, optional
        Warp-shuffle reductions; default: on a real GPU, not in the simulator.
    max_registers : int, optional
        Register cap per thread (tuning; default none).

    Returns
    -------
    kernel : callable
        ``kernel(keys, (stats, first_nonfinite, hist_h, hist_a))`` fills the
        chunk's arrays (histograms summed over the chunk into row 0).
    name : str
        Kernel name for the provenance.

    Raises
    ------
    ValueError
        When this configuration has no GPU kernel (the message names the
        parameter or the law and suggests ``device='cpu'``).
    RuntimeError
        When numba-cuda or a GPU is unavailable.
    """
    codes, params = plan.law_table
    h_bins, a_bins, _ = plan.histogram_bins()
    return _make_kernel(
        method=plan.method,
        law=plan.law,
        widths=plan.widths,
        scale=plan.scales,
        law_code=int(codes[0]),
        law_params=params,
        bias_std=plan.bias_std,
        code=plan.activation.code,
        param=plan.activation.param,
        input_mode=plan.input_code,
        given=plan.given,
        inputs=plan.inputs,
        backward=plan.backward,
        saturation_threshold=plan.saturation_threshold,
        hedges=h_bins,
        aedges=a_bins,
        block=block,
        shuffle=shuffle,
        max_registers=max_registers,
    )


def _make_kernel(
    *,
    method: str,
    law: str,
    widths: np.ndarray,
    scale: np.ndarray,
    law_code: int,
    law_params: np.ndarray | None,
    bias_std: float,
    code: int,
    param: float,
    input_mode: int,
    given: np.ndarray,
    inputs: int,
    backward: bool,
    saturation_threshold: float,
    hedges: np.ndarray,
    aedges: np.ndarray,
    block: int | None = None,
    shuffle: bool | None = None,
    max_registers: int | None = None,
) -> tuple[GpuKernel, str]:
    """Validate a GPU run and bind its kernel, from the plan's fields as flat arguments.

    ``method``, ``law``, ``widths``, ``scale`` (the exact samplers' per-layer
    std or orthogonal gain), ``law_code``/``law_params`` (the dense sampler's
    encoded law), the activation's ``code``/``param``, the input (``input_mode``,
    unit-major ``given``), ``inputs``, ``backward``, ``saturation_threshold`` and
    the histogram ranges ``hedges``/``aedges`` (``lo, hi, nbins + 2``) are those
    of :class:`initsim.plan.RunPlan`; ``block``, ``shuffle``, ``max_registers``,
    the return value and the errors are :func:`make_kernel`'s.
    """
    depth = int(widths.shape[0] - 1)
    nmax = int(widths.max())
    if block is not None and (block < 1 or block & (block - 1) or block > 1024):
        raise ValueError(f"block must be a power of two in [1, 1024]; got {block}")
    if method == "exact":
        if law not in ("gaussian", "orthogonal"):
            raise ValueError(
                f"law {law!r}: the exact sampler takes Gaussian and orthogonal weights; "
                "use method='dense'"
            )
        if inputs > 1 or law == "orthogonal":
            return _gram_kernel(
                widths, scale, bias_std, code, param, input_mode, given, inputs, backward,
                saturation_threshold, hedges, aedges, block, shuffle, max_registers,
                law == "orthogonal",
            )  # fmt: skip
        from initsim.gpu.exact_kernels import shared_bytes

        # about eight unit pairs per thread: fewer warps share each block's reductions
        # (H100, width 512: block 32 ran 1.2x faster than 64, 1.6x faster than 128)
        blk = block or _pow2_block((nmax + 1) // 16, _min_block(), 128)
        dyn, spill = _placement(shared_bytes(nmax, depth, backward), blk)
        require_cuda()
        shfl = _shuffle(shuffle, blk)
        kern = _compile("exact", blk, code, backward, shfl, max_registers, 1, spill > 0)
        head = _exact_head(
            widths, scale, bias_std, param, input_mode, given, saturation_threshold,
            hedges, aedges,
        )  # fmt: skip
        name = f"cuda exact (single input, block {blk}{_tags(shfl, spill)})"
        return GpuKernel(kern, head, blk, dyn, spill=spill), name
    if law not in DENSE_LAWS:
        raise ValueError(
            f"law {law!r}: device='cuda' has no dense kernel for it; GPU laws are "
            f"{', '.join(DENSE_LAWS)}. Use device='cpu'"
        )
    from initsim.gpu.dense_kernels import shared_bytes as dense_shared

    blk = block or _pow2_block(nmax, _min_block(), 256)
    dyn, spill = _placement(dense_shared(nmax, inputs), blk)
    require_cuda()
    assert law_params is not None
    shfl = _shuffle(shuffle, blk)
    kern = _compile("dense", blk, code, backward, shfl, max_registers, inputs, spill > 0)
    d_widths, d_params, d_given, d_he, d_ae = _device_arrays(
        widths.astype(np.int64),
        np.asarray(law_params, dtype=np.float64),
        _nonempty(given),
        hedges,
        aedges,
    )
    head = (
        d_widths,
        int(law_code),
        d_params,
        float(bias_std),
        float(param),
        int(input_mode),
        d_given,
        float(saturation_threshold),
        d_he,
        d_ae,
    )
    scratch = depth * nmax * inputs if backward else 0
    from initsim.gpu.weight_fill import STORED_LAWS, work_floats

    fill = None
    if law_code in STORED_LAWS:
        fill = WeightFill(int(law_code), d_widths, d_params, nmax, work_floats(law_code, nmax))
    how = "stored weights, " if fill else ""
    name = f"cuda dense ({how}block {blk}{_tags(shfl, spill)})"
    return GpuKernel(kern, head, blk, dyn, scratch, fill, spill), name


def _exact_head(
    widths: np.ndarray,
    scale: np.ndarray,
    bias_std: float,
    param: float,
    input_mode: int,
    given: np.ndarray,
    saturation_threshold: float,
    hedges: np.ndarray,
    aedges: np.ndarray,
) -> tuple[Any, ...]:
    """Return the exact kernels' leading arguments after the keys (device arrays, scalars)."""
    d_widths, d_wstd, d_given, d_he, d_ae = _device_arrays(
        widths.astype(np.int64),
        scale.astype(np.float64),
        _nonempty(given),
        hedges,
        aedges,
    )
    return (
        d_widths,
        d_wstd,
        float(bias_std),
        float(param),
        int(input_mode),
        d_given,
        float(saturation_threshold),
        d_he,
        d_ae,
    )


def _gram_kernel(
    widths: np.ndarray,
    scale: np.ndarray,
    bias_std: float,
    code: int,
    param: float,
    input_mode: int,
    given: np.ndarray,
    inputs: int,
    backward: bool,
    saturation_threshold: float,
    hedges: np.ndarray,
    aedges: np.ndarray,
    block: int | None,
    shuffle: bool | None,
    max_registers: int | None,
    orthogonal: bool,
) -> tuple[GpuKernel, str]:
    """Validate and bind the exact Gram kernel (``inputs > 1`` or orthogonal weights).

    For orthogonal weights ``scale`` holds the gains; :func:`initsim.simulate`
    has already sent orthogonal nets with a narrowing layer and ``backward=True``
    to the dense sampler (the exact backward pass needs ``n_out >= n_in``).
    """
    from initsim.gpu.gram_kernels import scratch_floats, shared_bytes

    depth = int(widths.shape[0] - 1)
    nmax = int(widths.max())
    if inputs > EXACT_MAX_INPUTS:
        raise ValueError(
            f"inputs={inputs}: device='cuda' runs the exact sampler with at most "
            f"{EXACT_MAX_INPUTS} inputs per net; use method='dense' or device='cpu'"
        )
    blk = block or _pow2_block((nmax + 1) // 8, _min_block(), 128)
    dyn, spill = _placement(shared_bytes(nmax, inputs), blk)
    require_cuda()
    shfl = _shuffle(shuffle, blk)
    kind = "gram-orthogonal" if orthogonal else "gram"
    kern = _compile(kind, blk, code, backward, shfl, max_registers, inputs, spill > 0)
    head = _exact_head(
        widths, scale, bias_std, param, input_mode, given, saturation_threshold, hedges, aedges
    )
    scratch = scratch_floats(depth, inputs) if backward else 0
    law = "orthogonal, " if orthogonal else ""
    name = f"cuda exact (Gram, {law}{inputs} inputs, block {blk}{_tags(shfl, spill)})"
    return GpuKernel(kern, head, blk, dyn, scratch, spill=spill), name


def _placement(nbytes: int, blk: int) -> tuple[int, int]:
    """Place a block's per-unit buffers: ``(shared bytes, 0)`` if they fit, else ``(0, floats)``.

    The static shared memory (ziggurat tables, reduction rows) always stays;
    buffers that would push a block past the 48 KiB a launch gets without an
    opt-in go to a global array instead (the kernel's ``spill`` variant).
    """
    static = 256 * 16 + 5 * 8 * blk
    if nbytes + static <= _SHARED_LIMIT:
        return nbytes, 0
    return 0, (nbytes + 7) // 8


def _tags(shfl: bool, spill: int) -> str:
    """Kernel-name suffix: the reduction kind and where the buffers live."""
    return (", shuffle" if shfl else "") + (", global buffers" if spill else "")


def _shuffle(shuffle: bool | None, blk: int) -> bool:
    from numba import config

    if shuffle is None:
        shuffle = not config.ENABLE_CUDASIM
    if shuffle and config.ENABLE_CUDASIM:
        raise ValueError("shuffle=True: the CUDA simulator has no warp shuffles")
    if shuffle and blk % 32:
        raise ValueError(f"shuffle=True needs a block of at least 32 threads; got block={blk}")
    return bool(shuffle)


def _compile(
    kind: str,
    blk: int,
    code: int,
    backward: bool,
    shfl: bool,
    max_registers: int | None,
    inputs: int = 1,
    spill: bool = False,
) -> Any:
    args = (int(code), bool(backward), shfl, max_registers, bool(spill))
    if kind == "exact":
        from initsim.gpu.exact_kernels import exact_kernel

        return exact_kernel(blk, *args)
    if kind.startswith("gram"):
        from initsim.gpu.gram_kernels import gram_kernel

        return gram_kernel(int(inputs), blk, *args, orthogonal=kind == "gram-orthogonal")
    from initsim.gpu.dense_kernels import dense_kernel

    return dense_kernel(int(inputs), blk, *args)


class WeightFill:
    """Materialise one launch's weight matrices on the device (the stored laws).

    The laws are :data:`initsim.gpu.weight_fill.STORED_LAWS`.

    Parameters
    ----------
    law_code : int
        The encoded law (:func:`initsim.engine.laws.encode`).
    d_widths, d_params : device arrays
        Layer widths and per-layer law parameters.
    nmax : int
        Largest width: matrices are stored ``nmax * nmax`` apart.
    work : int
        Floats of work space per matrix
        (:func:`initsim.gpu.weight_fill.work_floats`).
    """

    def __init__(self, law_code: int, d_widths: Any, d_params: Any, nmax: int, work: int):
        self.law_code = law_code
        self.d_widths = d_widths
        self.d_params = d_params
        self.nmax = nmax
        self.work = work

    def floats_per_net(self, depth: int) -> int:
        """Device floats one net's matrices and work space take (for batching)."""
        return depth * (self.nmax * self.nmax + self.work)

    def run(self, d_keys: Any, depth: int, tables: tuple[Any, ...]) -> Any:
        """Fill and return the ``(nets, depth, nmax * nmax)`` weights of these nets."""
        from numba import cuda

        from initsim.gpu.weight_fill import fill_kernel

        nets = d_keys.shape[0]
        wts = cuda.device_array((nets, depth, self.nmax * self.nmax))
        work = cuda.device_array((nets, depth, self.work))
        threads = _min_block() * 2
        grid = (nets * depth + threads - 1) // threads
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Grid size \d+ will likely")
            fill_kernel[grid, threads](
                d_keys, self.d_widths, self.law_code, self.d_params, *tables, wts, work
            )
        return wts


class GpuKernel:
    """A compiled GPU kernel bound to one run's constants, with the CPU kernels' interface.

    Parameters
    ----------
    kern : numba.cuda dispatcher
        From :func:`initsim.gpu.exact_kernels.exact_kernel`,
        :func:`initsim.gpu.gram_kernels.gram_kernel` or
        :func:`initsim.gpu.dense_kernels.dense_kernel`.
    head : tuple
        The kernel's leading arguments after the keys (host scalars and
        device arrays), ending with the histogram edges.
    block, shared : int
        Threads per block and dynamic shared memory (bytes).
    scratch : int
        Floats of global scratch per net (dense: stored pre-activations,
        Gram: each layer's factors, for the backward pass); 0 for none.
    fill : WeightFill or None
        How to materialise the weights before each launch, or None.
    spill : int
        Floats of per-unit buffers per block kept in a global array because
        they do not fit in shared memory; 0 when they are in shared memory.

    Notes
    -----
    Every kernel ends with the same three arguments after the histograms:
    the scratch ``(nets, depth, scratch / depth)``, the weights ``(nets,
    depth, nmax^2)`` and the spill buffer ``(nets, spill)``; a kernel or a
    run that needs one of them not gets a small placeholder.
    """

    def __init__(
        self,
        kern: Any,
        head: tuple[Any, ...],
        block: int,
        shared: int,
        scratch: int = 0,
        fill: WeightFill | None = None,
        spill: int = 0,
    ):
        self.kern = kern
        self.head = head
        self.block = block
        self.shared = shared
        self.scratch = scratch
        self.fill = fill
        self.spill = spill
        self.tables = _tables()
        per_net = 8 * (scratch + spill)
        self.batch = max(1, _SCRATCH_BYTES // per_net) if per_net else 1 << 30
        if fill is not None:
            depth = int(head[0].shape[0]) - 1
            self.batch = max(1, _WEIGHTS_BYTES // (per_net + 8 * fill.floats_per_net(depth)))

    def launch(self, d_keys: Any, d_stats: Any, d_first: Any, d_hh: Any, d_ha: Any) -> None:
        """Run on device arrays (no transfers; asynchronous; at most ``self.batch`` nets).

        Parameters
        ----------
        d_keys : device array of uint64 (nets, 2)
            Net keys.
        d_stats : device array of float64 (nets, depth, N_STATS)
            Zero-filled; receives the summaries.
        d_first : device array of int64 (nets,)
            Receives the first non-finite layer.
        d_hh, d_ha : device arrays of int64 (depth, nbins + 2)
            Histogram counts, added to (any shape when there are none).
        """
        from numba import cuda

        nets = d_keys.shape[0]
        depth = d_stats.shape[1]
        unused = cuda.device_array((1, 1, 1))
        per_layer = self.scratch // depth
        scratch = cuda.device_array((nets, depth, per_layer)) if self.scratch else unused
        weights = self.fill.run(d_keys, depth, self.tables) if self.fill else unused
        spill = cuda.device_array((nets, self.spill) if self.spill else (1, 1))
        with warnings.catch_warnings():
            # a small number of nets is a legitimate (if wasteful) launch
            warnings.filterwarnings("ignore", message=r"Grid size \d+ will likely")
            self.kern[nets, self.block, 0, self.shared](
                d_keys, *self.head, *self.tables, d_stats, d_first, d_hh, d_ha, scratch, weights,
                spill,
            )  # fmt: skip

    def __call__(self, keys: np.ndarray, out: tuple[np.ndarray, ...]) -> None:
        """Fill a chunk's ``(stats, first_nonfinite, hist_h, hist_a)`` from its keys.

        Parameters
        ----------
        keys : numpy.ndarray of uint64 (nets, 2)
            The chunk's net keys.
        out : tuple of numpy.ndarray
            ``stats`` (nets, depth, N_STATS), ``first`` (nets,), and histogram
            arrays (nets, depth, nbins + 2); the histograms summed over the
            chunk are added to row 0.
        """
        from numba import cuda

        stats, first, hh, ha = out
        nets = keys.shape[0]
        depth, nb = stats.shape[1], hh.shape[2]
        # one unused column when there are no histograms: no zero-size device arrays
        d_hh = cuda.to_device(np.zeros((depth, max(nb, 1)), dtype=np.int64))
        d_ha = cuda.to_device(np.zeros((depth, max(nb, 1)), dtype=np.int64))
        for lo in range(0, nets, self.batch):
            hi = min(nets, lo + self.batch)
            d_keys = cuda.to_device(np.ascontiguousarray(keys[lo:hi], dtype=np.uint64))
            d_stats = cuda.to_device(np.zeros((hi - lo, depth, stats.shape[2])))
            d_first = cuda.to_device(np.zeros(hi - lo, dtype=np.int64))
            self.launch(d_keys, d_stats, d_first, d_hh, d_ha)
            stats[lo:hi] = d_stats.copy_to_host()
            first[lo:hi] = d_first.copy_to_host()
        if nb:
            hh[0] += d_hh.copy_to_host()
            ha[0] += d_ha.copy_to_host()


def _nonempty(a: np.ndarray) -> np.ndarray:
    """Return ``a`` flat, float64, with at least one element (no zero-size device arrays)."""
    flat = np.asarray(a, dtype=np.float64).reshape(-1)
    return flat if flat.size else np.zeros(1)


def _device_arrays(*arrays: np.ndarray) -> tuple[Any, ...]:
    from numba import cuda

    return tuple(cuda.to_device(np.ascontiguousarray(a)) for a in arrays)
