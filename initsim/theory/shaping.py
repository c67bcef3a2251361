"""Activation shaping for deep vanilla networks: DKS and TAT.

Deep Kernel Shaping (DKS; Martens et al. 2021) and Tailored Activation
Transformation (TAT; Zhang, Botev and Martens 2022) replace the activation
``phi`` of a deep network without skip connections or normalisation layers by
a transformed one,

    ``phi_hat(x) = output_scale * (phi(input_scale * x + input_shift) + output_shift)``,

whose parameters are chosen so that the network's kernel (its Q and C maps)
stays well behaved however deep the network is.

Model
-----
A vanilla chain of ``depth`` dense layers ``x -> phi_hat(W x)``, no bias, with
``Var(W_ij) = 1 / n_in`` (``sigma_w2 = 1``, ``sigma_b2 = 0`` in the
conventions of :mod:`initsim.theory`: this is the DKS convention, in which all
the scaling lives in ``phi_hat``), applied to inputs normalised to ``q = 1``
(``||x||^2 / n_0 = 1``, as DKS assumes). In the infinite-width limit each
layer acts on the second moment ``q`` and on the correlation ``c`` of two
inputs through the *local* maps

* ``Q(q) = E[phi_hat(sqrt(q) z)^2]`` (the length map; ``z ~ N(0, 1)``);
* ``C(c) = E[phi_hat(u) phi_hat(v)]`` with ``(u, v)`` centred bivariate normal,
  unit variances and correlation ``c`` (the correlation map at ``q = 1``; it
  is a map of correlations because ``Q(1) = 1``).

The network maps are the ``depth``-fold compositions ``Q_net = Q o ... o Q``
and ``C_net = C o ... o C``. Derivatives at the fixed point follow from the
chain rule: with ``Q(1) = 1`` and ``C(1) = Q(1) = 1``,
``Q_net'(1) = Q'(1)^depth``, ``C_net'(1) = C'(1)^depth`` and, when
``C'(1) = 1``, ``C_net''(1) = depth * C''(1)``.

The derivatives of the local maps are Gaussian expectations (Price's theorem
``dC/dc = E[phi_hat'(u) phi_hat'(v)]`` and Stein's lemma):

* ``Q'(1) = d/dq E[phi_hat(sqrt(q) z)^2] at q = 1 = E[z phi_hat(z) phi_hat'(z)]``
  (``= E[phi_hat'^2 + phi_hat phi_hat'']`` for smooth ``phi_hat``; the first
  form needs no second derivative and is exact at kinks);
* ``C(0) = E[phi_hat(z)]^2``, ``C'(1) = E[phi_hat'(z)^2]`` and
  ``C''(1) = E[phi_hat''(z)^2]``.

Methods
-------
* :func:`dks`: ``Q(1) = 1``, ``Q'(1) = 1``, ``C(0) = 0`` and
  ``C_net'(1) = zeta``, i.e. ``C'(1) = zeta^(1 / depth)``.
* :func:`tat` with a rectifier: ``phi_hat = sqrt(2 / (1 + alpha^2))
  leaky_relu(x; alpha)`` with ``C_net(0) = eta``; with a smooth activation:
  ``Q(1) = 1``, ``Q'(1) = 1``, ``C'(1) = 1`` and ``C_net''(1) = tau``.
* :func:`trainable_depth`: ``6 xi_c`` for an ordinary (untransformed)
  network with bias (Schoenholz et al. 2017).

Numerical methods and accuracy
------------------------------
One-dimensional Gaussian expectations of ``phi(a z + b)`` are a composite
Gauss-Legendre rule (20 nodes per panel) on ``-12 <= z <= 12`` whose panels are
at most 0.5 wide and break at the kinks of ``phi`` and at the points where
``a z + b`` crosses the scales on which the activations change (``0, +-0.25,
..., +-32``), so that piecewise smooth and fast-saturating integrands are
integrated to about ``1e-15`` (tests compare with 30-digit :mod:`mpmath`
quadrature). The mass beyond ``|z| = 12`` is below ``1e-32``. The bivariate
expectation behind :meth:`Shaping.local_c_map` uses a composite rule of the
same kind (12 nodes per panel) in the rotated coordinates
``u, v = A z_1 +- B z_2`` (``A = sqrt((1 + c) / 2)``,
``B = sqrt((1 - c) / 2)``) on ``|z_i| <= 10``, with the inner panels of each
row breaking where ``u`` or ``v`` crosses a kink or scale, the outer ones also
at ``B / A`` multiples around the kinks (where the inner integral varies on that
scale), and for
``c >= 0`` computes ``1 - C(c)`` from the gap ``E[(phi_hat(u) -
phi_hat(v))^2] / 2``: absolute accuracy about ``1e-13``. Leaky-ReLU C maps are
in closed form. The parameters are found with :func:`scipy.optimize.root`
(Powell's hybrid method) from a fixed list of starting points (then seeded
random ones), or with :func:`scipy.optimize.brentq` where one unknown remains;
the conditions are met to about ``1e-13`` (each result reports its own
residuals, see :meth:`Shaping.condition_errors`).

References
----------
J. Martens, A. Ballard, G. Desjardins, G. Swirszcz, V. Dalibard, J.
Sohl-Dickstein and S. S. Schoenholz, Rapid training of deep neural networks
without skip connections or normalization layers using Deep Kernel Shaping,
arXiv:2110.01765, 2021.

G. Zhang, A. Botev and J. Martens, Deep learning without shortcuts: shaping
the kernel with tailored rectifiers, ICLR 2022.

S. S. Schoenholz, J. Gilmer, S. Ganguli and J. Sohl-Dickstein, Deep
information propagation, ICLR 2017.

Y. Cho and L. K. Saul, Kernel methods for deep learning, NeurIPS 2009.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize

from initsim import activations
from initsim._validate import check_int
from initsim.activations import Activation
from initsim.theory._checks import as_real
from initsim.theory.meanfield import depth_scales

__all__ = ["Shaping", "dks", "tat", "trainable_depth"]

FloatArray = npt.NDArray[np.float64]

# ----------------------------------------------------------------------------------
# Gaussian quadrature of phi(a z + b)
# ----------------------------------------------------------------------------------

_GL_X, _GL_W = np.polynomial.legendre.leggauss(20)
_GL2_X, _GL2_W = np.polynomial.legendre.leggauss(12)  # two dimensions
_Z_MAX = 12.0  # P(|z| > 12) ~ 4e-33
_Z2_MAX = 10.0  # two dimensions: exp(-50) ~ 2e-22 beyond radius 10
_PANEL = 0.5
_X_SCALES = np.array([0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0])
_X_FEATURES = np.concatenate([[0.0], _X_SCALES, -_X_SCALES])
_INV_SQRT_2PI = 0.39894228040143267793994825337358
_KINK_OFFSETS = np.array([-8.0, -4.0, -2.0, -1.0, -0.5, -0.25, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0])


def _panels_to_nodes(
    edges: FloatArray, gx: FloatArray = _GL_X, gw: FloatArray = _GL_W
) -> tuple[FloatArray, FloatArray]:
    """Gauss-Legendre nodes and weights (rule ``gx, gw``) on the panels between sorted ``edges``."""
    left = edges[:-1, None]
    width = np.diff(edges)[:, None]
    nodes = left + 0.5 * (gx + 1.0) * width
    weights = 0.5 * gw * width
    return nodes.ravel(), weights.ravel()


@functools.lru_cache(maxsize=4096)
def _nodes(scale: float, shift: float, kinks: tuple[float, ...]) -> tuple[FloatArray, FloatArray]:
    """Return nodes ``z``, weights ``w``: ``sum w g(z) ~ E[g(z)]`` for ``g = f(scale z + shift)``.

    The panels break at the kinks of ``f`` and at the scales of ``_X_FEATURES``
    (mapped to ``z``), and are at most ``_PANEL`` wide.
    """
    grid = np.arange(-_Z_MAX, _Z_MAX + 0.5 * _PANEL, _PANEL)
    pts = [grid]
    if scale != 0.0:
        feats = np.concatenate([_X_FEATURES, np.asarray(kinks, dtype=np.float64)])
        pts.append((feats - shift) / scale)
    edges = np.unique(np.clip(np.concatenate(pts), -_Z_MAX, _Z_MAX))
    z, w = _panels_to_nodes(edges)
    return z, w * np.exp(-0.5 * z * z) * _INV_SQRT_2PI


# ----------------------------------------------------------------------------------
# Second derivatives (for C''(1), used by TAT on smooth activations)
# ----------------------------------------------------------------------------------


def _sigmoid_prime(x: FloatArray) -> FloatArray:
    e = np.exp(-np.abs(x))
    return e / ((1.0 + e) * (1.0 + e))


def _d2_tanh(act: Activation, x: FloatArray) -> FloatArray:
    return -2.0 * np.tanh(x) * np.asarray(act.dphi(x))


def _d2_sigmoid(act: Activation, x: FloatArray) -> FloatArray:
    return -_sigmoid_prime(x) * np.tanh(0.5 * x)  # s'' = s' (1 - 2 s), 1 - 2 s = -tanh(x / 2)


def _d2_softplus(act: Activation, x: FloatArray) -> FloatArray:
    return _sigmoid_prime(x)


def _d2_gelu(act: Activation, x: FloatArray) -> FloatArray:
    xc = np.clip(x, -40.0, 40.0)
    return _INV_SQRT_2PI * np.exp(-0.5 * xc * xc) * (2.0 - xc * xc)


def _d2_silu(act: Activation, x: FloatArray) -> FloatArray:
    xc = np.clip(x, -750.0, 750.0)
    return _sigmoid_prime(xc) * (2.0 - xc * np.tanh(0.5 * xc))


def _d2_erf(act: Activation, x: FloatArray) -> FloatArray:
    xc = np.clip(x, -40.0, 40.0)
    return (-4.0 / math.sqrt(math.pi)) * xc * np.exp(-xc * xc)


def _d2_elu(act: Activation, x: FloatArray) -> FloatArray:
    return np.where(x < 0.0, act.param * np.exp(np.minimum(x, 0.0)), 0.0)


def _d2_linear(act: Activation, x: FloatArray) -> FloatArray:
    return np.zeros_like(x)


_D2PHI: dict[str, Callable[[Activation, FloatArray], FloatArray]] = {
    "tanh": _d2_tanh,
    "sigmoid": _d2_sigmoid,
    "softplus": _d2_softplus,
    "gelu": _d2_gelu,
    "silu": _d2_silu,
    "erf": _d2_erf,
    "elu": _d2_elu,
    "linear": _d2_linear,
}


def _has_d2(act: Activation) -> bool:
    """``phi''`` is available and ``phi'`` is continuous (so ``C''(1)`` is finite)."""
    return act.name in _D2PHI and not act.kinks


