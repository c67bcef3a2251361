"""What a model's parameters are: one row per tensor (or packed slice), with its fans.

:func:`entries` walks ``model.named_modules()`` in order and lists every
parameter the module owns directly, with

* its fans **as PyTorch computes them** (``torch.nn.init._calculate_fan_in_and_fan_out``:
  ``fan_in = size(1) * receptive``, ``fan_out = size(0) * receptive``), which
  is what ``kaiming_*_`` and ``xavier_*_`` use, and
* its **true fans**: the connections into one output unit and out of one
  input unit. They differ for grouped convolutions (``fan_out = out / groups *
  receptive``: PyTorch's is ``groups`` times too large, so
  ``kaiming_normal_(mode="fan_out")`` draws a variance ``groups`` times too
  small; ``groups = C`` for depthwise) and for the packed
  ``in_proj_weight`` of ``nn.MultiheadAttention``, which is split into its Q,
  K and V slices (each ``E x E``: PyTorch's fans of the packed ``3E x E``
  tensor give Glorot a variance ``2 / (E + 3E)``, half that of separate
  projections).

A bias gets its module's weight fans (``nn.Linear``'s default bias is
``U(+-1/sqrt(fan_in))``). Normalisation affines (LayerNorm, BatchNorm,
GroupNorm) and 1-D scales have no fans.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Entry", "entries"]

#: Module attributes that declare the initial value of a scale parameter (LayerScale, ReZero).
INIT_VALUE_ATTRS = ("init_values", "init_value", "layer_scale_init_value", "init_scale")


@dataclass(frozen=True)
class Entry:
    """One audited tensor: a parameter, or a slice of a packed one.

    Attributes
    ----------
    path : str
        ``module.path.param`` (a slice adds ``[q]``, ``[k]`` or ``[v]``).
    module : str
        The owning module's path.
    module_type : str
        Its class name (``Conv2d(groups=8)`` for a grouped convolution).
    param : str
        The parameter's name in the module.
    shape : tuple of int
        The tensor's (or slice's) shape.
    rows : slice or None
        The slice of the parameter along dimension 0.
    fan_in, fan_out : int or None
        PyTorch's fans (of the whole parameter; None for 0-/1-D parameters).
    true_fan_in, true_fan_out : int or None
        The connections per unit (groups- and packing-aware).
    role : str
        ``"weight"``, ``"bias"``, ``"norm"`` (a normalisation affine),
        ``"scale"`` (another 1-D parameter) or ``"embedding"``.
    groups : int
        Convolution groups (1 otherwise).
    declared : float or None
        The init value the module declares for a scale parameter
        (``init_values`` and friends), if any.
    """

    path: str
    module: str
    module_type: str
    param: str
    shape: tuple[int, ...]
    rows: slice | None
    fan_in: int | None
    fan_out: int | None
    true_fan_in: int | None
    true_fan_out: int | None
    role: str
    groups: int = 1
    declared: float | None = None


def _torch_fans(tensor: Any) -> tuple[int | None, int | None]:
    if tensor.dim() < 2:
        return None, None
    receptive = 1
    for s in tensor.shape[2:]:
        receptive *= int(s)
    return int(tensor.shape[1]) * receptive, int(tensor.shape[0]) * receptive


def _declared(module: Any) -> float | None:
    for attr in INIT_VALUE_ATTRS:
        v = getattr(module, attr, None)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return float(v)
    return None


def entries(model: Any) -> list[Entry]:
    """List the audited tensors of a model, in module order.

    Parameters
    ----------
    model : torch.nn.Module
        The model.

    Returns
    -------
    list of Entry
        One per parameter; ``nn.MultiheadAttention``'s packed
        ``in_proj_weight`` and ``in_proj_bias`` give three each.
    """
    import torch

    nn = torch.nn
    norm_types = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._NormBase)
    out: list[Entry] = []
    for mpath, module in model.named_modules():
        weight = getattr(module, "weight", None)
        w_fans = _torch_fans(weight) if isinstance(weight, torch.Tensor) else (None, None)
        groups = (
            int(getattr(module, "groups", 1)) if isinstance(module, nn.modules.conv._ConvNd) else 1
        )
        transposed = isinstance(module, nn.modules.conv._ConvTransposeNd)
        kind = type(module).__name__ + (f"(groups={groups})" if groups > 1 else "")
        for pname, p in module.named_parameters(recurse=False):
            full = f"{mpath}.{pname}" if mpath else pname
            shape = tuple(int(s) for s in p.shape)
            fi, fo = _torch_fans(p) if p.dim() >= 2 else (None, None)
            if isinstance(module, nn.MultiheadAttention) and pname in (
                "in_proj_weight",
                "in_proj_bias",
            ):
                e = shape[0] // 3
                role = "weight" if pname == "in_proj_weight" else "bias"
                pf_in, pf_out = _torch_fans(module.in_proj_weight)
                for i, tag in enumerate("qkv"):
                    sub = (e, *shape[1:])
                    out.append(
                        Entry(
                            f"{full}[{tag}]",
                            mpath,
                            kind,
                            pname,
                            sub,
                            slice(i * e, (i + 1) * e),
                            pf_in,
                            pf_out,
                            module.embed_dim,
                            module.embed_dim,
                            role,
                        )
                    )
                continue
            if p.dim() >= 2 and isinstance(module, nn.Embedding):
                role = "embedding"
                true = (fi, fo)
            elif p.dim() >= 2:
                role = "weight"
                receptive = 1
                for s in shape[2:]:
                    receptive *= s
                if transposed:  # weight (in, out / groups, k...): PyTorch swaps the roles
                    true = (shape[0] // groups * receptive, shape[1] * receptive)
                else:
                    true = (fi, shape[0] // groups * receptive)
            else:
                role = "norm" if isinstance(module, norm_types) else "scale"
                if pname == "bias" and not isinstance(module, norm_types):
                    role = "bias"
                fi, fo = w_fans if role == "bias" else (None, None)
                true = (fi, fo)
            out.append(
                Entry(
                    full,
                    mpath,
                    kind,
                    pname,
                    shape,
                    None,
                    fi,
                    fo,
                    true[0],
                    true[1],
                    role,
                    groups,
                    _declared(module) if role == "scale" else None,
                )
            )
    return out
