"""initsim.train: compiled kernels against a numpy twin, learning, determinism, errors."""

from __future__ import annotations

import numpy as np
import pytest

from initsim import activations, initializers
from initsim import train as T

# The kernels and the numpy twin agree to rounding: worst relative differences measured
# 1.0e-13 (forward outputs, at entries that nearly cancel; absolute 8.9e-16), 1.3e-14
# (weights after one step), 1.8e-14 (after seven minibatch steps).
TOL = 1e-13
ATOL = 1e-14  # for O(1) entries that cancel to about 0
# An SGD step, theta_old - theta_new, against lr * (the twin's gradient), in the
# Frobenius norm of each weight and bias array: measured at most 2.6e-14 (sigmoid, where
# the step is 1e-3 of the weights and the rounding of theta_new dominates). Tight enough
# to see a relative error of 1e-12 in one step, which the weights alone cannot show.
STEP_TOL = 1e-13


@pytest.fixture(scope="module", autouse=True)
def _warm_train_kernels():
    """Compile (or load) the training kernels once, outside any timed example."""
    mlp = T.init_mlp([2, 3, 2], seed=0)
    X = np.zeros((4, 2))
    T.forward(mlp, X)
    T.train(mlp, X, np.zeros((4, 2)), steps=1)
    T.train(mlp, X, np.zeros(4, dtype=np.int64), steps=1, batch_size=2, loss="cross_entropy")


# --------------------------------------------------------------------------- numpy twin


def np_forward(mlp: T.MLP, X: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Pre-activations H[l] and activations A[l] (A[0] = X; the last layer is linear)."""
    act = mlp.activation
    A = [X]
    H = [None]
    L = len(mlp.weights)
    for layer, (W, b) in enumerate(zip(mlp.weights, mlp.biases, strict=True)):
        h = A[-1] @ W.T + b
        H.append(h)
        A.append(h if layer == L - 1 else np.asarray(act.phi(h)))
    return H, A


def np_loss_and_grads(mlp, X, Y, loss):
    H, A = np_forward(mlp, X)
    f = A[-1]
    B, n_out = f.shape
    if loss == "mse":
        value = np.mean((f - Y) ** 2)
        delta = 2.0 * (f - Y) / (B * n_out)
    else:
        z = f - f.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        value = -np.mean(logp[np.arange(B), Y])
        onehot = np.eye(n_out)[Y]
        delta = (np.exp(logp) - onehot) / B
    gW = [None] * len(mlp.weights)
    gb = [None] * len(mlp.weights)
    for layer in range(len(mlp.weights) - 1, -1, -1):
        gW[layer] = delta.T @ A[layer]
        gb[layer] = delta.sum(axis=0)
        if layer > 0:
            delta = (delta @ mlp.weights[layer]) * mlp.activation.dphi(H[layer])
    return value, gW, gb


def np_sgd_step(mlp, X, Y, lr, loss):
    value, gW, gb = np_loss_and_grads(mlp, X, Y, loss)
    new = T.MLP(
        tuple(W - lr * g for W, g in zip(mlp.weights, gW, strict=True)),
        tuple(b - lr * g for b, g in zip(mlp.biases, gb, strict=True)),
        mlp.activation,
    )
    norms = [np.sqrt(np.sum(w**2) + np.sum(b**2)) for w, b in zip(gW, gb, strict=True)]
    return new, value, np.array(norms)


def np_min_unit_distance(mlp):
    out = []
    for W, b in zip(mlp.weights[:-1], mlp.biases[:-1], strict=True):
        theta = np.column_stack([W, b])
        d = np.sqrt(((theta[:, None, :] - theta[None, :, :]) ** 2).sum(axis=-1))
        d[np.diag_indices_from(d)] = np.inf
        out.append(d.min())
    return np.array(out)


def assert_mlp_close(a: T.MLP, b: T.MLP, tol: float = TOL) -> None:
    assert a.sizes == b.sizes
    for x, y in zip(a.weights + a.biases, b.weights + b.biases, strict=True):
        np.testing.assert_allclose(x, y, rtol=tol, atol=ATOL)


def assert_step_matches_twin(old: T.MLP, new: T.MLP, X, Y, lr: float, loss: str) -> None:
    """``old - new`` is ``lr`` times the twin's gradient at ``old``, array by array."""
    _, gW, gb = np_loss_and_grads(old, X, Y, loss)
    pairs = zip(old.weights + old.biases, new.weights + new.biases, gW + gb, strict=True)
    for i, (before, after, g) in enumerate(pairs):
        want = lr * g
        err = np.linalg.norm((before - after) - want)
        assert err <= STEP_TOL * np.linalg.norm(want), (i, err / np.linalg.norm(want))


def _data(sizes, loss, n=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, sizes[0]))
    if loss == "mse":
        Y = rng.standard_normal((n, sizes[-1]))
    else:
        Y = rng.integers(0, sizes[-1], size=n)
    return X, Y


