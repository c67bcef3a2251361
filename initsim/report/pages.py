"""Text pages of the report: title page, the table of every check verdict, provenance.

Text pages are drawn in a monospaced font, one text object per line, so the
PDF's extracted text keeps the table's rows intact.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

from initsim.report._common import PAGE_SIZE, cell_labels, fmt, wrap_caption

__all__ = [
    "LINES_PER_PAGE",
    "check_overview_lines",
    "check_rows",
    "check_summary_blocks",
    "check_table_blocks",
    "check_table_lines",
    "paginate",
    "provenance_lines",
    "report_title",
    "text_pages",
    "threading_text",
    "title_page",
]

#: Lines of monospaced text on one table page.
LINES_PER_PAGE = 44
_MONO = "DejaVu Sans Mono"
_TABLE_CHARS = 150
#: The appendix's full table: smaller type, longer lines, more lines per page.
APPENDIX_SIZE = 7.0
APPENDIX_CHARS = 160
APPENDIX_LINES = 50


def _get(obj: Any, key: str, default: Any = None) -> Any:
    """Attribute or mapping item (CheckReport objects or their ``to_dict()``)."""
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def check_rows(study: Any) -> list[tuple[str, Any]]:
    """Every check row of the study, with its cell id, in cell order.

    Parameters
    ----------
    study : StudyResults-like
        Has ``cells``, each with ``checks`` (a CheckReport, its dict, or None).

    Returns
    -------
    list of (str, row)
        ``(cell id, CheckRow-like)`` pairs.
    """
    out = []
    for c in study.cells:
        if c.checks is None:
            continue
        for row in _get(c.checks, "rows", []) or []:
            out.append((c.id, row))
    return out


def _checked(study: Any) -> list[Any]:
    return [c for c in study.cells if c.checks is not None]


#: Parameters of a checked cell always named in the verdict tables (with every varying one).
_CHECK_KEYS = ("activation", "init", "width", "depth")


def _verdict_text(checks: Any) -> str:
    """``CheckReport.summary()`` (also for a report stored as a dict)."""
    if isinstance(checks, Mapping):
        from initsim.checks import CheckReport

        checks = CheckReport.from_dict(dict(checks))
    return str(checks.summary())


def _row_counts(checks: Any) -> tuple[int, list[Any], int]:
    """Rows of one cell's checks: how many were tested, the failed rows, how many in all."""
    rows = _get(checks, "rows", []) or []
    tested = sum(_get(r, "verdict") != "N/A" for r in rows)
    return tested, [r for r in rows if _get(r, "verdict") == "FAIL"], len(rows)


def _total_line(cells: Sequence[Any]) -> str:
    """Return the study's line under the per-cell verdicts."""
    counts = [_row_counts(c.checks) for c in cells]
    tested = sum(t for t, _, _ in counts)
    failed = sum(len(f) for _, f, _ in counts)
    total = sum(n for _, _, n in counts)
    return (
        f"all checks: {len(cells)} checked cells, {tested} of {total} rows tested, {failed} failed"
    )


def _why_untested(rows: Sequence[Any]) -> list[tuple[int, str]]:
    """Untested rows grouped by the reason of their regime note (numbers in brackets dropped)."""
    counts: dict[str, int] = {}
    for r in rows:
        if _get(r, "verdict") != "N/A":
            continue
        reason = re.split(r" \(|; ", str(_get(r, "regime", "") or "no reason given"))[0]
        counts[reason] = counts.get(reason, 0) + 1
    return sorted(((n, why) for why, n in counts.items()), key=lambda t: (-t[0], t[1]))


def _p_text(p: float) -> str:
    if math.isnan(p):
        return "not tested"
    return "p < 1e-300 (underflows to 0)" if p == 0.0 else f"p = {fmt(p, 3)}"


def _wrap(text: str, width: int, indent: str) -> list[str]:
    return textwrap.wrap(
        text, width, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False
    ) or [indent]


