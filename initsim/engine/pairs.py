"""Two inputs of a given correlation through a deep vanilla net: the exact Gram sampler.

The net: ``h^l = W^l x^{l-1}`` and ``x^l = phi_hat(h^l)`` for ``l = 1 ..
depth``, every layer of width ``n``, weights iid ``N(0, sigma_w2 / n)``, no
biases, and the (shaped) activation

    ``phi_hat(x) = out_scale * (phi(in_scale * x + in_shift) + out_shift)``

with ``phi`` a built-in or registered activation, the whole passed as its
kernel tuple (:func:`initsim.activations.act_phi` applies the transform).
The two inputs have ``||x||^2 = n`` and correlation ``c0``. Gaussian weights
are rotation invariant, so only the inputs' Gram matrix
``G^0 = n [[1, c0], [c0, 1]]`` matters: layer ``l`` draws ``H = s Z R``
with ``R^T R = G^{l-1}`` (:func:`initsim.engine.gram.psd_factor`),
``s = sqrt(sigma_w2 / n)`` and ``Z`` (``n x rank``) standard normal from
substream ``(FORWARD, l - 1)`` of the net's key, exactly as the MLP's Gram
sampler does; no weight matrix and no input vector is drawn.

Recorded per net and layer (``stats[net, l - 1, :]``): ``K11``, ``K22`` and
``K12``, the kernel ``x_i . x_j / n`` of the layer's outputs. A net whose
kernel stops being finite records NaN from that layer on.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from initsim._jit import jit
from initsim.activations import act_phi
from initsim.engine.gram import normals_matrix, psd_factor
from initsim.rng import P_FORWARD

__all__ = ["N_PAIR_STATS", "pair_kernel"]

#: Columns of ``stats``: K11, K22, K12.
N_PAIR_STATS = 3


@jit(parallel=True)
def pair_kernel(keys, n, depth, sigma_w2, c0, act, stats):
    """Propagate the two inputs through each net (see the module docstring).

    Parameters
    ----------
    keys : uint64 array (nets, 2)
        Per-net Philox keys.
    n, depth : int
        Width and number of layers.
    sigma_w2 : float
        ``n Var(W_ij)``.
    c0 : float
        The inputs' correlation, in ``[-1, 1]``.
    act : tuple
        The (shaped) activation's kernel tuple (:attr:`initsim.activations.Activation.kernel`).
    stats : float64 array (nets, depth, N_PAIR_STATS)
        Output.
    """
    nets = keys.shape[0]
    s = math.sqrt(sigma_w2 / n)
    for net in numba.prange(nets):
        k0 = keys[net, 0]
        k1 = keys[net, 1]
        g = np.empty((2, 2))
        g[0, 0] = n
        g[1, 1] = n
        g[0, 1] = n * c0
        g[1, 0] = n * c0
        x = np.empty((n, 2))
        for t in range(depth):
            r, _, rank = psd_factor(g)
            if rank < 0:
                stats[net, t:, :] = np.nan
                break
            if rank == 0:
                h = np.zeros((n, 2))
            else:
                h = s * np.dot(normals_matrix(k0, k1, P_FORWARD, t, 0, n, rank), r)
            for i in range(n):
                for j in range(2):
                    x[i, j] = act_phi(act, h[i, j])
            k11 = 0.0
            k22 = 0.0
            k12 = 0.0
            for i in range(n):
                k11 += x[i, 0] * x[i, 0]
                k22 += x[i, 1] * x[i, 1]
                k12 += x[i, 0] * x[i, 1]
            g[0, 0] = k11
            g[1, 1] = k22
            g[0, 1] = k12
            g[1, 0] = k12
            stats[net, t, 0] = k11 / n
            stats[net, t, 1] = k22 / n
            stats[net, t, 2] = k12 / n
