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
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from initsim import activations as _activations
from initsim import initializers as _initializers
from initsim import keywords
from initsim._validate import check_choice, check_int, check_real
from initsim.engine.exact import INPUT_GAUSSIAN, INPUT_GIVEN, INPUT_SPHERE
from initsim.provenance import check_threads, json_safe

__all__ = [
    "DEFAULT_SATURATION_THRESHOLD",
    "DenseLayer",
    "RunPlan",
    "choose_method",
    "make_plan",
]

#: ``|phi'(h)|`` below this counts as saturated (sigmoid: |h| > 4.6; tanh: |h| > 3.0).
DEFAULT_SATURATION_THRESHOLD: float = keywords.SIMULATE["saturation_threshold"].default

_INPUT_CODES = {"gaussian": INPUT_GAUSSIAN, "sphere": INPUT_SPHERE}
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
            "activation": act.name,
            "activation_param": act.param,
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


def _widths(depth: int, width: Any, input_dim: Any) -> np.ndarray:
    if isinstance(width, int | np.integer) and not isinstance(width, bool):
        hidden = [check_int("width", width)] * depth
    else:
        try:
            hidden = [check_int("width", w) for w in width]
        except TypeError:
            raise ValueError(f"width must be an int or a list of ints; got {width!r}") from None
        if len(hidden) != depth:
            raise ValueError(
                f"width as a list must give one width per hidden layer: expected {depth} "
                f"(depth), got {len(hidden)}"
            )
    n0 = hidden[0] if input_dim is None else check_int("input_dim", input_dim)
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
    bins = check_int("histograms['bins']", spec.get("bins", 50))
    h_range = tuple(spec.get("h_range", (-5.0, 5.0)))
    default_act = (-1.5, 1.5) if activation.bounded else (-5.0, 5.0)
    act_range = tuple(spec.get("act_range", default_act))
    for key, rng in (("h_range", h_range), ("act_range", act_range)):
        if len(rng) != 2 or not all(math.isfinite(float(v)) for v in rng) or rng[0] >= rng[1]:
            raise ValueError(f"histograms['{key}'] must be two finite numbers lo < hi; got {rng}")
    return {"bins": bins, "h_range": h_range, "act_range": act_range}


def _input(input: Any, n0: int, inputs: int) -> tuple[str, int, np.ndarray]:
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
    check_choice("method", method, keywords.METHODS)
    why_not = _exact_applies(law.law, float(law.loc), backward, widths)
    if method == "exact":
        if why_not is not None:
            raise ValueError(
                f"method='exact' handles zero-mean Gaussian and Haar-orthogonal weights; this "
                f"initializer gives {why_not}: use method='dense'"
            )
        return "exact", "asked for"
    if method == "dense":
        return "dense", "asked for"
    if why_not is not None:
        return "dense", f"auto: the exact sampler cannot run {why_not}"
    if not _exact_cheaper(law.law, inputs, widths):
        return "dense", "auto: fewer operations than the exact sampler at these widths and inputs"
    if device == "cuda":
        from initsim.gpu import EXACT_MAX_INPUTS

        if inputs > EXACT_MAX_INPUTS:  # the GPU exact kernels take a few inputs only
            return "dense", f"auto: the GPU exact kernels take at most {EXACT_MAX_INPUTS} inputs"
    return "exact", "auto: applies, and fewer operations than the dense sampler"


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
) -> RunPlan:
    """Validate a run and plan it (the arguments are :func:`initsim.simulate`'s).

    Parameters
    ----------
    activation, init, depth, width, input_dim, bias_std, nets, inputs, input, method
        As in :func:`initsim.simulate`.
    backward, threads, histograms, saturation_threshold, chunk_size, device
        As in :func:`initsim.simulate`.

    Returns
    -------
    RunPlan
        The validated plan.

    Raises
    ------
    ValueError
        For any invalid argument; the message names it and the valid range.
    """
    check_choice("device", device, keywords.DEVICES)
    depth = check_int("depth", depth)
    nets = check_int("nets", nets)
    inputs = check_int("inputs", inputs)
    widths = _widths(depth, width, input_dim)
    bias_std = check_real("bias_std", bias_std, minimum=0.0)
    saturation_threshold = check_real("saturation_threshold", saturation_threshold, minimum=0.0)
    try:
        act = _activations.get(activation)
    except TypeError as err:
        raise ValueError(f"activation: {err}") from None
    try:
        ini = _initializers.get(init)
    except TypeError as err:
        raise ValueError(f"init: {err}") from None
    input_name, input_code, given = _input(input, int(widths[0]), inputs)
    hist = _histograms(histograms, act)
    threads = check_threads(threads)
    if chunk_size is not None:
        chunk = check_int("chunk_size", chunk_size)
    elif device == "cuda":
        chunk = min(nets, _CHUNK_GPU)  # a GPU wants many nets per launch
    else:
        chunk = max(1, min(nets, _CHUNK_ONE_INPUT if inputs == 1 else _CHUNK_INPUTS))

    # one evaluation per distinct (fan_in, fan_out): deep nets repeat the same layer
    fans = [(int(widths[t]), int(widths[t + 1])) for t in range(depth)]
    law_of = {f: ini.law_spec(*f) for f in set(fans)}
    orthogonal = law_of[fans[0]].law == "orthogonal"
    scale_of = {
        f: float(law_of[f].gain) if orthogonal else math.sqrt(ini.variance(*f)) for f in law_of
    }
    blocks = tuple(DenseLayer(f[0], f[1], law_of[f], scale_of[f]) for f in fans)
    chosen, reason = choose_method(
        method, blocks[0].law, inputs, bool(backward), widths, device=device
    )
    return RunPlan(
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
        backward=bool(backward),
        saturation_threshold=saturation_threshold,
        histograms=hist,
        method=chosen,
        method_reason=reason,
        device=device,
        threads=threads,
        chunk=chunk,
    )
