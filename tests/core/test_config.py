"""Settings: JSON round trip, and bad values named by field."""

from __future__ import annotations

import json

import pytest

from core.config import ConfigError, DataConfig, ModelConfig, RunConfig, TrainConfig


def test_round_trip_through_json(tmp_path):
    cfg = RunConfig(
        DataConfig(root="/x", image_size=96, val_split=0.1, augment="strong"),
        ModelConfig(arch="resnext29_8x64d"),
        TrainConfig(epochs=3, lr=0.05, optimizer="sgd"),
    )
    path = tmp_path / "c.json"
    cfg.to_json(path)
    back = RunConfig.from_json(path)
    assert back == cfg
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("train", "epochs", 0),
        ("train", "epochs", 10**20),  # a schedule stretched over that many epochs: never ending
        ("train", "lr", -1.0),
        ("train", "optimizer", "rmsprop"),
        ("data", "val_split", 1.5),
        ("data", "image_size", 3),
        ("train", "monitor", "f1"),
        ("model", "mode", "magic"),
        ("train", "epochs", "ten"),  # hand-written files: a type that does not fit is named, never a traceback
        ("data", "val_split", "0.2"),
        ("train", "lr", None),
        ("data", "image_size", 32.5),
        ("model", "arch", 7),
        ("train", "amp", 1),
        ("train", "seed", 10**20),
        ("data", "seed", 2**60),  # torch takes it, but the per-epoch seeds (seed * 1000 + epoch) would not fit
        ("train", "mixup", 1e308),  # Python's betavariate never returned: a run hung at its first step
        ("train", "cutmix", 10.5),
        ("train", "warmup_epochs", 1e308),  # an OverflowError once the run had its folder
        ("train", "weight_decay", 2.0),  # the loss became NaN and the message blamed the learning rate
    ],
)
def test_bad_value_names_the_field(section, field, value):
    d = RunConfig().to_dict()
    d[section][field] = value
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict(d)
    assert f"{section}.{field}" in str(e.value)
    assert repr(value) in str(e.value)


def test_unknown_setting_is_named():
    with pytest.raises(ConfigError, match=r"train\.epochz: unknown setting"):
        RunConfig.from_dict({"train": {"epochz": 3}})


def test_an_unknown_section_of_a_settings_file_is_named(tmp_path):
    """{"trian": {"batch_size": 4}} trained at batch 32 without a word."""
    p = tmp_path / "typo.json"
    p.write_text(json.dumps({"trian": {"batch_size": 4}}))
    with pytest.raises(ConfigError, match=r"^trian: unknown section"):
        RunConfig.from_json(p)
    saved = RunConfig().to_dict() | {"dataset": {"classes": ["a", "b"]}}  # a run's config.json: read as it is
    p.write_text(json.dumps(saved))
    assert RunConfig.from_json(p) == RunConfig()


def test_linear_mode_needs_weights():
    with pytest.raises(ConfigError, match="mode"):
        RunConfig(model=ModelConfig(mode="linear")).validate()
    RunConfig(model=ModelConfig(mode="linear", pretrained="imagenet")).validate()


