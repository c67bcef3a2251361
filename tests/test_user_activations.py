"""Users' own activations (register, module references) and shaped activations.

A registered copy of a built-in must give the built-in's kernels results,
theory and Monte Carlo law; shaped activations must be what they say in the
kernels (numpy twins) and in the theory (the reduction to the base's closed
forms against direct quadrature).
"""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
import textwrap
from decimal import Decimal

import numpy as np
import pytest

import initsim
from initsim import activations as A
from initsim import theory
from initsim.engine.exact import INPUT_SPHERE
from initsim.engine.reference import exact_reference
from initsim.rng import net_keys, root_key
from initsim.theory import gaussian as G
from initsim.user_activation import DERIVATIVE_STEP, detect_kinks

X = np.linspace(-7.0, 7.0, 1401) + 1e-4  # off the kinks at 0 and +-1


@pytest.fixture(autouse=True)
def _clean_registry():
    before = set(A.registered())
    yield
    for name in set(A.registered()) - before:
        A.unregister(name)


def _relu(x):
    return max(x, 0.0)


def _softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _elu(x, alpha):
    return x if x > 0.0 else alpha * math.expm1(x)


def _hard_tanh(x):
    return min(1.0, max(-1.0, x))


# ------------------------------------------------------------------ registration
def test_registered_activation_is_found_by_name_and_compiles_once():
    act = A.register("my_relu", _relu)
    assert A.get("my_relu") is act
    assert act.code == A.USER and act.user.derived_dphi
    assert "my_relu" in A.registered()
    np.testing.assert_array_equal(act.phi(X), A.get("relu").phi(X))


@pytest.mark.parametrize(
    ("phi", "message"),
    [
        (lambda x: 1.0 / x, "raised ZeroDivisionError"),
        (lambda x: math.nan if x > 3.0 else x, "returned nan for the finite input"),
        (lambda x: math.inf if x > 5.0 else x, "returned inf for the finite input"),
        (lambda x: [x], "must return a real number"),
        (lambda x: math.sqrt(x), "raised ValueError"),
        (lambda x: float(Decimal(x)), "cannot be compiled by Numba"),
    ],
)
def test_bad_functions_are_refused_naming_them(phi, message):
    with pytest.raises(ValueError, match="'bad'") as err:
        A.register("bad", phi)
    assert message in str(err.value)
    assert "bad" not in A.registered()


def test_a_function_compiled_differently_is_refused():
    def overflow(x):  # Python ints are unbounded, Numba's are 64-bit
        return float((int(abs(x)) + 2**62) * 4 % 7)

    with pytest.raises(ValueError, match="differs from the Python one"):
        A.register("ovf", overflow)


def test_a_wrong_derivative_is_refused():
    with pytest.raises(ValueError, match="dphi is not the derivative"):
        A.register("wrong", math.tanh, dphi=lambda x: 1.0 / math.cosh(x))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "relu"}, "built-in activation"),
        ({"name": "Leaky-ReLU"}, "built-in activation"),
        ({"name": "a:b"}, "without ':'"),
        ({"name": ""}, "non-empty"),
        ({"name": "p", "params": {"alpha": math.inf}}, "'alpha' must be finite"),
        ({"name": "p", "params": {"alpha": "x"}}, "'alpha' must be a real number"),
        ({"name": "p", "kinks": (math.nan,)}, "'kinks' must be finite"),
        ({"name": "p", "bounded": "yes"}, "bounded must be"),
    ],
)
def test_bad_registration_arguments_name_the_parameter(kwargs, message):
    name = kwargs.pop("name")
    with pytest.raises(ValueError, match=message):
        A.register(name, _relu, **kwargs)


def test_registering_twice_needs_replace():
    A.register("twice", _relu)
    with pytest.raises(ValueError, match="registered already"):
        A.register("twice", _relu)
    A.register("twice", _softplus, replace=True)
    assert A.get("twice").phi(0.0) == pytest.approx(math.log(2.0))


def test_parameters_compile_variants_and_bad_ones_are_named():
    A.register("my_elu", _elu, params={"alpha": 1.0})
    half = A.get("my_elu", alpha=0.5)
    assert half.params == {"alpha": 0.5}
    assert A.get("my_elu", alpha=0.5) is half  # compiled once
    assert half.user.source_hash != A.get("my_elu").user.source_hash  # the provenance differs
    np.testing.assert_allclose(half.phi(X), A.get("elu", alpha=0.5).phi(X), rtol=1e-15)
    with pytest.raises(ValueError, match=r"unknown parameter.*'beta'"):
        A.get("my_elu", beta=2.0)
    with pytest.raises(ValueError, match="'alpha' must be finite"):
        A.get("my_elu", alpha=math.nan)


