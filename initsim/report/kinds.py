"""The figure kinds of a report, each declared once (no matplotlib import).

A kind states the options its ``[[figure]]`` table accepts (besides ``kind``,
``experiment`` and ``title``), the kind of cell its experiments must hold
(``"simulate"``, ``"jacobian"``, ``"train"`` or ``"pair"``; for simulate cells
also their ``arch``, checked by :func:`arch_mismatch` when a spec is read),
optionally a check of its options against its cells (also run when a spec is
read: :func:`options_problem`) and the function that draws it, by module and
name. :data:`initsim.report.FIGURE_KINDS`,
:data:`initsim.report.FIGURE_OPTIONS` (read by the study spec's validator)
and :data:`initsim.report.pdf.FIGURES` all derive from :data:`KINDS`; the
drawing modules, which import matplotlib, are imported only by
:mod:`initsim.report.pdf`, through :meth:`FigureKind.load`.

Adding a kind: write its drawing function in a module of this package, add
one entry here, and add the kind to ``default.toml`` (a test checks that the
shipped spec draws every kind).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from initsim.report import shaping_claims

__all__ = ["KINDS", "FigureKind", "arch_mismatch", "options_problem"]

#: ``check(options, cells) -> (key, message) or None``: a kind's own option rules.
OptionsCheck = Callable[[Mapping[str, Any], Sequence[Any]], "tuple[str, str] | None"]


@dataclass(frozen=True)
class FigureKind:
    """One figure kind: its options, the cells it draws and its drawing function.

    Attributes
    ----------
    options : tuple of str
        Optional keys of its ``[[figure]]`` table, besides ``kind``,
        ``experiment`` and ``title``.
    cell_kind : str
        The kind of every cell it draws: ``"simulate"``, ``"jacobian"``,
        ``"train"`` or ``"pair"``.
    arch : str or None
        The architecture of the simulate cells it draws (``"mlp"`` or
        ``"residual"``, the cell's ``arch`` parameter); None for the other
        cell kinds.
    module, function : str
        Where the drawing function lives, e.g.
        ``"initsim.report.histograms"`` and ``"histograms_figure"``; it takes
        ``(study, cells, options)`` and returns ``(Figure, caption)``.
    check : callable or None
        ``check(options, cells) -> (key, message) or None``: what is wrong
        with the figure's options given its cells (no matplotlib); None for
        a kind whose options need no more than their names.
    """

    options: tuple[str, ...]
    cell_kind: str
    module: str
    function: str
    arch: str | None = None
    check: OptionsCheck | None = None

    def load(self) -> Callable[..., Any]:
        """Import and return the drawing function (this imports matplotlib).

        Returns
        -------
        callable
            ``function(study, cells, options) -> (Figure, str)``.
        """
        return getattr(importlib.import_module(self.module), self.function)


def _kind(
    options: tuple[str, ...],
    cell_kind: str,
    module: str,
    function: str,
    arch: str | None = None,
    check: OptionsCheck | None = None,
) -> FigureKind:
    if cell_kind == "simulate" and arch is None:
        arch = "mlp"
    return FigureKind(options, cell_kind, f"initsim.report.{module}", function, arch, check)


#: Figure kind -> its declaration, in the order the kinds are listed to users.
KINDS: Mapping[str, FigureKind] = MappingProxyType(
    {
        "histograms": _kind(("layers", "variable"), "simulate", "histograms", "histograms_figure"),
        "literal-typo": _kind((), "simulate", "literal_typo", "literal_typo_figure"),
        "training": _kind((), "train", "training", "training_figure"),
        "depth-profile": _kind(("level",), "simulate", "depth_profiles", "depth_profile_figure"),
        "phase-diagram": _kind(
            ("burn_in", "resolution"), "simulate", "phase_diagram", "phase_diagram_figure"
        ),
        "finite-width": _kind((), "simulate", "finite_width", "finite_width_figure"),
        "jacobian-spectra": _kind((), "jacobian", "jacobian_spectra", "jacobian_spectra_figure"),
        "residual-profile": _kind(
            ("level",), "simulate", "residual_profiles", "residual_profile_figure", "residual"
        ),
        "shaping-profile": _kind(
            shaping_claims.OPTIONS,
            "pair",
            "shaping_profiles",
            "shaping_profile_figure",
            check=shaping_claims.options_problem,
        ),
    }
)


def options_problem(kind: FigureKind, options: Mapping[str, Any], cells: Sequence[Any]):
    """Say what is wrong with a figure's options given its cells, or None.

    Parameters
    ----------
    kind : FigureKind
        The figure's kind.
    options : mapping
        Its ``[[figure]]`` table.
    cells : sequence
        Its cells (anything with ``id``, ``kind`` and ``params``).

    Returns
    -------
    (str, str) or None
        The key at fault and the message, from the kind's ``check``; None
        when it has none or the options are valid.
    """
    return kind.check(options, cells) if kind.check is not None else None


def arch_mismatch(kind: FigureKind, cells: Sequence[Any]) -> str | None:
    """Say which simulate cells a figure kind cannot draw for their architecture, or None.

    Parameters
    ----------
    kind : FigureKind
        The figure's kind.
    cells : sequence
        Its cells (anything with ``id``, ``kind`` and ``params``).

    Returns
    -------
    str or None
        ``'draws arch = "mlp" cells; ... are arch = "residual": use kind = ...'``,
        or None when every simulate cell has the kind's architecture.
    """
    if kind.arch is None:
        return None
    wrong = [c for c in cells if c.kind == "simulate" and c.params.get("arch", "mlp") != kind.arch]
    if not wrong:
        return None
    other = wrong[0].params.get("arch", "mlp")
    instead = [n for n, k in KINDS.items() if k.arch == other]
    hint = f': use kind = "{instead[0]}"' if len(instead) == 1 else ""
    ids = ", ".join(c.id for c in wrong[:4]) + (", ..." if len(wrong) > 4 else "")
    return f'draws arch = "{kind.arch}" cells; {ids} are arch = "{other}"{hint}'
