"""Projection (GAN inversion): the latent whose image reproduces a target, StyleGAN2-ADA's way.

The recipe of StyleGAN2-ADA's ``projector.py`` (Karras et al. 2020, appendix of "Analyzing
and Improving the Image Quality of StyleGAN"), for any generator with its API:

* start from the mean w of ``w_avg_samples`` random latents; ``w_std`` is their root mean
  squared distance to it;
* Adam (betas 0.9, 0.999) on w with the learning rate ramped up over the first 5% of the
  steps (linear) and down over the last 25% (cosine), peak ``initial_learning_rate``;
* gaussian noise added to w at every step, ``w_std * 0.05 * max(0, 1 - t / 0.75)^2`` (a
  search that starts wide and settles);
* the loss is a perceptual distance between the rendered and the target image
  (:mod:`gankern.editing.distances`: LPIPS, VGG16, the digits classifier's features, or MSE);
* optionally (``optimize_noise``) the noise maps are optimized too, from fresh gaussian
  noise, with the noise regularization: the squared autocorrelation at a one-pixel shift
  in x and y, at every scale of a 2x pyramid down to 8 px, weighted 1e5; after each step
  every map is renormalized to zero mean and unit variance;
* one w for every layer, or (``w_plus``) one per layer (W+, more faithful, less editable).
"""

from __future__ import annotations

import copy
import io
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gankern.editing.components import check_count
from gankern.editing.distances import resolve_distance
from gankern.editing.layers import check_style_based, generator_device, sample_ws

__all__ = [
    "Projection",
    "load_projection",
    "noise_buffers",
    "project",
    "save_projection",
    "with_noise",
]


@dataclass
class Projection:
    """The result of :func:`project` (tensors on the CPU).

    Attributes:
        ws: ``[1, num_ws, w_dim]``, the projected latent.
        noise: the optimized noise maps (buffer name in ``G.synthesis`` -> ``[H, W]``);
            empty when the stored maps were kept.
        image: ``[1, C, H, W]``, what ``ws`` (and ``noise``) render, in [-1, 1].
        frames: ``[F, num_ws, w_dim]``, ws every ``record_every`` steps and at the end.
        frame_steps: the step of each frame.
        distances: the distance to the target at every step.
        distance_name: which distance was minimized.
        w_plus: whether ws has one w per layer.
    """

    ws: torch.Tensor
    noise: dict
    image: torch.Tensor
    frames: torch.Tensor
    frame_steps: list
    distances: list
    distance_name: str
    w_plus: bool
    info: dict = field(default_factory=dict)


def noise_buffers(G) -> dict[str, torch.Tensor]:
    """The stored noise maps of ``G.synthesis`` (buffers named ``noise_const``)."""
    return {name: buf for name, buf in G.synthesis.named_buffers()
            if name.rsplit(".", 1)[-1] == "noise_const"}


def with_noise(G, noise: dict):
    """A copy of ``G`` whose stored noise maps are replaced by ``noise`` (name -> map)."""
    G = copy.deepcopy(G)
    bufs = noise_buffers(G)
    unknown = sorted(set(noise) - set(bufs))
    if unknown:
        raise ValueError(f"noise has maps this generator does not have: {unknown[:3]}")
    for name, value in noise.items():
        if tuple(value.shape) != tuple(bufs[name].shape):
            raise ValueError(f"noise map {name!r} must have shape {tuple(bufs[name].shape)}, "
                             f"got {tuple(value.shape)}")
        bufs[name].copy_(value)
    return G


