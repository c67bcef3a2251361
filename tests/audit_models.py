"""Tiny PyTorch models for the audit tests: each planted init bug next to its clean twin.

Importable as ``tests.audit_models:NAME`` from the repository root (the
command-line tests use that reference).
"""

from __future__ import annotations

import math
import types

import torch
from torch import nn


class DefaultMLP(nn.Module):
    """PyTorch's own defaults everywhere: clean."""

    def __init__(self, d: int = 24, h: int = 48, depth: int = 3) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(d if i == 0 else h, h) for i in range(depth)])
        self.head = nn.Linear(h, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.relu(layer(x))
        return self.head(x)


class HeMLP(DefaultMLP):
    """He-normal weights and zero biases for every layer: clean."""

    def __init__(self, skip: int | None = None) -> None:
        super().__init__()
        for i, layer in enumerate([*self.layers, self.head]):
            if i == skip:
                continue
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)


class HeMLPSkipsOne(HeMLP):
    """Bug: the init loop skips layer 1, left at the constructor default."""

    def __init__(self) -> None:
        super().__init__(skip=1)


class NonCentred(DefaultMLP):
    """Bug: He variance around a mean of 0.05 (a coherent part the variance does not show)."""

    def __init__(self) -> None:
        super().__init__()
        for layer in [*self.layers, self.head]:
            nn.init.normal_(layer.weight, mean=0.05, std=(2.0 / layer.in_features) ** 0.5)
            nn.init.zeros_(layer.bias)


class PackedAttention(nn.Module):
    """Bug (PyTorch's own): Glorot over the packed (3E, E) in_proj_weight."""

    def __init__(self, e: int = 32) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(e, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mha(x, x, x)[0]


class SeparateAttention(PackedAttention):
    """Q, K and V slices initialised as separate E x E projections: clean."""

    def __init__(self, e: int = 32) -> None:
        super().__init__(e)
        with torch.no_grad():
            for i in range(3):
                nn.init.xavier_uniform_(self.mha.in_proj_weight[i * e : (i + 1) * e])


class DepthwiseFanOut(nn.Module):
    """Bug: kaiming_normal_(mode='fan_out') on a depthwise conv (C times too small)."""

    mode = "fan_out"

    def __init__(self, c: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, groups=c, padding=1)
        nn.init.kaiming_normal_(self.conv.weight, mode=self.mode, nonlinearity="relu")
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class DepthwiseFanIn(DepthwiseFanOut):
    """kaiming_normal_(mode='fan_in') on a depthwise conv: clean."""

    mode = "fan_in"


class LayerScale(nn.Module):
    """Bug: reset_parameters sets gamma to ones, ignoring init_values = 1e-5."""

    honours_init_values = False

    def __init__(self, d: int = 32, init_values: float = 1e-5) -> None:
        super().__init__()
        self.init_values = init_values
        self.gamma = nn.Parameter(torch.empty(d))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        value = self.init_values if self.honours_init_values else 1.0
        nn.init.constant_(self.gamma, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class LayerScaleFixed(LayerScale):
    """gamma = init_values: clean."""

    honours_init_values = True


class NeverInitialised(nn.Module):
    """Bug: a weight from torch.empty that nobody initialises (NaN here, to be deterministic)."""

    fill = float("nan")

    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d, d).fill_(self.fill))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight


class LeftoverMemory(NeverInitialised):
    """Bug: uninitialised memory of tiny values (as torch.empty often holds)."""

    fill = 1e-30


class ConstantInit(DefaultMLP):
    """Bug: every weight 0.1 (symmetry never broken)."""

    def __init__(self) -> None:
        super().__init__()
        for layer in [*self.layers, self.head]:
            nn.init.constant_(layer.weight, 0.1)


class PreLNResidual(nn.Module):
    """A pre-LN residual MLP, He branches with a zero-initialised last layer: clean."""

    def __init__(self, d: int = 32, blocks: int = 3) -> None:
        super().__init__()
        self.norms = nn.ModuleList([nn.LayerNorm(d) for _ in range(blocks)])
        self.fc1 = nn.ModuleList([nn.Linear(d, 2 * d) for _ in range(blocks)])
        self.fc2 = nn.ModuleList([nn.Linear(2 * d, d) for _ in range(blocks)])
        for a, b in zip(self.fc1, self.fc2, strict=True):
            nn.init.kaiming_normal_(a.weight, nonlinearity="relu")
            nn.init.zeros_(a.bias)
            nn.init.zeros_(b.weight)
            nn.init.zeros_(b.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for norm, a, b in zip(self.norms, self.fc1, self.fc2, strict=True):
            x = x + b(torch.relu(a(norm(x))))
        return x


class PreLNBlock(nn.Module):
    """``x + fc2(relu(fc1(LayerNorm(x))))``, He weights and zero biases in both branch layers."""

    def __init__(self, d: int = 16, hidden: int = 32) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, hidden)
        self.fc2 = nn.Linear(hidden, d)
        for layer in (self.fc1, self.fc2):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(torch.relu(self.fc1(self.norm(x))))


def pre_ln_stack(blocks: int = 3) -> nn.Module:
    """Three :class:`PreLNBlock` in a row (the audit hooks each block: the stream)."""
    return nn.Sequential(*[PreLNBlock() for _ in range(blocks)])


