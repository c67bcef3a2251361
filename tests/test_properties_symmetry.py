"""Symmetry properties of training and of the forward map, for every case hypothesis finds.

* Constant initialization: every hidden unit of a layer computes the same
  function and receives the same gradient, so SGD keeps the units bitwise
  identical forever; with zeros and ``phi(0) == 0`` only the output bias moves.
* Continuous random laws: units are distinct from the start and stay distinct.
* Invariances of the function: positive homogeneity of bias-free
  relu/leaky_relu/linear nets, the ReLU rescaling symmetry between adjacent
  layers, and the permutation symmetry of hidden units.

Tolerances for the function invariances are sized from a rounding bound: an
error of a few ulps per operation, times the output of the net run on ``|X|``
with ``|W|``, ``|b|`` and the activation's Lipschitz constant.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given, note
from hypothesis import strategies as st

from initsim import activations, initializers
from initsim import train as T
from tests import strategies as S

# A relative error bound of 1e-12 leaves a factor >= 100 above the few-ulp
# rounding of these small nets.
REL = 1e-12

#: Activations with phi(0) == 0: with all-zero parameters their hidden outputs stay 0.
ZERO_AT_ZERO = [n for n in activations.names() if activations.get(n).phi(0.0) == 0.0]
#: phi(0) != 0 and phi'(0) != 0: with all-zero parameters the hidden layers get gradient
#: from step two. (cos has phi(0) = 1 but phi'(0) = 0: its hidden layers never do.)
NONZERO_AT_ZERO = [
    n for n in activations.names() if n not in ZERO_AT_ZERO and activations.get(n).dphi(0.0) != 0.0
]


@pytest.fixture(scope="module", autouse=True)
def _warm_train_kernels():
    """Compile (or load) the training kernels once, before the first example."""
    mlp = T.init_mlp([2, 3, 2], seed=0)
    X = np.zeros((4, 2))
    T.forward(mlp, X)
    T.train(mlp, X, np.zeros((4, 2)), steps=1)
    T.train(mlp, X, np.zeros(4, dtype=np.int64), steps=1, batch_size=2, loss="cross_entropy")


# --------------------------------------------------------------------------- strategies

small_widths = st.integers(min_value=2, max_value=6)
hidden_sizes = st.lists(small_widths, min_size=1, max_size=3)  # depth 1..3 hidden layers
learning_rates = st.floats(min_value=1e-3, max_value=0.5, allow_nan=False, allow_infinity=False)
constants = st.floats(min_value=-0.5, max_value=0.5, allow_nan=False, allow_infinity=False)
constant_inits = st.one_of(
    st.just("zeros"), constants.map(lambda c: initializers.get("constant", value=c))
)


few_steps = st.integers(min_value=1, max_value=4)


@st.composite
def problems(draw, *, steps=few_steps, lrs=learning_rates):
    """A net shape, a data set, a loss, a batch size and SGD settings."""
    n_in = draw(st.integers(min_value=1, max_value=4))
    n_out = draw(st.integers(min_value=1, max_value=3))
    hidden = draw(hidden_sizes)
    n = draw(st.integers(min_value=1, max_value=8))
    loss = draw(st.sampled_from(T.LOSSES))
    rng = np.random.default_rng(draw(S.seeds))
    X = rng.standard_normal((n, n_in))
    Y = rng.standard_normal((n, n_out)) if loss == "mse" else rng.integers(0, n_out, size=n)
    return {
        "sizes": [n_in, *hidden, n_out],
        "X": X,
        "Y": Y,
        "loss": loss,
        "batch_size": draw(st.none() | st.integers(min_value=1, max_value=n)),
        "lr": draw(lrs),
        "steps": draw(steps),
        "seed": draw(S.seeds),
    }


def _train(mlp, p, **overrides):
    kw = {k: p[k] for k in ("loss", "batch_size", "lr", "steps", "seed")}
    kw.update(overrides)
    return T.train(mlp, p["X"], p["Y"], **kw)


def assert_hidden_units_identical(mlp: T.MLP) -> None:
    """All rows of each hidden W and all entries of its b are bitwise equal."""
    for layer in range(mlp.n_hidden_layers):
        W, b = mlp.weights[layer], mlp.biases[layer]
        assert np.all(W == W[:1]), f"layer {layer + 1}: rows differ"
        assert np.all(b == b[0]), f"layer {layer + 1}: biases differ"
        # hence the next layer sees identical inputs: its columns stay equal too
        W_next = mlp.weights[layer + 1]
        assert np.all(W_next == W_next[:, :1]), f"layer {layer + 2}: columns differ"


# --------------------------------------------------------------------------- constant init


@given(p=problems(), init=constant_inits, bias=constants, activation=S.activation_names)
def test_constant_init_units_stay_bitwise_identical(p, init, bias, activation):
    mlp = T.init_mlp(p["sizes"], init, activation, bias=bias, seed=0)
    assert_hidden_units_identical(mlp)
    # step by step (each call one SGD step, its own minibatch seed)
    current = mlp
    for t in range(p["steps"]):
        current = _train(current, p, steps=1, seed=p["seed"] + t).mlp
        assert np.all(np.isfinite(np.concatenate([w.ravel() for w in current.weights])))
        assert_hidden_units_identical(current)
    # and as reported by one multi-step run: distance exactly 0 at every step
    res = _train(mlp, p)
    assert res.unit_distance.shape == (p["steps"] + 1, len(p["sizes"]) - 2)
    assert np.all(res.unit_distance == 0.0)
    assert_hidden_units_identical(res.mlp)
    moved = any(
        np.any(w != w0) for w, w0 in zip(res.mlp.weights[:-1], mlp.weights[:-1], strict=True)
    )
    event(f"hidden weights moved: {moved}")


def test_constant_init_hidden_weights_move_but_stay_identical():
    # Non-vacuity: with sigmoid (phi(0) != 0) and a constant init the hidden
    # parameters do change, and the units still stay bitwise identical.
    X, Y = T.teacher_data(16, 3, 2, seed=0)
    mlp = T.init_mlp([3, 5, 4, 2], initializers.get("constant", value=0.2), "sigmoid", bias=0.1)
    res = T.train(mlp, X, Y, lr=0.5, steps=20, batch_size=4, seed=1)
    for layer in range(mlp.n_hidden_layers):
        assert np.max(np.abs(res.mlp.weights[layer] - mlp.weights[layer])) > 1e-6
        assert np.max(np.abs(res.mlp.biases[layer] - mlp.biases[layer])) > 1e-6
    assert_hidden_units_identical(res.mlp)
    assert np.all(res.unit_distance == 0.0)
    assert res.loss[-1] < res.loss[0]  # it learns something, as a one-unit-per-layer net
    # Negative control: nudge layer 1's units apart by i ulps each; the distance
    # sees it at every step. Layer 2 stays symmetric: its units still share
    # their incoming weights and (through W3's equal columns) their gradients.
    W0 = mlp.weights[0].copy()
    W0[:, 0] += np.arange(5) * np.spacing(W0[0, 0])
    nudged = T.MLP((W0, *mlp.weights[1:]), mlp.biases, mlp.activation)
    d = T.train(nudged, X, Y, lr=0.5, steps=20, batch_size=4, seed=1).unit_distance
    assert np.all(d[:, 0] > 0.0)
    assert np.all(d[:, 1] == 0.0)


# --------------------------------------------------------------------------- zeros


def _output_bias_twin(p, n_out, steps):
    """Output bias after each SGD step when every weight stays 0 (f = b for all inputs)."""
    Y = p["Y"]
    n = len(Y)
    if p["batch_size"] is None:
        batches = [np.arange(n)] * steps
    else:
        batches = list(T.batch_indices(n, p["batch_size"], steps, seed=p["seed"]))
    b = np.zeros(n_out)
    for idx in batches:
        if p["loss"] == "mse":
            grad = 2.0 * np.mean(b - Y[idx], axis=0) / n_out
        else:
            prob = np.exp(b - b.max())
            prob /= prob.sum()
            grad = prob - np.bincount(Y[idx], minlength=n_out) / len(idx)
        b = b - p["lr"] * grad
    return b


@given(
    p=problems(steps=st.integers(min_value=0, max_value=5)),
    activation=st.sampled_from(ZERO_AT_ZERO),
)
def test_zero_init_only_the_output_bias_moves(p, activation):
    # With W = 0, b = 0 and phi(0) = 0: every hidden activation is 0, so the
    # output weights get gradient delta a^T = 0 and stay 0, hence the hidden
    # layers get W_out^T delta = 0. Exactly: all weights and hidden biases stay
    # 0.0, and the output bias alone moves, f = b_out for every input.
    mlp = T.init_mlp(p["sizes"], "zeros", activation, bias=0.0)
    res = _train(mlp, p)
    for layer, (W, b) in enumerate(zip(res.mlp.weights, res.mlp.biases, strict=True)):
        assert np.all(W == 0.0), f"weights of layer {layer + 1} moved"
        if layer < res.mlp.n_hidden_layers:
            assert np.all(b == 0.0), f"bias of hidden layer {layer + 1} moved"
    expected = _output_bias_twin(p, p["sizes"][-1], p["steps"])
    note(f"output bias {res.mlp.biases[-1]}, twin {expected}")
    np.testing.assert_allclose(res.mlp.biases[-1], expected, rtol=1e-12, atol=1e-15)
    event(f"output bias moved: {bool(np.any(res.mlp.biases[-1] != 0.0))}")
    # the hidden layers received exactly zero gradient at every step
    assert np.all(res.grad_norms[:, :-1] == 0.0)
    assert np.all(res.unit_distance == 0.0)


@pytest.mark.parametrize("activation", NONZERO_AT_ZERO)
def test_zero_init_with_phi0_nonzero_moves_hidden_weights_from_step_two(activation):
    # Contrast: phi(0) != 0 (sigmoid, softplus) makes a = phi(0) != 0, so step 1
    # moves the output weights; from step 2 the hidden layers get gradient
    # (the units still stay identical).
    X, Y = T.teacher_data(10, 3, 2, seed=1)
    mlp = T.init_mlp([3, 4, 4, 2], "zeros", activation)
    one = T.train(mlp, X, Y, lr=0.5, steps=1)
    assert np.any(one.mlp.weights[-1] != 0.0)
    assert all(np.all(W == 0.0) for W in one.mlp.weights[:-1])
    two = T.train(mlp, X, Y, lr=0.5, steps=2)
    assert np.any(two.mlp.biases[-2] != 0.0)
    assert np.any(two.mlp.weights[-2] != 0.0)
    assert_hidden_units_identical(two.mlp)


# --------------------------------------------------------------------------- random init


@given(
    p=problems(steps=st.integers(min_value=0, max_value=5)),
    init=S.random_inits,
    activation=S.activation_names,
    bias=st.sampled_from([0.0, "normal"]),
    init_seed=S.seeds,
)
def test_random_init_units_distinct_and_stay_distinct(p, init, activation, bias, init_seed):
    mlp = T.init_mlp(p["sizes"], init, activation, bias=bias, seed=init_seed)
    d0 = T.min_unit_distance(mlp)
    assert np.all(d0 > 0.0) and np.all(np.isfinite(d0))
    # Keep SGD stable (the property is about symmetry, not step-size choice):
    # cap the first step's length at 0.1, whatever the initial gradient.
    g0 = _train(mlp, p, steps=1).grad_norms
    lr = min(p["lr"], 0.1 / (1e-12 + float(np.sqrt(np.sum(g0**2)))))
    res = _train(mlp, p, lr=lr)
    assert np.all(np.isfinite(res.loss))
    assert np.all(res.unit_distance > 0.0) and np.all(np.isfinite(res.unit_distance))
    # the recorded distances are those of the nets before and after training
    np.testing.assert_array_equal(res.unit_distance[0], d0)
    np.testing.assert_array_equal(res.unit_distance[-1], T.min_unit_distance(res.mlp))


# --------------------------------------------------------------------------- invariances


def abs_bound(mlp: T.MLP, X: np.ndarray, lipschitz: float) -> np.ndarray:
    """Bound on |outputs| and on the scale of their rounding errors: |X|, |W|, |b|, Lip(phi)."""
    phi0 = abs(float(mlp.activation.phi(0.0)))
    z = np.abs(X)
    for layer, (W, b) in enumerate(zip(mlp.weights, mlp.biases, strict=True)):
        z = z @ np.abs(W).T + np.abs(b)
        if layer < mlp.n_hidden_layers:
            z = phi0 + lipschitz * z
    return z


def homogeneous_activation(name: str, slope: float) -> activations.Activation:
    return activations.get(name, slope=slope) if name == "leaky_relu" else activations.get(name)


inputs = st.tuples(
    st.integers(min_value=1, max_value=4),  # n_in
    st.integers(min_value=1, max_value=6),  # batch
    S.seeds,
)
nets = st.tuples(hidden_sizes, st.integers(min_value=1, max_value=3), S.random_inits, S.seeds)
# leaky_relu slopes in [-1, 1], away from subnormals (slope * h must not lose bits)
slopes = st.just(0.0) | st.floats(min_value=1e-3, max_value=1.0).flatmap(
    lambda v: st.sampled_from([v, -v])
)


def _net_and_inputs(net, inp, activation, bias=0.0):
    hidden, n_out, init, seed = net
    n_in, batch, x_seed = inp
    mlp = T.init_mlp([n_in, *hidden, n_out], init, activation, bias=bias, seed=seed)
    X = np.random.default_rng(x_seed).standard_normal((batch, n_in))
    return mlp, X


@given(
    net=nets,
    inp=inputs,
    name=S.homogeneous_activations,
    slope=slopes,
    a=S.positive_factors,
    k=st.integers(-8, 8),
)
def test_bias_free_homogeneous_nets_are_positively_homogeneous(net, inp, name, slope, a, k):
    act = homogeneous_activation(name, slope)
    mlp, X = _net_and_inputs(net, inp, act)
    fx = T.forward(mlp, X)
    bound = abs_bound(mlp, X, lipschitz=1.0)
    np.testing.assert_array_less(np.abs(T.forward(mlp, a * X) - a * fx), REL * a * bound + 1e-300)
    # a power of two scales every product and sum exactly: bitwise equality
    two_k = 2.0**k
    assert np.array_equal(T.forward(mlp, two_k * X), two_k * fx)


@given(net=nets, inp=inputs, a=S.positive_factors, data=st.data())
def test_relu_rescaling_between_layers_leaves_the_function_unchanged(net, inp, a, data):
    mlp, X = _net_and_inputs(net, inp, "relu")
    layer = data.draw(st.integers(0, mlp.n_hidden_layers - 1), label="layer")
    W = list(mlp.weights)
    W[layer] = W[layer] * a
    W[layer + 1] = W[layer + 1] / a
    scaled = T.MLP(tuple(W), mlp.biases, mlp.activation)
    bound = abs_bound(mlp, X, lipschitz=1.0)
    diff = np.abs(T.forward(scaled, X) - T.forward(mlp, X))
    np.testing.assert_array_less(diff, REL * bound + 1e-300)


@given(net=nets, inp=inputs, activation=S.activation_names, data=st.data())
def test_permuting_hidden_units_leaves_outputs_unchanged(net, inp, activation, data):
    mlp, X = _net_and_inputs(net, inp, activation, bias="normal")
    layer = data.draw(st.integers(0, mlp.n_hidden_layers - 1), label="layer")
    width = mlp.sizes[layer + 1]
    perm = np.asarray(data.draw(st.permutations(range(width)), label="perm"))
    W, b = list(mlp.weights), list(mlp.biases)
    W[layer], b[layer] = W[layer][perm], b[layer][perm]
    W[layer + 1] = W[layer + 1][:, perm]
    permuted = T.MLP(tuple(W), tuple(b), mlp.activation)
    # the permuted net is a different parameter vector (unless perm is the identity) ...
    if np.any(perm != np.arange(width)):
        assert not np.array_equal(permuted.weights[layer], mlp.weights[layer])
    # ... computing the same function: only the order of one sum changes
    bound = abs_bound(mlp, X, lipschitz=2.0)
    diff = np.abs(T.forward(permuted, X) - T.forward(mlp, X))
    np.testing.assert_array_less(diff, REL * bound + 1e-300)
    # and the same minimum distance between units
    np.testing.assert_allclose(T.min_unit_distance(permuted), T.min_unit_distance(mlp), rtol=REL)
