"""Scripted Monte Carlo studies: run a TOML spec, resume it, load its results.

>>> import initsim                                              # doctest: +SKIP
>>> study = initsim.Study.from_toml("reports/he-vs-lecun.toml")  # doctest: +SKIP
>>> results = study.run()                                       # doctest: +SKIP
>>> results.table()[:3]                                         # doctest: +SKIP

The spec format is described in :mod:`initsim.study_spec` and the README.
"""

from __future__ import annotations

import math
import platform
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from initsim.store import CorruptCellError, ResultsDir, StoreError
from initsim.study_spec import CellSpec, StudySpec, parse_spec, read_spec

__all__ = ["Cell", "Study", "StudyResults", "TrainCellResult", "load_results"]

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
)


@dataclass(frozen=True)
class TrainCellResult:
    """Arrays of a training cell (``repeats`` independent nets).

    Attributes
    ----------
    loss : numpy.ndarray (repeats, steps + 1)
        Training loss before each step and after the last.
    unit_distance : numpy.ndarray (repeats, steps + 1, hidden layers)
        Smallest distance between two units of a layer (0: identical units).
    grad_norms : numpy.ndarray (repeats, steps, layers)
        Gradient norm per layer and step.
    provenance : dict
        Seed, configuration, versions.
    """

    loss: np.ndarray
    unit_distance: np.ndarray
    grad_norms: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Cell:
    """One finished cell of a study.

    Attributes
    ----------
    id, experiment, kind : str
        Identity (see :class:`initsim.study_spec.CellSpec`).
    params : dict
        Resolved parameters.
    result : SimulationResult, JacobianSpectrum or TrainCellResult
        What the cell computed.
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
    if data is None:
        return None
    from initsim.checks import CheckReport, CheckRow

    def num(x: Any) -> float:
        return float("nan") if x is None else float(x)

    rows = [
        CheckRow(
            layer=int(r["layer"]),
            quantity=r["quantity"],
            observed=num(r["observed"]),
            predicted=num(r["predicted"]),
            interval=(num(r["interval"][0]), num(r["interval"][1])),
            p_value=num(r["p_value"]),
            regime=r["regime"],
            verdict=r["verdict"],
        )
        for r in data["rows"]
    ]
    return CheckReport(rows=rows, alpha=data["alpha"], verdict=data["verdict"], notes=data["notes"])


def _result_object(kind: str, arrays: dict[str, np.ndarray], provenance: dict[str, Any]) -> Any:
    if kind == "simulate":
        from initsim.result import SimulationResult

        hist = {k[len("hist_") :]: v for k, v in arrays.items() if k.startswith("hist_")}
        return SimulationResult(
            q=arrays["q"],
            act_mean=arrays["act_mean"],
            act_var=arrays["act_var"],
            dead_fraction=arrays["dead_fraction"],
            saturated_fraction=arrays["saturated_fraction"],
            grad_sq=arrays.get("grad_sq"),
            first_nonfinite_layer=arrays["first_nonfinite_layer"],
            histograms=hist or None,
            provenance=provenance,
        )
    if kind == "jacobian":
        from initsim.jacobian import JacobianSpectrum

        return JacobianSpectrum(singular_values=arrays["singular_values"], provenance=provenance)
    return TrainCellResult(
        loss=arrays["loss"],
        unit_distance=arrays["unit_distance"],
        grad_norms=arrays["grad_norms"],
        provenance=provenance,
    )


def _label(value: Any) -> str:
    if isinstance(value, Mapping):
        rest = ", ".join(f"{k}={v}" for k, v in value.items() if k != "name")
        return f"{value['name']}({rest})" if rest else str(value["name"])
    return str(value)


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
        Manifest provenance: versions, threading layer, executor, seed.
    figures : list of dict
        The spec's ``[[figure]]`` tables.
    cells : list of Cell
        Finished cells in spec order.
    missing : list of str
        Ids of cells not (validly) on disk.
    path : Path
        The results directory.
    description : str
        The spec's description.
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
        """One row per simulate cell x layer: summary statistics and check verdicts.

        Returns
        -------
        numpy.ndarray
            A structured array with the fields of :data:`TABLE_COLUMNS`
            (``pandas.DataFrame(results.table())`` makes a data frame).
            Means and 95% Student-t intervals are over nets; ``q_predicted``,
            ``q_p_value`` and ``q_verdict`` come from the cell's checks
            ("" and NaN where the cell was not checked or the row untested).
        """
        rows: list[tuple[Any, ...]] = []
        for cell in self.cells:
            if cell.kind != "simulate":
                continue
            r = cell.result
            p = cell.params
            width = p.get("width", 256)
            width = width if isinstance(width, int) else -1
            verdicts: dict[tuple[str, int], Any] = {}
            if cell.checks is not None:
                for row in cell.checks.rows:
                    verdicts[(row.quantity, row.layer)] = row
            q_lo, q_hi = r.layer_interval("q")
            q_mean = r.layer_mean("q")
            if r.grad_sq is not None:
                g_mean = r.layer_mean("grad_sq")
                g_lo, g_hi = r.layer_interval("grad_sq")
            else:
                g_mean = g_lo = g_hi = np.full(r.depth, np.nan)
            nonfinite = r.first_nonfinite_layer
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
                        layer,
                        q_mean[i],
                        q_lo[i],
                        q_hi[i],
                        g_mean[i],
                        g_lo[i],
                        g_hi[i],
                        float(np.mean(r.act_mean[:, i])),
                        float(np.mean(r.act_var[:, i])),
                        float(np.mean(r.dead_fraction[:, i])),
                        float(np.mean(r.saturated_fraction[:, i])),
                        int(np.sum((nonfinite > 0) & (nonfinite <= layer))),
                        qrow.predicted if qrow else math.nan,
                        qrow.p_value if qrow else math.nan,
                        qrow.verdict if qrow else "",
                        grow.predicted if grow else math.nan,
                        grow.p_value if grow else math.nan,
                        grow.verdict if grow else "",
                    )
                )
        return np.array(rows, dtype=list(TABLE_COLUMNS))

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
        The finished cells; ``missing`` lists the others.

    Raises
    ------
    StoreError
        If ``path`` is not a results directory, or (``allow_missing=False``)
        the study is incomplete.
    """
    store = ResultsDir(path)
    manifest = store.read_manifest()
    spec = parse_spec(manifest["spec"], source=str(store.manifest_path))
    if spec.sha256 != manifest["spec_sha256"]:
        raise StoreError(
            f"{str(store.manifest_path)!r}: the stored spec does not match its sha256 "
            "(edited by hand, or written by an incompatible initsim)"
        )
    return _load(store, spec, manifest, allow_missing=allow_missing)


