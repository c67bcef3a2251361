"""``initsim audit``: a PyTorch model's initialisation; exit 0 (clean), 3 (findings), 2 (usage)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any

from initsim.cli._common import add_json, add_seed, positive_int

__all__ = ["EXIT_FINDINGS", "register"]

#: Exit status of ``initsim audit`` when it has findings (2 is bad usage).
EXIT_FINDINGS = 3


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return values


def _pair(text: str) -> tuple[int, ...]:
    values = _ints(text)
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected VOCAB,SEQ_LEN, got {text!r}")
    return values


def register(sub: Any) -> None:
    """Add the ``audit`` subcommand to a subparsers object.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subparsers of the main parser.
    """
    p = sub.add_parser(
        "audit",
        help="audit a PyTorch model's initialisation over many re-initialisations",
        description=(
            "Build the model INITS times (pkg.module:factory, importable from the working "
            "directory: a class or function returning an nn.Module, or a model instance), "
            "each from its own torch seed so the model's own init code runs; list every "
            "parameter with PyTorch's and the true fans, its mean and std with 95%% intervals "
            "over the re-inits, its law and variance scheme; report initialisation bugs "
            "(non-finite or uninitialised tensors, units that are copies, packed attention "
            "slices at half variance, grouped-conv fans, ignored declared init values, layers "
            "left at the constructor default, GPT-2's scaled residual init never applied) with "
            "evidence and a fix; with an example input, hold MLP chains and residual additions "
            "against the mean-field theory of the measured laws. Needs PyTorch "
            "(pip install 'initsim[torch]'). Exit 0 without findings, 3 with, 2 on bad usage."
        ),
    )
    p.add_argument("factory", help="the model, as pkg.module:factory")
    given = p.add_mutually_exclusive_group()
    given.add_argument(
        "--input-shape", type=_ints, help="one example's shape, e.g. 3,32,32 (a Gaussian batch)"
    )
    given.add_argument("--tokens", type=_pair, help="VOCAB,SEQ_LEN: a batch of uniform token ids")
    given.add_argument(
        "--inputs", help="pkg.module:make_batch, a function returning the example batch"
    )
    p.add_argument("--inits", type=positive_int, default=50, help="re-initialisations (default 50)")
    p.add_argument("--batch", type=positive_int, default=64, help="batch size (default 64)")
    p.add_argument(
        "--scaled-residual",
        choices=("auto", "yes", "no"),
        default="auto",
        help="whether the model means to scale its residual branches' output projections by "
        "1/sqrt(N) as GPT-2 does (auto: when it declares its depth, e.g. config.n_layer)",
    )
    add_seed(p)
    add_json(p)
    p.add_argument(
        "-o",
        "--output",
        help="also write the report as a PDF (findings, inventory, profiles, verdicts)",
    )
    p.set_defaults(func=_run)


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.4g}"


def _print(report: Any) -> None:
    prov = report.provenance
    print(
        f"initsim audit: {prov['factory']}, {prov['inits']} re-initialisations (seed "
        f"{prov['seed']}; {prov['reinit']})"
    )
    if report.findings:
        print(f"\n{len(report.findings)} finding(s):")
        for f in report.findings:
            print(f"  [{f.severity}] {f.rule}: {f.tensor}")
            print(f"      measured: {f.evidence}")
            print(f"      expected: {f.expected}")
            print(f"      fix:      {f.fix}")
    else:
        print("\nno findings")
    print("\ninventory (std: sqrt of the mean per-draw variance, 95% interval over re-inits):")
    rows = []
    for s in report.tensors:
        e = s.entry
        fans = "-"
        if e.fan_in is not None:
            fans = f"{e.fan_in}/{e.fan_out}"
            if (e.fan_in, e.fan_out) != (e.true_fan_in, e.true_fan_out):
                fans += f" ({e.true_fan_in}/{e.true_fan_out})"
        law = s.law if s.constant is None else f"constant {s.constant:g}"
        if s.scheme:
            law += f"; {s.scheme}" + (" [true fans]" if s.scheme_fans == "true" else "")
        consumer = report.consumers.get(e.module)
        lo, hi = s.std_interval
        rows.append(
            [
                e.path,
                e.module_type,
                "x".join(map(str, e.shape)),
                fans,
                _fmt(s.mean),
                _fmt(s.std),
                f"[{_fmt(lo)}, {_fmt(hi)}]",
                consumer or "-",
                law,
            ]
        )
    head = [
        "tensor",
        "type",
        "shape",
        "fans torch (true)",
        "mean",
        "std",
        "std 95%",
        "feeds",
        "law",
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    for r in [head, *rows]:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    if report.theory:
        print("\ntheory (MLP chain: measured q against the length map of the measured laws):")
        for t in report.theory:
            print(
                f"  layer {t.layer:>2} {t.module:<20} q {_fmt(t.observed):>10} "
                f"[{_fmt(t.interval[0])}, {_fmt(t.interval[1])}]  predicted {_fmt(t.predicted):>10}"
                f"  p {_fmt(t.p_value):>9}  {t.verdict:<4} {t.regime}"
            )
    if report.residual_theory:
        print(
            "\nresidual additions (output q against the branch's length map given the "
            "measured skip, Holm at 1e-3):"
        )
        for t in report.residual_theory:
            print(
                f"  {t.layer:>2} {t.module:<20} q {_fmt(t.observed):>10} "
                f"predicted {_fmt(t.predicted):>10}  p {_fmt(t.p_value):>9}  {t.verdict:<4} "
                f"{t.regime}"
            )
    if report.spp:
        print(
            "\nresidual blocks (Signal Propagation Plot, Brock et al. 2021; means over re-inits):"
        )
        head = f"  {'block':<24} {'avg channel sq mean':>20} {'avg channel var':>16}"
        print(head + f" {'branch var':>12}")
        for r in report.spp:
            print(
                f"  {r.block:<24} {_fmt(r.channel_sq_mean[0]):>20} {_fmt(r.channel_var[0]):>16} "
                f"{_fmt(r.branch_var[0]):>12}"
            )
    print(f"\nactivations that consume each layer: from {prov['consumers_from']}")
    out = prov.get("output_shape")
    if prov.get("input_shape") is not None:
        print(f"\nforward pass: input {prov['input_shape']} -> output {out}")
    print(f"({prov['elapsed_s']:.2f} s, torch {prov['versions']['torch']})")


def _run(args: argparse.Namespace) -> int:
    from initsim.audit import audit
    from initsim.audit._torch import TorchMissing

    if args.output is not None:
        from initsim.cli._common import check_output_file

        check_output_file(args.output, "-o")  # before any work: a bad path is a usage error
    cwd = os.getcwd()  # like `python -m`: a module next to the user is importable
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    example = None
    try:
        if args.inputs is not None:
            from initsim.user_activation import resolve_reference

            try:
                make, _ = resolve_reference(args.inputs)
            except ValueError as err:
                raise ValueError(str(err).replace("activation reference", "inputs")) from None
            example = make()
        report = audit(
            args.factory,
            example_input=example,
            input_shape=args.input_shape,
            tokens=args.tokens,
            inits=args.inits,
            batch=args.batch,
            seed=args.seed,
            scaled_residual={"auto": None, "yes": True, "no": False}[args.scaled_residual],
        )
    except TorchMissing as err:
        print(f"initsim audit: error: {err}", file=sys.stderr)
        return 2
    if args.output is not None:
        from initsim.audit.pdf import write_pdf

        write_pdf(report, args.output)
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
    else:
        _print(report)
        if args.output is not None:
            print(f"wrote {args.output}")
    return EXIT_FINDINGS if report.findings else 0