# ------------------------------------------------------------------ derivatives, kinks
@pytest.mark.parametrize(
    ("phi", "builtin"),
    [(math.tanh, "tanh"), (_softplus, "softplus"), (math.atan, "atan"), (math.erf, "erf")],
)
def test_derived_derivative_is_accurate_for_smooth_functions(phi, builtin):
    act = A.register(f"my_{builtin}", phi)
    ref = A.get(builtin)
    err = np.max(np.abs(act.dphi(X) - ref.dphi(X)))
    assert err < 2e-12, err
    assert act.user.source_hash not in {
        A.register(f"other_{i}", f).user.source_hash for i, f in enumerate((abs, math.sin))
    }  # builtins are told apart in the provenance


def test_derived_derivative_is_one_sided_next_to_a_kink():
    act = A.register("my_relu", _relu)
    h = DERIVATIVE_STEP
    x = np.array([-1.5 * h, -0.1 * h, 0.0, 0.1 * h, 1.5 * h])
    np.testing.assert_allclose(act.dphi(x), [0.0, 0.0, 0.0, 1.0, 1.0], atol=1e-12)


@pytest.mark.parametrize(
    ("phi", "kinks"),
    [
        (_relu, (0.0,)),
        (_hard_tanh, (-1.0, 1.0)),
        (lambda x: x if x > 0.3 else 0.3 + 0.2 * (x - 0.3), (0.3,)),
        (abs, (0.0,)),
        (math.tanh, ()),
        (lambda x: 50.0 * math.tanh(x / 0.05), ()),  # steep but smooth
    ],
)
def test_kinks_are_detected(phi, kinks):
    act = A.register("kinky", phi)
    assert act.kinks == pytest.approx(kinks, abs=1e-9)
    assert detect_kinks(np.vectorize(phi)) == pytest.approx(kinks, abs=1e-9)


def test_metadata_is_measured_or_given():
    relu = A.register("my_relu", _relu)
    assert relu.can_be_dead and relu.nonnegative and not relu.bounded and not relu.odd
    tanh = A.register("my_tanh", math.tanh)
    assert tanh.bounded and tanh.odd and not tanh.can_be_dead
    told = A.register("told", math.tanh, bounded=False, kinks=(0.5,))
    assert not told.bounded and told.kinks == (0.5,)


# ------------------------------------------------------------------ the kernels
def test_kernels_run_a_registered_copy_of_relu_like_relu():
    A.register("my_relu", _relu)
    for inputs in (1, 3):
        for method in ("exact", "dense"):
            kw = dict(depth=5, width=24, nets=40, seed=3, backward=True, inputs=inputs)
            mine = initsim.simulate(activation="my_relu", method=method, **kw)
            ref = initsim.simulate(activation="relu", method=method, **kw)
            np.testing.assert_allclose(mine.q, ref.q, rtol=1e-13)
            np.testing.assert_allclose(mine.grad_sq, ref.grad_sq, rtol=1e-11)
            np.testing.assert_array_equal(mine.dead_fraction, ref.dead_fraction)


def test_kernel_of_a_user_activation_matches_its_numpy_twin():
    act = A.register("my_swish", lambda x: x / (1.0 + math.exp(-x)))
    widths = np.array([6, 9, 7, 8])
    r = initsim.simulate(activation=act, init="he_normal", depth=3, width=[9, 7, 8],
                         input_dim=6, nets=3, backward=True, seed=4)  # fmt: skip
    wstd = np.sqrt(2.0 / widths[:-1])
    keys = net_keys(root_key(4), 0, 3)
    for k in range(3):
        ref, _ = exact_reference(
            keys[k], widths, wstd, 0.0, act, INPUT_SPHERE, np.zeros(0), True, 1e-2
        )
        np.testing.assert_allclose(r.q[k], ref[:, 0], rtol=1e-12)
        np.testing.assert_allclose(r.grad_sq[k], ref[:, 5], rtol=1e-10)


