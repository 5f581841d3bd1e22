"""Settings dataclasses (data, model, training) with validation and a JSON round trip."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting has a bad value; the message names the field."""


def _check(cond: bool, name: str, value: Any, why: str) -> None:
    if not cond:
        raise ConfigError(f"{name}={value!r}: {why}")


AUGMENTATIONS = ("none", "light", "standard", "strong")
STRONG_JITTER, STRONG_ERASING = 0.3, 0.25  # what "strong" adds while color_jitter / random_erasing are 0
CACHE_MODES = ("auto", "memory", "stream")
MAX_EPOCHS = 100_000
MAX_MIX_ALPHA = 10.0  # mixup / cutmix
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("cosine", "step", "plateau", "none")
MONITORS = ("val_acc", "val_loss")
DEVICES = ("auto", "cpu", "cuda", "mps")
MODES = ("scratch", "linear", "finetune")

# Presets applied when arch is "auto" (only to values still at their dataclass defaults):
#   CPU: resnext11_4x8d (models.auto_arch) at 32 px, batch 16, AdamW lr 3e-3 (weight decay 5e-4),
#        cosine with a half-epoch warm-up, 15 epochs, no augmentation. Measured on the bundled sample (600 images,
#        4 shapes): ~96 % validation accuracy; 64 px costs ~4.7x more per image and augmentation needs more epochs
#        than a 3-minute budget on 2 cores allows.
#   CUDA / MPS: resnext50_32x4d at 224 px, batch 64, AdamW lr 1e-3, cosine with 1 warm-up epoch, 10 epochs,
#        standard augmentation, AMP (bf16 where supported, else fp16 + GradScaler) on CUDA.
CPU_PRESET = {"image_size": 32, "augment": "none", "batch_size": 16, "lr": 3e-3, "epochs": 15, "warmup_epochs": 0.5}
# A CPU with pretrained weights: a linear probe (or fine-tune) of ResNeXt-50 at its native 224 px.
TRANSFER_PRESET = {
    "image_size": 224,
    "augment": "light",
    "batch_size": 32,
    "lr": 1e-3,
    "epochs": 10,
    "warmup_epochs": 0.0,
}
GPU_PRESET = {
    "image_size": 224,
    "augment": "standard",
    "batch_size": 64,
    "lr": 1e-3,
    "epochs": 10,
    "warmup_epochs": 1.0,
}


def auto_preset(device_type: str, pretrained: bool = False) -> dict[str, Any]:
    """The values arch "auto" brings on a device type ("cpu", "cuda", "mps"), with or without pretrained weights."""
    if device_type == "cpu":
        return dict(TRANSFER_PRESET if pretrained else CPU_PRESET)
    return dict(GPU_PRESET)


def likely_device_type() -> str:
    """A guess, without importing torch, at the device type "auto" will pick: "cuda" where an NVIDIA driver is
    installed, "mps" on Apple silicon, else "cpu". The app shows that device's recommended values while torch loads
    and changes them only when the guess was wrong (an NVIDIA driver with a CPU-only torch, say)."""
    import os
    import platform
    import shutil
    import sys

    if sys.platform == "darwin":
        return "mps" if platform.machine() == "arm64" else "cpu"
    if os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi"):
        return "cuda"
    return "cpu"


@dataclass
class DataConfig:
    """Where the images are, how they are split and how they are augmented."""

    root: str = ""
    image_size: int = 64
    val_split: float = 0.2
    test_split: float = 0.0
    seed: int = 0
    augment: str = "standard"  # none | light | standard | strong
    hflip: bool = True
    color_jitter: float = 0.0  # strength 0..1
    random_erasing: float = 0.0  # probability 0..1
    cache: str = "auto"  # auto | memory | stream
    cache_budget_mb: int | None = None  # None: a quarter of RAM (CPU) / a share of free GPU memory
    num_workers: int | None = None  # None: from the core count

    def validate(self) -> None:
        _check(16 <= self.image_size <= 1024, "image_size", self.image_size, "must be 16..1024")
        _check(0.0 <= self.val_split < 1.0, "val_split", self.val_split, "must be in [0, 1)")
        _check(0.0 <= self.test_split < 1.0, "test_split", self.test_split, "must be in [0, 1)")
        if self.val_split + self.test_split >= 1.0:  # (not "val_split=0.2: …" for a test_split of 0.9: both)
            raise ConfigError(
                f"val_split {self.val_split:g} + test_split {self.test_split:g} = "
                f"{self.val_split + self.test_split:g}: must be < 1, or no image is left to train on"
            )
        _check(self.augment in AUGMENTATIONS, "augment", self.augment, f"one of {', '.join(AUGMENTATIONS)}")
        _check(0.0 <= self.color_jitter <= 1.0, "color_jitter", self.color_jitter, "must be 0..1")
        _check(0.0 <= self.random_erasing <= 1.0, "random_erasing", self.random_erasing, "must be 0..1")
        _check(self.cache in CACHE_MODES, "cache", self.cache, f"one of {', '.join(CACHE_MODES)}")
        _check(
            self.cache_budget_mb is None or self.cache_budget_mb >= 0,
            "cache_budget_mb",
            self.cache_budget_mb,
            "must be ≥ 0",
        )
        _check(self.num_workers is None or self.num_workers >= 0, "num_workers", self.num_workers, "must be ≥ 0")
        _check(abs(self.seed) < 2**53, "seed", self.seed, "must be smaller than 2**53 in size")


