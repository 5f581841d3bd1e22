"""Training engine: the fit loop and its events, stop/pause, AMP, checkpoints, resume, early stopping; evaluate."""

from __future__ import annotations

import contextlib
import copy
import gc
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core import (
    checkpoint,
    count_noun,
    data,
    distributed,
    handle_signals,
    metrics,
    models,
    quiet_closed_terminal,
    runs,
)
from core.config import MAX_EPOCHS, ConfigError, DataConfig, RunConfig, TrainConfig, auto_preset
from core.stop import StopToken

PROGRESS_INTERVAL_S = 0.1  # batch events at most 10 per second (plus the first and last batch of an epoch)
BATCH_LOG_INTERVAL_S = 0.25  # batches.csv: a row at most 4 times a second (plus each epoch's last batch)
PROGRESS_FILE_INTERVAL_S = 0.5  # distributed runs: rank 0 rewrites progress.json at most twice a second

# ------------------------------------------------------------------------------------------------------- events


@dataclass
class FitInfo:
    run_dir: str
    device: str
    device_name: str
    arch: str
    num_classes: int
    class_names: list[str]
    epochs: int
    start_epoch: int  # epochs already done (0 for a new run, N when resuming after epoch N)
    steps_per_epoch: int
    train_size: int
    val_size: int
    test_size: int
    params: int
    loader_mode: str  # e.g. "cached 600 images in memory, 7.4 MB"
    config: dict[str, Any]
    world_size: int = 1  # processes training together (torchrun); 1 for a plain run
    resume_step: int = 0  # a run stopped inside epoch start_epoch + 1: the steps of it done (it goes on after them)
    # the scan's problems that training goes on despite, a sentence each (DatasetIndex.problem_notes)
    data_notes: list[str] = field(default_factory=list)


@dataclass
class BatchProgress:
    epoch: int
    step: int
    steps: int
    loss: float  # running mean of this epoch's training loss
    images_per_s: float
    eta_s: float  # seconds left for the whole run (remaining epochs included), from this epoch's speed
    seen: int = 0  # the images that mean is over (this process's; 0: not known), for runs.RecentLoss
    recent_loss: float | None = None  # the training loss since the previous event (None: not known; use loss)


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float | None
    val_acc: float | None
    lr: float  # at the epoch's first step (history.csv's lr)
    seconds: float
    lr_end: float | None = None  # at its end (a warm-up or cosine moves it within the epoch); not in history.csv

    def lr_text(self) -> str:
        """ "lr 3.00e-03", or "lr 1.88e-04→2.71e-03" for an epoch the schedule moved it through (a warm-up epoch
        showed only its first step's 1.9e-04 against a set rate of 3e-03)."""
        if self.lr_end is None or abs(self.lr_end - self.lr) <= 0.01 * max(abs(self.lr), abs(self.lr_end)):
            return f"lr {self.lr:.2e}"
        return f"lr {self.lr:.2e}→{self.lr_end:.2e}"


@dataclass
class FitResult:
    reason: str  # completed | early_stop | stopped | failed
    message: str
    best_epoch: int | None
    best_metric: float | None  # the monitored value of the best epoch (train loss when there is no val split)
    run_dir: str | None
    history: list[dict[str, Any]] = field(default_factory=list)
    evaluation: dict[str, Any] | None = None
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): images that failed to load


class Callback:
    """Receives trainer events; every hook is a no-op here. Hooks run on the training thread."""

    def on_loading(self, done: int, total: int) -> None:
        """Before on_fit_start: `done` of the `total` training and validation images read into memory (the
        decoded-image cache; minutes for a large set). Not sent when the images are streamed from disk."""

    def on_fit_start(self, info: FitInfo) -> None: ...
    def on_epoch_start(self, epoch: int) -> None: ...
    def on_batch_end(self, p: BatchProgress) -> None: ...
    def on_epoch_end(self, m: EpochMetrics) -> None: ...
    def on_checkpoint(self, path: str, kind: str) -> None: ...
    def on_warning(self, msg: str) -> None: ...
    def on_fit_end(self, r: FitResult) -> None: ...


# ------------------------------------------------------------------------------------------------------- device


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """ "auto" → CUDA › MPS › CPU; a named device that is not available is a ConfigError."""
    if isinstance(name, torch.device):
        return name
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device={name!r}: not a device name (auto, cpu, cuda, cuda:N, mps)") from None
    if dev.type not in ("cpu", "cuda", "mps"):  # meta, xpu, hpu …: torch names them, this program does not use them
        raise ConfigError(f"device={name!r}: not a device this program trains on (auto, cpu, cuda, cuda:N, mps)")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name!r}: no CUDA GPU is available on this machine; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device={name!r}: only {torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device={name!r}: Apple MPS is not available on this machine; use --device cpu")
    return dev


def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"{torch.cuda.get_device_name(dev)} ({dev})"
    if dev.type == "mps":
        return "Apple GPU (mps)"
    return f"CPU ({count_noun(torch.get_num_threads(), 'thread')})"


def choose_memory_format(arch: str, device: torch.device | str, setting: str = "auto") -> torch.memory_format:
    """The activation layout for "auto": channels_last on CUDA, and on the CPU for ResNeXt (grouped convolutions:
    resnext11_4x8d trains 1.6x faster per step at 32 px and 1.7x at 64 px, measured on one core); contiguous on
    MPS and for plain ResNets on the CPU. "on"/"off" force it."""
    if setting == "on":
        return torch.channels_last
    if setting == "off":
        return torch.contiguous_format
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.channels_last
    if kind == "cpu":
        try:
            grouped = models.parse_arch(arch).groups > 1
        except models.ModelError:
            grouped = False
        return torch.channels_last if grouped else torch.contiguous_format
    return torch.contiguous_format


def amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """The autocast dtype for training on this device: bf16 on GPUs with bf16 tensor cores (compute capability 8.0
    on: A100, RTX 30xx, H100), else fp16 (with the GradScaler); None on CPU/MPS. Asked of `device` itself: on
    mixed GPUs the current one may be another. (torch.cuda.is_bf16_supported() also says yes where bf16 is only
    emulated, a T4 or V100, where it is slower than fp32.)"""
    if not enabled or device.type != "cuda":
        return None
    try:
        major, _minor = torch.cuda.get_device_capability(device)
    except (AssertionError, RuntimeError, ValueError):  # (no such device: fp16 runs everywhere)
        return torch.float16
    return torch.bfloat16 if major >= 8 else torch.float16


def seed_everything(seed: int) -> None:
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ------------------------------------------------------------------------------------------------------- defaults

# Dataclass defaults; resolve_defaults only replaces values still equal to these (the user did not choose them).
_DEFAULT_DATA = DataConfig()
_DEFAULT_TRAIN = TrainConfig()


def choose_arch(config: RunConfig) -> None:
    """Arch "auto" made concrete for config.train.device, in place and alone: the app's form has set every other
    value, which resolve_defaults' device preset would otherwise replace."""
    if config.model.arch == "auto":
        config.model.arch = models.auto_arch(resolve_device(config.train.device).type, config.model.pretrained)


def resolve_defaults(config: RunConfig, device: torch.device | str) -> RunConfig:
    """A copy of `config` with "auto" choices made for `device` (see config.CPU_PRESET / GPU_PRESET).

    Only arch "auto" triggers a preset, and a preset only replaces values the user left at their defaults.
    """
    cfg = copy.deepcopy(config)
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    if cfg.model.arch == "auto":
        cfg.model.arch = models.auto_arch(dev.type, cfg.model.pretrained)
        preset = auto_preset(dev.type, bool(cfg.model.pretrained))
        ours = models.checkpoint_model(cfg.model.pretrained)  # a run's checkpoint: its own model and image size
        for key in ("image_size", "augment"):
            if getattr(cfg.data, key) == getattr(_DEFAULT_DATA, key):
                setattr(cfg.data, key, ours[1] if ours and key == "image_size" else preset[key])
        for key in ("batch_size", "lr", "epochs", "warmup_epochs"):
            if key == "warmup_epochs" and cfg.train.scheduler != "cosine":
                continue  # the warm-up is the cosine schedule's; the others would only be told it is ignored
            if getattr(cfg.train, key) == getattr(_DEFAULT_TRAIN, key):
                setattr(cfg.train, key, preset[key])
    else:  # its canonical name: "ResNeXt50-32x4d" typed was kept so in config.json, the run's name and its lists
        with contextlib.suppress(models.ModelError):  # (a name that is none: said where the model is built)
            cfg.model.arch = models.parse_arch(cfg.model.arch).name
    if cfg.model.mode == "linear":
        cfg.model.freeze_backbone = True
    return cfg


# ------------------------------------------------------------------------------------------------------- trainer


class _Stopped(Exception):
    """The stop token was set mid-epoch; `state` (this rank's) lets a resumed run go on from the next batch."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        super().__init__("stopped")
        self.state = state


class _Failed(Exception):
    """Training cannot go on (non-finite loss, out of memory); the message is for the user."""


def _param_groups(model: nn.Module, tc: TrainConfig, finetune: bool) -> list[dict[str, Any]]:
    """Parameter groups: no weight decay on biases and norm weights; finetune: backbone lr × backbone_lr_mult."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        head = name == "fc" or name.startswith("fc.")
        decay = p.ndim > 1
        groups.setdefault((head or not finetune, decay), []).append(p)
    out = []
    for (full_lr, decay), params in sorted(groups.items(), key=lambda kv: (not kv[0][0], not kv[0][1])):
        out.append(
            {
                "params": params,
                "lr": tc.lr * (1.0 if full_lr else tc.backbone_lr_mult),
                "weight_decay": tc.weight_decay if decay else 0.0,
            }
        )
    return out


def _resume_problem(ck: dict[str, Any], run_dir: Path) -> str | None:
    """What makes a run's last.pt no checkpoint to go on from, or None: no training state (a best.pt copied over
    it ended a completed run as failed, "KeyError: 'optimizer'"), a forged epoch (a resume trained "epochs -2..3"),
    or another run's checkpoint (it took the run over: its architecture, history and best.pt replaced)."""
    opt = ck.get("optimizer")
    if not (isinstance(opt, dict) and isinstance(opt.get("param_groups"), list) and isinstance(opt.get("state"), dict)):
        return "it holds no optimizer state (is it a best.pt or a weights file copied over last.pt?)"
    epoch = ck.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch <= MAX_EPOCHS:
        return f"its epoch {epoch!r} is not a count of epochs"
    for key in ("scheduler", "scaler", "rng"):
        if ck.get(key) is not None and not isinstance(ck[key], dict):
            return f"its {key} state is a {type(ck[key]).__name__}"
    rng = ck.get("rng") or {}
    if "torch" in rng and not torch.is_tensor(rng["torch"]):
        return "its random-number state is damaged"
    stored = ck.get("config") or {}
    arch = (stored.get("model") or {}).get("arch")
    if arch != ck["arch"]:
        named = f"the architecture {arch!r}" if arch else "no architecture"
        return f"its stored settings name {named}, its weights are {ck['arch']!r}"
    # another run's last.pt copied here (it took the run over): its settings are not the ones config.json keeps
    # (a resume changes only the epochs and the device there)
    saved = runs.read_config(run_dir)
    for section, free in (("model", ()), ("train", ("epochs", "device"))):
        mine, theirs = runs.section(saved, section), stored.get(section) or {}
        for key in sorted(mine.keys() & theirs.keys() - set(free)):
            if json.dumps(mine[key], default=str) != json.dumps(theirs[key], default=str):
                return (
                    f"its {section}.{key} is {theirs[key]!r} where this run's config.json has {mine[key]!r}: "
                    "the checkpoint of another run"
                )
    classes = runs.section(saved, "dataset").get("classes")
    if isinstance(classes, list) and classes != list(ck["class_names"]):
        return "its classes are not this run's (config.json): the checkpoint of another run"
    return None


def make_optimizer(model: nn.Module, tc: TrainConfig, finetune: bool = False) -> torch.optim.Optimizer:
    groups = _param_groups(model, tc, finetune)
    if not groups:
        raise ConfigError("model: no trainable parameters")
    # On CUDA the fused kernels update every parameter in a couple of launches instead of a few per tensor group
    # (training a ResNeXt at batch 32 on a fast GPU is bound by kernel launches as much as by arithmetic).
    fused = {"fused": True} if _fusable(groups) else {}
    if tc.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=tc.lr, momentum=tc.momentum, nesterov=tc.nesterov and tc.momentum > 0, **fused
        )
    if tc.optimizer == "adam":
        return torch.optim.Adam(groups, lr=tc.lr, **fused)
    return torch.optim.AdamW(groups, lr=tc.lr, **fused)


def _fusable(groups: list[dict[str, Any]]) -> bool:
    params = [p for g in groups for p in g["params"]]
    return bool(params) and all(p.is_cuda and p.is_floating_point() for p in params)


