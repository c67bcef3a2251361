"""Numerics at the edge of float64 (issue 14, items 2 and 14).

- Means, standard errors and intervals over nets stay finite for finite data
  whose squares overflow (``|x| > 1.3e154``), and are bit-identical to the
  plain formulas where those do not overflow.
- The z-tests of :func:`initsim.checks.check` test such layers instead of
  passing them with an infinite standard error.
- Divergent nets emit no RuntimeWarning from ``check`` or the report
  (pytest's ``filterwarnings = error`` turns any warning into a failure).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import initsim
from initsim import initializers
from initsim.checks import check
from initsim.result import SUMMARY_FIELDS, SimulationResult, mean_and_se


def _result(q: np.ndarray, provenance: dict | None = None) -> SimulationResult:
    nets, depth = q.shape
    zeros = np.zeros((nets, depth))
    return SimulationResult(
        q=q,
        act_mean=zeros,
        act_var=q.copy(),
        dead_fraction=zeros,
        saturated_fraction=zeros,
        grad_sq=q.copy(),
        first_nonfinite_layer=np.zeros(nets, dtype=np.int64),
        provenance=provenance or {},
    )


def _plain_interval(v: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The textbook formulas (what layer_interval must equal where they do not overflow)."""
    n = v.shape[0]
    mean = v.mean(axis=0)
    se = v.std(axis=0, ddof=1) / np.sqrt(n)
    half = stats.t.ppf(0.5 + level / 2.0, df=n - 1) * se
    return mean - half, mean + half


