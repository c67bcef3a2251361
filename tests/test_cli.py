"""The ``initsim`` command line."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from initsim import __version__
from initsim.cli import main
from initsim.progress import Progress

pytestmark = pytest.mark.usefixtures("warm_kernels")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_console_script_help_and_version():
    exe = [sys.executable, "-m", "initsim.cli"]
    proc = subprocess.run([*exe, "--help"], capture_output=True, text=True, check=True)
    assert "initializers" in proc.stdout and "simulate" in proc.stdout
    proc = subprocess.run([*exe, "--version"], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == f"initsim {__version__}"


def test_no_command_prints_help(capsys):
    code, out, _ = run(capsys)
    assert code == 0 and "usage: initsim" in out


def test_initializers_table_and_json(capsys):
    code, out, _ = run(capsys, "initializers", "--fan-in", "100", "--fan-out", "50")
    assert code == 0
    he = next(line for line in out.splitlines() if line.startswith("he_normal"))
    assert "2 / fan_in" in he and he.split()[-1] == "2"
    assert "keras.HeNormal" in out and "Differences between frameworks" in out
    code, out, _ = run(capsys, "initializers", "--json")
    doc = json.loads(out)
    rows = {r["name"]: r for r in doc["schemes"]}
    assert rows["glorot_uniform"]["aliases"] == ["xavier_uniform"]
    assert rows["he_normal"]["variance"] == 2 / 256
    named = {r["name"]: r for r in doc["framework_names"]}
    assert named["keras.HeNormal"]["law"] == "truncated_gaussian"
    assert named["torch.kaiming_normal_"]["law"] == "gaussian"
    assert {d["concept"] for d in doc["differences"]} >= {"he_normal", "variance_scaling"}
    code, out, _ = run(capsys, "initializers", "--framework", "jax", "--json")
    assert {r["framework"] for r in json.loads(out)["framework_names"]} == {"jax"}


def test_simulate_table(capsys):
    code, out, _ = run(
        capsys,
        "simulate",
        "--depth",
        "4",
        "--width",
        "32",
        "--nets",
        "50",
        "--backward",
        "--seed",
        "3",
    )
    assert code == 0
    lines = out.splitlines()
    assert "relu / he_normal" in lines[0] and "method exact" in lines[0]
    assert "grad^2" in lines[1]
    rows = [line.split() for line in lines[2:6]]
    assert [r[0] for r in rows] == ["1", "2", "3", "4"]
    q1 = float(rows[0][1])
    assert 1.8 < q1 < 2.2  # He / ReLU, sphere input: E q = 2


def test_simulate_json_matches_api(capsys):
    from initsim import simulate

    code, out, _ = run(
        capsys,
        "simulate",
        "--activation",
        "tanh",
        "--init",
        "glorot_uniform",
        "--depth",
        "3",
        "--width",
        "16,24,8",
        "--input-dim",
        "10",
        "--nets",
        "20",
        "--inputs",
        "2",
        "--seed",
        "5",
        "--json",
        "--per-net",
    )
    assert code == 0
    doc = json.loads(out)
    ref = simulate(
        activation="tanh",
        init="glorot_uniform",
        depth=3,
        width=[16, 24, 8],
        input_dim=10,
        nets=20,
        inputs=2,
        seed=5,
    )
    assert doc["nets"] == 20 and doc["depth"] == 3
    assert doc["q"] == ref.q.tolist()
    assert doc["provenance"]["config_sha256"] == ref.provenance["config_sha256"]
    assert doc["layers"][0]["q"] == pytest.approx(ref.layer_mean("q")[0])


def test_simulate_reports_divergence(capsys):
    code, out, _ = run(
        capsys,
        "simulate",
        "--activation",
        "linear",
        "--init",
        "normal",
        "--depth",
        "300",
        "--width",
        "16",
        "--nets",
        "3",
    )
    assert code == 0
    assert "overflowed to inf/NaN" in out
    code, out, _ = run(
        capsys,
        "simulate",
        "--activation",
        "linear",
        "--init",
        "normal",
        "--depth",
        "300",
        "--width",
        "16",
        "--nets",
        "3",
        "--json",
    )
    doc = json.loads(out)  # valid JSON despite inf/NaN
    assert doc["diverged_nets"] == 3
    assert doc["layers"][-1]["q"] in ("inf", "nan")


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--depth", "0"], "depth"),
        (["--width", "0"], "width"),
        (["--nets", "-3"], "nets"),
        (["--activation", "relux"], "activation"),
        (["--init", "nope"], "nope"),
        (["--bias-std", "-1"], "bias_std"),
        (["--method", "exact", "--init", "uniform"], "dense"),
    ],
)
def test_simulate_bad_input_exit_2(capsys, argv, match):
    code, out, err = run(capsys, "simulate", *argv)
    assert code == 2
    assert out == ""
    assert match in err and "Traceback" not in err


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--width", "a,b"])
    assert exc.value.code == 2
    assert "integer" in capsys.readouterr().err


def test_progress_bar_draws_after_delay_only():
    stream = io.StringIO()
    bar = Progress(total=4, label="x", enabled=True, delay=0.0, stream=stream)
    for _ in range(4):
        bar.update()
    bar.close()
    text = stream.getvalue()
    assert "100.0%" in text and "4/4" in text and "ETA" in text and text.endswith("\n")
    quiet = io.StringIO()
    bar = Progress(total=4, enabled=True, delay=60.0, stream=quiet)
    bar.update(2)
    bar.close()
    assert quiet.getvalue() == ""
    off = io.StringIO()
    bar = Progress(total=1, enabled=None, delay=0.0, stream=off)  # not a terminal
    bar.update()
    bar.close()
    assert off.getvalue() == ""


def test_study_validate_lists_every_cell_with_what_varies(capsys):
    from initsim.cli import main

    spec = Path(__file__).resolve().parents[1] / "reports" / "he-vs-lecun.toml"
    assert main(["study", "validate", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "relu-003  init=lecun_normal width=256" in out
    assert "tanh-000  init=he_normal width=64" in out
    assert out.count("-00") == 8  # one line per cell


def test_a_closed_pipe_ends_quietly(tmp_path):
    # `initsim study validate SPEC | head -1`: the reader goes away after one line,
    # with far more than a pipe's buffer (64 KiB) still to come
    widths = ", ".join(str(w) for w in range(1, 1501))
    spec = tmp_path / "many.toml"
    spec.write_text(
        'name = "many"\nseed = 1\n[[experiment]]\nname = "e"\ndepth = 2\nnets = 2\n'
        f'[experiment.grid]\ninit = ["he_normal", "lecun_normal"]\nwidth = [{widths}]\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "initsim.cli", "study", "validate", str(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"study many: valid, 3000 cells")
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 141, err
    assert err == ""
