"""The plan of a run: one validated description, built once, read by every runner.

:func:`make_plan` checks every argument of a run (naming the parameter and the
valid range), resolves the activation and the initializer, evaluates the weight
law of every layer, chooses the sampler (and says why) and fixes the chunking.
:func:`initsim.simulate`, :func:`initsim.jacobian_spectrum`, the GPU driver and
the study cells all read the same :class:`RunPlan`; none of them validates
again.

The net is a sequence of *blocks* (:attr:`RunPlan.blocks`). Today there is one
kind, :class:`DenseLayer` (``h = W x + b``, ``x' = phi(h)``); a new kind (a
residual block, a normalization layer) is a new block class with its own
validation, and the kernels and the theory learn it through the plan, not
through every caller.

Memory: :func:`make_plan` estimates the run's peak memory
(:attr:`RunPlan.memory_bytes`, part by part in :attr:`RunPlan.memory`, see
:func:`memory_estimate`: the per-net results, about 12 float64 per net and
layer, plus what each net running at once allocates in its kernel) and
refuses a run whose estimate exceeds :func:`available_memory` with a
:class:`RunTooLargeError` that says how much it needs and what to reduce,
before anything is built or allocated. Widths, depth and inputs are capped
(:data:`MAX_WIDTH`, :data:`MAX_DEPTH`, :data:`MAX_INPUTS`) and a layer may
not draw more than :data:`MAX_LAYER_DRAWS` numbers from one random
substream, so no kernel overflows an int64 index or a random counter.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from initsim import activations as _activations
from initsim import initializers as _initializers
from initsim import keywords
from initsim._validate import check_bool, check_choice, check_int, check_real
from initsim.engine.exact import INPUT_GAUSSIAN, INPUT_GIVEN, INPUT_SPHERE
from initsim.provenance import check_threads, json_safe

__all__ = [
    "DEFAULT_SATURATION_THRESHOLD",
    "KERNELS",
    "MAX_DEPTH",
    "MAX_HISTOGRAM_BINS",
    "MAX_INPUTS",
    "MAX_LAYER_DRAWS",
    "MAX_WIDTH",
    "DenseLayer",
    "RunPlan",
    "RunTooLargeError",
    "available_memory",
    "check_memory",
    "choose_method",
    "exact_applies",
    "exact_cheaper",
    "make_plan",
    "memory_estimate",
    "resolve_method",
]

#: ``|phi'(h)|`` below this counts as saturated (sigmoid: |h| > 4.6; tanh: |h| > 3.0).
DEFAULT_SATURATION_THRESHOLD: float = keywords.SIMULATE["saturation_threshold"].default

_INPUT_CODES = {"gaussian": INPUT_GAUSSIAN, "sphere": INPUT_SPHERE}

#: What a plan is for: :func:`initsim.simulate`'s kernels or the Jacobian kernel.
KERNELS = ("simulate", "jacobian")
#: Largest width: one layer draws up to ``width * inputs`` numbers from one random
#: substream, whose counter (32-bit block index, two draws a block) wraps after 2**33.
MAX_WIDTH = 2**32
#: Largest depth: the layer index is a 32-bit word of every random counter.
MAX_DEPTH = 2**32 - 1
#: Largest number of inputs per net (see :data:`MAX_WIDTH`).
MAX_INPUTS = 2**32
#: Largest number of histogram bins per layer.
MAX_HISTOGRAM_BINS = 2**31
#: Most random numbers one layer may draw from one substream (half of its 2**33 period).
MAX_LAYER_DRAWS = 2**32
#: Nets per kernel call by default: one input, several inputs, on a GPU.
_CHUNK_ONE_INPUT, _CHUNK_INPUTS, _CHUNK_GPU = 4096, 64, 1 << 17


@dataclass(frozen=True)
class DenseLayer:
    """A dense layer ``h = W x + b``, ``x' = phi(h)``: the one block kind today.

    Attributes
    ----------
    fan_in, fan_out : int
        ``W`` maps ``fan_in -> fan_out``.
    law : initsim.initializers.LawSpec
        The entry law of ``W``.
    scale : float
        The exact samplers' scale: the entry standard deviation, or the
        orthogonal weights' gain.
    """

    fan_in: int
    fan_out: int
    law: _initializers.LawSpec
    scale: float


@dataclass(frozen=True, eq=False)
class RunPlan:
    """A validated run: the net, its inputs, what to record and how to sample it.

    Attributes
    ----------
    widths : numpy.ndarray of int64
        ``[n_0, n_1, ..., n_L]``.
    blocks : tuple of DenseLayer
        The net, block by block (``len(blocks) == depth``).
    activation : initsim.activations.Activation
        The activation of every block.
    initializer : initsim.initializers.Initializer
        Where the laws come from.
    bias_std : float
        ``sigma_b``.
    nets, inputs : int
        Number of nets, inputs per net.
    input : str
        "sphere", "gaussian" or "array".
    input_code : int
        The kernels' input mode (:data:`INPUT_SPHERE`, ...).
    given : numpy.ndarray
        The given inputs, unit-major ``(n_0, B)`` and raveled; empty unless
        ``input == "array"``.
    backward : bool
        Whether gradients are propagated.
    saturation_threshold : float
        ``|phi'(h)|`` below this counts as saturated.
    histograms : dict or None
        ``{"bins", "h_range", "act_range"}``.
    method : str
        The sampler: "exact" or "dense".
    method_reason : str
        Why: the user's choice, or what ``method="auto"`` weighed.
    device : str
        "cpu" or "cuda".
    threads : int or None
        Numba threads asked for.
    chunk : int
        Nets per kernel call.
    kernel : str
        What the plan is for: "simulate" (:func:`initsim.simulate`) or
        "jacobian" (:func:`initsim.jacobian_spectrum`); it decides the
        memory estimate.
    """

    widths: np.ndarray
    blocks: tuple[DenseLayer, ...]
    activation: _activations.Activation
    initializer: _initializers.Initializer
    bias_std: float
    nets: int
    inputs: int
    input: str
    input_code: int
    given: np.ndarray
    backward: bool
    saturation_threshold: float
    histograms: dict[str, Any] | None
    method: str
    method_reason: str
    device: str
    threads: int | None
    chunk: int
    kernel: str = "simulate"

    @cached_property
    def memory(self) -> dict[str, int]:
        """The run's memory estimate, part by part (:func:`memory_estimate`).

        Returns
        -------
        dict of str to int
            Bytes per part, and ``"total"``.
        """
        return memory_estimate(
            self.widths,
            nets=self.nets,
            inputs=self.inputs,
            method=self.method,
            law=self.law,
            backward=self.backward,
            bins=self.histograms["bins"] if self.histograms else 0,
            chunk=self.chunk,
            threads=self.threads,
            device=self.device,
            kernel=self.kernel,
        )

    @property
    def memory_bytes(self) -> int:
        """Estimated peak memory of the run in bytes (``memory["total"]``)."""
        return self.memory["total"]

    @property
    def depth(self) -> int:
        """Number of blocks (hidden layers)."""
        return len(self.blocks)

    @property
    def law(self) -> str:
        """The weight law's name (one initializer: the same law in every layer)."""
        return self.blocks[0].law.law

    @property
    def scales(self) -> np.ndarray:
        """The exact samplers' per-layer scale (entry std, or orthogonal gain)."""
        return np.array([b.scale for b in self.blocks])

    @cached_property
    def law_table(self) -> tuple[np.ndarray, np.ndarray]:
        """The dense kernels' encoding of every layer's law: ``(codes, params)``.

        ``codes`` (int64, shape ``(depth,)``) holds each layer's law code
        (:data:`initsim.engine.laws.LAW_CODES`), ``params`` (shape
        ``(depth, N_PARAMS)``) its parameters.
        """
        from initsim.engine import laws

        encoded: dict[tuple[int, int], tuple[int, np.ndarray]] = {}
        rows = []
        for b in self.blocks:
            key = (b.fan_in, b.fan_out)
            if key not in encoded:
                encoded[key] = laws.encode(b.law)
            rows.append(encoded[key])
        codes = np.array([c for c, _ in rows], dtype=np.int64)
        params = np.ascontiguousarray(np.stack([p for _, p in rows]))
        return codes, params

    def histogram_bins(self) -> tuple[np.ndarray, np.ndarray, int]:
        """Return the kernels' histogram arguments.

        Returns
        -------
        h_bins, a_bins : numpy.ndarray
            ``[low, high, bins + 2]`` for pre-activations and activations
            (two overflow bins; a dummy range when there are no histograms).
        nb : int
            Bins per layer including the overflow bins; 0 for none.
        """
        hist = self.histograms
        nb = hist["bins"] + 2 if hist else 0
        h_bins = np.array([*(hist["h_range"] if hist else (0.0, 1.0)), float(nb)])
        a_bins = np.array([*(hist["act_range"] if hist else (0.0, 1.0)), float(nb)])
        return h_bins, a_bins, nb

    def net_config(self) -> dict[str, Any]:
        """Return what determines the nets: activation, initializer, widths, bias, nets.

        Returns
        -------
        dict
            The keys every run's ``config`` starts with (its sha256 is recorded).
        """
        act, ini = self.activation, self.initializer
        return {
            **act.config(),
            "init": ini.name,
            "init_params": {k: json_safe(v) for k, v in ini.params.items()},
            "widths": self.widths.tolist(),
            "bias_std": self.bias_std,
            "nets": self.nets,
        }

    def input_config(self) -> dict[str, Any]:
        """Return the ``input`` entry of a config, and the given inputs' sha256 if any.

        Returns
        -------
        dict
            ``{"input": ...}`` plus ``input_sha256`` for an array of inputs.
        """
        if self.input != "array":
            return {"input": self.input}
        return {"input": "array", "input_sha256": hashlib.sha256(self.given.tobytes()).hexdigest()}

    def simulate_config(self) -> dict[str, Any]:
        """Return the ``config`` of a :func:`initsim.simulate` run (key for key as stored).

        Returns
        -------
        dict
            Net, inputs, sampler and what is recorded.
        """
        config = {
            **self.net_config(),
            "inputs": self.inputs,
            "input": self.input,
            "method": self.method,
            "backward": self.backward,
            "saturation_threshold": self.saturation_threshold,
            "histograms": self.histograms,
        }
        config.update(self.input_config())
        return config


