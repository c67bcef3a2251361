"""``initsim audit``: each planted init bug is found and named; clean twins give no finding."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

torch = pytest.importorskip("torch")

from initsim import simulate  # noqa: E402
from initsim.audit import AuditUsageError, audit  # noqa: E402
from initsim.audit.factory import torch_seeds  # noqa: E402
from initsim.audit.inventory import entries  # noqa: E402
from initsim.cli import main  # noqa: E402
from tests import audit_models as M  # noqa: E402


@pytest.mark.parametrize(
    ("buggy", "rule", "tensor", "clean", "shape"), M.PLANTED, ids=[p[1] for p in M.PLANTED]
)
def test_each_planted_bug_is_found_and_its_clean_twin_is_not(buggy, rule, tensor, clean, shape):
    found = audit(buggy, input_shape=shape, inits=10, seed=1).findings
    assert any(f.rule == rule and f.tensor == tensor for f in found), found
    named = next(f for f in found if f.rule == rule and f.tensor == tensor)
    assert named.evidence and named.expected and named.fix
    twin_shape = next(s for m, s in M.CLEAN if m is clean)
    assert audit(clean, input_shape=twin_shape, inits=10, seed=1).findings == []


@pytest.mark.parametrize(("model", "shape"), M.CLEAN, ids=[m.__name__ for m, _ in M.CLEAN])
def test_clean_models_have_no_finding_over_seeds(model, shape):
    for seed in range(10):
        assert audit(model, input_shape=shape, inits=5, seed=seed).findings == [], seed


@pytest.mark.slow
@pytest.mark.parametrize(("model", "shape"), M.CLEAN, ids=[m.__name__ for m, _ in M.CLEAN])
def test_false_positive_budget_100_seeds(model, shape):
    hits = [s for s in range(100) if audit(model, input_shape=shape, inits=10, seed=s).findings]
    assert hits == [], (model.__name__, hits)


def test_laws_and_schemes_of_pytorch_defaults_and_he():
    rows = {s.entry.path: s for s in audit(M.HeMLP, inits=20).tensors}
    w = rows["layers.1.weight"]
    assert w.law == "normal" and w.scheme.startswith("2/fan_in") and w.scheme_fans == "torch"
    assert w.std_interval[0] <= math.sqrt(2.0 / 48) <= w.std_interval[1]
    assert rows["layers.1.bias"].constant == 0.0
    default = {s.entry.path: s for s in audit(M.DefaultMLP, inits=20).tensors}
    for name in ("layers.0.weight", "layers.0.bias"):
        assert default[name].law == "uniform"
        assert default[name].scheme.startswith("1/(3 fan_in)")
    sep = {s.entry.path: s for s in audit(M.SeparateAttention, inits=20).tensors}
    k = sep["mha.in_proj_weight[k]"]  # Glorot of E x E is 1/E: LeCun's value too
    assert k.scheme.startswith(("2/(fan_in + fan_out)", "1/fan_in"))
    assert k.variance == pytest.approx(1.0 / 32, rel=0.02)


def test_fans_as_pytorch_computes_them_and_the_true_ones():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(8, 16, 3, groups=4),
        torch.nn.ConvTranspose2d(16, 8, 2, groups=2),
        torch.nn.Linear(5, 7),
        torch.nn.LayerNorm(7),
        torch.nn.Embedding(11, 6),
        torch.nn.MultiheadAttention(12, 3),
    )
    got = {e.path: e for e in entries(model)}
    conv = got["0.weight"]
    assert (conv.fan_in, conv.fan_out) == (2 * 9, 16 * 9)
    assert (conv.true_fan_in, conv.true_fan_out) == (2 * 9, 4 * 9)
    tconv = got["1.weight"]  # weight (16, 4, 2, 2)
    assert (tconv.fan_in, tconv.fan_out) == (4 * 4, 16 * 4)
    assert (tconv.true_fan_in, tconv.true_fan_out) == (8 * 4, 4 * 4)
    assert (got["2.bias"].fan_in, got["2.bias"].role) == (5, "bias")
    assert got["3.weight"].role == "norm" and got["3.weight"].fan_in is None
    assert got["4.weight"].role == "embedding"
    q = got["5.in_proj_weight[q]"]
    assert q.shape == (12, 12) and (q.fan_in, q.fan_out) == (12, 36)
    assert (q.true_fan_in, q.true_fan_out) == (12, 12)


def test_reinitialisations_are_reproducible_and_seeded():
    a = audit(M.HeMLP, inits=4, seed=3)
    b = audit(M.HeMLP, inits=4, seed=3)
    c = audit(M.HeMLP, inits=4, seed=4)
    assert [s.std for s in a.tensors] == [s.std for s in b.tensors]
    assert [s.std for s in a.tensors] != [s.std for s in c.tensors]
    assert a.provenance["torch_seeds"] == torch_seeds(3, 4)
    assert len(set(torch_seeds(3, 50))) == 50


def test_a_model_instance_is_reinitialised_by_reset_parameters_and_its_hook():
    class Hooked(M.DefaultMLP):
        def _init_weights(self, module):
            if isinstance(module, torch.nn.Linear):
                torch.nn.init.normal_(module.weight, std=0.02)
                torch.nn.init.zeros_(module.bias)

    report = audit(Hooked(), inits=6)
    assert "reset_parameters()" in report.provenance["reinit"]
    assert "_init_weights" in report.provenance["reinit"]
    w = next(s for s in report.tensors if s.entry.path == "layers.0.weight")
    assert w.scheme.startswith("std 0.02")
    # std 0.02 before ReLU at fan_in 24: sigma_w2 = 0.0096, q shrinks ~200-fold a layer
    assert {f.rule for f in report.findings} == {"activation-mismatch"}


def test_usage_errors_are_clear():
    with pytest.raises(AuditUsageError, match=r"returned a int, not a torch\.nn\.Module"):
        audit(lambda: 3, inits=2)
    with pytest.raises(AuditUsageError, match="cannot import module 'no_such_mod_xyz'"):
        audit("no_such_mod_xyz:Model", inits=2)
    with pytest.raises(AuditUsageError, match=r"rejects the example input of shape \(64, 7\)"):
        audit(M.DefaultMLP, input_shape=(7,), inits=2)
    with pytest.raises(AuditUsageError, match="inits must be"):
        audit(M.DefaultMLP, inits=1)
    with pytest.raises(AuditUsageError, match="raised RuntimeError: boom"):
        audit(_raises, inits=2)


def _raises():
    raise RuntimeError("boom")


def test_command_line_exit_codes_and_json(capsys):
    assert main(["audit", "tests.audit_models:HeMLP", "--input-shape", "24", "--inits", "5"]) == 0
    out = capsys.readouterr().out
    assert "no findings" in out and "layers.0.weight" in out
    assert "forward pass: input [64, 24] -> output [64, 10]" in out
    code = main(["audit", "tests.audit_models:PackedAttention", "--inits", "5", "--json"])
    assert code == 3
    doc = json.loads(capsys.readouterr().out)
    assert {f["rule"] for f in doc["findings"]} == {"packed-slice"}
    assert doc["provenance"]["versions"]["torch"] == torch.__version__
    assert len(doc["inventory"]) == 8
    assert main(["audit", "tests.audit_models:Nope", "--inits", "2"]) == 2
    assert "has no attribute 'Nope'" in capsys.readouterr().err
    assert main(["audit", "tests.audit_models:DefaultMLP", "--input-shape", "7"]) == 2
    assert "mat1 and mat2 shapes cannot be multiplied" in capsys.readouterr().err


def test_the_std_interval_covers_the_truth_at_its_level():
    """95% intervals over re-inits: He's std sqrt(2 / 48) inside for about 95% of seeds."""
    truth = math.sqrt(2.0 / 48)
    inside = 0
    for seed in range(40):
        s = next(
            t
            for t in audit(M.HeMLP, inits=8, seed=seed).tensors
            if t.entry.path == "layers.1.weight"
        )
        inside += s.std_interval[0] <= truth <= s.std_interval[1]
    assert 33 <= inside <= 40, inside