def test_jacobian_spectra_of_a_registered_and_a_shaped_activation():
    A.register("my_relu", _relu)
    kw = dict(init="he_normal", depth=3, width=12, nets=4, seed=5)
    mine = initsim.jacobian_spectrum(activation="my_relu", **kw)
    ref = initsim.jacobian_spectrum(activation="relu", **kw)
    np.testing.assert_allclose(mine.singular_values, ref.singular_values, rtol=1e-12, atol=1e-13)
    # 2 relu(x / 2) is relu: a shaping that must change nothing but the name
    same = A.shaped("relu", input_scale=0.5, output_scale=2.0)
    twice = initsim.jacobian_spectrum(activation=same, **kw)
    np.testing.assert_allclose(twice.singular_values, ref.singular_values, rtol=1e-12, atol=1e-13)


def test_the_gpu_refuses_registered_and_shaped_activations_clearly():
    A.register("my_relu", _relu)
    for act in ("my_relu", A.affine_erf(2.0, 0.5, 0.1)):
        with pytest.raises(ValueError, match="activation: the GPU kernels know the built-in"):
            initsim.simulate(activation=act, device="cuda", depth=2, width=8, nets=2)


# ------------------------------------------------------------------ theory
@pytest.mark.parametrize(("phi", "builtin"), [(_relu, "relu"), (math.tanh, "tanh")])
def test_registered_copy_has_the_builtins_theory(phi, builtin):
    mine = A.register(f"my_{builtin}", phi)
    ref = A.get(builtin)
    for q in (0.05, 1.0, 7.0):
        for code in (G.PHI, G.PHI2, G.PHI4, G.DPHI2, G.DPHI):
            want = G.expect_scalar(ref, q, code)
            got = G.expect_scalar(mine, q, code)
            assert got == pytest.approx(want, rel=1e-10, abs=1e-13), (q, code)
    np.testing.assert_allclose(
        theory.c_map(mine, 1.7, 0.1, 0.2, 8, 1.0), theory.c_map(ref, 1.7, 0.1, 0.2, 8, 1.0),
        rtol=1e-10,
    )  # fmt: skip
    assert theory.chi1(mine, 1.7, 0.1) == pytest.approx(theory.chi1(ref, 1.7, 0.1), rel=1e-10)


def _penalized_tanh(x, a):
    t = math.tanh(x)
    return t if x > 0.0 else a * t


@pytest.mark.parametrize("a", [0.25, 0.5])
def test_critical_line_of_a_numerically_derived_derivative(a):
    """q* = 0 loses stability at 2 / (1 + a^2): a touching point, where chi_1's error counts."""
    act = A.register("pen", _penalized_tanh, params={"a": a})
    assert act.user.derived_dphi
    assert theory.critical_sigma_w2(act, 0.0) == pytest.approx(2.0 / (1.0 + a * a), rel=1e-10)


def test_check_passes_a_registered_activation_and_fails_a_wrong_claim():
    A.register("my_tanh", math.tanh)
    r = initsim.simulate(activation="my_tanh", init="lecun_normal", depth=6, width=128,
                         nets=300, seed=11, backward=True)  # fmt: skip
    assert initsim.check(r).verdict == "PASS"
    # the He net held against LeCun's variance law (sigma_w2 = 1): the check must see it
    wrong = initsim.simulate(activation="my_tanh", init="he_normal", depth=6, width=128,
                             nets=300, seed=11)  # fmt: skip
    assert initsim.check(wrong, sigma_w2=1.0).verdict == "FAIL"


# ------------------------------------------------------------------ shaped activations
def test_shaped_activation_is_the_affine_transform():
    s = A.shaped("tanh", input_scale=1.3, input_shift=0.2, output_scale=0.7, output_shift=-0.1)
    t = A.get("tanh")
    np.testing.assert_allclose(s.phi(X), 0.7 * (t.phi(1.3 * X + 0.2) - 0.1), rtol=1e-15)
    np.testing.assert_allclose(s.dphi(X), 0.7 * 1.3 * t.dphi(1.3 * X + 0.2), rtol=1e-15)
    assert not s.odd and s.base == "tanh" and s.unshaped == t
    assert A.shaped("relu", input_scale=2.0, output_scale=0.5).positively_homogeneous
    assert A.shaped("relu", input_shift=-1.0).kinks == (1.0,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_scale": 0.0}, "input_scale must be nonzero"),
        ({"output_scale": math.nan}, "'output_scale' must be finite"),
        ({"input_shift": "a"}, "'input_shift' must be a real number"),
    ],
)
def test_bad_shaping_parameters_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        A.shaped("tanh", **kwargs)


