"""``simulate()``: validate a specification, choose a sampler, run it, wrap the result.

This is the layer between users and kernels: kernels never validate, so
every check happens here, before anything is allocated or compiled.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import time
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import numba
import numpy as np
import scipy
from threadpoolctl import threadpool_limits

from initsim import activations as _activations
from initsim import initializers as _initializers
from initsim._version import __version__
from initsim.engine import exact as _exact
from initsim.progress import Progress
from initsim.result import SimulationResult
from initsim.rng import net_keys, root_key
from initsim.seeding import SeedLike, as_seed_sequence

__all__ = ["DEFAULT_SATURATION_THRESHOLD", "simulate"]

#: ``|phi'(h)|`` below this counts as saturated (sigmoid: |h| > 4.6; tanh: |h| > 3.0).
DEFAULT_SATURATION_THRESHOLD = 1e-2

_METHODS = ("auto", "exact", "dense")
_DEVICES = ("cpu", "cuda")
_INPUT_MODES = {"gaussian": _exact.INPUT_GAUSSIAN, "sphere": _exact.INPUT_SPHERE}
#: Laws the exact sampler handles (Gaussian with mean 0).
_EXACT_LAWS = ("gaussian",)


def _check_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value}")
    return int(value)


def _widths(depth: int, width: int | Sequence[int], input_dim: int | None) -> np.ndarray:
    if isinstance(width, int | np.integer) and not isinstance(width, bool):
        hidden = [_check_int("width", width)] * depth
    else:
        try:
            hidden = [_check_int("width", w) for w in width]  # type: ignore[union-attr]
        except TypeError:
            raise ValueError(f"width must be an int or a list of ints; got {width!r}") from None
        if len(hidden) != depth:
            raise ValueError(
                f"width as a list must give one width per hidden layer: expected {depth} "
                f"(depth), got {len(hidden)}"
            )
    n0 = hidden[0] if input_dim is None else _check_int("input_dim", input_dim)
    return np.array([n0, *hidden], dtype=np.int64)


def _histogram_spec(histograms: Any, activation: _activations.Activation) -> dict[str, Any] | None:
    if histograms is None or histograms is False:
        return None
    if isinstance(histograms, int) and not isinstance(histograms, bool):
        spec: dict[str, Any] = {"bins": histograms}
    elif isinstance(histograms, dict):
        unknown = set(histograms) - {"bins", "h_range", "act_range"}
        if unknown:
            raise ValueError(
                f"histograms has unknown keys {sorted(unknown)}; valid: bins, h_range, act_range"
            )
        spec = dict(histograms)
    else:
        raise ValueError(
            "histograms must be None, a number of bins, or a dict with bins, h_range, act_range"
        )
    bins = _check_int("histograms['bins']", spec.get("bins", 50))
    h_range = tuple(spec.get("h_range", (-5.0, 5.0)))
    default_act = (-1.5, 1.5) if activation.bounded else (-5.0, 5.0)
    act_range = tuple(spec.get("act_range", default_act))
    for key, rng in (("h_range", h_range), ("act_range", act_range)):
        if len(rng) != 2 or not all(math.isfinite(float(v)) for v in rng) or rng[0] >= rng[1]:
            raise ValueError(f"histograms['{key}'] must be two finite numbers lo < hi; got {rng}")
    return {"bins": bins, "h_range": h_range, "act_range": act_range}


def _input(input: Any, n0: int, inputs: int) -> tuple[int, np.ndarray]:
    if isinstance(input, str):
        if input not in _INPUT_MODES:
            raise ValueError(
                f"input must be one of {', '.join(_INPUT_MODES)} or an array; got {input!r}"
            )
        return _INPUT_MODES[input], np.zeros(0)
    arr = np.asarray(input, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape != (inputs, n0):
        raise ValueError(
            f"input array must have shape (input_dim,) or (inputs, input_dim) = ({inputs}, {n0}); "
            f"got {np.shape(input)}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError("input array must be finite (it contains NaN or inf)")
    # kernels take unit-major (n0, B) data
    return _exact.INPUT_GIVEN, np.ascontiguousarray(arr.T).ravel()


def _exact_applies(law: str, loc: float, backward: bool, widths: np.ndarray) -> str | None:
    """Return why the exact sampler cannot run this law, or None when it can."""
    if law == "gaussian":
        return None if loc == 0.0 else "Gaussian weights with a nonzero mean"
    if law == "orthogonal":
        if backward and np.any(widths[1:] < widths[:-1]):
            return (
                "orthogonal weights with backward=True and a layer narrower than its input "
                "(the exact backward pass covers n_out >= n_in only)"
            )
        return None
    return f"law {law!r}"


def _exact_cheaper(law: str, inputs: int, widths: np.ndarray) -> bool:
    """Rough operation counts: Gram + eigh + draws (exact) against GEMM + draws (dense)."""
    b = inputs
    n_in = widths[:-1].astype(float)
    n_out = widths[1:].astype(float)
    rng_cost = 8.0  # one normal costs about as much as 8 multiply-adds
    dense = np.sum(n_out * n_in * (b + rng_cost))
    exact = np.sum(n_in * b * b + 10.0 * b**3 + n_out * b * (b + rng_cost))
    if law == "orthogonal":
        exact += np.sum(np.maximum(n_in, n_out) * b * (2.0 * b + rng_cost))
    return bool(exact < dense)


def _choose_method(
    method: str, law: str, loc: float, inputs: int, backward: bool, widths: np.ndarray
) -> str:
    if method not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(_METHODS)}; got {method!r}")
    why_not = _exact_applies(law, loc, backward, widths)
    if method == "exact":
        if why_not is not None:
            raise ValueError(
                f"method='exact' handles zero-mean Gaussian and Haar-orthogonal weights; this "
                f"initializer gives {why_not}: use method='dense'"
            )
        return "exact"
    if method == "dense":
        return "dense"
    return "exact" if why_not is None and _exact_cheaper(law, inputs, widths) else "dense"


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
) -> SimulationResult:
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

    Returns
    -------
    SimulationResult
        Per-net, per-layer summaries and provenance.

    Raises
    ------
    ValueError
        For any invalid parameter; the message names it and the valid range.
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
    if device not in _DEVICES:
        raise ValueError(f"device must be one of {', '.join(_DEVICES)}; got {device!r}")
    depth = _check_int("depth", depth)
    nets = _check_int("nets", nets)
    inputs = _check_int("inputs", inputs)
    widths = _widths(depth, width, input_dim)
    if not math.isfinite(bias_std) or bias_std < 0:
        raise ValueError(f"bias_std must be a finite number >= 0; got {bias_std}")
    if not math.isfinite(saturation_threshold) or saturation_threshold < 0:
        raise ValueError(
            f"saturation_threshold must be finite and >= 0; got {saturation_threshold}"
        )
    act = _activations.get(activation)
    ini = _initializers.get(init)
    input_mode, given = _input(input, int(widths[0]), inputs)
    hist = _histogram_spec(histograms, act)
    max_threads = numba.config.NUMBA_NUM_THREADS
    if threads is not None:
        threads = _check_int("threads", threads)
        if threads > max_threads:
            raise ValueError(f"threads must be between 1 and {max_threads}; got {threads}")
    chunk = nets if chunk_size is None else _check_int("chunk_size", chunk_size)
    if chunk_size is None:
        chunk = max(1, min(nets, 4096 if inputs == 1 else 64))
        if device == "cuda":
            chunk = min(nets, 1 << 17)  # a GPU wants many nets per launch

    # one evaluation per distinct (fan_in, fan_out): deep nets repeat the same layer
    fans = [(int(widths[t]), int(widths[t + 1])) for t in range(depth)]
    spec_of = {f: ini.law_spec(*f) for f in set(fans)}
    specs = [spec_of[f] for f in fans]
    law = specs[0].law
    # the exact samplers' per-layer scale: the entry std, or the orthogonal weights' gain
    if law == "orthogonal":
        exact_scale = np.array([float(sp.gain) for sp in specs])
    else:
        std_of = {f: math.sqrt(ini.variance(*f)) for f in spec_of}
        exact_scale = np.array([std_of[f] for f in fans])
    chosen = _choose_method(method, law, float(specs[0].loc), inputs, bool(backward), widths)
    if device == "cuda" and method == "auto":
        from initsim.gpu import EXACT_MAX_INPUTS

        if inputs > EXACT_MAX_INPUTS:
            chosen = "dense"  # the GPU exact kernels take a few inputs only
    if chosen == "dense" or device == "cuda":
        from initsim.engine import laws as _laws

        encoded_of = {f: _laws.encode(spec_of[f]) for f in spec_of}

    ss = as_seed_sequence(seed)
    root = root_key(ss)
    config = {
        "activation": act.name,
        "activation_param": act.param,
        "init": ini.name,
        "init_params": {k: _jsonable(v) for k, v in ini.params.items()},
        "widths": widths.tolist(),
        "bias_std": float(bias_std),
        "nets": nets,
        "inputs": inputs,
        "input": input if isinstance(input, str) else "array",
        "method": chosen,
        "backward": bool(backward),
        "saturation_threshold": float(saturation_threshold),
        "histograms": hist,
    }
    if not isinstance(input, str):
        config["input_sha256"] = hashlib.sha256(given.tobytes()).hexdigest()

    stats = np.zeros((nets, depth, 6))
    first = np.zeros(nets, dtype=np.int64)
    nb = hist["bins"] + 2 if hist else 0
    hedges = np.array([*(hist["h_range"] if hist else (0.0, 1.0)), float(nb)])
    aedges = np.array([*(hist["act_range"] if hist else (0.0, 1.0)), float(nb)])
    hist_h_total = np.zeros((depth, nb), dtype=np.int64)
    hist_a_total = np.zeros((depth, nb), dtype=np.int64)

    common = (float(bias_std), act.code, act.param, input_mode, given)
    if device == "cuda":
        from initsim.gpu import driver as _gpu

        encoded = [encoded_of[f] for f in fans]
        kernel, kernel_name = _gpu.make_kernel(
            method=chosen,
            law=law,
            widths=widths,
            scale=exact_scale,
            law_code=encoded[0][0],
            law_params=np.ascontiguousarray(np.stack([p for _, p in encoded])),
            bias_std=float(bias_std),
            code=act.code,
            param=act.param,
            input_mode=input_mode,
            given=given,
            inputs=inputs,
            backward=bool(backward),
            saturation_threshold=float(saturation_threshold),
            hedges=hedges,
            aedges=aedges,
        )
        uses_blas = False
    elif chosen == "exact" and law == "gaussian" and inputs == 1:
        from initsim.engine.exact import exact_single_input

        wstd = exact_scale

        def kernel(keys: np.ndarray, out: tuple[np.ndarray, ...]) -> None:
            exact_single_input(
                keys,
                widths,
                wstd,
                *common,
                bool(backward),
                float(saturation_threshold),
                hedges,
                aedges,
                *out,
            )

        kernel_name = "exact (single input)"
        uses_blas = False
    elif chosen == "exact":
        from initsim.engine import exact_batch as _eb

        batch_law = _eb.LAW_ORTHOGONAL if law == "orthogonal" else _eb.LAW_GAUSSIAN

        def kernel(keys: np.ndarray, out: tuple[np.ndarray, ...]) -> None:
            _eb.exact_batch(
                keys,
                widths,
                batch_law,
                exact_scale,
                *common,
                inputs,
                bool(backward),
                float(saturation_threshold),
                hedges,
                aedges,
                *out,
            )

        kernel_name = "exact (Gram)"
        uses_blas = True
    else:
        from initsim.engine.dense import dense_kernel

        encoded = [encoded_of[f] for f in fans]
        law_code = encoded[0][0]
        law_params = np.ascontiguousarray(np.stack([p for _, p in encoded]))

        def kernel(keys: np.ndarray, out: tuple[np.ndarray, ...]) -> None:
            dense_kernel(
                keys,
                widths,
                law_code,
                law_params,
                *common,
                inputs,
                bool(backward),
                float(saturation_threshold),
                hedges,
                aedges,
                *out,
            )

        kernel_name = "dense"
        uses_blas = True

    previous_threads = numba.get_num_threads()
    bar = Progress(total=nets, label=f"simulate ({chosen})", enabled=progress)
    started = time.perf_counter()
    try:
        if threads is not None:
            numba.set_num_threads(threads)
        # The nets are spread over the Numba threads: BLAS/LAPACK calls inside the
        # kernels run on one thread each (no oversubscription, deterministic sums).
        blas_guard = threadpool_limits(limits=1, user_api="blas") if uses_blas else nullcontext()
        with blas_guard:
            for lo in range(0, nets, chunk):
                hi = min(nets, lo + chunk)
                hh = np.zeros((hi - lo, depth, nb), dtype=np.int64)
                ha = np.zeros((hi - lo, depth, nb), dtype=np.int64)
                kernel(net_keys(root, lo, hi), (stats[lo:hi], first[lo:hi], hh, ha))
                if nb:
                    hist_h_total += hh.sum(axis=0)
                    hist_a_total += ha.sum(axis=0)
                bar.update(hi - lo)
    finally:
        numba.set_num_threads(previous_threads)
        bar.close()
    elapsed = time.perf_counter() - started

    provenance = {
        "seed_entropy": str(ss.entropy),
        "spawn_key": list(ss.spawn_key),
        "root_key": [int(w) for w in root],
        "config": config,
        "config_sha256": _config_hash(config),
        "method": chosen,
        "device": device,
        "kernel": kernel_name,
        "threads": threads if threads is not None else previous_threads,
        "threading_layer": _threading_layer(),
        "chunk_size": chunk,
        "elapsed_s": elapsed,
        "versions": versions(),
    }
    histos = None
    if hist:
        histos = {
            "h": hist_h_total,
            "act": hist_a_total,
            "h_edges": np.linspace(*hist["h_range"], hist["bins"] + 1),
            "act_edges": np.linspace(*hist["act_range"], hist["bins"] + 1),
        }
    return SimulationResult(
        q=stats[:, :, 0].copy(),
        act_mean=stats[:, :, 1].copy(),
        act_var=stats[:, :, 2].copy(),
        dead_fraction=stats[:, :, 3].copy(),
        saturated_fraction=stats[:, :, 4].copy(),
        grad_sq=stats[:, :, 5].copy() if backward else None,
        first_nonfinite_layer=first,
        histograms=histos,
        provenance=provenance,
    )


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


def _config_hash(config: dict[str, Any]) -> str:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _threading_layer() -> str:
    try:
        return str(numba.threading_layer())
    except ValueError:  # no parallel region has run yet in this process
        return "unset"


def versions() -> dict[str, str]:
    """Versions of initsim and of what its numbers depend on.

    Returns
    -------
    dict
        initsim, numpy, numba, scipy and python versions.
    """
    return {
        "initsim": __version__,
        "numpy": np.__version__,
        "numba": numba.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
    }