# ----------------------------------------------------------------------------------
# Leaky-ReLU C map (closed form)
# ----------------------------------------------------------------------------------


def _leaky_c_map(c: float, slope: float) -> float:
    """Local C map of ``sqrt(2 / (1 + a^2)) leaky_relu(x; a)`` at unit variance.

    ``C(c) = c + (1 - a)^2 / (pi (1 + a^2)) (sqrt(1 - c^2) - c arccos c)``
    (the arc-cosine kernel of Cho and Saul 2009; ``leaky = a x + (1 - a) relu``).
    With ``theta = arccos c`` the bracket is ``sin(theta) - theta cos(theta)``,
    evaluated by its series for small ``theta`` (no cancellation as ``c -> 1``).
    """
    c = min(1.0, max(-1.0, c))
    k = (1.0 - slope) ** 2 / (math.pi * (1.0 + slope * slope))
    theta = math.acos(c)
    if theta < 1e-2:
        t2 = theta * theta
        bracket = theta * t2 * (1.0 / 3.0 - t2 * (1.0 / 30.0 - t2 * (1.0 / 840.0 - t2 / 45360.0)))
    else:
        bracket = math.sin(theta) - theta * c
    return min(1.0, c + k * bracket)


# ----------------------------------------------------------------------------------
# The result
# ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shaping:
    """A transformed activation ``phi_hat`` for a deep vanilla network, and its kernel maps.

    ``phi_hat(x) = output_scale * (phi(input_scale * x + input_shift) + output_shift)``
    with ``phi = base``, for a chain of ``depth`` layers
    ``x -> phi_hat(W x)``, ``Var(W_ij) = 1 / n_in``, no bias, inputs with
    ``q = 1`` (see :mod:`initsim.theory.shaping`). Build instances with
    :func:`dks` or :func:`tat`.

    Attributes
    ----------
    base : Activation
        The base activation ``phi`` (for leaky-ReLU results: with the solved
        negative slope).
    input_scale, input_shift, output_scale, output_shift : float
        The transformation's parameters.
    method : str
        ``"dks"`` or ``"tat"``.
    depth : int
        The number of layers the shaping is for.
    zeta : float or None
        DKS's target ``C_net'(1)`` (None for TAT).
    eta : float or None
        TAT's target ``C_net(0)`` for leaky ReLU (None otherwise).
    tau : float or None
        TAT's target ``C_net''(1)`` for smooth activations (None otherwise).
    targets : tuple of (str, float)
        The imposed conditions and their target values, e.g.
        ``(("Q(1)", 1.0), ("Q'(1)", 1.0), ...)``.
    achieved : tuple of (str, float)
        The same conditions' achieved values, computed with the module's
        quadrature from the final parameters.
    """

    base: Activation
    input_scale: float
    input_shift: float
    output_scale: float
    output_shift: float
    method: str
    depth: int
    zeta: float | None = None
    eta: float | None = None
    tau: float | None = None
    targets: tuple[tuple[str, float], ...] = ()
    achieved: tuple[tuple[str, float], ...] = ()

    # --- the function ---------------------------------------------------------------

    @property
    def activation(self) -> Activation:
        """``phi_hat`` as an activation (:func:`initsim.activations.shaped`), to simulate.

        Named after the method, base, depth and target, e.g.
        ``"tat(leaky_relu(slope=0.27), depth=100, eta=0.9)"``; usable wherever
        an activation is (``initsim.simulate(..., activation=s.activation)``).
        """
        from initsim.activations import shaped

        target = ", ".join(
            f"{k}={v:g}"
            for k, v in (("zeta", self.zeta), ("eta", self.eta), ("tau", self.tau))
            if v is not None
        )
        return shaped(
            self.base,
            input_scale=self.input_scale,
            input_shift=self.input_shift,
            output_scale=self.output_scale,
            output_shift=self.output_shift,
            name=f"{self.method}({self.base.label}, depth={self.depth}, {target})",
        )

    def phi(self, x: npt.ArrayLike) -> FloatArray | float:
        """Evaluate ``phi_hat`` (numpy, vectorised).

        Parameters
        ----------
        x : array_like
            Pre-activations.

        Returns
        -------
        numpy.ndarray or float
            ``phi_hat(x)``, shaped like ``x`` (a float for scalar input).
        """
        return self.activation.phi(x)

    def dphi(self, x: npt.ArrayLike) -> FloatArray | float:
        """Evaluate ``phi_hat'(x) = output_scale input_scale phi'(input_scale x + input_shift)``.

        Parameters
        ----------
        x : array_like
            Pre-activations.

        Returns
        -------
        numpy.ndarray or float
            ``phi_hat'(x)`` (the base activation's conventions at kinks).
        """
        return self.activation.dphi(x)

    # --- kernel maps ----------------------------------------------------------------

    def _moments(self, q: float) -> dict[str, float]:
        return _moments(
            self.base,
            self.input_scale * math.sqrt(q),
            self.input_shift,
            self.output_shift,
            self.output_scale,
        )

    def local_q_map(self, q: float) -> float:
        """Local length map ``Q(q) = E[phi_hat(sqrt(q) z)^2]``.

        Parameters
        ----------
        q : float
            Input second moment, ``>= 0``.

        Returns
        -------
        float
            ``Q(q)``.

        Raises
        ------
        ValueError
            If ``q`` is negative or not finite.
        """
        q = _check_q(q)
        return self._moments(q)["m2"]

    def q_map(self, q: float) -> float:
        """Local length map ``Q(q)``: the same as :meth:`local_q_map`.

        Parameters
        ----------
        q : float
            Input second moment, ``>= 0``.

        Returns
        -------
        float
            ``Q(q)``.

        Raises
        ------
        ValueError
            If ``q`` is negative or not finite.
        """
        return self.local_q_map(q)

    def q_map_at_1(self) -> float:
        """Return ``Q(1) = E[phi_hat(z)^2]`` (1 for every shaping).

        Returns
        -------
        float
            ``Q(1)``.
        """
        return self._moments(1.0)["m2"]

    def q_slope_at_1(self) -> float:
        """Return ``Q'(1) = E[z phi_hat(z) phi_hat'(z)]``.

        Returns
        -------
        float
            The local length map's slope at ``q = 1``.
        """
        return self._moments(1.0)["q_slope"]

    def network_q_map(self, q: float) -> float:
        """Network length map ``Q_net(q) = Q o ... o Q (q)`` (``depth`` times).

        Parameters
        ----------
        q : float
            Input second moment, ``>= 0``.

        Returns
        -------
        float
            ``Q_net(q)`` (``inf`` if it overflows).

        Raises
        ------
        ValueError
            If ``q`` is negative or not finite.
        """
        q = _check_q(q)
        for _ in range(self.depth):
            if not math.isfinite(q):
                return math.inf
            q = self._moments(q)["m2"]
        return q

    def local_c_map(self, c: float) -> float:
        """Local correlation map ``C(c) = E[phi_hat(u) phi_hat(v)]`` at unit variance.

        Parameters
        ----------
        c : float
            Correlation of ``(u, v)``, in ``[-1, 1]``.

        Returns
        -------
        float
            ``C(c)``: closed form for leaky-ReLU results, otherwise the
            bivariate quadrature of the module notes (``1 - C(c)`` from the
            gap for ``c >= 0``).

        Raises
        ------
        ValueError
            If ``c`` is outside ``[-1, 1]``.
        """
        c = _check_c(c)
        return self._local_c(c)

    def _local_c(self, c: float) -> float:
        if self._leaky_closed_form():
            return _leaky_c_map(c, self.base.param)
        return _bivariate_c(
            self.base,
            self.input_scale,
            self.input_shift,
            self.output_shift,
            self.output_scale,
            c,
        )

    def _leaky_closed_form(self) -> bool:
        return (
            self.base.name in ("relu", "leaky_relu")
            and self.input_scale == 1.0
            and self.input_shift == 0.0
            and self.output_shift == 0.0
            and self.output_scale == math.sqrt(2.0 / (1.0 + self.base.param**2))
        )

    def network_c_map(self, c: float) -> float:
        """Network correlation map ``C_net(c) = C o ... o C (c)`` (``depth`` times).

        Parameters
        ----------
        c : float
            Input correlation, in ``[-1, 1]``.

        Returns
        -------
        float
            ``C_net(c)``. With the generic bivariate rule each layer costs
            about 10-20 ms (leaky ReLU: microseconds).

        Raises
        ------
        ValueError
            If ``c`` is outside ``[-1, 1]``.
        """
        c = _check_c(c)
        for _ in range(self.depth):
            c = min(1.0, max(-1.0, self._local_c(c)))
        return c

    # --- conditions -----------------------------------------------------------------

    def conditions(self) -> dict[str, float]:
        """Achieved values of the imposed conditions.

        Returns
        -------
        dict of str to float
            DKS: ``"Q(1)"``, ``"Q'(1)"`` (not for relu), ``"C(0)"``,
            ``"C'(1)"`` (local) and ``"C_net'(1)"`` (``= C'(1)^depth``);
            TAT leaky ReLU: ``"Q(1)"`` and ``"C_net(0)"``; TAT smooth:
            ``"Q(1)"``, ``"Q'(1)"``, ``"C'(1)"``, ``"C''(1)"`` (local) and
            ``"C_net''(1)"`` (``= depth C''(1)``).
        """
        return dict(self.achieved)

    def condition_targets(self) -> dict[str, float]:
        """Target values of the imposed conditions (same keys as :meth:`conditions`).

        Returns
        -------
        dict of str to float
            The targets.
        """
        return dict(self.targets)

    def condition_errors(self) -> dict[str, float]:
        """Achieved minus target value of each imposed condition.

        Returns
        -------
        dict of str to float
            The residuals (about ``1e-13`` or smaller).
        """
        got = dict(self.achieved)
        return {k: got[k] - v for k, v in self.targets}


