"""StyleGAN2 generator and discriminator (Karras et al., 2020), as in StyleGAN2-ADA.

The API, the constructor arguments and the module/parameter names follow StyleGAN2-ADA's
``training/networks.py`` so that code written for it works unchanged and official weights map
onto these modules name for name (see :mod:`gankern.models.convert_ada`):

* ``G = Generator(z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs,
  synthesis_kwargs)``; ``G(z, c, truncation_psi=1, truncation_cutoff=None,
  noise_mode="random", force_fp32=False, fused_modconv=None)``; ``G.mapping(z, c, ...)``
  -> ws ``[N, G.num_ws, G.w_dim]``; ``G.synthesis(ws, ...)`` -> images in about [-1, 1].
* ``D = Discriminator(c_dim, img_resolution, img_channels, architecture="resnet", ...)``;
  ``D(img, c)`` -> logits ``[N, 1]``.

Every layer is built from :mod:`gankern.nn` (equalized learning rate everywhere), whose ops
run on the backend chosen by ``impl`` (``G.set_impl("triton")`` switches a built model).
Blocks at the ``num_fp16_res`` highest resolutions run in half precision on GPUs
(``half_dtype`` float16 by default; bfloat16 also runs on CPUs), with ``conv_clamp``.
Named configurations (paper256, stylegan2 config-f, auto, tiny, ...) are in
:mod:`gankern.models.stylegan2_configs`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gankern.nn._validate import (
    ARCHITECTURES,
    check_choice,
    check_filter_taps,
    check_half_dtype,
    check_resolution,
)
from gankern.nn.equalized import Conv2dLayer, FullyConnectedLayer
from gankern.nn.impl import set_impl
from gankern.nn.mapping import MappingNetwork, check_label
from gankern.nn.minibatch_std import MinibatchStdLayer
from gankern.nn.synthesis import SynthesisLayer, ToRGBLayer
from gankern.ops import downsample2d, setup_filter, upsample2d
from gankern.ops._checks import check_int, check_number, check_tensor

SQRT_HALF = math.sqrt(0.5)


def channels_per_resolution(resolutions, channel_base: int, channel_max: int) -> dict[int, int]:
    """StyleGAN2's feature-map counts: ``min(channel_base // res, channel_max)`` per resolution."""
    return {res: min(channel_base // res, channel_max) for res in resolutions}


def fp16_min_resolution(img_resolution: int, num_fp16_res: int) -> int:
    """Lowest resolution that runs in half precision (at least 8: the 4x4 parts stay fp32)."""
    return max(2 ** (int(math.log2(img_resolution)) + 1 - num_fp16_res), 8)


class _NetworkSettings:
    """``set_half_dtype`` and ``set_impl`` for the whole network."""

    def set_half_dtype(self, half_dtype) -> nn.Module:
        """Run the fp16 blocks in ``"float16"`` or ``"bfloat16"`` (also accepts torch dtypes)."""
        dtype = check_half_dtype(half_dtype)
        for module in self.modules():
            if hasattr(module, "half_dtype"):
                module.half_dtype = dtype
        return self

    def set_impl(self, impl: str) -> nn.Module:
        """Use backend ``impl`` (``"auto"``, ``"cuda"``, ``"triton"``, ``"ref"``) in every layer."""
        return set_impl(self, impl)


class _Block(nn.Module):
    """What synthesis and discriminator blocks share: precision, layout, backend, FIR filter."""

    def _init_block(
        self, resolution, img_channels, architecture, resample_filter, use_fp16,
        fp16_channels_last, half_dtype, impl,
    ) -> None:  # fmt: skip
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = check_choice("architecture", architecture, ARCHITECTURES)
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.half_dtype = check_half_dtype(half_dtype)
        self.impl = impl
        self.register_buffer(
            "resample_filter", setup_filter(check_filter_taps(resample_filter)), persistent=False
        )

    def _compute_format(
        self, force_fp32: bool, device, full_dtype: torch.dtype
    ) -> tuple[torch.dtype, torch.memory_format]:
        """The compute dtype (half precision, or the parameters' ``full_dtype``) and the memory
        format (channels_last only in half precision) of the block."""
        # float16 runs on GPUs only (CPU kernels are slow or missing), bfloat16 also on CPUs.
        dtype = full_dtype
        if self.use_fp16 and not force_fp32:
            if device.type == "cuda" or self.half_dtype == torch.bfloat16:
                dtype = self.half_dtype
        channels_last = self.channels_last and dtype != full_dtype
        return dtype, torch.channels_last if channels_last else torch.contiguous_format

    def extra_repr(self) -> str:
        return (
            f"resolution={self.resolution}, architecture={self.architecture}, "
            f"use_fp16={self.use_fp16}"
        )


# ---------------------------------------------------------------------------------------------
# Generator


class SynthesisBlock(_Block):
    """One resolution of the synthesis network: (const or 2x up conv) + conv + ToRGB.

    Args:
        in_channels: input channels, 0 for the first block (which starts from a learned const).
        out_channels: output channels.
        w_dim: dimensionality of w.
        resolution: resolution of this block.
        img_channels: image channels.
        is_last: the last (highest-resolution) block, which always has a ToRGB.
        architecture: ``"orig"``, ``"skip"`` (ToRGB at every resolution, images summed) or
            ``"resnet"`` (residual blocks).
        resample_filter: FIR taps for upsampling.
        conv_clamp: clamp of the convolution outputs (None: none).
        use_fp16: run this block in half precision.
        fp16_channels_last: use channels_last memory format in half precision.
        half_dtype: ``"float16"`` or ``"bfloat16"``.
        impl: backend of the ops.
        **layer_kwargs: more arguments of :class:`SynthesisLayer` (kernel_size, use_noise,
            activation).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: str = "skip",
        resample_filter=(1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        fp16_channels_last: bool = False,
        half_dtype="float16",
        impl: str = "auto",
        **layer_kwargs,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.w_dim = w_dim
        self.is_last = is_last
        self._init_block(
            resolution, img_channels, architecture, resample_filter, use_fp16,
            fp16_channels_last, half_dtype, impl,
        )  # fmt: skip
        self.num_conv = 0
        self.num_torgb = 0
        common = dict(
            w_dim=w_dim,
            resolution=resolution,
            conv_clamp=conv_clamp,
            channels_last=self.channels_last,
            impl=impl,
        )

        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(
                in_channels,
                out_channels,
                up=2,
                resample_filter=resample_filter,
                **common,
                **layer_kwargs,
            )
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, **common, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(
                out_channels,
                img_channels,
                w_dim=w_dim,
                conv_clamp=conv_clamp,
                channels_last=self.channels_last,
                impl=impl,
            )
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(
                in_channels,
                out_channels,
                kernel_size=1,
                bias=False,
                up=2,
                resample_filter=resample_filter,
                channels_last=self.channels_last,
                impl=impl,
            )

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        force_fp32: bool = False,
        fused_modconv: bool | None = None,
        **layer_kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``ws``: ``[N, num_conv + num_torgb, w_dim]``; returns the features and the image."""
        w_iter = iter(ws.unbind(dim=1))
        full_dtype = self.conv1.weight.dtype
        dtype, memory_format = self._compute_format(force_fp32, ws.device, full_dtype)
        if fused_modconv is None:
            # StyleGAN2-ADA's heuristic: grouped convs for inference, except in half precision
            # with a batch (where the shared-weight formulation is faster).
            fused_modconv = (not self.training) and (dtype == full_dtype or ws.shape[0] == 1)

        if self.in_channels == 0:
            x = self.const.to(dtype=dtype, memory_format=memory_format)
            x = x.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
        else:
            x = x.to(dtype=dtype, memory_format=memory_format)

        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
        elif self.architecture == "resnet":
            y = self.skip(x, gain=SQRT_HALF)
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(
                x, next(w_iter), fused_modconv=fused_modconv, gain=SQRT_HALF, **layer_kwargs
            )
            x = y + x
        else:
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)

        if img is not None:
            img = upsample2d(img, self.resample_filter, impl=self.impl)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv)
            y = y.to(dtype=full_dtype, memory_format=torch.contiguous_format)
            img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(_NetworkSettings, nn.Module):
    """ws ``[N, num_ws, w_dim]`` -> images ``[N, img_channels, img_resolution, img_resolution]``.

    Args:
        w_dim: dimensionality of w.
        img_resolution: output resolution (a power of two >= 4).
        img_channels: image channels.
        channel_base: feature maps at resolution r: ``min(channel_base // r, channel_max)``.
        channel_max: most feature maps in any layer.
        num_fp16_res: number of highest resolutions run in half precision.
        **block_kwargs: arguments of :class:`SynthesisBlock` (architecture, conv_clamp,
            resample_filter, fp16_channels_last, half_dtype, impl, use_noise, ...).
    """

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        **block_kwargs,
    ):
        super().__init__()
        self.w_dim = check_int("w_dim", w_dim, min_value=1)
        self.img_resolution = check_resolution("img_resolution", img_resolution)
        self.img_channels = check_int("img_channels", img_channels, min_value=1)
        check_int("channel_base", channel_base, min_value=1)
        check_int("channel_max", channel_max, min_value=1)
        self.num_fp16_res = check_int("num_fp16_res", num_fp16_res, min_value=0)
        self.img_resolution_log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(2, self.img_resolution_log2 + 1)]
        channels = channels_per_resolution(self.block_resolutions, channel_base, channel_max)
        if min(channels.values()) < 1:
            raise ValueError(
                f"channel_base={channel_base} leaves no feature maps at {img_resolution}x"
                f"{img_resolution} (needs channel_base >= img_resolution)"
            )
        fp16_resolution = fp16_min_resolution(img_resolution, num_fp16_res)

        self.num_ws = 0
        for res in self.block_resolutions:
            is_last = res == self.img_resolution
            block = SynthesisBlock(
                channels[res // 2] if res > 4 else 0,
                channels[res],
                w_dim=w_dim,
                resolution=res,
                img_channels=img_channels,
                is_last=is_last,
                use_fp16=(num_fp16_res > 0 and res >= fp16_resolution),
                **block_kwargs,
            )
            self.num_ws += block.num_conv
            if is_last:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    def forward(self, ws: torch.Tensor, **block_kwargs) -> torch.Tensor:
        """Render ``ws``; ``block_kwargs``: noise_mode, force_fp32, fused_modconv."""
        check_tensor("ws", ws, ndim=3)
        if tuple(ws.shape[1:]) != (self.num_ws, self.w_dim):
            raise ValueError(
                f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}"
            )
        ws = ws.to(self.b4.const.dtype)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            # Consecutive blocks share one w: the ToRGB of a block and the first conv of the next.
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            x, img = block(x, img, block_ws, **block_kwargs)
        return img

    def extra_repr(self) -> str:
        return (
            f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
            f"img_channels={self.img_channels}, num_fp16_res={self.num_fp16_res}"
        )


