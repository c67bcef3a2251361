"""Study specifications: TOML in, a validated list of cells out.

A study is a set of *experiments*; each expands into *cells* (one call of
:func:`initsim.simulate`, :func:`initsim.jacobian_spectrum` or a training run)
from its fixed parameters, an optional list of ``cases`` and an optional
cartesian ``grid``. Everything is validated here, before anything runs:
unknown keys (with the nearest valid key suggested), types, ranges, names of
activations, initializers and claims. Errors are :class:`SpecError` (a
``ValueError``) whose message names the key and, for specs read from text,
its line.

The canonical form of a spec (:attr:`StudySpec.canonical`) holds only what
determines the numbers: the seed and every resolved cell with its spawn key
and checks. Its sha256 identifies a results directory; editing a
description, a figure or the layout of the TOML does not change it.

This module owns the spec's syntax (top-level, experiment, checks and figure
keys), the parameter validators (:func:`_check_param`, by rule name), the
expansion of cases and grids, and the spec hash. What each cell kind accepts
(its parameter schema, required keys and defaults) is declared once, in
:data:`initsim.study.cells.CELL_KINDS`, and read from there.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from initsim.study.cells import CELL_KINDS

__all__ = [
    "CellSpec",
    "SpecError",
    "StudySpec",
    "parse_spec",
    "read_spec",
]

#: Version of the cell definition; part of the spec hash.
SPEC_FORMAT = 1

_TOP_KEYS = ("name", "description", "seed", "defaults", "experiment", "figure")
_EXPERIMENT_KEYS = ("name", "kind", "cases", "grid", "checks")
_CHECK_KEYS = ("alpha", "claims")
_FIGURE_KEYS = ("kind", "experiment", "title")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # study and experiment names

# Keys of a train cell's ``data`` table per data kind (checked by the "data" rule).
_DATA_KEYS = {
    "teacher": ("n_samples", "n_out", "hidden", "activation"),
    "mixture": ("n_samples", "n_classes", "separation"),
    "digits": (),
}


class SpecError(ValueError):
    """A study specification is invalid; the message names the key (and line)."""


@dataclass(frozen=True)
class CellSpec:
    """One unit of work of a study.

    Attributes
    ----------
    id : str
        ``"<experiment>-<index>"``, e.g. ``"depth-sweep-003"``; also the file name.
    experiment : str
        Name of the experiment the cell belongs to.
    kind : str
        One of :data:`initsim.study.cells.CELL_KINDS`.
    params : dict
        Fully resolved keyword arguments (JSON-like: ``init`` and
        ``activation`` are names or tables with a ``"name"`` key).
    checks : dict or None
        ``{"alpha": float, "claims": [str, ...]}`` for simulate cells that
        are checked against theory.
    spawn_key : tuple of int
        ``(experiment index, cell index)``: the cell's random stream is
        ``SeedSequence(seed, spawn_key=spawn_key)``.
    """

    id: str
    experiment: str
    kind: str
    params: dict[str, Any]
    checks: dict[str, Any] | None
    spawn_key: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form (the unit of the canonical spec)."""
        return {
            "id": self.id,
            "experiment": self.experiment,
            "kind": self.kind,
            "params": self.params,
            "checks": self.checks,
            "spawn_key": list(self.spawn_key),
        }


