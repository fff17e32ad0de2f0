"""The built-in feature extractor: a small CNN classifier of the built-in digits.

It needs no download: ``build_digits_extractor`` trains it from scratch on
``gankern.data.load_digits`` with a fixed recipe (seeds, one CPU thread, deterministic
algorithms), which takes well under a minute on a laptop CPU, and saves it as safetensors
in the cache (``<cache>/metrics/digits_extractor-<recipe hash>.safetensors``). The file name
carries a hash of the recipe and of the training images, so a changed recipe or dataset
never reuses stale weights. ``load_digits_extractor`` loads it, building it first (with a
line on stderr) when it is not there yet; ``gankern metrics --build-extractor digits``
builds it ahead of time.

Its metrics are labelled with the suffix ``_digits`` (``fid_digits``, ``kid_digits``,
``is_digits``, ``precision_digits``...): they measure how digit-like images are to this
network, and are not comparable with Inception FID or with another extractor's numbers.

Input convention: uint8 images of any size; RGB is averaged to gray, the image is resized
to 32 x 32 (bilinear, antialiased when shrinking) and mapped to [-1, 1]. Features: the 128
activations of the penultimate layer; probabilities: the softmax over the 10 digits.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gankern.metrics.cache import atomic_write, file_sha256, metrics_cache_dir, stable_hash
from gankern.metrics.extractor import FeatureExtractor

DIGITS_RESOLUTION = 32
DIGITS_FEATURE_DIM = 128
DIGITS_NUM_CLASSES = 10
_ARCH_VERSION = "digitsnet-v1"


class DigitsFeatureNet(FeatureExtractor):
    """Four 3x3 convolutions in three stages (32 -> 16 -> 8 -> 4 px), then two linear layers."""

    name = "digits"
    feature_dim = DIGITS_FEATURE_DIM
    num_classes = DIGITS_NUM_CLASSES

    def __init__(self):
        super().__init__()
        self.identity = "digits-random"
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 32, 3, padding=1)
        self.conv4 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 4 * 4, DIGITS_FEATURE_DIM)
        self.fc2 = nn.Linear(DIGITS_FEATURE_DIM, DIGITS_NUM_CLASSES)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``[N, C, H, W]`` with values 0..255 (uint8 or float) -> ``[N, 1, 32, 32]``
        in [-1, 1]."""
        x = images.to(self.device, torch.float32)
        if x.shape[1] == 3:
            x = x.mean(dim=1, keepdim=True)
        if x.shape[2:] != (DIGITS_RESOLUTION, DIGITS_RESOLUTION):
            x = F.interpolate(x, size=(DIGITS_RESOLUTION, DIGITS_RESOLUTION), mode="bilinear",
                              align_corners=False, antialias=True)
        return x / 127.5 - 1

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The activations of each stage (32, 16 and 8 px) of a preprocessed batch."""
        a = F.relu(self.conv1(x))
        b = F.relu(self.conv3(F.relu(self.conv2(F.avg_pool2d(a, 2)))))
        c = F.relu(self.conv4(F.avg_pool2d(b, 2)))
        return [a, b, c]

    def trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features ``[N, 128]`` and logits ``[N, 10]`` of a preprocessed batch."""
        x = F.avg_pool2d(self.feature_maps(x)[-1], 2)
        features = F.relu(self.fc1(x.flatten(1)))
        return features, self.fc2(features)

    def perceptual_distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """An LPIPS-like distance ``[N]`` between float images in [-1, 1].

        Per stage: features normalized to unit length over channels, squared difference
        summed over channels and averaged over pixels; the stages are summed.
        """
        maps_a = self.feature_maps(self.preprocess((a.float() + 1) * 127.5))
        maps_b = self.feature_maps(self.preprocess((b.float() + 1) * 127.5))
        total = 0
        for fa, fb in zip(maps_a, maps_b, strict=True):
            fa = fa / (fa.norm(dim=1, keepdim=True) + 1e-10)
            fb = fb / (fb.norm(dim=1, keepdim=True) + 1e-10)
            total = total + (fa - fb).pow(2).sum(1).mean(dim=(1, 2))
        return total

    def extract(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features, logits = self.trunk(self.preprocess(images))
        return {"features": features, "probs": torch.softmax(logits, dim=1)}


@dataclass(frozen=True)
class DigitsRecipe:
    """Everything that determines the trained weights (hashed into the file name)."""

    steps: int = 600
    batch_size: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    max_shift: int = 3  # random translations, in pixels, for robustness to small offsets
    noise_std: float = 0.1  # gaussian pixel noise (in [-1, 1] units) added while training
    validation_fraction: float = 0.1
    seed: int = 0
    arch: str = _ARCH_VERSION

    def key(self, data_digest: str) -> str:
        return stable_hash({"recipe": asdict(self), "data": data_digest})


def _digits_data() -> tuple[np.ndarray, np.ndarray, str]:
    from gankern.data.builtin import load_digits

    images, labels = load_digits(resolution=DIGITS_RESOLUTION)
    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()[:16]
    return images, labels, digest


def digits_extractor_path(recipe: DigitsRecipe | None = None) -> Path:
    """Where the extractor trained with ``recipe`` (default: the standard one) is cached."""
    recipe = recipe or DigitsRecipe()
    return metrics_cache_dir() / f"digits_extractor-{recipe.key(_digits_data()[2])}.safetensors"


@contextlib.contextmanager
def _deterministic_cpu():
    """One thread and deterministic algorithms: the same weights on every run."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _augment(x: torch.Tensor, recipe: DigitsRecipe, gen: torch.Generator) -> torch.Tensor:
    # Random translation: pad with the background value (-1), crop at a random offset.
    s = recipe.max_shift
    if s > 0:
        n, _, h, w = x.shape
        padded = F.pad(x, (s, s, s, s), value=-1.0)
        dy, dx = torch.randint(0, 2 * s + 1, (2, n, 1), generator=gen)
        rows = (dy + torch.arange(h))[:, :, None]  # [n, h, 1]
        cols = (dx + torch.arange(w))[:, None, :]  # [n, 1, w]
        x = padded[torch.arange(n)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)
    if recipe.noise_std > 0:
        x = x + torch.randn(x.shape, generator=gen) * recipe.noise_std
    return x


def train_digits_extractor(
    recipe: DigitsRecipe | None = None, log=None
) -> tuple[DigitsFeatureNet, dict]:
    """Train the digits extractor on the CPU, deterministically.

    Returns:
        ``(model, info)``: the trained network (in eval mode) and a dict with the recipe,
        the data digest, the validation accuracy and the training time.
    """
    recipe = recipe or DigitsRecipe()
    images, labels, digest = _digits_data()
    start = time.perf_counter()
    with _deterministic_cpu():
        # Seed only the CPU generator (module initialization draws from it); fork_rng
        # restores it afterwards, and CUDA generators are left alone.
        torch.default_generator.manual_seed(recipe.seed)
        gen = torch.Generator().manual_seed(recipe.seed)
        order = torch.randperm(len(images), generator=gen)
        num_val = int(round(len(images) * recipe.validation_fraction))
        val_idx, train_idx = order[:num_val], order[num_val:]
        model = DigitsFeatureNet()
        x_all = model.preprocess(torch.from_numpy(images))
        y_all = torch.from_numpy(labels)
        x_train, y_train = x_all[train_idx], y_all[train_idx]
        opt = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate,
                                weight_decay=recipe.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.learning_rate,
                                                    total_steps=recipe.steps)
        model.train()
        perm, cursor = torch.randperm(len(x_train), generator=gen), 0
        for step in range(recipe.steps):
            if cursor + recipe.batch_size > len(perm):
                perm, cursor = torch.randperm(len(x_train), generator=gen), 0
            idx = perm[cursor : cursor + recipe.batch_size]
            cursor += recipe.batch_size
            _, logits = model.trunk(_augment(x_train[idx], recipe, gen))
            loss = F.cross_entropy(logits, y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if log is not None and (step + 1) % max(1, recipe.steps // 5) == 0:
                log(f"  step {step + 1}/{recipe.steps}  loss {loss.item():.4f}")
        model.eval()
        with torch.no_grad():
            predicted = model.trunk(x_all[val_idx])[1].argmax(1)
            accuracy = float((predicted == y_all[val_idx]).float().mean())
    info = {
        "recipe": asdict(recipe),
        "data_digest": digest,
        "validation_accuracy": accuracy,
        "num_validation": num_val,
        "train_seconds": round(time.perf_counter() - start, 2),
    }
    model.requires_grad_(False)
    return model, info


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def build_digits_extractor(recipe: DigitsRecipe | None = None, *, force: bool = False,
                           log=_stderr) -> Path:
    """Train the digits extractor and save it in the cache; returns the file's path.

    Does nothing when the file is already there (unless ``force``).
    """
    from safetensors.torch import save_file

    recipe = recipe or DigitsRecipe()
    path = digits_extractor_path(recipe)
    if path.is_file() and not force:
        return path
    if log is not None:
        log(f"gankern: training the built-in digits feature extractor ({recipe.steps} steps on "
            f"the CPU, about half a minute); it is cached at {path}")
    model, info = train_digits_extractor(recipe, log=log)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    metadata = {"gankern": "digits_extractor", "info": json.dumps(info, sort_keys=True)}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=metadata))
    if log is not None:
        log(f"gankern: digits extractor ready: validation accuracy "
            f"{info['validation_accuracy']:.3f} on {info['num_validation']} held-out images, "
            f"trained in {info['train_seconds']:.1f} s")
    return path


def load_digits_extractor(
    weights: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    *,
    recipe: DigitsRecipe | None = None,
    build: bool = True,
) -> DigitsFeatureNet:
    """The trained digits extractor.

    Args:
        weights: a safetensors file written by :func:`build_digits_extractor`; default:
            the cached file of ``recipe`` (built now if missing and ``build`` is true).
        device: where to put the network (default: CUDA when available).
        recipe: the training recipe (default: the standard one).
        build: train and cache the extractor when its file is missing.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if weights is None:
        path = digits_extractor_path(recipe)
        if not path.is_file():
            if not build:
                raise FileNotFoundError(
                    f"the digits extractor is not built yet ({path}); run "
                    f"`gankern metrics --build-extractor digits`"
                )
            build_digits_extractor(recipe)
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"weights: digits extractor file {path} does not exist")
    model = DigitsFeatureNet()
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"weights: {path} is not a readable safetensors file ({exc})") from exc
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if got != expected:
        raise ValueError(f"weights: {path} does not hold a digits extractor "
                         f"(tensors {sorted(got)[:4]}..., expected {sorted(expected)[:4]}...)")
    model.load_state_dict(state)
    model.identity = f"digits-{file_sha256(path)}"
    model.requires_grad_(False)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return model.to(device).eval()
