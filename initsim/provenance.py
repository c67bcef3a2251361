"""Provenance of a run: versions, threads, config hash, JSON-safe values (declared once).

Every result initsim returns or stores carries a provenance record built from
these helpers: the seed (entropy, spawn key, root key), the configuration and
its sha256, the kernel, the Numba threads and threading layer, and the versions
of what the numbers depend on. :func:`numba_threads` is the one place where a
run's thread count is checked and set, with one policy: a count above
``NUMBA_NUM_THREADS`` is an error, never silently lowered.

Numba is imported inside the functions that need it, so importing this module
stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np

from initsim._validate import check_int
from initsim._version import __version__

__all__ = [
    "check_threads",
    "config_hash",
    "json_float",
    "json_safe",
    "numba_threads",
    "seed_record",
    "threading_layer",
    "versions",
]


def versions() -> dict[str, str]:
    """Versions of initsim and of what its numbers depend on.

    Returns
    -------
    dict
        initsim, numpy, numba, scipy and python versions.
    """
    import numba
    import scipy

    return {
        "initsim": __version__,
        "numpy": np.__version__,
        "numba": numba.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
    }


def threading_layer() -> str:
    """Numba's threading layer, or ``"unset"`` before any parallel region has run.

    Returns
    -------
    str
        ``"omp"``, ``"tbb"``, ``"workqueue"`` or ``"unset"``.
    """
    import numba

    try:
        return str(numba.threading_layer())
    except ValueError:  # no parallel region has run yet in this process
        return "unset"


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 of a configuration's canonical JSON (sorted keys, no whitespace).

    Parameters
    ----------
    config : mapping
        JSON-serialisable configuration (non-JSON values are written with ``str``).

    Returns
    -------
    str
        The hex digest.
    """
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def json_float(x: float) -> float | str:
    """Return a float for JSON, which has no inf/NaN: "inf", "-inf" and "nan" instead.

    Parameters
    ----------
    x : float
        The number.

    Returns
    -------
    float or str
        ``x`` itself when finite.
    """
    x = float(x)
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def json_safe(value: Any, *, nonfinite: Literal["string", "null"] = "string") -> Any:
    """Convert a nested value to plain JSON types.

    Mappings become dicts with string keys, tuples and arrays lists, numpy
    scalars Python scalars; anything else that JSON cannot hold is written with
    ``str``.

    Parameters
    ----------
    value : object
        The value.
    nonfinite : {"string", "null"}
        How inf and NaN are written: as the strings of :func:`json_float`
        (stored provenance, ``--json`` tables) or as ``null`` (the reports of
        :func:`initsim.verify`).

    Returns
    -------
    object
        A value :func:`json.dumps` writes without ``allow_nan``.
    """
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, nonfinite=nonfinite) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list | tuple):
        return [json_safe(v, nonfinite=nonfinite) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return json_float(value) if nonfinite == "string" else None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def seed_record(ss: np.random.SeedSequence, root: np.ndarray) -> dict[str, Any]:
    """Return the seed part of a provenance record.

    Parameters
    ----------
    ss : numpy.random.SeedSequence
        The run's seed sequence.
    root : numpy.ndarray
        Its root key (:func:`initsim.rng.root_key`).

    Returns
    -------
    dict
        ``seed_entropy`` (a string: entropies exceed 64 bits), ``spawn_key`` and
        ``root_key``.
    """
    return {
        "seed_entropy": str(ss.entropy),
        "spawn_key": list(ss.spawn_key),
        "root_key": [int(w) for w in root],
    }


def check_threads(threads: Any) -> int | None:
    """Check a requested Numba thread count (None: every thread).

    Parameters
    ----------
    threads : int or None
        The request.

    Returns
    -------
    int or None
        The request, as an int.

    Raises
    ------
    ValueError
        If it is not an integer between 1 and ``NUMBA_NUM_THREADS``.
    """
    if threads is None:
        return None
    import numba

    maximum = numba.config.NUMBA_NUM_THREADS
    threads = check_int("threads", threads)
    if threads > maximum:
        raise ValueError(f"threads must be between 1 and {maximum}; got {threads}")
    return threads


@contextmanager
def numba_threads(threads: int | None) -> Iterator[int]:
    """Run the body on ``threads`` Numba threads, restoring the previous count after.

    Parameters
    ----------
    threads : int or None
        Between 1 and ``NUMBA_NUM_THREADS``; None keeps the current count.

    Yields
    ------
    int
        The thread count the body runs with (for the provenance).

    Raises
    ------
    ValueError
        If ``threads`` is not an integer in range (checked before anything runs).
    """
    import numba

    threads = check_threads(threads)
    previous = numba.get_num_threads()
    try:
        if threads is not None:
            numba.set_num_threads(threads)
        yield numba.get_num_threads()
    finally:
        numba.set_num_threads(previous)
