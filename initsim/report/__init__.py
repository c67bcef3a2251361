"""Figures and multi-page PDF reports of a study (matplotlib, Agg backend only).

:func:`build_report` draws every ``[[figure]]`` of a study's spec, adds a
title page, the table of every check verdict and a provenance page, and
writes one deterministic PDF (and optionally one PNG per figure).
:data:`FIGURE_KINDS` lists the figure kinds a spec may ask for and
:data:`FIGURE_OPTIONS` their options, both read from :mod:`initsim.report.kinds`
(where each kind is declared once). Importing this package does not import
matplotlib.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from initsim.report.kinds import KINDS

__all__ = ["FIGURE_KINDS", "FIGURE_OPTIONS", "build_report"]

#: Optional keys of a ``[[figure]]`` table, per kind (besides kind, experiment and title).
FIGURE_OPTIONS: dict[str, tuple[str, ...]] = {name: k.options for name, k in KINDS.items()}

#: Figure kinds a spec's ``[[figure]]`` may name.
FIGURE_KINDS: tuple[str, ...] = tuple(KINDS)


def build_report(
    study: Any,
    out_path: str | Path,
    *,
    figures_dir: str | Path | None = None,
    pages_dir: str | Path | None = None,
    progress: bool = False,
) -> Path:
    """Draw a study's figures and write its PDF report (:func:`initsim.report.pdf.build_report`).

    Parameters
    ----------
    study : StudyResults-like
        The study's results.
    out_path : str or Path
        Where the PDF goes (its directory must exist and be writable).
    figures_dir : str or Path, optional
        Also write each figure as ``NN-kind-experiment.png`` there.
    pages_dir : str or Path, optional
        Also write every page of the PDF as ``page-NN.png`` there.
    progress : bool
        Print one line per page to stderr.

    Returns
    -------
    Path
        The PDF's path.
    """
    from initsim.report.pdf import build_report as _build

    return _build(study, out_path, figures_dir=figures_dir, pages_dir=pages_dir, progress=progress)
