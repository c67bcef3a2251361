"""Atomic file writes: a temporary file in the destination directory, then ``os.replace``.

Used by the study store (cell files, manifest, CSV) and the report (PDF and
PNGs), so a reader never sees a partial file and an error leaves none behind.
A full disk (``ENOSPC``, or ``EDQUOT`` for a full quota) while writing raises
:class:`DiskFullError`, an :class:`OSError` whose message names the file; the
previous version of that file, if any, is left as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["TMP_PREFIX", "DiskFullError", "atomic_write", "is_disk_full", "temp_file_in"]

#: Name prefix of every temporary file (so leftovers of a killed writer can be found).
TMP_PREFIX = ".initsim-tmp-"

_UMASK = os.umask(0o022)
os.umask(_UMASK)

#: errno values that mean "the file system (or the user's quota) is full".
_FULL = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


class DiskFullError(OSError):
    """Writing a file failed because its file system, or the user's quota, is full.

    Parameters
    ----------
    path : str or Path
        The file that could not be written.
    err : int
        ``errno.ENOSPC`` or ``errno.EDQUOT``.
    hint : str
        What was kept and what to do, appended to the message.

    Examples
    --------
    >>> import errno
    >>> str(DiskFullError("out/manifest.json", errno.ENOSPC))  # doctest: +ELLIPSIS
    "cannot write 'out/manifest.json': the disk is full (...); nothing was half-written..."
    """

    def __init__(self, path: str | Path, err: int = errno.ENOSPC, hint: str = "") -> None:
        what = "the disk quota is full" if err != errno.ENOSPC else "the disk is full"
        super().__init__(err, f"{what} ({os.strerror(err)})", str(path))
        self.hint = hint or "nothing was half-written; free some space and try again"

    def __str__(self) -> str:
        return f"cannot write {self.filename!r}: {self.strerror}; {self.hint}"

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.filename, self.errno, self.hint)


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is an :class:`OSError` saying that the disk or quota is full.

    Parameters
    ----------
    exc : BaseException
        Any exception.

    Returns
    -------
    bool
        True for ``ENOSPC`` and ``EDQUOT``.
    """
    return isinstance(exc, OSError) and exc.errno in _FULL


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
    DiskFullError
        If the directory's file system is full.
    OSError
        If the directory cannot hold a new file (of the same type as the
        original error, with its errno); the message names the directory.
    """
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{name}", dir=directory)
    except OSError as err:
        if is_disk_full(err):
            raise DiskFullError(Path(directory) / name, err.errno) from err
        reason = err.strerror or str(err)
        raise type(err)(
            err.errno, f"cannot create a temporary file in {str(directory)!r}: {reason}"
        ) from err
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

    Raises
    ------
    DiskFullError
        If the disk fills up while writing (in the body, or on flush, fsync or
        move); the temporary file is removed and ``path`` is left as it was.
    IsADirectoryError
        If ``path`` is a directory.
    OSError
        If the directory cannot hold a new file (see :func:`temp_file_in`).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"cannot write {str(path)!r}: it is a directory")
    fd, tmp = temp_file_in(path.parent, path.name)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if is_disk_full(exc) and not isinstance(exc, DiskFullError):
            raise DiskFullError(path, exc.errno) from exc
        raise
