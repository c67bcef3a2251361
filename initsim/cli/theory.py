"""``initsim theory``: mean-field quantities of one initialization, or the critical line."""

from __future__ import annotations

import argparse
import json
from typing import Any

from initsim.cli._common import add_json

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the ``theory`` subcommand to a subparsers object.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subparsers of the main parser.
    """
    p = sub.add_parser(
        "theory",
        help="mean-field fixed point, chi1, depth scales and phase (or the critical sigma_w2)",
        description=(
            "Mean-field theory of deep nets at initialization (Poole et al. 2016, Schoenholz "
            "et al. 2017). With --sigma-w2: the fixed point q* of the length map reached from "
            "q0 = 1, chi1 = sigma_w2 E[phi'(sqrt(q*) z)^2], the depth scales xi_q and xi_c and "
            "the phase (ordered, critical or chaotic). Without --sigma-w2: the critical "
            "sigma_w2 (chi1 = 1) for the given --sigma-b2."
        ),
    )
    p.add_argument("--activation", default="tanh", help="activation name (default tanh)")
    p.add_argument(
        "--sigma-w2",
        type=float,
        default=None,
        help="n_in Var(W_ij); omit it to print the critical sigma_w2 for --sigma-b2",
    )
    p.add_argument("--sigma-b2", type=float, default=0.0, help="Var(b_i) (default 0)")
    add_json(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from initsim import activations, theory
    from initsim.provenance import json_float

    act = activations.get(args.activation)
    sb = args.sigma_b2
    if args.sigma_w2 is None:
        sw_crit = theory.critical_sigma_w2(act, sb)
        q_star = theory.fixed_point(act, sw_crit, sb)
        if args.json:
            doc = {
                "activation": act.label,
                "sigma_b2": sb,
                "critical_sigma_w2": json_float(sw_crit),
                "q_star": json_float(q_star),
                "chi1": json_float(theory.chi1(act, sw_crit, sb)),
            }
            print(json.dumps(doc, indent=1))
            return 0
        print(f"initsim theory: {act.label}, sigma_b2 = {sb:g}")
        print(f"  critical sigma_w2 = {sw_crit:.10g}   (chi1 = 1: the order-to-chaos transition)")
        print(f"  q* there          = {q_star:.10g}")
        print(
            "  sigma_w2 below it is ordered (chi1 < 1, vanishing gradients), above it "
            "chaotic (chi1 > 1, exploding gradients)"
        )
        return 0
    sw = args.sigma_w2
    q_star = theory.fixed_point(act, sw, sb)
    x1 = theory.chi1(act, sw, sb)
    xi_q, xi_c = theory.depth_scales(act, sw, sb)
    c_star, chi_c = theory.correlation_fixed_point(act, sw, sb)
    ph = theory.phase(act, sw, sb)
    if args.json:
        doc = {
            "activation": act.label,
            "sigma_w2": sw,
            "sigma_b2": sb,
            "q_star": json_float(q_star),
            "chi1": json_float(x1),
            "xi_q": json_float(xi_q),
            "xi_c": json_float(xi_c),
            "c_star": json_float(c_star),
            "chi_c": json_float(chi_c),
            "phase": ph,
        }
        print(json.dumps(doc, indent=1))
        return 0
    print(f"initsim theory: {act.label}, sigma_w2 = {sw:g}, sigma_b2 = {sb:g}")
    print(f"  q*    = {q_star:<12.6g} fixed point of the length map, from q0 = 1")
    print(f"  chi1  = {x1:<12.6g} sigma_w2 E[phi'(sqrt(q*) z)^2]: per-layer gradient factor")
    print(f"  xi_q  = {xi_q:<12.6g} depth scale of q^l -> q*")
    print(f"  xi_c  = {xi_c:<12.6g} depth scale of c^l -> c* = {c_star:.6g}")
    print(f"  phase = {ph:<12s} (critical when |chi1 - 1| <= {theory.PHASE_TOL:g})")
    return 0
