"""Class conditioning layers: conditional batch norm, the projection head and label concatenation.

Class labels arrive as gankern's networks receive them: ``c`` float ``[N, num_classes]``,
one-hot (the class index is ``c.argmax(1)``). Every layer here also takes integer class
indices ``[N]``. A float ``c`` selects embedding rows by a matrix product ``c @ table``:
exactly the row of the class for a one-hot ``c``, and the weighted mix of rows for soft
labels (the class interpolation of Miyato & Koyama's code).

* :class:`ConditionalBatchNorm2d`: batch norm without affine parameters, then a per-class
  gain and bias (de Vries et al. 2017, Dumoulin et al. 2017; the generators of SNGAN's
  projection models, pfnet-research/sngan_projection's
  ``CategoricalConditionalBatchNormalization``).
* :class:`LinearConditionalBatchNorm2d`: gain ``1 + W_g y`` and bias ``W_b y`` from a
  conditioning vector ``y`` (BigGAN's ``ccbn``, Brock et al. 2019).
* :class:`ProjectionHead`: ``linear(h) + <embed(c), h>`` (the projection discriminator,
  Miyato & Koyama 2018).
* :func:`concat_labels`, :func:`label_maps`, :func:`concat_label_maps`: label concatenation
  (cGAN, Mirza & Osindero 2014).
"""

from __future__ import annotations

import torch
from torch import nn

from gankern.nn.spectral_norm import spectral_norm as _spectral_norm
from gankern.ops._checks import check_int, check_number, check_tensor


def check_labels(c, num_classes: int, batch: int | None = None, name: str = "c") -> torch.Tensor:
    """Check class labels: float ``[N, num_classes]`` (one-hot or soft) or integer ``[N]``.

    Args:
        c: the labels.
        num_classes: the number of classes.
        batch: the expected batch size ``N`` (None: any).
        name: the argument's name in messages.
    """
    if not isinstance(c, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(c).__name__}")
    if c.is_floating_point():
        if c.ndim != 2 or c.shape[1] != num_classes:
            raise ValueError(
                f"{name} must be one-hot labels of shape [N, {num_classes}] (or class indices "
                f"[N]), got shape {tuple(c.shape)}"
            )
    elif c.dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        if c.ndim != 1:
            raise ValueError(
                f"{name} as integer class indices must have shape [N], got {tuple(c.shape)}"
            )
    else:
        raise TypeError(
            f"{name} must be float one-hot labels or integer class indices, got {c.dtype}"
        )
    if batch is not None and c.shape[0] != batch:
        raise ValueError(f"{name} must have batch size {batch}, got shape {tuple(c.shape)}")
    return c


