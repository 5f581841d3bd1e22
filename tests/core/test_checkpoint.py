"""Checkpoint save is atomic, load is weights-only and refuses foreign or malicious files."""

import os
import random

import numpy as np
import pytest
import torch

from core import checkpoint, runs
from core.checkpoint import CheckpointError


def _payload(value: float = 1.0) -> dict:
    return {
        "format": checkpoint.FORMAT,
        "model": {"w": torch.full((2, 2), value)},
        "arch": "resnet18",
        "num_classes": 2,
        "class_names": ["a", "b"],
        "image_size": 32,
        "resize_size": 32,
        "mean": [0.5] * 3,
        "std": [0.2] * 3,
        "config": {"train": {"lr": 0.1}},
        "epoch": 1,
        "metrics": {"val_acc": 0.5, "val_loss": None},
        "history": [{"epoch": 1, "val_acc": 0.5}],
    }


def test_round_trip_with_training_state(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    p = _payload()
    p.update(
        optimizer=opt.state_dict(),
        scheduler=sched.state_dict(),
        plateau=plateau.state_dict(),
        scaler=scaler.state_dict(),
        rng=checkpoint.rng_state(),
    )
    path = tmp_path / "last.pt"
    checkpoint.save(path, p)
    # the file loads with plain torch.load(weights_only=True) too, not only through our loader
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == checkpoint.FORMAT
    back = checkpoint.load(path)
    assert torch.equal(back["model"]["w"], p["model"]["w"])
    assert back["optimizer"]["param_groups"][0]["momentum"] == 0.9


def test_rng_state_restores_all_generators(tmp_path):
    path = tmp_path / "rng.pt"
    checkpoint.save(path, {**_payload(), "rng": checkpoint.rng_state()})
    a = (torch.rand(3), random.random(), np.random.rand())
    checkpoint.set_rng_state(checkpoint.load(path)["rng"])
    b = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(a[0], b[0]) and a[1] == b[1] and a[2] == b[2]


def test_interrupted_save_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "best.pt"
    checkpoint.save(path, _payload(1.0))

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, _payload(2.0))
    monkeypatch.undo()
    assert torch.equal(checkpoint.load(path)["model"]["w"], torch.full((2, 2), 1.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]

    def half_write(obj, f, *a, **k):  # what torch's writer says when the disk fills up
        f.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1897216 vs 1897112")

    monkeypatch.setattr(torch, "save", half_write)
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda p: shutil_usage(free=5 * 2**20))
    with pytest.raises(OSError) as e:
        checkpoint.save(path, _payload(3.0))
    assert str(e.value) == (
        "[Errno 28] could not write it: no space left on device (it needs about 1 KB; 5 MB free; the file it "
        f"replaces is kept): '{path}'"
    )
    monkeypatch.undo()
    assert torch.equal(checkpoint.load(path)["model"]["w"], torch.full((2, 2), 1.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]


def test_a_full_disk_names_the_checkpoint_and_says_nothing_was_written_when_there_was_no_file(tmp_path, monkeypatch):
    """On a full file system the close itself fails with a bare ENOSPC (no file name, or the temp file's)."""
    import errno

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    path = tmp_path / "last.pt"
    monkeypatch.setattr(os, "fsync", full)
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda p: shutil_usage(free=0))
    with pytest.raises(OSError) as e:
        checkpoint.save(path, _payload(1.0))
    assert e.value.filename == str(path) and e.value.errno == errno.ENOSPC
    assert e.value.strerror == (
        "could not write it: no space left on device (it needs about 1 KB; 0 MB free; no file was written)"
    )
    big = {"model": {"w": torch.zeros(3 * 2**20, dtype=torch.uint8)}}  # (3 MB of weights: said in MB)
    with pytest.raises(OSError, match=r"\(it needs about 3 MB; 0 MB free; no file was written\)"):
        checkpoint.save(path, big)
    assert list(tmp_path.iterdir()) == []  # no temp file left either


