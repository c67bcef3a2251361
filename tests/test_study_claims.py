"""``study table`` shows what the run counted: claim verdicts, and every parameter that varies.

A run that reports failed checks must show FAIL in the table and its CSV (a
failed claim, e.g. ``preserves-variance``, is a row about the whole net, not
about one layer), and two cells must never print as the same row: every
parameter that varies between the cells gets a column, and columns are as
wide as their longest value.
"""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest

from initsim.cli import main
from initsim.study import Study, load_results
from tests.study_helpers import write

pytestmark = pytest.mark.usefixtures("warm_kernels")

# LeCun's sigma_w2 = 1 halves a ReLU signal's variance per layer: "preserves-variance"
# fails for it, while every per-layer row (the theory of that decay) passes.
CLAIM = """\
name = "claims"
seed = 20260202

[[experiment]]
name = "relu"
depth = 8
width = 64
nets = 60
backward = true
[experiment.grid]
init = ["he_normal", "lecun_normal"]
[experiment.checks]
alpha = 0.01
claims = ["preserves-variance"]
"""

LONG_INIT = "variance_scaling(scale=2.0, mode=fan_in, distribution=truncated_normal)"
EXPERIMENT = "an-experiment-whose-name-is-longer-than-sixty-four-characters-as-ids-may-be"

VARYING = f"""\
name = "varying"
seed = 5

[defaults]
nets = 4
width = 8

[[experiment]]
name = "{EXPERIMENT}"
[experiment.grid]
init = ["he_normal", {{name = "variance_scaling", scale = 2.0, mode = "fan_in", \
distribution = "truncated_normal"}}]
depth = [2, 3]
bias_std = [0.0, 0.1]

[[experiment]]
name = "per-layer"
depth = 3
width = [8, 4, 2]
inputs = 2
"""


@pytest.fixture(scope="module")
def claims(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("claims")
    out = base / "results"
    summary = Study.from_toml(write(base, CLAIM)).run(out, threads=1, progress=False)
    return out, summary


def test_a_failed_claim_shows_in_the_table_and_the_csv(claims, tmp_path, capsys):
    out, summary = claims
    assert summary.failed_checks == 1
    results = load_results(out)
    table = results.table()
    lecun = table[table["cell"] == "relu-001"]
    he = table[table["cell"] == "relu-000"]
    # only the claim fails: without its own columns the table would show no FAIL
    assert "FAIL" not in {*lecun["q_verdict"], *lecun["grad_sq_verdict"]}
    assert set(lecun["check_verdict"]) == {"FAIL"} and set(lecun["claim_verdict"]) == {"FAIL"}
    assert set(he["check_verdict"]) == {"PASS"} and set(he["claim_verdict"]) == {"PASS"}
    text = str(lecun["claims"][0])
    assert re.fullmatch(r"E\[q\^L\] - E\[q\^1\] = -0\.\d+ \(predicted 0, p = .+\): FAIL", text)
    assert sum(1 for c in results.cells if c.checks.verdict == "FAIL") == summary.failed_checks

    path = results.write_csv(tmp_path / "t.csv")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    failing = {r["cell"] for r in rows if r["check_verdict"] == "FAIL"}
    assert failing == {"relu-001"}
    assert {r["claims"] for r in rows if r["cell"] == "relu-001"} == {text}

    assert main(["study", "table", str(out)]) == 0
    printed = capsys.readouterr().out
    head, *lines = printed.split("\n\n")[0].splitlines()
    assert head.split()[-1] == "check"
    assert all(line.split()[-1] == "FAIL" for line in lines if line.startswith("relu-001"))
    verdicts = printed.split("\n\n")[1]
    assert re.search(r"relu-001 +FAIL, \d+ of \d+ rows testable \(1 failed", verdicts)
    assert f"claim {text}" in verdicts
    assert re.search(r"relu-000 +PASS", verdicts)


def test_every_parameter_that_varies_has_a_column(tmp_path, capsys):
    out = tmp_path / "results"
    Study.from_toml(write(tmp_path, VARYING)).run(out, threads=1, progress=False)
    table = load_results(out).table()
    names = table.dtype.names
    assert names.index("nets") < names.index("widths") < names.index("layer")
    assert "inputs" in names and "backward" not in names  # only what varies gets a column
    assert set(table["widths"]) == {"8", "8,4,2"} and set(table["inputs"]) == {"1", "2"}
    assert LONG_INIT in set(table["init"])
    assert EXPERIMENT in set(table["experiment"])  # text columns are never cut short
    assert f"{EXPERIMENT}-007" in set(table["cell"])

    assert main(["study", "table", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    head = lines[0].split()
    for col in ("cell", "experiment", "init", "depth", "bias_std", "widths", "inputs", "layer"):
        assert col in head, col
    assert "width" not in head  # -1 for per-layer widths: widths says them all
    rows = [line for line in lines[1:] if line.strip() and not line.startswith("(")]
    assert len(rows) == len(table)
    # two cells never print as the same row: the parameter columns tell them apart
    layer = head.index("layer")
    seen: dict[tuple[str, ...], set[str]] = {}
    for line, row in zip(rows, table, strict=True):
        fields = re.split(r" {2,}", line.strip())  # no value holds two spaces
        assert fields[0] == row["cell"] and int(fields[layer]) == row["layer"]
        seen.setdefault((*fields[1:layer], fields[layer]), set()).add(str(row["cell"]))
    assert all(len(cells) == 1 for cells in seen.values()), seen
    # aligned: text starts under its header, numbers end under theirs, however long
    # the longest value (the long init name, the long experiment name)
    assert any(LONG_INIT in line for line in rows)
    numeric = {"depth", "bias_std", "layer", "q_mean"}
    for m in re.finditer(r"\S+", lines[0]):
        col, a, b = m.group(), m.start(), m.end()
        for line in rows:
            if col in numeric:
                assert line[b - 1] != " " and line[b : b + 1] in ("", " "), (col, line)
            else:
                assert line[a] != " " and line[a - 1 : a] in ("", " "), (col, line)


def test_table_numbers_match_the_arrays(claims):
    out, _ = claims
    results = load_results(out)
    table = results.table()
    cell = results.cells_of("relu")[0]
    rows = table[table["cell"] == cell.id]
    assert np.allclose(rows["q_mean"], cell.result.q.mean(axis=0))
    assert list(rows["depth"]) == [8] * 8 and list(rows["width"]) == [64] * 8
