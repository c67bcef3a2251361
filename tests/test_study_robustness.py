"""Robustness of running studies and of the CLI: full disks, Ctrl-C, bad paths, no cluster.

Every failure here must end in one clear line on stderr (exit 2, or 130 for
Ctrl-C), never a traceback, and must leave no half-written file behind while
keeping the cells already stored.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import time
from pathlib import Path

import pytest

from initsim import _files
from initsim.cli import main
from initsim.study import Study, StudySpec, load_results
from initsim.study.store import ResultsDir, StoreError
from tests.study_helpers import cell_digests, write

pytestmark = pytest.mark.usefixtures("warm_kernels")

# Three small simulate cells in "he", one in "tanh": quick to compute.
MINI = """\
name = "mini"
seed = 3

[defaults]
nets = 4
depth = 2
width = 8

[[experiment]]
name = "he"
[experiment.grid]
init = ["he_normal", "lecun_normal", "orthogonal"]

[[experiment]]
name = "tanh"
activation = "tanh"
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished results directory of MINI (copy it before changing it)."""
    base = tmp_path_factory.mktemp("finished")
    out = base / "results"
    Study.from_toml(write(base, MINI)).run(out, threads=1, progress=False)
    return out


def _copy(finished: Path, tmp_path: Path) -> Path:
    out = tmp_path / "results"
    shutil.copytree(finished, out)
    return out


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _leftovers(folder: Path) -> list[Path]:
    return sorted(folder.rglob(f"{_files.TMP_PREFIX}*"))


def _enospc(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _enospc_for_cells(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moving a cell file into place fail as on a full disk (other files still work)."""
    real = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        if str(dst).endswith(".npz"):
            _enospc()
        real(src, dst)

    monkeypatch.setattr(_files.os, "replace", replace)


