"""Where the images of a metric come from: datasets, arrays, generators.

Every source yields batches of uint8 images ``[B, C, H, W]`` (what the extractors take):

* a dataset: a folder or .zip of PNG/JPEG images, or ``"builtin:digits"`` (opened with
  :func:`gankern.data.open_dataset`); a subset of ``num`` images is drawn with ``seed``;
* an array: a uint8 numpy array or tensor ``[N, C, H, W]`` already in memory;
* a generator: an ``nn.Module`` with StyleGAN2-ADA's interface (``z_dim``, ``c_dim``,
  ``G(z, c, **generator_kwargs)`` returning images in [-1, 1]); latents are standard normal
  and labels uniformly random one-hot vectors, both drawn from a seeded ``torch.Generator``;
* a sampler: any other callable ``sampler(batch_size) -> images`` (uint8, or floats in
  [-1, 1]).

Generated float images are quantized to uint8 exactly as saved PNGs would be
(:func:`quantize_images`), so a generator and the folder of its saved samples give the
same metric.
"""

from __future__ import annotations

import hashlib
import numbers
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gankern.metrics.extractor import check_uint8_images
from gankern.nn.modes import eval_mode


def quantize_images(
    images: torch.Tensor, drange: tuple[float, float] = (-1.0, 1.0)
) -> torch.Tensor:
    """Float images in ``drange`` -> uint8 0..255, rounding to nearest (half up), clamped.

    This is StyleGAN2-ADA's convention for generated images (``x * 127.5 + 128`` truncated,
    for the default range), the same rounding as when the images are saved as PNG.
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.dtype == torch.uint8:
        return images
    if not images.dtype.is_floating_point:
        raise TypeError(f"images must be uint8 or floating point, got {images.dtype}")
    lo, hi = float(drange[0]), float(drange[1])
    if not hi > lo:
        raise ValueError(f"drange must be (low, high) with high > low, got {drange}")
    x = images.detach().float()
    if not torch.isfinite(x).all():
        raise ValueError("generated images contain NaN or Inf")
    x = (x - lo) * (255 / (hi - lo)) + 0.5
    return x.clamp(0, 255).to(torch.uint8)


class ImageSourceBase:
    """A source of uint8 image batches (see the module docstring)."""

    description: str = ""
    num_available: int | None = None  # None: unlimited (generators, samplers)

    def identity(self) -> dict | None:
        """What identifies these images for caching (None: never cached)."""
        return None

    def batches(self, num: int, batch_size: int, device: torch.device) -> Iterator[torch.Tensor]:
        raise NotImplementedError


def random_subset(num_total: int, num: int | None, seed: int) -> np.ndarray | None:
    """Sorted indices of ``num`` of ``num_total`` items (None: all), drawn as
    :class:`gankern.data.ImageDataset` draws its ``max_size`` subsets, so that an array and
    a folder holding the same images select the same ones."""
    if num is None or num >= num_total:
        return None
    return np.sort(np.random.RandomState(seed % 2**32).permutation(num_total)[:num])


class ArraySource(ImageSourceBase):
    def __init__(self, images, *, num: int | None = None, seed: int = 0):
        if isinstance(images, np.ndarray):
            images = torch.from_numpy(np.ascontiguousarray(images))
        check_uint8_images("images", images)
        subset = random_subset(images.shape[0], num, seed)
        self.images = images if subset is None else images[torch.from_numpy(subset)]
        self.num_available = self.images.shape[0]
        self.description = (f"array of {self.num_available} images "
                            f"{tuple(self.images.shape[1:])}")

    def identity(self) -> dict | None:
        # Hash the content of in-memory arrays up to 256 MiB (the built-in digits are 1.8 MB).
        if self.images.numel() > 256 * 2**20:
            return None
        data = self.images.detach().cpu().contiguous().numpy()
        return {"array": hashlib.sha256(data.tobytes()).hexdigest()[:16], "shape": data.shape}

    def batches(self, num, batch_size, device):
        for start in range(0, num, batch_size):
            yield self.images[start : min(num, start + batch_size)].to(device)


def _stack_images(items) -> torch.Tensor:
    # Items are (image uint8 [C, H, W], label); metrics need the images only.
    return torch.from_numpy(np.stack([image for image, _label in items]))


def _default_workers(num_images: int) -> int:
    if num_images < 1024:
        return 0  # starting worker processes costs more than decoding a few images
    return min(4, max(0, (os.cpu_count() or 1) - 1))


class DatasetSource(ImageSourceBase):
    def __init__(self, data, *, num: int | None, seed: int, num_workers: int | None = None):
        from gankern.data import open_dataset

        self.data = os.fspath(data) if isinstance(data, os.PathLike) else data
        self.seed = seed
        self.dataset = open_dataset(self.data, max_size=num, random_seed=seed)
        self.num_available = len(self.dataset)
        self.num_workers = num_workers
        self.description = f"{self.data} ({len(self.dataset)} images)"

    def identity(self) -> dict:
        ident: dict = {"data": self.data, "num": len(self.dataset), "seed": self.seed,
                       "shape": list(self.dataset.image_shape)}
        if self.data.startswith("builtin:"):
            # Built-in data are small and made by code: hash what the code produced.
            digest = hashlib.sha256()
            for i in range(len(self.dataset)):
                digest.update(np.ascontiguousarray(self.dataset[i][0]).tobytes())
            ident["content"] = digest.hexdigest()[:16]
            return ident
        path = Path(self.data).resolve()
        ident["data"] = str(path)
        if path.is_file():  # a zip: its size and modification time
            st = path.stat()
            ident["file"] = [st.st_size, st.st_mtime_ns]
        else:  # a folder: every image's name, size and modification time
            digest = hashlib.sha256()
            for name in self.dataset.image_names:
                st = (path / name).stat()
                digest.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            ident["files"] = digest.hexdigest()[:16]
        return ident

    def batches(self, num, batch_size, device):
        if self.num_workers is not None:
            workers = self.num_workers
        elif getattr(self.dataset, "in_memory", False):
            workers = 0  # nothing to decode: worker processes would only add start-up time
        else:
            workers = _default_workers(num)
        subset = torch.utils.data.Subset(self.dataset, range(num))
        loader = torch.utils.data.DataLoader(
            subset, batch_size=batch_size, shuffle=False, num_workers=workers,
            pin_memory=device.type == "cuda", collate_fn=_stack_images,
        )
        for images in loader:
            yield images.to(device, non_blocking=True)


class GeneratorSource(ImageSourceBase):
    def __init__(self, generator: nn.Module, *, seed: int, generator_kwargs: dict | None = None):
        z_dim = getattr(generator, "z_dim", None)
        if isinstance(z_dim, bool) or not isinstance(z_dim, numbers.Integral) or z_dim < 1:
            raise TypeError(
                "a generator module must have an integer attribute z_dim (StyleGAN2-ADA's "
                f"interface G(z, c)), got z_dim={z_dim!r}; wrap other models in a sampler "
                "callable: sampler(batch_size) -> images"
            )
        self.generator = generator
        self.z_dim = int(z_dim)
        self.c_dim = int(getattr(generator, "c_dim", 0) or 0)
        self.seed = seed
        self.kwargs = dict(generator_kwargs or {})
        self.description = f"generator {type(generator).__name__} (z_dim={self.z_dim})"

    def batches(self, num, batch_size, device):
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        param = next(iter(self.generator.parameters()), None)
        g_device = param.device if param is not None else device
        for start in range(0, num, batch_size):
            n = min(batch_size, num - start)
            z = torch.randn(n, self.z_dim, generator=gen).to(g_device)
            c = torch.zeros(n, self.c_dim)
            if self.c_dim > 0:
                c[torch.arange(n), torch.randint(0, self.c_dim, (n,), generator=gen)] = 1
            # The generator's own randomness (StyleGAN's noise inputs) comes from the global
            # RNG: seed it per batch, in a forked state, so that the images are reproducible.
            devices = []
            if g_device.type == "cuda":  # fork_rng takes device indices
                devices = [g_device.index if g_device.index is not None
                           else torch.cuda.current_device()]
            with torch.no_grad(), torch.random.fork_rng(devices=devices), \
                    eval_mode(self.generator):
                batch_seed = self.seed * 1_000_003 + start
                torch.default_generator.manual_seed(batch_seed)
                if g_device.type == "cuda":
                    with torch.cuda.device(g_device):
                        torch.cuda.manual_seed(batch_seed)
                images = self.generator(z, c.to(g_device), **self.kwargs)
            yield _check_generated(quantize_images(images), n).to(device)


class SamplerSource(ImageSourceBase):
    def __init__(self, sampler: Callable[[int], torch.Tensor]):
        self.sampler = sampler
        self.description = f"sampler {getattr(sampler, '__name__', type(sampler).__name__)}"

    def batches(self, num, batch_size, device):
        for start in range(0, num, batch_size):
            n = min(batch_size, num - start)
            with torch.no_grad():
                images = self.sampler(n)
            if isinstance(images, np.ndarray):
                images = torch.from_numpy(images)
            yield _check_generated(quantize_images(images), n).to(device)


def _check_generated(images: torch.Tensor, n: int) -> torch.Tensor:
    check_uint8_images("generated images", images)
    if images.shape[0] != n:
        raise ValueError(f"the generator returned {images.shape[0]} images, expected {n}")
    return images


def open_image_source(
    source, *, name: str, num: int | None = None, seed: int = 0,
    generator_kwargs: dict | None = None, num_workers: int | None = None,
) -> ImageSourceBase:
    """Wrap ``source`` (see the module docstring) as an image source.

    Args:
        source: a path or ``"builtin:NAME"``, a uint8 array, a generator module, a sampler.
        name: the argument's name, for error messages (``"real"``, ``"fake"``).
        num: for datasets and arrays, the size of the random subset to take (None: all).
        seed: subset selection (datasets) or latent sampling (generators).
        generator_kwargs: extra keyword arguments of the generator's forward.
        num_workers: DataLoader workers for datasets (None: automatic).
    """
    if isinstance(source, ImageSourceBase):
        return source
    if isinstance(source, (str, os.PathLike)):
        return DatasetSource(source, num=num, seed=seed, num_workers=num_workers)
    if isinstance(source, (np.ndarray, torch.Tensor)):
        try:
            return ArraySource(source, num=num, seed=seed)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{name}: {exc}") from exc
    if isinstance(source, nn.Module):
        return GeneratorSource(source, seed=seed, generator_kwargs=generator_kwargs)
    if callable(source):
        return SamplerSource(source)
    raise TypeError(
        f"{name} must be a dataset path, 'builtin:NAME', a uint8 image array, a generator "
        f"module or a sampler callable, got {type(source).__name__}"
    )
