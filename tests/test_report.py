"""The PDF report: pages, captions, verdict table, determinism, atomic writes, clear errors.

The study object is a small stand-in for the studies layer's results (the
report only relies on the attributes used here), filled from tiny real runs
of simulate, jacobian_spectrum and train.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pypdf = pytest.importorskip("pypdf")

import initsim  # noqa: E402
from initsim import train as tr  # noqa: E402
from initsim.checks import check, theory_inputs  # noqa: E402
from initsim.report import FIGURE_KINDS, build_report  # noqa: E402
from initsim.report._common import resolve_activation, resolve_init  # noqa: E402
from initsim.study import Cell, TrainCellResult  # noqa: E402
from initsim.study import StudyResults as Study  # noqa: E402

SEED = 7

EXPERIMENTS: list[tuple[str, str, dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]] = [
    (
        "hist",
        "simulate",
        {"depth": 3, "width": 20, "inputs": 50, "input": "gaussian", "nets": 4},
        [
            {
                "activation": "sigmoid",
                "init": {"name": "normal", "std": 1.0},
                "histograms": {"bins": 10, "act_range": [0.0, 1.0001]},
            },
            {
                "activation": "relu",
                "init": "he_normal",
                "histograms": {"bins": 10, "act_range": [0.0, 3.0]},
            },
        ],
        None,
    ),
    (
        "typo",
        "simulate",
        {"depth": 4, "width": 25, "nets": 20, "input": "sphere", "activation": "tanh"},
        [{"init": {"name": "normal", "std": 5.0}}, {"init": {"name": "normal", "std": 0.2}}],
        None,
    ),
    (
        "sym",
        "train",
        {
            "sizes": [4, 6, 1],
            "activation": "tanh",
            "bias": 0.0,
            "lr": 0.05,
            "steps": 20,
            "loss": "mse",
            "repeats": 2,
            "data": {"kind": "teacher", "n_samples": 16, "hidden": 4},
        },
        [{"init": "zeros"}, {"init": "lecun_normal"}],
        None,
    ),
    (
        "depth",
        "simulate",
        {"depth": 6, "width": 30, "nets": 40, "input": "sphere", "backward": True},
        [
            {"activation": "relu", "init": "he_normal"},
            {"activation": "tanh", "init": "lecun_normal"},
        ],
        {"alpha": 0.01},
    ),
    (
        "phase",
        "simulate",
        {
            "activation": "tanh",
            "depth": 8,
            "width": 30,
            "nets": 20,
            "input": "sphere",
            "backward": True,
        },
        [
            {"init": {"name": "variance_scaling", "scale": s}, "bias_std": b}
            for s in (0.8, 2.0)
            for b in (0.0, 0.3)
        ],
        None,
    ),
    (
        "fw",
        "simulate",
        {"activation": "relu", "init": "he_normal", "depth": 4, "nets": 300, "input": "sphere"},
        [{"width": 10}, {"width": 20}],
        None,
    ),
    (
        "jac",
        "jacobian",
        {"depth": 3, "width": 10, "nets": 5, "input": "sphere", "activation": "linear"},
        [{"init": "lecun_normal"}, {"init": "orthogonal"}],
        None,
    ),
]

FIGURES = [
    {"kind": "histograms", "experiment": "hist"},
    {"kind": "literal-typo", "experiment": "typo"},
    {"kind": "training", "experiment": "sym"},
    {"kind": "depth-profile", "experiment": "depth", "title": "Depth profiles of the test"},
    {"kind": "phase-diagram", "experiment": "phase", "resolution": 8},
    {"kind": "finite-width", "experiment": "fw"},
    {"kind": "jacobian-spectra", "experiment": ["jac"]},
]


def _run(kind: str, params: dict[str, Any], ss: np.random.SeedSequence) -> Any:
    if kind == "simulate":
        kw = {
            **params,
            "init": resolve_init(params["init"]),
            "activation": resolve_activation(params["activation"]),
        }
        return initsim.simulate(**kw, seed=ss, threads=1, progress=False)
    if kind == "jacobian":
        kw = {
            **params,
            "init": resolve_init(params["init"]),
            "activation": resolve_activation(params["activation"]),
        }
        return initsim.jacobian_spectrum(**kw, seed=ss, threads=1)
    data = {k: v for k, v in params["data"].items() if k not in ("kind", "n_samples")}
    X, Y = tr.teacher_data(
        params["data"]["n_samples"], params["sizes"][0], params["sizes"][-1], **data, seed=ss
    )
    outs = []
    for r in range(params["repeats"]):
        mlp = tr.init_mlp(
            params["sizes"],
            resolve_init(params["init"]),
            params["activation"],
            bias=params["bias"],
            seed=np.random.SeedSequence(SEED, spawn_key=(99, r)),
        )
        outs.append(tr.train(mlp, X, Y, lr=params["lr"], steps=params["steps"], loss="mse"))
    return TrainCellResult(
        *(np.stack([getattr(o, f) for o in outs]) for f in ("loss", "unit_distance", "grad_norms"))
    )


def _study(figures: list[dict[str, Any]] | None = None) -> Study:
    cells = []
    for e, (name, kind, fixed, cases, checks) in enumerate(EXPERIMENTS):
        for i, case in enumerate(cases):
            params = {**fixed, **case}
            ss = np.random.SeedSequence(SEED, spawn_key=(e, i))
            result = _run(kind, params, ss)
            report = check(result, **checks) if checks else None
            cid = f"{name}-{i:03d}"
            cells.append(Cell(cid, name, kind, params, result, report, (e, i), arrays={}))
    return Study(
        name="test-study",
        seed=SEED,
        spec={
            "name": "test-study",
            "description": "A tiny study for the report's tests.",
            "experiment": [{"name": name} for name, *_ in EXPERIMENTS],
        },
        spec_sha256="ab" * 32,
        provenance={
            "versions": {"initsim": initsim.__version__},
            "threads": 1,
            "threading_layer": "workqueue",
            "seed_entropy": str(SEED),
        },
        figures=list(FIGURES if figures is None else figures),
        cells=cells,
        missing=[],
        path=Path("."),
    )


@pytest.fixture(scope="module")
def study() -> Study:
    return _study()


@pytest.fixture(scope="module")
def built(study: Study, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("report")
    out = build_report(study, d / "report.pdf", figures_dir=d / "figs")
    return out, d / "figs"


def _text(pdf: Path) -> list[str]:
    return [page.extract_text() or "" for page in pypdf.PdfReader(pdf).pages]


def test_page_count_and_footers(built: tuple[Path, Path]) -> None:
    pages = _text(built[0])
    n = len(pages)
    # title + at least one verdict page + 7 figures + at least one provenance page
    assert n >= 1 + 1 + len(FIGURES) + 1
    for i, text in enumerate(pages, start=1):
        assert f"page {i} of {n}" in text


def test_captions_and_verdict_table_are_text(built: tuple[Path, Path], study: Study) -> None:
    text = re.sub(r"\s+", " ", " ".join(_text(built[0])))
    for phrase in [
        "A tiny study for the report's tests",  # the title: the description's first sentence
        "initsim report of the study test-study",
        "ab" * 32,  # spec hash on the title page
        "Check verdicts",
        "observed",
        "predicted",
        "p-value",
        "depth-000",
        "mean-field prediction",  # histograms
        "Var(W_ij) = n_in",  # literal typo
        "bitwise identical",  # training
        "Depth profiles of the test",  # custom title
        "Student-t confidence intervals",  # depth profile bands
        "chi1_hat = (G_a / G_L)^(1/(L - a))",  # phase-diagram estimator
        "E[M_L^2] = prod_(l=1..L) (1 + 5/n_l)",  # finite width
        "squared singular values",  # Jacobian spectra
        f"Study seed {SEED}",
        "Provenance",
    ]:
        assert phrase in text, phrase
    verdicts = [r.verdict for c in study.cells if c.checks for r in c.checks.rows]
    assert text.count(" PASS ") + text.count(" FAIL ") >= sum(v != "N/A" for v in verdicts)


def test_same_study_gives_identical_bytes(
    built: tuple[Path, Path], study: Study, tmp_path: Path
) -> None:
    again = build_report(study, tmp_path / "again.pdf", figures_dir=tmp_path / "figs")
    assert again.read_bytes() == built[0].read_bytes()
    first = sorted(p.name for p in built[1].iterdir())
    assert first == sorted(p.name for p in (tmp_path / "figs").iterdir())
    for name in first:
        assert (built[1] / name).read_bytes() == (tmp_path / "figs" / name).read_bytes()


def test_every_page_renders_non_blank(built: tuple[Path, Path], tmp_path: Path) -> None:
    import matplotlib.image as mpimg

    pngs = sorted(built[1].glob("*.png"))
    assert [p.name[:2] for p in pngs] == [f"{i:02d}" for i in range(1, len(FIGURES) + 1)]
    assert pngs[0].name == "01-histograms-hist.png"
    if shutil.which("pdftoppm"):
        subprocess.run(
            ["pdftoppm", "-r", "20", "-png", str(built[0]), str(tmp_path / "page")], check=True
        )
        pngs = sorted(tmp_path.glob("page*.png"))
        assert len(pngs) == len(pypdf.PdfReader(built[0]).pages)
    for p in pngs:
        img = mpimg.imread(p)
        assert float(img[..., :3].std()) > 0.01, p.name


def _leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def test_unknown_figure_kind_is_a_clear_error(study: Study, tmp_path: Path) -> None:
    bad = replace(study, figures=[{"kind": "violin", "experiment": "hist"}])
    with pytest.raises(ValueError, match="violin") as info:
        build_report(bad, tmp_path / "r.pdf")
    for kind in FIGURE_KINDS:
        assert kind in str(info.value)
    assert _leftovers(tmp_path) == []


def test_missing_experiment_and_bad_options_are_clear_errors(study: Study, tmp_path: Path) -> None:
    missing = replace(study, figures=[{"kind": "histograms", "experiment": "nope"}])
    with pytest.raises(ValueError, match=r"'nope'.*experiments: hist, typo"):
        build_report(missing, tmp_path / "r.pdf")
    option = replace(study, figures=[{"kind": "histograms", "experiment": "hist", "colour": 1}])
    with pytest.raises(ValueError, match=r"unknown option.*colour"):
        build_report(option, tmp_path / "r.pdf")
    wrong = replace(study, figures=[{"kind": "training", "experiment": "hist"}])
    with pytest.raises(ValueError, match="needs 'train' cells"):
        build_report(wrong, tmp_path / "r.pdf")
    assert _leftovers(tmp_path) == []


def test_unwritable_destination_is_a_clear_error(study: Study, tmp_path: Path) -> None:
    with pytest.raises(OSError, match="does not exist"):
        build_report(study, tmp_path / "no" / "such" / "r.pdf")
    with pytest.raises(OSError, match="is a directory"):
        build_report(study, tmp_path)
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(OSError, match="not writable"):
                build_report(study, locked / "r.pdf")
        finally:
            locked.chmod(0o700)
        assert _leftovers(locked) == []


def test_error_while_drawing_leaves_nothing_partial(
    study: Study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from initsim.report import pdf

    def broken(*args: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setitem(pdf.FIGURES, "finite-width", (broken, "simulate"))
    old = tmp_path / "r.pdf"
    old.write_bytes(b"previous report")
    with pytest.raises(RuntimeError, match="boom"):
        build_report(study, old, figures_dir=tmp_path / "figs")
    assert old.read_bytes() == b"previous report"
    assert _leftovers(tmp_path) == ["figs", "r.pdf"]
    assert _leftovers(tmp_path / "figs") == []


def _simulate_cells(name: str, fixed: dict[str, Any], cases: list[dict[str, Any]]) -> list[Cell]:
    cells = []
    for i, case in enumerate(cases):
        params = {**fixed, **case}
        result = _run("simulate", params, np.random.SeedSequence(SEED, spawn_key=(90, i)))
        cells.append(Cell(f"{name}-{i:03d}", name, "simulate", params, result, None, (90, i), {}))
    return cells


def test_theory_line_is_drawn_exactly_where_check_applies(study: Study) -> None:
    """uniform(0, 1) (mean 0.5): check() and the theory lines refuse it; he_normal: they agree."""
    from initsim.report.depth_profiles import depth_profile_figure, theory_profiles
    from initsim.report.histograms import histograms_figure

    fixed = {
        "activation": "relu",
        "depth": 4,
        "width": 20,
        "nets": 20,
        "input": "sphere",
        "backward": True,
        "histograms": {"bins": 10, "act_range": [0.0, 3.0]},
    }
    cells = _simulate_cells(
        "mean", fixed, [{"init": {"name": "uniform", "a": 0.0, "b": 1.0}}, {"init": "he_normal"}]
    )
    uniform, he = (c.result for c in cells)

    ti, reason = theory_inputs(uniform)
    assert ti is None and "zero-mean symmetric" in reason
    with pytest.raises(ValueError, match=re.escape(reason)):
        check(uniform)
    assert theory_profiles(uniform) is None

    # he_normal: the figure's theory line is the prediction check() tests against
    report = check(he)
    th = theory_profiles(he)
    assert th is not None and th[1] is not None
    np.testing.assert_array_equal(th[0], [r.predicted for r in report.rows if r.quantity == "E[q]"])
    np.testing.assert_array_equal(
        th[1], [r.predicted for r in report.rows if r.quantity == "E[grad^2]"]
    )

    # depth profile: one colour per cell (C0 uniform, C1 he_normal); theory lines are solid
    fig, _ = depth_profile_figure(study, cells, {})
    solid = {
        line.get_color()
        for ax in fig.axes
        for line in ax.get_lines()
        if line.get_linestyle() == "-" and len(line.get_xdata())
    }
    assert solid == {"C1"}

    # histograms: one row of panels per cell; the theory curve only in he_normal's row
    fig, _ = histograms_figure(study, cells, {"layers": [1, 2]})
    theory = [any(p.get_label() == "mean-field theory" for p in ax.patches) for ax in fig.axes[:4]]
    assert theory == [False, False, True, True]


def test_registry_matches_public_kinds() -> None:
    """The drawing registry and the options table (FIGURE_KINDS is its keys) agree."""
    from initsim.report.pdf import FIGURES as registry

    assert tuple(registry) == FIGURE_KINDS


def test_figure_kinds_are_declared_once() -> None:
    """FIGURE_KINDS, FIGURE_OPTIONS and pdf.FIGURES all come from report/kinds.py."""
    from initsim.report import FIGURE_OPTIONS, kinds, pdf

    assert FIGURE_KINDS == tuple(kinds.KINDS)
    assert FIGURE_OPTIONS == {name: k.options for name, k in kinds.KINDS.items()}
    for name, k in kinds.KINDS.items():
        fn, cell_kind = pdf.FIGURES[name]
        assert fn is k.load() and callable(fn)
        assert cell_kind == k.cell_kind
        assert cell_kind in ("simulate", "jacobian", "train", "pair")


def test_importing_the_report_package_does_not_import_matplotlib() -> None:
    code = (
        "import sys, initsim.report, initsim.report.kinds\n"
        "from initsim.report import FIGURE_KINDS, FIGURE_OPTIONS\n"
        "print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_shipped_default_spec_covers_every_figure_kind() -> None:
    import tomllib

    from initsim.cli.report import default_spec_path
    from initsim.study import read_spec

    path = default_spec_path()
    spec = tomllib.loads(path.read_text())
    assert len(read_spec(path).cells) > 0  # valid for the study runner too
    assert sorted({f["kind"] for f in spec["figure"]}) == sorted(FIGURE_KINDS)
    names = {e["name"] for e in spec["experiment"]}
    for f in spec["figure"]:
        assert f["experiment"] in names


def test_study_without_checks_or_figures(study: Study, tmp_path: Path) -> None:
    cells = [replace(c, checks=None) for c in study.cells if c.experiment == "jac"]
    bare = replace(study, figures=[], cells=cells)
    pages = _text(build_report(bare, tmp_path / "bare.pdf"))
    assert len(pages) == 2  # title and provenance
    assert "Check verdicts" not in " ".join(pages)
    assert "jac-001" in pages[1]


def _collapsed(pdf: Path) -> str:
    return re.sub(r"\s+", " ", " ".join(_text(pdf)))


def test_check_tables_never_truncate_and_name_cells(study: Study, tmp_path: Path) -> None:
    """Every regime note appears whole in the PDF; every checked cell is named by its parameters."""
    long_note = (
        "mean too skewed for a z-test at 40 nets (skewness 8.6); about 298583 nets would do, "
        "and this note goes on well past the width of one table line to test the wrapping"
    )
    cells = []
    for c in study.cells:
        if c.checks is not None:
            rows = list(c.checks.rows)
            rows[0] = replace(rows[0], regime=long_note, verdict="N/A", p_value=float("nan"))
            c = replace(c, checks=replace(c.checks, rows=rows))
        cells.append(c)
    edited = replace(study, cells=cells)
    text = _collapsed(build_report(edited, tmp_path / "r.pdf"))
    notes = {r.regime for c in cells if c.checks for r in c.checks.rows}
    assert long_note in notes
    for note in notes:
        assert " ".join(note.split()) in text, note
    pages = _text(tmp_path / "r.pdf")
    # the summary comes first and names each cell by its parameters, the appendix after the figures
    assert "Check verdicts: summary" in pages[1]
    summary = re.sub(r"\s+", " ", pages[1])
    for c in cells:
        if c.checks is not None:
            label = f"{c.params['activation']}, {c.params['init']}, width {c.params['width']}"
            assert f"{c.id} {label}" in summary
            assert c.checks.summary().split(" (")[0] in summary  # "PASS, 40 of 41 rows testable"
    # why rows were not tested: the note's reason, counted (its numbers are in the appendix)
    assert re.search(r"not testable: \d+ rows?, mean too skewed for a z-test at 40 nets", summary)
    appendix = [i for i, p in enumerate(pages) if i and "Appendix: every check row" in p]
    figures = [i for i, p in enumerate(pages) if "Study seed" in p]
    assert appendix and min(appendix) > max(figures)


def _legend_labels(fig: Any) -> list[str]:
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def test_labels_name_every_varying_parameter(study: Study) -> None:
    """Cells that differ in width (or bias) are told apart by their labels, in every figure kind."""
    from initsim.report._common import cell_label, cell_labels, varying_keys
    from initsim.report.depth_profiles import depth_profile_figure
    from initsim.report.finite_width import finite_width_figure
    from initsim.report.literal_typo import literal_typo_figure

    fixed = {"depth": 3, "nets": 20, "input": "sphere", "backward": True}
    cases = [
        {"activation": a, "init": i, "width": w}
        for a in ("relu", "tanh")
        for i in ("he_normal", "lecun_normal")
        for w in (8, 16)
    ]
    cases[-1]["bias_std"] = 0.1
    cells = _simulate_cells("grid", fixed, cases)
    keys = varying_keys(cells)
    assert keys == ["activation", "init", "width", "bias_std"]
    labels, _ = cell_labels(cells)
    assert len(set(labels)) == len(cells)
    for c, label in zip(cells, labels, strict=True):
        for key in keys:
            assert cell_label(c.params, [key]) in label, (key, label)
    for draw in (depth_profile_figure, literal_typo_figure):
        fig, _ = draw(study, cells, {})
        legend = _legend_labels(fig)
        for label in labels:
            assert any(label in t for t in legend), (draw.__name__, label, legend)
    he = [c for c in cells if c.params["activation"] == "relu" and c.params["init"] == "he_normal"]
    deeper = _simulate_cells(
        "fw2",
        {**fixed, "activation": "relu", "init": "he_normal"},
        [
            {"width": 8, "depth": 3},
            {"width": 8, "depth": 4},
        ],
    )
    fig, _ = finite_width_figure(study, [*he, *deeper], {})
    legend = _legend_labels(fig)
    assert {"width 8, depth 3", "width 16, depth 3", "width 8, depth 4"} <= set(legend)
    # the training figure: initializers (and any other varying parameter) in its legends
    sym = study.cells_of("sym")
    from initsim.report.training import training_figure

    fig, _ = training_figure(study, sym, {})
    legend = _legend_labels(fig)
    for c in sym:
        assert any(t.startswith(cell_label(c.params, ["init"])) for t in legend)


def test_captions_state_the_facts_of_their_figure(built: tuple[Path, Path], study: Study) -> None:
    """Captions are built from the cells' parameters, not hard-coded."""
    from initsim.report.histograms import histograms_figure
    from initsim.report.literal_typo import literal_typo_figure
    from initsim.report.training import training_figure

    _, cap = histograms_figure(study, study.cells_of("hist"), {})
    assert "50 inputs per net" in cap and "iid N(0, 1) entries" in cap
    assert "input dimension 20, 3 hidden layers of width 20" in cap
    _, cap = literal_typo_figure(study, study.cells_of("typo"), {})  # tanh only
    assert "relu" not in cap.lower() and "for tanh an approximation" in cap
    assert "n_in = 25" in cap and "one input per net" in cap
    _, cap = training_figure(study, study.cells_of("sym"), {})
    assert "zeros: mean loss" in cap
    assert "units identical at every step in 2 of 2 nets" in cap
    assert "no gradient reaches a hidden layer in 2 of 2" in cap
    assert "units identical at every step in 0 of 2 nets (symmetry broken from step 0)" in cap
    # contents and title read as titles, not ids
    title_page = re.sub(r"\s+", " ", _text(built[0])[0])
    for kind, exp in (("literal-typo", "typo"), ("training", "sym"), ("finite-width", "fw")):
        assert f"{kind}: {exp}" not in title_page
    assert "The seed's literal randn / sqrt(1/n)" in title_page
    assert "workqueue threading layer, 1 thread per cell" in title_page