def _target(G, target) -> torch.Tensor:
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a tensor, got {type(target).__name__}")
    if target.ndim == 4 and target.shape[0] == 1:
        target = target[0]
    want = (G.img_channels, G.img_resolution, G.img_resolution)
    if tuple(target.shape) != want:
        raise ValueError(f"target must have shape {list(want)} (the generator's images), got "
                         f"{list(target.shape)}")
    if target.dtype == torch.uint8:
        return target.float() / 127.5 - 1
    target = target.float()
    # The generator's own images overshoot [-1, 1] a little; 0..255 floats are a mistake.
    if not bool(torch.isfinite(target).all()) or float(target.abs().max()) > 8:
        raise ValueError("a float target must be finite and in about [-1, 1], got values up "
                         f"to {float(target.abs().max()):.3g} (pass uint8 pixels for 0..255)")
    return target


def _noise_regularization(bufs) -> torch.Tensor:
    total = 0.0
    for v in bufs:
        noise = v[None, None]
        while True:
            total = total + (noise * torch.roll(noise, shifts=1, dims=3)).mean() ** 2
            total = total + (noise * torch.roll(noise, shifts=1, dims=2)).mean() ** 2
            if noise.shape[2] <= 8:
                break
            noise = F.avg_pool2d(noise, kernel_size=2)
    return total


