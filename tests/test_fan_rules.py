"""Fan rules, framework names and the edge cases of sampling.

What is tested
--------------
* Fans read off weight shapes (:class:`initsim.initializers.FanRule`,
  :func:`initsim.initializers.fans`, :meth:`Initializer.fans`) against numbers
  computed by hand in this file: PyTorch and Keras layouts, JAX ``in_axis`` /
  ``out_axis`` / ``batch_axis``, Keras ``input_axes`` / ``output_axes`` and
  Keras' rule for 0-d and 1-d shapes, with the errors for bad axes.
* "One answer for one question": for every scheme and framework name,
  ``init.variance(*init.fans(shape)) == init.variance_for_shape(shape)``, and
  the entries of ``init.sample(shape)`` have that variance (a z-test on the
  mean square about the exact mean; exact for the Haar-orthogonal laws, whose
  sum of squares is deterministic; zero spread for the deterministic laws).
* Dtypes, zero-element, 0-d and invalid shapes, array-valued constants and
  the rank limits of the matrix and convolution laws.
* Bad framework names and parameters: the messages name the valid
  frameworks, the closest name and the framework's own spelling.
* Value semantics (pickle, hash, equality, repr) of framework-named schemes.
* ``delta_orthogonal``'s centre tap, ``stft`` against a numpy reference of
  Keras 3's ``STFT`` initializer, and PyTorch's default bias.

Every statistical test uses a fixed seed and a |z| < 5 threshold (a false
rejection rate of about 6e-7 per test for a correct sampler).
"""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pytest

import initsim.initializers as ini
from initsim import framework_names
from initsim.initializers import DTYPES, FanRule, fans, get, names

# Values for the required parameters (and a few non-default ones).
REQUIRED: dict[str, dict[str, object]] = {
    "constant": {"value": 0.25},
    "sparse": {"sparsity": 0.3},
    "torch_bias_default": {"fan_in": 64},
    "torch.constant_": {"val": -0.5},
    "torch.sparse_": {"sparsity": 0.07},
    "torch.default_bias": {"fan_in": 10},
    "jax.constant": {"value": 0.5},
    "jax.variance_scaling": {"scale": 2.0, "mode": "fan_avg", "distribution": "normal"},
}

ALL_NAMES = [*names(), *framework_names.names()]

# The four ranks a weight can have, as (out, in, *kernel) and (*kernel, in, out),
# with in <= out (delta_orthogonal needs it) and >= 2 frequency bins (stft).
TORCH_SHAPES = [(48, 24), (32, 16, 5), (16, 8, 3, 3), (8, 4, 3, 3, 3)]
KERAS_SHAPES = [(24, 48), (5, 16, 32), (3, 3, 8, 16), (3, 3, 3, 4, 8)]

# Laws that restrict the rank of the shape (all others take any rank >= 2).
RANKS_BY_LAW = {
    "identity": {2},
    "sparse": {2},
    "dirac": {3, 4, 5},
    "delta_orthogonal": {3, 4, 5},
    "stft": {3},
}
# Laws that are fixed tensors: no spread between draws.
DETERMINISTIC_LAWS = {"constant", "identity", "dirac", "stft"}
# Haar (semi-)orthogonal laws: the sum of squares of one draw is deterministic.
HAAR_LAWS = {"orthogonal", "delta_orthogonal"}

# Schemes whose law does not read the fans: any rank, 0-d and 1-D included.
FAN_FREE = {
    "zeros", "ones", "constant", "normal", "uniform", "truncated_normal", "torch_bias_default",
    "torch.uniform_", "torch.normal_", "torch.trunc_normal_", "torch.constant_", "torch.ones_",
    "torch.zeros_", "torch.default_bias",
    "keras.Constant", "keras.Zeros", "keras.Ones", "keras.RandomNormal", "keras.RandomUniform",
    "keras.TruncatedNormal",
    "jax.zeros", "jax.ones", "jax.constant", "jax.uniform", "jax.normal", "jax.truncated_normal",
}  # fmt: skip
# Keras variance-scaling names: Keras' fan rule gives 0-d and 1-D shapes fans too.
KERAS_LOW_RANK = {
    "keras.VarianceScaling", "keras.GlorotUniform", "keras.GlorotNormal", "keras.HeUniform",
    "keras.HeNormal", "keras.LecunUniform", "keras.LecunNormal",
}  # fmt: skip
# Schemes without a complex law (bounded real laws).
REAL_ONLY = {
    "uniform", "truncated_normal", "sparse", "torch_linear_default", "torch_bias_default",
    "torch.uniform_", "torch.trunc_normal_", "torch.sparse_", "torch.default_weight",
    "torch.default_bias", "keras.RandomUniform", "keras.TruncatedNormal", "jax.uniform",
    "jax.truncated_normal",
}  # fmt: skip

Z_MAX = 5.0


def make(name: str, **params: object) -> ini.Initializer:
    return get(name, **{**REQUIRED.get(name, {}), **params})


def accepted_ranks(name: str, init: ini.Initializer) -> set[int]:
    """The ranks ``init.sample`` draws, from the tables above (not from initsim)."""
    if init.law in RANKS_BY_LAW:
        return RANKS_BY_LAW[init.law]
    if name in FAN_FREE or name in KERAS_LOW_RANK:
        return {0, 1, 2, 3, 4, 5}
    return {2, 3, 4, 5}


def shape_id(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) or "0d"


def readable(value: object) -> str | None:
    """A test id for a parameter: names as they are, shapes as 3x3x8x16, params as k=v."""
    if isinstance(value, str):
        return None if any(c in value for c in " \\*?()[]'") else value  # not a regex
    if isinstance(value, tuple) and all(isinstance(d, int) for d in value):
        return shape_id(value)
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()).replace(" ", "") or "defaults"
    if isinstance(value, float):
        return f"{value:.4g}"
    return None


def mean_square_z(draws: np.ndarray, mean: float, variance: float) -> float:
    """z-statistic of the mean of ``|W - mean|^2`` against ``variance`` (iid entries)."""
    d = np.abs(draws.ravel() - mean) ** 2
    se = d.std(ddof=1) / math.sqrt(d.size)
    return (d.mean() - variance) / se