# ----------------------------------------------------------------------------------
# Moments of phi_hat
# ----------------------------------------------------------------------------------


def _moments(
    act: Activation,
    scale: float,
    shift: float,
    out_shift: float,
    out_scale: float,
    *,
    curvature: bool = False,
) -> dict[str, float]:
    """Gaussian moments of ``g(z) = out_scale (phi(scale z + shift) + out_shift)``.

    Returns ``mean = E[g]``, ``m2 = E[g^2]``, ``q_slope = E[z g g']``,
    ``slope = E[g'^2]`` and (with ``curvature``) ``curv = E[g''^2]``.
    """
    z, w = _nodes(scale, shift, act.kinks)
    x = scale * z + shift
    p = np.asarray(act.phi(x)) + out_shift
    d = np.asarray(act.dphi(x)) * scale
    g = out_scale * p
    gd = out_scale * d
    res = {
        "mean": float(w @ g),
        "m2": float(w @ (g * g)),
        "q_slope": float(w @ (z * g * gd)),
        "slope": float(w @ (gd * gd)),
    }
    if curvature:
        d2 = out_scale * scale * scale * _D2PHI[act.name](act, x)
        res["curv"] = float(w @ (d2 * d2))
    return res


def _bivariate_c(
    act: Activation, scale: float, shift: float, out_shift: float, out_scale: float, c: float
) -> float:
    """``E[g(u) g(v)]`` for ``g = out_scale (phi(scale x + shift) + out_shift)``, unit variance.

    ``u, v = a z_1 +- b z_2``; the integrand is even in ``z_2`` (``u`` and ``v``
    swap), so the inner variable runs over ``0 <= t = |z_2| <= _Z2_MAX``.
    """
    m = _moments(act, scale, shift, out_shift, out_scale)
    if c == 1.0:
        return m["m2"]
    if c == 0.0:
        return m["mean"] ** 2
    a = math.sqrt(0.5 * (1.0 + c))
    b = math.sqrt(0.5 * (1.0 - c))
    # x-space features of g: phi's kinks and scales mapped through x -> scale x + shift
    feats = np.concatenate([_X_FEATURES, np.asarray(act.kinks, dtype=np.float64)])
    xf = (feats - shift) / scale
    xf = xf[np.abs(xf) < 2.0 * _Z2_MAX]  # |u|, |v| <= (a + b) Z <= sqrt(2) Z
    grid = np.arange(-_Z2_MAX, _Z2_MAX + 0.5, 1.0)
    outer_pts = [grid]
    if a > 0.0:
        outer_pts.append(xf / a)
        if act.kinks:
            # near a kink the inner integral varies on the scale b / a in z_1
            xk = (np.asarray(act.kinks, dtype=np.float64) - shift) / scale
            outer_pts.append(((xk[:, None] + b * _KINK_OFFSETS[None, :]) / a).ravel())
    outer = np.unique(np.clip(np.concatenate(outer_pts), -_Z2_MAX, _Z2_MAX))
    z1, w1 = _panels_to_nodes(outer, _GL2_X, _GL2_W)
    w1 = w1 * np.exp(-0.5 * z1 * z1) * _INV_SQRT_2PI
    v0 = a * z1[:, None]
    half = np.arange(0.0, _Z2_MAX + 0.5, 1.0)
    cols = [np.broadcast_to(half, (z1.size, half.size))]
    if b > 0.0:
        cols += [(xf[None, :] - v0) / b, (v0 - xf[None, :]) / b]
    edges = np.sort(np.clip(np.concatenate(cols, axis=1), 0.0, _Z2_MAX), axis=1)
    widths = np.diff(edges, axis=1)
    # move empty panels to the end of each row and drop the columns empty in every row
    order = np.argsort(widths == 0.0, axis=1, kind="stable")
    left = np.take_along_axis(edges[:, :-1], order, axis=1)
    widths = np.take_along_axis(widths, order, axis=1)
    keep = int((widths > 0.0).sum(axis=1).max())
    left, widths = left[:, :keep, None], widths[:, :keep, None]
    t = (left + 0.5 * (_GL2_X + 1.0) * widths).reshape(z1.size, -1)
    wt = (_GL2_W * widths).reshape(z1.size, -1)  # 2 * (width / 2): both signs of z_2
    wt = wt * np.exp(-0.5 * t * t) * _INV_SQRT_2PI

    def g(x: FloatArray) -> FloatArray:
        return out_scale * (np.asarray(act.phi(scale * x + shift)) + out_shift)

    gu, gv = g(v0 + b * t), g(v0 - b * t)
    if c > 0.0:
        gap = 0.5 * (gu - gv) ** 2
        return m["m2"] - float(w1 @ np.einsum("ij,ij->i", gap, wt))
    return float(w1 @ np.einsum("ij,ij->i", gu * gv, wt))