def test_bad_json_file(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("{nope")
    with pytest.raises(ConfigError, match="bad.json"):
        RunConfig.from_json(p)


def test_settings_files_in_the_encodings_editors_save(tmp_path):
    """Windows Notepad saves "Unicode" as UTF-16 and UTF-8 with a BOM; both are read. 10.0 means 10."""
    text = '{"train": {"epochs": 10.0}, "data": {"image_size": 32}}'
    for name, raw in (("utf16.json", text.encode("utf-16")), ("bom.json", text.encode("utf-8-sig"))):
        (tmp_path / name).write_bytes(raw)
        cfg = RunConfig.from_json(tmp_path / name)
        assert cfg.train.epochs == 10 and isinstance(cfg.train.epochs, int) and cfg.data.image_size == 32
    (tmp_path / "latin1.json").write_bytes('{"data": {"root": "caf\xe9"}}'.encode("latin-1"))
    with pytest.raises(ConfigError, match="latin1.json: not a text file"):
        RunConfig.from_json(tmp_path / "latin1.json")


def test_settings_summary_speaks_words_not_field_names():
    from core.config import settings_summary

    cfg = RunConfig(
        DataConfig(image_size=224, augment="light"),
        ModelConfig(arch="resnext50_32x4d", pretrained="/w/imagenet.pth", mode="finetune"),
        TrainConfig(batch_size=32, lr=0.001, label_smoothing=0.1, warmup_epochs=1.0, class_weights=True),
    )
    assert settings_summary(cfg.to_dict()) == (
        "resnext50_32x4d, 224 px, batch 32, lr 0.001 (adamw, cosine), augmentation light, label smoothing 0.1, "
        "warm-up 1 epoch, class weights, fine-tune from imagenet.pth"
    )
    cfg.train.scheduler = "step"  # a warm-up is the cosine's: the step schedule has none to list
    assert "warm-up" not in settings_summary(cfg.to_dict())


def test_a_negative_seed_of_an_older_run_still_loads():
    d = RunConfig().to_dict()
    d["train"]["seed"], d["data"]["seed"] = -1, -7  # accepted before seeds were checked: such runs must resume
    cfg = RunConfig.from_dict(d)
    assert (cfg.train.seed, cfg.data.seed) == (-1, -7)


def test_the_device_guess_needs_no_torch_and_reads_the_platform(monkeypatch):
    import os
    import platform
    import shutil
    import sys

    from core.config import likely_device_type

    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(platform, "machine", lambda: "arm64")
    assert likely_device_type() == "mps"
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    assert likely_device_type() == "cpu"
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(os.path, "exists", lambda p: p == "/proc/driver/nvidia/version")
    assert likely_device_type() == "cuda"
    monkeypatch.setattr(os.path, "exists", lambda p: False)
    assert likely_device_type() == "cpu"
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/nvidia-smi" if name == "nvidia-smi" else None)
    assert likely_device_type() == "cuda"


def test_auto_presets_are_copies():
    from core.config import CPU_PRESET, GPU_PRESET, TRANSFER_PRESET, auto_preset

    assert auto_preset("cpu") == CPU_PRESET and auto_preset("cpu", pretrained=True) == TRANSFER_PRESET
    assert auto_preset("cuda") == auto_preset("mps") == GPU_PRESET
    auto_preset("cpu")["image_size"] = 999
    assert CPU_PRESET["image_size"] == 32


def test_a_choice_out_of_a_list_names_the_choices_as_words():
    """The reasons read "one of ('adam', 'adamw', 'sgd')": Python's tuple, in a message for people."""
    d = RunConfig().to_dict()
    d["train"]["optimizer"] = "rmsprop"
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict(d)
    assert str(e.value).endswith("one of adam, adamw, sgd")
    d = RunConfig().to_dict()
    d["train"]["device"] = "tpu"
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict(d)
    assert str(e.value).endswith("one of auto, cpu, cuda, cuda:N, mps")


def test_a_device_written_in_capitals_in_a_config_file_is_taken():
    d = RunConfig().to_dict()
    d["train"]["device"] = " CPU"
    assert RunConfig.from_dict(d).train.device == "cpu"


def test_an_architecture_pasted_with_spaces_is_stored_without_them():
    """ "resnext50_32x4d " was stored in config.json and shown as "resnext50_32x4d :"."""
    from core.cli import build_parser

    cfg = RunConfig(model=ModelConfig(arch=" resnext50_32x4d ")).validate()
    assert cfg.model.arch == "resnext50_32x4d"
    for argv in (["summary", "--arch", "resnext50_32x4d "], ["train", "--data", "d", "--arch", " resnext11_4x8d"]):
        assert build_parser().parse_args(argv).arch == argv[-1].strip()


def test_settings_a_newer_version_saved_name_their_file_and_say_so(tmp_path):
    """A run whose config.json or checkpoint holds a setting a newer version added could be neither evaluated nor
    resumed, with "data.mixup_schedule: unknown setting", naming no file. It is still refused (ignored, it would
    evaluate or train on without it), but said as what it likely is; a typed settings file keeps its typo error."""
    saved = RunConfig().to_dict()
    saved["data"]["mixup_schedule"] = "linear"
    saved["train"]["ema_decay"] = 0.999
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict(saved, source=tmp_path / "run" / "last.pt")
    text = str(e.value)
    assert text.startswith(f"{tmp_path / 'run' / 'last.pt'}: data.mixup_schedule, train.ema_decay: unknown settings")
    assert "may have been written by a newer version of ResNeXt Studio" in text
    with pytest.raises(ConfigError, match=r"^data\.mixup_schedule, train\.ema_decay: unknown settings \(.*newer"):
        RunConfig.from_dict(saved)  # (no file given: what it likely is, all the same)
    bad = RunConfig().to_dict()
    bad["train"]["lr"] = -1.0
    with pytest.raises(ConfigError, match=r"^/runs/x/config\.json: train\.lr=-1\.0: must be > 0"):
        RunConfig.from_dict(bad, source="/runs/x/config.json")  # (any problem of a saved file names it)
    typed = tmp_path / "mine.json"
    typed.write_text(json.dumps({"data": {"mixup_schedule": "linear"}}))
    with pytest.raises(ConfigError) as e:
        RunConfig.from_json(typed)
    assert str(e.value) == "data.mixup_schedule: unknown setting"  # (a typo in the user's own file)
