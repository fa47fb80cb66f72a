"""A small ConvNeXt (Liu et al., CVPR 2022) frame encoder for the hybrid models (HNeRV, DNeRV).

The encoder runs **only while encoding**: it maps frames to the per-frame embeddings that the
hybrid models store. It is never part of a stored module, so nothing here reaches a ``.nvc`` file
and the decoder never builds it.

::

    x (N × in × H × W), H, W multiples of Πs
      ─► [Conv(s×s, stride s) ─► LayerNorm ─► ConvNeXtBlock] per stride s
      ─► Conv 1×1 to the embedding channels  ─► N × out × H/Πs × W/Πs

ConvNeXt block: depthwise 7×7 → LayerNorm over channels → pointwise ×4 → GELU → pointwise, plus
the residual (no layer scale or drop-path: the encoder is small and trained for one clip). The
same block, configured without biases or affine norm, is HiNeRV's decoder block.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nvcodec.models.blocks import activate_

__all__ = ["ChannelLayerNorm", "ConvNeXtBlock", "ConvNeXtEncoder"]


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channel dimension of an ``N × C × H × W`` tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """Depthwise k×k → LayerNorm → Linear(C_in, e·C_out) → GELU → Linear(e·C_out, C_out),
    plus the residual when ``C_in == C_out``.

    The defaults are ConvNeXt's (7×7, ×4, affine norm, biases): the hybrid models' frame encoder.
    HiNeRV's decoder blocks are the same block with a 3×3 kernel, no affine norm and no biases,
    and the first block of a stage changes the width (so it has no residual); one class serves
    both so that the two cannot drift apart.
    """

    def __init__(
        self,
        dim: int,
        expansion: int = 4,
        *,
        out_dim: int | None = None,
        kernel: int = 7,
        bias: bool = True,
        affine: bool = True,
    ) -> None:
        super().__init__()
        out = dim if out_dim is None else out_dim
        self.residual = out == dim
        self.depthwise = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim, bias=bias)
        self.norm = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=affine, bias=affine)
        self.expand = nn.Linear(dim, expansion * out, bias=bias)
        self.act = nn.GELU()
        self.project = nn.Linear(expansion * out, out, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.depthwise(x).permute(0, 2, 3, 1)  # channels-last for the pointwise MLP
        y = self.project(activate_(self.act, self.expand(self.norm(y)))).permute(0, 3, 1, 2)
        return x + y if self.residual else y


class ConvNeXtEncoder(nn.Module):
    """Downsample by each of ``strides`` (patchify conv + LayerNorm + one ConvNeXt block), then
    a 1×1 conv to ``out_ch`` channels. The input's height and width must be multiples of Πs."""

    def __init__(self, in_ch: int, dim: int, out_ch: int, strides: Sequence[int]) -> None:
        super().__init__()
        stages: list[nn.Module] = []
        ch = in_ch
        for s in strides:
            stages.append(
                nn.Sequential(
                    nn.Conv2d(ch, dim, s, stride=s),
                    ChannelLayerNorm(dim, eps=1e-6),
                    ConvNeXtBlock(dim),
                )
            )
            ch = dim
        self.stages = nn.Sequential(*stages)
        self.out = nn.Conv2d(ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.stages(x))
