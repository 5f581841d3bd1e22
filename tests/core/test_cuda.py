"""The CUDA paths end to end: AMP + channels_last training, the on-GPU cache and streaming loader, checkpoints that
load on a machine without a GPU, prediction and linear transfer on the GPU. Skipped where no CUDA device exists."""

import json
from pathlib import Path

import pytest
import torch

from core import checkpoint, data, engine, models, transfer
from core.config import DataConfig, RunConfig
from core.engine import Trainer, evaluate
from core.predict import Predictor
from tests.helpers import make_colour_set

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_colour_set(tmp_path_factory.mktemp("data") / "colours", per_class=12)


def config(root: Path, epochs: int = 3, **train) -> RunConfig:
    cfg = RunConfig()
    cfg.data.root, cfg.data.image_size, cfg.data.num_workers = str(root), 16, 0
    cfg.model.arch = "resnext11_2x4d"
    cfg.train.epochs, cfg.train.batch_size, cfg.train.lr, cfg.train.device = epochs, 8, 3e-3, "cuda"
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg


def _all_cpu(obj) -> bool:
    if isinstance(obj, torch.Tensor):
        return obj.device.type == "cpu"
    if isinstance(obj, dict):
        return all(_all_cpu(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(_all_cpu(v) for v in obj)
    return True


def test_training_on_cuda_uses_amp_channels_last_and_saves_cpu_checkpoints(dataset, tmp_path):
    seen = {}

    class Probe(engine.Callback):
        def on_fit_start(self, info):
            seen.update(
                device=t.device,
                amp=t.amp_dtype,
                scaler=t.scaler.is_enabled(),
                fmt=t.memory_format,
                mode=t.train_loader.mode,
                cache_cuda=t.train_loader.cache.is_cuda,
                model_cuda=next(t.model.parameters()).is_cuda,
                fused=t.optimizer.param_groups[0]["fused"],
                info=info,
            )

    t = Trainer(config(dataset), callbacks=[Probe()], runs_dir=tmp_path / "runs")
    r = t.fit()
    assert r.reason == "completed", r.message
    assert seen["device"].type == "cuda" and seen["model_cuda"]
    tensor_bf16 = torch.cuda.get_device_capability(seen["device"])[0] >= 8  # (bf16 tensor cores: A100 on)
    assert seen["amp"] == (torch.bfloat16 if tensor_bf16 else torch.float16)
    assert seen["scaler"] == (seen["amp"] == torch.float16)  # fp16's gradients are scaled; bf16's need not be
    assert seen["fmt"] == torch.channels_last
    assert seen["mode"] == "memory" and seen["cache_cuda"]
    assert seen["fused"] is True
    assert "cuda" in seen["info"].device
    assert r.history[-1]["val_acc"] >= 0.66
    run = Path(r.run_dir)
    # a file written on a GPU machine loads on a machine without one: every tensor is stored on the CPU
    for name in ("best.pt", "last.pt"):
        raw = torch.load(run / name, weights_only=True)
        assert _all_cpu(raw), f"{name} holds CUDA tensors"
    model = checkpoint.model_from_checkpoint(checkpoint.load(run / "best.pt"))
    assert next(model.parameters()).device.type == "cpu"
    assert json.loads((run / "evaluation.json").read_text())["num_samples"] == len(t.split.val)


def _stopped_after_first_epoch(dataset: Path, tmp_path: Path):
    """A CUDA run stopped at the end of epoch 1 (of 3): its last.pt holds a GPU run's optimizer state."""
    token = engine.StopToken()

    class StopAfterFirst(engine.Callback):
        def on_epoch_end(self, m):
            if m.epoch == 1:
                token.stop()

    first = Trainer(config(dataset), callbacks=[StopAfterFirst()], stop=token, runs_dir=tmp_path / "runs").fit()
    assert first.reason == "stopped" and len(first.history) == 1
    return first


def test_resume_on_cuda_continues_the_run(dataset, tmp_path):
    first = _stopped_after_first_epoch(dataset, tmp_path)
    resumed = Trainer(None, resume=first.run_dir).fit()
    assert resumed.reason == "completed", resumed.message
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]


def test_a_gpu_run_resumes_on_the_cpu(dataset, tmp_path):
    first = _stopped_after_first_epoch(dataset, tmp_path)
    cfg = config(dataset)
    cfg.train.device = "cpu"
    seen = {}

    class Probe(engine.Callback):
        def on_fit_start(self, info):
            seen.update(device=info.device, fused=t.optimizer.param_groups[0]["fused"])

    t = Trainer(cfg, callbacks=[Probe()], resume=first.run_dir)
    resumed = t.fit()
    assert resumed.reason == "completed", resumed.message
    assert seen["device"] == "cpu" and not seen["fused"]
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]


