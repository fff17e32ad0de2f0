"""The image history pool of CycleGAN (Zhu et al. 2017, after Shrivastava et al. 2017).

The discriminators are updated with a mix of the latest generated images and earlier ones,
which keeps them from forgetting what the generators did a while ago. The rule, as in the
official ``util/image_pool.py`` (junyanz/pytorch-CycleGAN-and-pix2pix), image by image:

* while the pool holds fewer than ``size`` images, the new image is stored and returned;
* afterwards, with probability 1/2 a uniformly chosen stored image is returned and the new
  image takes its place; otherwise the new image is returned and the pool is unchanged.

The pool is an ``nn.Module``: the stored images and their count are buffers (they follow
``.to(device)`` and go into ``state_dict``), and so is the state of the pool's random
generator, so a checkpointed run resumes with exactly the same choices.
"""

from __future__ import annotations

import torch
from torch import nn

from gankern.ops._checks import check_int, check_tensor


class ImagePool(nn.Module):
    """A history of ``size`` generated images; ``pool(images)`` applies the CycleGAN rule.

    Args:
        size: how many images the pool holds (the paper's 50); 0 disables the pool
            (``pool(images)`` returns ``images`` unchanged).
        generator: the ``torch.Generator`` that makes every random choice (None: a new CPU
            generator seeded with 0). Give the pool a generator of its own: its state is
            saved and restored with the pool's ``state_dict``.

    Random draws, per call, after the images that went into a filling pool: ``u =
    torch.rand(k, generator=generator)`` and ``slot = torch.randint(size, (k,),
    generator=generator)`` for the remaining ``k`` images (one each); image ``j`` of those
    is swapped with stored image ``slot[j]`` when ``u[j] > 0.5``. Images are processed in
    batch order, so a later image of a batch can receive an earlier one.
    """

    def __init__(self, size: int = 50, generator: torch.Generator | None = None):
        super().__init__()
        self.size = check_int("size", size, min_value=0)
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, "
                            f"got {type(generator).__name__}")
        self.generator = generator
        self.register_buffer("images", torch.zeros(0))
        self.register_buffer("num_images", torch.zeros((), dtype=torch.int64))

    @property
    def num_stored(self) -> int:
        """How many images the pool holds now (at most ``size``)."""
        return int(self.num_images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Apply the pool rule to a batch ``[N, C, H, W]``; returns a new (detached) batch."""
        check_tensor("images", images, ndim=4)
        images = images.detach()
        if self.size == 0:
            return images
        if self.images.ndim != 4:  # first call: allocate the storage for this image shape
            self.images = torch.zeros((self.size, *images.shape[1:]), dtype=images.dtype,
                                      device=images.device)
        elif self.images.shape[1:] != images.shape[1:]:
            raise ValueError(f"images must be [N, {', '.join(map(str, self.images.shape[1:]))}]"
                             f" like the images in the pool, got {tuple(images.shape)}")
        images = images.to(self.images.dtype)
        result = images.clone()
        stored = self.num_stored
        fill = min(images.shape[0], self.size - stored)
        if fill:
            self.images[stored:stored + fill] = images[:fill].to(self.images.device)
            self.num_images.fill_(stored + fill)
        rest = images.shape[0] - fill
        if rest:
            device = self.generator.device
            swap = (torch.rand(rest, generator=self.generator, device=device) > 0.5).tolist()
            slots = torch.randint(self.size, (rest,), generator=self.generator,
                                  device=device).tolist()
            for j, (do_swap, slot) in enumerate(zip(swap, slots, strict=True)):
                if do_swap:
                    i = fill + j
                    result[i] = self.images[slot].to(result.device)
                    self.images[slot] = images[i].to(self.images.device)
        return result

    def get_extra_state(self) -> torch.Tensor:
        """The random generator's state (saved as ``_extra_state`` in the state dict)."""
        return self.generator.get_state()

    def set_extra_state(self, state) -> None:
        if not isinstance(state, torch.Tensor):
            raise TypeError(f"the saved generator state of an ImagePool must be a tensor, "
                            f"got {type(state).__name__}")
        self.generator.set_state(state.to("cpu", torch.uint8))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        images = state_dict.get(prefix + "images")
        if isinstance(images, torch.Tensor) and images.shape != self.images.shape:
            # The storage is allocated at the first call; take the saved one's shape.
            self.images = torch.zeros(images.shape, dtype=images.dtype,
                                      device=self.images.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"size={self.size}, stored={self.num_stored}"
