"""The code base stays ruff clean (lint rules and docstring conventions in pyproject)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    if shutil.which("ruff") is None:
        pytest.fail("ruff is not installed: install the test extra (pip install -e '.[test]')")
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "initsim", "tests", "scripts"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _private_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("initsim"):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(
                        f"{path.relative_to(ROOT)}:{node.lineno}: {node.module}.{alias.name}"
                    )
    return found


def test_no_module_imports_another_modules_private_names():
    # A name with a leading underscore belongs to its module; what siblings share is
    # public (possibly in a private module such as initsim/_validate.py).
    offenders = [
        hit
        for folder in ("initsim", "scripts")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for hit in _private_imports(path)
    ]
    assert offenders == [], "\n".join(offenders)


def test_the_private_import_rule_can_fail(tmp_path):
    bad = ROOT / "initsim" / "_style_probe_tmp.py"
    try:
        bad.write_text("from initsim.plan import _widths\n")
        assert _private_imports(bad) == ["initsim/_style_probe_tmp.py:1: initsim.plan._widths"]
    finally:
        bad.unlink()
