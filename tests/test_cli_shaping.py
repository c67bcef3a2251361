"""``initsim theory --dks / --tat`` and the trainable depth, from the command line."""

from __future__ import annotations

import json
import math

import pytest

from initsim import theory
from initsim.cli import main


def test_dks_prints_the_parameters_and_meets_the_conditions(capsys):
    assert main(["theory", "--activation", "tanh", "--dks", "--depth", "100", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    s = theory.dks("tanh", 100, zeta=1.5)
    assert doc["method"] == "dks" and doc["depth"] == 100
    assert doc["parameters"]["input_scale"] == s.input_scale
    for name, row in doc["conditions"].items():
        assert row["achieved"] == pytest.approx(row["target"], abs=1e-9), name
    assert main(["theory", "--activation", "tanh", "--dks", "--depth", "100"]) == 0
    out = capsys.readouterr().out
    assert "DKS for tanh at depth 100" in out and "C_net'(1)" in out


def test_tat_leaky_relu_gives_the_slope(capsys):
    argv = ["theory", "--activation", "leaky_relu", "--tat", "--depth", "50", "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    slope = doc["parameters"]["negative_slope"]
    assert slope == pytest.approx(theory.tat("leaky_relu", 50, eta=0.9).base.param, rel=1e-15)
    assert doc["parameters"]["output_scale"] == pytest.approx(
        math.sqrt(2 / (1 + slope**2)), rel=1e-14
    )
    assert doc["conditions"]["C_net(0)"]["achieved"] == pytest.approx(0.9, abs=1e-12)


def test_the_phase_report_has_the_trainable_depth(capsys):
    assert main(["theory", "--activation", "tanh", "--sigma-w2", "1.5", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["trainable_depth"] == pytest.approx(6 * doc["xi_c"], rel=1e-12)


def test_ntk_prints_the_maps_layer_by_layer(capsys):
    argv = ["theory", "--activation", "gelu", "--ntk", "--depth", "10", "--sigma-w2", "2",
            "--c0", "0.3", "--json"]  # fmt: skip
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    p = theory.ntk_map("gelu", 2.0, 0.0, 10, c0=0.3)
    assert doc["ntk_diag"] == pytest.approx(list(p.ntk_diag), rel=1e-15)
    assert doc["ntk_cross"] == pytest.approx(list(p.ntk_cross), rel=1e-15)
    assert len(doc["nngp_diag"]) == 11  # ten hidden layers and the readout
    assert main(argv[:-1]) == 0
    assert "NNGP and NTK of gelu" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--dks"], "--depth"),
        (["--depth", "4"], "--depth applies"),
        (["--ntk", "--depth", "4"], "--sigma-w2"),
        (["--dks", "--depth", "10", "--sigma-w2", "2"], "sigma-w2"),
        (["--dks", "--depth", "0"], "depth"),
        (["--dks", "--depth", "10", "--zeta", "0.5"], "zeta"),
        (["--tat", "--depth", "10", "--eta", "0.99", "--activation", "relu"], "eta"),
    ],
)
def test_bad_shaping_input_is_exit_2(argv, match, capsys):
    assert main(["theory", *argv]) == 2
    assert match in capsys.readouterr().err
