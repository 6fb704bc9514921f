import pytest

from humanparse.errors import ConfigError
from humanparse.sst.pairing import domain_pairs, pair_images

CLASSES = {"lip": 59, "pascal": 7, "cihp": 20}


def test_progressive_is_the_coarse_to_fine_chain():
    assert domain_pairs(CLASSES, "progressive") == [("pascal", "cihp"), ("cihp", "lip")]


def test_full_is_every_pair_ordered_coarse_to_fine():
    assert domain_pairs(CLASSES, "full") == [("pascal", "cihp"), ("pascal", "lip"), ("cihp", "lip")]
    assert domain_pairs({"a": 3}, "full") == [] and domain_pairs({"a": 3}, "progressive") == []


def test_unknown_strategy_suggests_close_match():
    with pytest.raises(ConfigError, match="progressive"):
        domain_pairs(CLASSES, "progresive")


def test_pair_images_cycles_the_shorter_domain():
    assert pair_images(["a", "b", "a", "a"], "a", "b") == ([0, 2, 3], [1, 1, 1])
    assert pair_images(["b", "a", "b", "b", "b"], "a", "b") == ([1, 1, 1, 1], [0, 2, 3, 4])
    assert pair_images(["a", "b", "b", "a"], "a", "b") == ([0, 3], [1, 2])
    assert pair_images(["a", "a"], "a", "b") == ([], [])