def check_width(name: str, value: Any) -> int:
    """Return a width after checking it is an integer in [1, MAX_WIDTH] (saying why the bound)."""
    try:
        return check_int(name, value, maximum=MAX_WIDTH)
    except ValueError as err:
        if isinstance(value, numbers.Integral) and value > MAX_WIDTH:
            raise ValueError(
                f"{err} (2**32: a layer draws up to width x inputs numbers from one random "
                "substream, which holds 2**33)"
            ) from None
        raise


def _widths(depth: int, width: Any, input_dim: Any) -> np.ndarray:
    if isinstance(width, int | np.integer) and not isinstance(width, bool):
        hidden = [check_width("width", width)] * depth
    else:
        try:
            hidden = [check_width("width", w) for w in width]
        except TypeError:
            raise ValueError(f"width must be an int or a list of ints; got {width!r}") from None
        if len(hidden) != depth:
            raise ValueError(
                f"width as a list must give one width per hidden layer: expected {depth} "
                f"(depth), got {len(hidden)}"
            )
    n0 = hidden[0] if input_dim is None else check_width("input_dim", input_dim)
    return np.array([n0, *hidden], dtype=np.int64)


def _histograms(histograms: Any, activation: _activations.Activation) -> dict[str, Any] | None:
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
    bins = check_int("histograms['bins']", spec.get("bins", 50), maximum=MAX_HISTOGRAM_BINS)
    default_act = (-1.5, 1.5) if activation.bounded else (-5.0, 5.0)
    h_range = _histogram_range("h_range", spec.get("h_range", (-5.0, 5.0)))
    act_range = _histogram_range("act_range", spec.get("act_range", default_act))
    return {"bins": bins, "h_range": h_range, "act_range": act_range}


