"""Linear layers that read the same input, exported as one matrix product.

A transformer layer's q, k and v projections read one normed input, and so do an MLP's gate and
up projections. As one MatMul over the weights concatenated along the output axis they are the
same arithmetic (each output column is its own dot product; INT4 and INT8 quantize each column,
or each column's blocks along the input axis, on their own, so quantized bundles are the same
too), but a decode step runs 4 matrix products per layer instead of 7, and a per-token INT8
graph quantizes each input once instead of once per projection.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FusedLinear(nn.Linear):
    """``nn.Linear`` layers concatenated along the output axis; ``forward`` returns one tensor per
    layer, as the layers would have (``x`` (..., in) -> tuple of (..., out_i))."""

    def __init__(self, *layers: nn.Linear):
        first = layers[0]
        if any(layer.in_features != first.in_features for layer in layers):
            raise ValueError("fused linear layers must read inputs of one size")
        if len({layer.bias is None for layer in layers}) != 1:
            raise ValueError("fused linear layers must all have a bias or none")
        sizes = [layer.out_features for layer in layers]
        # Built on "meta" (no initialisation of a weight that is replaced at once).
        super().__init__(first.in_features, sum(sizes), bias=first.bias is not None, device="meta")
        self.sizes = sizes
        with torch.no_grad():
            self.weight = nn.Parameter(torch.cat([layer.weight for layer in layers]), requires_grad=False)
            if first.bias is not None:
                self.bias = nn.Parameter(torch.cat([layer.bias for layer in layers]), requires_grad=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        return tuple(F.linear(x, self.weight, self.bias).split(self.sizes, dim=-1))


def fuse(parent: nn.Module, names: tuple[str, ...], fused_name: str) -> None:
    """Replace ``parent``'s linear layers ``names`` by one ``FusedLinear`` called ``fused_name``
    (the exported MatMul is named after it: ``.../self_attn/qkv_proj/MatMul``)."""
    setattr(parent, fused_name, FusedLinear(*(getattr(parent, n) for n in names)))
    for n in names:
        delattr(parent, n)
