"""One sample on disk: where its image and label files are, and which label domain it belongs to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Record:
    """Paths of one sample. Readers return lists of these; nothing is read from disk here.

    ``label`` is None for unlabelled images (user photos, test splits). ``human_ids`` is a person-id
    map (0 = no person). ``label_parts`` is set by layouts that store one part map per person
    (MHPv2): the files are merged when the sample is read (see ``humanparse.data.io.load_label``);
    ``label`` is then the first of them, so error messages name a real file.
    """

    image: Path
    label: Path | None
    domain: str
    human_ids: Path | None = None
    instance_ids: Path | None = None
    stem: str = ""
    label_parts: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        # Normalise to Path and fill the stem from the image name, so readers can pass strings.
        object.__setattr__(self, "image", Path(self.image))
        for name in ("label", "human_ids", "instance_ids"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        object.__setattr__(self, "label_parts", tuple(Path(p) for p in self.label_parts))
        if not self.stem:
            object.__setattr__(self, "stem", self.image.stem)