def test_constant_init_keeps_units_identical_but_learns(tmp_path: Path) -> None:
    """constant(0.2): symmetric at every step yet the loss falls; the figure says width 1."""
    from initsim.report.training import training_figure

    params = {**EXPERIMENTS[2][2], "init": {"name": "constant", "value": 0.2}, "steps": 40}
    result = _run("train", params, np.random.SeedSequence(SEED, spawn_key=(2, 9)))
    cell = Cell("sym-009", "sym", "train", params, result, None, (2, 9), {})
    fig, cap = training_figure(_study(figures=[]), [cell], {})
    assert np.all(np.asarray(result.unit_distance) == 0.0)
    assert "units identical at every step in 2 of 2 nets" in cap
    assert "width 1 per hidden layer (sizes [4, 1, 1])" in cap
    assert "initialization keeps every hidden unit identical" in fig._suptitle.get_text()


def test_threading_wording() -> None:
    from initsim.report.pages import threading_text

    assert threading_text({"threading_layer": "omp", "threads": "1 to 2"}) == (
        "omp threading layer, 1 to 2 threads per cell"
    )
    assert threading_text({"threading_layer": "tbb", "threads": 1}) == (
        "tbb threading layer, 1 thread per cell"
    )
    assert "not recorded" in threading_text({"threading_layer": "unset", "threads": None})
    assert "?" not in threading_text({})


def test_phase_diagram_legend_covers_no_printed_value(study: Study) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from initsim.report.phase_diagram import phase_diagram_figure

    fig, _ = phase_diagram_figure(study, study.cells_of("phase"), {"resolution": 8})
    FigureCanvasAgg(fig).draw()
    ax = fig.axes[0]
    box = ax.get_legend().get_window_extent()
    values = [t for t in ax.texts if t.get_text() and "chi1=" not in t.get_text()]
    assert len(values) == len(study.cells_of("phase"))
    for t in values:
        assert not box.overlaps(t.get_window_extent()), t.get_text()


def test_pages_dir_writes_every_page_as_png(study: Study, tmp_path: Path) -> None:
    out = build_report(study, tmp_path / "r.pdf", pages_dir=tmp_path / "pages")
    pngs = sorted((tmp_path / "pages").glob("page-*.png"))
    assert len(pngs) == len(pypdf.PdfReader(out).pages)
    assert not [p for p in (tmp_path / "pages").iterdir() if not p.name.startswith("page-")]
