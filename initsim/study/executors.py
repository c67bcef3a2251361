"""Where study cells run: in this process, or on a Dask cluster.

An executor takes the cells still to do and yields ``(cell_id, outcome)``
as cells finish, where the outcome is ``(arrays, meta)`` or the exception
that the cell raised after its retries. Results come back to the calling
process, which alone writes the results directory, so a remote cluster
needs no shared file system.

Cell results depend only on the cell and the study seed (per-cell seed
sequences, per-net counter-based streams), never on the executor, the worker
or the thread count: that is what makes them bit-identical everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from initsim.study.cells import run_cell

__all__ = ["DaskExecutor", "LocalExecutor", "Outcome", "make_executor"]

#: ``(arrays, meta)`` of a finished cell, or the exception it raised.
Outcome = tuple[dict, dict] | BaseException
CellFn = Callable[[Mapping[str, Any], int, "int | None"], tuple[dict, dict]]


class LocalExecutor:
    """Run cells one after another in this process, each on ``threads`` numba threads.

    Parameters
    ----------
    threads : int, optional
        Numba threads per cell (default: all available).
    cell_fn : callable
        The cell function (tests substitute a faulty one).
    """

    name = "local"

    def __init__(self, threads: int | None = None, cell_fn: CellFn = run_cell) -> None:
        self.threads = threads
        self.cell_fn = cell_fn

    def describe(self) -> dict[str, Any]:
        """Return a JSON-ready description for the provenance."""
        return {"executor": self.name, "threads": self.threads}

    def run(self, cells: Sequence[Mapping[str, Any]], seed: int) -> Iterator[tuple[str, Outcome]]:
        """Compute ``cells`` in order.

        Parameters
        ----------
        cells : sequence of mapping
            Cells as :meth:`~initsim.study.spec.CellSpec.to_dict` gives them.
        seed : int
            The study's seed.

        Yields
        ------
        tuple
            ``(cell_id, (arrays, meta))``, or ``(cell_id, exception)``.
        """
        for cell in cells:
            try:
                yield cell["id"], self.cell_fn(cell, seed, self.threads)
            except Exception as exc:
                yield cell["id"], exc

    def close(self) -> None:
        """Nothing to release."""


def _dask_task(cell: Mapping[str, Any], seed: int, threads: Mapping[str, int], fn: CellFn):
    """Run one cell on a Dask worker with this worker's share of the cores."""
    from distributed import get_worker

    share = threads.get(get_worker().address)
    return fn(cell, seed, share)


class DaskExecutor:
    """Run cells on a Dask cluster: a new ``LocalCluster`` or an existing scheduler.

    Parameters
    ----------
    workers : int, optional
        Start a ``LocalCluster`` with this many single-threaded worker processes.
    scheduler : str, optional
        Address of a running scheduler (``tcp://HOST:PORT``).
    retries : int
        How often a failed cell is resubmitted (lost workers' cells are
        rescheduled by Dask itself).
    cell_fn : callable
        The cell function (tests substitute a faulty one).

    Notes
    -----
    Each worker runs numba on a fixed share of its host's cores: the host's
    core count divided by the number of worker threads on that host, at
    least 1, so workers never oversubscribe the machine.
    """

    name = "dask"

    def __init__(
        self,
        workers: int | None = None,
        scheduler: str | None = None,
        retries: int = 2,
        cell_fn: CellFn = run_cell,
    ) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ImportError(
                "running a study on Dask needs the 'dask' extra: "
                "python -m pip install 'initsim[dask]'"
            ) from None
        if (workers is None) == (scheduler is None):
            raise ValueError("give exactly one of workers (a LocalCluster) or scheduler")
        self.retries = retries
        self.cell_fn = cell_fn
        self._cluster = None
        if workers is not None:
            if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
                raise ValueError(f"workers must be an integer >= 1; got {workers!r}")
            self._cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=40,
            )
            self.client = Client(self._cluster)
            self.address = self._cluster.scheduler_address
        else:
            try:
                self.client = Client(scheduler, timeout=10)
            except (OSError, TimeoutError) as exc:
                raise ValueError(
                    f"cannot connect to the Dask scheduler at {scheduler!r}: {exc}"
                ) from None
            self.address = scheduler
        self.client.wait_for_workers(1, timeout=60)
        self.threads = self._thread_shares()

    def _thread_shares(self) -> dict[str, int]:
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        cores = self.client.run(os.cpu_count)
        per_host: dict[str, int] = {}
        for w in info.values():
            per_host[w["host"]] = per_host.get(w["host"], 0) + int(w["nthreads"])
        return {
            addr: max(1, (cores.get(addr) or 1) // per_host[w["host"]]) for addr, w in info.items()
        }

    def describe(self) -> dict[str, Any]:
        """Return a JSON-ready description for the provenance."""
        return {
            "executor": self.name,
            "scheduler": self.address,
            "workers": len(self.threads),
            "threads_per_worker": sorted(set(self.threads.values())),
            "retries": self.retries,
        }

    def run(self, cells: Sequence[Mapping[str, Any]], seed: int) -> Iterator[tuple[str, Outcome]]:
        """Submit every cell and yield them as they finish.

        Parameters
        ----------
        cells : sequence of mapping
            Cells as :meth:`~initsim.study.spec.CellSpec.to_dict` gives them.
        seed : int
            The study's seed.

        Yields
        ------
        tuple
            ``(cell_id, (arrays, meta))``, or ``(cell_id, exception)``.
        """
        from distributed import as_completed

        futures = {}
        for cell in cells:
            fut = self.client.submit(
                _dask_task,
                dict(cell),
                seed,
                self.threads,
                self.cell_fn,
                key=f"initsim-cell-{seed}-{cell['id']}",
                retries=self.retries,
                pure=False,
            )
            futures[fut] = cell["id"]
        for fut in as_completed(futures):
            try:
                yield futures[fut], fut.result()
            except Exception as exc:
                yield futures[fut], exc

    def close(self) -> None:
        """Close the client (and the LocalCluster this executor started)."""
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(
    workers: int | None = None,
    scheduler: str | None = None,
    threads: int | None = None,
    cell_fn: CellFn = run_cell,
) -> LocalExecutor | DaskExecutor:
    """Choose the executor from the command-line options.

    Parameters
    ----------
    workers : int, optional
        Start a Dask ``LocalCluster`` with this many workers.
    scheduler : str, optional
        Connect to an existing Dask scheduler.
    threads : int, optional
        Numba threads per cell for the local executor.
    cell_fn : callable
        The cell function.

    Returns
    -------
    LocalExecutor or DaskExecutor
        The executor.

    Raises
    ------
    ValueError
        If both ``workers`` and ``scheduler`` are given.
    """
    if workers is not None and scheduler is not None:
        raise ValueError("give either workers or scheduler, not both")
    if workers is None and scheduler is None:
        return LocalExecutor(threads=threads, cell_fn=cell_fn)
    return DaskExecutor(workers=workers, scheduler=scheduler, cell_fn=cell_fn)
