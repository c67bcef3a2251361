"""Study specifications: TOML in, a validated list of cells out.

A study is a set of *experiments*; each expands into *cells* (one call of
:func:`initsim.simulate`, :func:`initsim.jacobian_spectrum`,
:func:`initsim.shaping_check.propagate_pair` or a training run)
from its fixed parameters, an optional list of ``cases`` and an optional
cartesian ``grid``. Everything is validated here, before anything runs:
unknown keys (with the nearest valid key suggested), types, ranges, names of
activations, initializers and claims, and then every cell's own checks (those
its runner would apply: :func:`initsim.plan.make_plan` for simulate and
jacobian cells, the trainer's and data makers' checks for train cells,
propagate_pair's and the shaping's for pair cells, the preconditions of
:func:`initsim.checks.check` for checked cells; the ``validate`` hook of
:data:`~initsim.study.cells.CELL_KINDS`), so a valid spec does not fail at
run time on its arguments. Errors are :class:`SpecError` (a ``ValueError``)
whose message names the experiment, the key and, for specs read from text,
its line.

Size limits: the cells are counted before any is built (cases times the
product of the grid's axis lengths); above :data:`WARN_CELLS` a
:class:`StudySizeWarning` is issued, above ``max_cells`` (default
:data:`MAX_CELLS`) the spec is refused. Study and experiment names have at
most :data:`MAX_NAME_LENGTH` characters (they become file names).

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
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from initsim.study.cells import CELL_KINDS
from initsim.study.limits import MAX_CELLS, WARN_CELLS

__all__ = [
    "MAX_CELLS",
    "MAX_NAME_LENGTH",
    "WARN_CELLS",
    "CellSpec",
    "SpecError",
    "StudySizeWarning",
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

#: Longest study or experiment name. Names become file names: a cell is written to
#: ``cells/<experiment>-<index>.npz`` and ``cells/<experiment>-<index>.run.json`` (13
#: more than the cell id), the results directory is ``<study>-<12 hex digits>``, and
#: most file systems allow 255 bytes per name; 200 leaves room for 7-digit cell indices
#: (temporary files shorten long names: :func:`initsim._files.temp_file_in`).
MAX_NAME_LENGTH = 200

# Keys of a train cell's ``data`` table per data kind (checked by the "data" rule).
_DATA_KEYS = {
    "teacher": ("n_samples", "n_out", "hidden", "activation"),
    "mixture": ("n_samples", "n_classes", "separation"),
    "digits": (),
}


class SpecError(ValueError):
    """A study specification is invalid; the message names the key (and line)."""


class StudySizeWarning(UserWarning):
    """A spec expands into more than :data:`WARN_CELLS` cells (slow to validate and list)."""


class _SubkeyError(ValueError):
    """A key inside a table parameter is invalid (``sub`` names it, e.g. ``n_samples``)."""

    def __init__(self, sub: str, message: str) -> None:
        super().__init__(message)
        self.sub = sub


def _located(key: str, exc: ValueError) -> tuple[str, str]:
    """Return ``(key to locate, message)`` for a rule's error about ``key``."""
    if isinstance(exc, _SubkeyError):
        key = f"{key}.{exc.sub}"
    return key, f"{key} {exc}"


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
            # the dotted key as written (a grid's ``init.scale = ...``), else its last part
            leaf = key.split(".")[-1]
            for name in dict.fromkeys((key, leaf)):
                pat = re.compile(rf'(^|[\s{{,."]){re.escape(name)}"?\s*=')
                line = next((i for i in range(lo, hi) if pat.search(self.lines[i])), None)
                if line is not None:
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
    elif rule in ("per_block_nonneg", "per_block_real"):
        low = 0.0 if rule == "per_block_nonneg" else -math.inf
        what = "a finite number >= 0" if low == 0.0 else "a finite number"
        items = value if isinstance(value, list) else [value]
        if not items or not all(_is_real(v) and v >= low for v in items):
            raise ValueError(f"must be {what} or a list of them, one per block; got {value!r}")
    elif rule == "pos_real":
        if not _is_real(value) or value <= 0:
            raise ValueError(f"must be a finite number > 0; got {value!r}")
    elif rule == "correlation":
        if not _is_real(value) or not -1.0 <= value <= 1.0:
            raise ValueError(f"must be a correlation, a number in [-1, 1]; got {value!r}")
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

        for item in value if isinstance(value, list) and value else [value]:
            # a list: one initializer per residual branch layer
            name, params = _named_table("initializer", item)
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
            try:
                if k in ("n_samples", "n_out", "hidden", "n_classes"):
                    _check_param(k, "pos_int", v)
                elif k == "separation":
                    _check_param(k, "pos_real", v)
                elif k == "activation":
                    _check_param(k, "activation", v)
            except ValueError as exc:
                raise _SubkeyError(k, str(exc)) from None
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
            raise ctx.error(*_located(key, exc)) from None


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


