"""Tests for core.models: names, exact sizes, CIFAR-style ResNeXt, summaries, backbone/head split, freezing."""

import pytest
import torch
import torchvision
from torch import nn

from core import models as M

EXACT_PARAMS = [
    ("resnext50_32x4d", 1000, 25_028_904),
    ("resnet50", 1000, 25_557_032),
    ("resnext50_8x14d", 1000, 25_603_016),
    ("resnext50_2x40d", 1000, 25_425_000),
    ("resnext50_4x24d", 1000, 25_292_968),
    ("resnext50_1x64d", 1000, 25_557_032),
    ("resnext101_32x8d", 1000, 88_791_336),
    ("resnext101_64x4d", 1000, 83_455_272),
    ("resnet18", 1000, 11_689_512),
    ("resnext29_8x64d", 10, 34_426_698),
    ("resnext29_16x64d", 10, 68_155_210),
]


@pytest.mark.parametrize(("name", "classes", "params"), EXACT_PARAMS)
def test_exact_param_counts(name, classes, params):
    with torch.device("meta"):
        model = M.build(name, classes)
    assert sum(p.numel() for p in model.parameters()) == params


@pytest.mark.parametrize(
    ("name", "classes", "size", "gmacs"),
    [
        ("resnext50_32x4d", 1000, 224, 4.23),
        ("resnet50", 1000, 224, 4.09),
        ("resnet18", 1000, 224, 1.81),
        ("resnext29_8x64d", 10, 32, 5.39),
        ("resnext29_16x64d", 10, 32, 10.69),
    ],
)
def test_summary_macs_and_params(name, classes, size, gmacs):
    s = M.summary(name, classes, size)
    assert abs(s["macs"] / 1e9 - gmacs) <= 0.01
    assert s["params"] == s["trainable_params"] == M.count_params(name, classes)
    assert sum(st["params"] for st in s["stages"]) == s["params"]
    assert s["stages"][-1] == {"name": "fc", "output_shape": [classes], "params": s["stages"][-1]["params"]}


def test_summary_stage_shapes():
    s = M.summary("resnext50_32x4d")
    shapes = {st["name"]: st["output_shape"] for st in s["stages"]}
    assert shapes["stem"] == [64, 56, 56] and shapes["layer4"] == [2048, 7, 7] and shapes["pool"] == [2048]
    c = M.summary("resnext29_8x64d", 10, 32)
    shapes = {st["name"]: st["output_shape"] for st in c["stages"]}
    assert shapes == {
        "stem": [64, 32, 32],
        "layer1": [256, 32, 32],
        "layer2": [512, 16, 16],
        "layer3": [1024, 8, 8],
        "pool": [1024],
        "fc": [10],
    }
    with pytest.raises(M.ModelError, match="image_size"):
        M.summary("resnet18", 10, 8)


def test_parse_arch_forms():
    assert M.parse_arch("ResNeXt50_32x4d").name == "resnext50_32x4d"
    s = M.parse_arch("resnext29_8x64d")
    assert (s.family, s.layers, s.groups, s.width_per_group, s.depth) == ("cifar", (3, 3, 3), 8, 64, 29)
    assert M.parse_arch("resnext11_4x8d").layers == (1, 1, 1)
    big = M.parse_arch("resnext101_32x8d")
    assert big.family == "imagenet" and big.torchvision_name == "resnext101_32x8d" and big.has_imagenet_weights
    assert M.parse_arch("resnext50_8x14d").torchvision_name is None
    assert M.parse_arch("resnext50_1x64d").torchvision_name == "resnet50"
    assert M.parse_arch("resnet18").family == "baseline"


@pytest.mark.parametrize("bad", ["vgg16", "", "resnext30_4x8d", "resnext29_0x8d", "resnext50_32x4", "resnext5_1x1d"])
def test_bad_names_list_valid_forms(bad):
    with pytest.raises(M.ModelError, match="valid forms") as e:
        M.parse_arch(bad)
    assert "\n" not in str(e.value)


def test_a_cifar_depth_over_the_limit_is_told_the_limit():
    """2999 is 9n+2: it was told it was "neither 50/101/152 nor 9n+2"."""
    assert M.parse_arch("resnext1001_4x8d").layers == (111, 111, 111)
    with pytest.raises(M.ModelError, match="depth 2999 is over 1001, the deepest CIFAR-style network built here"):
        M.parse_arch("resnext2999_4x8d")


def test_bad_num_classes():
    with pytest.raises(M.ModelError, match="num_classes"):
        M.build("resnext11_4x8d", 0)


