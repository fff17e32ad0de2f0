"""Named StyleGAN2 configurations: network shapes plus the recommended training hyperparameters.

``get_config(name, resolution=None, img_channels=None, c_dim=0, gpus=1)`` returns a
:class:`StyleGAN2Config`; ``config.G.build()`` and ``config.D.build()`` make the networks.

The published configurations are the ``--cfg`` specs of StyleGAN2-ADA's ``train.py``
(Karras et al., 2020, "Training Generative Adversarial Networks with Limited Data"):

========== ===== ========= ====== ========= ======== ====== ======= ===== =========
name       batch mbstd grp fmaps  lrate     gamma    ema    rampup  map   native res
========== ===== ========= ====== ========= ======== ====== ======= ===== =========
paper256   64    8         0.5    0.0025    1        20     None    8     256
paper512   64    8         1      0.0025    0.5      20     None    8     512
paper1024  32    4         1      0.002     2        10     None    8     1024
stylegan2  32    4         1      0.002     10       10     None    8     1024 (config-f)
cifar      64    32        1      0.0025    0.01     500    0.05    2     32
auto       (formula from resolution and GPU count, see :func:`auto_config`)
========== ===== ========= ====== ========= ======== ====== ======= ===== =========

``channel_base = fmaps * 32768``, ``channel_max = 512``, ``num_fp16_res = 4`` and
``conv_clamp = 256`` for all of them, as StyleGAN2-ADA trains them (mixed precision; the
parameters are those of the original StyleGAN2: config-f at 1024 px has 30,370,060 generator
and 29,012,513 discriminator parameters). ``cifar`` disables path-length regularization and
style mixing and uses the ``orig`` discriminator.

The small configurations are gankern's own, for CPUs: ``tiny`` (32x32 grayscale, the
built-in digits), ``small`` (64x64 RGB) and ``digits`` (the default of ``gankern train`` on
the built-in digits: a narrower ``tiny`` tuned to draw digits within minutes on two cores).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from gankern.nn._validate import check_resolution
from gankern.ops._checks import check_int


@dataclass(frozen=True)
class GeneratorConfig:
    """Shape of a StyleGAN2 generator (see :class:`gankern.models.stylegan2.Generator`)."""

    img_resolution: int
    img_channels: int = 3
    c_dim: int = 0
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8  # depth of the mapping network
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float = 0.995  # decay of the tracked average of w (truncation)
    channel_base: int = 32768  # feature maps at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 512
    num_fp16_res: int = 4  # highest resolutions in half precision (on GPUs)
    conv_clamp: float | None = 256  # clamp of convolution outputs (fp16 overflow guard)
    architecture: str = "skip"  # orig | skip | resnet
    fp16_channels_last: bool = False

    def kwargs(self) -> dict:
        """Keyword arguments of ``Generator(...)``."""
        return dict(
            z_dim=self.z_dim,
            c_dim=self.c_dim,
            w_dim=self.w_dim,
            img_resolution=self.img_resolution,
            img_channels=self.img_channels,
            mapping_kwargs=dict(
                num_layers=self.mapping_layers,
                lr_multiplier=self.mapping_lr_multiplier,
                w_avg_beta=self.w_avg_beta,
            ),
            synthesis_kwargs=dict(
                channel_base=self.channel_base,
                channel_max=self.channel_max,
                num_fp16_res=self.num_fp16_res,
                conv_clamp=self.conv_clamp,
                architecture=self.architecture,
                fp16_channels_last=self.fp16_channels_last,
            ),
        )

    def build(self, impl: str = "auto"):
        """A freshly initialized :class:`~gankern.models.stylegan2.Generator`."""
        from gankern.models.stylegan2 import Generator

        return Generator(**self.kwargs(), impl=impl)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Shape of a StyleGAN2 discriminator (see :class:`gankern.models.stylegan2.Discriminator`)."""

    img_resolution: int
    img_channels: int = 3
    c_dim: int = 0
    architecture: str = "resnet"  # orig | skip | resnet
    channel_base: int = 32768
    channel_max: int = 512
    num_fp16_res: int = 4
    conv_clamp: float | None = 256
    cmap_dim: int | None = None  # label embedding size (default: channels at 4x4)
    mbstd_group_size: int | None = 4  # minibatch-std group size (None: whole batch)
    mbstd_num_channels: int = 1
    freeze_layers: int = 0  # Freeze-D: number of leading layers kept fixed
    fp16_channels_last: bool = False

    def kwargs(self) -> dict:
        """Keyword arguments of ``Discriminator(...)``."""
        return dict(
            c_dim=self.c_dim,
            img_resolution=self.img_resolution,
            img_channels=self.img_channels,
            architecture=self.architecture,
            channel_base=self.channel_base,
            channel_max=self.channel_max,
            num_fp16_res=self.num_fp16_res,
            conv_clamp=self.conv_clamp,
            cmap_dim=self.cmap_dim,
            block_kwargs=dict(
                freeze_layers=self.freeze_layers, fp16_channels_last=self.fp16_channels_last
            ),
            mapping_kwargs={},
            epilogue_kwargs=dict(
                mbstd_group_size=self.mbstd_group_size, mbstd_num_channels=self.mbstd_num_channels
            ),
        )

    def build(self, impl: str = "auto"):
        """A freshly initialized :class:`~gankern.models.stylegan2.Discriminator`."""
        from gankern.models.stylegan2 import Discriminator

        return Discriminator(**self.kwargs(), impl=impl)