# =========================================================================== 1. fans by hand


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((20, 10), (10, 20)),
        ((8, 4, 5), (4 * 5, 8 * 5)),
        ((64, 32, 3, 3), (32 * 9, 64 * 9)),
        ((16, 8, 3, 3, 3), (8 * 27, 16 * 27)),
        ((1, 1, 1), (1, 1)),
    ],
    ids=shape_id,
)
def test_torch_layout_fans_by_hand(shape, expected):
    # PyTorch: (out, in, *kernel), fan_in = in * prod(kernel), fan_out = out * prod(kernel).
    assert fans(shape) == expected
    assert FanRule().fans(shape) == expected
    assert get("he_normal").fans(shape) == expected
    assert get("torch.kaiming_normal_").fans(shape) == expected
    assert get("torch.nn.init.kaiming_normal_").fans(shape) == expected
    # The same weight read by a keras-layout scheme told it is in torch layout.
    assert get("keras.HeNormal").fans(shape, layout="torch") == expected


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((10, 20), (10, 20)),
        ((5, 4, 8), (4 * 5, 8 * 5)),
        ((3, 3, 32, 64), (32 * 9, 64 * 9)),
        ((3, 3, 3, 8, 16), (8 * 27, 16 * 27)),
    ],
    ids=shape_id,
)
def test_keras_layout_fans_by_hand(shape, expected):
    # Keras / JAX: (*kernel, in, out).
    assert fans(shape, "keras") == expected
    assert FanRule("keras").fans(shape) == expected
    assert get("he_normal").fans(shape, layout="keras") == expected
    for name in (
        "keras.HeNormal",
        "keras.initializers.HeNormal",
        "tf.keras.initializers.HeNormal",
        "jax.he_normal",
        "jax.nn.initializers.he_normal",
        "HeNormal",
    ):
        assert get(name).fans(shape) == expected, name


@pytest.mark.parametrize(
    ("shape", "axes", "expected"),
    [
        # in_axis (0, 1) -> 3 * 5, out_axis -1 -> 11, receptive field 7.
        ((3, 5, 7, 11), {"in_axis": (0, 1), "out_axis": -1}, (15 * 7, 11 * 7)),
        # batch axis 0 in neither fan; receptive field 3 * 3.
        ((4, 3, 3, 16, 32), {"batch_axis": 0}, (16 * 9, 32 * 9)),
        ((4, 3, 3, 16, 32), {"in_axis": -2, "out_axis": -1, "batch_axis": (0,)}, (144, 288)),
        ((4, 6, 3, 16, 32), {"batch_axis": (0, 1)}, (16 * 3, 32 * 3)),
        # non-default single axes: receptive field 5 * 7 = 35.
        ((2, 3, 5, 7), {"in_axis": 0, "out_axis": 1}, (2 * 35, 3 * 35)),
        ((2, 3, 5, 7), {"in_axis": -3, "out_axis": -4}, (3 * 35, 2 * 35)),
        # negative tuples and a batch axis: no receptive field left.
        ((2, 3, 5, 7), {"in_axis": (-4, -3), "out_axis": (-1,), "batch_axis": 2}, (6, 7)),
        ((2, 3, 5, 7), {"in_axis": [0, 2], "out_axis": 3}, (2 * 5 * 3, 7 * 3)),
        # a transposed dense kernel.
        ((10, 20), {"in_axis": -1, "out_axis": -2}, (20, 10)),
        ((10, 20), {"in_axis": 1, "out_axis": 0}, (20, 10)),
    ],
    ids=readable,
)
def test_jax_axes_fans_by_hand(shape, axes, expected):
    init = get("jax.he_normal", **axes)
    assert init.fans(shape) == expected
    assert init.variance_for_shape(shape) == 2.0 / expected[0]
    assert fans(shape, "keras", **axes) == expected
    assert FanRule("keras", **axes).fans(shape) == expected
    vs = get("jax.variance_scaling", scale=3.0, mode="fan_out", distribution="uniform", **axes)
    assert vs.variance_for_shape(shape) == 3.0 / expected[1]


def test_torch_layout_axes_count_from_the_torch_defaults():
    # (2, 3, 5, 7) torch: in axis -1 (7), out axis still 0 (2), receptive field 3 * 5.
    assert fans((2, 3, 5, 7), "torch", in_axis=-1) == (7 * 15, 2 * 15)


@pytest.mark.parametrize(
    ("name", "shape", "input_axes", "output_axes", "expected"),
    [
        # EinsumDense "ab,bcd->acd" kernel (embed=64, heads=8, head_dim=16).
        ("keras.HeNormal", (64, 8, 16), [0], [1, 2], (64, 8 * 16)),
        ("keras.HeNormal", (64, 8, 16), [-3], [-2, -1], (64, 128)),
        # MultiHeadAttention output projection (heads=8, head_dim=16, embed=64).
        ("keras.GlorotUniform", (8, 16, 64), [0, 1], [2], (128, 64)),
        # Axes in neither list are ignored, not a receptive field.
        ("keras.LecunNormal", (3, 4, 5), [1], [2], (4, 5)),
        ("keras.VarianceScaling", (3, 3, 32, 64), (2,), (3,), (32, 64)),
        ("keras.HeUniform", (10, 20), 0, 1, (10, 20)),
    ],
    ids=[
        "einsum-dense",
        "einsum-dense-negative",
        "mha-output",
        "ignored-axis",
        "conv-no-receptive-field",
        "int-axes",
    ],
)
def test_keras_input_output_axes_by_hand(name, shape, input_axes, output_axes, expected):
    init = get(name, input_axes=input_axes, output_axes=output_axes)
    assert init.fans(shape) == expected
    assert init.fan_rule.receptive_field is False
    assert init.variance(*expected) == init.variance_for_shape(shape)
    # Without the axes Keras multiplies in the receptive field of the leading axes.
    r = math.prod(shape[:-2])
    assert get(name).fans(shape) == (shape[-2] * r, shape[-1] * r)


def test_keras_einsum_dense_variance_by_hand():
    init = get("keras.HeNormal", input_axes=[0], output_axes=[1, 2])
    assert init.variance_for_shape((64, 8, 16)) == 2.0 / 64
    glorot = get("keras.GlorotNormal", input_axes=[0], output_axes=[1, 2])
    assert glorot.variance_for_shape((64, 8, 16)) == pytest.approx(2.0 / (64 + 128), rel=1e-15)


@pytest.mark.parametrize(
    ("shape", "expected"), [((), (1, 1)), ((7,), (7, 7)), ((1,), (1, 1))], ids=shape_id
)
def test_keras_low_rank_rule(shape, expected):
    assert FanRule("keras", low_rank="keras").fans(shape) == expected
    assert get("keras.HeNormal").fans(shape) == expected
    assert get("keras.GlorotUniform").variance_for_shape(shape) == pytest.approx(
        2.0 / (expected[0] + expected[1]), rel=1e-15
    )
    assert get("keras.HeNormal").variance_for_shape(shape) == 2.0 / expected[0]


@pytest.mark.parametrize("shape", [(), (7,)], ids=shape_id)
@pytest.mark.parametrize(
    "fan_of",
    [
        lambda s: fans(s),
        lambda s: fans(s, "keras"),
        lambda s: get("he_normal").fans(s),
        lambda s: get("torch.kaiming_normal_").fans(s),
        lambda s: get("jax.he_normal").fans(s),
        lambda s: get("jax.glorot_uniform").variance_for_shape(s),
        lambda s: get("jax.he_normal").sample(s, seed=0),
        lambda s: get("torch.kaiming_uniform_").sample(s, seed=0),
        # Keras' low-rank rule holds only without axes.
        lambda s: get("keras.HeNormal", input_axes=[0], output_axes=[1]).fans(s),
    ],
    ids=[
        "fans-torch",
        "fans-keras",
        "he_normal",
        "torch",
        "jax",
        "jax-variance",
        "jax-sample",
        "torch-sample",
        "keras-with-axes",
    ],
)
def test_torch_and_jax_fans_need_two_dimensions(fan_of, shape):
    with pytest.raises(ValueError, match=r"at least 2 dimensions"):
        fan_of(shape)