class Generator(_NetworkSettings, nn.Module):
    """StyleGAN2 generator: mapping network + synthesis network.

    Args:
        z_dim: latent dimensionality.
        c_dim: label dimensionality (0: unconditional).
        w_dim: intermediate latent dimensionality.
        img_resolution: output resolution (a power of two >= 4).
        img_channels: image channels.
        mapping_kwargs: arguments of :class:`gankern.nn.MappingNetwork` (num_layers,
            lr_multiplier, w_avg_beta, ...).
        synthesis_kwargs: arguments of :class:`SynthesisNetwork` (channel_base, channel_max,
            num_fp16_res, conv_clamp, architecture, fp16_channels_last, half_dtype, ...).
        impl: backend of every op (``"auto"``, ``"cuda"``, ``"triton"``, ``"ref"``).
    """

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_kwargs: dict | None = None,
        synthesis_kwargs: dict | None = None,
        impl: str = "auto",
    ):
        super().__init__()
        self.z_dim = check_int("z_dim", z_dim, min_value=1)
        self.c_dim = check_int("c_dim", c_dim, min_value=0)
        self.w_dim = check_int("w_dim", w_dim, min_value=1)
        self.img_resolution = check_resolution("img_resolution", img_resolution)
        self.img_channels = check_int("img_channels", img_channels, min_value=1)
        self.synthesis = SynthesisNetwork(
            w_dim=w_dim,
            img_resolution=img_resolution,
            img_channels=img_channels,
            impl=impl,
            **(synthesis_kwargs or {}),
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim=z_dim,
            c_dim=c_dim,
            w_dim=w_dim,
            num_ws=self.num_ws,
            impl=impl,
            **(mapping_kwargs or {}),
        )
        set_impl(self, impl)  # also validates impl

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        **synthesis_kwargs,
    ) -> torch.Tensor:
        """Images ``[N, img_channels, R, R]`` for latents ``z`` ``[N, z_dim]`` and labels ``c``.

        ``synthesis_kwargs``: ``noise_mode`` (``"random"``, ``"const"``, ``"none"``),
        ``force_fp32``, ``fused_modconv``.
        """
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)

    def extra_repr(self) -> str:
        return (
            f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, "
            f"img_resolution={self.img_resolution}, img_channels={self.img_channels}"
        )


