"""ProGAN: progressive growing of GANs (Karras et al., 2018), after the official TF code.

The official ``networks.py`` (``G_paper``, ``D_paper``) rebuilt from :mod:`gankern.nn`:

* Generator: the latent (with the one-hot label appended, for a conditional model),
  pixel-normalized, goes through a dense layer to ``4x4`` features, then per resolution a
  nearest-neighbour 2x upsampling 3x3 convolution and a 3x3 convolution, each followed by
  leaky ReLU 0.2 and pixel norm. A 1x1 ``torgb`` convolution at every resolution turns
  features into an image (linear output, no tanh).
* Discriminator: a 1x1 ``fromrgb`` convolution at every resolution, per resolution a 3x3
  convolution and a 3x3 convolution followed by 2x2 average pooling, and at 4x4 minibatch
  standard deviation, a 3x3 convolution, a dense layer and the output layer (one logit, plus
  ``c_dim`` class logits for the conditional AC-GAN variant of the official code).
* Equalized learning rate everywhere (weights N(0, 1), scaled at run time by the He
  constant), biases initialized to 0.

Both networks run at a growth ``level`` (0 = 4x4, ``log2(R) - 2`` = full resolution) with a
fade-in ``alpha``: while the newest block is faded in, G blends its image with the
nearest-upsampled image of the level below (:func:`gankern.nn.fade_in`), and D blends the
newest block's features with the ``fromrgb`` features of the 2x average-pooled image. The
generator's output and the discriminator's input have the level's resolution ``4 * 2 **
level`` (the official code upsamples everything to the full resolution instead; use
:func:`gankern.nn.nearest_upsample` for display, and :func:`progressive_reals` to bring
real images to the level's resolution and fade).

Resampling is the official one: nearest upsampling and average pooling fused into the
convolutions through :func:`gankern.ops.conv2d_resample` with a ``[1, 1]`` box filter (the
official ``fused_scale``; the same function as the separate ops, tested). Differences from
the TF code that do not change the function computed: gankern's equalized layers apply the
He gain ``sqrt(2)`` after the activation (StyleGAN2's convention) instead of on the weight,
so biases are stored ``1/sqrt(2)`` smaller (and the 4x4 dense layer's ``1/4`` gain tweak is
absorbed by the pixel norm that follows it); the upsampling convolution's kernel is stored
spatially flipped (``conv_transpose2d`` convention, as StyleGAN2).

Named configurations: :func:`progan_config`; the official schedule of images per phase:
:mod:`gankern.models.progressive_schedule`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from gankern.models.progressive_schedule import ProgressiveSchedule, get_schedule
from gankern.nn._validate import check_bool, check_choice, check_resolution
from gankern.nn.bias_act import FusedBiasAct
from gankern.nn.conditioning import concat_labels
from gankern.nn.equalized import Conv2dLayer, FullyConnectedLayer
from gankern.nn.impl import set_impl
from gankern.nn.mapping import check_label
from gankern.nn.minibatch_std import MinibatchStdLayer
from gankern.nn.pixel_norm import PixelNorm
from gankern.nn.progressive import box_downsample, check_alpha, check_level, fade_in
from gankern.nn.resample import Blur
from gankern.ops._checks import check_int, check_number, check_tensor

BOX_FILTER = (1, 1)  # nearest upsampling / 2x2 average pooling as a FIR filter


def feature_maps(
    resolution: int, fmap_base: int = 8192, fmap_decay: float = 1.0, fmap_max: int = 512
) -> int:
    """ProGAN's feature maps at ``resolution``: ``nf(log2(res) - 1)`` with
    ``nf(stage) = min(int(fmap_base / 2 ** (stage * fmap_decay)), fmap_max)``."""
    stage = int(math.log2(resolution)) - 1
    return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def check_feature_maps(fmap_base, fmap_decay, fmap_max, img_resolution) -> None:
    """Validate ``fmap_*`` (ints, decay >= 0) and that they leave maps at ``img_resolution``."""
    check_int("fmap_base", fmap_base, min_value=1)
    check_number("fmap_decay", fmap_decay, min_value=0.0)
    check_int("fmap_max", fmap_max, min_value=1)
    if feature_maps(img_resolution, fmap_base, fmap_decay, fmap_max) < 1:
        raise ValueError(
            f"fmap_base={fmap_base} leaves no feature maps at {img_resolution} px "
            f"(needs fmap_base >= {img_resolution // 2} with fmap_decay 1)"
        )


def progressive_reals(img: torch.Tensor, level: int, alpha=1.0, impl: str = "auto"):
    """Real images ``[N, C, R, R]`` brought to growth ``level`` and faded like the fakes.

    The official ``process_reals``: average-pool to the level's resolution ``4 * 2 **
    level``; during a fade-in (``alpha < 1``) blend with the image pooled once more and
    nearest-upsampled back, ``alpha * x + (1 - alpha) * up(down(x))``, so that reals and
    fakes go through the same blend.
    """
    check_tensor("img", img, ndim=4)
    level = check_int("level", level, min_value=0)
    alpha = check_alpha(alpha)
    res = 4 * 2**level
    if img.shape[2] != img.shape[3] or img.shape[2] < res or img.shape[2] % res:
        raise ValueError(
            f"img must be square with a size that is a multiple of {res} (level {level}), "
            f"got {tuple(img.shape)}"
        )
    x = box_downsample(img, img.shape[2] // res, impl=impl)
    if alpha < 1 and level > 0:
        x = fade_in(x, box_downsample(x, 2, impl=impl), alpha, impl=impl)
    return x


# ---------------------------------------------------------------------------------------------
# Configurations


@dataclass(frozen=True)
class GeneratorConfig:
    """Shape of a ProGAN generator (the arguments of the official ``G_paper``).

    Attributes:
        img_resolution: output resolution at the last level (a power of two >= 4).
        img_channels: image channels.
        c_dim: label dimensionality (0: unconditional); labels are appended to the latent.
        z_dim: latent dimensionality (official: ``min(fmap_base, fmap_max)`` = 512).
        fmap_base, fmap_decay, fmap_max: feature maps per resolution, see
            :func:`feature_maps`.
        normalize_latents: pixel-normalize the latent (with the label) first.
        use_pixelnorm: pixel norm after every convolution.
        pixelnorm_eps: epsilon of the pixel norm.
        activation: ``"lrelu"`` (slope 0.2) or ``"relu"``.
    """

    img_resolution: int = 1024
    img_channels: int = 3
    c_dim: int = 0
    z_dim: int = 512
    fmap_base: int = 8192
    fmap_decay: float = 1.0
    fmap_max: int = 512
    normalize_latents: bool = True
    use_pixelnorm: bool = True
    pixelnorm_eps: float = 1e-8
    activation: str = "lrelu"

    def __post_init__(self):
        check_resolution("img_resolution", self.img_resolution)
        check_int("img_channels", self.img_channels, min_value=1)
        check_int("c_dim", self.c_dim, min_value=0)
        check_int("z_dim", self.z_dim, min_value=1)
        check_feature_maps(self.fmap_base, self.fmap_decay, self.fmap_max, self.img_resolution)
        check_bool("normalize_latents", self.normalize_latents)
        check_bool("use_pixelnorm", self.use_pixelnorm)
        check_number("pixelnorm_eps", self.pixelnorm_eps, min_value=0.0)
        check_choice("activation", self.activation, ("lrelu", "relu"))

    def build(self, impl: str = "auto") -> Generator:
        """A freshly initialized :class:`Generator`."""
        return Generator(**dataclasses.asdict(self), impl=impl)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Shape of a ProGAN discriminator (the arguments of the official ``D_paper``).

    Attributes:
        img_resolution: input resolution at the last level.
        img_channels: image channels.
        c_dim: number of classes of the auxiliary classifier (0: none; with ``c_dim > 0``
            the forward returns ``(logits, class_logits)``).
        fmap_base, fmap_decay, fmap_max: feature maps per resolution.
        mbstd_group_size: minibatch-std group size (official 4; 16 in the paper's v1
            preset; 0 or 1 disables the layer).
    """

    img_resolution: int = 1024
    img_channels: int = 3
    c_dim: int = 0
    fmap_base: int = 8192
    fmap_decay: float = 1.0
    fmap_max: int = 512
    mbstd_group_size: int = 4

    def __post_init__(self):
        check_resolution("img_resolution", self.img_resolution)
        check_int("img_channels", self.img_channels, min_value=1)
        check_int("c_dim", self.c_dim, min_value=0)
        check_feature_maps(self.fmap_base, self.fmap_decay, self.fmap_max, self.img_resolution)
        check_int("mbstd_group_size", self.mbstd_group_size, min_value=0)

    def build(self, impl: str = "auto") -> Discriminator:
        """A freshly initialized :class:`Discriminator`."""
        return Discriminator(**dataclasses.asdict(self), impl=impl)


