"""The results directory: corrupt and foreign cells, unwritable output, SIGKILL and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from initsim.cli import main
from initsim.study import Study, load_results
from initsim.study.store import CorruptCellError, ResultsDir, StoreError
from tests.study_helpers import ROOT, SPEC, cell_digests, write

pytestmark = pytest.mark.usefixtures("warm_kernels")


def test_corrupt_cells_are_recomputed_and_changed_specs_refused(tmp_path):
    study = Study.from_toml(write(tmp_path, SPEC))
    out = tmp_path / "r"
    study.run(out)
    before = cell_digests(out)
    path = out / "cells" / "phase-001.npz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated
    with pytest.raises(CorruptCellError):
        ResultsDir(out).read_cell("phase-001", study.spec.sha256)
    assert "phase-001" in load_results(out).missing
    summary = study.run(out)
    assert (summary.computed, summary.recomputed_corrupt) == (1, 1)
    assert cell_digests(out) == before

    # an altered array with intact zip structure is caught by the recorded sha256
    store = ResultsDir(out)
    arrays, _ = store.read_cell("he-lecun-000", study.spec.sha256)
    arrays["q"][0, 0] += 1.0
    with np.load(store.cell_path("he-lecun-000")) as npz:
        payload = {k: npz[k] for k in npz.files}
    payload["q"] = arrays["q"]
    with open(store.cell_path("he-lecun-000"), "wb") as fh:
        np.savez(fh, **payload)
    assert store.cell_state("he-lecun-000", study.spec.sha256) == "corrupt"

    changed = Study.from_toml(write(tmp_path, SPEC.replace("nets = 20", "nets = 21"), "c.toml"))
    with pytest.raises(StoreError, match="different spec"):
        changed.run(out)
    with pytest.raises(StoreError, match="different spec"):
        changed.results(out)
    with pytest.raises(StoreError, match="not an initsim results directory"):
        load_results(tmp_path)
    with pytest.raises(StoreError, match="does not exist"):
        load_results(tmp_path / "nowhere")


def test_unwritable_output_fails_cleanly(tmp_path, capsys):
    spec = write(tmp_path, SPEC)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["study", "run", str(spec), "--out", str(blocker / "out")]) == 2
    assert "cannot write results" in capsys.readouterr().err
    assert blocker.read_text() == "x"
    if os.geteuid() != 0:  # root ignores directory permissions
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert main(["study", "run", str(spec), "--out", str(locked / "out")]) == 2
        assert list(locked.iterdir()) == []


# ----------------------------------------------------------------------------------
# The command line in a subprocess: SIGKILL and resume
# ----------------------------------------------------------------------------------


SLOW_SPEC = """\
name = "killable"
seed = 3

[[experiment]]
name = "deep"
depth = 40
width = 256
nets = 3000
backward = true
[experiment.grid]
bias_std = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45]
"""


def _cli(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "NUMBA_NUM_THREADS": "2"}
    return subprocess.Popen(
        [sys.executable, "-m", "initsim.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def test_sigkill_and_resume_is_bit_identical(tmp_path):
    spec = write(tmp_path, SLOW_SPEC)
    killed = tmp_path / "killed"
    proc = _cli("study", "run", str(spec), "--out", str(killed), "--threads", "2")
    cells = killed / "cells"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if cells.is_dir() and len(list(cells.glob("*.npz"))) >= 2:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    done_at_kill = len(list(cells.glob("*.npz")))
    assert 2 <= done_at_kill < 10
    # every file present is a complete cell (atomic writes), whatever the kill interrupted
    spec_sha = json.loads((killed / "manifest.json").read_text())["spec_sha256"]
    for f in cells.glob("*.npz"):
        ResultsDir(killed).read_cell(f.stem, spec_sha)

    resumed = _cli("study", "run", str(spec), "--out", str(killed), "--json")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    summary = json.loads(out)
    assert summary["reused"] == done_at_kill and summary["computed"] == 10 - done_at_kill
    assert not list(cells.glob(".initsim-tmp-*"))

    whole = tmp_path / "whole"
    once = _cli("study", "run", str(spec), "--out", str(whole), "--threads", "1", "--progress")
    out, err = once.communicate(timeout=300)
    assert once.returncode == 0, err
    assert "study killable: 10/10 cells done" in out
    assert "ETA" in err  # the progress bar
    assert cell_digests(killed) == cell_digests(whole)
    assert _cell_files(killed) == _cell_files(whole)  # byte for byte, timings aside

    # each process learns its threading layer only when a parallel region runs: the
    # manifest records what the cells used, not what the process knew at the start
    for out, threads in ((killed, 2), (whole, 1)):
        prov = json.loads((out / "manifest.json").read_text())["provenance"]
        assert prov["threading_layer"] not in ("unset", None, "") and prov["threads"] == threads
        assert prov["cells_run"]["cells"] == 10


def _cell_files(out) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "cells").glob("*.npz"))}


# ----------------------------------------------------------------------------------
# Cell files are byte-identical; how a cell ran lives next to it
# ----------------------------------------------------------------------------------

SMALL = """\
name = "small"
seed = 9