def test_what_stopped_torchs_writer_is_said_not_its_unexpected_pos(tmp_path, monkeypatch):
    """torch's zip writer turns whatever stops it into "unexpected pos …": a second Ctrl-C in the write ended a
    run as failed, "could not write it: [enforce fail …]" (an interruption, exit 130, is what it was), and a
    file-size limit said the same instead of "File too large"."""
    import errno

    path = tmp_path / "last.pt"
    checkpoint.save(path, _payload(1.0))

    def stopped_by(cause):
        def write(obj, f, *a, **k):
            f.write(b"partial")
            try:
                raise cause
            except BaseException:
                raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 33600 vs 33496")  # noqa: B904 - (as torch does: the cause in __context__ only)

        return write

    monkeypatch.setattr(torch, "save", stopped_by(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, _payload(2.0))
    monkeypatch.setattr(torch, "save", stopped_by(OSError(errno.EFBIG, "File too large")))
    with pytest.raises(OSError) as e:
        checkpoint.save(path, _payload(3.0))
    assert e.value.errno == errno.EFBIG and e.value.filename == str(path)
    assert e.value.strerror == "could not write it: File too large"
    monkeypatch.undo()
    assert torch.equal(checkpoint.load(path)["model"]["w"], torch.full((2, 2), 1.0))  # kept, and no temp file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def shutil_usage(free: int):
    import shutil

    return shutil._ntuple_diskusage(10 * free, 9 * free, free)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_pickle_is_refused(tmp_path):
    marker = str(tmp_path / "pwned")
    path = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "model": _Evil(marker)}, path)
    with pytest.raises(CheckpointError, match="not a ResNeXt Studio checkpoint") as refused:
        checkpoint.load(path)
    assert not os.path.exists(marker)
    assert "which the safe loader refuses to load" in str(refused.value)  # the reason, in a few words
    assert "weights_only" not in str(refused.value)  # never torch's advice to turn the safe loader off
    # the file really is dangerous: the unsafe loader would have run its code
    torch.load(path, weights_only=False)
    assert os.path.exists(marker)


def test_foreign_files_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        checkpoint.load(tmp_path / "missing.pt")
    torch.save({"state_dict": {}, "epoch": 3}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError) as refused:
        checkpoint.load(tmp_path / "other.pt")
    assert str(refused.value) == (
        f"{tmp_path / 'other.pt'}: not a ResNeXt Studio checkpoint (another program's file: it holds 'state_dict', "
        "'epoch')"
    )
    # torchvision's weights file: weights alone, said so (it had said "no 'format' key"), and where it is of use
    torch.save(torch.nn.Linear(2, 3).state_dict(), tmp_path / "weights.pt")
    with pytest.raises(CheckpointError) as refused:
        checkpoint.load(tmp_path / "weights.pt")
    said = str(refused.value)
    assert said.startswith(f"{tmp_path / 'weights.pt'}: a model's weights alone (a state dict of 2 tensors")
    assert "choose the file as Pretrained (--pretrained PATH)" in said
    torch.save({"weight": torch.zeros(2)}, tmp_path / "one.pt")  # ("a state dict of 1 tensors")
    with pytest.raises(CheckpointError, match=r"a state dict of 1 tensor: no architecture"):
        checkpoint.load(tmp_path / "one.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a dict"):
        checkpoint.load(tmp_path / "list.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="junk.pt"):
        checkpoint.load(tmp_path / "junk.pt")


def test_plain_state_dict_strips_compile_prefix():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))

    class Wrapper(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self._orig_mod = m

    sd = checkpoint.plain_state_dict(Wrapper(model))
    assert set(sd) == {"0.weight", "0.bias"}


def _state(device="cpu"):
    w = torch.randn(4, 3, 2, 2, device=device).contiguous(memory_format=torch.channels_last)
    t = torch.randn(3, 4, device=device).t()  # (not dense in any layout the buffers keep: made contiguous)
    return {
        "model": {"w": w, "b": torch.arange(3.0, device=device), "t": t},
        "opt": [(torch.ones(2, device=device), 5)],
    }


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_a_snapshot_into_reused_buffers_is_a_copy_that_the_next_snapshot_overwrites(device):
    """The write-behind's snapshot: the same CPU tensors each time (pinned for CUDA ones), holding the values of
    the moment it was taken, with the source's strides; a tensor whose shape changed gets a new buffer."""
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    state, buffers = _state(device), {}
    first = checkpoint.snapshot(state, buffers)
    w0 = first["model"]["w"]
    assert w0.device.type == "cpu" and w0.is_pinned() == (device == "cuda")
    assert torch.equal(w0, state["model"]["w"].cpu()) and w0.stride() == state["model"]["w"].stride()
    assert isinstance(first["opt"], list) and isinstance(first["opt"][0], tuple) and first["opt"][0][1] == 5
    kept = w0.clone()
    state["model"]["w"].add_(1)  # training goes on: the snapshot does not move
    assert torch.equal(first["model"]["w"], kept)
    state["model"]["b"] = torch.arange(5.0, device=device)
    second = checkpoint.snapshot(state, buffers)
    assert second["model"]["w"] is w0 and torch.equal(w0, kept + 1)  # reused: the first snapshot is gone
    assert second["model"]["b"].shape == (5,) and torch.equal(second["model"]["b"], torch.arange(5.0))
    assert second["opt"][0][0] is first["opt"][0][0] and second["model"]["t"] is first["model"]["t"]
    assert torch.equal(second["model"]["t"], state["model"]["t"].cpu())
    back = checkpoint.snapshot(second)  # without buffers: fresh copies, even of CPU tensors
    assert back["model"]["w"] is not w0 and torch.equal(back["model"]["w"], w0)


def test_garbage_files_are_named_not_crashes(tmp_path):
    from core.checkpoint import CheckpointError, load

    for name, content in (("notes.pt", b"hello"), ("empty.pt", b""), ("zip.pt", b"PK\x03\x04garbage")):
        p = tmp_path / name
        p.write_bytes(content)
        with pytest.raises(CheckpointError, match=name):
            load(p)


def test_a_checkpoint_cut_short_is_called_damaged_and_other_files_say_what_they_are_without_torchs_warnings(tmp_path):
    """A copy that did not finish was "not a ResNeXt Studio checkpoint (unreadable: [Errno 22] …)"; a pickle file
    brought torch's two-line protocol warning before the refusal; a TorchScript export, or another zip, is not
    "damaged"."""
    import pickle
    import warnings

    from core import models
    from core.checkpoint import load

    whole = tmp_path / "whole.pt"
    checkpoint.save(whole, checkpoint.payload(models.build("resnext11_2x4d", 3), "resnext11_2x4d", list("abc"), 32))
    data = whole.read_bytes()
    for cut in (1024, 5000, len(data) // 2, len(data) - 100):  # (at 5000 bytes torch said "Invalid argument")
        part = tmp_path / f"cut-{cut}.pt"
        part.write_bytes(data[:cut])
        with pytest.raises(CheckpointError) as e:
            load(part)
        assert str(e.value).startswith(f"{part}: damaged or incomplete checkpoint file (unreadable: "), cut
    plain = tmp_path / "plain.pt"
    plain.write_bytes(pickle.dumps({"format": "x"}, protocol=4))
    exported, archive = tmp_path / "model.pt", tmp_path / "photos.zip"  # whole zip files, of other kinds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch.jit's deprecation)
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), exported)
    import zipfile

    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.txt", "hello")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (any warning fails the test)
        with pytest.raises(CheckpointError, match="plain.pt: not a ResNeXt Studio checkpoint"):
            load(plain)
        with pytest.raises(CheckpointError, match="model.pt: a TorchScript export .*, not a checkpoint; use the run"):
            load(exported)
        with pytest.raises(CheckpointError, match="photos.zip: not a ResNeXt Studio checkpoint"):
            load(archive)
    # the quick look (nothing unpickled) refuses what load refuses, in load's words, and passes what may be one
    assert runs.not_a_checkpoint(whole) == "" and runs.not_a_checkpoint(tmp_path / "cut-5000.pt") == ""
    for p in (exported, archive):
        with pytest.raises(CheckpointError) as e:
            load(p)
        assert runs.not_a_checkpoint(p) == str(e.value)
    assert runs.not_a_checkpoint(plain).startswith(f"{plain}: not a ResNeXt Studio checkpoint (")


