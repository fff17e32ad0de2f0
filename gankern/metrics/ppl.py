"""Perceptual path length (Karras et al. 2019): how much images change along latent paths.

For each sample, two latents z0, z1 (and a label) are drawn and a point t on the path
between them (``sampling="end"``: t = 0; ``"full"``: t uniform in [0, 1)). The images at t
and t + epsilon are generated and

    d = distance(image(t), image(t + epsilon)) / epsilon^2

Paths interpolate linearly in W (``space="w"``: ``G.mapping`` then ``G.synthesis``) or
spherically in Z (``space="z"``: ``G(z, c)``). Images larger than 256 px are downsampled to
256 by box filtering first. The values outside the 1st..99th percentiles are dropped and the
rest averaged. Standard settings (StyleGAN2's ``ppl2_wend``): 50,000 samples,
epsilon 1e-4, space "w", sampling "end", the LPIPS VGG16 distance; StyleGAN2 also
synthesizes with constant noise so both images of a pair see the same noise, which is the
default here when the generator has a ``synthesis`` network.

Distances: ``"lpips"`` (standard; needs the VGG16 and LPIPS weight files, see
:mod:`gankern.metrics.vgg16`) labelled ``ppl``; ``"digits"`` (the built-in digits
extractor's feature maps, compared like LPIPS with unit channel weights; works offline)
labelled ``ppl_digits`` (a :class:`DigitsFeatureNet` instance works too); or any callable
``f(a, b) -> [N]`` on images in [-1, 1], labelled ``ppl_custom``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gankern.metrics._validate import check_positive_int
from gankern.nn.modes import eval_mode

PPL_EPSILON = 1e-4
PPL_NUM_SAMPLES = 50_000
_MAX_RESOLUTION = 256


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between the directions of ``a`` and ``b`` (unit-norm result)."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    cos = (a * b).sum(dim=-1, keepdim=True).clamp(-1, 1)
    angle = torch.acos(cos) * t.unsqueeze(-1)
    ortho = b - cos * a
    ortho = ortho / ortho.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return a * torch.cos(angle) + ortho * torch.sin(angle)


def filtered_mean(distances: np.ndarray) -> float:
    """Mean of the values between the 1st ("lower") and 99th ("higher") percentiles."""
    d = np.asarray(distances, dtype=np.float64)
    lo = np.percentile(d, 1, method="lower")
    hi = np.percentile(d, 99, method="higher")
    return float(d[(d >= lo) & (d <= hi)].mean())


def _downsample(images: torch.Tensor) -> torch.Tensor:
    size = images.shape[-1]
    if size > _MAX_RESOLUTION and size % _MAX_RESOLUTION == 0:
        images = F.avg_pool2d(images, size // _MAX_RESOLUTION)
    elif size > _MAX_RESOLUTION:
        images = F.interpolate(images, size=(_MAX_RESOLUTION, _MAX_RESOLUTION), mode="area")
    return images


def _resolve_distance(distance, device, lpips_weights, vgg_weights):
    from gankern.metrics.digits_extractor import DigitsFeatureNet

    if isinstance(distance, DigitsFeatureNet):
        return distance.to(device).perceptual_distance, "ppl_digits"
    if callable(distance) and not isinstance(distance, str):
        return distance, "ppl_custom"
    if distance == "lpips":
        from gankern.metrics.vgg16 import load_lpips

        return load_lpips(vgg_weights, lpips_weights, device), "ppl"
    if distance == "digits":
        from gankern.metrics.digits_extractor import load_digits_extractor

        return load_digits_extractor(device=device).perceptual_distance, "ppl_digits"
    raise ValueError(f"distance must be 'lpips', 'digits' or a callable, got {distance!r}")


def perceptual_path_length(
    generator: nn.Module,
    *,
    num_samples: int = PPL_NUM_SAMPLES,
    epsilon: float = PPL_EPSILON,
    space: str = "w",
    sampling: str = "end",
    distance="lpips",
    batch_size: int = 32,
    seed: int = 0,
    device: str | torch.device | None = None,
    generator_kwargs: dict | None = None,
    lpips_weights=None,
    vgg_weights=None,
) -> tuple[str, float]:
    """Perceptual path length of a StyleGAN-style generator.

    Args:
        generator: a module with ``z_dim`` (and ``c_dim``); ``space="w"`` also needs
            ``G.mapping(z, c) -> ws`` and ``G.synthesis(ws, **kwargs) -> images``.
        num_samples: number of paths sampled.
        epsilon: step along the path.
        space: ``"w"`` (linear interpolation of ws) or ``"z"`` (spherical, of z).
        sampling: ``"end"`` (t = 0) or ``"full"`` (t uniform in [0, 1)).
        distance: ``"lpips"``, ``"digits"`` or a callable (see the module docstring).
        batch_size: paths per batch (each needs two images).
        seed: seed of the latents, labels and t.
        device: where the generator and the distance run (default: the generator's).
        generator_kwargs: keyword arguments of the synthesis (or forward) call; default
            ``{"noise_mode": "const"}`` for generators with a ``synthesis`` network.
        lpips_weights, vgg_weights: weight files of the LPIPS distance.

    Returns:
        ``(label, value)``: ``("ppl", ...)`` for LPIPS, ``("ppl_digits", ...)``, or
        ``("ppl_custom", ...)``.
    """
    num_samples = check_positive_int("num_samples", num_samples, minimum=2)
    batch_size = check_positive_int("batch_size", batch_size)
    if space not in ("w", "z"):
        raise ValueError(f"space must be 'w' or 'z', got {space!r}")
    if sampling not in ("end", "full"):
        raise ValueError(f"sampling must be 'end' or 'full', got {sampling!r}")
    if not (isinstance(epsilon, (int, float)) and epsilon > 0):
        raise ValueError(f"epsilon must be a positive number, got {epsilon!r}")
    z_dim = getattr(generator, "z_dim", None)
    if not isinstance(z_dim, int) or z_dim < 1:
        raise TypeError(f"generator must have an integer z_dim, got {z_dim!r}")
    c_dim = int(getattr(generator, "c_dim", 0) or 0)
    has_synthesis = hasattr(generator, "mapping") and hasattr(generator, "synthesis")
    if space == "w" and not has_synthesis:
        raise ValueError("space='w' needs a generator with mapping and synthesis networks; "
                         "use space='z'")
    if generator_kwargs is None:
        generator_kwargs = {"noise_mode": "const"} if has_synthesis else {}
    param = next(iter(generator.parameters()), None)
    g_device = param.device if param is not None else torch.device("cpu")
    device = torch.device(device) if device is not None else g_device
    dist_fn, label = _resolve_distance(distance, device, lpips_weights, vgg_weights)

    gen = torch.Generator().manual_seed(seed)
    values = []
    with torch.no_grad(), eval_mode(generator):
        for start in range(0, num_samples, batch_size):
            n = min(batch_size, num_samples - start)
            t = torch.rand(n, generator=gen) if sampling == "full" else torch.zeros(n)
            z0 = torch.randn(n, z_dim, generator=gen)
            z1 = torch.randn(n, z_dim, generator=gen)
            c = torch.zeros(n, c_dim)
            if c_dim > 0:
                c[torch.arange(n), torch.randint(0, c_dim, (n,), generator=gen)] = 1
            c2 = torch.cat([c, c]).to(g_device)
            if space == "w":
                w0 = generator.mapping(z0.to(g_device), c.to(g_device))
                w1 = generator.mapping(z1.to(g_device), c.to(g_device))
                tt = t.to(g_device).view(-1, *([1] * (w0.ndim - 1)))
                wa, wb = torch.lerp(w0, w1, tt), torch.lerp(w0, w1, tt + epsilon)
                images = generator.synthesis(torch.cat([wa, wb]), **generator_kwargs)
            else:
                za, zb = slerp(z0, z1, t), slerp(z0, z1, t + epsilon)
                images = generator(torch.cat([za, zb]).to(g_device), c2, **generator_kwargs)
            images = _downsample(images.float().to(device))
            d = dist_fn(images[:n], images[n:]) / epsilon**2
            values.append(d.double().cpu())
    return label, filtered_mean(torch.cat(values).numpy())
