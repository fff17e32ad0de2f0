"""What the augmentation pipeline does, and drawing the per-sample transforms.

:class:`AugmentConfig` holds the strength of each transform (its probability is
``strength * p``) and the spread of its random parameter, with StyleGAN2-ADA's published
defaults; :data:`AUGMENT_PRESETS` names the usual combinations. :func:`sample_params` draws
an :class:`AugmentParams` (everything random about one batch) from a generator.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from gankern.ops._checks import check_number
from gankern.train.augment_geometry import (
    rotate2d,
    rotate3d,
    scale2d,
    scale3d,
    translate2d,
    translate3d,
)
from gankern.train.augment_pixels import BAND_EXPECTED_POWER

_F64 = torch.float64

# Transform strengths of each preset (everything else is 0). As in StyleGAN2-ADA:
# b = pixel blitting, g = general geometric, c = color, f = image-space filtering,
# n = additive noise, c (last) = cutout.
_BLIT = {"xflip": 1.0, "rotate90": 1.0, "xint": 1.0}
_GEOM = {"scale": 1.0, "rotate": 1.0, "aniso": 1.0, "xfrac": 1.0}
_COLOR = {"brightness": 1.0, "contrast": 1.0, "lumaflip": 1.0, "hue": 1.0, "saturation": 1.0}
AUGMENT_PRESETS: dict[str, dict[str, float]] = {
    "blit": dict(_BLIT),
    "geom": dict(_GEOM),
    "color": dict(_COLOR),
    "filter": {"imgfilter": 1.0},
    "noise": {"noise": 1.0},
    "cutout": {"cutout": 1.0},
    "bg": {**_BLIT, **_GEOM},
    "bgc": {**_BLIT, **_GEOM, **_COLOR},
    "bgcf": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1.0},
    "bgcfn": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1.0, "noise": 1.0},
    "bgcfnc": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1.0, "noise": 1.0, "cutout": 1.0},
}


@dataclass(frozen=True)
class AugmentConfig:
    """Strengths (probability multipliers) and parameter spreads of every transform.

    A transform is applied to a sample with probability ``strength * p``. Spreads are in
    the units of the parameter (fractions of the image size, log2 of a scale factor,
    fractions of half a turn).
    """

    # Pixel blitting (exact).
    xflip: float = 0.0
    """Mirror left-right (when applied, a flip happens with probability 1/2)."""
    rotate90: float = 0.0
    """Rotate by 0, 90, 180 or 270 degrees (uniform; square images only)."""
    xint: float = 0.0
    """Integer translation, uniform within ``xint_max`` of the image size, mirrored borders."""
    xint_max: float = 0.125
    # General geometric (one combined affine transform, resampled).
    scale: float = 0.0
    """Isotropic scaling by ``2 ** N(0, scale_std)``."""
    scale_std: float = 0.2
    rotate: float = 0.0
    """Rotation by ``U(-1, 1) * pi * rotate_max``, before and after the anisotropic scaling
    (each with the probability that makes "any rotation" happen with ``rotate * p``)."""
    rotate_max: float = 1.0
    aniso: float = 0.0
    """Anisotropic scaling by ``2 ** N(0, aniso_std)`` along x and its inverse along y."""
    aniso_std: float = 0.2
    xfrac: float = 0.0
    """Fractional translation by ``N(0, xfrac_std)`` of the image size."""
    xfrac_std: float = 0.125
    # Color (one combined 4x4 affine color matrix).
    brightness: float = 0.0
    """Add ``N(0, brightness_std)`` to every channel."""
    brightness_std: float = 0.2
    contrast: float = 0.0
    """Multiply by ``2 ** N(0, contrast_std)`` around 0 (the mid-gray of [-1, 1] images)."""
    contrast_std: float = 0.5
    lumaflip: float = 0.0
    """Reflect the colors through the plane orthogonal to the gray axis (probability 1/2
    when applied); inverts a 1-channel image."""
    hue: float = 0.0
    """Rotate the colors around the gray axis by ``U(-1, 1) * pi * hue_max`` (RGB only)."""
    hue_max: float = 1.0
    saturation: float = 0.0
    """Scale the colors' distance from the gray axis by ``2 ** N(0, saturation_std)``
    (RGB only)."""
    saturation_std: float = 1.0
    # Image-space corruptions.
    imgfilter: float = 0.0
    """Amplify/attenuate four frequency bands by ``2 ** N(0, imgfilter_std)`` each (each
    band with probability ``imgfilter * band_strength * p``), keeping the expected energy."""
    imgfilter_std: float = 1.0
    imgfilter_bands: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    noise: float = 0.0
    """Add Gaussian noise with a standard deviation of ``|N(0, noise_std)|``."""
    noise_std: float = 0.1
    cutout: float = 0.0
    """Zero a square of side ``cutout_size`` (fraction of the image) at a uniform centre."""
    cutout_size: float = 0.5

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "imgfilter_bands":
                if not isinstance(value, (tuple, list)) or len(value) != 4:
                    raise TypeError(f"imgfilter_bands must be 4 numbers, got {value!r}")
                bands = tuple(check_number("imgfilter_bands", v, min_value=0.0) for v in value)
                object.__setattr__(self, field.name, bands)
                continue
            object.__setattr__(self, field.name, check_number(field.name, value, min_value=0.0))
        if not 0 < self.cutout_size <= 1:
            raise ValueError(f"cutout_size must be in (0, 1], got {self.cutout_size}")

    @classmethod
    def from_preset(cls, preset: str | None, **overrides) -> AugmentConfig:
        """The configuration of a named preset (None: everything off), with overrides."""
        if preset is None:
            base = {}
        elif isinstance(preset, str) and preset in AUGMENT_PRESETS:
            base = AUGMENT_PRESETS[preset]
        else:
            raise ValueError(
                f"preset must be one of {sorted(AUGMENT_PRESETS)} or None, got {preset!r}"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"unknown augmentation settings {unknown}; valid: {sorted(names)}")
        return cls(**{**base, **overrides})

    @property
    def enabled(self) -> list[str]:
        """Names of the transforms with a non-zero strength."""
        return [name for name in _TRANSFORMS if getattr(self, name) > 0]


_TRANSFORMS = (
    "xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness", "contrast",
    "lumaflip", "hue", "saturation", "imgfilter", "noise", "cutout",
)


@dataclass
class AugmentParams:
    """Everything random about one augmented batch of ``N`` images (CPU tensors).

    Masks say which samples a stage changes; the other samples pass through it bit for bit.
    """

    flip: torch.Tensor
    """``[N]`` bool: mirror left-right."""
    rot90: torch.Tensor
    """``[N]`` int64 in 0..3: quarter turns (as ``torch.rot90`` over dims (2, 3))."""
    shift: torch.Tensor
    """``[N, 2]`` int64 ``(tx, ty)``: integer translation in pixels (right, down)."""
    geom_inverse: torch.Tensor
    """``[N, 3, 3]`` float64: output -> input position (centred pixel coordinates)."""
    geom_mask: torch.Tensor
    """``[N]`` bool: samples that go through the affine resampling."""
    color: torch.Tensor
    """``[N, 4, 4]`` float64 affine color matrix."""
    color_mask: torch.Tensor
    """``[N]`` bool: samples whose colors change."""
    band_gains: torch.Tensor
    """``[N, 4]`` float64 gains of the four frequency bands."""
    filter_mask: torch.Tensor
    """``[N]`` bool: samples that are filtered."""
    noise_sigma: torch.Tensor
    """``[N]`` float64 standard deviation of the additive noise (0: none)."""
    cutout_center: torch.Tensor
    """``[N, 2]`` float64 ``(cx, cy)`` centre of the cutout square, fractions of W and H."""
    cutout_mask: torch.Tensor
    """``[N]`` bool: samples that get a cutout."""

    @classmethod
    def identity(cls, n: int) -> AugmentParams:
        """Parameters that change nothing."""
        no = torch.zeros(n, dtype=torch.bool)
        return cls(
            flip=no.clone(),
            rot90=torch.zeros(n, dtype=torch.int64),
            shift=torch.zeros(n, 2, dtype=torch.int64),
            geom_inverse=torch.eye(3, dtype=_F64).repeat(n, 1, 1),
            geom_mask=no.clone(),
            color=torch.eye(4, dtype=_F64).repeat(n, 1, 1),
            color_mask=no.clone(),
            band_gains=torch.ones(n, 4, dtype=_F64),
            filter_mask=no.clone(),
            noise_sigma=torch.zeros(n, dtype=_F64),
            cutout_center=torch.full([n, 2], 0.5, dtype=_F64),
            cutout_mask=no.clone(),
        )


class _Draws:
    """Uniform and normal float64 numbers from a generator (or the global CPU generator),
    returned on the CPU."""

    def __init__(self, generator: torch.Generator | None):
        self.generator = generator
        self.device = torch.device("cpu") if generator is None else generator.device

    def uniform(self, *shape: int) -> torch.Tensor:
        out = torch.rand(shape, generator=self.generator, device=self.device, dtype=_F64)
        return out.cpu()

    def normal(self, *shape: int) -> torch.Tensor:
        out = torch.randn(shape, generator=self.generator, device=self.device, dtype=_F64)
        return out.cpu()


_GRAY_AXIS = torch.tensor([1.0, 1.0, 1.0], dtype=_F64) / math.sqrt(3)


def _gray_projection() -> torch.Tensor:
    """``[4, 4]``: projection of RGB onto the gray axis (0 on the homogeneous coordinate)."""
    out = torch.zeros(4, 4, dtype=_F64)
    out[:3, :3] = torch.outer(_GRAY_AXIS, _GRAY_AXIS)
    return out


def sample_params(
    config: AugmentConfig,
    p: float,
    batch: int,
    channels: int,
    height: int,
    width: int,
    generator: torch.Generator | None = None,
) -> AugmentParams:
    """Draw the transforms of one batch.

    Every enabled transform draws its numbers whatever ``p`` is (so the stream of random
    numbers does not depend on ``p``), in a fixed order, from ``generator`` (default:
    torch's global CPU generator).
    """
    n = batch
    draws = _Draws(generator)
    out = AugmentParams.identity(n)

    def applied(strength: float) -> torch.Tensor:
        return draws.uniform(n) < strength * p

    # Pixel blitting.
    if config.xflip > 0:
        flip = draws.uniform(n) < 0.5
        out.flip = flip & applied(config.xflip)
    if config.rotate90 > 0:
        quarter = torch.floor(draws.uniform(n) * 4).to(torch.int64)
        out.rot90 = torch.where(applied(config.rotate90), quarter, 0)
    if config.xint > 0:
        frac = (draws.uniform(n, 2) * 2 - 1) * config.xint_max
        pixels = torch.round(frac * torch.tensor([width, height], dtype=_F64)).to(torch.int64)
        out.shift = torch.where(applied(config.xint)[:, None], pixels, 0)

    # General geometric: the inverse of  translate . rotate . aniso . rotate . scale.
    inverse = out.geom_inverse
    mask = out.geom_mask
    # Each of the two rotations happens with the probability that makes "at least one"
    # happen with probability rotate * p.
    rotate_p = 1 - math.sqrt(min(max(1 - config.rotate * p, 0.0), 1.0))
    if config.scale > 0:
        s = torch.exp2(draws.normal(n) * config.scale_std)
        on = applied(config.scale)
        s = torch.where(on, s, 1.0)
        inverse = inverse @ scale2d(1 / s, 1 / s)
        mask = mask | on
    if config.rotate > 0:
        theta = (draws.uniform(n) * 2 - 1) * math.pi * config.rotate_max
        on = draws.uniform(n) < rotate_p
        inverse = inverse @ rotate2d(-torch.where(on, theta, 0.0))
        mask = mask | on
    if config.aniso > 0:
        s = torch.exp2(draws.normal(n) * config.aniso_std)
        on = applied(config.aniso)
        s = torch.where(on, s, 1.0)
        inverse = inverse @ scale2d(1 / s, s)
        mask = mask | on
    if config.rotate > 0:
        theta = (draws.uniform(n) * 2 - 1) * math.pi * config.rotate_max
        on = draws.uniform(n) < rotate_p
        inverse = inverse @ rotate2d(-torch.where(on, theta, 0.0))
        mask = mask | on
    if config.xfrac > 0:
        t = draws.normal(n, 2) * config.xfrac_std
        on = applied(config.xfrac)
        t = torch.where(on[:, None], t, 0.0)
        inverse = inverse @ translate2d(-t[:, 0] * width, -t[:, 1] * height)
        mask = mask | on
    out.geom_inverse, out.geom_mask = inverse, mask

    # Color: each step multiplies the matrix from the left (applied after the previous).
    color = out.color
    mask = out.color_mask
    rgb = channels == 3
    eye = torch.eye(4, dtype=_F64)
    gray = _gray_projection()
    if config.brightness > 0:
        b = draws.normal(n) * config.brightness_std
        on = applied(config.brightness)
        color = translate3d(torch.where(on, b, 0.0)) @ color
        mask = mask | on
    if config.contrast > 0:
        c = torch.exp2(draws.normal(n) * config.contrast_std)
        on = applied(config.contrast)
        color = scale3d(torch.where(on, c, 1.0)) @ color
        mask = mask | on
    if config.lumaflip > 0:
        flip = (draws.uniform(n) < 0.5) & applied(config.lumaflip)
        householder = eye - 2 * gray * flip.to(_F64).view(-1, 1, 1)
        color = householder @ color
        mask = mask | flip
    # Hue and saturation act around the gray axis: nothing to do on 1-channel images (the
    # numbers are still drawn, so the random stream does not depend on the channel count).
    if config.hue > 0:
        theta = (draws.uniform(n) * 2 - 1) * math.pi * config.hue_max
        on = applied(config.hue) & rgb
        color = rotate3d(_GRAY_AXIS, torch.where(on, theta, 0.0)) @ color
        mask = mask | on
    if config.saturation > 0:
        s = torch.exp2(draws.normal(n) * config.saturation_std)
        on = applied(config.saturation) & rgb
        s = torch.where(on, s, 1.0).view(-1, 1, 1)
        chroma = eye - gray
        chroma[3, 3] = 0
        saturate = gray + chroma * s
        saturate[:, 3, 3] = 1
        color = saturate @ color
        mask = mask | on
    out.color, out.color_mask = color, mask

    # Image-space filtering: one random gain per band, normalized so that an image with
    # the expected spectrum keeps its energy.
    if config.imgfilter > 0:
        power = torch.tensor(BAND_EXPECTED_POWER, dtype=_F64)
        gains = out.band_gains
        mask = out.filter_mask
        for band, band_strength in enumerate(config.imgfilter_bands):
            t = torch.exp2(draws.normal(n) * config.imgfilter_std)
            on = draws.uniform(n) < config.imgfilter * band_strength * p
            step = torch.ones(n, 4, dtype=_F64)
            step[:, band] = torch.where(on, t, 1.0)
            step = step / (power * step.square()).sum(dim=1, keepdim=True).sqrt()
            gains = gains * step
            mask = mask | on
        out.band_gains, out.filter_mask = gains, mask

    if config.noise > 0:
        sigma = draws.normal(n).abs() * config.noise_std
        out.noise_sigma = torch.where(applied(config.noise), sigma, 0.0)
    if config.cutout > 0:
        out.cutout_center = draws.uniform(n, 2)
        out.cutout_mask = applied(config.cutout)
    return out