def check_summary_blocks(study: Any) -> list[list[str]]:
    """Return the verdict summary: one block per checked cell, then the study's total.

    Each block's first line names the cell by id and parameters (every
    parameter that varies between the checked cells, with activation,
    initializer, width and depth) and gives its verdict with how many rows
    were testable and how many failed (:meth:`initsim.checks.CheckReport.summary`);
    indented lines list the failed rows and why the untestable rows were not
    tested. Nothing is truncated: long text wraps.

    Parameters
    ----------
    study : StudyResults-like
        The study.

    Returns
    -------
    list of list of str
        Blocks of lines (a block is kept on one page); empty without checks.
    """
    cells = _checked(study)
    if not cells:
        return []
    labels, _ = cell_labels(cells, _CHECK_KEYS)
    id_w = max(len(c.id) for c in cells)
    label_w = min(max(len(lab) for lab in labels), 60)
    blocks = []
    for c, label in zip(cells, labels, strict=True):
        rows = _get(c.checks, "rows", []) or []
        _, f, _ = _row_counts(c.checks)
        head = f"{c.id:<{id_w}}  {label:<{label_w}}  "
        block = _wrap(f"{head}{_verdict_text(c.checks)}", _TABLE_CHARS, "")
        block[1:] = [f"{' ' * (id_w + 2)}{line.lstrip()}" for line in block[1:]]
        pad = " " * (id_w + 4)
        for r in f:
            p = _num(_get(r, "p_value"))
            block.extend(
                _wrap(
                    f"FAIL: {_get(r, 'quantity')} at layer {int(_get(r, 'layer', 0))}: observed "
                    f"{fmt(_num(_get(r, 'observed')), 5)}, predicted "
                    f"{fmt(_num(_get(r, 'predicted')), 5)}, {_p_text(p)}",
                    _TABLE_CHARS,
                    pad,
                )
            )
        why = _why_untested(rows)
        if why:
            text = "; ".join(f"{n} row{'s' if n > 1 else ''}, {why_}" for n, why_ in why)
            block.extend(_wrap(f"not testable: {text}", _TABLE_CHARS, pad))
        blocks.append(block)
    blocks.append([_total_line(cells)])
    return blocks


def check_overview_lines(study: Any) -> list[str]:
    """Short verdict lines for the title page: per checked cell id, parameters, counts; the total.

    Parameters
    ----------
    study : StudyResults-like
        The study.

    Returns
    -------
    list of str
        Empty without checks.
    """
    cells = _checked(study)
    if not cells:
        return []
    labels, _ = cell_labels(cells, _CHECK_KEYS)
    id_w = max(len(c.id) for c in cells)
    label_w = max(len(lab) for lab in labels)
    lines = []
    for c, label in zip(cells, labels, strict=True):
        t, f, n = _row_counts(c.checks)
        lines.append(
            f"{c.id:<{id_w}}  {label:<{label_w}}  {_get(c.checks, 'verdict', '?'):<4}  "
            f"{t} of {n} rows testable, {len(f)} failed"
        )
    lines.append(_total_line(cells))
    return lines


def check_table_blocks(study: Any) -> list[list[str]]:
    """Return the full verdict table, cell by cell, every text whole (wrapped, never cut).

    Parameters
    ----------
    study : StudyResults-like
        The study.

    Returns
    -------
    list of list of str
        Per checked cell a heading block (id, parameters, verdict, the
        column header), then one block per row: layer, quantity, observed,
        predicted, p-value, verdict and the regime note, which wraps onto
        indented lines (a block is kept on one page).
    """
    cells = _checked(study)
    if not cells:
        return []
    labels, _ = cell_labels(cells, _CHECK_KEYS)
    rows_all = check_rows(study)
    q_w = max([len("quantity"), *(len(str(_get(r, "quantity"))) for _, r in rows_all)])
    head = (
        f"{'layer':>5}  {'quantity':<{q_w}} {'observed':>11} {'predicted':>11} "
        f"{'p-value':>9}  {'verdict':<7} regime"
    )
    regime_at = head.index("regime")
    regime_w = max(APPENDIX_CHARS - regime_at, 30)
    blocks: list[list[str]] = []
    for c, label in zip(cells, labels, strict=True):
        title = _wrap(f"{c.id}: {label} - {_verdict_text(c.checks)}", APPENDIX_CHARS, "")
        blocks.append(["", *title, head, "-" * APPENDIX_CHARS])
        for r in _get(c.checks, "rows", []) or []:
            p = _num(_get(r, "p_value"))
            line = (
                f"{int(_get(r, 'layer', 0)):>5}  {_get(r, 'quantity')!s:<{q_w}} "
                f"{fmt(_num(_get(r, 'observed')), 5):>11} "
                f"{fmt(_num(_get(r, 'predicted')), 5):>11} "
                f"{'' if math.isnan(p) else fmt(p, 3):>9}  {_get(r, 'verdict', 'N/A'):<7} "
            )
            regime = textwrap.wrap(
                str(_get(r, "regime", "") or ""), regime_w, break_on_hyphens=False
            ) or [""]
            blocks.append([line + regime[0], *(" " * regime_at + more for more in regime[1:])])
    return blocks


def check_table_lines(study: Any) -> tuple[list[str], list[str]]:
    """Lines of the verdict summary and of the full table (see the ``*_blocks`` functions).

    Parameters
    ----------
    study : StudyResults-like
        The study.

    Returns
    -------
    (list of str, list of str)
        The summary's lines and the full table's lines.
    """
    return _flat(check_summary_blocks(study)), _flat(check_table_blocks(study))


