"""``initsim check``: simulate, hold the result against the theory, exit 0 (PASS) or 3 (FAIL)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from initsim.cli._common import add_json, add_seed, add_threads
from initsim.cli.simulate import add_net_options

__all__ = ["EXIT_FAIL", "register"]

#: Exit status of ``initsim check`` when the verdict is FAIL (2 is bad usage).
EXIT_FAIL = 3


def register(sub: Any) -> None:
    """Add the ``check`` subcommand to a subparsers object.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subparsers of the main parser.
    """
    p = sub.add_parser(
        "check",
        help="simulate and test the outcome against theory (exit 0 PASS, 3 FAIL)",
        description=(
            "Simulate random nets (forward and backward), compare each layer's mean q and "
            "mean squared gradient (and the law of q^1) with the theory, combine the tests "
            "with Holm's method at family-wise level --alpha, print the table and exit 0 on "
            "PASS, 3 on FAIL, 2 on bad usage."
        ),
    )
    add_net_options(p, nets=500)
    add_seed(p)
    add_threads(p)
    p.add_argument(
        "--alpha", type=float, default=0.01, help="family-wise false-rejection rate (default 0.01)"
    )
    p.add_argument(
        "--sigma-w2",
        type=float,
        default=None,
        help="test against this sigma_w2 instead of the initializer's",
    )
    p.add_argument(
        "--claim",
        action="append",
        default=[],
        choices=["preserves-variance"],
        help="add a claim: preserves-variance means E[q^L] = E[q^1]",
    )
    add_json(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from initsim.checks import check
    from initsim.simulation import simulate

    result = simulate(
        activation=args.activation,
        init=args.init,
        depth=args.depth,
        width=args.width,
        input_dim=args.input_dim,
        bias_std=args.bias_std,
        nets=args.nets,
        backward=True,
        seed=args.seed,
        threads=args.threads,
    )
    report = check(result, alpha=args.alpha, sigma_w2=args.sigma_w2, claims=args.claim)
    if args.json:
        doc = report.to_dict()
        doc["provenance"] = result.provenance
        print(json.dumps(doc, indent=1))
    else:
        cfg = result.provenance["config"]
        print(
            f"initsim check: {cfg['activation']} / {cfg['init']}, {result.depth} layers of "
            f"width {cfg['widths'][1:] if len(set(cfg['widths'][1:])) > 1 else cfg['widths'][1]}, "
            f"{result.nets} nets, seed {args.seed}"
        )
        print(report.table())
    return 0 if report.passed else EXIT_FAIL
