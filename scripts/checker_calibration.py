"""Measured false-rejection rates and powers of ``initsim.check``, next to computed ones.

Run: python scripts/checker_calibration.py [--seed-offset 0] [--law-draws 20000]

Runs the checks of ``tests/test_checks.py`` at the sizes and (by default) the
seeds those tests use, and prints for each:

- the measured rejection count and rate with its 95% Clopper-Pearson interval,
- the rate computed without the checker: ``one_row_rate`` (closed-form moments
  of ``q^1`` and the studentized z-test expanded to ``O(1/N)``) for the
  one-row checks, ``holm_fwer_lower_bound`` for the depth-4 Holm check, and
  the plain ``P(|Z + delta| > z)`` for comparison,
- a numpy Monte Carlo of the same per-net law (``q^1 = (s R + beta) C`` with
  ``R``, ``C`` scaled chi-squares; for depth 4 the product chain of the
  ``E[q]`` rows), which checks the closed forms' approximations and uses
  neither the engine nor the checker,
- the interval the test accepts (two-sided 99.9% binomial).

The whole run takes one to two minutes on two cores. ``--seed-offset`` shifts
every seed, to measure on runs the tests never see.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

from tests import test_checks as tc


def _clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact two-sided ``level`` interval of a binomial proportion."""
    a = (1.0 - level) / 2.0
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1.0 - a, k + 1, n - k))
    return lo, hi


def _plain_rate(case: tc.OneRowRun) -> float:
    """``P(|Z + delta| > z_{alpha/2})`` with the true standard error (no O(1/N) terms)."""
    claim = case.s if case.claim is None else case.claim
    beta = case.bias_std**2
    mean, var, _, _ = tc.q1_moments(case.s, beta, case.input_dim, case.width)
    delta = math.sqrt(case.nets) * (mean - claim - beta) / math.sqrt(var)
    z = stats.norm.isf(case.alpha / 2.0)
    return float(stats.norm.cdf(delta - z) + stats.norm.cdf(-delta - z))


def _law_mc_one_row(case: tc.OneRowRun, draws: int, rng: np.random.Generator) -> float:
    """Rejection rate of the one-row z-test on samples of the exact per-net law of ``q^1``."""
    claim = case.s if case.claim is None else case.claim
    beta = case.bias_std**2
    z = stats.norm.isf(case.alpha / 2.0)
    hits = 0
    for lo in range(0, draws, 2000):
        reps = min(2000, draws - lo)
        r = rng.chisquare(case.input_dim, (reps, case.nets)) / case.input_dim
        c = rng.chisquare(case.width, (reps, case.nets)) / case.width
        q = (case.s * r + beta) * c
        t = (q.mean(axis=1) - claim - beta) / (q.std(axis=1, ddof=1) / math.sqrt(case.nets))
        hits += int(np.sum(np.abs(t) > z))
    return hits / draws


def _law_mc_holm_q_rows(draws: int, rng: np.random.Generator) -> float:
    """P(some E[q] row of the depth-4 He/ReLU check has p <= alpha / m), exact per-net law."""
    run = tc.HOLM_RUN
    n, depth, nets = run["width"], run["depth"], run["nets"]
    c = stats.norm.isf(tc.ALPHA / (2 * tc.HOLM_ROWS))
    hits = 0
    for lo in range(0, draws, 1000):
        reps = min(1000, draws - lo)
        q = 2.0 * rng.chisquare(n, (reps, nets)) / n  # sphere input, sigma_w2 = 2
        tmax = np.zeros(reps)
        for layer in range(depth):
            if layer:
                alive = rng.binomial(n, 0.5, (reps, nets))
                relu2 = np.where(alive > 0, rng.chisquare(np.maximum(alive, 1)), 0.0)
                q = q * (2.0 / n) * relu2 * rng.chisquare(n, (reps, nets)) / n
            t = (q.mean(axis=1) - 2.0) / (q.std(axis=1, ddof=1) / math.sqrt(nets))
            tmax = np.maximum(tmax, np.abs(t))
        hits += int(np.sum(tmax > c))
    return hits / draws


