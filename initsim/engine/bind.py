"""Bind a planned run to its CPU kernel: one place that knows each kernel's arguments.

:func:`bind_cpu` reads a :class:`initsim.plan.RunPlan` and returns a callable
``kernel(keys, (stats, first_nonfinite, hist_h, hist_a))`` with the same
interface for every sampler (the GPU twin is :func:`initsim.gpu.driver.make_kernel`):

- exact, Gaussian weights, one input: :func:`initsim.engine.exact.exact_single_input`;
- exact otherwise (B inputs, or orthogonal weights): :func:`initsim.engine.gram.gram_kernel`;
- dense, any law: :func:`initsim.engine.dense.dense_kernel`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from initsim.plan import RunPlan

__all__ = ["CpuKernel", "bind_cpu"]

#: ``kernel(keys, (stats, first_nonfinite, hist_h, hist_a))``.
CpuKernel = Callable[[np.ndarray, tuple[np.ndarray, ...]], None]


def bind_cpu(plan: RunPlan) -> tuple[CpuKernel, str, bool]:
    """Return the CPU kernel of a plan, its name, and whether it calls BLAS/LAPACK.

    Parameters
    ----------
    plan : initsim.plan.RunPlan
        The validated run.

    Returns
    -------
    kernel : callable
        ``kernel(keys, out)`` fills one chunk's ``out`` arrays.
    name : str
        The kernel's name, as recorded in the provenance.
    uses_blas : bool
        Whether the kernel calls BLAS/LAPACK (the caller then limits BLAS to
        one thread per Numba thread).
    """
    widths = plan.widths
    h_bins, a_bins, _ = plan.histogram_bins()
    act = plan.activation
    common = (plan.bias_std, act.kernel, plan.input_code, plan.given)
    tail = (plan.backward, plan.saturation_threshold, h_bins, a_bins)
    if plan.method == "exact" and plan.law == "gaussian" and plan.inputs == 1:
        from initsim.engine.exact import exact_single_input

        wstd = plan.scales

        def single(keys: np.ndarray, out: tuple[np.ndarray, ...]) -> None:
            exact_single_input(keys, widths, wstd, *common, *tail, *out)

        return single, "exact (single input)", False
    if plan.method == "exact":
        from initsim.engine import gram

        law = gram.LAW_ORTHOGONAL if plan.law == "orthogonal" else gram.LAW_GAUSSIAN
        scale = plan.scales

        def batch(keys: np.ndarray, out: tuple[np.ndarray, ...]) -> None:
            gram.gram_kernel(keys, widths, law, scale, *common, plan.inputs, *tail, *out)

        return batch, "exact (Gram)", True
    from initsim.engine.dense import dense_kernel

    codes, params = plan.law_table
    law_code = int(codes[0])

    def dense(keys: np.ndarray, out: tuple[np.ndarray, ...]) -> None:
        dense_kernel(keys, widths, law_code, params, *common, plan.inputs, *tail, *out)

    return dense, "dense", True