def _same_law(a: np.ndarray, b: np.ndarray, alpha: float = 0.01) -> bool:
    """Welch t tests of equal means per column, Holm-combined: True when none rejects."""
    from initsim.checks import holm

    p = [stats.ttest_ind(a[:, j], b[:, j], equal_var=False).pvalue for j in range(a.shape[1])]
    return not any(holm(np.array(p), alpha))


def test_the_dynamic_q_profile_has_the_law_of_initsim_simulate():
    """Same laws, same batch: the audit's per-re-init q and simulate's per-net q agree."""
    audited = audit(M.HeMLP, input_shape=(24,), inits=60, seed=2)
    x = torch.Generator().manual_seed(0)
    batch = torch.randn((64, 24), generator=x).numpy().astype(np.float64)
    layers = ["layers.0", "layers.1", "layers.2", "head"]
    q_audit = np.stack(
        [next(s for s in audited.signals if s.path == p).per_init_q for p in layers], 1
    )
    kw = dict(
        activation="relu", depth=4, width=[48, 48, 48, 10], input_dim=24, inputs=64, input=batch
    )
    same = simulate(init="he_normal", nets=200, seed=5, **kw)
    assert _same_law(q_audit, same.q)
    lecun = simulate(init="lecun_normal", nets=200, seed=5, **kw)  # the control: half the variance
    assert not _same_law(q_audit, lecun.q)