# --------------------------------------------------------------------------- kernel vs twin


@pytest.mark.parametrize("activation", activations.names())
@pytest.mark.parametrize("sizes", [[3, 5, 2], [4, 6, 5, 3], [2, 3, 4, 3, 1]])
def test_forward_matches_numpy_twin(activation, sizes):
    mlp = T.init_mlp(sizes, "glorot_normal", activation, bias="normal", seed=7)
    X, _ = _data(sizes, "mse")
    _, A = np_forward(mlp, X)
    out = T.forward(mlp, X)
    assert out.shape == (X.shape[0], sizes[-1])
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, A[-1], rtol=TOL, atol=ATOL)


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "leaky_relu", "sigmoid"])
@pytest.mark.parametrize("loss", T.LOSSES)
@pytest.mark.parametrize("sizes", [[3, 5, 2], [4, 6, 5, 3]])
def test_one_sgd_step_matches_numpy_twin(activation, loss, sizes):
    mlp = T.init_mlp(sizes, "he_normal", activation, bias="uniform", seed=3)
    X, Y = _data(sizes, loss)
    res = T.train(mlp, X, Y, lr=0.3, steps=1, loss=loss)
    expected, value, norms = np_sgd_step(mlp, X, Y, 0.3, loss)
    assert_mlp_close(res.mlp, expected)
    assert_step_matches_twin(mlp, res.mlp, X, Y, 0.3, loss)
    # the step really moved every layer (the comparison is not vacuous)
    for w_new, w_old in zip(res.mlp.weights, mlp.weights, strict=True):
        assert np.max(np.abs(w_new - w_old)) > 1e-6
    np.testing.assert_allclose(res.loss[0], value, rtol=TOL)
    np.testing.assert_allclose(res.loss[1], np_loss_and_grads(expected, X, Y, loss)[0], rtol=TOL)
    np.testing.assert_allclose(res.grad_norms[0], norms, rtol=TOL)
    np.testing.assert_allclose(res.unit_distance[0], np_min_unit_distance(mlp), rtol=TOL)
    np.testing.assert_allclose(res.unit_distance[1], np_min_unit_distance(expected), rtol=TOL)


@pytest.mark.parametrize("loss", T.LOSSES)
def test_minibatch_steps_match_numpy_twin(loss):
    sizes = [3, 6, 4, 3]
    mlp = T.init_mlp(sizes, "lecun_normal", "tanh", bias=0.1, seed=11)
    X, Y = _data(sizes, loss, n=10)
    steps, bs = 7, 3
    res = T.train(mlp, X, Y, lr=0.2, steps=steps, batch_size=bs, loss=loss, seed=5)
    idx = T.batch_indices(10, bs, steps, seed=5)
    twin = mlp
    losses = [np_loss_and_grads(twin, X, Y, loss)[0]]
    for t in range(steps):
        twin, _, norms = np_sgd_step(twin, X[idx[t]], Y[idx[t]], 0.2, loss)
        np.testing.assert_allclose(res.grad_norms[t], norms, rtol=TOL)
        losses.append(np_loss_and_grads(twin, X, Y, loss)[0])
    assert_mlp_close(res.mlp, twin)
    np.testing.assert_allclose(res.loss, losses, rtol=TOL)
    # every step on its own, from the kernel's own state before it (the first t steps
    # of a run are the run with steps=t: the batches are a prefix)
    before = mlp
    for t in range(1, steps + 1):
        np.testing.assert_array_equal(T.batch_indices(10, bs, t, seed=5), idx[:t])
        after = T.train(mlp, X, Y, lr=0.2, steps=t, batch_size=bs, loss=loss, seed=5).mlp
        assert_step_matches_twin(before, after, X[idx[t - 1]], Y[idx[t - 1]], 0.2, loss)
        before = after
    for x, y in zip(before.weights + before.biases, res.mlp.weights + res.mlp.biases, strict=True):
        np.testing.assert_array_equal(x, y)


