"""The README's Python blocks and one-shot commands run as written, with the stated results.

Each ```python block is executed in README order (one namespace, as a reader
pasting them in turn would). A line ``expr  # 0.9386...: text`` (or
``# q* = 0.418...``) claims a value: the expression is evaluated and its
decimal expansion must start with the stated digits (``...``: truncated), or
equal the stated number to 1e-12 when no ``...`` follows it. The one-shot
``initsim simulate|theory|check`` commands of the ```bash blocks run through
the command line's ``main`` and must exit with the status their comment states
(``exit N``; 0 without one). The report command is run by
tests/test_cli_report.py, the study commands by the study tests.
"""

from __future__ import annotations

import math
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

from initsim.cli import main

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
CLAIM = re.compile(r"^(?P<expr>[^#]+?)\s+#\s*(?:[\w*]+ = )?(?P<num>-?\d+\.\d+)(?P<dots>\.\.\.)?")

pytestmark = pytest.mark.usefixtures("warm_kernels")


def _kind(block: str) -> str:
    if 'device="cuda"' in block:
        return "gpu"
    if "Study.from_toml" in block:
        return "study"
    return "plain"


def _claims(block: str) -> list[tuple[str, str, bool]]:
    out = []
    for line in block.splitlines():
        m = CLAIM.match(line)
        if m and "=" not in m["expr"].split("(")[0]:  # an expression, not an assignment
            out.append((m["expr"].strip(), m["num"], bool(m["dots"])))
    return out


def _check_claim(value: object, digits: str, truncated: bool, expr: str) -> None:
    x = float(np.asarray(value).ravel()[0]) if not isinstance(value, float) else value
    if truncated:
        places = len(digits.split(".")[1])
        assert math.floor(abs(x) * 10**places + 1e-9) == round(abs(float(digits)) * 10**places), (
            expr,
            x,
            digits,
        )
    else:
        assert x == pytest.approx(float(digits), rel=1e-12, abs=1e-15), (expr, x, digits)


def test_the_readme_has_its_blocks():
    kinds = [_kind(b) for b in BLOCKS]
    assert kinds.count("plain") >= 4 and "study" in kinds and "gpu" in kinds, kinds
    assert sum(len(_claims(b)) for b in BLOCKS) >= 4  # the theory block's stated values


def test_a_wrong_stated_value_is_caught():
    with pytest.raises(AssertionError):
        _check_claim(0.93861, "0.9387", True, "chi1")
    with pytest.raises(AssertionError):
        _check_claim(0.021, "0.02", False, "variance")
    _check_claim(0.93861, "0.9386", True, "chi1")
    _check_claim(-0.93861, "-0.9386", True, "negative")


def test_plain_blocks_run_and_their_stated_values_hold():
    ns: dict[str, object] = {}
    checked = 0
    for block in BLOCKS:
        if _kind(block) != "plain":
            continue
        exec(compile(block, "README.md", "exec"), ns)
        for expr, digits, truncated in _claims(block):
            _check_claim(eval(expr, ns), digits, truncated, expr)
            checked += 1
    assert checked >= 4


def test_study_block_runs(tmp_path, monkeypatch):
    (tmp_path / "reports").mkdir()
    shutil.copy(ROOT / "reports" / "he-vs-lecun.toml", tmp_path / "reports")
    monkeypatch.chdir(tmp_path)
    ns: dict[str, object] = {}
    for block in BLOCKS:
        if _kind(block) == "study":
            exec(compile(block, "README.md", "exec"), ns)
    assert len(ns["table"]["cell"]) > 0


BASH = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def _commands(prefixes: tuple[str, ...]) -> list[tuple[list[str], int]]:
    """The README's one-shot ``initsim`` commands with these subcommands, and their exit codes.

    A comment ``exit N`` states the status; without one it is 0.
    """
    out = []
    for block in BASH:
        for line in block.replace("\\\n", " ").splitlines():
            cmd, _, comment = line.partition("#")
            words = shlex.split(cmd)
            if len(words) > 1 and words[0] == "initsim" and words[1] in prefixes:
                code = re.search(r"exit (\d+)", comment)
                out.append((words[1:], int(code[1]) if code else 0))
    return out


def test_the_readme_has_its_commands():
    subcommands = [argv[0] for argv, _ in _commands(("simulate", "theory", "check"))]
    assert subcommands.count("simulate") >= 2 and subcommands.count("check") >= 2, subcommands


@pytest.mark.parametrize(
    ("argv", "code"), _commands(("simulate", "theory", "check")), ids=lambda v: str(v)[:60]
)
def test_readme_commands_exit_as_stated(argv, code, capsys):
    assert main(argv) == code, capsys.readouterr().out[-2000:]
    assert capsys.readouterr().out.strip()  # each prints its table, verdict or document


def test_the_framework_name_table_is_current():
    from initsim.framework_names import markdown_tables

    text = (ROOT / "README.md").read_text()
    start, end = "<!-- framework-names:start -->\n", "<!-- framework-names:end -->"
    assert start in text and end in text
    block = text.split(start, 1)[1].split(end, 1)[0]
    assert block == markdown_tables(), "run python scripts/update_readme_catalogue.py"
    for name in ("torch.kaiming_normal_", "keras.HeNormal", "jax.he_normal"):
        assert f"`{name}(" in block
