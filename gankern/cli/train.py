"""``gankern train``: train a GAN (by default a small StyleGAN2 on the built-in digits).

``--model NAME`` picks the model family (``gankern train --model NAME --help`` lists its
options, with the defaults of its default configuration); every hyperparameter defaults to
the paper's value for the chosen ``--cfg``. With no arguments it trains StyleGAN2's
``digits`` configuration on scikit-learn's handwritten digits on whatever device is
present: recognizable digits in 40 kimg. ``--gpus N`` starts N processes (one per GPU; on a
machine without GPUs, N CPU processes with gloo); under ``torchrun`` the processes come
from torchrun. ``--resume`` continues a run from its newest snapshot (or a given
checkpoint), with the options saved in the checkpoint unless given again here.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from gankern.cli.errors import CommandParser, report_failure
from gankern.train.families import DEFAULT_MODEL, family_names, get_family
from gankern.train.objective_names import ADVERSARIAL_LOSSES, D_REGULARIZERS
from gankern.train.options import RESUME_SAFE as RESUME_SAFE_OPTIONS

# Options that do not change what is computed: changing them on resume keeps the trajectory.
RESUME_SAFE = set(RESUME_SAFE_OPTIONS)


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


def _fraction(text: str) -> float:
    value = _nonneg_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
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


def _betas(text: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 2 or not all(0 <= b < 1 for b in values):
        raise argparse.ArgumentTypeError(f"expected two numbers in [0, 1) like 0.5,0.999, "
                                         f"got {text!r}")
    return values


def _metric_list(text: str) -> list[str]:
    if text.strip().lower() in ("none", ""):
        return []
    return [m.strip() for m in text.split(",") if m.strip()]


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


# argparse dest -> TrainingOptions field (where they differ).
_FIELD_OF = {"tick": "kimg_per_tick", "workers": "num_workers", "skip_bad_files": "on_bad_file",
             "keep": "keep_snapshots"}  # fmt: skip

# Hyperparameter options (TrainingOptions fields, shown when the model uses them):
# name -> (flag, type, metavar/choices, help).
_KNOB_ARGS = {
    "optimizer": ("--optimizer", str, ("adam", "rmsprop", "sgd"), "optimizer of G and D"),
    "glr": ("--glr", _positive_float, None, "generator learning rate"),
    "dlr": ("--dlr", _positive_float, None, "discriminator learning rate"),
    "betas": ("--betas", _betas, None,
              "Adam betas, e.g. 0,0.9 (RMSprop: alpha is the second; SGD: momentum the first)"),
    "n_critic": ("--n-critic", _int_at_least(1), None, "D steps per G step"),
    "lr_schedule": ("--lr-schedule", str, ("constant", "linear"),
                    "learning rates constant, or falling linearly to 0 at the end"),
    "lr_decay_start": ("--lr-decay-start", _fraction, None,
                       "linear schedule: fraction of training before the decay starts"),
    "loss": ("--loss", str, ADVERSARIAL_LOSSES, "adversarial loss"),
    "d_reg": ("--d-reg", str, D_REGULARIZERS,
              "discriminator regularizer: R1 (reals), R2 (fakes), gp (WGAN-GP)"),
    "gamma": ("--gamma", _nonneg_float, None, "weight of the D regularizer (R1 gamma, GP lambda)"),
    "r1_interval": ("--r1-interval", _int_at_least(0), None,
                    "lazy D regularization every N steps (0: every step, with the main loss)"),
    "clip": ("--clip", _positive_float, None, "WGAN weight clipping bound of D's parameters"),
    "pl_weight": ("--pl-weight", _nonneg_float, None, "path length regularization weight"),
    "pl_interval": ("--pl-interval", _int_at_least(0), None, "lazy path length every N steps"),
    "pl_batch_shrink": ("--pl-batch-shrink", _int_at_least(1), None,
                        "path length on batch / N samples"),
    "pl_decay": ("--pl-decay", _positive_float, None, "decay of the path length mean"),
    "style_mixing": ("--style-mixing", _fraction, None, "style mixing probability"),
    "ema_kimg": ("--ema-kimg", _nonneg_float, None,
                 "half-life of G's moving average in kimg (0: none)"),
    "ema_rampup": ("--ema-rampup", _nonneg_float, None, "EMA ramp-up ratio (0: none)"),
    "ema_start_kimg": ("--ema-start-kimg", _nonneg_float, None,
                       "the moving average copies G until this many kimg"),
}


def peek_model(argv: list[str]) -> str:
    """The ``--model`` of a command line (or of its ``--resume`` checkpoint, or the
    default), without validating anything else."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--model")
    pre.add_argument("--resume")
    known, _ = pre.parse_known_args(argv)
    if known.model:
        return known.model
    if known.resume:
        try:
            from gankern.train.checkpoint import load_checkpoint, resolve_resume_path
            from gankern.train.networks import checkpoint_model

            return checkpoint_model(load_checkpoint(resolve_resume_path(known.resume))[1])
        except (OSError, ValueError):
            return DEFAULT_MODEL  # reported when the options are resolved
    return DEFAULT_MODEL


