"""Transfer learning: the default mode, the on-disk backbone-feature cache and LinearTrainer (head on cached features)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core import checkpoint, data, models, runs
from core.engine import (
    PROGRESS_INTERVAL_S,
    BatchProgress,
    FitInfo,
    Trainer,
    _EpochMeter,
    _Stopped,
    choose_memory_format,
    device_name,
    evaluation_document,
    make_optimizer,
    make_scheduler,
    restep_schedule,
    seed_everything,
)

FEATURE_FORMAT = "resnext-studio-features/1"
DEFAULT_VIEWS = 4  # augmented views per training image when augmentation is on (plus the un-augmented view)
FEATURE_BATCH = 64  # views per backbone call while computing features
FLUSH_INTERVAL_S = 30.0  # computed features are written at least this often, so a stopped run keeps its work
MAX_SHARDS = 16  # more shard files than this in one cache folder are merged into one


def default_mode(pretrained: str | None, device_type: str) -> str:
    """The training mode to pre-select: "scratch" without weights, "linear" on a CPU, "finetune" on a GPU."""
    if pretrained is None or str(pretrained).strip().lower() in ("", "none"):
        return "scratch"
    return "linear" if str(device_type).split(":")[0] == "cpu" else "finetune"


def feature_cache_dir() -> Path:
    """$RESNEXT_STUDIO_CACHE/features, else the platform's user cache folder for resnext-studio / features."""
    env = os.environ.get("RESNEXT_STUDIO_CACHE")
    if env:
        return Path(env) / "features"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("resnext-studio", appauthor=False)) / "features"


def file_digest(path: str | Path) -> str:
    """Content hash of a file (blake2b-128, the digest scan uses for duplicates)."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def module_digest(module: nn.Module) -> str:
    """sha256 of a module's state (names, dtypes, shapes, bytes): identifies the exact backbone weights."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


