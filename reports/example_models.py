"""Example PyTorch models for ``initsim audit`` (the README's), each with real-world init bugs.

Run from the repository root, e.g.::

    initsim audit reports.example_models:TinyTransformer --tokens 100,16 --inits 20

``TinyTransformer`` has three bugs the audit names: nn.MultiheadAttention's
packed Q/K/V at half variance, a LayerScale whose ``reset_parameters``
ignores ``init_values``, and a depthwise convolution initialised with
``kaiming_normal_(mode="fan_out")`` (PyTorch's fan_out ignores groups).
``PreLNResidualMLP`` is a clean 12-block pre-LN residual MLP (the audit's
timing example).
"""

from __future__ import annotations

import torch
from torch import nn


class LayerScale(nn.Module):
    """``x * gamma`` with ``gamma`` meant to start at ``init_values`` (a common bug: ones)."""

    def __init__(self, dim: int, init_values: float = 1e-5) -> None:
        super().__init__()
        self.init_values = init_values
        self.gamma = nn.Parameter(torch.empty(dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Set ``gamma`` (to ones: the bug, ``init_values`` is ignored)."""
        nn.init.ones_(self.gamma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale ``x`` channel-wise."""
        return x * self.gamma


class Block(nn.Module):
    """Pre-LN transformer block with a depthwise token mixer."""

    def __init__(self, dim: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ls = LayerScale(dim)
        self.mix = nn.Conv1d(dim, dim, 3, padding=1, groups=dim)
        nn.init.kaiming_normal_(self.mix.weight, mode="fan_out", nonlinearity="relu")
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply attention, token mixing and the MLP, each residual."""
        h = self.norm1(x)
        x = x + self.ls(self.attn(h, h, h, need_weights=False)[0])
        x = x + self.mix(x.transpose(1, 2)).transpose(1, 2)
        return x + self.fc2(nn.functional.gelu(self.fc1(self.norm2(x))))


class TinyTransformer(nn.Module):
    """Token embedding, two blocks, a head."""

    def __init__(self, vocab: int = 100, dim: int = 32, blocks: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.blocks = nn.Sequential(*[Block(dim) for _ in range(blocks)])
        self.head = nn.Linear(dim, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Return the logits of every token position."""
        return self.head(self.blocks(self.embed(tokens)))


class ResidualBlock(nn.Module):
    """``x + fc2(relu(fc1(LayerNorm(x))))`` with He weights, zero biases."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        for layer in (self.fc1, self.fc2):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the stream plus the branch."""
        return x + self.fc2(torch.relu(self.fc1(self.norm(x))))


class PreLNResidualMLP(nn.Sequential):
    """12 pre-LN residual blocks of width 256 (clean)."""

    def __init__(self, depth: int = 12, width: int = 256) -> None:
        super().__init__(*[ResidualBlock(width) for _ in range(depth)])
