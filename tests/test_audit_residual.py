"""The audit's residual additions: recognition, theory rows, and GPT-2's scaled residual init."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from initsim.audit import audit  # noqa: E402
from initsim.audit.residual_theory import declared_depth, find_sites  # noqa: E402
from initsim.cli import main  # noqa: E402
from initsim.theory.residual import residual_q_map  # noqa: E402
from reports import example_models as E  # noqa: E402
from tests import audit_models as M  # noqa: E402


def test_sites_of_a_stack_of_pre_ln_blocks():
    sites, graphs = find_sites(M.pre_ln_stack())
    assert [s.label for s in sites] == ["0", "1", "2"]
    assert list(graphs) == [""]  # the Sequential traces: one graph
    first = sites[0]
    assert [(st.kind, st.target) for st in first.steps] == [
        ("norm", "0.norm"),
        ("linear", "0.fc1"),
        ("act", "relu"),
        ("linear", "0.fc2"),
    ]
    assert first.anchor is not None and first.post_norm is None
    assert [s.output_projection for s in sites] == [f"{i}.fc2.weight" for i in range(3)]


def test_two_additions_in_one_block_are_two_sites():
    sites, _ = find_sites(M.TinyGPT())
    assert [s.label for s in sites][:3] == ["blocks.0[1]", "blocks.0[2]", "blocks.1[1]"]
    assert len(sites) == 8
    assert all(s.output_projection.endswith("c_proj.weight") for s in sites)


def test_attention_and_convolution_branches_are_found_but_not_modelled():
    sites, _ = find_sites(E.TinyTransformer())
    assert len(sites) == 6  # three additions per block, two blocks
    reasons = [s.unmodelled for s in sites]
    assert reasons[0] == "blocks.0.attn (MultiheadAttention)", reasons[0]
    assert reasons[1].startswith(".transpose()"), reasons[1]
    assert reasons[2] is None  # x + fc2(gelu(fc1(norm2(x))))
    report = audit(E.TinyTransformer, tokens=(100, 8), inits=10, seed=0, progress=False)
    rows = report.residual_theory
    assert [r.verdict for r in rows] == ["N/A", "N/A", "PASS"] * 2
    assert rows[0].regime.startswith("not modelled")


def test_an_untraceable_model_is_searched_inside():
    class Loop(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList([M.PreLNBlock(), M.PreLNBlock()])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 1e9:  # data-dependent control flow: torch.fx cannot trace it
                return x
            for b in self.blocks:
                x = b(x)
            return x

    sites, graphs = find_sites(Loop())
    assert sorted(graphs) == ["blocks.0", "blocks.1"]
    assert [s.label for s in sites] == ["blocks.0", "blocks.1"]
    report = audit(Loop, input_shape=(16,), inits=12, seed=2, progress=False)
    assert [r.verdict for r in report.residual_theory] == ["PASS", "PASS"]
    assert all(r.regime == "exact" for r in report.residual_theory)


def test_post_norm_site_and_eps():
    sites, _ = find_sites(M.PostLNBlock())
    (site,) = sites
    assert site.post_norm == "norm" and site.post_eps == pytest.approx(1e-5)
    assert [st.kind for st in site.steps] == ["linear", "act", "linear"]
    row = audit(M.PostLNBlock, input_shape=(16,), inits=10, seed=0).residual_theory[0]
    assert row.verdict == "PASS" and row.regime.startswith("mean-field")
    assert row.predicted == pytest.approx(1.0, rel=1e-3)  # (x - mean) / sd has mean square ~1


def test_multipliers_and_dropout_enter_the_branch_map():
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(16, 16)
            self.gamma = nn.Parameter(torch.full((16,), 0.5))
            self.drop = nn.Dropout(0.2)
            nn.init.kaiming_normal_(self.fc.weight, nonlinearity="relu")
            nn.init.zeros_(self.fc.bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.drop(self.fc(torch.relu(x)) * self.gamma) * 3.0

    (site,) = find_sites(Scaled())[0]
    assert [st.kind for st in site.steps] == ["act", "linear", "param", "dropout", "scale"]
    report = audit(Scaled, input_shape=(16,), inits=40, seed=0, progress=False)
    row = report.residual_theory[0]
    sw = next(s.sigma_w2 for s in report.tensors if s.entry.path == "fc.weight")
    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(0))
    q_x = float((x.double() ** 2).mean())
    # relu on the raw input (mean field): E[relu^2] = q_x / 2; then gamma^2, 1 / (1 - p), 3^2
    assert row.predicted == pytest.approx(q_x * (1 + sw / 2 * 0.25 / 0.8 * 9), rel=1e-12)
    assert row.verdict == "PASS"


def test_the_rows_predictions_agree_with_the_residual_length_map():
    """He ReLU pre-LN: E[q^l] of initsim.theory.residual_q_map, from the measured laws."""
    report = audit(M.pre_ln_stack, input_shape=(16,), inits=200, seed=3, progress=False)
    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(0))
    q0 = float((x.double() ** 2).mean())
    laws = {s.entry.path: s for s in report.tensors}
    sw = [laws[f"0.fc{k}.weight"].sigma_w2 for k in (1, 2)]
    theory = residual_q_map("relu", sw, 1.0, 3, q0, norm="pre", eps=0.0)
    pred = np.array([r.predicted for r in report.residual_theory])
    # the rows condition on the measured stream; over 200 re-inits their means follow the map
    # up to LayerNorm's eps = 1e-5 and the sampling of q (a 95%-level check of each block)
    obs = np.array([r.observed for r in report.residual_theory])
    half = np.array([r.interval[1] - r.observed for r in report.residual_theory])
    assert np.all(np.abs(pred - theory) < half), (pred, theory, half)
    assert np.all(np.abs(obs - theory) < half), (obs, theory, half)
    assert [r.verdict for r in report.residual_theory] == ["PASS"] * 3


def test_a_non_centred_branch_fails_its_exact_row():
    report = audit(M.NonCentredResidual, input_shape=(16,), inits=20, seed=4, progress=False)
    rows = report.residual_theory
    assert all(r.regime == "exact" for r in rows)
    assert rows[-1].verdict == "FAIL" and rows[-1].observed > 1.2 * rows[-1].predicted
    hit = [f for f in report.findings if f.rule == "signal-vs-theory"]
    assert hit and all("residual addition" in f.tensor for f in hit)


def test_the_declared_depth():
    assert declared_depth(M.TinyGPT()) == (4, "TinyGPT.config.n_layer = 4")
    assert declared_depth(M.pre_ln_stack()) is None


def test_gpt2_scaled_init_never_applied_is_found_with_its_expected_variance():
    report = audit(M.TinyGPTScaleLost, input_shape=(32,), inits=10, seed=0, progress=False)
    (f,) = [f for f in report.findings if f.rule == "residual-scale-not-applied"]
    assert "8 of 8 branch output projections" in f.evidence
    assert "config.n_layer = 4" in f.evidence
    want = 0.02**2 / 8
    assert f"Var = {want:.4g}" in f.expected and "2 n_layer = 8" in f.expected
    assert "c_proj.weight" in f.fix
    assert report.provenance["declared_depth"] == "TinyGPTScaleLost.config.n_layer = 4"
    off = audit(M.TinyGPTScaleLost, input_shape=(32,), inits=10, seed=0, scaled_residual=False)
    assert not [f for f in off.findings if f.rule == "residual-scale-not-applied"]


def test_without_a_declared_depth_the_rule_needs_to_be_told():
    class Undeclared(M.TinyGPTScaleLost):
        def __init__(self) -> None:
            super().__init__()
            self.config = None

    quiet = audit(Undeclared, input_shape=(32,), inits=10, seed=0, progress=False)
    assert quiet.findings == []
    told = audit(Undeclared, input_shape=(32,), inits=10, seed=0, scaled_residual=True)
    (f,) = told.findings
    assert f.rule == "residual-scale-not-applied" and "told" in f.evidence


def test_scaled_residual_is_validated():
    from initsim.audit import AuditUsageError

    with pytest.raises(AuditUsageError, match="scaled_residual must be None, True or False"):
        audit(M.TinyGPT, scaled_residual="yes")


def test_command_line_scaled_residual_and_json(capsys):
    ref = "tests.audit_models:TinyGPTScaleLost"
    args = ["audit", ref, "--input-shape", "32", "--inits", "10", "--json"]
    assert main(args) == 3
    doc = json.loads(capsys.readouterr().out)
    assert doc["findings"][0]["rule"] == "residual-scale-not-applied"
    assert len(doc["residual_theory"]) == 8
    assert all(r["verdict"] == "PASS" for r in doc["residual_theory"])
    assert main([*args, "--scaled-residual", "no"]) == 0
    capsys.readouterr()
    assert main(["audit", ref, "--input-shape", "32", "--inits", "10"]) == 3
    out = capsys.readouterr().out
    assert "residual additions" in out and "blocks.3[2]" in out


def test_a_zero_initialised_branch_is_exactly_the_stream():
    rows = audit(M.PreLNResidual, input_shape=(32,), inits=10, seed=0).residual_theory
    assert all(r.verdict == "PASS" and math.isclose(r.observed, r.predicted) for r in rows)


def test_a_skip_multiplier_deep_norm():
    sites, _ = find_sites(M.deep_norm_stack())
    assert [s.label for s in sites] == ["0", "1", "2"]
    first = sites[0]
    assert first.root != first.skip and first.anchor == first.root  # the branch reads x
    assert [st.kind for st in first.steps] == ["linear", "act", "linear"]
    assert first.post_norm == "0.norm"
    report = audit(M.deep_norm_stack, input_shape=(16,), inits=30, seed=1, progress=False)
    rows = report.residual_theory
    assert [r.verdict for r in rows] == ["PASS"] * 3
    assert all(r.regime.startswith("mean-field") for r in rows)
    assert report.findings == []


def test_a_parameter_skip_multiplier_is_measured_as_added():
    class Beta(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.beta = nn.Parameter(torch.tensor(0.5))
            self.fc1, self.fc2 = nn.Linear(16, 32), nn.Linear(32, 16)
            for layer in (self.fc1, self.fc2):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.beta * x + self.fc2(torch.relu(self.fc1(x)))

    (site,) = find_sites(Beta())[0]
    assert site.root == "x" and site.skip != "x"
    report = audit(Beta, input_shape=(16,), inits=40, seed=0, progress=False)
    (row,) = report.residual_theory
    laws = {s.entry.path: s for s in report.tensors}
    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(0))
    q_x = float((x.double() ** 2).mean())
    sw = [laws[f"fc{k}.weight"].sigma_w2 for k in (1, 2)]
    # the skip adds 0.25 q_x; the branch reads x itself: exact, sw2 / 2 sw1 q_x
    assert row.regime == "exact" and row.verdict == "PASS"
    assert row.predicted == pytest.approx(q_x * (0.25 + sw[1] / 2 * sw[0]), rel=1e-12)


class _ReLUEnded(nn.Module):
    """``h + relu(fc(h))``, ``h = relu(fc0(x))``: the branch and the skip have positive means."""

    def __init__(self) -> None:
        super().__init__()
        self.fc0, self.fc = nn.Linear(16, 16), nn.Linear(16, 16)
        for layer in (self.fc0, self.fc):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc0(x))
        return h + torch.relu(self.fc(h))


class _ConstantBias(_ReLUEnded):
    """``h + fc(h)`` where ``fc.bias`` is the constant 0.5: ``<h, b>`` is not 0."""

    def __init__(self) -> None:
        super().__init__()
        nn.init.constant_(self.fc.bias, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc0(x))
        return h + self.fc(h)


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        (_ReLUEnded, "the branch does not end in a Linear"),
        (_ConstantBias, "fc.bias is the constant 0.5"),
    ],
)
def test_a_branch_not_centred_given_the_skip_is_not_modelled(model, reason):
    """Their cross term ``2 <a, b>`` is far from 0: a row would be a false positive."""
    report = audit(model, input_shape=(16,), inits=20, seed=0, progress=False)
    (row,) = report.residual_theory
    assert row.verdict == "N/A" and reason in row.regime, row.regime
    assert report.findings == []