def _histogram_range(key: str, value: Any) -> tuple[Any, ...]:
    """Return a histogram range as given (it is part of the config) after checking it."""
    rng = tuple(value) if isinstance(value, Sequence | np.ndarray) else None
    ok = (
        rng is not None
        and len(rng) == 2
        and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_) and math.isfinite(v)
            for v in rng
        )
        and rng[0] < rng[1]
    )
    if not ok:
        raise ValueError(f"histograms['{key}'] must be two finite numbers lo < hi; got {value!r}")
    return rng  # type: ignore[return-value]


def parse_input(input: Any, n0: int, inputs: int) -> tuple[str, int, np.ndarray]:
    """Return ``(name, kernel input code, given inputs unit-major)`` of a run's ``input``."""
    if isinstance(input, str):
        if input not in keywords.INPUT_MODES:
            raise ValueError(
                f"input must be one of {', '.join(keywords.INPUT_MODES)} or an array; got {input!r}"
            )
        return input, _INPUT_CODES[input], np.zeros(0)
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
    return "array", INPUT_GIVEN, np.ascontiguousarray(arr.T).ravel()


def exact_applies(law: str, loc: float, backward: bool, widths: np.ndarray) -> str | None:
    """Return why the exact samplers cannot run this law, or None when they can.

    Parameters
    ----------
    law : str
        The law's name (:attr:`initsim.initializers.LawSpec.law`).
    loc : float
        Its mean (Gaussian laws).
    backward : bool
        Whether gradients are propagated.
    widths : numpy.ndarray
        The chain of widths ``[n_0, ..., n_L]`` the law is used in.

    Returns
    -------
    str or None
        A phrase completing "the exact sampler cannot run ...", or None.
    """
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


