"""``gankern dataset``: turn a folder or zip of images into a training dataset."""

from __future__ import annotations

import argparse
import sys


def _resolution(text: str) -> tuple[int, int]:
    from gankern.data.dataset_tool import parse_resolution

    try:
        return parse_resolution(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--resolution ")) from exc


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def run(args) -> int:
    from gankern.data.dataset_tool import convert_dataset

    try:
        result = convert_dataset(
            args.source,
            args.dest,
            resolution=args.resolution,
            transform=args.transform,
            channels=args.channels,
            max_images=args.max_images,
            skip_bad=args.skip_bad,
            progress=not args.quiet,
        )
    except (ValueError, TypeError) as exc:
        print(f"gankern dataset: error: {exc}", file=sys.stderr)
        return 1
    kind = "grayscale" if result.channels == 1 else "RGB"
    labels = "with labels" if result.has_labels else "no labels"
    print(f"wrote {result.num_images} images ({result.width}x{result.height} {kind}, {labels}) "
          f"to {result.dest}")
    if result.num_skipped:
        shown = "\n  ".join(result.skipped_files[:10])
        more = f"\n  ... and {result.num_skipped - 10} more" if result.num_skipped > 10 else ""
        print(f"skipped {result.num_skipped} unreadable file(s):\n  {shown}{more}",
              file=sys.stderr)
    return 0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "dataset",
        help="convert a folder or zip of images into a training dataset (zip or folder)",
        description=(
            "Read the PNG/JPEG images of a folder (recursively) or zip, with the labels of its "
            "dataset.json if any; convert channels, center-crop and resize (LANCZOS); write "
            "them as PNG with a dataset.json, like StyleGAN2-ADA's dataset_tool."
        ),
    )
    parser.add_argument("--source", required=True, metavar="DIR_OR_ZIP",
                        help="folder or .zip of input images")
    parser.add_argument("--dest", required=True, metavar="OUT.zip|OUTDIR",
                        help="output .zip (must not exist) or folder (empty or new)")
    parser.add_argument("--resolution", type=_resolution, metavar="WxH",
                        help="output size, e.g. 256x256 (default: keep; all images must then "
                             "have the same size)")
    parser.add_argument("--transform", choices=("center-crop", "center-crop-wide"),
                        help="center-crop: crop the largest centered region with the output's "
                             "aspect ratio; center-crop-wide: crop to WxH (W >= H) and pad to "
                             "a WxW square (default: plain resize)")
    parser.add_argument("--channels", type=int, choices=(1, 3),
                        help="1 (grayscale) or 3 (RGB) (default: keep; images must agree)")
    parser.add_argument("--max-images", type=_positive_int, metavar="N",
                        help="write at most N images")
    parser.add_argument("--skip-bad", action="store_true",
                        help="skip and count unreadable or corrupt files instead of stopping")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
