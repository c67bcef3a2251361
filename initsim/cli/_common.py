"""Options and argument types shared by the subcommands (declared once here).

Nothing here imports numpy or numba: building the parser must stay instant.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

__all__ = [
    "add_json",
    "add_scheduler_timeout",
    "add_seed",
    "add_threads",
    "check_output_file",
    "int_list",
    "positive_float",
    "positive_int",
]


def positive_int(text: str) -> int:
    """Argument type: an integer >= 1.

    Parameters
    ----------
    text : str
        The command-line text.

    Returns
    -------
    int
        The value.

    Raises
    ------
    argparse.ArgumentTypeError
        If the text is not a positive integer.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    """Argument type: a finite number > 0.

    Parameters
    ----------
    text : str
        The command-line text.

    Returns
    -------
    float
        The value.

    Raises
    ------
    argparse.ArgumentTypeError
        If the text is not a finite positive number.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def check_output_file(path: str | Path, option: str) -> Path:
    """Check, before any work, that the file ``path`` given by ``option`` can be written.

    Parameters
    ----------
    path : str or Path
        The file to write (it may exist: it is then replaced).
    option : str
        The option that named it (``--csv``, ``-o/--output``), for the message.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        If ``path`` is a directory, its directory does not exist (or is a
        file), or either cannot be written; the message names the path.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option}: {str(path)!r} is a directory; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        why = f" ({str(parent)!r} is not a directory)" if parent.exists() else ""
        raise ValueError(f"{option}: directory {str(parent)!r} does not exist{why}")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"{option}: cannot write {str(path)!r} (permission denied)")
    return path


def int_list(text: str) -> int | list[int]:
    """Argument type: an integer, or a comma- or space-separated list of integers.

    Parameters
    ----------
    text : str
        The command-line text.

    Returns
    -------
    int or list of int
        One integer when one is given, else the list.

    Raises
    ------
    argparse.ArgumentTypeError
        If any part is not an integer, or nothing is given.
    """
    parts = [p for p in text.replace(",", " ").split() if p]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer or a comma-separated list of integers, got {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one width")
    return values[0] if len(values) == 1 else values


def add_seed(p: argparse.ArgumentParser) -> None:
    """Add ``--seed`` (default 0).

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    """
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")


def add_threads(p: argparse.ArgumentParser, help: str = "numba threads (default all)") -> None:
    """Add ``--threads`` (default: every Numba thread).

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    help : str
        The option's help text.
    """
    p.add_argument("--threads", type=int, default=None, help=help)


def add_scheduler_timeout(p: argparse.ArgumentParser) -> None:
    """Add ``--scheduler-timeout SECONDS`` (default 60), for ``--scheduler``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    """
    p.add_argument(
        "--scheduler-timeout",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help=(
            "with --scheduler: give up when no worker has joined within SECONDS (default 60; "
            "the scheduler itself must answer within the first 10)"
        ),
    )


def add_json(p: argparse.ArgumentParser, help: str = "print one JSON document") -> None:
    """Add ``--json``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    help : str
        The option's help text.
    """
    p.add_argument("--json", action="store_true", help=help)