# ---------------------------------------------------------------------------------------------
# Style mixing


def mix_styles(ws: torch.Tensor, ws_other: torch.Tensor, cutoff: int) -> torch.Tensor:
    """The first ``cutoff`` ws from ``ws``, the rest from ``ws_other``.

    Both are ``[N, num_ws, w_dim]``; ``cutoff`` is in ``[0, num_ws]``.
    """
    check_tensor("ws", ws, ndim=3)
    check_tensor("ws_other", ws_other, ndim=3)
    if ws.shape != ws_other.shape:
        raise ValueError(
            f"ws_other must have ws's shape {tuple(ws.shape)}, got {tuple(ws_other.shape)}"
        )
    cutoff = check_int("cutoff", cutoff, min_value=0)
    if cutoff > ws.shape[1]:
        raise ValueError(f"cutoff must be in [0, {ws.shape[1]}], got {cutoff}")
    return torch.cat([ws[:, :cutoff], ws_other[:, cutoff:]], dim=1)


def mapping_with_mixing(
    mapping: MappingNetwork,
    z: torch.Tensor,
    c: torch.Tensor | None,
    mixing_prob: float,
    generator: torch.Generator | None = None,
    num_active_ws: int | None = None,
) -> torch.Tensor:
    """``mapping(z, c)`` with style mixing regularization, as StyleGAN2-ADA's training loss.

    With probability ``mixing_prob`` (one draw per batch), the ws from a uniformly drawn
    cutoff in ``[1, num_active_ws)`` on are replaced by those of fresh latents (mapped without
    updating ``w_avg``). Random numbers come from ``generator`` if given (on its device),
    else from the global RNG of z's device; they are drawn whenever ``mixing_prob > 0``,
    mixed or not, so the RNG stream does not depend on the outcome.

    ``num_active_ws`` is the number of leading ws the synthesis network uses (default all):
    a progressively grown StyleGAN at a low level uses fewer, and StyleGAN v1 draws the
    cutoff among those (``cur_layers`` in the official ``G_style``).
    """
    mixing_prob = check_number("mixing_prob", mixing_prob, min_value=0.0)
    if mixing_prob > 1:
        raise ValueError(f"mixing_prob must be in [0, 1], got {mixing_prob}")
    ws = mapping(z, c)
    num_ws = ws.shape[1] if ws.ndim == 3 else 1
    if num_active_ws is not None:
        num_active_ws = check_int("num_active_ws", num_active_ws, min_value=1)
        if num_active_ws > num_ws:
            raise ValueError(f"num_active_ws must be in [1, {num_ws}], got {num_active_ws}")
        num_ws = num_active_ws
    if mixing_prob == 0 or num_ws < 2:
        return ws
    device = generator.device if generator is not None else z.device
    cutoff = int(torch.randint(1, num_ws, [], generator=generator, device=device))
    mix = float(torch.rand([], generator=generator, device=device)) < mixing_prob
    z_other = torch.randn(z.shape, generator=generator, device=device, dtype=z.dtype).to(z.device)
    ws_other = mapping(z_other, c, skip_w_avg_update=True)
    return mix_styles(ws, ws_other, cutoff if mix else num_ws)