def load_optimizer_state(opt: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load a saved optimizer state, keeping this optimizer's fused/foreach choice: a run saved on a GPU (fused)
    can resume on the CPU and the other way round."""
    keep = [{k: g.get(k) for k in ("fused", "foreach")} for g in opt.param_groups]
    opt.load_state_dict(state)
    for g, k in zip(opt.param_groups, keep, strict=True):
        g.update(k)
    # The moments keep the memory layout they were saved in, the weights take this device's (channels_last on CUDA,
    # contiguous on a CPU or a Mac for some models): the fused kernels index raw storage and need one layout. A run
    # begun on a CPU and resumed on a GPU fed them both (fused on the CPU: 5.2 off after one epoch, against 0.03).
    # The step count lives where the saved group's kernel wanted it (torch places it by the *saved* fused flag): on
    # the weights' device for a fused or capturable kernel, on the CPU for the others. A CPU run resumed on CUDA
    # (fused) failed at its first step with "state_steps is on cpu".
    for group in opt.param_groups:
        on_device = bool(group.get("fused") or group.get("capturable"))
        for p in group["params"]:
            st = opt.state.get(p, {})
            for name, v in st.items():
                if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                    st[name] = torch.empty_like(p, dtype=v.dtype).copy_(v)
            step = st.get("step")
            if torch.is_tensor(step):
                st["step"] = step.to(p.device, torch.float32) if on_device else step.cpu()


def make_scheduler(opt: torch.optim.Optimizer, tc: TrainConfig, steps_per_epoch: int, mode: str) -> Any:
    """cosine (per step, linear warm-up), step (per epoch), plateau (per epoch, on the monitored metric), none."""
    if tc.scheduler == "cosine":
        total = max(1, tc.epochs * steps_per_epoch)
        warm = min(total - 1, round(tc.warmup_epochs * steps_per_epoch))

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / (warm + 1)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

        return torch.optim.lr_scheduler.LambdaLR(opt, factor)
    if tc.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=tc.step_size, gamma=tc.gamma)
    if tc.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode=mode, factor=tc.gamma if tc.gamma < 1 else 0.1, patience=2
        )
    return None


def restep_schedule(sched: Any, opt: torch.optim.Optimizer, done: int, old: int | None, new: int) -> None:
    """Move a per-step schedule (the cosine) to the same place in epochs when an epoch's steps go from `old` to
    `new` (the `done` whole epochs at the new count; the steps of a stopped epoch as they were), and set the
    optimizer's rate to the schedule's value there."""
    if old and old != new:
        within = max(0, sched.last_epoch - done * old)
        sched.last_epoch = done * new + within
    for group, base, factor in zip(opt.param_groups, sched.base_lrs, sched.lr_lambdas, strict=True):
        group["lr"] = base * factor(sched.last_epoch)


def _mix(
    x: torch.Tensor, y: torch.Tensor, tc: TrainConfig, rng: random.Random, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """MixUp or CutMix (one picked per batch when both are on): returns mixed x, partner labels, lambda."""
    kinds = [k for k, a in (("mixup", tc.mixup), ("cutmix", tc.cutmix)) if a > 0]
    kind = kinds[0] if len(kinds) == 1 else rng.choice(kinds)
    alpha = tc.mixup if kind == "mixup" else tc.cutmix
    lam = rng.betavariate(alpha, alpha)
    perm = data.to_device(torch.randperm(x.shape[0], generator=gen), x.device)
    if kind == "mixup":
        return lam * x + (1 - lam) * x[perm], y[perm], lam
    h, w = x.shape[-2:]
    ch, cw = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
    cy, cx = rng.randrange(h), rng.randrange(w)
    y0, y1 = max(0, cy - ch // 2), min(h, cy + ch // 2)
    x0, x1 = max(0, cx - cw // 2), min(w, cx + cw // 2)
    x = x.clone()
    x[:, :, y0:y1, x0:x1] = x[perm][:, :, y0:y1, x0:x1]
    return x, y[perm], 1 - (y1 - y0) * (x1 - x0) / (h * w)


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.cuda.OutOfMemoryError) or (isinstance(e, RuntimeError) and "out of memory" in str(e))


def refuse_a_running_run(run_dir: Path, under_torchrun: bool = False) -> None:
    """Two processes writing one run folder interleave history.csv and overwrite each other's checkpoints: a run
    whose status.json names a live process on this machine is not resumed (a second one is refused too).
    Under torchrun only rank 0 asks, once the ranks can tell each other (Trainer._lock_for_resume)."""
    if distributed.env_world_size() > 1 and not under_torchrun:
        return
    try:
        status = json.loads((run_dir / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(status, dict):
        return
    host = status.get("hostname")
    if host != socket.gethostname():
        if isinstance(host, str) and host.strip() and runs.effective_status(status, run_dir) == "running":
            _refuse_a_run_of_another_machine(run_dir, status, host)
        return
    if runs.effective_status(status, run_dir) == "running" and status.get("pid") != os.getpid():
        told_by_pid = runs.RunLock(run_dir).probe() is None  # (a run from before locks: its process id decided)
        # paused in a window ("still training" of a run the window showed paused read as another run)
        doing = "is paused in another window" if (run_dir / runs.PAUSED_MARKER).exists() else "is still training"
        raise ConfigError(
            f"{run_dir}: this run {doing} (process {status.get('pid')}); stop it before resuming it"
            + (
                " (if no training is running, that process is another program: delete the run's status.json)"
                if told_by_pid
                else ""
            )
        )


def _refuse_a_run_of_another_machine(run_dir: Path, status: dict[str, Any], host: str) -> None:
    """A run that another machine's status.json says is training, written to lately (a shared folder, or copied
    mid-run): resumed here too, both would write it. Said with when it counts as ended there (runs.judge_status)."""
    last = runs.last_written(status, run_dir) or time.time()
    ends = datetime.fromtimestamp(last + runs.foreign_quiet_s(run_dir)).strftime("%Y-%m-%d %H:%M")
    raise ConfigError(
        f"{run_dir}: this run is training on {host}, says its status.json (last written "
        f"{datetime.fromtimestamp(last).strftime('%Y-%m-%d %H:%M')}); stop it there before resuming it here. If it "
        f"is not training there, it can be resumed from {ends}, when that file has been quiet long enough"
    )


def _lock_run(run_dir: Path) -> runs.RunLock:
    """The run folder's lock, or ConfigError when another process holds it (two resumes of one run at once)."""
    lock = runs.RunLock(run_dir)
    try:
        taken = lock.acquire()
    except OSError as e:
        raise ConfigError(f"{run_dir}: cannot write in this run folder ({e.strerror or e})") from None
    if not taken:
        raise ConfigError(
            f"{run_dir}: this run is training right now (its folder is locked); stop it before resuming it"
        )
    return lock


def _mode_of(config: RunConfig | None, resume: str | Path | None) -> str:
    """The training mode of a new run (its config) or of a run being resumed (its config.json, else its last.pt:
    a damaged config.json resumed a linear run as a scratch one, slower and not exactly)."""
    if config is not None and not resume:
        return config.model.mode
    try:
        stored = json.loads((Path(resume) / "config.json").read_text(encoding="utf-8"))
        return str(stored["model"]["mode"])
    except (OSError, ValueError, TypeError, KeyError):
        pass
    try:
        return str(checkpoint.load(Path(resume) / "last.pt")["config"]["model"]["mode"])
    except (OSError, ValueError, TypeError, KeyError):  # (CheckpointError is a ValueError)
        return "scratch"  # Trainer.__init__ then says what is wrong with last.pt


