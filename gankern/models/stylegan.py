"""StyleGAN (v1, Karras et al., 2019), after the official NVlabs/stylegan TF code.

``training/networks_stylegan.py`` (``G_style``, ``G_mapping``, ``G_synthesis``, ``D_basic``)
rebuilt from :mod:`gankern.nn`, with StyleGAN2-ADA's API so that tools written for
:mod:`gankern.models.stylegan2` (projection, editing, truncation) treat both alike:
``G.mapping(z, c, truncation_psi, truncation_cutoff)`` -> ws ``[N, G.num_ws, G.w_dim]``,
``G.synthesis(ws, noise_mode=...)`` -> images, ``G(z, c, truncation_psi=...,
noise_mode=...)``.

* Mapping: :class:`gankern.nn.MappingNetwork` (the one StyleGAN2 uses): z pixel-normalized,
  8 equalized fully connected layers with leaky ReLU and learning-rate multiplier 0.01, the
  tracked average ``w_avg`` (decay 0.995) for the truncation trick. A label, when
  ``c_dim > 0``, is embedded as StyleGAN2 does it (the official v1 code concatenates a raw
  embedding before the normalization; it has no published conditional configuration).
* Synthesis: a learned constant 4x4 input (initialized to ones); every layer is
  convolution -> per-pixel noise scaled per channel -> bias -> leaky ReLU -> AdaIN (instance
  norm, then a per-channel scale and shift from w, :class:`gankern.nn.AdaIN`); the first
  conv of each resolution upsamples (nearest neighbour fused into the conv) followed by a
  ``[1, 2, 1]`` blur; a 1x1 ``torgb`` at every resolution. ``num_ws = 2 * log2(R) - 2``: one
  w per layer. Output linear (no tanh).
* Progressive growing (``level``, ``alpha``) as ProGAN, with the same schedule
  (:mod:`gankern.models.progressive_schedule`, preset ``"stylegan"``), or a fixed
  resolution (``progressive=False``: only the last ``torgb``, the official ``structure =
  'fixed'``).
* Discriminator: ProGAN's (:class:`gankern.models.progan.Discriminator`) with the ``[1, 2,
  1]`` blur before each downsampling conv, minibatch std, and for labels the official
  "label switch" (one output per class, the logit of the sample's class).

Style mixing regularization: :func:`gankern.models.stylegan2.mapping_with_mixing` with
``num_active_ws=G.synthesis.num_ws_at(level)``. As for ProGAN, the He gain is applied after
the activation (gankern's equalized-lr convention): the same function with biases and
noise strengths stored ``1/sqrt(2)`` smaller than the TF weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from gankern.models.progan import (
    BOX_FILTER,
    GrowingNetwork,
    check_feature_maps,
    feature_maps,
    same_size_blur,
)
from gankern.models.progan import Discriminator as ProGANDiscriminator
from gankern.models.progressive_schedule import ProgressiveSchedule, get_schedule
from gankern.nn._validate import NOISE_MODES, check_bool, check_choice, check_resolution
from gankern.nn.adain import AdaIN
from gankern.nn.bias_act import FusedBiasAct
from gankern.nn.equalized import Conv2dLayer
from gankern.nn.impl import set_impl
from gankern.nn.mapping import MappingNetwork, check_label
from gankern.nn.noise import NoiseInput
from gankern.nn.progressive import check_alpha, check_level
from gankern.ops._checks import check_int, check_number, check_tensor

# ---------------------------------------------------------------------------------------------
# Configurations


@dataclass(frozen=True)
class GeneratorConfig:
    """Shape of a StyleGAN v1 generator (the official ``G_style`` arguments).

    Attributes:
        img_resolution: output resolution (a power of two >= 4).
        img_channels: image channels.
        c_dim: label dimensionality (0: unconditional).
        z_dim: latent dimensionality (official 512).
        w_dim: intermediate latent dimensionality (official 512).
        mapping_layers: depth of the mapping network (official 8).
        mapping_fmaps: width of the mapping network's hidden layers (official 512).
        mapping_lr_multiplier: learning-rate multiplier of the mapping network (0.01).
        w_avg_beta: decay of the tracked average of w (``dlatent_avg_beta``, 0.995).
        fmap_base, fmap_decay, fmap_max: feature maps per resolution (ProGAN's
            :func:`gankern.models.progan.feature_maps`).
        use_noise: per-pixel noise inputs.
        blur_filter: low-pass FIR taps after each upsampling (``[1, 2, 1]``; None: no blur).
        progressive: a ``torgb`` at every resolution for progressive growing (True), or only
            the last one (False, fixed resolution).
    """

    img_resolution: int = 1024
    img_channels: int = 3
    c_dim: int = 0
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    mapping_fmaps: int = 512
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float = 0.995
    fmap_base: int = 8192
    fmap_decay: float = 1.0
    fmap_max: int = 512
    use_noise: bool = True
    blur_filter: tuple | None = (1, 2, 1)
    progressive: bool = True

    def __post_init__(self):
        check_resolution("img_resolution", self.img_resolution)
        for name in ("img_channels", "z_dim", "w_dim", "mapping_layers", "mapping_fmaps"):
            check_int(name, getattr(self, name), min_value=1)
        check_int("c_dim", self.c_dim, min_value=0)
        check_number("mapping_lr_multiplier", self.mapping_lr_multiplier, min_value=0.0)
        check_number("w_avg_beta", self.w_avg_beta, min_value=0.0)
        check_feature_maps(self.fmap_base, self.fmap_decay, self.fmap_max, self.img_resolution)
        check_bool("use_noise", self.use_noise)
        check_bool("progressive", self.progressive)
        if self.blur_filter is not None:
            object.__setattr__(self, "blur_filter", _check_taps(self.blur_filter))

    def build(self, impl: str = "auto") -> Generator:
        """A freshly initialized :class:`Generator`."""
        return Generator(**dataclasses.asdict(self), impl=impl)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Shape of a StyleGAN v1 discriminator (the official ``D_basic`` arguments).

    Attributes:
        img_resolution: input resolution.
        img_channels: image channels.
        c_dim: label dimensionality (0: unconditional; else one output per class, the
            logit is the labelled class's).
        fmap_base, fmap_decay, fmap_max: feature maps per resolution.
        mbstd_group_size: minibatch-std group size (4; 0 or 1 disables it).
        mbstd_num_channels: feature maps appended by the minibatch std (1).
        blur_filter: low-pass FIR taps before each downsampling (``[1, 2, 1]``; None: none).
    """

    img_resolution: int = 1024
    img_channels: int = 3
    c_dim: int = 0
    fmap_base: int = 8192
    fmap_decay: float = 1.0
    fmap_max: int = 512
    mbstd_group_size: int = 4
    mbstd_num_channels: int = 1
    blur_filter: tuple | None = (1, 2, 1)

    def __post_init__(self):
        check_resolution("img_resolution", self.img_resolution)
        check_int("img_channels", self.img_channels, min_value=1)
        check_int("c_dim", self.c_dim, min_value=0)
        check_feature_maps(self.fmap_base, self.fmap_decay, self.fmap_max, self.img_resolution)
        check_int("mbstd_group_size", self.mbstd_group_size, min_value=0)
        check_int("mbstd_num_channels", self.mbstd_num_channels, min_value=1)
        if self.blur_filter is not None:
            object.__setattr__(self, "blur_filter", _check_taps(self.blur_filter))

    def build(self, impl: str = "auto") -> Discriminator:
        """A freshly initialized :class:`Discriminator`."""
        return Discriminator(**dataclasses.asdict(self), impl=impl)


