"""The results directory of a study: a manifest plus one atomic file per cell.

Layout::

    DIR/manifest.json      spec sha256, canonical spec, seed, cells and spawn keys, versions
    DIR/spec.toml          the TOML the study was run from (for people)
    DIR/cells/<id>.npz     one file per finished cell

Every file is written to a temporary file in the same directory, flushed to
disk and moved into place with :func:`os.replace`, so a reader (or a resumed
run after SIGKILL) only ever sees complete files. Cell files are ``.npz``
written through a file handle with ``allow_pickle=False`` on reading: plain
arrays plus one JSON string ``__meta__`` holding the cell's id, the spec
hash, the provenance, the check verdicts and a sha256 of the arrays, so a
truncated or altered file is detected and recomputed rather than trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from initsim._files import TMP_PREFIX, atomic_write, temp_file_in

__all__ = [
    "CorruptCellError",
    "ResultsDir",
    "StoreError",
    "arrays_sha256",
]

MANIFEST = "manifest.json"
SPEC_COPY = "spec.toml"
CELLS = "cells"
_META = "__meta__"


class StoreError(ValueError):
    """A results directory cannot be used (unwritable, foreign, or another spec's)."""


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


def _write_json(path: Path, data: Any) -> None:
    with atomic_write(path, "w") as fh:
        # key order kept: grid axes expand in file order
        json.dump(data, fh, indent=1)
        fh.write("\n")


class ResultsDir:
    """A study's results directory.

    Parameters
    ----------
    path : str or Path
        The directory (created by :meth:`prepare`).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def manifest_path(self) -> Path:
        """``DIR/manifest.json``."""
        return self.path / MANIFEST

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

    def prepare(self, manifest: Mapping[str, Any], spec_text: str | None) -> None:
        """Create the directory (or accept an existing one of the same spec) for writing.

        Parameters
        ----------
        manifest : mapping
            The manifest of the study about to run (must hold ``spec_sha256``).
        spec_text : str or None
            The TOML source, copied next to the results for people.

        Raises
        ------
        StoreError
            If the directory cannot be created or written, is not a results
            directory, or holds results of a different spec.
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
            if spec_text is not None:
                with atomic_write(self.path / SPEC_COPY, "w") as fh:
                    fh.write(spec_text)
        self.remove_temporaries()

    def remove_temporaries(self) -> None:
        """Delete temporary files left by an interrupted writer."""
        for folder in (self.path, self.path / CELLS):
            for tmp in folder.glob(f"{TMP_PREFIX}*"):
                with contextlib.suppress(OSError):
                    tmp.unlink()

    # -- cells ---------------------------------------------------------------------

    def write_cell(
        self, cell_id: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]
    ) -> None:
        """Write one cell atomically.

        Parameters
        ----------
        cell_id : str
            The cell's id.
        arrays : mapping of str to numpy.ndarray
            Numeric arrays (no object dtype).
        meta : mapping
            JSON-ready metadata; ``cell``, ``sha256`` are added here.
        """
        record = {**meta, "cell": cell_id, "sha256": arrays_sha256(arrays)}
        payload = {name: np.asarray(a) for name, a in arrays.items()}
        payload[_META] = np.array(json.dumps(record, sort_keys=True))
        with atomic_write(self.cell_path(cell_id)) as fh:
            np.savez(fh, allow_pickle=False, **payload)

    def read_cell(self, cell_id: str, spec_sha256: str) -> tuple[dict[str, np.ndarray], dict]:
        """Load and verify one cell.

        Parameters
        ----------
        cell_id : str
            The cell's id.
        spec_sha256 : str
            The study's spec hash; a cell written for another spec is rejected.

        Returns
        -------
        arrays : dict of numpy.ndarray
            The cell's arrays.
        meta : dict
            Its metadata (provenance, checks, sha256).

        Raises
        ------
        FileNotFoundError
            If the cell has not been written.
        CorruptCellError
            If the file is truncated, unreadable, altered, or not this cell's.
        """
        path = self.cell_path(cell_id)
        try:
            # our own handle: np.load leaks its file when the zip is truncated
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
                data = {name: npz[name] for name in npz.files}
        except FileNotFoundError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            raise CorruptCellError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None
        try:
            meta = json.loads(str(data.pop(_META)))
        except (KeyError, ValueError) as exc:
            raise CorruptCellError(f"{path}: no valid metadata ({exc})") from None
        if meta.get("cell") != cell_id or meta.get("spec_sha256") != spec_sha256:
            raise CorruptCellError(f"{path}: written for another cell or spec")
        if meta.get("sha256") != arrays_sha256(data):
            raise CorruptCellError(f"{path}: arrays do not match their recorded sha256")
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
