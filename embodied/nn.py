"""Network pieces shared by the imitation policies (ACT-JEPA, diffusion policies).

- `sinusoidal` / `sinusoidal_1d` / `sinusoidal_2d`: fixed position (or diffusion-timestep)
  embeddings (Vaswani et al.; DETR's 2-D form).
- `ResNet18GN`: ResNet-18 with GroupNorm instead of BatchNorm, trained from scratch
  (no pretrained weights can be downloaded; GroupNorm because BatchNorm statistics
  interact badly with EMA targets and small per-GPU batches, as Diffusion Policy notes).
- `ImageEncoder`: uint8 HxWxC images -> feature map, with random crop in training and
  centre crop in evaluation.
- `transformer_encoder` / `transformer_decoder`: pre-norm stacks with a final LayerNorm.
- `weight_decay_groups`: AdamW groups that leave biases, norms and embeddings undecayed.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """(N,) positions (any real values, e.g. diffusion timesteps) -> (N, dim) sine/cosine embedding."""
    position = positions.float()[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=position.device) * (-math.log(10000.0) / dim))
    out = torch.zeros(len(position), dim, device=position.device)
    out[:, 0::2] = torch.sin(position * freq)
    out[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return out


def sinusoidal_1d(length: int, dim: int) -> torch.Tensor:
    """(length, dim) sine/cosine position embedding."""
    return sinusoidal(torch.arange(length), dim)


def sinusoidal_2d(height: int, width: int, dim: int) -> torch.Tensor:
    """(height * width, dim) embedding: half the channels encode the row, half the column."""
    if dim % 4:
        raise ValueError(f"2-D sinusoidal embedding needs dim divisible by 4, got {dim}")
    rows = sinusoidal_1d(height, dim // 2)[:, None, :].expand(height, width, dim // 2)
    cols = sinusoidal_1d(width, dim // 2)[None, :, :].expand(height, width, dim // 2)
    return torch.cat([rows, cols], dim=-1).reshape(height * width, dim)


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(max(1, channels // 16), channels)


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.norm1 = _group_norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.norm2 = _group_norm(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), _group_norm(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.norm1(self.conv1(x)))
        return torch.relu(self.norm2(self.conv2(out)) + self.shortcut(x))


class ResNet18GN(nn.Module):
    """ResNet-18 (He et al., 2016) with GroupNorm; (B, C, H, W) -> (B, 512, H/32, W/32)."""

    out_channels = 512

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False), _group_norm(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
        )
        layers, c_in = [], 64
        for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [_BasicBlock(c_in, c_out, stride), _BasicBlock(c_out, c_out, 1)]
            c_in = c_out
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x))


def crop(
    images: torch.Tensor, size: tuple[int, int], generator: torch.Generator | None = None, random: bool = True
) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, h, w): an independent random window per image, or the centre."""
    b, _, height, width = images.shape
    h, w = size
    if (h, w) == (height, width):
        return images
    if not random:
        top, left = (height - h) // 2, (width - w) // 2
        return images[:, :, top : top + h, left : left + w]
    top = torch.randint(0, height - h + 1, (b,), generator=generator).to(images.device)
    left = torch.randint(0, width - w + 1, (b,), generator=generator).to(images.device)
    rows = (top[:, None] + torch.arange(h, device=images.device))[:, None, :, None]
    cols = (left[:, None] + torch.arange(w, device=images.device))[:, None, None, :]
    batch = torch.arange(b, device=images.device)[:, None, None, None]
    channel = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
    return images[batch, channel, rows, cols]


class ImageEncoder(nn.Module):
    """uint8 (B, H, W, 3) images -> (B, 512, h, w) ResNet-18-GN features.

    Pixels are scaled to [-1, 1]; `crop_fraction` < 1 crops a random window of that
    size in training (augmentation) and the centre window in evaluation.
    """

    def __init__(self, image_size: tuple[int, int], crop_fraction: float = 1.0) -> None:
        super().__init__()
        if not 0 < crop_fraction <= 1:
            raise ValueError(f"crop_fraction must be in (0, 1], got {crop_fraction}")
        self.crop_size = (
            max(1, int(round(image_size[0] * crop_fraction))),
            max(1, int(round(image_size[1] * crop_fraction))),
        )
        self.backbone = ResNet18GN()

    def feature_shape(self) -> tuple[int, int]:
        """(h, w) of the feature map for this encoder's crop size."""
        with torch.no_grad():
            out = self.backbone(torch.zeros(1, 3, *self.crop_size))
        return int(out.shape[-2]), int(out.shape[-1])

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        x = crop(x, self.crop_size, generator, random=self.training)
        return self.backbone(x)


def transformer_encoder(dim: int, layers: int, heads: int, ffn: int, dropout: float) -> nn.TransformerEncoder:
    """Pre-norm transformer encoder (GELU) with a final LayerNorm."""
    layer = nn.TransformerEncoderLayer(dim, heads, ffn, dropout, activation="gelu", batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(dim), enable_nested_tensor=False)


def transformer_decoder(dim: int, layers: int, heads: int, ffn: int, dropout: float) -> nn.TransformerDecoder:
    """Pre-norm transformer decoder (GELU) with a final LayerNorm."""
    layer = nn.TransformerDecoderLayer(dim, heads, ffn, dropout, activation="gelu", batch_first=True, norm_first=True)
    return nn.TransformerDecoder(layer, layers, norm=nn.LayerNorm(dim))


def weight_decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW parameter groups: matrices and conv kernels decay; biases, norms, embeddings do not."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_embedding = any(part in name for part in ("embed", "queries", "pos"))
        (no_decay if param.ndim < 2 or is_embedding else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
