"""simulate(arch="residual"): validation, the named schemes, the CLI and the stored form.

The kernel itself (against its numpy twin, invariances, finite differences)
is tested in tests/test_residual_kernel.py; the theory in
tests/test_theory_residual.py.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import initsim
from initsim import initializers as ini
from initsim.cli import main
from initsim.residual import SCHEMES, make_residual_plan, scheme_settings
from initsim.result import ResidualResult

SMALL = {"arch": "residual", "depth": 3, "width": 8, "nets": 4}

BAD = [
    ({"arch": "resnet"}, "arch must be one of"),
    ({**SMALL, "norm": "middle"}, "norm must be one of"),
    ({**SMALL, "norm_kind": "groupnorm"}, "norm_kind must be one of"),
    ({**SMALL, "scheme": "t-fixup"}, "scheme must be one of"),
    ({**SMALL, "alpha": -0.1}, "alpha"),
    ({**SMALL, "alpha": math.inf}, "alpha"),
    ({**SMALL, "alpha": math.nan}, "alpha"),
    ({**SMALL, "alpha": [1.0, 1.0]}, "one value per block"),
    ({**SMALL, "skip": math.nan}, "skip"),
    ({**SMALL, "branch_layers": 0}, "branch_layers"),
    ({**SMALL, "width_branch": 0}, "width_branch"),
    ({**SMALL, "eps": -1e-5}, "eps"),
    ({**SMALL, "norm": "pre", "norm_kind": "batchnorm"}, "inputs >= 2"),
    ({**SMALL, "init": ["he_normal"] * 3}, "one initializer per branch layer"),
    ({**SMALL, "init": ["he_normal", "no_such_init"]}, r"init\[1\]"),
    ({**SMALL, "device": "cuda"}, "device='cuda' runs arch='mlp' only"),
    (
        {**SMALL, "method": "exact", "init": ["he_normal", "he_uniform"]},
        r"Haar-orthogonal and zero.*law 'uniform' \(branch layer 2, init\[1\]\)",
    ),
    (
        {
            **SMALL,
            "method": "exact",
            "init": ["orthogonal"] * 2,
            "width_branch": 4,
            "backward": True,
        },
        r"narrower than its input.*branch layer 1, init\[0\]",
    ),
    ({**SMALL, "histograms": 10}, "histograms"),
    ({**SMALL, "width": [8, 8, 8]}, "stream width, one int"),
    ({**SMALL, "input_dim": 5}, "input_dim"),
    ({**SMALL, "scheme": "fixup", "branch_layers": 1}, "fixup"),
    ({**SMALL, "scheme": "gpt2", "norm": "post"}, "sets norm itself"),
    ({**SMALL, "scheme": "deepnorm", "skip": 1.0}, "sets skip itself"),
    ({**SMALL, "scheme": "fixup", "init": "orthogonal"}, "sets init itself"),
    ({**SMALL, "scheme": "stable", "alpha": 0.5}, "sets alpha itself"),
    ({**SMALL, "init": "dirac"}, "convolution"),
    ({"depth": 3, "width": 8, "nets": 4, "alpha": 0.5}, "arch='residual' only"),
    ({"depth": 3, "width": 8, "nets": 4, "norm": "pre"}, "arch='residual' only"),
]


@pytest.mark.parametrize(("kwargs", "match"), BAD, ids=[m for _, m in BAD])
def test_bad_input_is_a_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        initsim.simulate(**kwargs)


def test_scheme_settings_follow_their_papers():
    L, m = 16, 3
    fixup = scheme_settings("fixup", blocks=L, branch_layers=m)
    inner, last = fixup["init"][0], fixup["init"][-1]
    assert isinstance(last, ini.Zeros)
    # He scaled by L^(-1/(2m-2)) in std: variance 2 L^(-1/(m-1)) / fan_in
    assert inner.variance(64, 64) == pytest.approx(2.0 * L ** (-1 / (m - 1)) / 64, rel=1e-15)
    gpt2 = scheme_settings("gpt2", blocks=L, branch_layers=2)
    assert gpt2["norm"] == "pre"
    assert gpt2["init"][0].variance(1, 1) == pytest.approx(0.02**2, rel=1e-15)
    assert gpt2["init"][1].variance(1, 1) == pytest.approx(0.02**2 / (2 * L), rel=1e-14)
    deep = scheme_settings("deepnorm", blocks=L, branch_layers=2)
    assert deep["norm"] == "post" and deep["skip"] == pytest.approx((2 * L) ** 0.25)
    glorot = deep["init"][0]
    assert glorot.variance(30, 50) == pytest.approx((8 * L) ** -0.5 * 2 / 80, rel=1e-14)
    assert scheme_settings("stable", blocks=L, branch_layers=2)["alpha"] == 0.25
    assert scheme_settings("rezero", blocks=L, branch_layers=2)["alpha"] == 0.0
    assert scheme_settings("skipinit", blocks=L, branch_layers=2)["alpha"] == 0.0
    ls = scheme_settings("layerscale", blocks=L, branch_layers=2, alpha=1e-5)
    assert ls["alpha"] == 1e-5 and ls["norm"] == "pre"
    nf = scheme_settings("nf", blocks=4, branch_layers=2, activation="relu", alpha=0.2)
    np.testing.assert_allclose(nf["in_scale"], 1 / np.sqrt(1 + np.arange(4) * 0.04), rtol=1e-15)
    assert nf["act_scale"] == pytest.approx(1 / math.sqrt(0.5 - 1 / (2 * math.pi)), rel=1e-12)
    assert set(SCHEMES) == {
        "skipinit", "rezero", "fixup", "layerscale", "gpt2", "deepnorm", "nf", "stable"
    }  # fmt: skip


def test_plan_fans_per_branch_layer_and_law_table():
    plan = make_residual_plan(depth=4, width=6, width_branch=10, branch_layers=3, nets=2)
    assert [plan.fans(k) for k in range(3)] == [(6, 10), (10, 10), (10, 6)]
    codes, params = plan.law_table()
    assert codes.shape == (12,) and params.shape[0] == 12
    one = make_residual_plan(depth=2, width=6, branch_layers=1, nets=2)
    assert one.fans(0) == (6, 6)


def test_config_records_the_block_and_is_hashed():
    r = initsim.simulate(**SMALL, alpha=0.5, norm="pre", norm_kind="rmsnorm", seed=3)
    assert isinstance(r, ResidualResult)
    cfg = r.provenance["config"]
    assert cfg["arch"] == "residual" and cfg["alpha"] == [0.5] * 3 and cfg["norm"] == "pre"
    assert cfg["norm_kind"] == "rmsnorm" and cfg["init"] == ["he_normal", "he_normal"]
    assert len(r.provenance["config_sha256"]) == 64
    back = ResidualResult.from_arrays(r.to_arrays(), r.provenance)
    for name in ("q", "branch_share", "branch_q", "dead_fraction", "saturated_fraction"):
        assert np.array_equal(getattr(back, name), getattr(r, name), equal_nan=True)
    assert back.grad_sq is None and r.to_dict()["layers"][0]["block"] == 1


def test_mlp_results_do_not_change_with_the_residual_keywords_at_their_defaults():
    a = initsim.simulate(depth=3, width=8, nets=5, seed=1, backward=True)
    b = initsim.simulate(depth=3, width=8, nets=5, seed=1, backward=True, arch="mlp")
    assert np.array_equal(a.q, b.q) and np.array_equal(a.grad_sq, b.grad_sq)


def test_cli_residual_table_and_exit_2_on_bad_input(capsys):
    code = main(
        ["simulate", "--arch", "residual", "--depth", "3", "--width", "8", "--nets", "5",
         "--alpha", "0.5", "--norm", "pre", "--backward"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "residual, 3 blocks" in out and "share" in out and "grad^2" in out
    code = main(["simulate", "--arch", "residual", "--depth", "3", "--width", "8", "--alpha", "-1"])
    assert code == 2 and "alpha" in capsys.readouterr().err
    code = main(["simulate", "--depth", "3", "--width", "8", "--norm", "pre"])
    assert code == 2 and "arch='residual' only" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "method", "reason"),
    [
        ({}, "exact", "auto: applies"),
        ({"init": "orthogonal", "backward": True}, "exact", "auto: applies"),
        ({"scheme": "fixup"}, "exact", "auto: applies"),  # a zero last layer is exact
        ({"scheme": "gpt2"}, "exact", "auto: applies"),
        ({"init": ["he_normal", "he_uniform"]}, "dense", r"law 'uniform' \(branch layer 2"),
        ({"init": "orthogonal", "width_branch": 4, "backward": True}, "dense", "narrower"),
        ({"init": "orthogonal", "width_branch": 4}, "exact", "auto: applies"),
        ({"inputs": 64, "width": 8}, "dense", "fewer operations than the exact"),
        ({"method": "dense"}, "dense", "asked for"),
        ({"method": "exact"}, "exact", "asked for"),
    ],
)
def test_auto_takes_the_exact_sampler_where_it_applies(kwargs, method, reason):
    r = initsim.simulate(**{**SMALL, **kwargs}, seed=0)
    assert r.provenance["method"] == method
    assert r.provenance["kernel"] == f"residual ({method})"
    assert re.search(reason, r.provenance["method_reason"]), r.provenance["method_reason"]
    assert r.provenance["config"]["method"] == method


@pytest.mark.parametrize("inputs", [1, 3])
def test_exact_results_are_the_same_for_any_threads_and_chunks(inputs):
    kw = {**SMALL, "nets": 9, "inputs": inputs, "backward": True, "norm": "pre",
          "method": "exact", "seed": 5}  # fmt: skip
    base = initsim.simulate(**kw, threads=1, chunk_size=9)
    for threads, chunk in ((2, 4), (1, 2), (2, 9)):
        other = initsim.simulate(**kw, threads=threads, chunk_size=chunk)
        assert np.array_equal(other.q, base.q) and np.array_equal(other.grad_sq, base.grad_sq)
