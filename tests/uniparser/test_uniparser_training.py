import numpy as np
import pytest
import torch
from PIL import Image

from humanparse.errors import ConfigError
from humanparse.uniparser.compose import SceneComposer
from humanparse.uniparser.dataset import ComposedScenes, EpochBatches, collate_instances
from humanparse.uniparser.model import build_uniparser
from humanparse.uniparser.recipe import UniParserMethod, UniParserRecipe


def test_a_few_steps_lower_the_loss_on_a_fixed_composed_batch(tiny_cfg, synthetic_cutouts, flip6):
    torch.manual_seed(0)
    comp = SceneComposer(synthetic_cutouts(), canvas=(64, 64), persons=(1, 3), flip_permutation=flip6, seed=1)
    scenes = ComposedScenes(comp, 2)
    batch = collate_instances([scenes[0], scenes[1]])
    model = build_uniparser(tiny_cfg)
    method = UniParserMethod.from_config({}, model=model)
    opt = torch.optim.AdamW(list(model.parameters()), lr=2e-3, weight_decay=0.0)
    totals, first_terms = [], None
    for step in range(8):
        terms = method.training_step(model, batch)
        first_terms = first_terms or {k: float(v.detach()) for k, v in terms.items()}
        total = sum(terms.values())
        totals.append(float(total.detach()))
        opt.zero_grad()
        total.backward()
        opt.step()
    assert set(first_terms) == {"center", "aux_ins", "aux_cate", "aux_neg", "par", "metric"}
    assert all(np.isfinite(totals))
    assert totals[-1] < 0.9 * totals[0], totals


def test_epochs_give_new_scenes_and_held_out_scenes_stay_fixed(synthetic_cutouts, flip6):
    comp = SceneComposer(synthetic_cutouts(), canvas=(64, 64), flip_permutation=flip6, seed=1)
    train = ComposedScenes(comp, 3)
    a = train[0]["image"]
    train.set_epoch(1)
    assert not torch.equal(a, train[0]["image"])
    held = ComposedScenes(comp, 3, fixed=True)
    held.set_epoch(5)
    assert torch.equal(held[0]["image"], a)
    batches = EpochBatches(10, 3, seed=0).batches_for_epoch(0)
    assert len(batches) == 3 and len({i for b in batches for i in b}) == 9
    assert batches == EpochBatches(10, 3, seed=0).batches_for_epoch(0) != EpochBatches(10, 3, seed=0).batches_for_epoch(1)


def test_collate_pads_to_32_with_ignore(synthetic_cutouts, flip6):
    item = {"image": torch.zeros(3, 50, 70), "part": torch.ones(50, 70, dtype=torch.long),
            "person": torch.ones(50, 70, dtype=torch.long), "domain": "lip", "meta": {}}
    b = collate_instances([item])
    assert b["image"].shape == (1, 3, 64, 96)
    assert (b["part"][0, 50:] == 255).all() and (b["person"][0, :, 70:] == 0).all()


def _write_single_person_folder(root, n=6, seed=0):
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for k in range(n):
        label = np.zeros((48, 32), np.uint8)
        label[4:44, 8:24] = rng.integers(1, 20)
        label[4:14, 8:24] = 13  # face
        Image.fromarray(rng.integers(0, 255, (48, 32, 3), dtype=np.uint8)).save(root / "images" / f"p{k}.jpg")
        Image.fromarray(label).save(root / "labels" / f"p{k}.png")


def _write_instance_folder(root):
    (root / "images").mkdir(parents=True)
    (root / "labels_7").mkdir()
    (root / "instances").mkdir()
    inst = np.zeros((40, 60), np.uint8)
    inst[5:35, 5:20], inst[8:38, 35:55] = 1, 2
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(root / "images" / "a.jpg")
    Image.fromarray((inst > 0).astype(np.uint8) * 2).save(root / "labels_7" / "a.png")
    Image.fromarray(inst).save(root / "instances" / "a.png")


def tiny_recipe_cfg(tmp_path):
    _write_single_person_folder(tmp_path / "single")
    _write_instance_folder(tmp_path / "real")
    src = {"reader": "folder", "root": str(tmp_path / "single"), "split": "all", "label_space": "lip"}
    return {
        "recipe": "uniparser", "seed": 0,
        "model": {"backbone": {"name": "test_resnet"}, "fpn_dim": 16, "feat_dim": 16, "S": 8, "gn_groups": 4},
        "data": {"label_space": "lip", "sources": [src], "val_sources": [src], "canvas": [64, 64],
                 "scenes_per_epoch": 4, "val_scenes": 2,
                 "real_val": [{"reader": "pascal", "root": str(tmp_path / "real"), "split": "all"}]},
        "eval": {"long_side": 64, "theta_ctr": 0.0},
    }