def exact_cheaper(law: str, inputs: int, widths: np.ndarray) -> bool:
    """Return whether the exact sampler needs fewer operations than the dense one.

    Rough operation counts over the chain ``widths``: Gram + eigh + draws
    (exact) against GEMM + draws (dense), for ``inputs`` inputs per net and
    the law ``"gaussian"`` or ``"orthogonal"``.
    """
    b = inputs
    n_in = widths[:-1].astype(float)
    n_out = widths[1:].astype(float)
    rng_cost = 8.0  # one normal costs about as much as 8 multiply-adds
    dense = np.sum(n_out * n_in * (b + rng_cost))
    exact = np.sum(n_in * b * b + 10.0 * b**3 + n_out * b * (b + rng_cost))
    if law == "orthogonal":
        exact += np.sum(np.maximum(n_in, n_out) * b * (2.0 * b + rng_cost))
    return bool(exact < dense)


def resolve_method(
    method: str, why_not: str | None, cheaper: Callable[[], bool], refusal: str
) -> tuple[str, str]:
    """Decide between the samplers; the rule :func:`choose_method` and residual runs share.

    Parameters
    ----------
    method : {"auto", "exact", "dense"}
        What the user asked for.
    why_not : str or None
        Why the exact sampler cannot run (:func:`exact_applies`), or None.
    cheaper : callable
        Returns whether the exact sampler costs fewer operations (asked only
        for ``method="auto"`` when it can run).
    refusal : str
        The start of the error for ``method="exact"`` when it cannot run;
        ``why_not`` and the advice follow it.

    Returns
    -------
    method, reason : str
        "exact" or "dense", and why.

    Raises
    ------
    ValueError
        For an unknown method, or ``method="exact"`` that cannot run.
    """
    check_choice("method", method, keywords.METHODS)
    if method == "exact":
        if why_not is not None:
            raise ValueError(f"{refusal} {why_not}: use method='dense'")
        return "exact", "asked for"
    if method == "dense":
        return "dense", "asked for"
    if why_not is not None:
        return "dense", f"auto: the exact sampler cannot run {why_not}"
    if not cheaper():
        return "dense", "auto: fewer operations than the exact sampler at these widths and inputs"
    return "exact", "auto: applies, and fewer operations than the dense sampler"


def choose_method(
    method: str,
    law: _initializers.LawSpec,
    inputs: int,
    backward: bool,
    widths: np.ndarray,
    device: str = "cpu",
) -> tuple[str, str]:
    """Choose the sampler of a run.

    Parameters
    ----------
    method : {"auto", "exact", "dense"}
        What the user asked for.
    law : initsim.initializers.LawSpec
        The weight law (of the first layer; one initializer gives one law).
    inputs : int
        Inputs per net.
    backward : bool
        Whether gradients are propagated.
    widths : numpy.ndarray
        ``[n_0, ..., n_L]``.
    device : {"cpu", "cuda"}
        Where the kernels run.

    Returns
    -------
    method : str
        "exact" or "dense".
    reason : str
        Why.

    Raises
    ------
    ValueError
        For an unknown method, or ``method="exact"`` on a law it cannot sample.
    """
    why_not = exact_applies(law.law, float(law.loc), backward, widths)
    chosen = resolve_method(
        method,
        why_not,
        lambda: exact_cheaper(law.law, inputs, widths),
        "method='exact' handles zero-mean Gaussian and Haar-orthogonal weights; this "
        "initializer gives",
    )
    if chosen[0] == "dense" or method == "exact":
        return chosen
    if device == "cuda":
        from initsim.gpu import EXACT_MAX_INPUTS

        if inputs > EXACT_MAX_INPUTS:  # the GPU exact kernels take a few inputs only
            return "dense", f"auto: the GPU exact kernels take at most {EXACT_MAX_INPUTS} inputs"
    return "exact", "auto: applies, and fewer operations than the dense sampler"


# --------------------------------------------------------------------------- memory

#: Bytes of one float64 or int64.
WORD = 8
#: Python objects per layer of a plan (fans, blocks, law table rows; measured peak).
_PLAN_BYTES_PER_LAYER = 400
#: Fixed allowance: interpreter, compiled kernels, BLAS/LAPACK workspaces.
BASE_BYTES = 64 << 20


