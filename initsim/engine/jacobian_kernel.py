"""Input-output Jacobian spectra of random nets with materialised weights.

For a net with ``h_l = W_l x_{l-1} + b_l`` and ``x_l = phi(h_l)``, the
Jacobian of the output ``x_L`` with respect to the input ``x_0`` is

``J = D_L W_L ... D_1 W_1``,  ``D_l = diag(phi'(h_l))``,

an ``n_L x n_0`` matrix. The kernel forms it layer by layer
(``J_l = D_l W_l J_{l-1}``, one GEMM per layer) while propagating the input
forward, then writes its ``min(n_L, n_0)`` singular values (descending).

Random numbers follow the dense engine (:mod:`initsim.engine.dense`) exactly:
``W_t`` from substream ``(WEIGHTS, t)`` via
:func:`initsim.engine.laws.fill_weights`, the input from ``(INPUT, 0)`` via
:func:`initsim.engine.exact.make_input`, the biases from ``(BIAS, t)``; so a
net's weights, biases and input are the same as in
``simulate(method="dense", inputs=1)`` with the same seed.

Call with BLAS/LAPACK limited to one thread (the Python layer does this with
threadpoolctl): nets are spread over the Numba threads, and one-thread
BLAS/LAPACK keeps every product and SVD deterministic.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from initsim._jit import jit
from initsim.activations import act_dphi, act_phi
from initsim.engine.exact import make_input
from initsim.engine.laws import fill_weights
from initsim.rng import P_BIAS, fill_normals


@jit(parallel=True)
def jacobian_kernel(keys, widths, law_codes, law_params, bias_std, act, input_mode, given, sv):
    """Singular values of each net's input-output Jacobian.

    Parameters
    ----------
    keys : uint64 array (nets, 2)
        Per-net Philox keys.
    widths : int64 array (depth + 1,)
        ``n_0 .. n_depth``.
    law_codes : int64 array (depth,)
        Entry law of each layer (see :mod:`initsim.engine.laws`).
    law_params : float64 array (depth, P)
        The law's parameters per layer.
    bias_std : float
        Standard deviation of the biases (0 for none).
    act : tuple
        Activation.
    input_mode, given : int, float64 array
        See :func:`initsim.engine.exact.make_input` (one input per net).
    sv : float64 array (nets, min(n_0, n_depth))
        Output: singular values of ``J`` in descending order; all NaN for a
        net whose Jacobian has a non-finite entry.
    """
    nets = keys.shape[0]
    depth = widths.shape[0] - 1
    n0 = widths[0]
    nl = widths[depth]
    nmax = 0
    for t in range(depth + 1):
        nmax = max(nmax, widths[t])
    wmax = 0
    for t in range(depth):
        wmax = max(wmax, widths[t] * widths[t + 1])
    for net in numba.prange(nets):
        k0 = keys[net, 0]
        k1 = keys[net, 1]
        x = np.empty(nmax)
        h = np.empty(nmax)
        bz = np.empty(nmax)
        wbuf = np.empty(wmax)
        ja = np.empty(nmax * n0)
        jb = np.empty(nmax * n0)
        make_input(k0, k1, input_mode, given, n0, 1, x)
        for t in range(depth):
            nin = widths[t]
            nout = widths[t + 1]
            w = wbuf[: nout * nin].reshape((nout, nin))
            fill_weights(law_codes[t], law_params[t], k0, k1, t, w)
            np.dot(w, x[:nin].reshape((nin, 1)), h[:nout].reshape((nout, 1)))
            if bias_std > 0.0:
                fill_normals(k0, k1, P_BIAS, np.uint64(t), 0, bz[:nout])
                for i in range(nout):
                    h[i] += bias_std * bz[i]
            jn = jb[: nout * n0].reshape((nout, n0))
            if t == 0:
                jn[:, :] = w
            else:
                np.dot(w, ja[: nin * n0].reshape((nin, n0)), jn)
            for i in range(nout):
                d = act_dphi(act, h[i])
                for j in range(n0):
                    jn[i, j] *= d
                x[i] = act_phi(act, h[i])
            ja, jb = jb, ja
        jac = ja[: nl * n0].reshape((nl, n0))
        finite = True
        for k in range(nl * n0):
            if not math.isfinite(ja[k]):
                finite = False
                break
        if finite:
            s = np.linalg.svd(jac, False)[1]
            for k in range(s.shape[0]):
                sv[net, k] = s[k]
        else:
            sv[net, :] = np.nan