def _check_taps(taps) -> tuple:
    if not isinstance(taps, (list, tuple)) or not taps:
        raise TypeError(f"blur_filter must be None or a non-empty list of numbers, got {taps!r}")
    return tuple(check_number(f"blur_filter[{i}]", t) for i, t in enumerate(taps))


@dataclass(frozen=True)
class TrainingHyperparams:
    """StyleGAN v1's training settings (official ``train.py``, ``training_loop.py``,
    ``loss.py``, ``G_style`` defaults).

    Attributes:
        schedule: name of the progressive schedule
            (:data:`gankern.models.progressive_schedule.SCHEDULES`; ``"stylegan"`` is the
            8-GPU FFHQ run: growth from 8x8, minibatch and learning rate per resolution).
        loss: ``"nonsaturating"`` logistic loss (``G_logistic_nonsaturating`` /
            ``D_logistic_simplegp``).
        r1_gamma: weight of the R1 penalty on the reals (10).
        betas, eps: Adam's settings for G and D.
        ema_kimg: half-life of the generator's running average in thousands of images.
        style_mixing_prob: probability of style mixing regularization (0.9).
        truncation_psi, truncation_cutoff: truncation of the official sample images (0.7 on
            the first 8 ws); training and metrics use none.
        minibatch_repeats: minibatches run before the schedule is re-read.
        reset_opt_for_new_lod: reset the Adam state when a new level starts fading in.
        mirror_augment: random x-flips of the reals.
    """

    schedule: str = "stylegan"
    loss: str = "nonsaturating"
    r1_gamma: float = 10.0
    betas: tuple = (0.0, 0.99)
    eps: float = 1e-8
    ema_kimg: float = 10.0
    style_mixing_prob: float = 0.9
    truncation_psi: float = 0.7
    truncation_cutoff: int = 8
    minibatch_repeats: int = 4
    reset_opt_for_new_lod: bool = True
    mirror_augment: bool = True

    def progressive_schedule(self, scale: float = 1.0) -> ProgressiveSchedule:
        """The named schedule with its phase lengths times ``scale``."""
        return get_schedule(self.schedule, scale)


