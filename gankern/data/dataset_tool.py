"""Convert a folder or zip of images into a training dataset (what ``gankern dataset`` runs).

Like StyleGAN2-ADA's dataset tool: every image is read (PNG or JPEG), converted to 1 or 3
channels, optionally center-cropped and resized (Pillow LANCZOS), and written as PNG to
``00000/img00000000.png``, ``00000/img00000001.png``, ... in a zip archive or a folder,
with a ``dataset.json`` that carries over the source's labels (``"labels": null`` when it
has none). The output is written to a temporary name first and moved into place only when
complete, so a failed conversion never leaves a partial dataset behind.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import sys
import zipfile
from dataclasses import dataclass, field

import numpy as np

from gankern.data.dataset import check_optional_int
from gankern.data.image_files import (
    LABELS_FILE,
    CorruptImageError,
    ImageSource,
    decode_image,
)
from gankern.data.labels import labels_to_array, read_label_map
from gankern.fileio import check_can_create, remove_stale_temp_files

TRANSFORMS = ("center-crop", "center-crop-wide")
MAX_SIDE = 65536
# Pillow modes with a single (gray) channel, possibly plus alpha; every other mode is color.
_GRAY_MODES = ("1", "L", "LA", "La", "I", "F", "I;16", "I;16B", "I;16L", "I;16N")


@dataclass
class ConversionResult:
    """What ``convert_dataset`` wrote."""

    dest: str
    num_images: int
    width: int
    height: int
    channels: int
    has_labels: bool
    skipped_files: list[str] = field(default_factory=list)

    @property
    def num_skipped(self) -> int:
        return len(self.skipped_files)


def parse_resolution(text) -> tuple[int, int]:
    """``"WxH"`` (or ``"N"`` for NxN) as (width, height); ValueError naming --resolution."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", str(text))
    if not match:
        raise ValueError(f"--resolution must be WxH (e.g. 256x256) or a single size, got {text!r}")
    width = int(match.group(1))
    height = int(match.group(2) or width)
    for side in (width, height):
        if not 1 <= side <= MAX_SIDE:
            raise ValueError(f"--resolution sides must be between 1 and {MAX_SIDE}, got {text!r}")
    return width, height


def to_channels(image, channels: int | None):
    """Convert a Pillow image to mode "L" (1 channel) or "RGB" (3); alpha is dropped."""
    from PIL import Image

    if channels is None:
        channels = 1 if image.mode in _GRAY_MODES else 3
    if image.mode.startswith("I") or image.mode == "F":
        # 16/32-bit integer or float gray: Pillow's convert clips to 0..255, so rescale the
        # 16-bit range explicitly (PNG's 16-bit gray opens as one of these modes).
        array = np.asarray(image, dtype=np.float64)
        if image.mode != "F":
            array = array / 257.0
        image = Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8))
    return image.convert("L" if channels == 1 else "RGB")


def _crop_to_aspect(image, aspect: float):
    """The largest centered region of ``image`` with width / height == ``aspect``."""
    width, height = image.size
    if width / height > aspect:
        crop_w, crop_h = max(1, round(height * aspect)), height
    else:
        crop_w, crop_h = width, max(1, round(width / aspect))
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    return image.crop((left, top, left + crop_w, top + crop_h))


