"""The results directory of a study: a manifest plus one atomic file per cell.

Layout::

    DIR/manifest.json      spec sha256, canonical spec, seed, cells and spawn keys, versions
    DIR/spec.toml          the TOML the study was run from (for people)
    DIR/run.lock           locked by the run in progress (its pid, host and start time)
    DIR/cells/<id>.npz     one file per finished cell (its arrays and what they are)
    DIR/cells/<id>.run.json  how the cell ran: seconds, threads, threading layer, when

Every file is written to a temporary file in the same directory, flushed to
disk and moved into place with :func:`os.replace`, so a reader (or a resumed
run after SIGKILL) only ever sees complete files. Cell files are ``.npz``
written through a file handle with ``allow_pickle=False`` on reading: plain
arrays plus one JSON string ``__meta__`` holding the cell's id, the spec
hash, the provenance, the check verdicts, the cell spec it was computed
from (``cell_spec``) and a sha256 of the arrays.

A cell file holds only what the cell's numbers determine, and is written
deterministically (members sorted by name, fixed zip timestamps), so the
same cell computed twice -- on 1 or 2 threads, resumed after a kill, on a
Dask worker -- gives a byte-identical file. How long it took and on how
many threads (:data:`RUN_KEYS`) go to the sidecar ``<id>.run.json``, which
no checksum covers: a missing or stale sidecar leaves the cell valid (its
run facts unknown), and :meth:`ResultsDir.read_cell` puts them back into
the provenance it returns.

A cell is valid only if its file decodes, its arrays match their sha256 and
it was computed for this very cell: the seed and spawn key of its provenance,
and its recorded cell spec, must equal the cell's entry in the manifest's
canonical spec (cells written before ``cell_spec`` was recorded: their
provenance ``config`` must equal the one the cell's parameters give). Any
other file -- truncated, altered, undecodable, another study's, a directory
-- is corrupt: reported, and recomputed by the next run.

One run at a time writes a directory: :meth:`ResultsDir.prepare` takes an
exclusive :func:`fcntl.flock` on ``run.lock`` (released by
:meth:`ResultsDir.unlock`, or by the kernel when the process dies, even by
SIGKILL), and leftover temporary files are removed only while holding it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import socket
import stat
import sys
import time
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from initsim._files import TMP_PREFIX, atomic_write, temp_file_in

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: runs are not locked
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "RUN_KEYS",
    "CorruptCellError",
    "ResultsDir",
    "StoreError",
    "arrays_sha256",
    "run_facts",
    "write_npz",
]

MANIFEST = "manifest.json"
SPEC_COPY = "spec.toml"
LOCK = "run.lock"
CELLS = "cells"
_META = "__meta__"
RUN_SUFFIX = ".run.json"
#: Provenance keys that say how a cell ran, not what it computed: kept out of the cell
#: file (which stays byte-identical between runs) and stored in its ``.run.json``.
RUN_KEYS = ("elapsed_s", "threads", "threading_layer")
#: Timestamp of every member of a cell file (the earliest a zip can hold).
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
#: File systems that cannot lock: the run goes on unlocked (and removes no temporaries).
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EINVAL}


class StoreError(ValueError):
    """A results directory cannot be used (unwritable, foreign, another spec's, or in use)."""


class CorruptCellError(ValueError):
    """A cell file is truncated, unreadable or does not belong to this study."""


def arrays_sha256(arrays: Mapping[str, np.ndarray]) -> str:
    """Return a sha256 over names, dtypes, shapes and bytes of ``arrays`` (sorted by name).

    Parameters
    ----------
    arrays : mapping of str to numpy.ndarray
        The arrays of one cell.

    Returns
    -------
    str
        Hex digest; equal digests mean bit-identical arrays.
    """
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def write_npz(fh: Any, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as an ``.npz`` that depends on nothing but the arrays.

    :func:`numpy.savez` stamps each member with the current time, so two
    writes of equal arrays differ; here members are sorted by name, stored
    uncompressed with a fixed timestamp and permissions, and hold the same
    ``.npy`` bytes :func:`numpy.savez` would write (:func:`numpy.load` reads it).

    Parameters
    ----------
    fh : binary file
        A writable, seekable file.
    arrays : mapping of str to numpy.ndarray
        Member name (without ``.npy``) -> array; object arrays are refused.
    """
    with zipfile.ZipFile(fh, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3  # unix, wherever it is written
            info.external_attr = 0o100644 << 16
            # force_zip64 as numpy does: the size is not known before writing
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(arrays[name]), allow_pickle=False)


def run_facts(runs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Summarise how cells ran, from what each cell recorded (:data:`RUN_KEYS`).

    Parameters
    ----------
    runs : iterable of mapping
        Per cell, its run facts (a sidecar, or a provenance that holds them).

    Returns
    -------
    dict
        ``threading_layer`` (the layers the cells used, ``", "``-joined;
        ``"unset"`` only if no cell ran a parallel region), ``threads`` (the
        count, or ``"1 to 4"`` when cells differ), and ``cells_run``: how
        many cells say how they ran, their thread counts and layers (no
        timings: those stay in each cell's sidecar). Empty if no cell says.
    """
    known = [r for r in runs if any(k in r for k in RUN_KEYS)]
    if not known:
        return {}
    layers = sorted({str(r["threading_layer"]) for r in known if r.get("threading_layer")})
    used = [x for x in layers if x != "unset"]
    threads = sorted(
        {int(r["threads"]) for r in known if isinstance(r.get("threads"), int | np.integer)}
    )
    facts: dict[str, Any] = {}
    if layers:
        facts["threading_layer"] = ", ".join(used or layers)
    if threads:
        facts["threads"] = threads[0] if len(threads) == 1 else f"{threads[0]} to {threads[-1]}"
    # no timings: the same cells give the same facts (and the same report)
    facts["cells_run"] = {"cells": len(known), "threads": threads, "threading_layers": layers}
    return facts


def _write_json(path: Path, data: Any) -> None:
    with atomic_write(path, "w") as fh:
        # key order kept: grid axes expand in file order
        json.dump(data, fh, indent=1)
        fh.write("\n")


def _canonical_sha256(canonical: Any) -> str:
    """Return the hash of a canonical spec (as :attr:`~initsim.study.spec.StudySpec.sha256`)."""
    blob = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _as_json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, and so on)."""
    from initsim.provenance import json_safe

    return json.loads(json.dumps(json_safe(value)))


def _difference(got: Any, want: Any, where: str = "") -> str:
    """Name the first place where two JSON values differ."""
    if isinstance(got, dict) and isinstance(want, dict):
        for key in sorted(set(got) | set(want)):
            if got.get(key, "<absent>") != want.get(key, "<absent>"):
                return _difference(
                    got.get(key, "<absent>"), want.get(key, "<absent>"), f"{where}.{key}"
                )
    return f"{where.lstrip('.') or 'value'} {got!r}, the spec's {want!r}"


def _named(module: Any, value: Any) -> Any:
    if isinstance(value, Mapping):
        return module.get(value["name"], **{k: v for k, v in value.items() if k != "name"})
    return module.get(value)


def _expected_config(cell: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return the provenance ``config`` that computing ``cell`` records (None: no rule for it).

    Only cells without a recorded ``cell_spec`` (written before it was) are
    checked this way; the config is rebuilt with the same plan the runner uses.
    """
    from initsim import activations, initializers, keywords
    from initsim.plan import make_plan

    kind, params = cell["kind"], dict(cell["params"])
    if kind == "train":
        return dict(params)
    if kind not in ("simulate", "jacobian"):
        return None
    if kind == "jacobian":  # jacobian_spectrum's own defaults, and the dense sampler's plan
        required = keywords.JACOBIAN_REQUIRED
        params = {k: kw.default for k, kw in keywords.JACOBIAN.items() if k not in required}
        params.update(cell["params"])
        params["method"] = "dense"
    for key, module in (("activation", activations), ("init", initializers)):
        if key in params:
            params[key] = _named(module, params[key])
    plan = make_plan(**params)
    if kind == "simulate":
        return plan.simulate_config()
    return {"quantity": "jacobian_spectrum", **plan.net_config(), **plan.input_config()}


def _provenance_problem(meta: Mapping[str, Any], seed: str, cell: Mapping[str, Any]) -> str | None:
    """Return why ``meta`` is not that of ``cell`` computed from ``seed`` (None: it is)."""
    prov = meta.get("provenance")
    if not isinstance(prov, dict):
        return "no provenance record"
    checks = meta.get("checks")
    if checks is not None and not (
        isinstance(checks, dict) and isinstance(checks.get("verdict"), str)
    ):
        return "malformed check verdicts"
    if str(prov.get("seed_entropy")) != seed or prov.get("spawn_key") != cell["spawn_key"]:
        return (
            f"computed from seed {prov.get('seed_entropy')} stream {prov.get('spawn_key')}, "
            f"not this cell's seed {seed} stream {cell['spawn_key']}"
        )
    recorded = meta.get("cell_spec")
    if recorded is not None:
        if recorded != cell:
            return f"computed for another cell: {_difference(recorded, cell)}"
        return None
    # written before the cell spec was recorded: the provenance config must be this cell's
    config = prov.get("config")
    if not isinstance(config, dict):
        return "no config in its provenance"
    try:
        expected = _expected_config(cell)
    except Exception as exc:  # parameters this version cannot plan: cannot vouch for the cell
        return f"its parameters cannot be checked ({type(exc).__name__}: {exc})"
    if expected is None:
        return None
    expected = _as_json(expected)
    if cell["kind"] == "train":
        return None if config == expected else f"stored config {_difference(config, expected)}"
    shared = set(config) & set(expected)
    if not {"widths", "nets", "activation", "init"} <= shared:
        return "its provenance config lacks the net's widths, nets, activation or init"
    for key in sorted(shared):
        if config[key] != expected[key]:
            return f"stored config {_difference(config[key], expected[key], key)}"
    return None


class ResultsDir:
    """A study's results directory.

    Parameters
    ----------
    path : str or Path
        The directory (created by :meth:`prepare`).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None
        # (spec sha256, seed entropy, cells by id) from the manifest's canonical spec
        self._expected: tuple[str, str, dict[str, Any]] | None = None

    @property
    def manifest_path(self) -> Path:
        """``DIR/manifest.json``."""
        return self.path / MANIFEST

    @property
    def lock_path(self) -> Path:
        """``DIR/run.lock``."""
        return self.path / LOCK

    def cell_path(self, cell_id: str) -> Path:
        """Return the file of cell ``cell_id``.

        Parameters
        ----------
        cell_id : str
            The cell's id.

        Returns
        -------
        Path
            ``DIR/cells/<cell_id>.npz``.
        """
        return self.path / CELLS / f"{cell_id}.npz"

    # -- manifest ------------------------------------------------------------------

    def read_manifest(self) -> dict[str, Any]:
        """Load the manifest.

        Returns
        -------
        dict
            The manifest.

        Raises
        ------
        StoreError
            If the directory is missing or is not an initsim results directory.
        """
        if not self.path.is_dir():
            raise StoreError(f"results directory {str(self.path)!r} does not exist")
        try:
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StoreError(
                f"{str(self.path)!r} is not an initsim results directory (no {MANIFEST})"
            ) from None
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read {str(self.manifest_path)!r}: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != "initsim-study/1":
            raise StoreError(
                f"{str(self.manifest_path)!r} is not an initsim study manifest "
                "(format 'initsim-study/1')"
            )
        return manifest

    def prepare(
        self, manifest: Mapping[str, Any], spec_text: str | None, *, wait: bool = False
    ) -> None:
        """Lock the directory and create it (or accept an existing one of the same spec).

        The lock is held until :meth:`unlock` (or this process's end). Under
        it, a missing manifest or spec copy is (re)written and temporary files
        left by an interrupted writer are removed.

        Parameters
        ----------
        manifest : mapping
            The manifest of the study about to run (must hold ``spec_sha256``).
        spec_text : str or None
            The TOML source, copied next to the results for people.
        wait : bool
            If another run holds the directory, wait for it to end instead of failing.

        Raises
        ------
        StoreError
            If the directory cannot be created or written, is not a results
            directory, holds results of a different spec, or (``wait=False``)
            another run is using it; the lock is not held then.
        """
        try:
            (self.path / CELLS).mkdir(parents=True, exist_ok=True)
            fd, probe = temp_file_in(self.path / CELLS, "probe")
            os.close(fd)
            probe.unlink()
        except OSError as exc:
            raise StoreError(
                f"cannot write results to {str(self.path)!r}: {exc.strerror or exc}; "
                "choose another directory with --out"
            ) from None
        self.lock(wait=wait)
        try:
            if self.manifest_path.exists():
                old = self.read_manifest()
                if old.get("spec_sha256") != manifest["spec_sha256"]:
                    raise StoreError(
                        f"{str(self.path)!r} holds results of a different spec "
                        f"(sha256 {str(old.get('spec_sha256'))[:12]}..., this spec "
                        f"{manifest['spec_sha256'][:12]}...); results of two specs are never "
                        "mixed: use a new --out directory"
                    )
            else:
                _write_json(self.manifest_path, dict(manifest))
            if spec_text is not None and not (self.path / SPEC_COPY).exists():
                with atomic_write(self.path / SPEC_COPY, "w") as fh:
                    fh.write(spec_text)
            self.remove_temporaries()
        except BaseException:
            if self.locked and not self.manifest_path.exists():
                # not a results directory (yet): leave nothing of ours; unlinked while
                # held, so a run waiting on this file finds it gone and locks a new one
                with contextlib.suppress(OSError):
                    self.lock_path.unlink()
            self.unlock()
            raise

    def record_run_facts(self, facts: Mapping[str, Any]) -> None:
        """Write into the manifest's provenance how the cells ran (:func:`run_facts`).

        Called by a run that holds the lock, once its cells are written: the
        threading layer and thread counts are those the cells reported (a
        process knows its threading layer only once a parallel region ran).

        Parameters
        ----------
        facts : mapping
            ``threading_layer``, ``threads``, ``cells_run``; nothing is written if empty.
        """
        if not facts:
            return
        manifest = self.read_manifest()
        prov = manifest.get("provenance")
        prov = dict(prov) if isinstance(prov, Mapping) else {}
        if all(prov.get(k) == _as_json(v) for k, v in facts.items()):
            return  # as recorded: no rewrite
        prov.update(facts)
        manifest["provenance"] = prov
        _write_json(self.manifest_path, manifest)

    # -- the run lock --------------------------------------------------------------

    @property
    def locked(self) -> bool:
        """Whether this object holds the directory's run lock."""
        return self._lock_fd is not None

    def holder(self) -> str:
        """Describe the run named in the lock file (``"pid P on H since T"``), as far as known.

        Returns
        -------
        str
            The description, or ``"holder unknown"``.
        """
        try:
            info = json.loads(self.lock_path.read_text(encoding="utf-8"))
            return f"pid {int(info['pid'])} on {info['host']} since {info['started']}"
        except (OSError, ValueError, TypeError, KeyError):
            return "holder unknown"

    def lock(self, *, wait: bool = False) -> None:
        """Take the directory's run lock (an exclusive ``flock`` on ``run.lock``).

        Parameters
        ----------
        wait : bool
            Wait for another run to release it, instead of failing.

        Raises
        ------
        StoreError
            If another run holds it and ``wait`` is False (the message names
            that run's pid and host), or the lock file cannot be created.
        """
        if self._lock_fd is not None or fcntl is None:
            return
        told = False
        while True:
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            except OSError as exc:
                raise StoreError(
                    f"cannot write results to {str(self.path)!r}: {exc.strerror or exc}"
                ) from None
            try:
                state = self._flock(fd, wait=wait, told=told)
            except BaseException:
                os.close(fd)
                raise
            if state == "held":
                self._lock_fd = fd
                return
            os.close(fd)
            if state == "unsupported":
                return  # no locks on this file system: run as before, unlocked
            told = True  # the lock file was removed while we waited: lock the new one

    def _flock(self, fd: int, *, wait: bool, told: bool) -> str:
        """Lock ``fd``: ``"held"``, ``"moved"`` (no longer the lock file) or ``"unsupported"``."""
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    raise StoreError(
                        f"{str(self.path)!r} is in use by another run ({self.holder()}); "
                        "wait for it to end, or run again with --wait"
                    ) from None
                if not told:
                    print(
                        f"waiting for the run using {str(self.path)!r} ({self.holder()})",
                        file=sys.stderr,
                        flush=True,
                    )
                fcntl.flock(fd, fcntl.LOCK_EX)
            mine = os.fstat(fd)
            try:
                now = os.stat(self.lock_path)
            except FileNotFoundError:
                return "moved"
            if (now.st_dev, now.st_ino) != (mine.st_dev, mine.st_ino):
                return "moved"
            record = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        except OSError as exc:
            if exc.errno in _NO_LOCKS:
                return "unsupported"
            raise StoreError(f"cannot lock {str(self.lock_path)!r}: {exc}") from None
        return "held"

    def unlock(self) -> None:
        """Release the run lock (nothing if not held)."""
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # names no holder any more
            os.close(fd)  # releases the flock

    def remove_temporaries(self) -> int:
        """Delete temporary files left by an interrupted writer.

        Only while holding the run lock (taken for the sweep if free): a
        temporary file of a live run is never touched.

        Returns
        -------
        int
            How many files were removed (0 when another run holds the lock).
        """
        held = self.locked
        if not held:
            try:
                self.lock()
            except StoreError:
                return 0
            if not self.locked:
                return 0
        removed = 0
        try:
            candidates = [
                *self.path.glob(f"{TMP_PREFIX}{MANIFEST}*"),
                *self.path.glob(f"{TMP_PREFIX}{SPEC_COPY}*"),
                *(self.path / CELLS).glob(f"{TMP_PREFIX}*"),
            ]
            for tmp in candidates:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                    removed += 1
        finally:
            if not held:
                self.unlock()
        return removed

    # -- cells ---------------------------------------------------------------------

    def run_path(self, cell_id: str) -> Path:
        """Return the sidecar of cell ``cell_id`` (how it ran; no checksum covers it).

        Parameters
        ----------
        cell_id : str
            The cell's id.

        Returns
        -------
        Path
            ``DIR/cells/<cell_id>.run.json``.
        """
        return self.path / CELLS / f"{cell_id}{RUN_SUFFIX}"

    def write_cell(
        self, cell_id: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]
    ) -> None:
        """Write one cell's ``.run.json``, then the cell file, each atomically.

        The provenance keys of :data:`RUN_KEYS` and ``meta["run"]`` go to the
        sidecar; the cell file holds the rest, written by :func:`write_npz`,
        so equal cells give equal bytes. A directory (or anything else that
        is not a file) in the cell file's place is moved aside to
        ``<id>.npz.damaged-<time>`` first.

        Parameters
        ----------
        cell_id : str
            The cell's id.
        arrays : mapping of str to numpy.ndarray
            Numeric arrays (no object dtype).
        meta : mapping
            JSON-ready metadata; ``cell``, ``sha256`` are added here.
        """
        meta = dict(meta)
        run = dict(meta.pop("run", None) or {})
        if isinstance(meta.get("provenance"), Mapping):
            prov = dict(meta["provenance"])
            for key in RUN_KEYS:
                if key in prov:
                    run.setdefault(key, prov.pop(key))
            meta["provenance"] = prov
        sha = arrays_sha256(arrays)
        record = {**meta, "cell": cell_id, "sha256": sha}
        payload = {name: np.asarray(a) for name, a in arrays.items()}
        payload[_META] = np.array(json.dumps(record, sort_keys=True))
        path = self.cell_path(cell_id)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISDIR(path.lstat().st_mode):
                path.rename(path.with_name(f"{path.name}.damaged-{time.time_ns()}"))
        sidecar = {
            "cell": cell_id,
            "spec_sha256": meta.get("spec_sha256"),
            "sha256": sha,
            **run,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        # the sidecar first: a cell file on disk always has its own (a kill in between
        # leaves a sidecar of no cell, replaced when the cell is computed again); the run
        # sweeps cells/ under its lock, so no per-file sweep (each would list cells/)
        run_path = self.run_path(cell_id)
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISREG(run_path.lstat().st_mode):
                run_path.rename(run_path.with_name(f"{run_path.name}.damaged-{time.time_ns()}"))
        with atomic_write(run_path, "w", clean=False) as fh:
            json.dump(sidecar, fh, sort_keys=True)
            fh.write("\n")
        with atomic_write(path, clean=False) as fh:
            write_npz(fh, payload)

    def read_run(self, cell_id: str, meta: Mapping[str, Any]) -> dict[str, Any]:
        """Return how cell ``cell_id`` ran, from its sidecar (``{}`` if missing or stale).

        Parameters
        ----------
        cell_id : str
            The cell's id.
        meta : mapping
            The cell's verified metadata (:meth:`read_cell`): a sidecar
            written for other arrays or another spec is ignored (only the
            ``cell``, ``spec_sha256`` and ``sha256`` that ``meta`` holds are
            compared).

        Returns
        -------
        dict
            ``elapsed_s``, ``threads``, ``threading_layer``, ``finished`` and
            whatever else the run recorded; empty when unknown.
        """
        try:
            with open(self.run_path(cell_id), encoding="utf-8") as fh:
                run = json.load(fh)
        except (OSError, ValueError):
            return {}
        if not isinstance(run, dict) or any(
            k in meta and run.get(k) != meta[k] for k in ("cell", "spec_sha256", "sha256")
        ):
            return {}
        return run

    def _expected_cell(self, cell_id: str, spec_sha256: str) -> tuple[str, dict[str, Any]]:
        """Return the seed and canonical cell ``cell_id`` of the manifest (spec ``spec_sha256``)."""
        if self._expected is None or self._expected[0] != spec_sha256:
            manifest = self.read_manifest()
            canonical = manifest.get("canonical_spec")
            if manifest.get("spec_sha256") != spec_sha256:
                raise StoreError(
                    f"{str(self.path)!r} holds results of a different spec "
                    f"(sha256 {str(manifest.get('spec_sha256'))[:12]}..., this spec "
                    f"{spec_sha256[:12]}...)"
                )
            try:
                if _canonical_sha256(canonical) != spec_sha256:
                    raise ValueError
                cells = {c["id"]: c for c in canonical["cells"]}
                seed = str(canonical["seed"])
            except (ValueError, TypeError, KeyError):
                raise StoreError(
                    f"{str(self.manifest_path)!r}: its canonical spec does not match its sha256 "
                    "(edited by hand, or written by an incompatible initsim)"
                ) from None
            self._expected = (spec_sha256, seed, cells)
        _, seed, cells = self._expected
        if cell_id not in cells:
            raise CorruptCellError(f"{self.cell_path(cell_id)}: not a cell of this study")
        return seed, cells[cell_id]

    def read_cell(self, cell_id: str, spec_sha256: str) -> tuple[dict[str, np.ndarray], dict]:
        """Load and verify one cell.

        Parameters
        ----------
        cell_id : str
            The cell's id.
        spec_sha256 : str
            The study's spec hash (that of the directory's manifest); a cell
            written for another spec, or computed for another cell, is rejected.

        Returns
        -------
        arrays : dict of numpy.ndarray
            The cell's arrays.
        meta : dict
            Its metadata (provenance, checks, sha256); ``run`` holds its
            sidecar (:meth:`read_run`), whose :data:`RUN_KEYS` are also put
            back into the provenance.

        Raises
        ------
        FileNotFoundError
            If the cell has not been written.
        CorruptCellError
            If the file is truncated, unreadable, altered, not this cell's,
            or not a regular file.
        StoreError
            If the manifest is unreadable or is another spec's.
        """
        path = self.cell_path(cell_id)
        seed, cell = self._expected_cell(cell_id, spec_sha256)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise CorruptCellError(f"{path}: unreadable ({exc.strerror or exc})") from None
        if not stat.S_ISREG(mode):
            raise CorruptCellError(f"{path}: not a regular file")
        try:
            # our own handle: np.load leaks its file when the zip is truncated
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
                data = {name: npz[name] for name in npz.files}
        except FileNotFoundError:
            raise
        except Exception as exc:  # whatever an undecodable file makes the decoders raise
            raise CorruptCellError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None
        try:
            raw = data.pop(_META)
            if not isinstance(raw, np.ndarray) or raw.shape != () or raw.dtype.kind != "U":
                raise ValueError("not a JSON string")
            meta = json.loads(str(raw))
            if not isinstance(meta, dict):
                raise ValueError(f"a JSON {type(meta).__name__}, not an object")
        except (KeyError, ValueError) as exc:
            raise CorruptCellError(f"{path}: no valid metadata ({exc})") from None
        if meta.get("cell") != cell_id or meta.get("spec_sha256") != spec_sha256:
            raise CorruptCellError(f"{path}: written for another cell or spec")
        if any(not isinstance(a, np.ndarray) or a.dtype.hasobject for a in data.values()):
            raise CorruptCellError(f"{path}: holds something other than numeric arrays")
        if meta.get("sha256") != arrays_sha256(data):
            raise CorruptCellError(f"{path}: arrays do not match their recorded sha256")
        problem = _provenance_problem(meta, seed, cell)
        if problem is not None:
            raise CorruptCellError(f"{path}: not this cell's result ({problem})")
        run = self.read_run(cell_id, meta)
        if run:
            prov = meta["provenance"]
            for key in RUN_KEYS:
                if key in run:
                    prov.setdefault(key, run[key])
        meta["run"] = run
        return data, meta

    def cell_state(self, cell_id: str, spec_sha256: str) -> str:
        """Return ``"done"``, ``"missing"`` or ``"corrupt"`` for one cell.

        Parameters
        ----------
        cell_id : str
            The cell's id.
        spec_sha256 : str
            The study's spec hash.

        Returns
        -------
        str
            The cell's state.
        """
        try:
            self.read_cell(cell_id, spec_sha256)
        except FileNotFoundError:
            return "missing"
        except CorruptCellError:
            return "corrupt"
        return "done"
