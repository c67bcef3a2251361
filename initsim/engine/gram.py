"""Exact sampler for B inputs per net: Gram matrices instead of weight matrices.

Gaussian weights (``W_ij ~ N(0, s^2)``): for the layer input ``X``
(``n_in x B``) the rows of ``A = W X`` are iid ``N(0, s^2 G)`` with
``G = X^T X``. With ``G = R^T R`` (from ``eigh``, so rank-deficient Grams,
dead layers or ``B > n_in``, are fine) ``A = s Z R`` with ``Z``
(``n_out x B``) standard normal: ``O(n B^2 + B^3)`` per layer instead of
``O(n^2 B)``.

Haar-orthogonal weights (``W = g V``, PyTorch ``orthogonal_``): ``V X`` has
the law of ``Psi[:n_out] R_r`` where ``R_r`` keeps the ``r`` nonzero rows of
``R`` and ``Psi`` is a Haar ``r``-frame of ``R^m``, ``m = max(n_in, n_out)``
(the sign-corrected QR of an ``m x r`` Gaussian matrix).

Backward, for the same ``W`` (``D`` the gradient at ``A``, ``n_out x B``):
the part of ``W^T D`` inside ``S = col(X)`` is always ``X G^+ A^T D``. The
part in ``S^perp``:

- Gaussian: ``P_perp Y`` with ``Y`` rows iid ``N(0, s^2 D^T D)``;
- orthogonal with ``n_out >= n_in``: ``W`` maps ``S^perp`` into
  ``T^perp`` (``T = col(A)``) by a Haar isometry, so the part is
  ``g Phi_k K R_M``: ``R_M`` (``r_M x B``) factors the Gram of
  ``M = P_{T perp} D``, ``K`` is the top ``k = n_in - r`` rows of a Haar
  ``r_M``-frame of ``R^{n_out - r}`` and ``Phi_k`` a Haar ``k``-frame of
  ``S^perp``, independent of ``K``. When ``k > r_M`` the QR factorisation
  ``K = Q_K R_K`` (positive diagonal) shrinks it: ``Phi_k Q_K`` is again a
  Haar frame (of ``r_M`` columns) independent of ``R_K``, so the part is
  ``g Phi R_K R_M`` with ``Phi`` a Haar ``r_M``-frame of ``S^perp``;
  otherwise it is ``g Phi K R_M`` with ``Phi`` a Haar ``k``-frame. ``R_K`` is
  unique, so the draws do not depend on how LAPACK resolves equal singular
  values (an SVD of ``K``, whose singular values are all 1 for square
  layers, would).

Orthogonal backward with ``n_out < n_in`` is not implemented here: the
Python layer routes it to the dense sampler.

Substreams: ``(FORWARD, l)`` for ``Z`` or the forward frame,
``(BACKWARD, l)`` for the backward draws, as in :mod:`initsim.engine.exact`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from initsim._jit import jit
from initsim.activations import act_dphi
from initsim.engine.exact import make_input
from initsim.engine.layerstats import GRAD_SQ, close_layer, mean_square
from initsim.rng import P_BACKWARD, P_FORWARD, P_OUTPUT_DIRECTION, fill_normals

LAW_GAUSSIAN = 0
LAW_ORTHOGONAL = 1

#: Eigenvalues below this fraction of the largest count as zero (rank decisions).
RANK_RTOL = 1e-10

_ZERO = np.uint64(0)


@jit
def psd_factor(g):
    """Factor a PSD matrix ``G = R^T R`` keeping only its numerically nonzero part.

    Returns
    -------
    (R, pinv, rank)
        ``R`` (rank x B) with ``R^T R = G`` up to rounding, the
        pseudo-inverse ``G^+`` and the numerical rank. An input whose
        diagonal entry ``G_jj`` is exactly 0 gets exactly zero columns in
        ``R`` and ``G^+`` (it stays dead, as ``W 0 = 0``). A ``G`` with an
        infinite or NaN entry (an overflowed net) gives rank -1 and a
        ``B x B`` ``R`` and ``pinv`` full of NaN, which the callers
        propagate: every later value of that net is NaN.
    """
    b = g.shape[0]
    for i in range(b):
        for j in range(b):
            if not math.isfinite(g[i, j]):
                return np.full((b, b), np.nan), np.full((b, b), np.nan), -1
    lam, vec = np.linalg.eigh(g)
    canonical_signs(vec.T)
    # an input that is exactly 0 (a dead layer for it) lies in the kernel exactly:
    # eigh leaks ~1e-15 into its components, which would revive it downstream
    for j in range(b):
        if g[j, j] == 0.0:
            for i in range(b):
                vec[j, i] = 0.0
    top = 0.0
    for i in range(b):
        top = max(top, lam[i])
    tol = RANK_RTOL * top
    rank = 0
    for i in range(b):
        if lam[i] > tol and top > 0.0:
            rank += 1
    r = np.zeros((rank, b))
    pinv = np.zeros((b, b))
    row = 0
    for i in range(b):
        if lam[i] > tol and top > 0.0:
            sq = math.sqrt(lam[i])
            for j in range(b):
                r[row, j] = sq * vec[j, i]
            for j in range(b):
                for k in range(b):
                    pinv[j, k] += vec[j, i] * vec[k, i] / lam[i]
            row += 1
    return r, pinv, rank


@jit
def canonical_signs(rows):
    """Flip rows in place so each row's largest-magnitude entry is positive.

    Eigenvectors and singular vectors are defined up to sign; fixing it makes
    the sampler independent of the LAPACK build (and lets a numpy twin
    reproduce it).
    """
    for i in range(rows.shape[0]):
        best = 0.0
        for j in range(rows.shape[1]):
            if abs(rows[i, j]) > abs(best):
                best = rows[i, j]
        if best < 0.0:
            for j in range(rows.shape[1]):
                rows[i, j] = -rows[i, j]


@jit
def haar_frame(z):
    """Orthonormalise the columns of a Gaussian ``m x r`` matrix into a Haar frame."""
    q, rr = np.linalg.qr(z)
    out = np.ascontiguousarray(q)
    for j in range(out.shape[1]):
        if rr[j, j] < 0.0:
            for i in range(out.shape[0]):
                out[i, j] = -out[i, j]
    return out


@jit
def frame_core(kmat):
    """Return the ``p x r_M`` core of the orthogonal backward pass (module docstring).

    ``kmat`` (``k x r_M``) itself when ``k <= r_M``; otherwise the ``R`` of
    its QR factorisation with a positive diagonal (``r_M x r_M``), unique
    for a full-rank ``kmat``.
    """
    k, rm = kmat.shape
    if k <= rm:
        return kmat.copy()
    _, rr = np.linalg.qr(kmat)
    core = np.ascontiguousarray(rr[:rm])
    for i in range(rm):
        if core[i, i] < 0.0:
            for j in range(rm):
                core[i, j] = -core[i, j]
    return core


@jit
def normals_matrix(k0, k1, purpose, layer, start, rows, cols):
    """Return draws ``start .. start + rows * cols - 1`` of substream ``(purpose, layer)``.

    Row-major: entry ``(i, j)`` is draw ``start + i * cols + j``.
    """
    out = np.empty(rows * cols)
    fill_normals(k0, k1, purpose, np.uint64(layer), start, out)
    return out.reshape((rows, cols))


@jit(parallel=True)
def gram_kernel(
    keys,
    widths,
    law,
    scale,
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
    """Propagate ``n_inputs`` inputs per net with the exact Gram sampler.

    Parameters
    ----------
    keys : uint64 array (nets, 2)
        Per-net keys.
    widths : int64 array (depth + 1,)
        Layer widths.
    law : int
        LAW_GAUSSIAN or LAW_ORTHOGONAL.
    scale : float64 array (depth,)
        Gaussian: entry standard deviation ``s``; orthogonal: the gain.
    bias_std, act, input_mode, given, n_inputs, backward, sat_threshold,
    hedges, aedges, stats, first_nonfinite, hist_h, hist_a
        As in :func:`initsim.engine.dense.dense_kernel`.
    """
    nets = keys.shape[0]
    depth = widths.shape[0] - 1
    b = n_inputs
    nmax = 0
    for t in range(depth + 1):
        nmax = max(nmax, widths[t])
    for net in numba.prange(nets):
        k0 = keys[net, 0]
        k1 = keys[net, 1]
        nkeep = depth + 1 if backward else 2
        xs = np.empty((nkeep, nmax * b))
        hs = np.empty((depth if backward else 1, nmax * b))
        avs = np.empty((depth if backward else 1, nmax * b))
        bz = np.empty(nmax)
        # the backward pass reuses each layer's G^+ and rank instead of refactoring G
        pinvs = np.empty((depth if backward else 1, b, b))
        ranks = np.empty(depth, dtype=np.int64)
        make_input(k0, k1, input_mode, given, widths[0], b, xs[0])
        first_nonfinite[net] = 0
        for t in range(depth):
            nin = widths[t]
            nout = widths[t + 1]
            cur = t if backward else t % 2
            nxt = t + 1 if backward else (t + 1) % 2
            slot = t if backward else 0
            x = np.ascontiguousarray(xs[cur][: nin * b].reshape((nin, b)))
            r, g_pinv, rank = psd_factor(np.dot(x.T, x))
            ranks[t] = rank
            if backward:
                pinvs[t] = g_pinv
            a = np.zeros((nout, b))
            if rank < 0:
                a[:, :] = np.nan
            elif rank > 0 and law == LAW_GAUSSIAN:
                z = normals_matrix(k0, k1, P_FORWARD, t, 0, nout, rank)
                a = scale[t] * np.dot(z, r)
            elif rank > 0:
                m = max(nin, nout)
                psi = haar_frame(normals_matrix(k0, k1, P_FORWARD, t, 0, m, rank))
                a = scale[t] * np.dot(np.ascontiguousarray(psi[:nout]), r)
            h = hs[slot]
            av = avs[slot]
            for i in range(nout):
                for j in range(b):
                    av[i * b + j] = a[i, j]
                    h[i * b + j] = a[i, j]
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
            _batch_backward(
                k0, k1, widths, law, scale, act, b, xs, hs, avs, pinvs, ranks, stats[net]
            )


@jit
def conditioned_transpose(law, scale, k0, k1, t, x, a, d, g_pinv, rank):
    """Draw ``W^T D`` for layer ``t`` given its forward draw ``W X = A`` (module docstring).

    Parameters
    ----------
    law : int
        LAW_GAUSSIAN (``scale`` the entry std) or LAW_ORTHOGONAL (``scale``
        the gain; needs ``n_out >= n_in``).
    scale : float
        See ``law``.
    k0, k1 : uint64
        The net's key words.
    t : int
        The layer (substream ``(BACKWARD, t)``).
    x, a, d : float64 arrays (n_in, B), (n_out, B), (n_out, B), C-contiguous
        The layer input, its forward draw and the gradient at ``A``.
    g_pinv : float64 array (B, B)
        ``G^+`` of ``G = X^T X``.
    rank : int
        The numerical rank of ``G``.

    Returns
    -------
    float64 array (n_in, B)
        ``W^T D``: ``X G^+ A^T D`` plus its conditional part in ``col(X)^perp``.
    """
    nin = x.shape[0]
    nout = a.shape[0]
    # the part inside col(X), the same for every law
    g = np.dot(x, np.dot(g_pinv, np.dot(a.T, d)))
    if law == LAW_GAUSSIAN:
        r_d, _, rank_d = psd_factor(np.dot(d.T, d))
        if rank_d < 0:
            g[:, :] = np.nan
        elif rank_d > 0:
            zb = normals_matrix(k0, k1, P_BACKWARD, t, 0, nin, rank_d)
            y = scale * np.dot(zb, r_d)
            g += y - np.dot(x, np.dot(g_pinv, np.dot(x.T, y)))
    else:
        _, a_pinv, _ = psd_factor(np.dot(a.T, a))
        mres = d - np.dot(a, np.dot(a_pinv, np.dot(a.T, d)))
        r_m, _, rank_m = psd_factor(np.dot(mres.T, mres))
        if rank_m < 0:
            g[:, :] = np.nan
        kdim = nin - rank
        m2 = nout - rank
        p = min(kdim, rank_m)
        if p > 0:
            psi2 = haar_frame(normals_matrix(k0, k1, P_BACKWARD, t, 0, m2, rank_m))
            core = frame_core(np.ascontiguousarray(psi2[:kdim]))
            yg = normals_matrix(k0, k1, P_BACKWARD, t, m2 * rank_m, nin, p)
            yg = yg - np.dot(x, np.dot(g_pinv, np.dot(x.T, yg)))
            phi = haar_frame(yg)
            g += scale * np.dot(phi, np.dot(core, r_m))
    return g


@jit
def _batch_backward(k0, k1, widths, law, scale, act, b, xs, hs, avs, pinvs, ranks, stats_net):
    """Exact backward pass for B inputs (see the module docstring)."""
    depth = widths.shape[0] - 1
    nl = widths[depth]
    u = np.empty(nl * b)
    fill_normals(k0, k1, P_OUTPUT_DIRECTION, _ZERO, 0, u)
    d = np.empty((nl, b))
    for i in range(nl):
        for j in range(b):
            d[i, j] = u[i * b + j] * act_dphi(act, hs[depth - 1, i * b + j])
    stats_net[depth - 1, GRAD_SQ] = mean_square(d.ravel(), nl * b)
    for t in range(depth - 1, 0, -1):
        nin = widths[t]
        nout = widths[t + 1]
        x = np.ascontiguousarray(xs[t][: nin * b].reshape((nin, b)))
        a = np.ascontiguousarray(avs[t][: nout * b].reshape((nout, b)))
        g = conditioned_transpose(law, scale[t], k0, k1, t, x, a, d, pinvs[t], ranks[t])
        for i in range(nin):
            for j in range(b):
                g[i, j] *= act_dphi(act, hs[t - 1, i * b + j])
        d = np.ascontiguousarray(g)
        stats_net[t - 1, GRAD_SQ] = mean_square(np.ascontiguousarray(d).ravel(), nin * b)
