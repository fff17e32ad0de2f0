"""``gankern project``: find the latent of an image (StyleGAN2-ADA's projector recipe).

Optimizes w (``--wplus``: one w per layer; ``--noise``: the noise maps too) for ``--steps``
steps so that the generator's image matches ``--target`` (a PNG/JPEG of the generator's
size; ``--resize`` center-crops and resizes another size). Writes into ``--outdir``:

* ``target.png`` (the target as compared), ``projected.png``, ``side_by_side.png``;
* ``projected_w.npz``: ``w`` ``[1, num_ws, w_dim]`` (StyleGAN2-ADA's layout; with
  ``--noise`` also the noise maps), for ``gankern edit --latent``;
* ``progress.gif``: target and projection side by side along the optimization
  (``--video PATH`` for another name, ``.mp4`` with imageio; ``--no-video`` for none).

The distance (``--distance auto``): the built-in digits classifier's features for
generators of the built-in digits, else LPIPS (VGG16) when its weight files are there,
else VGG16 features, else MSE alone (said on stderr). gankern never downloads weights.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gankern.cli.arguments import add_device_arguments
from gankern.cli.edit import load_style_generator
from gankern.cli.generate import _int_at_least, _write_video


def add_parser(subparsers) -> None:
    from gankern.editing.distances import DISTANCES

    p = subparsers.add_parser(
        "project",
        help="find the latent of an image (projection / GAN inversion)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", help="a snapshot-*.safetensors file or a run directory")
    p.add_argument("--target", required=True, help="the image to project (PNG or JPEG)")
    p.add_argument("--steps", type=_int_at_least(1), default=1000,
                   help="optimization steps (default 1000)")
    p.add_argument("--wplus", action="store_true", help="optimize one w per layer (W+)")
    p.add_argument("--noise", action="store_true", help="optimize the noise maps too")
    p.add_argument("--distance", choices=DISTANCES, default="auto",
                   help="image distance (default auto, see above)")
    p.add_argument("--resize", action="store_true",
                   help="center-crop and resize a target of another size")
    p.add_argument("--seed", type=int, default=0, help="seed of the optimization's noise")
    p.add_argument("--class", dest="class_idx", type=_int_at_least(0),
                   help="class label (conditional models)")
    p.add_argument("--outdir", default="projected", help="output folder (default projected)")
    p.add_argument("--video", help="progress animation path (default <outdir>/progress.gif)")
    p.add_argument("--no-video", action="store_true", help="write no progress animation")
    add_device_arguments(p)
    p.set_defaults(func=run)


def load_target(path: str, G, resize: bool):
    """The target image as uint8 ``[C, R, R]``; ``ValueError`` with the reason otherwise."""
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    res = G.img_resolution
    if G.img_channels not in (1, 3):
        raise ValueError(f"the generator draws {G.img_channels}-channel images; "
                         "only 1 or 3 channels can be read from an image file")
    try:
        with Image.open(path) as im:
            im = im.convert("L" if G.img_channels == 1 else "RGB")
    except FileNotFoundError:
        raise ValueError(f"--target {path} does not exist") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"--target {path} is not a readable image ({exc})") from None
    if im.size != (res, res):
        if not resize:
            raise ValueError(f"--target {path} is {im.size[0]}x{im.size[1]}; the generator "
                             f"draws {res}x{res} images (--resize center-crops and resizes)")
        side = min(im.size)
        left, top = (im.size[0] - side) // 2, (im.size[1] - side) // 2
        im = im.crop((left, top, left + side, top + side)).resize((res, res), Image.LANCZOS)
    pixels = np.asarray(im, dtype=np.uint8)
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    return torch.from_numpy(pixels.copy())


def run(args) -> int:
    import torch

    from gankern.cli.edit import save_grid
    from gankern.editing import project, save_projection, with_noise
    from gankern.fileio import check_can_create
    from gankern.train.settings import BUILTIN_DIGITS

    outdir = Path(args.outdir)
    check_can_create(outdir, "--outdir")
    video = None if args.no_video else Path(args.video or outdir / "progress.gif")
    if video is not None:
        check_can_create(video, "--video")
    G = load_style_generator("project", args)
    distance = args.distance
    if distance == "auto" and G.checkpoint_metadata.get("options", {}).get("data") == \
            BUILTIN_DIGITS:
        distance = "digits"
    target = load_target(args.target, G, args.resize)
    # Missing perceptual weights are a WeightsNotFoundError (a FileNotFoundError): one line.
    result = project(G, target, num_steps=args.steps, w_plus=args.wplus,
                     optimize_noise=args.noise, distance=distance,
                     class_idx=args.class_idx, seed=args.seed, progress=True)
    if result.info["note"]:
        print(f"gankern project: note: {result.info['note']}", file=sys.stderr)
    print(f"distance ({result.distance_name}) {result.distances[0]:.4g} at the first step, "
          f"{result.distances[-1]:.4g} at the last")
    outdir.mkdir(parents=True, exist_ok=True)
    target_f = target.float()[None] / 127.5 - 1
    save_grid(target_f, outdir / "target.png", 1)
    save_grid(result.image, outdir / "projected.png", 1)
    save_grid(torch.cat([target_f, result.image]), outdir / "side_by_side.png", 2)
    save_projection(result, outdir / "projected_w.npz")
    print(f"wrote {outdir / 'projected_w.npz'}")
    if video is not None:
        # Every frame is drawn with the final noise maps (those of --noise change too).
        G_final = with_noise(G, result.noise) if result.noise else G
        device = next(G.parameters()).device
        with torch.no_grad():
            frames = torch.cat([G_final.synthesis(f.to(device), noise_mode="const").cpu()
                                for f in result.frames.split(16)])
        pairs = torch.cat([target_f.expand(len(frames), -1, -1, -1), frames], dim=3)
        _write_video(pairs, video)
    return 0
