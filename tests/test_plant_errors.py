"""The planted-error harness (scripts/plant_errors.py) stays applicable and can fail.

The harness itself runs in ``.ci/run`` after the suite; these tests keep it from
rotting: every plant still applies to the current source exactly once, still
compiles, and names tests that exist, and the harness tells a caught plant from
a surviving one.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_harness():
    spec = importlib.util.spec_from_file_location("plant_errors", ROOT / "scripts/plant_errors.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["plant_errors"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


H = _load_harness()


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}


def test_plant_names_are_unique():
    names = [p.name for p in H.PLANTS]
    assert len(names) == len(set(names)), names


@pytest.mark.parametrize("plant", H.PLANTS, ids=lambda p: p.name)
def test_plant_applies_once_and_compiles(plant):
    text = H.planted_text(plant)  # raises unless `old` occurs exactly once
    assert text != (ROOT / plant.path).read_text(encoding="utf-8")
    if plant.path.endswith(".py"):
        compile(text, plant.path, "exec")


@pytest.mark.parametrize("plant", H.PLANTS, ids=lambda p: p.name)
def test_plant_names_existing_tests(plant):
    assert plant.tests, plant.name
    for node in plant.tests:
        file, _, rest = node.partition("::")
        assert (ROOT / file).is_file(), node
        if rest:
            func = rest.split("::")[-1].split("[")[0]
            assert func in _test_names(ROOT / file), node


def test_a_stale_plant_is_an_error_not_a_catch():
    stale = H.Plant("stale", "gone", "initsim/checks.py", "no such text @@", "x", ("tests",))
    with pytest.raises(ValueError, match="occurs 0 times"):
        H.planted_text(stale)
    out = H.run_plant(stale)
    assert out.status == "error", out


def test_importers_close_over_indirect_imports():
    closure = H.importers("initsim.activations")
    # exact.py imports activations; gram.py imports exact (make_input)
    assert {"initsim.activations", "initsim.engine.exact", "initsim.engine.gram"} <= closure
    assert "initsim._jit" not in closure


@pytest.mark.slow  # two plant runs in copies of the tree (about a minute); CI runs the slow suite
def test_harness_tells_caught_from_survived():
    """A harmless edit survives; one that breaks Holm's method is caught."""
    test = ("tests/test_checks.py::test_holm_step_down",)
    harmless = H.Plant(
        "harmless",
        "a comment",
        "initsim/checks.py",
        "def holm(",
        "# a comment\ndef holm(",
        test,
    )
    out = H.run_plant(harmless)
    assert out.status == "survived", out
    broken = H.Plant(
        "holm-bonferroni",
        "Holm's step-down replaced by no step-down",
        "initsim/checks.py",
        "if p[idx] <= alpha / (m - rank):",
        "if p[idx] <= alpha / m:",
        test,
    )
    out = H.run_plant(broken)
    assert out.status == "caught", out
    assert "test_holm_step_down" in out.detail