def _defaults_text(family_cls):
    """``(cfg name, {knob: default})`` of the model's default configuration on the
    built-in digits, for the help text."""
    from gankern.train.options import TrainingOptions

    cfg = family_cls.default_config_name(family_cls.help_data().name)
    family = family_cls(TrainingOptions(model=family_cls.name))
    config = family.network_config(cfg, family_cls.help_data(), 1, "fp32", {})
    return cfg, dataclasses.asdict(config.recommended)


def _fmt(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(_fmt(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def build_parser(model: str) -> argparse.ArgumentParser:
    """The full ``gankern train`` parser for one model family."""
    from gankern.train.options import AUG_MODES, DEVICES, PRECISIONS

    family_cls = get_family(model)
    cfg_default, recommended = _defaults_text(family_cls)
    models = "\n".join(f"  {name:<12} {get_family(name).title}" for name in family_names())
    p = CommandParser(
        prog="gankern train",
        description=__doc__,
        epilog=f"models (--model):\n{models}\n\nHyperparameter defaults above are those of "
               f"--cfg {cfg_default} (the default on the built-in digits); each "
               "configuration recommends its own.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("model")
    g.add_argument("--model", choices=family_names(),
                   help=f"model family (default {DEFAULT_MODEL}; this help: {model})")
    g.add_argument("--init", metavar="FILE",
                   help="start a new run from published weights (fine-tuning): an official "
                        "StyleGAN2-ADA/StyleGAN3 .pkl, a rosinality .pt or a gankern "
                        "checkpoint; its resolution and channels must fit the data "
                        "(stylegan2 only)")
    g.add_argument("--cfg",
                   help=f"named configuration of {model}, its networks and recommended "
                        f"hyperparameters: {', '.join(family_cls.config_names())} (default "
                        f"{cfg_default} on the built-in data)")
    g = p.add_argument_group("data")
    g.add_argument("--data", help="training data: a folder or .zip of images, or a built-in "
                                  f"dataset (default {family_cls.help_data().name})")
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
    g.add_argument("--impl", choices=("auto", "cuda", "triton", "ref"),
                   help="backend of the fused ops (default auto)")
    g.add_argument("--precision", choices=PRECISIONS,
                   help="fp32, fp16, bf16, or auto (default: fp16 on GPUs, fp32 on CPUs)")
    g.add_argument("--channels-last", action="store_true", default=None,
                   help="channels_last memory format")
    g.add_argument("--tf32", action=argparse.BooleanOptionalAction, default=None,
                   help="allow TF32 matmuls/convolutions on GPUs (default: off)")
    g = p.add_argument_group(f"optimization and objective ({model})")
    g.add_argument("--batch", type=_int_at_least(1),
                   help=f"total batch size (default {recommended['batch']})")
    g.add_argument("--batch-gpu", type=_int_at_least(1),
                   help="images per process per pass (smaller: gradient accumulation)")
    if {"glr", "dlr"} <= set(family_cls.knobs):  # a G-only model (SRResNet) has --glr alone
        g.add_argument("--lr", type=_positive_float,
                       help="learning rate of G and D (default: --glr and --dlr below)")
    for name, (flag, kind, choices, text) in _KNOB_ARGS.items():
        if name not in family_cls.knobs:
            continue
        default = recommended.get(name)
        suffix = "" if default is None else f" (default {_fmt(default)})"
        if choices is not None:
            g.add_argument(flag, dest=name, choices=choices, help=text + suffix)
        else:
            g.add_argument(flag, dest=name, type=kind, help=text + suffix)
    if family_cls.options_type is not None:
        g = p.add_argument_group(f"{model} options")
        for f in dataclasses.fields(family_cls.options_type):
            _add_model_option(g, f)
    g = p.add_argument_group("augmentation")
    aug_default = family_cls.default_aug or "ada; noaug on the built-in data"
    g.add_argument("--aug", choices=AUG_MODES,
                   help=f"augmentation of D's inputs (default: {aug_default})")
    g = p.add_argument_group("length and output")
    g.add_argument("--kimg", type=_positive_float,
                   help=f"training length in thousands of images (default "
                        f"{_fmt(recommended['total_kimg'])})")
    g.add_argument("--tick", type=_positive_float, help="kimg between progress lines (default 1)")
    g.add_argument("--snap", type=_int_at_least(1), help="ticks between snapshots (default 5)")
    g.add_argument("--keep", type=_int_at_least(0),
                   help="keep only the newest N checkpoints (default 0: all)")
    g.add_argument("--metrics", type=_metric_list,
                   help="comma-separated metrics at snapshots, or none (default: fid_digits "
                        "on the built-in digits, none on your own data)")
    g.add_argument("--seed", type=_int_at_least(0), help="random seed (default 0)")
    g.add_argument("--outdir", help="parent of the run directories (default training-runs)")
    g.add_argument("--resume",
                   help="checkpoint file or run directory to continue; auto: the newest good "
                        "snapshot of the newest run of these options in --outdir, or a new "
                        "run (for job scripts that are requeued)")
    g = p.add_argument_group("processes")
    g.add_argument("--gpus", type=_int_at_least(1),
                   help="processes to start (one per GPU; CPU processes without GPUs)")
    g.add_argument("--device", choices=DEVICES, help="auto (default), cuda or cpu")
    return p


def _add_model_option(group, f) -> None:
    flag = "--" + f.name.replace("_", "-")
    text = f.metadata.get("help", "")
    choices = f.metadata.get("choices")
    default = f.default
    suffix = f" (default {_fmt(default)})"
    dest = f"model_option__{f.name}"
    metavar = f.name.upper()  # not the internal dest's name
    if choices:
        group.add_argument(flag, dest=dest, choices=choices, help=text + suffix)
    elif isinstance(default, bool):
        group.add_argument(flag, dest=dest, type=_bool, metavar="BOOL", help=text + suffix)
    elif isinstance(default, int):
        group.add_argument(flag, dest=dest, type=_int_at_least(0), metavar=metavar,
                           help=text + suffix)
    elif isinstance(default, float):
        group.add_argument(flag, dest=dest, type=_nonneg_float, metavar=metavar,
                           help=text + suffix)
    else:
        group.add_argument(flag, dest=dest, metavar=metavar, help=text + suffix)


def add_parser(subparsers) -> None:
    # The options depend on --model, so the real parser is built when the command runs;
    # this one only collects the arguments (every argument, "--help" included).
    p = subparsers.add_parser(
        "train", help="train a GAN (no arguments: a small StyleGAN2 on the built-in digits)",
        add_help=False, prefix_chars="\0",
    )  # fmt: skip
    p.add_argument("argv", nargs=argparse.REMAINDER)
    p.set_defaults(func=run)


def options_from_args(args) -> tuple:
    """``(TrainingOptions, changed_on_resume)`` from the parsed arguments."""
    from gankern.train.checkpoint import load_checkpoint, resolve_resume_path
    from gankern.train.options import TrainingOptions

    given, model_options = {}, {}
    for dest, value in vars(args).items():
        if value is None:
            continue
        if dest.startswith("model_option__"):
            model_options[dest[len("model_option__"):]] = value
            continue
        if dest == "lr":
            given["glr"] = given["dlr"] = value
            continue
        field = _FIELD_OF.get(dest, dest)
        if dest == "skip_bad_files":
            value = "skip" if value else "raise"
        given[field] = value
    changed = []
    if given.get("resume") == "auto":
        from gankern.train.start import resolve_options

        probe = dict(given, model_options=model_options)
        given["resume"] = resolve_options(TrainingOptions(**probe), print).resume
        if given["resume"] is None:  # no earlier run of these options: a new one
            del given["resume"]
    if given.get("resume"):
        resume_path = resolve_resume_path(given["resume"])
        _, meta = load_checkpoint(resume_path)
        base = TrainingOptions.from_dict(meta["options"]).to_dict()
        if "model" in given and given["model"] != base.get("model", DEFAULT_MODEL):
            raise ValueError(f"--model {given['model']} but the checkpoint was trained as "
                             f"{base.get('model', DEFAULT_MODEL)}")
        if model_options:
            given["model_options"] = {**base.get("model_options", {}), **model_options}
        changed = sorted(k for k, v in given.items()
                         if k not in RESUME_SAFE and base.get(k) != v)
        base.update(given)
        if "outdir" not in given:  # continue in the checkpoint's run directory
            base["outdir"] = str(resume_path.parent.parent)
        return TrainingOptions.from_dict(base), changed
    if model_options:
        given["model_options"] = model_options
    return TrainingOptions(**given), changed


def _spawned(opts_dict: dict, check_data: bool = True) -> None:
    """One process of ``--gpus N`` (see :func:`_train_process`); ends with its exit status."""
    from gankern.train.options import TrainingOptions

    sys.exit(_train_process(TrainingOptions.from_dict(opts_dict), check_data))


def _train_process(opts, check_data: bool = True) -> int:
    """Train in one process of a group (``--gpus N`` or torchrun): a failure is reported on
    one line by process 0 only (every process fails alike; the others only report bugs)."""
    from gankern.cli.errors import user_message
    from gankern.train.distributed import shutdown_distributed
    from gankern.train.loop import training_loop

    try:
        training_loop(opts, check_data=check_data)
        return 0
    except BaseException as exc:  # noqa: BLE001 - reported here, once
        if os.environ.get("RANK", "0") == "0" or user_message(exc) is None:
            return report_failure("train", exc)
        return user_message(exc)[1]
    finally:
        shutdown_distributed()


def run(args) -> int:
    model = peek_model(args.argv)
    if model not in family_names():
        raise ValueError(f"--model must be one of {', '.join(family_names())}, got {model!r}")
    parsed = build_parser(model).parse_args(args.argv)

    import torch

    from gankern.train.distributed import launched_by_torchrun, spawn
    from gankern.train.loop import training_loop
    from gankern.train.options import check_options

    opts, changed = options_from_args(parsed)
    check_options(opts)
    if changed:
        print(f"gankern train: warning: resuming with changed options {changed}: the run "
              "will not continue the saved trajectory exactly", file=sys.stderr)
    if opts.gpus > 1 and not launched_by_torchrun():
        from torch.multiprocessing import ProcessExitedException

        from gankern.train.start import plan_run

        if opts.device != "cpu" and torch.cuda.is_available():
            if opts.gpus > torch.cuda.device_count():
                raise ValueError(f"--gpus {opts.gpus} but only {torch.cuda.device_count()} "
                                 "GPUs are visible")
            device = torch.device("cuda", 0)
        elif opts.device == "cuda":
            raise ValueError("--device cuda but no CUDA device is available")
        else:
            device = torch.device("cpu")
        # Every check (data, options, batch split over the processes) before any starts;
        # the processes decode the images again only to leave out the bad ones.
        opts = plan_run(opts, opts.gpus, device).opts
        try:
            spawn(_spawned, opts.gpus, (opts.to_dict(), opts.on_bad_file == "skip"))
        except ProcessExitedException as exc:  # reported by the process itself
            if exc.exit_code is not None and exc.exit_code > 0:
                return exc.exit_code
            raise ChildProcessError(f"training process {exc.error_index} was killed by "
                                    f"{exc.signal_name or exc.exit_code} (out of memory?)"
                                    ) from None
        return 0
    if launched_by_torchrun():
        return _train_process(opts)
    training_loop(opts)
    return 0
