"""The residual-profile figure: renders from a real (tiny) study, theory lines where covered.

The figure draws the lines :func:`initsim.check` tests against
(:func:`initsim.residual_check.residual_predictions`). Most tests replace that
function by stand-ins, so what is checked is the figure's contract with it:
which inputs it is called with, where its lines are drawn, and that a failing
or misshapen theory only removes lines and is named in the caption; the last
tests use the real theory.
"""

from __future__ import annotations

import io
import math
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import initsim
from initsim import residual_check
from initsim.report.residual_profiles import residual_profile_figure, residual_theory
from initsim.residual_check import residual_theory_inputs, theory_args
from initsim.result import ResidualResult
from initsim.study import Cell, load_results, read_spec

ROOT = Path(__file__).resolve().parents[1]
THEORY = "initsim.theory.residual"

SPEC = """\
name = "tiny-residual"
seed = 11
description = "a tiny residual study for the figure's tests"

[defaults]
arch = "residual"
activation = "relu"
depth = 4
width = 16
nets = 12
backward = true

[[experiment]]
name = "res"
cases = [
    { init = "he_normal", alpha = 1.0 },
    { init = "he_normal", alpha = 0.5 },
    { norm = "pre" },
    { norm = "post" },
    { scheme = "fixup" },
    { init = { name = "uniform", a = 0.0, b = 1.0 } },
]

[[experiment]]
name = "forward"
backward = false
alpha = 0.5

[[figure]]
kind = "residual-profile"
experiment = "res"

[[figure]]
kind = "residual-profile"
experiment = "forward"
level = 0.9
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Any:
    d = tmp_path_factory.mktemp("residual-study")
    path = d / "spec.toml"
    path.write_text(textwrap.dedent(SPEC))
    initsim.Study.from_toml(path).run(d / "results", threads=1)
    return load_results(d / "results")


def _fake_theory(monkeypatch: pytest.MonkeyPatch, predictions: Any) -> None:
    """Replace the check's predictions (what the figure draws) by ``predictions(ti, backward)``."""
    monkeypatch.setattr(
        residual_check, "residual_predictions", lambda ti, *, backward: predictions(ti, backward)
    )


def _dashed(fig: Any) -> list[tuple[str, np.ndarray]]:
    return [
        (line.get_color(), np.asarray(line.get_ydata(), dtype=float))
        for ax in fig.axes
        for line in ax.get_lines()
        if line.get_linestyle() == "--" and len(line.get_xdata())
    ]


def _legend(fig: Any) -> list[str]:
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def _render(fig: Any) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    assert buf.tell() > 1000


def _flat(caption: str) -> str:
    return re.sub(r"\s+", " ", caption)


def test_the_study_loads_residual_results(study: Any) -> None:
    cells = study.cells_of("res")
    assert len(cells) == 6
    for c in cells:
        assert isinstance(c.result, ResidualResult)
        assert c.result.q.shape == (12, 4) and c.result.grad_sq is not None
    assert study.cells_of("forward")[0].result.grad_sq is None


def test_figure_draws_theory_where_covered_and_names_it(
    study: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Any] = []

    def predictions(ti, backward):
        calls.append(ti)
        return np.full(ti.blocks, 7.0), np.full(ti.blocks, 3.0) if backward else None

    _fake_theory(monkeypatch, predictions)
    cells = study.cells_of("res")
    fig, caption = residual_profile_figure(study, cells, {})
    _render(fig)
    dashed = _dashed(fig)
    # five covered cells, two panels each; the uniform(0, 1) cell (C5) has none
    assert sorted({colour for colour, _ in dashed}) == ["C0", "C1", "C2", "C3", "C4"]
    assert len(dashed) == 10
    assert all(np.allclose(y, 7.0) or np.allclose(y, 3.0) for _, y in dashed)
    assert all(len(y) == 4 for _, y in dashed)
    # what the theory was called with: He branches, the fixup scale and zero layer, the norms
    by_norm = {(c.norm, c.sigma_w2) for c in calls}
    assert ("none", (2.0, 2.0)) in by_norm and ("pre", (2.0, 2.0)) in by_norm
    assert ("post", (2.0, 2.0)) in by_norm
    assert [list(c.alpha) for c in calls[:2]] == [[1.0] * 4, [0.5] * 4]
    # fixup's zero last layer: F = 0, given to the maps as alpha = 0 (they need sigma_w2 > 0)
    (fixup,) = [c for c in calls if c.sigma_w2[-1] == 0.0]
    sigma, alpha, _ = theory_args(fixup)
    assert sigma == [1.0, 1.0] and np.array_equal(alpha, np.zeros(4))
    text = _flat(caption)
    for phrase in (
        "initsim.theory.residual.residual_q_map",
        "residual_grad_map",
        "Dashed lines: theory",
        "drawn for every cell but res-005",
        "x^(l+1) = skip x^l + alpha F(x^l)",
        "x^(l+1) = skip x^l + alpha F(N(x^l)) (Pre-LN)",
        "x^(l+1) = N(skip x^l + alpha F(x^l)) (Post-LN)",
        "F(u) = W_2 phi(W_1 u)",
        "95% Student-t confidence intervals",
        "12 independent random nets per cell",
        "4 blocks, stream width n = 16",
        "fixup: norm none, alpha 1, skip 1, init [variance_scaling",
        "res-005: the theory covers zero-mean symmetric random (or zero) branch weights; "
        "branch layer 1 ('uniform', law 'uniform') is neither",
        "Study seed 11",
    ):
        assert phrase in text, phrase