STYLEGAN_TRAINING = TrainingHyperparams()
# gankern's digits setting: ProGAN's short digits schedule, no x-flips, the paper's R1 weight.
# The default 40 kimg CPU run (seed 0) measured fid_digits 1253 with gamma 0.1, 1216 with 1 and
# 962 with 10 (December 2026). With every setting tried (also lr 5e-4: 849, no style mixing:
# 728) the run's best fid_digits comes at about 10 kimg (545-643) and it grows at 32 px. At a
# fixed resolution (--progressive false) gamma 10 gave 654 at 40 kimg, gamma 0.1 diverged (1691).
DIGITS_TRAINING = TrainingHyperparams(
    schedule="digits", r1_gamma=10.0, ema_kimg=1.0, mirror_augment=False
)


def stylegan_config(
    name: str = "stylegan",
    resolution: int | None = None,
    img_channels: int | None = None,
    c_dim: int | None = None,
) -> tuple[GeneratorConfig, DiscriminatorConfig]:
    """A named (generator, discriminator) configuration pair.

    Args:
        name: ``"stylegan"`` (the official FFHQ networks, native 1024 px RGB: 26,219,627
            generator and 23,087,249 discriminator parameters) or ``"digits"`` (CPU-sized,
            32x32 grayscale: 64 maps at 4 and 8 px, 32 at 16 px, 16 at 32 px; z and w of 64,
            2 mapping layers).
        resolution: image resolution (default: the configuration's).
        img_channels: image channels (default: the configuration's).
        c_dim: label dimensionality (default 0).

    Training settings: :data:`STYLEGAN_TRAINING` (:data:`DIGITS_TRAINING` for digits).
    """
    if name == "stylegan":
        res, ch, fmaps, g_extra = 1024, 3, {}, {}
    elif name == "digits":
        res, ch = 32, 1
        fmaps = dict(fmap_base=256, fmap_max=64)
        g_extra = dict(z_dim=64, w_dim=64, mapping_layers=2, mapping_fmaps=64)
    else:
        raise ValueError(f"name must be 'stylegan' or 'digits', got {name!r}")
    data = dict(
        img_resolution=res if resolution is None else resolution,
        img_channels=ch if img_channels is None else img_channels,
        c_dim=0 if c_dim is None else c_dim,
        **fmaps,
    )
    return GeneratorConfig(**g_extra, **data), DiscriminatorConfig(**data)


