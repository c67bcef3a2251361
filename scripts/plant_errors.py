"""Planted-error harness: each plant is a small, realistic bug that some test must catch.

Run: python scripts/plant_errors.py [--list] [--only NAME ...] [--jobs N] [--keep]

Each plant edits one line of a temporary copy of the repository (the exact text
``old`` becomes ``new``; ``old`` must occur exactly once), then runs the tests
named for it in that copy, slow ones included. A plant is *caught* when pytest
reports a failing test (exit status 1); it *survives* when every test passes;
anything else (a collection error, a timeout, a stale plant whose ``old`` text
is gone) is a harness error, never a catch. The script prints one line per
plant and ``N/N plants caught``, and exits 0 only when every plant is caught
(1 when one survives, 2 on a harness error).

A plant says nothing unless the same tests pass without it: ``.ci/run`` runs
the whole suite, slow tests included, before this script.

Numba's on-disk cache is copied with the tree, so a plant recompiles only what
it can change: the cache of the planted module and of every module that imports
it (directly or not) is deleted in the copy (Numba does not notice edits in a
callee's module, so stale callers would hide the plant).

Every new capability adds its plants to :data:`PLANTS` (and the tests that
catch them); ``tests/test_plant_errors.py`` checks that each plant still
applies to the current source and names tests that exist.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: What a copy of the repository holds (enough to import the package and run its tests,
#: the shipped study specs included; their rendered PDFs are left out).
COPIED = ("initsim", "tests", "scripts", "reports", "pyproject.toml", "README.md")
#: Wall-clock limit of one plant's test run, in seconds.
TIMEOUT_S = 1200


@dataclass(frozen=True)
class Plant:
    """One planted error.

    Attributes
    ----------
    name : str
        Short identifier (``--only`` takes it).
    what : str
        The error it models, in one line.
    path : str
        The planted file, relative to the repository root.
    old, new : str
        The exact text replaced, and its replacement.
    tests : tuple of str
        pytest node ids (or files) of which at least one must fail.
    """

    name: str
    what: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


#: The law tests of the exact backward pass against the dense sampler.
LAW_TEST = "tests/test_backward_laws.py::test_exact_backward_has_the_dense_law"
#: ... and of the exact residual sampler.
RESIDUAL_LAW_TEST = (
    "tests/test_residual_exact_laws.py::test_exact_residual_sampler_has_the_dense_law"
)

PLANTS: tuple[Plant, ...] = (
    Plant(
        "exact-scale-1.03",
        "the exact sampler's forward scale times 1.03",
        "initsim/engine/exact.py",
        "c = wstd[t] * math.sqrt(x2)",
        "c = 1.03 * wstd[t] * math.sqrt(x2)",
        ("tests/test_checks.py::test_correct_simulations_pass",),
    ),
    Plant(
        "exact-gradient-independence",
        "the exact backward pass draws W^T d independently of the forward pass",
        "initsim/engine/exact.py",
        "gi = x[i] * coef + sz * (g[i] - x[i] * proj)",
        "gi = sz * g[i]",
        (LAW_TEST,),
    ),
    Plant(
        "exact-conditioning-dropped",
        "the exact backward pass drops the part of W^T d inside span(x)",
        "initsim/engine/exact.py",
        "gi = x[i] * coef + sz * (g[i] - x[i] * proj)",
        "gi = sz * (g[i] - x[i] * proj)",
        (LAW_TEST,),
    ),
    Plant(
        "gram-gradient-independence",
        "the Gram sampler's Gaussian backward pass ignores the forward pass",
        "initsim/engine/gram.py",
        "g += y - np.dot(x, np.dot(g_pinv, np.dot(x.T, y)))",
        "g = y",
        (LAW_TEST,),
    ),
    Plant(
        "gram-conditioning-dropped",
        "the Gram sampler drops the part of W^T D inside col(X)",
        "initsim/engine/gram.py",
        "g = np.dot(x, np.dot(g_pinv, np.dot(a.T, d)))",
        "g = np.zeros((nin, b))",
        (LAW_TEST,),
    ),
    Plant(
        "gram-orthogonal-frame",
        "the orthogonal backward frame is not projected off col(X)",
        "initsim/engine/gram.py",
        "yg = yg - np.dot(x, np.dot(g_pinv, np.dot(x.T, yg)))",
        "yg = yg + 0.0",
        (LAW_TEST,),
    ),
    Plant(
        "gram-dead-input-revived",
        "the Gram factor lets rounding revive an input that is exactly 0",
        "initsim/engine/gram.py",
        "        if g[j, j] == 0.0:\n",
        "        if g[j, j] < 0.0:\n",
        ("tests/test_backward_laws.py::test_an_input_that_dies_stays_dead_in_the_gram_sampler",),
    ),
    Plant(
        "he-relu-1.9",
        "He's variance 1.9 / fan_in for nonlinearity='relu'",
        "initsim/initializers.py",
        '    if key == "relu":\n        return 2.0\n',
        '    if key == "relu":\n        return 1.9\n',
        ("tests/test_initializers.py",),
    ),
    Plant(
        "he-default-1.9",
        "He's variance 1.9 / fan_in in the default (leaky_relu, a = 0) branch he_normal uses",
        "initsim/initializers.py",
        "    return 2.0 / (1 + slope**2)\n",
        "    return 1.9 / (1 + slope**2)\n",
        ("tests/test_initializers.py", "tests/test_properties_engine.py"),
    ),
    Plant(
        "plan-fans-swapped",
        "the run's layers take fan_out for fan_in (variance scaled by the wrong fan)",
        "initsim/plan.py",
        "else math.sqrt(ini.variance(*f)) for f in law_of",
        "else math.sqrt(ini.variance(f[1], f[0])) for f in law_of",
        ("tests/test_properties_engine.py",),
    ),
    Plant(
        "checker-se-x2",
        "the checker's standard error doubled",
        "initsim/checks.py",
        "se = max(se_mc, _ROUNDING * abs(predicted))",
        "se = 2.0 * max(se_mc, _ROUNDING * abs(predicted))",
        ("tests/test_checks.py",),
    ),
    Plant(
        "checker-se-x0.9",
        "the checker's standard error times 0.9",
        "initsim/checks.py",
        "se = max(se_mc, _ROUNDING * abs(predicted))",
        "se = 0.9 * max(se_mc, _ROUNDING * abs(predicted))",
        ("tests/test_checks.py",),
    ),
    Plant(
        "checker-no-multiplicity",
        "Holm's correction dropped: every row tested at alpha",
        "initsim/checks.py",
        "if p[idx] <= alpha / (m - rank):",
        "if p[idx] <= alpha:",
        ("tests/test_checks.py::test_false_rejection_rate_is_calibrated",),
    ),
    Plant(
        "meanfield-bias-sqrt",
        "the mean-field length map adds sigma_b instead of sigma_b^2",
        "initsim/theory/meanfield.py",
        "sw[t] * expect_scalar(act, prev, PHI2) + sigma_b2",
        "sw[t] * expect_scalar(act, prev, PHI2) + math.sqrt(sigma_b2)",
        (
            "tests/test_theory.py::test_q_map_with_bias_in_closed_form",
            "tests/test_theory.py::test_q_map_against_mpmath",
        ),
    ),
    Plant(
        "fan-batch-axis-counted",
        "JAX's batch_axis multiplies into the receptive field instead of neither fan",
        "initsim/initializers.py",
        "        used = in_ax + out_ax + batch_ax\n",
        "        used = in_ax + out_ax\n",
        ("tests/test_fan_rules.py::test_jax_axes_fans_by_hand",),
    ),
    Plant(
        "orthogonal-conv-fans",
        "an orthogonal conv weight's variance read off PyTorch's fans (half the real one)",
        "initsim/initializers.py",
        "        return math.prod(shape) // side, side\n",
        "        return rule.fans(shape)\n",
        ("tests/test_fan_rules.py::test_orthogonal_conv_fans_are_the_flattened_matrix",),
    ),
    Plant(
        "keras-axes-receptive",
        "Keras' input_axes / output_axes multiply the other axes into both fans",
        "initsim/framework_names.py",
        "        receptive_field=False,\n",
        "        receptive_field=True,\n",
        ("tests/test_fan_rules.py::test_keras_input_output_axes_by_hand",),
    ),
    Plant(
        "delta-orthogonal-centre",
        "delta_orthogonal's centre tap at k // 2 (PyTorch dirac_'s) instead of JAX's (k - 1) // 2",
        "initsim/initializers.py",
        "        centre = tuple((k - 1) // 2 for k in kernel)\n",
        "        centre = tuple(k // 2 for k in kernel)\n",
        ("tests/test_fan_rules.py::test_delta_orthogonal_centre_tap",),
    ),
    Plant(
        "stft-density-unrooted",
        "the STFT window's density scaling without its square root",
        "initsim/initializers.py",
        "scale = math.sqrt(float(np.sum(np.square(win))))",
        "scale = float(np.sum(np.square(win)))",
        ("tests/test_fan_rules.py::test_stft_matches_a_numpy_reference",),
    ),
    Plant(
        "complex-truncation-jax-constant",
        "the complex truncated normal rescaled by JAX's 0.9531 (variance 1.86 % too large)",
        "initsim/initializers.py",
        "COMPLEX_TRUNCATED_NORMAL_STD_FACTOR: float = math.sqrt(1.0 - 4.0 / math.expm1(4.0))",
        "COMPLEX_TRUNCATED_NORMAL_STD_FACTOR: float = 0.95311164380491208",
        ("tests/test_framework_parity.py::test_complex_law",),
    ),
    Plant(
        "complex-normal-unsplit",
        "a complex normal with N(0, var) real and imaginary parts (twice the variance)",
        "initsim/initializers.py",
        "    return (re + 1j * im) * math.sqrt(0.5)\n",
        "    return re + 1j * im\n",
        ("tests/test_framework_parity.py::test_complex_law",),
    ),
    Plant(
        "keras-he-normal-plain",
        "keras.HeNormal drawn from a plain normal (PyTorch's law) instead of Keras' truncated one",
        "initsim/framework_names.py",
        '_named_keras("HeNormal", lambda: _I.HeNormal(distribution=_TRUNC)),',
        '_named_keras("HeNormal", _I.HeNormal),',
        ("tests/test_framework_parity.py::test_iid_law_is_the_documented_one",),
    ),
    Plant(
        "keras-normal-untruncated",
        "Keras' VarianceScaling(distribution='normal') read as a plain normal (Keras 2 / JAX)",
        "initsim/framework_names.py",
        '        "normal": "truncated_normal",\n',
        '        "normal": "normal",\n',
        ("tests/test_framework_parity.py::test_iid_law_is_the_documented_one",),
    ),
    Plant(
        "jax-uniform-symmetric",
        "jax.uniform(scale) drawn on [-scale, scale) instead of [0, scale)",
        "initsim/framework_names.py",
        'lambda scale: _I.Uniform(0.0, _I._real("scale", scale, positive=True))',
        'lambda scale: _I.Uniform(-scale, _I._real("scale", scale, positive=True))',
        ("tests/test_framework_parity.py::test_iid_law_is_the_documented_one",),
    ),
    Plant(
        "float16-uniform-closed",
        "a float16 uniform rounds onto its excluded upper bound",
        "initsim/initializers.py",
        "    if float(hi) > high or (open_high and float(hi) == high):\n",
        "    if float(hi) > high:\n",
        (
            "tests/test_framework_parity.py::test_half_open_uniform_excludes_its_upper_bound_in_float16",
        ),
    ),
    Plant(
        "residual-alpha-squared",
        "the residual branch scaled by alpha^2 instead of alpha in the forward pass",
        "initsim/engine/residual.py",
        "            f = a * fbuf[k]\n",
        "            f = a * a * fbuf[k]\n",
        ("tests/test_residual_kernel.py::test_kernel_matches_twin_for_activations_and_biases",),
    ),
    Plant(
        "residual-skip-backward",
        "the residual backward pass drops the skip multiplier",
        "initsim/engine/residual.py",
        "            g[k] = sk * gz[k] + e[k]\n",
        "            g[k] = gz[k] + e[k]\n",
        ("tests/test_residual_kernel.py::test_kernel_matches_twin_for_activations_and_biases",),
    ),
    Plant(
        "residual-check-branch-q-1.05",
        "the residual check predicts E[branch q] 5 % too large",
        "initsim/residual_check.py",
        "        pred = s1 * ms_u + sb\n",
        "        pred = 1.05 * s1 * ms_u + sb\n",
        ("tests/test_residual_check.py::test_correct_configurations_pass",),
    ),
    Plant(
        "residual-check-no-holm",
        "the residual check tests every row at alpha (no multiplicity correction)",
        "initsim/residual_check.py",
        "    reject = holm(np.array([rows[i].p_value for i in tested]), alpha) if tested else []\n",
        "    reject = [rows[i].p_value <= alpha for i in tested]\n",
        ("tests/test_residual_check.py::test_holm_over_blocks_keeps_the_family_rate",),
    ),
    Plant(
        "residual-exact-dropped-1in",
        "the exact residual backward pass (one input) drops the part of W^T d inside span(x)",
        "initsim/engine/residual_exact.py",
        "            out[i] = x[i] * coef + sz * (out[i] - x[i] * proj)\n",
        "            out[i] = sz * (out[i] - x[i] * proj)\n",
        (RESIDUAL_LAW_TEST,),
    ),
    Plant(
        "residual-exact-independent-gram",
        "the exact residual backward pass (B inputs) draws W^T D independently of the forward pass",
        "initsim/engine/residual_exact.py",
        "    g = conditioned_transpose(law, scale, k0, k1, t, xm, am, dm, pinv, rank)\n",
        "    g = conditioned_transpose(law, scale, k0, k1, t, xm, am, dm, pinv * 0.0, 0)\n",
        (RESIDUAL_LAW_TEST,),
    ),
    Plant(
        "residual-exact-scale-mean",
        "the exact residual sampler scales W x by the input's root mean square, not its norm",
        "initsim/engine/residual_exact.py",
        "        c = params_t[P_SCALE] * math.sqrt(x2)\n",
        "        c = params_t[P_SCALE] * math.sqrt(x2 / nin)\n",
        ("tests/test_residual_kernel.py::test_exact_one_input_shortcut_matches_the_twin",),
    ),
    Plant(
        "residual-exact-orthogonal-gain",
        "the exact residual sampler drops an orthogonal branch matrix's gain forward",
        "initsim/engine/residual_exact.py",
        "        a[:, :] = params_t[P_GAIN] * np.dot(np.ascontiguousarray(psi[:nout]), r)\n",
        "        a[:, :] = np.dot(np.ascontiguousarray(psi[:nout]), r)\n",
        ("tests/test_residual_kernel.py::test_exact_orthogonal_and_zero_matrices_match_the_twin",),
    ),
    Plant(
        "residual-exact-keeps-dense-law-check",
        "the residual plan lets a uniform branch law through to the exact sampler",
        "initsim/residual.py",
        '        if spec.law == "constant" and spec.value == 0.0:\n',
        '        if spec.law in ("constant", "uniform"):\n',
        ("tests/test_residual_api.py::test_auto_takes_the_exact_sampler_where_it_applies",),
    ),
    Plant(
        "report-figure-any-arch",
        "a figure kind accepts cells of the other architecture (an MLP figure of residual cells)",
        "initsim/report/kinds.py",
        "    if kind.arch is None:\n        return None\n",
        "    if kind.arch is None or True:\n        return None\n",
        (
            "tests/test_residual_study.py::"
            "test_a_figure_of_the_wrong_architecture_is_refused_before_running",
        ),
    ),
    Plant(
        "study-table-residual-act-zero",
        "the study table fills a residual cell's activation-mean column with 0, not NaN",
        "initsim/study/results.py",
        "                act_mean = act_var = [math.nan] * r.depth\n",
        "                act_mean = act_var = [0.0] * r.depth\n",
        (
            "tests/test_residual_study.py::test_the_table_has_one_row_per_block_with_the_stream_statistics",
        ),
    ),
    Plant(
        "shaped-phi-output-shift-dropped",
        "the kernels' shaped phi drops the output shift",
        "initsim/activations.py",
        "    return act[5] * (v + act[6])\n",
        "    return act[5] * v\n",
        (
            "tests/test_shaping_check.py::test_the_kernel_applies_the_shapings_transform",
            "tests/test_user_activations.py::test_shaped_kernel_matches_its_numpy_twin",
        ),
    ),
    Plant(
        "shaped-dphi-input-scale-dropped",
        "the kernels' shaped phi' forgets the chain rule's input scale",
        "initsim/activations.py",
        "    return act[5] * act[3] * d\n",
        "    return act[5] * d\n",
        ("tests/test_user_activations.py::test_shaped_kernel_matches_its_numpy_twin",),
    ),
    Plant(
        "user-dphi-calls-phi",
        "the kernels call a registered activation's phi where its phi' belongs",
        "initsim/activations.py",
        "        d = act[8](u)\n",
        "        d = act[7](u)\n",
        (
            "tests/test_user_activations.py::test_kernels_run_a_registered_copy_of_relu_like_relu",
            "tests/test_user_activations.py::test_kernel_of_a_user_activation_matches_its_numpy_twin",
        ),
    ),
    Plant(
        "user-theory-variance-5pc",
        "the theory's integrand of a registered activation evaluates phi at a 5% larger input",
        "initsim/theory/gaussian.py",
        "            u = a_in * (sign * s * z) + b_in\n            p = a_out * (phi_c(u)",
        "            u = 1.05 * a_in * (sign * s * z) + b_in\n            p = a_out * (phi_c(u)",
        (
            "tests/test_user_activations.py::test_registered_copy_has_the_builtins_theory",
            "tests/test_user_activations.py::"
            "test_check_passes_a_registered_activation_and_fails_a_wrong_claim",
        ),
    ),
    Plant(
        "shaped-reduction-shift-cross-term",
        "the reduction of a shaped activation to its base halves the shift's cross term",
        "initsim/theory/gaussian.py",
        "        return a * a * (expect_array(base, qb, PHI2) + 2.0 * b * mean + b * b)\n",
        "        return a * a * (expect_array(base, qb, PHI2) + b * mean + b * b)\n",
        (
            "tests/test_user_activations.py::test_the_shaped_reduction_agrees_with_direct_quadrature",
        ),
    ),
    Plant(
        "derived-derivative-forward-difference",
        "the derived phi' uses phi(x) where the central stencil needs phi(x - h)",
        "initsim/user_activation.py",
        "        return (8.0 * (phi_j(x + h) - phi_j(x - h)) - (phi_j(x + 2.0 * h)",
        "        return (8.0 * (phi_j(x + h) - phi_j(x)) - (phi_j(x + 2.0 * h)",
        (
            "tests/test_user_activations.py::"
            "test_derived_derivative_is_accurate_for_smooth_functions",
        ),
    ),
    Plant(
        "derived-derivative-wrong-side-of-kink",
        "right of a kink the derived phi' takes the left one-sided stencil",
        "initsim/user_activation.py",
        "                if x > k:\n                    return one_sided(x, h)\n",
        "                if x > k:\n                    return one_sided(x, -h)\n",
        ("tests/test_user_activations.py::test_derived_derivative_is_one_sided_next_to_a_kink",),
    ),
    Plant(
        "critical-line-ignores-derived-derivative-accuracy",
        "the critical sigma_w2 demands 1e-13 of a chi_1 that a numerical phi' gives to 1e-12",
        "initsim/theory/meanfield.py",
        "    tol = 1e-10 if act.user is not None and act.user.derived_dphi else 1e-13\n",
        "    tol = 1e-13\n",
        ("tests/test_user_activations.py::test_critical_line_of_a_numerically_derived_derivative",),
    ),
    Plant(
        "pair-skew-guard-from-the-sample",
        "check_pair's skewness guard reads the sample's relative variance of q^L",
        "initsim/shaping_check.py",
        "            row = skew_regime(row, _predicted_rel_var(target, q_pred, sigma_w2, n), "
        "result.nets)\n",
        "            row = skew_regime(row, float(np.var(obs) / np.mean(obs) ** 2), result.nets)\n",
        (
            "tests/test_shaping_check.py::"
            "test_a_too_skewed_q_row_is_left_untested_and_the_rest_is_calibrated",
        ),
    ),
    Plant(
        "user-hash-ignores-parameters",
        "a registered activation's source hash leaves out its parameter values",
        "initsim/user_activation.py",
        "    h.update(repr(sorted(params.items())).encode())\n",
        "",
        (
            "tests/test_user_activations.py::"
            "test_parameters_compile_variants_and_bad_ones_are_named",
        ),
    ),
    Plant(
        "check-pair-ignores-the-claim",
        "check_pair predicts from the propagated activation even when given a claim",
        "initsim/shaping_check.py",
        "    target = activation if claim is None else claim\n",
        "    target = activation\n",
        (
            "tests/test_shaping_check.py::"
            "test_tat_keeps_its_promise_at_depth_100_and_plain_relu_does_not",
        ),
    ),
    Plant(
        "shaping-figure-ignores-the-claim",
        "the shaping-profile figure holds an unshaped cell to its own maps despite its claim",
        "initsim/report/shaping_claims.py",
        "        out[held] = source\n",
        "        out[held] = None\n",
        (
            "tests/test_report_shaping.py::test_the_figure_renders_and_its_caption_names_the_verdicts",
            "tests/test_report_shaping.py::test_the_claim_option_decides_the_plain_relu_verdict",
        ),
    ),
    Plant(
        "pair-cell-propagates-the-base-activation",
        "a shaped pair cell propagates its base activation (records the shaping, runs phi)",
        "initsim/study/cells.py",
        "    result = propagate_pair(act, **kwargs, seed=ss, threads=threads)\n",
        "    result = propagate_pair(\n"
        '        getattr(act, "input_scale", None) and act.base or act, **kwargs, seed=ss, '
        "threads=threads\n    )\n",
        (
            "tests/test_study_pairs.py::test_the_shipped_study_passes_tat_and_fails_plain_relu",
            "tests/test_study_pairs.py::test_same_seed_same_arrays_other_seed_other_arrays",
        ),
    ),
    Plant(
        "dks-network-slope-per-layer",
        "DKS sets the local C'(1) to zeta instead of zeta^(1/depth)",
        "initsim/theory/shaping.py",
        '    local = zeta ** (1.0 / depth)\n    targets = [("Q(1)", 1.0)]\n',
        '    local = zeta\n    targets = [("Q(1)", 1.0)]\n',
        ("tests/test_theory_shaping.py::test_dks_conditions_against_mpmath",),
    ),
    Plant(
        "tat-output-scale",
        "TAT's leaky-ReLU output scale sqrt(2 / (1 + slope)) instead of sqrt(2 / (1 + slope^2))",
        "initsim/theory/shaping.py",
        "    out_scale = math.sqrt(2.0 / (1.0 + slope * slope))\n",
        "    out_scale = math.sqrt(2.0 / (1.0 + slope))\n",
        ("tests/test_theory_shaping.py::test_tat_leaky_relu",),
    ),
    Plant(
        "trainable-depth-3-xi",
        "the trainable depth 3 xi_c instead of Schoenholz et al.'s 6 xi_c",
        "initsim/theory/shaping.py",
        "    return 6.0 * xi_c\n",
        "    return 3.0 * xi_c\n",
        ("tests/test_cli_shaping.py::test_the_phase_report_has_the_trainable_depth",),
    ),
    Plant(
        "audit-packed-tensor-not-split",
        "the audit treats nn.MultiheadAttention's packed in_proj_weight as one tensor",
        "initsim/audit/inventory.py",
        "            if isinstance(module, nn.MultiheadAttention) and pname in (\n",
        "            if False and pname in (\n",
        ("tests/test_audit.py::test_each_planted_bug_is_found_and_its_clean_twin_is_not",),
    ),
    Plant(
        "audit-true-fan-out-ignores-groups",
        "the audit's true fan_out of a convolution ignores groups (as PyTorch's does)",
        "initsim/audit/inventory.py",
        "                    true = (fi, shape[0] // groups * receptive)\n",
        "                    true = (fi, shape[0] * receptive)\n",
        (
            "tests/test_audit.py::test_each_planted_bug_is_found_and_its_clean_twin_is_not",
            "tests/test_audit.py::test_fans_as_pytorch_computes_them_and_the_true_ones",
        ),
    ),
    Plant(
        "audit-theory-sigma-w2-from-fan-out",
        "a Linear's length map (chain and residual rows) takes Var(W) times fan_out, not fan_in",
        "initsim/audit/chain_theory.py",
        "    sw = w.entry.true_fan_in * w.variance\n",
        "    sw = w.entry.true_fan_out * w.variance\n",
        ("tests/test_audit.py::test_each_planted_bug_is_found_and_its_clean_twin_is_not",),
    ),
    Plant(
        "audit-uniform-bound-sqrt2",
        "the audit's law test expects a uniform law's max |z| at sqrt(2) instead of sqrt(3)",
        "initsim/audit/laws.py",
        "    if abs(bound - math.sqrt(3.0)) <= 0.05 * math.sqrt(3.0) and kurt < -0.9:\n",
        "    if abs(bound - math.sqrt(2.0)) <= 0.05 * math.sqrt(2.0) and kurt < -0.9:\n",
        ("tests/test_audit.py::test_laws_and_schemes_of_pytorch_defaults_and_he",),
    ),
    Plant(
        "audit-declared-init-never-read",
        "the audit never compares a scale parameter with its module's declared init value",
        "initsim/audit/findings.py",
        "    if e.declared is None or s.constant is None:\n",
        "    if True:\n",
        ("tests/test_audit.py::test_each_planted_bug_is_found_and_its_clean_twin_is_not",),
    ),
    Plant(
        "audit-theory-z-on-few-inits",
        "the chain theory's rows use a normal quantile where t with inits - 1 df belongs",
        "initsim/audit/chain_theory.py",
        "    p = float(2.0 * _stats.t.sf(excess / se, df)) if se > 0",
        "    p = float(2.0 * _stats.norm.sf(excess / se)) if se > 0",
        ("tests/test_audit.py::test_false_positive_budget_100_seeds",),
    ),
    Plant(
        "audit-spp-branch-is-the-stream",
        "the Signal Propagation Plot's residual-branch variance is read from the block's output",
        "initsim/audit/dynamic.py",
        '                b.values["channel_var"] if b is not None else nan,\n',
        '                s.values["channel_var"] if b is not None else nan,\n',
        (
            "tests/test_audit.py::"
            "test_signal_propagation_plot_of_a_pre_ln_stack_adds_the_branch_variances",
        ),
    ),
    Plant(
        "audit-residual-skip-dropped",
        "the residual rows predict the branch alone, without the skip's mean square",
        "initsim/audit/residual_theory.py",
        "        pred = q_a + branch\n",
        "        pred = branch\n",
        (
            "tests/test_audit_residual.py::"
            "test_the_rows_predictions_agree_with_the_residual_length_map",
            "tests/test_audit_residual.py::test_an_untraceable_model_is_searched_inside",
        ),
    ),
    Plant(
        "audit-residual-pre-norm-not-anchored",
        "a branch's length map starts from the skip's q, not its measured input (pre-norm's)",
        "initsim/audit/residual_theory.py",
        "        steps, q_u = site.steps, tally.per_init(site, site.anchor)\n",
        "        steps, q_u = site.steps, q_a\n",
        (
            "tests/test_audit_residual.py::"
            "test_the_rows_predictions_agree_with_the_residual_length_map",
            "tests/test_audit_residual.py::test_a_parameter_skip_multiplier_is_measured_as_added",
        ),
    ),
    Plant(
        "audit-residual-skip-multiplier-ignored",
        "the skip of alpha * x + f(x) is measured as x, without its multiplier",
        "initsim/audit/residual_theory.py",
        "            return skip, branch, root\n",
        "            return root, branch, root\n",
        (
            "tests/test_audit_residual.py::test_a_skip_multiplier_deep_norm",
            "tests/test_audit_residual.py::test_a_parameter_skip_multiplier_is_measured_as_added",
        ),
    ),
    Plant(
        "audit-residual-uncentred-branch-modelled",
        "a branch that does not end in a Linear (x + relu(W x)) gets a theory row",
        "initsim/audit/residual_theory.py",
        "    if projection is None:  # e.g. x + relu(W x): not centred given the skip\n",
        "    if projection is None and not steps:\n",
        ("tests/test_audit_residual.py::test_a_branch_not_centred_given_the_skip_is_not_modelled",),
    ),
    Plant(
        "audit-residual-constant-bias-modelled",
        "a branch whose output bias is a nonzero constant gets a theory row",
        "initsim/audit/residual_theory.py",
        "    if bias is not None and bias.constant:  # a nonzero constant: <a, b> != 0\n",
        "    if bias is not None and bias.constant is None:\n",
        ("tests/test_audit_residual.py::test_a_branch_not_centred_given_the_skip_is_not_modelled",),
    ),
    Plant(
        "audit-residual-dropout-factor-inverted",
        "training-mode dropout multiplies a branch's mean square by 1 - p instead of 1 / (1 - p)",
        "initsim/audit/residual_theory.py",
        "            m /= 1.0 - step.value\n",
        "            m *= 1.0 - step.value\n",
        ("tests/test_audit_residual.py::test_multipliers_and_dropout_enter_the_branch_map",),
    ),
    Plant(
        "audit-residual-scale-rule-inverted",
        "the scaled-residual rule flags the output projections that differ from their siblings",
        "initsim/audit/findings.py",
        "    unscaled = [s for s in proj if s.scheme == ref]\n",
        "    unscaled = [s for s in proj if s.scheme != ref]\n",
        (
            "tests/test_audit_residual.py::"
            "test_gpt2_scaled_init_never_applied_is_found_with_its_expected_variance",
            "tests/test_audit.py::test_each_planted_bug_is_found_and_its_clean_twin_is_not",
        ),
    ),
    Plant(
        "audit-pdf-drops-the-findings",
        "the audit's PDF says 'no findings' whatever was found",
        "initsim/audit/pdf.py",
        "    for f in report.findings:\n        blocks.append(\n",
        "    for f in []:\n        blocks.append(\n",
        (
            "tests/test_audit.py::"
            "test_the_pdf_holds_findings_inventory_profiles_and_is_reproducible",
        ),
    ),
    Plant(
        "sgd-step-1e-12",
        "a relative 1e-12 perturbation of the first SGD step",
        "initsim/train.py",
        "            params[p] -= lr * G[p]",
        "            params[p] -= (lr * (1.0 + 1e-12) if t == 0 else lr) * G[p]",
        ("tests/test_train.py::test_one_sgd_step_matches_numpy_twin",),
    ),
)


@dataclass(frozen=True)
class Outcome:
    """What running one plant gave.

    Attributes
    ----------
    plant : Plant
        The plant.
    status : str
        ``"caught"``, ``"survived"`` or ``"error"``.
    detail : str
        The failing tests (caught), or what went wrong (error).
    seconds : float
        Wall time.
    """

    plant: Plant
    status: str
    detail: str
    seconds: float


def planted_text(plant: Plant, root: Path = ROOT) -> str:
    """Return the planted file's text with the plant applied.

    Parameters
    ----------
    plant : Plant
        The plant.
    root : pathlib.Path
        Repository root whose file is read.

    Returns
    -------
    str
        The new text.

    Raises
    ------
    ValueError
        When ``old`` does not occur exactly once (a stale plant), or ``new``
        equals ``old``.
    """
    text = (root / plant.path).read_text(encoding="utf-8")
    count = text.count(plant.old)
    if count != 1:
        raise ValueError(
            f"plant {plant.name!r}: its text occurs {count} times in {plant.path} (must be once); "
            f"update the plant to the current source"
        )
    if plant.new == plant.old:
        raise ValueError(f"plant {plant.name!r} changes nothing")
    return text.replace(plant.old, plant.new)


def _module_name(path: str) -> str:
    parts = Path(path).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def importers(module: str, root: Path = ROOT) -> set[str]:
    """Return ``module`` and every package module that imports it, directly or not.

    Parameters
    ----------
    module : str
        Dotted module name, e.g. ``"initsim.engine.exact"``.
    root : pathlib.Path
        Repository root.

    Returns
    -------
    set of str
        Dotted names.
    """
    imports: dict[str, set[str]] = {}
    for file in (root / "initsim").rglob("*.py"):
        name = _module_name(str(file.relative_to(root)))
        found: set[str] = set()
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        imports[name] = found
    closure = {module}
    grew = True
    while grew:
        grew = False
        for name, found in imports.items():
            if name not in closure and found & closure:
                closure.add(name)
                grew = True
    return closure


def _copy_tree(dest: Path) -> None:
    for item in COPIED:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("*.pyc", "*.pdf"))
        else:
            shutil.copy2(src, dest / item)


def _drop_numba_cache(dest: Path, modules: set[str]) -> None:
    """Delete the copied Numba cache entries of ``modules`` (file stems ``module.func-line``)."""
    for module in modules:
        parts = module.split(".")
        package_dir = dest.joinpath(*parts[:-1]) / "__pycache__"
        init_dir = dest.joinpath(*parts) / "__pycache__"  # a package's __init__
        for cache_dir, stem in ((package_dir, parts[-1]), (init_dir, "__init__")):
            if cache_dir.is_dir():
                for entry in cache_dir.iterdir():
                    if entry.suffix in (".nbi", ".nbc") and entry.name.startswith(stem + "."):
                        entry.unlink()


def _failed_tests(output: str) -> list[str]:
    return re.findall(r"^FAILED (\S+)", output, flags=re.MULTILINE)


def run_plant(plant: Plant, keep: bool = False, timeout_s: float = TIMEOUT_S) -> Outcome:
    """Apply one plant to a temporary copy and run its tests.

    Parameters
    ----------
    plant : Plant
        The plant.
    keep : bool
        Keep the temporary copy (its path is printed in the detail).
    timeout_s : float
        Limit of the test run.

    Returns
    -------
    Outcome
        Caught, survived or error.
    """
    t0 = time.perf_counter()
    try:
        text = planted_text(plant)
    except ValueError as exc:
        return Outcome(plant, "error", str(exc), 0.0)
    tmp = Path(tempfile.mkdtemp(prefix=f"initsim-plant-{plant.name}-"))
    try:
        _copy_tree(tmp)
        (tmp / plant.path).write_text(text, encoding="utf-8")
        if plant.path.startswith("initsim/"):
            _drop_numba_cache(tmp, importers(_module_name(plant.path)))
        env = dict(os.environ, PYTHONPATH=str(tmp), PYTHONDONTWRITEBYTECODE="1")
        env.pop("NUMBA_CACHE_DIR", None)  # the copy's own in-tree cache
        where = subprocess.run(
            [sys.executable, "-c", "import initsim; print(initsim.__file__)"],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if not where.stdout.strip().startswith(str(tmp)):
            detail = f"the copy's package was not the one imported: {where.stdout}{where.stderr}"
            return Outcome(plant, "error", detail, time.perf_counter() - t0)
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-x",
            "-q",
            "-rf",
            "--no-header",
            "-p",
            "no:cacheprovider",
            "-m",
            "slow or not slow",
            *plant.tests,
        ]
        try:
            proc = subprocess.run(
                cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout_s
            )
        except subprocess.TimeoutExpired:
            return Outcome(plant, "error", f"timed out after {timeout_s:.0f} s", timeout_s)
        seconds = time.perf_counter() - t0
        if proc.returncode == 0:
            return Outcome(plant, "survived", "every test passed", seconds)
        failed = _failed_tests(proc.stdout)
        if proc.returncode == 1 and failed:
            return Outcome(plant, "caught", ", ".join(failed), seconds)
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        return Outcome(plant, "error", f"pytest exit status {proc.returncode}:\n{tail}", seconds)
    finally:
        if keep:
            print(f"  kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the harness; return the exit status (0: every plant caught)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="list the plants and exit")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run these plants only")
    parser.add_argument("--jobs", type=int, default=1, help="plants run at once (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copies")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1; got {args.jobs}")
    plants = list(PLANTS)
    if args.only:
        names = {p.name for p in PLANTS}
        unknown = [n for n in args.only if n not in names]
        if unknown:
            parser.error(f"unknown plant(s) {', '.join(unknown)}; plants: {', '.join(names)}")
        plants = [p for p in PLANTS if p.name in args.only]
    if args.list:
        for p in plants:
            print(f"{p.name:28s} {p.what}  [{p.path}]")
        return 0
    print(f"{len(plants)} plants, {args.jobs} at a time", flush=True)

    def one(plant: Plant) -> Outcome:
        out = run_plant(plant, keep=args.keep)
        print(f"{out.status:9s} {plant.name:28s} {out.seconds:6.0f} s  {out.detail}", flush=True)
        return out

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        outcomes = list(pool.map(one, plants))
    caught = sum(o.status == "caught" for o in outcomes)
    print(f"{caught}/{len(outcomes)} plants caught")
    if any(o.status == "error" for o in outcomes):
        return 2
    return 0 if caught == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