@pytest.mark.parametrize(
    "key, value, why",
    [
        ("arch", "resnext_from_the_future", "architecture 'resnext_from_the_future' is not one this version knows"),
        ("mean", "xyz", "its mean is not three numbers"),
        ("std", [0.2, float("nan"), 0.2], "its std is not three numbers"),
        ("image_size", 100000, "image_size 100000"),  # would only run the machine out of memory
        ("model", {"w": torch.tensor([1.0, float("nan")])}, "its weights are not finite (NaN or inf in w)"),
        ("class_names", ["x", "x"], "class name 'x' given twice"),  # (predict answered "x" for either output)
        ("class_names", [1, None], "class name 1 is not a name"),  # (a hand-edited list loaded, answered None)
        ("class_names", ["x", ""], "class name '' is not a name"),
        ("std", [0.2, 0.0, 0.2], "its std [0.2, 0.0, 0.2] is not above 0"),  # (every answer was nan%)
        # hand-edited configs ended in tracebacks (TypeError in trained_data_root, AttributeError in evaluate)
        ("config", {"data": {"root": 123}}, "its config's data.root is not a folder name ('123')"),
        ("config", {"data": "x"}, "its config's data is not a mapping ('x')"),
    ],
)
def test_a_checkpoint_every_reader_would_trip_on_is_refused_with_the_reason(tmp_path, key, value, why):
    path = tmp_path / "odd.pt"
    torch.save({**_payload(), key: value}, path)
    with pytest.raises(CheckpointError) as e:
        checkpoint.load(path)
    assert str(e.value) == f"{path}: damaged checkpoint ({why})"


