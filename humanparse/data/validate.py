"""Check every training sample once, before the first step: readable files, label ids in range, label
size equal to the image size. All bad files are reported together (``DataError`` naming the first and
counting the rest), instead of the run dying at whichever step first samples one.

Samples are read in parallel (threads: decoding releases the GIL). Samples found good are cached by
their files' (path, size, modification time) and the label space's class count, so a resumed or
repeated run re-reads only changed files. With ``skip_bad`` the bad samples are marked in the dataset
(skipped without re-reading) and one warning names them.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import DataError

__all__ = ["validate_training_data", "validate_dataset"]

_CACHE_VERSION = 1


def _record_files(rec) -> list[Path]:
    files = [rec.image, rec.label, getattr(rec, "human_ids", None), *getattr(rec, "label_parts", ())]
    return [Path(f) for f in files if f is not None]


def _fingerprint(rec, label_space) -> str | None:
    """A key that changes when any file of the record or the label space's id range changes."""
    parts = [label_space.num_classes, label_space.ignore_index]
    for f in _record_files(rec):
        try:
            st = os.stat(f)
        except OSError:
            return None  # missing: never cached, reported by the check
        parts.append([str(f.resolve()), st.st_size, st.st_mtime_ns])
    return hashlib.sha1(json.dumps(parts).encode()).hexdigest()


def _load_cache(path: Path | None) -> set[str]:
    if path is None or not path.is_file():
        return set()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return set()  # a damaged cache only costs a re-check
    if not isinstance(data, dict) or data.get("version") != _CACHE_VERSION:
        return set()
    return set(data.get("ok", []))


def _save_cache(path: Path, ok: set[str]) -> None:
    """Atomic (temporary file + rename); the cache is an optimisation, so a failed write is ignored."""
    payload = json.dumps({"version": _CACHE_VERSION, "ok": sorted(ok)})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(payload)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


def validate_dataset(dataset, *, known_good: set[str] | None = None,
                     workers: int | None = None) -> tuple[dict[int, DataError], set[str]]:
    """Read every sample of one ``ParsingDataset`` (via its ``load``) not in ``known_good``.

    Returns ``(bad, good)``: index -> the DataError of each bad sample, and the fingerprints of good ones.
    """
    known_good = known_good or set()
    keys = [_fingerprint(rec, dataset.label_space) for rec in dataset.records]
    todo = [i for i, k in enumerate(keys) if k is None or k not in known_good]

    def check(i: int) -> DataError | None:
        try:
            dataset.load(i)
        except DataError as exc:
            return exc
        return None

    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(check, todo))
    bad = {i: msg for i, msg in zip(todo, results) if msg is not None}
    good = {k for i, k in enumerate(keys) if k is not None and i not in bad}
    return bad, good


def validate_training_data(dataset, *, cache: Path | None = None,
                           workers: int | None = None) -> dict[str, dict[int, DataError]]:
    """Check all samples of a training dataset (a ``ParsingDataset`` or a ``MultiDomainDataset`` of them).

    Raises ``DataError`` listing the bad files unless the datasets have ``skip_bad``; then they are
    marked bad (skipped) and a warning names them. Datasets without per-sample ``load`` / ``records``
    (other recipes' composed data) are left to fail where they are read. Returns domain -> {index: DataError}.
    """
    parts = getattr(dataset, "datasets", None)
    parts = dict(parts) if isinstance(parts, dict) else {"": dataset}
    parts = {name: ds for name, ds in parts.items()
             if hasattr(ds, "load") and hasattr(ds, "records") and hasattr(ds, "label_space")}
    if not parts:
        return {}
    known = _load_cache(cache)
    found: dict[str, dict[int, DataError]] = {}
    good_all: set[str] = set()
    for name, ds in parts.items():
        bad, good = validate_dataset(ds, known_good=known, workers=workers)
        good_all |= good
        if bad:
            found[name] = bad
    if cache is not None:
        _save_cache(cache, good_all)
    errors = [exc for bad in found.values() for exc in bad.values()]
    if not errors:
        return found
    messages = [str(exc) for exc in errors]
    if all(getattr(parts[name], "skip_bad", False) and isinstance(getattr(parts[name], "bad", None), set)
           for name in found):
        for name, bad in found.items():
            parts[name].bad.update(bad)  # skipped from now on, without being read again
        warnings.warn(f"data.skip_bad: skipping {len(messages)} bad training sample(s): " + "; ".join(messages[:5])
                      + (" ..." if len(messages) > 5 else ""), RuntimeWarning, stacklevel=2)
        return found
    more = ""
    if len(errors) > 1:
        more = (f" (and {len(errors) - 1} more bad training file(s): " + "; ".join(messages[1:6])
                + (" ..." if len(errors) > 6 else "") + ")")
    raise DataError(errors[0].path, errors[0].problem + more
                    + "; fix or remove them, or set data.skip_bad=true to train without them")