def test_the_residual_stream_q_has_the_law_of_initsim_simulate():
    audited = audit(M.pre_ln_stack, input_shape=(16,), inits=60, seed=3)
    batch = torch.randn((64, 16), generator=torch.Generator().manual_seed(0)).numpy()
    q_audit = np.stack(
        [next(s for s in audited.signals if s.path == str(k)).per_init_q for k in range(3)], 1
    )
    kw = dict(arch="residual", norm="pre", width=16, width_branch=32, depth=3, inputs=64,
              input=batch.astype(np.float64), alpha=1.0, nets=200, seed=7)  # fmt: skip
    assert _same_law(q_audit, simulate(init="he_normal", **kw).q)
    assert not _same_law(q_audit, simulate(init="glorot_normal", **kw).q)


@pytest.mark.slow
def test_the_readme_audit_commands_exit_as_stated(capsys):
    import re
    import shlex
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    lines = [ln for ln in text.splitlines() if ln.startswith("initsim audit ")]
    assert len(lines) >= 2
    for line in lines:
        cmd, _, comment = line.partition("#")
        code = re.search(r"exit (\d+)", comment)
        assert main(shlex.split(cmd)[1:]) == (int(code[1]) if code else 0), line
    out = capsys.readouterr().out
    for rule in (
        "declared-init-ignored",
        "packed-slice",
        "grouped-conv-fan",
        "residual-scale-not-applied",
    ):
        assert rule in out


def test_without_torch_the_audit_says_what_to_install(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    fake = tmp_path / "torch"  # a torch that is not there: importing it fails as when absent
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'torch'\")\n")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root)])}
    code = "import sys\nfrom initsim.cli import main\nsys.exit(main(['audit', 'x:y']))\n"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env
    )
    assert out.returncode == 2, out.stderr
    assert "pip install 'initsim[torch]'" in out.stderr


def test_initsim_audit_is_callable_as_a_function():
    import initsim

    assert initsim.audit(M.HeMLP, inits=2).clean


def test_signal_propagation_plot_of_a_pre_ln_stack_adds_the_branch_variances():
    """At init the branch is uncorrelated with the stream (odd in W2): over re-inits the
    stream's average channel variance grows by the branch's at every block."""
    from initsim.checks import holm

    report = audit(M.pre_ln_stack, input_shape=(16,), inits=60, seed=4)
    assert [r.block for r in report.spp] == ["0", "1", "2"]
    by = {s.path: s for s in report.signals}
    x = torch.randn((64, 16), generator=torch.Generator().manual_seed(0)).double()
    prev = np.full(60, float(x.var(dim=0, unbiased=False).mean()))
    pvals = []
    for k in range(3):
        stream = by[str(k)].per_init["channel_var"]
        branch = by[f"{k}.fc2"].per_init["channel_var"]
        pvals.append(stats.ttest_1samp(stream - prev - branch, 0.0).pvalue)
        prev = stream
    assert not any(holm(np.array(pvals), 0.01)), pvals
    # the stream holds the input's variance (about 1) besides the branches'
    assert all(r.channel_var[0] > r.branch_var[0] + 0.5 > 1.0 for r in report.spp)
    assert report.spp[2].channel_var[0] > report.spp[0].channel_var[0]


def test_the_callers_torch_rng_state_is_left_alone():
    torch.manual_seed(123)
    want = torch.rand(3)
    torch.manual_seed(123)
    audit(M.HeMLP, inits=3)
    assert torch.equal(torch.rand(3), want)


def test_the_pdf_holds_findings_inventory_profiles_and_is_reproducible(tmp_path, capsys):
    pypdf = pytest.importorskip("pypdf")
    a, b = tmp_path / "a.pdf", tmp_path / "b.pdf"
    argv = ["audit", "tests.audit_models:PackedAttention", "--input-shape", "5,32", "--inits", "5"]
    assert main([*argv, "-o", str(a)]) == 3
    assert main([*argv, "-o", str(b)]) == 3
    assert a.read_bytes() == b.read_bytes()  # fixed metadata: same audit, same bytes
    pages = pypdf.PdfReader(a).pages
    assert len(pages) >= 3
    first = pages[0].extract_text()
    assert "packed-slice: mha.in_proj_weight[q]" in first and "torch seeds" in first
    assert "mha.out_proj.weight" in pages[1].extract_text()
    capsys.readouterr()
    bad = tmp_path / "missing" / "x.pdf"
    assert main([*argv, "-o", str(bad)]) == 2
    assert "does not exist" in capsys.readouterr().err and not bad.parent.exists()
