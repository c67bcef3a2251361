"""``simulate()``: plan a run, bind its kernel, run it chunk by chunk, wrap the result.

This is the layer between users and kernels: kernels never validate, so every
check happens in :func:`initsim.plan.make_plan`, before anything is allocated
or compiled.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from initsim import activations as _activations
from initsim import keywords
from initsim._validate import check_bool, check_choice
from initsim.plan import DEFAULT_SATURATION_THRESHOLD, RunPlan, make_plan
from initsim.progress import Progress
from initsim.provenance import (
    config_hash,
    numba_threads,
    seed_record,
    threading_layer,
    versions,
)
from initsim.result import ResidualResult, SimulationResult
from initsim.rng import net_keys, root_key
from initsim.seeding import SeedLike, as_seed_sequence

__all__ = ["DEFAULT_SATURATION_THRESHOLD", "simulate", "versions"]


def simulate(
    *,
    activation: str | _activations.Activation = "relu",
    init: str | Any = "he_normal",
    depth: int = 10,
    width: int | Sequence[int] = 256,
    input_dim: int | None = None,
    bias_std: float = 0.0,
    nets: int = 100,
    inputs: int = 1,
    input: str | np.ndarray = "sphere",
    method: str = "auto",
    backward: bool = False,
    seed: SeedLike = 0,
    threads: int | None = None,
    histograms: int | dict[str, Any] | None = None,
    saturation_threshold: float = DEFAULT_SATURATION_THRESHOLD,
    chunk_size: int | None = None,
    progress: bool | None = None,
    device: str = "cpu",
    arch: str = "mlp",
    alpha: float | Sequence[float] | None = None,
    skip: float | Sequence[float] | None = None,
    norm: str | None = None,
    norm_kind: str = "layernorm",
    branch_layers: int = 2,
    width_branch: int | None = None,
    eps: float = 1e-5,
    scheme: str | None = None,
) -> SimulationResult | ResidualResult:
    """Propagate inputs (and optionally gradients) through many random deep nets.

    Net ``k`` computes ``h^l = W^l x^{l-1} + b^l``, ``x^l = phi(h^l)`` for
    ``l = 1..depth`` with fresh random weights drawn from ``init``. Every net
    has its own random stream keyed by ``(seed, k)``, so results are
    bit-identical for any ``threads`` and ``chunk_size``.

    Parameters
    ----------
    activation : str or Activation
        Name from :func:`initsim.activations.names` (e.g. "relu", "tanh").
    init : str or initializer
        Name from :func:`initsim.initializers.names` or an initializer object
        (e.g. ``initializers.get("normal", std=0.01)``).
    depth : int
        Number of hidden layers (>= 1).
    width : int or sequence of int
        Width of every hidden layer, or one width per hidden layer.
    input_dim : int, optional
        Input dimension ``n_0``; defaults to the first hidden width.
    bias_std : float
        Standard deviation of the iid Gaussian biases (``sigma_b``); 0 for none.
    nets : int
        Number of independent random nets.
    inputs : int
        ``B``, inputs per net (all propagated through the same weights).
    input : {"sphere", "gaussian"} or array
        "sphere": each input uniform on the sphere of radius ``sqrt(n_0)``
        (``q0 = 1`` exactly); "gaussian": iid N(0, 1) entries, drawn per
        net; an array of shape (input_dim,) or (inputs, input_dim): the same
        inputs for every net.
    method : {"auto", "exact", "dense"}
        "exact": the Gaussian-conditioning sampler (zero-mean Gaussian
        weights, ``inputs=1``), O(n) per layer; "dense": materialise every
        weight matrix (any law); "auto": exact whenever it applies.
    backward : bool
        Also back-propagate a gradient from a random output direction and
        record ``grad_sq``.
    seed : int, SeedSequence, Generator or None
        Seed of the whole run (recorded in the provenance).
    threads : int, optional
        Numba threads (default: all available).
    histograms : int or dict, optional
        Number of bins, or ``{"bins", "h_range", "act_range"}``, for per-layer
        histograms of pre-activations and activations summed over nets.
    saturation_threshold : float
        ``|phi'(h)|`` below this counts as saturated.
    chunk_size : int, optional
        Nets per kernel call (progress granularity); does not change results.
    progress : bool, optional
        Show a progress bar on stderr; default: when stderr is a terminal and
        the run takes more than two seconds.
    device : {"cpu", "cuda"}
        Where the kernels run. "cuda" needs the ``cuda`` extra (numba-cuda)
        and an NVIDIA GPU; it draws the same random numbers, so results equal
        the CPU's to float64 rounding (summation order, libm ulps). It runs
        both samplers for every law the CPU runs them for (the exact one with
        up to 16 inputs per net); ``threads`` does not apply.

    arch : {"mlp", "residual"}
        "mlp" (default): the plain net above. "residual": ``depth`` residual
        blocks on a stream of width ``width`` (:mod:`initsim.residual`):
        ``x^{l+1} = skip x^l + alpha F(x^l)`` with a branch ``F`` of
        ``branch_layers`` dense layers, normalization before the branch
        (``norm="pre"``) or after the sum (``"post"``); ``init`` may then be
        a list of one initializer per branch layer. The remaining keywords
        apply to residual nets only.
    alpha, skip : float or sequence of float, optional
        Branch and skip multipliers (one value, or one per block; default 1).
    norm : {"none", "pre", "post"}, optional
        Where the normalization sits (default "none").
    norm_kind : {"layernorm", "rmsnorm", "batchnorm"}
        The normalization (BatchNorm over the ``inputs`` of a net, >= 2).
    branch_layers : int
        Dense layers per branch (1: the reduced block ``W phi(u)``).
    width_branch : int, optional
        Hidden width of a branch (default ``width``).
    eps : float
        The normalization's epsilon (PyTorch's 1e-5).
    scheme : str, optional
        A named scheme (:data:`initsim.residual.SCHEMES`: skipinit, rezero,
        fixup, layerscale, gpt2, deepnorm, nf, stable) that sets the branch
        initializers, alpha, skip and norm as its paper does.

    Returns
    -------
    SimulationResult or ResidualResult
        Per-net, per-layer (per-block) summaries and provenance.

    Notes
    -----
    The run is planned once (:func:`initsim.plan.make_plan`: validation, the
    weight law of every layer, the sampler and why), bound to a kernel
    (:func:`initsim.engine.bind.bind_cpu` or
    :func:`initsim.gpu.driver.make_kernel`) and run chunk by chunk.

    Raises
    ------
    ValueError
        For any invalid parameter; the message names it and the valid range.
    initsim.plan.RunTooLargeError
        (a ValueError) When the run's estimated memory
        (:attr:`initsim.plan.RunPlan.memory_bytes`: the per-net results,
        ``nets x depth`` summaries, plus each running net's kernel buffers)
        exceeds the memory available (:func:`initsim.plan.available_memory`);
        the message says how much it needs and what to reduce.
    RuntimeError
        For ``device="cuda"`` when numba-cuda or a GPU is unavailable.

    Examples
    --------
    >>> import initsim
    >>> r = initsim.simulate(activation="relu", init="he_normal", depth=20, width=256,
    ...                      nets=200, seed=0)
    >>> r.layer_mean("q").shape
    (20,)
    """
    progress = check_bool("progress", progress, allow_none=True)
    residual = {
        "alpha": alpha,
        "skip": skip,
        "norm": norm,
        "norm_kind": norm_kind,
        "branch_layers": branch_layers,
        "width_branch": width_branch,
        "eps": eps,
        "scheme": scheme,
    }
    net = {
        "activation": activation,
        "init": init,
        "depth": depth,
        "width": width,
        "input_dim": input_dim,
        "bias_std": bias_std,
        "nets": nets,
        "inputs": inputs,
        "input": input,
        "method": method,
        "backward": backward,
        "threads": threads,
        "histograms": histograms,
        "saturation_threshold": saturation_threshold,
        "chunk_size": chunk_size,
        "device": device,
    }
    check_choice("arch", arch, keywords.ARCHS)
    if arch == "residual":
        from initsim.residual import make_residual_plan, run_residual

        return run_residual(make_residual_plan(**net, **residual), seed, progress)
    for key, value in residual.items():
        if value != keywords.SIMULATE[key].default:
            raise ValueError(f"{key} applies to arch='residual' only; got {key}={value!r}")
    plan = make_plan(**net)
    ss = as_seed_sequence(seed)
    root = root_key(ss)
    if plan.device == "cuda":
        from initsim.gpu import driver

        kernel, kernel_name = driver.make_kernel(plan)
        uses_blas = False
    else:
        from initsim.engine.bind import bind_cpu

        kernel, kernel_name, uses_blas = bind_cpu(plan)

    stats, first, hist_h, hist_a, elapsed, used_threads = _run_chunks(
        plan, kernel, root, uses_blas, progress
    )
    config = plan.simulate_config()
    provenance = {
        **seed_record(ss, root),
        "config": config,
        "config_sha256": config_hash(config),
        "method": plan.method,
        "device": plan.device,
        "kernel": kernel_name,
        "threads": used_threads,
        "threading_layer": threading_layer(),
        "chunk_size": plan.chunk,
        "elapsed_s": elapsed,
        "versions": versions(),
    }
    histos = None
    if plan.histograms:
        hist = plan.histograms
        histos = {
            "h": hist_h,
            "act": hist_a,
            "h_edges": np.linspace(*hist["h_range"], hist["bins"] + 1),
            "act_edges": np.linspace(*hist["act_range"], hist["bins"] + 1),
        }
    return SimulationResult(
        q=stats[:, :, 0].copy(),
        act_mean=stats[:, :, 1].copy(),
        act_var=stats[:, :, 2].copy(),
        dead_fraction=stats[:, :, 3].copy(),
        saturated_fraction=stats[:, :, 4].copy(),
        grad_sq=stats[:, :, 5].copy() if plan.backward else None,
        first_nonfinite_layer=first,
        histograms=histos,
        provenance=provenance,
    )


def _run_chunks(
    plan: RunPlan,
    kernel: Any,
    root: np.ndarray,
    uses_blas: bool,
    progress: bool | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, int]:
    """Run the kernel over the nets chunk by chunk; return the arrays, seconds, threads."""
    nets, depth = plan.nets, plan.depth
    _, _, nb = plan.histogram_bins()
    stats = np.zeros((nets, depth, 6))
    first = np.zeros(nets, dtype=np.int64)
    hist_h = np.zeros((depth, nb), dtype=np.int64)
    hist_a = np.zeros((depth, nb), dtype=np.int64)
    bar = Progress(total=nets, label=f"simulate ({plan.method})", enabled=progress)
    started = time.perf_counter()
    try:
        # The nets are spread over the Numba threads: BLAS/LAPACK calls inside the
        # kernels run on one thread each (no oversubscription, deterministic sums).
        blas = threadpool_limits(limits=1, user_api="blas") if uses_blas else nullcontext()
        with numba_threads(plan.threads) as used_threads, blas:
            for lo in range(0, nets, plan.chunk):
                hi = min(nets, lo + plan.chunk)
                hh = np.zeros((hi - lo, depth, nb), dtype=np.int64)
                ha = np.zeros((hi - lo, depth, nb), dtype=np.int64)
                kernel(net_keys(root, lo, hi), (stats[lo:hi], first[lo:hi], hh, ha))
                if nb:
                    hist_h += hh.sum(axis=0)
                    hist_a += ha.sum(axis=0)
                bar.update(hi - lo)
    finally:
        bar.close()
    return stats, first, hist_h, hist_a, time.perf_counter() - started, used_threads
