"""Discriminator augmentation: StyleGAN2-ADA's pipeline, its adaptive controller, DiffAugment.

* :class:`AugmentPipe`: the ADA augmentation pipeline (Karras et al. 2020, "Training
  Generative Adversarial Networks with Limited Data"): pixel blitting, general geometric
  transforms, color transforms, image-space filtering, additive noise and cutout, each
  applied to a sample with probability ``p * strength``. ``p`` is a buffer (in the
  ``state_dict``) that :class:`AdaController` adjusts during training.
* :class:`AdaController`: adjusts ``p`` from the sign of D on real images (target 0.6).
* :func:`diff_augment`: DiffAugment (Zhao et al. 2020), a fixed and simpler alternative.

Every transform is differentiable with respect to the images: the generator's gradients
flow through the discriminator's augmentation. Randomness comes from a ``torch.Generator``
when one is given and from torch's global generators otherwise, so that a run reseeded the
same way augments the same way (see :mod:`gankern.train.rng`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gankern.ops._backend import IMPLS
from gankern.ops._checks import check_number, check_tensor
from gankern.train.ada_controller import AdaController
from gankern.train.augment_geometry import affine_resample, blit, resampling_filter
from gankern.train.augment_pixels import add_noise, apply_band_gains, apply_color_matrix, cutout
from gankern.train.augment_sampling import (
    AUGMENT_PRESETS,
    AugmentConfig,
    AugmentParams,
    sample_params,
)
from gankern.train.diff_augment import DIFF_AUGMENT_POLICIES, diff_augment

__all__ = [
    "AUGMENT_PRESETS",
    "DIFF_AUGMENT_POLICIES",
    "AdaController",
    "AugmentConfig",
    "AugmentParams",
    "AugmentPipe",
    "diff_augment",
]

_COLOR_TRANSFORMS = ("brightness", "contrast", "lumaflip", "hue", "saturation")


def _check_generator(generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )


class AugmentPipe(nn.Module):
    """StyleGAN2-ADA's augmentation pipeline for ``[N, C, H, W]`` images in ``[-1, 1]``.

    Args:
        preset: ``"blit"``, ``"geom"``, ``"color"``, ``"filter"``, ``"noise"``,
            ``"cutout"``, ``"bg"``, ``"bgc"`` (default), ``"bgcf"``, ``"bgcfn"``,
            ``"bgcfnc"``, or None (everything off, set strengths through ``overrides``).
        p: initial augmentation probability (the ``p`` buffer; default 0).
        impl: backend of the resampling filters (:func:`gankern.ops.upfirdn2d`).
        **overrides: any field of :class:`AugmentConfig` (strengths and spreads), e.g.
            ``AugmentPipe("bgc", xflip=0)``.

    The stages, in order (each skipped for the samples it does not change):

    1. pixel blitting (x-flip, quarter turns, integer translation with mirrored borders),
       exact;
    2. general geometric (isotropic scaling, rotation, anisotropic scaling, rotation,
       fractional translation) combined into one affine transform per sample and resampled
       by :func:`gankern.train.augment_geometry.affine_resample` (mirror padding, 2x
       windowed-sinc upsampling, bilinear sampling, 2x downsampling);
    3. color (brightness, contrast, luma flip, hue rotation, saturation) combined into one
       4x4 affine color matrix; on 1-channel images hue and saturation do nothing and luma
       flip inverts the image, as in StyleGAN2-ADA;
    4. image-space filtering (random gains of four frequency bands), additive Gaussian
       noise, cutout.

    ``p = 0`` returns the input unchanged. Images may have any number of channels unless a
    color transform is enabled (1 or 3 then); float16/bfloat16 images are processed in
    float32 and returned in their dtype.
    """

    def __init__(self, preset: str | None = "bgc", p: float = 0.0, impl: str = "auto", **overrides):
        super().__init__()
        self.config = AugmentConfig.from_preset(preset, **overrides)
        if not isinstance(impl, str) or impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        self.preset = preset
        self.impl = impl
        p = check_number("p", p, min_value=0.0)
        self.register_buffer("p", torch.tensor(p, dtype=torch.float32))
        self.register_buffer("resampling_filter", resampling_filter(), persistent=False)

    def extra_repr(self) -> str:
        return f"preset={self.preset!r}, enabled={self.config.enabled}, p={float(self.p):.4f}"

    def _check_images(self, images) -> None:
        check_tensor("images", images, ndim=4)
        _, c, h, w = images.shape
        if any(getattr(self.config, name) > 0 for name in _COLOR_TRANSFORMS) and c not in (1, 3):
            raise ValueError(
                f"images must have 1 or 3 channels for the color transforms, got {c} "
                f"(shape {tuple(images.shape)})"
            )
        if self.config.rotate90 > 0 and h != w:
            raise ValueError(
                f"rotate90 needs square images, got images of shape {tuple(images.shape)}"
            )

    def current_p(self) -> float:
        """The probability multiplier ``p`` as a Python float (validated)."""
        p = float(self.p)
        if not (math.isfinite(p) and p >= 0):
            raise ValueError(f"the augmentation probability p must be finite and >= 0, got {p}")
        return p

    def sample_params(
        self,
        batch: int,
        channels: int,
        height: int,
        width: int,
        generator: torch.Generator | None = None,
    ) -> AugmentParams:
        """Draw the random transforms of a batch at the current ``p`` (CPU tensors)."""
        _check_generator(generator)
        p = self.current_p()
        return sample_params(self.config, p, batch, channels, height, width, generator)

    def apply(
        self,
        images: torch.Tensor,
        params: AugmentParams,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Augment ``images`` with given transforms (``generator`` draws the noise)."""
        self._check_images(images)
        _check_generator(generator)
        if params.flip.shape[0] != images.shape[0]:
            raise ValueError(
                f"params are for a batch of {params.flip.shape[0]}, images have {images.shape[0]}"
            )
        dtype = images.dtype
        x = images if dtype in (torch.float32, torch.float64) else images.float()
        x = blit(x, params.flip, params.rot90, params.shift)
        if bool(params.geom_mask.any()):
            # Only the samples that need it are resampled (the resampling low-passes).
            index = params.geom_mask.nonzero()[:, 0]
            f = self.resampling_filter.to(device=x.device, dtype=x.dtype)
            moved = affine_resample(
                x.index_select(0, index.to(x.device)), params.geom_inverse[index], f, self.impl
            )
            x = x.index_copy(0, index.to(x.device), moved)
        x = apply_color_matrix(x, params.color, params.color_mask)
        x = apply_band_gains(x, params.band_gains, params.filter_mask)
        x = add_noise(x, params.noise_sigma, generator)
        x = cutout(x, params.cutout_center, self.config.cutout_size, params.cutout_mask)
        return x.to(dtype)

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None):
        """Augment a batch: ``apply(images, sample_params(...))``.

        Args:
            images: ``[N, C, H, W]`` float images (any layout, on any device).
            generator: source of randomness; None uses torch's global generators (the CPU
                one for the per-sample parameters, the images' device for the noise).

        Returns:
            The augmented batch, same shape, dtype and device; unchanged when ``p == 0``.
            The parameters are drawn even then, so that the random stream consumed per
            batch does not depend on ``p``.
        """
        self._check_images(images)
        _check_generator(generator)
        n, c, h, w = images.shape
        params = sample_params(self.config, self.current_p(), n, c, h, w, generator)
        return self.apply(images, params, generator)
