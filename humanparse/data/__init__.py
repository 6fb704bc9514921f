"""Data: dataset layout readers, image / label IO, transforms, datasets and multi-domain batching.

    from humanparse.data import read_dataset, ParsingDataset, build_train_transforms
    records = read_dataset("lip", "/data/LIP", "train")
    ds = ParsingDataset(records, get_label_space("lip"), build_train_transforms({"crop_size": 473}, lip))
"""

from .dataset import ParsingDataset, item_rng
from .io import (
    check_pair,
    load_label,
    merge_person_maps,
    read_id_map,
    read_image,
    read_label,
    write_label_png,
)
from .multi_domain import MixedDomainBatchSampler, MultiDomainDataset, collate_parsing
from .readers import READERS, read_dataset
from .records import Record
from .sample_data import SAMPLE_DATASETS, sample_data_root, sample_records
from .transforms import (
    Compose,
    Normalize,
    PadToMultiple,
    PhotometricJitter,
    RandomCrop,
    RandomHorizontalFlip,
    RandomScale,
    ResizeLongSide,
    build_eval_transforms,
    build_train_transforms,
)

__all__ = [
    "Record",
    "READERS",
    "read_dataset",
    "read_image",
    "read_label",
    "read_id_map",
    "merge_person_maps",
    "load_label",
    "check_pair",
    "write_label_png",
    "Compose",
    "RandomScale",
    "RandomCrop",
    "RandomHorizontalFlip",
    "PhotometricJitter",
    "Normalize",
    "ResizeLongSide",
    "PadToMultiple",
    "build_train_transforms",
    "build_eval_transforms",
    "ParsingDataset",
    "item_rng",
    "MultiDomainDataset",
    "MixedDomainBatchSampler",
    "collate_parsing",
    "SAMPLE_DATASETS",
    "sample_data_root",
    "sample_records",
]
