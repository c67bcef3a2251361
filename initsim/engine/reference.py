"""Plain-numpy twins of the engine kernels, for tests only.

They follow the kernels' documented random-number layout (the same
substreams of :mod:`initsim.rng`, drawn with the same compiled generator)
and redo all the arithmetic with obvious numpy code, so a kernel and its
twin must agree to rounding error for one net.
"""

from __future__ import annotations

import numpy as np

from initsim.activations import Activation
from initsim.engine import laws
from initsim.engine.exact import INPUT_GIVEN, INPUT_SPHERE
from initsim.rng import Purpose, fill_normals

__all__ = ["dense_reference", "exact_reference"]

U = np.uint64


def _normals(key: np.ndarray, purpose: int, layer: int, n: int) -> np.ndarray:
    out = np.empty(n)
    fill_normals(U(key[0]), U(key[1]), U(purpose), U(layer), 0, out)
    return out


def _input(key: np.ndarray, mode: int, given: np.ndarray, n0: int, b: int) -> np.ndarray:
    """Return the net's input as an (n0, b) matrix."""
    if mode == INPUT_GIVEN:
        return given.reshape(n0, b).copy()
    x = _normals(key, Purpose.INPUT, 0, n0 * b).reshape(n0, b)
    if mode == INPUT_SPHERE:
        x = x * np.sqrt(n0 / np.sum(x**2, axis=0))
    return x


def _summaries(h: np.ndarray, act: Activation, sat: float) -> tuple[np.ndarray, np.ndarray]:
    """Summaries of one layer: (q, act mean, act var, dead, saturated) and phi(h)."""
    y = act.phi(h)
    row = np.array(
        [
            np.mean(h**2),
            np.mean(y),
            np.var(y),
            np.mean(np.all(y == 0.0, axis=1)),
            np.mean(np.abs(act.dphi(h)) < sat),
        ]
    )
    return row, y


def exact_reference(
    key: np.ndarray,
    widths: np.ndarray,
    wstd: np.ndarray,
    bias_std: float,
    act: Activation,
    input_mode: int,
    given: np.ndarray,
    backward: bool,
    sat: float,
) -> tuple[np.ndarray, int]:
    """Twin of :func:`initsim.engine.exact.exact_single_input` for one net.

    Returns
    -------
    (numpy.ndarray (depth, 6), int)
        The summaries (grad_sq column 0 unless ``backward``) and the first
        non-finite layer (1-based, 0 for none).
    """
    depth = len(widths) - 1
    stats = np.zeros((depth, 6))
    x = _input(key, input_mode, given, int(widths[0]), 1)[:, 0]
    xs, hs, avs = [x], [], []
    first = 0
    with np.errstate(all="ignore"):
        for t in range(depth):
            z = _normals(key, Purpose.FORWARD, t, int(widths[t + 1]))
            a = wstd[t] * np.linalg.norm(x) * z
            h = a + bias_std * _normals(key, Purpose.BIAS, t, int(widths[t + 1])) if bias_std else a
            row, y = _summaries(h[:, None], act, sat)
            stats[t, :5] = row
            if first == 0 and not np.isfinite(row[0]):
                first = t + 1
            hs.append(h)
            avs.append(a)
            x = y[:, 0]
            xs.append(x)
        if backward:
            d = _normals(key, Purpose.OUTPUT_DIRECTION, 0, int(widths[-1])) * act.dphi(hs[-1])
            stats[depth - 1, 5] = np.mean(d**2)
            for t in range(depth - 1, 0, -1):
                x, a = xs[t], avs[t]
                z = _normals(key, Purpose.BACKWARD, t, int(widths[t]))
                x2 = x @ x
                sz = wstd[t] * np.linalg.norm(d)
                if x2 > 0:
                    g = x * (a @ d) / x2 + sz * (z - x * (x @ z) / x2)
                else:
                    g = sz * z
                d = g * act.dphi(hs[t - 1])
                stats[t - 1, 5] = np.mean(d**2)
    return stats, first


def dense_reference(
    key: np.ndarray,
    widths: np.ndarray,
    law_code: int,
    law_params: np.ndarray,
    bias_std: float,
    act: Activation,
    input_mode: int,
    given: np.ndarray,
    n_inputs: int,
    backward: bool,
    sat: float,
) -> tuple[np.ndarray, int]:
    """Twin of :func:`initsim.engine.dense.dense_kernel` for one net.

    Weight matrices come from :func:`initsim.engine.laws.fill_weights_reference`
    (for the truncated law that twin has the same law but other numbers, so
    compare those statistically).

    Returns
    -------
    (numpy.ndarray (depth, 6), int)
        As :func:`exact_reference`.
    """
    depth = len(widths) - 1
    stats = np.zeros((depth, 6))
    x = _input(key, input_mode, given, int(widths[0]), n_inputs)
    ws, hs = [], []
    first = 0
    with np.errstate(all="ignore"):
        for t in range(depth):
            w = np.empty((int(widths[t + 1]), int(widths[t])))
            laws.fill_weights_reference(law_code, law_params[t], U(key[0]), U(key[1]), t, w)
            h = w @ x
            if bias_std:
                h = h + bias_std * _normals(key, Purpose.BIAS, t, int(widths[t + 1]))[:, None]
            row, x = _summaries(h, act, sat)
            stats[t, :5] = row
            if first == 0 and not np.isfinite(row[0]):
                first = t + 1
            ws.append(w)
            hs.append(h)
        if backward:
            u = _normals(key, Purpose.OUTPUT_DIRECTION, 0, int(widths[-1]) * n_inputs)
            d = u.reshape(int(widths[-1]), n_inputs) * act.dphi(hs[-1])
            stats[depth - 1, 5] = np.mean(d**2)
            for t in range(depth - 1, 0, -1):
                d = (ws[t].T @ d) * act.dphi(hs[t - 1])
                stats[t - 1, 5] = np.mean(d**2)
    return stats, first
