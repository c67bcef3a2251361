"""Options and argument types shared by the subcommands (declared once here).

Nothing here imports numpy or numba: building the parser must stay instant.
"""

from __future__ import annotations

import argparse

__all__ = [
    "add_json",
    "add_seed",
    "add_threads",
    "int_list",
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
