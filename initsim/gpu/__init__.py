"""GPU backend (numba-cuda): the exact and the dense samplers on one NVIDIA GPU.

Nothing here is imported by ``import initsim``: :func:`initsim.simulate`
imports :mod:`initsim.gpu.driver` only when ``device="cuda"`` is asked for,
and only then is ``numba.cuda`` imported. Install the ``cuda`` extra
(``pip install initsim[cuda]``) on a machine with an NVIDIA GPU and driver.

Modules
-------
streams
    Device Philox4x32-10 and the ziggurat normal of :mod:`initsim.rng`: the
    same draw for the same ``(net key, purpose, layer, index)`` as the CPU.
reduce
    Block-level reductions and the per-layer statistics shared by the kernels.
inputs
    What every kernel starts a block with: the ziggurat tables in shared
    memory and the net's inputs.
exact_kernels
    The exact Gaussian-conditioning sampler, one input per net, forward and
    exact conditional backward; one thread block per net.
gram_kernels
    The exact sampler for ``B`` inputs per net and for orthogonal weights
    (Gram matrices, an in-kernel Jacobi eigensolver, Haar frames by Cholesky
    QR), forward and exact conditional backward.
weight_fill
    Truncated-Gaussian, sparse and orthogonal matrices for the dense
    sampler, materialised one thread per matrix.
dense_kernels
    The dense sampler: weights regenerated from their counters inside the
    matrix-vector products, never stored.
driver
    Host side: availability check, tables, launches, chunking.
"""

from __future__ import annotations

import numpy as _np

__all__ = ["CUDA_HELP", "EXACT_MAX_INPUTS"]

# numba-cuda 0.30 registers an overload of np.row_stack when it first compiles a
# kernel; numpy 2.5 removed row_stack (an alias of vstack), so that import fails.
# Restore the alias, for numba-cuda's sake only, before any kernel compiles.
if "row_stack" not in vars(_np):
    _np.row_stack = _np.vstack  # noqa: NPY201 - the alias numba-cuda needs

#: Largest number of inputs per net the GPU exact (Gram) kernel compiles for: its
#: ``B x B`` work arrays are per-thread local memory (about ``10 B^2`` floats).
EXACT_MAX_INPUTS = 16

#: The message of every "no GPU" error.
CUDA_HELP = (
    "device='cuda' needs numba-cuda and an NVIDIA GPU with a working driver; install "
    "initsim[cuda] (pip install 'initsim[cuda]') on such a machine, or use device='cpu'"
)
