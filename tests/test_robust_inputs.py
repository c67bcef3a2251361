"""Bad arguments to ``simulate`` and ``check`` give ValueErrors that name the parameter (issue 14).

Item 13: strings where numbers or flags belong, a non-result passed to
``check``, one claim given as a string.
"""

from __future__ import annotations

import numpy as np
import pytest

import initsim
from initsim.checks import check

SMALL = {"depth": 2, "width": 8, "nets": 2, "seed": 0}


@pytest.fixture(scope="module")
def result():
    return initsim.simulate(depth=3, width=16, nets=20, seed=0, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bias_std": "0.1"}, "bias_std"),
        ({"saturation_threshold": "x"}, "saturation_threshold"),
        ({"histograms": {"bins": 5, "h_range": ("a", 1.0)}}, r"histograms\['h_range'\]"),
        ({"histograms": {"bins": 5, "h_range": "ab"}}, r"histograms\['h_range'\]"),
        ({"histograms": {"bins": 5, "h_range": 3}}, r"histograms\['h_range'\]"),
        ({"histograms": {"bins": 5, "act_range": (0, None)}}, r"histograms\['act_range'\]"),
        ({"histograms": {"bins": 5, "h_range": (True, 2)}}, r"histograms\['h_range'\]"),
        ({"histograms": {"bins": "5"}}, r"histograms\['bins'\]"),
        ({"histograms": 2.5}, "histograms"),
        ({"backward": "yes"}, "backward"),
        ({"backward": 1}, "backward"),
        ({"progress": "no"}, "progress"),
        ({"progress": 0}, "progress"),
    ],
)
def test_simulate_refuses_wrong_types_naming_the_parameter(kwargs, message, capsys):
    with pytest.raises(ValueError, match=message):
        initsim.simulate(**SMALL, **kwargs)
    assert capsys.readouterr().err == ""  # nothing ran: no progress bar


def test_simulate_accepts_bools_and_none():
    for flag in (True, False, np.bool_(True)):
        r = initsim.simulate(**SMALL, backward=flag, progress=False)
        assert (r.grad_sq is not None) == bool(flag)
    initsim.simulate(**SMALL, progress=None)
    # integer ranges stay as given (they are part of the config and its hash)
    r = initsim.simulate(**SMALL, histograms={"bins": 4, "h_range": (-3, 3)}, progress=False)
    assert r.provenance["config"]["histograms"]["h_range"] == (-3, 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": "0.01"}, "alpha"),
        ({"alpha": True}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"sigma_w2": "2"}, "sigma_w2"),
        ({"sigma_w2": -1.0}, "sigma_w2"),
        ({"sigma_b2": "0.1"}, "sigma_b2"),
        ({"claims": ["preserves-varianse"]}, "unknown claim 'preserves-varianse'"),
        ({"claims": 3}, "claims"),
    ],
)
def test_check_refuses_bad_arguments_naming_the_parameter(result, kwargs, message):
    with pytest.raises(ValueError, match=message):
        check(result, **kwargs)


@pytest.mark.parametrize("bad", ["x", None, 3, {"q": np.ones((10, 2))}])
def test_check_wants_a_simulation_result(bad):
    with pytest.raises(ValueError, match="SimulationResult"):
        check(bad)


def test_check_takes_one_claim_as_a_string(result):
    one = check(result, claims="preserves-variance")
    listed = check(result, claims=["preserves-variance"])
    assert one.rows == listed.rows
    assert any(r.quantity.startswith("claim") for r in one.rows)
    numpy_alpha = check(result, alpha=np.float64(0.01), sigma_w2=np.float64(2.0))
    assert numpy_alpha.alpha == 0.01
