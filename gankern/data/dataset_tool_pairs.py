"""Build paired and unpaired datasets (what ``gankern dataset --layout ...`` runs).

* :func:`convert_paired_dataset` reads pairs from two folders or zips with matching file
  names (``--source A --source-b B``), from one folder or zip with ``A/`` and ``B/``, or from
  side-by-side A|B images, and writes them in either layout: ``"side-by-side"`` (one image
  per pair, A left, B right, pix2pix's layout) or ``"folders"`` (``A/...`` and ``B/...``
  with the same names).
* :func:`convert_unpaired_dataset` reads two domains (``--source A --source-b B``, or one
  source with ``trainA/`` and ``trainB/``) and writes CycleGAN's ``trainA/`` and ``trainB/``.

Images are converted as :func:`~gankern.data.dataset_tool.convert_dataset` converts them
(channels, center crops, LANCZOS resizing, PNG), each side of a pair on its own (so a
side-by-side input is split before it is resized), and written under StyleGAN2-ADA's names
``00000/img00000000.png``, ... with a ``dataset.json`` (``"labels": null`` and the
``"layout"``) at the top, atomically (nothing is left behind by a failed conversion).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from gankern.data.dataset_tool import (
    ConversionResult,
    UniformImages,
    Writer,
    archive_name,
    check_channels,
    check_conversion_args,
    check_dest,
    convert_images,
    load_converted,
    png_bytes,
    progress_bar,
    to_channels,
    transform_image,
)
from gankern.data.image_files import (
    LABELS_FILE,
    CorruptImageError,
    ImageSource,
    decode_image,
    top_level_folders,
)
from gankern.data.paired import match_pairs

PAIR_LAYOUTS = ("side-by-side", "folders")


@dataclass
class PairConversionResult(ConversionResult):
    """What :func:`convert_paired_dataset` / :func:`convert_unpaired_dataset` wrote:
    ``num_images`` pairs (paired) or A images (unpaired), ``channels`` of A; B's below."""

    layout: str = ""
    channels_b: int = 0
    num_images_b: int = 0


def _open_sides(source, source_b, folders) -> tuple[ImageSource, ImageSource] | None:
    """The A and B sources: ``source`` and ``source_b``, or ``source``'s two ``folders``;
    None when ``source`` alone has no such folders."""
    if source_b is not None:
        return (ImageSource(source, arg_name="--source"),
                ImageSource(source_b, arg_name="--source-b"))
    if set(folders) <= top_level_folders(source):
        return tuple(ImageSource(source, arg_name="--source", subdir=f) for f in folders)
    return None


