"""check() on residual results: calibration at the nominal level, power against planted errors.

Calibration: with one exact row (ReLU, ``norm="none"``, one block) the false
rejection rate over 200 seeds is asserted inside the two-sided 99% binomial
interval around ``alpha``; with many blocks Holm keeps it at most ``alpha``
(the upper end of that interval).

Power: the simulation does one thing and its recorded configuration claims
another (the planted error; the check reads the claim). Each planted error is
found in at least 19 of 20 seeds at the sizes below (power >= 0.95 at the
documented sizes; a binomial(20, 0.95) count is >= 19 with probability 0.74,
so the sizes are chosen for a power near 1, reported in the assertion).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy import stats

import initsim
from initsim.checks import check

ALPHA = 0.05


def _interval(n: int, p: float, level: float = 0.99) -> tuple[int, int]:
    lo, hi = stats.binom.interval(level, n, p)
    return int(lo), int(hi)


def _claiming(result, **claimed):
    """The result with its recorded configuration replaced by a claim (the planted error)."""
    prov = copy.deepcopy(result.provenance)
    prov["config"].update(claimed)
    return type(result)(**{**result.__dict__, "provenance": prov})


@pytest.mark.slow
def test_one_exact_row_rejects_at_the_nominal_rate():
    seeds = 200
    rejected = 0
    for seed in range(seeds):
        r = initsim.simulate(arch="residual", depth=1, width=16, nets=300, alpha=0.7, seed=seed)
        report = check(r, alpha=ALPHA)
        tested = [row for row in report.rows if row.verdict != "N/A"]
        assert [row.quantity for row in tested] == ["E[q]", "E[branch q]"]
        rejected += tested[0].verdict == "FAIL"
    lo, hi = _interval(seeds, ALPHA)
    assert lo <= rejected <= hi, (rejected, lo, hi)


@pytest.mark.slow
def test_holm_over_blocks_keeps_the_family_rate():
    seeds = 200
    failed = 0
    for seed in range(seeds):
        r = initsim.simulate(
            arch="residual", depth=6, width=32, nets=200, alpha=0.5, norm="pre", seed=seed
        )
        failed += not check(r, alpha=ALPHA).passed
    assert failed <= _interval(seeds, ALPHA)[1], failed


def test_correct_configurations_pass():
    for kw in (
        {"alpha": 0.5},
        {"alpha": 0.5, "norm": "pre", "norm_kind": "rmsnorm"},
        {"scheme": "deepnorm"},
        {"scheme": "fixup", "branch_layers": 3},
        {"alpha": [1.0, 0.5, 0.25, 0.125], "branch_layers": 1},
    ):
        r = initsim.simulate(arch="residual", depth=4, width=64, nets=400, seed=11, **kw)
        report = check(r, alpha=0.01)
        assert report.passed, (kw, report.table())
        assert any(row.verdict == "PASS" for row in report.rows)


def _power(make, claim, seeds=20):
    found = 0
    for seed in range(seeds):
        report = check(_claiming(make(seed), **claim), alpha=0.01)
        found += not report.passed
    return found


def test_power_alpha_five_percent_too_large():
    def make(seed):
        return initsim.simulate(arch="residual", depth=8, width=128, nets=400, alpha=1.05,
                                seed=seed)  # fmt: skip

    found = _power(make, {"alpha": [1.0] * 8})
    assert found >= 19, found


def test_power_gpt2_scaled_init_not_applied():
    # the last branch layer drawn with std 0.02 instead of 0.02 / sqrt(2 L): a 2L-fold variance
    def make(seed):
        std = initsim.initializers.get("normal", std=0.02)
        return initsim.simulate(arch="residual", depth=16, width=128, nets=400, norm="pre",
                                init=[std, std], seed=seed)  # fmt: skip

    claim = initsim.simulate(
        arch="residual", depth=16, width=128, nets=10, scheme="gpt2", seed=0
    ).provenance["config"]
    found = _power(make, {k: claim[k] for k in ("init", "init_params", "scheme")})
    assert found >= 19, found


def test_power_post_ln_with_var_1_over_n_where_the_scheme_says_2_over_n():
    def make(seed):
        return initsim.simulate(arch="residual", depth=8, width=128, nets=400, norm="post",
                                init="lecun_normal", seed=seed)  # fmt: skip

    found = _power(make, {"init": ["he_normal"] * 2, "init_params": [{}, {}]})
    assert found >= 19, found


def test_check_refuses_what_the_theory_does_not_cover():
    r = initsim.simulate(arch="residual", depth=2, width=8, nets=20, init="uniform", seed=0)
    with pytest.raises(ValueError, match="zero-mean symmetric"):
        check(r)
    r = initsim.simulate(arch="residual", depth=2, width=8, nets=20, seed=0)
    with pytest.raises(ValueError, match="arch='mlp'"):
        check(r, claims="preserves-variance")
    with pytest.raises(ValueError, match="arch='mlp'"):
        check(r, sigma_w2=2.0)
    r = initsim.simulate(arch="residual", depth=2, width=8, nets=5, seed=0)
    with pytest.raises(ValueError, match="at least"):
        check(r)
    assert np.isfinite(check(initsim.simulate(arch="residual", depth=2, width=8, nets=20)).alpha)
