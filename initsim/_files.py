"""Atomic file writes: a temporary file in the destination directory, then ``os.replace``.

Used by the study store (cell files, manifest, CSV) and the report (PDF and
PNGs), so a reader never sees a partial file and an error leaves none behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["TMP_PREFIX", "atomic_write", "temp_file_in"]

#: Name prefix of every temporary file (so leftovers of a killed writer can be found).
TMP_PREFIX = ".initsim-tmp-"

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def temp_file_in(directory: Path, name: str = "") -> tuple[int, Path]:
    """Create a temporary file in ``directory`` with the permissions ``open()`` would give.

    Parameters
    ----------
    directory : Path
        Where the final file will live (same file system, so ``os.replace`` is atomic).
    name : str
        Part of the temporary name, for people looking at the directory.

    Returns
    -------
    fd : int
        An open descriptor of the file.
    path : Path
        The temporary file.

    Raises
    ------
    OSError
        If the directory cannot hold a new file; the message names it.
    """
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{name}", dir=directory)
    except OSError as err:
        raise OSError(f"cannot create a temporary file in {str(directory)!r}: {err}") from err
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600
    return fd, Path(tmp)


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "wb") -> Iterator[Any]:
    """Write ``path`` through a temporary file moved into place only on success.

    Parameters
    ----------
    path : Path
        The final file.
    mode : str
        ``"wb"`` or ``"w"``.

    Yields
    ------
    file
        The open temporary file; flushed and fsynced before the move.
    """
    fd, tmp = temp_file_in(path.parent, path.name)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
