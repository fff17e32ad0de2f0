"""Everything a run checks before it writes anything: :func:`plan_run`.

A training run that is going to fail should fail at once, with one clear message, before
it creates its run directory, starts processes or trains for an hour. :func:`plan_run`
resolves the options (the built-in data, ``--resume auto``, ``--init``), checks that the ops'
backend runs on the device, opens the data and decodes every image once, resolves the
network configuration and settings for the number of processes, checks the batch against
the data and the training length, loads the checkpoint to resume from, and prepares the
snapshot metrics (their weights files). The training loop runs it first; ``gankern train
--gpus N`` runs it once in the launching process before any worker starts.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gankern.fileio import check_can_create
from gankern.ops import require_backend
from gankern.train.auto_resume import AUTO, find_auto_resume
from gankern.train.checkpoint import load_checkpoint, resolve_resume_path
from gankern.train.data import describe_data, open_training_data
from gankern.train.families import get_family
from gankern.train.family import DataInfo, GANFamily, NetworkConfig
from gankern.train.init_weights import InitWeights, merge_extra
from gankern.train.options import TrainingOptions, check_options
from gankern.train.run import resolve_run_config
from gankern.train.settings import RunSettings


@dataclass
class RunPlan:
    """A run, checked and resolved, before anything is built or written.

    Attributes:
        opts: the options with the data, ``resume`` and ``--init``'s architecture resolved.
        family: the model family, made from ``opts``.
        dataset: the opened (and checked) training data.
        data: what they are.
        labels: the dataset's labels ``[N, c_dim]`` (conditional models), or None.
        resume_path: the checkpoint to continue from, or None.
        resumed: its ``(tensors, metadata)``, or None.
        init: the published weights to start from (``--init``, new runs only), or None.
        precision, config, settings: see :func:`gankern.train.run.resolve_run_config`.
    """

    opts: TrainingOptions
    family: GANFamily
    dataset: object
    data: DataInfo
    labels: np.ndarray | None
    resume_path: Path | None
    resumed: tuple[dict, dict] | None
    init: InitWeights | None
    precision: str
    config: NetworkConfig
    settings: RunSettings


def resolve_options(opts: TrainingOptions, print_fn: Callable = print) -> TrainingOptions:
    """``opts`` checked, with the built-in data made explicit and ``resume="auto"`` turned
    into a snapshot path (or None: no earlier run of these options, a new one starts)."""
    check_options(opts)
    family_cls = get_family(opts.model)
    if opts.data is None:  # the model family's built-in dataset
        opts = dataclasses.replace(opts, data=family_cls.default_data)
    if opts.resume == AUTO:
        found = find_auto_resume(opts, family_cls.default_data)
        if found is None:
            print_fn(
                f"--resume auto: no earlier run of these options in {opts.outdir}; "
                "starting a new one",
                flush=True,
            )
        else:
            print_fn(f"--resume auto: continuing {found.parent} from {found.name}", flush=True)
        opts = dataclasses.replace(opts, resume=None if found is None else str(found))
    return opts


def plan_run(
    opts: TrainingOptions,
    world_size: int,
    device: torch.device,
    *,
    check_data: bool = True,
    is_main: bool = True,
    print_fn: Callable = print,
) -> RunPlan:
    """Check and resolve a run (see the module docstring).

    Args:
        opts: the options (:func:`resolve_options` is applied).
        world_size: the number of processes that will train.
        device: the device of this process.
        check_data: decode every training image once now (a run whose launcher already
            did skips it in the workers).
        is_main: this is the process that writes (it prepares the metrics' extractors and
            shows the data check's progress bar).
        print_fn: where messages go.

    Raises:
        ValueError, TypeError, OSError, BackendUnavailableError: naming what is wrong.
    """
    opts = resolve_options(opts, print_fn)
    require_backend(opts.impl, device, "--impl")
    resume_path = resolve_resume_path(opts.resume) if opts.resume else None
    resumed = load_checkpoint(resume_path) if resume_path else None
    if resumed is None and is_main:
        check_can_create(opts.run_dir or opts.outdir, "--outdir")

    family_cls = get_family(opts.model)
    dataset = open_training_data(
        opts, family_cls(opts), check=check_data, progress=check_data and is_main
    )
    data = describe_data(dataset, family_cls.data_kind)
    init = None
    if opts.init is not None and resumed is None:
        init = family_cls.init_weights(opts.init, data)
        opts = merge_extra(opts, init)
    family = family_cls(opts)
    precision, config, settings = resolve_run_config(opts, data, family, world_size, device)
    check_length(settings, data, opts)
    labels = None
    if data.c_dim > 0:
        labels = np.stack([dataset.get_label(i) for i in range(len(dataset))]).astype(np.float32)
    if is_main and settings.metrics:
        from gankern.train.snapshot_metrics import prepare_snapshot_metrics

        prepare_snapshot_metrics(settings.metrics)
    return RunPlan(
        opts=opts,
        family=family,
        dataset=dataset,
        data=data,
        labels=labels,
        resume_path=resume_path,
        resumed=resumed,
        init=init,
        precision=precision,
        config=config,
        settings=settings,
    )


def check_length(settings: RunSettings, data: DataInfo, opts: TrainingOptions) -> None:
    """A batch larger than the whole training length is an error (one step would overshoot
    it: minutes of silence on one giant step); one larger than the dataset is a warning."""
    total = settings.total_kimg * 1000
    if settings.batch > total:
        raise ValueError(
            f"the batch ({settings.batch} images) is larger than the whole training length "
            f"(kimg {settings.total_kimg:g} = {total:g} images): raise --kimg to at least "
            f"{settings.batch / 1000:g} or lower --batch"
        )
    if settings.batch > data.num_images:
        warnings.warn(
            f"the batch ({settings.batch} images) is larger than the dataset ({data.num_images} "
            f"images of {data.name}): every step repeats images",
            RuntimeWarning,
            stacklevel=2,
        )
