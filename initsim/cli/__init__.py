"""The ``initsim`` command.

Subcommands live in small functions registered in :func:`build_parser`;
heavy modules (numba kernels) are imported inside them so ``initsim --help``
stays instant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from initsim._version import __version__
from initsim.cli._common import add_json, positive_int

__all__ = ["build_parser", "main"]


def _print_table(headers: list[str], table: list[list[str]]) -> None:
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _cmd_initializers(args: argparse.Namespace) -> int:
    from initsim import framework_names, initializers

    rows = initializers.catalogue(fan_in=args.fan_in, fan_out=args.fan_out)
    fw_rows = [r for r in framework_names.catalogue() if args.framework in (None, r["framework"])]
    diffs = framework_names.differences()
    if args.json:
        doc = {"schemes": rows, "framework_names": fw_rows, "differences": diffs}
        print(json.dumps(doc, indent=2))
        return 0
    print(
        f"Weight initializers (sigma_w2 = fan_in * Var(W_ij) at fan_in={args.fan_in}, "
        f"fan_out={args.fan_out}):\n"
    )
    _print_table(
        ["name", "aliases", "law", "variance of one entry", "sigma_w2"],
        [
            [
                r["name"],
                ", ".join(r["aliases"]) or "-",
                r["law"],
                r["variance_law"],
                f"{r['sigma_w2']:.6g}",
            ]
            for r in rows
        ],
    )
    print(
        "\nFramework names (get('torch.kaiming_normal_'), get('keras.HeNormal'), "
        "get('jax.he_normal'); the framework's parameters and defaults):\n"
    )
    _print_table(
        ["framework name", "initsim scheme at the framework's defaults", "law", "fans"],
        [[r["name"], r["initsim"], r["law"], r["fans"]] for r in fw_rows],
    )
    print("\nDifferences between frameworks (the same name, different laws):")
    for diff in diffs:
        given = ", ".join(f"{k}={v!r}" for k, v in diff["with"].items())
        print(f"\n  {diff['concept']}" + (f" ({given})" if given else ""))
        for n in diff["names"]:
            print(f"    {n['name']:<24} {n['law']:<19} {n['promise']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``initsim`` command.

    Returns
    -------
    argparse.ArgumentParser
        The parser with every subcommand registered.
    """
    parser = argparse.ArgumentParser(
        prog="initsim",
        description=(
            "What does a weight initialization do to signals and gradients in a deep "
            "network? Monte Carlo over many random nets, checked against theory."
        ),
    )
    parser.add_argument("--version", action="version", version=f"initsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p_init = sub.add_parser(
        "initializers",
        help="list the initializer catalogue with each scheme's variance law",
        description=(
            "List every initializer with its law and exact per-entry variance, every "
            "PyTorch, Keras and JAX name with the initsim law it means, and the names "
            "that mean different laws in different frameworks."
        ),
    )
    p_init.add_argument("--fan-in", type=positive_int, default=256, help="fan_in (default 256)")
    p_init.add_argument("--fan-out", type=positive_int, default=256, help="fan_out (default 256)")
    p_init.add_argument(
        "--framework",
        choices=("torch", "keras", "jax"),
        default=None,
        help="list only this framework's names (default: all three)",
    )
    add_json(p_init)
    p_init.set_defaults(func=_cmd_initializers)

    from initsim.cli import audit, check, report, simulate, study, theory, verify

    for command in (simulate, theory, check, verify, audit, study, report):
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``initsim`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status: 0 on success, 2 on bad input or a file that cannot be
        written (a full disk, a missing or read-only folder), 130 on Ctrl-C, 141
        (quietly) when the reader of stdout went away; the
        last two print one line on stderr (what happened, and for a study what
        was kept), not a traceback.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args))
    except ValueError as exc:
        print(f"initsim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (``initsim study table | head``)
        _silence_stdout()
        return 141  # 128 + SIGPIPE, as a shell reports a pipe's writer
    except OSError as exc:
        print(f"initsim {args.command}: error: {_os_error_text(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # a study's StudyInterrupted says what was kept
        print(f"initsim {args.command}: {str(exc) or 'interrupted'}", file=sys.stderr)
        return 130


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush raises nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (e.g. captured)
        pass
    finally:
        os.close(devnull)


def _os_error_text(exc: OSError) -> str:
    """One line for an :class:`OSError`: its own message, else "reason: 'file'"."""
    from initsim._files import DiskFullError

    if isinstance(exc, DiskFullError) or exc.strerror is None:
        return str(exc)
    names = [repr(str(f)) for f in (exc.filename, exc.filename2) if f is not None]
    return exc.strerror + (f": {' -> '.join(names)}" if names else "")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