def _load(
    store: ResultsDir, spec: StudySpec, manifest: Mapping[str, Any], *, allow_missing: bool
) -> StudyResults:
    cells: list[Cell] = []
    missing: list[str] = []
    for cs in spec.cells:
        try:
            arrays, meta = store.read_cell(cs.id, spec.sha256)
        except (FileNotFoundError, CorruptCellError):
            missing.append(cs.id)
            continue
        cells.append(
            Cell(
                id=cs.id,
                experiment=cs.experiment,
                kind=cs.kind,
                params=cs.params,
                result=_result_object(cs.kind, arrays, meta["provenance"]),
                checks=_check_report(meta.get("checks")),
                spawn_key=cs.spawn_key,
                arrays=arrays,
            )
        )
    if missing and not allow_missing:
        raise StoreError(
            f"{str(store.path)!r} is incomplete: {len(missing)} of {len(spec.cells)} cells "
            f"missing or corrupt (first: {missing[0]}); run the study again to finish it"
        )
    return StudyResults(
        name=spec.name,
        seed=spec.seed,
        spec=spec.raw,
        spec_sha256=spec.sha256,
        provenance=dict(manifest.get("provenance", {})),
        figures=list(spec.figures),
        cells=cells,
        missing=missing,
        path=store.path,
        description=spec.description,
    )