def test_batch_indices_are_epoch_permutations():
    idx = T.batch_indices(10, 3, 7, seed=1)
    assert idx.shape == (7, 3)
    assert idx.dtype == np.int64
    # 3 batches per epoch (drop_last): each epoch's 9 indices are distinct
    for e in range(2):
        chunk = idx[3 * e : 3 * e + 3].ravel()
        assert len(set(chunk.tolist())) == 9
    np.testing.assert_array_equal(idx, T.batch_indices(10, 3, 7, seed=1))
    assert not np.array_equal(idx, T.batch_indices(10, 3, 7, seed=2))
    assert T.batch_indices(10, 3, 0).shape == (0, 3)
    with pytest.raises(ValueError, match="batch_size"):
        T.batch_indices(3, 4, 1)


def test_min_unit_distance_known_values():
    W1 = np.array([[0.0, 0.0], [5.0, 0.0], [5.0, 4.0]])
    b1 = np.array([0.0, 0.0, 1.0])
    W2 = np.ones((1, 3))  # a hidden layer of width 1: no pair of units
    W3 = np.array([[1.0]])
    mlp = T.MLP((W1, W2, W3), (b1, np.zeros(1), np.zeros(1)), "relu")
    d = T.min_unit_distance(mlp)
    # pairs differ by (5, 0, 0), (0, 4, 1), (5, 4, 1): the smallest is sqrt(17)
    np.testing.assert_array_equal(d, [np.sqrt(17.0), np.inf])
    # differences whose squares underflow still count as distinct
    tiny = T.MLP((np.array([[1e-200], [0.0]]), np.ones((1, 2))), (np.zeros(2), np.zeros(1)), "relu")
    assert T.min_unit_distance(tiny)[0] == pytest.approx(1e-200, rel=1e-12)


# --------------------------------------------------------------------------- learning


def test_loss_decreases_on_teacher_data_he_relu():
    X, Y = T.teacher_data(128, 6, 2, hidden=16, seed=0)
    assert X.shape == (128, 6) and Y.shape == (128, 2)
    mlp = T.init_mlp([6, 32, 32, 2], "he_normal", "relu", seed=1)
    res = T.train(mlp, X, Y, lr=0.05, steps=300)
    assert res.loss.shape == (301,)
    assert np.all(np.isfinite(res.loss))
    assert res.loss[-1] < 0.2 * res.loss[0]
    # full-batch GD with a small step decreases the loss (nearly) every step
    assert np.mean(np.diff(res.loss) < 0) > 0.95
    mb = T.train(mlp, X, Y, lr=0.05, steps=300, batch_size=16, seed=3)
    assert mb.loss[-1] < 0.3 * mb.loss[0]


def test_loss_decreases_on_mixture_data_cross_entropy():
    X, y = T.mixture_data(300, 5, 3, separation=4.0, seed=0)
    assert X.shape == (300, 5) and y.shape == (300,) and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [100, 100, 100])
    mlp = T.init_mlp([5, 16, 3], "he_normal", "relu", seed=2)
    res = T.train(mlp, X, y, lr=0.5, steps=100, loss="cross_entropy")
    assert res.loss[-1] < 0.3 * res.loss[0]
    accuracy = np.mean(T.forward(res.mlp, X).argmax(axis=1) == y)
    assert accuracy > 0.9


def test_digits_data():
    pytest.importorskip("sklearn")
    X, y = T.digits_data()
    assert X.shape == (1797, 64) and y.shape == (1797,)
    assert X.min() == 0.0 and X.max() == 1.0
    assert set(np.unique(y).tolist()) == set(range(10))