# ----------------------------------------------------------------------------------
# Argument checks
# ----------------------------------------------------------------------------------


def _check_activation(activation: object) -> Activation:
    if not isinstance(activation, str | Activation):
        raise ValueError(
            f"activation must be an activation name or an Activation, got {activation!r}"
        )
    try:
        return activations.get(activation)
    except ValueError as err:
        raise ValueError(f"activation: {err}") from None


def _check_q(q: object) -> float:
    v = as_real("q", q)
    if not (math.isfinite(v) and v >= 0.0):
        raise ValueError(f"q must be finite and >= 0 (valid range [0, inf)), got {v!r}")
    return v


def _check_c(c: object) -> float:
    v = as_real("c", c)
    if not (-1.0 <= v <= 1.0):
        raise ValueError(f"c must be a correlation in [-1, 1], got {v!r}")
    return v


def _check_open(name: str, value: object, lo: float, hi: float) -> float:
    v = as_real(name, value)
    if not (lo < v < hi):
        rng = f"({lo:g}, inf)" if math.isinf(hi) else f"({lo:g}, {hi:g})"
        raise ValueError(f"{name} must be in {rng}, got {v!r}")
    return v


# ----------------------------------------------------------------------------------
# Solvers
# ----------------------------------------------------------------------------------

_ROOT_TOL = 1e-11  # a root is accepted when every residual is below this
_SEED = 123
_NUM_TRIES = 60


