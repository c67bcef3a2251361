"""Assemble the report: validate the figure list, draw every page, write the PDF atomically.

Page order: the title page (with the contents), the verdict summary (one
block per checked cell), the figures in spec order, the appendix with every
check row, cell by cell, and the provenance.

Determinism: pages are drawn in a fixed order, from the study's cells in their given order; the
PDF carries fixed metadata and no creation date, and fonts are embedded as
TrueType (``pdf.fonttype = 42``, which also keeps the text extractable).
The same study gives the same bytes.

Atomicity: the PDF (and each PNG) is written to a temporary file in its
destination directory and moved into place with :func:`os.replace` only
when every page has been drawn; on any error the temporary files are
deleted and nothing partial is left behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from initsim._files import temp_file_in
from initsim.report.kinds import KINDS, arch_mismatch, options_problem
from initsim.report.pages import (
    APPENDIX_LINES,
    APPENDIX_SIZE,
    check_overview_lines,
    check_summary_blocks,
    check_table_blocks,
    provenance_lines,
    report_title,
    text_pages,
    title_page,
)

__all__ = ["FIGURES", "build_report", "plan_figures"]

FigureFn = Callable[[Any, Sequence[Any], dict[str, Any]], tuple[Figure, str]]

#: Figure kind -> (drawing function, the cell kind it needs), read from ``kinds.KINDS``.
FIGURES: dict[str, tuple[FigureFn, str]] = {
    name: (kind.load(), kind.cell_kind) for name, kind in KINDS.items()
}

#: rcParams of every page (set with rc_context: global state is left alone).
RC = {
    "pdf.fonttype": 42,
    "pdf.compression": 6,
    "svg.hashsalt": "initsim",
    "font.family": "DejaVu Sans",
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "figure.dpi": 100,
    "savefig.dpi": 100,
}
PDF_METADATA = {
    "Creator": "initsim report",
    "Producer": "initsim",
    "CreationDate": None,
}
PNG_DPI = 110


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(f"figure 'experiment' must be a name or a list of names; got {value!r}")


def plan_figures(study: Any) -> list[tuple[str, list[str], list[Any], dict[str, Any]]]:
    """Validate the study's ``figures`` and collect each one's cells.

    Parameters
    ----------
    study : StudyResults-like
        Has ``figures`` (list of dicts), ``cells`` and ``cells_of``.

    Returns
    -------
    list of (kind, experiment names, cells, options)
        One entry per figure, in spec order.

    Raises
    ------
    ValueError
        For an unknown figure kind (the valid kinds are listed), an unknown
        option, an experiment missing from the study (the present ones are
        listed), cells of the wrong kind or architecture, or options the
        kind's own check refuses (:func:`initsim.report.kinds.options_problem`).
    """
    present: list[str] = []
    for c in study.cells:
        if c.experiment not in present:
            present.append(c.experiment)
    plan = []
    for i, fig in enumerate(study.figures):
        kind = fig.get("kind")
        if kind not in KINDS:
            raise ValueError(
                f"figure {i + 1}: unknown figure kind {kind!r}; valid kinds: {', '.join(KINDS)}"
            )
        names = _names(fig.get("experiment"))
        options = {k: v for k, v in fig.items() if k not in ("kind", "experiment")}
        unknown = sorted(set(options) - {"title", *KINDS[kind].options})
        if unknown:
            valid = ", ".join(("title", *KINDS[kind].options))
            raise ValueError(
                f"figure {i + 1} ({kind}): unknown option(s) {', '.join(unknown)}; valid: {valid}"
            )
        cells: list[Any] = []
        for name in names:
            if name not in present:
                raise ValueError(
                    f"figure {i + 1} ({kind}) refers to experiment {name!r}, which the study "
                    f"does not have; experiments: {', '.join(present) or 'none'}"
                )
            cells.extend(study.cells_of(name))
        need = KINDS[kind].cell_kind
        wrong = [c.id for c in cells if c.kind != need]
        if wrong:
            raise ValueError(
                f"figure {i + 1} ({kind}) needs '{need}' cells; got other kinds: {', '.join(wrong)}"
            )
        mismatch = arch_mismatch(KINDS[kind], cells)
        if mismatch:
            raise ValueError(f"figure {i + 1} ({kind}) {mismatch}")
        problem = options_problem(KINDS[kind], options, cells)
        if problem is not None:
            raise ValueError(f"figure {i + 1} ({kind}): {problem[1]}")
        plan.append((kind, names, cells, options))
    return plan


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "figure"


def _check_destination(out: Path) -> Path:
    parent = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise IsADirectoryError(f"report output path {str(out)!r} is a directory; give a file name")
    if not parent.is_dir():
        raise FileNotFoundError(
            f"cannot write the report to {str(out)!r}: directory {str(parent)!r} does not exist"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(
            f"cannot write the report to {str(out)!r}: directory {str(parent)!r} is not writable"
        )
    return parent


def _make_dir(path: Path, what: str) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"cannot create the {what} directory {str(path)!r}: {err}") from err
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"{what} directory {str(path)!r} is not writable")
    return path


def _save_png(fig: Figure, directory: Path, name: str, temps: list[Path], finals: list) -> None:
    """Write a page as PNG to a temporary file; it is moved into place with the PDF."""
    pfd, ptmp = temp_file_in(directory, name)
    temps.append(ptmp)
    with os.fdopen(pfd, "wb") as pf:
        FigureCanvasAgg(fig)
        fig.savefig(pf, format="png", dpi=PNG_DPI, metadata={"Software": "initsim report"})
    finals.append((ptmp, directory / name))


#: Introductions of the two verdict sections.
SUMMARY_INTRO = (
    "One block per checked cell: its id and parameters, then its verdict with how many of its "
    "rows were testable and how many failed (Holm's step-down correction within the cell: a "
    "cell FAILs with probability at most its alpha when the simulation agrees with the "
    "theory), the failed rows, and why the other rows were not tested (outside the regime "
    "where the theory holds, or a mean too skewed for a z-test at this number of nets). "
    "Every row is listed in the appendix."
)
TABLE_INTRO = (
    "Every statistical check of the study, cell by cell: per row the hidden layer (0 for rows "
    "about the whole net), the quantity, the Monte Carlo estimate, the theory's prediction, "
    "the two-sided p-value, the verdict after Holm's step-down correction within the cell "
    "(N/A: not tested) and the regime: which theory applies, or why the row was not tested."
)


def _figure_title(fig: Figure, kind: str, names: Sequence[str]) -> str:
    """Return the title a figure drew (its suptitle), for the contents."""
    sup = getattr(fig, "_suptitle", None)
    text = sup.get_text() if sup is not None else ""
    return text or f"{kind}: {', '.join(names)}"


def _footer(fig: Figure, study_name: str, page: int, total: int) -> None:
    fig.text(
        0.97,
        0.012,
        f"initsim report of the study {study_name} - page {page} of {total}",
        ha="right",
        va="bottom",
        fontsize=7,
        color="0.4",
    )


def build_report(
    study: Any,
    out_path: str | Path,
    *,
    figures_dir: str | Path | None = None,
    pages_dir: str | Path | None = None,
    progress: bool = False,
) -> Path:
    """Draw every page of a study's report and write it as one PDF, atomically.

    Parameters
    ----------
    study : StudyResults-like
        ``name``, ``seed``, ``spec``, ``spec_sha256``, ``provenance``,
        ``figures``, ``cells`` and ``cells_of(name)``.
    out_path : str or Path
        The PDF's path; its directory must exist and be writable.
    figures_dir : str or Path, optional
        Also write each figure as ``NN-kind-experiment.png`` (``NN`` its
        position among the figures) into this directory (created if needed).
    pages_dir : str or Path, optional
        Also write every page of the PDF, as drawn, as ``page-NN.png`` into
        this directory (created if needed): for reading the report page by
        page without a PDF renderer.
    progress : bool
        Print one line per page drawn to stderr.

    Returns
    -------
    Path
        ``out_path``.

    Raises
    ------
    ValueError
        For an invalid figure list (see :func:`plan_figures`).
    OSError
        If the destination cannot be written (the message names the path).
    """
    out = Path(out_path)
    plan = plan_figures(study)
    parent = _check_destination(out)
    png_dir = None if figures_dir is None else _make_dir(Path(figures_dir), "figures")
    page_dir = None if pages_dir is None else _make_dir(Path(pages_dir), "pages")

    overview = check_overview_lines(study)
    summary = check_summary_blocks(study)
    table = check_table_blocks(study)
    prov = provenance_lines(study)
    temps: list[Path] = []
    finals: list[tuple[Path, Path]] = []
    fd, tmp_pdf = temp_file_in(parent, out.name)
    temps.append(tmp_pdf)

    def say(text: str) -> None:
        if progress:
            print(f"report: {text}", file=sys.stderr, flush=True)

    try:
        with contextlib.ExitStack() as stack:
            fh = stack.enter_context(os.fdopen(fd, "wb"))
            stack.enter_context(matplotlib.rc_context(RC))
            # figures first: the contents list their titles, the footers "page i of N"
            figs: list[Figure] = []
            titles: list[str] = []
            for k, (kind, names, cells, options) in enumerate(plan):
                fn = FIGURES[kind][0]
                try:
                    fig, _ = fn(study, cells, dict(options))
                except ValueError as err:
                    raise ValueError(f"figure {k + 1} ({kind}, {', '.join(names)}): {err}") from err
                if png_dir is not None:
                    name = f"{k + 1:02d}-{kind}-{_safe('+'.join(names))}.png"
                    _save_png(fig, png_dir, name, temps, finals)
                figs.append(fig)
                titles.append(_figure_title(fig, kind, names))
                say(f"figure {k + 1}/{len(plan)}: {kind} ({', '.join(names)})")
            summary_figs = (
                text_pages("Check verdicts: summary", summary, SUMMARY_INTRO) if summary else []
            )
            table_figs = (
                text_pages(
                    "Appendix: every check row",
                    table,
                    TABLE_INTRO,
                    size=APPENDIX_SIZE,
                    per_page=APPENDIX_LINES,
                )
                if table
                else []
            )
            prov_figs = text_pages("Provenance", prov)
            total = 1 + len(summary_figs) + len(figs) + len(table_figs) + len(prov_figs)
            contents: list[tuple[int, str]] = []
            page = 2
            for section, n in [
                ("Check verdicts: a summary per checked cell", len(summary_figs)),
                *((t, 1) for t in titles),
                ("Appendix: every check row, cell by cell", len(table_figs)),
                ("Provenance", len(prov_figs)),
            ]:
                if n:
                    contents.append((page, section))
                    page += n

            pdf = stack.enter_context(
                PdfPages(fh, metadata={**PDF_METADATA, "Title": report_title(study)})
            )
            number = 1

            def emit(fig: Figure) -> None:
                nonlocal number
                _footer(fig, study.name, number, total)
                pdf.savefig(fig)
                if page_dir is not None:
                    _save_png(fig, page_dir, f"page-{number:02d}.png", temps, finals)
                number += 1

            emit(title_page(study, contents, overview))
            for fig in [*summary_figs, *figs, *table_figs, *prov_figs]:
                emit(fig)
            say(f"{number - 1} pages")
        os.replace(tmp_pdf, out)
        temps.remove(tmp_pdf)
        for ptmp, final in finals:
            os.replace(ptmp, final)
            temps.remove(ptmp)
    except BaseException:
        for t in temps:
            with contextlib.suppress(OSError):
                t.unlink()
        raise
    say(f"wrote {out}")
    return out