class RunTooLargeError(ValueError):
    """A run the machine cannot hold, or larger than the random streams allow.

    Raised by :func:`make_plan` (a ValueError, so the command line reports it
    as bad usage, exit status 2) before anything is allocated or compiled;
    the message says how much the run needs and what to reduce.
    """


def _gib(n: float) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"


def threads_for(threads: int | None) -> int:
    if threads is not None:
        return int(threads)
    import numba

    return int(numba.get_num_threads())


def _results_words(nets: int, depth: int, backward: bool, nb: int, chunk: int) -> float:
    """Host words of :func:`initsim.simulate`: per-net arrays, their copies, histograms."""
    per_cell = 6 + 5 + (1 if backward else 0)  # stats (6 columns) and the result's copies
    hist = 2 * depth * nb * (chunk + 2)  # per-chunk counts of every net, and the totals
    return float(nets) * depth * per_cell + nets + 4.0 * chunk + hist


def _kernel_words(
    widths: np.ndarray, inputs: int, method: str, law: str, backward: bool, kernel: str
) -> tuple[float, str]:
    """Words one net's kernel allocates (one per thread at a time), and the largest buffer."""
    w = np.asarray(widths, dtype=np.float64)  # float: products beyond int64 stay ordered
    depth = w.size - 1
    nmax = float(w.max())
    wmax = float(np.max(w[:-1] * w[1:]))
    orth = law == "orthogonal"
    b = float(inputs)
    if kernel == "jacobian":
        n0, nl = float(w[0]), float(w[-1])
        k = min(n0, nl)
        words = 3 * nmax + wmax * (4 if orth else 1) + 2 * nmax * n0 + 4 * nl * n0 + 4 * k * k
        big = "a weight matrix n_out x n_in and the Jacobian n_max x n_0"
        return words, big
    keep = depth + 1 if backward else 2  # layer inputs kept for the backward pass
    rows = depth if backward else 1  # pre-activations kept
    if method == "dense":
        words = nmax * b * (keep + rows + (2 if backward else 0))
        words += wmax * (4 if orth else 1) + 2 * nmax + 256
        big = "a weight matrix n_out x n_in" if wmax >= nmax * b * (keep + rows) else "signals"
        return words, big
    if law == "gaussian" and inputs == 1:
        return nmax * (keep + 2 * rows + 2) + depth + 1, "signals"
    # Gram sampler: signals, Gram factors (B x B) per layer, per-layer temporaries
    temp = (12.0 if backward else 8.0) * (nmax * b + b * b) + (4.0 * nmax * b if orth else 0.0)
    words = nmax * b * (keep + 2 * rows) + rows * b * b + nmax + depth + temp
    big = "B x B Gram matrices" if rows * b * b > nmax * b * (keep + 2 * rows) else "signals"
    return words, big


def memory_estimate(
    widths: np.ndarray,
    *,
    nets: int,
    inputs: int = 1,
    method: str = "dense",
    law: str = "gaussian",
    backward: bool = False,
    bins: int = 0,
    chunk: int | None = None,
    threads: int | None = None,
    device: str = "cpu",
    kernel: str = "simulate",
) -> dict[str, int]:
    """Estimate the peak memory of a run, part by part.

    The parts, in bytes: ``results`` (host arrays: ``nets x depth x 6``
    summaries, the result's copies of them, histograms, keys),
    ``kernel_per_net`` (what one net's kernel allocates: signals kept for
    the backward pass, the dense sampler's ``n_out x n_in`` weight matrix,
    the Gram sampler's ``B x B`` factors, the Jacobian kernel's
    ``n_max x n_0`` products), ``kernels`` (that times the nets running at
    once, ``min(threads, chunk)``; 0 on a GPU, whose memory is its own),
    ``plan`` (Python objects per layer) and ``base`` (interpreter, compiled
    code), and ``total``. It is an upper estimate of what the code
    allocates, read from the kernels in :mod:`initsim.engine`.

    Parameters
    ----------
    widths : numpy.ndarray
        ``[n_0, ..., n_L]``.
    nets, inputs : int
        Nets and inputs per net.
    method : {"exact", "dense"}
        The sampler.
    law : str
        The weight law (``"orthogonal"`` adds QR factors).
    backward : bool
        Whether gradients are propagated (signals of every layer are kept).
    bins : int
        Histogram bins per layer (0: none).
    chunk : int, optional
        Nets per kernel call (default: all).
    threads : int, optional
        Numba threads (default: the current count).
    device : {"cpu", "cuda"}
        Where the kernels run.
    kernel : {"simulate", "jacobian"}
        Which kernel.

    Returns
    -------
    dict of str to int
        ``results``, ``kernel_per_net``, ``kernels``, ``plan``, ``base``, ``total``.
    """
    depth = int(np.size(widths)) - 1
    chunk = int(nets if chunk is None else min(chunk, nets))
    per_net, _ = _kernel_words(widths, inputs, method, law, backward, kernel)
    if kernel == "jacobian":
        k = float(min(widths[0], widths[-1]))
        results = float(nets) * (k + 2)  # singular values and keys, all nets at once
        running = min(threads_for(threads), nets)
    else:
        nb = bins + 2 if bins else 0
        results = _results_words(nets, depth, backward, nb, chunk)
        running = min(threads_for(threads), chunk)
    kernels = 0.0 if device == "cuda" else per_net * running
    parts = {
        "results": results * WORD,
        "kernel_per_net": per_net * WORD,
        "kernels": kernels * WORD,
        "plan": float(depth) * _PLAN_BYTES_PER_LAYER,
        "base": float(BASE_BYTES),
    }
    total = parts["results"] + parts["kernels"] + parts["plan"] + parts["base"]
    return {**{k: int(v) for k, v in parts.items()}, "total": int(total)}


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as fh:
            text = fh.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _stat_value(path: str, keys: tuple[str, ...]) -> int:
    try:
        with open(path, encoding="ascii") as fh:
            stat = dict(line.split()[:2] for line in fh if len(line.split()) >= 2)
    except (OSError, ValueError):
        return 0
    for key in keys:
        if stat.get(key, "").isdigit():
            return int(stat[key])
    return 0


