"""Compute one study cell: resolved parameters in, plain arrays and metadata out.

This is the function executors ship to workers, so it takes and returns only
picklable plain data (a cell as a dict, numpy arrays, JSON-ready metadata)
and depends on nothing but the cell and the study seed. One lock per process
serialises cells, so a Dask worker running several tasks at once never
enters two numba parallel regions concurrently (the workqueue threading
layer is not thread-safe) and never uses more than its share of cores.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["cell_seed", "run_cell"]

_LOCK = threading.Lock()

# Sub-streams of a training cell (appended to the cell's spawn key).
_TRAIN_DATA, _TRAIN_INIT, _TRAIN_BATCHES = 0, 1, 2


def cell_seed(seed: int, spawn_key: tuple[int, ...] | list[int]) -> np.random.SeedSequence:
    """Return the seed sequence of a cell.

    Parameters
    ----------
    seed : int
        The study's seed (entropy).
    spawn_key : tuple of int
        The cell's spawn key.

    Returns
    -------
    numpy.random.SeedSequence
        ``SeedSequence(seed, spawn_key=spawn_key)``: depends on nothing else,
        so a cell gives the same numbers on any executor.
    """
    return np.random.SeedSequence(seed, spawn_key=tuple(int(k) for k in spawn_key))


def _named(module: Any, value: Any) -> Any:
    if isinstance(value, Mapping):
        params = {k: v for k, v in value.items() if k != "name"}
        return module.get(value["name"], **params)
    return module.get(value)


def _resolved(params: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments with ``init``/``activation`` names or tables turned into objects."""
    from initsim import activations, initializers

    kwargs = dict(params)
    if "init" in kwargs:
        kwargs["init"] = _named(initializers, kwargs["init"])
    if "activation" in kwargs:
        kwargs["activation"] = _named(activations, kwargs["activation"])
    return kwargs


def _simulate_cell(cell: Mapping[str, Any], ss: np.random.SeedSequence, threads: int | None):
    from initsim.checks import check
    from initsim.result import SUMMARY_FIELDS
    from initsim.simulation import simulate

    result = simulate(**_resolved(cell["params"]), seed=ss, threads=threads, progress=False)
    arrays: dict[str, np.ndarray] = {
        name: getattr(result, name) for name in SUMMARY_FIELDS if getattr(result, name) is not None
    }
    arrays["first_nonfinite_layer"] = result.first_nonfinite_layer
    if result.histograms is not None:
        for key, value in result.histograms.items():
            arrays[f"hist_{key}"] = value
    meta: dict[str, Any] = {"provenance": result.provenance, "checks": None}
    if cell.get("checks"):
        report = check(result, alpha=cell["checks"]["alpha"], claims=cell["checks"]["claims"])
        meta["checks"] = report.to_dict()
    return arrays, meta


def _jacobian_cell(cell: Mapping[str, Any], ss: np.random.SeedSequence, threads: int | None):
    from initsim.jacobian import jacobian_spectrum

    spec = jacobian_spectrum(**_resolved(cell["params"]), seed=ss, threads=threads)
    meta = {"provenance": spec.provenance, "checks": None}
    return {"singular_values": spec.singular_values}, meta


def _train_data(data: Mapping[str, Any], n_in: int, n_out: int, ss: np.random.SeedSequence):
    from initsim import train as tr

    kind = data["kind"]
    opts = {k: v for k, v in data.items() if k != "kind"}
    if kind == "teacher":
        n_samples = opts.pop("n_samples", 256)
        if isinstance(opts.get("activation"), Mapping):
            from initsim import activations

            opts["activation"] = _named(activations, opts["activation"])
        opts.setdefault("n_out", n_out)
        if opts["n_out"] != n_out:
            raise ValueError(f"data.n_out ({opts['n_out']}) must equal sizes[-1] ({n_out})")
        return tr.teacher_data(n_samples, n_in, opts.pop("n_out"), **opts, seed=ss)
    if kind == "mixture":
        n_samples = opts.pop("n_samples", 256)
        n_classes = opts.pop("n_classes", n_out)
        return tr.mixture_data(n_samples, n_in, n_classes, **opts, seed=ss)
    X, y = tr.digits_data()
    if X.shape[1] != n_in:
        raise ValueError(f"data kind 'digits' has {X.shape[1]} inputs; sizes[0] is {n_in}")
    return X, y


def _train_cell(cell: Mapping[str, Any], ss: np.random.SeedSequence, threads: int | None):
    import numba

    from initsim import activations, initializers
    from initsim import train as tr

    p = cell["params"]
    sizes = list(p["sizes"])
    key = tuple(ss.spawn_key)
    child = lambda *k: np.random.SeedSequence(ss.entropy, spawn_key=(*key, *k))  # noqa: E731
    X, Y = _train_data(p["data"], sizes[0], sizes[-1], child(_TRAIN_DATA))
    init = _named(initializers, p["init"])
    activation = _named(activations, p["activation"])
    bias = (
        p["bias"] if not isinstance(p["bias"], str | Mapping) else _named(initializers, p["bias"])
    )
    losses, distances, norms = [], [], []
    previous = numba.get_num_threads()
    if threads is not None:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        for r in range(int(p["repeats"])):
            mlp = tr.init_mlp(sizes, init, activation, bias=bias, seed=child(_TRAIN_INIT, r))
            out = tr.train(
                mlp,
                X,
                Y,
                lr=p["lr"],
                steps=p["steps"],
                batch_size=p.get("batch_size"),
                loss=p["loss"],
                seed=child(_TRAIN_BATCHES, r),
            )
            losses.append(out.loss)
            distances.append(out.unit_distance)
            norms.append(out.grad_norms)
    finally:
        numba.set_num_threads(previous)
    arrays = {
        "loss": np.stack(losses),
        "unit_distance": np.stack(distances),
        "grad_norms": np.stack(norms),
    }
    from initsim.simulation import versions

    provenance = {
        "seed_entropy": str(ss.entropy),
        "spawn_key": list(key),
        "config": {k: v for k, v in p.items()},
        "versions": versions(),
    }
    return arrays, {"provenance": provenance, "checks": None}


_RUNNERS = {"simulate": _simulate_cell, "jacobian": _jacobian_cell, "train": _train_cell}


def run_cell(
    cell: Mapping[str, Any], seed: int, threads: int | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Compute one cell.

    Parameters
    ----------
    cell : mapping
        :meth:`initsim.study_spec.CellSpec.to_dict` of the cell.
    seed : int
        The study's seed.
    threads : int, optional
        Numba threads for this cell (default: all available).

    Returns
    -------
    arrays : dict of numpy.ndarray
        The cell's per-net arrays (what the store writes).
    meta : dict
        JSON-ready ``{"provenance": ..., "checks": CheckReport.to_dict() or None}``.
    """
    ss = cell_seed(seed, cell["spawn_key"])
    with _LOCK:
        arrays, meta = _RUNNERS[cell["kind"]](cell, ss, threads)
    meta["provenance"] = _json_safe(meta["provenance"])
    return {k: np.ascontiguousarray(v) for k, v in arrays.items()}, meta


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