def test_digits_data_scales_what_sklearn_returns(monkeypatch):
    # runs without scikit-learn: a stand-in module with load_digits
    import sys
    import types

    fake = types.ModuleType("sklearn.datasets")
    pixels = np.array([[0, 8, 16], [16, 4, 0]])
    fake.load_digits = lambda: types.SimpleNamespace(data=pixels, target=np.array([3, 9]))
    monkeypatch.setitem(sys.modules, "sklearn", types.ModuleType("sklearn"))
    monkeypatch.setitem(sys.modules, "sklearn.datasets", fake)
    X, y = T.digits_data()
    np.testing.assert_array_equal(X, pixels / 16.0)
    assert X.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(y, [3, 9])


def test_digits_data_without_sklearn_says_so(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="scikit-learn"):
        T.digits_data()


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("batch_size", [None, 4])
def test_training_is_deterministic(batch_size):
    X, Y = T.teacher_data(20, 3, 2, seed=4)
    mlp = T.init_mlp([3, 8, 8, 2], "he_uniform", "gelu", bias="normal", seed=9)
    a = T.train(mlp, X, Y, lr=0.1, steps=25, batch_size=batch_size, seed=1)
    b = T.train(mlp, X, Y, lr=0.1, steps=25, batch_size=batch_size, seed=1)
    for x, y in zip(a.mlp.weights + a.mlp.biases, b.mlp.weights + b.mlp.biases, strict=True):
        assert x.tobytes() == y.tobytes()
    for name in ("loss", "unit_distance", "grad_norms"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes()
    if batch_size is not None:
        c = T.train(mlp, X, Y, lr=0.1, steps=25, batch_size=batch_size, seed=2)
        assert not np.array_equal(a.loss, c.loss)


def test_init_and_data_are_deterministic_and_layers_independent():
    a = T.init_mlp([4, 4, 4, 4], "he_normal", seed=3)
    b = T.init_mlp([4, 4, 4, 4], "he_normal", seed=3)
    c = T.init_mlp([4, 4, 4, 4], "he_normal", seed=4)
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.weights[0], c.weights[0])
    # same-shaped layers get different (independent) draws
    assert not np.array_equal(a.weights[0], a.weights[1])
    assert not np.array_equal(a.weights[1], a.weights[2])
    for fn in (
        lambda s: T.teacher_data(5, 2, 1, seed=s),
        lambda s: T.mixture_data(5, 2, 2, seed=s),
    ):
        np.testing.assert_array_equal(fn(1)[0], fn(1)[0])
        assert not np.array_equal(fn(1)[0], fn(2)[0])


def test_train_leaves_the_input_mlp_alone_and_steps_zero():
    X, Y = T.teacher_data(8, 2, 1, seed=0)
    mlp = T.init_mlp([2, 3, 1], seed=0)
    before = [w.copy() for w in mlp.weights]
    res = T.train(mlp, X, Y[:, 0], steps=0)  # (B,) targets accepted when n_out == 1
    assert res.loss.shape == (1,) and res.unit_distance.shape == (1, 1)
    assert res.grad_norms.shape == (0, 2)
    for w, w0, w1 in zip(res.mlp.weights, before, mlp.weights, strict=True):
        np.testing.assert_array_equal(w, w0)
        np.testing.assert_array_equal(w1, w0)
    T.train(mlp, X, Y, steps=3)
    for w0, w1 in zip(before, mlp.weights, strict=True):
        np.testing.assert_array_equal(w1, w0)
    assert not mlp.weights[0].flags.writeable


def test_mlp_structure():
    mlp = T.init_mlp([3, 4, 5, 2], "zeros", "tanh", bias=0.5, seed=0)
    assert mlp.sizes == (3, 4, 5, 2)
    assert mlp.n_hidden_layers == 2
    assert [w.shape for w in mlp.weights] == [(4, 3), (5, 4), (2, 5)]
    assert all(np.all(b == 0.5) for b in mlp.biases)
    assert mlp.activation == activations.get("tanh")
    const = T.init_mlp([2, 3, 1], initializers.get("constant", value=0.25), "relu")
    assert np.all(const.weights[0] == 0.25)


