"""What the style-based families (StyleGAN v1 and StyleGAN2) share: G run as mapping then
synthesis with style mixing regularization for training, and the truncation trick for
sampling. Their generators have the same API (``G.mapping``, ``G.synthesis``,
``G(z, c, truncation_psi, truncation_cutoff, noise_mode=...)``)."""

from __future__ import annotations

import torch

from gankern.models.stylegan2 import mapping_with_mixing


class StyleBased:
    """Mixin of a :class:`gankern.train.adversarial.NoiseToImageFamily` whose G is
    style-based (put it before that class in the bases)."""

    style_based = True

    def synthesis_kwargs(self) -> dict:
        """Keyword arguments of ``G.synthesis`` in training (a growth level, for one)."""
        return {}

    def active_ws(self) -> int | None:
        """How many leading ws the synthesis network uses now (None: all); style mixing
        draws its crossover point among them."""
        return None

    def run_G(self, z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and their ws, with style mixing (``settings.style_mixing``) and random
        noise inputs."""
        G = self.networks["G"]
        ws = mapping_with_mixing(G.mapping, z, c, self.settings.style_mixing,
                                 num_active_ws=self.active_ws())
        img = G.synthesis(ws, noise_mode="random", **self.synthesis_kwargs())
        return img, ws

    def generate(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.run_G(z, c)[0]

    @classmethod
    def sample(cls, G, z, c, *, truncation_psi=1.0, truncation_cutoff=None,
               noise_mode="const"):
        """``G(z, c)`` with the truncation trick towards the tracked average w
        (``truncation_psi``, on the first ``truncation_cutoff`` ws) and the noise mode."""
        return G(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                 noise_mode=noise_mode)
