"""Reading images and label maps, checking them, and writing palette label PNGs.

Every failure raises ``DataError`` whose message starts with the offending file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from humanparse.errors import DataError

from .records import Record

__all__ = [
    "read_image",
    "decode_image",
    "read_label",
    "read_id_map",
    "merge_person_maps",
    "read_person_maps",
    "load_label",
    "check_pair",
    "write_label_png",
]

# Exceptions Pillow raises for missing, truncated or undecodable files.
_PIL_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def _open_loaded(path: Path, what: str) -> Image.Image:
    if not path.is_file():
        raise DataError(path, f"{what} file not found")
    try:
        img = Image.open(path)
        img.load()  # decode now, so truncated files fail here and not later
    except _PIL_ERRORS as exc:
        raise DataError(path, f"cannot read {what}: {exc}") from exc
    return img


def read_image(path: str | Path, *, apply_exif: bool = True) -> np.ndarray:
    """Read an image as ``uint8`` HxWx3 RGB.

    Grayscale, 16-bit, RGBA (alpha dropped) and palette images are converted. ``apply_exif`` rotates the
    pixels by the EXIF orientation tag: right for user photos, wrong for dataset images whose label
    map was drawn on the stored pixel grid (the dataset turns it off for labelled samples).
    """
    path = Path(path)
    return _rgb_array(_open_loaded(path, "image"), apply_exif=apply_exif)


def decode_image(data: bytes, name: str = "<upload>", *, apply_exif: bool = True) -> np.ndarray:
    """``read_image`` for the bytes of an image file (an upload): the same conversions, the same pixels.

    ``DataError(name, ...)`` when the bytes are empty or not a readable image.
    """
    import io

    if not data:
        raise DataError(name, "empty file")
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except UnidentifiedImageError:
        raise DataError(name, "cannot read image: not an image format Pillow recognises") from None
    except _PIL_ERRORS as exc:
        raise DataError(name, f"cannot read image: {exc}") from exc
    return _rgb_array(img, apply_exif=apply_exif)


def _rgb_array(img: Image.Image, *, apply_exif: bool) -> np.ndarray:
    if apply_exif:
        img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8)
        return np.repeat(arr[:, :, None], 3, axis=2)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def _index_array(path: Path, what: str, *, rgb_channel: int | None = None) -> np.ndarray:
    """The stored index values of a single-channel (L / P / I) image, or of one channel of an RGB one."""
    if path.suffix.lower() == ".mat":
        return _mat_groundtruth(path)
    img = _open_loaded(path, what)
    if img.mode in ("L", "P", "I", "I;16", "I;16B", "I;16L", "1"):
        arr = np.asarray(img)
    elif img.mode in ("RGB", "RGBA") and rgb_channel is not None:
        arr = np.asarray(img)[:, :, rgb_channel]
    else:
        raise DataError(
            path,
            f"{what} is a mode {img.mode} image; expected a single-channel index PNG (mode L or P) "
            "whose pixel values are class ids (convert colour-coded labels to ids first)",
        )
    return arr


def _mat_groundtruth(path: Path, key: str = "groundtruth") -> np.ndarray:
    """A CCP-style ``.mat`` label (variable ``groundtruth``)."""
    if not path.is_file():
        raise DataError(path, "label file not found")
    try:
        from scipy.io import loadmat
    except ImportError as exc:  # scipy is optional: only .mat labels need it
        raise DataError(path, "reading .mat labels needs scipy (pip install scipy)") from exc
    try:
        mat = loadmat(str(path))
    except (OSError, ValueError, TypeError) as exc:
        raise DataError(path, f"cannot read .mat label: {exc}") from exc
    if key not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise DataError(path, f"no variable {key!r} in .mat file (found: {', '.join(found)})")
    arr = np.asarray(mat[key])
    if arr.ndim != 2:
        raise DataError(path, f"variable {key!r} has shape {arr.shape}; expected a 2-D label map")
    return arr


def _checked_ids(arr: np.ndarray, path: Path, num_classes: int, ignore_index: int) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise DataError(path, f"label has shape {arr.shape}; expected a 2-D map")
    bad_mask = (arr >= num_classes) & (arr != ignore_index)
    if np.issubdtype(arr.dtype, np.signedinteger) or np.issubdtype(arr.dtype, np.floating):
        bad_mask |= arr < 0
    if bad_mask.any():
        bad = np.unique(arr[bad_mask])
        shown = ", ".join(str(v) for v in bad[:10].tolist()) + (" ..." if bad.size > 10 else "")
        raise DataError(
            path,
            f"label ids {shown} are outside 0..{num_classes - 1} and are not the ignore value "
            f"{ignore_index} (wrong label domain, or a colour PNG?)",
        )
    dtype = np.uint8 if max(num_classes - 1, ignore_index) <= 255 else np.int64
    return arr.astype(dtype, copy=False)


def read_label(path: str | Path, num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """Read a label map of class ids (``uint8`` HxW; ``int64`` if ids can exceed 255).

    Mode L and P PNGs are read as their stored index values (a palette only colours them); a CCP
    ``.mat`` file is read from its ``groundtruth`` variable. Ids >= ``num_classes`` other than
    ``ignore_index`` raise ``DataError`` naming the file and the bad ids.
    """
    path = Path(path)
    return _checked_ids(_index_array(path, "label"), path, num_classes, ignore_index)


def read_id_map(path: str | Path) -> np.ndarray:
    """Read a person / instance id map (single channel, 0 = none) as ``int64`` HxW."""
    path = Path(path)
    return _index_array(path, "id map").astype(np.int64)


def read_person_maps(paths: Sequence[str | Path], num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """One-part-map-per-person files (MHPv2 ``parsing_annos``), kept apart: ``uint8 [P, H, W]``.

    Map k holds the part ids of person k + 1 (0 elsewhere, ``ignore_index`` where that person's
    annotation says so); RGB files use their first channel, as the MHPv2 evaluation code does.
    Persons may overlap: nothing is merged (multi-person training and scoring need this).
    """
    if not paths:
        raise ValueError("read_person_maps needs at least one file")
    maps: list[np.ndarray] = []
    first = Path(paths[0])
    for raw in paths:
        path = Path(raw)
        arr = _checked_ids(_index_array(path, "person part map", rgb_channel=0), path, num_classes, ignore_index)
        if maps and arr.shape != maps[0].shape:
            raise DataError(
                path, f"size {arr.shape[1]}x{arr.shape[0]} differs from {first} ({maps[0].shape[1]}x{maps[0].shape[0]})"
            )
        maps.append(arr.astype(np.uint8))
    return np.stack(maps)


def merge_person_maps(
    paths: Sequence[str | Path], num_classes: int, ignore_index: int = 255
) -> tuple[np.ndarray, np.ndarray]:
    """Merge one-part-map-per-person files (MHPv2 ``parsing_annos``) into one image-level map.

    Each file holds the part ids of one person (0 elsewhere); RGB files use their first channel, as
    the MHPv2 evaluation code does. Returns ``(parts, persons)``: parts ``uint8`` HxW and person ids
    ``int64`` HxW (k = position in ``paths`` + 1, 0 = background).

    Overlap rule: a pixel that is non-zero in several person maps keeps the FIRST person (in the
    order given; readers sort by the person index k) and that person's part id; later persons only
    fill pixels still at 0. This suits semantic parsing; multi-person parsing reads the maps apart
    with :func:`read_person_maps`, because the merge changes overlapping persons' ground truth.
    """
    if not paths:
        raise ValueError("merge_person_maps needs at least one file")
    maps = read_person_maps(paths, num_classes, ignore_index)
    parts = np.zeros(maps.shape[1:], dtype=np.uint8)
    persons = np.zeros(maps.shape[1:], dtype=np.int64)
    for k, arr in enumerate(maps, start=1):
        take = (arr != 0) & (persons == 0)
        parts[take] = arr[take]
        persons[take] = k
    return parts, persons


def load_label(record: Record, num_classes: int, ignore_index: int = 255) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The label map and person-id map of a record (either may be None).

    Records with ``label_parts`` (MHPv2) are merged with ``merge_person_maps``; the person map comes
    from the merge.
    """
    if record.label_parts:
        return merge_person_maps(record.label_parts, num_classes, ignore_index)
    label = read_label(record.label, num_classes, ignore_index) if record.label is not None else None
    humans = read_id_map(record.human_ids) if record.human_ids is not None else None
    return label, humans


