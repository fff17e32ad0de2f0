"""``gankern edit``: find a latent direction and render a grid of images along it.

Methods (``--method``):

* ``ganspace``: principal component ``--component K`` of w (or, ``--space style``, of the
  styles) over ``--num-samples`` random latents;
* ``sefa``: eigenvector ``--component K`` of the affine layers' weights (closed form);
* ``interfacegan``: the normal of a linear boundary between latents scored by
  ``--attribute`` (``--classifier svm|logistic``); ``--condition`` (repeatable) keeps
  other attributes unchanged;
* ``stylespace``: the ``--top-channels`` style channels that move ``--attribute`` most.

Attributes that work offline on the built-in digits: ``thickness`` (ink mass) and
``class:A,B`` (the built-in digits classifier's log p(A) - log p(B)).

``--layers`` picks the ws rows a w-space direction moves (and which rows' affine layers
SeFa factorizes; for style-space methods, the style layers reading those rows).
``--strength`` is in standard deviations of the latents along the direction.

Writes ``edit.png`` (a row per ``--seeds`` seed, or the latent of ``--latent`` from
``gankern project``; a column per strength) and the direction file
(``<method>.safetensors``, or ``--direction-out``), which ``gankern generate --direction``
and ``gankern.editing.load_direction`` read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gankern.cli.arguments import add_device_arguments, resolve_device
from gankern.cli.generate import (
    _int_at_least,
    _number,
    allow_negative_lists,
    parse_float_list,
    parse_int_list,
)

METHODS = ("ganspace", "sefa", "interfacegan", "stylespace")
DEFAULT_SAMPLES = {"ganspace": 10_000, "sefa": 2000, "interfacegan": 2000, "stylespace": 16}
# StyleSpace measures every channel of the chosen layers up to this many, else screens.
MAX_MEASURED_CHANNELS = 1024
SCREENED_CANDIDATES = 256


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "edit",
        help="find a latent direction (GANSpace, SeFa, InterFaceGAN, StyleSpace) and render it",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", help="a snapshot-*.safetensors file or a run directory")
    p.add_argument("--method", choices=METHODS, required=True)
    p.add_argument("--component", type=_int_at_least(0), default=0,
                   help="ganspace, sefa: which component, 0 = the most important (default 0)")
    p.add_argument("--space", choices=("w", "style"), default="w",
                   help="ganspace: PCA of w or of the styles (default w)")
    p.add_argument("--layers", type=parse_int_list,
                   help="ws rows the direction moves, e.g. 0-3 (default: all)")
    p.add_argument("--attribute", help="interfacegan, stylespace: 'thickness' or 'class:A,B'")
    p.add_argument("--condition", action="append", default=[],
                   help="interfacegan: an attribute to keep unchanged (repeatable)")
    p.add_argument("--classifier", choices=("svm", "logistic"), default="svm",
                   help="interfacegan: the linear classifier (default svm)")
    p.add_argument("--top-channels", type=_int_at_least(1), default=3,
                   help="stylespace: channels the direction moves (default 3)")
    p.add_argument("--candidates", type=_int_at_least(1),
                   help="stylespace: measure only this many channels, screened by gradient "
                        f"(default: all up to {MAX_MEASURED_CHANNELS}, else "
                        f"{SCREENED_CANDIDATES})")
    p.add_argument("--num-samples", type=_int_at_least(2),
                   help="random latents the method uses (default: ganspace "
                        f"{DEFAULT_SAMPLES['ganspace']}, interfacegan "
                        f"{DEFAULT_SAMPLES['interfacegan']}, stylespace "
                        f"{DEFAULT_SAMPLES['stylespace']} per channel)")
    p.add_argument("--strength", type=parse_float_list, default=[-3, -1.5, 0, 1.5, 3],
                   help="strengths of the grid's columns (default -3,-1.5,0,1.5,3)")
    p.add_argument("--seeds", type=parse_int_list, default=[0, 1, 2, 3, 4, 5],
                   help="seeds of the grid's rows (default 0-5)")
    p.add_argument("--latent", help="a projected_w.npz from gankern project: edit it instead")
    p.add_argument("--trunc", type=_number, default=1.0, help="truncation psi (default 1)")
    p.add_argument("--class", dest="class_idx", type=_int_at_least(0),
                   help="class label (conditional models)")
    p.add_argument("--seed", type=int, default=0, help="seed of the method's samples")
    p.add_argument("--outdir", default="edits", help="output folder (default edits)")
    p.add_argument("--direction-out", help="where to write the direction file")
    add_device_arguments(p)
    allow_negative_lists(p)
    p.set_defaults(func=run)


def load_style_generator(command: str, args):
    """The generator of ``args.checkpoint`` on ``--device``; ``ValueError`` (one line through
    the CLI's error path) when it is not a style-based model."""
    from gankern.ops import require_backend
    from gankern.train.families import get_family
    from gankern.train.networks import checkpoint_model, load_generator

    device = resolve_device(args.device)
    require_backend(args.impl, device, "--impl")
    G = load_generator(args.checkpoint, device=device, which=args.network, impl=args.impl)
    family = get_family(checkpoint_model(G.checkpoint_metadata))
    if not family.style_based:
        raise ValueError(f"{command} needs a style-based generator (StyleGAN family); model "
                         f"{family.name!r} has none")
    return G


def _style_layer_names(G, rows):
    from gankern.editing.layers import style_layers

    if rows is None:
        return None
    names = [layer.name for layer in style_layers(G) if layer.ws_index in set(rows)]
    if not names:
        raise ValueError(f"--layers must be ws rows in [0, {G.num_ws - 1}], got {rows}")
    return names


def find_direction(G, args):
    """The direction ``args`` asks for, and a few lines describing it."""
    from gankern.editing import ganspace, interfacegan, sefa, stylespace
    from gankern.editing.layers import style_layers

    n = args.num_samples or DEFAULT_SAMPLES[args.method]
    common = dict(seed=args.seed)
    if args.method in ("interfacegan", "stylespace") and not args.attribute:
        raise ValueError(f"--method {args.method} needs --attribute ('thickness' or "
                         "'class:A,B')")
    if args.method == "ganspace":
        style = args.space == "style"
        layers = _style_layer_names(G, args.layers) if style else args.layers
        comps = ganspace(G, num_samples=n, space=args.space, layers=layers,
                         class_idx=args.class_idx, truncation_psi=args.trunc, **common)
        d = comps.direction(args.component)
        ratio = comps.info["explained_variance_ratio"][args.component]
        return d, [f"GANSpace ({args.space}, {n} samples): component {args.component} of "
                   f"{len(comps)} explains {ratio:.1%} of the variance"]
    if args.method == "sefa":
        comps = sefa(G, layers=args.layers, num_samples=n, **common)
        d = comps.direction(args.component)
        return d, [f"SeFa: component {args.component} of {len(comps)}, eigenvalue "
                   f"{float(comps.values[args.component]):.4g}"]
    if args.method == "interfacegan":
        d = interfacegan(G, args.attribute, conditions=args.condition, num_samples=n,
                         method=args.classifier, layers=args.layers, class_idx=args.class_idx,
                         truncation_psi=args.trunc, **common)
        lines = [f"InterFaceGAN ({args.classifier}, {n} samples): boundary of "
                 f"{d.info['attribute']}, validation accuracy {d.info['val_accuracy']:.3f}"]
        for name, cos in zip(d.info.get("conditions", []), d.info.get("cosine_before", []),
                             strict=True):
            lines.append(f"  conditioned on {name} (cosine before projecting out: {cos:+.3f})")
        return d, lines
    names = _style_layer_names(G, args.layers)
    total = sum(l.channels for l in style_layers(G) if names is None or l.name in names)
    candidates = args.candidates
    if candidates is None and total > MAX_MEASURED_CHANNELS:
        candidates = SCREENED_CANDIDATES
    channels = stylespace(G, args.attribute, num_samples=n, layers=names,
                          candidates=candidates, class_idx=args.class_idx,
                          truncation_psi=args.trunc, **common)
    d = channels.direction(top_k=args.top_channels)
    lines = [f"StyleSpace: {int(channels.measured.sum())} of {total} channels measured on "
             f"{n} samples; strongest for {channels.attribute}:"]
    lines += [f"  {layer}[{c}]: {effect:+.4g} per std" for layer, c, effect
              in channels.top(args.top_channels)]
    return d, lines


def _rows(G, args):
    """The latents of the grid's rows and the generator to render them with."""
    from gankern.editing import load_projection, with_noise, ws_for_seeds

    if args.latent is None:
        return ws_for_seeds(G, args.seeds, args.class_idx, args.trunc), G
    ws, noise = load_projection(args.latent)
    if tuple(ws.shape[1:]) != (G.num_ws, G.w_dim):
        raise ValueError(f"--latent {args.latent} holds ws of shape {list(ws.shape[1:])}, this "
                         f"generator needs [{G.num_ws}, {G.w_dim}]")
    return ws.to(next(G.parameters()).device), (with_noise(G, noise) if noise else G)


def save_grid(images, path: Path, cols: int) -> None:
    from gankern.train.checkpoint import atomic_write_bytes
    from gankern.train.visuals import encode_png, tile_images, to_uint8

    atomic_write_bytes(path, encode_png(tile_images(to_uint8(images), cols)))
    print(f"wrote {path}")


def run(args) -> int:
    import torch

    from gankern.editing import edit_grid, save_direction
    from gankern.fileio import check_can_create

    outdir = Path(args.outdir)
    check_can_create(outdir, "--outdir")
    if args.direction_out:
        check_can_create(Path(args.direction_out), "--direction-out")
    G = load_style_generator("edit", args)
    with torch.no_grad():
        direction, lines = find_direction(G, args)
        ws, G_rows = _rows(G, args)
        grid = edit_grid(G_rows, ws, direction, args.strength, check=False)
    for line in lines:
        print(line)
    outdir.mkdir(parents=True, exist_ok=True)
    save_grid(grid, outdir / "edit.png", len(args.strength))
    suffix = f"-{args.component}" if args.method in ("ganspace", "sefa") else ""
    path = Path(args.direction_out or outdir / f"{args.method}{suffix}.safetensors")
    save_direction(direction, path)
    print(f"wrote {path}")
    return 0
