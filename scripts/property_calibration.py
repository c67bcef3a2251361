"""Calibrate the statistical property tests: measured rejection rates against their levels.

Each statistical property of ``tests/test_properties_engine.py`` makes one
test per hypothesis example, at level ``ALPHA = 1e-6`` (a Bonferroni bound
over the p-values it computes). This script runs the very functions those
tests call over many seeds, at the extreme sizes the strategies can draw
(the narrowest and the most uneven width profiles, the deepest nets, the
samplers with atoms), and prints the fraction of seeds rejected at nominal
levels 0.05, 0.01 and 0.001 with a 95% Clopper-Pearson interval:

- ``test``: the example's decision (Bonferroni p-value <= alpha), the rate a
  run of the property sees; it must not exceed alpha (a row FAILs when the
  interval lies above alpha);
- ``each p``: every p-value of every example pooled; each statistic is exact,
  so this rate should be close to alpha (below it where a KS test meets
  atoms, where it is conservative), not just below it.

``1e-6`` itself is too small to measure in minutes; it holds because the
statistics are exact (chi-square, binomial and beta pivots, exact KS
p-values), which is what the rows at larger levels check.

Two control rows run the test the He/ReLU property used before issue 20
(z-tests of the mean of ``q^6`` against 2 and of the difference between two
widths, 2000 nets per width) over the same seeds: at widths 2 and 3 it
rejects far more often than its level, at 8 and 9 (the narrowest it drew)
more often at the smaller levels, which shows what the calibration detects.
In parallel runs (``--jobs``) a case's time is the time since the start.

Usage
-----
``python scripts/property_calibration.py [--seeds N] [--first-seed S] [--only NAME ...]
[--jobs J]``; the defaults (200 seeds, one process) take about three minutes
on two idle cores.

Exit status 0 when no statistic rejects significantly more often than its
level, 1 otherwise (the control rows never count).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from initsim import simulate  # noqa: E402
from tests import strategies as S  # noqa: E402
from tests import test_properties_engine as P  # noqa: E402

LEVELS = (0.05, 0.01, 0.001)
N, W, D = S.NARROWEST, S.WIDEST, S.DEEPEST


@dataclass(frozen=True)
class Case:
    """One statistic at one worst-case size.

    Attributes
    ----------
    name : str
        Short identifier (``--only`` takes it, or a prefix of it).
    what : str
        The sizes, in words.
    pvalues : callable
        ``pvalues(seed) -> dict`` of the example's p-values.
    control : bool
        A known-invalid test, shown for comparison only.
    combine : callable
        The example's p-value from its p-values (the test's decision).
    """

    name: str
    what: str
    pvalues: Callable[[int], dict[str, float]]
    control: bool = False
    combine: Callable[[dict[str, float]], float] = P.bonferroni


def old_he_relu_test(seed: int, widths: tuple[int, int]) -> dict[str, float]:
    """Run the He/ReLU property's test from before issue 20 on two widths, depth 6.

    Its three z-tests at 2000 nets per width: Welch for the difference of the
    two widths' mean ``q^L``, and each mean against 2. An example failed when
    any of them fell below the level (the case's ``combine`` is ``min``).
    """
    a, b = (
        simulate(activation="relu", init="he_normal", depth=6, width=w, nets=2000, seed=seed + k).q[
            :, -1
        ]
        for k, w in enumerate(widths)
    )

    def z_pvalue(x: np.ndarray, expected: float) -> float:
        return float(
            2 * stats.norm.sf(abs(x.mean() - expected) / (x.std(ddof=1) / np.sqrt(x.size)))
        )

    se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    return {
        "welch": float(2 * stats.norm.sf(abs(a.mean() - b.mean()) / se)),
        f"width {widths[0]}": z_pvalue(a, 2.0),
        f"width {widths[1]}": z_pvalue(b, 2.0),
    }


#: The scale and the fan mode cancel from the chi-square pivot (its values are
#: the same for every scale and mode), so the linear rows use one of each.
CASES = (
    Case(
        "linear-narrow",
        f"linear, widths [{N}], n0 = 1, exact",
        lambda s: P.linear_pvalues(s, [N], 1, 2.0, "fan_avg", "exact"),
    ),
    Case(
        "linear-deep",
        f"linear, widths [{N}] * {D}, n0 = 1, dense",
        lambda s: P.linear_pvalues(s, [N] * D, 1, 0.5, "fan_out", "dense"),
    ),
    Case(
        "he-relu-narrow",
        f"He/ReLU, widths [{N}], n0 = 1, exact",
        lambda s: P.he_relu_pvalues(s, [N], 1, "exact"),
    ),
    Case(
        "he-relu-deep",
        f"He/ReLU, widths [{N}] * {D} (dead layers), n0 = 1, dense",
        lambda s: P.he_relu_pvalues(s, [N] * D, 1, "dense"),
    ),
    Case(
        "he-relu-uneven",
        f"He/ReLU, widths [{W}, {N}] * {D // 2}, n0 = {W}, exact",
        lambda s: P.he_relu_pvalues(s, [W, N] * (D // 2), W, "exact"),
    ),
    Case(
        "ks-relu-atoms",
        f"exact vs dense, relu, width {N}, depth 4, 1 input (atoms: q = 0, grad_sq = 0)",
        lambda s: P.exact_dense_pvalues(s, "relu", "he_normal", 1, N, 4, 0.0),
    ),
    Case(
        "ks-gram",
        f"exact (Gram) vs dense, relu, orthogonal, width {N}, depth 4, 2 inputs, bias 0.5",
        lambda s: P.exact_dense_pvalues(s, "relu", "orthogonal", 2, N, 4, 0.5),
    ),
    Case(
        "ks-sigmoid",
        "exact vs dense, sigmoid, glorot, width 12, depth 4, 1 input, bias 0.5",
        lambda s: P.exact_dense_pvalues(s, "sigmoid", "glorot_normal", 1, 12, 4, 0.5),
    ),
    Case(
        "control-old-w8",
        "CONTROL: the old z-tests of E[q^6] = 2, widths 8 and 9 (its narrowest)",
        lambda s: old_he_relu_test(s, (8, 9)),
        control=True,
        combine=lambda p: min(p.values()),
    ),
    Case(
        "control-old-w2",
        "CONTROL: the same z-tests at widths 2 and 3",
        lambda s: old_he_relu_test(s, (2, 3)),
        control=True,
        combine=lambda p: min(p.values()),
    ),
)


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact binomial confidence interval for a rate of ``k`` successes in ``n`` trials.

    Parameters
    ----------
    k, n : int
        Successes and trials (``n > 0``).
    confidence : float
        Coverage of the interval.

    Returns
    -------
    tuple of float
        Lower and upper ends.
    """
    tail = (1.0 - confidence) / 2.0
    lo = 0.0 if k == 0 else float(stats.beta.ppf(tail, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1.0 - tail, k + 1, n - k))
    return lo, hi


def rate_text(k: int, n: int) -> str:
    """Return ``rate [lo, hi]`` for ``k`` in ``n``."""
    lo, hi = clopper_pearson(k, n)
    return f"{k / n:.4f} [{lo:.4f}, {hi:.4f}]"


def run_seeds(name: str, seeds: list[int]) -> list[dict[str, float]]:
    """Return the p-values of case ``name`` for each seed (a worker's task)."""
    case = next(c for c in CASES if c.name == name)
    return [case.pvalues(s) for s in seeds]


def report(case: Case, per_seed: list[dict[str, float]], seconds: float) -> tuple[bool, list[str]]:
    """Return whether a case holds its levels, and its report lines."""
    combined = np.array([case.combine(p) for p in per_seed])
    each = np.array([v for p in per_seed for v in p.values()])
    ok = True
    lines = [f"{case.name}: {case.what} ({seconds:.0f} s)"]
    for alpha in LEVELS:
        k = int(np.sum(combined <= alpha))
        lo, _ = clopper_pearson(k, combined.size)
        holds = lo <= alpha
        ok &= holds
        if case.control:
            verdict = "control: within its level" if holds else "control: ABOVE its level"
        else:
            verdict = "ok" if holds else "ABOVE LEVEL"
        lines.append(
            f"  alpha {alpha:<6} test {rate_text(k, combined.size)}   "
            f"each p {rate_text(int(np.sum(each <= alpha)), each.size)} "
            f"(n = {each.size})   {verdict}"
        )
    return ok, lines


def main(argv: list[str] | None = None) -> int:
    """Run the calibration from the command line; return the exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="cases: " + ", ".join(c.name for c in CASES),
    )
    parser.add_argument("--seeds", type=int, default=200, help="seeds per case (default 200)")
    parser.add_argument("--first-seed", type=int, default=10_000, help="first seed (default 10000)")
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help="run the cases whose names start with NAME"
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="worker processes (default 1: this process)"
    )
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.jobs < 1:
        parser.error("--seeds and --jobs must be at least 1")
    cases = [c for c in CASES if not args.only or any(c.name.startswith(o) for o in args.only)]
    if not cases:
        parser.error(f"no case matches {args.only}; cases: {', '.join(c.name for c in CASES)}")
    # seed and seed + 1 feed two samplers: even seeds only, so no two examples share a stream
    seeds = [args.first_seed + 2 * i for i in range(args.seeds)]
    print(
        f"{args.seeds} seeds per case; rate [95% Clopper-Pearson interval]; "
        f"the property tests run at alpha = {P.ALPHA:g} per example",
        flush=True,
    )
    failed = []
    if args.jobs == 1:
        for case in cases:
            started = time.perf_counter()
            ok, lines = report(case, run_seeds(case.name, seeds), time.perf_counter() - started)
            print("\n".join(lines), flush=True)
            if not ok and not case.control:
                failed.append(case.name)
    else:
        # one Numba thread per worker; "spawn" keeps Numba's threading layer out of fork
        os.environ["NUMBA_NUM_THREADS"] = "1"
        chunks = [seeds[i :: args.jobs] for i in range(args.jobs)]
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
            started = time.perf_counter()
            futures = {c.name: [pool.submit(run_seeds, c.name, ch) for ch in chunks] for c in cases}
            for case in cases:
                per_seed = [p for f in futures[case.name] for p in f.result()]
                ok, lines = report(case, per_seed, time.perf_counter() - started)
                print("\n".join(lines), flush=True)
                if not ok and not case.control:
                    failed.append(case.name)
    print(f"FAIL: {', '.join(failed)}" if failed else "every statistic holds its levels")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
