"""VGG16 (torchvision's layout): fc2 features for precision/recall, conv features for LPIPS.

Precision and recall are standardly computed on VGG16 features (Kynkäänniemi et al. 2019):
gankern uses the 4096 activations of the second fully connected layer after its ReLU
("fc2"), on images resized to 224 x 224 (bilinear, antialiased when shrinking) and
normalized with the ImageNet mean and std. The weights are torchvision's ImageNet VGG16
(``vgg16-397923af.pth``, a plain state dict), read from a local file only:
``$GANKERN_VGG16_WEIGHTS`` or ``<cache>/metrics/vgg16-397923af.pth``. (StyleGAN2-ADA's
``vgg16.pkl`` is a TorchScript port of another VGG16 training; its numbers differ slightly.)

LPIPS (Zhang et al. 2018, "lin" variant, used by perceptual path length) reuses the
convolutional part with the linear calibration weights of the ``lpips`` package
(``vgg.pth``: ``lin0.model.1.weight`` ... ``lin4.model.1.weight``), read from
``$GANKERN_LPIPS_WEIGHTS`` or ``<cache>/metrics/lpips_vgg.pth``.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from gankern.metrics.cache import file_sha256
from gankern.metrics.extractor import FeatureExtractor
from gankern.metrics.weights import (
    WeightsNotFoundError,
    load_state_dict_strict,
    resolve_weights_path,
)
from gankern.models.vgg import IMAGENET_MEAN, IMAGENET_STD, VGG16_LAYERS, vgg_features

VGG16_WEIGHTS_FILENAME = "vgg16-397923af.pth"
VGG16_WEIGHTS_ENV = "GANKERN_VGG16_WEIGHTS"
LPIPS_WEIGHTS_FILENAME = "lpips_vgg.pth"
LPIPS_WEIGHTS_ENV = "GANKERN_LPIPS_WEIGHTS"
# Indices in ``features`` of the ReLUs whose outputs LPIPS compares (relu1_2 ... relu5_3).
_LPIPS_TAPS = (3, 8, 15, 22, 29)
_LPIPS_CHANNELS = (64, 128, 256, 512, 512)
# LPIPS's input scaling layer (its inputs are in [-1, 1]).
_LPIPS_SHIFT = (-0.030, -0.088, -0.188)
_LPIPS_SCALE = (0.458, 0.448, 0.450)

__all__ = ["LPIPS", "VGG16Features", "WeightsNotFoundError", "load_lpips", "load_vgg16"]


def _vgg16_features() -> nn.Sequential:
    return vgg_features(VGG16_LAYERS)


class VGG16Features(FeatureExtractor):
    """VGG16 with torchvision's parameter names; ``extract`` returns fc2 features."""

    name = "vgg16"
    feature_dim = 4096

    def __init__(self):
        super().__init__()
        self.identity = "vgg16-random"
        self.features = _vgg16_features()
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(),
            nn.Linear(4096, 1000),
        )
        for buf, values in (("mean", IMAGENET_MEAN), ("std", IMAGENET_STD)):
            self.register_buffer(buf, torch.tensor(values).view(1, 3, 1, 1), persistent=False)
        self.eval()

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(self.device, torch.float32) / 255
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[2:] != (224, 224):
            x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False,
                              antialias=True)
        return (x - self.mean) / self.std

    def extract(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.features(self.preprocess(images))
        x = F.adaptive_avg_pool2d(x, (7, 7)).flatten(1)
        fc2 = self.classifier[:5](x)  # fc1, ReLU, dropout (off in eval), fc2, ReLU
        return {"features": fc2.float()}


def _device(device):
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def load_vgg16(weights: str | os.PathLike | None = None, device=None) -> VGG16Features:
    """VGG16 with torchvision's ImageNet weights from a local file (never downloaded)."""
    path = resolve_weights_path(
        weights, env_var=VGG16_WEIGHTS_ENV, filename=VGG16_WEIGHTS_FILENAME,
        what="VGG16 weights", source="torchvision's ImageNet VGG16 weights",
    )
    model = VGG16Features()
    load_state_dict_strict(model, path, "VGG16 weights")
    model.identity = f"vgg16-{file_sha256(path)}"
    return model.requires_grad_(False).to(_device(device)).eval()


class LPIPS(nn.Module):
    """LPIPS distance (VGG16 "lin" variant) between images in [-1, 1].

    ``forward(a, b)`` returns ``[N]``: for each of five VGG16 layers, the features are
    normalized to unit length over channels, their squared difference is weighted per
    channel by the non-negative calibration weights and averaged over the image, and the
    five layers are summed.
    """

    def __init__(self):
        super().__init__()
        self.net = nn.Module()  # VGG16's convolutional part only, under torchvision's names
        self.net.features = _vgg16_features()
        for i, channels in enumerate(_LPIPS_CHANNELS):
            lin = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))
            self.add_module(f"lin{i}", nn.ModuleDict({"model": lin}))
        for buf, values in (("shift", _LPIPS_SHIFT), ("scale", _LPIPS_SCALE)):
            self.register_buffer(buf, torch.tensor(values).view(1, 3, 1, 1), persistent=False)
        self.eval()

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.shift) / self.scale
        outs = []
        for i, layer in enumerate(self.net.features[: _LPIPS_TAPS[-1] + 1]):
            x = layer(x)
            if i in _LPIPS_TAPS:
                outs.append(x)
        return outs

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape != b.shape or a.ndim != 4 or a.shape[1] not in (1, 3):
            raise ValueError(f"a and b must be [N, 1 or 3, H, W] of one shape, got "
                             f"{tuple(a.shape)} and {tuple(b.shape)}")
        if a.shape[1] == 1:
            a, b = a.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1)
        total = 0
        taps = zip(self._taps(a.float()), self._taps(b.float()), strict=True)
        for i, (fa, fb) in enumerate(taps):
            fa = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            fb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            weight = getattr(self, f"lin{i}")["model"][1]
            total = total + weight((fa - fb) ** 2).mean(dim=(1, 2, 3))
        return total


def load_lpips(vgg_weights=None, lpips_weights=None, device=None) -> LPIPS:
    """LPIPS with VGG16 weights and the ``lpips`` package's calibration, from local files."""
    model = LPIPS()
    vgg_path = resolve_weights_path(
        vgg_weights, env_var=VGG16_WEIGHTS_ENV, filename=VGG16_WEIGHTS_FILENAME,
        what="VGG16 weights (for LPIPS)", source="torchvision's ImageNet VGG16 weights",
    )
    load_state_dict_strict(model.net, vgg_path, "VGG16 weights", ignore=("classifier.",))
    lin_path = resolve_weights_path(
        lpips_weights, env_var=LPIPS_WEIGHTS_ENV, filename=LPIPS_WEIGHTS_FILENAME,
        what="LPIPS calibration weights", source="the lpips package's weights/v0.1/vgg.pth",
    )
    lin_only = nn.Module()
    for i in range(len(_LPIPS_CHANNELS)):
        lin_only.add_module(f"lin{i}", getattr(model, f"lin{i}"))
    load_state_dict_strict(lin_only, lin_path, "LPIPS calibration weights")
    return model.requires_grad_(False).to(_device(device)).eval()