def test_labels_name_every_varying_parameter(study: Any) -> None:
    cells = study.cells_of("res")
    fig, _ = residual_profile_figure(study, cells, {})
    labels = _legend(fig)[: len(cells)]
    assert labels == [
        "he_normal, alpha 1",
        "he_normal, alpha 0.5 = 1/sqrt(L)",  # depth 4
        "he_normal, Pre-LN",
        "he_normal, Post-LN",
        "scheme fixup",  # fixup sets the init: no he_normal default in its label
        "uniform(a=0, b=1)",
    ]


@pytest.mark.parametrize("failure", ["raises", "shape", "grad-shape", "missing"])
def test_a_cell_without_theory_is_drawn_and_said(
    study: Any, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    def boom(ti, backward):
        raise RuntimeError("boom")

    if failure == "raises":
        _fake_theory(monkeypatch, boom)
        expected = "the residual theory failed (RuntimeError: boom)"
    elif failure == "shape":
        _fake_theory(monkeypatch, lambda ti, backward: (np.ones(ti.blocks - 1), None))
        expected = "the residual theory returned 3 values for 4 blocks"
    elif failure == "grad-shape":
        _fake_theory(monkeypatch, lambda ti, backward: (np.ones(ti.blocks), np.ones(2)))
        expected = "the residual theory returned 2 values for 4 blocks"
    else:
        monkeypatch.setitem(sys.modules, THEORY, None)  # the real one's import raises
        expected = (
            "the residual theory failed (ModuleNotFoundError: import of initsim.theory.residual"
        )
    cells = study.cells_of("res")
    fig, caption = residual_profile_figure(study, cells, {})
    _render(fig)
    assert _dashed(fig) == []
    text = _flat(caption)
    assert "No theory lines are drawn" in text and "residual_q_map" in text
    assert f"every cell but res-005: {expected}" in text, text[text.find("No theory") :][:600]
    assert "theory (mean-field)" not in _legend(fig)


def test_forward_only_cell_has_one_panel_and_level_option(
    study: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_theory(monkeypatch, lambda ti, backward: (np.ones(ti.blocks), None))
    cells = study.cells_of("forward")
    fig, caption = residual_profile_figure(study, cells, {"level": 0.9, "title": "T"})
    assert len(fig.axes) == 1
    text = _flat(caption)
    assert "90% Student-t" in text and "grad_sq" not in text
    assert "drawn for forward-000" in text
    assert _legend(fig)[0] == "alpha 0.5 = 1/sqrt(L)"
    with pytest.raises(ValueError, match="'level' must be in"):
        residual_profile_figure(study, cells, {"level": 1.5})


def test_an_mlp_cell_is_a_clear_error(study: Any) -> None:
    r = initsim.simulate(depth=2, width=8, nets=3, seed=0, progress=False)
    cell = Cell("mlp-000", "mlp", "simulate", {"depth": 2}, r, None, (9, 0), {})
    with pytest.raises(ValueError, match=r'residual nets .arch = "residual".; cell mlp-000'):
        residual_profile_figure(study, [cell], {})


def test_report_builds_with_the_residual_page(study: Any, tmp_path: Path) -> None:
    pypdf = pytest.importorskip("pypdf")
    from initsim.report import build_report

    pdf = build_report(study, tmp_path / "r.pdf")
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() or "" for p in pypdf.PdfReader(pdf).pages))
    assert "Residual networks: the stream and its gradient across blocks" in text
    assert "residual_q_map" in text


# ---------------------------------------------------------------- hand-made results


def _fake_result(**config: Any) -> ResidualResult:
    blocks = 3
    base = {
        "arch": "residual",
        "activation": "relu",
        "activation_param": 0.0,
        "init": ["he_normal", "he_normal"],
        "init_params": [{}, {}],
        "width": 8,
        "width_branch": 8,
        "depth": blocks,
        "branch_layers": 2,
        "alpha": [0.2] * blocks,
        "skip": [1.0] * blocks,
        "in_scale": [1.0] * blocks,
        "act_scale": 1.0,
        "norm": "none",
        "norm_kind": "layernorm",
        "eps": 1e-5,
        "scheme": None,
        "bias_std": 0.0,
        "nets": 4,
        "inputs": 1,
        "input": "sphere",
        "backward": False,
    }
    base.update(config)
    ones = np.ones((4, blocks))
    return ResidualResult(
        q=ones,
        branch_share=ones * 0.1,
        branch_q=ones,
        dead_fraction=ones * 0.5,
        saturated_fraction=ones * 0.0,
        grad_sq=None,
        first_nonfinite_layer=np.zeros(4, dtype=np.int64),
        provenance={"config": base},
    )