def _point_symmetric(act: Activation) -> bool:
    """``phi(x) + phi(-x) = 2 phi(0)`` (tanh, erf, sigmoid, ...): shifts come in +- pairs."""
    x = np.array([0.3, 1.0, 2.5, 7.0])
    s = np.asarray(act.phi(x)) + np.asarray(act.phi(-x))
    return bool(np.all(np.abs(s - 2.0 * float(act.phi(0.0))) <= 1e-14 * (1.0 + np.abs(s))))


def _starts(ranges: list[tuple[tuple[float, ...], float, float]]) -> list[tuple[float, ...]]:
    """Return the fixed starting points (all combinations), then seeded random ones."""
    fixed = list(itertools.product(*(r[0] for r in ranges)))
    rng = np.random.default_rng(_SEED)
    rand = [
        tuple(float(rng.uniform(lo, hi)) for _, lo, hi in ranges)
        for _ in range(max(0, _NUM_TRIES - len(fixed)))
    ]
    return fixed + rand


def _solve_system(
    residual: Callable[[FloatArray], FloatArray],
    starts: list[tuple[float, ...]],
    accept: Callable[[FloatArray], bool],
    what: str,
) -> FloatArray:
    """First root (from the starting points in order) with residuals below ``_ROOT_TOL``."""
    best = math.inf
    for start in starts:
        with np.errstate(all="ignore"):
            try:
                sol = optimize.root(residual, np.asarray(start), method="hybr", tol=1e-15)
            except (ValueError, FloatingPointError, ZeroDivisionError):
                continue
        if not np.all(np.isfinite(sol.x)):
            continue
        err = float(np.max(np.abs(residual(sol.x))))
        if not math.isfinite(err):
            continue
        best = min(best, err)
        if err <= _ROOT_TOL and accept(sol.x):
            return sol.x
    raise ValueError(
        f"{what}: no parameters found from {len(starts)} starting points "
        f"(smallest residual {best:.3g}); the target may be unreachable for this activation"
    )


def _output_params(act: Activation, scale: float, shift: float) -> tuple[float, float]:
    """``output_shift = -E[phi(a z + b)]`` (``C(0) = 0``) and ``output_scale`` (``Q(1) = 1``)."""
    m = _moments(act, scale, shift, 0.0, 1.0)
    out_shift = -m["mean"]
    var = m["m2"] - m["mean"] ** 2
    if not var > 0.0:
        return out_shift, math.nan
    # second pass with the centring applied: variance without cancellation
    m2 = _moments(act, scale, shift, out_shift, 1.0)["m2"]
    return out_shift, 1.0 / math.sqrt(m2)


def _dks_result(
    act: Activation, scale: float, shift: float, depth: int, zeta: float, *, q_slope: bool
) -> Shaping:
    out_shift, out_scale = _output_params(act, scale, shift)
    m = _moments(act, scale, shift, out_shift, out_scale)
    local = zeta ** (1.0 / depth)
    targets = [("Q(1)", 1.0)]
    achieved = [("Q(1)", m["m2"])]
    if q_slope:
        targets.append(("Q'(1)", 1.0))
        achieved.append(("Q'(1)", m["q_slope"]))
    targets += [("C(0)", 0.0), ("C'(1)", local), ("C_net'(1)", zeta)]
    achieved += [
        ("C(0)", m["mean"] ** 2),
        ("C'(1)", m["slope"]),
        ("C_net'(1)", m["slope"] ** depth),
    ]
    return Shaping(
        base=act,
        input_scale=float(scale),
        input_shift=float(shift),
        output_scale=float(out_scale),
        output_shift=float(out_shift),
        method="dks",
        depth=depth,
        zeta=zeta,
        targets=tuple(targets),
        achieved=tuple(achieved),
    )


