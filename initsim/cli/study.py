"""``initsim study``: validate, run (locally or on Dask) and tabulate TOML studies."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from initsim.cli._common import add_json, add_scheduler_timeout, check_output_file, positive_int

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the ``study`` subcommand (with ``run``, ``validate``, ``table``).

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subparsers of the main parser.
    """
    p = sub.add_parser(
        "study",
        help="run a TOML study (grid of simulations) locally or on Dask; resumable",
        description=(
            "Scripted Monte Carlo studies: a TOML spec expands into cells (one simulation "
            "each), results go to one atomic file per cell, and re-running resumes."
        ),
    )
    ssub = p.add_subparsers(dest="study_command", metavar="ACTION", required=True)

    run = ssub.add_parser(
        "run",
        help="run every cell not yet on disk",
        description=(
            "Run a study. Valid finished cells in the results directory are kept, corrupt or "
            "partial ones recomputed; a directory holding another spec's results is refused. "
            "Ctrl-C keeps the finished cells (run again to resume; exit 130); a full disk "
            "stops the run with the file it could not write (exit 2), keeping the cells "
            "already written. Exit 0 when every cell is done, 1 if cells failed, 2 on bad input."
        ),
    )
    run.add_argument("spec", help="the study's TOML file")
    run.add_argument(
        "--out", default=None, help="results directory (default results/<name>-<spec hash>)"
    )
    where = run.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=int, default=None, help="start a Dask LocalCluster with N workers"
    )
    where.add_argument("--scheduler", default=None, help="use the Dask cluster at tcp://HOST:PORT")
    add_scheduler_timeout(run)
    run.add_argument(
        "--threads", type=int, default=None, help="numba threads per cell (local runs)"
    )
    run.add_argument(
        "--only", action="append", default=None, help="run only this experiment (repeatable)"
    )
    run.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar over cells on stderr (default: when stderr is a terminal)",
    )
    run.add_argument(
        "--wait",
        action="store_true",
        help="if another run is using the results directory, wait for it to end "
        "(default: exit 2, naming its pid and host)",
    )
    _add_max_cells(run)
    add_json(run, help="print the summary as JSON")
    run.set_defaults(func=_run)

    val = ssub.add_parser("validate", help="check a spec and list its cells; runs nothing")
    val.add_argument("spec", help="the study's TOML file")
    _add_max_cells(val)
    add_json(val)
    val.set_defaults(func=_validate)

    tab = ssub.add_parser(
        "table", help="print (or write as CSV) the tidy table of a results directory"
    )
    tab.add_argument("results", help="a results directory written by 'initsim study run'")
    tab.add_argument("--csv", default=None, help="write the table to this CSV file")
    tab.add_argument("--experiment", default=None, help="only this experiment's rows")
    tab.set_defaults(func=_table)


def _add_max_cells(parser: argparse.ArgumentParser) -> None:
    from initsim.study.limits import MAX_CELLS, WARN_CELLS

    parser.add_argument(
        "--max-cells",
        type=positive_int,
        default=MAX_CELLS,
        metavar="N",
        help=(
            f"refuse a spec with more than N cells, counted before any is built (default "
            f"{MAX_CELLS}; a warning above {WARN_CELLS})"
        ),
    )


def _run(args: argparse.Namespace) -> int:
    from initsim.study import Study

    study = Study.from_toml(args.spec, max_cells=args.max_cells)
    try:  # study.run checks threads, scheduler and --out before doing anything
        summary = study.run(
            args.out,
            workers=args.workers,
            scheduler=args.scheduler,
            threads=args.threads,
            progress=args.progress,
            only=args.only,
            scheduler_timeout=args.scheduler_timeout,
            wait=args.wait,
        )
    except ImportError as exc:
        raise ValueError(str(exc)) from None
    if args.json:
        print(json.dumps({"name": study.spec.name, **summary.to_dict()}, indent=2))
    else:
        for cell_id, message in summary.errors.items():
            print(f"cell {cell_id} failed: {message}", file=sys.stderr)
        print(summary.line(study.spec.name))
    return 1 if summary.failed else 0