def _load_side_by_side(src: ImageSource, name: str, channels, channels_b, resolution,
                       transform):
    """The two halves of a side-by-side image, converted each on its own."""
    image = decode_image(src, name)
    width, height = image.size
    if width % 2:
        raise ValueError(f"side-by-side pairs need an even width (A is the left half, B the "
                         f"right): {src.describe(name)} is {width}x{height}")
    halves = image.crop((0, 0, width // 2, height)), image.crop((width // 2, 0, width, height))
    return tuple(transform_image(to_channels(half, ch), resolution, transform)
                 for half, ch in zip(halves, (channels, channels_b), strict=True))


def convert_paired_dataset(
    source,
    dest,
    *,
    source_b=None,
    layout: str = "side-by-side",
    resolution=None,
    transform: str | None = None,
    channels: int | None = None,
    channels_b: int | None = None,
    max_images: int | None = None,
    skip_bad: bool = False,
    progress: bool = True,
) -> PairConversionResult:
    """Convert pairs of images into a paired dataset at ``dest``.

    Args:
        source: the A images (a folder or .zip), matched by name with ``source_b``; without
            ``source_b``, a folder or .zip holding ``A/`` and ``B/``, or else side-by-side
            A|B images.
        dest: a .zip (must not exist) or a folder (empty or new).
        source_b: the B images (a folder or .zip), or None.
        layout: ``"side-by-side"`` or ``"folders"`` (``A/`` and ``B/``) for the output.
        resolution, transform: as :func:`~gankern.data.dataset_tool.convert_dataset`,
            applied to each image of a pair.
        channels, channels_b: 1 or 3 for the A and B images (None keeps them; images of one
            side must then agree). Side by side needs one channel count for both.
        max_images: write at most this many pairs.
        skip_bad: leave out (and count) the pairs with an unreadable image instead of
            stopping with an error that names the file.
        progress: show a progress bar on stderr.

    Raises ValueError (TypeError for wrong types) naming the argument or the file: a missing
    partner, images of different sizes, an odd side-by-side width, ...
    """
    if layout not in PAIR_LAYOUTS:
        raise ValueError(f"--layout must be one of {', '.join(PAIR_LAYOUTS)} for pairs, "
                         f"got {layout!r}")
    resolution, max_images = check_conversion_args(resolution, transform, channels, max_images)
    check_channels(channels_b, "--channels-b")
    sides = _open_sides(source, source_b, ("A", "B"))
    if sides is None:  # side-by-side input
        src = ImageSource(source, arg_name="--source")
        sources, items = (src,), [(name,) for name in src.names]
    else:
        sources, items = sides, match_pairs(sides)
    dest = check_dest(dest, *sources)
    if not items:
        where = " and ".join(repr(s.location) for s in sources)
        raise ValueError(f"--source {where} contains no PNG or JPEG images")

    def load(item):
        if len(item) == 1:
            return _load_side_by_side(sources[0], item[0], channels, channels_b, resolution,
                                      transform)
        return tuple(load_converted(src, name, ch, resolution, transform)
                     for src, name, ch in zip(sources, item, (channels, channels_b),
                                              strict=True))

    writer = Writer(dest)
    uniform = (UniformImages("A images"), UniformImages("B images"))
    written, skipped = 0, []
    total = len(items) if max_images is None else min(max_images, len(items))
    try:
        with progress_bar(total, progress) as bar:
            for item in items:
                if max_images is not None and written >= max_images:
                    break
                wheres = [src.describe(name) for src, name in zip(sources, item, strict=False)]
                try:
                    pair = load(item)
                except CorruptImageError as exc:
                    if not skip_bad:
                        raise ValueError(f"{exc} (use --skip-bad to skip unreadable files)") \
                            from exc
                    skipped.append(exc.path)
                    bar.total = min(total, len(items) - len(skipped))
                    bar.refresh()
                    continue
                if len(wheres) == 1:
                    wheres = [f"{wheres[0]} (left half)", f"{wheres[0]} (right half)"]
                for check, image, where in zip(uniform, pair, wheres, strict=True):
                    check.check(image, where)
                if pair[0].size != pair[1].size:
                    raise ValueError(
                        f"the images of a pair must have one size after conversion: {wheres[0]}"
                        f" is {pair[0].width}x{pair[0].height} but {wheres[1]} is "
                        f"{pair[1].width}x{pair[1].height}; give --resolution WxH")
                _write_pair(writer, layout, written, pair, wheres)
                written += 1
                bar.update(1)
        if not written:
            raise ValueError(f"no readable pair in the sources ({len(skipped)} skipped)")
        meta = {"labels": None, "layout": layout}
        writer.write(LABELS_FILE, json.dumps(meta).encode("utf-8"))
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    finally:
        for src in sources:
            src.close()
    (width, height, ca), (_, _, cb) = uniform[0].shape, uniform[1].shape
    return PairConversionResult(dest=dest, num_images=written, width=width, height=height,
                                channels=ca, has_labels=False, skipped_files=skipped,
                                layout=layout, channels_b=cb, num_images_b=written)


def _write_pair(writer: Writer, layout: str, index: int, pair, wheres) -> None:
    a, b = pair
    if layout == "folders":
        writer.write(f"A/{archive_name(index)}", png_bytes(a))
        writer.write(f"B/{archive_name(index)}", png_bytes(b))
        return
    from PIL import Image

    if a.mode != b.mode:
        raise ValueError(
            f"side-by-side pairs need one channel count: {wheres[0]} has mode {a.mode!r} but "
            f"{wheres[1]} has {b.mode!r}; give --channels and --channels-b the same value, or "
            "--layout folders")
    canvas = Image.new(a.mode, (2 * a.width, a.height))
    canvas.paste(a, (0, 0))
    canvas.paste(b, (a.width, 0))
    writer.write(archive_name(index), png_bytes(canvas))


def convert_unpaired_dataset(
    source,
    dest,
    *,
    source_b=None,
    split: str = "train",
    resolution=None,
    transform: str | None = None,
    channels: int | None = None,
    channels_b: int | None = None,
    max_images: int | None = None,
    skip_bad: bool = False,
    progress: bool = True,
) -> PairConversionResult:
    """Convert two domains of images into CycleGAN's layout at ``dest``.

    Args:
        source: domain A (a folder or .zip); without ``source_b``, a folder or .zip holding
            ``<split>A/`` and ``<split>B/``.
        dest: a .zip (must not exist) or a folder (empty or new); gets ``<split>A/`` and
            ``<split>B/``.
        source_b: domain B, or None.
        split: the folder prefix, ``"train"`` (default) or ``"test"``, ...
        resolution, transform, max_images, skip_bad, progress: as
            :func:`~gankern.data.dataset_tool.convert_dataset`, for each domain.
        channels, channels_b: 1 or 3 for domain A and B (None keeps them).

    The two domains must end up with one image size (their channel counts may differ).
    """
    if not isinstance(split, str) or not split or "/" in split:
        raise ValueError(f"--split must be a folder prefix such as 'train', got {split!r}")
    resolution, max_images = check_conversion_args(resolution, transform, channels, max_images)
    check_channels(channels_b, "--channels-b")
    folders = (f"{split}A", f"{split}B")
    sources = _open_sides(source, source_b, folders)
    if sources is None:
        raise ValueError(f"--source {source!r} must hold the folders {folders[0]}/ and "
                         f"{folders[1]}/, or give the second domain with --source-b")
    dest = check_dest(dest, *sources)
    for src, arg in zip(sources, ("--source", "--source-b"), strict=True):
        if not src.names:
            raise ValueError(f"{arg} {src.location!r} contains no PNG or JPEG images")
    writer = Writer(dest)
    results, skipped = [], []
    total = sum(len(s.names) if max_images is None else min(max_images, len(s.names))
                for s in sources)
    try:
        with progress_bar(total, progress) as bar:
            for src, folder, ch, arg in zip(sources, folders, (channels, channels_b),
                                            ("--source", "--source-b"), strict=True):
                entries, side_skipped, uniform = convert_images(
                    src, writer, channels=ch, resolution=resolution, transform=transform,
                    max_images=max_images, skip_bad=skip_bad, bar=bar, prefix=f"{folder}/",
                    arg_name=arg)
                results.append((len(entries), uniform))
                skipped += side_skipped
        (na, ua), (nb, ub) = results
        if ua.shape[:2] != ub.shape[:2]:
            raise ValueError(
                f"the two domains must have one image size after conversion: {ua.first} is "
                f"{ua.shape[0]}x{ua.shape[1]} but {ub.first} is {ub.shape[0]}x{ub.shape[1]}; "
                "give --resolution WxH")
        meta = {"labels": None, "layout": "unpaired"}
        writer.write(LABELS_FILE, json.dumps(meta).encode("utf-8"))
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    finally:
        for src in sources:
            src.close()
    return PairConversionResult(dest=dest, num_images=na, width=ua.shape[0],
                                height=ua.shape[1], channels=ua.shape[2], has_labels=False,
                                skipped_files=skipped, layout="unpaired",
                                channels_b=ub.shape[2], num_images_b=nb)