def _dks_relu(act: Activation, depth: int, zeta: float, local: float) -> Shaping:
    """DKS for relu: one degree of freedom fewer (homogeneity), so ``Q'(1)`` is not imposed."""
    # relu(a x + b) = a relu(x + b / a): only b / a matters. As DKS does, fix
    # b = +1 (reaches C'(1) up to relu's own 1 / (1 - 1 / pi)) or b = -1 (above).
    relu_slope = 1.0 / (1.0 - 1.0 / math.pi)
    shift = 1.0 if local < relu_slope else -1.0

    def f(log_a: float) -> float:
        a = math.exp(log_a)
        out_shift, out_scale = _output_params(act, a, shift)
        return _moments(act, a, shift, out_shift, out_scale)["slope"] - local

    # C'(1) increases with a for b = +1 and decreases for b = -1: bracket from a = 1
    lo, hi = -0.5, 0.5
    for _ in range(60):
        flo, fhi = f(lo), f(hi)
        if math.isfinite(flo) and math.isfinite(fhi) and flo * fhi <= 0.0:
            break
        lo, hi = lo - 0.5, hi + 0.5
    else:  # pragma: no cover - every target in (1, inf) is bracketed
        raise ValueError(f"relu: cannot reach C'(1) = {local!r}")
    log_a = optimize.brentq(f, lo, hi, xtol=1e-15, rtol=1e-15, maxiter=500)
    return _dks_result(act, math.exp(log_a), shift, depth, zeta, q_slope=False)


def _dks_leaky(act: Activation, depth: int, zeta: float, local: float) -> Shaping:
    """DKS for leaky_relu: the negative slope is the free parameter, no input shift.

    Without an input shift a centred, normalised leaky ReLU is positively
    homogeneous up to the centring, and ``Q'(1) = Var(leaky(z)) / Var(leaky(z))
    = 1`` holds identically; ``C'(1) = 1 / (1 - (1 - s)^2 / (pi (1 + s^2)))``
    then fixes the slope ``s`` in ``(-1, 1)``.
    """
    smax = 1.0 / (1.0 - 2.0 / math.pi)  # slope -> -1

    if not local < smax:
        raise ValueError(
            f"zeta: leaky_relu can reach a local C'(1) = zeta^(1/depth) below "
            f"1 / (1 - 2 / pi) = {smax:.6g} only, got {local:.6g}"
        )

    def f(s: float) -> float:
        return 1.0 / (1.0 - (1.0 - s) ** 2 / (math.pi * (1.0 + s * s))) - local

    s = optimize.brentq(f, -1.0 + 1e-15, 1.0, xtol=1e-16, rtol=1e-15, maxiter=500)
    base = activations.get("leaky_relu", slope=float(s))
    return _dks_result(base, 1.0, 0.0, depth, zeta, q_slope=True)


def dks(activation: str | Activation, depth: int, *, zeta: float = 1.5) -> Shaping:
    """Deep Kernel Shaping (Martens et al. 2021) of an activation for a vanilla chain.

    Finds ``phi_hat(x) = output_scale (phi(input_scale x + input_shift) +
    output_shift)`` such that, for ``depth`` layers ``x -> phi_hat(W x)`` with
    ``Var(W_ij) = 1 / n_in`` and no bias on inputs with ``q = 1``:

    * ``Q(1) = 1``: ``output_scale = 1 / sqrt(E[(phi(a z + b) + output_shift)^2])``;
    * ``C(0) = 0``: ``output_shift = -E[phi(a z + b)]``;
    * ``Q'(1) = E[z phi_hat(z) phi_hat'(z)] = 1``;
    * ``C_net'(1) = zeta``, i.e. ``C'(1) = E[phi_hat'(z)^2] = zeta^(1 / depth)``;

    the last two solved for ``(a, b) = (input_scale, input_shift)`` with
    ``output_shift`` and ``output_scale`` computed from ``(a, b)`` as above.

    Parameters
    ----------
    activation : str or Activation
        The base activation ``phi`` (any registry activation except linear,
        which cannot be made nonlinear by an affine transform).
    depth : int
        Number of layers, ``>= 1``.
    zeta : float, optional
        The network's C-map slope ``C_net'(1)`` (default 1.5, the DKS
        default); valid range ``(1, inf)``: ``zeta = 1`` is the linear
        network, and ``C'(1) >= 1`` for every C map with ``C(0) = 0``.

    Returns
    -------
    Shaping
        The transformation, its maps and its achieved conditions
        (``method == "dks"``).

    Raises
    ------
    ValueError
        For an unknown or unsupported activation, ``depth < 1``,
        ``zeta <= 1`` or not finite, or if no solution is found (the
        message gives the smallest residual met).

    Notes
    -----
    Special cases, as in the DKS paper and its reference implementation:

    * ``relu`` is positively homogeneous, so only ``input_shift /
      input_scale`` matters and one degree of freedom is lost: ``input_shift``
      is fixed to ``+1`` (if ``zeta^(1/depth) < 1 / (1 - 1 / pi)``, relu's own
      centred slope) or ``-1``, ``input_scale`` solves the ``C'(1)`` condition
      and ``Q'(1) = 1`` is not imposed (not in :meth:`Shaping.conditions`).
    * ``leaky_relu``: the negative slope replaces the input scale as
      unknown and no input shift is needed (``Q'(1) = 1`` holds identically
      at ``input_shift = 0``): the slope given with the activation is ignored
      and the result's :attr:`Shaping.base` carries the solved one.
      Reachable: ``zeta^(1/depth) < 1 / (1 - 2 / pi) ~ 2.75``.
    * Solutions come in symmetric pairs: ``(a, b) -> (-a, b)`` (``x -> -x``)
      always, and ``b -> -b`` for point-symmetric ``phi`` (tanh, erf,
      sigmoid, hard_tanh). The result has ``input_scale > 0`` and, for
      point-symmetric ``phi``, ``input_shift >= 0``.
    * Otherwise the first solution found from the starting points
      ``input_scale in (1, 0.1)``, ``input_shift in (0, 1, -1)`` (then 54
      seeded random points) is returned. Several solutions may exist (gelu
      has at least three at depth 100); the list fixes which one.
    * ``hard_tanh`` is not shaped: no solution is found (on a scan of
      ``input_scale, input_shift``, ``Q'(1)`` stays below 1 where
      ``C'(1) > 1``, by saturation), and the ``ValueError`` says so.

    Examples
    --------
    >>> s = dks("tanh", 100)
    >>> round(s.conditions()["C_net'(1)"], 12)
    1.5
    """
    act = _check_activation(activation)
    depth = check_int("depth", depth)
    zeta = _check_open("zeta", zeta, 1.0, math.inf)
    local = zeta ** (1.0 / depth)
    if act.name == "linear":
        raise ValueError(
            "activation: linear cannot be shaped by DKS (C'(1) = 1 for every affine transform)"
        )
    if act.name == "relu":
        return _dks_relu(act, depth, zeta, local)
    if act.name == "leaky_relu":
        return _dks_leaky(act, depth, zeta, local)

    def residual(p: FloatArray) -> FloatArray:
        a, b = float(p[0]), float(p[1])
        out_shift, out_scale = _output_params(act, a, b)
        m = _moments(act, a, b, out_shift, out_scale)
        return np.array([m["q_slope"] - 1.0, m["slope"] - local])

    starts = _starts([((1.0, 0.1), 0.0, 2.0), ((0.0, 1.0, -1.0), -3.0, 3.0)])
    a, b = _solve_system(residual, starts, lambda p: bool(p[0] != 0.0), f"dks({act.label})")
    a, b = abs(float(a)), float(b)
    if b < 0.0 and _point_symmetric(act):
        b = -b
    return _dks_result(act, a, b, depth, zeta, q_slope=True)


