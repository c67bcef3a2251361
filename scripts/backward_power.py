"""Power and false-rejection rate of the backward-pass law tests.

Run: python scripts/backward_power.py [--reps 20] [--fractions 0.25 0.5 1]
[--cases ID ...] [--alpha 1e-3] [--seed 0]

For every case of ``tests/test_backward_laws.py`` (its ``CASES``, net count
``N``) the script draws ``reps * N`` nets from each of the exact sampler, the
dense sampler and the numpy "independent" (gradient independence) and
"dropped" (part of ``W^T D`` inside ``col(X)`` removed) controls, one call
each, and cuts every draw into ``reps`` disjoint blocks: nets are
independent, so the blocks are independent replicates. For each candidate
net count ``n = fraction * N`` it runs the module's test (two-sample KS per
column of its family, Holm at ``alpha``) on the first ``n`` nets of every
block, as the tests do:

- exact vs dense: the false-rejection rate (should be at most ``alpha``),
  and how often the smallest Holm-adjusted p-value is below 0.05 (about
  0.05 or less when the two laws agree: a coarser look at calibration);
- independent vs dense and dropped vs dense: the power.

Each power comes with a normal approximation of its miss rate ("miss~",
``1 - power``): ``Phi((z* - mean) / sd)`` of the replicates' largest scaled
KS distance ``z = sqrt(n/2) D`` over the family, with ``z*`` the threshold
that Holm's smallest level ``alpha / m`` puts on it (``m`` columns,
Kolmogorov's asymptotic law). It resolves powers close to 1 that ``reps``
replicates alone cannot (all ``reps`` rejecting only shows a power above
about ``1 - 3 / reps``).

Prints one table row per case and net count; the tests' net counts are the
rows with ``fraction = 1``. Takes about ``reps`` times the law tests' run
time (a few minutes for the default on two cores); ``--cases`` runs a subset
(ids such as ``gaussian-1in-tanh``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np
from scipy import stats

from initsim.checks import holm

ROOT = Path(__file__).resolve().parents[1]


def load_tests() -> ModuleType:
    """Import ``tests/test_backward_laws.py``: the cases, samplers and family live there."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("tests.test_backward_laws")


def rates(bw: ModuleType, ref: list, other: list, n: int, alpha: float) -> dict[str, float]:
    """Holm rejections over replicates of ``other`` against ``ref`` (first ``n`` nets of each)."""
    reject, below05, zmax = [], [], []
    m = 0
    for a, b in zip(ref, other, strict=True):
        z, p = bw.family_ks(a.head(n), b.head(n))
        m = p.size
        reject.append(bool(holm(p, alpha).any()))
        below05.append(bool(holm(p, 0.05).any()))
        zmax.append(float(z.max()))
    zcrit = stats.kstwobign.isf(alpha / m)
    zs = np.array(zmax)
    sd = zs.std(ddof=1) if zs.size > 1 else np.nan
    miss = stats.norm.sf((zs.mean() - zcrit) / sd) if sd > 0 else np.nan
    return {
        "reject": float(np.mean(reject)),
        "below05": float(np.mean(below05)),
        "miss": float(miss),
        "zmean": float(zs.mean()),
        "zcrit": float(zcrit),
    }


def power_columns(r: dict[str, float]) -> str:
    """Format the normal-approximation miss rate and the mean largest z against z*."""
    miss = r["miss"]
    text = "<1e-6" if miss < 1e-6 else ("n/a" if not np.isfinite(miss) else f"{miss:.0e}")
    return f"{text:>7s} {r['zmean']:4.1f}/{r['zcrit']:.1f}"


def run_case(bw: ModuleType, case, reps: int, fractions: list[float], alpha: float, seed: int):
    """Draw the four samples of one case and return the table rows (one per fraction)."""
    total = reps * case.nets
    base = 10_000 * (seed + 1)
    draws = {}
    started = time.perf_counter()
    for method in ("exact", "dense"):
        sample, prov = bw.engine_sample(case, method, base + case.seed(method), nets=total)
        if method == "exact":
            assert prov["kernel"] == case.kernel, prov["kernel"]
        draws[method] = sample.split(reps)
    for mode in ("independent", "dropped"):
        sample = bw.numpy_sample(case, total, base + case.seed(mode), mode)
        draws[mode] = sample.split(reps)
    seconds = time.perf_counter() - started
    rows = []
    for f in fractions:
        n = max(10, round(f * case.nets))
        null = rates(bw, draws["dense"], draws["exact"], n, alpha)
        gi = rates(bw, draws["dense"], draws["independent"], n, alpha)
        drop = rates(bw, draws["dense"], draws["dropped"], n, alpha)
        rows.append((case.id, n, null, gi, drop))
    return rows, seconds


def main(argv: list[str] | None = None) -> int:
    bw = load_tests()
    ids = [c.id for c in bw.CASES]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20, help="replicates per case (default 20)")
    ap.add_argument(
        "--fractions",
        type=float,
        nargs="+",
        default=[0.25, 0.5, 1.0],
        help="candidate net counts as fractions of the test's (at most 1; default 0.25 0.5 1)",
    )
    ap.add_argument("--cases", nargs="+", choices=ids, default=ids, metavar="ID", help="subset")
    ap.add_argument("--alpha", type=float, default=bw.ALPHA, help="family-wise level")
    ap.add_argument("--seed", type=int, default=0, help="shifts every stream (default 0)")
    args = ap.parse_args(argv)
    if args.reps < 2 or not all(0.0 < f <= 1.0 for f in args.fractions):
        ap.error("--reps must be >= 2 and every fraction in (0, 1]")
    print(
        f"alpha = {args.alpha:g}, {args.reps} replicates per case. 'rej': fraction of replicates "
        "whose Holm family rejects at alpha ('p<.05': at 0.05); 'miss~': 1 - power from the "
        "normal approximation; 'z/z*': mean largest scaled KS distance and Holm's threshold"
    )
    head = (
        f"{'case':20s} {'nets':>6s} | {'exact vs dense: rej':>19s} {'p<.05':>5s} | "
        f"{'GI: rej':>7s} {'miss~':>7s} {'z/z*':>9s} | "
        f"{'dropped: rej':>12s} {'miss~':>7s} {'z/z*':>9s}"
    )
    print(head)
    print("-" * len(head))
    for case in [c for c in bw.CASES if c.id in args.cases]:
        rows, seconds = run_case(bw, case, args.reps, sorted(args.fractions), args.alpha, args.seed)
        for cid, n, null, gi, drop in rows:
            print(
                f"{cid:20s} {n:6d} | {null['reject']:19.3f} {null['below05']:5.2f} | "
                f"{gi['reject']:7.3f} {power_columns(gi)} | "
                f"{drop['reject']:12.3f} {power_columns(drop)}"
            )
        print(f"{'':20s} ({seconds:.0f} s of sampling)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
