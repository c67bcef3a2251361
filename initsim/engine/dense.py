"""Materialised-weight sampler: any entry law, B inputs, forward and backward.

Each net draws its weight matrix ``W_t`` (``n_{t+1} x n_t``) for every layer
from substream ``(WEIGHTS, t)`` of its key (:mod:`initsim.engine.laws`),
multiplies with BLAS and applies the activation. The backward pass redraws
the same ``W_t`` from the same substream instead of storing it, so memory
stays ``O(depth * n * B)`` per net.

Activations are unit-major ``(n, B)`` row-major buffers: unit ``i`` owns
``x[i*B:(i+1)*B]``. Biases are per unit, shared by the ``B`` inputs.

Call the kernel with BLAS limited to one thread (the Python layer does this
with threadpoolctl): the nets are already spread over the Numba threads, and
one-thread BLAS keeps every matrix product deterministic.
"""

from __future__ import annotations

import numba
import numpy as np

from initsim._jit import jit
from initsim.activations import act_dphi
from initsim.engine.exact import make_input
from initsim.engine.laws import fill_weights
from initsim.engine.layerstats import GRAD_SQ, close_layer, mean_square
from initsim.rng import P_OUTPUT_DIRECTION, fill_normals

_ZERO = np.uint64(0)


@jit(parallel=True)
def dense_kernel(
    keys,
    widths,
    law_code,
    law_params,
    bias_std,
    act,
    input_mode,
    given,
    n_inputs,
    backward,
    sat_threshold,
    hedges,
    aedges,
    stats,
    first_nonfinite,
    hist_h,
    hist_a,
):
    """Propagate ``n_inputs`` inputs through each net with materialised weights.

    Parameters
    ----------
    keys : uint64 array (nets, 2)
        Per-net Philox keys.
    widths : int64 array (depth + 1,)
        ``n_0 .. n_depth``.
    law_code : int
        Entry law (see :mod:`initsim.engine.laws`).
    law_params : float64 array (depth, P)
        The law's parameters per layer (they depend on the layer's fans).
    bias_std : float
        Standard deviation of the biases (0 for none).
    act : tuple
        Activation.
    input_mode, given : int, float64 array
        See :func:`initsim.engine.exact.make_input`; ``given`` is unit-major.
    n_inputs : int
        ``B``, inputs per net.
    backward : bool
        Also propagate gradients from random output directions (one per input).
    sat_threshold : float
        Saturation threshold on ``|phi'|``.
    hedges, aedges : float64 arrays (3,)
        Histogram ranges.
    stats, first_nonfinite, hist_h, hist_a : arrays
        Outputs, as in :func:`initsim.engine.exact.exact_single_input`.
    """
    nets = keys.shape[0]
    depth = widths.shape[0] - 1
    b = n_inputs
    nmax = 0
    for t in range(depth + 1):
        nmax = max(nmax, widths[t])
    wmax = 0
    for t in range(depth):
        wmax = max(wmax, widths[t] * widths[t + 1])
    for net in numba.prange(nets):
        k0 = keys[net, 0]
        k1 = keys[net, 1]
        nkeep = depth + 1 if backward else 2
        xs = np.empty((nkeep, nmax * b))
        hs = np.empty((depth if backward else 1, nmax * b))
        wbuf = np.empty(wmax)
        bz = np.empty(nmax)
        make_input(k0, k1, input_mode, given, widths[0], b, xs[0])
        first_nonfinite[net] = 0
        for t in range(depth):
            nin = widths[t]
            nout = widths[t + 1]
            cur = t if backward else t % 2
            nxt = t + 1 if backward else (t + 1) % 2
            h = hs[t if backward else 0]
            w = wbuf[: nout * nin].reshape((nout, nin))
            fill_weights(law_code, law_params[t], k0, k1, t, w)
            hmat = h[: nout * b].reshape((nout, b))
            np.dot(w, xs[cur][: nin * b].reshape((nin, b)), hmat)
            close_layer(
                k0,
                k1,
                t,
                bias_std,
                bz,
                h,
                xs[nxt],
                nout,
                b,
                act,
                sat_threshold,
                stats[net, t],
                hist_h[net, t],
                hist_a[net, t],
                hedges,
                aedges,
                first_nonfinite,
                net,
            )
        if backward:
            _dense_backward(k0, k1, widths, law_code, law_params, act, b, hs, wbuf, stats[net])


@jit
def _dense_backward(k0, k1, widths, law_code, law_params, act, b, hs, wbuf, stats_net):
    """Backward pass of one net: ``delta_{t-1} = phi'(h_{t-1}) * (W_t^T delta_t)``."""
    depth = widths.shape[0] - 1
    nmax = 0
    for t in range(depth + 1):
        nmax = max(nmax, widths[t])
    d = np.empty(nmax * b)
    g = np.empty(nmax * b)
    nl = widths[depth]
    fill_normals(k0, k1, P_OUTPUT_DIRECTION, _ZERO, 0, d[: nl * b])
    for k in range(nl * b):
        d[k] *= act_dphi(act, hs[depth - 1, k])
    stats_net[depth - 1, GRAD_SQ] = mean_square(d, nl * b)
    for t in range(depth - 1, 0, -1):
        nin = widths[t]
        nout = widths[t + 1]
        w = wbuf[: nout * nin].reshape((nout, nin))
        fill_weights(law_code, law_params[t], k0, k1, t, w)
        gmat = g[: nin * b].reshape((nin, b))
        np.dot(w.T, d[: nout * b].reshape((nout, b)), gmat)
        for k in range(nin * b):
            d[k] = g[k] * act_dphi(act, hs[t - 1, k])
        stats_net[t - 1, GRAD_SQ] = mean_square(d, nin * b)
