"""Tests for weights handling in core.models: local state-dict files and hash-checked downloads (loopback only)."""

import contextlib
import hashlib
import http.server
import io
import os
import threading
import time
import urllib.error

import pytest
import torch

from core import models as M


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """Point the torch hub cache at tmp_path; any non-loopback URL fails like being offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    real = M.urllib.request.urlopen

    def guarded(url, *a, **kw):
        if not str(getattr(url, "full_url", url)).startswith("http://127.0.0.1:"):
            raise urllib.error.URLError("network disabled in tests")
        return real(url, *a, **kw)

    monkeypatch.setattr(M.urllib.request, "urlopen", guarded)


def _tiny_state_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save({"w": torch.arange(300_000, dtype=torch.float32)}, buf)
    return buf.getvalue()


class _Loopback:
    """An HTTP server on the loopback interface, on a thread of its own, answering with `handler`."""

    def _serve(self, handler: type) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class _Server(_Loopback):
    def __init__(self, files: dict[str, bytes]):
        self.files, self.requests = files, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.requests.append(self.path)
                body = outer.files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                # a download stopped part-way (as tests do): its traceback on the server's thread was noise
                with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._serve(Handler)


@pytest.fixture
def server():
    body = _tiny_state_bytes()
    name = f"tiny-{hashlib.sha256(body).hexdigest()[:8]}.pth"
    bad = bytearray(body)
    bad[len(bad) // 2] ^= 0xFF
    srv = _Server({name: body, f"corrupt/{name}": bytes(bad)})
    srv.name, srv.body = name, body
    yield srv
    srv.close()


def test_download_verifies_caches_and_reports_progress(server, tmp_path):
    calls = []
    dest = tmp_path / "cache"
    path = M.download_weights(server.base + server.name, dest, progress=lambda d, t: calls.append((d, t)))
    assert path == dest / server.name and path.read_bytes() == server.body
    assert calls[-1] == (len(server.body), len(server.body))
    done = [d for d, _ in calls]
    assert done == sorted(done) and len(done) >= 2
    assert sorted(p.name for p in dest.iterdir()) == [server.name]  # no temp file left
    assert len(server.requests) == 1
    again = M.download_weights(server.base + server.name, dest)
    assert again == path and len(server.requests) == 1  # cached: no network
    assert torch.load(path, weights_only=True)["w"].shape == (300_000,)


def test_corrupted_download_is_rejected_and_not_cached(server, tmp_path):
    dest = tmp_path / "cache"
    with pytest.raises(M.ModelError, match="hash mismatch"):
        M.download_weights(server.base + "corrupt/" + server.name, dest)
    assert list(dest.iterdir()) == []


def test_http_error_and_offline(server, tmp_path):
    with pytest.raises(M.ModelError, match="404"):
        M.download_weights(server.base + "missing-12345678.pth", tmp_path)
    with pytest.raises(M.ModelError, match="no internet and no cached weights") as e:
        M.imagenet_weights_path("resnet18")
    assert "--pretrained PATH" in str(e.value)
    assert list(tmp_path.glob("*.part")) == [] and list(M.weights_cache_dir().iterdir()) == []


def test_imagenet_weights_from_cache_without_network(tmp_path, monkeypatch):
    cache = M.weights_cache_dir()
    assert cache == tmp_path / "torch_home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.manual_seed(0)
    src = M.build("resnet18", 1000)
    sd = {k: v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}  # like torchvision V1
    buf = io.BytesIO()
    torch.save(sd, buf)
    name = f"resnet18-{hashlib.sha256(buf.getvalue()).hexdigest()[:8]}.pth"  # (a cached file's hash is checked)
    (cache / name).write_bytes(buf.getvalue())
    monkeypatch.setattr(M, "imagenet_weights_url", lambda arch: f"https://download.pytorch.org/models/{name}")
    assert M.imagenet_weights_path("resnet18") == cache / name
    model = M.build("resnet18", 3, pretrained="imagenet")
    assert torch.equal(model.layer4[1].conv2.weight, src.layer4[1].conv2.weight)
    assert model.fc.out_features == 3 and model.fc.weight.shape == (3, 512)
    same_head = M.build("resnet18", 1000, pretrained="imagenet")
    assert torch.equal(same_head.fc.weight, src.fc.weight)


class _Token:
    stopped = False


def test_a_stop_ends_the_download_within_a_chunk_and_keeps_nothing(server, tmp_path):
    """Stop and Cancel (and Ctrl-C) waited out the whole download, and the run then started."""
    token, seen = _Token(), []

    def progress(done, total):
        seen.append(done)
        token.stopped = done > 0  # after the first chunk

    dest = tmp_path / "cache"
    with pytest.raises(M.DownloadStopped, match="stopped while downloading the ImageNet weights"):
        M.download_weights(server.base + server.name, dest, progress=progress, stop=token)
    assert 0 < seen[-1] < len(server.body) and list(dest.iterdir()) == []  # no weights, no partial file


def test_damaged_weights_in_the_cache_are_downloaded_again(server, tmp_path):
    """A cached file cut short (by another program, a disk error) was used as it was: every Start failed on it."""
    dest = tmp_path / "cache"
    dest.mkdir()
    (dest / server.name).write_bytes(server.body[: len(server.body) // 2])
    path = M.download_weights(server.base + server.name, dest)
    assert path.read_bytes() == server.body and len(server.requests) == 1
    assert M.download_weights(server.base + server.name, dest) == path and len(server.requests) == 1  # good: kept


def test_damaged_weights_in_the_cache_without_a_network_are_said_to_be_removed(tmp_path):
    """It said "no cached weights" of weights it had just found damaged and removed."""
    dest = tmp_path / "cache"
    dest.mkdir()
    (dest / "tiny-deadbeef.pth").write_bytes(b"cut short")
    with pytest.raises(M.ModelError) as e:
        M.download_weights("https://example.org/tiny-deadbeef.pth", dest)
    assert f"no internet and the cached weights at {dest / 'tiny-deadbeef.pth'} were damaged and have been removed" in (
        str(e.value)
    )
    assert list(dest.iterdir()) == []


def test_a_run_stopped_while_its_weights_download_keeps_no_run_and_no_weights(server, tmp_path, monkeypatch):
    from core.config import RunConfig
    from core.engine import StopToken, Trainer
    from tests.helpers import make_colour_set

    monkeypatch.setattr(M, "imagenet_weights_url", lambda arch: server.base + server.name)
    cfg = RunConfig()
    cfg.data.root, cfg.data.image_size, cfg.data.num_workers = str(make_colour_set(tmp_path / "data")), 16, 0
    cfg.model.arch, cfg.model.pretrained, cfg.model.mode = "resnet18", "imagenet", "finetune"
    cfg.train.epochs, cfg.train.batch_size, cfg.train.device = 1, 8, "cpu"
    token = StopToken()
    token.stop()  # (as a Ctrl-C does before the download's first chunk)
    result = Trainer(cfg, stop=token, runs_dir=tmp_path / "runs").fit()
    assert result.reason == "stopped" and result.run_dir is None, result.message
    assert not list(M.weights_cache_dir().glob("*.pth")) and len(server.requests) <= 1


def test_no_imagenet_weights_for_cifar_style():
    with pytest.raises(M.ModelError, match="resnext29_8x64d has no ImageNet weights"):
        M.imagenet_weights_path("resnext29_8x64d")
    with pytest.raises(M.ModelError, match="no ImageNet weights"):
        M.build("resnext50_8x14d", 3, pretrained="imagenet")


def test_local_file_checkpoint_with_module_prefix(tmp_path):
    torch.manual_seed(0)
    src = M.build("resnext11_4x8d", 5)
    path = tmp_path / "best.pt"
    torch.save({"model": {"module." + k: v for k, v in src.state_dict().items()}, "epoch": 3}, path)
    model = M.build("resnext11_4x8d", 5, pretrained=str(path))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), src.state_dict().values(), strict=True))
    torch.save({"state_dict": src.state_dict()}, tmp_path / "sd.pth")
    new_head = M.build("resnext11_4x8d", 2, pretrained=str(tmp_path / "sd.pth"))
    assert torch.equal(new_head.conv1.weight, src.conv1.weight) and new_head.fc.out_features == 2
    info = M.load_weights(M.build("resnext11_4x8d", 2), tmp_path / "sd.pth")
    assert info["skipped"] == ["fc.bias", "fc.weight"]


def test_wrong_shape_layer_named(tmp_path):
    sd = M.build("resnext11_4x8d", 5).state_dict()
    sd["layer2.0.conv2.weight"] = torch.zeros(3, 3, 3, 3)
    torch.save(sd, tmp_path / "w.pth")
    with pytest.raises(M.ModelError, match=r"layer2\.0\.conv2\.weight.*\(3, 3, 3, 3\).*\(64, 16, 3, 3\)"):
        M.build("resnext11_4x8d", 5, pretrained=str(tmp_path / "w.pth"))


def test_missing_and_unexpected_keys(tmp_path):
    sd = M.build("resnext11_4x8d", 5).state_dict()
    sd.pop("layer3.0.bn3.running_var")
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "w.pth")
    with pytest.raises(M.ModelError, match=r"missing 1 keys \(layer3\.0\.bn3\.running_var\).*extra\.weight"):
        M.build("resnext11_4x8d", 5, pretrained=str(tmp_path / "w.pth"))
    # which architecture they were tried in (with none chosen, the one picked was unsaid), and the likely cause
    with pytest.raises(M.ModelError, match=r"match the architecture \(resnext11_4x8d\): .*another architecture"):
        M.check_weights("resnext11_4x8d", sd, tmp_path / "w.pth")
    with torch.device("cpu"):
        other = M.build("resnet18", 5).state_dict()
    torch.save(other, tmp_path / "r18.pth")
    with pytest.raises(M.ModelError, match="r18.pth"):
        M.build("resnext11_4x8d", 5, pretrained=str(tmp_path / "r18.pth"))


@pytest.mark.parametrize("content", ["text", "ints", "empty", "nested"])
def test_not_a_weights_file(tmp_path, content):
    path = tmp_path / f"{content}.pth"
    if content == "text":
        path.write_text("hello")
    else:
        obj = {"ints": {"a": 1}, "empty": {}, "nested": {"model": {"a": [1, 2]}}}[content]
        torch.save(obj, path)
    with pytest.raises(M.ModelError, match="not a weights file") as e:
        M.build("resnext11_4x8d", 2, pretrained=str(path))
    assert str(path) in str(e.value)


def test_missing_weights_file(tmp_path):
    with pytest.raises(M.ModelError, match="no such weights file"):
        M.build("resnext11_4x8d", 2, pretrained=str(tmp_path / "nope.pth"))


def test_a_file_that_is_no_weights_file_is_said_to_be_what_it_is(tmp_path):
    """The unpickler's words had been the reason: "(pop from empty list)", "(101)", "(EOFError)", or torch's
    paragraph on TorchScript and weights_only."""
    import warnings
    import zipfile

    from core.checkpoint import CheckpointError, load

    text, empty, archive, exported = (tmp_path / n for n in ("notes.pth", "empty.pth", "photos.pth", "model.pt"))
    text.write_text("epoch,loss\n1,0.5\n")
    empty.write_bytes(b"")
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.txt", "hello")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), exported)
    said = {
        text: "not a file saved by torch.save",
        empty: "an empty file",
        archive: "a zip archive that torch.save did not write",
        exported: "a TorchScript export; weights are a state dict or a checkpoint",
    }
    for path, words in said.items():
        with pytest.raises(M.ModelError) as e:
            M.read_state_dict(path)
        assert str(e.value).startswith(f"{path}: not a weights file ({words}"), str(e.value)
    for path in (text, empty, archive):  # (a checkpoint given for --checkpoint: the same words)
        with pytest.raises(CheckpointError) as e:
            load(path)
        assert str(e.value) == f"{path}: not a ResNeXt Studio checkpoint ({said[path]})"


def test_a_file_of_torchs_older_format_cut_short_is_called_damaged(tmp_path):
    from core.checkpoint import CheckpointError, load
    from core.runs import precious_kind

    whole = tmp_path / "old.pth"
    torch.save({"w": torch.zeros(1000)}, whole, _use_new_zipfile_serialization=False, pickle_protocol=4)
    assert precious_kind(whole) == "a PyTorch checkpoint or weights file"  # (any pickle protocol)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(whole.read_bytes()[:200])
    with pytest.raises(M.ModelError, match=r"cut.pth: not a weights file \(damaged or incomplete"):
        M.read_state_dict(cut)
    with pytest.raises(CheckpointError, match=r"cut.pth: not a ResNeXt Studio checkpoint \(damaged or incomplete"):
        load(cut)


class _OddServer(_Loopback):
    """One file served as a troubled network serves it: `mode` says how."""

    def __init__(self, body: bytes, mode: str):
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(200)
                if mode == "html":
                    page = b"<html><body>Sign in to use the Wi-Fi</body></html>"
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page)
                    return
                self.send_header("Content-Length", "abc" if mode == "bad-length" else str(len(body)))
                self.end_headers()
                with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                    if mode == "bad-length":
                        self.wfile.write(body)
                    else:  # "stall": a first piece, then nothing until released (a line gone slow)
                        self.wfile.write(body[:1000])
                        self.wfile.flush()
                        outer.release.wait(30)

            def log_message(self, *args):
                pass

        self._serve(Handler)

    def close(self):
        self.release.set()
        super().close()


@pytest.mark.timeout(20)
def test_a_troubled_network_is_said_as_it_is_and_a_stop_does_not_wait_for_a_slow_line(tmp_path):
    """A stop was looked at between reads of 256 KB, each waiting until all of it came: on a slow line Ctrl-C,
    Cancel and closing the window waited a minute or more. A malformed Content-Length ended in "invalid literal
    for int()"; a sign-in page was "a corrupted download, try again"; the offline advice never said how to bring
    the file in by hand; a killed download's .part stayed in the cache for ever."""
    body = _tiny_state_bytes()
    name = f"tiny-{hashlib.sha256(body).hexdigest()[:8]}.pth"
    dest = tmp_path / "cache"
    dest.mkdir()
    stale = dest / f".{name}.k1ll3d.part"
    stale.write_bytes(b"x" * 1000)
    old = time.time() - M.PART_AGE_S - 60
    os.utime(stale, (old, old))
    stall = _OddServer(body, "stall")
    try:
        token = _Token()

        def progress(done, total):
            token.stopped = done > 0  # (the first piece is in: the user presses Stop)

        with pytest.raises(M.DownloadStopped):
            M.download_weights(stall.base + name, dest, progress=progress, stop=token)
    finally:
        stall.close()
    assert list(dest.iterdir()) == []  # (no partial file, and the killed one's gone too)
    odd = _OddServer(body, "bad-length")
    try:
        assert M.download_weights(odd.base + name, dest).read_bytes() == body  # (the length taken as not known)
    finally:
        odd.close()
    page = _OddServer(body, "html")
    try:
        with pytest.raises(M.ModelError, match="sent a web page, not the weights") as e:
            M.download_weights(page.base + "other-" + name, dest)
        assert f"download {page.base}other-{name} and copy it to {dest / ('other-' + name)}" in str(e.value)
    finally:
        page.close()


def test_the_command_line_shows_the_weights_download_and_names_a_failure(server, monkeypatch, capsys):
    """`train --pretrained imagenet` downloaded 100-340 MB without a word, though the README promised progress."""
    from core.cli import UsageError, _fetch_imagenet_weights

    monkeypatch.setattr(M, "imagenet_weights_url", lambda arch: server.base + server.name)
    _fetch_imagenet_weights("resnet18", "imagenet", quiet=False)
    err = capsys.readouterr().err
    mb = f"{len(server.body) / 1e6:.1f}"
    assert f"downloading the ImageNet weights of resnet18: {mb} of {mb} MB" in err
    assert (M.weights_cache_dir() / server.name).read_bytes() == server.body
    _fetch_imagenet_weights("resnet18", "imagenet", quiet=False)  # (cached: not again, and nothing said)
    assert capsys.readouterr().err == "" and server.requests.count("/" + server.name) == 1
    monkeypatch.setattr(M, "imagenet_weights_url", lambda arch: server.base + "missing-12345678.pth")
    with pytest.raises(UsageError, match="HTTP 404"):
        _fetch_imagenet_weights("resnet18", "imagenet", quiet=True)
