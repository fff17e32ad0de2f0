"""``gankern generate``: images from a training checkpoint.

Three modes (the generator is the checkpoint's EMA generator unless ``--network G``):

* ``images`` (default): one PNG per seed (``seed0042.png``), generated in batches of
  ``--batch`` with a progress bar, so any number of seeds runs in bounded memory (more than
  100,000 need ``--force``); ``--grid`` adds ``grid.png`` with all of them (otherwise the
  folder holds only the samples, ready for ``gankern metrics --fake``);
* ``mixing``: a style-mixing grid: the top row's images (``--cols`` seeds) give the styles
  ``--styles`` to the left column's images (``--rows`` seeds), ``mixing.png``;
* ``interp``: a walk through latent space from seed to seed (``--frames`` per step, in w
  or, with ``--space z``, spherically in z), as a grid ``interp.png`` (one row per pair)
  and, with ``--video``, an animation (``.gif`` via Pillow; ``.mp4`` needs imageio); a bare
  file name goes into ``--outdir``.

With ``--direction FILE`` (from ``gankern edit``), ``images`` draws each seed along the
direction: a row per seed, a column per ``--strength`` (``seed0042.png`` is the row).

Seeds are lists and ranges: ``0-7,42``. Truncation: ``--trunc 0.7`` (and ``--trunc-cutoff``
for the first ws only). Conditional models need ``--class``.

Image-to-image models (pix2pix, CycleGAN, SRGAN, SRResNet) draw ``grid.png``: triplets
*input | output | target* (CycleGAN: *input | translation | reconstruction*, both ways) of
items of the model's training data, or of ``--data`` (a folder or zip in the same layout;
SRGAN: any images, the inputs made by bicubic downsampling); ``--seeds`` are the items'
indices. ``gankern translate`` translates a folder of plain images.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from gankern.cli.arguments import add_device_arguments, resolve_device

# More images than this need --force (a typo like 0-999999999 would fill the disk).
MAX_IMAGES = 100_000
# Longest --rows/--cols/--styles list, and most images of a grid (grid.png, mixing.png).
MAX_LIST = 1024
MAX_GRID = 4096
DEFAULT_STRENGTHS = (-2.0, -1.0, 0.0, 1.0, 2.0)  # --direction, in standard deviations


class Seeds:
    """Seeds given as lists and inclusive ranges (``0-7,42``), kept as ranges: ``len`` and
    iteration without ever building the list (``0-999999999`` is a billion seeds)."""

    def __init__(self, ranges: list[tuple[int, int]]):
        self.ranges = ranges

    def __len__(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self.ranges)

    def __iter__(self):
        for lo, hi in self.ranges:
            yield from range(lo, hi + 1)

    def batches(self, size: int):
        """The seeds in lists of at most ``size``."""
        batch = []
        for seed in self:
            batch.append(seed)
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch

    def __eq__(self, other) -> bool:  # compares with lists too (tests, defaults)
        if isinstance(other, Seeds):
            other = list(other)
        return len(self) < 10**6 and list(self) == other

    def __repr__(self) -> str:
        return ",".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in self.ranges)


def parse_seeds(text: str) -> Seeds:
    """``"0-3,7"`` -> the seeds 0, 1, 2, 3, 7 (non-negative integers; ranges inclusive)."""
    ranges = []
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
            else:
                lo = hi = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected integers and ranges like 0-7,42, got {text!r}"
            ) from None
        ranges.append((lo, hi))
    if not ranges or min(lo for lo, _ in ranges) < 0 or max(hi for _, hi in ranges) >= 2**32:
        raise argparse.ArgumentTypeError(
            f"expected non-negative integers below 2**32 like 0-7,42, got {text!r}"
        )
    return Seeds(ranges)


def parse_int_list(text: str) -> list[int]:
    """``"0-3,7"`` -> ``[0, 1, 2, 3, 7]`` (for short lists: rows, columns, style indices)."""
    seeds = parse_seeds(text)
    if len(seeds) > MAX_LIST:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_LIST} values, got {len(seeds)}")
    return list(seeds)


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
    p.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0-7"),
                   help="seeds (images, interp), e.g. 0-7,42 (default 0-7)")
    p.add_argument("--batch", type=_int_at_least(1), default=32,
                   help="images generated at once (default 32)")
    p.add_argument("--force", action="store_true",
                   help=f"allow more than {MAX_IMAGES:,} images")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
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
    p.add_argument("--grid", action="store_true",
                   help="images: also write grid.png with all the images (implied by "
                        "--grid-cols)")
    p.add_argument("--grid-cols", type=_int_at_least(1),
                   help="images: columns of grid.png (default: up to 8; image-to-image "
                        "models: triplets per row)")
    p.add_argument("--data", help="image-to-image models: the dataset the grid's items come "
                                  "from (default: the checkpoint's training data)")
    p.add_argument("--direction", help="images: draw each seed along this direction file "
                                       "(from gankern edit)")
    p.add_argument("--strength", type=parse_float_list,
                   help="with --direction: the strengths, in standard deviations "
                        "(default -2,-1,0,1,2)")
    add_device_arguments(p)
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


def _check_counts(args) -> None:
    """Refuse, before any work, outputs too large to be what the user meant."""
    if args.strength is not None and args.direction is None:
        raise ValueError("--strength needs --direction")
    if args.direction is not None:
        if args.mode != "images":
            raise ValueError(f"--direction draws --mode images, not {args.mode!r}")
        cells = len(args.seeds) * len(args.strength or DEFAULT_STRENGTHS)
        if len(args.seeds) > MAX_LIST or cells > MAX_GRID:
            raise ValueError(f"--direction with {len(args.seeds):,} --seeds makes {cells:,} "
                             f"images; at most {MAX_LIST} seeds and {MAX_GRID:,} images")
    if args.mode == "images":
        n = len(args.seeds)
        if n > MAX_IMAGES and not args.force:
            raise ValueError(f"--seeds asks for {n:,} images (more than {MAX_IMAGES:,}); add "
                             "--force if that many are really wanted")
        if (args.grid or args.grid_cols) and n > MAX_GRID:
            raise ValueError(f"--grid with {n:,} images: a grid holds at most {MAX_GRID:,}; "
                             "drop --grid or ask for fewer --seeds")
    elif args.mode == "interp":
        if len(args.seeds) > MAX_LIST:
            raise ValueError(f"interp walks through at most {MAX_LIST} --seeds, got "
                             f"{len(args.seeds):,}")
        if (len(args.seeds) - 1) * args.frames > MAX_GRID:
            raise ValueError(f"interp with {len(args.seeds)} seeds and --frames {args.frames} "
                             f"makes more than {MAX_GRID:,} frames")
    elif (len(args.rows) + 1) * (len(args.cols) + 1) > MAX_GRID:
        raise ValueError(f"a mixing grid of {len(args.rows)} --rows and {len(args.cols)} "
                         f"--cols has more than {MAX_GRID:,} cells")


def _video_path(args, outdir: Path) -> Path | None:
    """``--video``'s path (a bare file name goes into the output folder), checked."""
    if not args.video:
        return None
    if args.mode != "interp":
        raise ValueError("--video is for --mode interp")
    path = Path(args.video)
    if path.parent == Path("."):
        path = outdir / path
    if path.suffix.lower() != ".gif":
        try:
            import imageio.v2  # noqa: F401
        except ImportError:
            raise ValueError(
                f"writing {path.suffix or 'this format'} videos needs imageio (pip install "
                "imageio imageio-ffmpeg); use a .gif path instead"
            ) from None
    return path