def transform_image(image, resolution: tuple[int, int] | None, transform: str | None):
    """Apply the crop/resize of ``convert_dataset`` to one Pillow image.

    * no transform: resize to ``resolution`` (if given), ignoring the aspect ratio.
    * "center-crop": crop the largest centered region with the aspect of ``resolution``
      (a square without ``resolution``), then resize to ``resolution``.
    * "center-crop-wide": crop the largest centered region with the aspect W:H of
      ``resolution`` (W >= H), resize it to WxH and paste it in the middle of a black WxW
      square, as StyleGAN2-ADA does for wide images (LSUN cars at 512x384, for example).
    """
    from PIL import Image

    lanczos = Image.Resampling.LANCZOS
    if transform == "center-crop":
        aspect = 1.0 if resolution is None else resolution[0] / resolution[1]
        image = _crop_to_aspect(image, aspect)
    elif transform == "center-crop-wide":
        width, height = resolution
        image = _crop_to_aspect(image, width / height).resize((width, height), lanczos)
        canvas = Image.new(image.mode, (width, width))
        canvas.paste(image, (0, (width - height) // 2))
        return canvas
    if resolution is not None and image.size != tuple(resolution):
        image = image.resize(tuple(resolution), lanczos)
    return image


def archive_name(index: int) -> str:
    """Name of the ``index``-th output image, StyleGAN2-ADA's layout."""
    return f"{index // 1000:05d}/img{index:08d}.png"


class Writer:
    """Writes files into a temporary zip or folder; ``commit`` moves it to ``dest``.

    A temporary output of an earlier conversion to the same ``dest`` that was killed
    half-way is removed first. A failed write (a read-only or full disk) raises an OSError
    naming ``--dest``.
    """

    def __init__(self, dest: str):
        self.dest = dest
        self.is_zip = dest.lower().endswith(".zip")
        parent = os.path.dirname(os.path.abspath(dest))
        prefix = f".{os.path.basename(dest)}.tmp-"
        self.tmp = os.path.join(parent, f"{prefix}{os.getpid()}")
        self.zip = None
        with self._naming_dest():
            os.makedirs(parent, exist_ok=True)
            remove_stale_temp_files(parent, prefix=prefix)
            self._remove_tmp()
            if self.is_zip:
                self.zip = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_STORED)
            else:
                os.makedirs(self.tmp)

    @contextlib.contextmanager
    def _naming_dest(self):
        try:
            yield
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise type(exc)(exc.errno, f"cannot write --dest {self.dest}: {reason}") from exc

    def write(self, name: str, data: bytes) -> None:
        with self._naming_dest():
            if self.is_zip:
                self.zip.writestr(name, data)
                return
            path = os.path.join(self.tmp, *name.split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)

    def commit(self) -> None:
        with self._naming_dest():
            self._commit()

    def _commit(self) -> None:
        if self.is_zip:
            self.zip.close()
            with open(self.tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(self.tmp, self.dest)
        else:
            if os.path.isdir(self.dest):
                os.rmdir(self.dest)  # checked empty before the conversion started
            os.rename(self.tmp, self.dest)

    def _remove_tmp(self) -> None:
        if os.path.isdir(self.tmp):
            shutil.rmtree(self.tmp)
        elif os.path.exists(self.tmp):
            os.remove(self.tmp)

    def abort(self) -> None:
        if self.zip is not None:
            with contextlib.suppress(OSError):
                self.zip.close()
        with contextlib.suppress(OSError):
            self._remove_tmp()


def check_dest(dest, *sources: ImageSource) -> str:
    """``dest`` as a str: a .zip that does not exist or an empty (or new) folder, not inside
    any of the ``sources``; ValueError naming --dest otherwise."""
    if not isinstance(dest, (str, os.PathLike)):
        raise TypeError(f"--dest must be a path, got {type(dest).__name__}")
    dest = os.fspath(dest)
    if not dest:
        raise ValueError("--dest must be a .zip file or a folder, got ''")
    if dest.lower().endswith(".zip"):
        if os.path.exists(dest):
            raise ValueError(f"--dest {dest!r} already exists; remove it or choose another name")
    elif os.path.isfile(dest):
        raise ValueError(f"--dest must be a .zip file or a folder, got the existing file {dest!r}")
    elif os.path.isdir(dest) and os.listdir(dest):
        raise ValueError(f"--dest folder {dest!r} must be empty or not exist, it has files")
    for source in sources:
        if not source.is_zip:
            src, out = os.path.realpath(source.path), os.path.realpath(dest)
            if out == src or out.startswith(src + os.sep):
                raise ValueError(f"--dest {dest!r} must not be inside {source.arg_name} "
                                 f"{source.path!r}")
    check_can_create(dest, "--dest")  # a read-only place fails now, not after the reading
    return dest


def convert_dataset(
    source,
    dest,
    *,
    resolution: tuple[int, int] | str | None = None,
    transform: str | None = None,
    channels: int | None = None,
    max_images: int | None = None,
    skip_bad: bool = False,
    progress: bool = True,
) -> ConversionResult:
    """Convert the images of ``source`` (a folder or zip) into a dataset at ``dest``.

    Args:
        source: a folder (searched recursively) or a .zip of PNG/JPEG images, optionally
            with a ``dataset.json`` of labels.
        dest: a path ending in .zip (a zip archive, which must not exist) or a folder
            (which must be empty or not exist).
        resolution: output (width, height), or "WxH"; None keeps the source size, in which
            case all images must already have one size.
        transform: None, "center-crop" or "center-crop-wide" (see ``transform_image``;
            "center-crop-wide" needs ``resolution`` with width >= height).
        channels: 1 (grayscale) or 3 (RGB); None keeps each image's kind, in which case
            all images must be of one kind. Alpha channels are dropped.
        max_images: stop after writing this many images.
        skip_bad: skip (and count) unreadable files instead of stopping with an error
            that names the file.
        progress: show a tqdm progress bar on stderr.

    Raises ValueError (TypeError for wrong types) naming the argument or the file.
    """
    src = ImageSource(source, arg_name="--source")
    resolution, max_images = check_conversion_args(resolution, transform, channels, max_images)
    dest = check_dest(dest, src)
    if not src.names:
        raise ValueError(f"--source {src.path!r} contains no PNG or JPEG images")
    label_map = read_label_map(src)
    if label_map is not None:  # every label valid before anything is written
        labels_to_array(label_map, sorted(label_map), src.describe(LABELS_FILE))

    writer = Writer(dest)
    total = len(src.names) if max_images is None else min(max_images, len(src.names))
    try:
        with progress_bar(total, progress) as bar:
            labels, skipped, uniform = convert_images(
                src, writer, channels=channels, resolution=resolution, transform=transform,
                max_images=max_images, skip_bad=skip_bad, bar=bar, label_map=label_map)
        meta = {"labels": labels if label_map is not None else None}
        writer.write(LABELS_FILE, json.dumps(meta).encode("utf-8"))
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    finally:
        src.close()
    width, height, channels = uniform.shape
    return ConversionResult(dest=dest, num_images=len(labels), width=width, height=height,
                            channels=channels, has_labels=label_map is not None,
                            skipped_files=skipped)


def convert_images(src: ImageSource, writer: Writer, *, channels, resolution, transform,
                   max_images, skip_bad: bool, bar, label_map: dict | None = None,
                   prefix: str = "", arg_name: str = "--source"):
    """Convert the images of ``src`` into ``writer`` under ``prefix`` (``archive_name``s).

    Returns ``(entries, skipped, uniform)``: ``[[written name, label or None], ...]``, the
    paths of the skipped unreadable files (``skip_bad``; otherwise the first one raises a
    ValueError naming it), and the :class:`UniformImages` check holding the images' shape.
    ``bar`` is a progress bar (:func:`progress_bar`).
    """
    entries, skipped = [], []
    uniform = UniformImages()
    total = bar.total
    for name in src.names:
        if max_images is not None and len(entries) >= max_images:
            break
        where = src.describe(name)
        try:
            image = load_converted(src, name, channels, resolution, transform)
        except CorruptImageError as exc:
            if not skip_bad:
                raise ValueError(f"{exc} (use --skip-bad to skip unreadable files)") from exc
            skipped.append(where)
            bar.total = min(total, len(src.names) - len(skipped))
            bar.refresh()
            continue
        uniform.check(image, where)
        label = None
        if label_map is not None:
            if name not in label_map:
                raise ValueError(f"{src.describe(LABELS_FILE)} has no label for {where}")
            label = label_map[name]
        out_name = prefix + archive_name(len(entries))
        writer.write(out_name, png_bytes(image))
        entries.append([out_name, label])
        bar.update(1)
    if not entries:
        raise ValueError(f"no readable image in {arg_name} {src.location!r} "
                         f"({len(skipped)} unreadable file(s) skipped)")
    return entries, skipped, uniform


def check_conversion_args(resolution, transform, channels, max_images, *,
                          channels_name: str = "--channels"):
    """Validate the shared conversion options; returns (resolution as (W, H) or None,
    max_images)."""
    if isinstance(resolution, str):
        resolution = parse_resolution(resolution)
    elif resolution is not None:
        if not (isinstance(resolution, (tuple, list)) and len(resolution) == 2):
            raise TypeError(f"--resolution must be (width, height) or 'WxH', got {resolution!r}")
        resolution = parse_resolution(f"{resolution[0]}x{resolution[1]}")
    if transform is not None and transform not in TRANSFORMS:
        raise ValueError(f"--transform must be one of {', '.join(TRANSFORMS)}, got {transform!r}")
    if transform == "center-crop-wide":
        if resolution is None:
            raise ValueError("--transform center-crop-wide needs --resolution WxH")
        if resolution[0] < resolution[1]:
            raise ValueError("--transform center-crop-wide needs a wide --resolution WxH with "
                             f"W >= H, got {resolution[0]}x{resolution[1]}")
    check_channels(channels, channels_name)
    max_images = check_optional_int("--max-images", max_images, min_value=1)
    return resolution, max_images


def check_channels(channels, name: str = "--channels") -> None:
    """None, 1 or 3; ValueError naming ``name`` otherwise."""
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise ValueError(f"{name} must be 1 or 3, got {channels!r}")


def load_converted(src: ImageSource, name: str, channels, resolution, transform):
    """Decode ``name`` (CorruptImageError naming it), convert its channels, crop and resize."""
    image = decode_image(src, name, mode_conversion=lambda im: to_channels(im, channels))
    return transform_image(image, resolution, transform)


def png_bytes(image) -> bytes:
    """A Pillow image encoded as PNG (fast compression)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def progress_bar(total: int, enabled: bool):
    """A tqdm bar on stderr when it is a terminal (never when ``enabled`` is False)."""
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc="gankern dataset", disable=None if enabled else True,
                file=sys.stderr)


class UniformImages:
    """Checks that converted images share the first one's size and channel count.

    ``shape`` is ``(width, height, channels)`` of the first image checked.
    """

    def __init__(self, what: str = "images"):
        self.what = what
        self.shape = self.first = None

    def check(self, image, where: str) -> None:
        this = (image.width, image.height, len(image.getbands()))
        if self.shape is None:
            self.shape, self.first = this, where
        elif this != self.shape:
            raise ValueError(
                f"{self.what} differ: {where} is {this[0]}x{this[1]} with {this[2]} "
                f"channel(s) after conversion, but {self.first} is {self.shape[0]}x"
                f"{self.shape[1]} with {self.shape[2]}; give --resolution WxH (and --channels "
                "1|3) to make them uniform"
            )
