"""Render every page of a report as a PNG, to read the report page by page.

Usage::

    python scripts/render_report_pages.py                      # the embedded default study
    python scripts/render_report_pages.py reports/he-vs-lecun.toml
    python scripts/render_report_pages.py results/initsim-report-9fb801b4081e
    python scripts/render_report_pages.py reports/initsim-report.pdf   # needs pdftoppm

A spec (``.toml``; default: the embedded ``initsim/report/default.toml``) is
run first (cells already in its results directory are reused); a results
directory is only drawn. Either way the report module draws each page with
matplotlib and saves it as ``page-NN.png`` next to the PDF, so no PDF
renderer is needed. A finished PDF can only be rendered with poppler's
``pdftoppm`` (``apt-get install poppler-utils``).

The PNGs go to ``--pages-dir`` (default ``reports/<study name>-pages/``) and
the PDF to ``--pdf`` (default ``reports/<study name>.pdf``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path


def _from_pdf(pdf: Path, pages_dir: Path, dpi: int) -> int:
    tool = shutil.which("pdftoppm")
    if tool is None:
        print(
            "rendering a finished PDF needs pdftoppm (apt-get install poppler-utils); "
            "or pass the spec or results directory instead",
            file=sys.stderr,
        )
        return 2
    pages_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([tool, "-png", "-r", str(dpi), str(pdf), str(pages_dir / "page")], check=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the script (see the module docstring).

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.
    """
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", nargs="?", default=None, help="spec, results directory or PDF")
    ap.add_argument("--pages-dir", default=None, help="where the PNGs go")
    ap.add_argument("--pdf", default=None, help="where the PDF goes")
    ap.add_argument("--out", default=None, help="results directory of the study (when running)")
    ap.add_argument("--threads", type=int, default=None, help="numba threads per cell")
    ap.add_argument("--dpi", type=int, default=110, help="resolution with pdftoppm")
    args = ap.parse_args(argv)

    source = Path(args.source) if args.source else None
    if source is not None and source.suffix.lower() == ".pdf":
        pages = Path(args.pages_dir or source.with_name(f"{source.stem}-pages"))
        return _from_pdf(source, pages, args.dpi)

    from initsim.cli.report import default_spec_path
    from initsim.report import build_report
    from initsim.study import Study, load_results

    if source is not None and source.is_dir():
        results = load_results(source, allow_missing=False)
    else:
        study = Study.from_toml(source or default_spec_path())
        summary = study.run(args.out, threads=args.threads, progress=False)
        if summary.failed:
            print(f"{summary.failed} cells failed: {summary.errors}", file=sys.stderr)
            return 1
        results = study.results(args.out, allow_missing=False)
    reports = Path("reports")
    pages = Path(args.pages_dir or reports / f"{results.name}-pages")
    pdf = Path(args.pdf or reports / f"{results.name}.pdf")
    pdf.parent.mkdir(parents=True, exist_ok=True)
    for old in pages.glob("page-*.png"):  # a shorter report leaves no stale pages behind
        old.unlink()
    build_report(results, pdf, pages_dir=pages)
    n = len(list(pages.glob("page-*.png")))
    print(f"wrote {pdf} and {n} page PNGs in {pages}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
