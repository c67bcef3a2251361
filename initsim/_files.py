"""Atomic file writes: a temporary file in the destination directory, then ``os.replace``.

Used by the study store (cell files, manifest, CSV) and the report (PDF and
PNGs), so a reader never sees a partial file and an error leaves none behind.
A full disk (``ENOSPC``, or ``EDQUOT`` for a full quota) while writing raises
:class:`DiskFullError`, an :class:`OSError` whose message names the file; the
previous version of that file, if any, is left as it was.

A writer killed outright (SIGKILL, a power cut) cannot remove its temporary
file; the next write of the same target does (:func:`remove_stale_temporaries`:
only files named for that very target whose writer is gone, never a live
writer's).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: temporary files are not locked
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "STALE_AFTER_S",
    "TMP_PREFIX",
    "DiskFullError",
    "atomic_write",
    "is_disk_full",
    "remove_stale_temporaries",
    "temp_file_in",
]

#: Name prefix of every temporary file (so leftovers of a killed writer can be found).
TMP_PREFIX = ".initsim-tmp-"

#: Age (seconds since its last change) after which a temporary file whose writer
#: cannot be checked -- written on another host, or by an initsim before writers
#: were named -- counts as abandoned. A writer on this host is checked by its pid.
STALE_AFTER_S = 3600.0

#: Longest target name kept whole in a temporary file's name (bytes): the prefix,
#: the writer's tag and mkstemp's random part must fit in 255 bytes.
_MAX_STEM = 200

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


def _host_tag() -> str:
    """Six hex digits naming this host (a pid means something only on its own host)."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def _stem(name: str) -> str:
    """Return the part of a temporary file's name that names its target (long names shortened)."""
    if len(os.fsencode(name)) <= _MAX_STEM:
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:16]
    short = name
    while len(os.fsencode(short)) > _MAX_STEM - 17:
        short = short[:-1]
    return f"{short}~{digest}"


def _writer_gone(host: str, pid: int) -> bool | None:
    """Whether the writer ``pid`` on host ``host`` has ended (None: cannot tell from here)."""
    if host != _host_tag() or pid <= 0:
        return None
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by another user
        return False
    except (OSError, OverflowError):
        return None
    return False


def remove_stale_temporaries(directory: str | Path, name: str) -> int:
    """Remove the temporary files of target ``name`` in ``directory`` left by dead writers.

    A temporary file is removed only if it is named for this very target (not
    for a target whose name merely starts the same), is a regular file, is not
    locked (a live writer holds an ``flock`` on its file while it writes) and
    its writer is gone: its name carries the writer's host and pid, and on
    this host that pid is no longer running. A file whose writer cannot be
    checked (another host, or an older initsim's unnamed writer) is removed
    once it is :data:`STALE_AFTER_S` seconds old. Errors are ignored: cleaning
    up never stops a write.

    Parameters
    ----------
    directory : str or Path
        The target's directory.
    name : str
        The target's file name.

    Returns
    -------
    int
        How many files were removed.
    """
    stem = re.escape(f"{TMP_PREFIX}{_stem(name)}")
    named = re.compile(rf"{stem}\.(?P<host>[0-9a-f]{{6}})-(?P<pid>\d{{1,10}})\.[A-Za-z0-9_]+")
    # an older initsim named no writer: the target's name, then mkstemp's 8 characters
    legacy = re.compile(rf"{re.escape(TMP_PREFIX + name)}[a-z0-9_]{{8}}")
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0
    now = time.time()
    for entry in entries:
        m = named.fullmatch(entry.name)
        if m is None and legacy.fullmatch(entry.name) is None:
            continue
        with contextlib.suppress(OSError):
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                continue
            gone = _writer_gone(m["host"], int(m["pid"])) if m else None
            if gone is False or (gone is None and now - st.st_mtime < STALE_AFTER_S):
                continue
            removed += _unlink_unlocked(Path(entry.path))
    return removed


def _unlink_unlocked(path: Path) -> int:
    """Unlink ``path`` unless a writer holds its lock; return 1 if removed."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # a live writer (perhaps on another host) still has it open
            except OSError:
                pass  # no locks on this file system: the writer's name and age decide
        path.unlink()  # while holding the lock: no writer can be inside it
        return 1
    finally:
        os.close(fd)


def temp_file_in(directory: Path, name: str = "", *, clean: bool = True) -> tuple[int, Path]:
    """Create a temporary file in ``directory`` with the permissions ``open()`` would give.

    The file is named ``.initsim-tmp-<name>.<host>-<pid>.<random>`` (the
    writer's host and pid, so a later write can tell an abandoned file from a
    live one) and locked (``flock``) until its descriptor is closed.

    Parameters
    ----------
    directory : Path
        Where the final file will live (same file system, so ``os.replace`` is atomic).
    name : str
        The final file's name (shortened in the temporary name when very long).
    clean : bool
        First remove the temporary files of ``name`` that dead writers left
        (:func:`remove_stale_temporaries`); a caller that sweeps a whole
        directory itself (the study store, under its run lock) passes False.

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
    if clean and name:
        remove_stale_temporaries(directory, name)
    prefix = f"{TMP_PREFIX}{_stem(name)}.{_host_tag()}-{os.getpid()}."
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, dir=directory)
    except OSError as err:
        if is_disk_full(err):
            raise DiskFullError(Path(directory) / name, err.errno) from err
        reason = err.strerror or str(err)
        raise type(err)(
            err.errno, f"cannot create a temporary file in {str(directory)!r}: {reason}"
        ) from err
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600
    if fcntl is not None:
        with contextlib.suppress(OSError):  # no locks here: the pid in the name still tells
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd, Path(tmp)


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "wb", *, clean: bool = True) -> Iterator[Any]:
    """Write ``path`` through a temporary file moved into place only on success.

    Parameters
    ----------
    path : Path
        The final file.
    mode : str
        ``"wb"`` or ``"w"``.
    clean : bool
        First remove temporary files of ``path`` left by writers that were
        killed (see :func:`temp_file_in`).

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
    fd, tmp = temp_file_in(path.parent, path.name, clean=clean)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
            os.replace(tmp, path)  # still open, hence locked: never taken for abandoned
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if is_disk_full(exc) and not isinstance(exc, DiskFullError):
            raise DiskFullError(path, exc.errno) from exc
        raise