def _cgroup_available() -> int | None:
    """Memory left under this process's cgroup limit (containers), or None without one."""
    try:
        with open("/proc/self/cgroup", encoding="ascii") as fh:
            lines = [line.strip().split(":", 2) for line in fh if line.count(":") >= 2]
    except OSError:
        return None
    best: int | None = None
    for _, controllers, path in lines:
        if controllers == "":  # cgroup v2
            root, limit_f, usage_f, stat_keys = (
                "/sys/fs/cgroup",
                "memory.max",
                "memory.current",
                ("inactive_file",),
            )
        elif "memory" in controllers.split(","):  # cgroup v1
            root, limit_f, usage_f, stat_keys = (
                "/sys/fs/cgroup/memory",
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
                ("total_inactive_file", "inactive_file"),
            )
        else:
            continue
        for folder in {os.path.join(root, path.lstrip("/")), root}:
            limit = _read_int(os.path.join(folder, limit_f))
            usage = _read_int(os.path.join(folder, usage_f))
            if limit is None or usage is None or limit >= 1 << 60:  # no limit set
                continue
            # the page cache a cgroup holds is given back on demand
            cache = _stat_value(os.path.join(folder, "memory.stat"), stat_keys)
            left = max(limit - max(usage - cache, 0), 0)
            best = left if best is None else min(best, left)
    return best


def available_memory() -> int | None:
    """Bytes of memory a run may still take on this machine, or None when unknown.

    The smallest of: ``psutil.virtual_memory().available`` when psutil is
    installed, else ``MemAvailable`` of ``/proc/meminfo`` (Linux), else
    ``os.sysconf`` free pages; and, in a container, the cgroup's memory limit
    less what the cgroup uses (page cache excluded).

    Returns
    -------
    int or None
        Bytes, or None when the platform tells nothing (no refusal then).
    """
    avail: int | None = None
    try:
        import psutil

        avail = int(psutil.virtual_memory().available)
    except Exception:  # not installed (it is optional), or the platform refuses
        avail = None
    if avail is None:
        avail = _meminfo_available()
    if avail is None:
        try:
            avail = int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, OSError, ValueError):
            avail = None
    cgroup = _cgroup_available()
    if cgroup is not None:
        avail = cgroup if avail is None else min(avail, cgroup)
    return avail


def _advice(part: str, big: str, threads: int, method: str, kernel: str) -> str:
    if part == "results":
        if kernel == "jacobian":
            return "reduce nets (every net keeps min(n_0, n_L) singular values)"
        return "reduce nets or depth (every net keeps about 12 numbers per layer)"
    if part == "plan":
        return "reduce depth (the plan holds Python objects for every layer)"
    fewer = f", or run on fewer threads (threads={threads} run at once)" if threads > 1 else ""
    if "weight matrix" in big:
        other = " or use method='exact' where it applies" if method == "dense" else ""
        return f"reduce the widths (each net materialises {big}){other}{fewer}"
    if "Gram" in big:
        return f"reduce inputs (the exact sampler keeps {big} per layer){fewer}"
    return f"reduce width, inputs or depth (signals of every layer are kept){fewer}"


