"""The shaping-profile figure: renders from the shipped study, and its caption states the verdicts.

The figure draws, per pair cell, the mean output correlation and length with
their bands and the mean-field lines, and its caption gives each cell's
verdict from check_pair against its claim (its own shaping, or for an
unshaped cell the shaping of the cell the figure's ``claim`` names). The
tests run reports/deep-shaping.toml (three cells, a second or two) and read
the caption's verdicts back; the claim option must change the plain ReLU
cell's verdict, and bad options are refused when the spec is read.
"""

from __future__ import annotations

import io
import re
import textwrap
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import initsim
from initsim.report import FIGURE_KINDS, build_report
from initsim.report.shaping_profiles import pair_verdict, shaping_profile_figure
from initsim.study import SpecError, load_results, read_spec

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "reports" / "deep-shaping.toml"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Any:
    d = tmp_path_factory.mktemp("deep-shaping")
    initsim.Study.from_toml(SHIPPED).run(d / "results")
    return load_results(d / "results")


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _verdicts(caption: str) -> dict[str, tuple[str, str]]:
    """cell id -> (verdict, Holm p text) as the caption states them."""
    found = re.findall(
        r"(depth-100-\d{3}) \([^;]*?\) against [^;]*?: (PASS|FAIL) \(Holm p ([^,]+), alpha = 0\.01",
        _flat(caption),
    )
    return {cell: (verdict, p) for cell, verdict, p in found}


def _figure(study: Any, **options: Any) -> tuple[Any, str]:
    figure = study.figures[0]
    opts = {k: v for k, v in figure.items() if k not in ("kind", "experiment")}
    opts.update(options)
    return shaping_profile_figure(study, study.cells_of(figure["experiment"]), opts)


def test_the_figure_renders_and_its_caption_names_the_verdicts(shipped) -> None:
    fig, caption = _figure(shipped)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    assert buf.tell() > 5000
    verdicts = _verdicts(caption)
    assert verdicts.keys() == {"depth-100-000", "depth-100-001", "depth-100-002"}, caption
    assert verdicts["depth-100-000"][0] == "PASS"  # TAT against its own C_net(0) = 0.9
    assert verdicts["depth-100-001"] == ("FAIL", "< 1e-300")  # plain ReLU against TAT's claim
    assert verdicts["depth-100-002"][0] == "PASS"  # DKS tanh against its own maps
    flat = _flat(caption)
    assert "depth-100-001 (relu, no shaping, sigma_w2 2) against depth-100-000's TAT" in flat
    assert "C_net(0) = 0.9" in flat and "Holm-adjusted family p" in flat
    assert "Study seed 20260601" in flat
    # every cell drawn: markers, one dashed theory line per panel, the claim dotted
    dashed = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    dotted = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_linestyle() == ":"]
    assert len([ln for ln in dashed if len(ln.get_xdata())]) == 3 * 2
    claim_lines = [ln for ln in dotted if len(ln.get_xdata())]
    assert len(claim_lines) == 2 and {ln.get_color() for ln in claim_lines} == {"C1"}
    tat_c = next(ln for ln in dashed if ln.get_color() == "C0" and ln.axes is fig.axes[0])
    assert np.allclose(claim_lines[0].get_ydata(), tat_c.get_ydata())  # TAT's own line
    assert tat_c.get_ydata()[-1] == pytest.approx(0.9, abs=1e-9)


def test_the_claim_option_decides_the_plain_relu_verdict(shipped) -> None:
    _, caption = _figure(shipped, claim=None)
    verdicts = _verdicts(caption)
    assert verdicts["depth-100-001"][0] == "PASS"  # held to its own He/ReLU maps it passes
    assert "against its own relu maps at sigma_w2 2" in _flat(caption)
    _, caption = _figure(shipped, claim={"depth-100-001": "depth-100-002"})
    assert _verdicts(caption)["depth-100-001"][0] == "FAIL"  # against DKS's C(0) = 0
    assert "depth-100-002's DKS shaping" in _flat(caption)


def test_the_holm_p_value_is_the_familys(shipped) -> None:
    relu = shipped.cells_of("depth-100")[1].result
    tat = shipped.cells_of("depth-100")[0].result.activation
    for alpha in (0.01, 0.2):
        v = pair_verdict(relu, alpha, tat)
        p = [r.p_value for r in v.report.rows]
        assert v.holm_p == min(1.0, len(p) * min(p))
        assert (v.verdict == "FAIL") == (v.holm_p <= alpha)
    few = replace(relu, k11=relu.k11[:3], k22=relu.k22[:3], k12=relu.k12[:3])
    v = pair_verdict(few, 0.01)
    assert v.verdict == "N/A" and "at least" in v.reason


