"""Image files in a folder (searched recursively) or a zip archive: listing, reading, decoding.

Shared by the datasets and the dataset tool. Only PNG and JPEG files are considered (by
extension, then checked by content); hidden files and folders (a name starting with ``.``)
and macOS ``__MACOSX`` metadata are ignored. Names are relative paths with ``/``
separators, the form ``dataset.json`` uses for its labels.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from dataclasses import dataclass

import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
LABELS_FILE = "dataset.json"
# Pillow plugin ids that Image.open may use; restricting them means a file with a .png name
# is only ever parsed as PNG or JPEG (JPEG includes its MPO variant from cameras).
_PIL_FORMATS = ("PNG", "JPEG")


class CorruptImageError(ValueError):
    """An image file that cannot be read or decoded. ``path`` names it."""

    # A single-argument constructor keeps the error intact when a DataLoader worker
    # process re-raises it in the main process.
    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says: size in pixels, Pillow mode and file format."""

    width: int
    height: int
    mode: str
    format: str


def _is_listed(name: str) -> bool:
    parts = name.split("/")
    if any(part.startswith(".") or part == "__MACOSX" for part in parts):
        return False
    return name.lower().endswith(IMAGE_EXTENSIONS)


class ImageSource:
    """The PNG/JPEG files of a folder (recursive) or a zip archive, or of one subfolder.

    ``names`` is the sorted list of image names. A zip archive is opened lazily, once per
    process (a handle inherited through ``fork`` or pickled to a DataLoader worker is never
    reused), so the object can be shared with worker processes.

    Args:
        path: a folder or a .zip file.
        arg_name: the argument name used in error messages.
        subdir: a subfolder of ``path`` (``"A"``, ``"trainB"``, or nested ``"x/y"``) to read
            instead of the whole of it: names are then relative to the subfolder, and in a
            zip it is the members under ``subdir/`` (at the top of the archive).
    """

    def __init__(self, path, *, arg_name: str = "path", subdir: str | None = None):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"{arg_name} must be a str or os.PathLike, got {type(path).__name__}")
        path = os.fspath(path)
        if not os.path.exists(path):
            raise ValueError(f"{arg_name} must be an existing folder or .zip file, got {path!r} "
                             "(it does not exist)")
        if subdir is not None and (not isinstance(subdir, str) or not subdir.strip("/")):
            raise ValueError(f"subdir must be a non-empty folder name or None, got {subdir!r}")
        self.path = path
        self.arg_name = arg_name
        self._prefix = "" if subdir is None else subdir.strip("/") + "/"
        self._zip_handle: zipfile.ZipFile | None = None
        self._zip_pid: int | None = None
        if os.path.isdir(path):
            self.is_zip = False
            top = os.path.join(path, *self._prefix.split("/"))
            if not os.path.isdir(top):
                raise ValueError(f"{arg_name} {path!r} has no subfolder {subdir!r}")
            names = []
            for root, dirs, files in os.walk(top):
                dirs.sort()
                rel_root = os.path.relpath(root, top)
                for file in files:
                    rel = file if rel_root == "." else os.path.join(rel_root, file)
                    names.append(rel.replace(os.sep, "/"))
            self._all_names = set(names)
        elif zipfile.is_zipfile(path):
            self.is_zip = True
            with zipfile.ZipFile(path) as zf:
                members = [info.filename for info in zf.infolist() if not info.is_dir()]
            self._all_names = {name[len(self._prefix):] for name in members
                               if name.startswith(self._prefix)}
            if self._prefix and not self._all_names:
                raise ValueError(f"{arg_name} {path!r} has no folder {subdir!r} at its top")
        else:
            raise ValueError(f"{arg_name} must be a folder or a .zip file, got {path!r} "
                             "(a file that is not a zip archive)")
        self.names = sorted(name for name in self._all_names if _is_listed(name))

    @property
    def location(self) -> str:
        """The folder read, for messages: ``path``, ``path/subdir`` or ``archive.zip:subdir/``."""
        if not self._prefix:
            return self.path
        if self.is_zip:
            return f"{self.path}:{self._prefix}"
        return os.path.join(self.path, *self._prefix.rstrip("/").split("/"))

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_zip_handle"] = None
        state["_zip_pid"] = None
        return state

    def _zip(self) -> zipfile.ZipFile:
        if self._zip_handle is None or self._zip_pid != os.getpid():
            self._zip_handle = zipfile.ZipFile(self.path)
            self._zip_pid = os.getpid()
        return self._zip_handle

    def close(self) -> None:
        """Close the zip handle of this process, if open (it reopens on the next read)."""
        if self._zip_handle is not None and self._zip_pid == os.getpid():
            self._zip_handle.close()
        self._zip_handle = None

    def describe(self, name: str) -> str:
        """A path naming ``name`` for messages: ``folder/name`` or ``archive.zip:name``."""
        if self.is_zip:
            return f"{self.path}:{self._prefix}{name}"
        return os.path.join(self.path, *(self._prefix + name).split("/"))

    def open(self, name: str):
        """A binary file object for ``name`` (close it after use)."""
        if self.is_zip:
            return self._zip().open(self._prefix + name)
        return open(self.describe(name), "rb")

    def read_bytes(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read()

    def read_labels_json(self) -> dict | None:
        """The parsed ``dataset.json`` at the top of the source, or None if there is none."""
        if LABELS_FILE not in self._all_names:
            return None
        where = self.describe(LABELS_FILE)
        try:
            data = json.loads(self.read_bytes(LABELS_FILE).decode("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot parse {where}: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError(f"{where} must hold a JSON object, got {type(data).__name__}")
        return data


def top_level_folders(path) -> set[str]:
    """The names of the folders at the top of a folder or zip archive (empty for a file that
    is neither)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return {entry.name for entry in os.scandir(path) if entry.is_dir()}
    if os.path.isfile(path) and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            return {name.split("/", 1)[0] for name in zf.namelist() if "/" in name}
    return set()


# Pillow names the file object it was given in some messages ("cannot identify image file
# <_io.BytesIO object at 0x7f...>"): replaced by the file's path.
_FILE_OBJECT_REPR = re.compile(r"<[\w.]+ (?:object at 0x[0-9a-fA-F]+|name=[^>]*)>")


def _reason(exc: Exception, where: str) -> str:
    """Why Pillow could not read ``where``, with file-object reprs replaced by the path."""
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return "not a PNG or JPEG image (or damaged beyond recognition)"
    return _FILE_OBJECT_REPR.sub(where, f"{type(exc).__name__}: {exc}")


def read_image_header(source: ImageSource, name: str) -> ImageHeader:
    """Read only the header of ``name``; raises CorruptImageError naming the file."""
    where = source.describe(name)
    try:
        from PIL import Image

        with source.open(name) as f, Image.open(f, formats=_PIL_FORMATS) as image:
            header = ImageHeader(image.width, image.height, image.mode, image.format)
    except Exception as exc:  # any failure to parse is reported as this file's fault
        raise CorruptImageError(
            f"cannot read image {where}: not a readable PNG or JPEG file "
            f"({_reason(exc, where)})", path=where
        ) from exc
    if header.width <= 0 or header.height <= 0:
        raise CorruptImageError(f"image {where} has an empty size {header.width}x{header.height}",
                                path=where)
    return header


def decode_image(source: ImageSource, name: str, *, mode_conversion=None):
    """Decode ``name`` fully into a Pillow image (loaded, file closed).

    ``mode_conversion`` is an optional function applied to the open image before it is
    returned (the dataset tool uses it for channel conversion). Any failure to read or
    decode, a truncated file included, raises CorruptImageError naming the file.
    """
    from PIL import Image

    where = source.describe(name)
    try:
        data = source.read_bytes(name)
        with Image.open(io.BytesIO(data), formats=_PIL_FORMATS) as image:
            image.load()
            result = image if mode_conversion is None else mode_conversion(image)
            if result is image:
                result = image.copy()
    except Exception as exc:
        raise CorruptImageError(f"cannot decode image {where} ({_reason(exc, where)})",
                                path=where) from exc
    return result


def image_to_chw(image) -> np.ndarray:
    """A mode "L" or "RGB" Pillow image as a contiguous, writable uint8 array [C, H, W]."""
    array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    # Always a copy: Pillow's buffer is read-only, and a one-channel image needs no
    # transposition copy, so a view would reach torch as a non-writable array (a warning).
    return np.array(array.transpose(2, 0, 1), order="C")
