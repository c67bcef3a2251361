"""Study specs: expansion, the spec hash, validation errors with key and line, the cell kinds."""

from __future__ import annotations

import pytest

from initsim.cli import main
from initsim.study import CELL_KINDS, SpecError, Study, parse_spec, read_spec
from initsim.study.spec import _check_param
from tests.study_helpers import ROOT, SPEC, write


def test_spec_expands_cases_and_grid_in_file_order(tmp_path):
    spec = read_spec(write(tmp_path, SPEC))
    ids = [c.id for c in spec.cells]
    assert ids[:4] == ["he-lecun-000", "he-lecun-001", "he-lecun-002", "he-lecun-003"]
    assert len(ids) == 4 + 4 + 2 + 2
    first = spec.cells[0].params
    assert (first["init"], first["activation"], first["nets"]) == ("he_normal", "relu", 20)
    assert spec.cells[1].params["activation"] == "tanh"  # last grid axis varies fastest
    phase = [c.params for c in spec.cells if c.experiment == "phase"]
    assert [p["init"]["scale"] for p in phase] == [0.5, 0.5, 2.0, 2.0]
    assert [p["bias_std"] for p in phase] == [0.0, 0.3, 0.0, 0.3]
    assert all(p["init"]["name"] == "variance_scaling" for p in phase)
    assert [c.spawn_key for c in spec.cells if c.experiment == "jac"] == [(2, 0), (2, 1)]
    train = next(c for c in spec.cells if c.kind == "train")
    assert train.params["lr"] == 0.1 and "nets" not in train.params  # defaults per kind
    assert spec.cells[0].checks == {"alpha": 0.01, "claims": []}


def test_spec_hash_ignores_presentation_but_not_numbers(tmp_path):
    base = read_spec(write(tmp_path, SPEC)).sha256
    cosmetic = SPEC.replace("a small study", "another description").replace(
        "[defaults]\nnets = 20\n", "[defaults]\nnets   =   20  # same\n"
    )
    assert read_spec(write(tmp_path, cosmetic, "b.toml")).sha256 == base
    assert read_spec(write(tmp_path, SPEC.replace("seed = 7", "seed = 8"), "c.toml")).sha256 != base
    assert (
        read_spec(write(tmp_path, SPEC.replace("nets = 20", "nets = 21"), "d.toml")).sha256 != base
    )


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (("depth = 4", "detph = 4"), ["line 10", "'detph'", "did you mean 'depth'"]),
        (("seed = 7", "seed = -7"), ["line 2", "seed must be an integer >= 0"]),
        (("width = 32", "width = -32"), ["line 11", "width must be an integer >= 1"]),
        (("width = 32", 'width = "wide"'), ["line 11", "width must be an integer"]),
        (('init = ["he_normal", "lecun_normal"]', "init = []"), ["line 14", "'init' is empty"]),
        (("backward = true", "backward = 1"), ["line 12", "backward must be true or false"]),
        (("nets = 20", "nets = 0"), ["line 6", "nets must be an integer >= 1"]),
        (("alpha = 0.01", "alpha = 2"), ["line 17", "alpha must be a number in (0, 1)"]),
        (('kind = "jacobian"', 'kind = "jacobain"'), ["line 31", "kind must be one of"]),
        (('activation = "tanh"', 'activation = "tahn"'), ["line 21", "activation", "tahn"]),
        (("init.scale = [0.5, 2.0]", "init.sclae = [0.5, 2.0]"), ["line 26", "sclae"]),
        (("steps = 5", "steps = 5\nepochs = 3"), ["line 43", "'epochs'"]),
        (("[defaults]", "[defaultz]"), ["'defaultz'", "did you mean 'defaults'"]),
        (('name = "phase"', 'name = "he-lecun"'), ["used twice"]),
        (
            ('cases = [{init = "orthogonal"}, {init = "lecun_normal"}]', "cases = []"),
            ["line 35", "cases must be a non-empty list"],
        ),
    ],
)
def test_bad_specs_name_the_key_and_line(tmp_path, capsys, edit, needle):
    old, new = edit
    assert old in SPEC
    path = write(tmp_path, SPEC.replace(old, new, 1))
    with pytest.raises(SpecError) as err:
        read_spec(path)
    for n in needle:
        assert n in str(err.value)
    assert main(["study", "validate", str(path)]) == 2
    assert needle[0] in capsys.readouterr().err