def test_the_shipped_pdf_has_the_figure_and_its_verdicts(shipped, tmp_path) -> None:
    pypdf = pytest.importorskip("pypdf")
    pdf = build_report(shipped, tmp_path / "deep-shaping.pdf")
    text = _flat(" ".join(p.extract_text() for p in pypdf.PdfReader(pdf).pages))
    assert "TAT and DKS at depth 100" in text
    assert re.search(r"depth-100-001 \(relu, no shaping, sigma_w2 2\) against .*?: FAIL", text)


def _spec_with_figure(tmp_path: Path, figure: str) -> Path:
    text = SHIPPED.read_text().split("[[figure]]")[0] + "[[figure]]\n" + textwrap.dedent(figure)
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("figure", "needle"),
    [
        ('claim = "depth-100-009"\n', "'depth-100-009' is not a cell of the figure"),
        ('claim = "depth-100-001"\n', "depth-100-001 has shaping = 'none'"),
        ('claim = { "depth-100-000" = "depth-100-002" }\n', "held to its own shaping"),
        ("claim = 3\n", "claim must be the id of a shaped cell"),
        ("alpha = 1.5\n", "option 'alpha' must be a number in (0, 1)"),
        ("level = 0\n", "option 'level' must be a number in (0, 1)"),
    ],
)
def test_bad_options_are_refused_when_the_spec_is_read(tmp_path, figure, needle) -> None:
    head = 'kind = "shaping-profile"\nexperiment = "depth-100"\n'
    path = _spec_with_figure(tmp_path, head + figure)
    key = figure.split(" ")[0]
    line = path.read_text().splitlines().index(figure.strip()) + 1
    with pytest.raises(SpecError) as info:
        read_spec(path)
    assert needle in str(info.value)
    assert str(info.value).startswith(f"s.toml, line {line}: "), (str(info.value), key)


def test_a_claim_of_another_depth_and_non_pair_cells_are_refused(tmp_path) -> None:
    text = SHIPPED.read_text().split("[[figure]]")[0] + textwrap.dedent(
        """\
        [[experiment]]
        name = "shallow"
        kind = "pair"
        activation = "relu"
        sigma_w2 = 2.0
        depth = 20
        width = 64
        nets = 20

        [[experiment]]
        name = "mlp"
        depth = 3
        width = 8
        nets = 4

        [[figure]]
        kind = "shaping-profile"
        experiment = ["depth-100", "shallow"]
        claim = "depth-100-000"
        """
    )
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(SpecError, match="shaped for depth 100 but shallow-000 has depth 20"):
        read_spec(path)
    path.write_text(
        text.replace('["depth-100", "shallow"]', '"mlp"').replace('claim = "depth-100-000"\n', "")
    )
    with pytest.raises(SpecError, match="draws 'pair' cells; mlp-000 are not"):
        read_spec(path)


def test_a_report_of_a_bad_claim_is_refused_before_drawing(shipped, tmp_path) -> None:
    bad = replace(
        shipped,
        figures=[{"kind": "shaping-profile", "experiment": "depth-100", "claim": "nope"}],
    )
    with pytest.raises(ValueError, match=r"figure 1 \(shaping-profile\): claim: 'nope'"):
        build_report(bad, tmp_path / "r.pdf")
    assert not list(tmp_path.iterdir())


def test_the_default_report_draws_every_kind_and_its_shaping_cells_give_the_verdicts(
    tmp_path,
) -> None:
    from initsim.cli.report import default_spec_path

    path = default_spec_path()
    raw = tomllib.loads(path.read_text())
    assert sorted({f["kind"] for f in raw["figure"]}) == sorted(FIGURE_KINDS)
    assert "shaping-profile" in FIGURE_KINDS
    spec = read_spec(path)
    figure = next(f for f in spec.figures if f["kind"] == "shaping-profile")
    initsim.Study(spec).run(tmp_path / "r", only=figure["experiment"])
    study = load_results(tmp_path / "r")
    cells = study.cells_of(figure["experiment"])
    assert [c.params["nets"] * c.params["depth"] for c in cells] == [5000, 5000]  # small cells
    options = {k: v for k, v in figure.items() if k not in ("kind", "experiment")}
    _, caption = shaping_profile_figure(study, cells, options)
    flat = _flat(caption)
    assert re.search(r"shaping-000 \(TAT leaky_relu [^;]*: PASS", flat), flat
    assert re.search(r"shaping-001 \(relu, no shaping, sigma_w2 2\) against [^;]*: FAIL", flat)
