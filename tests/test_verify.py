"""``initsim verify``: a user's own initializer, checked through the API and the command line.

User modules are written into ``tmp_path`` and imported by name, as a user
would (``initsim verify usermod:my_init`` next to ``usermod.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from initsim import initializers
from initsim.cli.verify import EXIT_FAIL, register
from initsim.verify import (
    DEAD_LIMIT,
    PROFILES,
    Q_RATIO_BAND,
    VerifyUsageError,
    load_target,
    verify,
)

HE = """
def my_init(shape, rng):
    return rng.standard_normal(shape) * np.sqrt(2 / shape[1])
"""
# the seed blog's literal formula: "/ sqrt(1/n_in)" where "* sqrt(1/n_in)" was meant
TYPO = """
def my_init(shape, rng):
    n_out, n_in = shape
    return rng.standard_normal((n_in, n_out)).T / np.sqrt(1 / n_in)
"""
ZEROS = """
def my_init(shape, rng):
    return np.zeros(shape)
"""
LECUN = """
def my_init(shape, rng):
    return rng.standard_normal(shape) * np.sqrt(1 / shape[1])
"""
WRONG_SHAPE = """
def my_init(shape, rng):
    return rng.standard_normal(shape[::-1])
"""
RETURNS_NAN = """
def my_init(shape, rng):
    w = rng.standard_normal(shape)
    w[0, 0] = np.nan
    return w
"""
INT_DTYPE = """
def my_init(shape, rng):
    return np.ones(shape, dtype=np.int64)
"""
NOT_CALLABLE = """
my_init = 0.5
"""
RAISES = """
def my_init(shape, rng):
    raise RuntimeError("boom")
"""
SAMPLER = """
class Init:
    def __init__(self, declared):
        self.declared = declared

    def sample(self, shape, seed=None):
        rng = np.random.default_rng(seed)
        return rng.standard_normal(shape) * np.sqrt(2 / shape[1])

    def variance(self, fan_in, fan_out):
        return self.declared / fan_in

honest = Init(2.0)
liar = Init(1.0)  # claims LeCun's 1/fan_in, samples He's 2/fan_in
"""
# ignores the generator it is given and draws from a module-global one, as a user calling
# np.random.standard_normal would; seeded at import, so the draws (and the PASS) are fixed
UNSEEDED = """
_GLOBAL_RNG = np.random.default_rng(20240517)

def my_init(shape, rng):
    return _GLOBAL_RNG.standard_normal(shape) * np.sqrt(2 / shape[1])