def test_cifar_model_layout_and_forward():
    torch.manual_seed(0)
    model = M.build("resnext11_4x8d", 7)
    assert isinstance(model, torchvision.models.ResNet)
    for attr in ("conv1", "bn1", "relu", "layer1", "layer2", "layer3", "avgpool", "fc"):
        assert hasattr(model, attr)
    assert isinstance(model.maxpool, nn.Identity) and not hasattr(model, "layer4")
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1) and model.conv1.out_channels == 64
    assert model.layer2[0].conv2.stride == (2, 2) and model.layer2[0].conv2.groups == 4
    assert model.layer1[0].conv2.out_channels == 32 and model.layer3[0].conv2.out_channels == 128
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 7) and torch.isfinite(out).all()


def test_cifar_paper_widths():
    with torch.device("meta"):
        model = M.build("resnext29_8x64d", 10)
    assert [
        model.layer1[0].conv2.out_channels,
        model.layer2[0].conv2.out_channels,
        model.layer3[0].conv2.out_channels,
    ] == [512, 1024, 2048]
    assert [
        model.layer1[-1].conv3.out_channels,
        model.layer2[-1].conv3.out_channels,
        model.layer3[-1].conv3.out_channels,
    ] == [256, 512, 1024]
    assert len(model.layer1) == len(model.layer2) == len(model.layer3) == 3


def test_torchvision_state_dict_loads_unchanged():
    torch.manual_seed(0)
    tv = torchvision.models.resnext50_32x4d(num_classes=5)
    ours = M.build("resnext50_32x4d", 5)
    ours.load_state_dict(tv.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(tv.state_dict())
    x = torch.randn(1, 3, 32, 32)
    tv.eval(), ours.eval()
    with torch.no_grad():
        assert torch.allclose(tv(x), ours(x))


def test_our_checkpoint_model_loads_into_plain_torchvision(tmp_path):
    ours = M.build("resnet18", 3)
    path = tmp_path / "best.pt"
    torch.save({"format": "resnext-studio/1", "model": ours.state_dict(), "arch": "resnet18"}, path)
    tv = torchvision.models.resnet18(num_classes=3)
    tv.load_state_dict(torch.load(path, weights_only=True)["model"], strict=True)
    assert torch.equal(tv.conv1.weight, ours.conv1.weight)


def test_freeze_backbone_leaves_only_fc_trainable():
    model = M.build("resnext11_4x8d", 3, freeze_backbone=True)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["fc.weight", "fc.bias"]
    model.train()
    assert model.training and model.fc.training
    assert not model.bn1.training and not model.layer3[0].bn2.training
    before = model.bn1.running_mean.clone()
    model(torch.randn(2, 3, 32, 32) * 3 + 1)
    assert torch.equal(before, model.bn1.running_mean)  # frozen statistics
    model.eval()
    assert not model.fc.training


def test_split_backbone_head_and_cam_layer():
    torch.manual_seed(0)
    model = M.build("resnext11_4x8d", 4).eval()
    backbone, head = M.split_backbone_head(model)
    assert head is model.fc and isinstance(head, nn.Linear)
    assert not any(n.startswith("fc") for n, _ in backbone.named_parameters())
    assert backbone.conv1.weight is model.conv1.weight
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = backbone(x)
        assert feats.shape == (2, 1024)
        assert torch.allclose(head(feats), model(x), atol=1e-5)
    assert M.cam_layer(model) is model.layer3
    with torch.device("meta"):
        big = M.build("resnext50_32x4d", 2)
    assert M.cam_layer(big) is big.layer4
    assert M.split_backbone_head(big)[0].out_features == 2048


def test_presets_and_default_arch():
    ps = M.presets()
    names = [p["name"] for p in ps]
    for want in (
        "resnext50_32x4d",
        "resnext101_32x8d",
        "resnext101_64x4d",
        "resnext29_8x64d",
        "resnext29_16x64d",
        "resnet18",
        "resnet50",
        M.default_arch("cpu"),
    ):
        assert want in names
    for p in ps:
        assert set(p) >= {
            "name",
            "label",
            "family",
            "description",
            "default_image_size",
            "has_imagenet_weights",
            "params",
        }
        assert p["family"] in ("imagenet", "cifar", "baseline")
        assert p["params"] == M.count_params(p["name"], 10 if p["family"] == "cifar" else 1000)
        assert p["has_imagenet_weights"] == (p["family"] != "cifar")
    assert M.default_arch("cuda") == "resnext50_32x4d"
    assert M.parse_arch(M.default_arch("cpu")).family == "cifar"


def test_estimate_train_memory():
    small = M.estimate_train_memory("resnext50_32x4d", 10, 224, 8)
    big = M.estimate_train_memory("resnext50_32x4d", 10, 224, 64)
    amp = M.estimate_train_memory("resnext50_32x4d", 10, 224, 64, amp=True)
    params = M.count_params("resnext50_32x4d", 10)
    assert 16 * params < small < big and amp < big
    assert 2e9 < M.estimate_train_memory("resnext50_32x4d", 1000, 224, 32) < 12e9