@dataclass(frozen=True)
class StudySpec:
    """A validated study: its cells, figures and identity.

    Attributes
    ----------
    name : str
        Study name (letters, digits, ``-``, ``_``, ``.``).
    seed : int
        Entropy of the study's root :class:`numpy.random.SeedSequence`.
    description : str
        Free text for reports.
    cells : tuple of CellSpec
        Every cell, experiments in file order, cells in expansion order.
    figures : tuple of dict
        The ``[[figure]]`` tables, in file order.
    raw : dict
        The parsed TOML.
    text : str or None
        The TOML source, if the spec was read from text.
    """

    name: str
    seed: int
    description: str
    cells: tuple[CellSpec, ...]
    figures: tuple[dict[str, Any], ...]
    raw: dict[str, Any]
    text: str | None = None

    @property
    def experiments(self) -> list[str]:
        """Experiment names in file order."""
        return list(dict.fromkeys(c.experiment for c in self.cells))

    @property
    def canonical(self) -> dict[str, Any]:
        """What determines the numbers: format, seed and the resolved cells."""
        return {
            "format": SPEC_FORMAT,
            "seed": self.seed,
            "cells": [c.to_dict() for c in self.cells],
        }

    @property
    def sha256(self) -> str:
        """sha256 of the canonical JSON (sorted keys, no whitespace)."""
        blob = json.dumps(self.canonical, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


# ----------------------------------------------------------------------------------
# Locating keys in the source text (tomllib gives no positions)
# ----------------------------------------------------------------------------------


class _Locator:
    """Finds the line of a key inside a section of the TOML source."""

    def __init__(self, text: str | None, source: str) -> None:
        self.lines = text.splitlines() if text else []
        self.source = source

    def _section(self, header: str | None, index: int) -> tuple[int, int]:
        """Line range (0-based, end exclusive) of the index-th ``header`` section."""
        if not self.lines:
            return 0, 0
        headers = [i for i, ln in enumerate(self.lines) if re.match(r"\s*\[", ln)]
        if header is None:  # top level: before the first header
            return 0, headers[0] if headers else len(self.lines)
        starts = [i for i in headers if self.lines[i].strip().startswith(header)]
        if index >= len(starts):
            return 0, len(self.lines)
        start = starts[index]
        # the section runs to the next header of the same array (sub-tables included)
        later = [i for i in starts if i > start]
        return start, later[0] if later else len(self.lines)

    def where(self, key: str | None, header: str | None = None, index: int = 0) -> str:
        """Return ``"<source>, line N: "`` for ``key`` (or the section header)."""
        lo, hi = self._section(header, index)
        line = None
        if key is not None:
            leaf = key.split(".")[-1]
            pat = re.compile(rf'(^|[\s{{,."]){re.escape(leaf)}"?\s*=')
            for i in range(lo, hi):
                if pat.search(self.lines[i]):
                    line = i
                    break
        if line is None and header is not None and lo < hi:
            line = lo
        if line is None:
            return f"{self.source}: "
        return f"{self.source}, line {line + 1}: "


def _suggest(key: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} Valid keys: {', '.join(sorted(valid))}"


# ----------------------------------------------------------------------------------
# Parameter validation
# ----------------------------------------------------------------------------------


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _named_table(kind: str, value: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(value, str):
        return value, {}
    if isinstance(value, Mapping) and isinstance(value.get("name"), str):
        rest = {k: v for k, v in value.items() if k != "name"}
        return value["name"], rest
    raise ValueError(
        f"must be a {kind} name or a table with a 'name' key, e.g. "
        f'{{name = "normal", std = 0.01}}; got {value!r}'
    )


def _check_param(key: str, rule: str, value: Any) -> None:
    """Raise ValueError (without location) if ``value`` breaks ``rule``."""
    if rule == "pos_int":
        if not _is_int(value) or value < 1:
            raise ValueError(f"must be an integer >= 1; got {value!r}")
    elif rule == "nonneg_int":
        if not _is_int(value) or value < 0:
            raise ValueError(f"must be an integer >= 0; got {value!r}")
    elif rule == "nonneg_real":
        if not _is_real(value) or value < 0:
            raise ValueError(f"must be a finite number >= 0; got {value!r}")
    elif rule == "pos_real":
        if not _is_real(value) or value <= 0:
            raise ValueError(f"must be a finite number > 0; got {value!r}")
    elif rule == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false; got {value!r}")
    elif rule.startswith("choice:"):
        options = rule[len("choice:") :].split(",")
        if value not in options:
            raise ValueError(f"must be one of {', '.join(map(repr, options))}; got {value!r}")
    elif rule == "widths":
        if _is_int(value):
            if value < 1:
                raise ValueError(f"must be an integer >= 1 or a list of them; got {value!r}")
        elif not (isinstance(value, list) and value and all(_is_int(w) and w >= 1 for w in value)):
            raise ValueError(f"must be an integer >= 1 or a list of them; got {value!r}")
    elif rule == "sizes":
        if not (
            isinstance(value, list)
            and len(value) >= 3
            and all(_is_int(w) and w >= 1 for w in value)
        ):
            raise ValueError(
                f"must be a list [n_in, hidden..., n_out] of at least 3 integers >= 1; "
                f"got {value!r}"
            )
    elif rule == "activation":
        from initsim import activations

        name, params = _named_table("activation", value)
        activations.get(name, **params)
    elif rule == "init":
        from initsim import initializers

        name, params = _named_table("initializer", value)
        initializers.get(name, **params)
    elif rule == "bias":
        if not _is_real(value):
            _check_param(key, "init", value)
    elif rule == "histograms":
        if _is_int(value):
            if value < 1:
                raise ValueError(f"must be a number of bins >= 1 or a table; got {value!r}")
        elif isinstance(value, Mapping):
            extra = set(value) - {"bins", "h_range", "act_range"}
            if extra:
                raise ValueError(
                    f"unknown key {sorted(extra)[0]!r}; valid keys: act_range, bins, h_range"
                )
            if not _is_int(value.get("bins")) or value["bins"] < 1:
                raise ValueError(f"needs 'bins', an integer >= 1; got {value.get('bins')!r}")
            for r in ("h_range", "act_range"):
                if r in value and not (
                    isinstance(value[r], list)
                    and len(value[r]) == 2
                    and all(_is_real(x) for x in value[r])
                    and value[r][0] < value[r][1]
                ):
                    raise ValueError(f"{r} must be [low, high] with low < high; got {value[r]!r}")
        else:
            raise ValueError(f"must be a number of bins or a table; got {value!r}")
    elif rule == "data":
        if not isinstance(value, Mapping) or value.get("kind") not in _DATA_KEYS:
            raise ValueError(
                f"must be a table with kind = one of {', '.join(map(repr, _DATA_KEYS))}; "
                f"got {value!r}"
            )
        valid = ("kind", *_DATA_KEYS[value["kind"]])
        for k, v in value.items():
            if k not in valid:
                raise ValueError(f"unknown key {k!r}{_suggest(k, valid)}")
            if k in ("n_samples", "n_out", "hidden", "n_classes"):
                _check_param(k, "pos_int", v)
            elif k == "separation":
                _check_param(k, "pos_real", v)
            elif k == "activation":
                _check_param(k, "activation", v)
    else:  # pragma: no cover - schema and validators are defined together
        raise AssertionError(rule)


# ----------------------------------------------------------------------------------
# Expansion
# ----------------------------------------------------------------------------------


def _flatten_grid(grid: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    axes: list[tuple[str, Any]] = []
    for key, value in grid.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            axes.extend(_flatten_grid(value, f"{path}."))
        else:
            axes.append((path, value))
    return axes


def _apply(params: dict[str, Any], path: str, value: Any) -> None:
    """Set ``params[path]``; a dotted path sets a parameter of an init/activation table."""
    head, _, sub = path.partition(".")
    if not sub:
        params[head] = value
        return
    base = params.get(head)
    if isinstance(base, str):
        base = {"name": base}
    elif isinstance(base, Mapping):
        base = dict(base)
    else:
        raise ValueError(
            f"sets a parameter of {head!r}, which needs a name first (e.g. "
            f'{head} = {{name = "variance_scaling"}})'
        )
    base[sub] = value
    params[head] = base


@dataclass
class _Context:
    loc: _Locator
    header: str | None
    index: int
    label: str

    def error(self, key: str | None, message: str) -> SpecError:
        where = self.loc.where(key, self.header, self.index)
        what = f"{self.label}: " if self.label else ""
        return SpecError(f"{where}{what}{message}")


def _check_keys(ctx: _Context, table: Mapping[str, Any], valid: Sequence[str], what: str) -> None:
    for key in table:
        if key not in valid:
            raise ctx.error(key, f"unknown key {key!r} in {what}{_suggest(key, valid)}")


def _validate_params(
    ctx: _Context,
    kind: str,
    params: Mapping[str, Any],
    what: str,
    also_valid: Sequence[str] = (),
) -> None:
    schema = CELL_KINDS[kind].params
    _check_keys(ctx, params, [*also_valid, *schema], what)
    for key, value in params.items():
        try:
            _check_param(key, schema[key], value)
        except ValueError as exc:
            raise ctx.error(key, f"{key} {exc}") from None


def _check_checks(ctx: _Context, checks: Any) -> dict[str, Any]:
    from initsim.checks import CLAIMS

    if not isinstance(checks, Mapping):
        raise ctx.error("checks", f"checks must be a table {{alpha, claims}}; got {checks!r}")
    _check_keys(ctx, checks, _CHECK_KEYS, "[experiment.checks]")
    alpha = checks.get("alpha", 0.01)
    if not _is_real(alpha) or not 0 < alpha < 1:
        raise ctx.error("alpha", f"alpha must be a number in (0, 1); got {alpha!r}")
    claims = checks.get("claims", [])
    if not isinstance(claims, list) or any(c not in CLAIMS for c in claims):
        raise ctx.error(
            "claims", f"claims must be a list of {', '.join(map(repr, CLAIMS))}; got {claims!r}"
        )
    return {"alpha": float(alpha), "claims": list(claims)}


def _expand_experiment(
    ctx: _Context,
    exp: Mapping[str, Any],
    e_index: int,
    defaults: Mapping[str, Any],
) -> list[CellSpec]:
    name = exp.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ctx.error(
            "name",
            f"each experiment needs a name of letters, digits, '-', '_' or '.'; got {name!r}",
        )
    ctx.label = f"experiment {name!r}"
    kind = exp.get("kind", "simulate")
    if kind not in CELL_KINDS:
        raise ctx.error(
            "kind", f"kind must be one of {', '.join(map(repr, CELL_KINDS))}; got {kind!r}"
        )
    cell_kind = CELL_KINDS[kind]
    schema = cell_kind.params
    fixed = {k: v for k, v in exp.items() if k not in _EXPERIMENT_KEYS}
    _validate_params(ctx, kind, fixed, "[[experiment]]", also_valid=_EXPERIMENT_KEYS)

    cases = exp.get("cases", [{}])
    if not isinstance(cases, list) or not cases or not all(isinstance(c, Mapping) for c in cases):
        raise ctx.error("cases", "cases must be a non-empty list of tables")
    for case in cases:
        _validate_params(ctx, kind, case, "a case")

    grid = exp.get("grid", {})
    if not isinstance(grid, Mapping):
        raise ctx.error("grid", "grid must be a table whose values are lists")
    axes = _flatten_grid(grid)
    for path, values in axes:
        head = path.split(".")[0]
        if head not in schema:
            raise ctx.error(path, f"unknown grid key {path!r}{_suggest(head, list(schema))}")
        if not isinstance(values, list):
            raise ctx.error(path, f"grid value {path!r} must be a list; got {values!r}")
        if not values:
            raise ctx.error(path, f"grid value {path!r} is empty; give at least one value")
        if "." not in path:
            for v in values:
                try:
                    _check_param(path, schema[path], v)
                except ValueError as exc:
                    raise ctx.error(path, f"{path} {exc}") from None

    checks = None
    if "checks" in exp:
        if not cell_kind.checks:
            checkable = [k for k, ck in CELL_KINDS.items() if ck.checks]
            raise ctx.error("checks", f"checks apply to {' and '.join(checkable)} experiments only")
        checks = _check_checks(ctx, exp["checks"])

    base = {**cell_kind.defaults, **{k: v for k, v in defaults.items() if k in schema}}
    base.update(fixed)
    cells: list[CellSpec] = []
    points = list(itertools.product(*(values for _, values in axes)))
    for c_index, (case, point) in enumerate(itertools.product(cases, points)):
        params = dict(base)
        params.update(case)
        clash = sorted(set(case) & {p.split(".")[0] for p, _ in axes})
        if clash:
            raise ctx.error(clash[0], f"{clash[0]!r} is set by both a case and the grid")
        for (path, _), value in zip(axes, point, strict=True):
            try:
                _apply(params, path, value)
            except ValueError as exc:
                raise ctx.error(path, f"grid key {path!r} {exc}") from None
        for key in cell_kind.required:
            if key not in params:
                raise ctx.error(None, f"{kind} experiments need {key!r}")
        for key in ("init", "activation"):
            if key in params and isinstance(params[key], Mapping):
                try:
                    _check_param(key, schema[key], params[key])
                except ValueError as exc:
                    dotted = [p for p, _ in axes if p.startswith(f"{key}.")]
                    raise ctx.error(dotted[0] if dotted else key, f"{key} {exc}") from None
        cells.append(
            CellSpec(
                id=f"{name}-{c_index:03d}",
                experiment=name,
                kind=kind,
                params=params,
                checks=checks,
                spawn_key=(e_index, c_index),
            )
        )
    return cells


def parse_spec(
    data: Mapping[str, Any], *, text: str | None = None, source: str = "spec"
) -> StudySpec:
    """Validate a parsed spec and expand it into cells.

    Parameters
    ----------
    data : mapping
        The spec as TOML would parse it (see the README's "Studies" section).
    text : str, optional
        The TOML source, used to report line numbers.
    source : str
        Name used in error messages (usually the file name).

    Returns
    -------
    StudySpec
        The validated study.

    Raises
    ------
    SpecError
        For any invalid key, type or value; the message names the key and line.
    """
    loc = _Locator(text, source)
    top = _Context(loc, None, 0, "")
    _check_keys(top, data, _TOP_KEYS, "the top level")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise top.error("name", f"name must be letters, digits, '-', '_' or '.'; got {name!r}")
    seed = data.get("seed")
    if not _is_int(seed) or seed < 0:
        raise top.error("seed", f"seed must be an integer >= 0; got {seed!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise top.error("description", "description must be a string")

    defaults = data.get("defaults", {})
    dctx = _Context(loc, "[defaults]", 0, "")
    if not isinstance(defaults, Mapping):
        raise dctx.error(None, "[defaults] must be a table")
    schemas = [ck.params for ck in CELL_KINDS.values()]
    known = sorted({k for schema in schemas for k in schema})
    _check_keys(dctx, defaults, known, "[defaults]")
    for key, value in defaults.items():
        rule = next(s[key] for s in schemas if key in s)
        try:
            _check_param(key, rule, value)
        except ValueError as exc:
            raise dctx.error(key, f"{key} {exc}") from None

    experiments = data.get("experiment")
    if not isinstance(experiments, list) or not experiments:
        raise top.error(None, "a study needs at least one [[experiment]] table")
    cells: list[CellSpec] = []
    seen: set[str] = set()
    for e_index, exp in enumerate(experiments):
        ctx = _Context(loc, "[[experiment]]", e_index, f"experiment #{e_index + 1}")
        if not isinstance(exp, Mapping):
            raise ctx.error(None, "experiment must be a table")
        new = _expand_experiment(ctx, exp, e_index, defaults)
        if new[0].experiment in seen:
            raise ctx.error("name", f"experiment name {new[0].experiment!r} is used twice")
        seen.add(new[0].experiment)
        cells.extend(new)

    figures = data.get("figure", [])
    if not isinstance(figures, list):
        raise top.error("figure", "figure must be an array of tables ([[figure]])")
    for f_index, fig in enumerate(figures):
        fctx = _Context(loc, "[[figure]]", f_index, f"figure #{f_index + 1}")
        _check_figure(fctx, fig, seen)
    return StudySpec(
        name=name,
        seed=int(seed),
        description=description,
        cells=tuple(cells),
        figures=tuple(dict(f) for f in figures),
        raw=dict(data),
        text=text,
    )


def _check_figure(ctx: _Context, fig: Any, experiments: set[str]) -> None:
    if not isinstance(fig, Mapping):
        raise ctx.error(None, "figure must be a table")
    kind = fig.get("kind")
    from initsim.report import FIGURE_KINDS, FIGURE_OPTIONS

    if not isinstance(kind, str) or kind not in FIGURE_KINDS:
        raise ctx.error(
            "kind", f"figure kind must be one of {', '.join(map(repr, FIGURE_KINDS))}; got {kind!r}"
        )
    _check_keys(ctx, fig, [*_FIGURE_KEYS, *FIGURE_OPTIONS[kind]], f"a {kind!r} figure")
    names = fig.get("experiment")
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, list) or not names:
        raise ctx.error("experiment", "a figure needs experiment = a name or a list of names")
    for n in names:
        if n not in experiments:
            close = difflib.get_close_matches(str(n), sorted(experiments), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ctx.error("experiment", f"figure refers to unknown experiment {n!r}{hint}")
    if "title" in fig and not isinstance(fig["title"], str):
        raise ctx.error("title", "title must be a string")


def read_spec(path: str | Path) -> StudySpec:
    """Read and validate a TOML study spec.

    Parameters
    ----------
    path : str or Path
        The ``.toml`` file.

    Returns
    -------
    StudySpec
        The validated study.

    Raises
    ------
    SpecError
        If the file is missing, is not valid TOML, or fails validation.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read study spec {str(path)!r}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path.name}: invalid TOML: {exc}") from None
    return parse_spec(data, text=text, source=path.name)
