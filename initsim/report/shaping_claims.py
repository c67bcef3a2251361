"""The options of a ``shaping-profile`` figure, and which claim each of its cells is held to.

No matplotlib, numpy or scipy here: the study spec's validator calls
:func:`options_problem` on every ``shaping-profile`` figure when a spec is
read, and the drawing function (:mod:`initsim.report.shaping_profiles`) calls
:func:`claims` on the loaded cells.

The claim of a cell is whose mean-field maps its output layer is tested
against (:func:`initsim.shaping_check.check_pair`):

- a shaped cell (``shaping = "dks"`` or ``"tat"``): its own shaping, always;
- an unshaped cell (``shaping = "none"``): its own activation's maps at its
  ``sigma_w2``, unless the figure's ``claim`` names a shaped cell of the
  figure (of the same depth) whose shaping is the claim: ``claim =
  "shaping-000"`` holds every unshaped cell to that cell's shaping, and a
  table ``claim = { "shaping-001" = "shaping-000" }`` names one per
  unshaped cell (the others keep their own maps).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["OPTIONS", "claims", "options_problem"]

#: Options of a ``shaping-profile`` figure (besides kind, experiment and title).
OPTIONS = ("claim", "alpha", "level")


class _OptionError(ValueError):
    """An option of the figure is invalid; ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _shaping(cell: Any) -> str:
    return str(cell.params.get("shaping", "none"))


def _fraction(options: Mapping[str, Any], key: str, default: float) -> float:
    value = options.get(key, default)
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not 0.0 < value < 1.0:
        raise _OptionError(key, f"option {key!r} must be a number in (0, 1); got {value!r}")
    return float(value)


def claims(cells: Sequence[Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """Return, per cell id, the cell whose shaping is its claim (None: its own maps).

    Parameters
    ----------
    cells : sequence
        The figure's cells (anything with ``id``, ``kind`` and ``params``: the
        spec's cells or the loaded ones).
    options : mapping
        The figure's table (``claim``, ``alpha``, ``level``; other keys are
        ignored here).

    Returns
    -------
    dict
        ``cell id -> claim cell or None``; a shaped cell's entry is None (its
        own shaping).

    Raises
    ------
    ValueError
        Naming the option: a cell that is not a pair cell, ``alpha`` or
        ``level`` outside (0, 1), or a ``claim`` that names no cell of the
        figure, an unshaped cell, a cell of another depth, or (in a table)
        a shaped cell as the one held to the claim.
    """
    bad = [c.id for c in cells if c.kind != "pair"]
    if bad:
        raise _OptionError(
            "experiment", f"draws 'pair' cells; {', '.join(bad[:4])} are not: use a pair experiment"
        )
    _fraction(options, "alpha", 0.01)
    _fraction(options, "level", 0.95)
    by_id = {c.id: c for c in cells}
    out: dict[str, Any] = {c.id: None for c in cells}
    claim = options.get("claim")
    if claim is None:
        return out
    if isinstance(claim, str):
        pairs = [(c.id, claim) for c in cells if _shaping(c) == "none"]
        if not pairs:
            raise _OptionError(
                "claim", f"claim = {claim!r}: the figure has no unshaped (shaping = 'none') cell"
            )
    elif isinstance(claim, Mapping) and claim:
        pairs = list(claim.items())
    else:
        raise _OptionError(
            "claim",
            "claim must be the id of a shaped cell of the figure, or a table "
            f'{{ "<unshaped cell id>" = "<shaped cell id>" }}; got {claim!r}',
        )
    for held, name in pairs:
        if held not in by_id:
            raise _OptionError("claim", f"claim: {held!r} is not a cell of the figure")
        if _shaping(by_id[held]) != "none":
            raise _OptionError(
                "claim",
                f"claim: {held} is a {_shaping(by_id[held])} cell; a shaped cell is held to "
                "its own shaping",
            )
        if not isinstance(name, str) or name not in by_id:
            ids = ", ".join(c.id for c in cells if _shaping(c) != "none") or "none"
            raise _OptionError(
                "claim",
                f"claim: {name!r} is not a cell of the figure (its shaped cells: {ids})",
            )
        source = by_id[name]
        if _shaping(source) == "none":
            raise _OptionError(
                "claim",
                f"claim: {name} has shaping = 'none'; a claim is a shaped (dks or tat) cell",
            )
        if source.params.get("depth") != by_id[held].params.get("depth"):
            raise _OptionError(
                "claim",
                f"claim: {name} is shaped for depth {source.params.get('depth')} but {held} "
                f"has depth {by_id[held].params.get('depth')}; a shaping promises its maps "
                "at its own depth",
            )
        out[held] = source
    return out


def options_problem(options: Mapping[str, Any], cells: Sequence[Any]) -> tuple[str, str] | None:
    """Say what is wrong with a ``shaping-profile`` figure's options, or None.

    Parameters
    ----------
    options : mapping
        The figure's table.
    cells : sequence
        Its cells.

    Returns
    -------
    (str, str) or None
        The key to locate (``"claim"``, ``"alpha"``, ``"level"`` or
        ``"experiment"``) and the message; None when the options are valid.
    """
    try:
        claims(cells, options)
    except _OptionError as exc:
        return exc.key, str(exc)
    return None