@pytest.mark.parametrize(
    ("axes", "match"),
    [
        ({"in_axis": 4}, r"in_axis=4 is out of range .* -4 \.\. 3"),
        ({"in_axis": -5}, r"in_axis=-5 is out of range"),
        ({"out_axis": (1, 9)}, r"out_axis=\(1, 9\) is out of range"),
        ({"batch_axis": 4}, r"batch_axis=4 is out of range"),
        ({"in_axis": (0, 0)}, r"in_axis=\(0, 0\) names an axis twice"),
        ({"in_axis": (1, -3)}, r"names an axis twice"),
        ({"in_axis": 0, "out_axis": (0, 1)}, r"must name different axes"),
        ({"in_axis": -1, "out_axis": 3}, r"must name different axes"),
        ({"batch_axis": -2}, r"must name different axes"),
    ],
    ids=[
        "in-too-big",
        "in-too-negative",
        "out-tuple-too-big",
        "batch-too-big",
        "in-repeated",
        "in-repeated-negative",
        "in-out-overlap",
        "in-out-overlap-negative",
        "batch-overlaps-in",
    ],
)
def test_bad_axes_raise_when_the_shape_is_known(axes, match):
    shape = (2, 3, 4, 5)
    with pytest.raises(ValueError, match=match):
        fans(shape, "keras", **axes)
    init = get("jax.lecun_uniform", **axes)  # the shape is needed to resolve the axes
    with pytest.raises(ValueError, match=match):
        init.fans(shape)
    with pytest.raises(ValueError, match=match):
        init.sample(shape, seed=0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: get("keras.HeNormal", input_axes=[0]), r"input_axes only together with"),
        (lambda: get("keras.VarianceScaling", output_axes=[1, 2]), r"give both"),
        (lambda: get("jax.he_normal", in_axis="0"), r"in_axis must be an int"),
        (lambda: get("jax.he_normal", out_axis=True), r"out_axis must be an int"),
        (lambda: get("jax.he_normal", batch_axis=None), r"batch_axis must be"),
        (lambda: get("jax.he_normal", in_axis=(0, 1.0)), r"in_axis must be"),
        (lambda: get("keras.HeNormal", input_axes="0", output_axes=[1]), r"input_axes must be"),
        (lambda: FanRule("tf"), r"layout must be one of 'torch', 'keras'"),
        (lambda: FanRule(low_rank="jax"), r"low_rank must be one of"),
        (lambda: FanRule(receptive_field=1), r"receptive_field must be a bool"),
        (lambda: get("jax.orthogonal", column_axis=(0, 1)), r"column_axis must be one int"),
        (lambda: get("jax.delta_orthogonal", column_axis=2), r"column_axis of jax\.delta"),
    ],
    ids=[
        "keras-only-input",
        "keras-only-output",
        "str-axis",
        "bool-axis",
        "none-batch",
        "float-in-tuple",
        "keras-str-axes",
        "layout",
        "low-rank",
        "receptive-field",
        "orthogonal-tuple-column",
        "delta-column-range",
    ],
)
def test_bad_axis_values_raise_at_lookup(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_receptive_field_off_ignores_the_kernel_axes():
    assert FanRule("keras", receptive_field=False).fans((3, 3, 32, 64)) == (32, 64)
    assert FanRule("torch", receptive_field=False).fans((64, 32, 3, 3)) == (32, 64)


# =========================================================================== 2. one answer


def _cases() -> list:
    """(name, params, shape, layout) for every scheme at every rank it takes."""
    cases = []
    for name in ALL_NAMES:
        init = make(name)
        ranks = accepted_ranks(name, init)
        layouts = [None] if "." in name else [None, "keras"]
        for layout in layouts:
            keras_like = (layout or init.fan_rule.layout) == "keras"
            for shape in KERAS_SHAPES if keras_like else TORCH_SHAPES:
                if len(shape) in ranks:
                    tag = f"{name}-{layout or 'own'}-{shape_id(shape)}"
                    cases.append(pytest.param(name, {}, shape, layout, id=tag))
    # Non-default parameters whose fans or variance differ.
    extra = [
        ("jax.he_normal", {"in_axis": (0, 1), "out_axis": -1}, (3, 5, 7, 11)),
        ("jax.glorot_normal", {"batch_axis": 0}, (4, 3, 3, 16, 32)),
        (
            "jax.variance_scaling",
            {"scale": 1.0, "mode": "fan_geo_avg", "distribution": "truncated_normal"},
            (3, 3, 8, 32),
        ),
        (
            "jax.variance_scaling",
            {
                "scale": 0.5,
                "mode": "fan_out",
                "distribution": "uniform",
                "in_axis": 0,
                "out_axis": (1, 2),
            },
            (24, 4, 8),
        ),
        ("keras.HeNormal", {"input_axes": [0], "output_axes": [1, 2]}, (64, 8, 16)),
        (
            "keras.VarianceScaling",
            {
                "mode": "fan_avg",
                "distribution": "untruncated_normal",
                "input_axes": [0, 1],
                "output_axes": [2],
            },
            (8, 16, 64),
        ),
        ("keras.HeUniform", {}, (4096,)),
        ("keras.LecunNormal", {}, (3000,)),
        ("jax.orthogonal", {"column_axis": 0}, (3, 3, 32, 64)),
        ("jax.orthogonal", {"column_axis": -2, "scale": 0.5}, (5, 12, 7)),
        ("jax.delta_orthogonal", {"scale": -2.0}, (4, 4, 8, 8)),
        ("torch.kaiming_normal_", {"mode": "fan_out", "nonlinearity": "tanh"}, (16, 8, 3, 3)),
        ("torch.kaiming_uniform_", {"a": 0.2}, (16, 8, 3, 3)),
        ("torch.orthogonal_", {"gain": 3.0}, (8, 64)),
        ("torch.sparse_", {"sparsity": 0.0}, (40, 30)),
        ("he_normal", {"distribution": "truncated_normal"}, (32, 16, 3)),
    ]
    for name, params, shape in extra:
        tag = f"{name}-{'-'.join(f'{k}={v}' for k, v in params.items())}-{shape_id(shape)}"
        cases.append(pytest.param(name, params, shape, None, id=tag.replace(" ", "")))
    return cases


CASES = _cases()


@pytest.mark.parametrize(("name", "params", "shape", "layout"), CASES)
def test_variance_of_the_fans_is_the_variance_of_the_samples(name, params, shape, layout):
    init = make(name, **params)
    fan_in, fan_out = init.fans(shape, layout)
    variance = init.variance_for_shape(shape, layout)
    assert init.variance(fan_in, fan_out) == variance
    mean = init.mean(fan_in, fan_out)
    if init.law in DETERMINISTIC_LAWS:
        a = init.sample(shape, seed=1, layout=layout)
        b = init.sample(shape, seed=2, layout=layout)
        np.testing.assert_array_equal(a, b)
        assert variance == 0.0
        return
    if init.law in HAAR_LAWS:
        # sum |W|^2 = gain^2 min(rows, cols): the mean square is exactly the variance.
        for seed in range(3):
            w = init.sample(shape, seed=seed, layout=layout)
            assert w.shape == shape
            assert np.mean(w**2) == pytest.approx(variance, rel=1e-12)
        return
    n_draws = math.ceil(40_000 / math.prod(shape))
    draws = np.stack([init.sample(shape, seed=seed, layout=layout) for seed in range(n_draws)])
    assert draws.shape == (n_draws, *shape)
    z = mean_square_z(draws, mean, variance)
    assert abs(z) < Z_MAX, f"{name}: mean square off by z = {z:.2f}"


@pytest.mark.parametrize(
    ("name", "params", "shape", "layout", "expected"),
    [
        ("orthogonal", {}, (64, 32, 3, 3), None, 1 / 288),  # 64 x 288, not the fans' 576
        ("orthogonal", {}, (3, 3, 32, 64), "keras", 1 / 288),  # 288 x 64
        ("torch.orthogonal_", {"gain": 2.0}, (64, 32, 3, 3), None, 4 / 288),
        ("keras.Orthogonal", {}, (3, 3, 32, 64), None, 1 / 288),
        ("jax.orthogonal", {"column_axis": 0}, (3, 3, 32, 64), None, 1 / 6144),  # 6144 x 3
        ("jax.orthogonal", {}, (10, 20), None, 1 / 20),
        ("jax.delta_orthogonal", {}, (3, 3, 32, 64), None, 1 / (64 * 9)),
        ("delta_orthogonal", {"gain": 3.0}, (64, 32, 3, 3), None, 9 / (64 * 9)),
        ("he_normal", {}, (64, 32, 3, 3), None, 2 / 288),
        ("torch.kaiming_normal_", {"mode": "fan_out"}, (64, 32, 3, 3), None, 2 / 576),
        ("torch.xavier_uniform_", {"gain": 2.0}, (64, 32, 3, 3), None, 4 * 2 / (288 + 576)),
        ("torch.default_weight", {}, (64, 32, 3, 3), None, 1 / (3 * 288)),
        ("keras.LecunUniform", {}, (3, 3, 32, 64), None, 1 / 288),
        (
            "jax.variance_scaling",
            {"scale": 1.0, "mode": "fan_geo_avg", "distribution": "normal"},
            (3, 3, 8, 32),
            None,
            1 / 144,
        ),  # sqrt(72 * 288) = 144
        # PyTorch's float arithmetic: 0.07 * 100 = 7.000000000000001 -> 8 zeros per column.
        ("torch.sparse_", {"sparsity": 0.07}, (100, 4), None, 1e-4 * 92 / 100),
        ("torch.default_bias", {"fan_in": 12}, (5,), None, 1 / 36),
        ("keras.TruncatedNormal", {"stddev": 0.1}, (7,), None, 0.01 * 0.773741),
    ],
    ids=readable,
)
def test_variance_for_shape_by_hand(name, params, shape, layout, expected):
    init = get(name, **params)
    rel = 1e-6 if name == "keras.TruncatedNormal" else 1e-15
    assert init.variance_for_shape(shape, layout) == pytest.approx(expected, rel=rel)


def test_orthogonal_conv_fans_are_the_flattened_matrix():
    init = get("orthogonal")
    assert init.fans((64, 32, 3, 3)) == (288, 64)
    assert init.variance(*init.fans((64, 32, 3, 3))) == 1 / 288
    assert init.variance(*init.fans((64, 32, 3, 3))) != 1 / 576  # the old, conv-fan answer
    # The variance-scaling fans of the same shape are different numbers.
    assert fans((64, 32, 3, 3)) == (288, 576)


def test_negative_control_the_z_test_rejects_a_planted_wrong_variance():
    # The sample sizes above detect a variance 10 % off (z ~ 14 for a Gaussian).
    init = get("he_normal")
    shape = TORCH_SHAPES[0]
    draws = np.stack([init.sample(shape, seed=s) for s in range(math.ceil(40_000 / 1152))])
    right = init.variance_for_shape(shape)
    assert abs(mean_square_z(draws, 0.0, right)) < Z_MAX
    assert abs(mean_square_z(draws, 0.0, 1.1 * right)) > Z_MAX
    assert abs(mean_square_z(draws, 0.0, right / 1.1)) > Z_MAX


def test_keras_low_rank_samples_have_the_stated_variance():
    he = get("keras.HeNormal")
    assert he.variance_for_shape(()) == 2.0
    zero_d = np.array([he.sample((), seed=s) for s in range(4000)])
    assert zero_d.shape == (4000,)
    assert abs(mean_square_z(zero_d, 0.0, 2.0)) < Z_MAX
    # 1-D (n,): fans (n, n).
    glorot = get("keras.GlorotUniform")
    draws = glorot.sample((20_000,), seed=3)
    assert np.max(np.abs(draws)) <= math.sqrt(6.0 / 40_000)
    assert abs(mean_square_z(draws, 0.0, 1.0 / 20_000)) < Z_MAX


# =========================================================================== 3. dtypes, shapes


DTYPE_SPELLINGS = [
    *DTYPES,
    np.float64, np.float32, np.float16, np.complex64, np.complex128,
    np.dtype("float64"), np.dtype("float32"), np.dtype("float16"), np.dtype("complex64"),
    np.dtype("complex128"),
]  # fmt: skip


def _some_shape(name: str, init: ini.Initializer) -> tuple[int, ...]:
    ranks = accepted_ranks(name, init)
    pool = KERAS_SHAPES if init.fan_rule.layout == "keras" else TORCH_SHAPES
    return next(s for s in pool if len(s) in ranks)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_dtype_spelling(name):
    init = make(name)
    shape = _some_shape(name, init)
    for dtype in DTYPE_SPELLINGS:
        want = np.dtype(dtype)
        if want.kind == "c" and name in REAL_ONLY:
            with pytest.raises(ValueError, match=r"no complex law"):
                init.sample(shape, seed=0, dtype=dtype)
            continue
        w = init.sample(shape, seed=0, dtype=dtype)
        assert w.dtype == want, (name, dtype)
        assert w.shape == shape
        assert np.all(np.isfinite(w))


@pytest.mark.parametrize(
    "dtype", ["int32", "bfloat16", "float128", "foo", np.int64, object, "bool", None]
)
def test_unknown_dtype_raises_naming_dtype(dtype):
    with pytest.raises(ValueError, match=r"dtype must be one of float64, float32"):
        get("he_normal").sample((4, 3), seed=0, dtype=dtype)
    with pytest.raises(ValueError, match=r"dtype"):
        get("keras.Zeros").sample((), seed=0, dtype=dtype)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_zero_element_and_0d_shapes_follow_the_rank_rules(name):
    init = make(name)
    ranks = accepted_ranks(name, init)
    layout_shapes = {  # zero-element shapes of ranks 1..5, each with an empty axis
        1: (0,),
        2: (0, 4),
        3: (4, 0, 3),
        4: (2, 0, 3, 3),  # in = 0 <= out: delta_orthogonal's in <= out holds in both layouts
        5: (2, 0, 3, 3, 3),
    }
    dtype = "float32" if name in REAL_ONLY else "complex64"
    for rank, shape in layout_shapes.items():
        if rank in ranks:
            w = init.sample(shape, seed=0, dtype=dtype)
            assert w.shape == shape and w.size == 0 and w.dtype == np.dtype(dtype), shape
        else:
            with pytest.raises(ValueError, match=r"needs|dimensions"):
                init.sample(shape, seed=0)
    if 0 in ranks:
        w = init.sample((), seed=0, dtype="float16")
        assert w.shape == () and w.dtype == np.float16 and np.isfinite(w)
    else:
        with pytest.raises(ValueError, match=r"needs|dimensions"):
            init.sample((), seed=0)


@pytest.mark.parametrize(
    "shape",
    [(-1, 3), (2.5, 3), ("3", 4), (True, 3), "34", (3, None), (3.0, 4), None],
    ids=["negative", "float", "str-dim", "bool-dim", "str", "none-dim", "integral-float", "none"],
)
@pytest.mark.parametrize("name", ["he_normal", "keras.HeNormal", "normal", "orthogonal"])
def test_bad_shape_raises_naming_shape(name, shape):
    init = get(name)
    with pytest.raises(ValueError, match=r"shape"):
        init.sample(shape, seed=0)
    with pytest.raises(ValueError, match=r"shape"):
        init.fans(shape)
    with pytest.raises(ValueError, match=r"shape"):
        init.variance_for_shape(shape)


def test_numpy_integer_dims_are_accepted():
    w = get("he_normal").sample((np.int64(3), np.int32(4)), seed=0)
    assert w.shape == (3, 4)
    assert get("he_normal").fans((np.int64(3), np.int32(4))) == (4, 3)


@pytest.mark.parametrize("name", ["keras.Constant", "jax.constant", "constant"])
def test_array_valued_constant_broadcasts(name):
    row = get(name, value=[1.0, 2.0, 3.0])
    w = row.sample((2, 3), seed=0)
    np.testing.assert_array_equal(w, [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    col = get(name, value=[[1.0], [-2.0]])
    np.testing.assert_array_equal(
        col.sample((2, 3), seed=0, dtype="float32"),
        np.array([[1, 1, 1], [-2, -2, -2]], dtype=np.float32),
    )
    # A (2, 1) value broadcast into a 4-D conv weight, numpy's rules.
    w4 = col.sample((5, 4, 2, 3), seed=0)
    assert w4.shape == (5, 4, 2, 3)
    assert np.all(w4[..., 0, :] == 1.0) and np.all(w4[..., 1, :] == -2.0)
    assert row.variance_for_shape((2, 3)) == 0.0
    assert row.mean(1, 1) == 2.0  # the array's mean
    with pytest.raises(ValueError, match=r"value of shape \(3,\) cannot be broadcast to shape"):
        row.sample((2, 4), seed=0)
    with pytest.raises(ValueError, match=r"cannot be broadcast"):
        row.sample((), seed=0)
    with pytest.raises(ValueError, match=r"cannot be broadcast"):
        col.sample((3, 3), seed=0)
    with pytest.raises(ValueError, match=r"no single-entry law"):
        row.law_spec(1, 1)


def test_array_valued_constant_rejects_an_incompatible_empty_shape():
    with pytest.raises(ValueError, match=r"cannot be broadcast"):
        get("keras.Constant", value=[1.0, 2.0, 3.0]).sample((0, 4), seed=0)


def test_torch_constant_needs_a_scalar():
    with pytest.raises(ValueError, match=r"val of torch\.constant_ must be a finite real"):
        get("torch.constant_", val=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"val of torch\.constant_"):
        get("constant_", val=np.ones(3))
    assert get("constant_", val=2.0).sample((2, 2), seed=0).tolist() == [[2.0, 2.0], [2.0, 2.0]]


@pytest.mark.parametrize(
    ("name", "params", "shape", "match"),
    [
        ("orthogonal", {}, (5,), r"at least 2 dimensions"),
        ("keras.Orthogonal", {}, (), r"at least 2 dimensions"),
        ("jax.orthogonal", {}, (5,), r"at least 2 dimensions"),
        ("identity", {}, (3, 3, 3), r"needs a 2-D shape"),
        ("keras.Identity", {}, (3,), r"needs a 2-D shape"),
        ("torch.eye_", {}, (2, 2, 1), r"needs a 2-D shape"),
        ("dirac", {}, (4, 4), r"needs a 3, 4, 5-D shape"),
        ("torch.dirac_", {}, (4, 4, 1, 1, 1, 1), r"needs a 3, 4, 5-D shape"),
        ("delta_orthogonal", {}, (64, 32), r"needs a 3, 4, 5-D shape"),
        ("delta_orthogonal", {}, (32, 64, 3, 3), r"needs in <= out channels"),
        ("keras.Identity", {}, (), r"needs a 2-D shape"),
        ("keras.STFT", {}, (8,), r"needs a 3-D shape"),
        ("jax.delta_orthogonal", {}, (1, 1, 1, 1, 4, 4), r"needs a 3, 4, 5-D shape"),
        ("stft", {}, (8, 5), r"needs a 3-D shape"),
        ("keras.STFT", {}, (8, 1, 5, 1), r"needs a 3-D shape"),
        ("keras.STFT", {}, (8, 1, 1), r"at least 2 frequency bins"),
        ("keras.STFT", {"window": [1.0, 2.0, 3.0]}, (8, 1, 5), r"window has 3 values"),
        ("sparse", {"sparsity": 0.1}, (4, 4, 3), r"2-D shape"),
        ("torch.dirac_", {"groups": 3}, (4, 4, 3), r"groups=3 must divide"),
    ],
    ids=readable,
)
def test_rank_and_shape_errors_of_structured_laws(name, params, shape, match):
    with pytest.raises(ValueError, match=match):
        get(name, **params).sample(shape, seed=0)


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("identity", (3, 3, 3)),
        ("keras.Identity", ()),
        ("dirac", (4, 4)),
        ("delta_orthogonal", (64, 32)),
        ("delta_orthogonal", (32, 64, 3, 3)),  # in = 64 > out = 32
        ("stft", (8, 5)),
        ("keras.STFT", (8,)),
    ],
    ids=readable,
)
def test_variance_for_shape_rejects_the_shapes_sample_rejects(name, shape):
    # sample raises for each of these shapes (test_rank_and_shape_errors_of_structured_laws,
    # test_zero_element_and_0d_shapes_follow_the_rank_rules, the delta_orthogonal tests).
    with pytest.raises(ValueError):
        get(name).variance_for_shape(shape)


# =========================================================================== 4. bad input


@pytest.mark.parametrize("name", ["tf.HeNormal", "flax.he_normal", "pytorch.normal_"])
def test_unknown_framework_names_the_valid_ones(name):
    with pytest.raises(ValueError, match=r"unknown framework .*frameworks: torch, keras, jax"):
        get(name)


@pytest.mark.parametrize(
    ("name", "closest"),
    [
        ("keras.HeNormall", "keras.HeNormal"),
        ("torch.kaiming_normla_", "torch.kaiming_normal_"),
        ("torch.nn.init.xavier_unifrom_", "torch.xavier_uniform_"),
        ("jax.he_norml", "jax.he_normal"),
        ("jax.nn.initializers.orthogonl", "jax.orthogonal"),
        ("keras.Glorotuniform", "keras.GlorotUniform"),
    ],
)
def test_unknown_name_within_a_framework_has_a_did_you_mean(name, closest):
    with pytest.raises(ValueError, match=rf"did you mean {closest}\?"):
        get(name)


def test_unknown_name_lists_the_framework_names():
    with pytest.raises(ValueError, match=r"jax names: zeros, ones, .*delta_orthogonal"):
        get("jax.kaiming_normal_")


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("keras.RandomNormal", {"std": 0.1}, r"'std' .*Keras spells it 'stddev'"),
        ("keras.TruncatedNormal", {"std": 0.1}, r"Keras spells it 'stddev'"),
        ("keras.RandomUniform", {"a": -1.0}, r"Keras spells it 'minval'"),
        ("torch.normal_", {"stddev": 0.1}, r"'stddev' .*PyTorch spells it 'std'"),
        ("torch.uniform_", {"minval": 0.0}, r"PyTorch spells it 'a'"),
        ("torch.constant_", {"value": 1.0}, r"PyTorch spells it 'val'"),
        ("torch.normal_", {"seed": 1}, r"PyTorch spells it 'generator'"),
        ("jax.orthogonal", {"gain": 2.0}, r"'gain' .*JAX spells it 'scale'"),
        ("jax.truncated_normal", {"a": -1.0}, r"JAX spells it 'lower'"),
        ("jax.he_normal", {"input_axes": [0]}, r"JAX spells it 'in_axis'"),
        ("keras.HeNormal", {"in_axis": 0}, r"Keras spells it 'input_axes'"),
        ("keras.Orthogonal", {"scale": 2.0}, r"Keras spells it 'gain'"),
        ("normal", {"stddev": 0.1}, r"initsim spells it 'std'"),
        ("orthogonal", {"scale": 2.0}, r"initsim spells it 'gain'"),
        ("jax.normal", {"dtype": "float32"}, r"give the dtype to sample\(shape, seed, dtype"),
        ("keras.HeNormal", {"dtype": "float32"}, r"give the dtype to sample"),
        ("he_normal", {"dtype": "float32"}, r"give the dtype to sample"),
        ("jax.normal", {"key": 0}, r"the random stream is sample\(shape, seed=\.\.\.\)'s"),
        ("jax.he_normal", {"seed": 0}, r"the random stream is sample"),
        ("keras.Zeros", {"seed": 0}, r"valid parameters: none"),
    ],
    ids=readable,
)
def test_another_frameworks_spelling_is_named(name, params, match):
    with pytest.raises(ValueError, match=match):
        get(name, **params)