def _flat(blocks: Sequence[Sequence[str]]) -> list[str]:
    return [line for block in blocks for line in block]


def _flatten(prefix: str, value: Any, out: list[str]) -> None:
    if isinstance(value, Mapping):
        for k in sorted(value, key=str):
            _flatten(f"{prefix}.{k}" if prefix else str(k), value[k], out)
    else:
        text = json.dumps(value, sort_keys=True, default=str)
        out.append(f"{prefix} = {text}")


def provenance_lines(study: Any) -> list[str]:
    """Lines of the provenance pages: the study's provenance, then one line per cell.

    Parameters
    ----------
    study : StudyResults-like
        The study.

    Returns
    -------
    list of str
        Wrapped to the page width.
    """
    raw: list[str] = [
        f"study = {study.name}",
        f"seed = {study.seed}",
        f"spec_sha256 = {study.spec_sha256}",
    ]
    _flatten("", dict(getattr(study, "provenance", {}) or {}), raw)
    raw.append("")
    raw.append("cells (id, kind, spawn key, resolved parameters):")
    for c in study.cells:
        params = json.dumps(c.params, sort_keys=True, separators=(", ", ": "), default=str)
        key = ",".join(str(int(k)) for k in c.spawn_key)
        raw.append(f"{c.id} [{c.kind}] spawn_key=({key}) {params}")
    lines: list[str] = []
    for line in raw:
        lines.extend(textwrap.wrap(line, _TABLE_CHARS, subsequent_indent="    ") or [""])
    return lines


def _page() -> Figure:
    return Figure(figsize=PAGE_SIZE)


_FAIL = re.compile(r"\bFAIL\b")


def paginate(
    blocks: Sequence[str | Sequence[str]], first: int, per_page: int = LINES_PER_PAGE
) -> list[list[str]]:
    """Cut blocks of lines into pages; a block is never split unless longer than a page.

    Parameters
    ----------
    blocks : sequence of str or sequence of str
        A string is a block of one line.
    first : int
        Lines available on the first page.
    per_page : int
        Lines on every other page.

    Returns
    -------
    list of list of str
        The lines of each page (at least one page). A block that starts a
        page drops its leading blank lines.
    """
    pages: list[list[str]] = [[]]
    room = first
    for block in blocks:
        lines = [block] if isinstance(block, str) else list(block)
        if len(lines) > room and pages[-1]:
            pages.append([])
            room = per_page
        if not pages[-1]:
            while lines and not lines[0].strip():
                lines = lines[1:]
        for line in lines:
            if room <= 0:
                pages.append([])
                room = per_page
            pages[-1].append(line)
            room -= 1
    return pages


def text_pages(
    title: str,
    lines: Sequence[str | Sequence[str]],
    intro: str = "",
    *,
    size: float = 7.5,
    per_page: int = LINES_PER_PAGE,
) -> list[Figure]:
    """Paginate monospaced lines under a title (and an introductory paragraph on page one).

    Parameters
    ----------
    title : str
        Title of every page (``(continued)`` after the first).
    lines : sequence of str or sequence of str
        The lines, or blocks of lines kept on one page (see :func:`paginate`);
        a line that says FAIL is drawn in red.
    intro : str
        Paragraph drawn above the lines on the first page.
    size : float
        Font size of the lines (points).
    per_page : int
        Lines per page.

    Returns
    -------
    list of Figure
        At least one page.
    """
    pages: list[Figure] = []
    intro_lines = wrap_caption(intro).split("\n") if intro else []
    step = 0.86 / per_page
    intro_step = 0.86 / LINES_PER_PAGE  # the paragraph keeps its size
    room = int((0.86 - intro_step * (len(intro_lines) + 1)) / step) if intro_lines else per_page
    for i, chunk in enumerate(paginate(lines, room, per_page)):
        fig = _page()
        fig.suptitle(
            title if i == 0 else f"{title} (continued)", fontsize=13, fontweight="bold", y=0.975
        )
        y = 0.92
        if i == 0 and intro_lines:
            fig.text(0.04, y, "\n".join(intro_lines), fontsize=8.5, va="top", linespacing=1.25)
            y -= intro_step * (len(intro_lines) + 1)
        for line in chunk:
            colour = "#b00000" if _FAIL.search(line) else "black"
            fig.text(0.04, y, line, fontsize=size, family=_MONO, va="top", color=colour)
            y -= step
        pages.append(fig)
    return pages