def run(args) -> int:
    import torch

    from gankern.fileio import check_can_create
    from gankern.ops import require_backend
    from gankern.train.checkpoint import atomic_write_bytes
    from gankern.train.families import get_family
    from gankern.train.networks import checkpoint_model, load_generator
    from gankern.train.translator import is_translation_checkpoint
    from gankern.train.visuals import encode_png, tile_images, to_uint8

    _check_counts(args)
    device = resolve_device(args.device)
    require_backend(args.impl, device, "--impl")
    if is_translation_checkpoint(args.checkpoint):
        return _translation_grid(args, device)
    outdir = Path(args.outdir)
    video = _video_path(args, outdir)
    check_can_create(outdir, "--outdir")
    if video is not None:
        check_can_create(video, "--video")
    G = load_generator(args.checkpoint, device=device, which=args.network, impl=args.impl)
    trunc = dict(truncation_psi=args.trunc, truncation_cutoff=args.trunc_cutoff)
    synth = dict(noise_mode=args.noise_mode)
    family = get_family(checkpoint_model(G.checkpoint_metadata))
    if args.direction is not None and not family.style_based:
        raise ValueError(f"--direction needs a style-based generator; model {family.name!r} "
                         "has none")

    def sample(z, c):
        return family.sample(G, z, c, **trunc, **synth)

    def save(images, path, cols, quiet=False):
        path.parent.mkdir(parents=True, exist_ok=True)  # only once there is something to save
        # Never half-written; not fsynced one by one (thousands of images).
        atomic_write_bytes(path, encode_png(tile_images(to_uint8(images), cols)), fsync=False)
        if not quiet:
            print(f"wrote {path}")

    with torch.no_grad():
        if args.direction is not None:
            _draw_direction(args, G, save, outdir, device, trunc, synth)
        elif args.mode == "images":
            _labels(G, args.class_idx, 1, device)  # a missing or wrong --class: before any work
            _generate_images(args, G, sample, save, outdir, device)
        elif args.mode == "mixing":
            if not family.style_based:
                raise ValueError(f"style mixing needs a style-based generator; model "
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
            seeds = list(args.seeds)
            if len(seeds) < 2:
                raise ValueError("interp needs at least two --seeds")
            space = args.space or ("w" if family.style_based else "z")
            if space == "w" and not family.style_based:
                raise ValueError(f"--space w needs a style-based generator; model "
                                 f"{family.name!r} interpolates in z")
            z = _latents(G, seeds, device)
            c = _labels(G, args.class_idx, len(seeds), device)
            t = torch.linspace(0, 1, args.frames, device=device).reshape(-1, 1, 1)
            rows = []
            for i in range(len(seeds) - 1):
                cc = c[i : i + 1].repeat(args.frames, 1)
                if space == "w":
                    ws = G.mapping(z[i : i + 2], c[i : i + 2], **trunc)
                    rows.append(G.synthesis(ws[0:1].lerp(ws[1:2], t), **synth).cpu())
                else:
                    zs = _slerp(z[i : i + 1], z[i + 1 : i + 2], t[:, :, 0])
                    rows.append(sample(zs, cc).cpu())
            save(torch.cat(rows), outdir / "interp.png", args.frames)
            if video is not None:  # each row starts where the previous one ended
                _write_video(torch.cat([rows[0]] + [r[1:] for r in rows[1:]]), video)
    return 0


def _translation_grid(args, device) -> int:
    """``grid.png`` of an image-to-image model: input | output | target of data items."""
    from gankern.train.checkpoint import atomic_write_bytes
    from gankern.train.translator import draw_data_grid, load_grid_networks, open_model_data
    from gankern.train.visuals import encode_png, tile_images, to_uint8

    family, nets, meta = load_grid_networks(args.checkpoint, device=device, impl=args.impl)
    if args.mode != "images":
        raise ValueError(f"model {family.name!r} translates images: --mode {args.mode} is for "
                         "models that draw from noise")
    dataset = open_model_data(family, meta, args.data)
    per_row = args.grid_cols or min(len(args.seeds), 4)
    cells, cols = draw_data_grid(family, nets, dataset, list(args.seeds), per_row)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / "grid.png"
    atomic_write_bytes(path, encode_png(tile_images(to_uint8(cells), cols)))
    print(f"wrote {path}")
    return 0


def _generate_images(args, G, sample, save, outdir: Path, device) -> None:
    """One PNG per seed, ``--batch`` at a time (bounded memory), with a progress bar;
    ``grid.png`` of all of them with ``--grid``."""
    import torch
    from tqdm import tqdm

    total = len(args.seeds)
    want_grid = args.grid or args.grid_cols is not None
    grid = [] if want_grid else None
    quiet_files = total > 16  # a line per file for a few; a progress bar for many
    with tqdm(total=total, unit="img", desc="gankern generate", file=sys.stderr,
              disable=True if args.quiet or total <= 16 else None) as bar:  # None: TTYs only
        for seeds in args.seeds.batches(args.batch):
            z = _latents(G, seeds, device)
            c = _labels(G, args.class_idx, len(seeds), device)
            images = sample(z, c).cpu()
            for seed, img in zip(seeds, images, strict=True):
                save(img[None], outdir / f"seed{seed:04d}.png", 1, quiet=quiet_files)
            if grid is not None:
                grid.append(images)
            bar.update(len(seeds))
    if quiet_files:
        print(f"wrote {total:,} images to {outdir}")
    if grid is not None:
        images = torch.cat(grid)
        save(images, outdir / "grid.png", args.grid_cols or min(len(images), 8))


def _draw_direction(args, G, save, outdir: Path, device, trunc, synth) -> None:
    """``--direction``: each seed along the direction file, a row per seed (``seedNNNN.png``)
    and a column per strength; ``grid.png`` of all the rows."""
    seeds = list(args.seeds)
    strengths = list(args.strength or DEFAULT_STRENGTHS)
    ws = G.mapping(_latents(G, seeds, device), _labels(G, args.class_idx, len(seeds), device),
                   **trunc)
    grid = _render_direction(G, ws, args.direction, strengths, **synth).cpu()
    k = len(strengths)
    for i, seed in enumerate(seeds):
        save(grid[i * k : (i + 1) * k], outdir / f"seed{seed:04d}.png", k)
    save(grid, outdir / "grid.png", k)


def _render_direction(G, ws, direction_path: str, strengths, **synthesis_kwargs):
    """``generate --direction``: the edit grid of ``ws`` (rows) by ``strengths`` (columns).
    A direction file that does not fit ``G`` is a ``ValueError``; one found on another network
    of the same shape gives a warning line."""
    from gankern.editing import edit_grid, load_direction

    try:
        direction = load_direction(direction_path)
        same = direction.check_network(G)
    except ValueError as exc:
        raise ValueError(f"--direction: {exc}") from None
    if not same:
        print(f"gankern generate: warning: {direction_path} was found on another generator "
              "of the same shape; the edit may not mean the same thing here", file=sys.stderr)
    return edit_grid(G, ws, direction, strengths, check=False, **synthesis_kwargs)


def _write_video(frames, path: Path) -> None:
    """An animation of ``frames``: GIF with Pillow, other formats with imageio if installed."""
    import numpy as np
    from PIL import Image

    from gankern.train.visuals import to_uint8

    pixels = to_uint8(frames).transpose(0, 2, 3, 1)
    if pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        images = [Image.fromarray(np.ascontiguousarray(p)) for p in pixels]
        images[0].save(path, save_all=True, append_images=images[1:], duration=80, loop=0)
    else:
        import imageio.v2 as imageio

        imageio.mimsave(path, list(pixels), fps=12)
    print(f"wrote {path}")