def _names_with_ignored_param() -> list:
    out = []
    for name in framework_names.names():
        for key in framework_names.lookup(name).ignored:
            out.append(pytest.param(name, key, id=f"{name}-{key}"))
    return out


IGNORED = _names_with_ignored_param()


def test_the_random_stream_parameters_are_the_torch_and_keras_ones():
    ids = {p.id for p in IGNORED}
    assert "torch.kaiming_normal_-generator" in ids
    assert "keras.HeNormal-seed" in ids
    assert "keras.Orthogonal-seed" in ids
    assert not any(i.startswith("jax.") for i in ids)
    assert {i.split("-")[-1] for i in ids} == {"generator", "seed"}


@pytest.mark.parametrize(("name", "key"), IGNORED)
def test_random_stream_parameter_warns_and_is_ignored(name, key):
    with pytest.warns(
        UserWarning, match=rf"{key}=42 is ignored; initsim draws from its own"
    ) as record:
        init = make(name, **{key: 42})
    # stacklevel points at the caller of get().
    assert record[0].filename == __file__
    assert init == make(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert make(name, **{key: None}) == make(name)


@pytest.mark.parametrize(
    ("name", "params", "missing"),
    [
        ("jax.variance_scaling", {}, "scale"),
        ("jax.variance_scaling", {"scale": 1.0}, "mode"),
        ("jax.variance_scaling", {"scale": 1.0, "mode": "fan_in"}, "distribution"),
        ("torch.sparse_", {}, "sparsity"),
        ("torch.sparse_", {"std": 0.1}, "sparsity"),
        ("torch.constant_", {}, "val"),
        ("jax.constant", {}, "value"),
        ("torch.default_bias", {}, "fan_in"),
        ("constant", {}, "value"),
        ("sparse", {}, "sparsity"),
    ],
    ids=readable,
)
def test_missing_required_parameter_is_named(name, params, missing):
    with pytest.raises(ValueError, match=rf"requires the parameter '{missing}'"):
        get(name, **params)


def test_fan_geo_avg_is_jax_only():
    with pytest.raises(
        ValueError,
        match=r"mode of keras\.VarianceScaling must be one of "
        r"'fan_in', 'fan_out', 'fan_avg'; got 'fan_geo_avg'",
    ):
        get("keras.VarianceScaling", mode="fan_geo_avg")
    jax = get("jax.variance_scaling", scale=2.0, mode="fan_geo_avg", distribution="uniform")
    # (3, 3, 8, 32): fans (72, 288), sqrt(72 * 288) = 144.
    assert jax.variance_for_shape((3, 3, 8, 32)) == pytest.approx(2.0 / 144, rel=1e-15)
    assert get("variance_scaling", mode="fan_geo_avg").variance(4, 9) == pytest.approx(1 / 6)


def test_keras_and_jax_read_distribution_normal_differently():
    assert get("keras.VarianceScaling", distribution="normal").law == "truncated_gaussian"
    assert get("keras.VarianceScaling", distribution="untruncated_normal").law == "gaussian"
    normal = get("jax.variance_scaling", scale=1.0, mode="fan_in", distribution="normal")
    assert normal.law == "gaussian"
    with pytest.raises(ValueError, match=r"distribution of jax\.variance_scaling"):
        get("jax.variance_scaling", scale=1.0, mode="fan_in", distribution="untruncated_normal")


# =========================================================================== 5. value semantics


@pytest.mark.parametrize("name", ALL_NAMES)
def test_framework_named_schemes_are_values(name):
    init = make(name)
    back = pickle.loads(pickle.dumps(init))
    assert back == init
    assert hash(back) == hash(init)
    assert back.fan_rule == init.fan_rule
    assert back.framework_name == init.framework_name
    assert back.framework_name == (name if "." in name else None)
    assert repr(back) == repr(init)
    # repr is the constructor call, with the fan rule when it is not PyTorch's.
    text = repr(init)
    assert text.startswith(type(init).__name__ + "(")
    for key, value in init.params.items():
        assert f"{key}={value!r}" in text
    assert ("with_fan_rule(FanRule(" in text) == (init.fan_rule != FanRule())
    assert eval(text, dict(vars(ini))) == init  # our own repr
    with pytest.raises(AttributeError, match=r"immutable"):
        init.gain = 2.0  # type: ignore[misc]
    if init.framework_name:
        assert init.describe().startswith(f"{init.framework_name} = {text}")


def test_equality_is_class_params_and_fan_rule():
    assert get("keras.he_normal") == get("keras.HeNormal") == get("HeNormal")
    assert get("keras.initializers.HeNormal") == get("tf.keras.initializers.HeNormal")
    assert get("torch.kaiming_normal_") == get("he_normal") == get("kaiming_normal_")
    assert get("torch.nn.init.kaiming_normal_") == get("torch.kaiming_normal")
    assert hash(get("keras.he_normal")) == hash(get("keras.HeNormal"))
    assert len({get("torch.kaiming_normal_"), get("he_normal"), get("kaiming_normal")}) == 1
    # The framework name is a label, not part of the value.
    assert get("torch.kaiming_normal_").framework_name == "torch.kaiming_normal_"
    assert get("he_normal").framework_name is None
    assert get("keras.he_normal").framework_name == "keras.HeNormal"
    # Same law, different fan rules: not equal.
    truncated_he = get("he_normal", distribution="truncated_normal")
    assert get("keras.HeNormal") != get("jax.he_normal")
    assert get("jax.he_normal") == truncated_he.with_fan_rule(FanRule("keras"))
    assert get("keras.HeNormal") == truncated_he.with_fan_rule(FanRule("keras", low_rank="keras"))
    # Same fan rule, different parameters: not equal (PyTorch's normal is plain).
    assert get("torch.kaiming_normal_") != truncated_he
    assert get("jax.he_normal", in_axis=-2, out_axis=-1) == get("jax.he_normal")
    assert get("jax.he_normal", in_axis=0) != get("jax.he_normal")
    assert get("jax.orthogonal", column_axis=-1) == get("jax.orthogonal")
    assert get("jax.orthogonal", column_axis=0) != get("jax.orthogonal")
    assert get("keras.Orthogonal") != get("jax.orthogonal")  # Keras' low-rank rule
    assert get("keras.Constant", value=1.0) != get("keras.Ones")  # different classes


def test_pickle_keeps_the_axes():
    init = get("keras.VarianceScaling", scale=2.0, input_axes=[0], output_axes=[1, 2])
    back = pickle.loads(pickle.dumps(init))
    assert back.fan_rule.in_axis == (0,) and back.fan_rule.out_axis == (1, 2)
    assert back.fan_rule.receptive_field is False
    assert back.fans((64, 8, 16)) == (64, 128)
    jax = pickle.loads(pickle.dumps(get("jax.he_normal", in_axis=(0, 1), batch_axis=-2)))
    assert jax.fans((3, 5, 7, 11)) == (15, 11)
    assert jax.framework_name == "jax.he_normal"
    array_constant = get("jax.constant", value=[[1.0, 2.0]])
    assert pickle.loads(pickle.dumps(array_constant)) == array_constant


# =========================================================================== 6. delta_orthogonal


@pytest.mark.parametrize(
    ("kernel", "centre"),
    [
        ((3,), (1,)),
        ((4,), (1,)),
        ((2,), (0,)),
        ((1,), (0,)),
        ((3, 3), (1, 1)),
        ((4, 4), (1, 1)),
        ((5, 4), (2, 1)),
        ((2, 3, 4), (0, 1, 1)),
    ],
    ids=readable,
)
@pytest.mark.parametrize("layout", ["keras", "torch"])
def test_delta_orthogonal_centre_tap(kernel, centre, layout):
    n_in, n_out, gain = 6, 10, 1.5
    if layout == "keras":
        init = get("jax.delta_orthogonal", scale=gain)
        shape = (*kernel, n_in, n_out)
    else:
        init = get("delta_orthogonal", gain=gain)
        shape = (n_out, n_in, *kernel)
    w = init.sample(shape, seed=7)
    # Move to (*kernel, in, out) to index taps uniformly.
    taps = w if layout == "keras" else np.transpose(w, (*range(2, w.ndim), 1, 0))
    assert taps.shape == (*kernel, n_in, n_out)
    # The centre is (k - 1) // 2 (JAX); zeros at every other tap.
    for tap in np.ndindex(*kernel):
        if tap != centre:
            assert not np.any(taps[tap]), tap
    m = taps[centre]  # (in, out), in <= out: orthonormal rows times gain
    np.testing.assert_allclose(m @ m.T, gain**2 * np.eye(n_in), atol=1e-12)
    # The mean square over the whole kernel is the variance with the conv fans.
    assert np.mean(w**2) == pytest.approx(init.variance_for_shape(shape), rel=1e-12)
    assert init.variance_for_shape(shape) == pytest.approx(
        gain**2 / (n_out * math.prod(kernel)), rel=1e-15
    )


def test_delta_orthogonal_and_dirac_disagree_on_even_kernels():
    # PyTorch's dirac_ puts its 1 at k // 2, JAX's delta_orthogonal at (k - 1) // 2.
    d = get("torch.dirac_").sample((4, 4, 4, 4), seed=0)
    delta = get("delta_orthogonal").sample((4, 4, 4, 4), seed=0)
    assert np.flatnonzero(np.abs(d).sum(axis=(0, 1)).ravel()).tolist() == [2 * 4 + 2]
    assert np.flatnonzero(np.abs(delta).sum(axis=(0, 1)).ravel()).tolist() == [1 * 4 + 1]
    # Odd kernels: both at the middle.
    d3 = get("torch.dirac_").sample((4, 4, 3, 3), seed=0)
    delta3 = get("delta_orthogonal").sample((4, 4, 3, 3), seed=0)
    assert np.flatnonzero(np.abs(d3).sum(axis=(0, 1)).ravel()).tolist() == [4]
    assert np.flatnonzero(np.abs(delta3).sum(axis=(0, 1)).ravel()).tolist() == [4]


def test_delta_orthogonal_square_centre_is_orthogonal_and_complex_is_unitary():
    w = get("jax.delta_orthogonal", scale=-2.0).sample((3, 3, 8, 8), seed=1)
    np.testing.assert_allclose(w[1, 1].T @ w[1, 1], 4.0 * np.eye(8), atol=1e-12)
    u = get("jax.delta_orthogonal").sample((3, 5, 8), seed=2, dtype="complex128")
    assert u.dtype == np.complex128
    np.testing.assert_allclose(u[1] @ u[1].conj().T, np.eye(5), atol=1e-12)
    assert not np.any(u[0]) and not np.any(u[2])


@pytest.mark.parametrize(
    ("name", "shape", "layout"),
    [
        ("jax.delta_orthogonal", (3, 3, 16, 8), None),
        ("delta_orthogonal", (8, 16, 3, 3), None),  # torch (out, in, ...): in 16 > out 8
        ("delta_orthogonal", (3, 9, 4), "keras"),
    ],
    ids=["jax", "torch-layout", "keras-layout-argument"],
)
def test_delta_orthogonal_in_greater_than_out_raises(name, shape, layout):
    with pytest.raises(ValueError, match=r"delta_orthogonal needs in <= out channels"):
        get(name).sample(shape, seed=0, layout=layout)


# =========================================================================== stft reference


def _reference_window(window, frames: int, periodic: bool) -> np.ndarray | None:
    """Hann and Hamming by their formulas (``fftbins=periodic``), or the values given."""
    if window is None:
        return None
    if isinstance(window, str):
        denom = frames if periodic else frames - 1
        cos = np.cos(2.0 * np.pi * np.arange(frames) / denom)
        alpha = {"hann": 0.5, "hamming": 0.54}[window]
        return alpha - (1.0 - alpha) * cos
    return np.asarray(window, dtype=np.float64)


def reference_stft(frames, bins, side, window, scaling, periodic) -> np.ndarray:
    """Keras 3 ``STFT()(shape=(frames, 1, bins))[:, 0, :]``, written out again."""
    fft = 2 * (bins - 1)
    out = np.empty((frames, bins))
    for t in range(frames):
        for f in range(bins):
            arg = -2.0 * math.pi * t * f / fft
            out[t, f] = math.cos(arg) if side == "real" else math.sin(arg)
    w = _reference_window(window, frames, periodic)
    if w is not None:
        if scaling == "density":
            norm = math.sqrt(float(np.sum(w * w)))
        elif scaling == "spectrum":
            norm = float(np.sum(np.abs(w)))
        else:
            norm = 1.0
        out = out * w[:, None] / norm
    return out


def _values(frames: int) -> list[float]:
    return np.random.default_rng(frames).uniform(-1.0, 2.0, frames).tolist()


@pytest.mark.parametrize("side", ["real", "imag"])
@pytest.mark.parametrize("periodic", [False, True], ids=["symmetric", "periodic"])
@pytest.mark.parametrize("scaling", ["density", "spectrum", None], ids=str)
@pytest.mark.parametrize("window", ["hann", "hamming", "values", None], ids=str)
def test_stft_matches_a_numpy_reference(window, scaling, periodic, side):
    for frames, channels, bins in [(8, 1, 5), (9, 3, 2), (16, 2, 9), (1, 1, 3)]:
        if window in ("hann", "hamming") and frames == 1:
            continue  # a one-point named window is [1.] in scipy, not the formula
        win = _values(frames) if window == "values" else window
        init = get("keras.STFT", side=side, window=win, scaling=scaling, periodic=periodic)
        expected = reference_stft(frames, bins, side, win, scaling, periodic)
        keras = init.sample((frames, channels, bins), seed=0)
        assert keras.shape == (frames, channels, bins)
        for c in range(channels):
            np.testing.assert_allclose(keras[:, c, :], expected, rtol=0, atol=1e-12)
        # torch layout (F, C, T): the transpose, for nn.Conv1d.
        torch = init.sample((bins, channels, frames), seed=0, layout="torch")
        np.testing.assert_allclose(torch, np.transpose(keras, (2, 1, 0)), rtol=0, atol=0)
        same = ini.STFT(side, win, scaling, periodic)
        assert same == init.with_fan_rule(FanRule())
        assert init.variance_for_shape((frames, channels, bins)) == 0.0


def test_stft_defaults_are_keras_defaults():
    init = get("keras.STFT")
    assert init.params == {
        "side": "real",
        "window": "hann",
        "scaling": "density",
        "periodic": False,
    }
    expected = reference_stft(6, 4, "real", "hann", "density", False)
    np.testing.assert_allclose(init.sample((6, 1, 4))[:, 0, :], expected, rtol=0, atol=1e-12)
    # float32 is the rounded float64 kernel.
    np.testing.assert_array_equal(
        init.sample((6, 1, 4), dtype="float32"), init.sample((6, 1, 4)).astype(np.float32)
    )


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"window": "no-such-window"}, r"not a scipy\.signal\.windows name"),
        ({"window": [[1.0, 2.0]]}, r"1-D array of finite"),
        ({"window": [1.0, math.nan]}, r"1-D array of finite"),
        ({"window": []}, r"1-D array of finite"),
        ({"side": "complex"}, r"side must be one of 'real', 'imag'"),
        ({"scaling": "l2"}, r"scaling must be one of 'density', 'spectrum'"),
        ({"periodic": "yes"}, r"periodic must be a bool"),
    ],
    ids=readable,
)
def test_stft_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        get("keras.STFT", **params)


