"""The one-call parser for users' own images: ``Parser.from_checkpoint(path)(image, domain=...)``."""

from __future__ import annotations

import glob
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from .errors import ConfigError, DataError, HumanparseError, unknown_key_message

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class ParseReport:
    """What ``Parser.parse_files`` wrote and which inputs failed (path -> reason)."""

    written: list[Path] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


def expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Files, folders (their images, sorted) and glob patterns -> image paths, in order, no duplicates."""
    out: list[Path] = []
    for item in inputs:
        item = str(item)
        if any(ch in item for ch in "*?["):
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise DataError(item, "the pattern matches no file")
            out += [Path(m) for m in matches if Path(m).is_file()]
        elif os.path.isdir(item):
            found = sorted(p for p in Path(item).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise DataError(item, f"the folder holds no image ({', '.join(IMAGE_EXTENSIONS)})")
            out += found
        elif os.path.exists(item):
            out.append(Path(item))
        else:
            raise DataError(item, "no such file or folder")
    return list(dict.fromkeys(out))


def _output_stems(paths: Sequence[Path]) -> list[str]:
    """Output stems, unique and stable (they depend only on the list of inputs): the file stem; where
    stems collide, ``<folder>_<stem>``; where those still collide (``a.jpg`` and ``a.png`` in one folder),
    ``<folder>_<stem>_<ext>``; a last clash (same names in same-named folders) gets ``_2``, ``_3`` ...
    in input order. So no output of a run overwrites another of the same run."""
    from collections import Counter

    names = [p.stem for p in paths]
    for refine in (lambda p: f"{p.parent.name}_{p.stem}", lambda p: f"{p.parent.name}_{p.stem}_{p.suffix[1:].lower()}"):
        counts = Counter(names)
        names = [refine(p) if counts[n] > 1 else n for p, n in zip(paths, names)]
    taken = set(names)
    out, seen = [], set()
    for n in names:
        cand, k = n, 2
        while cand in seen or (cand != n and cand in taken):
            cand, k = f"{n}_{k}", k + 1
        seen.add(cand)
        out.append(cand)
    return out


def _header_size(path: Path) -> tuple[int, int]:
    """(height, width) after the EXIF rotation, from the file header only; (0, 0) if unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            w, h = img.size
            rotated = img.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    except (OSError, ValueError, SyntaxError):
        return 0, 0
    return (w, h) if rotated else (h, w)


def iter_image_batches(inputs: Iterable[str | Path], batch_size: int, report: ParseReport, *,
                       order_by_size: bool = False):
    """Expand ``inputs`` and yield ``(paths, stems, images)`` batches of readable images.

    An unreadable image is recorded in ``report.failed`` (and printed) by name, and the rest go on.
    ``order_by_size``: read the files sorted by aspect ratio and size (from their headers), so that
    images that will be padded to one size come in the same batch.
    """
    from .data.io import read_image

    paths = expand_inputs(inputs)
    stems = _output_stems(paths)
    if order_by_size:
        sizes = [_header_size(p) for p in paths]
        order = sorted(range(len(paths)), key=lambda i: (round(sizes[i][0] / max(1, sizes[i][1]), 4), sizes[i]))
        paths, stems = [paths[i] for i in order], [stems[i] for i in order]
    for start in range(0, len(paths), batch_size):
        ok_paths, ok_stems, images = [], [], []
        for path, stem in zip(paths[start:start + batch_size], stems[start:start + batch_size]):
            try:
                images.append(read_image(path))
            except HumanparseError as exc:
                report.failed[str(path)] = str(exc)
                print(f"skipped {path}: {exc}", file=sys.stderr)
                continue
            ok_paths.append(path)
            ok_stems.append(stem)
        if images:
            yield ok_paths, ok_stems, images


_END = object()


def prefetched(items: Iterable, pool: ThreadPoolExecutor):
    """``items`` in order, the next one produced by ``pool`` while the caller works on the current one."""
    iterator = iter(items)
    future = pool.submit(next, iterator, _END)
    while True:
        item = future.result()
        if item is _END:
            return
        future = pool.submit(next, iterator, _END)
        yield item


