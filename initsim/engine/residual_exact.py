"""Exact (conditioned) sampling of one residual-branch layer, forward and backward.

The residual kernel (:mod:`initsim.engine.residual`) calls these in place of
materialising a branch matrix when its sampler is ``SAMPLER_EXACT``. Every
branch matrix ``W`` (``n_out x n_in``) enters the forward pass once, as
``A = W X`` for its layer input ``X`` (``n_in x B``), so the results of
:mod:`initsim.engine.exact` and :mod:`initsim.engine.gram` carry over matrix
by matrix:

- forward, zero-mean Gaussian entries ``N(0, s^2)``: one input,
  ``A = s ||x|| z`` (``z`` standard normal, ``n_out`` draws); ``B`` inputs,
  ``A = s Z R`` with ``R^T R = X^T X`` (:func:`initsim.engine.gram.psd_factor`);
- forward, Haar-orthogonal ``W = g V``: ``A = g Psi[:n_out] R``, ``Psi`` a
  Haar frame of ``R^max(n_in, n_out)``;
- forward, the zero matrix (a ``constant`` law of value 0, Fixup's and
  SkipInit's last layer): ``A = 0``, no draws;
- backward, for the *same* ``W``: the gradient ``D`` at ``A`` depends on ``W``
  only through ``A`` (everything downstream of the branch sees ``W`` through
  ``A`` alone), so conditioned on the forward pass
  ``W^T D = X G^+ A^T D + (the part in col(X)^perp)``, the second term drawn
  from its conditional law as in :mod:`initsim.engine.gram` (Gaussian:
  ``P_perp Y``, ``Y`` rows iid ``N(0, s^2 D^T D)``; orthogonal, for
  ``n_out >= n_in``: the Haar isometry of ``col(X)^perp``). With one input
  this is :mod:`initsim.engine.exact`'s ``x (a . d) / ||x||^2 + s ||d|| P z``.
  The zero matrix gives ``W^T D = 0``.

Substreams, as for the MLP's exact samplers: matrix ``t`` draws its forward
normals from ``(FORWARD, t)`` and its backward ones from ``(BACKWARD, t)``;
biases stay on ``(BIAS, t)``. Buffers are unit-major ``(units, B)``.
"""

from __future__ import annotations

import math

import numpy as np

from initsim._jit import jit
from initsim.engine.gram import (
    LAW_GAUSSIAN,
    LAW_ORTHOGONAL,
    conditioned_transpose,
    haar_frame,
    normals_matrix,
    psd_factor,
)
from initsim.engine.laws import CONSTANT, GAUSSIAN, P_GAIN, P_SCALE
from initsim.rng import P_BACKWARD, P_FORWARD, fill_normals

__all__ = ["exact_layer", "exact_layer_t"]


@jit
def exact_layer(code_t, params_t, k0, k1, t, nout, nin, b, x, out, pinv):
    """Draw ``out = W_t x`` (before the bias) from its law given ``x``.

    Parameters
    ----------
    code_t, params_t : int, float64 array
        Matrix ``t``'s law (GAUSSIAN with loc 0, ORTHOGONAL, or CONSTANT 0;
        the Python layer refuses the others).
    k0, k1 : uint64
        The net's key words.
    t : int
        The matrix index (the substreams' counter word).
    nout, nin, b : int
        Shape of ``W_t`` and inputs per net.
    x : 1-D float64 array
        The layer input, ``nin * b`` values, unit-major.
    out : 1-D float64 array
        Receives ``A``, ``nout * b`` values.
    pinv : float64 array (b, b)
        Receives ``G^+`` of ``G = X^T X`` (for the backward pass) when
        ``b > 1`` or the law is orthogonal; untouched otherwise.

    Returns
    -------
    int
        The numerical rank of ``G`` (``-1`` for a non-finite ``X``; with one
        Gaussian input 1, or 0 for a zero input).
    """
    if code_t == CONSTANT:
        out[: nout * b] = 0.0
        return 0
    if code_t == GAUSSIAN and b == 1:
        x2 = 0.0
        for i in range(nin):
            x2 += x[i] * x[i]
        c = params_t[P_SCALE] * math.sqrt(x2)
        fill_normals(k0, k1, P_FORWARD, np.uint64(t), 0, out[:nout])
        for i in range(nout):
            out[i] = c * out[i]
        return 1 if x2 > 0.0 else 0
    xm = np.ascontiguousarray(x[: nin * b].reshape((nin, b)))
    r, g_pinv, rank = psd_factor(np.dot(xm.T, xm))
    pinv[:, :] = g_pinv
    a = out[: nout * b].reshape((nout, b))
    if rank < 0:
        a[:, :] = np.nan
    elif rank == 0:
        a[:, :] = 0.0
    elif code_t == GAUSSIAN:
        z = normals_matrix(k0, k1, P_FORWARD, t, 0, nout, rank)
        a[:, :] = params_t[P_SCALE] * np.dot(z, r)
    else:
        psi = haar_frame(normals_matrix(k0, k1, P_FORWARD, t, 0, max(nin, nout), rank))
        a[:, :] = params_t[P_GAIN] * np.dot(np.ascontiguousarray(psi[:nout]), r)
    return rank


@jit
def exact_layer_t(code_t, params_t, k0, k1, t, nout, nin, b, x, a, pinv, rank, d, out):
    """Draw ``out = W_t^T d`` conditioned on the forward pass ``W_t x = a``.

    Parameters
    ----------
    code_t, params_t, k0, k1, t, nout, nin, b
        As for :func:`exact_layer`.
    x, a : 1-D float64 arrays
        The layer input (``nin * b``) and what :func:`exact_layer` drew
        (``nout * b``), unit-major.
    pinv : float64 array (b, b)
        ``G^+`` written by :func:`exact_layer` (unused for one Gaussian input).
    rank : int
        What :func:`exact_layer` returned.
    d : 1-D float64 array
        The gradient with respect to ``a`` (``nout * b``).
    out : 1-D float64 array
        Receives the gradient with respect to ``x`` (``nin * b``); may not
        alias ``d``.
    """
    if code_t == CONSTANT:
        out[: nin * b] = 0.0
        return
    if code_t == GAUSSIAN and b == 1:
        dd = 0.0
        ad = 0.0
        for i in range(nout):
            dd += d[i] * d[i]
            ad += a[i] * d[i]
        fill_normals(k0, k1, P_BACKWARD, np.uint64(t), 0, out[:nin])
        sz = params_t[P_SCALE] * math.sqrt(dd)
        if rank == 0:
            for i in range(nin):
                out[i] = sz * out[i]
            return
        x2 = 0.0
        xz = 0.0
        for i in range(nin):
            x2 += x[i] * x[i]
            xz += x[i] * out[i]
        proj = xz / x2
        coef = ad / x2
        for i in range(nin):
            out[i] = x[i] * coef + sz * (out[i] - x[i] * proj)
        return
    xm = np.ascontiguousarray(x[: nin * b].reshape((nin, b)))
    am = np.ascontiguousarray(a[: nout * b].reshape((nout, b)))
    dm = np.ascontiguousarray(d[: nout * b].reshape((nout, b)))
    law, scale = (LAW_GAUSSIAN, params_t[P_SCALE]) if code_t == GAUSSIAN else (
        LAW_ORTHOGONAL, params_t[P_GAIN])  # fmt: skip
    g = conditioned_transpose(law, scale, k0, k1, t, xm, am, dm, pinv, rank)
    if rank < 0:
        g[:, :] = np.nan
    out[: nin * b] = g.ravel()
