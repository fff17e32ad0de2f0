"""The FID Inception network: InceptionV3 as in the 2015-12-05 TensorFlow graph.

This is the network of the standard FID tools (TTUR's TensorFlow FID, and its PyTorch port
in pytorch-fid): torchvision's InceptionV3 layout (1008 classes, no auxiliary head) with
the graph's differences: the average pools of the A, C and first E blocks exclude the
padding from the average, and the last E block (``Mixed_7c``) pools its pool branch with a
max pool. Parameter and buffer names are those of pytorch-fid's weights file
``pt_inception-2015-12-05-6726825d.pth``, so that file loads as is and gankern's FID
equals pytorch-fid's.

Input convention (pytorch-fid's): uint8 images are scaled to [0, 1], resized to 299 x 299
with bilinear interpolation (``align_corners=False``, no antialiasing), then mapped to
[-1, 1]. Grayscale images are repeated over the three channels. The features are the 2048
average-pooled activations of ``Mixed_7c`` ("pool3"); the class probabilities for the
Inception Score are the softmax of ``fc`` without its bias (the graph's unbiased logits).
"""

from __future__ import annotations

import os
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from gankern.metrics.cache import file_sha256
from gankern.metrics.extractor import FeatureExtractor
from gankern.metrics.weights import load_state_dict_strict, resolve_weights_path

INCEPTION_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS_ENV = "GANKERN_INCEPTION_WEIGHTS"
INCEPTION_WEIGHTS_SOURCE = (
    "the FID Inception weights published with pytorch-fid, release 'fid_weights'"
)
# torch.hub names files by the first hex digits of their sha256.
_STANDARD_SHA256_PREFIX = "6726825d"
INCEPTION_RESOLUTION = 299
INCEPTION_FEATURE_DIM = 2048
INCEPTION_NUM_CLASSES = 1008


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3, the graph's), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_3x3_excluding_padding(x):
    # The graph's average pool divides by the number of real pixels under the window.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block: 1x1, 5x5, double 3x3 and pooled 1x1 branches."""

    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg_pool_3x3_excluding_padding(x))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17: strided 3x3, strided double 3x3, max pool."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3(x)
        b3d = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b3d, bp], 1)


class InceptionC(nn.Module):
    """17x17 block with factorized 7x7 convolutions (1x7 then 7x1)."""

    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7d = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            b7d = layer(b7d)
        bp = self.branch_pool(_avg_pool_3x3_excluding_padding(x))
        return torch.cat([b1, b7, b7d, bp], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8: strided 3x3, 7x7 then strided 3x3, max pool."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b7, bp], 1)


class InceptionE(nn.Module):
    """8x8 block with split 1x3 / 3x1 outputs; ``pool`` is "avg" (Mixed_7b) or "max" (7c)."""

    def __init__(self, in_channels: int, pool: str):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        t = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(t), self.branch3x3_2b(t)], 1)
        t = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        b3d = torch.cat([self.branch3x3dbl_3a(t), self.branch3x3dbl_3b(t)], 1)
        if self.pool == "avg":
            pooled = _avg_pool_3x3_excluding_padding(x)
        else:
            # The 2015-12-05 graph max-pools here (unlike the paper); FID depends on it.
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        bp = self.branch_pool(pooled)
        return torch.cat([b1, b3, b3d, bp], 1)


class FIDInceptionV3(FeatureExtractor):
    """The FID Inception network (random weights; use :func:`load_inception` for real ones)."""

    name = "inception"
    feature_dim = INCEPTION_FEATURE_DIM
    num_classes = INCEPTION_NUM_CLASSES

    def __init__(self):
        super().__init__()
        self.identity = "inception-random"
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.fc = nn.Linear(INCEPTION_FEATURE_DIM, INCEPTION_NUM_CLASSES)
        self.eval()

    def pool_features(self, x: torch.Tensor) -> torch.Tensor:
        """The 2048 pool3 features of an input already scaled to [-1, 1] (any size >= 75)."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                      self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b,
                      self.Mixed_7c):
            x = block(x)
        return x.mean(dim=(2, 3))

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``[N, C, H, W]`` -> float ``[N, 3, 299, 299]`` in [-1, 1] (pytorch-fid's steps)."""
        dtype = self.fc.weight.dtype
        x = images.to(self.device, dtype) / 255
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[2:] != (INCEPTION_RESOLUTION, INCEPTION_RESOLUTION):
            size = (INCEPTION_RESOLUTION, INCEPTION_RESOLUTION)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return 2 * x - 1

    def extract(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.preprocess(images)
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        features = self.pool_features(x)
        logits = features @ self.fc.weight.T  # unbiased logits, as the standard IS
        return {"features": features.float(), "probs": torch.softmax(logits.float(), dim=1)}


def load_inception(
    weights: str | os.PathLike | None = None, device: str | torch.device | None = None
) -> FIDInceptionV3:
    """The FID Inception network with pytorch-fid's weights from a local file.

    Args:
        weights: path of ``pt_inception-2015-12-05-6726825d.pth``; default: the path in
            ``$GANKERN_INCEPTION_WEIGHTS``, else ``<cache>/metrics/`` with that file name
            (cache: ``$GANKERN_CACHE`` or ``~/.cache/gankern``).
        device: where to put the network (default: CUDA when available).

    Raises:
        WeightsNotFoundError: the file is not there (the message says where to put it).
        ValueError: the file does not hold this network's weights.
    """
    path = resolve_weights_path(
        weights, env_var=INCEPTION_WEIGHTS_ENV, filename=INCEPTION_WEIGHTS_FILENAME,
        what="FID Inception weights", source=INCEPTION_WEIGHTS_SOURCE,
    )
    model = FIDInceptionV3()
    load_state_dict_strict(model, path, "FID Inception weights")
    digest = file_sha256(path)
    if not digest.startswith(_STANDARD_SHA256_PREFIX):
        warnings.warn(
            f"{path} has the FID Inception layout but not the standard weights (sha256 "
            f"{digest}..., expected {_STANDARD_SHA256_PREFIX}...): its FID is not comparable "
            f"with published numbers",
            RuntimeWarning,
            stacklevel=2,
        )
    model.identity = f"inception-{digest}"
    model.requires_grad_(False)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return model.to(device).eval()