def test_shaped_kernel_matches_its_numpy_twin():
    act = A.shaped("gelu", input_scale=0.8, input_shift=0.3, output_scale=1.4, output_shift=-0.2)
    widths = np.array([5, 8, 6])
    r = initsim.simulate(activation=act, init="he_normal", depth=2, width=[8, 6], input_dim=5,
                         nets=3, backward=True, seed=2)  # fmt: skip
    wstd = np.sqrt(2.0 / widths[:-1])
    keys = net_keys(root_key(2), 0, 3)
    for k in range(3):
        ref, _ = exact_reference(
            keys[k], widths, wstd, 0.0, act, INPUT_SPHERE, np.zeros(0), True, 1e-2
        )
        np.testing.assert_allclose(r.q[k], ref[:, 0], rtol=1e-12)
        np.testing.assert_allclose(r.grad_sq[k], ref[:, 5], rtol=1e-10)


@pytest.mark.parametrize(("a", "b", "c"), [(2.0, 0.5, 0.3), (-1.5, 3.0, 0.0), (0.7, -2.0, -1.0)])
def test_affine_erf_theory_is_the_closed_arcsine_kernel(a, b, c):
    act = A.affine_erf(a, b, c)
    x = np.linspace(-3, 3, 61)
    np.testing.assert_allclose(act.phi(x), a * A.get("erf").phi(b * x) + c, rtol=1e-14, atol=1e-15)
    for q in (0.1, 1.0, 6.0):
        k = 2.0 * b * b * q
        assert G.expect_scalar(act, q, G.PHI2) == pytest.approx(
            a * a * (2.0 / math.pi) * math.asin(k / (1.0 + k)) + c * c, rel=1e-14
        )
        for cc in (-0.6, 0.0, 0.45, 0.999):
            want = a * a * (2.0 / math.pi) * math.asin(k * cc / (1.0 + k)) + c * c
            assert G.bivariate(act, q, cc, "phi") == pytest.approx(want, rel=1e-13, abs=1e-15)


def test_the_shaped_reduction_agrees_with_direct_quadrature():
    act = A.shaped("softplus", input_scale=-1.7, output_scale=0.6, output_shift=-0.4)
    for q in (0.3, 2.0):
        for code in (G.PHI, G.PHI2, G.DPHI2, G.DPHI):
            direct = G._quad_expect(act, q, code)
            assert G.expect_scalar(act, q, code) == pytest.approx(direct, rel=1e-12, abs=1e-14)
        for c in (-0.5, 0.3, 0.9):
            for which in ("phi", "dphi", "gap"):
                direct = G._bivariate_quadrature(act, q, c, which)
                got = G.bivariate(act, q, c, which)
                assert got == pytest.approx(direct, rel=1e-10, abs=1e-12), (q, c, which)


def test_shapings_are_activations_to_simulate():
    s = theory.tat("leaky_relu", 20, eta=0.9)
    act = s.activation
    assert act.name.startswith("tat(leaky_relu")
    r = initsim.simulate(activation=act, init="lecun_normal", depth=20, width=64, nets=200,
                         seed=1)  # fmt: skip
    assert initsim.check(r).verdict == "PASS"
    cfg = r.provenance["config"]
    assert A.Activation.from_config(cfg) == act


# ------------------------------------------------------------------ module references, provenance
@pytest.fixture
def user_module(tmp_path, monkeypatch):
    src = textwrap.dedent(
        """
        import math

        def swishy(x):
            return x / (1.0 + math.exp(-1.5 * x))

        def penalized_tanh(x):
            t = math.tanh(x)
            return t if x > 0.0 else 0.25 * t

        def penalized_tanh_dphi(x):
            d = 1.0 - math.tanh(x) ** 2
            return d if x > 0.0 else 0.25 * d

        penalized_tanh.dphi = penalized_tanh_dphi
        not_a_function = 3
        """
    )
    (tmp_path / "my_acts.py").write_text(src)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("my_acts", None)


