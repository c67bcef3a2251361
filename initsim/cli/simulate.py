"""``initsim simulate``: one Monte Carlo run from the command line."""

from __future__ import annotations

import argparse
import json
from typing import Any

from initsim import keywords
from initsim.cli._common import add_json, add_seed, add_threads, int_list

__all__ = ["add_net_options", "column_notes", "register"]


def _saturates(cfg: dict[str, Any]) -> bool:
    """Whether "saturated" means anything for a run's activation (not for piecewise-linear ones)."""
    from initsim import activations

    return not activations.Activation.from_config(cfg).positively_homogeneous


def column_notes(cfg: dict[str, Any], inputs: int) -> list[str]:
    """Return the notes printed under the table: what "dead" and "saturated" count.

    Parameters
    ----------
    cfg : dict
        The result's ``provenance["config"]`` (activation, saturation threshold).
    inputs : int
        Inputs per net.

    Returns
    -------
    list of str
        One line per column word; each word has one definition.
    """
    act = cfg["activation"]
    threshold = cfg.get("saturation_threshold", 0.01)
    lines = [
        "dead: fraction of units whose output phi(h) is exactly 0 for every input "
        f"(here {inputs} input{'s' if inputs != 1 else ''} per net), mean over nets"
    ]
    if _saturates(cfg):
        lines.append(
            f"saturated: fraction of (unit, input) pairs with |phi'(h)| < {threshold:g} "
            "(almost no gradient passes), mean over nets"
        )
    else:
        lines.append(
            f"saturated: n/a for {act}: a piecewise-linear activation does not saturate; "
            f"phi' takes only its constant slopes, so |phi'(h)| < {threshold:g} could only "
            "mark the pairs on a zero-slope side (relu's h <= 0: inactive, not saturated; "
            "with one input per net exactly the dead fraction)"
        )
    return lines


def add_net_options(p: argparse.ArgumentParser, nets: int) -> None:
    """Add the options that describe the random nets (shared by simulate and check).

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    nets : int
        Default number of nets.
    """
    kw = keywords.SIMULATE
    for name in ("activation", "init"):
        d = kw[name].default
        p.add_argument(f"--{name}", default=d, help=f"{kw[name].doc} (default {d})")
    p.add_argument(
        "--depth", type=int, default=kw["depth"].default, help=f"{kw['depth'].doc} (default "
        f"{kw['depth'].default})"
    )  # fmt: skip
    p.add_argument(
        "--width",
        type=int_list,
        default=kw["width"].default,
        help=f"hidden width, or comma-separated per-layer widths (default {kw['width'].default})",
    )
    p.add_argument("--input-dim", type=int, default=None, help="input dimension (default width)")
    p.add_argument(
        "--bias-std", type=float, default=kw["bias_std"].default, help=kw["bias_std"].doc
    )
    p.add_argument("--nets", type=int, default=nets, help=f"number of random nets (default {nets})")


def add_residual_options(p: argparse.ArgumentParser) -> None:
    """Add the residual-net options (``--arch residual`` and the block's keywords).

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    """
    kw = keywords.SIMULATE
    g = p.add_argument_group("residual nets (--arch residual)")
    g.add_argument("--arch", default=kw["arch"].default, choices=keywords.ARCHS, help="network")
    g.add_argument("--alpha", type=float, default=None, help=f"{kw['alpha'].doc}")
    g.add_argument("--skip", type=float, default=None, help=f"{kw['skip'].doc}")
    g.add_argument("--norm", default=None, choices=keywords.NORMS, help="default none")
    g.add_argument(
        "--norm-kind", default=kw["norm_kind"].default, choices=keywords.NORM_KINDS,
        help="default layernorm",
    )  # fmt: skip
    g.add_argument(
        "--branch-layers", type=int, default=kw["branch_layers"].default,
        help=f"{kw['branch_layers'].doc} (default {kw['branch_layers'].default})",
    )  # fmt: skip
    g.add_argument("--width-branch", type=int, default=None, help=kw["width_branch"].doc)
    g.add_argument("--eps", type=float, default=kw["eps"].default, help=kw["eps"].doc)
    g.add_argument("--scheme", default=None, choices=keywords.SCHEMES, help=kw["scheme"].doc)