def _validate(args: argparse.Namespace) -> int:
    from initsim.study import read_spec
    from initsim.study.results import param_text

    spec = read_spec(args.spec, max_cells=args.max_cells)
    counts = {e: sum(c.experiment == e for c in spec.cells) for e in spec.experiments}
    if args.json:
        doc = {
            "name": spec.name,
            "seed": spec.seed,
            "spec_sha256": spec.sha256,
            "cells": [c.to_dict() for c in spec.cells],
            "figures": list(spec.figures),
        }
        print(json.dumps(doc, indent=2))
        return 0
    print(f"study {spec.name}: valid, {len(spec.cells)} cells, spec sha256 {spec.sha256}")
    for name, n in counts.items():
        cells = [c for c in spec.cells if c.experiment == name]
        print(f"  {name}: {n} cells ({cells[0].kind})")
        varying = _varying_keys(cells)
        for c in cells:
            label = " ".join(f"{k}={param_text(c.params.get(k, ''))}" for k in varying)
            print(f"    {c.id}  {label}".rstrip())
    return 0


def _varying_keys(cells: list[Any]) -> list[str]:
    """Keys whose values differ between the cells of one experiment, in first-seen order."""
    keys: list[str] = []
    for c in cells:
        keys.extend(k for k in c.params if k not in keys)
    first = cells[0].params
    return [k for k in keys if any(c.params.get(k) != first.get(k) for c in cells)]


def _table(args: argparse.Namespace) -> int:
    from initsim.study import load_results

    if args.csv:
        check_output_file(args.csv, "--csv")  # before loading anything
    results = load_results(args.results)
    for cell_id, why in results.corrupt.items():
        print(f"cell {cell_id} is damaged, recomputed by the next run: {why}", file=sys.stderr)
    if args.experiment is not None:
        results.cells_of(args.experiment)  # raises for an unknown name
        results.cells = [c for c in results.cells if c.experiment == args.experiment]
    if args.csv:
        path = results.write_csv(args.csv)
        print(f"wrote {len(results.table())} rows to {path}")
        return 0
    table = results.table()
    print(_aligned(table, _shown_columns(table)))
    checked = [c for c in results.cells if c.kind == "simulate" and c.checks is not None]
    if checked:
        print()
        print("checks (verdict of each checked cell, its claims included):")
        width = max(len(c.id) for c in checked)
        for c in checked:
            print(f"  {c.id:<{width}}  {c.checks.summary()}")
            claims = table["claims"][table["cell"] == c.id]
            text = str(claims[0]) if len(claims) else ""
            for claim in text.split("; ") if text else []:
                print(f"  {'':<{width}}    claim {claim}")
    others = sum(c.kind != "simulate" for c in results.cells)
    if others:
        print(
            f"({others} jacobian, train or pair cells have no rows here: "
            "initsim.load_results(...).cells_of(EXPERIMENT) holds their arrays)"
        )
    if results.missing:
        print(f"({len(results.missing)} cells missing: run the study again to finish)")
    return 0


#: Columns of ``study table``'s printout whose header is shortened.
_HEADERS = {"check_verdict": "check"}


def _shown_columns(table: Any) -> list[str]:
    """Return the printed columns: cell, varying parameters, layer, means, verdicts."""
    import numpy as np

    names = list(table.dtype.names)
    stats = names.index("layer")

    def varies(name: str) -> bool:
        return len(table) > 0 and bool(np.any(table[name] != table[name][0]))

    cols = ["cell"]
    for name in names[1:stats]:  # identity columns: the parameters
        if name == "width" and "widths" in names:
            continue  # -1 for per-layer widths: the widths column says them all
        if name in ("activation", "init", "width") or varies(name):
            cols.append(name)
    cols += ["layer", "q_mean"]
    backward = len(table) > 0 and bool(np.any(~np.isnan(table["grad_sq_mean"])))
    if backward:
        cols.append("grad_sq_mean")
    for name in ("q_verdict", "grad_sq_verdict", "check_verdict"):  # if any cell is checked
        if np.any(table[name] != ""):
            cols.append(name)
    return cols


def _aligned(table: Any, cols: list[str]) -> str:
    """``cols`` of ``table`` as text columns as wide as their longest value (numbers right)."""
    heads = [_HEADERS.get(c, c) for c in cols]
    cells = [[_fmt(row[c]) for c in cols] for row in table]
    widths = [max([len(h), *(len(r[j]) for r in cells)]) for j, h in enumerate(heads)]
    right = [table.dtype[c].kind in "fiu" for c in cols]

    def line(texts: list[str]) -> str:
        cols = zip(texts, widths, right, strict=True)
        parts = [t.rjust(w) if r else t.ljust(w) for t, w, r in cols]
        return "  ".join(parts).rstrip()

    return "\n".join([line(heads), *(line(r) for r in cells)])


def _fmt(value: Any) -> str:
    if isinstance(value, float):  # numpy's float64 is one
        return f"{value:.6g}"
    return str(value)
