"""Where study cells run: in this process, or on a Dask cluster.

An executor takes the cells still to do and yields ``(cell_id, outcome)``
as cells finish, where the outcome is ``(arrays, meta)`` or the exception
that the cell raised after its retries. Results come back to the calling
process, which alone writes the results directory, so a remote cluster
needs no shared file system.

Cell results depend only on the cell and the study seed (per-cell seed
sequences, per-net counter-based streams), never on the executor, the worker
or the thread count: that is what makes them bit-identical everywhere.

Both executors record in each result's metadata the cell it was computed
from (``cell_spec``, checked by :mod:`initsim.study.store` on every read).
A Dask task's key is a hash of the cell's whole content, the seed and the
cell function (:func:`task_key`), so studies sharing one scheduler never
receive each other's results; a result for another cell is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from initsim.study.cells import run_cell

__all__ = [
    "DEFAULT_SCHEDULER_TIMEOUT",
    "ClusterTimeoutError",
    "DaskExecutor",
    "LocalExecutor",
    "Outcome",
    "check_scheduler_address",
    "check_scheduler_timeout",
    "make_executor",
    "task_key",
]

#: ``(arrays, meta)`` of a finished cell, or the exception it raised.
Outcome = tuple[dict, dict] | BaseException
CellFn = Callable[[Mapping[str, Any], int, "int | None"], tuple[dict, dict]]


def task_key(cell: Mapping[str, Any], seed: int, fn: CellFn) -> str:
    """Return the Dask task key of a cell: unique to everything that determines its result.

    Parameters
    ----------
    cell : mapping
        The cell as :meth:`~initsim.study.spec.CellSpec.to_dict` gives it.
    seed : int
        The study's seed.
    fn : callable
        The cell function.

    Returns
    -------
    str
        ``initsim-cell-<id>-<sha256 of the seed, the cell and the function's name>``.
    """
    name = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"
    blob = json.dumps(
        {"seed": seed, "cell": cell, "fn": name}, sort_keys=True, separators=(",", ":")
    )
    return f"initsim-cell-{cell['id']}-{hashlib.sha256(blob.encode()).hexdigest()}"


def _computed(cell: Mapping[str, Any], result: tuple[dict, dict]) -> tuple[dict, dict]:
    """Add to a cell's result the cell it was computed from."""
    arrays, meta = result
    return arrays, {**meta, "cell_spec": dict(cell)}


#: Seconds :class:`DaskExecutor` waits for a first worker to join a scheduler.
DEFAULT_SCHEDULER_TIMEOUT = 60.0
#: The most seconds it waits for the scheduler itself to answer.
CONNECT_TIMEOUT = 10.0

_ADDRESS = re.compile(
    r"(?:(?:tcp|tls|ws|wss|ucx)://)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(?P<port>\d{1,5})"
    r"|inproc://\S+"
)


class ClusterTimeoutError(ValueError):
    """No Dask scheduler answered, or no worker joined it, within the timeout."""


def check_scheduler_address(address: Any) -> str:
    """Check the address of a Dask scheduler before connecting to it.

    Parameters
    ----------
    address : str
        ``tcp://HOST:PORT`` (or ``HOST:PORT``; ``tls``, ``ws``, ``wss`` and
        ``ucx`` schemes too).

    Returns
    -------
    str
        The address, stripped of surrounding blanks.

    Raises
    ------
    ValueError
        If it is not such an address (the message shows the expected form).

    Examples
    --------
    >>> check_scheduler_address("tcp://10.0.0.5:8786")
    'tcp://10.0.0.5:8786'
    """
    text = address.strip() if isinstance(address, str) else None
    match = _ADDRESS.fullmatch(text) if text else None
    port = match["port"] if match else None
    if match is None or (port is not None and not 1 <= int(port) <= 65535):
        raise ValueError(
            "scheduler must be the address of a Dask scheduler, tcp://HOST:PORT "
            f"(e.g. tcp://10.0.0.5:8786, as 'dask scheduler' prints it); got {address!r}"
        )
    return text


