"""Pair cells of a study: two inputs through deep vanilla nets, plain or shaped (DKS/TAT).

What is checked: the cell kind's declaration (its defaults are propagate_pair's),
every bad parameter refused when the spec is read with the key, the cell and
the line named, the stored arrays bit-identical for the same seed (1 or 2
threads, the study runner or a direct call of propagate_pair with the cell's
seed sequence) and different for another seed, the loaded result carrying the
shaping that was propagated, and the shipped study's verdicts (TAT passes its
own claim, plain He/ReLU fails TAT's, DKS tanh passes its own).
"""

from __future__ import annotations

import inspect
import pickle
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import initsim
from initsim import activations, theory
from initsim.shaping_check import PairResult, check_pair, propagate_pair
from initsim.study import CELL_KINDS, SpecError, load_results, parse_spec, read_spec
from initsim.study.cells import cell_seed, pair_activation, run_cell

ROOT = Path(__file__).resolve().parents[1]

SPEC = """\
name = "tiny-pairs"
seed = 5

[[experiment]]
name = "p"
kind = "pair"
depth = 12
width = 24
nets = 16
c0 = 0.3
cases = [
    { activation = "leaky_relu", shaping = "tat", eta = 0.5 },
    { activation = "relu", sigma_w2 = 2.0 },
    { activation = "tanh", shaping = "dks", zeta = 1.5 },
    { activation = { name = "leaky_relu", slope = 0.2 }, sigma_w2 = 1.5 },
]
"""


def _spec(tmp_path: Path, text: str = SPEC) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    d = tmp_path_factory.mktemp("pairs")
    initsim.Study.from_toml(_spec(d)).run(d / "one", threads=1)
    return d, load_results(d / "one")


def test_the_pair_kind_is_declared_with_propagate_pairs_defaults() -> None:
    kind = CELL_KINDS["pair"]
    assert set(kind.required) == {"activation", "depth"}
    signature = inspect.signature(propagate_pair).parameters
    for key in ("width", "nets", "c0", "sigma_w2"):
        assert kind.defaults[key] == signature[key].default, key
    assert kind.defaults["shaping"] == "none"
    assert not kind.checks  # its verdicts are the shaping-profile figure's
    spec = parse_spec(
        {
            "name": "s",
            "seed": 1,
            "experiment": [{"name": "a", "kind": "pair", "activation": "relu", "depth": 3}],
        }
    )
    assert spec.cells[0].params == {**kind.defaults, "activation": "relu", "depth": 3}


def _error(tmp_path: Path, case: str, experiment: str = "") -> str:
    text = textwrap.dedent(
        f"""\
        name = "bad"
        seed = 1

        [[experiment]]
        name = "p"
        kind = "pair"
        depth = 10
        width = 16
        nets = 12
        {experiment}
        cases = [
            {{ activation = "relu" }},
            {case},
        ]
        """
    )
    with pytest.raises(SpecError) as info:
        read_spec(_spec(tmp_path, text))
    return str(info.value)


@pytest.mark.parametrize(
    ("case", "needles"),
    [
        ('{ activation = "relu", zeta = 1.5 }', ['zeta applies to shaping = "dks" only']),
        ('{ activation = "tanh", shaping = "tat", eta = 0.9 }', ["eta does not apply", "tau"]),
        ('{ activation = "relu", shaping = "tat", tau = 0.3 }', ["tau does not apply", "eta"]),
        ('{ activation = "leaky_relu", shaping = "tat", eta = 0.95 }', ["eta:", "10-layer"]),
        ('{ activation = "relu", shaping = "dks", zeta = 0.5 }', ["zeta must be in (1, inf)"]),
        ('{ activation = "tanh", shaping = "dks", sigma_w2 = 2.0 }', ["sigma_w2", "= 1"]),
        ('{ activation = "linear", shaping = "dks" }', ["linear cannot be shaped"]),
        ('{ activation = "hard_tanh", shaping = "dks" }', ["dks(hard_tanh)", "unreachable"]),
        ('{ activation = "relu", width = [16, 8] }', ["width", "[16, 8]"]),
        ('{ activation = "relu", depth = 0 }', ["depth", ">= 1"]),
    ],
)
def test_bad_cells_are_refused_with_key_cell_and_line(tmp_path, case, needles) -> None:
    message = _error(tmp_path, case)
    assert "bad.toml" not in message  # the file is spec.toml
    assert message.startswith("spec.toml, line ")
    for needle in needles:
        assert needle in message, message
    if "cell" in message:
        assert "cell p-001" in message  # the second case, not the valid first one


def test_bad_values_are_refused_before_any_cell_is_built(tmp_path) -> None:
    line = textwrap.dedent(SPEC).splitlines().index("c0 = 0.3") + 1
    with pytest.raises(SpecError, match=rf"line {line}: .*c0 must be a correlation"):
        read_spec(_spec(tmp_path, SPEC.replace("c0 = 0.3", "c0 = 1.5")))
    with pytest.raises(SpecError, match=r"shaping must be one of 'none', 'dks', 'tat'"):
        read_spec(_spec(tmp_path, SPEC.replace('shaping = "dks"', 'shaping = "DKS"')))
    with pytest.raises(SpecError, match=r"unknown key 'beta'.*did you mean 'eta'"):
        read_spec(_spec(tmp_path, SPEC.replace("eta = 0.5", "beta = 0.5")))
    with pytest.raises(SpecError, match=r"pair experiments need 'activation'"):
        read_spec(
            _spec(
                tmp_path,
                'name = "s"\nseed = 1\n[[experiment]]\nname = "p"\nkind = "pair"\ndepth = 3\n',
            )
        )