# ---------------------------------------------------------------------------------------------
# Synthesis network


class StyleLayer(nn.Module):
    """The official ``layer_epilogue`` after a convolution: noise, bias, leaky ReLU, AdaIN.

    Args:
        num_channels: feature maps.
        w_dim: dimensionality of w.
        resolution: the layer's resolution (size of the stored constant noise).
        use_noise: add per-pixel noise with a learned strength per channel.
        impl: backend of the ops.
    """

    def __init__(self, num_channels: int, w_dim: int, resolution: int, use_noise: bool, impl: str):
        super().__init__()
        self.noise = NoiseInput(num_channels, resolution) if use_noise else None
        self.act = FusedBiasAct(num_channels, act="lrelu", impl=impl)
        self.adain = AdaIN(num_channels, w_dim, impl=impl)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str) -> torch.Tensor:
        if self.noise is not None:
            x = self.noise(x, noise_mode=noise_mode)
        return self.adain(self.act(x), w)


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: two styled layers and ``torgb``.

    At 4x4 the first layer is the learned constant ``const`` (ones); above, a 2x nearest
    upsampling 3x3 convolution followed by the blur. The second layer is a 3x3 convolution.

    Args:
        in_channels: input feature maps (ignored at 4x4).
        out_channels: feature maps of this resolution.
        w_dim: dimensionality of w.
        resolution: the block's resolution.
        img_channels: image channels.
        use_noise: per-pixel noise inputs.
        blur_filter: FIR taps of the blur after upsampling (None: no blur).
        has_torgb: give the block a ``torgb`` layer.
        impl: backend of the ops.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        use_noise: bool,
        blur_filter,
        has_torgb: bool,
        impl: str,
    ):
        super().__init__()
        self.resolution = resolution
        if resolution == 4:
            self.const = nn.Parameter(torch.ones([out_channels, 4, 4]))
        else:
            self.conv0 = Conv2dLayer(
                in_channels, out_channels, 3, bias=False, up=2, resample_filter=BOX_FILTER,
                impl=impl,
            )  # fmt: skip
            self.blur = same_size_blur(blur_filter, impl)
        self.style0 = StyleLayer(out_channels, w_dim, resolution, use_noise, impl)
        self.conv1 = Conv2dLayer(out_channels, out_channels, 3, bias=False, impl=impl)
        self.style1 = StyleLayer(out_channels, w_dim, resolution, use_noise, impl)
        self.torgb = Conv2dLayer(out_channels, img_channels, 1, impl=impl) if has_torgb else None

    def forward(
        self, x: torch.Tensor | None, w0: torch.Tensor, w1: torch.Tensor, noise_mode: str
    ) -> torch.Tensor:
        if self.resolution == 4:
            x = self.const.to(w0.dtype).unsqueeze(0).expand(w0.shape[0], -1, -1, -1)
        else:
            x = self.conv0(x)
            if self.blur is not None:
                x = self.blur(x)
        x = self.style0(x, w0, noise_mode)
        return self.style1(self.conv1(x), w1, noise_mode)