[[experiment]]
name = "a"
depth = 3
width = 8
nets = 12
backward = true
histograms = 4
[experiment.grid]
init = ["he_normal", "lecun_normal"]
[experiment.checks]
alpha = 0.01
claims = ["preserves-variance"]
"""


def test_write_npz_depends_on_the_arrays_only(tmp_path, monkeypatch):
    import io
    import time as clock

    from initsim.study.store import write_npz

    arrays = {"b": np.arange(6.0).reshape(2, 3), "a": np.array(["x"]), "c": np.int64(3)}

    def written(writer, when: float) -> bytes:
        monkeypatch.setattr(clock, "time", lambda: when)
        buf = io.BytesIO()
        writer(buf, arrays)
        return buf.getvalue()

    # the members' timestamps are fixed, whatever the clock says (numpy's own savez
    # leaves that to the zipfile module of the Python it runs on)
    once = written(write_npz, 1.0e9)
    assert once == written(write_npz, 1.7e9)
    assert once == written(write_npz, 1.7e9 + 1)  # and insertion order does not matter:
    arrays = dict(reversed(arrays.items()))
    assert once == written(write_npz, 1.0e9)
    with np.load(io.BytesIO(once), allow_pickle=False) as npz:
        assert sorted(npz.files) == ["a", "b", "c"]
        assert all(np.array_equal(npz[k], arrays[k]) for k in arrays)
        assert npz["b"].dtype == np.float64 and npz["c"].shape == ()


def test_two_identical_runs_write_byte_identical_cell_files(tmp_path):
    study = Study.from_toml(write(tmp_path, SMALL))
    one, two = tmp_path / "one", tmp_path / "two"
    study.run(one, threads=1)
    time.sleep(2.1)  # a zip timestamp has 2-second resolution: a new one for the second run
    study.run(two, threads=2)
    files = _cell_files(one)
    assert sorted(files) == ["a-000.npz", "a-001.npz"]
    assert files == _cell_files(two)

    # the timings and thread counts are in the sidecar, and back in the loaded provenance
    store = ResultsDir(one)
    run = json.loads(store.run_path("a-000").read_text())
    assert run["cell"] == "a-000" and run["threads"] == 1 and run["elapsed_s"] > 0
    assert run["threading_layer"] != "unset" and run["sha256"] == cell_digests(one)["a-000"]
    _, meta = store.read_cell("a-000", study.spec.sha256)
    assert meta["provenance"]["threads"] == 1 and meta["run"]["elapsed_s"] == run["elapsed_s"]
    with np.load(store.cell_path("a-000")) as npz:
        stored = json.loads(str(npz["__meta__"]))
    assert not {"elapsed_s", "threads", "threading_layer"} & set(stored["provenance"])

    # no checksum covers the sidecar: missing, garbled or another cell's, it is ignored
    store.run_path("a-000").unlink()
    store.run_path("a-001").write_text("{not json")
    two_store = ResultsDir(two)
    two_store.run_path("a-000").rename(store.run_path("a-000").with_name("x"))
    (one / "cells" / "x").rename(store.run_path("a-000"))  # a-000's facts ... of run two
    fresh = ResultsDir(one)
    assert fresh.cell_state("a-000", study.spec.sha256) == "done"
    assert fresh.cell_state("a-001", study.spec.sha256) == "done"
    _, meta = fresh.read_cell("a-001", study.spec.sha256)
    assert meta["run"] == {} and "threads" not in meta["provenance"]
    again = study.run(one)
    assert (again.reused, again.computed) == (2, 0)
    assert _cell_files(one) == files
    # a stale sidecar (an earlier computation's) does not describe a recomputed cell
    store.run_path("a-001").write_text(json.dumps({"cell": "a-001", "sha256": "0" * 64}))
    _, meta = ResultsDir(one).read_cell("a-001", study.spec.sha256)
    assert meta["run"] == {}


# ----------------------------------------------------------------------------------
# The stored form of each kind of cell
# ----------------------------------------------------------------------------------


def test_simulation_result_arrays_round_trip():
    from initsim import simulate
    from initsim.result import SimulationResult

    res = simulate(depth=3, width=8, nets=4, backward=True, histograms=5, seed=1)
    arrays = res.to_arrays()
    # the on-disk names and dtypes of a simulate cell: results written before stay readable
    assert {k: v.dtype.kind for k, v in arrays.items()} == {
        "q": "f",
        "act_mean": "f",
        "act_var": "f",
        "dead_fraction": "f",
        "saturated_fraction": "f",
        "grad_sq": "f",
        "first_nonfinite_layer": "i",
        "hist_h": "i",
        "hist_act": "i",
        "hist_h_edges": "f",
        "hist_act_edges": "f",
    }
    back = SimulationResult.from_arrays(arrays, res.provenance)
    for name in ("q", "act_mean", "act_var", "dead_fraction", "saturated_fraction", "grad_sq"):
        assert np.array_equal(getattr(back, name), getattr(res, name))
    assert np.array_equal(back.first_nonfinite_layer, res.first_nonfinite_layer)
    assert list(back.histograms) == list(res.histograms)
    assert all(np.array_equal(back.histograms[k], res.histograms[k]) for k in res.histograms)
    assert back.provenance == res.provenance

    plain = simulate(depth=2, width=4, nets=2, seed=1)
    assert "grad_sq" not in plain.to_arrays() and not any(
        k.startswith("hist_") for k in plain.to_arrays()
    )
    again = SimulationResult.from_arrays(plain.to_arrays())
    assert again.grad_sq is None and again.histograms is None and again.provenance == {}


def test_check_report_round_trips_through_its_dict():
    from initsim import check, simulate
    from initsim.checks import CheckReport

    report = check(simulate(depth=3, width=16, nets=20, backward=True, seed=2), alpha=0.01)
    data = report.to_dict()
    back = CheckReport.from_dict(json.loads(json.dumps(data)))
    assert back.to_dict() == data
    assert (back.verdict, back.alpha, back.notes) == (report.verdict, report.alpha, report.notes)
    untested = [r for r in back.rows if r.verdict == "N/A"]
    assert all(np.isnan(r.p_value) for r in untested)  # null -> NaN
