"""Tests for initsim.plan and initsim.keywords: one validated plan, one table of keywords."""

from __future__ import annotations

import inspect
import time
import tracemalloc

import numpy as np
import pytest

import initsim
from initsim import initializers, keywords
from initsim import plan as plan_module
from initsim.cli import build_parser
from initsim.plan import (
    MAX_DEPTH,
    MAX_WIDTH,
    DenseLayer,
    RunTooLargeError,
    available_memory,
    choose_method,
    make_plan,
    memory_estimate,
)
from initsim.residual import make_residual_plan


def test_simulate_signature_defaults_are_the_keyword_table():
    sig = inspect.signature(initsim.simulate)
    for name, kw in keywords.SIMULATE.items():
        assert sig.parameters[name].default == kw.default, name
    plan_sig = inspect.signature(make_plan)
    residual_sig = inspect.signature(make_residual_plan)
    residual_only = ("arch", *keywords.RESIDUAL_KEYS)
    for name, kw in keywords.SIMULATE.items():
        if name not in residual_only:
            assert plan_sig.parameters[name].default == kw.default, name
        if name != "arch":  # a residual plan takes every keyword but the architecture
            assert residual_sig.parameters[name].default == kw.default, name


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


# --------------------------------------------------------------------------- memory (issue 14)

GIB = 1 << 30


@pytest.fixture
def machine_16gib(monkeypatch):
    """A machine with 16 GiB available, whatever this one has."""
    monkeypatch.setattr(plan_module, "available_memory", lambda: 16 * GIB)


@pytest.mark.parametrize(
    ("kwargs", "needles"),
    [
        ({"nets": 1_000_000_000}, ["per-net results", "reduce nets or depth"]),
        ({"nets": 1_000_000_000, "inputs": 1, "depth": 10}, ["GiB"]),
        ({"depth": 100_000_000}, ["per-net results", "reduce nets or depth"]),
        ({"method": "dense", "width": 100_000}, ["weight matrix", "reduce the widths"]),
        ({"width": 2_000_000_000, "depth": 2, "nets": 2}, ["kernels' buffers", "reduce width"]),
        ({"inputs": 200_000, "width": 8, "depth": 2, "nets": 2, "method": "exact"}, ["Gram"]),
    ],
)
def test_runs_larger_than_the_machine_are_refused_up_front(machine_16gib, kwargs, needles):
    started = time.perf_counter()
    with pytest.raises(RunTooLargeError) as info:
        make_plan(**kwargs)
    assert time.perf_counter() - started < 5.0  # before building anything of size depth
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "needs about" in message and "16 GiB are available" in message
    for needle in needles:
        assert needle in message, message


def test_refusal_uses_the_real_machine_too():
    assert available_memory() is None or available_memory() > 0
    with pytest.raises(RunTooLargeError, match="needs about"):
        make_plan(nets=10**15, depth=10, width=8)


def test_widths_depth_and_inputs_are_capped_for_the_kernels():
    with pytest.raises(
        ValueError, match=r"width must be an integer between 1 and 4294967296.*2\*\*32"
    ):
        make_plan(width=10_000_000_000, depth=2, nets=1)
    with pytest.raises(ValueError, match="width must be an integer between 1 and"):
        make_plan(width=[8, MAX_WIDTH + 1], depth=2, nets=1)
    with pytest.raises(ValueError, match="input_dim must be an integer between 1 and"):
        make_plan(width=8, input_dim=2**70, depth=2, nets=1)
    with pytest.raises(ValueError, match="depth must be an integer between 1 and"):
        make_plan(depth=MAX_DEPTH + 1, width=8, nets=1)
    with pytest.raises(ValueError, match="inputs must be an integer between 1 and"):
        make_plan(inputs=2**40, width=8, depth=2, nets=1)
    with pytest.raises(ValueError, match=r"histograms\['bins'\] must be an integer between"):
        make_plan(histograms=2**40, width=8, depth=2, nets=1)


def test_layers_drawing_beyond_a_random_substream_are_refused(monkeypatch):
    monkeypatch.setattr(plan_module, "available_memory", lambda: 1 << 60)  # a huge machine
    with pytest.raises(RunTooLargeError, match="substream"):
        make_plan(method="dense", width=70_000, depth=1, nets=1, threads=1)
    with pytest.raises(RunTooLargeError, match="substream"):
        make_plan(width=3_000_000_000, depth=1, nets=1, threads=1)


def test_memory_estimate_is_exposed_and_grows_with_what_is_allocated():
    p = make_plan(depth=10, width=256, nets=100)
    assert (
        p.memory_bytes
        == p.memory["total"]
        == sum(p.memory[k] for k in ("results", "kernels", "plan", "base"))
    )
    dense = make_plan(method="dense", width=3000, depth=2, nets=4, threads=1)
    assert dense.memory["kernel_per_net"] >= 3000 * 3000 * 8  # the weight matrix
    gram = make_plan(width=8, depth=2, nets=4, inputs=500, threads=1, method="exact")
    assert gram.memory["kernel_per_net"] >= 500 * 500 * 8  # a B x B Gram matrix
    back = make_plan(width=64, depth=50, nets=4, backward=True)
    fwd = make_plan(width=64, depth=50, nets=4)
    assert back.memory["kernel_per_net"] > 10 * fwd.memory["kernel_per_net"]  # kept signals
    jac = make_plan(width=64, depth=3, nets=5, method="dense", kernel="jacobian")
    assert jac.memory["kernel_per_net"] >= 2 * 64 * 64 * 8  # the Jacobian products
    gpu = memory_estimate(np.full(4, 64), nets=4, device="cuda")
    assert gpu["kernels"] == 0


def test_memory_estimate_bounds_what_simulate_allocates():
    kwargs = {"depth": 50, "width": 8, "nets": 4000, "backward": True}
    est = make_plan(**kwargs).memory
    initsim.simulate(**kwargs, seed=0, progress=False)  # compile outside the measurement
    tracemalloc.start()
    try:
        initsim.simulate(**kwargs, seed=0, progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 0.7 * est["results"] <= peak <= est["results"] + est["plan"] + (1 << 20)


def test_jacobian_spectrum_and_cli_refuse_like_make_plan(machine_16gib, capsys):
    from initsim.cli import main

    with pytest.raises(RunTooLargeError, match="needs about"):
        initsim.jacobian_spectrum(depth=2, width=60_000, nets=4)
    assert main(["simulate", "--nets", "1000000000"]) == 2
    err = capsys.readouterr().err
    assert "initsim simulate: error: the run needs about" in err
    assert main(["simulate", "--method", "dense", "--width", "100000", "--depth", "2"]) == 2
    assert "reduce the widths" in capsys.readouterr().err