@dataclass(frozen=True)
class TrainingHyperparams:
    """ProGAN's training settings (official ``config.py``, ``train.py``, ``loss.py``).

    Attributes:
        schedule: name of the schedule of images per phase in
            :data:`gankern.models.progressive_schedule.SCHEDULES` (minibatch and
            learning rates per resolution).
        loss: ``"wgan-gp"``: WGAN loss with gradient penalty (``D_wgangp_acgan``).
        gp_weight: weight of the gradient penalty (``wgan_lambda``).
        gp_target: target gradient norm (``wgan_target``).
        drift_weight: weight of ``E[D(x)^2]`` on the reals (``wgan_epsilon``).
        betas, eps: Adam's betas and epsilon for G and D.
        n_critic: D steps per G step (``D_repeats``).
        ema_beta: decay of the generator's running average per step (``G_smoothing``).
        minibatch_repeats: minibatches run before the schedule is re-read.
        reset_opt_for_new_lod: reset the Adam state when a new level starts fading in.
        mirror_augment: random x-flips of the reals (on for CelebA-HQ).
        label_weight: weight of the AC-GAN classification terms (``cond_weight``).
    """

    schedule: str = "progan"
    loss: str = "wgan-gp"
    gp_weight: float = 10.0
    gp_target: float = 1.0
    drift_weight: float = 0.001
    betas: tuple = (0.0, 0.99)
    eps: float = 1e-8
    n_critic: int = 1
    ema_beta: float = 0.999
    minibatch_repeats: int = 4
    reset_opt_for_new_lod: bool = True
    mirror_augment: bool = True
    label_weight: float = 1.0

    def progressive_schedule(self, scale: float = 1.0) -> ProgressiveSchedule:
        """The named schedule with its phase lengths times ``scale``."""
        return get_schedule(self.schedule, scale)


