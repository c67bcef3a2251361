"""``initsim report`` end to end: spec -> study -> PDF, results dir -> PDF, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from initsim.cli import main

pypdf = pytest.importorskip("pypdf")

pytestmark = pytest.mark.usefixtures("warm_kernels")

ROOT = Path(__file__).resolve().parents[1]

SPEC = """\
name = "mini-report"
seed = 11
description = "two figures from a small study"

[[experiment]]
name = "depth"
depth = 6
width = 32
nets = 40
backward = true
[experiment.grid]
init = ["he_normal", "lecun_normal"]
[experiment.checks]
alpha = 0.01
claims = ["preserves-variance"]

[[experiment]]
name = "widths"
activation = "relu"
init = "he_normal"
depth = 4
nets = 300
[experiment.grid]
width = [16, 64]

[[figure]]
kind = "depth-profile"
experiment = "depth"

[[figure]]
kind = "finite-width"
experiment = "widths"
"""


def _pages(path: Path) -> list[str]:
    return [p.extract_text() for p in pypdf.PdfReader(path).pages]


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "mini.toml"
    path.write_text(SPEC)
    return path


def test_spec_runs_then_draws_and_results_redraw_identically(spec, tmp_path, capsys):
    pdf, res = tmp_path / "a.pdf", tmp_path / "res"
    assert main(["report", str(spec), "-o", str(pdf), "--out", str(res)]) == 0
    out = capsys.readouterr().out
    assert "report mini-report: 4 cells" in out and str(pdf) in out
    text = " ".join(_pages(pdf))
    assert "mini-report" in text and "Check verdicts" in text
    assert "FAIL" in text and "PASS" in text  # LeCun/ReLU breaks preserves-variance
    # title, verdict summary, 2 figures, the appendix of every check row, provenance
    assert len(_pages(pdf)) == 1 + 1 + 2 + 1 + 1

    again = tmp_path / "b.pdf"
    figs = tmp_path / "figs"
    rc = main(["report", str(res), "-o", str(again), "--figures-dir", str(figs)])
    assert rc == 0
    assert again.read_bytes() == pdf.read_bytes()  # drawing only, byte-identical
    assert sorted(p.name for p in figs.glob("*.png")) == [
        "01-depth-profile-depth.png",
        "02-finite-width-widths.png",
    ]


@pytest.mark.parametrize(
    "case", ["missing", "foreign", "incomplete", "bad-spec", "no-dir", "not-pdf", "parent-file"]
)
def test_errors_are_clear_and_leave_no_pdf(case, spec, tmp_path, capsys):
    pdf = tmp_path / "r.pdf"
    source = str(spec)
    if case == "missing":
        source, needle = str(tmp_path / "nowhere"), "no such study spec or results directory"
    elif case == "foreign":
        (tmp_path / "foreign").mkdir()
        (tmp_path / "foreign" / "x.txt").write_text("not results")
        source, needle = str(tmp_path / "foreign"), "not an initsim results directory"
    elif case == "incomplete":
        res = tmp_path / "res"
        assert main(["study", "run", str(spec), "--out", str(res), "--only", "widths"]) == 0
        source, needle = str(res), "incomplete"
    elif case == "bad-spec":
        spec.write_text(SPEC.replace("nets = 40", "nets = -40"))
        needle = "line 9"
    elif case == "no-dir":
        pdf, needle = tmp_path / "nodir" / "r.pdf", "does not exist"
    elif case == "not-pdf":
        pdf, needle = tmp_path / "r.txt", "must end in .pdf"
    else:
        (tmp_path / "file").write_text("x")
        pdf, needle = tmp_path / "file" / "r.pdf", "does not exist"
    capsys.readouterr()
    rc = main(["report", source, "-o", str(pdf), "--out", str(tmp_path / "out")])
    assert rc == 2
    assert needle in capsys.readouterr().err
    assert not pdf.exists()
    assert not list(tmp_path.rglob("*.pdf"))
    if case in ("bad-spec", "no-dir", "not-pdf", "parent-file"):
        assert not (tmp_path / "out").exists()  # failed before computing anything


def test_readme_main_command_writes_the_default_report(tmp_path):
    # `initsim report` with no argument, as the README's quick start runs it
    # this checkout's initsim, whatever an editable install points at
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "NUMBA_NUM_THREADS": "2", "PYTHONPATH": pythonpath}
    proc = subprocess.run(
        [sys.executable, "-m", "initsim.cli", "report"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    pdf = tmp_path / "reports" / "initsim-report.pdf"
    assert f"wrote {Path('reports') / 'initsim-report.pdf'}" in proc.stdout
    pages = _pages(pdf)
    assert len(pages) >= 10
    text = " ".join(pages)
    for phrase in ("Check verdicts", "literal", "phase diagram", "Jacobian", "Provenance"):
        assert phrase.lower() in text.lower(), phrase
    assert len(list((tmp_path / "results").iterdir())) == 1


@pytest.mark.parametrize(
    ("activation", "inputs", "saturated"),
    [("relu", 1, "n/a"), ("leaky_relu", 1, "n/a"), ("tanh", 3, None), ("sigmoid", 1, None)],
)
def test_simulate_table_defines_dead_and_saturated(activation, inputs, saturated, capsys):
    """One definition per word, printed under the table; no saturation for piecewise-linear."""
    args = ["simulate", "--activation", activation, "--depth", "3", "--width", "40"]
    assert main([*args, "--nets", "20", "--inputs", str(inputs), "--no-progress"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["1"], ["2"], ["3"])]
    assert len(rows) == 3
    if saturated == "n/a":
        assert all(r[-1] == "n/a" for r in rows)  # relu: would equal "dead" with one input
        assert f"saturated: n/a for {activation}: a piecewise-linear activation" in out
    else:
        assert all(0.0 <= float(r[-1]) <= 1.0 for r in rows)
        assert "saturated: fraction of (unit, input) pairs with |phi'(h)| < 0.01" in out
    plural = "s" if inputs > 1 else ""
    assert (
        "dead: fraction of units whose output phi(h) is exactly 0 for every input "
        f"(here {inputs} input{plural} per net)"
    ) in out
