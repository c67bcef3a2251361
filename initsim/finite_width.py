"""Finite-width corrections to the mean-field ``q`` recursion (delta method).

At finite width the per-net ``q^l`` fluctuates, and for a nonlinear ``phi``
the mean of the next layer is not the mean-field map of the mean. Let
``s_l`` be the conditional variance of one pre-activation of layer ``l``
given the previous layer (so ``E[q^l] = E[s_l]``). With Gaussian weights and
biases,

- ``s_1 = sigma_w2 q0 + sigma_b2``;
- given ``s_l``, the ``n_l`` pre-activations are iid ``N(0, s_l)``, so
  ``Y_l = mean_i phi(h_i)^2`` has mean ``G(s_l)`` and variance
  ``(G4(s_l) - G(s_l)^2) / n_l`` with ``G(s) = E[phi(sqrt(s) z)^2]`` and
  ``G4(s) = E[phi(sqrt(s) z)^4]``;
- ``s_{l+1} = sigma_w2 Y_l + sigma_b2`` and
  ``q^l | s_l ~ s_l chi^2_{n_l} / n_l``.

Propagating the mean ``mu`` and variance ``nu`` of ``s`` to second order
(``E f(s) ~ f(mu) + f''(mu) nu / 2``, ``Var f(s) ~ f'(mu)^2 nu``) gives
``E[q^l]`` and ``Var(q^l)`` with errors ``O(1/n^2)``. For ReLU and linear
``phi`` (``G`` linear, ``G4`` quadratic) the recursion is exact, and
reproduces Hanin and Rolnick's ``E[M^2] = prod (1 + 5/n_l)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["q_moments"]


def _derivatives(f: Callable[[float], float], x: float) -> tuple[float, float, float]:
    """f, f' and f'' at ``x > 0`` by central differences with a relative step."""
    h = 1e-3 * x
    fm, f0, fp = f(x - h), f(x), f(x + h)
    return f0, (fp - fm) / (2 * h), (fp - 2 * f0 + fm) / (h * h)


def q_moments(
    activation: object,
    sigma_w2: float | Sequence[float],
    sigma_b2: float,
    q0: float,
    widths: Sequence[int],
    q0_var: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and variance of ``q^l`` at finite width, and the mean-field means.

    Parameters
    ----------
    activation : str or Activation
        The activation.
    sigma_w2 : float or sequence of float
        ``n_in Var(W_ij)``, one value or one per layer.
    sigma_b2 : float
        ``Var(b_i)``.
    q0 : float
        Mean of ``||x||^2 / n_0``.
    widths : sequence of int
        ``n_0, n_1, ..., n_L``.
    q0_var : float
        Variance of ``||x||^2 / n_0`` across nets (0 for a fixed-norm input,
        ``2 / n_0`` for an iid standard Gaussian input).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        ``E[q^l]``, ``Var(q^l)`` (both with the finite-width corrections) and
        the mean-field ``q^l``, for ``l = 1..L``.
    """
    from initsim import theory

    n = np.asarray(widths, dtype=float)[1:]
    depth = len(n)
    sw = np.broadcast_to(np.asarray(sigma_w2, dtype=float), (depth,))

    def g2(s: float) -> float:
        return float(theory.gaussian_expectation(activation, s, "phi2"))

    def g4(s: float) -> float:
        return float(theory.gaussian_expectation(activation, s, "phi4"))

    mean = np.empty(depth)
    var = np.empty(depth)
    mf = np.empty(depth)
    mu = sw[0] * q0 + sigma_b2
    nu = sw[0] ** 2 * q0_var
    m_mf = mu
    for t in range(depth):
        mean[t] = mu
        var[t] = nu + 2.0 * (mu * mu + nu) / n[t]
        mf[t] = m_mf
        if t + 1 == depth:
            break
        if mu <= 0.0 or not np.isfinite(mu):
            mean[t + 1 :] = var[t + 1 :] = mf[t + 1 :] = np.nan if mu != 0.0 else 0.0
            break
        g, dg, d2g = _derivatives(g2, mu)
        w, _, d2w = _derivatives(lambda s: g4(s) - g2(s) ** 2, mu)
        ey = g + 0.5 * d2g * nu
        vy = dg * dg * nu + (w + 0.5 * d2w * nu) / n[t]
        mu = sw[t + 1] * ey + sigma_b2
        nu = sw[t + 1] ** 2 * max(vy, 0.0)
        m_mf = sw[t + 1] * g2(m_mf) + sigma_b2
    return mean, var, mf