def test_sigma_w2_per_branch_layer_from_the_config() -> None:
    # fans (n, nb), (nb, nb), (nb, n): glorot_normal's 2 fan_in / (fan_in + fan_out)
    result = _fake_result(
        init=["glorot_normal", "lecun_normal", "zeros"],
        init_params=[{}, {}, {}],
        width=8,
        width_branch=24,
        branch_layers=3,
    )
    ti, reason = residual_theory_inputs(result)
    assert reason is None and ti.sigma_w2 == (pytest.approx(2 * 8 / 32), 1.0, 0.0)
    one = _fake_result(init=["he_normal"], init_params=[{}], branch_layers=1)
    assert residual_theory_inputs(one)[0].sigma_w2 == (2.0,)
    shifted = _fake_result(init=["he_normal", "constant"], init_params=[{}, {"value": 0.1}])
    ti, reason = residual_theory_inputs(shifted)
    assert ti is None and "branch layer 2" in reason and "constant" in reason
    th = residual_theory(shifted)
    assert th.q is None and th.q_reason == reason
    broken = _fake_result(init=["he_normal"], init_params=[{}])  # 1 name for 2 layers
    th = residual_theory(broken)
    assert th.q is None and "could not be read" in th.q_reason


def test_the_scales_reach_the_real_theory() -> None:
    # NF-ResNet's gamma (act_scale) and 1 / beta_l (in_scale) are the maps' own keywords
    from initsim.theory.residual import residual_q_map

    nf = _fake_result(act_scale=2.0, in_scale=[1.0, 0.9, 0.8])
    th = residual_theory(nf)
    assert th.q is not None and th.grad_sq is None and th.grad_reason is None
    expected = residual_q_map(
        initsim.activations.get("relu"), [2.0, 2.0], [0.2] * 3, 3, 1.0,
        act_scale=2.0, in_scale=[1.0, 0.9, 0.8], eps=1e-5,
    )  # fmt: skip
    np.testing.assert_allclose(th.q, expected, rtol=1e-14)
    plain = residual_theory(_fake_result())
    assert not np.allclose(plain.q, th.q)


def test_given_input_array_has_no_theory() -> None:
    th = residual_theory(_fake_result(input="array"))
    assert th.q is None and "input='sphere' or 'gaussian'" in th.q_reason


def test_real_theory_matches_the_he_relu_recursion(study: Any) -> None:
    """He/ReLU branches, m = 2, no norm: E[q^(l+1)] = (1 + 2 alpha^2) E[q^l], exactly."""
    pytest.importorskip(THEORY)
    for c, alpha in zip(study.cells_of("res")[:2], (1.0, 0.5), strict=True):
        th = residual_theory(c.result)
        assert th.q is not None, th.q_reason
        np.testing.assert_allclose(th.q, (1 + 2 * alpha**2) ** np.arange(1, 5), rtol=1e-6)
    fixup = residual_theory(study.cells_of("res")[4].result)  # zero last layer: F = 0
    np.testing.assert_array_equal(fixup.q, np.ones(4))
    np.testing.assert_array_equal(fixup.grad_sq, np.ones(4))
    np.testing.assert_allclose(study.cells_of("res")[4].result.q, 1.0, rtol=1e-12)  # x^0 kept
    fig, caption = residual_profile_figure(study, study.cells_of("res"), {})
    assert "Dashed lines: theory" in _flat(caption)
    assert math.isfinite(float(np.nansum(_dashed(fig)[0][1])))


# ---------------------------------------------------------------- the shipped specs


def test_shipped_residual_study_is_valid() -> None:
    import tomllib

    path = ROOT / "reports" / "residual-scaling.toml"
    spec = read_spec(path)
    ids = [c.id for c in spec.cells]
    assert len(ids) == 13 and ids[0] == "alpha-000" and ids[-1] == "schemes-005"
    for cell in spec.cells:
        assert cell.params["arch"] == "residual" and cell.params["depth"] == 32
    raw = tomllib.loads(path.read_text())
    assert [f["kind"] for f in raw["figure"]] == ["residual-profile"] * 3
    assert {f["experiment"] for f in raw["figure"]} == {"alpha", "norm", "schemes"}
    schemes = {c.params["scheme"] for c in spec.cells if "scheme" in c.params}
    assert schemes == {"gpt2", "deepnorm", "fixup", "nf", "stable", "rezero"}
    study = initsim.Study.from_toml(path)  # what `initsim study run` reads
    assert study is not None


def test_default_report_has_a_residual_page() -> None:
    import tomllib

    from initsim.cli.report import default_spec_path

    raw = tomllib.loads(default_spec_path().read_text())
    figs = [f for f in raw["figure"] if f["kind"] == "residual-profile"]
    assert len(figs) == 1
    (exp,) = [e for e in raw["experiment"] if e["name"] == figs[0]["experiment"]]
    assert exp["arch"] == "residual"
    cells = len(exp.get("cases", [None]))
    assert cells * exp["nets"] * exp["depth"] * exp["width"] <= 5 * 200 * 16 * 64  # cheap