def test_a_cpu_run_resumes_on_cuda_with_moments_in_the_weights_layout(dataset, tmp_path):
    """A run begun on the CPU (contiguous weights) resumed on CUDA (channels_last, fused AdamW): the resumed
    optimizer's moments must take the weights' layout, or the fused kernel pairs the wrong elements."""
    token = engine.StopToken()

    class StopAfterFirst(engine.Callback):
        def on_epoch_end(self, m):
            if m.epoch == 1:
                token.stop()

    cpu = config(dataset)
    cpu.train.device = "cpu"
    first = Trainer(cpu, callbacks=[StopAfterFirst()], stop=token, runs_dir=tmp_path / "runs").fit()
    assert first.reason == "stopped" and len(first.history) == 1
    seen = {}

    class Probe(engine.Callback):
        def on_fit_start(self, info):
            opt = t.optimizer
            pairs = [(p, opt.state[p]) for g in opt.param_groups for p in g["params"] if p.dim() == 4]
            seen.update(
                device=info.device,
                fused=opt.param_groups[0]["fused"],
                same=all(s["exp_avg"].stride() == p.stride() for p, s in pairs if "exp_avg" in s),
                n=len(pairs),
            )

    t = Trainer(config(dataset), callbacks=[Probe()], resume=first.run_dir)
    resumed = t.fit()
    assert resumed.reason == "completed", resumed.message
    assert "cuda" in seen["device"] and seen["fused"] and seen["n"] > 0
    assert seen["same"], "the resumed moments kept the CPU run's layout"
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert all(torch.isfinite(p).all() for p in t.model.parameters())
    assert resumed.history[-1]["val_acc"] >= 0.66


def test_predict_and_evaluate_on_cuda_match_the_cpu(dataset, tmp_path):
    r = Trainer(config(dataset, epochs=2), runs_dir=tmp_path / "runs").fit()
    best = Path(r.run_dir) / "best.pt"
    paths = sorted(str(p) for p in Path(dataset).rglob("*.png"))
    gpu = Predictor.from_checkpoint(best, device="cuda").predict(paths, top_k=3)
    cpu = Predictor.from_checkpoint(best, device="cpu").predict(paths, top_k=3)
    assert all(p.ok for p in gpu) and len(gpu) == len(paths)
    for g, c in zip(gpu, cpu, strict=True):
        assert g.label == c.label
        assert g.top[0][1] == pytest.approx(c.top[0][1], abs=2e-3)
    index = data.scan(dataset)
    ev_gpu = evaluate(best, index, split="all", device="cuda")
    ev_cpu = evaluate(best, index, split="all", device="cpu")
    assert ev_gpu["num_samples"] == ev_cpu["num_samples"] == len(paths)
    assert ev_gpu["accuracy"] == pytest.approx(ev_cpu["accuracy"], abs=1 / len(paths) + 1e-9)


@pytest.mark.timeout(240)
def test_streaming_with_pinned_spawned_worker_matches_the_gpu_cache(dataset):
    idx = data.scan(dataset)
    kw = dict(batch_size=8, shuffle=True, seed=3, device="cuda")
    stream = data.make_loader(idx, range(30), DataConfig(image_size=16, cache="stream"), num_workers=1, **kw)
    cache = data.make_loader(idx, range(30), DataConfig(image_size=16, cache="memory"), **kw)
    assert stream.mode == "stream" and cache.mode == "memory"
    got_s, got_c = list(stream), list(cache)
    assert len(got_s) == len(got_c) == 4
    for a, b in zip(got_s, got_c, strict=True):
        assert a.x.is_cuda and torch.equal(a.x, b.x) and torch.equal(a.idx.cpu(), b.idx.cpu())