# ----------------------------------------------------------------------------------
# TAT
# ----------------------------------------------------------------------------------


def _tat_leaky(depth: int, eta: float) -> Shaping:
    def c_net0(slope: float) -> float:
        c = 0.0
        for _ in range(depth):
            c = _leaky_c_map(c, slope)
        return c

    relu_c0 = c_net0(0.0)
    if not eta < relu_c0:
        raise ValueError(
            f"eta: a {depth}-layer leaky-ReLU network reaches C_net(0) < {relu_c0:.6g} only "
            f"(the relu limit, slope 0); got eta = {eta!r}. Use a smaller eta or a deeper network."
        )
    slope = optimize.brentq(
        lambda s: c_net0(s) - eta, 0.0, 1.0, xtol=1e-16, rtol=1e-15, maxiter=500
    )
    base = activations.get("leaky_relu", slope=float(slope))
    out_scale = math.sqrt(2.0 / (1.0 + slope * slope))
    m = _moments(base, 1.0, 0.0, 0.0, out_scale)
    return Shaping(
        base=base,
        input_scale=1.0,
        input_shift=0.0,
        output_scale=out_scale,
        output_shift=0.0,
        method="tat",
        depth=depth,
        eta=eta,
        targets=(("Q(1)", 1.0), ("C_net(0)", eta)),
        achieved=(("Q(1)", m["m2"]), ("C_net(0)", c_net0(slope))),
    )


@functools.lru_cache(maxsize=64)
def _sup_abs_dphi(act: Activation) -> float:
    """``sup |phi'|`` on a fine grid (about 1e-7 relative; only a threshold uses it)."""
    x = np.linspace(-40.0, 40.0, 400001)
    return float(np.max(np.abs(np.asarray(act.dphi(x)))))


def _tat_smooth(act: Activation, depth: int, tau: float) -> Shaping:
    local = tau / depth

    def params(p: FloatArray) -> tuple[float, float, float, float]:
        a, b, d = float(p[0]), float(p[1]), float(p[2])
        m2 = _moments(act, a, b, d, 1.0)["m2"]
        return a, b, d, 1.0 / math.sqrt(m2) if m2 > 0.0 else math.nan

    def residual(p: FloatArray) -> FloatArray:
        a, b, d, g = params(p)
        m = _moments(act, a, b, d, g, curvature=True)
        return np.array([m["q_slope"] - 1.0, m["slope"] - 1.0, m["curv"] - local])

    sup_slope = _sup_abs_dphi(act)

    def accept(p: FloatArray) -> bool:
        a, _, _, g = params(p)
        # against 'bad' solutions (unstable Q maps): sup |phi_hat'| < 2, the reference
        # implementation's input_scale * output_scale < 2 for activations with sup phi' = 1
        return a != 0.0 and abs(a) * g * sup_slope < 2.0

    starts = _starts(
        [((1.0, 0.1), 0.0, 2.0), ((0.0, 1.0, -1.0), -3.0, 3.0), ((0.0, 1.0, -1.0), -3.0, 3.0)]
    )
    p = _solve_system(residual, starts, accept, f"tat({act.label})")
    a, b, d = abs(float(p[0])), float(p[1]), float(p[2])
    if b < 0.0 and _point_symmetric(act):
        b, d = -b, -2.0 * float(act.phi(0.0)) - d
    _, _, _, g = params(np.array([a, b, d]))
    m = _moments(act, a, b, d, g, curvature=True)
    return Shaping(
        base=act,
        input_scale=a,
        input_shift=b,
        output_scale=g,
        output_shift=d,
        method="tat",
        depth=depth,
        tau=tau,
        targets=(
            ("Q(1)", 1.0),
            ("Q'(1)", 1.0),
            ("C'(1)", 1.0),
            ("C''(1)", local),
            ("C_net''(1)", tau),
        ),
        achieved=(
            ("Q(1)", m["m2"]),
            ("Q'(1)", m["q_slope"]),
            ("C'(1)", m["slope"]),
            ("C''(1)", m["curv"]),
            ("C_net''(1)", depth * m["curv"]),
        ),
    )


