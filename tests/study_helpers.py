"""Cell functions with planted faults, importable by Dask worker processes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from initsim.study_cells import run_cell

#: Directory for "this fault already happened" markers (set by the test).
MARKER_ENV = "INITSIM_TEST_FAULT_DIR"


def _first_time(tag: str) -> bool:
    marker = Path(os.environ[MARKER_ENV]) / tag
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def flaky_cell(cell: Mapping[str, Any], seed: int, threads: int | None):
    """Fail each cell's first attempt: cell index 0 raises, cell 1 kills its worker."""
    index = cell["spawn_key"][1]
    if index == 0 and _first_time(f"raise-{cell['id']}"):
        raise RuntimeError("planted failure")
    if index == 1 and _first_time(f"exit-{cell['id']}"):
        os._exit(1)  # the worker process dies: Dask must reschedule the cell
    return run_cell(cell, seed, threads)


def always_failing_cell(cell: Mapping[str, Any], seed: int, threads: int | None):
    """Fail every attempt of cell index 1; compute the others."""
    if cell["spawn_key"][1] == 1:
        raise RuntimeError("planted permanent failure")
    return run_cell(cell, seed, threads)
