"""Train small MLPs with plain SGD in compiled code, to see what an initialization does.

The simulator answers what an initialization does to *random* nets; this
module follows a net through training. Its main use is the classic symmetry
argument: with a constant initialization every hidden unit of a layer
computes the same function and receives the same gradient, so plain gradient
descent can never tell them apart, whereas a continuous random law makes them
distinct from the start. :class:`TrainResult` records the smallest distance
between two units of each hidden layer after every step, so the argument can
be watched (and tested bit for bit).

Conventions
-----------
* Layer ``l`` maps ``n_in -> n_out`` with ``h = W x + b``; ``W`` has the
  PyTorch shape ``(n_out, n_in)``. Hidden layers apply the activation, the
  output layer is linear (its outputs are the logits for cross-entropy).
* ``loss="mse"``: ``mean((f - Y)**2)`` over all ``B * n_out`` entries, as
  PyTorch's ``MSELoss``. ``loss="cross_entropy"``: the mean over the batch of
  ``-log softmax(f)[y]`` for integer labels ``y``, as ``CrossEntropyLoss``.
* Plain SGD, ``theta <- theta - lr * grad``, every gradient taken at the
  parameters before the step. Minibatches (``batch_size``) follow
  :func:`batch_indices`: a fresh permutation of the samples per epoch, cut
  into ``batch_size`` chunks, the incomplete last chunk dropped.

The compiled kernels use plain loops with a fixed summation order and no
BLAS, so results are bit-for-bit reproducible and units that start identical
stay bitwise identical (a blocked GEMM may treat rows differently).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from initsim import activations, initializers
from initsim._jit import jit
from initsim._validate import check_int, check_real
from initsim.activations import Activation, act_dphi, act_phi
from initsim.seeding import SeedLike, as_generator, as_seed_sequence

__all__ = [
    "DIGITS_SHAPE",
    "LOSSES",
    "MLP",
    "TrainResult",
    "batch_indices",
    "check_data_fits",
    "check_digits_args",
    "check_mixture_args",
    "check_mlp_args",
    "check_teacher_args",
    "check_train_args",
    "digits_data",
    "forward",
    "init_mlp",
    "min_unit_distance",
    "mixture_data",
    "teacher_data",
    "train",
]

#: Loss names accepted by :func:`train`.
LOSSES: tuple[str, ...] = ("mse", "cross_entropy")
_MSE = 0
_CROSS_ENTROPY = 1


# ----------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------


def _frozen(a: np.ndarray) -> np.ndarray:
    out = np.array(a, dtype=np.float64, copy=True, order="C")
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class MLP:
    """A fully connected net: hidden layers with one activation, a linear output layer.

    Parameters
    ----------
    weights : tuple of numpy.ndarray
        ``weights[l]`` has shape ``(n_{l+1}, n_l)`` (PyTorch layout). At least
        two layers (one hidden layer).
    biases : tuple of numpy.ndarray
        ``biases[l]`` has shape ``(n_{l+1},)``.
    activation : Activation or str
        The hidden layers' activation (a name is looked up with
        :func:`initsim.activations.get`).

    Notes
    -----
    The constructor checks the shapes and stores read-only float64 copies,
    so an MLP never changes after it is built; :func:`train` returns a new one.
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    activation: Activation

    def __post_init__(self) -> None:
        act = _check_activation(self.activation)
        weights = tuple(_frozen(w) for w in self.weights)
        biases = tuple(_frozen(b) for b in self.biases)
        if len(weights) < 2:
            raise ValueError(f"weights must hold at least 2 layers; got {len(weights)}")
        if len(biases) != len(weights):
            raise ValueError(
                f"biases must hold one vector per layer ({len(weights)}); got {len(biases)}"
            )
        for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
            if w.ndim != 2 or w.shape[0] < 1 or w.shape[1] < 1:
                raise ValueError(f"weights[{i}] must be a non-empty 2-D array; got {w.shape}")
            if i > 0 and w.shape[1] != weights[i - 1].shape[0]:
                raise ValueError(
                    f"weights[{i}] has {w.shape[1]} inputs but layer {i - 1} has "
                    f"{weights[i - 1].shape[0]} outputs"
                )
            if b.shape != (w.shape[0],):
                raise ValueError(f"biases[{i}] must have shape ({w.shape[0]},); got {b.shape}")
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "biases", biases)
        object.__setattr__(self, "activation", act)

    @property
    def sizes(self) -> tuple[int, ...]:
        """Layer widths ``(n_in, hidden..., n_out)``."""
        return (self.weights[0].shape[1], *(w.shape[0] for w in self.weights))

    @property
    def n_hidden_layers(self) -> int:
        """Number of hidden layers (layers with the activation)."""
        return len(self.weights) - 1


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    mlp : MLP
        The trained net.
    loss : numpy.ndarray
        Shape ``(steps + 1,)``: the loss on the whole training set before
        each step and, last, after the final step.
    unit_distance : numpy.ndarray
        Shape ``(steps + 1, n_hidden_layers)``: per hidden layer, the smallest
        Euclidean distance between two units' parameter vectors (incoming
        weights and bias), at the same times as ``loss``. Exactly 0.0 if and
        only if two units are bitwise identical; ``inf`` for a layer of width 1.
    grad_norms : numpy.ndarray
        Shape ``(steps, n_layers)``: the Euclidean norm of each layer's
        gradient (weights and bias together) used at each step.
    """

    mlp: MLP
    loss: np.ndarray
    unit_distance: np.ndarray
    grad_norms: np.ndarray


# ----------------------------------------------------------------------------------
# Compiled kernels (no validation; parameters packed in one flat array)
# ----------------------------------------------------------------------------------


@jit
def _forward_pass(params, WT, sizes, w_off, b_off, u_off, act, X, H, A):
    # H, A: (m, U) pre- and post-activations; layer l's units sit at columns
    # u_off[l]..u_off[l] + sizes[l + 1]; the output layer is linear (A = H).
    # WT (scratch, like params) receives each W transposed, so the inner loop
    # runs over units with contiguous memory (and vectorises): every unit still
    # sums its inputs in the order j = 0, 1, ..., then adds its bias,
    # independently of the other units.
    m = X.shape[0]
    n_layers = sizes.shape[0] - 1
    for layer in range(n_layers):
        n_in = sizes[layer]
        n_out = sizes[layer + 1]
        wo = w_off[layer]
        for i in range(n_out):
            for j in range(n_in):
                WT[wo + j * n_out + i] = params[wo + i * n_in + j]
    for layer in range(n_layers):
        n_in = sizes[layer]
        n_out = sizes[layer + 1]
        wo = w_off[layer]
        bo = b_off[layer]
        uo = u_off[layer]
        ui = u_off[layer - 1] if layer > 0 else 0
        last = layer == n_layers - 1
        bias = params[bo : bo + n_out]
        for b in range(m):
            h = H[b][uo : uo + n_out]
            a = A[b][uo : uo + n_out]
            x = X[b] if layer == 0 else A[b][ui : ui + n_in]
            for i in range(n_out):
                h[i] = 0.0
            for j in range(n_in):
                xj = x[j]
                w = WT[wo + j * n_out : wo + (j + 1) * n_out]
                for i in range(n_out):
                    h[i] += w[i] * xj
            for i in range(n_out):
                s = h[i] + bias[i]
                h[i] = s
                a[i] = s if last else act_phi(act, s)


@jit
def _loss_and_output_grad(A, uo, n_out, kind, Y, y, D, want_grad):
    # Loss of the outputs A[:, uo:uo + n_out]; dL/df into D[:, uo:uo + n_out].
    m = A.shape[0]
    total = 0.0
    if kind == _MSE:
        scale = 1.0 / (m * n_out)
        for b in range(m):
            for k in range(n_out):
                r = A[b, uo + k] - Y[b, k]
                total += r * r
                if want_grad:
                    D[b, uo + k] = 2.0 * r * scale
        return total * scale
    inv_m = 1.0 / m
    for b in range(m):
        mx = -np.inf
        for k in range(n_out):
            mx = max(mx, A[b, uo + k])
        se = 0.0
        for k in range(n_out):
            se += math.exp(A[b, uo + k] - mx)
        lse = mx + math.log(se)
        total += lse - A[b, uo + y[b]]
        if want_grad:
            for k in range(n_out):
                p = math.exp(A[b, uo + k] - lse)
                if k == y[b]:
                    p -= 1.0
                D[b, uo + k] = p * inv_m
    return total * inv_m


@jit
def _backward_pass(params, sizes, w_off, b_off, u_off, act, X, H, A, D, G):
    # D holds dL/dh of the output layer on entry; fills the hidden layers' dL/dh
    # and the gradient G (same packing as params). Every sum runs over samples
    # b = 0, 1, ... (gradients) or over units i = 0, 1, ... (back-propagation)
    # in the same order for every parameter, so identical units get identical
    # gradients; inner loops are contiguous.
    m = X.shape[0]
    n_layers = sizes.shape[0] - 1
    for layer in range(n_layers - 1, -1, -1):
        n_in = sizes[layer]
        n_out = sizes[layer + 1]
        wo = w_off[layer]
        bo = b_off[layer]
        uo = u_off[layer]
        ui = u_off[layer - 1] if layer > 0 else 0
        g_layer = G[wo : bo + n_out]
        for p in range(g_layer.shape[0]):
            g_layer[p] = 0.0
        gb = G[bo : bo + n_out]
        for b in range(m):
            d = D[b][uo : uo + n_out]
            x = X[b] if layer == 0 else A[b][ui : ui + n_in]
            for i in range(n_out):
                di = d[i]
                gb[i] += di
                g = G[wo + i * n_in : wo + (i + 1) * n_in]
                for j in range(n_in):
                    g[j] += di * x[j]
        if layer > 0:
            for b in range(m):
                d = D[b][uo : uo + n_out]
                d_prev = D[b][ui : ui + n_in]
                h_prev = H[b][ui : ui + n_in]
                for j in range(n_in):
                    d_prev[j] = 0.0
                for i in range(n_out):
                    di = d[i]
                    w = params[wo + i * n_in : wo + (i + 1) * n_in]
                    for j in range(n_in):
                        d_prev[j] += w[j] * di
                for j in range(n_in):
                    d_prev[j] *= act_dphi(act, h_prev[j])


@jit
def _unit_distances(params, sizes, w_off, b_off, out):
    # out[l] = min over pairs of units of hidden layer l + 1 of ||theta_i - theta_k||,
    # theta = (incoming weights, bias). Scaled by the largest difference, so the
    # result is 0.0 exactly when two units are bitwise equal (no underflow of
    # squares); NaN if a parameter is NaN; inf for a single unit.
    for layer in range(sizes.shape[0] - 2):
        n_in = sizes[layer]
        n = sizes[layer + 1]
        wo = w_off[layer]
        bo = b_off[layer]
        best = np.inf
        has_nan = False
        for i in range(n):
            for k in range(i + 1, n):
                db = params[bo + i] - params[bo + k]
                mx = abs(db)
                has_nan = has_nan or db != db
                for j in range(n_in):
                    d = params[wo + i * n_in + j] - params[wo + k * n_in + j]
                    has_nan = has_nan or d != d
                    mx = max(mx, abs(d))
                if mx == 0.0:
                    dist = 0.0
                elif mx == np.inf:
                    dist = np.inf
                else:
                    s = (db / mx) ** 2
                    for j in range(n_in):
                        s += ((params[wo + i * n_in + j] - params[wo + k * n_in + j]) / mx) ** 2
                    dist = mx * math.sqrt(s)
                best = min(best, dist)
        out[layer] = np.nan if has_nan else best


@jit
def _forward_kernel(params, sizes, w_off, b_off, u_off, act, X):
    n_layers = sizes.shape[0] - 1
    n_units = u_off[n_layers - 1] + sizes[n_layers]
    m = X.shape[0]
    H = np.empty((m, n_units))
    A = np.empty((m, n_units))
    _forward_pass(params, np.empty_like(params), sizes, w_off, b_off, u_off, act, X, H, A)
    uo = u_off[n_layers - 1]
    out = np.empty((m, sizes[n_layers]))
    for b in range(m):
        for k in range(sizes[n_layers]):
            out[b, k] = A[b, uo + k]
    return out


@jit
def _train_kernel(
    params,
    sizes,
    w_off,
    b_off,
    u_off,
    act,
    X,
    Y,
    y,
    kind,
    lr,
    steps,
    full,
    batch_idx,
    loss_out,
    dist_out,
    gnorm_out,
):
    # params is updated in place. Y: (B, n_out) targets (MSE) or (B, 0); y: (B,)
    # labels (cross-entropy) or zeros. batch_idx: (steps, m) rows of each
    # minibatch, ignored when full.
    n_layers = sizes.shape[0] - 1
    n_out = sizes[n_layers]
    n_units = u_off[n_layers - 1] + n_out
    n = X.shape[0]
    uo = u_off[n_layers - 1]
    m = n if full else batch_idx.shape[1]
    G = np.empty_like(params)
    WT = np.empty_like(params)
    # whole-set buffers (the loss is always reported on the whole set)
    H = np.empty((n, n_units))
    A = np.empty((n, n_units))
    D = np.empty((n, n_units))
    # minibatch buffers
    mb = 0 if full else m
    Xb = np.empty((mb, X.shape[1]))
    Yb = np.empty((mb, Y.shape[1]))
    yb = np.zeros(mb, dtype=np.int64)
    Hb = np.empty((mb, n_units))
    Ab = np.empty((mb, n_units))
    Db = np.empty((mb, n_units))
    for t in range(steps + 1):
        step = t < steps
        _forward_pass(params, WT, sizes, w_off, b_off, u_off, act, X, H, A)
        loss_out[t] = _loss_and_output_grad(A, uo, n_out, kind, Y, y, D, step and full)
        _unit_distances(params, sizes, w_off, b_off, dist_out[t])
        if not step:
            break
        if full:
            _backward_pass(params, sizes, w_off, b_off, u_off, act, X, H, A, D, G)
        else:
            for r in range(m):
                src = batch_idx[t, r]
                for j in range(X.shape[1]):
                    Xb[r, j] = X[src, j]
                for k in range(Y.shape[1]):
                    Yb[r, k] = Y[src, k]
                yb[r] = y[src]
            _forward_pass(params, WT, sizes, w_off, b_off, u_off, act, Xb, Hb, Ab)
            _loss_and_output_grad(Ab, uo, n_out, kind, Yb, yb, Db, True)
            _backward_pass(params, sizes, w_off, b_off, u_off, act, Xb, Hb, Ab, Db, G)
        for layer in range(n_layers):
            s = 0.0
            for p in range(w_off[layer], b_off[layer] + sizes[layer + 1]):
                s += G[p] * G[p]
            gnorm_out[t, layer] = math.sqrt(s)
        for p in range(params.shape[0]):
            params[p] -= lr * G[p]


# ----------------------------------------------------------------------------------
# Packing and validation
# ----------------------------------------------------------------------------------

_Packed = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _pack(mlp: MLP) -> _Packed:
    """Return ``(params, sizes, w_off, b_off, u_off)`` for the kernels.

    ``params`` holds, layer after layer, ``W`` (row-major) then ``b``.
    """
    sizes = np.asarray(mlp.sizes, dtype=np.int64)
    n_layers = len(mlp.weights)
    w_off = np.empty(n_layers, dtype=np.int64)
    b_off = np.empty(n_layers, dtype=np.int64)
    u_off = np.empty(n_layers, dtype=np.int64)
    pos = 0
    units = 0
    chunks = []
    for i, (w, b) in enumerate(zip(mlp.weights, mlp.biases, strict=True)):
        w_off[i] = pos
        b_off[i] = pos + w.size
        u_off[i] = units
        pos += w.size + b.size
        units += b.size
        chunks += [w.ravel(), b]
    return np.concatenate(chunks), sizes, w_off, b_off, u_off


def _unpack(params: np.ndarray, like: MLP) -> MLP:
    weights = []
    biases = []
    pos = 0
    for w, b in zip(like.weights, like.biases, strict=True):
        weights.append(params[pos : pos + w.size].reshape(w.shape))
        pos += w.size
        biases.append(params[pos : pos + b.size])
        pos += b.size
    return MLP(tuple(weights), tuple(biases), like.activation)


def _check_activation(activation: Any) -> Activation:
    try:
        return activations.get(activation)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"activation: {exc}") from None


def _check_inputs(mlp: MLP, X: npt.ArrayLike, name: str = "X") -> np.ndarray:
    if not isinstance(mlp, MLP):
        raise ValueError(f"mlp must be an MLP; got {type(mlp).__name__}")
    try:
        xa = np.ascontiguousarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a 2-D array of real numbers") from None
    n_in = mlp.sizes[0]
    if xa.ndim != 2 or xa.shape[1] != n_in or xa.shape[0] < 1:
        raise ValueError(f"{name} must have shape (B, {n_in}) with B >= 1; got {xa.shape}")
    if not np.all(np.isfinite(xa)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return xa


def _check_targets(Y: npt.ArrayLike, kind: int, n: int, n_out: int) -> tuple[np.ndarray, ...]:
    """Return ``(Y float (n, n_out) or (n, 0), y int64 (n,))`` for the kernel."""
    if kind == _MSE:
        try:
            ya = np.ascontiguousarray(Y, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("Y must be an array of real numbers") from None
        if ya.ndim == 1 and n_out == 1:
            ya = ya.reshape(-1, 1)
        if ya.shape != (n, n_out):
            raise ValueError(f"Y must have shape ({n}, {n_out}) for loss='mse'; got {ya.shape}")
        if not np.all(np.isfinite(ya)):
            raise ValueError("Y must be finite (no NaN or inf)")
        return ya, np.zeros(n, dtype=np.int64)
    ya = np.asarray(Y)
    if ya.shape != (n,):
        raise ValueError(
            f"Y must hold {n} integer class labels, shape ({n},), for loss='cross_entropy'; "
            f"got shape {ya.shape}"
        )
    if ya.dtype.kind not in "iu":
        if ya.dtype.kind != "f" or not np.all(np.isfinite(ya)) or np.any(ya != np.round(ya)):
            raise ValueError("Y must hold integer class labels for loss='cross_entropy'")
    if np.any(ya < 0) or np.any(ya >= n_out):
        raise ValueError(f"Y's class labels must lie in [0, {n_out - 1}] (n_out = {n_out})")
    return np.zeros((n, 0), dtype=np.float64), ya.astype(np.int64)


# ----------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------


# Argument checks: each maker and trainer below starts with its check, and the study
# validator (initsim.study.cells) calls the same functions on a spec's cells before
# anything is computed.

_NO_SKLEARN = (
    "digits_data() needs scikit-learn, which initsim does not depend on: "
    "install it with `pip install scikit-learn`"
)
#: ``(samples, inputs, classes)`` of scikit-learn's digits (:func:`digits_data`).
DIGITS_SHAPE = (1797, 64, 10)


def check_mlp_args(
    sizes: Any,
    init: str | initializers.Initializer = "he_normal",
    activation: str | Activation = "relu",
    *,
    bias: float | str | initializers.Initializer = 0.0,
) -> tuple[list[int], initializers.Initializer, Activation, initializers.Initializer | None, float]:
    """Check the arguments of :func:`init_mlp` (what it checks before sampling).

    Parameters
    ----------
    sizes, init, activation, bias
        As in :func:`init_mlp`.

    Returns
    -------
    dims : list of int
        The widths.
    w_init : Initializer
        The weight initializer.
    act : Activation
        The activation.
    b_init : Initializer or None
        The bias initializer, or None for a constant bias.
    b_const : float
        The constant bias (0.0 when ``b_init`` is given).

    Raises
    ------
    ValueError
        If an argument is invalid (the message names it); an initializer that
        cannot fill a dense weight matrix (``dirac``) or a bias vector (laws
        that depend on the fans, e.g. ``he_normal``) is refused here, probed
        on a 1 x 1 matrix and a 1-vector.
    """
    if isinstance(sizes, str | bytes) or not hasattr(sizes, "__len__"):
        raise ValueError(f"sizes must be a sequence of integers; got {sizes!r}")
    dims = [check_int("sizes", s, 1) for s in sizes]
    if len(dims) < 3:
        raise ValueError(
            f"sizes must be [n_in, hidden..., n_out] with at least one hidden layer; got {dims}"
        )
    try:
        w_init = initializers.get(init)
        w_init.sample((1, 1), seed=0)
    except ValueError as exc:
        raise ValueError(f"init: {exc}") from None
    act = _check_activation(activation)
    b_init: initializers.Initializer | None = None
    b_const = 0.0
    if isinstance(bias, str | initializers.Initializer):
        try:
            b_init = initializers.get(bias)
        except ValueError as exc:
            raise ValueError(f"bias: {exc}") from None
        try:
            b_init.sample((1,), seed=0)
        except ValueError as exc:
            raise ValueError(
                f"bias: initializer {b_init.name!r} cannot draw a bias vector ({exc}); give a "
                "number or a law that does not depend on the fans (normal, uniform, zeros, ...)"
            ) from None
    elif isinstance(bias, numbers.Real) and not isinstance(bias, bool) and math.isfinite(bias):
        b_const = float(bias)
    else:
        raise ValueError(f"bias must be a finite number or an initializer; got {bias!r}")
    return dims, w_init, act, b_init, b_const


def check_train_args(
    n_samples: int,
    *,
    lr: float = 0.1,
    steps: int = 100,
    batch_size: int | None = None,
    loss: str = "mse",
) -> tuple[str, float, int, int | None]:
    """Check the arguments of :func:`train` other than the net and the arrays.

    Parameters
    ----------
    n_samples : int
        Number of training samples (rows of ``X``).
    lr, steps, batch_size, loss
        As in :func:`train`.

    Returns
    -------
    loss : str
        The loss, normalised ("mse" or "cross_entropy").
    lr : float
        The learning rate.
    steps : int
        The number of steps.
    batch_size : int or None
        The batch size (None: full batch).

    Raises
    ------
    ValueError
        If an argument is invalid (the message names it), e.g. a batch
        larger than the training set.
    """
    if not isinstance(loss, str) or loss.strip().lower() not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(map(repr, LOSSES))}; got {loss!r}")
    lr = check_real("lr", lr, minimum=0.0, strict=True)
    steps = check_int("steps", steps, 0)
    bs = None
    if batch_size is not None:
        bs = check_int("batch_size", batch_size, 1)
        if bs > n_samples:
            raise ValueError(f"batch_size must be <= the number of samples ({n_samples}); got {bs}")
    return loss.strip().lower(), lr, steps, bs


def check_data_fits(
    loss: str, n_out: int, *, targets: int | None = None, classes: int | None = None
) -> None:
    """Check, from shapes alone, that a data set fits a net's outputs and loss.

    The shape-level form of what :func:`train` checks on ``Y``: regression
    targets (``targets`` real columns, e.g. :func:`teacher_data`) need
    ``loss="mse"`` and ``targets == n_out``; class labels in ``[0, classes)``
    (:func:`mixture_data`, :func:`digits_data`) need ``loss="cross_entropy"``
    and ``classes <= n_out``, or ``loss="mse"`` on a net with one output (the
    labels are then regressed as numbers, as :func:`train` accepts).

    Parameters
    ----------
    loss : {"mse", "cross_entropy"}
        The loss.
    n_out : int
        The net's outputs (``sizes[-1]``).
    targets : int, optional
        Columns of real targets ``Y`` (give this or ``classes``).
    classes : int, optional
        Labels run over ``0 .. classes - 1``.

    Raises
    ------
    ValueError
        If :func:`train` would refuse such targets; the message says which
        loss or output width would fit.
    """
    if (targets is None) == (classes is None):
        raise ValueError("give exactly one of targets and classes")
    loss = check_train_args(1, loss=loss)[0]
    if loss == "mse":
        if targets is not None and targets != n_out:
            raise ValueError(
                f"loss='mse' needs targets of shape (B, {n_out}) (n_out = {n_out}); "
                f"the data have {targets} target columns"
            )
        if classes is not None and n_out != 1:
            raise ValueError(
                f"loss='mse' needs real targets of shape (B, {n_out}); class labels fit "
                "loss='cross_entropy' (or a net with one output)"
            )
        return
    if targets is not None:
        raise ValueError(
            f"loss='cross_entropy' needs integer class labels; {targets} columns of real "
            "targets need loss='mse'"
        )
    if classes is not None and classes > n_out:
        raise ValueError(
            f"loss='cross_entropy' needs class labels in [0, {n_out - 1}] (n_out = {n_out}); "
            f"the data have {classes} classes"
        )


def check_teacher_args(
    n_samples: int,
    n_in: int,
    n_out: int,
    *,
    hidden: int = 32,
    activation: str | Activation = "tanh",
) -> tuple[int, int, int, int, Activation]:
    """Check the arguments of :func:`teacher_data` (its defaults are the same).

    Parameters
    ----------
    n_samples, n_in, n_out, hidden, activation
        As in :func:`teacher_data`.

    Returns
    -------
    tuple
        ``(n_samples, n_in, n_out, hidden, activation)``, checked.

    Raises
    ------
    ValueError
        If an argument is invalid (the message names it).
    """
    n = check_int("n_samples", n_samples, 1)
    n_in = check_int("n_in", n_in, 1)
    n_out = check_int("n_out", n_out, 1)
    hidden = check_int("hidden", hidden, 1)
    return n, n_in, n_out, hidden, _check_activation(activation)


def check_mixture_args(
    n_samples: int, n_in: int, n_classes: int, *, separation: float = 3.0
) -> tuple[int, int, int, float]:
    """Check the arguments of :func:`mixture_data` (its defaults are the same).

    Parameters
    ----------
    n_samples, n_in, n_classes, separation
        As in :func:`mixture_data`.

    Returns
    -------
    tuple
        ``(n_samples, n_in, n_classes, separation)``, checked.

    Raises
    ------
    ValueError
        If an argument is invalid (the message names it).
    """
    n = check_int("n_samples", n_samples, 1)
    n_in = check_int("n_in", n_in, 1)
    k = check_int("n_classes", n_classes, 2)
    sep = check_real("separation", separation, minimum=0.0, strict=True)
    return n, n_in, k, sep


def check_digits_args() -> tuple[int, int, int]:
    """Check that :func:`digits_data` can load, without loading it.

    Returns
    -------
    tuple of int
        :data:`DIGITS_SHAPE`, ``(samples, inputs, classes)``.

    Raises
    ------
    ImportError
        If scikit-learn is not installed (the message says how to install it).
    """
    import importlib.util

    if importlib.util.find_spec("sklearn") is None:
        raise ImportError(_NO_SKLEARN)
    return DIGITS_SHAPE


def init_mlp(
    sizes: Any,
    init: str | initializers.Initializer = "he_normal",
    activation: str | Activation = "relu",
    *,
    bias: float | str | initializers.Initializer = 0.0,
    seed: SeedLike = 0,
) -> MLP:
    """Build an MLP with weights drawn from an initializer of the catalogue.

    Parameters
    ----------
    sizes : sequence of int
        ``[n_in, hidden..., n_out]``: at least one hidden layer, every width >= 1.
    init : str or Initializer
        Weight initializer (:func:`initsim.initializers.get`); pass an object,
        e.g. ``initializers.get("constant", value=0.3)``, for parameters.
    activation : str or Activation
        The hidden layers' activation.
    bias : float, str or Initializer
        A number gives every bias that constant; an initializer (or its name)
        draws the biases from a law that does not depend on the fans
        (``normal``, ``uniform``, ``zeros``, ...), shape ``(n_out,)``.
    seed : int, SeedSequence, Generator or None
        Layer ``l``'s weights and biases use independent child seeds spawned
        from it.

    Returns
    -------
    MLP
        The initialised net.

    Raises
    ------
    ValueError
        If ``sizes``, ``init``, ``activation``, ``bias`` or ``seed`` is
        invalid (the message names the parameter).
    """
    dims, w_init, act, b_init, b_const = check_mlp_args(sizes, init, activation, bias=bias)
    ss = as_seed_sequence(seed)
    n_layers = len(dims) - 1
    w_seeds = ss.spawn(n_layers)
    b_seeds = ss.spawn(n_layers)
    weights = []
    biases = []
    for i in range(n_layers):
        n_in, n_out = dims[i], dims[i + 1]
        weights.append(w_init.sample((n_out, n_in), seed=w_seeds[i], layout="torch"))
        if b_init is None:
            biases.append(np.full(n_out, b_const))
        else:
            try:
                biases.append(b_init.sample((n_out,), seed=b_seeds[i]))
            except ValueError as exc:
                raise ValueError(f"bias: {exc}") from None
    return MLP(tuple(weights), tuple(biases), act)


def forward(mlp: MLP, X: npt.ArrayLike) -> np.ndarray:
    """Evaluate the net on a batch (compiled).

    Parameters
    ----------
    mlp : MLP
        The net.
    X : array_like
        Inputs, shape ``(B, n_in)``, finite.

    Returns
    -------
    numpy.ndarray
        Outputs ``(B, n_out)`` of the linear output layer (logits).

    Raises
    ------
    ValueError
        If ``X`` has the wrong shape or is not finite.
    """
    xa = _check_inputs(mlp, X)
    params, sizes, w_off, b_off, u_off = _pack(mlp)
    act = mlp.activation
    return _forward_kernel(params, sizes, w_off, b_off, u_off, act.kernel, xa)


def min_unit_distance(mlp: MLP) -> np.ndarray:
    """Return, per hidden layer, the smallest distance between two units.

    Parameters
    ----------
    mlp : MLP
        The net.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_hidden_layers,)``: the minimum over pairs of units ``i, k``
        of ``||(W[i], b[i]) - (W[k], b[k])||``. Exactly 0.0 if and only if two
        units are bitwise identical; ``inf`` for a layer of width 1.
    """
    if not isinstance(mlp, MLP):
        raise ValueError(f"mlp must be an MLP; got {type(mlp).__name__}")
    params, sizes, w_off, b_off, _ = _pack(mlp)
    out = np.empty(mlp.n_hidden_layers)
    _unit_distances(params, sizes, w_off, b_off, out)
    return out


def batch_indices(n_samples: int, batch_size: int, steps: int, seed: SeedLike = 0) -> np.ndarray:
    """Return the sample indices of each SGD minibatch.

    Parameters
    ----------
    n_samples : int
        Number of training samples.
    batch_size : int
        Samples per step, ``1 <= batch_size <= n_samples``.
    steps : int
        Number of steps (>= 0).
    seed : int, SeedSequence, Generator or None
        Seed of the shuffles.

    Returns
    -------
    numpy.ndarray
        ``(steps, batch_size)`` int64: epoch after epoch, a random permutation
        of the samples cut into ``n_samples // batch_size`` batches (the
        incomplete last batch dropped, as PyTorch's ``drop_last=True``).
    """
    n = check_int("n_samples", n_samples, 1)
    bs = check_int("batch_size", batch_size, 1)
    steps = check_int("steps", steps, 0)
    if bs > n:
        raise ValueError(f"batch_size must be <= the number of samples ({n}); got {bs}")
    rng = as_generator(seed)
    per_epoch = n // bs
    epochs = -(-steps // per_epoch)
    out = np.empty((epochs * per_epoch, bs), dtype=np.int64)
    for e in range(epochs):
        out[e * per_epoch : (e + 1) * per_epoch] = rng.permutation(n)[: per_epoch * bs].reshape(
            per_epoch, bs
        )
    return out[:steps]


def train(
    mlp: MLP,
    X: npt.ArrayLike,
    Y: npt.ArrayLike,
    *,
    lr: float = 0.1,
    steps: int = 100,
    batch_size: int | None = None,
    loss: str = "mse",
    seed: SeedLike = 0,
) -> TrainResult:
    """Train with plain SGD; forward, backward and update in compiled code.

    Parameters
    ----------
    mlp : MLP
        The initial net (not modified).
    X : array_like
        Inputs ``(B, n_in)``, finite.
    Y : array_like
        ``loss="mse"``: targets ``(B, n_out)`` (or ``(B,)`` when ``n_out == 1``).
        ``loss="cross_entropy"``: integer class labels ``(B,)`` in ``[0, n_out)``.
    lr : float
        Learning rate, finite and > 0.
    steps : int
        Number of SGD steps, >= 0.
    batch_size : int or None
        None for full-batch gradient descent, else minibatches of this size
        drawn as in :func:`batch_indices`.
    loss : {"mse", "cross_entropy"}
        The loss (see the module notes for the exact definitions).
    seed : int, SeedSequence, Generator or None
        Seed of the minibatch shuffles (unused for full batches).

    Returns
    -------
    TrainResult
        The trained net, the loss and the unit distances before each step
        and after the last, and the gradient norms. Same inputs give the same
        bits.

    Raises
    ------
    ValueError
        If an argument is invalid (the message names it).
    """
    xa = _check_inputs(mlp, X)
    n = xa.shape[0]
    loss, lr, steps, bs = check_train_args(n, lr=lr, steps=steps, batch_size=batch_size, loss=loss)
    kind = _MSE if loss == "mse" else _CROSS_ENTROPY
    ya, yi = _check_targets(Y, kind, n, mlp.sizes[-1])
    full = bs is None
    if bs is None:
        idx = np.zeros((0, 1), dtype=np.int64)
    else:
        idx = batch_indices(n, bs, steps, seed)
    params, sizes, w_off, b_off, u_off = _pack(mlp)
    loss_out = np.empty(steps + 1)
    dist_out = np.empty((steps + 1, mlp.n_hidden_layers))
    gnorm_out = np.empty((steps, len(mlp.weights)))
    act = mlp.activation
    _train_kernel(
        params,
        sizes,
        w_off,
        b_off,
        u_off,
        act.kernel,
        xa,
        ya,
        yi,
        kind,
        lr,
        steps,
        full,
        idx,
        loss_out,
        dist_out,
        gnorm_out,
    )
    return TrainResult(_unpack(params, mlp), loss_out, dist_out, gnorm_out)


# ----------------------------------------------------------------------------------
# Data sets
# ----------------------------------------------------------------------------------


def teacher_data(
    n_samples: int,
    n_in: int,
    n_out: int,
    *,
    hidden: int = 32,
    activation: str | Activation = "tanh",
    seed: SeedLike = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a regression set labelled by a random teacher MLP (no noise).

    Parameters
    ----------
    n_samples, n_in, n_out : int
        Number of samples, input and output widths (all >= 1).
    hidden : int
        The teacher's one hidden layer width.
    activation : str or Activation
        The teacher's activation.
    seed : int, SeedSequence, Generator or None
        Seeds the inputs and the teacher (independent child streams).

    Returns
    -------
    X : numpy.ndarray
        ``(n_samples, n_in)`` standard normal inputs.
    Y : numpy.ndarray
        ``(n_samples, n_out)``: the teacher's outputs, a ``[n_in, hidden,
        n_out]`` net with ``lecun_normal`` weights and zero biases.
    """
    n, n_in, n_out, hidden, activation = check_teacher_args(
        n_samples, n_in, n_out, hidden=hidden, activation=activation
    )
    x_seed, t_seed = as_seed_sequence(seed).spawn(2)
    teacher = init_mlp([n_in, hidden, n_out], "lecun_normal", activation, seed=t_seed)
    X = as_generator(x_seed).standard_normal((n, n_in))
    return X, forward(teacher, X)