def test_toml_syntax_error_and_missing_file(tmp_path, capsys):
    path = write(tmp_path, SPEC.replace("seed = 7", "seed = = 7"))
    assert main(["study", "run", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "invalid TOML" in err and "line 2" in err
    assert not (tmp_path / "o").exists()
    assert main(["study", "validate", str(tmp_path / "nope.toml")]) == 2
    assert "cannot read study spec" in capsys.readouterr().err


def test_dict_spec_and_figure_references():
    good = {"name": "s", "seed": 1, "experiment": [{"name": "a", "depth": 2, "width": 4}]}
    assert [c.id for c in Study(good).spec.cells] == ["a-000"]
    with pytest.raises(SpecError, match="unknown experiment 'b'"):
        parse_spec({**good, "figure": [{"kind": "depth-profile", "experiment": "b"}]})
    with pytest.raises(SpecError, match="at least one"):
        parse_spec({"name": "s", "seed": 1})
    with pytest.raises(SpecError, match="checks apply to simulate"):
        parse_spec(
            {
                "name": "s",
                "seed": 1,
                "experiment": [
                    {
                        "name": "j",
                        "kind": "jacobian",
                        "depth": 2,
                        "width": 4,
                        "nets": 2,
                        "checks": {"alpha": 0.1},
                    }
                ],
            }
        )


def test_readme_example_and_shipped_specs_are_valid():
    readme = (ROOT / "README.md").read_text()
    marker = "# my-study.toml (copy one of reports/*.toml and change a line)\n"
    block = readme.split(marker, 1)[1].split("```", 1)[0]
    import tomllib

    spec = parse_spec(tomllib.loads(block), text=block, source="README")
    assert [c.id for c in spec.cells][:2] == ["relu-000", "relu-001"] and len(spec.cells) == 10
    shipped = sorted((ROOT / "reports").glob("*.toml"))
    assert len(shipped) >= 4
    for path in shipped:
        assert read_spec(path).cells


def test_cell_kinds_are_declared_consistently():
    assert tuple(CELL_KINDS) == ("simulate", "jacobian", "train", "pair")
    assert [k for k, ck in CELL_KINDS.items() if ck.checks] == ["simulate"]
    for kind, ck in CELL_KINDS.items():
        assert set(ck.required) <= set(ck.params), kind
        assert set(ck.defaults) <= set(ck.params), kind
        assert callable(ck.run) and callable(ck.load), kind
        for key, value in ck.defaults.items():
            _check_param(key, ck.params[key], value)  # every default passes its own rule
    with pytest.raises(TypeError):
        CELL_KINDS["train"].defaults["lr"] = 1.0  # read-only: the table is declared once
    # the spec reads the table: a train cell gets the train defaults, a simulate cell none
    spec = parse_spec(
        {
            "name": "s",
            "seed": 1,
            "experiment": [
                {"name": "t", "kind": "train", "sizes": [2, 3, 1], "data": {"kind": "teacher"}},
                {"name": "a", "depth": 2, "width": 4},
            ],
        }
    )
    assert spec.cells[0].params == {
        **CELL_KINDS["train"].defaults,
        "sizes": [2, 3, 1],
        "data": {"kind": "teacher"},
    }
    assert spec.cells[1].params == {"depth": 2, "width": 4}
    with pytest.raises(SpecError, match="train experiments need 'data'"):
        parse_spec(
            {
                "name": "s",
                "seed": 1,
                "experiment": [{"name": "t", "kind": "train", "sizes": [2, 3, 1]}],
            }
        )