# =========================================================================== 7. default bias


@pytest.mark.parametrize("fan_in", [1, 7, 256, 1000])
@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_torch_default_bias_bounds(fan_in, dtype):
    init = get("torch.default_bias", fan_in=fan_in)
    bound = 1.0 / math.sqrt(fan_in)
    n = 20_000
    b = init.sample((n,), seed=fan_in, dtype=dtype)
    assert b.shape == (n,) and b.dtype == np.dtype(dtype)
    x = b.astype(np.float64)
    assert np.all(np.abs(x) <= bound)  # rounding never leaves the interval
    # P(max < bound (1 - 2e-3)) = (1 - 1e-3)^n ~ 2e-9: the extremes reach the bounds.
    assert x.max() >= bound * (1.0 - 2e-3) - np.finfo(dtype).eps * bound
    assert x.min() <= -bound * (1.0 - 2e-3) + np.finfo(dtype).eps * bound
    assert init.variance_for_shape((n,)) == 1.0 / (3.0 * fan_in)
    if dtype == "float64":
        assert abs(mean_square_z(x, 0.0, 1.0 / (3.0 * fan_in))) < Z_MAX
    # The bias law does not depend on the bias shape.
    assert init.variance_for_shape((3, 4)) == init.variance_for_shape(())
    assert init == get("torch_bias_default", fan_in=fan_in)
    assert init == ini.TorchBiasDefault(fan_in)


def test_torch_default_bias_matches_the_default_weight_interval():
    # nn.Linear(in_features=12): weight and bias share U(+-1/sqrt(12)).
    weight = get("torch.default_weight").law_spec(*fans((5, 12)))
    bias = get("torch.default_bias", fan_in=fans((5, 12))[0]).law_spec(1, 1)
    assert (
        (weight.low, weight.high)
        == (bias.low, bias.high)
        == (-1 / math.sqrt(12), 1 / math.sqrt(12))
    )


@pytest.mark.parametrize("fan_in", [0, -3, 2.5, "8", True, None])
def test_torch_default_bias_rejects_a_bad_fan_in(fan_in):
    with pytest.raises(ValueError, match=r"fan_in must be a positive integer"):
        get("torch.default_bias", fan_in=fan_in)
