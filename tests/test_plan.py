"""Tests for initsim.plan and initsim.keywords: one validated plan, one table of keywords."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import initsim
from initsim import initializers, keywords
from initsim.cli import build_parser
from initsim.plan import DenseLayer, choose_method, make_plan


def test_simulate_signature_defaults_are_the_keyword_table():
    sig = inspect.signature(initsim.simulate)
    for name, kw in keywords.SIMULATE.items():
        assert sig.parameters[name].default == kw.default, name
    plan_sig = inspect.signature(make_plan)
    for name, kw in keywords.SIMULATE.items():
        assert plan_sig.parameters[name].default == kw.default, name


def test_jacobian_signature_defaults_are_the_keyword_table():
    sig = inspect.signature(initsim.jacobian_spectrum)
    for name, kw in keywords.JACOBIAN.items():
        param = sig.parameters[name]
        if name in keywords.JACOBIAN_REQUIRED:
            assert param.default is inspect.Parameter.empty, name
        else:
            assert param.default == kw.default, name


def test_cli_defaults_and_choices_come_from_the_table():
    parser = build_parser()
    args = parser.parse_args(["simulate"])
    for name in ("activation", "init", "depth", "width", "bias_std", "inputs", "input", "method"):
        assert getattr(args, name) == keywords.SIMULATE[name].default, name
    for bad in (["--method", "fast"], ["--device", "tpu"], ["--input", "cube"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["simulate", *bad])


def test_plan_describes_the_net_block_by_block():
    plan = make_plan(init="glorot_normal", depth=3, width=[8, 16, 4], input_dim=5, nets=2)
    assert plan.widths.tolist() == [5, 8, 16, 4]
    assert all(isinstance(b, DenseLayer) for b in plan.blocks)
    assert [(b.fan_in, b.fan_out) for b in plan.blocks] == [(5, 8), (8, 16), (16, 4)]
    ini = initializers.get("glorot_normal")
    np.testing.assert_array_equal(
        plan.scales, [np.sqrt(ini.variance(b.fan_in, b.fan_out)) for b in plan.blocks]
    )
    codes, params = plan.law_table
    assert codes.shape == (3,) and params.shape[0] == 3


def test_plan_says_why_it_chose_a_sampler():
    assert make_plan(depth=2, width=64).method_reason.startswith("auto: applies")
    dense = make_plan(init="he_uniform", depth=2, width=64)
    assert (dense.method, dense.method_reason) == (
        "dense",
        "auto: the exact sampler cannot run law 'uniform'",
    )
    assert make_plan(depth=2, width=64, method="dense").method_reason == "asked for"
    orth = make_plan(init="orthogonal", depth=2, width=[8, 4], backward=True)
    assert orth.method == "dense" and "narrower" in orth.method_reason


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"depth": 0}, "depth must be an integer >= 1"),
        ({"width": [4, 4]}, "one width per hidden layer"),
        ({"bias_std": -1.0}, "bias_std must be a finite number >= 0"),
        ({"bias_std": True}, "bias_std must be a finite number >= 0"),
        ({"saturation_threshold": float("nan")}, "saturation_threshold"),
        ({"method": "fast"}, "method must be one of auto, exact, dense"),
        ({"device": "tpu"}, "device must be one of cpu, cuda"),
        ({"input": "cube"}, "input must be one of sphere, gaussian or an array"),
        ({"threads": 10_000}, "threads must be between 1 and"),
        ({"chunk_size": 0}, "chunk_size must be an integer >= 1"),
        ({"histograms": {"bins": 5, "colour": 1}}, "histograms has unknown keys"),
        ({"init": "he_uniform", "method": "exact"}, "method='exact' handles"),
    ],
)
def test_plan_rejects_bad_input_naming_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        make_plan(**{"depth": 3, "width": 8, **kwargs})


def test_choose_method_gpu_sends_many_inputs_to_dense():
    law = initializers.get("he_normal").law_spec(64, 64)
    widths = np.full(4, 64)
    assert choose_method("auto", law, 4, False, widths, device="cpu")[0] == "exact"
    method, reason = choose_method("auto", law, 17, False, widths, device="cuda")
    assert method == "dense" and "at most 16 inputs" in reason


def test_simulate_config_keys_are_unchanged():
    # the config's sha256 is recorded with every stored result: its keys are a contract
    r = initsim.simulate(depth=2, width=8, nets=2, input=np.ones(8))
    assert list(r.provenance["config"]) == [
        "activation", "activation_param", "init", "init_params", "widths", "bias_std", "nets",
        "inputs", "input", "method", "backward", "saturation_threshold", "histograms",
        "input_sha256",
    ]  # fmt: skip
