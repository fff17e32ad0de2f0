"""``gankern generate``: images from a training checkpoint.

Three modes (the generator is the checkpoint's EMA generator unless ``--network G``):

* ``images`` (default): one PNG per seed (``seed0042.png``), and ``grid.png`` with all;
* ``mixing``: a style-mixing grid: the top row's images (``--cols`` seeds) give the styles
  ``--styles`` to the left column's images (``--rows`` seeds), ``mixing.png``;
* ``interp``: a walk through latent space from seed to seed (``--frames`` per step, in w
  or, with ``--space z``, spherically in z), as a grid ``interp.png`` (one row per pair)
  and, with ``--video``, an animation (``.gif`` via Pillow; ``.mp4`` needs imageio).

With ``--direction FILE`` (from ``gankern edit``), ``images`` draws each seed along the
direction: a row per seed, a column per ``--strength`` (``seed0042.png`` is the row).

Seeds are lists and ranges: ``0-7,42``. Truncation: ``--trunc 0.7`` (and ``--trunc-cutoff``
for the first ws only). Conditional models need ``--class``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path


def parse_int_list(text: str) -> list[int]:
    """``"0-3,7"`` -> ``[0, 1, 2, 3, 7]`` (non-negative integers; ranges inclusive)."""
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                lo, hi = int(lo), int(hi)
                if lo > hi:
                    raise ValueError
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected integers and ranges like 0-7,42, got {text!r}"
            ) from None
    if not out or min(out) < 0:
        raise argparse.ArgumentTypeError(
            f"expected non-negative integers like 0-7,42, got {text!r}"
        )
    return out


def parse_float_list(text: str) -> list[float]:
    """``"-3,-1.5,0,1.5,3"`` -> a list of finite floats."""
    values = [_number(part.strip()) for part in text.split(",") if part.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected numbers like -3,0,3, got {text!r}")
    return values


def allow_negative_lists(parser: argparse.ArgumentParser) -> None:
    """Let option values like ``-3,0,3`` through (argparse otherwise takes them for options;
    it only knows single negative numbers)."""
    parser._negative_number_matcher = re.compile(
        r"^-\d+$|^-\d*\.\d+$|^-\.?\d[\d.]*(,\s*-?\.?\d[\d.]*)*$")


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or abs(value) == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
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


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "generate",
        help="images, style-mixing grids and latent interpolations from a checkpoint",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", help="a snapshot-*.safetensors file or a run directory")
    p.add_argument("--outdir", default="generated", help="output folder (default generated)")
    p.add_argument("--mode", choices=("images", "mixing", "interp"), default="images")
    p.add_argument("--seeds", type=parse_int_list, default=[0, 1, 2, 3, 4, 5, 6, 7],
                   help="seeds (images, interp), e.g. 0-7,42 (default 0-7)")
    p.add_argument("--rows", type=parse_int_list, default=[0, 1, 2, 3],
                   help="mixing: seeds of the rows (default 0-3)")
    p.add_argument("--cols", type=parse_int_list, default=[4, 5, 6, 7],
                   help="mixing: seeds of the columns (default 4-7)")
    p.add_argument("--styles", type=parse_int_list,
                   help="mixing: ws indices taken from the columns (default: the first half)")
    p.add_argument("--trunc", type=_number, default=1.0, help="truncation psi (default 1)")
    p.add_argument("--trunc-cutoff", type=_int_at_least(0), help="truncate only the first ws")
    p.add_argument("--class", dest="class_idx", type=_int_at_least(0),
                   help="class label (conditional models)")
    p.add_argument("--noise-mode", choices=("const", "random", "none"), default="const")
    p.add_argument("--frames", type=_int_at_least(2), default=8,
                   help="interp: frames per pair of seeds, ends included (default 8)")
    p.add_argument("--space", choices=("w", "z"),
                   help="interp: latent space (default w for style-based models, else z)")
    p.add_argument("--video", help="interp: also write an animation (.gif, or .mp4 with imageio)")
    p.add_argument("--grid-cols", type=_int_at_least(1), help="images: columns of grid.png")
    p.add_argument("--direction", help="images: draw each seed along this direction file")
    p.add_argument("--strength", type=parse_float_list,
                   help="with --direction: the strengths, in standard deviations "
                        "(default -2,-1,0,1,2)")
    p.add_argument("--network", choices=("G_ema", "G"), default="G_ema")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--impl", choices=("auto", "cuda", "triton", "ref"), default="auto")
    allow_negative_lists(p)
    p.set_defaults(func=run)


def _labels(G, class_idx, n, device):
    import torch

    c = torch.zeros([n, G.c_dim], device=device)
    if G.c_dim == 0:
        if class_idx is not None:
            raise ValueError("--class was given but the model is unconditional")
        return c
    if class_idx is None:
        raise ValueError(f"the model is conditional: --class is required (0..{G.c_dim - 1})")
    if class_idx >= G.c_dim:
        raise ValueError(f"--class must be in [0, {G.c_dim - 1}], got {class_idx}")
    c[:, class_idx] = 1
    return c


def _latents(G, seeds, device):
    import numpy as np
    import torch

    z = [np.random.RandomState(seed).randn(G.z_dim) for seed in seeds]
    return torch.from_numpy(np.stack(z)).float().to(device)


def _slerp(a, b, t):
    import torch

    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1, 1))
    so = torch.sin(omega)
    if float(so.abs().min()) < 1e-6:
        return a.lerp(b, t)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def _check_styles(styles, num_ws):
    if styles is None:
        return list(range(max(num_ws // 2, 1)))
    bad = [s for s in styles if s >= num_ws]
    if bad:
        raise ValueError(f"--styles must be in [0, {num_ws - 1}] for this model, got {bad}")
    return styles


def run(args) -> int:
    import torch

    from gankern.train.checkpoint import CheckpointError, atomic_write_bytes
    from gankern.train.families import get_family
    from gankern.train.networks import checkpoint_model, load_generator
    from gankern.train.visuals import encode_png, tile_images, to_uint8

    def fail(message: str) -> int:
        print(f"gankern generate: error: {message}", file=sys.stderr)
        return 2

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        return fail("--device cuda but no CUDA device is available")
    try:
        G = load_generator(args.checkpoint, device=device, which=args.network, impl=args.impl)
    except (FileNotFoundError, CheckpointError, ValueError) as exc:
        return fail(str(exc))
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    trunc = dict(truncation_psi=args.trunc, truncation_cutoff=args.trunc_cutoff)
    synth = dict(noise_mode=args.noise_mode)
    family = get_family(checkpoint_model(G.checkpoint_metadata))
    if args.strength is not None and args.direction is None:
        return fail("--strength needs --direction")
    if args.direction is not None and (args.mode != "images" or not family.style_based):
        return fail(f"--direction needs --mode images and a style-based generator (model "
                    f"{family.name!r}, mode {args.mode!r})")

    def sample(z, c):
        return family.sample(G, z, c, **trunc, **synth)

    def save(images, path, cols):
        atomic_write_bytes(path, encode_png(tile_images(to_uint8(images), cols)))
        print(f"wrote {path}")

    try:
        with torch.no_grad():
            if args.direction is not None:
                from gankern.cli.edit import render_direction

                strengths = args.strength or [-2.0, -1.0, 0.0, 1.0, 2.0]
                ws = G.mapping(_latents(G, args.seeds, device),
                               _labels(G, args.class_idx, len(args.seeds), device), **trunc)
                grid, code = render_direction(G, ws, args.direction, strengths, **synth)
                if grid is None:
                    return code
                k = len(strengths)
                for i, seed in enumerate(args.seeds):
                    save(grid[i * k : (i + 1) * k], outdir / f"seed{seed:04d}.png", k)
                save(grid, outdir / "grid.png", k)
            elif args.mode == "images":
                z = _latents(G, args.seeds, device)
                c = _labels(G, args.class_idx, len(args.seeds), device)
                images = torch.cat([sample(z[i : i + 32], c[i : i + 32]).cpu()
                                    for i in range(0, len(z), 32)])
                for seed, img in zip(args.seeds, images, strict=True):
                    save(img[None], outdir / f"seed{seed:04d}.png", 1)
                save(images, outdir / "grid.png", args.grid_cols or min(len(images), 8))
            elif args.mode == "mixing":
                if not family.style_based:
                    return fail(f"style mixing needs a style-based generator; model "
                                f"{family.name!r} has none")
                styles = _check_styles(args.styles, G.num_ws)
                seeds = args.rows + args.cols
                z = _latents(G, seeds, device)
                c = _labels(G, args.class_idx, len(seeds), device)
                ws = G.mapping(z, c, **trunc)
                row_ws, col_ws = ws[: len(args.rows)], ws[len(args.rows) :]
                plain = G.synthesis(ws, **synth).cpu()
                cells = [torch.full_like(plain[0], -1)] + list(plain[len(args.rows) :])
                for r in range(len(args.rows)):
                    mixed = row_ws[r : r + 1].repeat(len(args.cols), 1, 1)
                    mixed[:, styles] = col_ws[:, styles]
                    cells += [plain[r]] + list(G.synthesis(mixed, **synth).cpu())
                save(torch.stack(cells), outdir / "mixing.png", len(args.cols) + 1)
            else:
                if len(args.seeds) < 2:
                    return fail("interp needs at least two --seeds")
                space = args.space or ("w" if family.style_based else "z")
                if space == "w" and not family.style_based:
                    return fail(f"--space w needs a style-based generator; model "
                                f"{family.name!r} interpolates in z")
                z = _latents(G, args.seeds, device)
                c = _labels(G, args.class_idx, len(args.seeds), device)
                t = torch.linspace(0, 1, args.frames, device=device).reshape(-1, 1, 1)
                rows = []
                for i in range(len(args.seeds) - 1):
                    cc = c[i : i + 1].repeat(args.frames, 1)
                    if space == "w":
                        ws = G.mapping(z[i : i + 2], c[i : i + 2], **trunc)
                        rows.append(G.synthesis(ws[0:1].lerp(ws[1:2], t), **synth).cpu())
                    else:
                        zs = _slerp(z[i : i + 1], z[i + 1 : i + 2], t[:, :, 0])
                        rows.append(sample(zs, cc).cpu())
                save(torch.cat(rows), outdir / "interp.png", args.frames)
                if args.video:  # each row starts where the previous one ended
                    _write_video(torch.cat([rows[0]] + [r[1:] for r in rows[1:]]),
                                 Path(args.video))
    except ValueError as exc:
        return fail(str(exc))
    return 0


def _write_video(frames, path: Path) -> None:
    """An animation of ``frames``: GIF with Pillow, other formats with imageio if installed."""
    import numpy as np
    from PIL import Image

    from gankern.train.visuals import to_uint8

    pixels = to_uint8(frames).transpose(0, 2, 3, 1)
    if pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    if path.suffix.lower() == ".gif":
        images = [Image.fromarray(np.ascontiguousarray(p)) for p in pixels]
        images[0].save(path, save_all=True, append_images=images[1:], duration=80, loop=0)
    else:
        try:
            import imageio.v2 as imageio
        except ImportError:
            raise ValueError(
                f"writing {path.suffix or 'this format'} videos needs imageio (pip install "
                "imageio imageio-ffmpeg); use a .gif path instead"
            ) from None
        imageio.mimsave(path, list(pixels), fps=12)
    print(f"wrote {path}")
