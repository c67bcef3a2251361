"""TOML studies: spec validation, the resumable store, executors, reproducibility."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from initsim.cli import main
from initsim.executors import LocalExecutor
from initsim.store import CorruptCellError, ResultsDir, StoreError
from initsim.study import Study, load_results
from initsim.study_spec import SpecError, parse_spec, read_spec

pytestmark = pytest.mark.usefixtures("warm_kernels")

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


# ----------------------------------------------------------------------------------
# Spec parsing
# ----------------------------------------------------------------------------------


def test_spec_expands_cases_and_grid_in_file_order(tmp_path):
    spec = read_spec(write(tmp_path, SPEC))
    ids = [c.id for c in spec.cells]
    assert ids[:4] == ["he-lecun-000", "he-lecun-001", "he-lecun-002", "he-lecun-003"]
    assert len(ids) == 4 + 4 + 2 + 2
    first = spec.cells[0].params
    assert (first["init"], first["activation"], first["nets"]) == ("he_normal", "relu", 20)
    assert spec.cells[1].params["activation"] == "tanh"  # last grid axis varies fastest
    phase = [c.params for c in spec.cells if c.experiment == "phase"]
    assert [p["init"]["scale"] for p in phase] == [0.5, 0.5, 2.0, 2.0]
    assert [p["bias_std"] for p in phase] == [0.0, 0.3, 0.0, 0.3]
    assert all(p["init"]["name"] == "variance_scaling" for p in phase)
    assert [c.spawn_key for c in spec.cells if c.experiment == "jac"] == [(2, 0), (2, 1)]
    train = next(c for c in spec.cells if c.kind == "train")
    assert train.params["lr"] == 0.1 and "nets" not in train.params  # defaults per kind
    assert spec.cells[0].checks == {"alpha": 0.01, "claims": []}


def test_spec_hash_ignores_presentation_but_not_numbers(tmp_path):
    base = read_spec(write(tmp_path, SPEC)).sha256
    cosmetic = SPEC.replace("a small study", "another description").replace(
        "[defaults]\nnets = 20\n", "[defaults]\nnets   =   20  # same\n"
    )
    assert read_spec(write(tmp_path, cosmetic, "b.toml")).sha256 == base
    assert read_spec(write(tmp_path, SPEC.replace("seed = 7", "seed = 8"), "c.toml")).sha256 != base
    assert (
        read_spec(write(tmp_path, SPEC.replace("nets = 20", "nets = 21"), "d.toml")).sha256 != base
    )


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (("depth = 4", "detph = 4"), ["line 10", "'detph'", "did you mean 'depth'"]),
        (("seed = 7", "seed = -7"), ["line 2", "seed must be an integer >= 0"]),
        (("width = 32", "width = -32"), ["line 11", "width must be an integer >= 1"]),
        (("width = 32", 'width = "wide"'), ["line 11", "width must be an integer"]),
        (('init = ["he_normal", "lecun_normal"]', "init = []"), ["line 14", "'init' is empty"]),
        (("backward = true", "backward = 1"), ["line 12", "backward must be true or false"]),
        (("nets = 20", "nets = 0"), ["line 6", "nets must be an integer >= 1"]),
        (("alpha = 0.01", "alpha = 2"), ["line 17", "alpha must be a number in (0, 1)"]),
        (('kind = "jacobian"', 'kind = "jacobain"'), ["line 31", "kind must be one of"]),
        (('activation = "tanh"', 'activation = "tahn"'), ["line 21", "activation", "tahn"]),
        (("init.scale = [0.5, 2.0]", "init.sclae = [0.5, 2.0]"), ["line 26", "sclae"]),
        (("steps = 5", "steps = 5\nepochs = 3"), ["line 43", "'epochs'"]),
        (("[defaults]", "[defaultz]"), ["'defaultz'", "did you mean 'defaults'"]),
        (('name = "phase"', 'name = "he-lecun"'), ["used twice"]),
        (
            ('cases = [{init = "orthogonal"}, {init = "lecun_normal"}]', "cases = []"),
            ["line 35", "cases must be a non-empty list"],
        ),
    ],
)
def test_bad_specs_name_the_key_and_line(tmp_path, capsys, edit, needle):
    old, new = edit
    assert old in SPEC
    path = write(tmp_path, SPEC.replace(old, new, 1))
    with pytest.raises(SpecError) as err:
        read_spec(path)
    for n in needle:
        assert n in str(err.value)
    assert main(["study", "validate", str(path)]) == 2
    assert needle[0] in capsys.readouterr().err


def test_toml_syntax_error_and_missing_file(tmp_path, capsys):
    path = write(tmp_path, SPEC.replace("seed = 7", "seed = = 7"))
    assert main(["study", "run", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "invalid TOML" in err and "line 2" in err
    assert not (tmp_path / "o").exists()
    assert main(["study", "validate", str(tmp_path / "nope.toml")]) == 2
    assert "cannot read study spec" in capsys.readouterr().err


def test_dict_spec_and_figure_references():
    good = {"name": "s", "seed": 1, "experiment": [{"name": "a", "depth": 2, "width": 4}]}
    assert [c.id for c in Study(good).spec.cells] == ["a-000"]
    with pytest.raises(SpecError, match="unknown experiment 'b'"):
        parse_spec({**good, "figure": [{"kind": "depth-profile", "experiment": "b"}]})
    with pytest.raises(SpecError, match="at least one"):
        parse_spec({"name": "s", "seed": 1})
    with pytest.raises(SpecError, match="checks apply to simulate"):
        parse_spec(
            {
                "name": "s",
                "seed": 1,
                "experiment": [
                    {
                        "name": "j",
                        "kind": "jacobian",
                        "depth": 2,
                        "width": 4,
                        "nets": 2,
                        "checks": {"alpha": 0.1},
                    }
                ],
            }
        )


# ----------------------------------------------------------------------------------
# Running, resuming, the store
# ----------------------------------------------------------------------------------


def test_run_resume_table_and_reproducibility(tmp_path):
    study = Study.from_toml(write(tmp_path, SPEC))
    out1, out2 = tmp_path / "one", tmp_path / "two"
    s1 = study.run(out1, threads=1)
    assert (s1.cells, s1.computed, s1.reused, s1.failed) == (12, 12, 0, 0)
    study.run(out2, threads=2)
    assert cell_digests(out1) == cell_digests(out2)  # 1 vs 2 threads: bit-identical

    again = study.run(out1)
    assert (again.computed, again.reused) == (0, 12)

    results = load_results(out1)
    assert results.complete and results.spec_sha256 == study.spec.sha256
    table = results.table()
    assert len(table) == 4 * 4 + 4 * 5  # simulate cells x layers
    he_relu = table[table["cell"] == "he-lecun-000"]
    assert list(he_relu["layer"]) == [1, 2, 3, 4]
    assert set(he_relu["q_verdict"]) <= {"PASS", "FAIL", "N/A"} and he_relu["q_verdict"][0]
    tested = he_relu["q_verdict"] != "N/A"
    assert tested[0]  # layer 1 is always in the z-test regime
    assert np.all(np.isfinite(he_relu["q_p_value"][tested]))
    assert np.all(np.isnan(he_relu["q_p_value"][~tested]))
    assert np.all(table[table["experiment"] == "phase"]["q_verdict"] == "")
    cell = results.cells_of("he-lecun")[0]
    assert cell.result.q.shape == (20, 4) and cell.result.grad_sq.shape == (20, 4)
    assert cell.checks.rows and cell.checks.verdict in ("PASS", "FAIL")
    jac = results.cells_of("jac")[0].result
    assert jac.singular_values.shape == (5, 12)
    zero = results.cells_of("zero")[0].result
    assert zero.loss.shape == (1, 6) and np.all(zero.unit_distance == 0.0)
    assert results.cells_of("zero")[1].result.unit_distance.min() > 0
    csv = results.write_csv(tmp_path / "t.csv")
    assert csv.read_text().count("\n") == len(table) + 1

    manifest = json.loads((out1 / "manifest.json").read_text())
    assert manifest["cells"]["phase-002"]["spawn_key"] == [1, 2]
    for key in ("initsim", "numpy", "numba", "scipy", "python"):
        assert key in manifest["provenance"]["versions"]
    assert manifest["seed_entropy"] == "7"
    prov = cell.result.provenance
    assert prov["spawn_key"] == [0, 0] and prov["seed_entropy"] == "7"
    assert "threading_layer" in prov and "threads" in prov


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


def test_failed_cells_are_reported_and_others_kept(tmp_path):
    from tests.study_helpers import always_failing_cell

    study = Study.from_toml(write(tmp_path, SPEC))
    summary = study.run(tmp_path / "r", executor=LocalExecutor(cell_fn=always_failing_cell))
    failing = [c.id for c in study.spec.cells if c.spawn_key[1] == 1]
    assert summary.failed == len(failing) and sorted(summary.errors) == sorted(failing)
    assert "planted permanent failure" in summary.errors[failing[0]]
    assert sorted(load_results(tmp_path / "r").missing) == sorted(failing)
    assert study.run(tmp_path / "r").computed == len(failing)  # a plain re-run finishes it


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


# ----------------------------------------------------------------------------------
# Dask
# ----------------------------------------------------------------------------------


def test_dask_local_cluster_matches_local_and_retries(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    from initsim.executors import DaskExecutor
    from tests.study_helpers import MARKER_ENV, flaky_cell

    study = Study.from_toml(write(tmp_path, SPEC))
    study.run(tmp_path / "local")
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv(MARKER_ENV, str(markers))
    executor = DaskExecutor(workers=2, cell_fn=flaky_cell)
    try:
        assert executor.describe()["workers"] == 2
        summary = study.run(tmp_path / "dask", executor=executor)
    finally:
        executor.close()
    assert (summary.computed, summary.failed) == (12, 0), summary.errors
    raised = sorted(p.name for p in markers.glob("raise-*"))
    exited = sorted(p.name for p in markers.glob("exit-*"))
    assert len(raised) == 4 and len(exited) == 4  # each fault happened, and was recovered
    assert cell_digests(tmp_path / "dask") == cell_digests(tmp_path / "local")
    manifest = json.loads((tmp_path / "dask" / "manifest.json").read_text())
    assert manifest["provenance"]["first_run"]["executor"] == "dask"


def test_dask_options_are_validated(tmp_path, capsys):
    pytest.importorskip("distributed")
    spec = write(tmp_path, SPEC)
    rc = main(
        [
            "study",
            "run",
            str(spec),
            "--out",
            str(tmp_path / "o"),
            "--scheduler",
            "tcp://127.0.0.1:9",
        ]
    )
    assert rc == 2
    assert "cannot connect to the Dask scheduler" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_readme_example_and_shipped_specs_are_valid():
    readme = (ROOT / "README.md").read_text()
    marker = "# my-study.toml (copy one of reports/*.toml and change a line)\n"
    block = readme.split(marker, 1)[1].split("```", 1)[0]
    import tomllib

    spec = parse_spec(tomllib.loads(block), text=block, source="README")
    assert [c.id for c in spec.cells][:2] == ["relu-000", "relu-001"] and len(spec.cells) == 10
    shipped = sorted((ROOT / "reports").glob("*.toml"))
    assert len(shipped) >= 4
    for path in shipped:
        assert read_spec(path).cells