def tat(activation: str | Activation, depth: int, *, eta: float = 0.9, tau: float = 0.3) -> Shaping:
    """Tailored Activation Transformation (Zhang, Botev and Martens 2022) for a vanilla chain.

    Same network model as :func:`dks` (``Var(W_ij) = 1 / n_in``, no bias,
    inputs with ``q = 1``).

    * Rectifiers (``"relu"`` or ``"leaky_relu"``, taken as the leaky-ReLU
      family; a given slope is ignored): ``phi_hat(x) = sqrt(2 / (1 +
      alpha^2)) leaky_relu(x; alpha)``, so that ``Q(1) = 1`` (and
      ``Q(q) = q``), with the negative slope ``alpha in (0, 1)`` solving
      ``C_net(0) = eta`` for the closed-form local C map
      ``C(c) = c + (1 - alpha)^2 / (pi (1 + alpha^2)) (sqrt(1 - c^2) - c arccos c)``
      composed ``depth`` times (``C_net(0)`` decreases from the relu value
      at ``alpha = 0`` to 0 at ``alpha = 1``; Brent's method).
    * Smooth activations (tanh, sigmoid, softplus, gelu, silu, erf, elu with
      ``alpha = 1``): ``phi_hat(x) = output_scale (phi(input_scale x +
      input_shift) + output_shift)`` with ``Q(1) = 1`` (``output_scale``),
      ``Q'(1) = 1``, ``C'(1) = 1`` and ``C_net''(1) = tau``, i.e. the local
      ``C''(1) = E[phi_hat''(z)^2] = tau / depth`` (with unit slopes at the
      fixed point, second derivatives add along the chain), solved for
      ``(input_scale, input_shift, output_shift)``. ``C(0)`` is not
      constrained. This is the smooth-activation case of the TAT paper as
      the reference implementation ``dks`` states it (``c_curve_target``),
      including its rule against 'bad' solutions (observed to have
      unstable Q maps), which rejects ``input_scale * output_scale >= 2``;
      here it is stated for ``phi_hat`` itself, ``sup |phi_hat'| =
      input_scale * output_scale * sup |phi'| < 2``, which is the same rule
      for tanh (``sup phi' = 1``) and keeps sigmoid (``sup phi' = 1/4``)
      solvable. Among the accepted roots the first found from the starting
      points ``input_scale in (1, 0.1)``, ``input_shift, output_shift in
      (0, 1, -1)`` (then seeded random points) is returned, with
      ``input_scale > 0`` and, for point-symmetric ``phi``,
      ``input_shift >= 0``.

    Parameters
    ----------
    activation : str or Activation
        ``"relu"``/``"leaky_relu"`` or one of the smooth activations above.
    depth : int
        Number of layers, ``>= 1``.
    eta : float, optional
        Leaky ReLU: the target ``C_net(0)`` (default 0.9); valid range
        ``(0, 1)``, and below the relu limit ``C_relu^depth(0)`` (e.g. about
        0.9985 at depth 100 but 0.78 at depth 3).
    tau : float, optional
        Smooth activations: the target ``C_net''(1)`` (default 0.3, the
        paper's); valid range ``(0, inf)``.

    Returns
    -------
    Shaping
        The transformation, its maps and its achieved conditions
        (``method == "tat"``; ``eta`` or ``tau`` set, the other None).

    Raises
    ------
    ValueError
        For ``depth < 1``, ``eta`` outside ``(0, 1)`` or unreachable at this
        depth, ``tau <= 0``, an unknown activation or one TAT does not
        support here (linear, selu, hard_tanh, elu with ``alpha != 1``:
        no finite ``C''(1)`` or no nonlinearity), or if no solution is found.

    Examples
    --------
    >>> s = tat("leaky_relu", 100, eta=0.9)
    >>> round(s.network_c_map(0.0), 12)
    0.9
    """
    act = _check_activation(activation)
    depth = check_int("depth", depth)
    eta = _check_open("eta", eta, 0.0, 1.0)
    tau = _check_open("tau", tau, 0.0, math.inf)
    if act.name in ("relu", "leaky_relu"):
        return _tat_leaky(depth, eta)
    if not _has_d2(act) or act.name == "linear":
        raise ValueError(
            f"activation: TAT supports relu/leaky_relu and the smooth activations "
            f"tanh, sigmoid, softplus, gelu, silu, erf and elu(alpha=1); got {act.label}"
        )
    return _tat_smooth(act, depth, tau)


# ----------------------------------------------------------------------------------
# Trainable depth
# ----------------------------------------------------------------------------------


def trainable_depth(activation: str | Activation, sigma_w2: float, sigma_b2: float) -> float:
    """Maximal trainable depth ``6 xi_c`` of an untransformed network (Schoenholz et al. 2017).

    Schoenholz et al. observed that networks of depth up to about ``6 xi_c``
    train, with the correlation depth scale ``xi_c = -1 / ln chi_c*`` of
    :func:`initsim.theory.depth_scales` (``chi_1`` in the ordered phase, the
    slope at the correlation fixed point ``c* < 1`` in the chaotic phase).
    This uses the usual conventions of :mod:`initsim.theory` (``h = W x + b``,
    ``sigma_w2 = n_in Var(W_ij)``, ``sigma_b2 = Var(b_i)``), not the DKS one.

    Parameters
    ----------
    activation : str or Activation
        The activation.
    sigma_w2 : float
        ``n_in Var(W_ij) > 0``.
    sigma_b2 : float
        ``Var(b_i) >= 0``.

    Returns
    -------
    float
        ``6 xi_c``: finite in the ordered and chaotic phases, ``math.inf`` on
        the order-to-chaos line (``|chi_1 - 1| <= PHASE_TOL``, where ``xi_c``
        diverges) and wherever :func:`initsim.theory.depth_scales` reports
        ``xi_c = inf`` (e.g. an infinite fixed point ``q*``).

    Raises
    ------
    ValueError
        For an unknown activation, ``sigma_w2 <= 0`` or ``sigma_b2 < 0``
        (the message names the parameter).

    Examples
    --------
    >>> trainable_depth("relu", 2.0, 0.0)
    inf
    """
    _check_activation(activation)
    xi_c = depth_scales(activation, sigma_w2, sigma_b2)[1]
    return 6.0 * xi_c
