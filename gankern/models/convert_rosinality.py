"""Convert rosinality/stylegan2-pytorch checkpoints (``.pt``) into gankern models.

Those checkpoints are ``torch.save`` dicts with state dicts under ``"g_ema"`` (and ``"g"``,
``"d"`` in training checkpoints) and the truncation centre under ``"latent_avg"``; they are
loaded with ``torch.load(weights_only=True)``. Their layout differs from StyleGAN2-ADA's:

=========================================== =============================================
rosinality                                  gankern (StyleGAN2-ADA names)
=========================================== =============================================
``style.{i+1}.weight/bias`` (EqualLinear,   ``mapping.fc{i}.weight/bias`` (same lr
lr_mul=lr_mlp; index 0 is PixelNorm)        multiplier convention)
``latent_avg``                              ``mapping.w_avg``
``input.input`` ``[1, C, 4, 4]``            ``synthesis.b4.const`` ``[C, 4, 4]``
``conv1.*``, ``to_rgb1.*``                  ``synthesis.b4.conv1.*``, ``b4.torgb.*``
``convs.{2k}.*`` / ``convs.{2k+1}.*``       ``synthesis.b{8*2^k}.conv0.*`` / ``conv1.*``
``to_rgbs.{k}.*``                           ``synthesis.b{8*2^k}.torgb.*``
``*.conv.weight`` ``[1, O, I, k, k]``       ``*.weight`` ``[O, I, k, k]``
``*.conv.modulation.weight/bias``           ``*.affine.weight/bias``
``*.noise.weight`` ``[1]``                  ``*.noise_strength`` ``[]``
``*.activate.bias`` (FusedLeakyReLU)        ``*.bias``
``to_rgb*.bias`` ``[1, 3, 1, 1]``           ``torgb.bias`` ``[3]``
``noises.noise_{j}`` ``[1, 1, r, r]``       ``noise_const`` ``[r, r]`` of the j-th layer
``convs.0.0.weight``, ``convs.0.1.bias``    ``b{size}.fromrgb.weight/bias``
``convs.{k}.conv1.0.weight``, ``.1.bias``   ``b{size/2^(k-1)}.conv0.weight/bias``
``convs.{k}.conv2.1.weight``, ``.2.bias``   ``b{...}.conv1.weight/bias`` (2x down)
``convs.{k}.skip.1.weight``                 ``b{...}.skip.weight``
``final_conv.0.weight``, ``.1.bias``        ``b4.conv.weight/bias``
``final_linear.0/1.weight/bias``            ``b4.fc`` / ``b4.out``
=========================================== =============================================

The conventions agree otherwise: rosinality's upsampling modulated convolution is a
transposed convolution with the stored kernel followed by a ``[1,3,3,1]`` blur with gain 4,
which is StyleGAN2-ADA's ``flip_weight=False`` path; both store the kernel flipped relative
to the TensorFlow original. Its separate weight scale ``1/sqrt(fan_in)`` cancels in the
demodulation (ToRGB applies it to the styles, as gankern does). rosinality's networks have no
clamping, no mixed precision and RGB output, and put 512 feature maps up to 32 px, then
``channel_multiplier * 2^14 / res``: ``channel_base = 16384 * channel_multiplier``.
"""

from __future__ import annotations

import argparse
import os
import pickle
import struct

import torch
from torch import nn

from gankern.models.convert_ada import load_state_by_name
from gankern.models.stylegan2 import Discriminator, Generator
from gankern.pretrained import describe_torch_load_error


def _get(state: dict, name: str, source: str) -> torch.Tensor:
    try:
        return state[name]
    except KeyError:
        raise ValueError(
            f"{source} has no {name!r}: not a rosinality stylegan2 state dict"
        ) from None