def _reference_interval(v: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The same interval computed on data scaled to [-1, 1] per column, then scaled back."""
    s = np.max(np.abs(v), axis=0)
    lo, hi = _plain_interval(v / s, level)
    return lo * s, hi * s


# --------------------------------------------------------------------------- item 2: intervals


def test_interval_is_finite_where_squares_overflow():
    rng = np.random.default_rng(0)
    # log-normal per-net values from 1e150 to 1e300: every square overflows past 1e154
    exps = np.linspace(150, 300, 7)
    q = 10.0 ** exps[None, :] * rng.lognormal(0.0, 0.5, size=(12, 7))
    r = _result(q)
    lo, hi = r.layer_interval("q")
    assert np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))
    ref_lo, ref_hi = _reference_interval(q)
    np.testing.assert_allclose(lo, ref_lo, rtol=1e-12)
    np.testing.assert_allclose(hi, ref_hi, rtol=1e-12)
    mean = r.layer_mean("q")
    np.testing.assert_allclose(mean, q.mean(axis=0), rtol=1e-12)
    assert np.all(lo < mean) and np.all(mean < hi)


def test_mean_is_finite_when_the_sum_overflows():
    q = np.full((4, 2), 1.5e308)
    q[:, 1] = [1e308, 1.7e308, 1.2e308, 1.6e308]
    r = _result(q)
    mean = r.layer_mean("q")
    np.testing.assert_allclose(mean, [1.5e308, 1.375e308], rtol=1e-14)
    lo, hi = r.layer_interval("q")
    assert lo[0] == hi[0] == 1.5e308  # identical values: a zero-width interval
    assert np.isfinite(lo[1]) and lo[1] < mean[1]
    # the true upper bound lies beyond the float64 range: that bound alone is inf
    assert hi[1] == np.inf


def test_interval_not_finite_only_where_the_data_are():
    q = np.abs(np.random.default_rng(1).standard_normal((6, 4))) * 1e200
    q[2, 1] = np.inf
    q[3, 3] = np.nan
    lo, hi = _result(q).layer_interval("q")
    assert np.isfinite(lo[[0, 2]]).all() and np.isfinite(hi[[0, 2]]).all()
    assert not np.isfinite(hi[1]) and np.isnan(lo[3]) and np.isnan(hi[3])


@pytest.mark.parametrize("scale", [1.0, 1e-3, 1e40, 1e150])
def test_interval_is_bit_identical_where_the_plain_formula_holds(scale):
    rng = np.random.default_rng(2)
    q = scale * rng.lognormal(0.0, 1.0, size=(25, 5))
    r = _result(q)
    lo, hi = r.layer_interval("q", 0.9)
    plo, phi = _plain_interval(q, 0.9)
    np.testing.assert_array_equal(lo, plo)
    np.testing.assert_array_equal(hi, phi)
    np.testing.assert_array_equal(r.layer_mean("q"), q.mean(axis=0))


def test_simulated_linear_net_interval_finite_at_every_layer():
    # the command: squares overflow from layer ~580 on, every value stays finite
    r = initsim.simulate(activation="linear", depth=1100, width=8, nets=10, seed=0, progress=False)
    assert np.all(np.isfinite(r.q))
    assert np.max(r.q) > 1e200
    lo, hi = r.layer_interval("q")
    assert np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))
    row = r.to_dict()["layers"][-1]
    assert row["q_ci95"][0] is not None and math.isfinite(row["q_ci95"][1])


def test_cli_simulate_prints_no_infinite_interval(capsys):
    from initsim.cli import main

    code = main(
        ["simulate", "--activation", "linear", "--depth", "1100", "--width", "8", "--nets", "10"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "inf" not in out


# --------------------------------------------------------------------------- checks


def test_mean_and_se_is_plain_where_that_is_finite_and_scaled_where_it_overflows():
    rng = np.random.default_rng(4)
    small = rng.lognormal(size=(30, 3))
    mean, se = mean_and_se(small)
    np.testing.assert_array_equal(mean, small.mean(axis=0))
    np.testing.assert_array_equal(se, small.std(axis=0, ddof=1) / np.sqrt(30))
    big = small * 1e250
    mean, se = mean_and_se(big)
    np.testing.assert_allclose(mean, small.mean(axis=0) * 1e250, rtol=1e-13)
    np.testing.assert_allclose(se, small.std(axis=0, ddof=1) / np.sqrt(30) * 1e250, rtol=1e-13)
    m1, s1 = mean_and_se(big[:, 0])
    assert isinstance(m1, float) and math.isclose(m1, mean[0]) and math.isclose(s1, se[0])


def test_claim_on_exploding_nets_fails_instead_of_passing():
    # q^L ~ 128^75 ~ 1e157: finite, but (q^L - q^1)^2 overflows; a standard error of inf
    # made the paired z-test PASS "preserves-variance" (p = 1) on an exploding net
    r = initsim.simulate(
        activation="relu",
        init=initializers.get("normal", std=1.0),
        depth=75,
        width=256,
        nets=60,
        seed=5,
        progress=False,
    )
    assert np.all(np.isfinite(r.q)) and np.min(r.q[:, -1]) > 1e155
    rep = check(r, claims=["preserves-variance"])
    claim = next(row for row in rep.rows if row.quantity.startswith("claim"))
    assert np.isfinite(claim.interval).all()
    # the p-value is the z-test's on the data in units of 1e160 (scale-free)
    d = (r.q[:, -1] - r.q[:, 0]) / 1e160
    z = d.mean() / (d.std(ddof=1) / math.sqrt(d.size))
    assert math.isclose(claim.p_value, 2 * stats.norm.sf(z), rel_tol=1e-9)
    assert claim.p_value < 1e-4 and claim.verdict == "FAIL"
    assert rep.verdict == "FAIL"


# --------------------------------------------------------------------------- item 14: warnings


@pytest.fixture(scope="module", params=[200, 230])
def divergent(request) -> SimulationResult:
    # relu with Var(W) = 1 at width 64: q grows x32 per layer; its squares overflow
    # from layer ~100 on (the depth 200), q itself past layer ~205
    return initsim.simulate(
        activation="relu",
        init=initializers.get("normal", std=1.0),
        depth=request.param,
        width=64,
        nets=30,
        backward=True,
        seed=0,
        progress=False,
    )


def test_divergent_nets_really_diverge(divergent):
    assert np.max(divergent.q[np.isfinite(divergent.q)]) > 1e270
    assert np.any(divergent.first_nonfinite_layer > 0) == (divergent.depth > 200)


def test_check_of_divergent_nets_emits_no_warning(divergent):
    rep = check(divergent, claims=["preserves-variance"])  # filterwarnings=error
    if divergent.depth > 200:
        assert any(r.regime == "overflow: not tested" for r in rep.rows)
    rep.table()
    for name in SUMMARY_FIELDS:
        divergent.layer_mean(name)
        divergent.layer_interval(name)
    divergent.to_dict(per_net=True)


def test_report_of_divergent_nets_emits_no_warning(divergent, tmp_path):
    pytest.importorskip("pypdf")
    from initsim.report import build_report
    from initsim.study import Cell
    from initsim.study import StudyResults as Study

    depth = divergent.depth
    stable = initsim.simulate(
        activation="relu", depth=depth, width=64, nets=30, backward=True, seed=1, progress=False
    )
    params = {"activation": "relu", "depth": depth, "width": 64, "nets": 30, "backward": True}
    cells = [
        Cell(
            "div-000",
            "div",
            "simulate",
            {**params, "init": {"name": "normal", "std": 1.0}},
            divergent,
            check(divergent),
            (0, 0),
            arrays={},
        ),
        Cell(
            "div-001",
            "div",
            "simulate",
            {**params, "init": "he_normal"},
            stable,
            check(stable),
            (0, 1),
            arrays={},
        ),
    ]
    study = Study(
        name="divergent",
        seed=0,
        spec={"name": "divergent", "experiment": [{"name": "div"}]},
        spec_sha256="cd" * 32,
        provenance={"versions": {"initsim": initsim.__version__}, "threads": 1},
        figures=[
            {"kind": "depth-profile", "experiment": "div"},
            {"kind": "literal-typo", "experiment": "div"},
            {"kind": "phase-diagram", "experiment": "div"},
            {"kind": "finite-width", "experiment": "div"},
        ],
        cells=cells,
        missing=[],
        path=Path(tmp_path),
    )
    study.table()
    out = build_report(study, tmp_path / "divergent.pdf")
    assert Path(out).stat().st_size > 0


def test_study_run_and_report_of_divergent_nets_emit_no_warning(tmp_path):
    pytest.importorskip("pypdf")
    from initsim.report import build_report
    from initsim.study import Study

    spec = tmp_path / "divergent.toml"
    spec.write_text(
        'name = "divergent"\n'
        "seed = 1\n"
        "[[experiment]]\n"
        'name = "div"\n'
        'activation = "relu"\n'
        'init = {name = "normal", std = 1.0}\n'
        "depth = 200\n"
        "width = 64\n"
        "nets = 20\n"
        "backward = true\n"
        "[experiment.checks]\n"
        "alpha = 0.01\n"
        'claims = ["preserves-variance"]\n'
        "[[figure]]\n"
        'kind = "depth-profile"\n'
        'experiment = "div"\n'
    )
    study = Study.from_toml(spec)
    study.run(tmp_path / "out", progress=False)
    results = study.results(tmp_path / "out")
    assert results.table().size == 200
    build_report(results, tmp_path / "divergent.pdf")


def test_jacobian_moments_and_figure_of_exploding_nets_emit_no_warning():
    from types import SimpleNamespace

    from initsim.report.jacobian_spectra import jacobian_spectra_figure

    cells = []
    for act, depth in (("tanh", 300), ("relu", 300)):
        spec = initsim.jacobian_spectrum(
            activation=act,
            init=initializers.get("normal", std=1.0),
            depth=depth,
            width=32,
            nets=5,
            seed=0,
        )
        _, m2 = spec.moments()
        _, se2 = spec.moment_standard_errors()
        if act == "tanh":  # s^4 ~ 1e241: finite moments, finite standard errors
            assert math.isfinite(m2) and math.isfinite(se2) and se2 > 0
        spec.spectrum_variance(normalized=True)
        spec.spectrum_variance_standard_error(normalized=True)
        params = {"activation": act, "init": {"name": "normal", "std": 1.0}}
        cells.append(SimpleNamespace(result=spec, params=params, id=act, spawn_key=(0,)))
    jacobian_spectra_figure(SimpleNamespace(seed=0), cells, {})


def test_training_figure_of_a_diverging_loss_emits_no_warning():
    from types import SimpleNamespace

    from initsim.report.training import training_figure

    # losses close to the float64 range: matplotlib's own log-axis limits overflow there
    loss = np.array([[1.0, 1e10, 1e200, 1e305, np.inf], [1.0, 2.0, 1e250, 1e300, 1e307]])
    grad_norms = np.ones((2, 5, 2))  # (nets, steps, layers): one hidden layer, the output
    grad_norms[:, -1, :] = np.inf  # the gradients diverge with the loss
    result = SimpleNamespace(loss=loss, unit_distance=np.ones((2, 5, 1)), grad_norms=grad_norms)
    params = {"init": "he_normal", "activation": "tanh", "loss": "mse"}
    cell = SimpleNamespace(result=result, params=params, id="t", spawn_key=(0,))
    fig, _ = training_figure(SimpleNamespace(seed=0), [cell], {})
    lo, hi = fig.axes[0].get_ylim()
    assert 0 < lo < 1.0 and 1e307 <= hi <= 1e308


def test_check_of_a_net_whose_q_squares_overflow_raises_nothing():
    # relu with normal(std=1) at width 512: q grows 256-fold per layer and passes 1.3e154
    # near layer 64, where q_moments squared Python floats and raised OverflowError; the
    # moments now overflow to inf and check() says the rows are not tested
    from initsim.theory import finite_width

    mean, var, _ = finite_width.q_moments("relu", 512.0, 0.0, 1.0, [512] * 71)
    assert np.isfinite(mean[:60]).all() and not np.isfinite(var[-1])
    init = initsim.initializers.get("normal", std=1.0)
    r = initsim.simulate(activation="relu", init=init, depth=70, width=512, nets=10, seed=0)
    report = initsim.check(r)
    late = [row for row in report.rows if row.layer >= 66 and row.quantity == "E[q]"]
    assert late and all(row.verdict == "N/A" for row in late)