"""

_counter = itertools.count()


@pytest.fixture
def usermod(tmp_path, monkeypatch):
    """Write a user module into tmp_path (the cwd) and return its name."""
    monkeypatch.chdir(tmp_path)
    written: list[str] = []

    def write(source: str) -> str:
        name = f"usermod_{os.getpid()}_{next(_counter)}"
        (tmp_path / f"{name}.py").write_text("import numpy as np\n" + textwrap.dedent(source))
        written.append(name)
        return name

    yield write
    for name in written:
        sys.modules.pop(name, None)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="initsim")
    register(p.add_subparsers(dest="command"))
    return p


def _cli(*argv: str) -> tuple[int, str]:
    args = _parser().parse_args(["verify", *argv])
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = args.func(args)
    return code, buf.getvalue()


# --------------------------------------------------------------------------- the required cases


def test_he_passes_for_relu(usermod):
    report = verify(f"{usermod(HE)}:my_init", activation="relu")
    assert report.passed and report.verdict == "PASS"
    assert {r.property: r.verdict for r in report.rows} == {
        "return contract": "PASS",
        "variance law": "PASS",
        "mean": "PASS",
        "symmetry breaking": "PASS",
        "variance through depth": "PASS",
        "dead units": "PASS",
    }
    law = report.row("variance law")
    assert "2/fan_in" in law.observed and "He" in law.observed
    depth = report.row("variance through depth")
    ratios = np.array(depth.data["ratio"])
    assert ratios.shape == (PROFILES["dev"].depth,)
    assert np.all((ratios >= Q_RATIO_BAND[0]) & (ratios <= Q_RATIO_BAND[1]))
    # He / ReLU: the mean-field ratio is 1 for the fitted sigma_w2 ~ 2
    assert depth.data["sigma_w2"] == pytest.approx(2.0, rel=0.02)
    assert depth.data["mean_field_ratio"] == pytest.approx(1.0, rel=0.1)
    assert report.row("dead units").data["dead_fraction"][-1] < DEAD_LIMIT


def test_catalogue_he_normal_object_passes_with_declared_variance():
    report = verify(initializers.get("he_normal"), activation="relu")
    assert report.passed
    declared = report.row("declared variance")
    assert declared.verdict == "PASS"
    grid = declared.data["grid"]
    assert len(grid) == len(PROFILES["dev"].fans) ** 2
    for cell in grid:
        assert cell["declared"] == 2 / cell["fan_in"]
        assert cell["observed"] == pytest.approx(cell["declared"], rel=0.05)


def test_seed_typo_fails_with_variance_n_in(usermod):
    report = verify(f"{usermod(TYPO)}:my_init", activation="relu")
    assert not report.passed
    law = report.row("variance law")
    assert law.verdict == "FAIL"
    assert "fan_in" in law.observed
    assert "variance is fan_in (n_in) instead of 1/fan_in (1/n_in)" in law.detail
    # minimal failing example: the smallest fan pair, observed Var = fan_in = 16
    assert "(16, 16)" in law.example and "Var(W_ij) = 16" in law.example
    assert "0.125" in law.example  # He's 2/fan_in at fan_in = 16, what relu needs
    power = law.data["power_law"]
    assert power["a"] == pytest.approx(1.0, abs=0.05) and power["b"] == pytest.approx(0, abs=0.05)
    depth = report.row("variance through depth")
    assert depth.verdict == "FAIL" and "exploding" in depth.detail
    assert "layer 2" in depth.example


def test_zeros_fails_symmetry_breaking(usermod):
    report = verify(f"{usermod(ZEROS)}:my_init")
    sym = report.row("symmetry breaking")
    assert sym.verdict == "FAIL"
    assert "identical gradients" in sym.detail and "never separate" in sym.detail
    assert "constant initializer" in sym.example
    assert report.row("variance law").observed.startswith("Var = 0")
    assert report.row("variance through depth").verdict == "FAIL"
    assert report.row("dead units").verdict == "FAIL"
    assert "dead network" in report.row("dead units").detail


def test_lecun_vanishes_for_relu_but_law_is_recognised(usermod):
    report = verify(f"{usermod(LECUN)}:my_init", activation="relu")
    assert report.row("variance law").verdict == "PASS"
    assert "LeCun" in report.row("variance law").observed
    depth = report.row("variance through depth")
    assert depth.verdict == "FAIL" and "vanishing" in depth.detail
    # halving per layer, as the mean field says
    assert depth.data["ratio"][-1] == pytest.approx(0.5 ** (PROFILES["dev"].depth - 1), rel=0.5)
    assert depth.data["mean_field_ratio"] == pytest.approx(depth.data["ratio"][-1], rel=0.5)


def test_tanh_gain_passes_for_tanh():
    report = verify(initializers.get("he_normal", nonlinearity="tanh"), activation="tanh")
    assert report.passed
    assert "tanh gain" in report.row("variance law").observed
    # tanh is not homogeneous: q settles on the mean-field fixed point q* ~ 1.18 q^1
    depth = report.row("variance through depth")
    assert depth.data["ratio"][-1] == pytest.approx(depth.data["mean_field_ratio"], rel=0.1)


# --------------------------------------------------------------------------- objects


def test_sampler_object_declared_variance(usermod):
    name = usermod(SAMPLER)
    assert verify(f"{name}:honest").row("declared variance").verdict == "PASS"
    liar = verify(f"{name}:liar")
    row = liar.row("declared variance")
    assert row.verdict == "FAIL" and not liar.passed
    assert "(16, 16)" in row.example and "declared 0.0625" in row.example
    assert all(cell["rejected"] for cell in row.data["grid"])


def test_plain_callable_and_reproducibility():
    def he(shape, rng):
        return rng.standard_normal(shape) * np.sqrt(2 / shape[1])

    a, b = verify(he, seed=3), verify(he, seed=3)
    assert a.passed
    assert [(r.observed, r.verdict) for r in a.rows] == [(r.observed, r.verdict) for r in b.rows]
    c = verify(he, seed=4)
    assert [r.observed for r in a.rows] != [r.observed for r in c.rows]


def test_unseeded_initializer_warns_but_passes(usermod):
    # two identically seeded calls differ (the global generator moves on): the WARN
    report = verify(f"{usermod(UNSEEDED)}:my_init")
    row = report.row("return contract")
    assert row.verdict == "WARN" and "not reproducible" in row.detail
    assert report.passed


def test_float32_is_accepted():
    def he32(shape, rng):
        return (rng.standard_normal(shape) * np.sqrt(2 / shape[1])).astype(np.float32)

    report = verify(he32)
    assert report.passed and "float32" in report.row("return contract").observed


# --------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    ("source", "attr", "words"),
    [
        (WRONG_SHAPE, "my_init", ["wrong shape (5, 3)", "requested shape (3, 5)", "transposed"]),
        (RETURNS_NAN, "my_init", ["non-finite", "1 NaN"]),
        (INT_DTYPE, "my_init", ["wrong dtype int64", "floating"]),
        (NOT_CALLABLE, "my_init", ["not callable", "float"]),
        (RAISES, "my_init", ["raised RuntimeError: boom"]),
        (HE, "no_such_init", ["has no attribute 'no_such_init'", "my_init"]),
    ],
)
def test_usage_errors_name_the_problem(usermod, source, attr, words):
    target = f"{usermod(source)}:{attr}"
    with pytest.raises(VerifyUsageError) as info:
        verify(target)
    assert isinstance(info.value, ValueError)
    for w in words:
        assert w in str(info.value)
    with pytest.raises(ValueError, match=words[0].replace("(", r"\(").replace(")", r"\)")):
        _cli(target)


def test_module_not_found_and_bad_target_strings(usermod):
    with pytest.raises(VerifyUsageError, match="module 'no_such_module_xyz' not found"):
        verify("no_such_module_xyz:my_init")
    with pytest.raises(VerifyUsageError, match="module:attribute"):
        verify("just_a_name")
    with pytest.raises(VerifyUsageError, match="is a class"):
        verify(f"{usermod(SAMPLER)}:Init")
    with pytest.raises(ValueError, match="profile"):
        verify(f"{usermod(HE)}:my_init", profile="fast")
    with pytest.raises(ValueError, match="unknown activation"):
        verify(f"{usermod(HE)}:my_init", activation="relu6")
    with pytest.raises(ValueError, match="seed"):
        verify(f"{usermod(HE)}:my_init", seed=-1)


def test_cwd_is_importable_without_being_on_sys_path(usermod, monkeypatch):
    name = usermod(HE)
    cwd = os.getcwd()
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", cwd)])
    assert callable(load_target(f"{name}:my_init"))
    assert cwd not in sys.path  # the API leaves sys.path as it found it


# --------------------------------------------------------------------------- command line


def test_cli_exit_codes_and_json(usermod):
    code, out = _cli(f"{usermod(HE)}:my_init")
    assert code == 0 and "overall: PASS" in out and "variance law" in out
    code, out = _cli(f"{usermod(TYPO)}:my_init", "--activation", "relu", "--seed", "1")
    assert code == EXIT_FAIL
    assert "minimal failing examples:" in out and "instead of 1/fan_in (1/n_in)" in out
    code, out = _cli(f"{usermod(ZEROS)}:my_init", "--json")
    assert code == EXIT_FAIL
    doc = json.loads(out)
    assert doc["verdict"] == "FAIL" and doc["passed"] is False
    sym = next(r for r in doc["rows"] if r["property"] == "symmetry breaking")
    assert sym["verdict"] == "FAIL" and sym["example"]
    assert set(doc) >= {"target", "activation", "profile", "seed", "alpha", "rows", "settings"}
    json.dumps(doc, allow_nan=False)  # strict JSON: no NaN or inf


def test_real_command_line(usermod, tmp_path):
    exe = [sys.executable, "-m", "initsim.cli", "verify"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    good, bad = usermod(HE), usermod(TYPO)

    def run(*argv):
        return subprocess.run(
            [*exe, *argv], cwd=tmp_path, capture_output=True, text=True, env=env, check=False
        )

    proc = run(f"{good}:my_init", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["verdict"] == "PASS"
    proc = run(f"{bad}:my_init")
    assert proc.returncode == 3 and "fan_in (n_in)" in proc.stdout
    proc = run("no_such_module_xyz:my_init")
    assert proc.returncode == 2
    assert "initsim verify: error: module 'no_such_module_xyz' not found" in proc.stderr


# --------------------------------------------------------------------------- robustness (issue 14)

HUGE = """
def my_init(shape, rng):
    return rng.standard_normal(shape) * 1e300