def channel_layout(channels: dict[int, int], source: str) -> tuple[int, int]:
    """``(channel_base, channel_max)`` with ``min(base // r, max) == channels[r]`` for all r."""
    channel_max = max(channels.values())
    candidates = sorted({c * r for r, c in channels.items() if c < channel_max})
    channel_base = candidates[0] if candidates else channel_max * max(channels)
    if any(min(channel_base // r, channel_max) != c for r, c in channels.items()):
        raise ValueError(
            f"{source}: its feature-map counts {channels} are not of the form "
            "min(channel_base // res, channel_max)"
        )
    return channel_base, channel_max


def _resample_taps(kernel: torch.Tensor | None) -> list:
    """The FIR taps of a stored rosinality blur kernel (2-D, any gain), normalized."""
    if kernel is None:
        return [1, 3, 3, 1]
    return (kernel / kernel.sum()).tolist()


def _modconv(state: dict, src: str, dst: str, noise: torch.Tensor | None, out: dict) -> None:
    out[f"{dst}.weight"] = state[f"{src}.conv.weight"][0]
    out[f"{dst}.affine.weight"] = state[f"{src}.conv.modulation.weight"]
    out[f"{dst}.affine.bias"] = state[f"{src}.conv.modulation.bias"]
    if noise is not None:
        out[f"{dst}.noise_strength"] = state[f"{src}.noise.weight"].reshape([])
        out[f"{dst}.noise_const"] = noise.reshape(noise.shape[-2:])
    out[f"{dst}.bias"] = state[f"{src}.activate.bias"]


def _torgb(state: dict, src: str, dst: str, out: dict) -> None:
    out[f"{dst}.weight"] = state[f"{src}.conv.weight"][0]
    out[f"{dst}.affine.weight"] = state[f"{src}.conv.modulation.weight"]
    out[f"{dst}.affine.bias"] = state[f"{src}.conv.modulation.bias"]
    out[f"{dst}.bias"] = state[f"{src}.bias"].reshape(-1)


def convert_rosinality_generator(
    state: dict[str, torch.Tensor],
    latent_avg: torch.Tensor | None = None,
    lr_mlp: float = 0.01,
    w_avg_samples: int = 4096,
    impl: str = "auto",
) -> Generator:
    """A gankern Generator equal to a rosinality ``Generator`` state dict.

    Args:
        state: the ``"g_ema"`` (or ``"g"``) state dict.
        latent_avg: the checkpoint's ``"latent_avg"`` (``[w_dim]`` or ``[1, w_dim]``), the
            centre of truncation; if None, ``mapping.w_avg`` is estimated as the mean of the
            mapped ``w_avg_samples`` latents (seed 0), as rosinality's ``mean_latent`` does.
        lr_mlp: the mapping network's learning-rate multiplier the model was trained with
            (rosinality's ``--lr_mlp``, default 0.01; it is not saved in the checkpoint).
        w_avg_samples: number of latents for the estimate of ``w_avg``.
        impl: backend of the returned network's ops.
    """
    src = "rosinality generator state"
    n_mlp = sum(1 for k in state if k.startswith("style.") and k.endswith(".weight"))
    if n_mlp == 0:
        raise ValueError(f"{src} has no mapping layers (style.*.weight)")
    w_dim = _get(state, "style.1.weight", src).shape[0]
    num_up = sum(1 for k in state if k.startswith("to_rgbs.") and k.endswith(".conv.weight"))
    size = 2 ** (num_up + 2)
    channels = {4: _get(state, "input.input", src).shape[1]}
    for k in range(num_up):
        channels[8 * 2**k] = _get(state, f"convs.{2 * k}.conv.weight", src).shape[1]
    channel_base, channel_max = channel_layout(channels, src)
    img_channels = _get(state, "to_rgb1.conv.weight", src).shape[1]
    taps = _resample_taps(state.get("convs.0.conv.blur.kernel"))

    G = Generator(
        z_dim=w_dim, c_dim=0, w_dim=w_dim, img_resolution=size, img_channels=img_channels,
        mapping_kwargs=dict(num_layers=n_mlp, lr_multiplier=lr_mlp),
        synthesis_kwargs=dict(
            channel_base=channel_base, channel_max=channel_max, num_fp16_res=0,
            conv_clamp=None, architecture="skip", resample_filter=taps,
        ),
        impl=impl,
    )  # fmt: skip

    out: dict[str, torch.Tensor] = {}
    for i in range(n_mlp):
        out[f"mapping.fc{i}.weight"] = state[f"style.{i + 1}.weight"]
        out[f"mapping.fc{i}.bias"] = state[f"style.{i + 1}.bias"]
    out["mapping.w_avg"] = torch.zeros([w_dim])
    out["synthesis.b4.const"] = state["input.input"][0]
    _modconv(state, "conv1", "synthesis.b4.conv1", _get(state, "noises.noise_0", src), out)
    _torgb(state, "to_rgb1", "synthesis.b4.torgb", out)
    for k in range(num_up):
        block = f"synthesis.b{8 * 2**k}"
        noise0 = _get(state, f"noises.noise_{2 * k + 1}", src)
        noise1 = _get(state, f"noises.noise_{2 * k + 2}", src)
        _modconv(state, f"convs.{2 * k}", f"{block}.conv0", noise0, out)
        _modconv(state, f"convs.{2 * k + 1}", f"{block}.conv1", noise1, out)
        _torgb(state, f"to_rgbs.{k}", f"{block}.torgb", out)
    load_state_by_name(G, out, src)

    with torch.no_grad():
        if latent_avg is not None:
            G.mapping.w_avg.copy_(latent_avg.reshape(-1).to(torch.float32))
        else:
            z = torch.randn([w_avg_samples, w_dim], generator=torch.Generator().manual_seed(0))
            G.mapping.w_avg.copy_(G.mapping(z, None, skip_w_avg_update=True)[:, 0].mean(dim=0))
    return G.eval()


def convert_rosinality_discriminator(
    state: dict[str, torch.Tensor], impl: str = "auto"
) -> Discriminator:
    """A gankern Discriminator equal to a rosinality ``Discriminator`` state dict (``"d"``)."""
    src = "rosinality discriminator state"
    num_blocks = sum(1 for k in state if k.startswith("convs.") and k.endswith(".conv1.0.weight"))
    if num_blocks == 0:
        raise ValueError(f"{src} has no residual blocks (convs.*.conv1.0.weight)")
    size = 4 * 2**num_blocks
    fromrgb = _get(state, "convs.0.0.weight", src)
    img_channels = fromrgb.shape[1]
    channels = {size: fromrgb.shape[0]}
    for k in range(1, num_blocks + 1):
        channels[size // 2**k] = _get(state, f"convs.{k}.conv2.1.weight", src).shape[0]
    channel_base, channel_max = channel_layout(channels, src)
    taps = _resample_taps(state.get("convs.1.conv2.0.kernel"))

    D = Discriminator(
        c_dim=0, img_resolution=size, img_channels=img_channels, architecture="resnet",
        channel_base=channel_base, channel_max=channel_max, num_fp16_res=0, conv_clamp=None,
        block_kwargs=dict(resample_filter=taps),
        epilogue_kwargs=dict(mbstd_group_size=4, mbstd_num_channels=1), impl=impl,
    )  # fmt: skip

    out = {
        f"b{size}.fromrgb.weight": fromrgb,
        f"b{size}.fromrgb.bias": _get(state, "convs.0.1.bias", src),
    }
    for k in range(1, num_blocks + 1):
        block = f"b{size // 2 ** (k - 1)}"
        out[f"{block}.conv0.weight"] = state[f"convs.{k}.conv1.0.weight"]
        out[f"{block}.conv0.bias"] = state[f"convs.{k}.conv1.1.bias"]
        out[f"{block}.conv1.weight"] = state[f"convs.{k}.conv2.1.weight"]
        out[f"{block}.conv1.bias"] = state[f"convs.{k}.conv2.2.bias"]
        out[f"{block}.skip.weight"] = state[f"convs.{k}.skip.1.weight"]
    out["b4.conv.weight"] = _get(state, "final_conv.0.weight", src)
    out["b4.conv.bias"] = _get(state, "final_conv.1.bias", src)
    for i, name in enumerate(("fc", "out")):
        out[f"b4.{name}.weight"] = _get(state, f"final_linear.{i}.weight", src)
        out[f"b4.{name}.bias"] = _get(state, f"final_linear.{i}.bias", src)
    load_state_by_name(D, out, src)
    return D.eval()


def load_rosinality_checkpoint(
    path: str | os.PathLike, lr_mlp: float = 0.01, impl: str = "auto"
) -> dict[str, nn.Module]:
    """Load a rosinality/stylegan2-pytorch checkpoint with ``torch.load(weights_only=True)``.

    Args:
        path: the ``.pt`` file (``convert_weight.py`` output or a training checkpoint).
        lr_mlp: the mapping network's learning-rate multiplier used in training.
        impl: backend of the returned networks' ops.

    Returns:
        ``{"G_ema": ..., "G": ..., "D": ...}`` for the state dicts present (``g_ema``,
        ``g``, ``d``), in eval mode on the CPU.
    """
    # Training checkpoints also hold the argparse options: allow that one plain class.
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, KeyError, EOFError, struct.error,
            pickle.UnpicklingError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path} is not a readable rosinality checkpoint (a torch.save "
                         f"file): {describe_torch_load_error(exc)}") from exc
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path}: expected a dict checkpoint, got {type(ckpt).__name__}")
    latent_avg = ckpt.get("latent_avg")
    networks: dict[str, nn.Module] = {}
    for key, name in (("g_ema", "G_ema"), ("g", "G")):
        if key in ckpt:
            networks[name] = convert_rosinality_generator(
                ckpt[key], latent_avg=latent_avg, lr_mlp=lr_mlp, impl=impl
            )
    if "d" in ckpt:
        networks["D"] = convert_rosinality_discriminator(ckpt["d"], impl=impl)
    if not networks:
        keys = sorted(map(str, ckpt))
        raise ValueError(f"{path}: no g_ema, g or d state dict (keys: {keys})")
    return networks
