"""BigGAN (Brock et al., 2019), after ajbrock/BigGAN-PyTorch (``BigGAN.py``, ``layers.py``).

SAGAN's ResNet networks (:mod:`gankern.models.sagan`) with BigGAN's changes:

* a class embedding ``shared`` (``nn.Embedding(c_dim, shared_dim)``, not spectrally
  normalized) shared by all generator blocks;
* hierarchical latents: z is split into ``len(blocks) + 1`` chunks; the first feeds the
  linear layer, each other chunk is concatenated with the shared embedding into the
  conditioning vector of one block;
* linear-conditioned batch norm in the blocks: gain ``1 + W_g y`` and bias ``W_b y``
  (:class:`gankern.nn.LinearConditionalBatchNorm2d`, spectrally normalized, no bias);
* orthogonal initialization of every convolution, linear layer and embedding;
* the projection discriminator of SAGAN (:class:`gankern.models.sagan.Discriminator`, built
  with orthogonal initialization and BigGAN's widths).

Also here: :func:`truncated_normal` (the truncation trick's latents),
:func:`standing_statistics` (batch-norm statistics re-estimated for sampling), and the
orthogonal regularization is :func:`gankern.nn.ortho_penalty` (``exclude=[G.shared]``).

Named configurations: :func:`biggan_config` (``biggan128``, the published ImageNet model
with 70,433,988 generator and 87,982,370 discriminator parameters; ``biggan64``,
``biggan32``, ``digits``); training settings: :data:`BIGGAN_TRAINING`.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass

import torch
from torch import nn

from gankern.models._netutils import (
    check_generator_inputs,
    check_int_field,
)
from gankern.models.hyperparams import GANHyperparams
from gankern.models.sagan import (
    G_WIDTHS,
    BatchNorm2d,
    DiscriminatorConfig,
    ResidualGenerator,
    check_generator_config,
)
from gankern.nn import LinearConditionalBatchNorm2d, class_embedding
from gankern.nn._validate import check_bool
from gankern.ops._checks import check_number, check_tensor

# ---------------------------------------------------------------------------------------------
# Configurations


@dataclass(frozen=True)
class GeneratorConfig:
    """Shape of a BigGAN generator (see :class:`Generator`).

    Attributes:
        img_resolution: output resolution, one of 16, 32, 64, 128, 256, 512.
        img_channels: image channels.
        c_dim: number of classes (0: unconditional; the blocks are then conditioned on the
            z chunks only, or use plain batch norm without ``hier``).
        z_dim: latent length (120 at 128 px); with ``hier`` divisible by the number of
            blocks + 1.
        shared_dim: length of the shared class embedding (128).
        hier: hierarchical latents (z split across the blocks).
        ch: width multiplier (96 at 128 px).
        attention: resolutions after whose block a self-attention block sits (64).
        bn_eps, bn_momentum: batch-norm epsilon and running-statistics momentum.
        sn_eps: epsilon of the spectral normalization (BigGAN-PyTorch's script: 1e-6).
        init: ``ortho`` (BigGAN), ``N02`` (BigGAN-PyTorch's CIFAR script) or ``xavier``.
    """

    img_resolution: int = 128
    img_channels: int = 3
    c_dim: int = 1000
    z_dim: int = 120
    shared_dim: int = 128
    hier: bool = True
    ch: int = 96
    attention: tuple = (64,)
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1
    sn_eps: float = 1e-6
    init: str = "ortho"

    def __post_init__(self):
        check_generator_config(self)
        check_int_field("shared_dim", self.shared_dim, 1)
        check_bool("hier", self.hier)
        slots = self.num_slots
        if self.hier and self.z_dim % slots:
            raise ValueError(
                f"z_dim must be divisible by the {slots} latent chunks (one per block and one "
                f"for the linear layer) with hier=True, got {self.z_dim}"
            )

    @property
    def num_slots(self) -> int:
        """Number of z chunks: one per block and one for the linear layer (1 without hier)."""
        return len(G_WIDTHS[self.img_resolution]) if self.hier else 1

    def build(self, impl: str = "auto", init: bool = True) -> Generator:
        """A freshly initialized :class:`Generator` (``init=False`` leaves torch's default
        initialization, e.g. to count the parameters of a large configuration quickly)."""
        return Generator(**dataclasses.asdict(self), impl=impl, init_weights=init)


@dataclass(frozen=True)
class TrainingHyperparams:
    """BigGAN's training settings beyond :class:`~gankern.models.hyperparams.GANHyperparams`.

    Attributes:
        gan: loss, optimizer, learning rates, betas, batch (per accumulation step), n_critic.
        adam_eps: Adam's epsilon.
        accumulations: gradient accumulation steps per optimizer step, for G and D (the
            effective batch is ``gan.batch * accumulations``).
        ortho_weight: weight of the orthogonal regularization of G
            (:func:`gankern.nn.ortho_penalty`, the paper's beta; BigGAN-PyTorch's
            ``--G_ortho`` adds the gradient of half of it, see its docstring).
        ema_decay: decay of the generator's exponential moving average.
        ema_start: iteration at which the EMA starts (before: a plain copy).
        truncation: threshold of the truncated latents for sampling (None: none).
        standing_stats_batches: batches for :func:`standing_statistics` before sampling.
    """

    gan: GANHyperparams
    adam_eps: float = 1e-6
    accumulations: int = 8
    ortho_weight: float = 1e-4
    ema_decay: float = 0.9999
    ema_start: int = 20000
    truncation: float | None = None
    standing_stats_batches: int = 16


# BigGAN-PyTorch scripts/launch_BigGAN_bs256x8.sh (the ImageNet 128 model): hinge loss,
# Adam lr 1e-4 (G) / 4e-4 (D), betas (0, 0.999), eps 1e-6, batch 256 with 8 accumulations
# (2048), one D step, EMA 0.9999 from iteration 20000, G in eval mode for sampling. The
# script sets --G_ortho 0; the paper (sec. 3.1) uses orthogonal regularization with beta 1e-4
# (and reports G lr 5e-5, D lr 2e-4, two D steps per G step in its appendix).
BIGGAN_TRAINING = TrainingHyperparams(
    gan=GANHyperparams(
        source="ajbrock/BigGAN-PyTorch scripts/launch_BigGAN_bs256x8.sh; Brock et al. 2019",
        loss="hinge", optimizer="adam", lr_g=1e-4, lr_d=4e-4, betas=(0.0, 0.999), batch=256,
        n_critic=1,
        notes="paper: G lr 5e-5, D lr 2e-4, 2 D steps per G step; script: --G_ortho 0",
    ),
)  # fmt: skip
# BigGAN-PyTorch scripts/launch_cifar_ema.sh: lr 2e-4 for both, 4 D steps, batch 50, EMA from
# iteration 1000, N(0, 0.02) initialization, no attention.
BIGGAN32_TRAINING = TrainingHyperparams(
    gan=GANHyperparams(
        source="ajbrock/BigGAN-PyTorch scripts/launch_cifar_ema.sh", loss="hinge",
        optimizer="adam", lr_g=2e-4, lr_d=2e-4, betas=(0.0, 0.999), batch=50, n_critic=4,
    ),
    adam_eps=1e-8, accumulations=1, ema_start=1000,
)  # fmt: skip
# gankern's digits setting.
DIGITS_TRAINING = TrainingHyperparams(
    gan=GANHyperparams(
        source="gankern (CPU digits)", loss="hinge", optimizer="adam", lr_g=1e-4, lr_d=4e-4,
        betas=(0.0, 0.999), batch=32, n_critic=1,
    ),
    accumulations=1, ema_decay=0.999, ema_start=200, standing_stats_batches=8,
)  # fmt: skip


def biggan_config(
    name: str = "biggan128",
    resolution: int | None = None,
    img_channels: int | None = None,
    c_dim: int | None = None,
) -> tuple[GeneratorConfig, DiscriminatorConfig]:
    """A named (generator, discriminator) configuration pair.

    Args:
        name: ``biggan128`` (the published ImageNet model of launch_BigGAN_bs256x8.sh:
            G_ch = D_ch = 96, z 120, shared embedding 128, hierarchical latents, attention at
            64, 1000 classes); ``biggan64`` (the same widths at 64 px, attention at 32);
            ``biggan32`` (CIFAR-10 as launch_cifar_ema.sh: ch 64, i.e. 256 maps, no
            attention, N(0, 0.02) initialization, 10 classes; with BigGAN's shared embedding
            and hierarchical z of 128, which that script leaves off); ``digits`` (CPU-sized,
            32x32 grayscale, 10 classes: ch 8, z 64, shared embedding 32, attention at 16).
        resolution: image resolution (default: the configuration's).
        img_channels: image channels (default: the configuration's).
        c_dim: number of classes (default: the configuration's).
    """
    table = {
        # name: resolution, channels, classes, ch, attention, z_dim, shared_dim, init
        "biggan128": (128, 3, 1000, 96, (64,), 120, 128, "ortho"),
        "biggan64": (64, 3, 1000, 96, (32,), 120, 128, "ortho"),
        "biggan32": (32, 3, 10, 64, (), 128, 128, "N02"),
        "digits": (32, 1, 10, 8, (16,), 64, 32, "ortho"),
    }
    if name not in table:
        raise ValueError(f"name must be one of {tuple(table)}, got {name!r}")
    res, ch_img, classes, ch, attention, z_dim, shared_dim, init = table[name]
    data = dict(
        img_resolution=res if resolution is None else resolution,
        img_channels=ch_img if img_channels is None else img_channels,
        c_dim=classes if c_dim is None else c_dim,
        ch=ch,
        attention=attention,
        sn_eps=1e-6 if name != "biggan32" else 1e-8,
        init=init,
    )
    G = GeneratorConfig(z_dim=z_dim, shared_dim=shared_dim, **data)
    return G, DiscriminatorConfig(**data)


# ---------------------------------------------------------------------------------------------
# Generator


class Generator(ResidualGenerator):
    """BigGAN generator: ``forward(z, c)`` -> images ``[N, img_channels, R, R]`` in [-1, 1].

    Args: the fields of :class:`GeneratorConfig`; ``impl``, the backend of the fused
    activations and of the resampling; ``init_weights`` (False: torch's default
    initialization).

    Submodules: ``shared`` (the class embedding; None when ``c_dim == 0``), ``linear``,
    ``blocks`` (each a :class:`gankern.models.sagan.GBlock`, plus a
    :class:`gankern.nn.SelfAttention` where configured), ``bn``, ``conv_out``.
    """

    def __init__(
        self,
        img_resolution: int = 128,
        img_channels: int = 3,
        c_dim: int = 1000,
        z_dim: int = 120,
        shared_dim: int = 128,
        hier: bool = True,
        ch: int = 96,
        attention=(64,),
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
        sn_eps: float = 1e-6,
        init: str = "ortho",
        impl: str = "auto",
        init_weights: bool = True,
    ):
        cfg = GeneratorConfig(
            img_resolution, img_channels, c_dim, z_dim, shared_dim, hier, ch, attention,
            bn_eps, bn_momentum, sn_eps, init,
        )  # fmt: skip
        chunk = z_dim // cfg.num_slots if hier else 0
        cond_dim = (shared_dim if c_dim else 0) + chunk

        def norm(channels):
            if cond_dim == 0:
                return BatchNorm2d(channels, eps=bn_eps, momentum=bn_momentum)
            return LinearConditionalBatchNorm2d(
                channels, cond_dim, bias=False, eps=bn_eps, momentum=bn_momentum
            )

        super().__init__(
            img_resolution, img_channels, ch, cfg.attention, chunk if hier else z_dim, norm,
            bn_eps, bn_momentum, sn_eps, init if init_weights else None, impl,
            shared=nn.Embedding(c_dim, shared_dim) if c_dim else None,
        )  # fmt: skip
        self.z_dim, self.c_dim, self.shared_dim = z_dim, c_dim, shared_dim
        self.hier, self.z_chunk = hier, chunk

    def conditions(self, z: torch.Tensor, c: torch.Tensor | None, embedding=None):
        """The linear layer's input and each block's conditioning vector.

        With ``hier``: ``z`` is split into chunks, the first feeds the linear layer and
        block ``i`` gets ``[embedding, chunk i + 1]``; without, every block gets the
        embedding. ``embedding`` (``[N, shared_dim]``) defaults to ``shared(c)``.
        """
        if embedding is None and self.shared is not None:
            embedding = class_embedding(c, self.shared.weight).to(z.dtype)
        num_blocks = len(self.blocks)
        if not self.hier:
            return z, [embedding] * num_blocks
        z0, *chunks = z.split(self.z_chunk, dim=1)
        if embedding is None:
            return z0, chunks
        return z0, [torch.cat([embedding, chunk], dim=1) for chunk in chunks]

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        *,
        embedding: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Images for latents ``z`` ``[N, z_dim]`` and labels ``c``.

        Args:
            z: latents (for the truncation trick, from :func:`truncated_normal`).
            c: one-hot labels ``[N, c_dim]`` or class indices ``[N]`` (ignored, may be None,
                when ``c_dim == 0`` or when ``embedding`` is given).
            embedding: class embeddings ``[N, shared_dim]`` to use instead of
                ``shared(c)`` (e.g. interpolations between classes), keyword only.
        """
        if embedding is not None:
            if self.shared is None:
                raise ValueError("embedding needs a conditional generator (c_dim > 0)")
            check_tensor("embedding", embedding, ndim=2)
            if tuple(embedding.shape) != (z.shape[0], self.shared_dim):
                raise ValueError(
                    f"embedding must have shape [{z.shape[0]}, {self.shared_dim}], got "
                    f"{tuple(embedding.shape)}"
                )
            c = check_generator_inputs(z, None, self.z_dim, 0)
        else:
            c = check_generator_inputs(z, c, self.z_dim, self.c_dim)
        return self.render(*self.conditions(z, c, embedding))

    def extra_repr(self) -> str:
        return (
            f"z_dim={self.z_dim}, c_dim={self.c_dim}, shared_dim={self.shared_dim}, "
            f"hier={self.hier}, img_resolution={self.img_resolution}"
        )


# ---------------------------------------------------------------------------------------------
# Sampling


def truncated_normal(
    shape,
    threshold: float,
    *,
    generator: torch.Generator | None = None,
    device=None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Standard normal samples restricted to ``[-threshold, threshold]`` (BigGAN's truncation).

    Values beyond the threshold are redrawn from the standard normal until none is left,
    which samples the truncated normal distribution exactly (scipy's
    ``truncnorm(-threshold, threshold)``).

    Args:
        shape: output shape (e.g. ``[N, z_dim]``).
        threshold: the truncation, > 0 (BigGAN's samples use 0.04 ... 2; a large value is
            the plain normal).
        generator: random generator (default: the global one of ``device``).
        device: device of the output (default: the generator's, else the CPU).
        dtype: floating dtype of the output.
    """
    threshold = check_number("threshold", threshold)
    if threshold <= 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    if device is None and generator is not None:
        device = generator.device
    x = torch.randn(shape, generator=generator, device=device, dtype=dtype)
    outside = x.abs() > threshold
    while bool(outside.any()):
        count = int(outside.sum())
        x[outside] = torch.randn(count, generator=generator, device=x.device, dtype=dtype)
        outside = x.abs() > threshold
    return x


@torch.no_grad()
def standing_statistics(
    G: nn.Module,
    num_batches: int = 16,
    batch_size: int = 64,
    *,
    truncation: float | None = None,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Re-estimate G's batch-norm statistics for sampling ("standing statistics").

    BigGAN-PyTorch's ``accumulate_standing_stats``: every batch norm of ``G`` forgets its
    running statistics, G runs in training mode on ``num_batches`` batches of random latents
    and classes, each batch norm keeps the plain average of the batch means and variances
    (torch's cumulative average, ``momentum=None``), and G is left in eval mode, where it
    normalizes with these averages. The momenta are restored afterwards.

    Args:
        G: a generator with ``z_dim`` and ``c_dim`` attributes, called as ``G(z, c)``.
        num_batches: number of batches averaged (BigGAN-PyTorch: 16).
        batch_size: samples per batch.
        truncation: draw z from :func:`truncated_normal` with this threshold (None: normal).
        generator: random generator for z and the classes (default: the global RNG).

    Returns ``G``. Note that the training-mode passes also advance the spectral
    normalization's power iteration, as in BigGAN-PyTorch. torch's running variance is the
    unbiased batch variance (BigGAN-PyTorch's ``myBN`` stores the biased one).
    """
    if not isinstance(G, nn.Module):
        raise TypeError(f"G must be a torch.nn.Module, got {type(G).__name__}")
    for name, value in (("num_batches", num_batches), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    norms = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    param = next(G.parameters())
    device, dtype = param.device, param.dtype
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average
        G.train()
        for _ in range(num_batches):
            shape = [batch_size, G.z_dim]
            if truncation is None:
                z = torch.randn(shape, generator=generator, device=device, dtype=dtype)
            else:
                z = truncated_normal(shape, truncation, generator=generator, device=device,
                                     dtype=dtype)  # fmt: skip
            c = None
            if G.c_dim:
                classes = torch.randint(G.c_dim, [batch_size], generator=generator, device=device)
                c = nn.functional.one_hot(classes, G.c_dim).to(dtype)
            G(z, c)
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
    return G.eval()