@dataclass(frozen=True)
class TrainingHyperparams:
    """Recommended training hyperparameters (StyleGAN2-ADA conventions)."""

    batch: int  # total batch over all GPUs
    ref_gpus: int  # GPU count the batch was tuned for (batch_gpu = batch // ref_gpus)
    lrate: float  # Adam learning rate of G and D
    gamma: float  # R1 weight
    ema_kimg: float  # half-life of the generator's EMA in thousands of images
    ema_rampup: float | None  # EMA ramp-up ratio (None: no ramp-up)
    total_kimg: int  # training length in thousands of images
    betas: tuple[float, float] = (0.0, 0.99)
    eps: float = 1e-8
    style_mixing_prob: float = 0.9
    pl_weight: float = 2.0  # path-length regularization weight (0: off)
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    r1_interval: int = 16  # lazy regularization intervals
    pl_interval: int = 4

    @property
    def batch_gpu(self) -> int:
        return max(self.batch // self.ref_gpus, 1)


@dataclass(frozen=True)
class StyleGAN2Config:
    """A named configuration: generator, discriminator and training hyperparameters."""

    name: str
    G: GeneratorConfig
    D: DiscriminatorConfig
    train: TrainingHyperparams
    description: str = ""

    def replace(self, **changes) -> StyleGAN2Config:
        """A copy with some top-level fields replaced (``G=``, ``D=``, ``train=``, ...)."""
        return dataclasses.replace(self, **changes)


def _published(
    name: str,
    resolution: int,
    img_channels: int,
    c_dim: int,
    *,
    ref_gpus: int,
    kimg: int,
    batch: int,
    mbstd: int,
    fmaps: float,
    lrate: float,
    gamma: float,
    ema: float,
    ramp: float | None,
    mapping: int,
    description: str,
) -> StyleGAN2Config:
    """A StyleGAN2-ADA ``cfg_specs`` entry turned into a configuration."""
    channel_base = int(fmaps * 32768)
    G = GeneratorConfig(
        img_resolution=resolution,
        img_channels=img_channels,
        c_dim=c_dim,
        mapping_layers=mapping,
        channel_base=channel_base,
    )
    D = DiscriminatorConfig(
        img_resolution=resolution,
        img_channels=img_channels,
        c_dim=c_dim,
        channel_base=channel_base,
        mbstd_group_size=mbstd,
    )
    train = TrainingHyperparams(
        batch=batch,
        ref_gpus=ref_gpus,
        lrate=lrate,
        gamma=gamma,
        ema_kimg=ema,
        ema_rampup=ramp,
        total_kimg=kimg,
    )
    return StyleGAN2Config(name=name, G=G, D=D, train=train, description=description)


def paper256(resolution=256, img_channels=3, c_dim=0, gpus=1) -> StyleGAN2Config:
    """StyleGAN2-ADA's paper256 (FFHQ/LSUN at 256 px, half the feature maps)."""
    return _published(
        "paper256", resolution, img_channels, c_dim, ref_gpus=8, kimg=25000, batch=64,
        mbstd=8, fmaps=0.5, lrate=0.0025, gamma=1, ema=20, ramp=None, mapping=8,
        description=paper256.__doc__,
    )  # fmt: skip


def paper512(resolution=512, img_channels=3, c_dim=0, gpus=1) -> StyleGAN2Config:
    """StyleGAN2-ADA's paper512 (BreCaHAD, AFHQ at 512 px)."""
    return _published(
        "paper512", resolution, img_channels, c_dim, ref_gpus=8, kimg=25000, batch=64,
        mbstd=8, fmaps=1, lrate=0.0025, gamma=0.5, ema=20, ramp=None, mapping=8,
        description=paper512.__doc__,
    )  # fmt: skip


def paper1024(resolution=1024, img_channels=3, c_dim=0, gpus=1) -> StyleGAN2Config:
    """StyleGAN2-ADA's paper1024 (MetFaces at 1024 px)."""
    return _published(
        "paper1024", resolution, img_channels, c_dim, ref_gpus=8, kimg=25000, batch=32,
        mbstd=4, fmaps=1, lrate=0.002, gamma=2, ema=10, ramp=None, mapping=8,
        description=paper1024.__doc__,
    )  # fmt: skip


def stylegan2(resolution=1024, img_channels=3, c_dim=0, gpus=1) -> StyleGAN2Config:
    """The original StyleGAN2 config-f (FFHQ at 1024 px), with ADA's mixed precision."""
    return _published(
        "stylegan2", resolution, img_channels, c_dim, ref_gpus=8, kimg=25000, batch=32,
        mbstd=4, fmaps=1, lrate=0.002, gamma=10, ema=10, ramp=None, mapping=8,
        description=stylegan2.__doc__,
    )  # fmt: skip


def cifar(resolution=32, img_channels=3, c_dim=0, gpus=1) -> StyleGAN2Config:
    """StyleGAN2-ADA's cifar (CIFAR-10 at 32 px; pass c_dim=10 for the conditional model)."""
    cfg = _published(
        "cifar", resolution, img_channels, c_dim, ref_gpus=2, kimg=100000, batch=64,
        mbstd=32, fmaps=1, lrate=0.0025, gamma=0.01, ema=500, ramp=0.05, mapping=2,
        description=cifar.__doc__,
    )  # fmt: skip
    return cfg.replace(
        D=dataclasses.replace(cfg.D, architecture="orig"),
        train=dataclasses.replace(cfg.train, pl_weight=0.0, style_mixing_prob=0.0),
    )


def auto_config(resolution=None, img_channels=3, c_dim=0, gpus=1) -> StyleGAN2Config:
    """StyleGAN2-ADA's auto config: hyperparameters from the resolution and the GPU count.

    ``batch = max(min(gpus * min(4096 // res, 32), 64), gpus)``, minibatch-std group
    ``min(batch // gpus, 4)``, ``fmaps = 1`` from 512 px up (else 0.5), ``lrate = 0.002`` at
    1024 px and up (else 0.0025), ``gamma = 0.0002 * res**2 / batch``, ``ema_kimg =
    batch * 10 / 32``, ramp-up 0.05, mapping depth 2.
    """
    if resolution is None:
        raise ValueError("the auto config needs the resolution (resolution=...), got None")
    res = check_resolution("resolution", resolution)
    gpus = check_int("gpus", gpus, min_value=1)
    batch = max(min(gpus * min(4096 // res, 32), 64), gpus)
    return _published(
        "auto", res, img_channels, c_dim, ref_gpus=gpus, kimg=25000, batch=batch,
        mbstd=min(batch // gpus, 4), fmaps=1 if res >= 512 else 0.5,
        lrate=0.002 if res >= 1024 else 0.0025, gamma=0.0002 * res**2 / batch,
        ema=batch * 10 / 32, ramp=0.05, mapping=2, description=auto_config.__doc__,
    )  # fmt: skip


def tiny(resolution=32, img_channels=1, c_dim=0, gpus=1) -> StyleGAN2Config:
    """CPU-sized: 32x32 grayscale (the built-in digits), trains in minutes on two cores.

    128 feature maps at 4 and 8 px, 64 at 16 px, 32 at 32 px; 64-d latents, mapping depth 2;
    full precision; no path-length regularization (its double backward through G would
    roughly double the cost of a step).
    """
    G = GeneratorConfig(
        img_resolution=resolution, img_channels=img_channels, c_dim=c_dim, z_dim=64, w_dim=64,
        mapping_layers=2, channel_base=1024, channel_max=128, num_fp16_res=0,
    )  # fmt: skip
    D = DiscriminatorConfig(
        img_resolution=resolution, img_channels=img_channels, c_dim=c_dim,
        channel_base=1024, channel_max=128, num_fp16_res=0, mbstd_group_size=4,
    )  # fmt: skip
    train = TrainingHyperparams(
        batch=32, ref_gpus=1, lrate=0.0025, gamma=0.01, ema_kimg=1.0, ema_rampup=0.05,
        total_kimg=30, pl_weight=0.0,
    )  # fmt: skip
    return StyleGAN2Config("tiny", G, D, train, description=tiny.__doc__)


def small(resolution=64, img_channels=3, c_dim=0, gpus=1) -> StyleGAN2Config:
    """CPU- or small-GPU-sized: 64x64 RGB; 256 feature maps up to 16 px, 128 at 32, 64 at 64.

    256-d latents, mapping depth 2, mixed precision in the two highest resolutions on GPUs.
    """
    G = GeneratorConfig(
        img_resolution=resolution, img_channels=img_channels, c_dim=c_dim, z_dim=256, w_dim=256,
        mapping_layers=2, channel_base=4096, channel_max=256, num_fp16_res=2,
    )  # fmt: skip
    D = DiscriminatorConfig(
        img_resolution=resolution, img_channels=img_channels, c_dim=c_dim,
        channel_base=4096, channel_max=256, num_fp16_res=2, mbstd_group_size=4,
    )  # fmt: skip
    train = TrainingHyperparams(
        batch=32, ref_gpus=1, lrate=0.0025, gamma=0.0002 * resolution**2 / 32, ema_kimg=10,
        ema_rampup=0.05, total_kimg=1000,
    )  # fmt: skip
    return StyleGAN2Config("small", G, D, train, description=small.__doc__)


def digits(resolution=32, img_channels=1, c_dim=0, gpus=1) -> StyleGAN2Config:
    """``gankern train``'s default on the built-in digits: 32x32 grayscale, 2 CPU cores.

    64 feature maps at 4 and 8 px, 32 at 16 px, 16 at 32 px (about a fifth of ``tiny``'s
    cost per image); 64-d latents, mapping depth 2; full precision; no path-length
    regularization. 40 kimg (1250 steps of 32 images) draws recognizable digits.
    """
    G = GeneratorConfig(
        img_resolution=resolution, img_channels=img_channels, c_dim=c_dim, z_dim=64, w_dim=64,
        mapping_layers=2, channel_base=512, channel_max=64, num_fp16_res=0,
    )  # fmt: skip
    D = DiscriminatorConfig(
        img_resolution=resolution, img_channels=img_channels, c_dim=c_dim,
        channel_base=512, channel_max=64, num_fp16_res=0, mbstd_group_size=4,
    )  # fmt: skip
    train = TrainingHyperparams(
        batch=32, ref_gpus=1, lrate=0.0025, gamma=0.01, ema_kimg=1.0, ema_rampup=0.05,
        total_kimg=40, pl_weight=0.0,
    )  # fmt: skip
    return StyleGAN2Config("digits", G, D, train, description=digits.__doc__)


ConfigFactory = Callable[..., StyleGAN2Config]

# name -> factory(resolution, img_channels, c_dim, gpus); register more with register_config.
CONFIGS: dict[str, ConfigFactory] = {
    "auto": auto_config,
    "stylegan2": stylegan2,
    "paper256": paper256,
    "paper512": paper512,
    "paper1024": paper1024,
    "cifar": cifar,
    "tiny": tiny,
    "small": small,
    "digits": digits,
}


def register_config(name: str, factory: ConfigFactory) -> None:
    """Add a named configuration; ``factory(resolution, img_channels, c_dim, gpus)``."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    if name in CONFIGS:
        raise ValueError(f"a configuration named {name!r} already exists")
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {type(factory).__name__}")
    CONFIGS[name] = factory


def get_config(
    name: str,
    resolution: int | None = None,
    img_channels: int | None = None,
    c_dim: int = 0,
    gpus: int = 1,
) -> StyleGAN2Config:
    """The named configuration for the given data.

    Args:
        name: one of :data:`CONFIGS` (auto, stylegan2, paper256, paper512, paper1024, cifar,
            tiny, small).
        resolution: image resolution (a power of two >= 8); default: the configuration's
            native resolution (required for ``auto``).
        img_channels: image channels; default: the configuration's (3, or 1 for ``tiny``).
        c_dim: label dimensionality (0: unconditional).
        gpus: number of GPUs (only ``auto`` depends on it).
    """
    if not isinstance(name, str) or name not in CONFIGS:
        raise ValueError(f"config name must be one of {sorted(CONFIGS)}, got {name!r}")
    kwargs: dict = {"c_dim": check_int("c_dim", c_dim, min_value=0)}
    kwargs["gpus"] = check_int("gpus", gpus, min_value=1)
    if resolution is not None:
        resolution = check_resolution("resolution", resolution)
        if resolution < 8:
            raise ValueError(f"resolution must be >= 8, got {resolution}")
        kwargs["resolution"] = resolution
    if img_channels is not None:
        kwargs["img_channels"] = check_int("img_channels", img_channels, min_value=1)
    return CONFIGS[name](**kwargs)
