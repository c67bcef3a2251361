"""Text pages of the report: title page, the table of every check verdict, provenance.

Text pages are drawn in a monospaced font, one text object per line, so the
PDF's extracted text keeps the table's rows intact.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

from initsim.report._common import PAGE_SIZE, fmt, wrap_caption

__all__ = [
    "LINES_PER_PAGE",
    "check_rows",
    "check_table_lines",
    "provenance_lines",
    "text_pages",
    "title_page",
]

#: Lines of monospaced text on one table page.
LINES_PER_PAGE = 44
_MONO = "DejaVu Sans Mono"
_TABLE_CHARS = 150


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


def check_table_lines(study: Any) -> tuple[list[str], list[str]]:
    """Lines of the verdict table and its summary.

    Parameters
    ----------
    study : StudyResults-like
        The study.

    Returns
    -------
    (list of str, list of str)
        Summary lines (per checked cell: overall verdict) and the table
        lines (a header, then one line per row).
    """
    summary = []
    tested = failed = 0
    for c in study.cells:
        if c.checks is None:
            continue
        rows = _get(c.checks, "rows", []) or []
        t = sum(_get(r, "verdict") != "N/A" for r in rows)
        f = sum(_get(r, "verdict") == "FAIL" for r in rows)
        tested += t
        failed += f
        summary.append(
            f"{c.id:<34} {_get(c.checks, 'verdict', '?'):<5} {t:>4} tests, {f:>3} failed, "
            f"Holm family-wise alpha = {fmt(_num(_get(c.checks, 'alpha')))}"
        )
    head = (
        f"{'cell':<30} {'layer':>5}  {'quantity':<22} {'observed':>11} {'predicted':>11} "
        f"{'p-value':>9}  {'verdict':<7} regime"
    )
    lines = [head, "-" * len(head)]
    for cell_id, r in check_rows(study):
        p = _num(_get(r, "p_value"))
        lines.append(
            f"{cell_id:<30} {int(_get(r, 'layer', 0)):>5}  {str(_get(r, 'quantity'))[:22]:<22} "
            f"{fmt(_num(_get(r, 'observed')), 5):>11} {fmt(_num(_get(r, 'predicted')), 5):>11} "
            f"{'' if math.isnan(p) else fmt(p, 3):>9}  {_get(r, 'verdict', 'N/A'):<7} "
            f"{str(_get(r, 'regime', ''))[:46]}"
        )
    if summary:
        summary.append(f"all checks: {tested} tests, {failed} failed")
    return summary, lines


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


def text_pages(title: str, lines: Sequence[str], intro: str = "") -> list[Figure]:
    """Paginate monospaced lines under a title (and an introductory paragraph on page one).

    Parameters
    ----------
    title : str
        Title of every page (``(continued)`` after the first).
    lines : sequence of str
        The lines; a line whose verdict column says FAIL is drawn in red.
    intro : str
        Paragraph drawn above the lines on the first page.

    Returns
    -------
    list of Figure
        At least one page.
    """
    pages: list[Figure] = []
    intro_lines = wrap_caption(intro).split("\n") if intro else []
    first = LINES_PER_PAGE - len(intro_lines) - (1 if intro_lines else 0)
    chunks = [list(lines[:first])]
    rest = list(lines[first:])
    while rest:
        chunks.append(rest[:LINES_PER_PAGE])
        rest = rest[LINES_PER_PAGE:]
    for i, chunk in enumerate(chunks):
        fig = _page()
        fig.suptitle(
            title if i == 0 else f"{title} (continued)", fontsize=13, fontweight="bold", y=0.975
        )
        y = 0.92
        step = 0.86 / LINES_PER_PAGE
        if i == 0 and intro_lines:
            fig.text(0.04, y, "\n".join(intro_lines), fontsize=8.5, va="top", linespacing=1.25)
            y -= step * (len(intro_lines) + 1)
        for line in chunk:
            colour = "#b00000" if " FAIL " in line else "black"
            fig.text(0.04, y, line, fontsize=7.5, family=_MONO, va="top", color=colour)
            y -= step
        pages.append(fig)
    return pages


def title_page(study: Any, contents: Sequence[tuple[int, str]], summary: Sequence[str]) -> Figure:
    """Draw the first page: what the report is, the spec hash, seed, versions and contents.

    Parameters
    ----------
    study : StudyResults-like
        The study.
    contents : sequence of (int, str)
        Page number and title of each section.
    summary : sequence of str
        Verdict summary lines (per checked cell).

    Returns
    -------
    Figure
        The page.
    """
    fig = _page()
    fig.text(
        0.5, 0.93, f"initsim report: {study.name}", ha="center", fontsize=20, fontweight="bold"
    )
    fig.text(
        0.5,
        0.885,
        "Monte Carlo of signals and gradients in randomly initialised deep nets, "
        "with mean-field theory and statistical verdicts",
        ha="center",
        fontsize=10.5,
        style="italic",
    )
    desc = str(getattr(study, "description", "") or (study.spec or {}).get("description", ""))
    y = 0.84
    if desc:
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
        f"spec sha256   {study.spec_sha256}",
        f"seed          {study.seed}",
        f"cells         {len(study.cells)} ({nets} simulated nets in all)",
        f"versions      {vtext}",
        f"threading     {prov.get('threading_layer', '?')} layer, "
        f"{prov.get('threads', '?')} threads",
    ]
    fig.text(0.06, y, "\n".join(facts), fontsize=8.5, family=_MONO, va="top", linespacing=1.4)
    y -= 0.03 * (len(facts) + 1)
    fig.text(0.06, y, "Contents", fontsize=12, fontweight="bold", va="top")
    y -= 0.035
    toc = [f"page {p:>3}   {t}" for p, t in contents]
    fig.text(0.08, y, "\n".join(toc), fontsize=8.5, family=_MONO, va="top", linespacing=1.35)
    y -= 0.0205 * (len(toc) + 1)
    if summary:
        if len(summary) > 14:  # keep the title page to one page: the verdict pages list all
            summary = [
                *summary[:12],
                f"... {len(summary) - 13} more checked cells: see the verdict pages",
                summary[-1],
            ]
        fig.text(0.06, y, "Verdicts", fontsize=12, fontweight="bold", va="top")
        y -= 0.035
        fig.text(0.08, y, "\n".join(summary), fontsize=8, family=_MONO, va="top", linespacing=1.35)
    return fig
