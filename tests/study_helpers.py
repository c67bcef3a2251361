"""Shared pieces of the study tests: the test spec, helpers, and faulty cell functions.

The cell functions with planted faults must be importable by Dask worker
processes, so they live here (a module path), not in a test file.
"""

from __future__ import annotations

import json
import os
import textwrap
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from initsim.study.cells import run_cell
from initsim.study.store import ResultsDir

#: Directory for "this fault already happened" markers (set by the test).
MARKER_ENV = "INITSIM_TEST_FAULT_DIR"

ROOT = Path(__file__).resolve().parents[1]

SPEC = """\
name = "tiny"
seed = 7
description = "a small study for the tests"

[defaults]
nets = 20

[[experiment]]
name = "he-lecun"
depth = 4
width = 32
backward = true
[experiment.grid]
init = ["he_normal", "lecun_normal"]
activation = ["relu", "tanh"]
[experiment.checks]
alpha = 0.01

[[experiment]]
name = "phase"
activation = "tanh"
depth = 5
width = 24
init = {name = "variance_scaling"}
[experiment.grid]
init.scale = [0.5, 2.0]
bias_std = [0.0, 0.3]

[[experiment]]
name = "jac"
kind = "jacobian"
depth = 3
width = 12
nets = 5
cases = [{init = "orthogonal"}, {init = "lecun_normal"}]

[[experiment]]
name = "zero"
kind = "train"
sizes = [4, 8, 1]
data = {kind = "teacher", n_samples = 32}
steps = 5
cases = [{init = "zeros"}, {init = "he_normal"}]
"""


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def cell_digests(out: Path) -> dict[str, str]:
    manifest = json.loads((out / "manifest.json").read_text())
    store = ResultsDir(out)
    return {
        cid: store.read_cell(cid, manifest["spec_sha256"])[1]["sha256"] for cid in manifest["cells"]
    }


def _first_time(tag: str) -> bool:
    marker = Path(os.environ[MARKER_ENV]) / tag
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def flaky_cell(cell: Mapping[str, Any], seed: int, threads: int | None):
    """Fail first attempts: each cell index 0 raises once, the first cell 1 kills its worker.

    One worker dies, not one per cell: Dask counts a death against every cell
    processing on that worker, and fails a cell that saw more than
    ``distributed.scheduler.allowed-failures`` (3) of them, so four deaths on
    two workers could fail an innocent cell queued behind each of them.
    """
    index = cell["spawn_key"][1]
    if index == 0 and _first_time(f"raise-{cell['id']}"):
        raise RuntimeError("planted failure")
    if index == 1 and _first_time("exit"):
        os._exit(1)  # the worker process dies: Dask must reschedule the cell
    return run_cell(cell, seed, threads)


def always_failing_cell(cell: Mapping[str, Any], seed: int, threads: int | None):
    """Fail every attempt of cell index 1; compute the others."""
    if cell["spawn_key"][1] == 1:
        raise RuntimeError("planted permanent failure")
    return run_cell(cell, seed, threads)


#: Opened by a test once every study it runs has submitted its cells (see gated_cell).
GATE = threading.Event()


def gated_cell(cell: Mapping[str, Any], seed: int, threads: int | None):
    """Compute a cell once :data:`GATE` is set (in-process Dask workers only)."""
    if not GATE.wait(timeout=120):
        raise RuntimeError("the test never opened the gate")
    return run_cell(cell, seed, threads)


def blocking_cell(cell: Mapping[str, Any], seed: int, threads: int | None):
    """Compute cell index 0 at once; before any other, touch ``waiting`` and wait for ``release``.

    Both files are in the directory named by :data:`MARKER_ENV`.
    """
    if cell["spawn_key"][1] > 0:
        markers = Path(os.environ[MARKER_ENV])
        (markers / "waiting").touch()
        deadline = time.monotonic() + 120
        while not (markers / "release").exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the test never released the cell")
            time.sleep(0.02)
    return run_cell(cell, seed, threads)