def report_title(study: Any) -> str:
    """Return the headline: the description's first sentence when short, else the study name.

    Parameters
    ----------
    study : StudyResults-like
        Has ``name`` and ``description`` (or ``spec["description"]``).

    Returns
    -------
    str
        E.g. ``"He vs LeCun initialization for ReLU and tanh nets, 50 layers deep"``;
        ``"Study he-vs-lecun"`` without a usable description.
    """
    desc = " ".join(_description(study).split())
    head = re.split(r"(?<=[a-z0-9)])[.:;](\s|$)", desc, maxsplit=1)[0].strip()
    if 0 < len(head) <= 90:
        return head
    return f"Study {study.name}"


def _description(study: Any) -> str:
    return str(getattr(study, "description", "") or (study.spec or {}).get("description", ""))


def threading_text(prov: Mapping[str, Any]) -> str:
    """How the cells ran, from the manifest: e.g. ``"omp threading layer, 2 threads per cell"``.

    Parameters
    ----------
    prov : mapping
        The study's provenance (``threading_layer``, ``threads``: a count or
        ``"1 to 2"``).

    Returns
    -------
    str
        The phrase; "not recorded" for what the manifest does not say.
    """
    layer = prov.get("threading_layer")
    threads = prov.get("threads")
    layer_text = (
        f"{layer} threading layer"
        if layer and layer != "unset"
        else "threading layer not recorded (no parallel region ran)"
        if layer == "unset"
        else "threading layer not recorded"
    )
    if threads is None or threads == "":
        thread_text = "threads not recorded"
    else:
        plural = "" if str(threads) == "1" else "s"
        thread_text = f"{threads} thread{plural} per cell"
    return f"{layer_text}, {thread_text}"


def title_page(study: Any, contents: Sequence[tuple[int, str]], summary: Sequence[str]) -> Figure:
    """Draw the first page: what the report is, the spec hash, seed, versions and contents.

    Parameters
    ----------
    study : StudyResults-like
        The study.
    contents : sequence of (int, str)
        Page number and title of each section.
    summary : sequence of str
        Verdict lines: one per checked cell, then the total (shown when they
        fit; the verdict pages list them all).

    Returns
    -------
    Figure
        The page.
    """
    fig = _page()
    title = report_title(study)
    size = 20 if len(title) <= 50 else 16
    fig.text(0.5, 0.93, title, ha="center", fontsize=size, fontweight="bold")
    fig.text(
        0.5,
        0.885,
        f"initsim report of the study {study.name}: Monte Carlo of random deep nets, "
        "with mean-field theory and statistical verdicts",
        ha="center",
        fontsize=10,
        style="italic",
    )
    desc = _description(study)
    y = 0.84
    if desc and " ".join(desc.split()).rstrip(".") != title:  # not the title again
        wrapped = wrap_caption(desc, 135)
        fig.text(0.06, y, wrapped, fontsize=9.5, va="top", linespacing=1.3)
        y -= 0.022 * (wrapped.count("\n") + 2)
    prov = dict(getattr(study, "provenance", {}) or {})
    versions = prov.get("versions", prov)
    vtext = ", ".join(
        f"{k} {versions[k]}"
        for k in ("initsim", "numpy", "numba", "scipy", "python")
        if isinstance(versions, Mapping) and k in versions
    )
    nets = 0
    for c in study.cells:
        nets += int(getattr(c.result, "nets", 0) or 0)
    facts = [
        f"study         {study.name}",
        f"spec sha256   {study.spec_sha256}",
        f"seed          {study.seed}",
        f"cells         {len(study.cells)} ({nets} simulated nets in all)",
        f"versions      {vtext}",
        f"threading     {threading_text(prov)}",
    ]
    fig.text(0.06, y, "\n".join(facts), fontsize=8.5, family=_MONO, va="top", linespacing=1.4)
    y -= 0.0205 * (len(facts) + 1.5)
    fig.text(0.06, y, "Contents", fontsize=12, fontweight="bold", va="top")
    y -= 0.035
    toc = [f"page {p:>3}   {t}" for p, t in contents]
    fig.text(0.08, y, "\n".join(toc), fontsize=8.5, family=_MONO, va="top", linespacing=1.35)
    y -= 0.0205 * (len(toc) + 1)
    if summary:
        room = max(int((y - 0.08) / 0.0195), 1)
        if len(summary) > room:  # one page: the verdict pages list every cell
            summary = [
                summary[-1],
                f"(the {len(summary) - 1} checked cells are listed on the verdict pages)",
            ]
        fig.text(0.06, y, "Verdicts", fontsize=12, fontweight="bold", va="top")
        y -= 0.035
        fig.text(0.08, y, "\n".join(summary), fontsize=8, family=_MONO, va="top", linespacing=1.35)
    return fig
