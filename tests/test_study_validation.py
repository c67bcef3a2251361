"""Spec validation runs every cell's own checks, counts cells first, and reads files safely.

A valid spec must not fail at run time on its arguments: every cell is checked
the way its runner would check it (make_plan for simulate and jacobian cells,
the trainer and data makers for train cells, check()'s preconditions for checked
cells) before anything is computed, and every error names the experiment, the
key and the line.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import textwrap
import time
import tracemalloc
import warnings

import pytest

from initsim import simulate
from initsim import train as T
from initsim._files import atomic_write
from initsim.checks import check
from initsim.cli import main
from initsim.study import SpecError, Study, parse_spec, read_spec
from initsim.study import cells as cells_module
from initsim.study import spec as spec_module
from initsim.study.spec import MAX_CELLS, MAX_NAME_LENGTH, WARN_CELLS, StudySizeWarning
from initsim.study.store import ResultsDir

HEAD = 'name = "s"\nseed = 1\n\n'  # two header lines and a blank: experiments start at line 4


def _spec(tmp_path, body: str, name: str = "spec.toml"):
    path = tmp_path / name
    path.write_text(HEAD + textwrap.dedent(body))
    return path


def _refused(tmp_path, body: str, *needles: str) -> str:
    """Assert that read_spec refuses ``body`` with every needle in the message."""
    with pytest.raises(SpecError) as err:
        read_spec(_spec(tmp_path, body))
    message = str(err.value)
    for needle in needles:
        assert needle in message, message
    return message


# ----------------------------------------------------------------------------------
# Item 6: every cell's own checks, before anything runs
# ----------------------------------------------------------------------------------

SIMULATE_CASES = [
    pytest.param(
        """\
        [[experiment]]
        name = "widths"
        depth = 4
        [experiment.grid]
        width = [[8, 8, 8, 8], [8, 8, 8]]
        """,
        ["line 8", "experiment 'widths'", "cell widths-001", "width", "expected 4 (depth), got 3"],
        id="width-list-not-depth",
    ),
    pytest.param(
        """\
        [[experiment]]
        name = "exact-uniform"
        depth = 2
        width = 8
        init = "he_uniform"
        method = "exact"
        """,
        ["line 9", "experiment 'exact-uniform'", "method='exact'", "law 'uniform'"],
        id="exact-needs-gaussian",
    ),
    pytest.param(
        """\
        [[experiment]]
        name = "hist"
        depth = 2
        width = 8
        histograms = {bins = 10}
        [experiment.grid]
        histograms.bins = [5, -3]
        """,
        ["line 10", "experiment 'hist'", "cell hist-001", "histograms", "bins", "-3"],
        id="histogram-bins-from-grid",
    ),
    pytest.param(
        """\
        [[experiment]]
        name = "few"
        depth = 2
        width = 8
        nets = 9
        [experiment.checks]
        alpha = 0.01
        """,
        ["line 8", "experiment 'few'", "nets", "at least 10 nets", "has 9"],
        id="checks-need-10-nets",
    ),
    pytest.param(
        """\
        [[experiment]]
        name = "zero"
        depth = 2
        width = 8
        nets = 20
        cases = [{init = "he_normal"}, {init = "zeros"}]
        [experiment.checks]
        alpha = 0.01
        """,
        ["line 9", "experiment 'zero'", "cell zero-001", 'init = "zeros"', "checks:", "'zeros'"],
        id="checks-refuse-zeros",
    ),
    pytest.param(
        """\
        [[experiment]]
        name = "dirac"
        depth = 2
        width = 8
        init = "dirac"
        """,
        ["line 8", "experiment 'dirac'", "init", "dirac"],
        id="dense-law-table",
    ),
    pytest.param(
        """\
        [[experiment]]
        name = "jac"
        kind = "jacobian"
        depth = 3
        width = [4, 4]
        nets = 2
        """,
        ["line 8", "experiment 'jac'", "width", "expected 3 (depth), got 2"],
        id="jacobian-widths",
    ),
]


@pytest.mark.parametrize(("body", "needles"), SIMULATE_CASES)
def test_simulate_and_jacobian_cells_are_checked_like_make_plan(tmp_path, body, needles):
    _refused(tmp_path, body, *needles)


TRAIN = """\
[[experiment]]
name = "t"
kind = "train"
sizes = [4, 8, 3]
steps = 2
"""

TRAIN_CASES = [
    pytest.param(
        'data = {kind = "mixture", n_samples = 32}\nloss = "mse"\n',
        ["line 10", "experiment 't'", "loss", "'mixture'", "loss='mse'"],
        id="mixture-with-mse",
    ),
    pytest.param(
        'data = {kind = "teacher", n_samples = 32}\nloss = "cross_entropy"\n',
        ["line 10", "loss", "'teacher'", "loss='cross_entropy'"],
        id="teacher-with-cross-entropy",
    ),
    pytest.param(
        'data = {kind = "teacher", n_samples = 32, n_out = 2}\n',
        ["line 9", "experiment 't'", "data.n_out (2) must equal sizes[-1] (3)"],
        id="teacher-n-out",
    ),
    pytest.param(
        'data = {kind = "teacher", n_samples = 32}\n[experiment.grid]\ndata.n_samples = [-7]\n',
        ["line 11", "experiment 't'", "cell t-000", "data.n_samples", "-7"],
        id="grid-n-samples",
    ),
    pytest.param(
        'data = {kind = "mixture", n_samples = 32, n_classes = 5}\nloss = "cross_entropy"\n',
        ["line 10", "loss", "5 classes", "n_out = 3"],
        id="more-classes-than-outputs",
    ),
    pytest.param(
        'data = {kind = "teacher", n_samples = 32}\nbatch_size = 64\n',
        ["line 10", "batch_size", "(32)"],
        id="batch-larger-than-data",
    ),
    pytest.param(
        'data = {kind = "teacher", n_samples = 32}\nbias = "he_normal"\n',
        ["line 10", "bias", "cannot draw a bias vector"],
        id="bias-law-needs-fans",
    ),
]


@pytest.mark.parametrize(("extra", "needles"), TRAIN_CASES)
def test_train_cells_are_checked_like_train_and_the_data_makers(tmp_path, extra, needles):
    _refused(tmp_path, TRAIN + extra, *needles)


DIGITS = TRAIN.replace("[4, 8, 3]", "[64, 8, 10]") + 'data = {kind = "digits"}\n'
DIGITS += 'loss = "cross_entropy"\n'


@pytest.mark.parametrize(
    "hidden",
    [
        pytest.param("sklearn", id="no-sklearn"),
        # a package that is found but does not import (a partial or broken install)
        pytest.param("sklearn.datasets", id="sklearn-without-datasets"),
    ],
)
def test_digits_without_sklearn_is_refused_at_validation(tmp_path, monkeypatch, capsys, hidden):
    monkeypatch.setattr(cells_module, "_DIGITS_LOADABLE", [])  # forget an earlier import
    for name in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, hidden, None)  # `import sklearn...` raises ImportError
    message = _refused(tmp_path, DIGITS, "line 9", "experiment 't'", "data", "scikit-learn")
    assert "pip install scikit-learn" in message
    # the command line says the same before running anything (exit 2)
    path = _spec(tmp_path, DIGITS, "cli.toml")
    for action in ("validate", "run"):
        out = tmp_path / "never"
        assert main(["study", action, str(path), *(["--out", str(out)] * (action == "run"))]) == 2
        err = capsys.readouterr().err
        assert "scikit-learn" in err and "Traceback" not in err
        assert not out.exists()


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="needs scikit-learn")
def test_digits_with_sklearn_is_valid(tmp_path):
    assert [c.id for c in read_spec(_spec(tmp_path, DIGITS)).cells] == ["t-000"]


def test_errors_from_defaults_point_at_the_defaults_line(tmp_path):
    body = """\
    [defaults]
    nets = 5

    [[experiment]]
    name = "checked"
    depth = 2
    width = 8
    [experiment.checks]
    alpha = 0.01
    """
    _refused(tmp_path, body, "line 5", "experiment 'checked'", "at least 10 nets")


def test_a_valid_spec_with_every_kind_still_passes(tmp_path):
    body = """\
    [[experiment]]
    name = "ok"
    depth = 3
    nets = 10
    histograms = {bins = 10}
    [experiment.grid]
    width = [8, [8, 6, 4]]
    histograms.bins = [5, 7]
    [experiment.checks]
    alpha = 0.05

    [[experiment]]
    name = "mix"
    kind = "train"
    sizes = [4, 8, 3]
    loss = "cross_entropy"
    data = {kind = "mixture", n_samples = 32}
    batch_size = 8

    [[experiment]]
    name = "mse1"
    kind = "train"
    sizes = [4, 8, 1]
    data = {kind = "mixture", n_samples = 32, n_classes = 2}
    """
    spec = read_spec(_spec(tmp_path, body))
    assert [c.id for c in spec.cells][:4] == ["ok-000", "ok-001", "ok-002", "ok-003"]
    assert len(spec.cells) == 6


def test_cli_validate_and_run_refuse_before_computing(tmp_path, capsys):
    path = _spec(tmp_path, SIMULATE_CASES[0].values[0])
    assert main(["study", "validate", str(path)]) == 2
    assert "width" in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["study", "run", str(path), "--out", str(out)]) == 2
    assert "cell widths-001" in capsys.readouterr().err
    assert not out.exists()  # refused before the first cell (and before the manifest)


def test_validation_uses_checks_minimum_of_nets():
    # the validator's threshold is check()'s: 9 nets are refused by both, 10 by neither
    few = simulate(depth=2, width=8, nets=9, seed=0)
    with pytest.raises(ValueError, match="at least 10 nets"):
        check(few)
    check(simulate(depth=2, width=8, nets=10, seed=0))
    spec = {"name": "s", "seed": 1, "experiment": [{"name": "a", "depth": 2, "width": 8}]}
    exp = spec["experiment"][0]
    with pytest.raises(SpecError, match="at least 10 nets"):
        parse_spec({**spec, "experiment": [{**exp, "nets": 9, "checks": {}}]})
    parse_spec({**spec, "experiment": [{**exp, "nets": 10, "checks": {}}]})


@pytest.mark.parametrize("loss", T.LOSSES)
@pytest.mark.parametrize("kind", ["teacher", "mixture"])
@pytest.mark.parametrize("n_out", [1, 2, 3])
def test_check_data_fits_agrees_with_train(loss, kind, n_out):
    if kind == "teacher":
        X, Y = T.teacher_data(12, 4, 2, seed=0)
        fit = {"targets": 2}
    else:
        X, Y = T.mixture_data(12, 4, 2, seed=0)
        fit = {"classes": 2}
    mlp = T.init_mlp([4, 5, n_out], seed=0)
    try:
        T.train(mlp, X, Y, steps=0, loss=loss)
        trains = True
    except ValueError:
        trains = False
    try:
        T.check_data_fits(loss, n_out, **fit)
        fits = True
    except ValueError:
        fits = False
    assert fits == trains


@pytest.mark.parametrize(
    ("checker", "maker"),
    [
        (T.check_teacher_args, T.teacher_data),
        (T.check_mixture_args, T.mixture_data),
        (T.check_train_args, T.train),
        (T.check_mlp_args, T.init_mlp),
    ],
)
def test_checks_have_their_makers_defaults(checker, maker):
    made = inspect.signature(maker).parameters
    for name, p in inspect.signature(checker).parameters.items():
        if p.default is not inspect.Parameter.empty:
            assert made[name].default == p.default, name


# ----------------------------------------------------------------------------------
# Names that become file names
# ----------------------------------------------------------------------------------


def test_long_experiment_and_study_names_are_refused(tmp_path):
    long = "x" * 250
    body = f'[[experiment]]\nname = "{long}"\ndepth = 2\nwidth = 4\n'
    _refused(tmp_path, body, "line 5", "at most 200 characters", "got 250")
    with pytest.raises(SpecError, match="the study name must have at most 200"):
        parse_spec({"name": long, "seed": 1, "experiment": [{"name": "a", "depth": 2}]})
    ok = "y" * MAX_NAME_LENGTH
    spec = parse_spec({"name": ok, "seed": 1, "experiment": [{"name": ok, "depth": 2}]})
    # the longest cell id (7-digit index) still makes a writable cell file
    cell = ResultsDir(tmp_path / "r").cell_path(f"{spec.cells[0].experiment}-1234567")
    cell.parent.mkdir(parents=True)
    with atomic_write(cell) as fh:
        fh.write(b"ok")
    assert cell.read_bytes() == b"ok"


def test_experiment_names_differing_in_case_are_refused():
    exps = [{"name": "Wide", "depth": 2}, {"name": "wide", "depth": 2}]
    with pytest.raises(SpecError, match="differ only in case"):
        parse_spec({"name": "s", "seed": 1, "experiment": exps})


# ----------------------------------------------------------------------------------
# Item 8: count cells before expanding them
# ----------------------------------------------------------------------------------

BIG = """\
[[experiment]]
name = "big"
depth = 2
width = 4
[experiment.grid]
nets = {nets}
inputs = {inputs}
bias_std = {bias}
"""


def _big(n: int) -> str:
    return BIG.format(
        nets=list(range(1, n + 1)),
        inputs=list(range(1, n + 1)),
        bias=[i / n for i in range(n)],
    )


def test_a_million_cells_are_refused_fast_and_small(tmp_path):
    path = _spec(tmp_path, _big(100))
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(SpecError) as err:
        read_spec(path)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    message = str(err.value)
    for needle in ("line 4", "1,000,000 cells", "'big'", "100 nets", "max_cells = 100,000"):
        assert needle in message, message
    assert elapsed < 0.5, elapsed
    assert peak < 5_000_000, peak  # the grid text, not a million cells


def test_max_cells_is_a_parameter_and_an_option(tmp_path, capsys):
    path = _spec(tmp_path, _big(3))  # 27 cells
    with pytest.raises(SpecError, match="27 cells"):
        read_spec(path, max_cells=26)
    assert len(read_spec(path, max_cells=27).cells) == 27
    assert len(read_spec(path, max_cells=None).cells) == 27
    data = {"name": "s", "seed": 1, "experiment": [{"name": "g", "grid": {"depth": [1, 2, 3]}}]}
    with pytest.raises(SpecError, match="max_cells = 2"):
        Study(data, max_cells=2)
    assert len(Study(data, max_cells=3).spec.cells) == 3
    with pytest.raises(ValueError, match="max_cells"):
        parse_spec(data, max_cells=0)

    assert main(["study", "validate", str(path), "--max-cells", "26"]) == 2
    assert "27 cells" in capsys.readouterr().err
    assert main(["study", "validate", str(path), "--max-cells", "27"]) == 0
    capsys.readouterr()
    out = tmp_path / "out"
    assert main(["study", "run", str(path), "--out", str(out), "--max-cells", "26"]) == 2
    assert "--max-cells" in capsys.readouterr().err
    assert not out.exists()


def test_large_studies_warn(monkeypatch):
    assert WARN_CELLS < MAX_CELLS
    monkeypatch.setattr(spec_module, "WARN_CELLS", 2)
    data = {"name": "s", "seed": 1, "experiment": [{"name": "g", "grid": {"depth": [1, 2, 3]}}]}
    with pytest.warns(StudySizeWarning, match="3 cells"):
        parse_spec(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse_spec({**data, "experiment": [{"name": "g", "grid": {"depth": [1, 2]}}]})


# ----------------------------------------------------------------------------------
# Item 12: encodings
# ----------------------------------------------------------------------------------


def test_latin1_spec_names_the_file_and_the_line(tmp_path):
    path = tmp_path / "latin.toml"
    path.write_bytes('name = "s"\nseed = 1\ndescription = "caf\u00e9"\n'.encode("latin-1"))
    with pytest.raises(SpecError) as err:
        read_spec(path)
    message = str(err.value)
    for needle in ("latin.toml", "line 3", "not UTF-8", "0xe9", "save it as UTF-8"):
        assert needle in message, message


def test_utf8_bom_is_accepted(tmp_path):
    text = HEAD + '[[experiment]]\nname = "a"\ndepth = 2\nwidth = 4\n'
    plain = tmp_path / "plain.toml"
    plain.write_text(text, encoding="utf-8")
    bom = tmp_path / "bom.toml"
    bom.write_text(text, encoding="utf-8-sig")
    assert bom.read_bytes().startswith(b"\xef\xbb\xbf")
    assert read_spec(bom).sha256 == read_spec(plain).sha256
    assert not read_spec(bom).text.startswith("\ufeff")