def _check_name(ctx: _Context, name: Any, what: str, label: str) -> str:
    """Return a study or experiment name after checking its characters and length."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ctx.error("name", f"{what} letters, digits, '-', '_' or '.'; got {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise ctx.error(
            "name",
            f"{label} must have at most {MAX_NAME_LENGTH} characters (it becomes part of file "
            f"names, and most file systems allow 255 per name); got {len(name)}: "
            f"{name[:40]!r}...",
        )
    return name


@dataclass
class _Experiment:
    """An experiment whose keys are checked, before its cells are built."""

    ctx: _Context
    dctx: _Context
    name: str
    kind: str
    e_index: int
    fixed: dict[str, Any]
    cases: list[Mapping[str, Any]]
    axes: list[tuple[str, Any]]
    checks: dict[str, Any] | None
    defaults: dict[str, Any]

    @property
    def n_cells(self) -> int:
        """Cases times the product of the grid's axis lengths."""
        return len(self.cases) * math.prod(len(values) for _, values in self.axes)

    def sizes(self) -> str:
        """``"2 cases x 10 nets x 5 depth"``: what the cell count is the product of."""
        factors = [f"{len(self.cases)} case{'s' if len(self.cases) != 1 else ''}"]
        factors += [f"{len(values)} {path}" for path, values in self.axes]
        return " x ".join(factors)