def _check_failed(meta: Mapping[str, Any]) -> bool:
    """Whether a cell's stored checks have an overall FAIL verdict."""
    checks = meta.get("checks")
    return bool(checks and checks["verdict"] == "FAIL")


@dataclass(frozen=True)
class RunSummary:
    """What :meth:`Study.run` did.

    Attributes
    ----------
    cells : int
        Cells in the spec.
    reused, computed, failed : int
        Cells found valid on disk, computed now, and failed (after retries).
    recomputed_corrupt : int
        Cells whose file was corrupt or partial and that were recomputed.
    failed_checks : int
        Checked cells with an overall FAIL verdict.
    errors : dict
        Cell id -> error message for failed cells.
    path : Path
        The results directory.
    """

    cells: int
    reused: int
    computed: int
    failed: int
    recomputed_corrupt: int
    failed_checks: int
    errors: dict[str, str]
    path: Path

    def line(self, name: str) -> str:
        """Return the one-line summary printed at the end of a run."""
        done = self.reused + self.computed
        text = (
            f"study {name}: {done}/{self.cells} cells done ({self.computed} computed, "
            f"{self.reused} reused"
        )
        if self.recomputed_corrupt:
            text += f", {self.recomputed_corrupt} corrupt recomputed"
        text += (
            f"), {self.failed} failed, {self.failed_checks} failed checks; results in {self.path}"
        )
        return text

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dictionary."""
        return {
            "cells": self.cells,
            "reused": self.reused,
            "computed": self.computed,
            "failed": self.failed,
            "recomputed_corrupt": self.recomputed_corrupt,
            "failed_checks": self.failed_checks,
            "errors": self.errors,
            "path": str(self.path),
        }


class Study:
    """A validated study spec that can run, resume and load its results.

    Parameters
    ----------
    spec : mapping or StudySpec
        The spec as a dictionary (the parsed TOML), or a :class:`StudySpec`.

    Examples
    --------
    >>> from initsim import Study
    >>> study = Study({"name": "tiny", "seed": 1,
    ...                "experiment": [{"name": "he", "depth": 3, "width": 16, "nets": 8}]})
    >>> [c.id for c in study.spec.cells]
    ['he-000']
    """

    def __init__(self, spec: Mapping[str, Any] | StudySpec) -> None:
        self.spec = spec if isinstance(spec, StudySpec) else parse_spec(spec)

    @classmethod
    def from_toml(cls, path: str | Path) -> Study:
        """Read and validate a TOML spec.

        Parameters
        ----------
        path : str or Path
            The spec file.

        Returns
        -------
        Study
            The study.

        Raises
        ------
        initsim.study_spec.SpecError
            If the file is missing, not TOML, or invalid (message names key and line).
        """
        return cls(read_spec(path))

    def default_out(self) -> Path:
        """Return ``results/<name>-<first 12 hex digits of the spec hash>``."""
        return Path("results") / f"{self.spec.name}-{self.spec.sha256[:12]}"

    def manifest(self, executor: dict[str, Any] | None = None) -> dict[str, Any]:
        """Return the manifest written next to the results.

        Parameters
        ----------
        executor : dict, optional
            Description of the executor of the first run.

        Returns
        -------
        dict
            Format, name, spec hash and canonical spec, seed, the cells'
            spawn keys and provenance (versions, threading layer).
        """
        from initsim.simulation import _threading_layer, versions

        return {
            "format": "initsim-study/1",
            "name": self.spec.name,
            "spec_sha256": self.spec.sha256,
            "spec": self.spec.raw,
            "canonical_spec": self.spec.canonical,
            "seed_entropy": str(self.spec.seed),
            "cells": {c.id: {"spawn_key": list(c.spawn_key)} for c in self.spec.cells},
            "provenance": {
                "versions": versions(),
                "platform": platform.platform(),
                "python_executable": sys.executable,
                "threading_layer": _threading_layer(),
                "first_run": executor or {},
            },
        }

    def run(
        self,
        out: str | Path | None = None,
        *,
        workers: int | None = None,
        scheduler: str | None = None,
        threads: int | None = None,
        progress: bool | None = None,
        executor: Any = None,
        only: Sequence[str] | None = None,
    ) -> RunSummary:
        """Compute every cell not yet validly on disk.

        Parameters
        ----------
        out : str or Path, optional
            Results directory (default :meth:`default_out`).
        workers : int, optional
            Run on a new Dask ``LocalCluster`` with this many workers.
        scheduler : str, optional
            Run on the Dask cluster at this address.
        threads : int, optional
            Numba threads per cell for the in-process executor.
        progress : bool, optional
            Progress bar over cells on stderr (default: when stderr is a terminal).
        executor : object, optional
            A ready executor (overrides ``workers``/``scheduler``/``threads``).
        only : sequence of str, optional
            Run only these experiments.

        Returns
        -------
        RunSummary
            Counts of reused, computed, corrupt and failed cells.

        Raises
        ------
        initsim.store.StoreError
            If the directory is unwritable or holds another spec's results
            (nothing is written then).
        """
        from initsim.executors import make_executor
        from initsim.progress import Progress

        store = ResultsDir(out if out is not None else self.default_out())
        cells = list(self.spec.cells)
        if only is not None:
            unknown = sorted(set(only) - set(self.spec.experiments))
            if unknown:
                raise ValueError(
                    f"only: unknown experiment {unknown[0]!r}; "
                    f"experiments: {', '.join(self.spec.experiments)}"
                )
            cells = [c for c in cells if c.experiment in only]
        own = executor is None
        if own:
            executor = make_executor(workers=workers, scheduler=scheduler, threads=threads)
        try:
            store.prepare(self.manifest(executor.describe()), self.spec.text)
            todo: list[CellSpec] = []
            corrupt = failed_checks = 0
            for cs in cells:  # one verified read per finished cell
                try:
                    _, meta = store.read_cell(cs.id, self.spec.sha256)
                except (FileNotFoundError, CorruptCellError) as exc:
                    todo.append(cs)
                    corrupt += isinstance(exc, CorruptCellError)
                    continue
                failed_checks += _check_failed(meta)
            bar = Progress(len(cells), label=f"study {self.spec.name}", enabled=progress)
            bar.update(len(cells) - len(todo))
            errors: dict[str, str] = {}
            for cell_id, outcome in executor.run([c.to_dict() for c in todo], self.spec.seed):
                if isinstance(outcome, BaseException):
                    errors[cell_id] = f"{type(outcome).__name__}: {outcome}"
                else:
                    arrays, meta = outcome
                    meta = {**meta, "spec_sha256": self.spec.sha256}
                    store.write_cell(cell_id, arrays, meta)
                    failed_checks += _check_failed(meta)
                bar.update(1)
            bar.close()
        finally:
            if own:
                executor.close()
        return RunSummary(
            cells=len(cells),
            reused=len(cells) - len(todo),
            computed=len(todo) - len(errors),
            failed=len(errors),
            recomputed_corrupt=corrupt,
            failed_checks=failed_checks,
            errors=errors,
            path=store.path,
        )

    def results(self, out: str | Path | None = None, *, allow_missing: bool = True) -> StudyResults:
        """Load this study's results (no computation).

        Parameters
        ----------
        out : str or Path, optional
            Results directory (default :meth:`default_out`).
        allow_missing : bool
            If False, raise when cells are missing.

        Returns
        -------
        StudyResults
            The finished cells.

        Raises
        ------
        initsim.store.StoreError
            If the directory is missing, foreign, or holds another spec's results.
        """
        store = ResultsDir(out if out is not None else self.default_out())
        manifest = store.read_manifest()
        if manifest.get("spec_sha256") != self.spec.sha256:
            raise StoreError(
                f"{str(store.path)!r} holds results of a different spec "
                f"(sha256 {str(manifest.get('spec_sha256'))[:12]}..., this spec "
                f"{self.spec.sha256[:12]}...)"
            )
        return _load(store, self.spec, manifest, allow_missing=allow_missing)