# ----------------------------------------------------------------------------------
# 5. a full disk
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["replace", "fsync"])
def test_full_disk_while_writing_the_manifest_leaves_nothing(tmp_path, monkeypatch, capsys, where):
    spec = write(tmp_path, MINI)
    out = tmp_path / "new" / "results"
    monkeypatch.setattr(_files.os, where, _enospc)
    capsys.readouterr()
    assert main(["study", "run", str(spec), "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "manifest.json" in line and "disk is full" in line
    assert not (tmp_path / "new").exists()  # no empty cells/ folder, no parent left


def test_full_disk_before_anything_is_written(tmp_path, monkeypatch, capsys):
    spec = write(tmp_path, MINI)
    out = tmp_path / "new" / "results"
    monkeypatch.setattr(_files.tempfile, "mkstemp", _enospc)
    capsys.readouterr()
    assert main(["study", "run", str(spec), "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(out) in line and "disk is full" in line
    assert not (tmp_path / "new").exists()


def test_atomic_write_on_a_full_disk_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "data.txt"
    target.write_text("old")
    monkeypatch.setattr(_files.os, "fsync", _enospc)
    with pytest.raises(_files.DiskFullError, match=r"data\.txt.*the disk is full") as info:
        with _files.atomic_write(target, "w") as fh:
            fh.write("new")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert target.read_text() == "old" and _leftovers(tmp_path) == []


def test_full_disk_while_writing_cells_keeps_the_stored_ones(
    finished, tmp_path, monkeypatch, capsys
):
    out = _copy(finished, tmp_path)
    spec = write(tmp_path, MINI)
    before = cell_digests(out)
    (out / "cells" / "he-001.npz").unlink()
    (out / "cells" / "tanh-000.npz").unlink()
    _enospc_for_cells(monkeypatch)
    capsys.readouterr()
    assert main(["study", "run", str(spec), "--out", str(out), "--threads", "1"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "disk is full" in line and "he-001.npz" in line
    assert "2 of 4 cells are kept" in line and "resume" in line
    assert _leftovers(out) == []
    store = ResultsDir(out)
    sha = json.loads((out / "manifest.json").read_text())["spec_sha256"]
    for cid in ("he-000", "he-002"):  # data already stored is untouched
        assert store.read_cell(cid, sha)[1]["sha256"] == before[cid]
    monkeypatch.undo()
    assert main(["study", "run", str(spec), "--out", str(out), "--threads", "1"]) == 0
    assert cell_digests(out) == before


def test_full_disk_while_writing_the_csv(finished, tmp_path, monkeypatch, capsys):
    out = _copy(finished, tmp_path)
    csv = tmp_path / "table.csv"
    monkeypatch.setattr(_files.os, "replace", _enospc)
    capsys.readouterr()
    assert main(["study", "table", str(out), "--csv", str(csv)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "table.csv" in line and "disk is full" in line
    assert not csv.exists() and _leftovers(tmp_path) == []


# ----------------------------------------------------------------------------------
# 10. a scheduler that does not answer, or has no worker
# ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_scheduler_answers(tmp_path, capsys):
    pytest.importorskip("distributed")
    spec = write(tmp_path, MINI)
    address = f"tcp://127.0.0.1:{_free_port()}"
    args = ["study", "run", str(spec), "--out", str(tmp_path / "o"), "--scheduler", address]
    capsys.readouterr()
    start = time.perf_counter()
    assert main([*args, "--scheduler-timeout", "1"]) == 2
    assert time.perf_counter() - start < 8
    line = _one_line(capsys.readouterr().err)
    assert "cannot connect to the Dask scheduler" in line and address in line
    assert "no scheduler answered within 1 s" in line
    assert "dask scheduler" in line and "dask worker" in line
    assert not (tmp_path / "o").exists()


def test_scheduler_without_workers(tmp_path, capsys):
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    spec = write(tmp_path, MINI)
    with LocalCluster(
        n_workers=0, processes=False, protocol="tcp", host="127.0.0.1", dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        args = ["study", "run", str(spec), "--out", str(tmp_path / "o"), "--scheduler", address]
        capsys.readouterr()
        start = time.perf_counter()
        assert main([*args, "--scheduler-timeout", "1.5"]) == 2
        assert time.perf_counter() - start < 10
    line = _one_line(capsys.readouterr().err)
    assert "no worker joined within 1.5 s" in line and f"dask worker {address}" in line
    assert not (tmp_path / "o").exists()


def test_scheduler_timeout_is_validated(tmp_path, capsys):
    pytest.importorskip("distributed")
    spec = write(tmp_path, MINI)
    with pytest.raises(ValueError, match="scheduler_timeout must be a number > 0"):
        Study.from_toml(spec).run(
            tmp_path / "o", scheduler="tcp://127.0.0.1:1", scheduler_timeout=0
        )
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------------
# 11. other tracebacks
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["missing-folder", "dot", "a-directory", "parent-file"])
def test_table_csv_to_a_bad_path(finished, tmp_path, monkeypatch, capsys, case):
    out = _copy(finished, tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    target, needle = {
        "missing-folder": ("nowhere/t.csv", "does not exist"),
        "dot": (".", "is a directory"),
        "a-directory": (str(tmp_path), "is a directory"),
        "parent-file": ("afile/t.csv", "not a directory"),
    }[case]
    capsys.readouterr()
    assert main(["study", "table", str(out), "--csv", target]) == 2
    line = _one_line(capsys.readouterr().err)
    assert needle in line and "--csv" in line
    assert _leftovers(tmp_path) == [] and not list(tmp_path.glob("*.csv"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_table_csv_to_a_read_only_folder(finished, tmp_path, capsys):
    out = _copy(finished, tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        capsys.readouterr()
        assert main(["study", "table", str(out), "--csv", str(locked / "t.csv")]) == 2
        assert "permission denied" in _one_line(capsys.readouterr().err)
    finally:
        locked.chmod(0o700)


def test_table_csv_when_the_writer_is_refused(finished, tmp_path, monkeypatch, capsys):
    # a read-only file system as the writer sees it (root passes every access check)
    out = _copy(finished, tmp_path)

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(_files.tempfile, "mkstemp", refuse)
    capsys.readouterr()
    assert main(["study", "table", str(out), "--csv", str(tmp_path / "t.csv")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(tmp_path) in line and os.strerror(errno.EROFS) in line
    assert not (tmp_path / "t.csv").exists()


def test_report_when_reports_is_a_file(finished, tmp_path, monkeypatch, capsys):
    out = _copy(finished, tmp_path)
    monkeypatch.chdir(tmp_path)
    Path("reports").write_text("not a folder")
    capsys.readouterr()
    assert main(["report", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "'reports'" in line and "not a directory" in line and "-o" in line
    assert Path("reports").read_text() == "not a folder"


def test_ctrl_c_during_a_run_keeps_the_finished_cells(tmp_path, monkeypatch, capsys):
    from initsim.study import executors
    from initsim.study.cells import run_cell

    calls = []

    def interrupted_after_one(cell, seed, threads):
        calls.append(cell["id"])
        if len(calls) > 1:
            raise KeyboardInterrupt
        return run_cell(cell, seed, threads)

    real = executors.make_executor

    def make(**kwargs):
        return real(**kwargs, cell_fn=interrupted_after_one)

    monkeypatch.setattr(executors, "make_executor", make)
    spec = write(tmp_path, MINI)
    out = tmp_path / "o"
    capsys.readouterr()
    try:
        rc = main(["study", "run", str(spec), "--out", str(out), "--threads", "1"])
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped initsim.cli.main")
    assert rc == 130
    line = _one_line(capsys.readouterr().err)
    assert "interrupted" in line and "1 of 4 cells kept" in line and "resume" in line
    assert sorted(p.name for p in (out / "cells").iterdir()) == ["he-000.npz", "he-000.run.json"]
    monkeypatch.undo()
    summary = Study.from_toml(spec).run(out, threads=1)
    assert (summary.reused, summary.computed) == (1, 3)


def test_ctrl_c_elsewhere_is_one_line(monkeypatch, capsys):
    from initsim import initializers

    def interrupt(**kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(initializers, "catalogue", interrupt)
    try:
        rc = main(["initializers"])
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped initsim.cli.main")
    assert rc == 130
    assert _one_line(capsys.readouterr().err) == "initsim initializers: interrupted"


@pytest.mark.parametrize("damage", ["null", "missing"])
def test_manifest_without_a_spec(finished, tmp_path, capsys, damage):
    out = _copy(finished, tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    if damage == "null":
        manifest["spec"] = None
    else:
        del manifest["spec"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match=r"manifest\.json.*spec"):
        load_results(out)
    for argv in (["study", "table", str(out)], ["report", str(out), "-o", "r.pdf"]):
        capsys.readouterr()
        assert main(argv) == 2
        assert "manifest.json" in _one_line(capsys.readouterr().err)


# ----------------------------------------------------------------------------------
# 13. the Study API and the CLI options
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [None, [1, 2], 3, b"name"])
def test_study_of_a_wrong_type_is_a_value_error(bad):
    with pytest.raises(ValueError, match=r"Study expects .*mapping.*StudySpec.*TOML file"):
        Study(bad)


def test_study_of_a_path_reads_the_toml(tmp_path):
    spec = write(tmp_path, MINI)
    for source in (spec, str(spec)):
        study = Study(source)
        assert isinstance(study.spec, StudySpec) and study.spec.name == "mini"
        assert study.spec.sha256 == Study.from_toml(spec).spec.sha256
    with pytest.raises(ValueError, match=r"x\.toml"):
        Study(str(tmp_path / "x.toml"))


def test_only_accepts_a_single_name(tmp_path):
    study = Study.from_toml(write(tmp_path, MINI))
    summary = study.run(tmp_path / "o", only="he", threads=1)
    assert (summary.cells, summary.computed) == (3, 3)
    with pytest.raises(ValueError, match="unknown experiment 'h'"):
        study.run(tmp_path / "o", only=["h"])
    with pytest.raises(ValueError, match="only must be"):
        study.run(tmp_path / "o", only=3)


@pytest.mark.parametrize("threads", [0, -1, 1000, 2.5])
def test_threads_are_checked_before_anything_runs(tmp_path, threads):
    study = Study.from_toml(write(tmp_path, MINI))
    with pytest.raises(ValueError, match="threads"):
        study.run(tmp_path / "o", threads=threads)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("threads", ["0", "1000"])
def test_cli_threads_are_checked_before_anything_runs(tmp_path, capsys, threads):
    import numba

    spec = write(tmp_path, MINI)
    capsys.readouterr()
    rc = main(["study", "run", str(spec), "--out", str(tmp_path / "o"), "--threads", threads])
    assert rc == 2
    line = _one_line(capsys.readouterr().err)
    assert f"between 1 and {numba.config.NUMBA_NUM_THREADS}" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("address", ["not a url", "tcp://", "tcp://host", "http://h:1", "h:99999"])
def test_a_malformed_scheduler_address(tmp_path, capsys, address):
    spec = write(tmp_path, MINI)
    out = tmp_path / "o"
    capsys.readouterr()
    assert main(["study", "run", str(spec), "--out", str(out), "--scheduler", address]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "tcp://HOST:PORT" in line and repr(address) in line
    assert not out.exists()


def test_out_as_a_dangling_symlink(tmp_path, capsys):
    spec = write(tmp_path, MINI)
    out = tmp_path / "link"
    out.symlink_to(tmp_path / "gone")
    capsys.readouterr()
    assert main(["study", "run", str(spec), "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "File exists" not in line
    assert "symbolic link" in line and "gone" in line
    assert out.is_symlink() and not (tmp_path / "gone").exists()


def test_out_as_a_file(tmp_path, capsys):
    spec = write(tmp_path, MINI)
    out = tmp_path / "afile"
    out.write_text("x")
    capsys.readouterr()
    assert main(["study", "run", str(spec), "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "File exists" not in line and "not a directory" in line
    assert out.read_text() == "x"


# ----------------------------------------------------------------------------------
# 15. temporary files of writers killed outright
# ----------------------------------------------------------------------------------

# Start a write of each target named on the command line, then die by SIGKILL (as a
# report killed while drawing): nothing can remove the temporary files but a later write.
_KILLED_WRITER = """\
import os, signal, sys
from pathlib import Path
from initsim._files import temp_file_in
for name in sys.argv[2:]:
    fd, tmp = temp_file_in(Path(sys.argv[1]), name)
    os.write(fd, b"half written")
    print(tmp.name, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_writer(folder: Path, *names: str) -> list[Path]:
    import signal
    import subprocess
    import sys

    from tests.study_helpers import ROOT

    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, str(folder), *names],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    left = [folder / line for line in proc.stdout.split()]
    assert len(left) == len(names) and all(p.is_file() for p in left)
    return left


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_killed_writers_temporary_file_goes_with_the_next_write(tmp_path):
    import fcntl

    dead, longer, shorter, held = _killed_writer(
        tmp_path, "report.pdf", "report.pdf.bak", "report.pd", "report.pdf"
    )
    assert dead.name.startswith(f"{_files.TMP_PREFIX}report.pdf.")
    # what must stay: a dead writer's file that someone else holds locked (a pid now
    # reused, or a writer on another host sharing this folder), files of other targets,
    # and a file that only looks like a temporary one ...
    holder = os.open(held, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    lookalike = tmp_path / f"{_files.TMP_PREFIX}report.pdf-notes.txt"
    lookalike.write_text("mine")
    try:
        # the report writes through temp_file_in: its next write sweeps its own target
        fd, live = _files.temp_file_in(tmp_path, "report.pdf")
        try:
            assert not dead.exists()
            assert held.exists() and longer.exists() and shorter.exists()
            # ... and a live writer's file (open and locked), however old
            _age(live, 2 * _files.STALE_AFTER_S)
            with _files.atomic_write(tmp_path / "report.pdf") as fh:
                fh.write(b"%PDF-1.4")
            assert (tmp_path / "report.pdf").read_bytes() == b"%PDF-1.4"
            assert live.exists() and held.exists() and longer.exists() and shorter.exists()
            assert lookalike.read_text() == "mine"
        finally:
            os.close(fd)
        live.unlink()
    finally:
        os.close(holder)
    with _files.atomic_write(tmp_path / "report.pdf") as fh:
        fh.write(b"%PDF-1.5")
    assert not held.exists() and longer.exists()  # its lock is free now
    assert _files.remove_stale_temporaries(tmp_path, "report.pdf.bak") == 1
    assert _files.remove_stale_temporaries(tmp_path, "report.pd") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([lookalike.name, "report.pdf"])


def test_temporary_files_whose_writer_cannot_be_checked_go_when_old(tmp_path):
    # an older initsim named no writer; a writer on another host has a pid that means
    # nothing here: such files go only once nobody touched them for STALE_AFTER_S
    legacy = tmp_path / f"{_files.TMP_PREFIX}t.csvab12cd_3"
    foreign = tmp_path / f"{_files.TMP_PREFIX}t.csv.000000-{os.getpid()}.k2j4h5g6"
    if _files._host_tag() == "000000":  # pragma: no cover - one host in 16 million
        foreign = foreign.with_name(foreign.name.replace("000000", "ffffff"))
    for p in (legacy, foreign):
        p.write_text("x")
    assert _files.remove_stale_temporaries(tmp_path, "t.csv") == 0
    _age(legacy, _files.STALE_AFTER_S + 60)
    _age(foreign, _files.STALE_AFTER_S + 60)
    with _files.atomic_write(tmp_path / "t.csv", "w") as fh:
        fh.write("a,b\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_very_long_target_names_get_short_temporary_names(tmp_path):
    name = "n" * 240 + ".csv"  # 244 bytes: the temporary name must still fit in 255
    (dead,) = _killed_writer(tmp_path, name)
    assert len(dead.name) <= 255
    with _files.atomic_write(tmp_path / name, "w") as fh:
        fh.write("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