def test_a_checkpoint_whose_bytes_no_longer_match_their_checksums_is_called_damaged(tmp_path):
    """Bytes flipped in its weights (a copy gone wrong, a failing disk): torch's reader checks no checksum, so it
    loaded, and evaluated at 16.7% where the run had 66.7%."""
    from tests.helpers import flip_a_weight_byte

    good, bad = tmp_path / "best.pt", tmp_path / "flipped.pt"
    torch.save(_payload(), good)
    flip_a_weight_byte(good, bad)
    assert torch.load(bad, weights_only=True)["model"]["w"].isfinite().all()  # (it unpickles, finite: no other tell)
    with pytest.raises(CheckpointError) as e:
        checkpoint.load(bad)
    assert str(e.value).startswith(f"{bad}: damaged checkpoint file (its part best/data/")  # (torch.save's names)
    assert str(e.value).endswith("no longer matches its checksum: a copy gone wrong, or a failing disk)")
    assert checkpoint.load(good)["class_names"] == ["a", "b"]
    from core import models

    with pytest.raises(models.ModelError, match=r"flipped.pt: damaged weights file \(its part best/data/"):
        models.read_state_dict(bad)  # (as pretrained weights, the same)


@pytest.mark.parametrize(
    "tensor, said",
    [
        (torch.eye(2).to_sparse(), "w is a sparse tensor"),
        (torch.ones(2, 2).to(torch.float8_e4m3fn), "w holds float8_e4m3fn numbers"),
        (torch.ones(2, 2, dtype=torch.complex64), "w holds complex64 numbers"),
    ],
)
def test_weights_no_model_holds_are_refused_with_their_name_not_a_traceback(tmp_path, tensor, said):
    """A crafted file's sparse or float8 weights: the finite check raised NotImplementedError in every command."""
    path = tmp_path / "odd.pt"
    torch.save({**_payload(), "model": {"w": tensor}}, path)
    with pytest.raises(CheckpointError) as e:
        checkpoint.load(path)
    assert str(e.value) == f"{path}: damaged checkpoint (its weights are no model's: {said})"
    from core import models

    with pytest.raises(models.ModelError) as e:  # as pretrained weights, the same
        models.read_state_dict(path)
    assert str(e.value) == f"{path}: not a model's weights ({said})"


def test_a_path_that_is_no_file_is_said_to_be_what_it_is(tmp_path):
    """A named pipe given as the checkpoint was "no such checkpoint file", though it was there."""
    with pytest.raises(CheckpointError, match=r"nope.pt: no such checkpoint file$"):
        checkpoint.load(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match=r": a folder, not a checkpoint file$"):
        checkpoint.load(tmp_path)
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.pt")
        with pytest.raises(CheckpointError, match=r"pipe.pt: a named pipe, not a checkpoint file$"):
            checkpoint.load(tmp_path / "pipe.pt")


def test_a_later_versions_checkpoint_format_is_named_not_read_as_this_ones(tmp_path):
    path = tmp_path / "future.pt"
    torch.save({**_payload(), "format": "resnext-studio/99"}, path)
    with pytest.raises(CheckpointError) as e:
        checkpoint.load(path)
    assert str(e.value) == (
        f"{path}: format 'resnext-studio/99', not '{checkpoint.FORMAT}' this version reads (made by a newer "
        "ResNeXt Studio?)"
    )


def test_a_checkpoint_that_cannot_be_read_or_is_an_onnx_model_is_called_what_it_is(tmp_path, monkeypatch):
    """A file the user may not read was called "damaged or incomplete"; an ONNX export given as the checkpoint
    was "not a file saved by torch.save". (Unreadable simulated: the tests may run as root.)"""
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"\x08\x08\x12\x07pytorch\x1a\x032.1" + bytes(range(200)))
    with pytest.raises(
        CheckpointError, match=r"model\.onnx: not a ResNeXt Studio checkpoint \(an ONNX model, not.*use"
    ):
        checkpoint.load(onnx)
    named_pt = tmp_path / "model.pt"  # known by its bytes, not its name
    named_pt.write_bytes(onnx.read_bytes())
    with pytest.raises(CheckpointError, match=r"model\.pt: not a ResNeXt Studio checkpoint \(an ONNX model, not"):
        checkpoint.load(named_pt)
    path = tmp_path / "best.pt"
    torch.save(_payload(), path)

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(torch, "load", refused)
    monkeypatch.setattr(checkpoint, "open", refused, raising=False)  # (the file's bytes cannot be read either)
    with pytest.raises(CheckpointError) as e:
        checkpoint.load(path)
    assert str(e.value) == f"{path}: cannot read the checkpoint file (Permission denied)"
