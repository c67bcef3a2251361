"""Hypothesis strategies shared by the property tests (bounded, no NaN)."""

from __future__ import annotations

from hypothesis import strategies as st

from initsim import activations, initializers

#: Seeds as users pass them.
seeds = st.integers(min_value=0, max_value=2**32 - 1)
#: Small hidden widths and depths: property tests run many examples.
widths = st.integers(min_value=2, max_value=48)
depths = st.integers(min_value=1, max_value=6)
#: Bounds of the statistical properties' nets (scripts/property_calibration.py runs
#: their tests at these extremes). One odd and one even bound: hypothesis draws
#: bounds often, and the ReLU pass treats an odd last unit on its own.
NARROWEST, WIDEST, DEEPEST = 1, 96, 6
#: One width per hidden layer, 1 to DEEPEST layers (different widths catch fan mix-ups).
width_profiles = st.lists(
    st.integers(min_value=NARROWEST, max_value=WIDEST), min_size=1, max_size=DEEPEST
)
#: Input dimensions ``n_0``, down to a single input unit.
input_dims = st.integers(min_value=NARROWEST, max_value=WIDEST)
#: Every activation in the registry.
activation_names = st.sampled_from(activations.names())
#: Bias-free positively homogeneous activations.
homogeneous_activations = st.sampled_from(["relu", "leaky_relu", "linear"])
#: Continuous random weight laws the engine supports with any activation.
random_inits = st.sampled_from(
    [
        "he_normal",
        "he_uniform",
        "glorot_normal",
        "glorot_uniform",
        "lecun_normal",
        "orthogonal",
        "torch_linear_default",
    ]
)
#: Laws the exact sampler covers.
exact_inits = st.sampled_from(["he_normal", "lecun_normal", "glorot_normal", "orthogonal"])
#: Initializers with a variance-scaling law, and their fan modes.
variance_scaling_modes = st.sampled_from(["fan_in", "fan_out", "fan_avg"])
variance_scaling_distributions = st.sampled_from(["normal", "truncated_normal", "uniform"])
scales = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False)
positive_factors = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False)
fans = st.integers(min_value=1, max_value=4096)
thread_counts = st.sampled_from([1, 2, 4])
methods = st.sampled_from(["exact", "dense"])

__all__ = [
    "DEEPEST",
    "NARROWEST",
    "WIDEST",
    "activation_names",
    "depths",
    "exact_inits",
    "fans",
    "homogeneous_activations",
    "initializers",
    "input_dims",
    "methods",
    "positive_factors",
    "random_inits",
    "scales",
    "seeds",
    "thread_counts",
    "variance_scaling_distributions",
    "variance_scaling_modes",
    "width_profiles",
    "widths",
]
