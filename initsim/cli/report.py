"""``initsim report``: run a study (or reuse its results) and draw the PDF report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from initsim.cli._common import add_scheduler_timeout, add_threads, check_output_file

__all__ = ["DEFAULT_PDF", "default_spec_path", "register"]

#: Where the report of the embedded default study goes.
DEFAULT_PDF = Path("reports") / "initsim-report.pdf"


def default_spec_path() -> Path:
    """Return the embedded default study spec (shipped inside the package).

    Returns
    -------
    Path
        ``initsim/report/default.toml``.
    """
    return Path(__file__).resolve().parents[1] / "report" / "default.toml"


def register(sub: Any) -> None:
    """Add the ``report`` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subparsers of the main parser.
    """
    p = sub.add_parser(
        "report",
        help="run a study (default: the embedded one) and write its PDF report",
        description=(
            "Write a multi-page PDF: title page and verdict table, one page per figure with "
            "Monte Carlo and theory side by side, provenance. With no argument, run the "
            "embedded default study on local threads and write reports/initsim-report.pdf. "
            "With a spec, run what is missing, then draw; with a results directory, only draw. "
            "The same results give a byte-identical PDF."
        ),
    )
    p.add_argument(
        "source",
        nargs="?",
        default=None,
        help="a study spec (.toml) or a results directory (default: the embedded study)",
    )
    p.add_argument(
        "-o",
        "--output",
        default=None,
        help="the PDF to write (default reports/initsim-report.pdf, or reports/<name>.pdf)",
    )
    p.add_argument(
        "--format",
        choices=["pdf", "png"],
        default="pdf",
        help="png: also write every figure as a PNG into --figures-dir",
    )
    p.add_argument(
        "--figures-dir",
        default=None,
        help="directory for the PNG figures (default <output without .pdf>-figures)",
    )
    p.add_argument("--out", default=None, help="results directory of the study (when running)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, help="run on a Dask LocalCluster")
    where.add_argument("--scheduler", default=None, help="run on the Dask cluster at this address")
    add_scheduler_timeout(p)
    add_threads(p, help="numba threads per cell (local)")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars on stderr (default: when stderr is a terminal)",
    )
    p.set_defaults(func=_run)


def _check_output(path: Path) -> None:
    """Fail before any computation if the PDF cannot be written."""
    if path.suffix.lower() != ".pdf":
        raise ValueError(f"-o/--output must end in .pdf; got {str(path)!r}")
    check_output_file(path, "-o/--output")


def _make_default_dir(output: Path) -> None:
    """Create the folder of the default PDF (``reports/``), or say why it cannot be."""
    folder = output.parent
    if folder.exists() and not folder.is_dir():
        raise ValueError(
            f"cannot write the report to {str(output)!r}: {str(folder)!r} exists and is not "
            "a directory; move it away, or choose the PDF with -o/--output"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(
            f"cannot write the report to {str(output)!r}: cannot create {str(folder)!r} "
            f"({exc.strerror or exc}); choose the PDF with -o/--output"
        ) from None


def _run(args: argparse.Namespace) -> int:
    from initsim.study import Study, load_results

    source = Path(args.source) if args.source is not None else None
    draw_only = source is not None and source.is_dir()
    study = None
    if not draw_only:
        if source is not None and not source.exists():
            raise ValueError(f"no such study spec or results directory: {str(source)!r}")
        study = Study.from_toml(source if source is not None else default_spec_path())
    if args.output is not None:
        output = Path(args.output)
    else:
        name = study.spec.name if study is not None else source.name
        output = DEFAULT_PDF if source is None else Path("reports") / f"{name}.pdf"
        _make_default_dir(output)
    _check_output(output)  # before any computation
    figures_dir = None
    if args.format == "png" or args.figures_dir is not None:
        figures_dir = Path(args.figures_dir or output.with_name(f"{output.stem}-figures"))

    if study is None:
        study_results = load_results(source, allow_missing=False)
    else:
        try:
            summary = study.run(
                args.out,
                workers=args.workers,
                scheduler=args.scheduler,
                threads=args.threads,
                progress=args.progress,
                scheduler_timeout=args.scheduler_timeout,
            )
        except ImportError as exc:
            raise ValueError(str(exc)) from None
        if summary.failed:
            first = next(iter(summary.errors.items()))
            raise ValueError(
                f"{summary.failed} cells failed (first: {first[0]}: {first[1]}); "
                "no report written — fix the cause and run again (finished cells are kept)"
            )
        study_results = study.results(args.out, allow_missing=False)

    from initsim._files import DiskFullError, is_disk_full
    from initsim.report import build_report

    try:
        path = build_report(
            study_results, output, figures_dir=figures_dir, progress=bool(args.progress)
        )
    except OSError as exc:
        if isinstance(exc, DiskFullError):
            raise  # names the file and says the disk is full (initsim.cli.main: exit 2)
        if is_disk_full(exc):
            raise DiskFullError(output, exc.errno) from exc
        raise ValueError(f"cannot write the report {str(output)!r}: {exc}") from None
    failed = study_results.failed_checks
    print(
        f"report {study_results.name}: {len(study_results.cells)} cells, "
        f"{failed} with failed checks; wrote {path}"
        + (f" and figures in {figures_dir}" if figures_dir else "")
    )
    return 0