# ---------------------------------------------------------------------------------------------
# Discriminator


class DiscriminatorBlock(_Block):
    """One resolution of the discriminator: (FromRGB) + conv + 2x down conv (+ residual).

    Args:
        in_channels: input channels, 0 for the first block (which starts from the image).
        tmp_channels: channels of the intermediate features.
        out_channels: output channels.
        resolution: resolution of this block's input.
        img_channels: image channels.
        first_layer_idx: index of this block's first layer (for ``freeze_layers``).
        architecture: ``"orig"``, ``"skip"`` or ``"resnet"``.
        activation: activation of the convolutions (default lrelu).
        resample_filter: FIR taps for downsampling.
        conv_clamp: clamp of the convolution outputs.
        use_fp16: run in half precision.
        fp16_channels_last: use channels_last memory format in half precision.
        freeze_layers: number of leading layers of the discriminator whose weights are frozen.
        half_dtype: ``"float16"`` or ``"bfloat16"``.
        impl: backend of the ops.
    """

    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        resolution: int,
        img_channels: int,
        first_layer_idx: int,
        architecture: str = "resnet",
        activation: str = "lrelu",
        resample_filter=(1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        fp16_channels_last: bool = False,
        freeze_layers: int = 0,
        half_dtype="float16",
        impl: str = "auto",
    ):
        super().__init__()
        if in_channels not in (0, tmp_channels):
            raise ValueError(
                f"in_channels must be 0 or tmp_channels={tmp_channels}, got {in_channels}"
            )
        self.in_channels = in_channels
        self.first_layer_idx = first_layer_idx
        self._init_block(
            resolution, img_channels, architecture, resample_filter, use_fp16,
            fp16_channels_last, half_dtype, impl,
        )  # fmt: skip
        self.num_layers = 0

        def trainable() -> bool:
            layer_idx = self.first_layer_idx + self.num_layers
            self.num_layers += 1
            return layer_idx >= freeze_layers

        common = dict(
            activation=activation,
            conv_clamp=conv_clamp,
            channels_last=self.channels_last,
            impl=impl,
        )
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(
                img_channels, tmp_channels, kernel_size=1, trainable=trainable(), **common
            )
        self.conv0 = Conv2dLayer(
            tmp_channels, tmp_channels, kernel_size=3, trainable=trainable(), **common
        )
        self.conv1 = Conv2dLayer(
            tmp_channels,
            out_channels,
            kernel_size=3,
            down=2,
            resample_filter=resample_filter,
            trainable=trainable(),
            **common,
        )
        if architecture == "resnet":
            self.skip = Conv2dLayer(
                tmp_channels,
                out_channels,
                kernel_size=1,
                bias=False,
                down=2,
                resample_filter=resample_filter,
                trainable=trainable(),
                channels_last=self.channels_last,
                impl=impl,
            )

    def forward(
        self, x: torch.Tensor | None, img: torch.Tensor | None, force_fp32: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        device = (x if x is not None else img).device
        full_dtype = self.conv0.weight.dtype
        dtype, memory_format = self._compute_format(force_fp32, device, full_dtype)

        if x is not None:
            x = x.to(dtype=dtype, memory_format=memory_format)
        if self.in_channels == 0 or self.architecture == "skip":
            img = img.to(dtype=dtype, memory_format=memory_format)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = (
                downsample2d(img, self.resample_filter, impl=self.impl)
                if self.architecture == "skip"
                else None
            )

        if self.architecture == "resnet":
            y = self.skip(x, gain=SQRT_HALF)
            x = self.conv0(x)
            x = self.conv1(x, gain=SQRT_HALF)
            x = y + x
        else:
            x = self.conv0(x)
            x = self.conv1(x)
        return x, img


class DiscriminatorEpilogue(nn.Module):
    """The 4x4 end of the discriminator: minibatch std, conv, fc, output (+ label projection).

    Args:
        in_channels: input channels.
        cmap_dim: dimensionality of the mapped label (0: unconditional, one logit).
        resolution: input resolution (4).
        img_channels: image channels.
        architecture: ``"orig"``, ``"skip"`` or ``"resnet"``.
        mbstd_group_size: minibatch-std group size (None: whole batch).
        mbstd_num_channels: minibatch-std feature maps (0: no minibatch std).
        activation: activation (default lrelu).
        conv_clamp: clamp of the convolution output.
        impl: backend of the ops.
    """

    def __init__(
        self,
        in_channels: int,
        cmap_dim: int,
        resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        mbstd_group_size: int | None = 4,
        mbstd_num_channels: int = 1,
        activation: str = "lrelu",
        conv_clamp: float | None = None,
        impl: str = "auto",
    ):
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = check_choice("architecture", architecture, ARCHITECTURES)
        mbstd_num_channels = check_int("mbstd_num_channels", mbstd_num_channels, min_value=0)
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(
                img_channels, in_channels, kernel_size=1, activation=activation, impl=impl
            )
        self.mbstd = (
            MinibatchStdLayer(group_size=mbstd_group_size, num_channels=mbstd_num_channels)
            if mbstd_num_channels > 0
            else None
        )
        self.conv = Conv2dLayer(
            in_channels + mbstd_num_channels,
            in_channels,
            kernel_size=3,
            activation=activation,
            conv_clamp=conv_clamp,
            impl=impl,
        )
        self.fc = FullyConnectedLayer(
            in_channels * resolution**2, in_channels, activation=activation, impl=impl
        )
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim, impl=impl)

    def forward(
        self,
        x: torch.Tensor,
        img: torch.Tensor | None,
        cmap: torch.Tensor | None,
        force_fp32: bool = False,
    ) -> torch.Tensor:
        dtype = self.conv.weight.dtype  # full precision (float32)
        x = x.to(dtype=dtype, memory_format=torch.contiguous_format)
        if self.architecture == "skip":
            img = img.to(dtype=dtype, memory_format=torch.contiguous_format)
            x = x + self.fromrgb(img)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            # Projection discriminator: the logit is the scaled dot product with the label map.
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x

    def extra_repr(self) -> str:
        return (
            f"resolution={self.resolution}, architecture={self.architecture}, "
            f"cmap_dim={self.cmap_dim}"
        )


