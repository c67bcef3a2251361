"""Device code every GPU kernel starts a block with: tables into shared memory, the input.

:func:`load_tables` copies the ziggurat tables into a block's shared memory;
:func:`input_writer` builds the device function that writes one net's ``B``
inputs, unit-major, as :func:`initsim.engine.exact.make_input` does on the
CPU (the same draws: normal ``i * B + j`` of substream ``(INPUT, 0)`` for
input ``j`` of unit ``i``).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numba import cuda

from initsim.engine.exact import INPUT_GIVEN, INPUT_SPHERE
from initsim.gpu.reduce import reducers
from initsim.gpu.streams import normal_at
from initsim.rng import P_INPUT

__all__ = ["input_writer", "load_tables"]

_ZERO = np.uint64(0)


@cuda.jit(device=True)
def load_tables(ki, wi, ki_g, wi_g):
    """Copy the 256-entry ziggurat tables from global into shared memory (then a barrier)."""
    for k in range(cuda.threadIdx.x, 256, cuda.blockDim.x):
        ki[k] = ki_g[k]
        wi[k] = wi_g[k]
    cuda.syncthreads()


@functools.cache
def input_writer(shuffle: bool) -> Any:
    """Return ``write_input(red, x, k0, k1, input_mode, given, n0, nb, ki, wi, fi)``.

    Parameters
    ----------
    shuffle : bool
        Which block reduction the sphere normalisation uses (see
        :func:`initsim.gpu.reduce.reducers`).

    Returns
    -------
    device function
        Writes ``n0 * nb`` values into ``x`` (the whole block cooperates;
        no barrier at the end): ``given`` copied, or Gaussian normals,
        each input column scaled to norm ``sqrt(n0)`` for the sphere mode.
    """
    sum1 = reducers(shuffle)[0]

    @cuda.jit(device=True)
    def write_input(red, x, k0, k1, input_mode, given, n0, nb, ki, wi, fi):
        tid = cuda.threadIdx.x
        bd = cuda.blockDim.x
        if input_mode == INPUT_GIVEN:
            for k in range(tid, n0 * nb, bd):
                x[k] = given[k]
            return
        for k in range(tid, n0 * nb, bd):
            x[k] = normal_at(k0, k1, P_INPUT, _ZERO, k, ki, wi, fi)
        if input_mode == INPUT_SPHERE:
            cuda.syncthreads()
            for j in range(nb):
                p = 0.0
                for i in range(tid, n0, bd):
                    p += x[i * nb + j] * x[i * nb + j]
                s = sum1(red, p)
                scale = math.sqrt(n0 / s) if s > 0.0 else 0.0
                for i in range(tid, n0, bd):
                    x[i * nb + j] *= scale

    return write_input
