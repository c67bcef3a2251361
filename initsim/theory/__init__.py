"""Mean-field theory of signal and gradient propagation, and exact finite-width ReLU laws.

Conventions (as everywhere in initsim): a layer computes ``h = W x + b`` and
``x_next = phi(h)`` with ``sigma_w2 = n_in Var(W_ij)`` and ``sigma_b2 =
Var(b_i)``; ``q^l`` is the mean over units of ``h^2`` at hidden layer ``l``
and ``q^0 = ||x^0||^2 / n_0`` is the input's second moment. ``z`` is a
standard normal variable and ``E_q[f] = E[f(sqrt(q) z)]``.

This package is the public face of the theory; every name below is importable
from ``initsim.theory``. Its modules:

* :mod:`initsim.theory.meanfield`: the mean-field (infinite-width) maps and
  their consequences;
* :mod:`initsim.theory.gaussian`: the Gaussian expectations behind them
  (closed forms and quadrature) and their accuracy;
* :mod:`initsim.theory.finite_width`: exact finite-width ReLU and linear laws
  and the delta-method correction of the ``q`` recursion;
* :mod:`initsim.theory.jacobian`: input-output Jacobian spectra (exact
  linear-net moments, Pennington et al.'s large-width law), re-exported by
  :mod:`initsim.jacobian` and not by this face.

Mean field (infinite width; Poole et al. 2016, Schoenholz et al. 2017)
------------------------------------------------------------------------
* length map: ``q^1 = sigma_w2 q^0 + sigma_b2`` and
  ``q^l = F(q^{l-1}) = sigma_w2 E_{q^{l-1}}[phi^2] + sigma_b2``
  (:func:`q_map`);
* correlation map of two inputs of equal norm:
  ``c^l = (sigma_w2 E[phi(u_1) phi(u_2)] + sigma_b2) / q^l`` with
  ``(u_1, u_2)`` centred bivariate normal of variance ``q^{l-1}`` and
  correlation ``c^{l-1}`` (:func:`c_map`);
* fixed point ``q*`` (:func:`fixed_point`), ``chi_1 = sigma_w2 E_{q*}[phi'^2]``
  (:func:`chi1`), the order-to-chaos line ``chi_1 = 1``
  (:func:`critical_sigma_w2`, :func:`phase`) and the depth scales
  ``xi_q = -1 / ln F'(q*)``, ``xi_c = -1 / ln chi_c`` (:func:`depth_scales`);
* mean squared back-propagated gradient (:func:`gradient_factor`,
  :func:`grad_sq_map`), under the gradient-independence assumption.

Finite width (ReLU, Gaussian He weights, no bias; Hanin and Rolnick 2018)
-------------------------------------------------------------------------
Given the previous layer, one ReLU layer of width ``n`` multiplies
``||x||^2 / n`` by ``R = (2 / n) chi^2_K`` with ``K ~ Binomial(n, 1/2)``
the number of active units, independently across layers. Hence
:func:`relu_length_moments`, :func:`relu_dead_probability`,
:func:`relu_length_ratio_law` and :func:`relu_log_length_moments`. For any
activation, :func:`q_moments` gives ``E[q^l]`` and ``Var(q^l)`` at finite
width to second order (delta method; exact for ReLU and linear).

Residual networks
-----------------
:func:`residual_q_map`, :func:`residual_grad_map` and :func:`residual_c_map`
(length, gradient and correlation maps through residual blocks, with Pre- or
Post-normalization), :func:`nf_gamma` and :func:`nf_gamma_error` (NF-ResNet's
activation scale) and :func:`depth_regimes` (``alpha = L^-beta``), in
:mod:`initsim.theory.residual`.

Kernels (Cho and Saul 2009; Jacot et al. 2018)
----------------------------------------------
:func:`dual_kernel`, :func:`derivative_kernel` and
:func:`second_derivative_kernel` (``E[g(u) g(v)]`` for ``g = phi, phi',
phi''`` at any variances and correlation), the maps' slopes and curvature
(:func:`c_map_slope`, :func:`c_map_curvature`, :func:`q_map_slope`) and the
NNGP and NTK through depth (:func:`ntk_map`, :class:`NTKProfile`), in
:mod:`initsim.theory.kernels`.

Activation shaping (Martens et al. 2021; Zhang et al. 2022)
-----------------------------------------------------------
:func:`dks` and :func:`tat` transform an activation,
``phi_hat(x) = output_scale (phi(input_scale x + input_shift) + output_shift)``,
so that a vanilla chain of ``depth`` layers (``sigma_w2 = 1``) keeps its signal
geometry; the :class:`Shaping` they return evaluates its local and network
maps and the conditions it meets. :func:`trainable_depth` is Schoenholz et
al.'s ``6 xi_c``. In :mod:`initsim.theory.shaping`; the Monte Carlo check of
a shaped net is :func:`initsim.shaping_check.check_pair`.

Numerical methods and accuracy
------------------------------
Gaussian expectations use closed forms where they exist and otherwise
adaptive quadrature (one dimension) or a composite Gauss-Legendre rule (two
dimensions), accurate to about ``1e-15`` relative resp. ``1e-11`` absolute in
``c``; details in :mod:`initsim.theory.gaussian`.

References
----------
B. Poole, S. Lahiri, M. Raghu, J. Sohl-Dickstein and S. Ganguli, Exponential
expressivity in deep neural networks through transient chaos, NeurIPS 2016.

S. S. Schoenholz, J. Gilmer, S. Ganguli and J. Sohl-Dickstein, Deep
information propagation, ICLR 2017.

Y. Cho and L. K. Saul, Kernel methods for deep learning, NeurIPS 2009.

C. K. I. Williams, Computing with infinite networks, NeurIPS 1997.

B. Hanin and D. Rolnick, How to start training: the effect of initialization
and architecture, NeurIPS 2018.
"""