class FeatureStore:
    """One cache folder of per-image features (one setting key): shard files {hashes, features}, written atomically.

    Entries are keyed by image content hash, so an edited or added image costs only its own features.
    """

    def __init__(self, folder: str | Path, describe: dict[str, Any] | None = None) -> None:
        self.folder = Path(folder)
        self.describe = describe or {}

    def shards(self) -> list[Path]:
        return sorted(self.folder.glob("shard-*.pt")) if self.folder.is_dir() else []

    def load(self, warn: Any = None) -> dict[str, torch.Tensor]:
        """content hash → feature tensor; unreadable shards are reported through `warn` and deleted."""
        out: dict[str, torch.Tensor] = {}
        for path in self.shards():
            try:
                obj = torch.load(path, map_location="cpu", weights_only=True)
                if not (
                    isinstance(obj, dict)
                    and obj.get("format") == FEATURE_FORMAT
                    and len(obj["hashes"]) == len(obj["features"])
                ):
                    raise ValueError("not a feature shard")
            except Exception as e:  # noqa: BLE001 - a damaged cache file is recomputed, never trusted
                if warn is not None:
                    warn(f"feature cache {path}: unreadable ({type(e).__name__}); recomputing its images")
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            for h, f in zip(obj["hashes"], obj["features"], strict=True):
                out[h] = f
        return out

    def add(self, feats: dict[str, torch.Tensor]) -> Path | None:
        """Write new entries as one shard (atomically); merge shards when there are too many."""
        if not feats:
            return None
        path = self._write(feats)
        shards = self.shards()
        if len(shards) > MAX_SHARDS:
            merged = self.load()
            keep = self._write(merged)
            for p in shards:
                if p != keep:
                    with contextlib.suppress(OSError):
                        p.unlink()
            return keep
        return path

    def _write(self, feats: dict[str, torch.Tensor]) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        info = self.folder / "key.json"
        if self.describe and not info.exists():
            runs.write_json_atomic(info, self.describe)
        hashes = sorted(feats)
        payload = {
            "format": FEATURE_FORMAT,
            "hashes": hashes,
            "features": torch.stack([feats[h].detach().to("cpu", torch.float32) for h in hashes]),
        }
        path = self.folder / f"shard-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.pt"
        fd, tmp = tempfile.mkstemp(prefix=".shard.", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(payload, f)
            runs.replace_file(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return path


def _num_views(cfg_data: Any, cfg_train: Any) -> int:
    """Augmented views per training image: 0 when the training transform is deterministic."""
    plan = data.augment_plan(cfg_data, train=True)
    if plan.crop == "center" and not (plan.hflip or plan.jitter or plan.erasing):
        return 0
    return int(getattr(cfg_train, "feature_views", DEFAULT_VIEWS))


class LinearTrainer(Trainer):
    """Mode "linear": the frozen pretrained backbone's pooled features are computed once per image and view, cached
    on disk (feature_cache_dir), and only fc trains, on those features. Checkpoints hold the full model.

    Each training image has view 0 (the evaluation transform) and views 1..V (the training augmentation, drawn
    from a generator seeded by the image's content hash and train.seed); an epoch picks one view per image.
    Validation and test images need view 0 only. So a first run computes N_train × (V + 1) + N_val + N_test
    backbone passes, and a second run on the same files and weights none.
    """

    # -- setup
    def _setup(self) -> None:
        cfg, tc = self.config, self.config.train
        dev = self.device
        seed_everything(tc.seed)
        pretrained = None if self._resume_ckpt else cfg.model.pretrained
        # built before the run folder, as in Trainer._setup: weights that do not fit leave no failed run behind
        stop = None if self.dist.enabled else self.stop
        model = models.build(
            cfg.model.arch, len(self.index.classes), pretrained=pretrained, freeze_backbone=True, stop=stop
        )
        self._open_run()
        self.memory_format = choose_memory_format(cfg.model.arch, dev, tc.channels_last)
        self.model = model.to(dev, memory_format=self.memory_format)
        self.forward = self.model
        self.backbone, self.head = models.split_backbone_head(self.model)
        self.train_tf = data.BatchTransform(cfg.data, train=True)
        self.eval_tf = data.BatchTransform(cfg.data, train=False)
        self.views = _num_views(cfg.data, tc)
        if tc.mixup > 0 or tc.cutmix > 0:
            self._warn("mixup/cutmix do not apply to cached features; linear mode trains without them")

        self.criterion = self._make_criterion()
        self.steps_per_epoch = max(1, math.ceil(len(self.split.train) / tc.batch_size))
        self.trained_steps_per_epoch = self.steps_per_epoch  # (the head has no BatchNorm: a batch of one trains)
        self.optimizer = make_optimizer(self.model, tc, finetune=False)  # fc only: the rest is frozen
        self.has_val = bool(self.split.val)
        plateau_mode = "max" if (self.has_val and tc.monitor == "val_acc") else "min"
        self.scheduler = make_scheduler(self.optimizer, tc, self.steps_per_epoch, plateau_mode)
        self.amp_dtype = None  # features and head in float32: the cached features match evaluate() exactly
        self.scaler = torch.amp.GradScaler("cuda", enabled=False)
        self.start_epoch = 0
        self.best: dict[str, Any] | None = None
        self.bad_epochs = 0
        if self._resume_ckpt:
            self._restore(self._resume_ckpt)
        self._prepare_features()

    def _prepare_features(self) -> None:
        cfg, tc, dev = self.config, self.config.train, self.device
        samples = self.index.samples
        parts = {"train": list(self.split.train), "val": list(self.split.val), "test": list(self.split.test)}
        digests: dict[int, str] = {}
        for ids in parts.values():
            for i in ids:
                try:
                    digests[i] = file_digest(samples[i].path)
                except OSError as e:
                    self._skip(samples[i].path, str(e.strerror or e))
        parts = {k: [i for i in ids if i in digests] for k, ids in parts.items()}

        self.backbone.eval()
        weights_id = module_digest(self.backbone)
        root = feature_cache_dir()
        eval_desc = {
            "format": FEATURE_FORMAT,
            "backbone": weights_id,
            "arch": cfg.model.arch,
            "image_size": cfg.data.image_size,
            "resize": data.resize_size(cfg.data.image_size),
            "transform": self.eval_tf.describe(),
            "memory_format": str(self.memory_format),
        }
        aug_desc = dict(eval_desc, transform=self.train_tf.describe(), views=self.views, seed=tc.seed)
        self.eval_store = FeatureStore(root / _key(eval_desc), eval_desc)
        self.aug_store = FeatureStore(root / _key(aug_desc), aug_desc)
        eval_have = self.eval_store.load(self._warn)
        aug_have = self.aug_store.load(self._warn) if self.views else {}

        want_eval = {digests[i]: i for ids in parts.values() for i in ids if digests[i] not in eval_have}
        want_aug = {digests[i]: i for i in parts["train"] if self.views and digests[i] not in aug_have}
        jobs = sorted(set(want_eval) | set(want_aug), key=lambda h: want_eval.get(h, want_aug.get(h)))
        n_views = len(want_eval) + self.views * len(want_aug)
        total = sum(len(ids) for ids in parts.values())
        if n_views:
            what = (  # (worded for the whole run: the Train tab shows it until the next one)
                f"features: {n_views} backbone views of {len(jobs)} images computed before epoch 1 "
                f"({total - len(jobs)} cached) in {root}"
            )
        else:
            what = f"features: all {total} images cached in {root} (backbone skipped)"
        self.feature_note = what
        self._emit(
            "on_fit_start",
            FitInfo(
                run_dir=str(self.run_dir),
                device=str(dev),
                device_name=device_name(dev),
                arch=cfg.model.arch,
                num_classes=self.num_classes,
                class_names=self.class_names,
                epochs=tc.epochs,
                start_epoch=self.start_epoch,
                steps_per_epoch=self.steps_per_epoch,
                train_size=len(parts["train"]),
                val_size=len(parts["val"]),
                test_size=len(parts["test"]),
                params=sum(p.numel() for p in self.model.parameters()),
                loader_mode=what,
                config=cfg.to_dict(),
                resume_step=self._resume_step(),
                data_notes=self.index.problem_notes(),
            ),
        )

        bad: set[str] = set()
        if jobs:
            bad = self._compute(
                jobs,
                {h: samples[i].path for h, i in {**want_aug, **want_eval}.items()},
                set(want_eval),
                set(want_aug),
                eval_have,
                aug_have,
            )
        self.backbone_passes = n_views
        if self.stop.stopped:
            return  # the loop ends the run as "stopped"; what was computed is in the cache

        def gather(ids: list[int], with_aug: bool) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
            ids = [i for i in ids if digests[i] not in bad]
            if not ids:
                return torch.empty(0), torch.empty(0, dtype=torch.long), []
            rows = []
            for i in ids:
                e = eval_have[digests[i]]
                rows.append(torch.cat([e[None], aug_have[digests[i]]]) if with_aug else e)
            y = torch.tensor([samples[i].label for i in ids], dtype=torch.long)
            return torch.stack(rows).to(dev), y.to(dev), ids

        self.feats = {
            "train": gather(parts["train"], self.views > 0),
            "val": gather(parts["val"], False),
            "test": gather(parts["test"], False),
        }
        if len(self.feats["train"][2]) < 1:
            raise data.DataError(f"{self.index.root}: no training image could be read")
        self.has_val = bool(self.feats["val"][2])
        self._fit_schedule(len(self.feats["train"][2]))

    def _fit_schedule(self, n_train: int) -> None:
        """The schedule for the images that could be read. The split counted unreadable ones too: a cosine over
        its steps ended above 0, and a plateau watching val_acc with no readable validation image never moved.
        (A resumed run's schedule, restored from last.pt, keeps its place; a plateau's watches what it can.)"""
        tc, sched = self.config.train, self.scheduler
        steps = max(1, math.ceil(n_train / tc.batch_size))
        if isinstance(sched, torch.optim.lr_scheduler.LambdaLR) and steps != self.steps_per_epoch:
            old, last = self.steps_per_epoch, sched.last_epoch
            self.scheduler = make_scheduler(self.optimizer, tc, steps, "min")
            self.scheduler.last_epoch = last
            restep_schedule(self.scheduler, self.optimizer, self.start_epoch, old, steps)
        elif isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):  # on the training loss without a
            mode = "max" if (self.has_val and tc.monitor == "val_acc") else "min"  # readable val image; a resumed
            if sched.mode != mode:  # one restored "min" so, watching val_acc again, cut its rate as accuracy rose
                self.scheduler = make_scheduler(self.optimizer, tc, steps, mode)
        self.steps_per_epoch = self.trained_steps_per_epoch = steps

    @torch.inference_mode()
    def _compute(
        self,
        jobs: list[str],
        paths: dict[str, str],
        need_eval: set[str],
        need_aug: set[str],
        eval_have: dict[str, torch.Tensor],
        aug_have: dict[str, torch.Tensor],
    ) -> set[str]:
        """Run the backbone over the missing views, adding them to the *_have maps and the cache; returns the
        hashes of images that could not be read."""
        dev, tc, stop, v = self.device, self.config.train, self.stop, self.views
        per_image = 1 if v == 0 else v + 1
        chunk = max(1, FEATURE_BATCH // per_image)
        steps = math.ceil(len(jobs) / chunk)
        size = self.config.data.image_size
        bad: set[str] = set()
        new_eval: dict[str, torch.Tensor] = {}
        new_aug: dict[str, torch.Tensor] = {}
        self._emit("on_epoch_start", 0)  # "epoch 0": the feature pass, shown by the usual progress bar
        t0 = last_emit = last_flush = time.perf_counter()
        paused, done_views = 0.0, 0

        def load(h: str) -> tuple[str, torch.Tensor | None, str | None]:
            try:
                return h, data.load_for_model(paths[h], size), None
            except data.ImageLoadError as e:
                return h, None, e.reason
            except Exception as e:  # noqa: BLE001
                return h, None, data.error_reason(e)

        def flush() -> None:
            self.eval_store.add(new_eval)
            self.aug_store.add(new_aug)
            new_eval.clear()
            new_aug.clear()

        try:
            with ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="features") as pool:
                for step, start in enumerate(range(0, len(jobs), chunk), 1):
                    if stop.paused:
                        paused += self.wait_out_pause()
                    if stop.stopped:
                        break
                    views, owners = [], []
                    for h, x, reason in pool.map(load, jobs[start : start + chunk]):
                        if x is None:
                            bad.add(h)
                            self._skip(paths[h], reason)
                            continue
                        x = x.to(dev)[None]
                        if h in need_eval:
                            views.append(self.eval_tf(x))
                            owners.append((h, "eval", 1))
                        if h in need_aug:
                            gen = torch.Generator().manual_seed((int(h[:15], 16) + 1_000_003 * tc.seed) % 2**62)
                            views.append(self.train_tf(x.expand(v, -1, -1, -1), generator=gen))
                            owners.append((h, "aug", v))
                    if views:
                        xb = torch.cat(views).contiguous(memory_format=self.memory_format)
                        fb = self.backbone(xb).float().cpu()
                        pos = 0
                        for h, kind, n in owners:
                            if kind == "eval":
                                eval_have[h] = new_eval[h] = fb[pos].clone()
                            else:
                                aug_have[h] = new_aug[h] = fb[pos : pos + n].clone()
                            pos += n
                        done_views += pos
                    now = time.perf_counter()
                    if now - last_flush >= FLUSH_INTERVAL_S:
                        flush()
                        last_flush = now
                    if step == 1 or step == steps or now - last_emit >= PROGRESS_INTERVAL_S:
                        last_emit = now
                        active = max(1e-9, now - t0 - paused)
                        self._emit(
                            "on_batch_end",
                            BatchProgress(
                                0, step, steps, float("nan"), done_views / active, (steps - step) * active / step
                            ),
                        )
        finally:
            flush()
        return bad

    # -- training on features
    def _train_one_epoch(self, epoch: int) -> tuple[float, float, float]:
        tc, dev, stop = self.config.train, self.device, self.stop
        opt, sched, head = self.optimizer, self.scheduler, self.head
        per_step = isinstance(sched, torch.optim.lr_scheduler.LambdaLR)
        self.model.train()
        x_all, y_all, _ = self.feats["train"]
        n = int(y_all.shape[0])
        gen = torch.Generator().manual_seed(tc.seed * 1000 + epoch)
        order = torch.randperm(n, generator=gen)
        # one view per image and epoch: view 0 is the un-augmented image, 1..V the augmented ones
        view = torch.randint(0, x_all.shape[1], (n,), generator=gen) if x_all.ndim == 3 else None
        steps = self.steps_per_epoch = self.trained_steps_per_epoch = max(1, math.ceil(n / tc.batch_size))
        order, view = data.to_device(order, dev), None if view is None else data.to_device(view, dev)  # once
        meter = _EpochMeter(self, epoch, steps)
        done = self._go_on_features(epoch, meter, n)
        for step in range(done + 1, steps + 1):
            meter.wait_if_paused()
            if stop.stopped:  # the order and views come from (seed, epoch): a resume leaves out the steps done
                raise self._stopped(meter, step - 1, step - 1, n, gen)
            idx = order[(step - 1) * tc.batch_size : step * tc.batch_size]
            x = x_all[idx, view[idx]] if view is not None else x_all[idx]
            y = y_all[idx]
            out = head(x)
            loss = self.criterion(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip:
                nn.utils.clip_grad_norm_(head.parameters(), tc.grad_clip)
            opt.step()
            if per_step:
                sched.step()
            meter.add(step, loss.detach(), (out.detach().argmax(1) == y).sum(), int(y.shape[0]))
            meter.tick(step)
        mean_loss, accuracy = meter.finish()
        return mean_loss, accuracy, meter.paused

    def _go_on_features(self, epoch: int, meter: _EpochMeter, n: int) -> int:
        """A resumed run stopped inside `epoch`: the steps it had done (their sums restored), else 0."""
        partial = self._take_partial(epoch)
        if partial is None:
            return 0
        mine = partial["ranks"][0]
        if int(partial.get("global_batch") or 0) != self.config.train.batch_size or int(mine.get("images", -1)) != n:
            self._warn(f"epoch {epoch} starts again from its first batch: its images or batch size changed")
            if self.is_main:  # its per-batch line starts again too
                runs.write_batches(self.run_dir, [r for r in runs.read_batches(self.run_dir) if r[0] < epoch])
            if isinstance(self.scheduler, torch.optim.lr_scheduler.LambdaLR):  # and its cosine: it went on from
                self.scheduler.last_epoch = (epoch - 1) * self.steps_per_epoch  # the steps done, so ended early
                restep_schedule(self.scheduler, self.optimizer, epoch - 1, None, self.steps_per_epoch)
            return 0
        done = int(partial["steps_done"])
        meter.seconds0 = float(partial.get("seconds") or 0.0)
        meter.resume_from(
            done, mine["loss_sum"], mine["correct"], mine["first_bad"], int(mine["seen"]), mine.get("rows")
        )
        return done

    @torch.inference_mode()
    def _validate(self) -> tuple[float, float]:
        x, y, _ = self.feats["val"]
        if self.stop.stopped:
            raise _Stopped
        if not len(y):
            return None, None  # type: ignore[return-value]
        self.model.eval()
        out = self.head(x)
        return float(F.cross_entropy(out, y)), float((out.argmax(1) == y).float().mean())

    def _final_evaluation(self, run_dir: Path) -> dict[str, Any] | None:
        """evaluation.json from the cached features (same numbers as engine.evaluate on best.pt, no backbone)."""
        split = "test" if self.feats["test"][2] else ("val" if self.feats["val"][2] else None)
        if split is None:
            return None
        try:
            ckpt = checkpoint.load(run_dir / "best.pt")
            head = nn.Linear(self.head.in_features, self.head.out_features).to(self.device)
            head.load_state_dict({"weight": ckpt["model"]["fc.weight"], "bias": ckpt["model"]["fc.bias"]})
            x, y, ids = self.feats[split]
            with torch.inference_mode():
                logits = head(x).float().cpu()
            ev = evaluation_doc(ckpt, self.index, split, ids, y.cpu(), logits, str(run_dir / "best.pt"))
            runs.write_json_atomic(run_dir / "evaluation.json", ev)
            return ev
        except Exception as e:  # noqa: BLE001 - training is done and saved; report the evaluation problem only
            self._safe_warn(f"evaluation on the {split} split failed: {type(e).__name__}: {e}")
            return None


def evaluation_doc(
    ckpt: dict[str, Any],
    index: data.DatasetIndex,
    split: str,
    ids: list[int],
    y: torch.Tensor,
    logits: torch.Tensor,
    source: str | None,
) -> dict[str, Any]:
    """The evaluation.json document (as core.engine.evaluate writes it) from logits of index.samples[ids]."""
    prob = logits.softmax(1)
    conf, pred = prob.max(1)
    loss = float(F.cross_entropy(logits, y, reduction="mean")) if y.numel() else None
    return evaluation_document(ckpt, index, split, ids, y, pred, conf, logits, loss, source, [], False)


__all__ = [
    "DEFAULT_VIEWS",
    "FeatureStore",
    "LinearTrainer",
    "default_mode",
    "evaluation_doc",
    "feature_cache_dir",
    "file_digest",
    "module_digest",
]
