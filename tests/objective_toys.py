"""A toy generator and discriminator whose outputs and input gradients have closed forms,
and a family that trains them, for checking the objective against written-out formulas.

Toy G: ``x = tanh(W [z, c] + b)`` as a 1x2x2 image. Toy D: ``D(x) = v . x + a |x|^2 + b``
(optionally with a linear class head), so ``grad_x D(x) = v + 2 a x`` exactly. NumPy
versions of both (float64) are the independent reference.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gankern.train.adversarial import NoiseToImageFamily
from gankern.train.family import Phase, PhaseInputs
from gankern.train.options import TrainingOptions
from gankern.train.settings import RunSettings

Z_DIM = 3


class ToyG(nn.Module):
    img_resolution = 2
    img_channels = 1

    def __init__(self, c_dim: int = 0):
        super().__init__()
        self.z_dim, self.c_dim = Z_DIM, c_dim
        self.lin = nn.Linear(Z_DIM + c_dim, 4).double()

    def forward(self, z, c):
        return torch.tanh(self.lin(torch.cat([z, c], dim=1))).reshape(-1, 1, 2, 2)


class ToyD(nn.Module):
    def __init__(self, c_dim: int = 0, classifier: bool = False):
        super().__init__()
        g = torch.Generator().manual_seed(5)
        self.v = nn.Parameter(torch.randn(4, generator=g, dtype=torch.float64))
        self.a = nn.Parameter(torch.tensor(0.3, dtype=torch.float64))
        self.b = nn.Parameter(torch.tensor(-0.2, dtype=torch.float64))
        self.head = nn.Linear(4, c_dim).double() if classifier else None

    def forward(self, x, c):
        f = x.flatten(1)
        logits = (f @ self.v + self.a * f.square().sum(1) + self.b)[:, None]
        if self.head is not None:
            return logits, self.head(f)
        return logits


def np_G(G: ToyG, z: np.ndarray, c: np.ndarray) -> np.ndarray:
    W = G.lin.weight.detach().numpy()
    b = G.lin.bias.detach().numpy()
    return np.tanh(np.concatenate([z, c], axis=1) @ W.T + b)  # [N, 4]


def np_D(D: ToyD, x: np.ndarray) -> np.ndarray:
    v, a, b = D.v.detach().numpy(), D.a.item(), D.b.item()
    return x @ v + a * (x**2).sum(1) + b


def np_grad_D(D: ToyD, x: np.ndarray) -> np.ndarray:
    """``grad_x D(x)`` per sample, from the closed form."""
    return D.v.detach().numpy()[None, :] + 2 * D.a.item() * x


def settings(**overrides) -> RunSettings:
    kw = dict(batch=6, batch_gpu=6, rounds=1, world_size=1, glr=1e-3, dlr=1e-3,
              betas=(0.5, 0.999), gamma=0.0, r1_interval=0, pl_weight=0.0, pl_interval=0,
              pl_batch_shrink=2, pl_decay=0.01, style_mixing=0.0, ema_kimg=0.0,
              ema_rampup=0.0, total_kimg=1.0, precision="fp32", metrics=())  # fmt: skip
    kw.update(overrides)
    return RunSettings(**kw)


class ToyFamily(NoiseToImageFamily):
    name = "toy"


def make_family(s: RunSettings, c_dim: int = 0, classifier: bool = False) -> ToyFamily:
    torch.manual_seed(0)
    family = ToyFamily(TrainingOptions(model="stylegan2"))
    family.setup({"G": ToyG(c_dim), "D": ToyD(c_dim, classifier)}, s)
    return family


def phase(name: str, reg_gain: float = 0.0) -> Phase:
    player = name[0]
    main = name.endswith("main") or name.endswith("both")
    reg = name.endswith("reg") or name.endswith("both")
    return Phase(name, player, opt=None, interval=1, main=main, reg=reg,
                 reg_gain=reg_gain if reg else 0.0)


def inputs(n: int = 6, c_dim: int = 0, seed: int = 1) -> PhaseInputs:
    g = torch.Generator().manual_seed(seed)
    real = torch.rand(n, 1, 2, 2, generator=g, dtype=torch.float64) * 2 - 1
    z = torch.randn(n, Z_DIM, generator=g, dtype=torch.float64)
    eye = torch.eye(max(c_dim, 1), dtype=torch.float64)[:, :c_dim]
    real_c = eye[torch.randint(max(c_dim, 1), [n], generator=g)]
    c = eye[torch.randint(max(c_dim, 1), [n], generator=g)]
    return PhaseInputs(real=(real, real_c), z=z, c=c, batch=n, num_slices=1, step=0)


def numeric_gradient(fn, params: list[torch.Tensor], eps: float = 1e-6) -> list[np.ndarray]:
    """Central differences of the scalar ``fn()`` (NumPy) with respect to each parameter."""
    grads = []
    for p in params:
        flat = p.data.view(-1)
        g = np.zeros(flat.numel())
        for i in range(flat.numel()):
            old = float(flat[i])
            flat[i] = old + eps
            hi = fn()
            flat[i] = old - eps
            lo = fn()
            flat[i] = old
            g[i] = (hi - lo) / (2 * eps)
        grads.append(g.reshape(p.shape))
    return grads

def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# The generator's loss per sample in gankern.train.losses' table, written out again with
# sigmoids and logs (not softplus), in NumPy.
G_FORMULAS = {
    "minimax": lambda f: np.log(1 - np_sigmoid(f)),
    "nonsaturating": lambda f: -np.log(np_sigmoid(f)),
    "wasserstein": lambda f: -f,
    "lsgan": lambda f: 0.5 * (f - 1) ** 2,
    "hinge": lambda f: -f,
}