from __future__ import annotations

from initsim.theory.finite_width import (
    ReluLengthRatioLaw,
    linear_length_moments,
    q_moments,
    relu_dead_probability,
    relu_length_moments,
    relu_length_ratio_law,
    relu_log_length_moments,
)
from initsim.theory.gaussian import KINDS, gaussian_expectation
from initsim.theory.kernels import (
    NTKProfile,
    c_map_curvature,
    c_map_slope,
    derivative_kernel,
    dual_kernel,
    ntk_map,
    q_map_slope,
    second_derivative_kernel,
)
from initsim.theory.meanfield import (
    PHASE_TOL,
    c_map,
    chi1,
    correlation_fixed_point,
    critical_sigma_w2,
    depth_scales,
    fixed_point,
    grad_sq_map,
    gradient_factor,
    phase,
    q_map,
)
from initsim.theory.residual import (
    NF_GAMMA_PUBLISHED,
    depth_regimes,
    nf_gamma,
    nf_gamma_error,
    residual_c_map,
    residual_grad_map,
    residual_q_map,
)
from initsim.theory.shaping import Shaping, dks, tat, trainable_depth

__all__ = [
    "KINDS",
    "NF_GAMMA_PUBLISHED",
    "PHASE_TOL",
    "NTKProfile",
    "ReluLengthRatioLaw",
    "Shaping",
    "c_map",
    "c_map_curvature",
    "c_map_slope",
    "chi1",
    "correlation_fixed_point",
    "critical_sigma_w2",
    "depth_regimes",
    "depth_scales",
    "derivative_kernel",
    "dks",
    "dual_kernel",
    "fixed_point",
    "gaussian_expectation",
    "grad_sq_map",
    "gradient_factor",
    "linear_length_moments",
    "nf_gamma",
    "nf_gamma_error",
    "ntk_map",
    "phase",
    "q_map",
    "q_map_slope",
    "q_moments",
    "relu_dead_probability",
    "relu_length_moments",
    "relu_length_ratio_law",
    "relu_log_length_moments",
    "residual_c_map",
    "residual_grad_map",
    "residual_q_map",
    "second_derivative_kernel",
    "tat",
    "trainable_depth",
]
