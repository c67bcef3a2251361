"""A study's results: :func:`load_results`, :class:`StudyResults`, :class:`Cell`, the table.

>>> import initsim                                              # doctest: +SKIP
>>> results = initsim.load_results("results/he-vs-lecun-0123456789ab")  # doctest: +SKIP
>>> results.table()[:3]                                         # doctest: +SKIP
>>> results.write_csv("he-vs-lecun.csv")                        # doctest: +SKIP

Loading reads the results directory (:mod:`initsim.study.store`), checks it
against its stored spec and rebuilds each finished cell's result object with
its kind's loader (:data:`initsim.study.cells.CELL_KINDS`) and its check
verdicts with :meth:`initsim.checks.CheckReport.from_dict`. Nothing is
computed here; running a study is :mod:`initsim.study.run`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from initsim.study.cells import CELL_KINDS
from initsim.study.spec import StudySpec, parse_spec
from initsim.study.store import CorruptCellError, ResultsDir, StoreError, run_facts

__all__ = [
    "PARAM_COLUMNS",
    "TABLE_COLUMNS",
    "Cell",
    "StudyResults",
    "load_results",
    "param_text",
    "read_results",
]

#: Columns of :meth:`StudyResults.table`, in order.
TABLE_COLUMNS = (
    ("cell", "U64"),
    ("experiment", "U64"),
    ("activation", "U64"),
    ("init", "U128"),
    ("width", "i8"),
    ("depth", "i8"),
    ("bias_std", "f8"),
    ("nets", "i8"),
    ("layer", "i8"),
    ("q_mean", "f8"),
    ("q_lo", "f8"),
    ("q_hi", "f8"),
    ("grad_sq_mean", "f8"),
    ("grad_sq_lo", "f8"),
    ("grad_sq_hi", "f8"),
    ("act_mean", "f8"),
    ("act_var", "f8"),
    ("dead_fraction", "f8"),
    ("saturated_fraction", "f8"),
    ("nonfinite_nets", "i8"),
    ("q_predicted", "f8"),
    ("q_p_value", "f8"),
    ("q_verdict", "U8"),
    ("grad_sq_predicted", "f8"),
    ("grad_sq_p_value", "f8"),
    ("grad_sq_verdict", "U8"),
    ("check_verdict", "U8"),
    ("claim_verdict", "U8"),
    ("claims", "U64"),
)

#: Parameters of a simulate cell with a column of their own in :meth:`StudyResults.table`
#: (``width`` only while every width is one number); any other parameter gets a text
#: column, after ``nets``, when it varies between the tabulated cells.
PARAM_COLUMNS = ("activation", "init", "width", "depth", "bias_std", "nets")


@dataclass(frozen=True)
class Cell:
    """One finished cell of a study.

    Attributes
    ----------
    id, experiment, kind : str
        Identity (see :class:`initsim.study.spec.CellSpec`).
    params : dict
        Resolved parameters.
    result : SimulationResult, JacobianSpectrum or TrainCellResult
        What the cell computed, as its kind's loader rebuilt it from the arrays.
    checks : CheckReport or None
        Verdicts, if the experiment asked for checks.
    spawn_key : tuple of int
        The cell's seed-sequence spawn key.
    arrays : dict of numpy.ndarray
        The raw per-net arrays as stored.
    """

    id: str
    experiment: str
    kind: str
    params: dict[str, Any]
    result: Any
    checks: Any
    spawn_key: tuple[int, ...]
    arrays: dict[str, np.ndarray]


def _check_report(data: Mapping[str, Any] | None) -> Any:
    """Return a cell's stored verdicts as a :class:`~initsim.checks.CheckReport`, or None."""
    if data is None:
        return None
    from initsim.checks import CheckReport

    return CheckReport.from_dict(data)


def _label(value: Any) -> str:
    if isinstance(value, Mapping):
        rest = ", ".join(f"{k}={v}" for k, v in value.items() if k != "name")
        return f"{value['name']}({rest})" if rest else str(value["name"])
    return str(value)


