"""``initsim verify``: check the user's own initializer; exit 0 (PASS), 3 (FAIL) or 2 (usage)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any

from initsim.cli._common import add_json, add_seed

__all__ = ["EXIT_FAIL", "register"]

#: Exit status of ``initsim verify`` when a property fails (2 is bad usage).
EXIT_FAIL = 3


def register(sub: Any) -> None:
    """Add the ``verify`` subcommand to a subparsers object.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subparsers of the main parser.
    """
    from initsim.verify import DEFAULT_TIMEOUT, PROFILES

    p = sub.add_parser(
        "verify",
        help="check your own initializer: contract, variance law, symmetry, depth, dead units",
        description=(
            "Verify a weight initializer of your own, given as module:attribute (the current "
            "directory is importable): a function my_init(shape, rng) -> ndarray with shape "
            "(fan_out, fan_in) and rng a numpy Generator, or an object with "
            "sample(shape, seed=...) and optionally variance(fan_in, fan_out). Checks the "
            "return contract, fits the variance law over a grid of fans, tests the declared "
            "variance and the mean, symmetry breaking, signal variance through a deep MLP "
            "and dead units. Exit 0 when every property holds, 3 when one fails (with a "
            "minimal failing example; a call that hangs past --timeout fails), 2 on bad "
            "usage (including an initializer that raises or calls sys.exit)."
        ),
    )
    p.add_argument("target", help="the initializer, as module:attribute (e.g. mymodule:my_init)")
    p.add_argument(
        "--activation", default="relu", help="activation of the depth checks (default relu)"
    )
    p.add_argument(
        "--profile",
        default="dev",
        choices=list(PROFILES),
        help="sample sizes: dev (seconds), ci, thorough (default dev)",
    )
    add_seed(p)
    p.add_argument(
        "--alpha",
        type=float,
        default=0.01,
        help="family-wise false-rejection rate of the statistical tests (default 0.01)",
    )
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        help=(
            "seconds one call of the initializer may take before it counts as hanging "
            f"(a FAIL, exit 3); 0 for no limit (default {DEFAULT_TIMEOUT:g})"
        ),
    )
    add_json(p)
    p.set_defaults(func=_run)


def _seconds(text: str) -> float | None:
    """Argument type of ``--timeout``: seconds > 0, or 0 for no limit (None)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value if value > 0 else None


def _run(args: argparse.Namespace) -> int:
    from initsim.verify import report_json, verify

    # like `python -m`: a module next to the user is importable (console scripts omit this)
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    report = verify(
        args.target,
        activation=args.activation,
        profile=args.profile,
        seed=args.seed,
        alpha=args.alpha,
        timeout=args.timeout,
    )
    print(report_json(report) if args.json else report.table())
    return 0 if report.passed else EXIT_FAIL
