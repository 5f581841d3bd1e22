"""Transfer learning: default mode, linear mode on cached backbone features, finetune learning rates."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import checkpoint, engine, export, models, transfer
from core.config import RunConfig
from core.engine import Callback, StopToken, Trainer, evaluate
from core.predict import Predictor
from tests.helpers import make_colour_set

ARCH = "resnext11_2x4d"


@pytest.fixture
def dataset(tmp_path) -> Path:
    return make_colour_set(tmp_path / "colours")


@pytest.fixture
def weights(tmp_path) -> Path:
    """A "pretrained" state dict made locally (never the network), with non-trivial BN statistics."""
    torch.manual_seed(1)
    m = models.build(ARCH, 10)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "pretrained.pth"
    torch.save(m.state_dict(), path)
    return path


@pytest.fixture(autouse=True)
def feature_cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("RESNEXT_STUDIO_CACHE", str(folder))
    monkeypatch.setattr(transfer, "DEFAULT_VIEWS", 2)
    return folder / "features"


def config(root: Path, weights: Path, mode: str = "linear", epochs: int = 3, augment: str = "light") -> RunConfig:
    cfg = RunConfig()
    cfg.data.root, cfg.data.image_size, cfg.data.num_workers, cfg.data.augment = str(root), 16, 0, augment
    cfg.data.val_split = 0.25
    cfg.model.arch, cfg.model.pretrained, cfg.model.mode = ARCH, str(weights), mode
    cfg.train.epochs, cfg.train.batch_size, cfg.train.lr, cfg.train.device = epochs, 8, 0.05, "cpu"
    return cfg


class Recorder(Callback):
    def __init__(self, stop_at_feature_step: int | None = None, stop: StopToken | None = None):
        self.info = None
        self.epochs: list = []
        self.batches: list = []
        self.warnings: list[str] = []
        self.stop_at, self.stop = stop_at_feature_step, stop

    def on_fit_start(self, info):
        self.info = info

    def on_batch_end(self, p):
        self.batches.append(p)
        if self.stop_at is not None and p.epoch == 0 and p.step >= self.stop_at:
            self.stop.stop()

    def on_epoch_end(self, m):
        self.epochs.append(m)

    def on_warning(self, msg):
        self.warnings.append(msg)


class BackboneCounter:
    """Counts images through any core.models.Backbone (the feature extractor) while active."""

    def __init__(self):
        self.images = 0

    def __enter__(self):
        def hook(module, inputs, output):
            if isinstance(module, models.Backbone):
                self.images += int(inputs[0].shape[0])

        self.handle = torch.nn.modules.module.register_module_forward_hook(hook)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def fit(cfg: RunConfig, tmp_path: Path, **kw):
    rec = Recorder(**kw)
    with BackboneCounter() as count:
        t = Trainer(cfg, callbacks=[rec], runs_dir=tmp_path / "runs", stop=kw.get("stop"))
        assert isinstance(t, transfer.LinearTrainer) == (cfg.model.mode == "linear")
        result = t.fit()
    return t, result, rec, count.images


def test_default_mode():
    assert transfer.default_mode(None, "cpu") == "scratch"
    assert transfer.default_mode("none", "cuda") == "scratch"
    assert transfer.default_mode("imagenet", "cpu") == "linear"
    assert transfer.default_mode("/w.pth", "cuda:1") == "finetune"
    assert transfer.default_mode("imagenet", "mps") == "finetune"


def test_feature_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("RESNEXT_STUDIO_CACHE", str(tmp_path / "x"))
    assert transfer.feature_cache_dir() == tmp_path / "x" / "features"
    monkeypatch.delenv("RESNEXT_STUDIO_CACHE")
    assert transfer.feature_cache_dir().name == "features"


def test_linear_computes_features_once_then_from_cache(dataset, weights, tmp_path, feature_cache):
    cfg = config(dataset, weights)
    t, r, rec, passes = fit(cfg, tmp_path)
    assert r.reason == "completed", r.message
    n_train, n_val, v = len(t.split.train), len(t.split.val), 2
    assert (n_train, n_val) == (18, 6)
    assert passes == n_train * (v + 1) + n_val == t.backbone_passes
    assert "computed before epoch 1" in rec.info.loader_mode
    assert [b.epoch for b in rec.batches if b.epoch == 0]  # the feature pass shows progress as "epoch 0"
    assert [m.epoch for m in rec.epochs] == [1, 2, 3]
    assert all(m.val_acc is not None for m in rec.epochs)
    assert {p.name for p in Path(r.run_dir).iterdir()} >= {"best.pt", "last.pt", "history.csv", "evaluation.json"}
    assert list(feature_cache.glob("*/shard-*.pt"))

    # a second run on the same files and weights never touches the backbone, and trains the same
    t2, r2, rec2, passes2 = fit(cfg, tmp_path)
    assert r2.reason == "completed" and passes2 == 0
    assert "backbone skipped" in rec2.info.loader_mode
    assert [h["val_acc"] for h in r2.history] == [h["val_acc"] for h in r.history]
    assert r2.history[-1]["train_loss"] == pytest.approx(r.history[-1]["train_loss"], rel=1e-5)

    # editing one training image recomputes that image's views only
    path = Path(t.index.samples[t.split.train[0]].path)
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(path)
    _, r3, _, passes3 = fit(cfg, tmp_path)
    assert r3.reason == "completed" and passes3 == v + 1

    # other weights: a new cache key, everything recomputed
    torch.save(models.build(ARCH, 10).state_dict(), weights)
    _, _, _, passes4 = fit(cfg, tmp_path)
    assert passes4 == n_train * (v + 1) + n_val


def test_linear_checkpoint_is_a_normal_model(dataset, weights, tmp_path):
    cfg = config(dataset, weights, augment="none", epochs=4)
    t, r, _, passes = fit(cfg, tmp_path)
    assert r.reason == "completed" and r.message == "", r.message  # (its best.pt is known saved: no note)
    assert passes == len(t.split.train) + len(t.split.val)  # no augmentation: one view per image
    best = Path(r.run_dir) / "best.pt"
    ck = checkpoint.load(best)
    assert ck["arch"] == ARCH and ck["num_classes"] == 3
    pre = torch.load(weights, weights_only=True)
    assert torch.equal(ck["model"]["layer1.0.conv1.weight"], pre["layer1.0.conv1.weight"])  # backbone frozen
    assert torch.equal(ck["model"]["bn1.running_mean"], pre["bn1.running_mean"])

    # evaluate() runs the full checkpoint on the images: same accuracy as the head on the cached features
    best_row = next(h for h in r.history if h["epoch"] == r.best_epoch)
    ev = evaluate(best, t.index, split="val", device="cpu")
    assert ev["accuracy"] == pytest.approx(best_row["val_acc"])
    assert ev["loss"] == pytest.approx(best_row["val_loss"], rel=1e-4)
    stored = json.loads((Path(r.run_dir) / "evaluation.json").read_text())
    assert stored["accuracy"] == pytest.approx(ev["accuracy"]) and stored["num_samples"] == ev["num_samples"]
    assert stored["confusion_matrix"] == ev["confusion_matrix"]

    paths = [t.index.samples[i].path for i in t.split.val]
    preds = Predictor.from_checkpoint(best, device="cpu").predict(paths, top_k=2)
    assert all(p.ok for p in preds)
    assert [p.label for p in preds] == [e["predicted"] for e in ev["predictions"]]
    out = export.export_torchscript(best, tmp_path / "m.pt")
    assert out["top1_agree"] and Path(out["path"]).is_file()


def test_linear_stop_during_features_keeps_the_work(dataset, weights, tmp_path, monkeypatch):
    monkeypatch.setattr(transfer, "FEATURE_BATCH", 6)  # 2 images (3 views each) per backbone call
    monkeypatch.setattr(transfer, "PROGRESS_INTERVAL_S", 0.0)  # report every call, so "step 2" is always seen
    cfg = config(dataset, weights)
    stop = StopToken()
    _, r, _, passes = fit(cfg, tmp_path, stop_at_feature_step=2, stop=stop)
    assert r.reason == "stopped"
    assert 0 < passes < 18 * 3 + 6
    _, r2, _, passes2 = fit(cfg, tmp_path)
    assert r2.reason == "completed" and passes + passes2 == 18 * 3 + 6


def test_a_pause_while_a_linear_probe_computes_its_features_is_marked_in_its_folder(
    dataset, weights, tmp_path, monkeypatch
):
    """The features' pass (minutes on a large set) waited out a pause of its own, and only the epochs' wait marked
    the folder: `runs` and other windows said "running" all through it (engine.Trainer.wait_out_pause)."""
    from core import runs
    from tests.helpers import look_while_paused

    monkeypatch.setattr(transfer, "FEATURE_BATCH", 6)
    monkeypatch.setattr(transfer, "PROGRESS_INTERVAL_S", 0.0)
    token = StopToken()
    seen: list[tuple] = []

    def look() -> None:
        info = runs.RunStore(tmp_path / "runs").list()[0]
        seen.append((info.status, info.paused))

    another_program = look_while_paused(monkeypatch, token, look)

    class PauseInFeatures(Callback):
        def on_batch_end(self, p):
            if p.epoch == 0 and p.step == 2 and not token.paused and not seen:  # (epoch 0: the features' pass)
                token.pause()
                another_program()

    cfg = config(dataset, weights, epochs=1)
    result = Trainer(cfg, callbacks=[PauseInFeatures()], stop=token, runs_dir=tmp_path / "runs").fit()
    assert result.reason == "completed", result.message
    assert seen == [("running", True)]
    assert not (Path(result.run_dir) / runs.PAUSED_MARKER).exists()


def test_linear_resume_continues_from_cache(dataset, weights, tmp_path):
    cfg = config(dataset, weights, epochs=2)
    _, r, _, _ = fit(cfg, tmp_path)
    more = config(dataset, weights, epochs=4)
    with BackboneCounter() as count:
        t = Trainer(more, resume=r.run_dir)
        assert isinstance(t, transfer.LinearTrainer)
        r2 = t.fit()
    assert r2.reason == "completed" and count.images == 0
    assert [h["epoch"] for h in r2.history] == [1, 2, 3, 4]
    # a damaged config.json: the mode comes from last.pt (it resumed as a scratch run: slower, not exactly)
    (Path(r.run_dir) / "config.json").write_text('{"model": {"arch": "resn')
    assert isinstance(Trainer(config(dataset, weights, epochs=5), resume=r.run_dir), transfer.LinearTrainer)
    (Path(r.run_dir) / "config.json").unlink()
    assert isinstance(Trainer(None, resume=r.run_dir), transfer.LinearTrainer)


def test_a_linear_probe_plateau_watches_val_accuracy_again_when_its_images_are_back(dataset, weights, tmp_path):
    """No val image readable: the plateau watches the training loss ("min"). Resumed with them back, it kept the
    restored "min" while watching val_acc, and so cut the rate each time accuracy rose."""
    import shutil

    cfg = config(dataset, weights, epochs=1)
    cfg.train.scheduler = "plateau"
    t = Trainer(cfg, runs_dir=tmp_path / "runs")
    val = [Path(t.index.samples[i].path) for i in sorted(t.split.val)]
    kept = tmp_path / "kept"
    kept.mkdir()
    for i, p in enumerate(val):
        shutil.move(p, kept / f"{i}.png")
    first = t.fit()
    assert first.reason == "completed" and t.scheduler.mode == "min"
    for i, p in enumerate(val):
        shutil.move(kept / f"{i}.png", p)
    cfg.train.epochs = 2
    t2 = Trainer(cfg, resume=first.run_dir)
    assert t2.fit().reason == "completed" and t2.has_val and t2.scheduler.mode == "max"


def test_wrong_shape_weights_are_rejected_naming_the_layer(dataset, tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save(models.build("resnext11_4x8d", 10).state_dict(), bad)
    with pytest.raises(models.ModelError) as e:  # (before the run starts: a settings error, no failed run)
        Trainer(config(dataset, bad), runs_dir=tmp_path / "runs")
    assert "layer" in str(e.value) and "shape" in str(e.value) and str(bad) in str(e.value)


def test_finetune_param_groups(dataset, weights, tmp_path):
    cfg = config(dataset, weights, mode="finetune", epochs=1)
    cfg.train.lr, cfg.train.backbone_lr_mult = 0.01, 0.1
    t = Trainer(cfg, runs_dir=tmp_path / "runs")
    assert type(t) is Trainer
    t._setup()
    head = {id(p) for p in t.model.fc.parameters()}
    seen = 0
    for g in t.optimizer.param_groups:
        is_head = {id(p) for p in g["params"]} <= head
        assert is_head or not ({id(p) for p in g["params"]} & head)  # never a mix of head and backbone
        assert g["initial_lr"] == pytest.approx(0.01 if is_head else 0.001)
        seen += len(g["params"])
    assert seen == sum(1 for p in t.model.parameters())  # every parameter trains in finetune
    assert t.model.layer1[0].conv1.weight.requires_grad
    pre = torch.load(weights, weights_only=True)
    assert torch.equal(t.model.conv1.weight.detach().cpu(), pre["conv1.weight"])


def test_finetune_can_start_from_a_linear_run(dataset, weights, tmp_path):
    _, r, _, _ = fit(config(dataset, weights, epochs=2), tmp_path)
    best = Path(r.run_dir) / "best.pt"
    ck = checkpoint.load(best)
    t = Trainer(config(dataset, best, mode="finetune", epochs=1), runs_dir=tmp_path / "runs")
    assert type(t) is Trainer and engine.resolve_defaults(t.config, "cpu").model.mode == "finetune"
    t._setup()
    assert torch.equal(t.model.fc.weight.detach().cpu(), ck["model"]["fc.weight"])  # the trained head comes along
    assert torch.equal(t.model.layer2[0].conv2.weight.detach().cpu(), ck["model"]["layer2.0.conv2.weight"])
    assert all(p.requires_grad for p in t.model.parameters())


def test_a_linear_run_stopped_inside_an_epoch_resumes_from_the_next_step_exactly(
    dataset, weights, tmp_path, monkeypatch
):
    """18 training features, batch 4: 5 steps an epoch. Stopped after step 2 of epoch 2, resumed twice over."""
    monkeypatch.setattr(engine, "PROGRESS_INTERVAL_S", 0.0)  # a progress event after every step
    cfg = config(dataset, weights, epochs=3)
    cfg.train.batch_size = 4
    _, straight, _, _ = fit(cfg, tmp_path / "a")
    assert straight.reason == "completed", straight.message
    token = StopToken()

    class StopAt(Callback):
        def __init__(self, at):
            self.at = at

        def on_batch_end(self, p):
            if (p.epoch, p.step) == self.at:
                token.stop()

    first = Trainer(cfg, callbacks=[StopAt((2, 2))], stop=token, runs_dir=tmp_path / "b").fit()
    assert first.reason == "stopped"
    saved = checkpoint.load(Path(first.run_dir) / "last.pt")["partial"]
    assert saved["epoch"] == 2 and saved["steps_done"] == 2
    token = StopToken()
    second = Trainer(None, callbacks=[StopAt((2, 4))], stop=token, resume=first.run_dir).fit()
    assert second.reason == "stopped"
    again = checkpoint.load(Path(first.run_dir) / "last.pt")["partial"]
    assert again["steps_done"] == 4 and again["seconds"] > saved["seconds"]  # the earlier session's time kept
    resumed = Trainer(None, resume=first.run_dir).fit()
    assert resumed.reason == "completed" and resumed.message == "", resumed.message
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in resumed.history]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in straight.history]
    a = checkpoint.load(Path(straight.run_dir) / "last.pt")
    b = checkpoint.load(Path(resumed.run_dir) / "last.pt")
    assert b["scheduler"]["last_epoch"] == a["scheduler"]["last_epoch"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    # stopped again inside epoch 2 and resumed with a training image gone: the epoch starts over from its first
    # batch, and its cosine with it (it went on from step 2, so the run's rate reached 0 two steps early)
    token = StopToken()
    third = Trainer(cfg, callbacks=[StopAt((2, 2))], stop=token, runs_dir=tmp_path / "c").fit()
    assert third.reason == "stopped"
    t = Trainer(None, resume=third.run_dir)
    Path(t.index.samples[sorted(t.split.train)[0]].path).unlink()  # 17 images: still 5 steps an epoch
    again = t.fit()
    assert again.reason == "completed" and t.steps_per_epoch == 5
    assert t.scheduler.last_epoch == 15 and again.history[1]["lr"] == pytest.approx(straight.history[1]["lr"])


@pytest.mark.parametrize("mode", ["linear", "finetune"])
def test_weights_that_do_not_fit_leave_no_failed_run_behind(dataset, tmp_path, mode):
    other = tmp_path / "other.pth"
    torch.save(models.build("resnext11_1x8d", 10).state_dict(), other)  # another width: shapes differ
    with pytest.raises(models.ModelError, match="has shape"):  # found before the run starts
        Trainer(config(dataset, other, mode=mode), runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_linear_probe_tells_the_log_what_the_scan_left_out(dataset, weights, tmp_path):
    """Its FitInfo had no data_notes: the window's log said nothing of unusable files in the default mode with
    pretrained weights."""
    import shutil

    (dataset / "c1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    shutil.copy(dataset / "c0" / "00.png", dataset / "c2" / "like_c0.png")
    _, result, rec, _ = fit(config(dataset, weights, epochs=1), tmp_path)
    assert result.reason == "completed", result.message
    assert rec.info.data_notes == [
        "1 file in the class folders could not be used and is left out",
        "1 group of identical files in different classes (one image, two labels)",
    ]


def test_a_linear_probe_schedules_the_images_it_could_read(dataset, weights, tmp_path):
    """Two training images gone between the scan and the features: 16 of the split's 18 train, 4 steps an epoch
    at batch 4, not 5. The cosine was counted over 5, so it ended at a quarter of its rate, not at 0."""
    cfg = config(dataset, weights, epochs=3)
    cfg.train.batch_size, cfg.train.warmup_epochs = 4, 0
    t = Trainer(cfg, runs_dir=tmp_path / "runs")
    train = sorted(t.split.train)
    assert len(train) == 18
    for i in train[:2]:
        Path(t.index.samples[i].path).unlink()
    result = t.fit()
    assert result.reason == "completed", result.message
    assert t.steps_per_epoch == 4 and t.scheduler.last_epoch == 12
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    assert [r["lr"] for r in result.history][1] == pytest.approx(0.05 * 0.5 * (1 + np.cos(np.pi * 4 / 12)))