def check_memory(plan_or_estimate: Any, available: int | None = None) -> None:
    """Refuse a run whose estimated memory exceeds what the machine has available.

    Parameters
    ----------
    plan_or_estimate : RunPlan or dict
        A plan, or a :func:`memory_estimate` result (or any of its parts in
        bytes: ``results``, ``kernels``, ``kernel_per_net``, ``plan``,
        ``base``, ``total``; for callers with their own kernels, e.g. the
        trainer).
    available : int, optional
        Bytes available (default :func:`available_memory`; no check when unknown).

    Raises
    ------
    RunTooLargeError
        When the estimate's ``total`` exceeds ``available``; the message says
        how much the run needs, its largest part and what to reduce.
    """
    if isinstance(plan_or_estimate, RunPlan):
        est = plan_or_estimate.memory
        threads = threads_for(plan_or_estimate.threads)
        big = _kernel_words(
            plan_or_estimate.widths,
            plan_or_estimate.inputs,
            plan_or_estimate.method,
            plan_or_estimate.law,
            plan_or_estimate.backward,
            plan_or_estimate.kernel,
        )[1]
        method, kernel = plan_or_estimate.method, plan_or_estimate.kernel
    else:  # any of the parts; the total defaults to their sum
        est = {k: int(plan_or_estimate.get(k, 0)) for k in ("results", "kernel_per_net")}
        est.update({k: int(plan_or_estimate.get(k, 0)) for k in ("kernels", "plan", "base")})
        parts = est["results"] + est["kernels"] + est["plan"] + est["base"]
        est["total"] = int(plan_or_estimate.get("total", parts))
        threads, big, method, kernel = 1, "signals", "", "simulate"
    _refuse_if_too_large(est, threads, big, method, kernel, available)


#: Runs whose estimate beyond the fixed allowance (``base``) is below this never ask
#: the machine how much memory is free: any machine that runs Numba has it.
_UNPROBED_BYTES = 64 << 20


def _refuse_if_too_large(
    est: dict[str, int], threads: int, big: str, method: str, kernel: str, available: int | None
) -> None:
    if available is None:
        if est["total"] - est["base"] <= _UNPROBED_BYTES:
            return  # no probe (about 0.5 ms) for what any machine has: study validation
        available = available_memory()
    if available is None or est["total"] <= available:
        return
    part = max(("results", "kernels", "plan"), key=lambda k: est[k])
    what = {
        "results": "the per-net results",
        "kernels": f"the kernels' buffers ({_gib(est['kernel_per_net'])} for each of the "
        f"{max(1, round(est['kernels'] / max(est['kernel_per_net'], 1)))} nets running at once)",
        "plan": "the plan's per-layer objects",
    }[part]
    raise RunTooLargeError(
        f"the run needs about {_gib(est['total'])} of memory but about {_gib(available)} "
        f"are available; the largest part is {what}: {_gib(est[part])}. To fit, "
        f"{_advice(part, big, threads, method, kernel)}"
    )


def _check_draws(widths: np.ndarray, inputs: int, method: str, law: str, kernel: str) -> None:
    """Refuse layers that draw more numbers from one random substream than it holds."""
    w = np.asarray(widths, dtype=np.float64)
    per_entry = 4.0 if law == "truncated_gaussian" else 1.0  # rejection sampling
    if method == "dense" or kernel == "jacobian":
        draws = float(np.max(w[:-1] * w[1:])) * per_entry
        what = "a weight matrix (n_out x n_in entries)"
    else:
        draws = 2.0 * float(w.max()) * inputs
        what = "a layer's exact draws (2 x width x inputs)"
    if draws > MAX_LAYER_DRAWS:
        raise RunTooLargeError(
            f"{what} takes about {draws:.3g} random numbers from one substream, more than "
            f"the {MAX_LAYER_DRAWS} (2**32) a substream provides: reduce the widths"
            + (" or inputs" if method != "dense" and kernel != "jacobian" else "")
        )