def check_pair(image: np.ndarray, label: np.ndarray, paths: Sequence[str | Path]) -> None:
    """Raise ``DataError`` naming both files when a label's size differs from its image's.

    ``paths`` is ``(image_path, label_path)``.
    """
    ih, iw = image.shape[:2]
    lh, lw = label.shape[:2]
    if (ih, iw) != (lh, lw):
        image_path, label_path = (str(p) for p in paths)
        raise DataError(
            label_path,
            f"label size {lw}x{lh} (WxH) differs from image {image_path} size {iw}x{ih}; "
            "labels must be drawn on the image's own pixel grid",
        )


def write_label_png(path: str | Path, label: np.ndarray, palette: np.ndarray) -> None:
    """Write ``label`` (HxW class ids < 256) as a P-mode palette PNG, atomically.

    The file is written to a temporary name in the same folder and moved into place with
    ``os.replace``, so readers never see a half-written file. ``palette`` is ``uint8 [C, 3]``.
    """
    path = Path(path)
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"label must be 2-D (H, W), got shape {label.shape}")
    if label.size and (label.min() < 0 or label.max() > 255):
        raise ValueError(f"label ids must be in 0..255 for a palette PNG, got {label.min()}..{label.max()}")
    pal = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    if pal.shape[0] > 256:
        raise ValueError(f"palette has {pal.shape[0]} colours; a PNG palette holds at most 256")
    full = np.zeros((256, 3), dtype=np.uint8)
    full[: pal.shape[0]] = pal
    ids = np.ascontiguousarray(label, dtype=np.uint8)
    img = Image.frombytes("P", (ids.shape[1], ids.shape[0]), ids.tobytes())
    img.putpalette(full.ravel().tolist())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            img.save(fh, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