class Discriminator(_NetworkSettings, nn.Module):
    """StyleGAN2 discriminator: images (and labels) -> logits ``[N, 1]``.

    Args:
        c_dim: label dimensionality (0: unconditional).
        img_resolution: input resolution (a power of two >= 4).
        img_channels: image channels.
        architecture: ``"resnet"`` (default), ``"skip"`` or ``"orig"``.
        channel_base: feature maps at resolution r: ``min(channel_base // r, channel_max)``.
        channel_max: most feature maps in any layer.
        num_fp16_res: number of highest resolutions run in half precision.
        conv_clamp: clamp of the convolution outputs (None: none).
        cmap_dim: dimensionality of the mapped label (default: the 4x4 channel count).
        block_kwargs: arguments of :class:`DiscriminatorBlock` (activation, freeze_layers,
            fp16_channels_last, half_dtype, resample_filter).
        mapping_kwargs: arguments of the label's :class:`gankern.nn.MappingNetwork`.
        epilogue_kwargs: arguments of :class:`DiscriminatorEpilogue` (mbstd_group_size,
            mbstd_num_channels).
        impl: backend of every op.
    """

    def __init__(
        self,
        c_dim: int,
        img_resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        conv_clamp: float | None = None,
        cmap_dim: int | None = None,
        block_kwargs: dict | None = None,
        mapping_kwargs: dict | None = None,
        epilogue_kwargs: dict | None = None,
        impl: str = "auto",
    ):
        super().__init__()
        self.c_dim = check_int("c_dim", c_dim, min_value=0)
        self.img_resolution = check_resolution("img_resolution", img_resolution)
        if img_resolution < 8:
            raise ValueError(
                f"img_resolution must be >= 8 for the discriminator, got {img_resolution}"
            )
        self.img_channels = check_int("img_channels", img_channels, min_value=1)
        check_int("channel_base", channel_base, min_value=1)
        check_int("channel_max", channel_max, min_value=1)
        num_fp16_res = check_int("num_fp16_res", num_fp16_res, min_value=0)
        self.img_resolution_log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(self.img_resolution_log2, 2, -1)]
        channels = channels_per_resolution(self.block_resolutions + [4], channel_base, channel_max)
        if min(channels.values()) < 1:
            raise ValueError(
                f"channel_base={channel_base} leaves no feature maps at {img_resolution}x"
                f"{img_resolution} (needs channel_base >= img_resolution)"
            )
        fp16_resolution = fp16_min_resolution(img_resolution, num_fp16_res)
        if cmap_dim is None:
            cmap_dim = channels[4]
        if c_dim == 0:
            cmap_dim = 0
        self.cmap_dim = cmap_dim

        common = dict(
            img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp, impl=impl
        )
        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(
                channels[res] if res < img_resolution else 0,
                channels[res],
                channels[res // 2],
                resolution=res,
                first_layer_idx=layer_idx,
                use_fp16=(num_fp16_res > 0 and res >= fp16_resolution),
                **(block_kwargs or {}),
                **common,
            )
            setattr(self, f"b{res}", block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(
                z_dim=0,
                c_dim=c_dim,
                w_dim=cmap_dim,
                num_ws=None,
                w_avg_beta=None,
                impl=impl,
                **(mapping_kwargs or {}),
            )
        self.b4 = DiscriminatorEpilogue(
            channels[4], cmap_dim=cmap_dim, resolution=4, **(epilogue_kwargs or {}), **common
        )
        set_impl(self, impl)

    def forward(
        self, img: torch.Tensor, c: torch.Tensor | None = None, **block_kwargs
    ) -> torch.Tensor:
        """Logits ``[N, 1]`` for images ``[N, img_channels, R, R]`` and labels ``c`` ``[N, c_dim]``.

        ``block_kwargs``: ``force_fp32``.
        """
        check_tensor("img", img, ndim=4)
        res = self.img_resolution
        if tuple(img.shape[1:]) != (self.img_channels, res, res):
            raise ValueError(
                f"img must have shape [N, {self.img_channels}, {res}, {res}], "
                f"got {tuple(img.shape)}"
            )
        c = check_label(c, img.shape[0], self.c_dim)
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, **block_kwargs)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)

    def extra_repr(self) -> str:
        return (
            f"c_dim={self.c_dim}, img_resolution={self.img_resolution}, "
            f"img_channels={self.img_channels}"
        )