# --------------------------------------------------------------------------- errors


@pytest.fixture
def setup():
    mlp = T.init_mlp([3, 4, 2], seed=0)
    X = np.ones((5, 3))
    Y = np.zeros((5, 2))
    return mlp, X, Y


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"X": np.ones((5, 4))}, "X must have shape"),
        ({"X": np.ones(3)}, "X must have shape"),
        ({"X": np.ones((0, 3))}, "X must have shape"),
        ({"X": np.array([[1.0, np.nan, 0.0]] * 5)}, "X must be finite"),
        ({"X": np.array([[1.0, np.inf, 0.0]] * 5)}, "X must be finite"),
        ({"lr": 0.0}, "lr"),
        ({"lr": -0.1}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"steps": -1}, "steps"),
        ({"steps": 1.5}, "steps"),
        ({"loss": "hinge"}, "loss"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 6}, "batch_size"),
        ({"Y": np.zeros((5, 3))}, "Y must have shape"),
        ({"Y": np.full((5, 2), np.nan)}, "Y must be finite"),
        ({"Y": np.array([0, 1, 2, 0, 1]), "loss": "cross_entropy"}, r"\[0, 1\]"),
        ({"Y": np.array([0.5, 1, 0, 0, 1]), "loss": "cross_entropy"}, "integer class labels"),
        ({"Y": np.zeros((5, 2)), "loss": "cross_entropy"}, "class labels"),
        ({"seed": -1, "batch_size": 2}, "seed"),
    ],
)
def test_train_rejects_bad_input(setup, kwargs, match):
    mlp, X, Y = setup
    args = {"X": X, "Y": Y, **kwargs}
    with pytest.raises(ValueError, match=match):
        T.train(mlp, args.pop("X"), args.pop("Y"), **args)


def test_forward_rejects_bad_input(setup):
    mlp, X, _ = setup
    with pytest.raises(ValueError, match="X must have shape"):
        T.forward(mlp, X.T)
    with pytest.raises(ValueError, match="X must be finite"):
        T.forward(mlp, np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="mlp"):
        T.forward("not a net", X)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (([3, 4],), {}, "at least one hidden layer"),
        (([3, 0, 2],), {}, "sizes"),
        (([3, 2.5, 2],), {}, "sizes"),
        ((5,), {}, "sizes"),
        (([3, 4, 2], "no_such_init"), {}, "init"),
        (([3, 4, 2], "he_normal", "no_such_act"), {}, "activation"),
        (([3, 4, 2],), {"bias": "no_such_init"}, "bias"),
        (([3, 4, 2],), {"bias": "he_normal"}, "bias"),  # needs fans: not a bias law
        (([3, 4, 2],), {"bias": float("inf")}, "bias"),
        (([3, 4, 2],), {"seed": -3}, "seed"),
    ],
)
def test_init_mlp_rejects_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        T.init_mlp(*args, **kwargs)


def test_mlp_rejects_inconsistent_shapes():
    with pytest.raises(ValueError, match="inputs"):
        T.MLP((np.ones((3, 2)), np.ones((1, 4))), (np.zeros(3), np.zeros(1)), "relu")
    with pytest.raises(ValueError, match="biases"):
        T.MLP((np.ones((3, 2)), np.ones((1, 3))), (np.zeros(2), np.zeros(1)), "relu")
    with pytest.raises(ValueError, match="at least 2 layers"):
        T.MLP((np.ones((3, 2)),), (np.zeros(3),), "relu")
    with pytest.raises(ValueError, match="activation"):
        T.MLP((np.ones((3, 2)), np.ones((1, 3))), (np.zeros(3), np.zeros(1)), "nope")


def test_data_rejects_bad_input():
    with pytest.raises(ValueError, match="n_classes"):
        T.mixture_data(10, 2, 1)
    with pytest.raises(ValueError, match="separation"):
        T.mixture_data(10, 2, 2, separation=-1.0)
    with pytest.raises(ValueError, match="n_samples"):
        T.teacher_data(0, 2, 1)
