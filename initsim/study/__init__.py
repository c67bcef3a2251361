"""Scripted Monte Carlo studies: a TOML spec in, a resumable results directory out.

>>> import initsim                                              # doctest: +SKIP
>>> study = initsim.Study.from_toml("reports/he-vs-lecun.toml")  # doctest: +SKIP
>>> summary = study.run()                                       # doctest: +SKIP
>>> study.results().table()[:3]                                 # doctest: +SKIP

This is the face of the study feature; its modules own, each importing only those above it:

- :mod:`~initsim.study.cells`: :data:`CELL_KINDS`, the one declaration of each
  kind of cell (parameter schema, required keys, defaults, runner, loader),
  and ``run_cell``, which computes one cell,
- :mod:`~initsim.study.spec`: TOML -> :class:`StudySpec` of :class:`CellSpec`
  (validation with key and line in every error, the spec hash),
- :mod:`~initsim.study.store`: the results directory (manifest, one atomic,
  checksummed, byte-reproducible file per cell, and a sidecar of how it ran),
- :mod:`~initsim.study.results`: :func:`load_results`, :class:`StudyResults`,
  :class:`Cell`, the tidy table and its CSV,
- :mod:`~initsim.study.executors`: where cells run (this process, or Dask),
- :mod:`~initsim.study.run`: :class:`Study` (validate, run, resume) and
  :class:`RunSummary`.

Importing it loads numpy but neither Numba nor scipy (nor Dask): those come
with the first cell computed or result loaded.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from initsim.study.cells import CELL_KINDS, TrainCellResult
    from initsim.study.results import Cell, StudyResults, load_results
    from initsim.study.run import RunSummary, Study
    from initsim.study.spec import CellSpec, SpecError, StudySpec, parse_spec, read_spec

__all__ = [
    "CELL_KINDS",
    "Cell",
    "CellSpec",
    "RunSummary",
    "SpecError",
    "Study",
    "StudyResults",
    "StudySpec",
    "TrainCellResult",
    "load_results",
    "parse_spec",
    "read_spec",
]

# Lazy, as the package's own face: the command line reads initsim.study.spec's limits
# while building its parser without loading the runner, the store and the results.
_LAZY = {
    "CELL_KINDS": "cells",
    "TrainCellResult": "cells",
    "Cell": "results",
    "StudyResults": "results",
    "load_results": "results",
    "RunSummary": "run",
    "Study": "run",
    "CellSpec": "spec",
    "SpecError": "spec",
    "StudySpec": "spec",
    "parse_spec": "spec",
    "read_spec": "spec",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'initsim.study' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"initsim.study.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
