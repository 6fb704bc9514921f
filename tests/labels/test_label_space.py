"""Label spaces: built-in domain files, the YAML format, and its validation errors."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from humanparse.errors import ConfigError, DataError
from humanparse.labels import LabelSpace, get_label_space, list_label_spaces, voc_colormap
from humanparse.labels.registry import DOMAINS_DIR

BUILTINS = {"lip": 20, "cihp": 20, "atr": 18, "pascal": 7, "ccp": 59, "mhpv2": 59}
REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "label_priors_graphonomy.json"


def test_builtin_list_and_class_counts():
    assert list_label_spaces() == sorted(BUILTINS)
    for name, count in BUILTINS.items():
        ls = get_label_space(name)
        assert ls.name == name and ls.num_classes == count == len(ls.names)
        assert ls.ignore_index == 255
        assert ls.names[0] == "background"


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtin_arrays(name):
    ls = get_label_space(name)
    c = ls.num_classes
    assert ls.palette.dtype == np.uint8 and ls.palette.shape == (c, 3)
    assert len({tuple(p) for p in ls.palette.tolist()}) == c, "colours must be distinct"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a built-in never falls back to all-ones
        adj = ls.adjacency
    assert ls.adjacency_is_prior
    assert adj.dtype == np.uint8 and adj.shape == (c, c)
    assert set(np.unique(adj)) <= {0, 1}
    assert (adj == adj.T).all() and (np.diag(adj) == 1).all()
    assert adj[0].sum() == 1, "background is adjacent only to itself (Graphonomy convention)"
    assert (adj[1:].sum(1) >= 2).all(), "every part touches at least one other part"
    assert 0 < adj.mean() < 1
    perm = ls.flip_permutation
    assert perm.dtype == np.int64 and ((perm >= 0) & (perm < c)).all()
    assert (perm[perm] == np.arange(c)).all(), "flip permutation must be an involution"
    # the part graph looks the same in the mirror
    assert (adj[np.ix_(perm, perm)] == adj).all()
    with pytest.raises(ValueError):
        ls.palette[0, 0] = 1  # shared instance: arrays are read-only


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_flip_permutation_swaps_exactly_the_declared_pairs(name):
    ls = get_label_space(name)
    moved = {ls.names[i] for i in np.nonzero(ls.flip_permutation != np.arange(ls.num_classes))[0]}
    assert moved == {n for pair in ls.flip_pairs for n in pair}
    for a, b in ls.flip_pairs:
        assert ls.flip_permutation[ls.index(a)] == ls.index(b)
    left = {n for n in ls.names if n.startswith("left-")}
    assert {a for a, _ in ls.flip_pairs} == left, "every left class is paired"
    assert all(b == "right-" + a[len("left-"):] for a, b in ls.flip_pairs)


def test_flip_pair_counts():
    assert len(get_label_space("mhpv2").flip_pairs) == 8
    assert len(get_label_space("lip").flip_pairs) == len(get_label_space("atr").flip_pairs) == 3
    assert get_label_space("pascal").flip_pairs == [] and get_label_space("ccp").flip_pairs == []


def test_mhpv2_left_never_touches_right():
    ls = get_label_space("mhpv2")
    left = [ls.index(n) for n in ls.names if n.startswith("left-")]
    right = [ls.index(n) for n in ls.names if n.startswith("right-")]
    assert ls.adjacency[np.ix_(left, right)].sum() == 0
    assert ls.adjacency[ls.index("left-hand"), ls.index("left-arm")] == 1
    assert ls.adjacency[ls.index("hair"), ls.index("cap/hat")] == 1
    assert ls.adjacency[ls.index("hair"), ls.index("left-shoe")] == 0


def test_ccp_anatomy_spot_checks():
    ls = get_label_space("ccp")
    a = lambda x, y: ls.adjacency[ls.index(x), ls.index(y)]  # noqa: E731
    assert a("hair", "hat") == a("belt", "jeans") == a("socks", "sneakers") == a("skin", "earrings") == 1
    assert a("hat", "sneakers") == a("earrings", "socks") == a("hair", "boots") == 0


def test_palettes():
    lip_colours = [[0, 0, 0], [128, 0, 0], [255, 0, 0], [0, 85, 0], [170, 0, 51], [255, 85, 0], [0, 0, 85],
                   [0, 119, 221], [85, 85, 0], [0, 85, 85], [85, 51, 0], [52, 86, 128], [0, 128, 0], [0, 0, 255],
                   [51, 170, 221], [0, 255, 255], [85, 255, 170], [170, 255, 85], [255, 255, 0], [255, 170, 0]]
    assert get_label_space("lip").palette.tolist() == lip_colours == get_label_space("cihp").palette.tolist()
    assert get_label_space("atr").palette.tolist() == lip_colours[:18]
    assert voc_colormap(4).tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    for name in ("pascal", "ccp", "mhpv2"):
        ls = get_label_space(name)
        assert (ls.palette == voc_colormap(ls.num_classes)).all()


def test_lip_uses_cihp_graph_with_jumpsuits_like_upper_clothes():
    lip, cihp = get_label_space("lip"), get_label_space("cihp")
    assert (lip.adjacency == cihp.adjacency).all()
    assert lip.names[10] == "jumpsuits" and cihp.names[10] == "torso-skin"
    upper = lip.adjacency[lip.index("upper-clothes")].astype(bool)
    jump = lip.adjacency[lip.index("jumpsuits")].astype(bool)
    assert (jump >= upper).all()  # touches everything upper-clothes touches (and upper-clothes itself)


@pytest.mark.skipif(not REFERENCE.is_file(), reason="shared/reference not present")
def test_graphonomy_graphs_and_flips_match_reference():
    ref = json.loads(REFERENCE.read_text())
    for name in ("pascal", "cihp", "atr"):
        ls = get_label_space(name)
        expected = np.eye(ls.num_classes, dtype=np.uint8)
        for a, b in ref["intra_undirected_edges_no_self"][name]:
            expected[a, b] = expected[b, a] = 1
        assert (ls.adjacency == expected).all(), name
        assert ls.num_classes == len(ref["labels"][name])
    for name in ("lip", "cihp", "atr"):
        ls = get_label_space(name)
        pairs = sorted(sorted((ls.index(a), ls.index(b))) for a, b in ls.flip_pairs)
        assert pairs == sorted(sorted(p) for p in ref["flip_swap_pairs"][name])


def test_mappings_to_pascal():
    pascal = get_label_space("pascal")
    for name in ("cihp", "lip", "atr", "mhpv2"):
        ls = get_label_space(name)
        m = ls.mapping_to("pascal")
        assert m.dtype == np.int64 and m.shape == (ls.num_classes,)
        assert set(m.tolist()) <= set(range(7)) | {pascal.ignore_index}
        assert m[ls.index("face")] == pascal.index("head")
        assert m[ls.index("hair")] == pascal.index("head")
        assert m[0] == 0
        assert m[ls.index("left-arm")] == pascal.ignore_index  # no upper/lower split in the fine domain
        assert (ls.mapping_to(pascal) == m).all()
    assert (get_label_space("cihp").mapping_to("cihp") == np.arange(20)).all()
    with pytest.raises(ConfigError, match="declared: .*pascal"):
        get_label_space("cihp").mapping_to("atr")
    with pytest.raises(ConfigError, match="declared: none"):
        get_label_space("ccp").mapping_to("pascal")


def test_cihp_to_lip_is_identity_but_torso_skin():
    # Same 20 names except slot 10 (CIHP torso-skin, LIP jumpsuits): a label space mapping by index would
    # silently turn torso skin into jumpsuits; by name it is ignored.
    cihp, lip = get_label_space("cihp"), get_label_space("lip")
    m = cihp.mapping_to("lip")
    expected = np.arange(20)
    expected[10] = lip.ignore_index
    assert cihp.names[10] == "torso-skin" and lip.names[10] == "jumpsuits"
    assert (m == expected).all()


def test_unknown_builtin_suggests_close_matches():
    with pytest.raises(ConfigError, match="did you mean 'lip'"):
        get_label_space("lpi")
    with pytest.raises(DataError, match="not found"):
        get_label_space("no/such/file.yaml")


# ------------------------------------------------------------------ user files
def _write(tmp_path, data, name="mine.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


USER = {
    "name": "mine",
    "names": ["background", "head", "left-hand", "right-hand", "body"],
    "palette": [[0, 0, 0], [1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]],
    "flip_pairs": [["left-hand", "right-hand"]],
    "groups": {"hands": ["left-hand", "right-hand"]},
    "adjacency": [["head", "body"], ["@hands", "body"]],
    "mappings": {"pascal": {"background": "background", "head": "head", "left-hand": "lower-arms",
                            "right-hand": "lower-arms", "body": None}},
}


def test_user_file_loads_by_path(tmp_path):
    path = _write(tmp_path, USER)
    ls = get_label_space(str(path))
    assert ls.name == "mine" and ls.num_classes == 5 and ls.source == str(path)
    assert ls.flip_permutation.tolist() == [0, 1, 3, 2, 4]
    expected = np.eye(5, dtype=np.uint8)
    for a, b in [(1, 4), (2, 4), (3, 4)]:
        expected[a, b] = expected[b, a] = 1
    assert (ls.adjacency == expected).all()
    assert ls.mapping_to("pascal").tolist() == [0, 1, 4, 4, 255]
    assert ls.name_embeddings is None  # no cache beside the file
    assert get_label_space(ls) is ls


def test_to_dict_round_trip(tmp_path):
    for ls in (get_label_space("mhpv2"), get_label_space(_write(tmp_path, USER))):
        d = json.loads(json.dumps(ls.to_dict()))
        back = LabelSpace.from_dict(d, source="checkpoint")
        assert back.names == ls.names and back.flip_pairs == ls.flip_pairs
        assert (back.adjacency == ls.adjacency).all() and (back.palette == ls.palette).all()
        assert (back.flip_permutation == ls.flip_permutation).all()
        assert (back.mapping_to("pascal") == ls.mapping_to("pascal")).all()


def test_missing_adjacency_warns_and_is_all_ones(tmp_path):
    data = {k: v for k, v in USER.items() if k not in ("adjacency", "groups")}
    ls = get_label_space(_write(tmp_path, data))
    assert not ls.adjacency_is_prior
    with pytest.warns(UserWarning, match="no 'adjacency'.*all-ones"):
        adj = ls.adjacency
    assert adj.shape == (5, 5) and (adj == 1).all()
    assert ls.to_dict()["adjacency"] is None


def test_default_palette_is_voc(tmp_path):
    data = {k: v for k, v in USER.items() if k != "palette"}
    assert (get_label_space(_write(tmp_path, data)).palette == voc_colormap(5)).all()


BAD = [
    ({"names": ["background", "head", "head"]}, "duplicate class name 'head'"),
    ({"names": [None, "head", "left-hand", "right-hand", "body"]}, "class 0 has an invalid name None.*quote"),
    ({"flip_pairs": [["left-hand", "rigth-hand"]]}, "unknown class 'rigth-hand'.*did you mean 'right-hand'"),
    ({"flip_pairs": [["left-hand", "right-hand"], ["right-hand", "head"]]}, "'right-hand' is in flip_pairs"),
    ({"adjacency": [["head", "torso"]]}, "adjacency\\[0\\].*unknown class 'torso'"),
    ({"adjacency": [["@hand", "body"]]}, "unknown group 'hand'.*did you mean 'hands'"),
    ({"adjacency": [["head", "body", "background"]]}, "adjacency\\[0\\] must be an edge"),
    ({"palette": [[0, 0, 0]] * 4}, "'palette' has shape \\(4, 3\\), expected \\(5, 3\\)"),
    ({"palette": [[0, 0, 0, 0]] * 5}, "'palette' has shape"),
    ({"mappings": {"pascal": {"background": "background", "hed": "head"}}}, "unknown class 'hed'"),
    ({"mappings": {"pascal": {"background": "background"}}}, "does not say where head"),
    ({"adjacencies": []}, "unknown label-space key 'adjacencies'.*did you mean 'adjacency'"),
    ({"ignore_index": 3}, "'ignore_index' must be an integer outside"),
]


@pytest.mark.parametrize("change,message", BAD)
def test_bad_files_name_the_file(tmp_path, change, message):
    path = _write(tmp_path, {**USER, **change}, name="broken.yaml")
    with pytest.raises(ConfigError, match=message) as info:
        get_label_space(path)
    assert str(info.value).startswith(str(path))


def test_mapping_to_unknown_coarse_class_names_the_file(tmp_path):
    mapping = dict(USER["mappings"]["pascal"], body="trunk")
    path = _write(tmp_path, {**USER, "mappings": {"pascal": mapping}})
    with pytest.raises(ConfigError, match="sends 'body' to unknown pascal class 'trunk'") as info:
        get_label_space(path).mapping_to("pascal")
    assert str(path) in str(info.value)


def test_unreadable_yaml_is_a_data_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("names: [a, b\n")
    with pytest.raises(DataError) as info:
        get_label_space(path)
    assert info.value.path == str(path)


def test_stale_embedding_cache_is_reported(tmp_path):
    path = _write(tmp_path, USER)
    np.save(tmp_path / "mine.embeddings.npy", np.zeros((3, 8), dtype=np.float16))
    with pytest.raises(DataError, match="has 5 classes"):
        get_label_space(path).name_embeddings


def test_builtin_files_are_named_after_their_stem():
    for path in DOMAINS_DIR.glob("*.yaml"):
        assert yaml.safe_load(path.read_text())["name"] == path.stem