# Published 1024 px CelebA-HQ networks (G_paper / D_paper defaults): 23,079,115 and
# 23,087,249 parameters (derivation in tests/test_models_progan.py).
PROGAN_1024 = (GeneratorConfig(), DiscriminatorConfig())
PROGAN_TRAINING = TrainingHyperparams()


def progan_config(
    name: str = "progan",
    resolution: int | None = None,
    img_channels: int | None = None,
    c_dim: int | None = None,
) -> tuple[GeneratorConfig, DiscriminatorConfig]:
    """A named (generator, discriminator) configuration pair.

    Args:
        name: ``"progan"`` (the official networks, fmap_base 8192, 512 maps at most; native
            1024 px RGB) or ``"digits"`` (CPU-sized, 32x32 grayscale, the built-in digits:
            64 maps at 4 and 8 px, 32 at 16 px, 16 at 32 px, 64-d latents).
        resolution: image resolution (default: the configuration's).
        img_channels: image channels (default: the configuration's).
        c_dim: number of classes (0: unconditional; default 0).

    Training settings: :data:`PROGAN_TRAINING` (and :data:`DIGITS_TRAINING` for digits).
    """
    if name == "progan":
        res, ch, fmaps, z_dim = 1024, 3, {}, 512
    elif name == "digits":
        res, ch, fmaps, z_dim = 32, 1, dict(fmap_base=256, fmap_max=64), 64
    else:
        raise ValueError(f"name must be 'progan' or 'digits', got {name!r}")
    data = dict(
        img_resolution=res if resolution is None else resolution,
        img_channels=ch if img_channels is None else img_channels,
        c_dim=0 if c_dim is None else c_dim,
        **fmaps,
    )
    return GeneratorConfig(z_dim=z_dim, **data), DiscriminatorConfig(**data)


