"""The configuration of an existing StyleGAN2 network, read off the network itself.

Networks loaded from published weights (:func:`~gankern.models.load_stylegan2_pkl`,
:func:`~gankern.models.load_rosinality_checkpoint`) are built from whatever arguments their
files record; :func:`generator_config_of` and :func:`discriminator_config_of` give the
:class:`~gankern.models.stylegan2_configs.GeneratorConfig` /
:class:`~gankern.models.stylegan2_configs.DiscriminatorConfig` that rebuild the same
architecture (fine-tuning builds its networks from them and copies the weights in by name,
which checks every name and shape).
"""

from __future__ import annotations

from gankern.models.convert_rosinality import channel_layout
from gankern.models.stylegan2 import Discriminator, Generator
from gankern.models.stylegan2_configs import DiscriminatorConfig, GeneratorConfig


def _num_fp16_res(blocks, img_resolution: int) -> int:
    """``num_fp16_res`` giving the blocks' ``use_fp16`` flags (0 when none is fp16)."""
    fp16 = [b.resolution for b in blocks if getattr(b, "use_fp16", False)]
    if not fp16:
        return 0
    # fp16_min_resolution: 2 ** (log2(img_resolution) + 1 - num_fp16_res) == min(fp16 res)
    return img_resolution.bit_length() - min(fp16).bit_length() + 1


def generator_config_of(G: Generator) -> GeneratorConfig:
    """The :class:`GeneratorConfig` of an existing StyleGAN2 generator."""
    if not isinstance(G, Generator):
        raise TypeError(f"G must be a gankern StyleGAN2 Generator, got {type(G).__name__}")
    synthesis, mapping = G.synthesis, G.mapping
    blocks = [getattr(synthesis, f"b{res}") for res in synthesis.block_resolutions]
    channels = {b.resolution: b.conv1.weight.shape[0] for b in blocks}
    channel_base, channel_max = channel_layout(channels, "the generator")
    return GeneratorConfig(
        img_resolution=G.img_resolution, img_channels=G.img_channels, c_dim=G.c_dim,
        z_dim=G.z_dim, w_dim=G.w_dim, mapping_layers=mapping.num_layers,
        mapping_lr_multiplier=float(mapping.fc0.lr_multiplier),
        w_avg_beta=mapping.w_avg_beta, channel_base=channel_base, channel_max=channel_max,
        num_fp16_res=_num_fp16_res(blocks, G.img_resolution),
        conv_clamp=blocks[0].conv1.conv_clamp, architecture=blocks[0].architecture,
    )  # fmt: skip


def discriminator_config_of(D: Discriminator) -> DiscriminatorConfig:
    """The :class:`DiscriminatorConfig` of an existing StyleGAN2 discriminator (with its
    ``freeze_layers`` at 0: freezing is a training choice, not part of the weights)."""
    if not isinstance(D, Discriminator):
        raise TypeError(f"D must be a gankern StyleGAN2 Discriminator, got {type(D).__name__}")
    blocks = [getattr(D, f"b{res}") for res in D.block_resolutions]
    channels = {b.resolution: b.conv0.weight.shape[0] for b in blocks}
    channels[4] = D.b4.conv.weight.shape[0]
    channel_base, channel_max = channel_layout(channels, "the discriminator")
    mbstd = D.b4.mbstd
    return DiscriminatorConfig(
        img_resolution=D.img_resolution, img_channels=D.img_channels, c_dim=D.c_dim,
        architecture=blocks[0].architecture, channel_base=channel_base,
        channel_max=channel_max, num_fp16_res=_num_fp16_res(blocks, D.img_resolution),
        conv_clamp=blocks[0].conv0.conv_clamp, cmap_dim=D.cmap_dim or None,
        mbstd_group_size=None if mbstd is None else mbstd.group_size,
        mbstd_num_channels=0 if mbstd is None else mbstd.num_channels,
    )  # fmt: skip