class SynthesisNetwork(GrowingNetwork):
    """ws ``[N, num_ws, w_dim]`` -> images at a growth level (the official ``G_synthesis``).

    Args:
        w_dim: dimensionality of w.
        img_resolution: output resolution at the last level.
        img_channels: image channels.
        fmap_base, fmap_decay, fmap_max: feature maps per resolution.
        use_noise: per-pixel noise inputs.
        blur_filter: FIR taps of the blur after upsampling (None: none).
        progressive: a ``torgb`` at every resolution (True) or only the last (False: the
            network runs at the full resolution only).
        impl: backend of the ops.

    ``num_ws = 2 * log2(img_resolution) - 2``: ws ``2k`` and ``2k + 1`` style the two layers
    of the ``k``-th block (4x4 is block 0).
    """

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        fmap_base: int = 8192,
        fmap_decay: float = 1.0,
        fmap_max: int = 512,
        use_noise: bool = True,
        blur_filter=(1, 2, 1),
        progressive: bool = True,
        impl: str = "auto",
    ):
        super().__init__()
        self._init_levels(img_resolution, impl)
        self.w_dim = check_int("w_dim", w_dim, min_value=1)
        self.img_channels = check_int("img_channels", img_channels, min_value=1)
        self.progressive = check_bool("progressive", progressive)
        self.num_ws = 2 * (self.max_level + 1)
        channels = {r: feature_maps(r, fmap_base, fmap_decay, fmap_max) for r in self.resolutions}
        in_channels = 0
        for res in self.resolutions:
            block = SynthesisBlock(
                in_channels, channels[res], w_dim, res, img_channels, use_noise, blur_filter,
                has_torgb=progressive or res == img_resolution, impl=impl,
            )  # fmt: skip
            setattr(self, f"b{res}", block)
            in_channels = channels[res]

    def num_ws_at(self, level: int | None = None) -> int:
        """Number of leading ws used at growth ``level`` (None: all, ``num_ws``)."""
        return 2 * (check_level(level, self.max_level) + 1)

    def forward(
        self,
        ws: torch.Tensor,
        *,
        noise_mode: str = "random",
        level: int | None = None,
        alpha: float = 1.0,
    ) -> torch.Tensor:
        """Images ``[N, img_channels, 4 * 2**level, 4 * 2**level]`` (linear output).

        Args:
            ws: ``[N, num_ws, w_dim]`` (the ws of levels above ``level`` are not used).
            noise_mode: ``"random"``, ``"const"`` (the stored noise images) or ``"none"``.
            level: growth level (default: the full resolution).
            alpha: fade-in weight of the level's block (default 1; ignored at level 0).
        """
        check_choice("noise_mode", noise_mode, NOISE_MODES)
        level = check_level(level, self.max_level)
        alpha = check_alpha(alpha)
        if not self.progressive and (level != self.max_level or alpha != 1):
            raise ValueError(
                f"a fixed-resolution synthesis network (progressive=False) runs at level "
                f"{self.max_level} with alpha 1 only, got level={level}, alpha={alpha}"
            )
        check_tensor("ws", ws, ndim=3)
        if tuple(ws.shape[1:]) != (self.num_ws, self.w_dim):
            raise ValueError(
                f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}"
            )
        ws = ws.to(self.b4.const.dtype)

        def run_block(k, block, x):
            return block(x, ws[:, 2 * k], ws[:, 2 * k + 1], noise_mode)

        return self.grow(None, level, alpha, run_block)

    def extra_repr(self) -> str:
        return (
            f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
            f"img_channels={self.img_channels}, progressive={self.progressive}"
        )