def test_cuda_cache_budget_is_a_share_of_free_gpu_memory():
    free, _ = torch.cuda.mem_get_info()
    budget = data.cache_budget_bytes(DataConfig(), "cuda")
    assert 0 < budget <= free
    assert data.cache_budget_bytes(DataConfig(cache_budget_mb=3), "cuda") == 3 * 1024 * 1024


def test_linear_transfer_on_cuda(dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("RESNEXT_STUDIO_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(1)
    weights = tmp_path / "pre.pth"
    torch.save(models.build("resnext11_2x4d", 10).state_dict(), weights)
    cfg = config(dataset, epochs=5, lr=0.05)
    cfg.model.pretrained, cfg.model.mode, cfg.data.augment = str(weights), "linear", "none"
    t = Trainer(cfg, runs_dir=tmp_path / "runs")
    assert isinstance(t, transfer.LinearTrainer)
    r = t.fit()
    assert r.reason == "completed", r.message
    ck = checkpoint.load(Path(r.run_dir) / "best.pt")
    assert _all_cpu(ck) and ck["num_classes"] == 3
    pre = torch.load(weights, weights_only=True)
    assert torch.equal(ck["model"]["layer1.0.conv1.weight"], pre["layer1.0.conv1.weight"])


@pytest.mark.parametrize("size, extra", [(16, {"mixup": 0.2}), (72, {"cutmix": 1.0})])
def test_training_steps_queue_work_without_waiting_for_the_gpu(dataset, tmp_path, monkeypatch, size, extra):
    """Inside an epoch no step may make the host wait for the GPU: not a sync, not a progress read, not a blocking
    copy. Checked in epoch 2 two ways. PyTorch's sync debug mode makes every synchronising call an error from the
    epoch's start until finish() (which waits on purpose), so such a call fails the run. And a long GPU sleep
    queued at the first progress event must still be running when the next step returns. (Only that step: on an H200
    the fourth step waited with the code before and after the last change alike, most likely because the GPU's
    launch queue fills after a few steps of this model, after which every launch waits whatever the code does.)
    Covers the GPU cache, pad-crop (16 px) and random-resized crop (72 px) with jitter and erasing, MixUp/CutMix,
    the running loss and the lagged progress reads."""
    cfg = config(dataset, epochs=2, batch_size=4, **extra)
    cfg.data.image_size, cfg.data.augment = size, "strong"
    state: dict = {"queries": [], "reports": [], "watched": 0}

    class SleepAtFirstReport(engine.Callback):
        def on_epoch_start(self, epoch):
            if epoch == 2:
                torch.cuda.set_sync_debug_mode("error")

        def on_batch_end(self, p):
            state["reports"].append((p.epoch, p.step))
            if p.epoch == 2 and "sleep_done" not in state and p.step < p.steps:
                torch.cuda._sleep(5_000_000_000)  # ≈ 2.5 s of GPU clock cycles
                state["sleep_done"] = torch.cuda.Event()
                state["sleep_done"].record()

    finish = engine._EpochMeter.finish

    def finish_waits(meter):
        if torch.cuda.get_sync_debug_mode():
            state["watched"] = meter.steps
        torch.cuda.set_sync_debug_mode(0)
        return finish(meter)

    monkeypatch.setattr(engine._EpochMeter, "finish", finish_waits)
    t = Trainer(cfg, callbacks=[SleepAtFirstReport()], runs_dir=tmp_path / "runs")
    step = t._train_step

    def watched(*args):
        out = step(*args)
        if "sleep_done" in state:
            state["queries"].append(state["sleep_done"].query())
        return out

    t._train_step = watched
    try:
        r = t.fit()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert r.reason == "completed", r.message  # a synchronising call in epoch 2 fails the run, naming it
    assert t.train_loader.mode == "memory" and state["watched"] == t.steps_per_epoch >= 6
    assert (2, 1) in state["reports"] and (2, t.steps_per_epoch) in state["reports"]
    assert state["queries"], "no step ran after the sleep was queued"
    assert state["queries"][0] is False, "the step after a progress event waited for the GPU"