def mixture_data(
    n_samples: int,
    n_in: int,
    n_classes: int,
    *,
    separation: float = 3.0,
    seed: SeedLike = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a Gaussian-mixture classification set.

    Parameters
    ----------
    n_samples, n_in : int
        Number of samples and input dimension (>= 1).
    n_classes : int
        Number of classes (>= 2).
    separation : float
        Norm of every class centre (centres point in independent uniformly
        random directions); the clusters have identity covariance.
    seed : int, SeedSequence, Generator or None
        Seed.

    Returns
    -------
    X : numpy.ndarray
        ``(n_samples, n_in)`` points.
    y : numpy.ndarray
        ``(n_samples,)`` int64 labels, balanced (``i % n_classes``, shuffled).
    """
    n, n_in, k, sep = check_mixture_args(n_samples, n_in, n_classes, separation=separation)
    rng = as_generator(seed)
    centres = rng.standard_normal((k, n_in))
    centres *= sep / np.linalg.norm(centres, axis=1, keepdims=True)
    y = rng.permutation(np.arange(n, dtype=np.int64) % k)
    X = centres[y] + rng.standard_normal((n, n_in))
    return X, y


def digits_data() -> tuple[np.ndarray, np.ndarray]:
    """Load scikit-learn's bundled 8x8 digits (1797 samples, 10 classes).

    Returns
    -------
    X : numpy.ndarray
        ``(1797, 64)`` float64 pixel intensities scaled from 0..16 to [0, 1].
    y : numpy.ndarray
        ``(1797,)`` int64 labels 0..9.

    Raises
    ------
    ImportError
        If scikit-learn is not installed (it is not an initsim dependency).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError(_NO_SKLEARN) from exc
    data = load_digits()
    return np.asarray(data.data, dtype=np.float64) / 16.0, np.asarray(data.target, dtype=np.int64)
