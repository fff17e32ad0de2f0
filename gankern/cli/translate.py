"""``gankern translate``: translate a folder of images with a trained image-to-image model.

    gankern translate CHECKPOINT --input FOLDER --output FOLDER [--direction AtoB|BtoA]

CHECKPOINT is a ``snapshot-*.safetensors`` file or a run directory (its newest snapshot) of
a pix2pix, CycleGAN, SRGAN or SRResNet run. Every PNG/JPEG image under ``--input`` (a
folder, searched recursively, or a zip) is translated and written to ``--output`` as a PNG
with the same relative name (``photos/x.jpg`` -> ``OUTPUT/photos/x.png``). ``--direction``
picks CycleGAN's generator (``AtoB``: G_AB, ``BtoA``: G_BA); a pix2pix model translates
the direction it was trained in, SRGAN from low to high resolution (4x larger outputs).

The images must have the channels the model was trained on (1: gray, 3: RGB) and sides that
its generator accepts (pix2pix's U-Net: multiples of 2**levels, 256 for ``unet256``;
CycleGAN's: multiples of 4; SRGAN: any); they may differ in size from one another. The
generator runs in eval mode (batch-norm running statistics, no dropout).
"""

from __future__ import annotations

import argparse
import os
import posixpath
import sys
from pathlib import Path

from gankern.cli.arguments import add_device_arguments, resolve_device
from gankern.cli.generate import _int_at_least


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "translate", help="translate a folder of images with a pix2pix, CycleGAN or SRGAN model",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("checkpoint", help="a snapshot-*.safetensors file or a run directory")
    p.add_argument("--input", required=True, help="folder (or .zip) of PNG/JPEG images")
    p.add_argument("--output", required=True, help="folder for the translated PNGs")
    p.add_argument("--direction", choices=("AtoB", "BtoA"),
                   help="CycleGAN: AtoB (G_AB, default) or BtoA (G_BA); pix2pix and SRGAN: "
                        "the model's own direction only")
    p.add_argument("--batch", type=_int_at_least(1), default=16,
                   help="images per forward pass (default 16)")
    add_device_arguments(p, network=False)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


# Pillow modes the models read, and their channel counts.
_CHANNELS_OF_MODE = {"L": 1, "RGB": 3}


def plan_outputs(source, output: Path) -> list[tuple[str, Path]]:
    """``(input name, output path)`` of every image of ``source``: the same relative name
    with a ``.png`` extension; ValueError naming two inputs that would write one file."""
    planned: dict[str, str] = {}
    out = []
    for name in source.names:
        target = posixpath.splitext(name)[0] + ".png"
        if target in planned:
            raise ValueError(f"{source.describe(planned[target])} and {source.describe(name)} "
                             f"would both be written to {output / target}; rename one")
        planned[target] = name
        out.append((name, output.joinpath(*target.split("/"))))
    return out


def check_headers(source, translator) -> list[tuple[int, int, int]]:
    """The ``[C, H, W]`` of every image of ``source`` from its header (nothing decoded), each
    checked against the translator; errors name the file."""
    import numpy as np

    from gankern.data.image_files import read_image_header

    shapes = []
    for name in source.names:
        header = read_image_header(source, name)
        where = source.describe(name)
        channels = _CHANNELS_OF_MODE.get(header.mode)
        if channels is None:
            raise ValueError(f"{where} has Pillow mode {header.mode!r}; expected 'L' (gray) or "
                             "'RGB' (convert it, e.g. with `gankern dataset --channels 1|3`)")
        shape = (channels, header.height, header.width)
        translator.check(np.empty(shape, dtype=np.uint8), where)
        shapes.append(shape)
    return shapes


def _batches(items, shapes, size: int):
    """Runs of at most ``size`` consecutive items whose images have one shape."""
    batch: list = []
    for item, shape in zip(items, shapes, strict=True):
        if batch and (len(batch) == size or batch[-1][1] != shape):
            yield [entry for entry, _ in batch]
            batch = []
        batch.append((item, shape))
    if batch:
        yield [entry for entry, _ in batch]


def run(args) -> int:
    import numpy as np
    from tqdm import tqdm

    from gankern.data.image_files import ImageSource, decode_image, image_to_chw
    from gankern.ops import require_backend
    from gankern.train.checkpoint import CheckpointError, atomic_write_bytes
    from gankern.train.translator import load_translator
    from gankern.train.visuals import encode_png

    def fail(message: str) -> int:
        print(f"gankern translate: error: {message}", file=sys.stderr)
        return 2

    device = resolve_device(args.device)
    require_backend(args.impl, device, "--impl")
    output = Path(args.output)
    try:
        translator = load_translator(args.checkpoint, args.direction, device=device,
                                     impl=args.impl)
        source = ImageSource(args.input, arg_name="--input")
        if not source.names:
            raise ValueError(f"--input {source.location} holds no PNG or JPEG images")
        if not source.is_zip and output.resolve() == Path(args.input).resolve():
            raise ValueError("--output must differ from --input (the PNGs would replace "
                             "the inputs)")
        if output.exists() and not output.is_dir():
            raise ValueError(f"--output {output} exists and is not a folder")
        plan = plan_outputs(source, output)
        shapes = check_headers(source, translator)
        bar = tqdm(total=len(plan), unit="img", desc="gankern translate",
                   disable=args.no_progress, file=sys.stderr)
        with bar:
            for batch in _batches(plan, shapes, args.batch):
                images = np.stack([image_to_chw(decode_image(source, name).convert(
                    "L" if translator.in_channels == 1 else "RGB")) for name, _ in batch])
                for (_, path), result in zip(batch, translator(images), strict=True):
                    path.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write_bytes(path, encode_png(result.transpose(1, 2, 0)))
                bar.update(len(batch))
    except (FileNotFoundError, CheckpointError, ValueError) as exc:
        return fail(str(exc))
    print(f"translated {len(plan)} image(s) ({translator.family.name}, {translator.direction}) "
          f"into {os.fspath(output)}")
    return 0
