"""Model registry and builder: architecture names, CIFAR/ImageNet ResNeXt, summaries, pretrained weights."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.client
import math
import os
import pickle
import re
import tempfile
import time
import types
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from core import runs

Progress = Callable[[int, int], None]


class ModelError(ValueError):
    """Unknown architecture or unusable weights; the message is one line naming the name, file or layer."""


NAME_FORMS = (
    "resnext{50|101|152}_{C}x{d}d (ImageNet-style), resnext{9n+2}_{C}x{d}d (CIFAR-style, e.g. "
    "resnext29_8x64d), resnet18|34|50|101|152, wide_resnet50_2, wide_resnet101_2"
)

_IMAGENET_LAYERS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
_BASELINES = {
    "resnet18": ("basic", (2, 2, 2, 2), 1, 64),
    "resnet34": ("basic", (3, 4, 6, 3), 1, 64),
    "resnet50": ("bottleneck", (3, 4, 6, 3), 1, 64),
    "resnet101": ("bottleneck", (3, 4, 23, 3), 1, 64),
    "resnet152": ("bottleneck", (3, 8, 36, 3), 1, 64),
    "wide_resnet50_2": ("bottleneck", (3, 4, 6, 3), 1, 128),
    "wide_resnet101_2": ("bottleneck", (3, 4, 23, 3), 1, 128),
}
# torchvision weights: IMAGENET1K_V1 everywhere. V1 was trained and evaluated with the classic resize-256 /
# crop-224 transform, which is exactly our eval pipeline (resize_size(224) == 256); the V2 recipes expect
# resize 232 and would lose accuracy under our transform. (resnext101_64x4d only has one set, called V1.)
_WEIGHTS = {
    "resnext50_32x4d": "https://download.pytorch.org/models/resnext50_32x4d-7cdf4587.pth",
    "resnext101_32x8d": "https://download.pytorch.org/models/resnext101_32x8d-8ba56ff5.pth",
    "resnext101_64x4d": "https://download.pytorch.org/models/resnext101_64x4d-173b62eb.pth",
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet34": "https://download.pytorch.org/models/resnet34-b627a593.pth",
    "resnet50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    "resnet101": "https://download.pytorch.org/models/resnet101-63fe2227.pth",
    "resnet152": "https://download.pytorch.org/models/resnet152-394f9c45.pth",
    "wide_resnet50_2": "https://download.pytorch.org/models/wide_resnet50_2-95faca4d.pth",
    "wide_resnet101_2": "https://download.pytorch.org/models/wide_resnet101_2-32ee1156.pth",
}
_NAME_RE = re.compile(r"^resnext(\d+)_(\d+)x(\d+)d$")


@dataclass(frozen=True)
class ArchSpec:
    """A parsed architecture name."""

    name: str  # canonical name
    family: str  # "imagenet" | "cifar" | "baseline"
    block: str  # "basic" | "bottleneck"
    layers: tuple[int, ...]  # blocks per stage (4 stages ImageNet-style, 3 CIFAR-style)
    groups: int  # cardinality C
    width_per_group: int  # d
    torchvision_name: str | None  # the torchvision.models builder with this exact structure, if any

    @property
    def depth(self) -> int:
        per_block = 2 if self.block == "basic" else 3
        return per_block * sum(self.layers) + 2

    @property
    def cifar(self) -> bool:
        return self.family == "cifar"

    @property
    def has_imagenet_weights(self) -> bool:
        return self.torchvision_name in _WEIGHTS

    @property
    def weights_url(self) -> str | None:
        return _WEIGHTS.get(self.torchvision_name or "")


def _torchvision_equivalent(block: str, layers: tuple[int, ...], groups: int, width: int) -> str | None:
    for tv, (b, ls, g, w) in _TORCHVISION.items():
        if (b, ls, g, w) == (block, layers, groups, width):
            return tv
    return None


_TORCHVISION = dict(_BASELINES)
_TORCHVISION.update(
    {
        "resnext50_32x4d": ("bottleneck", _IMAGENET_LAYERS[50], 32, 4),
        "resnext101_32x8d": ("bottleneck", _IMAGENET_LAYERS[101], 32, 8),
        "resnext101_64x4d": ("bottleneck", _IMAGENET_LAYERS[101], 64, 4),
    }
)


def _bad_name(name: object, why: str = "unknown architecture") -> ModelError:
    return ModelError(f"{name!r}: {why}; valid forms: {NAME_FORMS}")


def parse_arch(name: str) -> ArchSpec:
    """Parse an architecture name; raises ModelError listing the valid forms."""
    if not isinstance(name, str) or not name.strip():
        raise _bad_name(name, "empty architecture name")
    key = name.strip().lower().replace("-", "_")
    if key in _BASELINES:
        block, layers, groups, width = _BASELINES[key]
        return ArchSpec(key, "baseline", block, layers, groups, width, key)
    m = _NAME_RE.match(key)
    if not m:
        raise _bad_name(name)
    depth, groups, width = (int(g) for g in m.groups())
    if not (1 <= groups <= 256 and 1 <= width <= 512):
        raise _bad_name(name, f"cardinality {groups} / width {width}d out of range (C 1..256, d 1..512)")
    canonical = f"resnext{depth}_{groups}x{width}d"
    if depth in _IMAGENET_LAYERS:  # 101 is also 9n+2; the ImageNet-style network wins
        layers = _IMAGENET_LAYERS[depth]
        tv = _torchvision_equivalent("bottleneck", layers, groups, width)
        return ArchSpec(canonical, "imagenet", "bottleneck", layers, groups, width, tv)
    if depth >= 11 and (depth - 2) % 9 == 0:
        if depth > 1001:  # (2999 is 9n+2 too: it was told it was not)
            raise _bad_name(name, f"depth {depth} is over 1001, the deepest CIFAR-style network built here")
        n = (depth - 2) // 9
        return ArchSpec(canonical, "cifar", "bottleneck", (n, n, n), groups, width, None)
    raise _bad_name(name, f"depth {depth} is neither 50/101/152 (ImageNet-style) nor 9n+2 (CIFAR-style: 11, 20, 29, …)")


class CifarResNeXt(ResNet):
    """ResNeXt for small images (Xie et al. 2017, Table 7): 3×3 stem, three stages of n bottlenecks, widths
    256/512/1024 out, grouped width C·d in stage 1 doubling per stage. Attribute layout of torchvision's ResNet."""

    def __init__(self, blocks_per_stage: int, groups: int, width_per_group: int, num_classes: int = 10) -> None:
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = 64
        self.dilation = 1
        self.groups = groups
        # torchvision's Bottleneck width = planes * base_width / 64 * groups; planes is 64 in stage 1
        self.base_width = width_per_group
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        self.layer1 = self._make_layer(Bottleneck, 64, blocks_per_stage)
        self.layer2 = self._make_layer(Bottleneck, 128, blocks_per_stage, stride=2)
        self.layer3 = self._make_layer(Bottleneck, 256, blocks_per_stage, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(256 * Bottleneck.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _forward_impl(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _construct(spec: ArchSpec, num_classes: int) -> nn.Module:
    if spec.cifar:
        return CifarResNeXt(spec.layers[0], spec.groups, spec.width_per_group, num_classes)
    block = BasicBlock if spec.block == "basic" else Bottleneck
    return ResNet(
        block, list(spec.layers), num_classes=num_classes, groups=spec.groups, width_per_group=spec.width_per_group
    )


def build(
    name: str,
    num_classes: int,
    pretrained: str | None = None,
    progress: Progress | None = None,
    freeze_backbone: bool = False,
    stop: Any = None,
) -> nn.Module:
    """Build a network with a fresh `num_classes` head; `pretrained` is None, "imagenet" or a state-dict file.

    Built on the current default device (use `with torch.device("meta"):` for counting only).
    With freeze_backbone every parameter except fc is frozen and the model's `train()` keeps the backbone's
    BatchNorm layers in eval mode (see set_backbone_eval).
    """
    spec = parse_arch(name)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or not 1 <= num_classes <= MAX_CLASSES:
        raise ModelError(f"num_classes={num_classes!r}: must be a whole number from 1 to {MAX_CLASSES:,}")
    model = _construct(spec, num_classes)
    if pretrained is not None and str(pretrained).strip().lower() not in ("", "none"):
        if str(pretrained).strip().lower() == "imagenet":
            path = imagenet_weights_path(spec.name, progress=progress, stop=stop)
        else:
            path = Path(pretrained).expanduser()
        load_weights(model, path)
    if freeze_backbone:
        freeze(model)
    return model


# ---------------------------------------------------------------------------------------------------- backbone


def _head_name(name: str) -> bool:
    return name == "fc" or name.startswith("fc.")


def freeze(model: nn.Module) -> nn.Module:
    """Freeze everything but fc and make `model.train()` keep the backbone's BatchNorm in eval mode."""
    for pname, p in model.named_parameters():
        p.requires_grad_(_head_name(pname))
    if not getattr(model, "_backbone_frozen", False):
        model._backbone_frozen = True
        model.train = types.MethodType(_frozen_train, model)
    set_backbone_eval(model)
    return model


def _frozen_train(self: nn.Module, mode: bool = True) -> nn.Module:
    nn.Module.train(self, mode)
    return set_backbone_eval(self) if mode else self


def set_backbone_eval(model: nn.Module) -> nn.Module:
    """Put every BatchNorm outside fc in eval mode (running statistics stay fixed); call after `model.train()`."""
    for mname, m in model.named_modules():
        if not _head_name(mname) and isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    return model


def _stage_names(model: nn.Module) -> list[str]:
    return [f"layer{i}" for i in range(1, 5) if hasattr(model, f"layer{i}")]


def _unwrap(model: nn.Module) -> nn.Module:
    for attr in ("module", "_orig_mod"):  # DDP / torch.compile wrappers
        while hasattr(model, attr) and isinstance(getattr(model, attr), nn.Module):
            model = getattr(model, attr)
    return model


class Backbone(nn.Module):
    """Images → pooled features [B, F]; shares the modules (and weights) of the model it came from."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.conv1, self.bn1, self.relu = model.conv1, model.bn1, model.relu
        self.maxpool = getattr(model, "maxpool", nn.Identity())
        self.stages = nn.ModuleList(getattr(model, n) for n in _stage_names(model))
        self.avgpool = model.avgpool
        self.out_features = model.fc.in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in self.stages:
            x = stage(x)
        return torch.flatten(self.avgpool(x), 1)


def split_backbone_head(model: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """(backbone giving pooled features [B, F], the fc head); both share the model's weights."""
    model = _unwrap(model)
    return Backbone(model), model.fc


def cam_layer(model: nn.Module) -> nn.Module:
    """The last convolutional stage (layer4 ImageNet-style, layer3 CIFAR-style), for Grad-CAM."""
    model = _unwrap(model)
    names = _stage_names(model)
    if not names:
        raise ModelError(f"{type(model).__name__}: no layer1..layer4 stages; not a ResNet-style model")
    return getattr(model, names[-1])


# ---------------------------------------------------------------------------------------------------- presets

_PRESETS = [
    # name, label, description, default image size, params (1000 classes ImageNet-style / 10 CIFAR-style)
    (
        "resnext11_4x8d",
        "ResNeXt-11 4×8d (tiny, CPU)",
        "Smallest CIFAR-style ResNeXt (1.0 M params, one block per stage); trains from scratch on a laptop CPU.",
        32,
        0,
    ),
    (
        "resnext20_4x8d",
        "ResNeXt-20 4×8d (small, CPU)",
        "Small CIFAR-style ResNeXt (1.4 M params, two blocks per stage) for small images on a CPU.",
        32,
        0,
    ),
    (
        "resnext29_4x16d",
        "ResNeXt-29 4×16d (medium, CPU/GPU)",
        "Mid-size CIFAR-style ResNeXt-29; slow on a CPU, comfortable on a GPU.",
        32,
        0,
    ),
    (
        "resnext29_8x64d",
        "ResNeXt-29 8×64d (paper, CIFAR)",
        "The paper's CIFAR network (Table 7, 34.4 M params, 3.65 % CIFAR-10 error); needs a GPU.",
        32,
        0,
    ),
    (
        "resnext29_16x64d",
        "ResNeXt-29 16×64d (paper, CIFAR)",
        "The paper's larger CIFAR network (Table 7, 68.2 M params, 3.58 % CIFAR-10 error); needs a GPU.",
        32,
        0,
    ),
    (
        "resnext50_32x4d",
        "ResNeXt-50 32×4d (ImageNet)",
        "The classic ResNeXt-50; ImageNet weights (77.6 % top-1) for fine-tuning on photos.",
        224,
        0,
    ),
    (
        "resnext101_32x8d",
        "ResNeXt-101 32×8d (ImageNet)",
        "Large ResNeXt-101 with ImageNet weights (79.3 % top-1); GPU recommended.",
        224,
        0,
    ),
    (
        "resnext101_64x4d",
        "ResNeXt-101 64×4d (ImageNet)",
        "ResNeXt-101 with cardinality 64 and ImageNet weights (83.2 % top-1); GPU recommended.",
        224,
        0,
    ),
    ("resnet18", "ResNet-18 (baseline)", "Small plain ResNet baseline with ImageNet weights.", 224, 0),
    (
        "resnet50",
        "ResNet-50 (baseline)",
        "ResNet-50 baseline with ImageNet weights, same budget as ResNeXt-50.",
        224,
        0,
    ),
]
# Exact parameter counts (checked by tests/core/test_models.py): 1000 classes ImageNet-style, 10 CIFAR-style.
_PARAMS = {
    "resnext11_4x8d": 996_298,
    "resnext20_4x8d": 1_393_226,
    "resnext29_4x16d": 3_172_426,
    "resnext29_8x64d": 34_426_698,
    "resnext29_16x64d": 68_155_210,
    "resnext50_32x4d": 25_028_904,
    "resnext101_32x8d": 88_791_336,
    "resnext101_64x4d": 83_455_272,
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
}


def presets() -> list[dict]:
    """The architectures offered in menus, smallest first within each family."""
    out = []
    for name, label, description, size, _ in _PRESETS:
        spec = parse_arch(name)
        out.append(
            {
                "name": name,
                "label": label,
                "family": spec.family,
                "description": description,
                "default_image_size": size,
                "has_imagenet_weights": spec.has_imagenet_weights,
                "params": _PARAMS.get(name) or count_params(name, 10 if spec.cifar else 1000),
                "params_num_classes": 10 if spec.cifar else 1000,
            }
        )
    return out


def auto_arch(device_type: str, pretrained: str | None = None) -> str:
    """What arch "auto" becomes: a checkpoint's own architecture when starting from one of ours (fine-tuning a
    linear probe's best.pt), ResNeXt-50 from other weights (they exist for the ImageNet-sized family, not the tiny
    CPU nets), else default_arch(device_type). The engine, the app and its summary all use this."""
    ours = checkpoint_model(pretrained)
    if ours:
        return ours[0]
    return "resnext50_32x4d" if pretrained else default_arch(device_type)


def checkpoint_model(pretrained: str | None) -> tuple[str, int] | None:
    """(arch, image_size) when `pretrained` is a ResNeXt Studio checkpoint, else None (ImageNet, a bare state dict,
    a file that is not there or not a checkpoint)."""
    if not pretrained or pretrained == "imagenet":
        return None
    path = Path(pretrained).expanduser()
    try:
        return _checkpoint_model(str(path), path.stat().st_mtime_ns)
    except OSError:
        return None


@functools.lru_cache(maxsize=16)
def _checkpoint_model(path: str, _mtime_ns: int) -> tuple[str, int] | None:
    try:  # memory-mapped: the weights themselves are not read
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as e:  # torch's older (non-zip) format cannot be mapped: read whole, as --checkpoint
                if "mmap" not in str(e):  # does (it had fallen back to ResNeXt-50 and a "wrong architecture?")
                    raise
                obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - not ours, or not a checkpoint at all: the caller's default applies
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("model"), dict) or not isinstance(obj.get("arch"), str):
        return None
    try:
        parse_arch(obj["arch"])
    except ModelError:
        return None
    size = obj.get("image_size")
    return obj["arch"], size if isinstance(size, int) and 8 <= size <= 1024 else 224


def default_arch(device_type: str) -> str:
    """The architecture "auto" resolves to: a small CIFAR-style ResNeXt on a CPU, ResNeXt-50 elsewhere.

    CIFAR-style nets keep full resolution in stage 1, so their cost grows 4× from 32 to 64 px (resnext11_4x8d:
    0.15 → 0.61 G MACs); on a CPU train them at their preset's default_image_size (32).
    """
    return "resnext11_4x8d" if str(device_type).split(":")[0] == "cpu" else "resnext50_32x4d"


# ---------------------------------------------------------------------------------------------------- summary


@functools.lru_cache(maxsize=64)
def count_params(name: str, num_classes: int = 1000) -> int:
    """Exact parameter count, counted on the meta device (no memory, milliseconds)."""
    with torch.device("meta"):
        model = build(name, num_classes)
    return sum(p.numel() for p in model.parameters())


def _leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if not list(m.children())]


@functools.lru_cache(maxsize=64)
def _analyse(name: str, num_classes: int, image_size: int) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = build(name, num_classes)
    model.eval()
    top = ["conv1", "bn1", "relu", "maxpool", *_stage_names(model), "avgpool", "fc"]
    shapes: dict[str, list[int]] = {}
    act_elems = {"conv": 0, "other": 0}
    hooks = []
    for n in top:
        mod = getattr(model, n, None)
        if mod is not None:
            hooks.append(mod.register_forward_hook(lambda _m, _i, out, n=n: shapes.__setitem__(n, list(out.shape))))
    for _, m in _leaf_modules(model):
        if isinstance(m, nn.Identity) or (isinstance(m, nn.ReLU) and m.inplace):
            continue  # no new tensor is stored
        kind = "conv" if isinstance(m, nn.Conv2d | nn.Linear) else "other"
        hooks.append(
            m.register_forward_hook(
                lambda _m, _i, out, kind=kind: act_elems.__setitem__(kind, act_elems[kind] + out.numel())
            )
        )
    x = torch.empty(1, 3, image_size, image_size, device="meta")
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    for h in hooks:
        h.remove()

    def nparams(*mods: str) -> int:
        return sum(
            p.numel() for m in mods if getattr(model, m, None) is not None for p in getattr(model, m).parameters()
        )

    stages = [
        {"name": "stem", "output_shape": shapes.get("maxpool", shapes["relu"])[1:], "params": nparams("conv1", "bn1")}
    ]
    stages += [{"name": s, "output_shape": shapes[s][1:], "params": nparams(s)} for s in _stage_names(model)]
    stages.append({"name": "pool", "output_shape": [shapes["avgpool"][1]], "params": 0})
    stages.append({"name": "fc", "output_shape": shapes["fc"][1:], "params": nparams("fc")})
    params = sum(p.numel() for p in model.parameters())
    return {
        "name": parse_arch(name).name,
        "family": parse_arch(name).family,
        "num_classes": num_classes,
        "image_size": image_size,
        "params": params,
        "trainable_params": params,
        "macs": int(counter.get_total_flops() // 2),
        "stages": stages,
        "feature_dim": model.fc.in_features,
        "_act_elems": dict(act_elems, input=3 * image_size * image_size),
    }


def _check_size(image_size: int) -> None:
    if isinstance(image_size, bool) or not isinstance(image_size, int) or not 16 <= image_size <= 1024:
        raise ModelError(f"image_size={image_size!r}: must be an integer 16..1024")


MAX_CLASSES = 100_000  # classifier outputs (ImageNet-21k has 21,841); beyond, a typo that overflowed torch's sizes


def summary(name: str, num_classes: int = 1000, image_size: int = 224) -> dict:
    """params, trainable_params, macs (multiply-adds of one image, FlopCounterMode flops / 2), stages
    [{name, output_shape (C, H, W without batch), params}], feature_dim. Computed on the meta device."""
    _check_size(image_size)
    info = dict(_analyse(parse_arch(name).name, int(num_classes), int(image_size)))
    info.pop("_act_elems")
    info["stages"] = [dict(s) for s in info["stages"]]
    return info


def estimate_train_memory(name: str, num_classes: int, image_size: int, batch_size: int, amp: bool = False) -> int:
    """Rough peak bytes for one training step with Adam(W).

    Method: 4 bytes per parameter for each of weights, gradients and Adam's two moments (16 B/param), plus
    activations kept for backward: the output of every leaf module except in-place ReLUs and Identities, measured
    by one forward at batch 1 on the meta device, times batch_size (4 bytes each, 2 under AMP), plus the float32
    input batch, plus 10 % for cuDNN workspace and allocator slack. Excludes the CUDA
    context (~0.3-0.5 GB) and the cached data set.
    """
    _check_size(image_size)
    if batch_size < 1:
        raise ModelError(f"batch_size={batch_size!r}: must be ≥ 1")
    info = _analyse(parse_arch(name).name, int(num_classes), int(image_size))
    act = info["_act_elems"]
    per_image = (act["conv"] + act["other"]) * (2 if amp else 4) + act["input"] * 4
    total = 16 * info["params"] + per_image * batch_size
    return int(math.ceil(total * 1.1))


# ---------------------------------------------------------------------------------------------------- weights

_HASH_RE = re.compile(r"-([a-f0-9]+)\.")


class DownloadStopped(ModelError):
    """The stop token was set while the weights downloaded (nothing is kept)."""

    def __init__(self) -> None:
        super().__init__("stopped while downloading the ImageNet weights")


# how a failed download's message goes on (the app words the rest its own way: gui.train_tab._offline_choice)
BY_HAND = "on a computer with internet, "


def download_weights(
    url: str, dest_dir: str | Path, progress: Progress | None = None, timeout: float = 30, stop: Any = None
) -> Path:
    """Download `url` into dest_dir (file name from the URL), unless already there; returns the path.

    The sha256 prefix in torchvision's `name-<hash>.pth` convention is verified; a bad file is deleted, never cached.
    progress(done_bytes, total_bytes) is called per chunk (total 0 when the server does not say). A `stop` token
    (an object with `.stopped`) set meanwhile ends it within a chunk with DownloadStopped (Stop, Cancel and Ctrl-C
    had waited out the whole download, and the run then started).
    """
    fname = os.path.basename(urllib.parse.urlparse(url).path)
    if not fname:
        raise ModelError(f"{url}: no file name in the URL")
    dest_dir = Path(dest_dir)
    dest = dest_dir / fname
    m = _HASH_RE.search(fname)
    expected = m.group(1) if m else None
    damaged = ""
    if dest.is_file():
        if expected is None or _hash_checked(dest, expected):
            return dest
        damaged = f"the cached weights at {dest} were damaged and have been removed"
        try:  # damaged in the cache (cut short by another program, a disk error): every Start failed on it
            dest.unlink()
        except OSError as e:
            raise ModelError(
                f"{dest}: damaged weights in the cache, and they cannot be removed ({e.strerror or e})"
            ) from None
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{fname}.", suffix=".part", dir=dest_dir)
    except OSError as e:
        raise ModelError(f"{dest_dir}: cannot write to the weights cache folder ({e.strerror or e})") from None
    tmp = Path(tmp_name)
    _remove_old_parts(dest_dir, keep=tmp)
    sha = hashlib.sha256()
    done, kind = 0, ""
    by_hand = (
        f"{BY_HAND}download {url} and copy it to {dest} (it is checked, then used offline); "
        "or choose a local weights file (--pretrained PATH), or train from scratch"
    )
    try:
        try:
            with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=timeout) as resp:
                try:
                    total = max(0, int(resp.headers.get("Content-Length") or 0))
                except ValueError:  # (a malformed header: the length is not known)
                    total = 0
                kind = str(resp.headers.get("Content-Type") or "")
                if progress is not None:
                    progress(0, total)
                # whatever has arrived, up to a chunk: a full chunk's read waited a minute on a slow line, and Stop,
                # Cancel, Ctrl-C and closing the window with it
                read = getattr(resp, "read1", resp.read)
                while True:
                    if stop is not None and getattr(stop, "stopped", False):
                        raise DownloadStopped()
                    chunk = read(1 << 18)
                    if not chunk:
                        break
                    f.write(chunk)
                    sha.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
                f.flush()
                runs.fsync(f.fileno())
        except urllib.error.HTTPError as e:
            raise ModelError(
                f"cannot download {url}: HTTP {e.code} {e.reason}; choose a local weights file "
                f"(--pretrained PATH) or train from scratch"
            ) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            reason = getattr(e, "reason", None) or e
            if done:  # (a line that broke after megabytes was said to be no internet)
                raise ModelError(
                    f"cannot download {url}: the connection broke after {done / 1e6:.1f} MB ({reason}); try again, "
                    f"or {by_hand}"
                ) from None
            cached = damaged or f"no cached weights at {dest}"
            raise ModelError(f"cannot download {url} ({reason}): no internet and {cached}; {by_hand}") from None
        except http.client.HTTPException as e:
            raise ModelError(f"cannot download {url}: {type(e).__name__} (connection cut); try again") from None
        except OSError as e:
            raise ModelError(f"{dest}: cannot save the weights ({e.strerror or e})") from None
        if total and done != total:
            raise ModelError(f"cannot download {url}: got {done} of {total} bytes (connection cut); try again")
        digest = sha.hexdigest()
        if expected and not digest.startswith(expected) and kind.startswith("text/html"):
            raise ModelError(
                f"{url}: the network sent a web page, not the weights (a network that asks you to sign in first, "
                f"such as a hotel's or a company's?); sign in, or {by_hand}"
            )
        if expected and not digest.startswith(expected):
            raise ModelError(
                f"{url}: hash mismatch (expected sha256 {expected}…, got {digest[: len(expected)]}…); "
                f"the download was corrupted and was not kept; try again"
            )
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest


PART_AGE_S = 3600.0  # a download's .part file untouched this long was left by a process that was killed


def _remove_old_parts(folder: Path, keep: Path) -> None:
    """Remove the half-downloaded files (`.name.x1y2.part`) killed downloads left in the weights cache (up to a
    model's size each, kept for ever); a download going on now in another process touches its file every chunk."""
    now = time.time()
    with contextlib.suppress(OSError):
        for p in folder.iterdir():
            if p.name.startswith(".") and p.name.endswith(".part") and p != keep:
                with contextlib.suppress(OSError):
                    if now - p.stat().st_mtime > PART_AGE_S:
                        p.unlink()


_HASH_OK: dict[tuple[str, int, int], bool] = {}  # (path, size, mtime) -> the hash checked, once a process


def _hash_checked(path: Path, expected: str) -> bool:
    """Whether a cached weights file's sha256 starts with `expected` (read once a process for one file's state)."""
    try:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in _HASH_OK:
            sha = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    sha.update(chunk)
            _HASH_OK[key] = sha.hexdigest().startswith(expected)
        return _HASH_OK[key]
    except OSError:
        return True  # (unreadable: loading it says so, by name)


def weights_cache_dir() -> Path:
    """torchvision's weights cache: $TORCH_HOME/hub/checkpoints (torch.hub.get_dir() / "checkpoints")."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def imagenet_weights_url(name: str) -> str:
    """Where torchvision's ImageNet weights for `name` are; ModelError when it has none."""
    spec = parse_arch(name)
    if not spec.has_imagenet_weights:
        have = ", ".join(k for k in _WEIGHTS)
        raise ModelError(f"{spec.name} has no ImageNet weights; architectures with ImageNet weights: {have}")
    return spec.weights_url


def imagenet_weights_path(name: str, progress: Progress | None = None, stop: Any = None) -> Path:
    """Path of the torchvision ImageNet weights for `name`, downloading (hash-checked) if not cached."""
    return download_weights(imagenet_weights_url(name), weights_cache_dir(), progress=progress, stop=stop)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict (bare, or under "model"/"state_dict") with weights_only=True; strips "module." prefixes."""
    path = Path(path).expanduser()  # "~/weights/r50.pth" typed in the app
    if not path.is_file():
        raise ModelError(f"{path}: no such weights file (use 'imagenet' or a .pth/.pt state-dict file)")
    try:
        with warnings.catch_warnings():  # torch's note on the pickle protocol of old files is not for the user
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # refused by the safe loader: its reason in a few words, never its advice
        from core.checkpoint import _refusal

        raise ModelError(f"{path}: not a weights file ({_refusal(str(e), path)})") from None
    except Exception:  # noqa: BLE001 - any unpickling failure means "not a weights file"
        from core.runs import not_torch_file, zip_kind

        kind = zip_kind(path)
        if kind == "torchscript":
            why = "a TorchScript export; weights are a state dict or a checkpoint (.pt / .pth), e.g. a run's best.pt"
        elif kind in ("damaged", "torch.save"):
            why = "damaged or incomplete"
        else:
            why = not_torch_file(path, kind)
        raise ModelError(f"{path}: not a weights file ({why})") from None
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if (
        not isinstance(obj, dict)
        or not obj
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    ):
        raise ModelError(
            f"{path}: not a weights file (expected a state dict of tensors, or a checkpoint with a "
            f"'model' or 'state_dict' entry)"
        )
    from core.checkpoint import not_finite, odd_tensor
    from core.runs import zip_damage

    if damage := zip_damage(path):
        raise ModelError(f"{path}: damaged weights file ({damage})")
    if odd := odd_tensor(obj):
        raise ModelError(f"{path}: not a model's weights ({odd})")
    broken = not_finite(obj)
    if broken:  # (a checkpoint saved after its training diverged: the run failed at its first step, "lower the lr")
        raise ModelError(f"{path}: damaged weights (not finite: {broken})")
    out = {}
    for k, v in obj.items():
        for prefix in ("module.", "_orig_mod."):
            while k.startswith(prefix):
                k = k[len(prefix) :]
        out[k] = v
    return out


def load_weights(model: nn.Module, path: str | Path) -> dict:
    """Load a state-dict file into `model`; fc is skipped when its shape differs (new head).

    Returns {"loaded": n_tensors, "skipped": [keys]}. Raises ModelError naming the layer and both shapes on any
    other shape mismatch, and naming the first few keys when keys are missing or unexpected beyond fc.
    """
    state = read_state_dict(path)
    own = model.state_dict()
    skipped = _fitting(own, state, path)
    keep = {k: v for k, v in state.items() if k in own and k not in skipped}
    model.load_state_dict(keep, strict=False)
    return {"loaded": len(keep), "skipped": skipped}


def check_weights(name: str, state: dict[str, torch.Tensor], path: str | Path) -> None:
    """The ModelError load_weights would raise for `state` (read from `path`) in architecture `name`, found
    before anything is built (a model of meta tensors): a training run checks its weights file before it starts."""
    with torch.device("meta"):
        model = _construct(parse_arch(name), 2)  # (the head is new anyway: any class count)
    _fitting(model.state_dict(), state, path, name)


def _fitting(
    own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], path: str | Path, arch: str = ""
) -> list[str]:
    """The keys of `state` to leave out of a model whose state dict is `own` (its head, fc, when it differs),
    or ModelError naming what else does not fit (and `arch`, the architecture the weights were tried in: with
    none chosen, the one picked for them was not said)."""
    skipped = []
    for k, v in state.items():
        if k in own and tuple(own[k].shape) != tuple(v.shape):
            if _head_name(k):
                skipped.append(k)
                continue
            raise ModelError(
                f"{path}: layer {k} has shape {tuple(v.shape)} in the file but "
                f"{tuple(own[k].shape)} in the model{f' ({arch})' if arch else ''}; wrong architecture?"
            )
    missing = [k for k in own if k not in state and not _head_name(k) and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own and not _head_name(k)]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys ({', '.join(missing[:3])}{', …' if len(missing) > 3 else ''})")
        if unexpected:
            parts.append(
                f"unexpected {len(unexpected)} keys ({', '.join(unexpected[:3])}{', …' if len(unexpected) > 3 else ''})"
            )
        # (which architecture they were tried in, as the shape mismatch says: with none chosen it was unsaid)
        raise ModelError(
            f"{path}: weights do not match the architecture{f' ({arch})' if arch else ''}: {'; '.join(parts)}; "
            "weights of another architecture (or depth)?"
        )
    if skipped:  # a new head: skip all of fc, never half of it
        skipped = [k for k in state if _head_name(k)]
    skipped += [k for k in own if _head_name(k) and k not in state]
    return sorted(set(skipped))
