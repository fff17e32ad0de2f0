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


LAYOUTS = ("images", "side-by-side", "folders", "unpaired")


def _convert(args):
    """Run the conversion that ``--layout`` asks for; returns its result."""
    common = dict(resolution=args.resolution, transform=args.transform, channels=args.channels,
                  max_images=args.max_images, skip_bad=args.skip_bad, progress=not args.quiet)
    if args.layout == "images":
        from gankern.data.dataset_tool import convert_dataset

        for flag, value in (("--source-b", args.source_b), ("--channels-b", args.channels_b)):
            if value is not None:
                raise ValueError(f"{flag} is for the paired and unpaired layouts (--layout "
                                 "side-by-side|folders|unpaired)")
        return convert_dataset(args.source, args.dest, **common)
    from gankern.data.dataset_tool_pairs import convert_paired_dataset, convert_unpaired_dataset

    common.update(source_b=args.source_b, channels_b=args.channels_b)
    if args.layout == "unpaired":
        return convert_unpaired_dataset(args.source, args.dest, split=args.split, **common)
    return convert_paired_dataset(args.source, args.dest, layout=args.layout, **common)


def run(args) -> int:
    from gankern.cli.errors import report_failure

    try:
        result = _convert(args)
    except Exception as exc:  # noqa: BLE001 - reported as every command reports errors
        status = report_failure("dataset", exc)
        return 1 if status == 2 else status  # this command's bad input is status 1

    def kind(channels):
        return "grayscale" if channels == 1 else "RGB"

    size = f"{result.width}x{result.height}"
    if args.layout == "images":
        labels = "with labels" if result.has_labels else "no labels"
        print(f"wrote {result.num_images} images ({size} {kind(result.channels)}, {labels}) "
              f"to {result.dest}")
    elif args.layout == "unpaired":
        print(f"wrote {result.num_images} A images ({size} {kind(result.channels)}) and "
              f"{result.num_images_b} B images ({kind(result.channels_b)}) to {result.dest} "
              f"({args.split}A/, {args.split}B/)")
    else:
        print(f"wrote {result.num_images} pairs ({size}, A {kind(result.channels)}, B "
              f"{kind(result.channels_b)}, layout {args.layout}) to {result.dest}")
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
            "them as PNG with a dataset.json, like StyleGAN2-ADA's dataset_tool. With --layout "
            "side-by-side or folders, build a paired dataset (pix2pix) from --source and "
            "--source-b matched by file name, from a --source holding A/ and B/, or from "
            "side-by-side A|B images; with --layout unpaired, CycleGAN's trainA/ and trainB/ "
            "from --source and --source-b (or a --source holding trainA/ and trainB/)."
        ),
    )
    parser.add_argument("--source", required=True, metavar="DIR_OR_ZIP",
                        help="folder or .zip of input images (domain A of a paired or "
                             "unpaired layout)")
    parser.add_argument("--source-b", metavar="DIR_OR_ZIP",
                        help="folder or .zip of the B images (paired: matched to --source by "
                             "file name; unpaired: domain B)")
    parser.add_argument("--layout", choices=LAYOUTS, default="images",
                        help="images: a plain dataset (default); side-by-side: pairs as A|B "
                             "images (pix2pix); folders: pairs as A/ and B/ with the same "
                             "names; unpaired: trainA/ and trainB/ (CycleGAN)")
    parser.add_argument("--split", default="train", metavar="NAME",
                        help="folder prefix of the unpaired layout: NAME + A/B (default train)")
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
    parser.add_argument("--channels-b", type=int, choices=(1, 3),
                        help="channels of the B images of a paired or unpaired layout "
                             "(default: keep)")
    parser.add_argument("--max-images", type=_positive_int, metavar="N",
                        help="write at most N images (pairs; per domain when unpaired)")
    parser.add_argument("--skip-bad", action="store_true",
                        help="skip and count unreadable or corrupt files instead of stopping")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