# gankern's setting for the digits: a short schedule (32 images per step, 4k images per
# phase: 32x32 fully faded in after 24k images) and no x-flips (digits are not symmetric).
DIGITS_TRAINING = TrainingHyperparams(schedule="digits", mirror_augment=False)


# ---------------------------------------------------------------------------------------------
# Networks


def same_size_blur(taps, impl: str) -> Blur | None:
    """A FIR low-pass keeping the size (zero padding, as TF's 'SAME'), None for no taps."""
    if taps is None:
        return None
    pad = len(taps) - 1
    return Blur(list(taps), padding=[pad // 2, pad - pad // 2, pad // 2, pad - pad // 2], impl=impl)


class GrowingNetwork(nn.Module):
    """Growth levels and backend of a progressively grown network (ProGAN, StyleGAN v1).

    ``max_level = log2(img_resolution) - 2``; ``resolutions[level] = 4 * 2 ** level``.
    """

    def _init_levels(self, img_resolution: int, impl: str) -> None:
        self.img_resolution = check_resolution("img_resolution", img_resolution)
        self.max_level = int(math.log2(img_resolution)) - 2
        self.resolutions = [4 * 2**level for level in range(self.max_level + 1)]
        self.impl = impl

    def level_resolution(self, level: int | None = None) -> int:
        """Resolution of the images at growth ``level`` (None: the last level)."""
        return 4 * 2 ** check_level(level, self.max_level)

    def set_impl(self, impl: str) -> nn.Module:
        """Use backend ``impl`` (``"auto"``, ``"cuda"``, ``"triton"``, ``"ref"``) everywhere."""
        return set_impl(self, impl)

    def grow(self, x, level: int, alpha: float, run_block) -> torch.Tensor:
        """A generator's image at ``level``: blocks ``b4`` ... run in turn, then ``torgb``.

        ``run_block(k, block, x)`` runs the ``k``-th block (4x4 is 0) on ``x`` (the input of
        the 4x4 block, then the features). While ``alpha < 1`` the image is faded in from
        the ``torgb`` of the level below (:func:`gankern.nn.fade_in`).
        """
        previous = None
        for k, res in enumerate(self.resolutions[: level + 1]):
            previous = x
            x = run_block(k, getattr(self, f"b{res}"), x)
        img = getattr(self, f"b{self.resolutions[level]}").torgb(x)
        if level > 0 and alpha < 1:
            old = getattr(self, f"b{self.resolutions[level - 1]}").torgb(previous)
            img = fade_in(img, old, alpha, impl=self.impl)
        return img


class GeneratorBlock(nn.Module):
    """One resolution of the generator: 2x up conv + conv (or the 4x4 dense + conv), ToRGB.

    Args:
        in_channels: input feature maps (for the 4x4 block: the latent size).
        out_channels: feature maps of this resolution.
        resolution: the block's resolution.
        img_channels: image channels of ``torgb``.
        activation: ``"lrelu"`` or ``"relu"``.
        pixelnorm_eps: epsilon of the pixel norm after each layer (None: no normalization).
        impl: backend of the ops.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        resolution: int,
        img_channels: int,
        activation: str,
        pixelnorm_eps: float | None,
        impl: str,
    ):
        super().__init__()
        self.resolution = resolution
        self.norm = PixelNorm(pixelnorm_eps) if pixelnorm_eps is not None else None
        if resolution == 4:
            # Dense layer to 4x4 maps with one bias per map (added after the reshape).
            self.fc = FullyConnectedLayer(in_channels, out_channels * 16, bias=False, impl=impl)
            self.fc_act = FusedBiasAct(out_channels, act=activation, impl=impl)
        else:
            self.conv0 = Conv2dLayer(
                in_channels, out_channels, 3, activation=activation, up=2,
                resample_filter=BOX_FILTER, impl=impl,
            )  # fmt: skip
        self.conv1 = Conv2dLayer(out_channels, out_channels, 3, activation=activation, impl=impl)
        self.torgb = Conv2dLayer(out_channels, img_channels, 1, impl=impl)

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x) if self.norm is not None else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Latents ``[N, in]`` (4x4 block) or features ``[N, in, r/2, r/2]`` -> features."""
        if self.resolution == 4:
            x = self.fc(x).reshape(x.shape[0], -1, 4, 4)
            x = self._norm(self.fc_act(x))
        else:
            x = self._norm(self.conv0(x))
        return self._norm(self.conv1(x))


class Generator(GrowingNetwork):
    """ProGAN generator: latents ``[N, z_dim]`` (and labels) -> images at a growth level.

    Args: the fields of :class:`GeneratorConfig`, and ``impl``, the backend of the ops.

    Submodules ``b4``, ``b8``, ... ``b{img_resolution}`` (:class:`GeneratorBlock`), each
    with its ``torgb``.
    """

    def __init__(
        self,
        img_resolution: int = 1024,
        img_channels: int = 3,
        c_dim: int = 0,
        z_dim: int = 512,
        fmap_base: int = 8192,
        fmap_decay: float = 1.0,
        fmap_max: int = 512,
        normalize_latents: bool = True,
        use_pixelnorm: bool = True,
        pixelnorm_eps: float = 1e-8,
        activation: str = "lrelu",
        impl: str = "auto",
    ):
        super().__init__()
        cfg = GeneratorConfig(
            img_resolution, img_channels, c_dim, z_dim, fmap_base, fmap_decay, fmap_max,
            normalize_latents, use_pixelnorm, pixelnorm_eps, activation,
        )  # fmt: skip
        self._init_levels(img_resolution, impl)
        self.img_channels, self.c_dim, self.z_dim = img_channels, c_dim, z_dim
        self.normalize_latents = normalize_latents
        self.pixel_norm = PixelNorm(pixelnorm_eps)
        channels = {r: feature_maps(r, fmap_base, fmap_decay, fmap_max) for r in self.resolutions}
        norm_eps = pixelnorm_eps if use_pixelnorm else None
        in_channels = z_dim + c_dim
        for res in self.resolutions:
            block = GeneratorBlock(
                in_channels, channels[res], res, img_channels, cfg.activation, norm_eps, impl
            )
            setattr(self, f"b{res}", block)
            in_channels = channels[res]
        set_impl(self, impl)  # also validates impl

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        *,
        level: int | None = None,
        alpha: float = 1.0,
    ) -> torch.Tensor:
        """Images ``[N, img_channels, 4 * 2**level, 4 * 2**level]`` (linear output).

        Args:
            z: latents ``[N, z_dim]``.
            c: one-hot labels ``[N, c_dim]`` (ignored, may be None, when ``c_dim == 0``).
            level: growth level, 0 (4x4) to ``max_level`` (default: the full resolution).
            alpha: fade-in weight of the level's block in [0, 1] (default 1; ignored at
                level 0): the image is ``alpha * torgb(new) + (1 - alpha) * up(torgb(old))``.
        """
        level = check_level(level, self.max_level)
        alpha = check_alpha(alpha)
        check_tensor("z", z, ndim=2)
        if z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [N, {self.z_dim}], got {tuple(z.shape)}")
        c = check_label(c, z.shape[0], self.c_dim)
        x = concat_labels(z, c) if c is not None else z
        x = x.to(self.b4.fc.weight.dtype)
        if self.normalize_latents:
            x = self.pixel_norm(x)
        return self.grow(x, level, alpha, lambda k, block, x: block(x))

    def extra_repr(self) -> str:
        return (
            f"z_dim={self.z_dim}, c_dim={self.c_dim}, img_resolution={self.img_resolution}, "
            f"img_channels={self.img_channels}, max_level={self.max_level}"
        )


class DiscriminatorBlock(nn.Module):
    """One resolution of the discriminator: FromRGB, conv, conv + 2x average pooling.

    Args:
        in_channels: feature maps of this resolution.
        out_channels: feature maps of the next (half) resolution.
        resolution: the block's input resolution (> 4).
        img_channels: image channels of ``fromrgb``.
        impl: backend of the ops.
        blur_filter: FIR taps of a low-pass filter applied before the downsampling conv
            (StyleGAN v1: ``[1, 2, 1]``); None (ProGAN) for none.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        resolution: int,
        img_channels: int,
        impl: str,
        blur_filter=None,
    ):
        super().__init__()
        self.resolution = resolution
        self.fromrgb = Conv2dLayer(img_channels, in_channels, 1, activation="lrelu", impl=impl)
        self.conv0 = Conv2dLayer(in_channels, in_channels, 3, activation="lrelu", impl=impl)
        self.blur = same_size_blur(blur_filter, impl)
        self.conv1 = Conv2dLayer(
            in_channels, out_channels, 3, activation="lrelu", down=2,
            resample_filter=BOX_FILTER, impl=impl,
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv0(x)
        if self.blur is not None:
            x = self.blur(x)
        return self.conv1(x)


class DiscriminatorEpilogue(nn.Module):
    """The 4x4 end of the discriminator: (FromRGB), minibatch std, conv, dense, output.

    Args:
        in_channels: feature maps at 4x4.
        hidden_features: width of the dense layer (official ``nf(0)``).
        out_features: 1 + number of classes.
        img_channels: image channels of ``fromrgb`` (used at level 0).
        mbstd_group_size: minibatch-std group size (0 or 1: no minibatch std).
        impl: backend of the ops.
        mbstd_num_channels: feature maps appended by the minibatch std (default 1).
    """

    def __init__(
        self,
        in_channels: int,
        hidden_features: int,
        out_features: int,
        img_channels: int,
        mbstd_group_size: int,
        impl: str,
        mbstd_num_channels: int = 1,
    ):
        super().__init__()
        self.resolution = 4
        self.fromrgb = Conv2dLayer(img_channels, in_channels, 1, activation="lrelu", impl=impl)
        self.mbstd = None
        if mbstd_group_size > 1:
            self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels)
        mbstd_channels = mbstd_num_channels if self.mbstd is not None else 0
        self.conv = Conv2dLayer(
            in_channels + mbstd_channels, in_channels, 3, activation="lrelu", impl=impl
        )
        self.fc = FullyConnectedLayer(
            in_channels * 16, hidden_features, activation="lrelu", impl=impl
        )
        self.out = FullyConnectedLayer(hidden_features, out_features, impl=impl)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        return self.out(self.fc(x.flatten(1)))


class Discriminator(GrowingNetwork):
    """ProGAN discriminator: images at a growth level -> logits ``[N, 1]``.

    Args: the fields of :class:`DiscriminatorConfig`, and ``impl``, the backend of the ops.

    Submodules ``b{img_resolution}`` ... ``b8`` (:class:`DiscriminatorBlock`) and ``b4``
    (:class:`DiscriminatorEpilogue`), each with its ``fromrgb``. With ``c_dim > 0`` the
    forward returns ``(logits [N, 1], class_logits [N, c_dim])`` (AC-GAN, as the official
    ``D_paper`` with labels); the labels ``c`` are never an input.
    """

    def __init__(
        self,
        img_resolution: int = 1024,
        img_channels: int = 3,
        c_dim: int = 0,
        fmap_base: int = 8192,
        fmap_decay: float = 1.0,
        fmap_max: int = 512,
        mbstd_group_size: int = 4,
        impl: str = "auto",
        *,
        mbstd_num_channels: int = 1,
        blur_filter=None,
        out_features: int | None = None,
    ):
        super().__init__()
        # Validates the arguments.
        DiscriminatorConfig(img_resolution, img_channels, c_dim, fmap_base, fmap_decay, fmap_max,
                            mbstd_group_size)  # fmt: skip
        self._init_levels(img_resolution, impl)
        self.img_channels, self.c_dim = img_channels, c_dim
        channels = {r: feature_maps(r, fmap_base, fmap_decay, fmap_max) for r in self.resolutions}
        for res in self.resolutions[1:]:
            block = DiscriminatorBlock(
                channels[res], channels[res // 2], res, img_channels, impl, blur_filter
            )
            setattr(self, f"b{res}", block)
        hidden = feature_maps(2, fmap_base, fmap_decay, fmap_max)  # official nf(0)
        out_features = 1 + c_dim if out_features is None else out_features
        self.b4 = DiscriminatorEpilogue(
            channels[4], hidden, out_features, img_channels, mbstd_group_size, impl,
            mbstd_num_channels=check_int("mbstd_num_channels", mbstd_num_channels, min_value=1),
        )  # fmt: skip
        set_impl(self, impl)

    def scores(
        self, img: torch.Tensor, *, level: int | None = None, alpha: float = 1.0
    ) -> torch.Tensor:
        """The output layer's values ``[N, out_features]`` for images at growth ``level``."""
        level = check_level(level, self.max_level)
        alpha = check_alpha(alpha)
        check_tensor("img", img, ndim=4)
        res = self.resolutions[level]
        if tuple(img.shape[1:]) != (self.img_channels, res, res):
            raise ValueError(
                f"img must have shape [N, {self.img_channels}, {res}, {res}] at level "
                f"{level}, got {tuple(img.shape)}"
            )
        img = img.to(self.b4.conv.weight.dtype)
        block = getattr(self, f"b{res}")
        x = block.fromrgb(img)
        if level > 0:
            x = block(x)
            if alpha < 1:
                below = getattr(self, f"b{res // 2}")
                x = fade_in(x, below.fromrgb(box_downsample(img, 2, impl=self.impl)), alpha)
            for r in reversed(self.resolutions[1:level]):
                x = getattr(self, f"b{r}")(x)
        return self.b4(x)

    def forward(
        self,
        img: torch.Tensor,
        c: torch.Tensor | None = None,
        *,
        level: int | None = None,
        alpha: float = 1.0,
    ):
        """Logits ``[N, 1]`` (and class logits ``[N, c_dim]`` when ``c_dim > 0``).

        Args:
            img: images ``[N, img_channels, 4 * 2**level, 4 * 2**level]``.
            c: labels, accepted and ignored (the classifier outputs are the conditioning).
            level: growth level (default: the full resolution).
            alpha: fade-in weight of the level's block (default 1; ignored at level 0): the
                features are ``alpha * block(fromrgb(img)) + (1 - alpha) *
                fromrgb_below(avgpool(img))``.
        """
        out = self.scores(img, level=level, alpha=alpha)
        if self.c_dim > 0:
            return out[:, :1], out[:, 1:]
        return out

    def extra_repr(self) -> str:
        return (
            f"c_dim={self.c_dim}, img_resolution={self.img_resolution}, "
            f"img_channels={self.img_channels}, max_level={self.max_level}"
        )
