"""Label spaces: one YAML file per parsing domain (classes, colours, flip pairs, adjacency, mappings).

    from humanparse.labels import get_label_space
    lip = get_label_space("lip")                  # built-in, or a path to your own YAML file
    lip.flip_permutation, lip.adjacency, lip.mapping_to("pascal")
"""

from humanparse.labels.embeddings import (
    cache_embeddings,
    compute_name_embeddings,
    graphonomy_static_similarity,
    static_similarity,
)
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
