"""Running studies: resume, the table, reproducibility across threads and executors, Dask."""

from __future__ import annotations

import json

import numpy as np
import pytest

from initsim.cli import main
from initsim.study import Study, load_results
from initsim.study.executors import LocalExecutor
from tests.study_helpers import SPEC, cell_digests, write

pytestmark = pytest.mark.usefixtures("warm_kernels")


def test_run_resume_table_and_reproducibility(tmp_path):
    study = Study.from_toml(write(tmp_path, SPEC))
    out1, out2 = tmp_path / "one", tmp_path / "two"
    s1 = study.run(out1, threads=1)
    assert (s1.cells, s1.computed, s1.reused, s1.failed) == (12, 12, 0, 0)
    study.run(out2, threads=2)
    assert cell_digests(out1) == cell_digests(out2)  # 1 vs 2 threads: bit-identical
    assert len(cell_files(out1)) == 12
    assert cell_files(out1) == cell_files(out2)  # ... and so are the files, byte for byte

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


def cell_files(out) -> dict[str, bytes]:
    """Name -> bytes of every cell file of a results directory."""
    return {p.name: p.read_bytes() for p in sorted((out / "cells").glob("*.npz"))}


def test_manifest_records_the_threads_and_layer_the_cells_used(tmp_path):
    study = Study.from_toml(write(tmp_path, SPEC))
    out = tmp_path / "r"
    study.run(out, threads=2, only="he-lecun")
    results = load_results(out)
    layers = {c.result.provenance["threading_layer"] for c in results.cells}
    assert len(layers) == 1 and layers != {"unset"}  # simulate cells ran parallel kernels
    assert {c.result.provenance["threads"] for c in results.cells} == {2}
    manifest = json.loads((out / "manifest.json").read_text())
    prov = manifest["provenance"]
    assert prov["threading_layer"] == layers.pop() and prov["threads"] == 2
    assert prov["cells_run"]["cells"] == 4 and prov["first_run"]["threads"] == 2
    assert results.provenance["threads"] == 2

    study.run(out, threads=1, only="phase")  # a part on 1 thread: the manifest says both
    prov = json.loads((out / "manifest.json").read_text())["provenance"]
    assert prov["threads"] == "1 to 2" and prov["cells_run"]["cells"] == 8
    study.run(out, threads=1)  # the rest
    prov = json.loads((out / "manifest.json").read_text())["provenance"]
    assert prov["threads"] == "1 to 2" and prov["cells_run"]["threads"] == [1, 2]
    assert prov["cells_run"]["cells"] == 12 and load_results(out).provenance["threads"] == "1 to 2"

    # a directory whose manifest knows nothing (written before the cells reported it):
    # loading takes the cells' word for it
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("threading_layer", "threads", "cells_run"):
        del manifest["provenance"][key]
    manifest["provenance"]["threading_layer"] = "unset"
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert load_results(out).provenance["threading_layer"] == prov["threading_layer"]


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
# Dask
# ----------------------------------------------------------------------------------


def test_dask_local_cluster_matches_local_and_retries(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    from initsim.study.executors import DaskExecutor
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
    assert len(raised) == 4 and (markers / "exit").exists()  # each fault happened, and
    # was recovered (the cells are complete and their bytes the local run's)
    assert cell_digests(tmp_path / "dask") == cell_digests(tmp_path / "local")
    assert cell_files(tmp_path / "dask") == cell_files(tmp_path / "local")
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