def make_plan(
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
    threads: int | None = None,
    histograms: int | dict[str, Any] | None = None,
    saturation_threshold: float = DEFAULT_SATURATION_THRESHOLD,
    chunk_size: int | None = None,
    device: str = "cpu",
    kernel: str = "simulate",
) -> RunPlan:
    """Validate a run and plan it (the arguments are :func:`initsim.simulate`'s).

    Parameters
    ----------
    activation, init, depth, width, input_dim, bias_std, nets, inputs, input, method
        As in :func:`initsim.simulate`.
    backward, threads, histograms, saturation_threshold, chunk_size, device
        As in :func:`initsim.simulate`.
    kernel : {"simulate", "jacobian"}
        The kernel the plan is for (:func:`initsim.jacobian_spectrum` passes
        "jacobian"); it decides the memory estimate.

    Returns
    -------
    RunPlan
        The validated plan; :attr:`RunPlan.memory_bytes` is its memory estimate.

    Raises
    ------
    ValueError
        For any invalid argument; the message names it and the valid range.
    RunTooLargeError
        (a ValueError) When the run's estimated memory
        (:func:`memory_estimate`) exceeds what the machine has available
        (:func:`available_memory`), or a layer would draw more random numbers
        from one substream than it holds (:data:`MAX_LAYER_DRAWS`); checked
        before anything is allocated.

    Notes
    -----
    Widths are capped at :data:`MAX_WIDTH`, depth at :data:`MAX_DEPTH` and
    inputs at :data:`MAX_INPUTS`, so that no index product in the kernels
    overflows int64 and every random substream stays within its period.
    """
    check_choice("device", device, keywords.DEVICES)
    check_choice("kernel", kernel, KERNELS)
    depth = check_int("depth", depth, maximum=MAX_DEPTH)
    nets = check_int("nets", nets)
    inputs = check_int("inputs", inputs, maximum=MAX_INPUTS)
    backward = check_bool("backward", backward)
    bias_std = check_real("bias_std", bias_std, minimum=0.0)
    saturation_threshold = check_real("saturation_threshold", saturation_threshold, minimum=0.0)
    try:
        act = _activations.get(activation)
    except TypeError as err:
        raise ValueError(f"activation: {err}") from None
    if device == "cuda" and not act.is_builtin:
        raise ValueError(
            f"activation: the GPU kernels know the built-in activations only; {act.name!r} is "
            f"{'registered' if act.user is not None else 'shaped'}: run it with device='cpu'"
        )
    hist = _histograms(histograms, act)
    threads = check_threads(threads)
    if chunk_size is not None:
        chunk = check_int("chunk_size", chunk_size)
    elif device == "cuda":
        chunk = min(nets, _CHUNK_GPU)  # a GPU wants many nets per launch
    else:
        chunk = max(1, min(nets, _CHUNK_ONE_INPUT if inputs == 1 else _CHUNK_INPUTS))
    # what nets x depth alone needs, before anything of size depth is built
    nb = hist["bins"] + 2 if hist else 0
    words = _results_words(nets, depth, backward, nb, min(chunk, nets))
    early = {
        "results": int(words * WORD if kernel == "simulate" else 3.0 * nets * WORD),
        "kernel_per_net": 0,
        "kernels": 0,
        "plan": depth * _PLAN_BYTES_PER_LAYER,
        "base": BASE_BYTES,
    }
    early["total"] = early["results"] + early["plan"] + early["base"]
    _refuse_if_too_large(early, 1, "signals", "", kernel, None)
    widths = _widths(depth, width, input_dim)
    try:
        ini = _initializers.get(init)
    except TypeError as err:
        raise ValueError(f"init: {err}") from None
    input_name, input_code, given = parse_input(input, int(widths[0]), inputs)

    # one evaluation per distinct (fan_in, fan_out): deep nets repeat the same layer
    fans = [(int(widths[t]), int(widths[t + 1])) for t in range(depth)]
    law_of = {f: ini.law_spec(*f) for f in set(fans)}
    orthogonal = law_of[fans[0]].law == "orthogonal"
    scale_of = {
        f: float(law_of[f].gain) if orthogonal else math.sqrt(ini.variance(*f)) for f in law_of
    }
    blocks = tuple(DenseLayer(f[0], f[1], law_of[f], scale_of[f]) for f in fans)
    chosen, reason = choose_method(method, blocks[0].law, inputs, backward, widths, device=device)
    plan = RunPlan(
        widths=widths,
        blocks=blocks,
        activation=act,
        initializer=ini,
        bias_std=bias_std,
        nets=nets,
        inputs=inputs,
        input=input_name,
        input_code=input_code,
        given=given,
        backward=backward,
        saturation_threshold=saturation_threshold,
        histograms=hist,
        method=chosen,
        method_reason=reason,
        device=device,
        threads=threads,
        chunk=chunk,
        kernel=kernel,
    )
    check_memory(plan)
    _check_draws(widths, inputs, chosen, blocks[0].law.law, kernel)
    return plan
