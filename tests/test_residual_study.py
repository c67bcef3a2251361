"""Residual cells in studies: per-block alpha and skip lists, the tidy table, checks."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from initsim import simulate
from initsim.cli import main
from initsim.study import Study, load_results
from tests.study_helpers import write

SPEC = """\
name = "residual-lists"
seed = 11

[defaults]
arch = "residual"
depth = 3
width = 8
nets = 40
backward = true

[[experiment]]
name = "per-block"
alpha = [1.0, 0.5, 0.25]
skip = [1.0, -1.0, 0.5]
[experiment.grid]
norm = ["none", "pre"]
[experiment.checks]
alpha = 0.01

[[experiment]]
name = "grid"
[experiment.grid]
alpha = [[0.0, 1.0, 0.0], 0.5]
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("residual-study")
    study = Study.from_toml(write(tmp, SPEC))
    summary = study.run(tmp / "out", threads=1)
    assert (summary.cells, summary.failed) == (4, 0)
    return load_results(tmp / "out")


def test_a_per_block_list_is_one_value_and_reaches_the_plan(results):
    cells = {c.id: c for c in results.cells}
    assert set(cells) == {"per-block-000", "per-block-001", "grid-000", "grid-001"}
    cfg = cells["per-block-000"].result.provenance["config"]
    assert cfg["alpha"] == [1.0, 0.5, 0.25] and cfg["skip"] == [1.0, -1.0, 0.5]
    assert cells["grid-000"].result.provenance["config"]["alpha"] == [0.0, 1.0, 0.0]
    assert cells["grid-001"].result.provenance["config"]["alpha"] == [0.5] * 3
    # the cell is the run simulate() does with the same keywords (and the cell's seed)
    r = cells["grid-000"].result
    # alpha = 0 in block 1: the stream keeps its input there (q of x^0 on the sphere is 1)
    np.testing.assert_allclose(r.q[:, 0], 1.0, rtol=1e-12)
    assert np.all(r.branch_share[:, 0] == 0.0) and np.all(r.branch_share[:, 1] > 0.0)


def test_the_table_has_one_row_per_block_with_the_stream_statistics(results):
    table = results.table()
    rows = table[table["cell"] == "per-block-001"]
    r = next(c for c in results.cells if c.id == "per-block-001").result
    assert list(rows["layer"]) == [1, 2, 3]
    np.testing.assert_allclose(rows["q_mean"], r.layer_mean("q"), rtol=1e-15)
    np.testing.assert_allclose(rows["grad_sq_mean"], r.layer_mean("grad_sq"), rtol=1e-15)
    np.testing.assert_allclose(rows["dead_fraction"], r.dead_fraction.mean(axis=0), rtol=1e-12)
    assert np.all(np.isnan(rows["act_mean"])) and np.all(np.isnan(rows["act_var"]))
    assert set(rows["alpha"]) == {"1.0,0.5,0.25"} and set(rows["norm"]) == {"pre"}
    # the residual checks ran and their verdicts are in the table
    assert set(rows["q_verdict"]) <= {"PASS", "FAIL", "N/A"} and rows["q_verdict"][0] == "PASS"
    assert math.isfinite(rows["q_predicted"][0])


def test_the_cli_table_prints_residual_cells(results, capsys):
    assert main(["study", "table", str(results.path)]) == 0
    out = capsys.readouterr().out
    assert "per-block-000" in out and "1.0,0.5,0.25" in out


ALPHA_LINE = "alpha = [1.0, 0.5, 0.25]"
SKIP_LINE = "skip = [1.0, -1.0, 0.5]"


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        (
            ALPHA_LINE,
            "alpha = [1.0, 0.5]",
            r"alpha as a list must give one value per block: expected 3",
        ),
        (ALPHA_LINE, "alpha = [1.0, -0.5, 0.2]", r"alpha.*a finite number >= 0 or a list of them"),
        (SKIP_LINE, "skip = [1.0, nan, 1.0]", r"skip.*a finite number or a list of them"),
        (ALPHA_LINE, "alpha = []", r"alpha.*or a list of them"),
    ],
)
def test_bad_per_block_lists_name_the_key(tmp_path, capsys, old, new, match):
    spec = SPEC.replace(old, new)
    code = main(["study", "run", str(write(tmp_path, spec)), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert re.search(match, err), err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").glob("*.npz"))


def test_per_block_alpha_as_simulate_gives_it():
    r = simulate(arch="residual", depth=3, width=8, nets=4, alpha=[1.0, 0.5, 0.25], seed=0)
    assert r.provenance["config"]["alpha"] == [1.0, 0.5, 0.25]


FIGURE_SPEC = """\
name = "figure-arch"
seed = 1

[defaults]
depth = 3
width = 8
nets = 10

[[experiment]]
name = "res"
arch = "residual"

[[experiment]]
name = "mlp"

[[figure]]
kind = "{kind}"
experiment = "{experiment}"
"""


@pytest.mark.parametrize(
    ("kind", "experiment", "match"),
    [
        ("depth-profile", "res", r'draws arch = "mlp" cells; res-000 are arch = "residual": '
                                 r'use kind = "residual-profile"'),
        ("histograms", "res", r'draws arch = "mlp" cells'),
        ("residual-profile", "mlp", r'draws arch = "residual" cells; mlp-000 are arch = "mlp"'),
    ],
)  # fmt: skip
def test_a_figure_of_the_wrong_architecture_is_refused_before_running(
    tmp_path, capsys, kind, experiment, match
):
    spec = write(tmp_path, FIGURE_SPEC.format(kind=kind, experiment=experiment))
    out = tmp_path / "r.pdf"
    assert main(["report", str(spec), "-o", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err) and "line" in err, err
    assert not out.exists()


def test_the_mlp_theory_reader_names_the_residual_one():
    from initsim.checks import theory_inputs

    r = simulate(arch="residual", depth=2, width=4, nets=3, seed=0)
    ti, reason = theory_inputs(r)
    assert ti is None and "residual_theory_inputs" in reason
