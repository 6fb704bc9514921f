"""Try-on layouts: tables from LIP / CIHP / ATR, the declared non-derivable classes, and ``parse --map-to``."""

import numpy as np
import pytest
import yaml

from humanparse.errors import ConfigError
from humanparse.labels import get_label_space
from humanparse.labels.layout import LAYOUTS_DIR, Layout, get_layout, list_layouts


def test_builtin_layouts_load_and_map_every_source_class():
    assert {"viton_hd", "viton_hd_13"} <= set(list_layouts())
    for name in list_layouts():
        layout = get_layout(name)
        for src in layout.sources:
            space = get_label_space(src)
            table = layout.table_from(space)
            assert table.shape == (space.num_classes,) and table.max() < layout.label_space.num_classes
            produced = {layout.label_space.names[i] for i in table}
            missing = set(layout.label_space.names) - produced
            assert missing == set(layout.not_derivable.get(src, {})), (name, src)


def test_viton_hd_known_entries():
    layout = get_layout("viton_hd")
    names = layout.label_space.names
    assert names[10] == "neck" and names[5:8] == ["upper-clothes", "dress", "coat"]
    assert names[14:16] == ["left-arm", "right-arm"]
    cihp, lip, atr = (get_label_space(d) for d in ("cihp", "lip", "atr"))
    # cihp: identity ids (VITON-HD's files are CIHP-PGN output), torso-skin becomes the neck
    assert layout.table_from(cihp).tolist() == list(range(20))
    assert layout.table_from(lip)[lip.index("jumpsuits")] == names.index("dress")
    t = layout.table_from(atr)
    assert t[atr.index("belt")] == names.index("pants") and t[atr.index("bag")] == 0
    assert set(layout.not_derivable["atr"]) == {"glove", "coat", "socks", "neck"}
    assert set(layout.not_derivable["lip"]) == {"neck"}
    # the 13-channel grouping of HR-VITON's cp_dataset.py, from the CIHP ids
    groups = {0: [0, 10], 1: [1, 2], 2: [4, 13], 3: [5, 6, 7], 4: [9, 12], 5: [14], 6: [15], 7: [16], 8: [17],
              9: [18], 10: [19], 11: [8], 12: [3, 11]}
    t13 = get_layout("viton_hd_13").table_from(cihp)
    for target, sources in groups.items():
        assert all(t13[s] == target for s in sources)


def test_apply_relabels_a_map():
    lip = get_label_space("lip")
    label = np.array([[0, lip.index("jumpsuits")], [lip.index("left-arm"), lip.index("face")]], np.uint8)
    out = get_layout("viton_hd_13").apply(label, lip)
    names = get_layout("viton_hd_13").label_space.names
    assert [names[i] for i in out.ravel()] == ["background", "upper", "left-arm", "face"]


def test_bad_layout_files_say_what_is_wrong(tmp_path):
    d = yaml.safe_load((LAYOUTS_DIR / "viton_hd.yaml").read_text())
    d["not_derivable"]["lip"] = {}
    with pytest.raises(ConfigError, match="never produces"):
        Layout.from_dict(d, source="x.yaml")
    d = yaml.safe_load((LAYOUTS_DIR / "viton_hd.yaml").read_text())
    d["from"]["lip"]["hat"] = "hatt"
    with pytest.raises(ConfigError, match="did you mean 'hat'"):
        Layout.from_dict(d, source="x.yaml")
    with pytest.raises(ConfigError, match="can be derived from"):
        get_layout("viton_hd").table_from(get_label_space("pascal"))
    with pytest.raises(ConfigError, match="did you mean 'viton_hd'"):
        get_layout("viton_hdd")


def test_parse_map_to_writes_the_layout(tmp_path, capsys):
    from PIL import Image

    from humanparse.cli.main import main
    from humanparse.data.sample_data import sample_data_root

    from _tiny_checkpoint import make_tiny_checkpoint

    ckpt = make_tiny_checkpoint(tmp_path / "m.safetensors", long_side=64)
    photo = sorted((sample_data_root() / "lip" / "images").iterdir())[0]
    common = [str(ckpt), str(photo), "--domain", "lip", "--device", "cpu"]
    assert main(["parse", *common, "--out", str(tmp_path / "lip")]) == 0
    assert main(["parse", *common, "--out", str(tmp_path / "viton"), "--map-to", "viton_hd_13", "--overlay"]) == 0
    code = main(["parse", *common, "--out", str(tmp_path / "bad"), "--map-to", "vitonhd"])
    err = capsys.readouterr().err
    assert code == 1 and "did you mean 'viton_hd'" in err and "Traceback" not in err
    layout = get_layout("viton_hd_13")
    with Image.open(tmp_path / "lip" / f"{photo.stem}.png") as a, Image.open(tmp_path / "viton" / f"{photo.stem}.png") as b:
        lip_map, mapped = np.array(a), np.array(b)
        assert b.getpalette()[:39] == layout.label_space.palette.ravel().tolist()
    assert len(np.unique(lip_map)) > 2
    assert np.array_equal(mapped, layout.table_from(get_label_space("lip"))[lip_map])
    assert (tmp_path / "viton" / f"{photo.stem}_overlay.jpg").is_file()