def test_a_cell_the_machine_cannot_hold_is_refused(tmp_path, monkeypatch) -> None:
    import initsim.plan

    monkeypatch.setattr(initsim.plan, "available_memory", lambda: 1 << 30)
    message = _error(tmp_path, '{ activation = "relu", nets = 10000000 }')
    assert "cell p-001" in message and "nets" in message and "GiB" in message


def test_same_seed_same_arrays_other_seed_other_arrays(tiny, tmp_path) -> None:
    d, results = tiny
    initsim.Study.from_toml(_spec(d)).run(tmp_path / "two", threads=2)
    again = load_results(tmp_path / "two")
    assert (
        [c.id for c in again.cells]
        == [c.id for c in results.cells]
        == [f"p-00{i}" for i in range(4)]
    )
    for a, b in zip(results.cells, again.cells, strict=True):
        for key in ("k11", "k22", "k12"):
            assert a.arrays[key].shape == (16, 12)
            assert np.array_equal(a.arrays[key], b.arrays[key]), (a.id, key)
    # ... and a direct call with the cell's seed sequence gives the same numbers
    spec = read_spec(_spec(d))
    for cs, cell in zip(spec.cells, results.cells, strict=True):
        p = cs.params
        direct = propagate_pair(
            pair_activation(p),
            p["depth"],
            width=p["width"],
            c0=p["c0"],
            sigma_w2=p["sigma_w2"],
            nets=p["nets"],
            seed=cell_seed(spec.seed, cs.spawn_key),
        )
        assert np.array_equal(direct.k12, cell.result.k12), cs.id
    other = read_spec(_spec(tmp_path, SPEC.replace("seed = 5", "seed = 6")))
    arrays, _ = run_cell(other.cells[0].to_dict(), other.seed)
    assert not np.array_equal(arrays["k12"], results.cells[0].arrays["k12"])
    # what a Dask worker is shipped: plain data, and it computes the same cell
    shipped = pickle.loads(pickle.dumps(spec.cells[2].to_dict()))
    arrays, meta = run_cell(shipped, spec.seed, threads=1)
    assert np.array_equal(arrays["k11"], results.cells[2].arrays["k11"])
    assert meta["provenance"]["shaping"]["method"] == "dks"


def test_the_loaded_result_carries_what_was_propagated(tiny) -> None:
    _, results = tiny
    tat_cell, relu_cell, dks_cell, leaky_cell = results.cells
    for c in results.cells:
        assert isinstance(c.result, PairResult) and c.result.depth == 12
    fresh = theory.tat("leaky_relu", 12, eta=0.5)
    loaded = tat_cell.result.activation
    assert loaded.method == "tat" and loaded.eta == 0.5 and loaded.depth == 12
    assert loaded.base == fresh.base
    for key in ("input_scale", "input_shift", "output_scale", "output_shift"):
        assert getattr(loaded, key) == getattr(fresh, key), key
    assert loaded.network_c_map(0.3) == fresh.network_c_map(0.3)
    dks = dks_cell.result.activation
    assert dks.method == "dks" and dks.zeta == 1.5 and dks.base.name == "tanh"
    assert relu_cell.result.activation == activations.get("relu")
    assert leaky_cell.result.activation == activations.get("leaky_relu", slope=0.2)
    # the check reads a stored cell as it reads a fresh run
    p = tat_cell.params
    run = propagate_pair(
        fresh,
        12,
        width=24,
        c0=0.3,
        nets=16,
        seed=cell_seed(results.seed, tat_cell.spawn_key),
    )
    assert check_pair(tat_cell.result).rows == check_pair(run).rows
    assert p["shaping"] == "tat"
    prov = tat_cell.result.provenance
    assert prov["spawn_key"] == [0, 0] and prov["seed_entropy"] == "5"
    assert loaded.conditions()["C_net(0)"] == pytest.approx(0.5, abs=1e-12)
    assert loaded.targets == fresh.targets and loaded.achieved == fresh.achieved


def test_the_shipped_study_passes_tat_and_fails_plain_relu(tmp_path) -> None:
    """reports/deep-shaping.toml: the README's example, as a study."""
    path = ROOT / "reports" / "deep-shaping.toml"
    spec = read_spec(path)
    assert [c.params.get("shaping") for c in spec.cells] == ["tat", "none", "dks"]
    initsim.Study(spec).run(tmp_path / "r")
    tat_cell, relu_cell, dks_cell = load_results(tmp_path / "r").cells
    tat = tat_cell.result.activation
    own = check_pair(tat_cell.result, alpha=0.01)
    assert own.verdict == "PASS" and abs(own.rows[0].observed - 0.9) < 0.015, own.rows
    against = check_pair(relu_cell.result, alpha=0.01, claim=tat)
    assert against.verdict == "FAIL" and against.rows[0].verdict == "FAIL", against.rows
    assert against.rows[0].observed > 0.99
    assert check_pair(relu_cell.result, alpha=0.01).verdict == "PASS"  # its own maps hold
    dks = check_pair(dks_cell.result, alpha=0.01)
    assert dks.verdict == "PASS" and abs(dks.rows[0].observed) < 0.2, dks.rows


@pytest.mark.slow
def test_pair_cells_on_a_dask_cluster_match_local(tiny, tmp_path) -> None:
    pytest.importorskip("distributed")
    from initsim.study.executors import DaskExecutor

    d, results = tiny
    executor = DaskExecutor(workers=2)
    try:
        initsim.Study.from_toml(_spec(d)).run(tmp_path / "dask", executor=executor)
    finally:
        executor.close()
    for a, b in zip(results.cells, load_results(tmp_path / "dask").cells, strict=True):
        assert np.array_equal(a.arrays["k12"], b.arrays["k12"]), a.id
