"""StyleGAN2's mapping network: z (and the label c) -> the intermediate latent w.

Also the discriminator's label mapping (``z_dim=0``, no w average). Names follow
StyleGAN2-ADA (``embed``, ``fc0`` ... ``fc{num_layers-1}``, buffer ``w_avg``).
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

from gankern.nn._validate import check_activation
from gankern.nn.equalized import FullyConnectedLayer
from gankern.ops._checks import check_int, check_number, check_tensor


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale ``x`` to unit mean square along ``dim`` (StyleGAN's pixel norm of z)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def check_truncation(psi, cutoff, num_ws: int | None) -> tuple[float, int | None]:
    """Validate ``truncation_psi`` (a number) and ``truncation_cutoff`` (None or 0..num_ws)."""
    psi = check_number("truncation_psi", psi)
    if cutoff is not None:
        if isinstance(cutoff, bool) or not isinstance(cutoff, numbers.Integral):
            raise TypeError(f"truncation_cutoff must be None or an int, got {cutoff!r}")
        if cutoff < 0 or (num_ws is not None and cutoff > num_ws):
            raise ValueError(f"truncation_cutoff must be in [0, {num_ws}], got {cutoff}")
        cutoff = int(cutoff)
    return psi, cutoff


def check_label(c, batch: int | None, c_dim: int) -> torch.Tensor | None:
    """``c`` must be ``[N, c_dim]`` when ``c_dim > 0``; otherwise it is ignored (may be None)."""
    if c_dim == 0:
        if c is not None:
            check_tensor("c", c, ndim=2, floating=False, allow_empty=True)
        return None
    check_tensor("c", c, ndim=2, floating=False)
    if c.shape[1] != c_dim or (batch is not None and c.shape[0] != batch):
        want = f"[{batch if batch is not None else 'N'}, {c_dim}]"
        raise ValueError(f"c must have shape {want}, got {tuple(c.shape)}")
    return c


class MappingNetwork(nn.Module):
    """Normalized z (+ embedded, normalized label) -> MLP -> w, with a moving average of w.

    Args:
        z_dim: latent dimensionality (0: no latent, the discriminator's label mapping).
        c_dim: label dimensionality (0: unconditional).
        w_dim: output dimensionality.
        num_ws: number of copies of w to broadcast to (``[N, num_ws, w_dim]``); None returns
            ``[N, w_dim]``.
        num_layers: number of fully connected layers (StyleGAN2: 8; ADA's auto config: 2).
        embed_features: label embedding size (default w_dim).
        layer_features: width of the hidden layers (default w_dim).
        activation: activation of every layer (default lrelu).
        lr_multiplier: learning-rate multiplier of the layers (default 0.01).
        w_avg_beta: decay of the moving average of w tracked in training (default 0.995);
            None disables tracking (and truncation).
        impl: backend of the ops.
    """

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int | None,
        num_layers: int = 8,
        embed_features: int | None = None,
        layer_features: int | None = None,
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.995,
        impl: str = "auto",
    ):
        super().__init__()
        self.z_dim = check_int("z_dim", z_dim, min_value=0)
        self.c_dim = check_int("c_dim", c_dim, min_value=0)
        if z_dim == 0 and c_dim == 0:
            raise ValueError("MappingNetwork needs z_dim > 0 or c_dim > 0, got both 0")
        self.w_dim = check_int("w_dim", w_dim, min_value=1)
        self.num_ws = None if num_ws is None else check_int("num_ws", num_ws, min_value=1)
        self.num_layers = check_int("num_layers", num_layers, min_value=1)
        check_activation("activation", activation)
        if w_avg_beta is not None:
            w_avg_beta = check_number("w_avg_beta", w_avg_beta, min_value=0.0)
            if w_avg_beta > 1:
                raise ValueError(f"w_avg_beta must be in [0, 1] or None, got {w_avg_beta}")
        self.w_avg_beta = w_avg_beta

        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]

        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features, impl=impl)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(
                features[idx],
                features[idx + 1],
                activation=activation,
                lr_multiplier=lr_multiplier,
                impl=impl,
            )
            setattr(self, f"fc{idx}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        skip_w_avg_update: bool = False,
    ) -> torch.Tensor:
        """Map ``z`` ``[N, z_dim]`` and ``c`` ``[N, c_dim]`` to w.

        Returns ``[N, num_ws, w_dim]`` (or ``[N, w_dim]`` when ``num_ws`` is None). In training
        mode the moving average ``w_avg`` is updated unless ``skip_w_avg_update``. Truncation
        (``truncation_psi != 1``) moves w towards ``w_avg``: ``w_avg + psi * (w - w_avg)``, for
        the first ``truncation_cutoff`` ws only if given.
        """
        psi, cutoff = check_truncation(truncation_psi, truncation_cutoff, self.num_ws)
        x = None
        batch = None
        dtype = self.fc0.weight.dtype  # float32 (float64 for a .double() network)
        if self.z_dim > 0:
            check_tensor("z", z, ndim=2)
            if z.shape[1] != self.z_dim:
                raise ValueError(f"z must have shape [N, {self.z_dim}], got {tuple(z.shape)}")
            batch = z.shape[0]
            x = normalize_2nd_moment(z.to(dtype))
        if self.c_dim > 0:
            c = check_label(c, batch, self.c_dim)
            y = normalize_2nd_moment(self.embed(c.to(dtype)))
            x = torch.cat([x, y], dim=1) if x is not None else y

        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)

        if self.w_avg_beta is not None and self.num_ws is not None:
            if self.training and not skip_w_avg_update:
                with torch.no_grad():
                    self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))

        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])

        if psi != 1:
            if self.w_avg_beta is None or self.num_ws is None:
                raise ValueError(
                    "truncation needs the tracked w average (a mapping with num_ws and w_avg_beta)"
                )
            n_trunc = self.num_ws if cutoff is None else cutoff
            truncated = self.w_avg.lerp(x[:, :n_trunc], psi)
            x = torch.cat([truncated, x[:, n_trunc:]], dim=1)
        return x

    def extra_repr(self) -> str:
        return (
            f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, "
            f"num_ws={self.num_ws}, num_layers={self.num_layers}"
        )