def class_embedding(c: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """The rows of ``table`` ``[num_classes, D]`` for labels ``c``: ``[N, D]``.

    A float ``c`` ``[N, num_classes]`` gives ``c @ table`` (for one-hot labels exactly the
    class's row); integer indices ``[N]`` give ``table[c]``.
    """
    check_labels(c, table.shape[0])
    if c.is_floating_point():
        return c.to(table.dtype) @ table
    return table[c.long()]


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose gain and bias are looked up per class.

    ``y = (x - mean) / sqrt(var + eps) * gain[k] + bias[k]`` with ``k`` the class of each
    sample, and the batch statistics (or the running ones in eval mode) shared by all
    classes, as ``torch.nn.BatchNorm2d(affine=False)`` computes them.

    Args:
        num_features: channels ``C`` of the input ``[N, C, H, W]``.
        num_classes: number of classes (rows of the gain and bias tables).
        eps: added to the variance (default 1e-5, torch's; the chainer code of SNGAN used
            2e-5).
        momentum: running-statistics momentum as in ``torch.nn.BatchNorm2d`` (default 0.1,
            i.e. chainer's decay 0.9).

    The tables are ``nn.Embedding`` modules ``gains`` (initialized to 1) and ``biases``
    (initialized to 0), as Miyato's projection-discriminator code initializes them; the
    running statistics are the buffers of ``bn``.
    """

    def __init__(
        self, num_features: int, num_classes: int, eps: float = 1e-5, momentum: float = 0.1
    ):
        super().__init__()
        self.num_features = check_int("num_features", num_features, min_value=1)
        self.num_classes = check_int("num_classes", num_classes, min_value=1)
        eps = check_number("eps", eps)
        momentum = check_number("momentum", momentum, min_value=0.0)
        self.bn = nn.BatchNorm2d(num_features, eps=eps, momentum=momentum, affine=False)
        self.gains = nn.Embedding(num_classes, num_features)
        self.biases = nn.Embedding(num_classes, num_features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Gains to 1, biases to 0, running statistics to their start."""
        nn.init.ones_(self.gains.weight)
        nn.init.zeros_(self.biases.weight)
        self.bn.reset_running_stats()

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``x`` ``[N, C, H, W]``, ``c`` one-hot ``[N, num_classes]`` (or indices ``[N]``)."""
        check_tensor("x", x, ndim=4)
        check_labels(c, self.num_classes, x.shape[0])
        gain = class_embedding(c, self.gains.weight).to(x.dtype)
        bias = class_embedding(c, self.biases.weight).to(x.dtype)
        return self.bn(x) * gain[:, :, None, None] + bias[:, :, None, None]

    def extra_repr(self) -> str:
        return f"{self.num_features}, num_classes={self.num_classes}"


class LinearConditionalBatchNorm2d(nn.Module):
    """Batch norm with gain ``1 + W_g y`` and bias ``W_b y`` from a conditioning vector ``y``.

    BigGAN's class-conditional batch norm (``ccbn`` in BigGAN-PyTorch): ``y`` is, e.g., the
    concatenation of a shared class embedding and a chunk of ``z``.

    Args:
        num_features: channels ``C`` of the input ``[N, C, H, W]``.
        cond_dim: length of the conditioning vector ``y``.
        bias: give the two linear maps a bias (default False: BigGAN with a shared
            embedding, ``G_shared``, builds them without).
        spectral_norm: spectrally normalize the two linear maps (BigGAN's generator does).
        sn_eps: ``eps`` of the spectral normalization (BigGAN-PyTorch trains with 1e-8).
        eps: added to the variance (default 1e-5).
        momentum: running-statistics momentum (default 0.1).

    The linear maps are ``gain_linear`` and ``bias_linear`` (``nn.Linear``) with torch's
    default initialization: a model that wants BigGAN's orthogonal initialization applies
    it to them with the rest of its layers (before they are spectrally normalized, i.e.
    build with ``spectral_norm=False`` and apply it afterwards, or initialize
    ``parametrizations.weight.original``).
    """

    def __init__(
        self,
        num_features: int,
        cond_dim: int,
        *,
        bias: bool = False,
        spectral_norm: bool = False,
        sn_eps: float = 1e-12,
        eps: float = 1e-5,
        momentum: float = 0.1,
    ):
        super().__init__()
        self.num_features = check_int("num_features", num_features, min_value=1)
        self.cond_dim = check_int("cond_dim", cond_dim, min_value=1)
        for name, value in (("bias", bias), ("spectral_norm", spectral_norm)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be a bool, got {value!r}")
        eps = check_number("eps", eps)
        momentum = check_number("momentum", momentum, min_value=0.0)
        self.bn = nn.BatchNorm2d(num_features, eps=eps, momentum=momentum, affine=False)
        self.gain_linear = nn.Linear(cond_dim, num_features, bias=bias)
        self.bias_linear = nn.Linear(cond_dim, num_features, bias=bias)
        if spectral_norm:
            _spectral_norm(self.gain_linear, eps=sn_eps)
            _spectral_norm(self.bias_linear, eps=sn_eps)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``x`` ``[N, C, H, W]``, ``y`` ``[N, cond_dim]``."""
        check_tensor("x", x, ndim=4)
        check_tensor("y", y, ndim=2)
        if y.shape != (x.shape[0], self.cond_dim):
            raise ValueError(
                f"y must have shape [{x.shape[0]}, {self.cond_dim}], got {tuple(y.shape)}"
            )
        gain = 1 + self.gain_linear(y)
        bias = self.bias_linear(y)
        return self.bn(x) * gain[:, :, None, None] + bias[:, :, None, None]

    def extra_repr(self) -> str:
        return f"{self.num_features}, cond_dim={self.cond_dim}"


class ProjectionHead(nn.Module):
    """The output of a projection discriminator: ``linear(h) + sum(embed(c) * h)``.

    Miyato & Koyama 2018, "cGANs with Projection Discriminator": the unconditional logit
    plus the inner product of the features with a learned class embedding.

    Args:
        in_features: length ``F`` of the feature vector ``h`` ``[N, F]``.
        num_classes: number of classes (rows of the embedding ``embed``).
        bias: give the linear map a bias (default True; SNGAN's 32x32 discriminator has
            none).

    ``linear`` (``nn.Linear(F, 1)``) and ``embed`` (``nn.Embedding(num_classes, F)``) start
    Glorot-uniform with a zero bias, as in pfnet-research/sngan_projection. Spectral
    normalization, where wanted, comes from :func:`gankern.nn.apply_spectral_norm` on the
    whole discriminator.
    """

    def __init__(self, in_features: int, num_classes: int, *, bias: bool = True):
        super().__init__()
        self.in_features = check_int("in_features", in_features, min_value=1)
        self.num_classes = check_int("num_classes", num_classes, min_value=1)
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {bias!r}")
        self.linear = nn.Linear(in_features, 1, bias=bias)
        self.embed = nn.Embedding(num_classes, in_features)
        nn.init.xavier_uniform_(self.linear.weight)
        if bias:
            nn.init.zeros_(self.linear.bias)
        nn.init.xavier_uniform_(self.embed.weight)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``h`` ``[N, F]``, ``c`` one-hot ``[N, num_classes]`` (or indices); ``[N, 1]``."""
        check_tensor("h", h, ndim=2)
        if h.shape[1] != self.in_features:
            raise ValueError(f"h must have shape [N, {self.in_features}], got {tuple(h.shape)}")
        check_labels(c, self.num_classes, h.shape[0])
        projection = (class_embedding(c, self.embed.weight).to(h.dtype) * h).sum(1, keepdim=True)
        return self.linear(h) + projection

    def extra_repr(self) -> str:
        return f"{self.in_features}, num_classes={self.num_classes}"


def concat_labels(z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """``[z, c]``: labels ``c`` ``[N, c_dim]`` appended to the vectors ``z`` ``[N, D]``."""
    check_tensor("z", z, ndim=2)
    check_tensor("c", c, ndim=2, allow_empty=True)
    if c.shape[0] != z.shape[0]:
        raise ValueError(f"c must have batch size {z.shape[0]}, got shape {tuple(c.shape)}")
    return torch.cat([z, c.to(z.dtype)], dim=1)


def label_maps(c: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Constant maps of the labels: ``[N, c_dim, height, width]`` with ``maps[n, k] = c[n, k]``.

    Args:
        c: labels ``[N, c_dim]`` (one-hot).
        height, width: size of the maps.

    The result is a broadcast view (no copy); :func:`concat_label_maps` materializes it.
    """
    check_tensor("c", c, ndim=2, allow_empty=True)
    height = check_int("height", height, min_value=1)
    width = check_int("width", width, min_value=1)
    return c[:, :, None, None].expand(c.shape[0], c.shape[1], height, width)


def concat_label_maps(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Images ``x`` ``[N, C, H, W]`` with the label maps appended: ``[N, C + c_dim, H, W]``."""
    check_tensor("x", x, ndim=4)
    check_tensor("c", c, ndim=2, allow_empty=True)
    if c.shape[0] != x.shape[0]:
        raise ValueError(f"c must have batch size {x.shape[0]}, got shape {tuple(c.shape)}")
    return torch.cat([x, label_maps(c.to(x.dtype), x.shape[2], x.shape[3])], dim=1)