class Generator(nn.Module):
    """StyleGAN v1 generator: mapping network + synthesis network.

    Args: the fields of :class:`GeneratorConfig`, and ``impl``, the backend of the ops.

    Attributes as StyleGAN2-ADA's: ``z_dim``, ``c_dim``, ``w_dim``, ``num_ws``,
    ``img_resolution``, ``img_channels``, ``mapping``, ``synthesis``; plus ``max_level``.
    """

    def __init__(
        self,
        img_resolution: int = 1024,
        img_channels: int = 3,
        c_dim: int = 0,
        z_dim: int = 512,
        w_dim: int = 512,
        mapping_layers: int = 8,
        mapping_fmaps: int = 512,
        mapping_lr_multiplier: float = 0.01,
        w_avg_beta: float = 0.995,
        fmap_base: int = 8192,
        fmap_decay: float = 1.0,
        fmap_max: int = 512,
        use_noise: bool = True,
        blur_filter=(1, 2, 1),
        progressive: bool = True,
        impl: str = "auto",
    ):
        super().__init__()
        cfg = GeneratorConfig(
            img_resolution,
            img_channels,
            c_dim,
            z_dim,
            w_dim,
            mapping_layers,
            mapping_fmaps,
            mapping_lr_multiplier,
            w_avg_beta,
            fmap_base,
            fmap_decay,
            fmap_max,
            use_noise,
            blur_filter,
            progressive,
        )  # fmt: skip  (validates the arguments)
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(
            w_dim, img_resolution, img_channels, fmap_base, fmap_decay, fmap_max, use_noise,
            cfg.blur_filter, progressive, impl=impl,
        )  # fmt: skip
        self.num_ws = self.synthesis.num_ws
        self.max_level = self.synthesis.max_level
        self.mapping = MappingNetwork(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
            num_layers=mapping_layers, layer_features=mapping_fmaps,
            lr_multiplier=mapping_lr_multiplier, w_avg_beta=w_avg_beta, impl=impl,
        )  # fmt: skip
        self.impl = impl
        set_impl(self, impl)  # also validates impl

    def set_impl(self, impl: str) -> nn.Module:
        """Use backend ``impl`` (``"auto"``, ``"cuda"``, ``"triton"``, ``"ref"``) everywhere."""
        return set_impl(self, impl)

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        *,
        noise_mode: str = "random",
        level: int | None = None,
        alpha: float = 1.0,
    ) -> torch.Tensor:
        """Images ``[N, img_channels, 4 * 2**level, 4 * 2**level]`` for latents ``z``.

        Args:
            z: latents ``[N, z_dim]``.
            c: labels ``[N, c_dim]`` (ignored, may be None, when ``c_dim == 0``).
            truncation_psi: truncation towards ``w_avg`` (1: none; the paper's images 0.7).
            truncation_cutoff: truncate only the first ws (None: all; the paper's 8).
            noise_mode: ``"random"``, ``"const"`` or ``"none"``.
            level, alpha: growth level and fade-in weight (defaults: full resolution, 1).
        """
        c = check_label(c, z.shape[0] if isinstance(z, torch.Tensor) else None, self.c_dim)
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, level=level, alpha=alpha)

    def extra_repr(self) -> str:
        return (
            f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}, "
            f"img_resolution={self.img_resolution}, img_channels={self.img_channels}"
        )


# ---------------------------------------------------------------------------------------------
# Discriminator


class Discriminator(ProGANDiscriminator):
    """StyleGAN v1 discriminator (``D_basic``): ProGAN's with blur and the label switch.

    Args: the fields of :class:`DiscriminatorConfig`, and ``impl``, the backend of the ops.

    ``forward(img, c, *, level=None, alpha=1.0)`` returns logits ``[N, 1]``; with
    ``c_dim > 0`` the output layer has one unit per class and the logit is ``sum(out * c)``
    (the official ``LabelSwitch``).
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
        mbstd_num_channels: int = 1,
        blur_filter=(1, 2, 1),
        impl: str = "auto",
    ):
        cfg = DiscriminatorConfig(
            img_resolution,
            img_channels,
            c_dim,
            fmap_base,
            fmap_decay,
            fmap_max,
            mbstd_group_size,
            mbstd_num_channels,
            blur_filter,
        )  # fmt: skip  (validates the arguments)
        super().__init__(
            img_resolution, img_channels, c_dim, fmap_base, fmap_decay, fmap_max,
            mbstd_group_size, impl, mbstd_num_channels=mbstd_num_channels,
            blur_filter=cfg.blur_filter, out_features=max(c_dim, 1),
        )  # fmt: skip

    def forward(
        self,
        img: torch.Tensor,
        c: torch.Tensor | None = None,
        *,
        level: int | None = None,
        alpha: float = 1.0,
    ) -> torch.Tensor:
        """Logits ``[N, 1]`` for images at growth ``level`` (labels ``c`` ``[N, c_dim]``)."""
        batch = img.shape[0] if isinstance(img, torch.Tensor) else None
        c = check_label(c, batch, self.c_dim)
        scores = self.scores(img, level=level, alpha=alpha)
        if c is None:
            return scores
        return (scores * c.to(scores.dtype)).sum(dim=1, keepdim=True)