class NonCentredResidual(nn.Sequential):
    """Bug: three pre-LN blocks whose last branch layer is He around a mean of 0.1."""

    def __init__(self, blocks: int = 3) -> None:
        super().__init__(*[PreLNBlock() for _ in range(blocks)])
        for block in self:
            with torch.no_grad():
                block.fc2.weight.add_(0.1)


class GPTMLP(nn.Module):
    """GPT-2's MLP: ``c_proj(gelu(c_fc(x)))``."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(d, 4 * d)
        self.c_proj = nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(nn.functional.gelu(self.c_fc(x)))


class GPTBlock(nn.Module):
    """Two pre-LN residual branches per layer, as GPT-2's (MLPs in place of attention)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.mlp_1, self.mlp_2 = GPTMLP(d), GPTMLP(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mlp_1(self.ln_1(x))
        return x + self.mlp_2(self.ln_2(x))


class TinyGPT(nn.Module):
    """nanoGPT's init: std 0.02 everywhere, then c_proj at ``0.02 / sqrt(2 n_layer)``: clean."""

    scale_after_generic = True

    def __init__(self, d: int = 32, n_layer: int = 4) -> None:
        super().__init__()
        self.config = types.SimpleNamespace(n_layer=n_layer, n_embd=d)
        self.blocks = nn.ModuleList([GPTBlock(d) for _ in range(n_layer)])
        if not self.scale_after_generic:
            self._scale_residual()
        self.apply(self._init_weights)
        if self.scale_after_generic:
            self._scale_residual()

    def _scale_residual(self) -> None:
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * self.config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class TinyGPTScaleLost(TinyGPT):
    """Bug: the scaled c_proj init runs before the generic loop, which overwrites it."""

    scale_after_generic = False


class PostLNBlock(nn.Module):
    """``LayerNorm(x + fc2(tanh(fc1(x))))`` with LeCun weights (BERT's order; mean field)."""

    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.fc1, self.fc2, self.norm = nn.Linear(d, 2 * d), nn.Linear(2 * d, d), nn.LayerNorm(d)
        for layer in (self.fc1, self.fc2):
            nn.init.normal_(layer.weight, std=1.0 / math.sqrt(layer.in_features))
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.fc2(torch.tanh(self.fc1(x))))


class DeepNormBlock(nn.Module):
    """DeepNorm (Wang et al. 2022): ``LN(alpha x + f(x))``, ``alpha = (2N)^(1/4)``: clean.

    The branch ``fc2(relu(fc1(x)))`` is He, then Glorot at gain ``beta = (8N)^(-1/4)``.
    """

    def __init__(self, d: int = 16, depth: int = 6) -> None:
        super().__init__()
        self.alpha = (2.0 * depth) ** 0.25
        self.fc1, self.fc2, self.norm = nn.Linear(d, 2 * d), nn.Linear(2 * d, d), nn.LayerNorm(d)
        nn.init.kaiming_normal_(self.fc1.weight, nonlinearity="relu")
        nn.init.xavier_normal_(self.fc2.weight, gain=(8.0 * depth) ** -0.25)
        for layer in (self.fc1, self.fc2):
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x * self.alpha + self.fc2(torch.relu(self.fc1(x))))


def deep_norm_stack(blocks: int = 3) -> nn.Module:
    """Three :class:`DeepNormBlock` in a row (a skip multiplier, post-LN)."""
    return nn.Sequential(*[DeepNormBlock(depth=blocks) for _ in range(blocks)])


#: (buggy model, the rule that must name it, the tensor it names, its clean twin, input shape)
PLANTED = (
    (DefaultMLP, "activation-mismatch", "layers.0.weight", HeMLP, (24,)),
    (HeMLPSkipsOne, "left-at-default", "layers.1.weight", HeMLP, (24,)),
    (NonCentred, "signal-vs-theory", "layers.1 (layer 2)", HeMLP, (24,)),
    (PackedAttention, "packed-slice", "mha.in_proj_weight[q]", SeparateAttention, (5, 32)),
    (DepthwiseFanOut, "grouped-conv-fan", "conv.weight", DepthwiseFanIn, (16, 6, 6)),
    (LayerScale, "declared-init-ignored", "gamma", LayerScaleFixed, (32,)),
    (NeverInitialised, "nonfinite", "weight", HeMLP, (16,)),
    (NonCentredResidual, "signal-vs-theory", "1 (residual addition 2)", pre_ln_stack, (16,)),
    (
        TinyGPTScaleLost,
        "residual-scale-not-applied",
        "blocks.0.mlp_1.c_proj.weight ... blocks.3.mlp_2.c_proj.weight (8 tensors)",
        TinyGPT,
        (32,),
    ),
    (LeftoverMemory, "uninitialised", "weight", HeMLP, (16,)),
    (ConstantInit, "symmetry", "layers.0.weight", HeMLP, (24,)),
)

#: Models without any init bug, with their input shapes.
CLEAN = (
    (HeMLP, (24,)),
    (SeparateAttention, (5, 32)),
    (DepthwiseFanIn, (16, 6, 6)),
    (LayerScaleFixed, (32,)),
    (PreLNResidual, (32,)),
    (pre_ln_stack, (16,)),
    (TinyGPT, (32,)),
    (deep_norm_stack, (16,)),
)