"""
SLEEPS = """
import time

def my_init(shape, rng):
    time.sleep(60)
    return rng.standard_normal(shape)
"""
SLEEPS_LATER = """
import time

def my_init(shape, rng):
    if shape == (256, 256):  # the variance grid's largest fan pair
        time.sleep(60)
    return rng.standard_normal(shape) * np.sqrt(2 / shape[1])
"""
HUGE_DECLARED = """
class Init:
    def sample(self, shape, seed=None):
        return np.random.default_rng(seed).standard_normal(shape) * 1e300

    def variance(self, fan_in, fan_out):
        return 2.0 / fan_in

init = Init()
"""
EXITS = """
import sys

def my_init(shape, rng):
    sys.exit(0)
"""
EXITS_IN_VARIANCE = """
import sys

class Init:
    def sample(self, shape, seed=None):
        return np.random.default_rng(seed).standard_normal(shape) * np.sqrt(2 / shape[1])

    def variance(self, fan_in, fan_out):
        raise SystemExit(4)

init = Init()
"""
EXITS_ON_IMPORT = """
import sys
sys.exit(0)

def my_init(shape, rng):
    return rng.standard_normal(shape)
"""


def test_entries_whose_squares_overflow_fail_instead_of_crashing(usermod):
    target = f"{usermod(HUGE)}:my_init"
    report = verify(target)  # filterwarnings=error: no overflow warning either
    assert not report.passed
    law = report.row("variance law")
    assert law.verdict == "FAIL" and "float64" in law.detail and law.example
    depth = report.row("variance through depth")
    assert depth.verdict == "FAIL" and "exploding" in depth.detail
    json.dumps(report.to_dict(), allow_nan=False)
    code, out = _cli(target, "--json")
    assert code == EXIT_FAIL and json.loads(out)["verdict"] == "FAIL"
    declared = verify(f"{usermod(HUGE_DECLARED)}:init").row("declared variance")
    assert declared.verdict == "FAIL" and "beyond float64" in declared.observed


def test_a_hanging_initializer_fails_after_the_timeout(usermod):
    import time

    target = f"{usermod(SLEEPS)}:my_init"
    started = time.perf_counter()
    report = verify(target, timeout=0.5)
    assert time.perf_counter() - started < 10
    assert not report.passed
    row = report.row("return contract")
    assert row.verdict == "FAIL" and "did not return within 0.5 s" in row.detail
    assert "timeout" in row.detail and row.example
    code, out = _cli(target, "--timeout", "0.5")
    assert code == EXIT_FAIL
    assert "did not return within 0.5 s" in out and "overall: FAIL" in out


def test_a_timeout_in_a_later_check_fails_too(usermod):
    report = verify(f"{usermod(SLEEPS_LATER)}:my_init", timeout=0.5)
    row = report.row("return contract")
    assert row.verdict == "FAIL" and "(256, 256)" in row.example


def test_timeout_is_validated_and_documented(usermod):
    import inspect

    from initsim import verify as verify_module

    default = inspect.signature(verify).parameters["timeout"].default
    assert default == verify_module.DEFAULT_TIMEOUT > 0
    for bad in (0, -1.0, "10", float("nan"), True):
        with pytest.raises(VerifyUsageError, match="timeout"):
            verify(f"{usermod(HE)}:my_init", timeout=bad)
    assert verify(f"{usermod(HE)}:my_init", timeout=None).passed


@pytest.mark.parametrize(
    ("source", "attr", "words"),
    [
        (EXITS, "my_init", ["raised SystemExit: 0"]),
        (EXITS_IN_VARIANCE, "init", ["variance(16, 16)", "SystemExit: 4"]),
        (EXITS_ON_IMPORT, "my_init", ["raised SystemExit: 0"]),
    ],
    ids=["in-a-call", "in-variance", "on-import"],
)
def test_system_exit_in_user_code_is_a_reported_failure(usermod, source, attr, words):
    target = f"{usermod(source)}:{attr}"
    with pytest.raises(VerifyUsageError) as info:
        verify(target)
    for w in words:
        assert w in str(info.value)
    from initsim.cli import main

    assert main(["verify", target]) == 2  # not exit 0 with no output


def test_initsim_verify_stays_callable_once_its_module_is_imported():
    import subprocess
    import sys

    code = (
        "import initsim, initsim.verify\n"
        "from initsim import initializers\n"
        "r = initsim.verify(initializers.get('he_normal'), activation='relu')\n"
        "print(type(r).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "VerifyReport"