def test_module_reference_is_registered_with_its_source(user_module):
    act = A.get("my_acts:swishy")
    assert act.user.reference == "my_acts:swishy" and act.user.derived_dphi
    pen = A.get("my_acts:penalized_tanh")
    assert not pen.user.derived_dphi  # its .dphi attribute is used
    r = initsim.simulate(activation="my_acts:swishy", depth=3, width=16, nets=5, seed=0)
    cfg = r.provenance["config"]
    assert cfg["activation"] == "my_acts:swishy"
    assert cfg["activation_source"] == "my_acts:swishy"
    assert len(cfg["activation_source_sha256"]) == 64
    assert cfg["activation_dphi"] == "numerical"
    assert A.Activation.from_config(cfg) == act
    assert pickle.loads(pickle.dumps(act)) == act


def test_a_changed_source_changes_the_hash(user_module):
    first = A.get("my_acts:swishy").user.source_hash
    cfg = initsim.simulate(activation="my_acts:swishy", depth=2, width=8, nets=2).provenance[
        "config"
    ]
    A.unregister("my_acts:swishy")
    sys.modules.pop("my_acts", None)
    path = user_module / "my_acts.py"
    path.write_text(path.read_text().replace("-1.5 * x", "-2.5 * x"))
    assert A.get("my_acts:swishy").user.source_hash != first
    with pytest.raises(ValueError, match="its source changed since the run"):
        A.Activation.from_config(cfg)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
        ("my_acts:missing", "has no attribute 'missing'"),
        ("my_acts:not_a_function", "is a int, not a function"),
        ("my_acts:", "must be 'module:function'"),
    ],
)
def test_bad_references_are_clear_errors(user_module, ref, message):
    with pytest.raises(ValueError, match=message):
        A.get(ref)


def test_cli_takes_a_module_reference(user_module):
    env_cmd = [sys.executable, "-m", "initsim.cli"]
    run = {"capture_output": True, "text": True, "cwd": user_module, "check": False}
    sim = ["simulate", "--activation", "my_acts:swishy", "--depth", "3", "--width", "16"]
    out = subprocess.run([*env_cmd, *sim, "--nets", "20"], **run)
    assert out.returncode == 0, out.stderr
    assert "my_acts:swishy" in out.stdout
    bad = subprocess.run([*env_cmd, "simulate", "--activation", "my_acts:missing"], **run)
    assert bad.returncode == 2
    assert "has no attribute 'missing'" in bad.stderr
    theory_args = ["theory", "--activation", "my_acts:penalized_tanh", "--sigma-w2", "1.0"]
    theo = subprocess.run([*env_cmd, *theory_args, "--json"], **run)
    assert theo.returncode == 0, theo.stderr


def test_a_study_names_a_module_reference(user_module):
    from initsim.study import Study, load_results

    spec = user_module / "mine.toml"
    spec.write_text(
        textwrap.dedent(
            """
            name = "mine"
            seed = 3
            [[experiment]]
            name = "swishy"
            activation = "my_acts:swishy"
            init = "he_normal"
            depth = 3
            width = 16
            nets = 20
            """
        )
    )
    study = Study.from_toml(spec)
    summary = study.run(user_module / "out", threads=1)
    assert (summary.computed, summary.failed) == (1, 0)
    table = load_results(user_module / "out").table()
    assert len(table) == 3 and np.all(np.isfinite(table["q_mean"]))
    bad = user_module / "bad.toml"
    bad.write_text(spec.read_text().replace("my_acts:swishy", "my_acts:missing"))
    with pytest.raises(ValueError, match="has no attribute 'missing'"):
        Study.from_toml(bad)


def test_the_trainer_and_verify_take_a_registered_activation():
    from initsim import train as T

    A.register("my_tanh", math.tanh)
    X, Y = T.teacher_data(64, 5, 2, seed=0)
    runs = []
    for name in ("my_tanh", "tanh"):
        mlp = T.init_mlp([5, 16, 2], "lecun_normal", name, seed=1)
        runs.append(T.train(mlp, X, Y, lr=0.05, steps=20, seed=2).loss)
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-12)
    lecun = initsim.initializers.get("lecun_normal")
    mine = initsim.verify(lecun, activation="my_tanh", seed=0)
    ref = initsim.verify(lecun, activation="tanh", seed=0)
    assert mine.activation == "my_tanh" and len(mine.rows) == len(ref.rows) > 0
    assert [r.verdict for r in mine.rows] == [r.verdict for r in ref.rows]