def check_scheduler_timeout(timeout: Any) -> float:
    """Check how long to wait for a Dask scheduler and its first worker.

    Parameters
    ----------
    timeout : float or None
        Seconds (None: :data:`DEFAULT_SCHEDULER_TIMEOUT`).

    Returns
    -------
    float
        The timeout.

    Raises
    ------
    ValueError
        If it is not a finite number > 0.
    """
    if timeout is None:
        return DEFAULT_SCHEDULER_TIMEOUT
    ok = isinstance(timeout, int | float) and not isinstance(timeout, bool)
    if not ok or not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(f"scheduler_timeout must be a number > 0 (seconds); got {timeout!r}")
    return float(timeout)


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
        """Return a JSON-ready description for the provenance (threads: those cells get)."""
        import numba

        threads = self.threads if self.threads is not None else numba.get_num_threads()
        return {"executor": self.name, "threads": threads}

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
                yield cell["id"], _computed(cell, self.cell_fn(cell, seed, self.threads))
            except Exception as exc:
                yield cell["id"], exc

    def close(self) -> None:
        """Nothing to release."""


def _dask_task(cell: Mapping[str, Any], seed: int, threads: Mapping[str, int], fn: CellFn):
    """Run one cell on a Dask worker with this worker's share of the cores."""
    from distributed import get_worker

    share = threads.get(get_worker().address)
    return _computed(cell, fn(cell, seed, share))


class DaskExecutor:
    """Run cells on a Dask cluster: a new ``LocalCluster`` or an existing scheduler.

    Parameters
    ----------
    workers : int, optional
        Start a ``LocalCluster`` with this many single-threaded worker processes.
    scheduler : str, optional
        Address of a running scheduler (``tcp://HOST:PORT``).
    timeout : float, optional
        Seconds to wait for a first worker to join the scheduler (default
        :data:`DEFAULT_SCHEDULER_TIMEOUT`, 60); connecting to the scheduler
        itself gives up after at most :data:`CONNECT_TIMEOUT` (10) of them.
    retries : int
        How often a failed cell is resubmitted (lost workers' cells are
        rescheduled by Dask itself).
    cell_fn : callable
        The cell function (tests substitute a faulty one).

    Raises
    ------
    ClusterTimeoutError
        If no scheduler answers at ``scheduler``, or no worker joins it in
        time; the message says how to start them.
    ValueError
        If ``scheduler`` is not an address, or ``workers`` not an integer >= 1.

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
        timeout: float | None = None,
    ) -> None:
        if scheduler is not None:
            scheduler = check_scheduler_address(scheduler)
        timeout = check_scheduler_timeout(timeout)
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
                # no dashboard, and the scheduler's HTTP server on a free port: a
                # default 8787 taken by another cluster on the host is not an error
                dashboard_address=":0",
                scheduler_kwargs={"dashboard": False},
                silence_logs=40,
            )
            self.client = Client(self._cluster)
            self.address = self._cluster.scheduler_address
        else:
            connect = min(timeout, CONNECT_TIMEOUT)
            try:
                self.client = Client(scheduler, timeout=connect)
            except (OSError, TimeoutError) as exc:
                why = "" if str(exc).startswith("Timed out") else f" ({exc})"
                raise ClusterTimeoutError(
                    f"cannot connect to the Dask scheduler at {scheduler!r}: no scheduler "
                    f"answered within {connect:g} s{why}; start one with 'dask scheduler' "
                    "(it prints its address) and a worker with 'dask worker ADDRESS', "
                    "or use workers=N (--workers N) for a local cluster"
                ) from None
            self.address = scheduler
        try:
            self.client.wait_for_workers(1, timeout=timeout)
        except TimeoutError:  # distributed's WorkerStartTimeoutError
            self.close()
            raise ClusterTimeoutError(
                f"the Dask scheduler at {self.address!r} answered, but no worker joined "
                f"within {timeout:g} s; start one with 'dask worker {self.address}', "
                "or wait longer (scheduler_timeout, --scheduler-timeout SECONDS)"
            ) from None
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
                key=task_key(cell, seed, self.cell_fn),
                retries=self.retries,
                pure=False,
            )
            futures[fut] = dict(cell)
        for fut in as_completed(futures):
            cell = futures[fut]
            try:
                arrays, meta = fut.result()
            except Exception as exc:
                yield cell["id"], exc
                continue
            if meta.get("cell_spec") != cell:
                yield (
                    cell["id"],
                    RuntimeError(
                        f"the Dask scheduler returned the result of another cell for {cell['id']} "
                        f"(task {fut.key}); not stored"
                    ),
                )
                continue
            yield cell["id"], (arrays, meta)

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
    timeout: float | None = None,
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
    timeout : float, optional
        Seconds to wait for a worker to join ``scheduler`` (see :class:`DaskExecutor`).

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
    return DaskExecutor(workers=workers, scheduler=scheduler, cell_fn=cell_fn, timeout=timeout)
