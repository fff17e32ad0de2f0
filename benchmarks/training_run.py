"""A training run without its data loader, stepped one training step at a time.

What the training-throughput benchmark (:mod:`benchmarks.bench_training`) runs: the
trainer's own :class:`gankern.train.run.TrainingRun` (built by the same
:func:`gankern.train.run.build_training_run` as :func:`gankern.train.loop.training_loop`),
so a step costs what a step of ``gankern train`` costs: every phase due at that step
(StyleGAN2: G main every step, path length every ``pl_interval`` steps, D main every step,
lazy R1 every ``r1_interval`` steps), the EMA update, ADA's bookkeeping. Left out is what
is not a training step: the data loader (the caller hands in real images already on the
device), the tick statistics' reduction, progress lines, snapshots and metrics.

``tests/test_benchmarks_training.py`` checks that a few steps here leave the networks
bit-identical to :func:`~gankern.train.loop.training_loop` run on the same images.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from gankern.train.distributed import DistributedContext
from gankern.train.families import get_family
from gankern.train.family import DataInfo
from gankern.train.options import TrainingOptions, check_options
from gankern.train.run import TrainingRun as _TrainerRun
from gankern.train.run import build_training_run as _build_trainer_run


class TrainingRun(_TrainerRun):
    """The trainer's run, stepped with a batch of images already on the device.

    ``data`` is what the run trains on (:func:`bench_data`), set by :func:`build_training_run`.
    """

    data: DataInfo | None = None

    def step(self, images) -> None:  # type: ignore[override]
        """One training step on ``images``: ``[batch, C, H, W]`` floats in [-1, 1] on the
        device (the loop's real images after its uint8 -> float conversion), unlabeled; for
        paired and unpaired data a tuple ``(A, B)`` of such batches."""
        s = self.settings
        if isinstance(images, tuple):  # image-to-image data: the rounds' slices of each side
            self._check_pair(images)
            super().step([tuple(t[r :: s.rounds] for t in images) for r in range(s.rounds)])
            return
        d = self.data
        expected = (s.batch, d.channels, d.resolution, d.resolution)
        if not isinstance(images, torch.Tensor) or tuple(images.shape) != expected:
            got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images)
            raise ValueError(f"images must have shape {expected}, got {got}")
        c_dim = self.family.c_dim
        labels = torch.zeros([s.batch, c_dim], device=images.device)
        if c_dim:  # the reals' labels: the classes in turn
            labels[torch.arange(s.batch), torch.arange(s.batch) % c_dim] = 1
        real = [(images[r :: s.rounds], labels[r :: s.rounds]) for r in range(s.rounds)]
        super().step(real)


    def _check_pair(self, images: tuple) -> None:
        d = self.data
        expected = [(self.settings.batch, c, d.resolution, d.resolution)
                    for c in (d.channels, d.channels_b)]
        got = [tuple(t.shape) if isinstance(t, torch.Tensor) else type(t) for t in images]
        if got != expected:
            raise ValueError(f"images must be two batches of shapes {expected}, got {got}")


def bench_data(opts: TrainingOptions, resolution: int, img_channels: int = 3) -> DataInfo:
    """What a benchmark's synthetic data are: images (RGB unless said otherwise), with 10
    classes for the models that always train on labels; pairs of such images (both sides
    with ``img_channels``) for the image-to-image models' paired and unpaired data."""
    family = get_family(opts.model)
    c_dim = 10 if family.labels == "always" else 0
    kind = family.data_kind
    return DataInfo(name="synthetic", kind=kind, resolution=resolution, channels=img_channels,
                    c_dim=c_dim, channels_b=None if kind == "images" else img_channels)


def build_training_run(
    opts: TrainingOptions,
    resolution: int,
    img_channels: int = 3,
    device: torch.device | str = "cpu",
    ada_p: float | None = None,
) -> TrainingRun:
    """Networks, loss, optimizers and phases for ``opts``, as the training loop sets them up.

    Args:
        opts: the training options (``model``, ``cfg``, ``impl``, ``precision``, ``batch``,
            ``batch_gpu``, ``aug``, ``channels_last``, ``extra``, ...); ``opts.data`` and the
            options about snapshots, logs and length are not used.
        resolution, img_channels: the images the run trains on (what the dataset would
            tell the loop).
        device: where to train.
        ada_p: with ``aug="ada"``, the augmentation probability to start from (None: the
            pipeline's own start, 0); ADA still adjusts it as the run goes.
    """
    check_options(opts)
    device = torch.device(device)
    if ada_p is not None and opts.aug != "ada":
        raise ValueError(f"ada_p is only used with aug='ada', got aug={opts.aug!r}")
    if ada_p is not None and not (isinstance(ada_p, (int, float)) and 0 <= ada_p <= 1):
        raise ValueError(f"ada_p must be a number in [0, 1], got {ada_p!r}")
    data = bench_data(opts, resolution, img_channels)
    labels = None
    if data.c_dim:  # every class equally often
        labels = np.eye(data.c_dim, dtype=np.float32)
    trainer_run = _build_trainer_run(opts, data, DistributedContext(device=device), labels)
    run = TrainingRun(**{f.name: getattr(trainer_run, f.name) for f in dataclasses.fields(
        trainer_run)})
    run.data = data
    if run.augment_pipe is not None and ada_p is not None:
        run.augment_pipe.p.fill_(float(ada_p))
    run.counters["nimg"] = run.family.benchmark_nimg()  # a progressive model: fully grown
    return run
