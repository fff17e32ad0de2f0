"""``gankern metrics``: FID, KID, IS, precision/recall (and PPL) from the command line.

    gankern metrics --metrics fid,kid,is,pr --real DATASET --fake IMAGES_OR_CHECKPOINT \\
        [--num N] [--extractor inception|digits] [--out results.json]

Prints a table and writes JSON (``--out``). ``--fake`` takes a folder or zip of images, or a
training checkpoint (a ``.safetensors`` snapshot or a run directory), from which the
generator (G_ema) samples ``--num`` images (default 50,000).
``gankern metrics --build-extractor digits`` trains and caches the built-in extractor.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from gankern.cli.arguments import device_name, resolve_device


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def is_checkpoint(path: str) -> bool:
    """True for a training snapshot file or a run directory holding snapshots."""
    p = Path(path)
    if p.is_file():
        return p.suffix == ".safetensors"
    return p.is_dir() and any(p.glob("snapshot-*.safetensors"))


def load_generator_from_checkpoint(path: str, device):
    """The moving-average generator (G_ema) of a training checkpoint or run directory."""
    from gankern.train.networks import load_generator

    return load_generator(path, device=device, which="G_ema")


def _print_table(values: dict, info: dict) -> None:
    width = max(len(k) for k in values) if values else 6
    print(f"{'metric':<{width}}  value")
    for key, value in values.items():
        print(f"{key:<{width}}  {value:.6g}")
    counts = ", ".join(f"{k}={info[k]}" for k in ("num_real", "num_fake") if info.get(k))
    print(f"({counts}; {info.get('seconds', 0):.1f} s on {info.get('device')})")


def _write_json(path: str, document: dict) -> None:
    from gankern.metrics.cache import atomic_write

    text = json.dumps(document, indent=2, sort_keys=False)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n"))


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Adds "(default: X)" to an option's help unless the help already says its default or
    there is none to say (a None or False default)."""

    def _get_help_string(self, action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text or default in (None, False) or default is argparse.SUPPRESS:
            return text
        return f"{text} (default: {default})" if text else f"(default: {default})"


def run(args) -> int:

    from gankern.cli.errors import report_failure
    from gankern.fileio import check_can_create
    from gankern.metrics import build_digits_extractor, compute_metrics

    try:
        if args.out:
            if Path(args.out).is_dir():
                raise ValueError(f"--out {args.out} is a folder; give a file name (results.json)")
            check_can_create(args.out, "--out")  # before minutes of computing
        if args.build_extractor:
            path = build_digits_extractor(force=args.force)
            print(f"digits extractor: {path}")
            if args.fake is None:
                return 0
        if args.fake is None:
            print("gankern metrics: error: --fake is required (or --build-extractor digits)",
                  file=sys.stderr)
            return 2
        device = resolve_device(args.device)
        fake = args.fake
        if is_checkpoint(fake):
            fake = load_generator_from_checkpoint(fake, device)
        kwargs = {}
        if args.truncation_psi is not None:
            kwargs["truncation_psi"] = args.truncation_psi
        ppl_options = {}
        if args.ppl_samples or args.num:  # default: the standard 50,000 paths
            ppl_options["num_samples"] = args.ppl_samples or args.num
        results = compute_metrics(
            args.metrics, real=args.real, fake=fake, num_real=args.num_real, num_fake=args.num,
            extractor=args.extractor, weights=args.weights, pr_extractor=args.pr_extractor,
            pr_weights=args.pr_weights, device=device, batch_size=args.batch, seed=args.seed,
            fid_method=args.fid_method, kid_subsets=args.kid_subsets,
            kid_subset_size=args.kid_subset_size, is_splits=args.is_splits, pr_k=args.pr_k,
            ppl_options=ppl_options, generator_kwargs=kwargs or None, cache=not args.no_cache,
            allow_tf32=args.allow_tf32, progress=not args.quiet,
        )
    except Exception as exc:  # noqa: BLE001 - reported as every command reports errors
        status = report_failure("metrics", exc)
        return 1 if status == 2 else status  # this command's bad input is status 1
    _print_table(dict(results), results.info)
    if args.out:
        document = {
            "results": dict(results),
            "info": results.info,
            "args": {k: v for k, v in vars(args).items() if k != "func"},
        }
        _write_json(args.out, document)
        print(f"wrote {os.path.abspath(args.out)}")
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "metrics",
        help="compute FID, KID, IS, precision/recall of generated images",
        description=__doc__.split("\n\n")[0],
        formatter_class=_HelpFormatter,
    )
    p.add_argument("--metrics", default="fid",
                   help="comma-separated: fid,kid,is,pr,ppl (ppl needs a checkpoint)")
    p.add_argument("--real", help="real images: a folder, a .zip or builtin:digits")
    p.add_argument("--fake", help="generated images (folder or .zip) or a training checkpoint")
    p.add_argument("--num", type=_positive_int, default=None,
                   help="generated images to use (default: all in a folder, 50000 from a "
                        "checkpoint)")
    p.add_argument("--num-real", type=_positive_int, default=None,
                   help="real images to use (default: all)")
    p.add_argument("--extractor", default="inception", choices=("inception", "digits"),
                   help="feature extractor; digits labels its metrics *_digits")
    p.add_argument("--weights", default=None,
                   help="weights file of the extractor (default: $GANKERN_INCEPTION_WEIGHTS "
                        "or the cache)")
    p.add_argument("--pr-extractor", default=None, choices=("vgg16", "inception", "digits"),
                   help="extractor of precision/recall (default: vgg16 with --extractor "
                        "inception, else the same extractor)")
    p.add_argument("--pr-weights", default=None, help="weights file of the P/R extractor")
    p.add_argument("--device", type=device_name, default=None,
                   help="cpu, cuda or cuda:N (default: cuda if available)")
    p.add_argument("--batch", type=_positive_int, default=None, help="images per batch")
    p.add_argument("--seed", type=int, default=0, help="subsets, latents and KID subsets")
    p.add_argument("--fid-method", default="sqrtm", choices=("sqrtm", "eigh"),
                   help="matrix square root of FID")
    p.add_argument("--kid-subsets", type=_positive_int, default=100,
                   help="KID: number of random subsets")
    p.add_argument("--kid-subset-size", type=_positive_int, default=1000,
                   help="KID: images per subset")
    p.add_argument("--is-splits", type=_positive_int, default=10,
                   help="Inception Score: number of splits")
    p.add_argument("--pr-k", type=_positive_int, default=3,
                   help="precision/recall: nearest neighbours")
    p.add_argument("--ppl-samples", type=_positive_int, default=None,
                   help="paths sampled for ppl (default: --num, else 50000)")
    p.add_argument("--truncation-psi", type=float, default=None,
                   help="truncation of the checkpoint's generator (default: none)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write cached stats")
    p.add_argument("--allow-tf32", action="store_true",
                   help="allow TF32 on CUDA (faster; features change in the 4th digit)")
    p.add_argument("--out", default=None, help="write the results as JSON to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--build-extractor", choices=("digits",), default=None,
                   help="train and cache the built-in digits extractor (then exit unless "
                        "--fake is given)")
    p.add_argument("--force", action="store_true", help="with --build-extractor: rebuild")
    p.set_defaults(func=run)
