"""``gankern train``: train a StyleGAN2 (by default a small one on the built-in digits).

With no arguments it trains the ``digits`` configuration (a small StyleGAN2) on
scikit-learn's handwritten digits on whatever device is present: recognizable digits in
40 kimg. ``--gpus N`` starts N processes (one per GPU; on a machine
without GPUs, N CPU processes with gloo); under ``torchrun`` the processes come from
torchrun. ``--resume`` continues a run from its newest snapshot (or a given checkpoint),
with the options saved in the checkpoint unless given again on the command line.
"""

from __future__ import annotations

import argparse
import sys

# Options that do not change what is computed: changing them on resume keeps the trajectory.
RESUME_SAFE = {
    "kimg", "kimg_per_tick", "snap", "metrics", "keep_snapshots", "outdir", "run_dir",
    "resume", "num_workers", "tensorboard", "max_nonfinite_steps", "device", "gpus", "impl",
}  # fmt: skip


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def _nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


def _metric_list(text: str) -> list[str]:
    if text.strip().lower() in ("none", ""):
        return []
    return [m.strip() for m in text.split(",") if m.strip()]


# argparse dest -> TrainingOptions field (where they differ).
_FIELD_OF = {"tick": "kimg_per_tick", "workers": "num_workers", "skip_bad_files": "on_bad_file",
             "keep": "keep_snapshots"}  # fmt: skip


def add_parser(subparsers) -> None:
    from gankern.train.options import AUG_MODES, DEVICES, PRECISIONS

    p = subparsers.add_parser(
        "train",
        help="train a StyleGAN2 (no arguments: a small one on the built-in digits)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("data")
    g.add_argument("--data", help="folder or .zip of images, or builtin:digits (default)")
    g.add_argument("--resolution", type=_int_at_least(4),
                   help="image size of a built-in dataset (default 32 for the digits)")
    g.add_argument("--cond", action="store_true", default=None,
                   help="conditional model on the dataset's labels")
    g.add_argument("--mirror", action="store_true", default=None, help="add x-flipped images")
    g.add_argument("--max-images", type=_int_at_least(1), help="use at most this many images")
    g.add_argument("--skip-bad-files", action="store_true", default=None,
                   help="skip (and count) unreadable images instead of stopping")
    g.add_argument("--workers", type=_int_at_least(0), help="data loading processes")
    g = p.add_argument_group("networks and numerics")
    g.add_argument("--cfg", help="network configuration: digits (the default on the built-in "
                                 "digits), tiny, small, auto (the default otherwise), cifar, "
                                 "paper256, paper512, paper1024, stylegan2")
    g.add_argument("--impl", choices=("auto", "cuda", "triton", "ref"), help="op backend")
    g.add_argument("--precision", choices=PRECISIONS,
                   help="fp32, fp16 (the config's fp16 layers), bf16, or auto (default)")
    g.add_argument("--channels-last", action="store_true", default=None,
                   help="channels_last memory format")
    g.add_argument("--tf32", action=argparse.BooleanOptionalAction, default=None,
                   help="allow TF32 matmuls/convolutions on GPUs (default: off)")
    g = p.add_argument_group("optimization")
    g.add_argument("--batch", type=_int_at_least(1), help="total batch size")
    g.add_argument("--batch-gpu", type=_int_at_least(1),
                   help="images per process per pass (smaller: gradient accumulation)")
    g.add_argument("--gamma", type=_nonneg_float, help="R1 weight")
    g.add_argument("--lr", type=_positive_float, help="learning rate of G and D")
    g.add_argument("--aug", choices=AUG_MODES,
                   help="augmentation (default: ada; noaug on the built-in digits)")
    g.add_argument("--seed", type=_int_at_least(0), help="random seed (default 0)")
    g = p.add_argument_group("length and output")
    g.add_argument("--kimg", type=_positive_float, help="training length in thousands of images")
    g.add_argument("--tick", type=_positive_float, help="kimg between progress lines")
    g.add_argument("--snap", type=_int_at_least(1), help="ticks between snapshots")
    g.add_argument("--keep", type=_int_at_least(0), help="keep only the newest N checkpoints")
    g.add_argument("--metrics", type=_metric_list,
                   help="comma-separated metrics at snapshots, or none (default: fid_digits "
                        "on the built-in digits)")
    g.add_argument("--outdir", help="parent of the run directories (default training-runs)")
    g.add_argument("--resume", help="checkpoint file or run directory to continue")
    g = p.add_argument_group("processes")
    g.add_argument("--gpus", type=_int_at_least(1),
                   help="processes to start (one per GPU; CPU processes without GPUs)")
    g.add_argument("--device", choices=DEVICES, help="auto (default), cuda or cpu")
    p.set_defaults(func=run)


def options_from_args(args) -> tuple:
    """``(TrainingOptions, changed_on_resume)`` from the parsed arguments."""
    from gankern.train.checkpoint import load_checkpoint, resolve_resume_path
    from gankern.train.options import TrainingOptions

    given = {}
    for dest, value in vars(args).items():
        if dest in ("func", "command") or value is None:
            continue
        if dest == "lr":
            given["glr"] = given["dlr"] = value
            continue
        field = _FIELD_OF.get(dest, dest)
        if dest == "skip_bad_files":
            value = "skip" if value else "raise"
        given[field] = value
    changed = []
    if args.resume:
        _, meta = load_checkpoint(resolve_resume_path(args.resume))
        base = TrainingOptions.from_dict(meta["options"]).to_dict()
        changed = sorted(k for k, v in given.items()
                         if k not in RESUME_SAFE and base.get(k) != v)
        base.update(given)
        return TrainingOptions.from_dict(base), changed
    return TrainingOptions(**given), changed


def _spawned(opts_dict: dict) -> None:
    from gankern.train.distributed import shutdown_distributed
    from gankern.train.loop import training_loop
    from gankern.train.options import TrainingOptions

    try:
        training_loop(TrainingOptions.from_dict(opts_dict))
    finally:
        shutdown_distributed()


def run(args) -> int:
    import torch

    from gankern.train.checkpoint import CheckpointError
    from gankern.train.distributed import launched_by_torchrun, shutdown_distributed, spawn
    from gankern.train.loop import NonFiniteTrainingError, training_loop
    from gankern.train.options import check_options

    def fail(message: str, code: int = 2) -> int:
        print(f"gankern train: error: {message}", file=sys.stderr)
        return code

    try:
        opts, changed = options_from_args(args)
        check_options(opts)
    except (ValueError, TypeError, FileNotFoundError, CheckpointError) as exc:
        return fail(str(exc))
    if changed:
        print(f"gankern train: warning: resuming with changed options {changed}: the run "
              "will not continue the saved trajectory exactly", file=sys.stderr)
    try:
        if opts.gpus > 1 and not launched_by_torchrun():
            if opts.device != "cpu" and torch.cuda.is_available():
                if opts.gpus > torch.cuda.device_count():
                    return fail(f"--gpus {opts.gpus} but only {torch.cuda.device_count()} "
                                "GPUs are visible")
            elif opts.device == "cuda":
                return fail("--device cuda but no CUDA device is available")
            spawn(_spawned, opts.gpus, (opts.to_dict(),))
        else:
            try:
                training_loop(opts)
            finally:
                shutdown_distributed()  # under torchrun: leave the process group cleanly
    except NonFiniteTrainingError as exc:
        print(f"gankern train: {exc}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, FileNotFoundError, CheckpointError) as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        print("gankern train: interrupted; resume with --resume and the run directory",
              file=sys.stderr)
        return 130
    return 0