class _BatchLog(Callback):
    """The training loss since the previous row (RecentLoss) for batches.csv: a row at most every
    BATCH_LOG_INTERVAL_S, and each epoch's last step; the Trainer takes them when it writes last.pt."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, int, float]] = []
        self._last = -math.inf
        self._recent = runs.RecentLoss()
        self._row_at: tuple[int, int] | None = None  # (epoch, step) of the last row written

    def resume_at(self, epoch: int, mean_loss: float, seen: int, step: int) -> None:
        self._recent.resume_at(epoch, mean_loss, seen)
        self._row_at = (epoch, step)  # (the stop wrote that step's row)

    def at_stop(self, epoch: int, step: int, steps: int, mean_loss: float, seen: int) -> None:
        """A row for the steps since the last one, when a stop ends the epoch there (they were in no row, and the
        resumed run's rows go on from the stop)."""
        p = BatchProgress(epoch, step, steps, mean_loss, 0.0, 0.0, seen)
        if epoch >= 1 and seen and self._recent.behind(p):
            self.rows.append((epoch, step, steps, self._recent(p)))
            self._row_at = (epoch, step)

    def on_batch_end(self, p: BatchProgress) -> None:
        now = time.perf_counter()
        if (p.epoch, p.step) == self._row_at:  # (a stop in an epoch's last step wrote it; the resume reports it)
            return
        if p.epoch >= 1 and (p.step == p.steps or now - self._last >= BATCH_LOG_INTERVAL_S):  # 0: feature pass
            self._last = now
            self._row_at = (p.epoch, p.step)
            self.rows.append((p.epoch, p.step, p.steps, self._recent(p)))

    def take(self) -> list[tuple[int, int, int, float]]:
        rows, self.rows = self.rows, []
        return rows


class _WriteBehind:
    """An epoch's files (batches.csv rows, last.pt, best.pt, status.json, in that order) written on a thread of
    their own while the next epoch trains. last.pt of resnext50 with its AdamW state is ~260 MB: on a GPU that
    trains a small folder's epoch in under a second its write (0.3-0.9 s here, fsync'd) left the GPU idle about as
    long again at every epoch's end. Training hands over a snapshot (checkpoint.snapshot), so the files hold the
    epoch's end exactly; torch.save lets go of the GIL while it writes, so the training thread goes on launching.
    On the CPU (`behind` False) the job runs in place, as before: there training keeps every core busy, and on 2
    cores a writer beside it slowed training more than the write took (resnext50 @ 64 px, 64 images: epochs 2-6
    8.4 s with the write in place, 8.0-9.5 s behind).

    One job at a time: submit() first ends the one in flight. wait(emit) hands its events (on_checkpoint,
    warnings) to the training thread's callbacks and raises its error there, as a save on that thread did. (It
    holds no reference to the Trainer: a Trainer made and dropped without fit() lets go of its run's lock at once.)"""

    def __init__(self, behind: bool) -> None:
        self.behind = behind
        self._thread: threading.Thread | None = None
        self._events: list[tuple[Any, ...]] = []
        self._error: BaseException | None = None
        self._buffers: dict[tuple[Any, ...], torch.Tensor] = {}  # checkpoint.snapshot's, kept for the next one

    def snapshot(self, payload: dict[str, Any], emit: Callable[..., None]) -> dict[str, Any]:
        """checkpoint.snapshot(payload) into CPU buffers reused from epoch to epoch (pinned for a GPU's tensors),
        once the job in flight, which reads the previous one, is done (wait(emit))."""
        self.wait(emit)
        return checkpoint.snapshot(payload, self._buffers)

    def submit(self, job: Callable[[list[tuple[Any, ...]]], None], emit: Callable[..., None]) -> None:
        """Run job(events) on the writer thread (in place when not `behind`); job appends (event name, *args) to
        events as each file is done."""
        self.wait(emit)
        if not self.behind:
            self.run_now(job, emit)
            return
        self._thread = threading.Thread(target=self._run, args=(job,), name="checkpoint-writer")
        self._thread.start()

    def run_now(self, job: Callable[[list[tuple[Any, ...]]], None], emit: Callable[..., None]) -> None:
        """job(events) on this thread, its events and error handed on at once (nothing may be in flight)."""
        self._run(job)
        self._deliver(emit)

    def _run(self, job: Callable[[list[tuple[Any, ...]]], None]) -> None:
        try:
            job(self._events)
        except BaseException as e:  # noqa: BLE001 - raised on the training thread by _deliver()
            self._error = e

    def wait(self, emit: Callable[..., None]) -> None:
        """Until the job in flight is done; its events go out here through emit, then its error (if any) is
        raised."""
        if self._thread is None:
            return
        self._thread.join()
        self._thread = None
        self._deliver(emit)

    def _deliver(self, emit: Callable[..., None]) -> None:
        events, self._events = self._events, []
        error, self._error = self._error, None
        try:
            for name, *args in events:
                emit(name, *args)
        finally:
            if error is not None:  # (a listener's error, if one raised, is its __context__)
                raise error

    @property
    def failed(self) -> bool:
        """The job in flight has failed (wait() raises its error): checked after each step (_EpochMeter.tick), so
        that a disk that is full ends the run at once rather than after another epoch that could not be saved
        either. (Under torchrun rank 0 then fails alone, as a failed save at an epoch's end did.)"""
        return self._error is not None

    def close(self) -> None:
        """wait() for a run that ends anyway (an interrupt): the files are finished, events and errors dropped."""
        if self._thread is not None:
            self._thread.join()
            self._thread, self._events, self._error = None, [], None
        self._buffers = {}  # (pinned memory goes back now, not when the Trainer is collected)


class Trainer:
    """Trains one run: `Trainer(config, index, callbacks).fit()`.

    `resume=run_dir` continues that run from its last.pt; its stored settings are used (pass config=None), except
    that a given config's train.epochs (to extend a run) and train.device, data.root, data.cache, data.num_workers
    are taken from it.
    The constructor checks everything that can be checked before training (settings, device, architecture name,
    data folder, split, resume checkpoint, pretrained weights) and raises ConfigError, data.DataError,
    checkpoint.CheckpointError or models.ModelError;
    `fit()` itself never raises for training problems.
    Under torchrun (WORLD_SIZE > 1) it trains with DistributedDataParallel; train.batch_size is then the GLOBAL batch
    (see core.distributed for the rules). With one process nothing distributed happens: no DDP, no extra syncs.
    """

    def __new__(cls, config: RunConfig | None = None, *args: Any, **kwargs: Any) -> Trainer:
        # Mode "linear" trains the head on cached backbone features: core.transfer.LinearTrainer does that.
        if cls is Trainer and _mode_of(config, kwargs.get("resume")) == "linear":
            from core.transfer import LinearTrainer

            return super().__new__(LinearTrainer)
        return super().__new__(cls)

    def __init__(
        self,
        config: RunConfig | None,
        index: data.DatasetIndex | None = None,
        callbacks: Iterable[Callback] = (),
        stop: StopToken | None = None,
        runs_dir: str | Path | None = None,
        resume: str | Path | None = None,
        extend: bool = False,
    ) -> None:
        """`extend`: a resume asked for more epochs on purpose (`train --resume RUN --epochs N`, Train more
        epochs…): a run that ended by early stopping trains on, with a new patience window. Without it such a run
        has only its end to make (killed in its final evaluation, it trained on past its early stop)."""
        self._extend = extend
        self._ended_early = False  # a resumed run whose last.pt says it stopped early, not extended: no epochs
        self._lock: runs.RunLock | None = None  # the run folder's, while this Trainer may write it
        self.train_loader: data.BatchLoader | None = None  # (made by _setup, closed when fit ends)
        self.val_loader: data.BatchLoader | None = None
        self.unreadable: dict[str, str] = {}  # images that failed to load while training: path -> reason
        self.callbacks = list(callbacks)
        self.stop = stop or StopToken()
        self.runs_dir = Path(runs_dir) if runs_dir is not None else None
        self.index = index
        self.resume_dir = Path(resume) if resume else None
        self._resume_ckpt: dict[str, Any] | None = None
        if self.resume_dir is not None:
            refuse_a_running_run(self.resume_dir)
            self._resume_stamp = runs.file_stamp(self.resume_dir / "last.pt")  # checked again once the run is locked
            self._resume_ckpt = checkpoint.load(self.resume_dir / "last.pt")
            problem = _resume_problem(self._resume_ckpt, self.resume_dir)
            if problem:  # (before anything in the run folder is written: it failed later, as a failed run)
                raise checkpoint.CheckpointError(f"{self.resume_dir / 'last.pt'}: cannot resume from it: {problem}")
            stored = RunConfig.from_dict(self._resume_ckpt["config"], source=self.resume_dir / "last.pt")
            # (an old run's relative data.root, not a folder given now: `--resume RUN --data photos` means ./photos)
            stored.data.root = runs.trained_data_root(self.resume_dir, stored.data.root)
            saved_plan = stored.train.epochs  # (last.pt's: an extension writes its new plan to config.json first)
            if config is not None:
                stored.train.epochs = config.train.epochs
                stored.train.device = config.train.device
                stored.data.cache, stored.data.num_workers = config.data.cache, config.data.num_workers
                if config.data.root:
                    stored.data.root = config.data.root
            else:  # an extension (more epochs) that ended before its first new epoch saved: config.json has its plan
                planned = runs.planned_epochs(self.resume_dir)
                if planned is not None and planned > stored.train.epochs:
                    stored.train.epochs = planned
            config = stored
            # a plan raised past last.pt's is an extension (one killed before its first new epoch saved, resumed
            # plainly, ended at once as stopped early: the epochs asked for were dropped)
            self._extend = extend or config.train.epochs > saved_plan
        if config is None:
            raise ConfigError("config: required unless resuming a run")
        config.validate()
        # Under torchrun (WORLD_SIZE > 1) this joins the process group and picks cuda:LOCAL_RANK / the CPU.
        self.dist = (
            distributed.init_from_env(config.train.device)
            if distributed.env_world_size() > 1
            else distributed.DistContext()
        )
        self.rank, self.world_size, self.is_main = self.dist.rank, self.dist.world_size, self.dist.is_main
        if not self.is_main:
            self.callbacks = []  # only rank 0 reports; the others print failures and warnings to stderr
        self._batch_log = _BatchLog()  # rank 0's per-batch losses, written to batches.csv with each last.pt
        self.callbacks.append(self._batch_log)
        self.device = self.dist.device if self.dist.enabled else resolve_device(config.train.device)
        self._writer = _WriteBehind(behind=self.device.type != "cpu")
        self._saved_at = time.monotonic()  # when the files were last written (save_every_s counts from here)
        self._unsaved, self._pending_best = False, None  # an epoch's end not written yet; its best weights
        # the epochs the last last.pt written holds (status.json's epochs_done of a failed run; set by the write)
        self._epochs_saved = int(self._resume_ckpt["epoch"]) if self._resume_ckpt else 0
        self._best_saved: dict[str, Any] | None = None  # the best epoch best.pt holds (as self.best): _finish
        self.config = config if self._resume_ckpt else resolve_defaults(config, self.device)
        self.config.validate()
        self.local_batch, self._batch_note = self.config.train.batch_size, None
        self._diverging_said = False  # (_note_diverging: once a run)
        if self.dist.enabled:
            if self.config.model.mode == "linear":
                raise ConfigError("model.mode='linear': linear probing runs in one process; start it without torchrun")
            self.local_batch, self._batch_note = distributed.per_rank_batch(
                self.config.train.batch_size, self.world_size
            )
        try:
            models.parse_arch(self.config.model.arch)
        except models.ModelError as e:
            raise ConfigError(f"model.arch: {e}") from None  # e names the value
        # Input problems found now, not after the run folder exists (that left a "failed" run behind):
        pretrained = self.config.model.pretrained
        if pretrained == "imagenet" and not self._resume_ckpt:
            models.imagenet_weights_url(self.config.model.arch)  # ModelError: this architecture has none
        elif pretrained is not None and not self._resume_ckpt:  # ModelError naming the file: not a weights file,
            models.check_weights(self.config.model.arch, models.read_state_dict(pretrained), pretrained)  # or not
            # one of this architecture (the weights are read again when the model is built, not held meanwhile)
        if not self._resume_ckpt and self.is_main:
            root = self.runs_dir if self.runs_dir is not None else runs.default_runs_dir()
            where = f"runs_dir={str(root)!r}" if self.runs_dir is not None else runs.runs_dir_named(root)
            blocked = next((p for p in (root, *root.parents) if p.exists() and not p.is_dir()), None)
            if blocked is not None:  # (made only when the run starts: nothing is created for a run that cannot)
                why = "a file, not a folder" if blocked == root else f"{blocked} is a file, not a folder"
                raise ConfigError(f"{where}: {why}")
            there = next((p for p in (root, *root.parents) if p.exists()), None)
            if there is not None and not os.access(there, os.W_OK | os.X_OK):  # read-only file system, no permission
                raise ConfigError(f"{where}: cannot create a run folder in {there} (not writable)")
            if there is not None:  # (and a probe: os.access says yes to root, and of /proc, where nothing is made)
                try:
                    os.rmdir(tempfile.mkdtemp(prefix=".probe-", dir=there))
                except OSError as e:  # it failed as a run that could not begin (exit 1), not an input error
                    raise ConfigError(f"{where}: cannot create a run folder in {there} ({e.strerror or e})") from None
        if self._resume_ckpt and self.is_main:  # (a probe: os.access answers wrongly on Windows and for root)
            try:
                with tempfile.TemporaryFile(dir=self.resume_dir):
                    pass
            except OSError as e:  # it failed only after the setup, as a "failed" run (exit 1), on config.json
                raise ConfigError(
                    f"{self.resume_dir}: cannot write in this run folder ({e.strerror or e}); a resume saves its "
                    "checkpoints and curves there"
                ) from None
        if self.index is None:
            if not self.config.data.root:
                raise ConfigError("data.root: no data folder given")
            self.index = data.scan(self.config.data.root)  # DataError: unusable folder, before anything starts
        self.config.data.root = str(self.index.root)  # absolute: evaluate and resume work from any working folder
        if self._resume_ckpt:
            self._check_classes(self.index)
        elif self.index.too_few_classes():  # an index given, scanned with min_classes=1 (one output: a loss of 0)
            raise data.DataError(f"{self.index.root}: {self.index.too_few_classes()}")
        cfg = self.config
        self.split = data.split(self.index, val=cfg.data.val_split, test=cfg.data.test_split, seed=cfg.data.seed)
        self._check_fits_memory()  # (of the largest batch: the training images may be fewer than the batch size)
        if not self.split.train and self.index.layout == "splits":  # a held-out set: val/ and test/ only
            held = " and ".join(f"{k}/" for k in ("val", "test") if getattr(self.split, k))
            raise data.DataError(
                f"{self.index.root}: {held} but no train/ folder with images: training needs ROOT/train/<class>/…; "
                "to measure a trained model on these, evaluate it on this folder"
            )
        if len(self.split.train) < 2:
            fix = (
                "add images to train/"
                if self.index.layout == "splits"
                else f"add images, or lower the validation ({cfg.data.val_split:.0%}) and test "
                f"({cfg.data.test_split:.0%}) shares"
            )
            raise data.DataError(
                f"{self.index.root}: only {len(self.split.train)} training image(s); training needs at least 2: {fix}"
            )
        trained = sorted({self.index.samples[i].label for i in self.split.train})
        if len(trained) < 2 and not self._resume_ckpt:  # e.g. train/ holds one class, val/ the other: one output
            only = self.index.classes[trained[0]]
            rest = [c for c in self.index.classes if c != only]
            raise data.DataError(
                f"{self.index.root}: only class {only!r} has training images ({', '.join(rest)} "
                f"{'has' if len(rest) == 1 else 'have'} none in train/): a classifier needs two classes to train on"
                if self.index.layout == "splits"
                else f"{self.index.root}: only class {only!r} has training images: a classifier needs two classes"
            )
        if self._resume_ckpt and self.is_main:
            self._note_changed_data()
        elif cfg.data.val_split > 0 and not self.split.val and self.index.layout != "splits" and self.is_main:
            self._warn(
                f"no validation images: the classes are too small for a {cfg.data.val_split:.0%} share, so the best "
                "epoch is chosen by the training loss"
            )
        if self.split.val and self.is_main and not self._resume_ckpt:
            self._note_classes_without_val(trained)
        if not self._resume_ckpt and cfg.train.warmup_epochs and cfg.train.scheduler != "cosine" and self.is_main:
            self._warn(
                f"the warm-up ({cfg.train.warmup_epochs:g} epochs) belongs to the cosine schedule; with "
                f"{cfg.train.scheduler!r} the run starts at the full learning rate"
            )
        elif not self._resume_ckpt and cfg.train.warmup_epochs >= cfg.train.epochs and self.is_main:
            self._warn(
                f"the warm-up ({cfg.train.warmup_epochs:g} epochs) lasts the whole run of {cfg.train.epochs}: the "
                f"learning rate never reaches {cfg.train.lr:g}"
            )
        self.model: nn.Module | None = None
        self.run_dir: Path | None = None
        self.history: list[dict[str, Any]] = []
        self._partial: dict[str, Any] | None = None  # a stopped epoch to go on with (from last.pt)
        self._phase = "setup"  # then "epochs" (a stop saves last.pt), "final" (best.pt's evaluation) or "ending"
        if self._resume_ckpt:  # last in __init__: nothing below can fail and keep the lock
            self._lock_for_resume()

    def _check_fits_memory(self) -> None:
        """A model whose training needs far more than the device's whole memory is refused before anything starts,
        with the numbers: `--arch resnext152_256x512d` ended in torch's "[enforce fail at alloc_cpu.cpp:127] …
        can't allocate memory" as a failed run, or in the kernel killing the process."""
        cfg = self.config
        if cfg.model.mode == "linear" or cfg.model.freeze_backbone:
            return  # (the estimate is of training every layer: a probe's needs are a fraction of it)
        # the largest batch the run will see: a batch size above the training images is one batch of them all
        # (a batch of 100000 over 4 images was refused for needing 120 GB)
        batch = max(1, min(self.local_batch, math.ceil(len(self.split.train) / max(1, self.world_size))))
        try:
            need = models.estimate_train_memory(  # (AMP on CUDA only: the CPU trains in float32, as the app's
                cfg.model.arch,  # summary counts it; the two said 6374 and 6360 GB of one model)
                len(self.index.classes),
                cfg.data.image_size,
                batch,
                cfg.train.amp and self.device.type == "cuda",
            )
            if self.device.type == "cuda":
                have = torch.cuda.get_device_properties(self.device).total_memory
            elif self.device.type == "cpu":
                have = data.total_memory_bytes()
            else:
                return
        except Exception:  # noqa: BLE001 - an estimate that cannot be made leaves the question to the run itself
            return
        if need > 2 * have:  # (a rough estimate: only a model that surely cannot fit is refused)
            where = "this GPU" if self.device.type == "cuda" else "this machine"
            fix = (  # (a resume keeps the run's model, batch and image size)
                "a device with more memory to resume it"
                if self._resume_ckpt
                else "a smaller model, batch or image size"
            )
            raise ConfigError(
                f"model.arch={cfg.model.arch!r}: training it needs about {need / 2**30:.1f} GB at batch "
                f"{batch} and {cfg.data.image_size} px, more than the {have / 2**30:.1f} GB of {where}: "
                f"choose {fix}"
            )

    def _lock_for_resume(self) -> None:
        """Take the run folder's lock (ConfigError when another process trains it). Under torchrun rank 0 checks
        and locks, and every rank learns its answer: a torchrun resume of a live run wrote its epochs twice."""
        refusal = ""
        if self.is_main:
            try:
                if self.dist.enabled:
                    refuse_a_running_run(self.resume_dir, under_torchrun=True)
                self._lock = _lock_run(self.resume_dir)
                if runs.file_stamp(self.resume_dir / "last.pt") != self._resume_stamp:
                    raise ConfigError(
                        f"{self.resume_dir}: another process trained this run while this resume was "
                        "starting; its last.pt is newer than the one read: start the resume again"
                    )
            except ConfigError as e:
                refusal = str(e)
        if self.dist.enabled:
            refusal = distributed.broadcast_object(refusal)
        if refusal:
            if self._lock is not None:
                self._lock.release()
            if self.dist.enabled and self.dist.initialized_here:
                distributed.cleanup()
            raise ConfigError(refusal)
        if self.is_main:
            runs.remove_stale_temp_files(self.resume_dir)  # a killed run's half-written checkpoints (ours now)
            runs.mark_paused(self.resume_dir, False)  # (and a pause it was killed in)

    def wait_out_pause(self) -> float:
        """Wait while paused, until resumed or stopped; the seconds waited. The run folder says it meanwhile
        (runs.mark_paused: `runs` and other windows said "running" all through a pause)."""
        marked = self.is_main and self.run_dir is not None
        if marked:
            # the best epoch's weights that save_every_s held back go to best.pt now: a pause can last, and a
            # crash in it lost them (a resume adopts a best.pt newer than last.pt: _mend_best)
            unsaved = self._unsaved
            self._save_pending_best()
            self._unsaved = unsaved  # (last.pt is still behind: a stop or an early stop writes it)
            runs.mark_paused(self.run_dir, True)
        p0 = time.perf_counter()
        try:
            while not self.stop.wait_if_paused(0.25) and not self.stop.stopped:
                pass
            return time.perf_counter() - p0
        finally:
            if marked:
                runs.mark_paused(self.run_dir, False)

    def close(self) -> None:
        """Let go of the run folder without training: a Trainer that resumes a run holds its lock from construction
        until fit() ends (or this, or its garbage collection)."""
        if self._lock is not None:
            self._lock.release()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # -- events
    def _emit(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)  # (a listener written before a hook was added has none)
            if fn is not None:
                fn(*args)

    def _warn(self, msg: str) -> None:
        if not self.is_main:
            print(f"[rank {self.rank}] warning: {msg}", file=sys.stderr, flush=True)
        self._emit("on_warning", msg)

    def _note_diverging(self, row: dict[str, Any]) -> None:
        """Once a run: a training loss far above guessing's (ln of the classes), or three times its first epoch's,
        is said with what usually helps. A learning rate of 10 ended "completed" at a loss of 1.4 million without
        a word."""
        if self._diverging_said or not self.is_main:
            return
        chance = math.log(max(2, self.num_classes))  # a model that guesses evenly
        first, now = self.history[0], row["train_loss"]
        grew = len(self.history) > 1 and now > 3 * first["train_loss"] and now > 2 * chance
        if now > 20 * chance or grew:
            self._diverging_said = True
            since = f"from {first['train_loss']:.3g} in epoch {first['epoch']}; " if grew else ""
            self._warn(
                f"the training loss is {now:.3g} in epoch {row['epoch']} ({since}guessing scores {chance:.2f}): "
                f"training is diverging; a lower learning rate than {row['lr']:.3g} usually helps"
            )

    def _note_classes_without_val(self, trained: list[int]) -> None:
        """Classes trained on with no validation image (a class of one photo, a val/ folder without it): the
        validation accuracy says nothing of them, and nothing said so until Evaluate."""
        in_val = {self.index.samples[i].label for i in self.split.val}
        counts = self.index.counts()
        missing = [self.index.classes[c] for c in trained if c not in in_val]
        if not missing:
            return
        shown = ", ".join(f"{c} ({count_noun(counts[c], 'image')})" for c in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        one = len(missing) == 1
        fix = (
            f"add images of {'it' if one else 'them'} to val/"
            if self.index.layout == "splits"
            else f"{'it needs' if one else 'they need'} more images for a share to go there"
        )
        self._warn(
            f"no validation images of {'class' if one else 'classes'} {shown}{more}: the validation accuracy does "
            f"not measure {'it' if one else 'them'} ({fix})"
        )

    def _note_changed_data(self) -> None:
        """A resumed run over a data folder whose images changed since it began: its split is drawn again, so the
        validation before and after the resume compares different images. Said, not refused (adding photos to a
        run in progress is a normal thing to want)."""
        before = runs.config_section(self.resume_dir, "dataset")  # ({} for a hand-edited "dataset": [1])
        changed = runs.data_changes(before, self.index.counts(), self.index.files_digest())
        sizes = (len(self.split.train), len(self.split.val), len(self.split.test))
        old_sizes = tuple(before.get(k) for k in ("train_size", "val_size", "test_size"))
        if changed is None or (not changed and old_sizes == sizes):
            return
        self._warn(
            f"the data folder changed since this run began ({', '.join(changed[:4]) or 'same counts'}"
            f"{', …' if len(changed) > 4 else ''}; train/val/test {'/'.join(map(str, old_sizes))} → "
            f"{'/'.join(map(str, sizes))}): the split is drawn again, so validation before and after this resume "
            "is on different images"
        )

    def _check_classes(self, index: data.DatasetIndex) -> None:
        want = list(self._resume_ckpt["class_names"])
        if list(index.classes) != [data.class_key(c) for c in want]:
            raise data.DataError(f"{index.root}: classes {index.classes} differ from the run's {want}")

    # -- public
    def fit(self) -> FitResult:
        """Train; returns how it ended. Training problems end with reason "failed" and a message, never raise.

        Called on the main thread (the command line), Ctrl-C or SIGTERM stops after the current batch with last.pt
        saved, like the GUI's Stop; a second Ctrl-C interrupts at once. On other threads signals are left alone."""
        restore = self._catch_signals()
        interrupted = False
        try:
            return self._fit()
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            try:
                self._writer.close()  # (an interrupt: the epoch's files are finished before the lock is let go)
            finally:  # (another Ctrl-C during that wait)
                restore()
                if interrupted:
                    self._mark_interrupted()
                for loader in (self.train_loader, self.val_loader):
                    if loader is not None:
                        loader.close()
                if self._lock is not None:
                    self._lock.release()
                if self.dist.enabled and self.dist.initialized_here:
                    distributed.cleanup()

    def _mark_interrupted(self) -> None:
        """After a second Ctrl-C: status.json says "interrupted" (it said "running" until the run list noticed the
        process was gone, and on another host never) and how many epochs last.pt holds."""
        run_dir = self.run_dir
        if run_dir is None or not self.is_main or runs.read_status(run_dir).get("status") != "running":
            return
        saved = (run_dir / "last.pt").is_file()  # (save_every_s may not have written one yet)
        with contextlib.suppress(OSError):
            runs.write_status(
                run_dir,
                "interrupted",
                reason="interrupted",
                message=f"interrupted at once by a second Ctrl-C; {self._saved_words()}",
                epochs_done=self._epochs_saved if saved else 0,
            )

    def _saved_words(self) -> str:
        """What a run cut short can be resumed from: last.pt's epochs, or nothing (save_every_s may not have
        written a last.pt yet: a peer killed in the first 30 s had been said to leave "the last saved state")."""
        if self.run_dir is not None and (self.run_dir / "last.pt").is_file():
            n = self._epochs_saved
            return f"last.pt holds {n} finished epoch{'' if n == 1 else 's'}: the run can be resumed"
        return "nothing was saved to resume from (last.pt is written at epoch ends, at most once every --save-every seconds)"

    def _catch_signals(self) -> Callable[[], None]:
        """SIGINT/SIGTERM/SIGHUP request a stop (collective under DDP) instead of killing the process; a second
        SIGINT raises KeyboardInterrupt as usual."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        spared = []  # a second Ctrl-C let pass once, while finished epochs wait to be saved

        def handler(signum: int, frame: Any) -> None:
            if signum == getattr(signal, "SIGHUP", None):  # the terminal was closed: what is printed goes nowhere
                quiet_closed_terminal()  # (a write to it failed, and the run with it, before its last.pt)
            if signum == signal.SIGINT and self.stop.stopped and not self.dist.enabled:
                if self._unsaved and self._phase == "epochs" and not spared and self.is_main:
                    # two quick Ctrl-Cs threw away epochs save_every_s had held back (a whole epoch, or several)
                    spared.append(True)
                    print(
                        "stopping: the last finished epoch is not saved yet (--save-every held it back); last.pt "
                        "is saved after the current batch (Ctrl-C once more to interrupt at once and lose it)",
                        file=sys.stderr,
                        flush=True,
                    )
                    return
                raise KeyboardInterrupt
            if not self.stop.stopped and self.is_main and not self.dist.enabled:
                if self._phase == "epochs":
                    what = "last.pt is saved after the current batch"
                elif self._phase == "final":
                    what = "training is done and saved; the final evaluation of best.pt stops after the batch under way"
                elif self._phase == "ending":
                    what = "the run has failed and is being closed; last.pt keeps its last saved state"
                elif self._resume_ckpt:
                    what = "training has not resumed yet; nothing new is trained and last.pt is kept"
                else:
                    what = "training has not begun yet; no run is kept"
                # (a `kill` or a closed terminal: "Ctrl-C again" meant nothing there, and its second one does nothing)
                again = " (Ctrl-C again to interrupt at once)" if signum == signal.SIGINT else ""
                print(f"stopping: {what}{again}", file=sys.stderr, flush=True)
            self.stop.stop()

        # (SIGHUP: the terminal it runs in was closed; it killed the run and lost the epoch held back)
        return handle_signals(("SIGINT", "SIGTERM", "SIGHUP"), handler)

    def _fit(self) -> FitResult:
        try:
            self._setup()
        except models.DownloadStopped as e:  # Stop pressed (or Ctrl-C) while the ImageNet weights downloaded
            return self._finish("stopped", str(e))
        except data.LoadStopped:  # Stop pressed while the images were read into memory
            if self._resume_ckpt:  # (a resumed run is as its last.pt left it: its status says so)
                self.history = [dict(r) for r in self._resume_ckpt.get("history", [])]
                self.best = dict(self._resume_ckpt["best"]) if self._resume_ckpt.get("best") else None
                self._best_saved = dict(self.best) if self.best else None  # (a best.pt to mend is the next resume's)
            return self._finish("stopped", "stopped while reading the images into memory")
        except Exception as e:  # noqa: BLE001 - anything before the first epoch: report, do not raise
            return self._finish("failed", _one_line(e), tb=traceback.format_exc())
        reason, message, tb, peer = "completed", "", None, None
        try:
            reason, message = self._loop()
            if self.dist.enabled:  # every rank leaves the loop together: each loaded its own share of the images
                self.unreadable = distributed.merge_dicts(self.unreadable)  # (before rank 0's final evaluation)
        except _Failed as e:
            reason, message = "failed", str(e)
        except Exception as e:  # noqa: BLE001
            if _is_oom(e):
                reason, message = "failed", self._oom_message()
            elif self.dist.enabled and _is_peer_failure(e):  # (said once the files in flight are written)
                reason, message, tb, peer = "failed", _one_line(e), traceback.format_exc(), e
            else:
                reason, message, tb = "failed", _one_line(e), traceback.format_exc()
        try:
            if reason == "failed":
                self._save_pending_best()
            self._writer.wait(self._emit)  # the last epoch's files, before the end reads them
        except Exception as e:  # noqa: BLE001
            if reason == "failed":  # the first failure is the run's; this one is said too
                self._safe_warn(f"could not save the last epoch: {_one_line(e)}")
            else:
                reason, message, tb = "failed", _one_line(e), traceback.format_exc()
        if peer is not None:
            message = (
                f"another training process failed or was killed (see the torchrun log); {self._saved_words()}. "
                f"{message}"
            )
        # "ending": the failure is being written down, a Ctrl-C now changes nothing
        self._phase = "ending" if reason == "failed" else "final"
        return self._finish(reason, message, tb=tb)

    # -- setup
    def _open_run(self) -> None:
        """Class names, the run folder (new, resumed, or rank 0's under DDP), config.json and status "running"."""
        cfg, tc = self.config, self.config.train
        index = self.index
        self.class_names = list(index.classes)
        self.num_classes = len(self.class_names)

        if self._resume_ckpt:
            self.run_dir = self.resume_dir
        elif not self.dist.enabled:
            self.run_dir = runs.RunStore(self.runs_dir).create(cfg.model.arch, Path(index.root).name or "data")
        else:
            self.run_dir = self._shared_run_dir()
        if self._lock is None and self.is_main and not self._resume_ckpt:
            self._lock = runs.RunLock(self.run_dir)  # a new folder: resuming it while it trains is refused
            with contextlib.suppress(OSError):
                self._lock.acquire()
        if self.is_main:
            if self._resume_ckpt:  # an earlier failure's traceback does not belong to this attempt
                with contextlib.suppress(OSError):
                    (self.run_dir / "error.txt").unlink(missing_ok=True)
            self._write_config()
            runs.write_status(
                self.run_dir,
                "running",
                reason=None,
                message="",
                epochs=tc.epochs,
                arch=cfg.model.arch,
                epochs_done=len(self._resume_ckpt["history"]) if self._resume_ckpt else 0,
                # what "auto" chose (cpu | cuda | mps): config.json keeps "auto", and a CPU run's "amp": true
                # trained in full precision
                device=self.device.type,
                # a resume keeps saying its best epoch until it saves (a kill before then left none, and `runs`
                # named the first of tied val_acc rows, which need not be best.pt's)
                **self._resume_best(),
            )
        if self.dist.enabled:
            if self.is_main:
                distributed.write_run_info(self.run_dir)
            if self._batch_note and self.is_main:
                self._warn(self._batch_note)
        trained = {index.samples[i].label for i in self.split.train}
        unseen = [name for label, name in enumerate(self.class_names) if label not in trained]
        if unseen and self.is_main:  # e.g. a class folder that exists only under val/: the model never sees it
            seen = {self.class_names[label].casefold(): self.class_names[label] for label in trained}
            twins = [f"{name} / {seen[name.casefold()]}" for name in unseen if name.casefold() in seen]
            self._warn(
                f"no training images for class{'es' if len(unseen) > 1 else ''} {', '.join(unseen)}: "
                f"the model cannot learn to predict {'them' if len(unseen) > 1 else 'it'}"
                + (f" (folder names that differ only in case are two classes: {'; '.join(twins)})" if twins else "")
            )

    def _setup(self) -> None:
        cfg, tc = self.config, self.config.train
        index = self.index
        dev = self.device
        seed_everything(tc.seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
        if dev.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        freeze = cfg.model.freeze_backbone or cfg.model.mode == "linear"
        pretrained = None if self._resume_ckpt else cfg.model.pretrained
        # built before the run folder: weights that do not fit (or cannot be downloaded) leave no failed run behind
        stop = None if self.dist.enabled else self.stop  # (a download stops as the loaders do)
        model = models.build(
            cfg.model.arch, len(index.classes), pretrained=pretrained, freeze_backbone=freeze, stop=stop
        )
        self._open_run()
        self.memory_format = choose_memory_format(cfg.model.arch, dev, tc.channels_last)
        if self.dist.enabled and tc.sync_bn:
            if dev.type == "cuda":
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            elif self.is_main:  # (every process's would be the same line)
                self._warn("sync_bn needs CUDA (NCCL); on the CPU each process keeps its own BatchNorm statistics")
        elif tc.sync_bn and not self._resume_ckpt:  # (said, not done without a word)
            self._warn("sync_bn is for several processes under torchrun: one process has nothing to synchronise")
        self.model = model.to(dev, memory_format=self.memory_format)
        self.forward = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            self.forward = DistributedDataParallel(self.model, device_ids=[dev.index] if dev.type == "cuda" else None)
        if tc.compile:
            if dev.type != "cuda":
                quiet_cuda_home_warning()
            try:
                self.forward = _CompiledOrEager(self.forward, torch.compile(self.forward), self._warn)
            except Exception as e:  # noqa: BLE001 - compile is an optional speed-up
                self._warn(f"torch.compile unavailable ({_one_line(e)}); training without it")

        # the reading of the images into memory, training's then validation's, said as one count (on_loading)
        reading = {"train": 0, "val": len(self.split.val) // self.world_size}  # (val's own count, once it starts)

        def read(part: str, done: int, total: int) -> None:
            reading[part] = total
            self._emit("on_loading", done + (reading["train"] if part == "val" else 0), sum(reading.values()))

        def loader(ids: list[int], shuffle: bool) -> data.BatchLoader:
            shard: dict[str, Any] = {}
            if self.dist.enabled:
                # every rank takes the smallest rank's budget: a rank that cached while another streamed dropped
                # unreadable images from its list and the other did not, and their steps (each a collective) no
                # longer matched. Asked for each loader, as in one process (validation's after training's cache).
                budget = -distributed.agree([-data.cache_budget_bytes(cfg.data, dev)])[0]
                shard = {"rank": self.rank, "world_size": self.world_size, "budget": budget}
            # a Stop while the images are read into memory ends it (LoadStopped); not under DDP, where the ranks
            # stop together at a batch (one rank's loader ended alone would leave the others waiting on it)
            stop = None if self.dist.enabled else self.stop
            return data.make_loader(
                index,
                ids,
                cfg.data,
                batch_size=self.local_batch,
                shuffle=shuffle,
                seed=tc.seed,
                device=dev,
                stop=stop,
                progress=(lambda done, total: read("train" if shuffle else "val", done, total))
                if self.is_main
                else None,
                **shard,
            )

        self.train_loader = loader(self.split.train, shuffle=True)
        self.val_loader = loader(self.split.val, shuffle=False) if self.split.val else None
        if reading["train"] and self.val_loader is not None and self.val_loader.mode != "memory":
            self._emit("on_loading", reading["train"], reading["train"])  # (validation streams: all read)
        self.train_tf = data.BatchTransform(cfg.data, train=True)
        self.eval_tf = data.BatchTransform(cfg.data, train=False)
        self.steps_per_epoch = max(1, len(self.train_loader))
        # the steps that train: a last batch of one image is left out (BatchNorm cannot train on it), and the
        # cosine counted it, so it never reached its end (17 images at batch 16: half the rate at the last step)
        odd = self.steps_per_epoch > 1 and self.train_loader.num_samples % self.local_batch == 1
        self.trained_steps_per_epoch = self.steps_per_epoch - int(odd)
        n_train = len(self.split.train)
        if tc.batch_size > n_train and not self._resume_ckpt and self.is_main:
            self._warn(
                f"batch size {tc.batch_size} is more than the {n_train} training images: each epoch is one step over "
                "all of them, which learns slowly (a batch of a quarter of them or less takes several steps)"
            )

        self.criterion = self._make_criterion()
        self.optimizer = make_optimizer(self.model, tc, finetune=cfg.model.mode == "finetune")
        self.has_val = self.val_loader is not None
        plateau_mode = "max" if (self.has_val and tc.monitor == "val_acc") else "min"
        self.scheduler = make_scheduler(self.optimizer, tc, self.trained_steps_per_epoch, plateau_mode)
        self.amp_dtype = amp_dtype(dev, tc.amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)

        self.start_epoch = 0
        self.best: dict[str, Any] | None = None  # {"epoch", "score", "metric"} of the best epoch
        self.bad_epochs = 0
        if self._resume_ckpt:
            self._restore(self._resume_ckpt)
        name = device_name(dev)
        if self.dist.enabled:
            name = f"{self.world_size} processes ({self.dist.backend}); rank 0: {name}"
        info = FitInfo(
            run_dir=str(self.run_dir),
            device=str(dev),
            device_name=name,
            arch=cfg.model.arch,
            num_classes=self.num_classes,
            class_names=self.class_names,
            epochs=tc.epochs,
            start_epoch=self.start_epoch,
            steps_per_epoch=self.steps_per_epoch,
            train_size=len(self.split.train),
            val_size=len(self.split.val),
            test_size=len(self.split.test),
            params=sum(p.numel() for p in self.model.parameters()),
            loader_mode=self.train_loader.describe(),
            config=cfg.to_dict(),
            world_size=self.world_size,
            resume_step=self._resume_step(),
            data_notes=self.index.problem_notes(),
        )
        self._emit("on_fit_start", info)

    def _status_best_after_mend(self) -> None:
        """status.json names the best epoch the resume goes on with: _mend_best may have adopted a best.pt newer
        than last.pt, or dropped one whose file is lost (a kill before the next save left the other named)."""
        now = {"best_epoch": self.best.get("epoch"), "best_metric": self.best.get("metric")} if self.best else {}
        if now == self._resume_best():
            return
        skip = ("status", "updated", "pid", "hostname", "started", "best_epoch", "best_metric")
        doc = {k: v for k, v in runs.read_status(self.run_dir).items() if k not in skip}
        with contextlib.suppress(OSError):  # (the next save writes it again)
            runs.write_status(self.run_dir, "running", **doc, **now)

    def _resume_best(self) -> dict[str, Any]:
        """{best_epoch, best_metric} of the checkpoint resumed from ({} for a new run)."""
        best = (self._resume_ckpt or {}).get("best")
        return {"best_epoch": best.get("epoch"), "best_metric": best.get("metric")} if isinstance(best, dict) else {}

    def _shared_run_dir(self) -> Path:
        """Distributed: rank 0 creates the run folder and every rank receives its path (or rank 0's error)."""
        doc: dict[str, str] = {}
        if self.is_main:
            try:
                path = runs.RunStore(self.runs_dir).create(self.config.model.arch, Path(self.index.root).name or "data")
                doc = {"path": str(path)}
            except Exception as e:  # noqa: BLE001 - every rank must hear about it, not only rank 0
                doc = {"error": _one_line(e)}
        doc = distributed.broadcast_object(doc)
        if "error" in doc:
            raise OSError(f"rank 0 could not create the run folder: {doc['error']}")
        return Path(doc["path"])

    def _write_config(self) -> None:
        index = self.index
        doc = self.config.to_dict()
        doc["dataset"] = {
            "name": Path(index.root).name,
            "root": str(index.root),
            "layout": index.layout,
            "classes": list(index.classes),
            "counts": index.counts(),
            "files": index.files_digest(),  # which images: evaluate warns when its split is drawn from others
            "content": index.content_digest,  # and their bytes: the same images elsewhere (moved, copied) are known
            "train_size": len(self.split.train),
            "val_size": len(self.split.val),
            "test_size": len(self.split.test),
        }
        runs.write_json_atomic(self.run_dir / "config.json", doc)

    def _restore(self, ck: dict[str, Any]) -> None:
        self.model.load_state_dict(ck["model"])
        load_optimizer_state(self.optimizer, ck["optimizer"])
        if self.scheduler is not None and ck.get("scheduler"):
            self.scheduler.load_state_dict(ck["scheduler"])
            if isinstance(self.scheduler, torch.optim.lr_scheduler.LambdaLR):
                # The cosine counts steps: with more or fewer images (or another batch size) an epoch has another
                # number of them, so the count is moved to the same place in epochs. (Kept as it was, 5 steps an
                # epoch turning into 1 left the rate at 0 for the rest of the run, and more steps jolted it up.)
                # (in the steps the cosine counts, the ones that train; a last.pt from before they were recorded
                # counted the loader's batches, and one from before those, nothing: kept as it was)
                if ck.get("trained_steps_per_epoch"):
                    old, new = ck["trained_steps_per_epoch"], self.trained_steps_per_epoch
                else:
                    old, new = ck.get("steps_per_epoch"), self.steps_per_epoch
                # The optimizer kept the rate of the run's last step; a run given more epochs has a longer cosine,
                # which is higher at this step (a finished run's last rate was 0: its first new batch trained
                # at 0 and history.csv said so). The schedule's own value, from the first batch on.
                restep_schedule(self.scheduler, self.optimizer, int(ck.get("epoch") or 0), old, new)
        if ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])
        if ck.get("rng"):
            checkpoint.set_rng_state(ck["rng"])
        self.history = [dict(r) for r in ck.get("history", [])]
        self.start_epoch = int(ck["epoch"])
        partial = ck.get("partial")  # where a stop inside the next epoch left it (older checkpoints: redo it)
        self._partial = partial if isinstance(partial, dict) and partial.get("epoch") == self.start_epoch + 1 else None
        self.best = dict(ck["best"]) if ck.get("best") else None
        self.bad_epochs = int(ck.get("bad_epochs", 0))
        patience = self.config.train.early_stop_patience
        if patience and self.bad_epochs >= patience and self._partial is None:
            if self._extend:  # it ended by early stopping, and is given more epochs: a new patience window (kept
                self.bad_epochs = 0  # as it was, it stopped again after one epoch that did not beat the best)
            else:  # it ended so and was stopped or killed making its end: that end alone is left to make
                self._ended_early = True
        if self.is_main:
            unsaved = [r["epoch"] for r in runs.read_history(self.run_dir) if r["epoch"] > self.start_epoch]
            runs.write_history(self.run_dir, self.history)  # drop rows written after this checkpoint
            if unsaved:  # (killed between two saves, save_every_s apart: the resume went back without a word)
                span = f"epoch {unsaved[0]}" if len(unsaved) == 1 else f"epochs {min(unsaved)}-{max(unsaved)}"
                self._warn(
                    f"history.csv had {span} too, trained after last.pt was last written (the run ended before "
                    f"saving {'it' if len(unsaved) == 1 else 'them'}): training goes on from last.pt, after epoch "
                    f"{self.start_epoch}"
                )
            p = self._partial or {}  # steps of the next epoch the checkpoint holds (all: it stopped validating)
            done = math.inf if p.get("trained") else int(p.get("steps_done") or 0)
            runs.write_batches(  # and the per-batch losses of batches trained after it
                self.run_dir,
                [
                    r
                    for r in runs.read_batches(self.run_dir)
                    if r[0] <= self.start_epoch or (r[0] == self.start_epoch + 1 and r[1] <= done)
                ],
            )
            self._mend_best()
            self._best_saved = dict(self.best) if self.best else None
            self._status_best_after_mend()
        if self.dist.enabled:  # what rank 0 made of best.pt (a later best kept, a lost one forgotten): every rank
            self.best = distributed.broadcast_object(self.best)  # counts bad epochs alike for early stopping

    def _mend_best(self) -> None:
        """An epoch that set a new best saves last.pt, then best.pt: a run ended between the two has a best.pt of
        an earlier epoch, while last.pt says (and holds the weights of) its last epoch as the best. Written again
        from those weights, so best.pt, status and history agree.

        A run that failed after last.pt wrote the best epoch that train.save_every_s held back: a best.pt of an
        epoch after last.pt's. It is kept, and the resumed epochs must beat it to replace it."""
        best, path = self.best or {}, self.run_dir / "best.pt"
        try:
            ck = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            held, metrics = ck.get("epoch"), ck.get("metrics") or {}
            del ck  # (its weights map the file, and Windows refuses to replace a file mapped: best.pt below)
        except Exception as e:  # noqa: BLE001 - missing or damaged: written again below, where last.pt can
            held, metrics = None, {}
            if best and (best.get("epoch") != self.start_epoch or self._partial is not None):
                # the best epoch's weights are gone (last.pt holds a later moment's): the best of the epochs from
                # here on is best.pt. It stayed damaged, since the resumed epochs had to beat a score it lost,
                # and evaluate, predict and export went on failing on it after a "completed"
                why = "missing" if isinstance(e, FileNotFoundError) else "damaged"
                self._warn(
                    f"best.pt (epoch {best.get('epoch')}, the best so far) is {why} and its weights are lost; the "
                    "best of the epochs trained from here on replaces it"
                )
                self.best = None
                return
        if isinstance(held, int) and held > self.start_epoch:  # (a last.pt of a stop inside an epoch too)
            try:
                self.best = self._best_entry(held, metrics)
            except (KeyError, TypeError):  # (metrics not ours: the best of last.pt stands, best.pt is mended below)
                held = None
            else:
                return
        if best.get("epoch") != self.start_epoch or self._partial is not None:
            # (a partial last.pt holds weights from inside the next epoch, not the best epoch's)
            if best and isinstance(held, int) and held != best.get("epoch"):
                # best.pt holds an older epoch: the best's own weights were never written (a full disk while
                # save_every_s held them back). What best.pt holds is the best there is; the resumed epochs must
                # beat it, not the lost one's score, or a better epoch than best.pt's would not be kept
                try:
                    self.best = self._best_entry(held, metrics)
                except (KeyError, TypeError):
                    return
                self._warn(
                    f"best.pt holds epoch {held}, not epoch {best.get('epoch')}, the best, whose weights were not "
                    f"saved; epoch {held} stays the best until a resumed epoch beats it"
                )
            return
        if held != self.start_epoch:
            row = next((r for r in self.history if r.get("epoch") == self.start_epoch), None)
            checkpoint.save(path, self._payload(self.start_epoch, row))
            self._warn(
                f"best.pt did not hold epoch {self.start_epoch}, the best (missing, damaged, or the run ended while "
                "saving it); saved again from last.pt"
            )

    # -- loop
    def _loop(self) -> tuple[str, str]:
        tc = self.config.train
        self._phase = "epochs"
        self._saved_at = time.monotonic()
        if self._ended_early:
            return "early_stop", self._early_stop_words()
        for epoch in range(self.start_epoch + 1, tc.epochs + 1):
            if self._stop_requested():
                if self._unsaved:  # the last epoch's end, held back by save_every_s
                    self._save_last(self._epochs_done)
                return "stopped", f"stopped before epoch {epoch}"
            self._emit("on_epoch_start", epoch)
            t0 = time.perf_counter()
            resumed = self._partial if self._partial and self._partial["epoch"] == epoch else None
            before = float(resumed["seconds"]) if resumed else 0.0  # the stopped part of this epoch
            # what the epoch trains with, at its start (read after it, the schedule has moved on: a one-epoch cosine
            # run showed lr 0, a step schedule the next epoch's rate); a resumed epoch keeps its start's
            lr = float(resumed.get("lr", 0.0) or 0.0) if resumed else 0.0
            lr = lr or self.optimizer.param_groups[0]["lr"]
            try:
                if resumed and resumed.get("trained"):  # stopped while validating: training was complete
                    (train_loss, train_acc), paused = resumed["trained"], 0.0
                    self._partial = None
                else:
                    train_loss, train_acc, paused = self._train_one_epoch(epoch)
            except _Stopped as e:
                partial = self._gather_partial(e.state)
                if partial is not None:
                    partial["lr"] = lr
                self._save_last(self._epochs_done, partial=partial)
                after = _stopped_where(partial, (e.state or {}).get("steps"))
                return "stopped", f"stopped during epoch {epoch}{after}; last.pt holds the weights so far"
            try:
                val_loss, val_acc = self._validate() if self.has_val else (None, None)
            except _Stopped:
                state = {
                    "epoch": epoch,
                    "trained": [train_loss, train_acc],
                    "seconds": before + time.perf_counter() - t0 - paused,
                    "lr": lr,
                }
                self._save_last(self._epochs_done, partial={"epoch": epoch, **state})
                return "stopped", f"stopped during epoch {epoch}, while validating; last.pt holds the weights so far"
            if val_loss is not None and not math.isfinite(val_loss):  # the epoch's last steps broke the weights:
                self._fail_nonfinite(math.isnan(val_loss), epoch)  # neither best.pt nor last.pt may keep them
            row = {
                "epoch": epoch,
                "train_loss": train_loss,
                "train_acc": train_acc,
                "val_loss": val_loss,
                "val_acc": val_acc,
                "lr": lr,
                "seconds": round(before + time.perf_counter() - t0 - paused, 3),
            }
            self._writer.wait(self._emit)  # the last epoch's files first: history.csv stays at most a row ahead
            self.history.append(row)
            if self.is_main:
                runs.append_history(self.run_dir, row)
            # (per-epoch schedules step below: the rate now is the epoch's last step's, or the step after it)
            self._emit("on_epoch_end", EpochMetrics(**row, lr_end=float(self.optimizer.param_groups[0]["lr"])))
            self._note_diverging(row)
            improved = self._update_best(row)
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(self._monitored(row))
            elif isinstance(self.scheduler, torch.optim.lr_scheduler.StepLR):
                self.scheduler.step()
            early_stop = bool(tc.early_stop_patience and self.bad_epochs >= tc.early_stop_patience)
            self._save_epoch(epoch, row, improved, final=early_stop or epoch == tc.epochs)
            if early_stop:
                return "early_stop", self._early_stop_words()
        return "completed", ""

    def _early_stop_words(self) -> str:
        """Why the run stopped early (the best epoch is reported with the result, not repeated here)."""
        n, monitor = self.bad_epochs, self.config.train.monitor
        watched = {"val_acc": "validation accuracy", "val_loss": "validation loss"}.get(monitor, monitor)
        return f"no improvement in {watched if self.has_val else 'training loss'} for {n} epoch{'s' if n != 1 else ''}"

    def _stop_requested(self) -> bool:
        """The stop token; distributed: True on every rank when any rank was asked to stop (collective)."""
        if not self.dist.enabled:
            return self.stop.stopped
        return distributed.agree([self.stop.stopped])[0] > 0

    @property
    def _epochs_done(self) -> int:
        return self.history[-1]["epoch"] if self.history else 0

    def _monitored(self, row: dict[str, Any]) -> float:
        if row["val_acc"] is None:
            return row["train_loss"]
        return row["val_acc"] if self.config.train.monitor == "val_acc" else row["val_loss"]

    def _score(self, row: dict[str, Any]) -> tuple[float, ...]:
        """What ranks epochs for best.pt (higher is better; ties broken by the other validation figure)."""
        if row["val_acc"] is None:
            return (-row["train_loss"],)
        if self.config.train.monitor == "val_acc":
            return (row["val_acc"], -row["val_loss"])
        return (-row["val_loss"], row["val_acc"])

    def _best_entry(self, epoch: int, row: dict[str, Any]) -> dict[str, Any]:
        """self.best for epoch `epoch` with metrics `row` (KeyError/TypeError for metrics not of this program)."""
        return {"epoch": epoch, "score": list(self._score(row)), "metric": self._monitored(row)}

    def _update_best(self, row: dict[str, Any]) -> bool:
        if self.best is None or self._score(row) > tuple(self.best["score"]):
            self.best = self._best_entry(row["epoch"], row)
            self.bad_epochs = 0
            return True
        self.bad_epochs += 1
        return False

    def _make_criterion(self) -> nn.Module:
        """Cross-entropy with the configured label smoothing, and with class_weights inverse-frequency weights
        (classes absent from the training split get weight 0)."""
        tc = self.config.train
        weight = None
        if tc.class_weights:
            counts = torch.bincount(
                torch.tensor([self.index.samples[i].label for i in self.split.train]), minlength=self.num_classes
            ).float()
            weight = torch.where(
                counts > 0, counts.sum() / (self.num_classes * counts.clamp(min=1)), torch.zeros_like(counts)
            ).to(self.device)
        return nn.CrossEntropyLoss(weight=weight, label_smoothing=tc.label_smoothing)

    def _train_one_epoch(self, epoch: int) -> tuple[float, float, float]:
        if self.dist.enabled:
            return self._train_one_epoch_ddp(epoch)
        tc, stop = self.config.train, self.stop
        self.model.train()
        # Augmentation and mixing draw from generators seeded by (seed, epoch): resuming repeats them exactly.
        gen = torch.Generator().manual_seed(tc.seed * 1000 + epoch)
        mix_rng = random.Random(tc.seed * 1000 + epoch)
        meter = _EpochMeter(self, epoch, len(self.train_loader))
        done = self._go_on(epoch, meter, gen, mix_rng)  # steps trained before a stop in this epoch (resumed)
        self._batch_size_now = tc.batch_size
        for step, batch in enumerate(self.train_loader, done + 1):
            for path, reason in batch.errors:
                self._skip(path, reason)
            meter.wait_if_paused()
            if stop.stopped:  # the loader handed out this batch (if it has images): not trained yet
                raise self._stopped(
                    meter,
                    step - 1,
                    self.train_loader.served - (batch.x.shape[0] > 0),
                    len(self.train_loader.ids),
                    gen,
                    mix_rng,
                )
            b = int(batch.x.shape[0])
            if b >= 2:  # BatchNorm cannot train on one image (an odd last batch or a batch of unreadable files)
                self._batch_size_now = b
                meter.add(step, *self._train_step(batch, gen, mix_rng), b)
            meter.tick(step)
            if stop.stopped:
                raise self._stopped(meter, step, self.train_loader.served, len(self.train_loader.ids), gen, mix_rng)
        if not meter.seen:
            raise _Failed(f"epoch {epoch}: no training image could be read")
        mean_loss, accuracy = meter.finish()
        return mean_loss, accuracy, meter.paused

    # -- stop inside an epoch, resume from the next batch
    def _stopped(
        self,
        meter: _EpochMeter,
        steps_done: int,
        batches_done: int,
        images: int,
        gen: torch.Generator,
        mix_rng: random.Random | None = None,
    ) -> _Stopped:
        """The exception that ends an epoch on a stop, with what this rank needs to go on from the next batch:
        the steps and loader batches done, how many images its epoch order covers, the running sums, and the
        augmentation generators' states. Waits for the device once; a non-finite loss fails the run here
        (distributed: is noted for the ranks' agreement) rather than being saved into last.pt."""
        loss_sum, correct, first_bad = meter.settle()
        if meter.seen > meter.seen0 and steps_done > meter.reported:  # the step it stops after, as the last progress
            # (bars had stood behind it; under torchrun progress.json, which the window reads, is written for it too)
            meter._report([loss_sum, correct, first_bad], steps_done, meter.seen, time.perf_counter(), final=True)
        rows = meter.rows_done()
        if self.is_main and meter.seen:
            self._batch_log.at_stop(meter.epoch, steps_done, meter.steps, loss_sum / meter.seen, meter.seen)
        mix = None
        if mix_rng is not None:
            version, internal, gauss = mix_rng.getstate()
            mix = [version, list(internal), gauss]
        return _Stopped(
            {
                "steps_done": steps_done,
                "steps": meter.steps,  # (of the epoch: for the stop's message)
                "batches_done": batches_done,
                "images": images,
                "loss_sum": loss_sum,
                "correct": correct,
                "first_bad": first_bad,
                "rows": rows,
                "seen": meter.seen,
                "gen": gen.get_state(),
                "mix": mix,
                "seconds": meter.seconds0 + meter.active_s(),
            }
        )

    def _gather_partial(self, state: dict[str, Any] | None) -> dict[str, Any] | None:
        """Every rank's stop state, for rank 0's last.pt (collective under torchrun: every rank stops together)."""
        if state is None:
            return None
        states = [state]
        if self.dist.enabled:
            states = [None] * self.world_size
            torch.distributed.all_gather_object(states, state)
        return {
            "epoch": self._epochs_done + 1,
            "steps_done": state["steps_done"],
            "global_batch": self.local_batch * self.world_size,
            "seconds": max(s["seconds"] for s in states),
            "ranks": states,
        }

    def _resume_step(self) -> int:
        """Steps of the next epoch done before the stop this run resumes from (all of them: stopped validating)."""
        p = self._partial
        if not p:
            return 0
        return self.steps_per_epoch if p.get("trained") else int(p.get("steps_done") or 0)

    def _take_partial(self, epoch: int) -> dict[str, Any] | None:
        """The stop state of `epoch` when a resumed run goes on inside it (once), else None."""
        partial = self._partial
        if not partial or partial["epoch"] != epoch:
            return None
        self._partial = None
        return partial

    def _go_on(self, epoch: int, meter: _EpochMeter, gen: torch.Generator, mix_rng: random.Random) -> int:
        """Set the loader to `epoch`; when a stopped run resumes inside it, leave out the batches already trained,
        restore the generators and the running sums, and return the steps done (else 0)."""
        partial = self._take_partial(epoch)
        if partial is None:
            self.train_loader.set_epoch(epoch)
            return 0
        states, done = partial["ranks"], int(partial["steps_done"])
        global_batch = self.local_batch * self.world_size
        before = int(partial.get("global_batch") or global_batch)
        meter.seconds0 = float(partial.get("seconds") or 0.0)
        mine = states[self.rank] if len(states) == self.world_size and before == global_batch else None
        if mine is not None and int(mine.get("images", -1)) == len(self.train_loader.ids):
            # the same layout and the same images: this rank goes on exactly where it stopped
            gen.set_state(mine["gen"])
            version, internal, gauss = mine["mix"]
            mix_rng.setstate((version, tuple(internal), gauss))
            self.train_loader.set_epoch(epoch, skip=int(mine["batches_done"]))
            meter.resume_from(
                done, mine["loss_sum"], mine["correct"], mine["first_bad"], int(mine["seen"]), mine.get("rows")
            )
            return done
        # Another number of processes or batch, or another set of readable images (another cache mode, a file
        # fixed or broken): the epoch's order differs, so go on after as many images as were trained; the sums so
        # far go to rank 0
        skip = done * before // global_batch
        if self.is_main:
            why = (
                f"with {self.world_size} process(es) (batch {global_batch}) instead of {len(states)} (batch {before})"
                if mine is None
                else "with another set of readable images"
            )
            self._warn(
                f"epoch {epoch} goes on {why}: its remaining images follow a new order, so in this epoch some may be "
                f"trained twice and others not at all"
            )
        self.train_loader.set_epoch(epoch, skip=skip)
        if self.is_main:
            meter.resume_from(
                skip,
                sum(s["loss_sum"] for s in states),
                sum(s["correct"] for s in states),
                min((s["first_bad"] for s in states if s["first_bad"] > 0), default=-1.0),
                sum(int(s["seen"]) for s in states),
            )
        else:
            meter.resume_from(skip, 0.0, 0.0, -1.0, 0)
        return skip

    def _train_step(
        self, batch: data.Batch, gen: torch.Generator, mix_rng: random.Random
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step: augment on the device, forward (AMP), backward, step (and a per-step lr schedule).

        Returns the batch's detached loss and its number of correct predictions (mixup-weighted), on the device.
        """
        tc, dev, opt = self.config.train, self.device, self.optimizer
        x = self.train_tf(batch.x.to(dev, non_blocking=dev.type == "cuda"), generator=gen)
        x = x.contiguous(memory_format=self.memory_format)
        y = batch.y.to(dev, non_blocking=dev.type == "cuda")
        y2, lam = y, 1.0
        if tc.mixup > 0 or tc.cutmix > 0:
            x, y2, lam = _mix(x, y, tc, mix_rng, gen)

        def forward_backward() -> tuple[torch.Tensor, torch.Tensor]:
            opt.zero_grad(set_to_none=True)
            with torch.autocast(dev.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                out = self.forward(x)
                loss = (
                    self.criterion(out, y)
                    if lam == 1.0
                    else (lam * self.criterion(out, y) + (1 - lam) * self.criterion(out, y2))
                )
            self.scaler.scale(loss).backward()
            return out, loss

        if isinstance(self.forward, _CompiledOrEager):
            out, loss = self.forward.step(forward_backward, self.model)
        else:
            out, loss = forward_backward()
        if tc.grad_clip:
            self.scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip)
        self.scaler.step(opt)
        self.scaler.update()
        if isinstance(self.scheduler, torch.optim.lr_scheduler.LambdaLR):
            self.scheduler.step()
        pred = out.detach().argmax(1)
        correct = (pred == y).sum() if lam == 1.0 else lam * (pred == y).sum() + (1 - lam) * (pred == y2).sum()
        return loss.detach().float(), correct

    def _fail_nonfinite(self, nan: bool, epoch: int, step: int | None = None) -> None:
        lr = self.config.train.lr
        where = f"at epoch {epoch} step {step}" if step is not None else f"in the validation after epoch {epoch}"
        lower = lr / 10 if lr <= 0.1 else 0.01  # (a tenth of a typo like 1e6 is no advice)
        raise _Failed(
            f"loss became {'NaN' if nan else 'infinite'} {where}; try a lower learning rate (it is {lr:g}; "
            f"e.g. {lower:g})"
        )

    # -- distributed (WORLD_SIZE > 1): every rank runs the same number of steps and decides together
    def _agree(
        self, stop: bool, small: bool, bad: tuple[bool, int] | None = None
    ) -> tuple[bool, bool, tuple[bool, int] | None]:
        """One host-to-host agreement per step (distributed.agree; it never waits for the GPU): any rank stopping,
        any rank's batch too small, and the earliest step whose loss a rank has read as not finite, as
        (NaN?, step) (NaN first at the same step)."""
        # the maximum of -(2 step + (0 NaN | 1 inf)) is the earliest bad step, NaN before inf
        s, k, code = distributed.agree([stop, small, -(2 * bad[1] + (0 if bad[0] else 1)) if bad else -math.inf])
        if code == -math.inf:
            return s > 0, k > 0, None
        step, inf = divmod(int(-code), 2)
        return s > 0, k > 0, (not inf, step)

    def _train_one_epoch_ddp(self, epoch: int) -> tuple[float, float, float]:
        tc, dev, stop = self.config.train, self.device, self.stop
        self.model.train()
        seed = (tc.seed + self.rank) * 1000 + epoch  # per-rank augmentation, repeatable on resume
        gen = torch.Generator().manual_seed(seed)
        mix_rng = random.Random(seed)
        steps = self.steps_per_epoch
        # rank 0's running loss in progress events; the epoch's numbers (history) are summed over all ranks
        meter = _EpochMeter(self, epoch, steps, distributed=True)
        done = self._go_on(epoch, meter, gen, mix_rng)
        self._batch_size_now = self.local_batch
        late: list[tuple[str, str]] = []
        for step, (batch, errors) in enumerate(_exact_steps(self.train_loader, steps - done, late), done + 1):
            for path, reason in errors:
                self._skip(path, reason)
            b = 0 if batch is None else int(batch.x.shape[0])
            stopping, small, bad = self._agree(stop.stopped, b < 2, meter.bad)
            if bad:
                self._fail_nonfinite(bad[0], epoch, bad[1])
            if stopping:  # every rank is here: settle the loss first, so broken weights fail instead of being kept
                loader = self.train_loader
                stopped = self._stopped(
                    meter, step - 1, loader.served - (batch is not None), len(loader.ids), gen, mix_rng
                )
                bad = self._agree(False, False, meter.bad)[2]
                if bad:
                    self._fail_nonfinite(bad[0], epoch, bad[1])
                raise stopped
            if not small:  # BatchNorm cannot train on one image: when any rank has < 2, all skip the step
                meter.add(step, *self._train_step(batch, gen, mix_rng), b)
            meter.tick(step)
        for path, reason in late:
            self._skip(path, reason)
        meter.finish()  # waits for this rank's device; notes a non-finite loss instead of failing alone
        bad = self._agree(False, False, meter.bad)[2]
        if bad:
            self._fail_nonfinite(bad[0], epoch, bad[1])
        totals = distributed.all_reduce_sum(
            torch.cat([meter.totals()[:2], torch.tensor([float(meter.seen)], device=dev, dtype=torch.float64)])
        )
        loss_total, correct_total, seen_total = totals.tolist()
        if not seen_total:
            raise _Failed(f"epoch {epoch}: no training image could be read")
        return loss_total / seen_total, correct_total / seen_total, 0.0

    def _validate_ddp(self) -> tuple[float, float]:
        dev, loader = self.device, self.val_loader
        self.model.eval()  # the plain module: no DDP collectives, each rank evaluates its shard
        # with rank 0's BatchNorm statistics, the ones saved: each rank's own (of its last batch) made the history's
        # validation a mixture of models slightly other than the checkpoint's (0.4468 against its 0.4488)
        distributed.broadcast_buffers(self.model)
        n, per = len(loader.ids), loader.num_samples
        last_pos = self.rank + (per - 1) * self.world_size
        pad_idx = loader.ids[last_pos - n] if n and last_pos >= n else None  # the padding copy that ends this shard
        steps = len(loader)
        loss_sum = torch.zeros((), device=dev, dtype=torch.float64)
        correct = torch.zeros((), device=dev, dtype=torch.float64)
        seen = 0
        # the last image counted, as (loss, hit, index): the shard's padding copy is its last image, taken back at
        # the end (a batch none of whose images could be read moves the later ones a step earlier, so the step it
        # comes at is not known before)
        tail: tuple[torch.Tensor, torch.Tensor, int] | None = None
        late: list[tuple[str, str]] = []
        for batch, errors in _exact_steps(loader, steps, late):
            for path, reason in errors:
                self._skip(path, reason)
            if self._agree(self.stop.stopped, False)[0]:
                raise _Stopped
            if batch is None:
                continue
            x, y = batch.x, batch.y
            if x.shape[0] == 0:
                continue
            x = self.eval_tf(x.to(dev, non_blocking=dev.type == "cuda")).contiguous(memory_format=self.memory_format)
            y = y.to(dev, non_blocking=dev.type == "cuda")
            with torch.autocast(dev.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                out = self.model(x)
            losses = F.cross_entropy(out.float(), y, reduction="none").double()
            hits = out.argmax(1) == y
            loss_sum += losses.sum()
            correct += hits.sum()
            seen += int(y.shape[0])
            tail = (losses[-1], hits[-1], int(batch.idx[-1]))
        if tail is not None and pad_idx is not None and tail[2] == pad_idx:
            loss_sum -= tail[0]
            correct -= tail[1].double()
            seen -= 1
        for path, reason in late:
            self._skip(path, reason)
        totals = distributed.all_reduce_sum(
            torch.stack([loss_sum, correct, torch.tensor(float(seen), device=dev, dtype=torch.float64)])
        )
        loss_total, correct_total, seen_total = totals.tolist()
        if not seen_total:
            return None, None  # type: ignore[return-value]
        return loss_total / seen_total, correct_total / seen_total

    @torch.inference_mode()
    def _validate(self) -> tuple[float, float]:
        if self.dist.enabled:
            return self._validate_ddp()
        dev = self.device
        self.model.eval()
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev)
        seen = 0
        for batch in self.val_loader:
            for path, reason in batch.errors:
                self._skip(path, reason)
            if self.stop.stopped:
                raise _Stopped
            if batch.x.shape[0] == 0:
                continue
            x = self.eval_tf(batch.x.to(dev, non_blocking=dev.type == "cuda")).contiguous(
                memory_format=self.memory_format
            )
            y = batch.y.to(dev, non_blocking=dev.type == "cuda")
            with torch.autocast(dev.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                out = self.forward(x)
            loss_sum += F.cross_entropy(out.float(), y, reduction="sum")
            correct += (out.argmax(1) == y).sum()
            seen += int(y.shape[0])
        if not seen:
            return None, None  # type: ignore[return-value]
        return float(loss_sum) / seen, float(correct) / seen

    # -- checkpoints
    def _payload(self, epoch: int, row: dict[str, Any] | None, cpu: bool = True) -> dict[str, Any]:
        cfg = self.config
        p = checkpoint.payload(
            self.model, cfg.model.arch, self.class_names, cfg.data.image_size, cfg.to_dict(), epoch, row, cpu
        )
        p["history"] = [dict(r) for r in self.history]
        return p

    def _save_epoch(self, epoch: int, row: dict[str, Any], improved: bool, final: bool = False) -> None:
        """An epoch's end on disk, written behind the next epoch (_WriteBehind): batches.csv's new rows, last.pt,
        best.pt when the epoch `improved` (after last.pt: a run ended between the two mends best.pt when resumed),
        then status.json's epochs_done (after last.pt, which the resume starts from).

        At most once every train.save_every_s seconds, unless the epoch is the run's `final` one: an epoch in
        between keeps its best weights (a copy, on the training device) for the next save, and a stop, an early
        stop or a failure saves what waits (_save_last, _save_pending_best). A crash loses at most that long."""
        if not self.is_main:
            return
        behind, every = self._writer.behind, self.config.train.save_every_s
        if not final and every > 0 and time.monotonic() - self._saved_at < every:
            if improved:
                self._pending_best = self._payload(epoch, row, cpu=not behind)
                if behind:  # (a copy on the GPU takes a millisecond; one to the CPU ~0.1 s of every such epoch)
                    self._pending_best["model"] = {k: v.clone() for k, v in self._pending_best["model"].items()}
            self._unsaved = True
            return
        if improved:
            self._pending_best = None  # (this epoch's is better)
        held = self._take_pending_best()
        self._saved_at = time.monotonic()
        best = self._payload(epoch, row, cpu=not behind)
        last = {**best, **self._training_state()}
        if behind:  # the next epoch trains meanwhile: the files get a copy of this moment
            last = self._writer.snapshot(last, self._emit)
            best = {**best, "model": last["model"]}
        status = {"epochs_done": epoch, "best_epoch": self.best["epoch"], "best_metric": self.best["metric"]}
        self._writer.submit(self._files_job(last, best if improved else held, status), self._emit)

    def _take_pending_best(self) -> dict[str, Any] | None:
        """The best epoch's payload that save_every_s held back, on the CPU (None without one); it is then saved."""
        best, self._pending_best, self._unsaved = self._pending_best, None, False
        return None if best is None else checkpoint.snapshot(best)

    def _save_pending_best(self) -> None:
        """A failed run: the best epoch's weights that save_every_s held back go to best.pt (last.pt stays as it
        was: the state now may be broken)."""
        if self.is_main and self._pending_best is not None:
            try:
                self._writer.wait(self._emit)  # (a failed write in flight: its error is said, this one is tried)
            finally:
                self._writer.submit(self._files_job(None, self._take_pending_best()), self._emit)

    def _save_last(self, epoch: int, partial: dict[str, Any] | None = None) -> None:
        """last.pt after `epoch` finished epochs, now (a stop); `partial`: how far the next epoch got."""
        if not self.is_main:
            return
        try:
            self._writer.wait(self._emit)
        except Exception as e:  # noqa: BLE001 - the last epoch's files: this last.pt holds that epoch, and more
            self._warn(f"could not save epoch {epoch}'s end ({_one_line(e)}); the stop's last.pt is tried instead")
        last = {**self._payload(epoch, self.history[-1] if self.history else None), **self._training_state(partial)}
        self._saved_at = time.monotonic()
        self._writer.run_now(self._files_job(last, self._take_pending_best()), self._emit)

    def _files_job(
        self, last: dict[str, Any] | None, best: dict[str, Any] | None = None, status: dict[str, Any] | None = None
    ) -> Callable[[list[tuple[Any, ...]]], None]:
        """A _WriteBehind job: the per-batch losses logged since the last one into batches.csv, `last` into
        last.pt, then `best` into best.pt and `status` into status.json, each when given."""
        rows, run_dir = self._batch_log.take(), self.run_dir

        def job(events: list[tuple[Any, ...]]) -> None:
            def save_best() -> None:
                if best is not None:
                    checkpoint.save(run_dir / "best.pt", best)
                    with contextlib.suppress(KeyError, TypeError):  # (metrics of ours always have the monitored key)
                        self._best_saved = self._best_entry(best["epoch"], best["metrics"])
                    events.append(("on_checkpoint", str(run_dir / "best.pt"), "best"))

            try:
                runs.append_batches(run_dir, rows)
            except OSError as e:  # only the per-batch curve of a resumed run is missing then
                events.append(("on_warning", f"could not write batches.csv: {e}"))
            if last is not None:
                try:
                    checkpoint.save(run_dir / "last.pt", last)
                except Exception:  # (not an interrupt: a second Ctrl-C ends the run at once, no more files)
                    # best.pt is still tried, smaller than last.pt without the optimizer's state: a best epoch that
                    # save_every_s held back would be lost with the run otherwise (one newer than last.pt is what
                    # a resume adopts: _mend_best). last.pt's error is the one raised, whatever best.pt's fate.
                    with contextlib.suppress(Exception):
                        save_best()
                    raise
                self._epochs_saved = last["epoch"]  # (read once the job is waited for: _finish)
                events.append(("on_checkpoint", str(run_dir / "last.pt"), "last"))
                if best is not None and status is not None:  # last.pt's epochs now, best.pt's still the old ones:
                    # killed while best.pt was written, the listing said last.pt held the epoch before. (Only a
                    # word: its failure must not cost best.pt, which is written next.)
                    with contextlib.suppress(OSError):
                        held = runs.read_status(run_dir)
                        old_best = {k: held.get(k) for k in ("best_epoch", "best_metric")}
                        runs.write_status(run_dir, "running", **{**status, **old_best})
            save_best()
            if status is not None:
                runs.write_status(run_dir, "running", **status)

        return job

    def _training_state(self, partial: dict[str, Any] | None = None) -> dict[str, Any]:
        """What last.pt adds to best.pt's keys (the weights, the history): the state a resume goes on from."""
        return dict(
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict() if self.scheduler is not None else None,
            scaler=self.scaler.state_dict(),
            rng=checkpoint.rng_state(),
            best=self.best,
            bad_epochs=self.bad_epochs,
            partial_epoch=partial is not None,
            partial=partial,
            steps_per_epoch=self.steps_per_epoch,
            trained_steps_per_epoch=self.trained_steps_per_epoch,  # what the cosine counts (a resume rescales it)
        )

    def _write_progress(self, p: BatchProgress, recent_loss: float) -> None:
        """Distributed runs, rank 0: progress.json for a launcher that follows the run folder (follow_run)."""
        doc = {
            "epoch": p.epoch,
            "epochs": self.config.train.epochs,
            "step": p.step,
            "steps": p.steps,
            "loss": p.loss,
            "recent_loss": recent_loss,  # (since the file before: the launcher's loss line)
            "images_per_s": p.images_per_s,
            "eta_s": p.eta_s,
            "world_size": self.world_size,
            "updated": time.time(),
        }
        try:
            runs.write_json_atomic(self.run_dir / "progress.json", doc)
        except OSError as e:
            self._warn(f"could not write progress.json: {e}")

    def _oom_message(self) -> str:
        b = getattr(self, "_batch_size_now", self.config.train.batch_size)
        for name in ("optimizer",):
            opt = getattr(self, name, None)
            if opt is not None:
                opt.zero_grad(set_to_none=True)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return (
            f"out of GPU memory with batch size {b} at {self.config.data.image_size} px; "
            f"try batch size {max(1, b // 2)} (--batch-size {max(1, b // 2)}) or a smaller image size"
        )

    # -- end
    def _best_on_disk(self, best: dict[str, Any], message: str) -> tuple[dict[str, Any], str]:
        """The best epoch that best.pt holds, for status.json and the result, and the message: a run that ended
        while the best epoch's weights could not be written (a full disk) named that epoch as its best, with no
        best.pt or an older epoch's in it."""
        saved = getattr(self, "_best_saved", None) or {}
        if not best or saved.get("epoch") == best.get("epoch"):
            return best, message
        held = f"best.pt holds epoch {saved['epoch']}" if saved else "there is no best.pt"
        lost = f"epoch {best['epoch']}, the best, could not be saved ({held})"
        return saved, f"{message}; {lost}" if message else lost

    def _finish(self, reason: str, message: str, tb: str | None = None) -> FitResult:
        run_dir = self.run_dir
        evaluation = None
        if (
            reason == "stopped"
            and run_dir is not None
            and self.is_main
            and not self._resume_ckpt
            and not self.history
            and not (run_dir / "last.pt").exists()
        ):
            # Stopped while preparing: no weights, no epoch. An empty run folder would only clutter the run list.
            if self._lock is not None:
                self._lock.release()  # (an open file would keep the folder on Windows)
            shutil.rmtree(run_dir, ignore_errors=True)
            run_dir = self.run_dir = None
            message = "stopped before training began; no run folder was kept"
        best = getattr(self, "best", None) or {}
        if not self.is_main and reason == "failed":
            print(f"[rank {self.rank}] failed: {message}\n{tb or ''}", file=sys.stderr, flush=True)
        if run_dir is not None and self.is_main:
            if tb:
                with contextlib.suppress(OSError):
                    (run_dir / "error.txt").write_text(tb, encoding="utf-8")
            if reason in ("completed", "early_stop") and (run_dir / "best.pt").is_file():
                evaluation = self._final_evaluation(run_dir)
            if self.history:
                try:
                    runs.draw_curves(self.history, run_dir / "curves.png")
                except Exception as e:  # noqa: BLE001 - a missing plot must not fail a finished run
                    self._safe_warn(f"could not draw curves.png: {_one_line(e)}")
            best, message = self._best_on_disk(best, message)
            status = {"completed": "completed", "early_stop": "completed"}.get(reason, reason)
            try:
                runs.write_status(
                    run_dir,
                    status,
                    reason=reason,
                    message=message,
                    # (what last.pt holds: a failure may come save_every_s after the last save)
                    epochs_done=self._epochs_saved if reason == "failed" else len(self.history),
                    best_epoch=best.get("epoch"),
                    best_metric=best.get("metric"),
                )
            except OSError as e:
                self._safe_warn(f"could not write status.json: {e}")
        unreadable = sorted(self.unreadable.items())
        if unreadable and self.is_main:
            # under the data folder: by name alone, circle/010.jpg, square/010.jpg and star/010.jpg read as one
            shown = [os.path.relpath(p, self.index.root) for p, _ in unreadable[:3]]  # (found under it)
            first = ", ".join(shown) + (", …" if len(unreadable) > 3 else "")
            self._safe_warn(
                f"{len(unreadable)} image{'s' if len(unreadable) != 1 else ''} could not be read during training and "
                f"{'was' if len(unreadable) == 1 else 'were'} left out ({first}): the data folder changed since "
                "the scan; scan it again to see what is there"
            )
        result = FitResult(
            reason=reason,
            message=message,
            best_epoch=best.get("epoch"),
            best_metric=best.get("metric"),
            run_dir=str(run_dir) if run_dir else None,
            history=[dict(r) for r in self.history],
            evaluation=evaluation,
            unreadable=unreadable,
        )
        try:
            self._emit("on_fit_end", result)
        except Exception:  # noqa: BLE001 - the run is over; a faulty listener must not turn it into a crash
            traceback.print_exc()
        return result

    def _skip(self, path: str, reason: str) -> None:
        """An image that could not be read while training (deleted or damaged since the scan): said the first time
        only (it was said again every epoch), and counted for the run's end."""
        if path not in self.unreadable:
            self.unreadable[path] = reason
            self._warn(f"skipped {path}: {reason}")

    def _safe_warn(self, msg: str) -> None:
        try:
            self._warn(msg)
        except Exception:  # noqa: BLE001
            traceback.print_exc()

    def _final_evaluation(self, run_dir: Path) -> dict[str, Any] | None:
        split = "test" if self.split.test else ("val" if self.split.val else None)
        if split is None:
            return None
        try:
            ev = evaluate(
                run_dir / "best.pt",
                self.index,
                split=split,
                split_obj=self.split,
                batch_size=self.config.train.batch_size,
                device=self.device,
                stop=self.stop,
            )
            if ev.get("stopped"):  # the run itself is complete; only its report card is missing
                self._safe_warn(
                    f"the final evaluation on the {split} split was stopped, so the run has no evaluation.json; "
                    "evaluate it later (Evaluate tab, or python main.py evaluate --checkpoint RUN_DIR)"
                )
                return None
            runs.write_json_atomic(run_dir / "evaluation.json", ev)
            return ev
        except Exception as e:  # noqa: BLE001 - training is done and saved; report the evaluation problem only
            self._safe_warn(f"evaluation on the {split} split failed: {_one_line(e)}")
            return None


def _copy_to_host_later(values: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """Queue a copy of CUDA values into pinned host memory; returns the host tensor and an event that completes
    when the copy has arrived (the host tensor must not be read before)."""
    host = torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
    host.copy_(values, non_blocking=True)  # queued on the current stream of values' device
    event = torch.cuda.Event()
    event.record(torch.cuda.current_stream(values.device))  # that stream, not the current device's (cuda:1 …)
    return host, event


def quiet_cuda_home_warning() -> None:
    """torch.compile away from CUDA imports torch.utils.cpp_extension, which warns "No CUDA runtime is found, using
    CUDA_HOME=…" wherever a CUDA toolkit is installed: noise beside a CPU run's progress, so it is filtered out."""
    import logging

    log = logging.getLogger("torch.utils.cpp_extension")
    if not any(getattr(f, "__name__", "") == "_no_cuda_home_note" for f in log.filters):

        def _no_cuda_home_note(record: logging.LogRecord) -> bool:
            return not str(record.msg).startswith("No CUDA runtime is found")

        log.addFilter(_no_cuda_home_note)


class _CompiledOrEager:
    """torch.compile's module, or the plain one once compiling has failed: torch.compile compiles at the first
    call, so a missing compiler (no C++ compiler for Inductor on Windows, say) used to fail the run at its first
    step. Only compiler errors fall back; any other error (out of memory …) is the step's own."""

    def __init__(self, eager: Any, compiled: Any, warn: Callable[[str], None]) -> None:
        self.eager, self.compiled, self.warn = eager, compiled, warn
        self.stepped = False

    def step(self, forward_backward: Callable[[], Any], model: nn.Module) -> Any:
        """A training step's forward and backward. The backward pass is compiled at its first call: a compiler
        failing only there falls back too, and the step is done again without it (no parameter has changed yet;
        at the first step the BatchNorm statistics its forward moved are put back)."""
        saved = None
        if self.compiled is not None and not self.stepped:
            saved = [b.detach().clone() for b in model.buffers()]
        try:
            result = forward_backward()
        except Exception as e:
            if not self.give_up(e):
                raise
            if saved is not None:
                with torch.no_grad():
                    for b, old in zip(model.buffers(), saved, strict=True):
                        b.copy_(old)
            result = forward_backward()
        self.stepped = True
        return result

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.compiled is None:
            return self.eager(*args, **kwargs)
        try:
            return self.compiled(*args, **kwargs)
        except Exception as e:
            if not self.give_up(e):
                raise
            return self.eager(*args, **kwargs)

    def give_up(self, error: Exception) -> bool:
        """Whether `error` is the compiler's (then compiled code is not called again, with a warning)."""
        from torch._dynamo.exc import TorchDynamoException

        if self.compiled is None or not isinstance(error, TorchDynamoException):
            return False
        self.compiled = None
        self.warn(f"torch.compile failed ({_one_line(error)[:300]}); training on without it")
        return True


def _stopped_where(partial: dict[str, Any] | None, steps: int | None) -> str:
    """Where in its epoch a Stop left the run, for its message: ", after batch 7 of 30"."""
    if not partial or not steps:
        return ""
    done = int(partial.get("steps_done") or 0)
    if done <= 0:
        return ", before its first batch"
    if done >= steps:
        return ", after its last batch, before validating"
    return f", after batch {done} of {steps}"


class _EpochMeter:
    """One epoch's running loss and accuracy, its paused time, and its progress events.

    Per step two small kernels are queued: loss × batch size and the correct count go into the step's row of a
    device table. The sums, and the first step whose loss is not finite, are taken from the table when they are
    read (kept up to date at every step, they took eight kernels a step: launches on the host's side of a step
    that the GPU may be waiting for). Progress goes out at the first step and then every PROGRESS_INTERVAL_S. On
    a GPU the host never waits for those numbers: they are copied into pinned memory behind the step and read once
    an event says the GPU got there (polled after each step), so a progress event may lag the launched steps by a
    step or two. On the CPU they are read at once. Only finish(), at the end of the epoch, waits for the device.

    `distributed`: one rank of a torchrun job. Speed counts every rank's images, and a non-finite loss is noted in
    `bad` (NaN?, step) for the ranks to agree on rather than failing this rank alone."""

    def __init__(self, trainer: Trainer, epoch: int, steps: int, distributed: bool = False) -> None:
        dev = trainer.device
        self.trainer, self.epoch, self.steps = trainer, epoch, steps
        self.distributed, self.ranks = distributed, trainer.world_size if distributed else 1
        self.bad: tuple[bool, int] | None = None
        # float64 under torchrun (summed over every rank's images); float32 suffices for one process's epoch
        dtype = torch.float64 if distributed else torch.float32
        self._rows = torch.zeros(max(1, steps), 2, device=dev, dtype=dtype)  # step i: loss × images, correct
        self._filled = 0  # rows up to the last step added
        self._base: torch.Tensor | None = None  # loss sum, correct, first bad step before a stop (no rows saved)
        self.seen = 0
        self.step0 = self.seen0 = 0  # steps and images of this epoch done before a stop (a resumed epoch)
        self.seconds0 = 0.0  # and the seconds they took
        self.paused = 0.0
        self.t0 = time.perf_counter()
        self._last_emit = self._last_file = -math.inf
        self.reported = 0  # the step of the last progress event
        self._ticked = 0  # the last step done (tick)
        self._lagged = dev.type == "cuda"
        self._pending: tuple[Any, torch.Tensor, int, int] | None = None  # event, host values, step, images seen
        self._first_done: tuple[float, float] | None = None  # (time, paused) when this session's first step ended
        self._recent = runs.RecentLoss()  # the loss since the previous event, for the loss line
        self._file_recent = runs.RecentLoss()  # and since the previous progress.json (distributed)

    def wait_if_paused(self) -> None:
        if self.trainer.stop.paused:
            if self.seen and self._ticked > self.reported:  # the steps done since the last event, said before the
                self._pending = None  # wait (a pause showed "Batch 8 / 15" while 9 were trained, as Stop then said)
                self._report(self.totals().tolist(), self._ticked, self.seen, time.perf_counter())
            self.paused += self.trainer.wait_out_pause()

    def resume_from(
        self, steps: int, loss_sum: float, correct: float, first_bad: float, seen: int, rows: Any = None
    ) -> None:
        """Go on with an epoch that a stop interrupted after `steps` steps. `rows`: the stopped steps' rows (see
        rows_done), put back so that the epoch's sums add up in the same order as without the stop (a saved sum
        plus the rest differed in float32's last bits); without them (an older last.pt, or another layout of
        processes), the sums saved then. Once, before the epoch's first step: the copies here may wait."""
        self.seen = self.seen0 = seen
        self.step0 = steps
        if seen and self.trainer.is_main:  # the next values: the loss since the stop, as it would have been
            for recent in (self._recent, self._file_recent):
                recent.resume_at(self.epoch, float(loss_sum) / seen, seen)
            self.trainer._batch_log.resume_at(self.epoch, float(loss_sum) / seen, seen, steps)
        if isinstance(rows, torch.Tensor) and rows.ndim == 2 and rows.shape[1] == 2 and len(rows) <= len(self._rows):
            self._rows[: len(rows)] = rows.to(self._rows.device, self._rows.dtype)
            self._filled = len(rows)
            return
        self._base = torch.tensor(
            [float(loss_sum), float(correct), float(first_bad)], device=self._rows.device, dtype=self._rows.dtype
        )

    def rows_done(self) -> torch.Tensor:
        """The rows of the steps so far, on the CPU (waits for the device), for a stop's saved state."""
        return self._rows[: self._filled].cpu()

    def active_s(self) -> float:
        return time.perf_counter() - self.t0 - self.paused

    def totals(self) -> torch.Tensor:
        """[loss sum, correct, first non-finite step or -1] so far, on the device (queued, not waited for)."""
        rows = self._rows[: max(1, self._filled)]  # (row 1 holds zeros until step 1 is added)
        sums = rows.sum(0)
        bad = ~torch.isfinite(rows[:, 0])
        first = torch.where(bad.any(), bad.int().argmax() + 1, -1).to(rows.dtype)  # argmax: the first maximum
        if self._base is None:
            return torch.stack([sums[0], sums[1], first])
        base = self._base  # a bad step before the stop comes first
        return torch.stack([sums[0] + base[0], sums[1] + base[1], torch.where(base[2] > 0, base[2], first)])

    def settle(self) -> tuple[float, float, float]:
        """Waits for the device; (loss sum, correct, first non-finite step or -1) so far, without a progress
        event. A non-finite loss fails the run (distributed: is noted in `bad`)."""
        self._pending = None
        # (no .double() on the device: Apple's MPS has no float64, and a stop on a Mac failed the run here)
        loss_sum, correct, first_bad = self.totals().tolist()
        if self.seen and not math.isfinite(loss_sum):
            self._nonfinite(math.isnan(loss_sum), int(first_bad) if first_bad > 0 else self.step0 + 1)
        return loss_sum, correct, first_bad

    def _nonfinite(self, nan: bool, step: int) -> None:
        if not self.distributed:
            self.trainer._fail_nonfinite(nan, self.epoch, step)
        self.bad = self.bad or (nan, step)

    def add(self, step: int, loss: torch.Tensor, correct: torch.Tensor, b: int) -> None:
        if step > len(self._rows):  # more batches than counted (not expected): room for them
            self._rows = torch.cat([self._rows, torch.zeros_like(self._rows)])
        torch.stack([loss * b, correct], out=self._rows[step - 1])
        self._filled = max(self._filled, step)
        self.seen += b

    def tick(self, step: int) -> None:
        """After each step but the last (finish() reports that one): queue a read when one is due, report it when
        the device has it."""
        if self.trainer._writer.failed:  # the last epoch's files could not be written
            self.trainer._writer.wait(self.trainer._emit)  # (raises the error)
        if not self.seen or step == self.steps:
            return
        self._ticked = step
        now = time.perf_counter()
        if self._first_done is None:
            self._first_done = (now, self.paused)
        if self._pending is None and now - self._last_emit >= PROGRESS_INTERVAL_S:
            values, event = self.totals(), None
            if self._lagged:
                values, event = _copy_to_host_later(values)
            self._pending = (event, values, step, self.seen)
        if self._pending is not None and (self._pending[0] is None or self._pending[0].query()):
            _, values, at_step, seen = self._pending
            self._pending = None
            self._last_emit = now
            self._report(values.tolist(), at_step, seen, now)

    def finish(self) -> tuple[float, float]:
        """Waits for the device, reports the last step; the epoch's mean loss and accuracy (NaN without images:
        only a distributed rank whose batches were all unreadable gets here so)."""
        self._pending = None
        if not self.seen:
            return math.nan, math.nan
        totals = self.totals().tolist()
        self._report(totals, self.steps, self.seen, time.perf_counter())
        loss_sum, correct, _ = totals
        return loss_sum / self.seen, correct / self.seen

    def _report(self, values: list[float], step: int, seen: int, now: float, final: bool = False) -> None:
        """A progress event from the totals() read at `step` ([loss sum, correct, first bad step])."""
        mean_loss = values[0] / seen
        if not math.isfinite(mean_loss):
            self._nonfinite(math.isnan(mean_loss), int(values[2]) if values[2] > 0 else step)
            return
        active = max(1e-9, now - self.t0 - self.paused)
        left = (self.steps - step) + (self.trainer.config.train.epochs - self.epoch) * self.steps
        here = max(1, step - self.step0)  # speed and ETA from this session's steps (a resumed epoch)
        per_step = active / here
        if self._first_done is not None and here >= 2:  # the ETA leaves out the first step's warm-up (a resumed
            t1, paused1 = self._first_done  # epoch's showed 4 minutes for 20 seconds); the speed counts it all
            per_step = max(1e-9, now - t1 - (self.paused - paused1)) / (here - 1)
        p = BatchProgress(
            self.epoch, step, self.steps, mean_loss, (seen - self.seen0) * self.ranks / active, left * per_step, seen
        )
        p.recent_loss = self._recent(p)
        self.reported = step
        self.trainer._emit("on_batch_end", p)
        if (
            self.distributed
            and self.trainer.is_main
            and (final or step == self.steps or now - self._last_file >= PROGRESS_FILE_INTERVAL_S)
        ):
            self._last_file = now
            self.trainer._write_progress(p, self._file_recent(p))


def _exact_steps(
    loader: Iterable[data.Batch], steps: int, late: list[tuple[str, str]]
) -> Iterable[tuple[data.Batch | None, list[tuple[str, str]]]]:
    """Exactly `steps` (non-empty batch or None, load errors) pairs, so every rank runs the same number of steps
    even when unreadable images empty a batch on one of them; errors left after the last step go to `late`."""
    it = iter(loader)
    done = False
    for _ in range(steps):
        errors: list[tuple[str, str]] = []
        batch = None
        if not done:
            for b in it:
                errors += b.errors
                if b.x.shape[0]:
                    batch = b
                    break
            else:
                done = True
        yield batch, errors
    if not done:
        for b in it:
            late += b.errors


def _is_peer_failure(e: BaseException) -> bool:
    """A collective that failed because another rank died or timed out (not this rank's own problem)."""
    dist_error = getattr(torch.distributed, "DistError", None)
    text = str(e).lower()  # (Gloo's own: "Timed out waiting 15000ms for recv operation to complete")
    return (dist_error is not None and isinstance(e, dist_error)) or any(
        s in text
        for s in (
            "connection closed by peer",
            "connection reset by peer",
            "timed out",
            "timeout",
            "nccl communicator was aborted",
            "processgroup",
        )
    )


def _one_line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.filename and e.strerror:  # "/runs/x/last.pt: could not write it: …"
        return f"{e.filename}: {e.strerror}"
    m = re.search(r"can't allocate memory: you tried to allocate (\d+) bytes", str(e))
    if m or isinstance(e, MemoryError):  # (torch's CPU allocator: "[enforce fail at alloc_cpu.cpp:127] …")
        size = f" ({int(m.group(1)) / 2**30:.1f} GB at once)" if m else ""
        return f"out of memory{size}: the model, batch or image size is too large for this machine's memory"
    text = str(e).strip().splitlines()
    return (
        f"{type(e).__name__}: {text[0]}"
        if text and not isinstance(e, (ValueError, OSError))
        else (text[0] if text else type(e).__name__)
    )


# ------------------------------------------------------------------------------------------------------- evaluate


@torch.inference_mode()
def evaluate(
    source: str | Path | dict[str, Any],
    index: data.DatasetIndex,
    split: str = "val",
    split_obj: data.Split | None = None,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    progress: Callable[[int, int], None] | None = None,
    stop: StopToken | None = None,
) -> dict[str, Any]:
    """Evaluate a checkpoint (path or loaded dict) on one split of `index`: the content of evaluation.json.

    The split is recomputed from the checkpoint's settings (val/test fractions, seed) exactly as in training,
    unless `split_obj` is given. Images go through the same decode and eval transform as in training.
    """
    if split not in ("val", "test", "all", "train"):
        raise ValueError(f"split={split!r}: one of val, test, all")
    ckpt = checkpoint.load(source) if not isinstance(source, dict) else source
    cfg = RunConfig.from_dict(ckpt.get("config") or {}, source=None if isinstance(source, dict) else source)
    dcfg = copy.deepcopy(cfg.data)
    dcfg.image_size = int(ckpt["image_size"])
    names = [data.class_key(c) for c in ckpt["class_names"]]  # a checkpoint from before names were NFC
    unknown = [c for c in index.classes if c not in names]  # their images are left out (and counted)
    if len(unknown) == len(index.classes):
        raise ValueError(
            f"{index.root}: none of its classes ({', '.join(index.classes)}) is one of the checkpoint's classes "
            f"({', '.join(names)})"
        )
    label_map = torch.tensor([names.index(c) if c in names else -1 for c in index.classes], dtype=torch.long)

    if split == "all":
        indices = list(range(len(index.samples)))
    else:
        parts = split_obj or data.split(index, val=dcfg.val_split, test=dcfg.test_split, seed=dcfg.seed)
        indices = list(getattr(parts, split))
        if not indices:
            raise ValueError(
                f"the {split} split of {index.root} is empty (the run used val_split={dcfg.val_split}, "
                f"test_split={dcfg.test_split}); choose another split or 'all'"
            )
    left_out: dict[str, int] = {}
    if unknown:
        kept = []
        for i in indices:
            name = index.classes[index.samples[i].label]
            if name in names:
                kept.append(i)
            else:
                left_out[name] = left_out.get(name, 0) + 1
        indices = kept
        if not indices:
            raise ValueError(
                f"the {split} split of {index.root} holds only classes the checkpoint does not know "
                f"({', '.join(unknown)}; its classes: {', '.join(names)})"
            )
    dev = resolve_device(device)
    model = checkpoint.model_from_checkpoint(ckpt, dev)
    fmt = choose_memory_format(ckpt["arch"], dev, cfg.train.channels_last)
    model = model.to(memory_format=fmt)
    tf = data.BatchTransform(dcfg, train=False)
    # in the precision the run validated in (bf16/fp16 autocast on a GPU): its final evaluation.json of the best
    # epoch had given other numbers than that epoch's validation in history.csv, and on near ties another class
    half = None if cfg.model.mode == "linear" else amp_dtype(dev, cfg.train.amp)  # (a linear probe: in float32)
    n = len(indices)
    steps = -(-n // batch_size)
    # one bar for both parts: the images read into memory (one unit each; a Stop ends it), then the batches
    filling = (lambda done, _total: progress(done, n + steps)) if progress else None
    ys, preds, confs, idxs, logits_all = [], [], [], [], []
    errors: list[dict[str, str]] = []
    loss_sum, stopped = 0.0, False
    try:
        loader = data.make_loader(
            index, indices, dcfg, batch_size=batch_size, shuffle=False, seed=0, device=dev, progress=filling, stop=stop
        )
    except data.LoadStopped:
        loader, stopped = None, True
    read = n if loader is not None and loader.mode == "memory" else 0  # (the units the reading counted)
    total = read + (len(loader) if loader is not None else 0)
    if progress and loader is not None:
        progress(read, total)
    for step, batch in enumerate(loader if loader is not None else [], 1):
        errors += [{"path": p, "reason": r} for p, r in batch.errors]
        if stop is not None and stop.stopped:
            stopped = True
            break
        if batch.x.shape[0]:
            x = tf(batch.x.to(dev, non_blocking=dev.type == "cuda")).contiguous(memory_format=fmt)
            y = label_map[batch.y.cpu()]
            with torch.autocast(dev.type, dtype=half, enabled=half is not None):  # (as the run validated)
                out = model(x).float().cpu()
            loss_sum += float(F.cross_entropy(out, y, reduction="sum"))
            prob = out.softmax(1)
            conf, pred = prob.max(1)
            ys.append(y)
            preds.append(pred)
            confs.append(conf)
            idxs.append(batch.idx.cpu())
            logits_all.append(out)
        if progress:
            progress(read + step, total)
    if loader is not None:
        loader.close()  # (a stop leaves its workers reading ahead)

    k = len(names)
    y = torch.cat(ys) if ys else torch.empty(0, dtype=torch.long)
    pred = torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)
    conf = torch.cat(confs) if confs else torch.empty(0)
    idx = torch.cat(idxs).tolist() if idxs else []
    logits = torch.cat(logits_all) if logits_all else torch.empty(0, k)
    n = int(y.numel())
    doc = evaluation_document(
        ckpt,
        index,
        split,
        idx,
        y,
        pred,
        conf,
        logits,
        loss_sum / n if n else None,
        str(source) if not isinstance(source, dict) else None,
        errors,
        stopped,
    )
    doc["left_out_classes"] = left_out  # {class the checkpoint does not know: images of it not evaluated}
    # a folder named as a class of the model but for its letters' case or spaces ("Green" for "green"): said, with
    # the name to give it (its images were left out without a hint, and the numbers came from the other classes)
    near = {c: m for c in left_out for m in names if c != m and c.casefold().strip() == m.casefold().strip()}
    if near:
        doc["left_out_near"] = near
    return doc


def evaluation_document(
    ckpt: dict[str, Any],
    index: data.DatasetIndex,
    split: str,
    idx: list[int],
    y: torch.Tensor,
    pred: torch.Tensor,
    conf: torch.Tensor,
    logits: torch.Tensor,
    loss: float | None,
    source: str | None,
    errors: list[Any],
    stopped: bool,
) -> dict[str, Any]:
    """The evaluation.json document from per-sample labels, predictions, confidences and logits."""
    names = list(ckpt["class_names"])
    k = len(names)
    n = int(y.numel())
    cm = metrics.confusion_matrix(y, pred, k)
    rows = metrics.per_class(cm, names)
    predictions = [
        {"path": index.samples[i].path, "true": names[int(t)], "predicted": names[int(p)], "confidence": float(c)}
        for i, t, p, c in zip(idx, y.tolist(), pred.tolist(), conf.tolist(), strict=True)
    ]
    wrong = sorted((p for p in predictions if p["true"] != p["predicted"]), key=lambda p: -p["confidence"])
    return {
        "split": split,
        "data_root": str(index.root),
        "checkpoint": source,
        "arch": ckpt["arch"],
        "epoch": ckpt.get("epoch"),
        "loss": loss,
        "accuracy": metrics.accuracy(y, pred) if n else None,
        "top5": metrics.topk_accuracy(logits, y, 5) if n and k >= 5 else None,
        "num_samples": n,
        "class_names": names,
        "confusion_matrix": cm,
        "per_class": rows,
        "macro": metrics.macro(rows),
        "misclassified": wrong,
        "predictions": predictions,
        "errors": errors,
        "stopped": stopped,
    }


__all__ = [
    "BatchProgress",
    "Callback",
    "EpochMetrics",
    "FitInfo",
    "FitResult",
    "StopToken",
    "Trainer",
    "choose_memory_format",
    "evaluate",
    "resolve_defaults",
    "resolve_device",
]