def test_recipe_builds_everything_and_evaluates(tmp_path):
    from humanparse.engine.recipes import build_recipe

    cfg = tiny_recipe_cfg(tmp_path)
    recipe = build_recipe(cfg, root=tmp_path)
    assert isinstance(recipe, UniParserRecipe)
    model = recipe.build_model()
    assert model.num_classes == 20 and model.config["num_classes"] == 20
    method = recipe.build_method(model)
    data = recipe.build_train_dataset()
    batch = recipe.collate([data[0], data[1]])
    terms = method.training_step(model, batch)
    assert {k for k in terms} == {"center", "aux_ins", "aux_cate", "aux_neg", "par", "metric"}
    results = recipe.evaluate(model)
    assert results["composed/num_gt_persons"] >= 2 and results["real/num_gt_persons"] == 2
    # the evaluation wiring: predictions equal to the ground truth score 1, no prediction scores 0
    scenes = recipe.held_out_scenes()
    truth = {s.image.tobytes(): s for s in
             (scenes.composer.compose(scenes.scene_index(i)) for i in range(len(scenes)))}
    real = recipe._real("real_val", train=False, mapped=False)
    real_truth = {im.tobytes(): persons for im, _, persons in (real.load(i) for i in range(len(real)))}

    def oracle(model, images, long_side):
        out = []
        for im in images:
            if im.tobytes() in truth:
                parts, ids = truth[im.tobytes()].parts, truth[im.tobytes()].person_ids
                parts = np.where(parts == 255, 0, parts).astype(np.uint8)
            else:
                ids = real_truth[im.tobytes()]
                parts = (ids > 0).astype(np.uint8)
            persons = [{"id": int(i), "score": 0.5} for i in np.unique(ids) if i > 0]
            out.append({"parts": parts, "person_ids": ids, "persons": persons})
        return out

    recipe._predict_all = oracle
    perfect = recipe.evaluate(model)
    for key in ("composed/APp50", "composed/APpvol", "composed/PCP50", "composed_persons/APp50", "real/APp50"):
        assert perfect[key] == pytest.approx(1.0), key
    recipe._predict_all = lambda model, images, long_side: [
        {"parts": np.zeros(im.shape[:2], np.uint8), "person_ids": np.zeros(im.shape[:2], np.int32), "persons": []}
        for im in images]
    empty = recipe.evaluate(model)
    assert empty["composed/APp50"] == 0.0 and empty["real/APp50"] == 0.0 and empty["composed/num_predictions"] == 0


@pytest.mark.parametrize("section,key,hint", [("model", "fpn_dimm", "fpn_dim"), ("loss", "par_wieght", "par_weight"),
                                              ("data", "canvs", "canvas"), ("eval", "theta_ctrl", "theta_ctr")])
def test_unknown_keys_name_the_close_match(tmp_path, section, key, hint):
    cfg = tiny_recipe_cfg(tmp_path)
    cfg.setdefault(section, {})[key] = 1
    with pytest.raises(ConfigError, match=hint):
        recipe = UniParserRecipe(cfg, root=tmp_path)
        recipe.build_method(recipe.build_model())


def test_num_classes_must_match_the_label_space(tmp_path):
    cfg = tiny_recipe_cfg(tmp_path)
    cfg["model"]["num_classes"] = 7
    with pytest.raises(ConfigError, match="lip"):
        UniParserRecipe(cfg, root=tmp_path)


PAPER_CONFIGS = {  # config -> (training images, epochs, epochs after which lr x0.1)
    "uniparser_r50.yaml": (28280, 12, (8, 11)), "uniparser_r50_3x.yaml": (28280, 36, (27, 33)),
    "uniparser_r50_mhpv2.yaml": (15403, 12, (8, 11)), "uniparser_r50_mhpv2_3x.yaml": (15403, 36, (27, 33)),
}


@pytest.mark.parametrize("name", sorted(PAPER_CONFIGS))
def test_paper_configs_build_with_the_official_schedule(name):
    """The paper configs build (on the meta device: no weights, no data) with the paper's network
    options, and their steps / lr drops are the official mmdet epochs at batch 8 (last batch dropped)."""
    from pathlib import Path

    from humanparse.config import load_config
    from humanparse.uniparser.model import ModulatedDeformConv

    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / name)
    cfg["model"]["backbone"]["pretrained"] = None  # never download in a test
    recipe = UniParserRecipe(cfg, root=".")
    with torch.device("meta"):
        model = recipe.build_model()
        recipe.build_method(model)
    assert any(isinstance(m, ModulatedDeformConv) for m in model.modules()) and model.norm_eval
    assert sum(isinstance(m, torch.nn.GroupNorm) for m in model.ifsb) == 5
    assert not any(p.requires_grad for p in model.backbone.model.layer1.parameters())
    images, epochs, drops = PAPER_CONFIGS[name]
    per_epoch = images // cfg["train"]["batch_size"]
    assert cfg["train"]["steps"] == epochs * per_epoch
    assert cfg["train"]["schedule"] == {"type": "step", "milestones": [d * per_epoch for d in drops], "gamma": 0.1}
    assert cfg["data"]["real_short_sides"] == [640, 672, 704, 736, 768, 800] and cfg["data"]["real_max_long_side"] == 1333
    assert cfg["data"]["real_train"] and cfg["data"]["real_val"] and not cfg["data"].get("sources")