@dataclass
class ModelConfig:
    """Which network, and where its starting weights come from."""

    arch: str = "auto"  # "auto" → chosen for the device (see core.engine.resolve_defaults)
    pretrained: str | None = None  # None | "imagenet" | path to a state-dict file
    mode: str = "scratch"  # scratch | linear | finetune
    freeze_backbone: bool = False

    def validate(self) -> None:
        if isinstance(self.arch, str):  # "resnext50_32x4d " pasted with its space was stored and shown so
            self.arch = self.arch.strip()
        _check(bool(self.arch), "arch", self.arch, "must not be empty")
        _check(self.mode in MODES, "mode", self.mode, f"one of {', '.join(MODES)}")
        _check(
            self.mode == "scratch" or self.pretrained is not None,
            "mode",
            self.mode,
            "linear and finetune need pretrained weights (--pretrained imagenet|PATH)",
        )


@dataclass
class TrainConfig:
    """How the network is trained."""

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adamw"
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    scheduler: str = "cosine"
    warmup_epochs: float = 0.0
    step_size: int = 10
    gamma: float = 0.1
    label_smoothing: float = 0.0
    grad_clip: float | None = None
    mixup: float = 0.0  # alpha; 0 = off
    cutmix: float = 0.0  # alpha; 0 = off
    class_weights: bool = False
    early_stop_patience: int | None = None
    monitor: str = "val_acc"
    device: str = "auto"
    amp: bool = True  # used on CUDA only
    channels_last: str = "auto"  # auto | on | off
    compile: bool = False
    seed: int = 0
    sync_bn: bool = False  # DDP only
    backbone_lr_mult: float = 0.1  # finetune: backbone lr = lr × this
    # last.pt (and a new best.pt) at an epoch's end at most once every this many seconds; 0: every epoch. The last
    # epoch, an early stop and a Stop are always saved; a best epoch in between is kept until the next save (a copy
    # of its weights on the training device). (A GPU trains a small folder's epoch in under a second: resnext29's
    # 0.5 GB of files each epoch made the disk the limit and wore it.)
    save_every_s: float = 30.0

    def validate(self) -> None:
        for f in dataclasses.fields(self):  # inf and nan pass "> 0" style checks, or fail them with odd messages
            value = getattr(self, f.name)
            if isinstance(value, float):
                _check(math.isfinite(value), f.name, value, "must be a finite number")
        if isinstance(self.device, str):  # "CPU" in a config file, as --device CPU on the command line
            self.device = self.device.strip().lower()
        # (1e20 in a config file stretched the schedule over that many epochs: a run that never ends)
        _check(1 <= self.epochs <= MAX_EPOCHS, "epochs", self.epochs, f"must be 1 … {MAX_EPOCHS}")
        _check(self.batch_size >= 2, "batch_size", self.batch_size, "must be ≥ 2 (BatchNorm needs two images a step)")
        _check(self.lr > 0, "lr", self.lr, "must be > 0")
        _check(self.optimizer in OPTIMIZERS, "optimizer", self.optimizer, f"one of {', '.join(OPTIMIZERS)}")
        _check(0.0 <= self.momentum < 1.0, "momentum", self.momentum, "must be in [0, 1)")
        # (1e308 made the loss NaN, and the message blamed the learning rate)
        _check(0 <= self.weight_decay <= 1, "weight_decay", self.weight_decay, "must be in [0, 1]")
        _check(self.scheduler in SCHEDULERS, "scheduler", self.scheduler, f"one of {', '.join(SCHEDULERS)}")
        _check(  # (1e308 failed the run with an OverflowError, a run folder left behind)
            0 <= self.warmup_epochs <= MAX_EPOCHS, "warmup_epochs", self.warmup_epochs, f"must be 0 … {MAX_EPOCHS}"
        )
        _check(self.step_size >= 1, "step_size", self.step_size, "must be ≥ 1")
        _check(0 < self.gamma <= 1, "gamma", self.gamma, "must be in (0, 1]")
        _check(0.0 <= self.label_smoothing < 1.0, "label_smoothing", self.label_smoothing, "must be in [0, 1)")
        _check(self.grad_clip is None or self.grad_clip > 0, "grad_clip", self.grad_clip, "must be > 0")
        # alpha of a Beta distribution: 10 already mixes about half and half every time, and past ~1e307 Python's
        # betavariate never returns (a run that hung at its first step, deaf to SIGTERM)
        _check(0 <= self.mixup <= MAX_MIX_ALPHA, "mixup", self.mixup, f"must be 0 … {MAX_MIX_ALPHA:g}")
        _check(0 <= self.cutmix <= MAX_MIX_ALPHA, "cutmix", self.cutmix, f"must be 0 … {MAX_MIX_ALPHA:g}")
        _check(
            self.early_stop_patience is None or self.early_stop_patience >= 1,
            "early_stop_patience",
            self.early_stop_patience,
            "must be ≥ 1",
        )
        _check(self.monitor in MONITORS, "monitor", self.monitor, f"one of {', '.join(MONITORS)}")
        _check(
            self.device in DEVICES or self.device.startswith("cuda:"),
            "device",
            self.device,
            "one of auto, cpu, cuda, cuda:N, mps",
        )
        _check(self.channels_last in ("auto", "on", "off"), "channels_last", self.channels_last, "auto|on|off")
        _check(self.backbone_lr_mult > 0, "backbone_lr_mult", self.backbone_lr_mult, "must be > 0")
        _check(self.save_every_s >= 0, "save_every_s", self.save_every_s, "must be ≥ 0 (0: every epoch)")
        # per-epoch generators are seeded with seed * 1000 + epoch, which must fit torch's 64 bits
        _check(abs(self.seed) < 2**53, "seed", self.seed, "must be smaller than 2**53 in size")


