"""``initsim theory``: mean-field quantities of one initialization, or the critical line."""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

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
            "the phase (ordered, critical or chaotic) and the trainable depth 6 xi_c. Without "
            "--sigma-w2: the critical sigma_w2 (chi1 = 1) for the given --sigma-b2. With "
            "--dks or --tat and --depth: the activation shaped for a vanilla net of that depth "
            "(Martens et al. 2021; Zhang et al. 2022) and the conditions it meets."
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
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--dks", action="store_true", help="Deep Kernel Shaping parameters")
    shape.add_argument("--tat", action="store_true", help="Tailored Activation Transformation")
    shape.add_argument(
        "--ntk", action="store_true", help="NNGP and NTK through --depth layers (needs --sigma-w2)"
    )
    p.add_argument("--c0", type=float, default=1.0, help="--ntk: the inputs' correlation")
    p.add_argument("--depth", type=int, default=None, help="depth of the net (--dks, --tat)")
    p.add_argument("--zeta", type=float, default=1.5, help="DKS: network C'(1) (default 1.5)")
    p.add_argument("--eta", type=float, default=0.9, help="TAT rectifiers: C_net(0) (default 0.9)")
    p.add_argument(
        "--tau", type=float, default=0.3, help="TAT smooth activations: C_net''(1) (default 0.3)"
    )
    add_json(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from initsim import activations, theory
    from initsim.provenance import json_float

    act = activations.get(args.activation)
    sb = args.sigma_b2
    if args.dks or args.tat:
        return _shaping(args, act)
    if args.ntk:
        return _ntk(args, act)
    if args.depth is not None:
        raise ValueError("--depth applies to --dks, --tat and --ntk")
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
            "trainable_depth": json_float(theory.trainable_depth(act, sw, sb)),
        }
        print(json.dumps(doc, indent=1))
        return 0
    print(f"initsim theory: {act.label}, sigma_w2 = {sw:g}, sigma_b2 = {sb:g}")
    print(f"  q*    = {q_star:<12.6g} fixed point of the length map, from q0 = 1")
    print(f"  chi1  = {x1:<12.6g} sigma_w2 E[phi'(sqrt(q*) z)^2]: per-layer gradient factor")
    print(f"  xi_q  = {xi_q:<12.6g} depth scale of q^l -> q*")
    print(f"  xi_c  = {xi_c:<12.6g} depth scale of c^l -> c* = {c_star:.6g}")
    print(f"  phase = {ph:<12s} (critical when |chi1 - 1| <= {theory.PHASE_TOL:g})")
    depth = theory.trainable_depth(act, sw, sb)
    print(
        f"  trainable depth = {depth:<.6g} (6 xi_c: deeper vanilla nets did not train in "
        "Schoenholz et al. 2017)"
    )
    return 0


def _ntk(args: argparse.Namespace, act: Any) -> int:
    """``--ntk``: the NNGP and NTK of an MLP, layer by layer."""
    from initsim import theory
    from initsim.provenance import json_float

    if args.depth is None or args.sigma_w2 is None:
        raise ValueError("--ntk needs --depth (hidden layers) and --sigma-w2")
    p = theory.ntk_map(act, args.sigma_w2, args.sigma_b2, args.depth, c0=args.c0)
    fields = [f for f in p.__dataclass_fields__ if f != "sigma_w2"]
    arrays = {f: getattr(p, f) for f in fields if isinstance(getattr(p, f), np.ndarray)}
    if args.json:
        doc = {
            "activation": act.label,
            "sigma_w2": args.sigma_w2,
            "sigma_b2": args.sigma_b2,
            "depth": args.depth,
            "c0": args.c0,
            **{k: [json_float(float(v)) for v in a] for k, a in arrays.items()},
        }
        print(json.dumps(doc, indent=1))
        return 0
    print(
        f"initsim theory: NNGP and NTK of {act.label}, sigma_w2 = {args.sigma_w2:g}, "
        f"sigma_b2 = {args.sigma_b2:g}, {args.depth} hidden layers, c0 = {args.c0:g} "
        "(the last row is the linear readout)"
    )
    names = list(arrays)
    print("layer " + " ".join(f"{k:>14s}" for k in names))
    for i in range(len(next(iter(arrays.values())))):
        label = str(i + 1) if i < args.depth else "out"
        print(f"{label:>5s} " + " ".join(f"{arrays[k][i]:>14.6g}" for k in names))
    return 0


def _shaping(args: argparse.Namespace, act: Any) -> int:
    """``--dks`` / ``--tat``: the shaped activation's parameters and its conditions."""
    from initsim import theory
    from initsim.provenance import json_float

    if args.depth is None:
        raise ValueError("--dks and --tat need --depth (the number of layers of the net)")
    if args.sigma_w2 is not None:
        raise ValueError("--sigma-w2 does not apply to --dks/--tat (they assume sigma_w2 = 1)")
    if args.dks:
        s = theory.dks(act, args.depth, zeta=args.zeta)
    else:
        s = theory.tat(act, args.depth, eta=args.eta, tau=args.tau)
    params = {
        "input_scale": s.input_scale,
        "input_shift": s.input_shift,
        "output_scale": s.output_scale,
        "output_shift": s.output_shift,
    }
    if s.base.name == "leaky_relu":
        params["negative_slope"] = s.base.param
    achieved, targets = s.conditions(), s.condition_targets()
    if args.json:
        doc = {
            "activation": act.label,
            "method": s.method,
            "depth": s.depth,
            "base": s.base.label,
            "parameters": {k: json_float(v) for k, v in params.items()},
            "conditions": {
                k: {"achieved": json_float(v), "target": json_float(targets.get(k, float("nan")))}
                for k, v in achieved.items()
            },
        }
        print(json.dumps(doc, indent=1))
        return 0
    print(
        f"initsim theory: {s.method.upper()} for {act.label} at depth {s.depth} "
        f"(phi_hat(x) = output_scale (phi(input_scale x + input_shift) + output_shift), "
        "sigma_w2 = 1)"
    )
    print(f"  base activation   {s.base.label}")
    for k, v in params.items():
        print(f"  {k:<17s} {v:.12g}")
    print(f"  {'condition':<12s} {'achieved':>22s} {'target':>22s}")
    for k, v in achieved.items():
        t = targets.get(k)
        print(f"  {k:<12s} {v:>22.12g} " + (f"{t:>22.12g}" if t is not None else ""))
    return 0
