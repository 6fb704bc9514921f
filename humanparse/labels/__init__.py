"""Label spaces: one YAML file per parsing domain (classes, colours, flip pairs, adjacency, mappings).

    from humanparse.labels import get_label_space
    lip = get_label_space("lip")                  # built-in, or a path to your own YAML file
    lip.flip_permutation, lip.adjacency, lip.mapping_to("pascal")

Format and built-in domains: docs/label_domains.md.
"""

from humanparse.labels.label_space import LabelSpace, voc_colormap
from humanparse.labels.registry import get_label_space, list_label_spaces

__all__ = [
    "LabelSpace",
    "get_label_space",
    "list_label_spaces",
    "static_similarity",
    "graphonomy_static_similarity",
    "compute_name_embeddings",
    "cache_embeddings",
    "voc_colormap",
]

_FROM_EMBEDDINGS = {"static_similarity", "graphonomy_static_similarity", "compute_name_embeddings",
                    "cache_embeddings"}


def __getattr__(name: str):
    # embeddings.py is imported on first use, so `python -m humanparse.labels.embeddings` runs cleanly
    if name in _FROM_EMBEDDINGS:
        from humanparse.labels import embeddings
        return getattr(embeddings, name)
    raise AttributeError(f"module 'humanparse.labels' has no attribute {name!r}")