def param_text(value: Any) -> str:
    """Write a cell parameter as a short text: ``he_normal``, ``normal(std=2.0)``, ``64,32``.

    Parameters
    ----------
    value : object
        A parameter value as a spec resolves it (name, table, list, number).

    Returns
    -------
    str
        The text the table and ``study validate`` show.
    """
    if isinstance(value, Mapping):
        if "name" in value:
            return _label(value)
        return "{" + ", ".join(f"{k}={param_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return ",".join(param_text(v) for v in value)
    return str(value)


def _param(params: Mapping[str, Any], key: str) -> Any:
    """Return a simulate cell's parameter, or simulate's default when the spec leaves it out."""
    from initsim.keywords import SIMULATE

    kw = SIMULATE.get(key)
    return params.get(key, kw.default if kw is not None else None)


def _varying_params(cells: list[Cell]) -> list[tuple[str, str]]:
    """``(parameter, column)`` of the parameters without a column that vary between ``cells``."""
    keys: list[str] = []
    for c in cells:
        keys.extend(k for k in c.params if k not in keys)
    listed = any(isinstance(_param(c.params, "width"), list | tuple) for c in cells)
    out = []
    for key in keys:
        if key in PARAM_COLUMNS and not (key == "width" and listed):
            continue
        first = _param(cells[0].params, key)
        if any(_param(c.params, key) != first for c in cells):
            out.append((key, "widths" if key == "width" else key))
    return out


def _claims(report: Any) -> tuple[str, str]:
    """Return the combined verdict and a description of a check report's claim rows."""
    rows = [r for r in report.rows if r.quantity.startswith("claim ")]
    if not rows:
        return "", ""
    verdicts = {r.verdict for r in rows}
    verdict = "FAIL" if "FAIL" in verdicts else ("PASS" if "PASS" in verdicts else "N/A")
    parts = []
    for r in rows:
        p = "" if math.isnan(r.p_value) else f", p = {r.p_value:.3g}"
        parts.append(
            f"{r.quantity.removeprefix('claim ')} = {r.observed:.4g} "
            f"(predicted {r.predicted:.4g}{p}): {r.verdict}"
        )
    return verdict, "; ".join(parts)


@dataclass
class StudyResults:
    """The finished cells of a study, as loaded from its results directory.

    Attributes
    ----------
    name : str
        Study name.
    seed : int
        Study seed.
    spec : dict
        The parsed TOML.
    spec_sha256 : str
        Hash of the canonical spec.
    provenance : dict
        Manifest provenance (versions, platform, executor), with the
        threading layer and thread counts the loaded cells report
        (:func:`~initsim.study.store.run_facts`).
    figures : list of dict
        The spec's ``[[figure]]`` tables.
    cells : list of Cell
        Finished cells in spec order.
    missing : list of str
        Ids of cells not (validly) on disk: missing or damaged.
    path : Path
        The results directory.
    description : str
        The spec's description.
    corrupt : dict of str to str
        Cell id -> why its file is not valid (truncated, undecodable,
        altered, another cell's or study's, not a file), for the damaged
        cells among ``missing``; the next run recomputes them.
    """

    name: str
    seed: int
    spec: dict[str, Any]
    spec_sha256: str
    provenance: dict[str, Any]
    figures: list[dict[str, Any]]
    cells: list[Cell]
    missing: list[str]
    path: Path
    description: str = ""
    corrupt: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Whether every cell of the spec is on disk."""
        return not self.missing

    def cells_of(self, experiment: str) -> list[Cell]:
        """Return the finished cells of one experiment, in spec order.

        Parameters
        ----------
        experiment : str
            Experiment name.

        Returns
        -------
        list of Cell
            Its cells.

        Raises
        ------
        ValueError
            If no experiment has that name.
        """
        names = self.spec_experiments
        if experiment not in names:
            raise ValueError(
                f"no experiment {experiment!r} in study {self.name!r}; "
                f"experiments: {', '.join(names)}"
            )
        return [c for c in self.cells if c.experiment == experiment]

    @property
    def spec_experiments(self) -> list[str]:
        """Experiment names in spec order."""
        return [e["name"] for e in self.spec.get("experiment", [])]

    @property
    def failed_checks(self) -> int:
        """Number of checked cells whose overall verdict is FAIL."""
        return sum(1 for c in self.cells if c.checks is not None and c.checks.verdict == "FAIL")

    def table(self) -> np.ndarray:
        """One row per simulate cell x layer: parameters, summary statistics and check verdicts.

        Returns
        -------
        numpy.ndarray
            A structured array with the fields of :data:`TABLE_COLUMNS`
            (``pandas.DataFrame(results.table())`` makes a data frame), and,
            after ``nets``, one text column per other parameter that varies
            between the cells (e.g. ``inputs``, ``method``; ``widths`` when a
            cell has one width per layer, ``width`` then being -1). Means and
            95% Student-t intervals are over nets; ``q_predicted``,
            ``q_p_value`` and ``q_verdict`` come from the cell's checks ("" and
            NaN where the cell was not checked or the row untested);
            ``check_verdict`` is the cell's overall verdict (its claims
            included), ``claim_verdict`` and ``claims`` its claim rows, e.g.
            ``"E[q^L] - E[q^1] = -0.49 (predicted 0, p = 1e-30): FAIL"``. Text
            columns are as wide as their longest value. For a residual cell a
            "layer" is a block, ``q`` and ``grad_sq`` are the stream's, and
            ``act_mean`` and ``act_var`` are NaN.
        """
        cells = [c for c in self.cells if c.kind == "simulate"]
        extra = _varying_params(cells) if cells else []
        rows: list[tuple[Any, ...]] = []
        for cell in cells:
            r = cell.result
            p = cell.params
            width = p.get("width", 256)
            width = width if isinstance(width, int) else -1
            params = tuple(param_text(_param(p, key)) for key, _ in extra)
            verdicts: dict[tuple[str, int], Any] = {}
            overall = claim_verdict = claims = ""
            if cell.checks is not None:
                for row in cell.checks.rows:
                    verdicts[(row.quantity, row.layer)] = row
                overall = cell.checks.verdict
                claim_verdict, claims = _claims(cell.checks)
            q_lo, q_hi = r.layer_interval("q")
            q_mean = r.layer_mean("q")
            if r.grad_sq is not None:
                g_mean = r.layer_mean("grad_sq")
                g_lo, g_hi = r.layer_interval("grad_sq")
            else:
                g_mean = g_lo = g_hi = np.full(r.depth, np.nan)
            nonfinite = r.first_nonfinite_layer
            # a residual net records its stream, not a layer's activations: NaN there
            if hasattr(r, "act_mean"):
                act_mean = [float(np.mean(r.act_mean[:, i])) for i in range(r.depth)]
                act_var = [float(np.mean(r.act_var[:, i])) for i in range(r.depth)]
            else:
                act_mean = act_var = [math.nan] * r.depth
            for layer in range(1, r.depth + 1):
                i = layer - 1
                qrow = verdicts.get(("E[q]", layer))
                grow = verdicts.get(("E[grad^2]", layer))
                rows.append(
                    (
                        cell.id,
                        cell.experiment,
                        _label(p.get("activation", "relu")),
                        _label(p.get("init", "he_normal")),
                        width,
                        r.depth,
                        float(p.get("bias_std", 0.0)),
                        r.nets,
                        *params,
                        layer,
                        q_mean[i],
                        q_lo[i],
                        q_hi[i],
                        g_mean[i],
                        g_lo[i],
                        g_hi[i],
                        act_mean[i],
                        act_var[i],
                        float(np.mean(r.dead_fraction[:, i])),
                        float(np.mean(r.saturated_fraction[:, i])),
                        int(np.sum((nonfinite > 0) & (nonfinite <= layer))),
                        qrow.predicted if qrow else math.nan,
                        qrow.p_value if qrow else math.nan,
                        qrow.verdict if qrow else "",
                        grow.predicted if grow else math.nan,
                        grow.p_value if grow else math.nan,
                        grow.verdict if grow else "",
                        overall,
                        claim_verdict,
                        claims,
                    )
                )
        at = [name for name, _ in TABLE_COLUMNS].index("nets") + 1
        columns = [*TABLE_COLUMNS[:at], *((col, "U1") for _, col in extra), *TABLE_COLUMNS[at:]]
        dtype = []
        for j, (name, kind) in enumerate(columns):
            if kind.startswith("U"):  # as wide as the longest value: never cut a name short
                longest = max((len(row[j]) for row in rows), default=0)
                kind = f"U{max(int(kind[1:]), longest, 1)}"
            dtype.append((name, kind))
        return np.array(rows, dtype=dtype)

    def write_csv(self, path: str | Path) -> Path:
        """Write :meth:`table` as CSV (atomically).

        Parameters
        ----------
        path : str or Path
            Destination file.

        Returns
        -------
        Path
            The file written.
        """
        import csv
        import io

        from initsim._files import atomic_write

        table = self.table()
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(table.dtype.names)
        for row in table.tolist():
            writer.writerow([f"{v:.17g}" if isinstance(v, float) else v for v in row])
        path = Path(path)
        with atomic_write(path, "w") as fh:
            fh.write(buf.getvalue())
        return path


def load_results(path: str | Path, *, allow_missing: bool = True) -> StudyResults:
    """Load a study's results directory (no computation).

    Parameters
    ----------
    path : str or Path
        The directory ``initsim study run`` wrote.
    allow_missing : bool
        If False, raise when cells are missing or corrupt.

    Returns
    -------
    StudyResults
        The finished cells; ``missing`` lists the others (``corrupt`` says
        why each damaged one is).

    Raises
    ------
    StoreError
        If ``path`` is not a results directory, or (``allow_missing=False``)
        the study is incomplete (the message names the damaged cells).
    """
    store = ResultsDir(path)
    manifest = store.read_manifest()
    if not isinstance(manifest.get("spec"), Mapping):
        raise StoreError(f"{str(store.manifest_path)!r} holds no spec")
    spec = parse_spec(manifest["spec"], source=str(store.manifest_path))
    if spec.sha256 != manifest["spec_sha256"]:
        raise StoreError(
            f"{str(store.manifest_path)!r}: the stored spec does not match its sha256 "
            "(edited by hand, or written by an incompatible initsim)"
        )
    return read_results(store, spec, manifest, allow_missing=allow_missing)


def read_results(
    store: ResultsDir, spec: StudySpec, manifest: Mapping[str, Any], *, allow_missing: bool
) -> StudyResults:
    """Load the finished cells of ``spec`` from an opened results directory.

    Parameters
    ----------
    store : ResultsDir
        The results directory.
    spec : StudySpec
        The study whose cells to read (already matched against the manifest).
    manifest : mapping
        The directory's manifest.
    allow_missing : bool
        If False, raise when cells are missing or corrupt.

    Returns
    -------
    StudyResults
        The finished cells; ``missing`` lists the others, ``corrupt`` the
        damaged ones among them with the reason.

    Raises
    ------
    StoreError
        If ``allow_missing=False`` and the study is incomplete.
    """
    cells: list[Cell] = []
    missing: list[str] = []
    corrupt: dict[str, str] = {}
    runs: list[Mapping[str, Any]] = []
    for cs in spec.cells:
        try:
            arrays, meta = store.read_cell(cs.id, spec.sha256)
        except FileNotFoundError:
            missing.append(cs.id)
            continue
        except CorruptCellError as exc:
            missing.append(cs.id)
            corrupt[cs.id] = str(exc)
            continue
        runs.append(meta["provenance"])
        cells.append(
            Cell(
                id=cs.id,
                experiment=cs.experiment,
                kind=cs.kind,
                params=cs.params,
                result=CELL_KINDS[cs.kind].load(arrays, meta["provenance"]),
                checks=_check_report(meta.get("checks")),
                spawn_key=cs.spawn_key,
                arrays=arrays,
            )
        )
    if missing and not allow_missing:
        damaged = ""
        if corrupt:
            ids = list(corrupt)
            shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
            damaged = f"; {len(ids)} damaged: {shown} ({corrupt[ids[0]]})"
        raise StoreError(
            f"{str(store.path)!r} is incomplete: {len(missing)} of {len(spec.cells)} cells "
            f"missing or corrupt (first: {missing[0]}){damaged}; run the study again to "
            "finish it (damaged cells are recomputed)"
        )
    provenance = dict(manifest.get("provenance", {}))
    provenance.update(run_facts(runs))  # what the cells on disk used, whatever the manifest says
    return StudyResults(
        name=spec.name,
        seed=spec.seed,
        spec=spec.raw,
        spec_sha256=spec.sha256,
        provenance=provenance,
        figures=list(spec.figures),
        cells=cells,
        missing=missing,
        path=store.path,
        description=spec.description,
        corrupt=corrupt,
    )
