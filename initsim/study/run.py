"""Running a study: :class:`Study` (validate, run, resume) and :class:`RunSummary`.

>>> import initsim                                              # doctest: +SKIP
>>> study = initsim.Study.from_toml("reports/he-vs-lecun.toml")  # doctest: +SKIP
>>> summary = study.run()                                       # doctest: +SKIP
>>> study.results().table()[:3]                                 # doctest: +SKIP

A run computes every cell not yet validly on disk, on the executor of
:mod:`initsim.study.executors`, and writes each finished cell to the results
directory of :mod:`initsim.study.store` as it arrives, so an interrupted run
resumes where it stopped. The spec format is described in
:mod:`initsim.study.spec` and the README; loading results is
:mod:`initsim.study.results`.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from initsim.study.results import StudyResults, read_results
from initsim.study.spec import CellSpec, StudySpec, parse_spec, read_spec
from initsim.study.store import CorruptCellError, ResultsDir, StoreError

__all__ = ["RunSummary", "Study"]


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
        initsim.study.SpecError
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
        from initsim.provenance import threading_layer, versions

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
                "threading_layer": threading_layer(),
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
        initsim.study.store.StoreError
            If the directory is unwritable or holds another spec's results
            (nothing is written then).
        """
        from initsim.progress import Progress
        from initsim.study.executors import make_executor

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
        initsim.study.store.StoreError
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
        return read_results(store, self.spec, manifest, allow_missing=allow_missing)