@dataclass
class RunConfig:
    """Everything one training run needs: data, model and training settings."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> RunConfig:
        self.data.validate()
        self.model.validate()
        self.train.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str | Path | None = None) -> RunConfig:
        """The settings a run stored: its config.json, or a checkpoint's "config". `source` names that file in
        the messages (ConfigError). A setting this version does not know is refused as one a newer ResNeXt Studio
        may have written (see newer_settings_message), not ignored: a setting left out would evaluate on another
        split or preprocessing without a word, and a resume would train on without it and save the run without
        it. A settings file the user typed is read by from_json, where an unknown setting is a typo."""
        where = f"{source}: " if source is not None else ""
        if not isinstance(d, dict):
            raise ConfigError(f"{where}expected settings (a JSON object), got {type(d).__name__}")
        unknown = unknown_settings(d)
        if unknown:
            raise ConfigError(newer_settings_message(unknown, source))
        try:
            return cls._from_sections(d)
        except ConfigError as e:
            if where:
                raise ConfigError(f"{where}{e}") from None
            raise

    @classmethod
    def _from_sections(cls, d: dict[str, Any]) -> RunConfig:
        return cls(
            data=_from_dict(DataConfig, d.get("data", {}), "data"),
            model=_from_dict(ModelConfig, d.get("model", {}), "model"),
            train=_from_dict(TrainConfig, d.get("train", {}), "train"),
        )

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> RunConfig:
        p = Path(text_or_path)
        if str(text_or_path).lstrip().startswith("{"):
            text = str(text_or_path)
        else:
            raw = p.read_bytes()
            try:  # UTF-8 (with or without the BOM Windows editors add), or UTF-16 (Notepad's "Unicode")
                text = raw.decode("utf-16") if raw.startswith((b"\xff\xfe", b"\xfe\xff")) else raw.decode("utf-8-sig")
            except UnicodeDecodeError as e:
                raise ConfigError(f"{text_or_path}: not a text file ({e.reason} at byte {e.start})") from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{text_or_path}: not valid JSON ({e})") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"{text_or_path}: not a settings file (expected a JSON object like a run's config.json)")
        unknown = [k for k in doc if k not in ("data", "model", "train", "dataset")]  # dataset: a run's record
        if unknown:
            raise ConfigError(f"{unknown[0]}: unknown section (a settings file has data, model and train)")
        return cls._from_sections(doc)  # (an unknown setting here is a typo: "train.epochz: unknown setting")


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def unknown_settings(doc: Any) -> list[str]:
    """The settings in stored settings (a run's config.json, a checkpoint's "config") that this version does not
    know, as "section.name", in order: what a newer version added (data.mixup_schedule, say). Other top-level keys
    (a run's "dataset" record) are no settings."""
    out = []
    for name, kind in SECTIONS.items():
        part = doc.get(name) if isinstance(doc, dict) else None
        if isinstance(part, dict):
            known = {f.name for f in dataclasses.fields(kind)}
            out += [f"{name}.{key}" for key in sorted(part, key=str) if key not in known]
    return out


def newer_settings_message(unknown: list[str], source: str | Path | None = None) -> str:
    """Why stored settings holding `unknown` (unknown_settings) cannot be used, naming the file `source` when
    given: they were likely written by a newer ResNeXt Studio."""
    from core import __version__

    names = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
    what = f"{names}: unknown setting{'s' if len(unknown) > 1 else ''}"
    if source is None:
        return f"{what} (saved by a newer version of ResNeXt Studio than this {__version__}?)"
    return (
        f"{source}: {what}: this file may have been written by a newer version of ResNeXt Studio (this is "
        f"{__version__}); use that version, or update this one, to evaluate or resume the run"
    )


def _type_problem(annotation: str, value: Any) -> str | None:
    """Why a settings-file value does not fit its field ("int", "float | None", …), or None. Numbers written as
    text ("0.2") are refused rather than guessed; an integral float (10.0) is a fine int."""
    kinds = [k.strip() for k in annotation.split("|")]
    if value is None:
        return None if "None" in kinds else "must be given (null is not allowed here)"
    if isinstance(value, bool):
        return None if "bool" in kinds else f"must be {_type_words(kinds)}, not true/false"
    if "int" in kinds and isinstance(value, int):
        return None
    if "int" in kinds and isinstance(value, float) and value.is_integer() and "float" not in kinds:
        return None
    if "float" in kinds and isinstance(value, (int, float)):
        return None
    if "str" in kinds and isinstance(value, str):
        return None
    return f"must be {_type_words(kinds)}"


def _type_words(kinds: list[str]) -> str:
    words = {"int": "a whole number", "float": "a number", "str": "text", "bool": "true or false"}
    return " or ".join(words[k] for k in kinds if k in words) + (" (or null)" if "None" in kinds else "")


def _from_dict(kind: type, d: dict[str, Any], section: str):
    if not isinstance(d, dict):
        raise ConfigError(f"{section}: expected an object, got {type(d).__name__}")
    names = {f.name: f for f in dataclasses.fields(kind)}
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise ConfigError(f"{section}.{unknown[0]}: unknown setting")
    d = dict(d)
    for key, value in d.items():
        problem = _type_problem(str(names[key].type), value)
        if problem:
            raise ConfigError(f"{section}.{key}={value!r}: {problem}")
        if isinstance(value, float) and "int" in str(names[key].type) and "float" not in str(names[key].type):
            d[key] = int(value)  # 10.0 in a hand-written file: the 10 it means
    obj = kind(**d)
    try:
        obj.validate()
    except ConfigError as e:
        raise ConfigError(f"{section}.{e}") from None
    return obj


def train_acc_name(config: dict[str, Any]) -> str:
    """What a run's training accuracy is called in its epoch lines: "acc", or "acc (mixed labels)" under MixUp or
    CutMix, whose score weighs both labels of a mixed image (a plain "acc" of 61 % beside a validation 100 % read as
    underfitting). A linear probe trains on cached features without them (it says so), so its accuracy is plain."""
    train = config.get("train") or {}
    if (config.get("model") or {}).get("mode") == "linear":
        return "acc"
    mixed = any(isinstance(train.get(k), (int, float)) and train.get(k) > 0 for k in ("mixup", "cutmix"))
    return "acc (mixed labels)" if mixed else "acc"


def settings_summary(config: dict) -> str:
    """'resnext11_4x8d, 32 px, batch 32, lr 0.001 (adamw, cosine), augmentation standard' from a run's config."""
    model, train, data = (config.get(k) or {} for k in ("model", "train", "data"))
    parts = [str(model.get("arch", "?")), f"{data.get('image_size', '?')} px", f"batch {train.get('batch_size', '?')}"]
    parts.append(f"lr {train.get('lr', '?')} ({train.get('optimizer', '?')}, {train.get('scheduler', '?')})")
    parts.append(f"augmentation {data.get('augment', '?')}")
    extras = [f"{k.replace('_', ' ')} {train[k]:g}" for k in ("mixup", "cutmix", "label_smoothing") if train.get(k)]
    if train.get("warmup_epochs") and train.get("scheduler", "cosine") == "cosine":  # (the others have none)
        w = train["warmup_epochs"]
        extras.append(f"warm-up {w:g} epoch{'' if w == 1 else 's'}")
    if train.get("class_weights"):
        extras.append("class weights")
    if model.get("pretrained"):
        mode = {"linear": "linear probe", "finetune": "fine-tune"}.get(model.get("mode"), "all layers")
        extras.append(f"{mode} from {Path(str(model['pretrained'])).name}")
    if model.get("freeze_backbone") and model.get("mode") != "linear":
        extras.append("backbone frozen")
    return ", ".join(parts + extras)