def _prepare_experiment(
    ctx: _Context,
    exp: Mapping[str, Any],
    e_index: int,
    defaults: Mapping[str, Any],
) -> _Experiment:
    """Check an experiment's keys, cases, grid and checks; build none of its cells."""
    name = _check_name(
        ctx, exp.get("name"), "each experiment needs a name of", "an experiment name"
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
                    raise ctx.error(*_located(path, exc)) from None
    heads = {p.split(".")[0] for p, _ in axes}
    for case in cases:
        clash = sorted(set(case) & heads)
        if clash:
            raise ctx.error(clash[0], f"{clash[0]!r} is set by both a case and the grid")

    checks = None
    if "checks" in exp:
        if not cell_kind.checks:
            checkable = [k for k, ck in CELL_KINDS.items() if ck.checks]
            raise ctx.error("checks", f"checks apply to {' and '.join(checkable)} experiments only")
        checks = _check_checks(ctx, exp["checks"])
    dctx = _Context(ctx.loc, "[defaults]", 0, ctx.label)
    used = {k: v for k, v in defaults.items() if k in schema}
    return _Experiment(ctx, dctx, name, kind, e_index, fixed, cases, axes, checks, used)


def _cell_error(exp: _Experiment, key: str | None, message: str) -> SpecError:
    """Locate a cell's error at ``key`` in the experiment, else in [defaults], else the header."""
    head = key.split(".")[0] if key else None
    in_experiment = head is not None and (
        head in exp.fixed
        or any(head in case for case in exp.cases)
        or any(path.split(".")[0] == head for path, _ in exp.axes)
    )
    if in_experiment:
        return exp.ctx.error(key, message)
    if head is not None and head in exp.defaults:
        return exp.dctx.error(key, message)
    return exp.ctx.error(None, message)


def _expand_experiment(exp: _Experiment) -> list[CellSpec]:
    """Build the cells of a checked experiment and run every cell's own checks."""
    ctx = exp.ctx
    cell_kind = CELL_KINDS[exp.kind]
    schema = cell_kind.params
    dotted = sorted({p.split(".")[0] for p, _ in exp.axes if "." in p})
    base = {**cell_kind.defaults, **exp.defaults}
    base.update(exp.fixed)
    cells: list[CellSpec] = []
    points = itertools.product(*(values for _, values in exp.axes))
    for c_index, (case, point) in enumerate(itertools.product(exp.cases, list(points))):
        cell_id = f"{exp.name}-{c_index:03d}"
        params = dict(base)
        params.update(case)
        for (path, _), value in zip(exp.axes, point, strict=True):
            try:
                _apply(params, path, value)
            except ValueError as exc:
                raise ctx.error(path, f"grid key {path!r} {exc}") from None
        for key in cell_kind.required:
            if key not in params:
                raise ctx.error(None, f"{exp.kind} experiments need {key!r}")
        for key in dotted:  # a table whose keys the grid set: check it as a whole again
            try:
                _check_param(key, schema[key], params[key])
            except ValueError as exc:
                paths = [p for p, _ in exp.axes if p.startswith(f"{key}.")]
                where, message = _located(key, exc)
                if not isinstance(exc, _SubkeyError):
                    where = paths[0]
                raise ctx.error(where, f"cell {cell_id}: {message}") from None
        if cell_kind.validate is not None:
            try:
                cell_kind.validate(params, exp.checks)
            except ValueError as exc:
                varied = [*case.items(), *zip((p for p, _ in exp.axes), point, strict=True)]
                what = ", ".join(f"{k} = {json.dumps(v)}" for k, v in varied)
                label = f"cell {cell_id}" + (f" ({what})" if what else "")
                raise _cell_error(exp, getattr(exc, "key", None), f"{label}: {exc}") from None
        cells.append(
            CellSpec(
                id=cell_id,
                experiment=exp.name,
                kind=exp.kind,
                params=params,
                checks=exp.checks,
                spawn_key=(exp.e_index, c_index),
            )
        )
    return cells


def _check_size(source: str, name: str, experiments: list[_Experiment], max_cells: int | None):
    """Warn about, or refuse, a study with many cells; nothing has been built yet."""
    total = sum(e.n_cells for e in experiments)
    largest = max(experiments, key=lambda e: e.n_cells)
    detail = f"(largest: experiment {largest.name!r}, {largest.n_cells:,} = {largest.sizes()})"
    if max_cells is not None and total > max_cells:
        where = largest.ctx.loc.where(None, largest.ctx.header, largest.ctx.index)
        raise SpecError(
            f"{where}study {name!r} expands into {total:,} cells {detail}, more than "
            f"max_cells = {max_cells:,}; shrink the grid, or allow it with max_cells "
            "(initsim study validate/run --max-cells N)"
        )
    if total > WARN_CELLS:
        warnings.warn(
            f"{source}: study {name!r} expands into {total:,} cells {detail}, more than "
            f"{WARN_CELLS:,}: every cell is validated (about a millisecond each) "
            "and listed in the results manifest",
            StudySizeWarning,
            stacklevel=3,
        )


def parse_spec(
    data: Mapping[str, Any],
    *,
    text: str | None = None,
    source: str = "spec",
    max_cells: int | None = MAX_CELLS,
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
    max_cells : int or None
        Refuse a spec that expands into more cells than this (counted before
        any cell is built; default :data:`MAX_CELLS`); None for no limit.
        Above :data:`WARN_CELLS` cells a :class:`StudySizeWarning` is issued.

    Returns
    -------
    StudySpec
        The validated study.

    Raises
    ------
    SpecError
        For any invalid key, type or value, or a cell its runner would refuse;
        the message names the experiment, the key and the line.
    ValueError
        If ``max_cells`` is not None or an integer >= 1.
    """
    if max_cells is not None and (not _is_int(max_cells) or max_cells < 1):
        raise ValueError(f"max_cells must be an integer >= 1 or None; got {max_cells!r}")
    loc = _Locator(text, source)
    top = _Context(loc, None, 0, "")
    _check_keys(top, data, _TOP_KEYS, "the top level")
    name = _check_name(top, data.get("name"), "name must be", "the study name")
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
            raise dctx.error(*_located(key, exc)) from None

    experiments = data.get("experiment")
    if not isinstance(experiments, list) or not experiments:
        raise top.error(None, "a study needs at least one [[experiment]] table")
    prepared: list[_Experiment] = []
    seen: dict[str, str] = {}  # lower-cased name -> name (cell files must not collide)
    for e_index, exp in enumerate(experiments):
        ctx = _Context(loc, "[[experiment]]", e_index, f"experiment #{e_index + 1}")
        if not isinstance(exp, Mapping):
            raise ctx.error(None, "experiment must be a table")
        new = _prepare_experiment(ctx, exp, e_index, defaults)
        other = seen.get(new.name.lower())
        if other == new.name:
            raise ctx.error("name", f"experiment name {new.name!r} is used twice")
        if other is not None:
            raise ctx.error(
                "name",
                f"experiment names {other!r} and {new.name!r} differ only in case; their "
                "cell files would collide on case-insensitive file systems",
            )
        seen[new.name.lower()] = new.name
        prepared.append(new)
    _check_size(source, name, prepared, max_cells)

    figures = data.get("figure", [])
    if not isinstance(figures, list):
        raise top.error("figure", "figure must be an array of tables ([[figure]])")
    cells = [cell for exp in prepared for cell in _expand_experiment(exp)]
    for f_index, fig in enumerate(figures):
        fctx = _Context(loc, "[[figure]]", f_index, f"figure #{f_index + 1}")
        _check_figure(fctx, fig, set(seen.values()), cells)
    return StudySpec(
        name=name,
        seed=int(seed),
        description=description,
        cells=tuple(cells),
        figures=tuple(dict(f) for f in figures),
        raw=dict(data),
        text=text,
    )


def _check_figure(ctx: _Context, fig: Any, experiments: set[str], cells: Sequence[Any]) -> None:
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
    from initsim.report.kinds import KINDS, arch_mismatch, options_problem

    mine = [c for c in cells if c.experiment in names]
    wrong = arch_mismatch(KINDS[kind], mine)
    if wrong:
        raise ctx.error("experiment", f"a {kind!r} figure {wrong}")
    problem = options_problem(KINDS[kind], fig, mine)
    if problem is not None:
        raise ctx.error(problem[0], f"a {kind!r} figure: {problem[1]}")
    if "title" in fig and not isinstance(fig["title"], str):
        raise ctx.error("title", "title must be a string")


def _decode(raw: bytes, name: str) -> str:
    """Return the text of a spec file: UTF-8, a leading byte-order mark dropped."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(
            f"{name}, line {line}: the file is not UTF-8 text (byte 0x{raw[exc.start]:02x} at "
            f"column {column}; a Latin-1 or Windows-1252 file?); TOML files must be UTF-8: "
            "save it as UTF-8"
        ) from None
    return text.removeprefix("\ufeff")  # UTF-8 with a byte-order mark (Windows editors)


def read_spec(path: str | Path, *, max_cells: int | None = MAX_CELLS) -> StudySpec:
    """Read and validate a TOML study spec.

    Parameters
    ----------
    path : str or Path
        The ``.toml`` file: UTF-8 (a leading byte-order mark is accepted).
    max_cells : int or None
        Refuse a spec with more cells than this (see :func:`parse_spec`);
        None for no limit.

    Returns
    -------
    StudySpec
        The validated study.

    Raises
    ------
    SpecError
        If the file is missing, is not UTF-8, is not valid TOML, or fails
        validation; the message names the file.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read study spec {str(path)!r}: {exc.strerror}") from None
    text = _decode(raw, path.name)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path.name}: invalid TOML: {exc}") from None
    return parse_spec(data, text=text, source=path.name, max_cells=max_cells)
