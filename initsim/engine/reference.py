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

__all__ = [
    "dense_reference",
    "exact_reference",
    "gram_reference",
    "haar_frame_reference",
    "psd_factor_reference",
]

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


def _canonical(rows: np.ndarray) -> np.ndarray:
    """Flip rows so each row's largest-magnitude entry is positive."""
    idx = np.argmax(np.abs(rows), axis=1)
    signs = np.where(rows[np.arange(rows.shape[0]), idx] < 0, -1.0, 1.0)
    return rows * signs[:, None]


def psd_factor_reference(g: np.ndarray, rtol: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Twin of :func:`initsim.engine.gram.psd_factor`: ``(R, G^+, rank)``."""
    if not np.all(np.isfinite(g)):  # an overflowed net: NaN from here on
        nan = np.full(g.shape, np.nan)
        return nan, nan, -1
    lam, vec = np.linalg.eigh(g)
    vt = _canonical(vec.T)
    vt[:, np.diag(g) == 0.0] = 0.0  # an exactly-zero input stays exactly dead
    top = lam.max(initial=0.0)
    keep = (lam > rtol * top) & (top > 0)
    r = np.sqrt(lam[keep])[:, None] * vt[keep]
    pinv = (vt[keep].T / lam[keep]) @ vt[keep]
    return r, pinv, int(keep.sum())


def haar_frame_reference(z: np.ndarray) -> np.ndarray:
    """Twin of :func:`initsim.engine.gram.haar_frame` (sign-corrected QR)."""
    q, r = np.linalg.qr(z)
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


def gram_reference(
    key: np.ndarray,
    widths: np.ndarray,
    orthogonal: bool,
    scale: np.ndarray,
    bias_std: float,
    act: Activation,
    input_mode: int,
    given: np.ndarray,
    n_inputs: int,
    backward: bool,
    sat: float,
) -> tuple[np.ndarray, int]:
    """Twin of :func:`initsim.engine.gram.gram_kernel` for one net.

    Returns
    -------
    (numpy.ndarray (depth, 6), int)
        As :func:`exact_reference`.
    """
    from initsim.engine.gram import RANK_RTOL

    depth = len(widths) - 1
    b = n_inputs
    stats = np.zeros((depth, 6))
    x = _input(key, input_mode, given, int(widths[0]), b)
    xs, hs, avs = [x], [], []
    first = 0

    def normals(purpose: int, layer: int, start: int, rows: int, cols: int) -> np.ndarray:
        out = np.empty(start + rows * cols)
        fill_normals(U(key[0]), U(key[1]), U(purpose), U(layer), 0, out)
        return out[start:].reshape(rows, cols)

    with np.errstate(all="ignore"):
        for t in range(depth):
            n_in, n_out = int(widths[t]), int(widths[t + 1])
            r, _, rank = psd_factor_reference(x.T @ x, RANK_RTOL)
            a = np.zeros((n_out, b))
            if rank < 0:
                a[:] = np.nan
            elif rank and not orthogonal:
                a = scale[t] * normals(Purpose.FORWARD, t, 0, n_out, rank) @ r
            elif rank:
                psi = haar_frame_reference(normals(Purpose.FORWARD, t, 0, max(n_in, n_out), rank))
                a = scale[t] * psi[:n_out] @ r
            h = a.copy()
            if bias_std:
                h += bias_std * _normals(key, Purpose.BIAS, t, n_out)[:, None]
            row, x = _summaries(h, act, sat)
            stats[t, :5] = row
            if first == 0 and not np.isfinite(row[0]):
                first = t + 1
            xs.append(x)
            hs.append(h)
            avs.append(a)
        if backward:
            u = _normals(key, Purpose.OUTPUT_DIRECTION, 0, int(widths[-1]) * b)
            d = u.reshape(int(widths[-1]), b) * act.dphi(hs[-1])
            stats[depth - 1, 5] = np.mean(d**2)
            for t in range(depth - 1, 0, -1):
                n_in, n_out = int(widths[t]), int(widths[t + 1])
                x, a = xs[t], avs[t]
                _, g_pinv, rank = psd_factor_reference(x.T @ x, RANK_RTOL)
                g = x @ g_pinv @ a.T @ d
                if not orthogonal:
                    r_d, _, rank_d = psd_factor_reference(d.T @ d, RANK_RTOL)
                    if rank_d < 0:
                        g[:] = np.nan
                    elif rank_d:
                        y = scale[t] * normals(Purpose.BACKWARD, t, 0, n_in, rank_d) @ r_d
                        g += y - x @ g_pinv @ x.T @ y
                else:
                    _, a_pinv, _ = psd_factor_reference(a.T @ a, RANK_RTOL)
                    m = d - a @ a_pinv @ a.T @ d
                    r_m, _, rank_m = psd_factor_reference(m.T @ m, RANK_RTOL)
                    if rank_m < 0:
                        g[:] = np.nan
                    k, m2 = n_in - rank, n_out - rank
                    p = min(k, rank_m)
                    if p > 0:
                        psi2 = haar_frame_reference(normals(Purpose.BACKWARD, t, 0, m2, rank_m))
                        core = psi2[:k]
                        if k > rank_m:  # R of the QR with a positive diagonal
                            core = np.linalg.qr(psi2[:k])[1]
                            core = core * np.where(np.diag(core) < 0, -1.0, 1.0)[:, None]
                        yg = normals(Purpose.BACKWARD, t, m2 * rank_m, n_in, p)
                        phi = haar_frame_reference(yg - x @ g_pinv @ x.T @ yg)
                        g += scale[t] * phi @ core @ r_m
                d = g * act.dphi(hs[t - 1])
                stats[t - 1, 5] = np.mean(d**2)
    return stats, first