def _learning_rate(t: float, peak: float, rampdown: float, rampup: float) -> float:
    ramp = min(1.0, (1.0 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return peak * ramp * min(1.0, t / rampup)


def project(
    G,
    target: torch.Tensor,
    *,
    num_steps: int = 1000,
    w_plus: bool = False,
    optimize_noise: bool = False,
    distance="auto",
    w_avg_samples: int = 10_000,
    initial_learning_rate: float = 0.1,
    initial_noise_factor: float = 0.05,
    lr_rampdown_length: float = 0.25,
    lr_rampup_length: float = 0.05,
    noise_ramp_length: float = 0.75,
    regularize_noise_weight: float = 1e5,
    class_idx: int | None = None,
    seed: int = 0,
    record_every: int = 10,
    progress: bool = False,
) -> Projection:
    """Find the latent of ``G`` whose image is closest to ``target``.

    Args:
        G: a style-based generator (StyleGAN2-ADA's API); it is copied, not changed.
        target: the image, ``[C, H, W]`` (or ``[1, C, H, W]``) of the generator's size:
            uint8 pixels, or floats in about [-1, 1] (as ``G.synthesis`` draws them).
        num_steps: optimization steps (StyleGAN2-ADA: 1000).
        w_plus: optimize one w per layer (W+) instead of one w for all.
        optimize_noise: optimize the noise maps too (with the noise regularization);
            otherwise the generator's stored maps are used as they are.
        distance: ``"auto"``, ``"lpips"``, ``"vgg16"``, ``"digits"``, ``"mse"`` or a
            callable ``f(a, b) -> [N]`` (see :mod:`gankern.editing.distances`).
        w_avg_samples: random latents for the starting point and ``w_std``.
        initial_learning_rate: peak learning rate.
        initial_noise_factor: noise added to w, in units of ``w_std``, at the start.
        lr_rampdown_length: fraction of the steps over which the rate ramps down.
        lr_rampup_length: fraction of the steps over which it ramps up.
        noise_ramp_length: fraction of the steps after which no noise is added to w.
        regularize_noise_weight: weight of the noise maps' regularization.
        class_idx: class of a conditional model (None: random classes for the start).
        seed: seed of the starting samples, of the noise maps and of the noise on w.
        record_every: keep ws every this many steps (for a progress video).
        progress: show a progress bar (tqdm, on stderr).

    Returns:
        :class:`Projection`; ``info["note"]`` says when ``"auto"`` fell back to a plain
        distance.
    """
    from tqdm import tqdm

    check_style_based(G)
    num_steps = check_count("num_steps", num_steps, 1)
    w_avg_samples = check_count("w_avg_samples", w_avg_samples, 2)
    record_every = check_count("record_every", record_every, 1)
    target = _target(G, target)
    device = generator_device(G)
    G = copy.deepcopy(G).eval().requires_grad_(False)
    dist_fn, dist_name, note = resolve_distance(distance, device)
    target = target[None].to(device)

    w_samples = sample_ws(G, w_avg_samples, seed=seed, class_idx=class_idx)[:, :1]
    w_avg = w_samples.mean(dim=0, keepdim=True)  # [1, 1, w_dim]
    w_std = float(((w_samples - w_avg).square().sum() / w_avg_samples).sqrt())

    gen = torch.Generator().manual_seed(seed)
    bufs = noise_buffers(G) if optimize_noise else {}
    for buf in bufs.values():
        buf.copy_(torch.randn(buf.shape, generator=gen))
        buf.requires_grad_(True)
    start = w_avg.repeat(1, G.num_ws if w_plus else 1, 1)
    w_opt = start.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([w_opt, *bufs.values()], betas=(0.9, 0.999),
                                 lr=initial_learning_rate)

    frames, frame_steps, distances = [], [], []
    bar = tqdm(range(num_steps), desc="projecting", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    for step in bar:
        t = step / num_steps
        w_noise_scale = w_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp_length) ** 2
        lr = _learning_rate(t, initial_learning_rate, lr_rampdown_length, lr_rampup_length)
        for group in optimizer.param_groups:
            group["lr"] = lr
        w_noise = torch.randn(w_opt.shape, generator=gen).to(device) * w_noise_scale
        ws = (w_opt + w_noise).expand(-1, G.num_ws, -1)
        synth = G.synthesis(ws, noise_mode="const")
        dist = dist_fn(synth, target).sum()
        loss = dist
        if bufs:
            loss = loss + _noise_regularization(bufs.values()) * regularize_noise_weight
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        distances.append(dist.item())
        bar.set_postfix(dist=f"{distances[-1]:.4f}", refresh=False)
        with torch.no_grad():
            for buf in bufs.values():
                buf -= buf.mean()
                buf *= buf.square().mean().rsqrt()
        if step % record_every == 0 or step == num_steps - 1:
            frames.append(w_opt.detach().expand(-1, G.num_ws, -1)[0].cpu().clone())
            frame_steps.append(step + 1)
    bar.close()

    with torch.no_grad():
        ws = w_opt.detach().expand(-1, G.num_ws, -1).clone()
        image = G.synthesis(ws, noise_mode="const").cpu()
    noise = {name: buf.detach().cpu().clone() for name, buf in bufs.items()}
    info = {"note": note, "w_std": w_std, "num_steps": num_steps, "seed": seed,
            "optimize_noise": bool(optimize_noise)}
    return Projection(ws=ws.cpu(), noise=noise, image=image, frames=torch.stack(frames),
                      frame_steps=frame_steps, distances=distances, distance_name=dist_name,
                      w_plus=bool(w_plus), info=info)


def save_projection(projection: Projection, path: str | os.PathLike) -> Path:
    """Write the projected latent to ``.npz`` (no pickles): ``w`` ``[1, num_ws, w_dim]`` (as
    StyleGAN2-ADA's ``projected_w.npz``) and, when optimized, ``noise/<buffer name>``."""
    from gankern.train.checkpoint import atomic_write_bytes

    arrays = {"w": projection.ws.numpy().astype(np.float32)}
    arrays.update({f"noise/{k}": v.numpy().astype(np.float32)
                   for k, v in projection.noise.items()})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_projection(path: str | os.PathLike) -> tuple[torch.Tensor, dict]:
    """``(ws [1, num_ws, w_dim], noise maps)`` from a file of :func:`save_projection` (or
    StyleGAN2-ADA's ``projected_w.npz``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"latent file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a latent file (.npz): {exc}") from None
    w = arrays.get("w")
    if w is None or w.ndim != 3:
        raise ValueError(f"{path} holds no 'w' of shape [N, num_ws, w_dim]")
    noise = {k[len("noise/"):]: torch.from_numpy(v) for k, v in arrays.items()
             if k.startswith("noise/")}
    return torch.from_numpy(w).float(), noise
