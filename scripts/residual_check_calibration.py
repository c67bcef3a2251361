"""Measured false-rejection rates and powers of ``initsim.check`` on residual nets.

Run: python scripts/residual_check_calibration.py [--seeds 200] [--power-seeds 20]
[--seed-offset 0] [--method auto]

Runs the checks of ``tests/test_residual_check.py`` at the sizes (and, by
default, the seeds) those tests use and prints, for each, the rejection count
with its 95% Clopper-Pearson interval and the interval the test accepts:

- calibration at the level 0.05: the exact ``E[q]`` row of one block (ReLU,
  ``alpha = 0.7``), and the whole Holm family over six Pre-LN blocks;
- power against three planted errors (the run does one thing and its
  recorded configuration claims another): ``alpha`` 5 % too large, GPT-2's
  scaled init not applied, Post-LN with ``Var(w) = 1/n`` where the claim is
  ``2/n``; each check at the level 0.01, as in the tests.

``--seed-offset`` measures on seeds the tests never see; ``--method dense``
repeats the measurement with the dense sampler. About a minute on two cores.
"""

from __future__ import annotations

import argparse
import copy
import time

from scipy import stats

import initsim
from initsim.checks import check

ALPHA = 0.05


def _ci(k: int, n: int) -> str:
    lo = stats.beta.ppf(0.025, k, n - k + 1) if k > 0 else 0.0
    hi = stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
    return f"{k}/{n} = {k / n:.3f} (95% CI {lo:.3f}-{hi:.3f})"


def _claiming(result, **claimed):
    prov = copy.deepcopy(result.provenance)
    prov["config"].update(claimed)
    return type(result)(**{**result.__dict__, "provenance": prov})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--power-seeds", type=int, default=20)
    ap.add_argument("--seed-offset", type=int, default=0)
    ap.add_argument("--method", default="auto", choices=("auto", "exact", "dense"))
    args = ap.parse_args()
    off, method = args.seed_offset, args.method
    accept = tuple(int(v) for v in stats.binom.interval(0.99, args.seeds, ALPHA))
    t0 = time.perf_counter()

    one = 0
    for s in range(args.seeds):
        r = initsim.simulate(arch="residual", depth=1, width=16, nets=300, alpha=0.7,
                             method=method, seed=off + s)  # fmt: skip
        row = next(row for row in check(r, alpha=ALPHA).rows if row.quantity == "E[q]")
        one += row.verdict == "FAIL"
    print(f"calibration, one exact row:     {_ci(one, args.seeds)}   test accepts {accept}")
    holm = 0
    for s in range(args.seeds):
        r = initsim.simulate(arch="residual", depth=6, width=32, nets=200, alpha=0.5, norm="pre",
                             method=method, seed=off + s)  # fmt: skip
        holm += not check(r, alpha=ALPHA).passed
    print(f"calibration, Holm over 6 blocks: {_ci(holm, args.seeds)}   test accepts <= {accept[1]}")

    gpt2 = initsim.simulate(arch="residual", depth=16, width=128, nets=10, scheme="gpt2", seed=0)
    std = initsim.initializers.get("normal", std=0.02)
    plants = {
        "alpha 5% too large": (
            dict(depth=8, alpha=1.05),
            {"alpha": [1.0] * 8},
        ),
        "GPT-2 scaled init not applied": (
            dict(depth=16, norm="pre", init=[std, std]),
            {k: gpt2.provenance["config"][k] for k in ("init", "init_params", "scheme")},
        ),
        "Post-LN, Var(w) = 1/n claimed 2/n": (
            dict(depth=8, norm="post", init="lecun_normal"),
            {"init": ["he_normal"] * 2, "init_params": [{}, {}]},
        ),
    }
    n = args.power_seeds
    for name, (kw, claim) in plants.items():
        found = 0
        for s in range(n):
            r = initsim.simulate(arch="residual", width=128, nets=400, method=method,
                                 seed=off + s, **kw)  # fmt: skip
            found += not check(_claiming(r, **claim), alpha=0.01).passed
        print(f"power, {name + ':':36s} {_ci(found, n)}   test needs >= {round(0.95 * n)}")
    print(f"({time.perf_counter() - t0:.0f} s, method={method})")


if __name__ == "__main__":
    main()
