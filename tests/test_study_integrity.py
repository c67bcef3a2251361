"""Store integrity: foreign and damaged cells, Dask task keys, the run lock, the spec copy."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from initsim.cli import main
from initsim.study import Study, load_results
from initsim.study.executors import LocalExecutor
from initsim.study.store import CorruptCellError, ResultsDir, StoreError
from tests.study_helpers import MARKER_ENV, ROOT, SPEC, cell_digests, write

pytestmark = pytest.mark.usefixtures("warm_kernels")

# Two studies alike in everything the old Dask task key held (seed, experiment and
# cell ids) but not in their widths.
TWIN = """\
name = "twin"
seed = 11

[[experiment]]
name = "w"
depth = 3
width = {width}
nets = 12
[experiment.grid]
bias_std = [0.0, 0.1, 0.2]
"""

SMALL = """\
name = "small"
seed = 5

[[experiment]]
name = "a"
depth = 2
width = 4
nets = 2
backward = true
histograms = 3
[experiment.grid]
bias_std = [0.0, 0.1, 0.2]
"""


def _rewrite(store: ResultsDir, cell_id: str, arrays: dict, meta: dict) -> None:
    """Write a cell file with a valid checksum (what a swapped result looked like on disk)."""
    store.write_cell(
        cell_id, arrays, {k: v for k, v in meta.items() if k not in ("cell", "sha256")}
    )


# ----------------------------------------------------------------------------------
# 1. A cell is checked against its spec, not only against its checksum
# ----------------------------------------------------------------------------------


def test_cell_of_another_study_is_rejected_whatever_its_checksum(tmp_path):
    narrow = Study.from_toml(write(tmp_path, TWIN.format(width=16), "narrow.toml"))
    wide = Study.from_toml(write(tmp_path, TWIN.format(width=24), "wide.toml"))
    a, b = tmp_path / "narrow", tmp_path / "wide"
    narrow.run(a)
    wide.run(b)
    before = cell_digests(a)
    store = ResultsDir(a)

    # a plain copy: written for another spec
    (a / "cells" / "w-001.npz").write_bytes((b / "cells" / "w-001.npz").read_bytes())
    assert store.cell_state("w-001", narrow.spec.sha256) == "corrupt"

    # the other study's arrays and provenance stamped with this spec's hash, valid checksum:
    # what a Dask task-key collision wrote
    arrays, meta = ResultsDir(b).read_cell("w-001", wide.spec.sha256)
    _rewrite(store, "w-001", arrays, {**meta, "spec_sha256": narrow.spec.sha256})
    with pytest.raises(CorruptCellError, match=r"another cell|config"):
        store.read_cell("w-001", narrow.spec.sha256)
    # also when the file predates the recorded cell spec (the provenance config is checked)
    legacy = {k: v for k, v in meta.items() if k != "cell_spec"}
    _rewrite(store, "w-001", arrays, {**legacy, "spec_sha256": narrow.spec.sha256})
    with pytest.raises(CorruptCellError, match="widths"):
        store.read_cell("w-001", narrow.spec.sha256)
    # another cell's own file under this cell's name: another stream
    arrays0, meta0 = store.read_cell("w-000", narrow.spec.sha256)
    _rewrite(store, "w-001", arrays0, meta0 | {"cell": "w-001"})
    assert store.cell_state("w-001", narrow.spec.sha256) == "corrupt"

    results = load_results(a)
    assert results.missing == ["w-001"] and list(results.corrupt) == ["w-001"]
    summary = narrow.run(a)
    assert (summary.computed, summary.recomputed_corrupt, summary.reused) == (1, 1, 2)
    assert cell_digests(a) == before


def test_cells_without_a_recorded_cell_spec_stay_valid(tmp_path):
    """Cells written before the cell spec was recorded: accepted when their config matches."""
    study = Study.from_toml(write(tmp_path, SPEC))
    out = tmp_path / "r"
    study.run(out)
    before = cell_digests(out)
    store = ResultsDir(out)
    for cs in study.spec.cells:
        arrays, meta = store.read_cell(cs.id, study.spec.sha256)
        assert meta["cell_spec"] == json.loads(json.dumps(cs.to_dict()))
        del meta["cell_spec"]
        _rewrite(store, cs.id, arrays, meta)
    fresh = ResultsDir(out)
    assert all(fresh.cell_state(c.id, study.spec.sha256) == "done" for c in study.spec.cells)
    again = study.run(out)
    assert (again.reused, again.computed, again.recomputed_corrupt) == (12, 0, 0)
    assert cell_digests(out) == before


# ----------------------------------------------------------------------------------
# 1. Two studies on one Dask scheduler at the same time
# ----------------------------------------------------------------------------------


def test_two_studies_on_one_scheduler_keep_their_own_results(tmp_path):
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    from initsim.study.executors import DaskExecutor
    from tests.study_helpers import GATE, gated_cell

    studies = {
        w: Study.from_toml(write(tmp_path, TWIN.format(width=w), f"w{w}.toml")) for w in (16, 24)
    }
    for w, study in studies.items():
        study.run(tmp_path / f"local{w}", threads=1)
    n_cells = sum(len(s.spec.cells) for s in studies.values())

    GATE.clear()
    cluster = LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        dashboard_address=":0",
        scheduler_kwargs={"dashboard": False},
        silence_logs=40,
    )
    executors = {}
    try:
        executors = {w: DaskExecutor(scheduler=cluster.scheduler_address) for w in studies}
        for ex in executors.values():
            ex.cell_fn = gated_cell
        summaries: dict[int, object] = {}
        errors: list[BaseException] = []

        def run(w: int) -> None:
            try:
                summaries[w] = studies[w].run(tmp_path / f"dask{w}", executor=executors[w])
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(w,)) for w in studies]
        for t in threads:
            t.start()

        def wanted(dask_scheduler) -> int:
            return sum(len(ts.who_wants) for ts in dask_scheduler.tasks.values())

        # both studies have submitted every cell before any cell runs
        deadline = time.monotonic() + 60
        client = executors[16].client
        while client.run_on_scheduler(wanted) < n_cells and time.monotonic() < deadline:
            time.sleep(0.02)
        GATE.set()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads)
        assert not errors, errors
    finally:
        GATE.set()
        for ex in executors.values():
            ex.close()
        cluster.close()
        GATE.clear()
    for w in studies:
        assert summaries[w].computed == 3 and summaries[w].failed == 0, summaries[w].errors
        assert cell_digests(tmp_path / f"dask{w}") == cell_digests(tmp_path / f"local{w}")


def test_dask_task_keys_depend_on_the_cell_content():
    from initsim.study import executors

    narrow = Study({"name": "k", "seed": 1, "experiment": [{"name": "e", "width": 8}]})
    wide = Study({"name": "k", "seed": 1, "experiment": [{"name": "e", "width": 9}]})
    other_seed = Study({"name": "k", "seed": 2, "experiment": [{"name": "e", "width": 8}]})
    keys = {
        executors.task_key(s.spec.cells[0].to_dict(), s.spec.seed, executors.run_cell)
        for s in (narrow, wide, other_seed)
    }
    assert len(keys) == 3 and all("e-000" in k for k in keys)
    cell = narrow.spec.cells[0].to_dict()
    same = executors.task_key(json.loads(json.dumps(cell)), 1, executors.run_cell)
    assert same == executors.task_key(cell, 1, executors.run_cell)


# ----------------------------------------------------------------------------------
# 3. Damaged cell files are recomputed, never a crash
# ----------------------------------------------------------------------------------


def _central_directory(data: bytes) -> int:
    return data.index(b"PK\x01\x02")


def test_unreadable_cells_are_recomputed_and_named(tmp_path, capsys):
    study = Study.from_toml(write(tmp_path, SMALL))
    out = tmp_path / "r"
    study.run(out)
    before = cell_digests(out)
    store = ResultsDir(out)
    arrays, _ = store.read_cell("a-000", study.spec.sha256)

    def damage_all() -> None:
        # "version needed to extract" of the first central directory entry
        p = store.cell_path("a-000")
        data = bytearray(p.read_bytes())
        data[_central_directory(data) + 6 : _central_directory(data) + 8] = b"\xff\xff"
        p.write_bytes(bytes(data))
        # __meta__ a JSON list, and a JSON string
        for cell_id, bad in (("a-001", [1, 2]), ("a-002", "text")):
            payload = {**arrays, "__meta__": np.array(json.dumps(bad))}
            with open(store.cell_path(cell_id), "wb") as fh:
                np.savez(fh, **payload)

    damage_all()
    for cell_id in ("a-000", "a-001", "a-002"):
        with pytest.raises(CorruptCellError):
            store.read_cell(cell_id, study.spec.sha256)
    results = load_results(out)
    assert sorted(results.corrupt) == ["a-000", "a-001", "a-002"]
    assert "a-000" in results.corrupt["a-000"]

    assert main(["study", "table", str(out)]) == 0
    err = capsys.readouterr().err
    assert all(f"cell {c} is damaged" in err for c in ("a-000", "a-001", "a-002"))
    assert main(["report", str(out), "-o", str(tmp_path / "r.pdf")]) == 2
    err = capsys.readouterr().err
    assert "damaged" in err and "a-000" in err

    summary = study.run(out)
    assert (summary.computed, summary.recomputed_corrupt) == (3, 3)
    assert cell_digests(out) == before

    # a directory (or anything but a regular file) in place of a cell file
    store.cell_path("a-001").unlink()
    store.cell_path("a-001").mkdir()
    (store.cell_path("a-001") / "inside").write_text("x")
    os.mkfifo(store.cell_path("a-002").with_suffix(".fifo"))
    store.cell_path("a-002").unlink()
    store.cell_path("a-002").with_suffix(".fifo").rename(store.cell_path("a-002"))
    assert store.cell_state("a-001", study.spec.sha256) == "corrupt"
    assert store.cell_state("a-002", study.spec.sha256) == "corrupt"  # no hang on the FIFO
    summary = study.run(out)
    assert (summary.computed, summary.recomputed_corrupt) == (2, 2)
    assert cell_digests(out) == before
    kept = list((out / "cells").glob("a-001.npz.damaged*"))
    assert len(kept) == 1 and (kept[0] / "inside").read_text() == "x"  # moved aside, not lost


def _zip_structure(data: bytes) -> tuple[set[int], set[int]]:
    """Offsets of the zip headers' bytes, and of the .npy headers' bytes, of an ``.npz`` file."""
    end = data.rfind(b"PK\x05\x06")
    count, _, directory = struct.unpack("<HII", data[end + 10 : end + 20])
    offsets = set(range(directory, len(data)))  # central directory and end record
    npy: set[int] = set()
    at = directory
    for _ in range(count):  # each central entry points at its local header
        name, extra, comment = struct.unpack("<HHH", data[at + 28 : at + 34])
        (local,) = struct.unpack("<I", data[at + 42 : at + 46])
        at += 46 + name + extra + comment
        lname, lextra = struct.unpack("<HH", data[local + 26 : local + 30])
        body = local + 30 + lname + lextra
        assert data[body : body + 6] == b"\x93NUMPY"
        (header,) = struct.unpack("<H", data[body + 8 : body + 10])
        offsets.update(range(local, body))
        npy.update(range(body, body + 10 + header))
    return offsets, npy


def test_every_byte_flip_is_rejected_or_harmless(tmp_path):
    study = Study.from_toml(write(tmp_path, SMALL))
    sha = study.spec.sha256
    out = tmp_path / "r"
    study.run(out)
    store = ResultsDir(out)
    path = store.cell_path("a-001")
    good = path.read_bytes()
    arrays, _ = store.read_cell("a-001", sha)
    # every byte of the zip's local headers, .npy headers, central directory and end
    # record, and every 5th byte of the arrays and metadata, inverted; the zip headers
    # also with bit 3 flipped (a "stored" member claims to be deflated, and so on)
    headers, npy = _zip_structure(good)
    assert {0, len(good) - 1, _central_directory(good)} <= headers
    flips = [(i, 0xFF) for i in sorted(headers | npy | set(range(0, len(good), 5)))]
    flips += [(i, 0x08) for i in sorted(headers)]
    outcomes = {"rejected": 0, "harmless": 0}
    fd = os.open(path, os.O_RDWR)
    try:
        for i, mask in flips:
            os.pwrite(fd, bytes([good[i] ^ mask]), i)
            try:
                got, _ = store.read_cell("a-001", sha)
            except CorruptCellError:
                outcomes["rejected"] += 1
            else:
                assert sorted(got) == sorted(arrays), (i, mask)
                for name in arrays:
                    assert got[name].dtype == arrays[name].dtype, (i, mask, name)
                    assert np.array_equal(got[name], arrays[name], equal_nan=True), (i, mask)
                outcomes["harmless"] += 1
            finally:
                os.pwrite(fd, good[i : i + 1], i)
    finally:
        os.close(fd)
    assert path.read_bytes() == good
    assert outcomes["rejected"] > len(flips) // 2 and outcomes["harmless"] > 0, outcomes


# ----------------------------------------------------------------------------------
# 4. One run at a time per results directory
# ----------------------------------------------------------------------------------


def test_lock_refuses_or_waits_and_keeps_others_temporaries(tmp_path):
    study = Study.from_toml(write(tmp_path, SMALL))
    out = tmp_path / "r"
    manifest = study.manifest()
    first = ResultsDir(out)
    first.prepare(manifest, study.spec.text)
    try:
        holder = json.loads((out / "run.lock").read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        tmp = out / "cells" / ".initsim-tmp-a-000.npzabc"
        tmp.write_bytes(b"in flight")
        second = ResultsDir(out)
        with pytest.raises(StoreError, match=rf"in use by another run \(pid {os.getpid()} on"):
            second.prepare(manifest, study.spec.text)
        assert second.remove_temporaries() == 0
        assert tmp.read_bytes() == b"in flight"  # another live writer's file is kept
        with pytest.raises(StoreError, match="in use"):
            study.run(out)

        waited: list[float] = []

        def wait_for_it() -> None:
            t0 = time.monotonic()
            summary = study.run(out, wait=True)
            waited.append(time.monotonic() - t0)
            waited.append(summary.computed)

        waiter = threading.Thread(target=wait_for_it)
        waiter.start()
        time.sleep(0.5)
        assert waiter.is_alive()
        tmp.unlink()
    finally:
        first.unlock()
    waiter.join(timeout=120)
    assert not waiter.is_alive() and waited[0] >= 0.4 and waited[1] == 3
    assert first.remove_temporaries() == 0  # not held: takes the lock for the sweep
    (out / "cells" / ".initsim-tmp-a-000.npzold").write_bytes(b"left by a killed run")
    assert ResultsDir(out).remove_temporaries() == 1


def _python(*args: str, stderr=subprocess.PIPE, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, "NUMBA_NUM_THREADS": "1", **env},
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


_HOLDER = """\
import json, sys
from initsim.study import Study
from initsim.study.executors import LocalExecutor
from tests.study_helpers import blocking_cell
executor = LocalExecutor(cell_fn=blocking_cell)
summary = Study.from_toml(sys.argv[1]).run(sys.argv[2], executor=executor)
print(json.dumps(summary.to_dict()))
"""


def test_second_run_process_on_the_same_out_is_refused_or_waits(tmp_path):
    spec = write(tmp_path, SMALL)
    out = tmp_path / "r"
    markers = tmp_path / "markers"
    markers.mkdir()
    first = _python("-c", _HOLDER, str(spec), str(out), **{MARKER_ENV: str(markers)})
    procs = [first]
    try:
        deadline = time.monotonic() + 120
        while not (markers / "waiting").exists() and time.monotonic() < deadline:
            assert first.poll() is None, first.communicate()
            time.sleep(0.02)
        # the first run has finished a-000 and is inside a-001
        second = _python("-m", "initsim.cli", "study", "run", str(spec), "--out", str(out))
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2, err
        assert f"in use by another run (pid {first.pid} on {socket.gethostname()}" in err
        assert "--wait" in err and "Traceback" not in err

        log = tmp_path / "third.err"
        with open(log, "w") as err_file:
            third = _python(
                *("-m", "initsim.cli", "study", "run", str(spec), "--out", str(out)),
                *("--wait", "--json"),
                stderr=err_file,
            )
        procs.append(third)
        deadline = time.monotonic() + 120
        while "waiting for" not in log.read_text() and time.monotonic() < deadline:
            assert third.poll() is None, log.read_text()
            time.sleep(0.02)
        assert f"pid {first.pid} on" in log.read_text()
        time.sleep(0.3)
        assert third.poll() is None  # still waiting for the first
        (markers / "release").touch()
        out1, err1 = first.communicate(timeout=120)
        assert first.returncode == 0 and "Traceback" not in err1, err1
        assert json.loads(out1)["computed"] == 3
        out3, _ = third.communicate(timeout=120)
        assert third.returncode == 0, log.read_text()
        assert (json.loads(out3)["reused"], json.loads(out3)["computed"]) == (3, 0)
    finally:
        (markers / "release").touch()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


# ----------------------------------------------------------------------------------
# 15. The spec copy
# ----------------------------------------------------------------------------------


def test_deleted_spec_copy_is_rewritten_on_resume(tmp_path):
    path = write(tmp_path, SMALL)
    study = Study.from_toml(path)
    out = tmp_path / "r"
    study.run(out)
    assert (out / "spec.toml").read_text() == path.read_text()
    (out / "spec.toml").unlink()
    assert study.run(out).reused == 3
    assert (out / "spec.toml").read_text() == path.read_text()
    assert not list(out.glob(".initsim-tmp-*"))


def test_local_executor_records_the_cell_it_computed(tmp_path):
    study = Study.from_toml(write(tmp_path, SMALL))
    cells = [c.to_dict() for c in study.spec.cells]
    (cell_id, (_, meta)), *_ = LocalExecutor(threads=1).run(cells[:1], study.spec.seed)
    assert cell_id == "a-000" and meta["cell_spec"] == cells[0]
