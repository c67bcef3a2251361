"""Running a study: :class:`Study` (validate, run, resume) and :class:`RunSummary`.

>>> import initsim                                              # doctest: +SKIP
>>> study = initsim.Study.from_toml("reports/he-vs-lecun.toml")  # doctest: +SKIP
>>> summary = study.run()                                       # doctest: +SKIP
>>> study.results().table()[:3]                                 # doctest: +SKIP

A run computes every cell not yet validly on disk, on the executor of
:mod:`initsim.study.executors`, and writes each finished cell to the results
directory of :mod:`initsim.study.store` as it arrives, so an interrupted run
resumes where it stopped. Ctrl-C stops a run with :class:`StudyInterrupted`
(a ``KeyboardInterrupt`` that says how many cells are kept); a full disk stops
it with :class:`initsim._files.DiskFullError` (the cells already written are
kept, the one being written leaves nothing behind). The spec format is described in
:mod:`initsim.study.spec` and the README; loading results is
:mod:`initsim.study.results`.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from initsim._files import DiskFullError, is_disk_full
from initsim.study.results import StudyResults, read_results
from initsim.study.spec import MAX_CELLS, CellSpec, StudySpec, parse_spec, read_spec
from initsim.study.store import CorruptCellError, ResultsDir, StoreError

__all__ = ["RunSummary", "Study", "StudyInterrupted"]


def _check_failed(meta: Mapping[str, Any]) -> bool:
    """Whether a cell's stored checks have an overall FAIL verdict."""
    checks = meta.get("checks")
    return bool(checks and checks["verdict"] == "FAIL")


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C (``KeyboardInterrupt``) during :meth:`Study.run`; the finished cells are kept.

    Parameters
    ----------
    kept : int
        Cells of the run validly on disk (reused or written before the interrupt).
    cells : int
        Cells of the run.
    path : Path
        The results directory.
    """

    def __init__(self, kept: int, cells: int, path: Path) -> None:
        super().__init__(kept, cells, path)
        self.kept, self.cells, self.path = kept, cells, path

    def __str__(self) -> str:
        return (
            f"interrupted: {self.kept} of {self.cells} cells kept in {self.path}; "
            "run the same command again to resume"
        )


def _check_out(path: Path) -> None:
    """Refuse a results directory that is a file or a dangling symbolic link, before any work.

    Parameters
    ----------
    path : Path
        The results directory (it, or any of its parents, may not exist yet).

    Raises
    ------
    StoreError
        If ``path`` or one of its parents is a symbolic link to nothing, or a
        file that is not a directory.
    """
    for p in (path, *path.parents):
        if p.is_symlink() and not p.exists():
            raise StoreError(
                f"cannot write results to {str(path)!r}: {str(p)!r} is a symbolic link to "
                f"{os.readlink(p)!r}, which does not exist; create that directory, or "
                "choose another directory with --out"
            )
        if p.exists():
            if not p.is_dir():
                raise StoreError(
                    f"cannot write results to {str(path)!r}: {str(p)!r} is not a directory; "
                    "choose another directory with --out"
                )
            return


def _check_run_threads(threads: Any) -> int:
    """Check ``threads`` of :meth:`Study.run` up front (one message for every bad value)."""
    import numba

    from initsim.provenance import check_threads

    try:
        return int(check_threads(threads))
    except ValueError:
        raise ValueError(
            f"threads must be an integer between 1 and {numba.config.NUMBA_NUM_THREADS} "
            f"(NUMBA_NUM_THREADS); got {threads!r}"
        ) from None


def _prepare(
    store: ResultsDir, manifest: Mapping[str, Any], spec_text: str | None, *, wait: bool = False
) -> None:
    """Run :meth:`ResultsDir.prepare`; if it fails, remove what it created of a new directory.

    A directory that existed before is left untouched; of a new one, only the
    files :meth:`ResultsDir.prepare` writes (manifest, spec copy, temporary
    files) and then empty folders are removed, so a failed first run (a full
    disk, Ctrl-C) leaves no half-made results directory behind.
    """
    from initsim._files import TMP_PREFIX
    from initsim.study.store import CELLS, MANIFEST, SPEC_COPY

    new = [p for p in (store.path, *store.path.parents) if not os.path.lexists(p)]
    try:
        store.prepare(manifest, spec_text, wait=wait)  # takes the run lock
    except BaseException:
        if new:
            for folder in (store.path / CELLS, store.path):
                for f in [*folder.glob(f"{TMP_PREFIX}*"), folder / MANIFEST, folder / SPEC_COPY]:
                    with contextlib.suppress(OSError):
                        f.unlink()
            for folder in (store.path / CELLS, *new):  # deepest first; only if empty
                with contextlib.suppress(OSError):
                    folder.rmdir()
        raise


def _record_run_facts(store: ResultsDir, runs: Iterable[Mapping[str, Any]]) -> None:
    """Record in the manifest the threading layer and threads the cells used (best effort).

    A run stopped by a full disk or Ctrl-C still tries; a failure here never
    hides the run's own outcome (the facts are also read from the cells).
    """
    from initsim.study.store import run_facts

    with contextlib.suppress(OSError, StoreError):
        store.record_run_facts(run_facts(runs))


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
    spec : mapping, StudySpec, str or Path
        The spec as a dictionary (the parsed TOML), a :class:`StudySpec`, or the
        path of a TOML file (read as by :meth:`from_toml`).
    max_cells : int or None
        For a dictionary or a path: refuse more cells than this (default
        :data:`initsim.study.spec.MAX_CELLS`; None for no limit).

    Examples
    --------
    >>> from initsim import Study
    >>> study = Study({"name": "tiny", "seed": 1,
    ...                "experiment": [{"name": "he", "depth": 3, "width": 16, "nets": 8}]})
    >>> [c.id for c in study.spec.cells]
    ['he-000']
    """

    def __init__(
        self,
        spec: Mapping[str, Any] | StudySpec | str | os.PathLike[str],
        *,
        max_cells: int | None = MAX_CELLS,
    ) -> None:
        if isinstance(spec, str | os.PathLike):
            spec = read_spec(spec, max_cells=max_cells)
        elif not isinstance(spec, Mapping | StudySpec):
            raise ValueError(
                "Study expects the spec as a mapping (the parsed TOML), a StudySpec, or the "
                f"path of a TOML file (str or Path); got {type(spec).__name__} {spec!r:.60}"
            )
        self.spec = spec if isinstance(spec, StudySpec) else parse_spec(spec, max_cells=max_cells)

    @classmethod
    def from_toml(cls, path: str | Path, *, max_cells: int | None = MAX_CELLS) -> Study:
        """Read and validate a TOML spec.

        Parameters
        ----------
        path : str or Path
            The spec file.
        max_cells : int or None
            Refuse more cells than this (see :func:`initsim.study.parse_spec`).

        Returns
        -------
        Study
            The study.

        Raises
        ------
        initsim.study.SpecError
            If the file is missing, not TOML, or invalid (message names key and line).
        """
        return cls(read_spec(path, max_cells=max_cells))

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
            spawn keys and provenance (versions, platform, executor). The
            threading layer and thread counts are added by :meth:`run` once
            cells have run (:func:`~initsim.study.store.run_facts`): before
            its first parallel region a process cannot know its layer.
        """
        from initsim.provenance import versions

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
        only: str | Sequence[str] | None = None,
        scheduler_timeout: float | None = None,
        wait: bool = False,
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
            Numba threads per cell for the in-process executor, between 1 and
            ``NUMBA_NUM_THREADS`` (checked before anything is done).
        progress : bool, optional
            Progress bar over cells on stderr (default: when stderr is a terminal).
        executor : object, optional
            A ready executor (overrides ``workers``/``scheduler``/``threads``).
        only : str or sequence of str, optional
            Run only this experiment, or these experiments.
        scheduler_timeout : float, optional
            Seconds to wait for a first worker to join ``scheduler`` (default
            60; the scheduler itself must answer within the first 10).
        wait : bool
            If another run is using the results directory, wait for it to end
            (default: fail at once with a :class:`~initsim.study.store.StoreError`).

        Returns
        -------
        RunSummary
            Counts of reused, computed, corrupt and failed cells.

        Raises
        ------
        initsim.study.store.StoreError
            If the directory is unwritable, a file, a dangling symbolic link, or
            holds another spec's results (nothing is written then), or, unless
            ``wait``, another run holds its lock (the message names its pid and host).
        ValueError
            For a bad ``threads``, ``only``, ``scheduler`` or ``scheduler_timeout``
            (before anything is done); :class:`~initsim.study.executors.ClusterTimeoutError`
            if no scheduler answers or no worker joins in time.
        initsim._files.DiskFullError
            If the disk fills up; the cells already written are kept, and a
            new directory whose manifest could not be written is removed.
        StudyInterrupted
            On Ctrl-C; the cells already written are kept.
        """
        from initsim.progress import Progress
        from initsim.study.executors import make_executor

        store = ResultsDir(out if out is not None else self.default_out())
        cells = list(self.spec.cells)
        if threads is not None:
            _check_run_threads(threads)
        if scheduler is not None and executor is None:
            from initsim.study.executors import check_scheduler_address, check_scheduler_timeout

            scheduler = check_scheduler_address(scheduler)
            check_scheduler_timeout(scheduler_timeout)
        _check_out(store.path)
        if isinstance(only, str):
            only = [only]  # one name, not its letters
        if only is not None:
            names = list(only) if isinstance(only, Iterable) else None
            if names is None or not all(isinstance(o, str) for o in names):
                raise ValueError(f"only must be an experiment name or a list of them; got {only!r}")
            only = names
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
            executor = make_executor(
                workers=workers, scheduler=scheduler, threads=threads, timeout=scheduler_timeout
            )
        try:
            _prepare(store, self.manifest(executor.describe()), self.spec.text, wait=wait)
            todo: list[CellSpec] = []
            corrupt = failed_checks = 0
            runs: dict[str, Mapping[str, Any]] = {}  # how each cell on disk ran
            for cs in cells:  # one verified read per finished cell
                try:
                    _, meta = store.read_cell(cs.id, self.spec.sha256)
                except (FileNotFoundError, CorruptCellError) as exc:
                    todo.append(cs)
                    corrupt += isinstance(exc, CorruptCellError)
                    continue
                failed_checks += _check_failed(meta)
                runs[cs.id] = meta["provenance"]
            if only is not None:  # the cells `only` leaves out: as their sidecars say
                chosen = {c.id for c in cells}
                for cs in self.spec.cells:
                    ident = {"cell": cs.id, "spec_sha256": self.spec.sha256}
                    if cs.id not in chosen and (run := store.read_run(cs.id, ident)):
                        runs[cs.id] = run
            bar = Progress(len(cells), label=f"study {self.spec.name}", enabled=progress)
            bar.update(len(cells) - len(todo))
            errors: dict[str, str] = {}
            written = 0
            try:
                for cell_id, outcome in executor.run([c.to_dict() for c in todo], self.spec.seed):
                    if isinstance(outcome, BaseException):
                        errors[cell_id] = f"{type(outcome).__name__}: {outcome}"
                    else:
                        arrays, meta = outcome
                        meta = {**meta, "spec_sha256": self.spec.sha256}
                        store.write_cell(cell_id, arrays, meta)
                        written += 1
                        failed_checks += _check_failed(meta)
                        runs[cell_id] = {**meta["provenance"], **meta.get("run", {})}
                    bar.update(1)
            except KeyboardInterrupt as exc:
                kept = len(cells) - len(todo) + written
                raise StudyInterrupted(kept, len(cells), store.path) from exc
            except OSError as exc:
                if not is_disk_full(exc):
                    raise
                kept = len(cells) - len(todo) + written
                raise DiskFullError(
                    exc.filename,
                    exc.errno,
                    hint=f"{kept} of {len(cells)} cells are kept in {store.path}; free some "
                    "space and run the same command again to resume",
                ) from exc
            finally:
                bar.close()
                _record_run_facts(store, runs.values())
        finally:
            store.unlock()
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