def residual_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Return the residual keywords of :func:`initsim.simulate` from parsed options.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options of a parser with :func:`add_residual_options`.

    Returns
    -------
    dict
        ``arch`` and the residual keywords.
    """
    return {"arch": args.arch, **{k: getattr(args, k) for k in keywords.RESIDUAL_KEYS}}


def register(sub: Any) -> None:
    """Add the ``simulate`` subcommand to a subparsers object.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subparsers of the main parser.
    """
    p = sub.add_parser(
        "simulate",
        help="simulate many random nets and print per-layer statistics",
        description=(
            "Propagate inputs (and gradients with --backward) through many random deep nets "
            "and print, per hidden layer, the mean pre-activation second moment q with a 95% "
            "interval, the dead fraction (units whose output is exactly 0 for every input), "
            "the saturated fraction ((unit, input) pairs with |phi'(h)| < 0.01; n/a for "
            "piecewise-linear activations, which do not saturate) and the gradient second "
            "moment."
        ),
    )
    add_net_options(p, nets=100)
    kw = keywords.SIMULATE
    p.add_argument(
        "--inputs", type=int, default=kw["inputs"].default, help="inputs per net (default 1)"
    )
    p.add_argument(
        "--input",
        default=kw["input"].default,
        choices=keywords.INPUT_MODES,
        help="input distribution (default sphere: ||x||^2 = input_dim)",
    )
    p.add_argument("--method", default=kw["method"].default, choices=keywords.METHODS)
    p.add_argument("--backward", action="store_true", help="also propagate gradients")
    add_seed(p)
    add_threads(p)
    p.add_argument(
        "--device",
        default=kw["device"].default,
        choices=keywords.DEVICES,
        help="where to run: cpu (default) or cuda (needs initsim[cuda] and an NVIDIA GPU)",
    )
    add_residual_options(p)
    add_json(p)
    p.add_argument("--per-net", action="store_true", help="with --json: include per-net arrays")
    p.add_argument("--no-progress", action="store_true", help="never draw a progress bar")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from initsim.simulation import simulate

    try:
        result = simulate(
            activation=args.activation,
            init=args.init,
            depth=args.depth,
            width=args.width,
            input_dim=args.input_dim,
            bias_std=args.bias_std,
            nets=args.nets,
            inputs=args.inputs,
            input=args.input,
            method=args.method,
            backward=args.backward,
            seed=args.seed,
            threads=args.threads,
            progress=False if args.no_progress else None,
            device=args.device,
            **residual_kwargs(args),
        )
    except RuntimeError as exc:
        if args.device != "cuda":
            raise
        raise ValueError(str(exc)) from None  # no GPU: a usage error, reported as such
    if args.json:
        print(json.dumps(result.to_dict(per_net=args.per_net), indent=1))
        return 0
    cfg = result.provenance["config"]
    if cfg.get("arch") == "residual":
        _print_residual(result, cfg, args)
        return 0
    print(
        f"initsim simulate: {cfg['activation']} / {cfg['init']}, widths {cfg['widths'][0]} -> "
        f"{cfg['widths'][1:] if len(set(cfg['widths'][1:])) > 1 else cfg['widths'][1]} x "
        f"{result.depth} layers, {result.nets} nets x {cfg['inputs']} "
        f"input{'s' if cfg['inputs'] != 1 else ''}, "
        f"method {cfg['method']}, seed {args.seed}, device {args.device}"
    )
    mean = result.layer_mean("q")
    lo, hi = result.layer_interval("q")
    dead = result.layer_mean("dead_fraction")
    sat = result.layer_mean("saturated_fraction")
    saturates = _saturates(cfg)
    grad = result.layer_mean("grad_sq") if result.grad_sq is not None else None
    head = f"{'layer':>5}  {'mean q':>11}  {'95% interval':>25}  {'dead':>6}  {'saturated':>9}"
    if grad is not None:
        head += f"  {'grad^2':>11}"
    print(head)
    for t in range(result.depth):
        line = (
            f"{t + 1:>5}  {mean[t]:11.4g}  [{lo[t]:11.4g}, {hi[t]:11.4g}]  "
            f"{dead[t]:6.3f}  {f'{sat[t]:9.3f}' if saturates else 'n/a':>9}"
        )
        if grad is not None:
            line += f"  {grad[t]:11.4g}"
        print(line)
    for note in column_notes(cfg, int(cfg["inputs"])):
        print(note)
    diverged = int((result.first_nonfinite_layer > 0).sum())
    if diverged:
        first = int(result.first_nonfinite_layer[result.first_nonfinite_layer > 0].min())
        print(f"{diverged} of {result.nets} nets overflowed to inf/NaN (first at layer {first})")
    print(
        f"({result.provenance['elapsed_s']:.2f} s, {result.provenance['threads']} threads, "
        f"config sha256 {result.provenance['config_sha256'][:12]})"
    )
    return 0


def _print_residual(result: Any, cfg: dict[str, Any], args: argparse.Namespace) -> None:
    """Print a residual run's per-block table."""
    alpha = cfg["alpha"]
    alphas = f"{alpha[0]:g}" if len(set(alpha)) == 1 else "per block"
    scheme = f", scheme {cfg['scheme']}" if cfg["scheme"] else ""
    inits = " / ".join(dict.fromkeys(cfg["init"]))
    print(
        f"initsim simulate: residual, {result.depth} blocks x {cfg['branch_layers']} branch "
        f"layers, width {cfg['width']} (branch {cfg['width_branch']}), {cfg['activation']} / "
        f"{inits}, alpha {alphas}, norm {cfg['norm']}"
        f"{' (' + cfg['norm_kind'] + ')' if cfg['norm'] != 'none' else ''}{scheme}, "
        f"{result.nets} nets x {cfg['inputs']} input{'s' if cfg['inputs'] != 1 else ''}, "
        f"seed {args.seed}"
    )
    mean = result.layer_mean("q")
    lo, hi = result.layer_interval("q")
    share = result.layer_mean("branch_share")
    bq = result.layer_mean("branch_q")
    dead = result.layer_mean("dead_fraction")
    sat = result.layer_mean("saturated_fraction")
    saturates = _saturates(cfg)
    grad = result.layer_mean("grad_sq") if result.grad_sq is not None else None
    head = (
        f"{'block':>5}  {'mean q':>11}  {'95% interval':>25}  {'share':>6}  {'branch q':>10}  "
        f"{'dead':>6}  {'saturated':>9}"
    )
    print(head + (f"  {'grad^2':>11}" if grad is not None else ""))
    for t in range(result.depth):
        line = (
            f"{t + 1:>5}  {mean[t]:11.4g}  [{lo[t]:11.4g}, {hi[t]:11.4g}]  {share[t]:6.3f}  "
            f"{bq[t]:10.4g}  {dead[t]:6.3f}  {f'{sat[t]:9.3f}' if saturates else 'n/a':>9}"
        )
        print(line + (f"  {grad[t]:11.4g}" if grad is not None else ""))
    print(
        "q: mean square of the stream x^l after the block; share: the branch's share "
        "||alpha F||^2 / (||skip x||^2 + ||alpha F||^2); branch q: mean square entering the "
        "branch's first nonlinearity; dead, saturated: of the branch's nonlinearities"
    )
    diverged = int((result.first_nonfinite_layer > 0).sum())
    if diverged:
        first = int(result.first_nonfinite_layer[result.first_nonfinite_layer > 0].min())
        print(f"{diverged} of {result.nets} nets overflowed to inf/NaN (first at block {first})")
    print(
        f"({result.provenance['elapsed_s']:.2f} s, {result.provenance['threads']} threads, "
        f"config sha256 {result.provenance['config_sha256'][:12]})"
    )