def overlay_image(image: np.ndarray, label: np.ndarray, palette: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Colour overlay: background (class 0) left as it is, other classes blended with their colour.
    Computed in bands of rows, so the float temporaries stay small for large photos."""
    out = np.empty(image.shape, dtype=np.uint8)
    step = max(1, (1 << 20) // max(1, image.shape[1]))
    for r0 in range(0, image.shape[0], step):
        im, lab = image[r0:r0 + step], label[r0:r0 + step]
        blend = im.astype(np.float32) * (1 - alpha) + palette[lab].astype(np.float32) * alpha
        out[r0:r0 + step] = np.where((lab > 0)[..., None], blend, im).clip(0, 255).astype(np.uint8)
    return out


def _save_npy(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, array)


class Parser:
    """Semantic human parser over one or more label domains (one head each).

    >>> parser = Parser.from_checkpoint("runs/demo/sst/model.safetensors")
    >>> labels = parser.predict([rgb_uint8_array], domain="lip")   # list of HxW uint8 class-id maps
    """

    def __init__(self, model: torch.nn.Module, label_spaces: dict, *, device: str | torch.device = "cpu",
                 long_side: int | None = 512, batch_size: int = 4, inference_path=None, flip: bool = False):
        """``long_side``: the network's input long side (None = each image's own size). ``flip``: average each
        image's prediction with its mirror image's (left/right classes swapped back), twice the network time.
        ``inference_path``
        (``humanparse.export.fast_path.InferencePath``): precision, memory format and attention op; default:
        the fastest correct one for ``device`` (``choose_torch_path``); it is applied to ``model`` in place."""
        from .export.fast_path import apply_path, choose_torch_path

        self.model = model.eval()
        self.label_spaces = label_spaces
        self.device = torch.device(device)
        self.long_side = long_side
        self.flip = bool(flip)
        self.batch_size = batch_size
        self.model.to(self.device)
        self.inference_path = inference_path or choose_torch_path(self.device)
        if self.inference_path.backend == "torch":
            apply_path(self.model, self.inference_path)

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path | None = None, *, revision: str | None = None,
                        **kwargs) -> "Parser":
        """The starter model shipped in the package (no argument), a local model folder or checkpoint, or a
        Hugging Face Hub repo id in the same layout (``config.json`` + ``model.safetensors``)."""
        from .pretrained import resolve_pretrained

        return cls.from_checkpoint(resolve_pretrained(name_or_path, revision=revision), **kwargs)

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str | torch.device = "cpu", long_side: int | None | str = "auto",
                        precision: str = "auto", backend: str = "auto", domain: str | None = None,
                        flip: bool | str = "auto", **kwargs) -> "Parser":
        """``long_side="auto"``: the size stored in the checkpoint (the one it was trained and evaluated at).
        ``flip="auto"``: flip averaging when the checkpoint says its numbers were measured with it (the starter).
        ``precision`` (auto|fp32|bf16) and ``backend`` (auto|torch|onnx|measure) override the fastest correct path
        for the device (``humanparse.export.fast_path``; the choice is printed once); ONNX Runtime serves one head,
        ``domain`` (needed when the model has several)."""
        from .engine.loading import inference_flip, inference_long_side, load_model, resolve_device

        dev = resolve_device(str(device))
        model, label_spaces, meta = load_model(path, device=dev)
        if meta.get("recipe", "semantic") != "semantic":
            raise ConfigError(f"{path} is a {meta.get('recipe')!r} model; use the matching parser "
                              "(for multi-person parsing: humanparse parse --task multi)")
        if long_side == "auto":
            long_side = inference_long_side(meta)
        if flip == "auto":
            flip = inference_flip(meta)
        from .export.fast_path import announce, choose_torch_path, pick_backend

        chosen, onnx_file = choose_torch_path(dev, precision=precision), None
        if backend != "torch" and (domain is not None or len(label_spaces) == 1):
            chosen, onnx_file = pick_backend(path, model, domain or next(iter(label_spaces)), chosen, device=dev,
                                             long_side=long_side or 512, backend=backend)
        elif backend in ("onnx", "measure"):
            raise ConfigError(f"--backend {backend} runs one head: choose it with --domain (one of {', '.join(label_spaces)})")
        announce(chosen)
        if onnx_file is not None:
            from .export.onnx_parser import OnnxParser

            return OnnxParser(onnx_file, long_side=long_side, inference_path=chosen, flip=bool(flip), **kwargs)
        return cls(model, label_spaces, device=dev, long_side=long_side, inference_path=chosen, flip=bool(flip), **kwargs)

    @property
    def domains(self) -> list[str]:
        return list(self.label_spaces)

    def _domain(self, domain: str | None) -> str:
        if domain is None:
            if len(self.label_spaces) == 1:
                return next(iter(self.label_spaces))
            raise ConfigError(f"this model has several heads; choose one with --domain (Python: domain=), one of {', '.join(self.domains)}")
        if domain not in self.label_spaces:
            raise ConfigError(unknown_key_message("domain", domain, self.label_spaces))
        return domain

    def predict_proba(self, images: Sequence[np.ndarray], domain: str | None = None, *, tta: bool = False) -> list[torch.Tensor]:
        """Class probabilities [C, H, W] per image (float32), at each image's own size."""
        from .engine.inference import PAPER_TTA_SCALES, predict_probabilities
        from .export.fast_path import autocast_context

        domain = self._domain(domain)
        ls = self.label_spaces[domain]
        # One call: images of the same padded size share batches of up to batch_size, whatever their order
        # (mixed sizes batch as well as they can, and each result equals the one-by-one result).
        with autocast_context(self.inference_path, self.device):
            return predict_probabilities(self.model, list(images), domain, long_side=self.long_side,
                                         scales=PAPER_TTA_SCALES if tta else (1.0,), flip=tta or self.flip,
                                         flip_permutation=ls.flip_permutation, device=self.device,
                                         batch_size=self.batch_size)

    def predict(self, images: Sequence[np.ndarray], domain: str | None = None, *, tta: bool = False) -> list[np.ndarray]:
        """Class-id maps (uint8 HxW) per image: the arg-max of ``predict_proba``, without its full-size
        [C, H, W] arrays (computed in bands of rows; memory per megapixel in docs/benchmarks.md)."""
        from .engine.inference import PAPER_TTA_SCALES, predict_labels
        from .export.fast_path import autocast_context

        domain = self._domain(domain)
        ls = self.label_spaces[domain]
        with autocast_context(self.inference_path, self.device):
            return predict_labels(self.model, list(images), domain, long_side=self.long_side,
                                  scales=PAPER_TTA_SCALES if tta else (1.0,), flip=tta or self.flip,
                                  flip_permutation=ls.flip_permutation, device=self.device,
                                  batch_size=self.batch_size)

    def __call__(self, image, domain: str | None = None, *, tta: bool = False) -> np.ndarray:
        """One image (RGB uint8 array or a path) -> its class-id map."""
        from .data.io import read_image

        if isinstance(image, (str, Path)):
            image = read_image(image)
        return self.predict([image], domain, tta=tta)[0]

    def parse_files(self, inputs: Iterable[str | Path], out_dir: str | Path, *, domain: str | None = None,
                    tta: bool = False, overlay: bool = False, probs: bool = False, progress: bool = False,
                    map_to: str | None = None) -> ParseReport:
        """Parse files/folders/globs in batches; write ``<stem>.png`` (P-mode palette PNG of class ids, input size),
        optionally ``<stem>_overlay.jpg`` and ``<stem>_probs.npy`` (float16 [C,H,W]). Unreadable images are
        reported by name and skipped; the rest go on. ``map_to``: a try-on layout (``humanparse.labels.layout``)
        for the PNG and the overlay; the probabilities stay in the head's domain.
        Files are read in order of image size, so that images of one size share batches."""
        from PIL import Image

        from .data.io import write_label_png
        from .engine.checkpoint import atomic_write

        domain = self._domain(domain)
        ls = self.label_spaces[domain]
        table, palette = None, ls.palette
        if map_to is not None:
            from .labels.layout import get_layout

            layout = get_layout(map_to)
            table, palette = layout.table_from(ls), layout.label_space.palette
        from .engine.run_dir import ensure_writable_dir

        out_dir = Path(out_dir)
        ensure_writable_dir(out_dir, "--out")  # before any inference, not after it
        report = ParseReport()
        done = 0

        def write(stem: str, image: np.ndarray, p: torch.Tensor) -> list[Path]:
            written = []
            label = p.argmax(0).to(torch.uint8).numpy() if probs else p  # without --probs, p is the label map
            if table is not None:
                label = table[label]
            target = out_dir / f"{stem}.png"
            write_label_png(target, label, palette)
            written.append(target)
            if overlay:
                target = out_dir / f"{stem}_overlay.jpg"
                picture = Image.fromarray(overlay_image(image, label, palette))
                atomic_write(target, lambda tmp, pic=picture: pic.save(tmp, format="JPEG", quality=92))
                written.append(target)
            if probs:
                target = out_dir / f"{stem}_probs.npy"
                arr = p.numpy().astype(np.float16)
                atomic_write(target, lambda tmp, a=arr: _save_npy(tmp, a))
                written.append(target)
            return written

        # Reading the next batch and writing the last one's files overlap the forward (one thread each:
        # decoding, resizing and PNG/zlib encoding release the GIL, as the forward does).
        with ThreadPoolExecutor(max_workers=1) as reader, ThreadPoolExecutor(max_workers=1) as writer:
            pending = []
            batches = iter_image_batches(inputs, self.batch_size, report, order_by_size=True)
            for chunk, names, images in prefetched(batches, reader):
                probabilities = self.predict_proba(images, domain, tta=tta) if probs else self.predict(images, domain, tta=tta)
                pending += [writer.submit(write, stem, image, p) for stem, image, p in zip(names, images, probabilities)]
                done += len(images)
                if progress:
                    print(f"parsed {done} images", file=sys.stderr)
            for job in pending:  # in input order; a failed write raises here
                report.written += job.result()
        return report