def _line(name: str, hits: int, runs: int, computed: str, accept: tuple[int, int]) -> str:
    lo, hi = _clopper_pearson(hits, runs)
    inside = "yes" if accept[0] <= hits <= accept[1] else "NO"
    return (
        f"{name:<28} {hits:>5}/{runs:<5} {hits / runs:7.4f} [{lo:.4f}, {hi:.4f}]  {computed}  "
        f"test accepts {accept[0]}..{accept[1]}: {inside}"
    )


def main(argv: list[str] | None = None) -> int:
    """Measure and print every rate; return 1 if one falls outside its test's interval."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seed-offset", type=int, default=0, help="added to every seed (0: the tests' seeds)"
    )
    parser.add_argument(
        "--law-draws",
        type=int,
        default=20_000,
        help="runs of the numpy Monte Carlo of the exact per-net law",
    )
    args = parser.parse_args(argv)
    rng = np.random.default_rng(20_260_419)
    started = time.perf_counter()
    failures = 0

    print("rejections of initsim.check: measured [95% Clopper-Pearson] vs computed")
    print(f"seeds: those of tests/test_checks.py + {args.seed_offset}\n")
    print(
        "one-row checks (relu, depth 1, input='gaussian'; computed: O(1/N) model | plain | law MC)"
    )
    for case in (tc.NULL_ONE_ROW, *tc.PLANTED):
        shifted = range(case.seeds.start + args.seed_offset, case.seeds.stop + args.seed_offset)
        hits = replace(case, seeds=shifted).rejections()
        model = case.rate()
        law = _law_mc_one_row(case, args.law_draws, rng)
        law_se = math.sqrt(law * (1 - law) / args.law_draws)
        computed = f"{model:.4f} | {_plain_rate(case):.4f} | {law:.4f}+-{law_se:.4f}"
        # the null's test is centred on alpha (the nominal claim), the powers on the model
        accept = tc.binomial_interval(len(shifted), case.alpha if case.claim is None else model)
        print(
            f"  alpha={case.alpha:g} nets={case.nets} n0={case.input_dim} n1={case.width} "
            f"bias_std={case.bias_std:g} sigma_w2={case.s:g} claimed={case.claim}"
        )
        print("  " + _line(case.name, hits, len(shifted), computed, accept))
        failures += not accept[0] <= hits <= accept[1]

    run = tc.HOLM_RUN
    seeds = range(tc.HOLM_SEEDS.start + args.seed_offset, tc.HOLM_SEEDS.stop + args.seed_offset)
    print(
        f"\ndepth-4 Holm check (relu he_normal, width {run['width']}, {run['nets']} nets, "
        f"backward, sphere input: {tc.HOLM_ROWS} rows; alpha={tc.ALPHA:g})"
    )
    hits = tc.count_rejections(seeds, tc.ALPHA, rows=tc.HOLM_ROWS, **run)
    floor = tc.holm_fwer_lower_bound(run["width"], run["depth"], tc.ALPHA, tc.HOLM_ROWS)
    law = _law_mc_holm_q_rows(args.law_draws, rng)
    law_se = math.sqrt(law * (1 - law) / args.law_draws)
    accept = (
        tc.binomial_interval(len(seeds), floor)[0],
        tc.binomial_interval(len(seeds), tc.ALPHA)[1],
    )
    computed = f"bound {floor:.4f} (law MC of E[q] rows {law:.4f}+-{law_se:.4f}), <= {tc.ALPHA:g}"
    print("  " + _line("Holm, false rejections", hits, len(seeds), computed, accept))
    failures += not accept[0] <= hits <= accept[1]

    print(f"\n{time.perf_counter() - started:.0f} s; {failures} outside the tests' intervals")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
