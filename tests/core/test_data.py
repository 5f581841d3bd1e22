"""Tests for core.data: scanning awkward folders, the load rule, splits, transforms and loaders."""

from __future__ import annotations

import io
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import data
from core.config import DataConfig
from core.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    BatchTransform,
    DataError,
    ImageLoadError,
    decode_for_size,
    load_image,
    make_loader,
    resize_size,
    scan,
    split,
)

# ---------------------------------------------------------------------------------------------------------- scan


def test_scan_awkward_folder_keeps_good_and_reports_bad(awkward_dir):
    progress = []
    idx = scan(awkward_dir.root, progress=lambda d, t: progress.append((d, t)))
    paths = {s.path for s in idx.samples}
    assert idx.layout == "classes"
    assert idx.classes == ["cats", "dogs"]
    assert paths == {str(p) for p in awkward_dir.good.values()}
    reasons = dict(idx.bad_files)
    assert len(reasons) == len(awkward_dir.bad)
    for name, (path, fragment) in awkward_dir.bad.items():
        assert str(path) in reasons, name
        assert reasons[str(path)].startswith(fragment), (name, reasons[str(path)])
    everything = paths | set(reasons)
    for p in awkward_dir.ignored:
        assert str(p) not in everything
    # of those, the files that are not hidden or system files are named, not silently skipped
    assert idx.ignored_files == [str(p) for p in awkward_dir.ignored if p.name == "notes.txt"]
    assert idx.empty_classes == ["empty_class"]
    assert idx.duplicates == [sorted(str(p) for p in awkward_dir.duplicate_pair)]
    assert progress[-1] == (len(paths) + len(reasons), len(paths) + len(reasons))
    labels = {Path(s.path).name: idx.classes[s.label] for s in idx.samples}
    assert labels["n.jpg"] == "cats"  # nested folders belong to their top class folder
    assert labels["чёрный кот 猫.jpg"] == "cats"


def test_a_class_folder_of_unusable_files_is_not_called_empty(tmp_path):
    """A folder holding only a broken photo was listed among the "empty folders ignored" (it is not empty: its
    file is in bad_files, and the folder is named apart)."""
    root = tmp_path / "d"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8), (40 * i, 90, 30)).save(root / name / f"{i}.png")
    (root / "broken").mkdir()
    (root / "broken" / "x.jpg").write_bytes(b"not a jpeg")
    (root / "none").mkdir()
    idx = scan(root)
    assert idx.empty_classes == ["none"] and idx.unusable_classes == ["broken"]
    assert [p for p, _ in idx.bad_files] == [str(root / "broken" / "x.jpg")]
    assert idx.to_dict()["unusable_classes"] == ["broken"]


def test_a_runs_folder_kept_in_the_data_folder_is_no_class(small_dataset):
    """`train --data D --runs-dir D/runs` twice: the second run trained a class "runs" on the first's curves.png."""
    import shutil

    from core.data import RUN_FOLDER_REASON

    run = small_dataset / "runs" / "20260101-120000-resnext11_4x8d-small"
    run.mkdir(parents=True)
    (run / "status.json").write_text('{"status": "completed"}')
    (run / "config.json").write_text('{"model": {"arch": "resnext11_4x8d"}, "train": {}}')
    shutil.copy(small_dataset / "ant" / "00.jpg", run / "curves.png")  # (an image, as curves.png is)
    idx = scan(small_dataset)
    assert idx.classes == ["ant", "bee", "cow"] and len(idx.samples) == 36
    assert (str(run), RUN_FOLDER_REASON) in idx.bad_files  # said, not silently skipped
    assert "runs" not in idx.empty_classes  # (the run folder is named instead)
    nested = small_dataset / "bee" / "kept-runs" / run.name  # one below a class: its images are not the class's
    shutil.copytree(run, nested)
    idx = scan(small_dataset)
    assert len(idx.samples) == 36 and (str(nested), RUN_FOLDER_REASON) in idx.bad_files
    for name in ("status.json", "config.json"):  # files of those names that are not a run's: a class as any other
        (small_dataset / "cow" / name).write_text("{}")
    assert scan(small_dataset).classes == ["ant", "bee", "cow"]
    (small_dataset / "cow" / "status.json").write_text('{"status": "completed"}')
    (small_dataset / "cow" / "config.json").write_text('{"model": {}}')
    (small_dataset / "ant" / "status.json").write_bytes((small_dataset / "cow" / "status.json").read_bytes())
    (small_dataset / "ant" / "config.json").write_bytes((small_dataset / "cow" / "config.json").read_bytes())
    with pytest.raises(data.DataError) as e:  # (copied from a run: no class is left, and the message says why)
        scan(small_dataset)
    assert f"at least two are needed to train; 4 run folders left out, e.g. {small_dataset / 'ant'}" in str(e.value)


def test_a_class_folder_that_cannot_be_listed_is_named_with_the_reason(small_dataset, monkeypatch):
    """Not "empty" and not silently dropped: the folder is an unusable entry that says why."""
    blocked = sorted(p for p in Path(small_dataset).iterdir() if p.is_dir())[0]
    walk = os.walk

    def walk_without_permission(top, onerror=None, **kw):
        if Path(top) == blocked:
            onerror(PermissionError(13, "Permission denied", str(top)))
            return iter(())
        return walk(top, onerror=onerror, **kw)

    monkeypatch.setattr(data.os, "walk", walk_without_permission)
    idx = scan(small_dataset)
    assert blocked.name not in idx.classes and idx.empty_classes == []
    assert (str(blocked), "cannot read folder (Permission denied)") in idx.bad_files


def test_scan_to_dict_document(awkward_dir):
    d = scan(awkward_dir.root).to_dict()
    assert set(d) == {
        "root",
        "layout",
        "classes",
        "num_images",
        "bad_files",
        "empty_classes",
        "unusable_classes",
        "duplicates",
        "mixed_duplicates",
        "leaked_duplicates",
        "ignored_files",
        "notes",
    }
    assert d["mixed_duplicates"] == d["duplicates"]  # the awkward pair sits in cats and in dogs
    assert d["classes"] == [{"name": "cats", "count": 8}, {"name": "dogs", "count": 8}]
    assert d["num_images"] == 16
    assert all(set(b) == {"path", "reason"} for b in d["bad_files"])


def test_bomb_png_is_reported_without_allocating(tmp_path, png_header_writer):
    path = png_header_writer(tmp_path / "bomb.png", 20000, 20000)
    with pytest.raises(ImageLoadError) as e:
        load_image(path)
    assert e.value.reason.startswith("too large to open: 400,000,000 pixels, over the ")
    assert str(e.value) == f"{path}: {e.value.reason}"
    assert Image.MAX_IMAGE_PIXELS is not None  # the global limit is untouched


def test_a_large_but_allowed_image_is_used_without_pillows_anonymous_warning(tmp_path):
    import warnings

    big = tmp_path / "panorama.png"
    Image.new("1", (12000, 12000)).save(big)  # 144 M pixels: above Pillow's warning size, below its limit
    with warnings.catch_warnings(record=True) as caught:
        assert data.verify_image(str(big))[1] is None
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_a_large_image_named_as_a_grad_cam_overlay_is_looked_at_without_pillows_warning(tmp_path):
    """is_cam_overlay opened a "…_gradcam.png" of 100 M pixels without the filter: scan printed Pillow's warning."""
    import warnings

    big = tmp_path / "star_gradcam.png"
    Image.new("1", (12000, 12000)).save(big)
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()  # (the filter as in a fresh process, not as an earlier test left it)
        warnings.simplefilter("always")
        assert not data.is_cam_overlay(big)  # not ours: a picture to learn from
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_scan_missing_and_file_root(tmp_path, jpeg_writer):
    missing = tmp_path / "nope"
    with pytest.raises(DataError, match="no such folder") as e:
        scan(missing)
    assert str(e.value) == f"{missing}: no such folder"
    f = jpeg_writer(tmp_path / "x.jpg", 0)
    with pytest.raises(DataError, match="x.jpg: a file, not a folder"):
        scan(f)
    with pytest.raises(DataError) as e:
        scan(f / "photos")
    assert str(e.value) == f"{f / 'photos'}: no such folder (a part of its path is a file)"


def test_a_folder_inside_one_that_may_not_be_entered_is_not_called_missing(tmp_path, monkeypatch):
    """`scan locked/photos` (locked chmod 700, another user's) said "no such folder"."""
    inner = tmp_path / "locked" / "photos"
    inner.mkdir(parents=True)
    real = os.stat

    def stat(path, *a, **k):
        if str(path).startswith(str(tmp_path / "locked") + os.sep):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(data.os, "stat", stat)
    with pytest.raises(DataError) as e:
        scan(inner)
    assert str(e.value) == f"{inner}: permission denied (this folder or one above it may not be opened)"


def test_scan_one_class_is_an_error(tmp_path, jpeg_writer):
    for i in range(3):
        jpeg_writer(tmp_path / "only" / f"{i}.jpg", i)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="only one class") as e:
        scan(tmp_path)
    assert "\n" not in str(e.value) and "cannot be used" not in str(e.value)  # (an empty folder: nothing to say)
    # a class whose every file is unusable: which class, how many files, one of them and why
    (tmp_path / "broken").mkdir()
    for i in range(2):
        (tmp_path / "broken" / f"{i}.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError) as e:
        scan(tmp_path)
    assert str(e.value).endswith(
        f"only one class with images ('only'); at least two are needed to train; 'broken' holds only files that cannot be "
        f"used (2 files, e.g. {tmp_path / 'broken' / '0.jpg'}: not an image (cannot identify image file))"
    ), str(e.value)


def test_scan_no_class_folders_is_an_error(tmp_path, jpeg_writer):
    with pytest.raises(DataError, match="no class folders"):
        scan(tmp_path)
    for i in range(3):
        jpeg_writer(tmp_path / f"loose{i}.jpg", i)
    with pytest.raises(DataError) as e:  # the commonest first try: a folder of photos, not yet sorted
        scan(tmp_path)
    assert "3 images directly in this folder, but no class folders" in str(e.value)
    assert "sub-folder named after the class" in str(e.value)


def test_class_names_are_nfc_however_the_file_system_spells_them(tmp_path, jpeg_writer):
    """A macOS copy of a data set often has decomposed folder names ("cafe" + U+0301): the class is still "café"
    (composed), so a model trained on one copy evaluates and resumes on the other."""
    decomposed, composed = "cafe\u0301", "caf\u00e9"
    for i in range(3):
        jpeg_writer(tmp_path / "a" / decomposed / f"{i}.jpg", i)
        jpeg_writer(tmp_path / "a" / "tea" / f"{i}.jpg", 10 + i)
        jpeg_writer(tmp_path / "b" / composed / f"{i}.jpg", 20 + i)
        jpeg_writer(tmp_path / "b" / "tea" / f"{i}.jpg", 30 + i)
    a, b = scan(tmp_path / "a"), scan(tmp_path / "b")
    assert a.classes == b.classes == [composed, "tea"]
    assert all(os.path.exists(s.path) for s in a.samples)  # the files keep their own spelling
    assert any(decomposed in s.path for s in a.samples)


def test_linked_sub_folders_are_followed_and_link_loops_are_not(tmp_path, jpeg_writer):
    """A sub-folder that is a symbolic link belongs to its class (it was skipped without a word); a link back to
    an enclosing folder is walked once, not forever."""
    from core.predict import expand_paths

    for cls in ("a", "b"):
        jpeg_writer(tmp_path / "set" / cls / "own.jpg", ord(cls))
    for i in range(3):
        jpeg_writer(tmp_path / "elsewhere" / f"{i}.jpg", 10 + i)
    (tmp_path / "set" / "a" / "more").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "set" / "b" / "loop").symlink_to(tmp_path / "set" / "b", target_is_directory=True)
    idx = scan(tmp_path / "set")
    assert idx.counts() == {"a": 4, "b": 1} and idx.bad_files == []
    files, problems = expand_paths([tmp_path / "set"])
    assert len(files) == 5 and problems == []
    # a link up to the data folder: a's photos were counted again as b's, under two labels
    up = tmp_path / "set" / "b" / "up"
    up.symlink_to(tmp_path / "set", target_is_directory=True)
    idx = scan(tmp_path / "set")
    assert idx.counts() == {"a": 4, "b": 1} and idx.bad_files == [(str(up), data.LOOP_REASON)]
    files, _ = expand_paths([tmp_path / "set" / "b"])  # classifying b's folder: b's own photo alone
    assert files == [str(tmp_path / "set" / "b" / "own.jpg")]


def test_a_class_level_link_to_the_data_folder_or_above_is_a_loop_not_a_class(tmp_path, jpeg_writer):
    """`dot -> .` beside the class folders was made a class of every class's photos, `up -> ..` one of every data
    set beside this one (the walk of a class folder only refused links above that class folder)."""
    root = tmp_path / "sets" / "set"
    for i, cls in enumerate(("red", "blue")):
        jpeg_writer(root / cls / "own.jpg", i)
    jpeg_writer(tmp_path / "sets" / "other" / "cat" / "0.jpg", 5)
    jpeg_writer(tmp_path / "elsewhere" / "0.jpg", 6)
    loops = [root / "dot", root / "up", root / "upup"]
    for link, target in zip(loops, (".", "..", "../.."), strict=True):
        os.symlink(target, link)
    os.symlink("red", root / "red2")  # a sibling class folder, and a folder elsewhere: classes, as before
    os.symlink(tmp_path / "elsewhere", root / "far")
    idx = scan(root)
    assert idx.counts() == {"blue": 1, "far": 1, "red": 1, "red2": 1}
    assert idx.bad_files == sorted((str(p), data.LOOP_REASON) for p in loops)
    assert idx.duplicates == [[str(root / "red" / "own.jpg"), str(root / "red2" / "own.jpg")]]
    assert idx.problem_notes()[0] == "3 folders in the class folders could not be used and are left out"
    # train/val/test: a link in train/ to train/ itself, to the data folder or above
    split = tmp_path / "split"
    for part in ("train", "val"):
        for i, cls in enumerate(("red", "blue")):
            jpeg_writer(split / part / cls / "own.jpg", 10 * (part == "val") + i)
    loops = [split / "train" / name for name in ("dot", "up", "upup")]
    for link, target in zip(loops, (".", "..", "../.."), strict=True):
        os.symlink(target, link)
    os.symlink("../val/red", split / "train" / "vred")  # a class folder of another split: a class, as before
    idx = scan(split)
    assert idx.layout == "splits" and idx.counts() == {"blue": 2, "red": 2, "vred": 1}
    assert idx.bad_files == sorted((str(p), data.LOOP_REASON) for p in loops)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_pipes_and_devices_named_like_images_are_reported_not_opened(tmp_path, jpeg_writer):
    """Opening a named pipe waited for ever (Ctrl-C could not stop the scan); /dev/zero read until out of memory."""
    for c in ("a", "b"):
        for i in range(2):
            jpeg_writer(tmp_path / c / f"{i}.jpg", i)
    os.mkfifo(tmp_path / "a" / "pipe.png")
    os.symlink("/dev/zero", tmp_path / "b" / "zero.jpg")
    index = scan(tmp_path)
    reasons = dict(index.bad_files)
    assert reasons == {
        str(tmp_path / "a" / "pipe.png"): "not a regular file (a pipe, device or socket)",
        str(tmp_path / "b" / "zero.jpg"): "not a regular file (a pipe, device or socket)",
    }
    assert len(index.samples) == 4
    with pytest.raises(data.ImageLoadError, match="pipe.png: not a regular file"):
        data.load_image(tmp_path / "a" / "pipe.png")


def test_an_image_whose_header_is_damaged_is_called_so_not_not_an_image(tmp_path, jpeg_writer):
    """A PNG with a bad checksum in its header was "not an image (cannot identify image file)"."""
    good = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(good, "PNG")
    raw = bytearray(good.getvalue())
    raw[29] ^= 0xFF  # (the IHDR chunk's CRC)
    (tmp_path / "bad.png").write_bytes(bytes(raw))
    (tmp_path / "notes.jpg").write_text("not a picture")
    assert data.verify_image(str(tmp_path / "bad.png"))[1] == "a damaged PNG file (its header cannot be read)"
    with pytest.raises(data.ImageLoadError, match=r"bad\.png: a damaged PNG file \(its header cannot be read\)"):
        data.load_image(tmp_path / "bad.png")
    assert data.verify_image(str(tmp_path / "notes.jpg"))[1] == "not an image (cannot identify image file)"


def test_broken_and_looping_symbolic_links_are_called_what_they_are(tmp_path, jpeg_writer):
    """A broken link was "file not found" (the file is there, as a link), a loop "corrupt image ([Errno 40] …)"."""
    for c in ("a", "b"):
        for i in range(2):
            jpeg_writer(tmp_path / c / f"{i}.jpg", i)
    os.symlink(tmp_path / "gone.jpg", tmp_path / "a" / "moved.jpg")
    os.symlink("loop.jpg", tmp_path / "b" / "loop.jpg")
    reasons = dict(scan(tmp_path).bad_files)
    assert reasons == {
        str(tmp_path / "a" / "moved.jpg"): f"broken symbolic link (to {tmp_path / 'gone.jpg'}, which is not there)",
        str(tmp_path / "b" / "loop.jpg"): "symbolic link loop (the link leads back to itself)",
    }


def test_links_beside_the_class_folders_are_named_and_the_scan_goes_on(tmp_path, jpeg_writer):
    """A link loop among the class folders stopped the whole scan ("cannot read folder" of the data folder, which
    could be read); a class folder linked from a drive not mounted was left out without a word."""
    for c in ("a", "b"):
        for i in range(2):
            jpeg_writer(tmp_path / c / f"{i}.jpg", i)
    os.symlink("selfloop", tmp_path / "selfloop")
    os.symlink(tmp_path / "unmounted" / "cats", tmp_path / "cats")
    index = scan(tmp_path)
    assert index.classes == ["a", "b"] and len(index.samples) == 4
    assert dict(index.bad_files) == {
        str(tmp_path / "selfloop"): "symbolic link loop (the link leads back to itself)",
        str(tmp_path / "cats"): f"broken symbolic link (to {tmp_path / 'unmounted' / 'cats'}, which is not there)",
    }
    train = tmp_path / "split" / "train"
    for c in ("a", "b"):
        jpeg_writer(train / c / "0.jpg", 0)
        jpeg_writer(train / c / "1.jpg", 1)
    os.symlink("loop", train / "loop")  # (among a split folder's classes too)
    index = scan(tmp_path / "split")
    assert index.layout == "splits" and dict(index.bad_files) == {
        str(train / "loop"): "symbolic link loop (the link leads back to itself)"
    }


def test_a_class_folder_of_photos_of_a_type_not_read_is_named_with_what_to_do(tmp_path, jpeg_writer, capsys):
    """A class of iPhone photos (HEIC): train said "empty class folder left out", and nothing of the files."""
    for c in ("a", "b"):
        for i in range(2):
            jpeg_writer(tmp_path / c / f"{i}.jpg", i)
    (tmp_path / "iphone").mkdir()
    for i in range(3):
        (tmp_path / "iphone" / f"IMG_{i}.HEIC").write_bytes(b"ftypheic" * 10)
    (tmp_path / "empty").mkdir()
    (tmp_path / "a" / "notes.txt").write_text("x")  # (other files are scan's to list, not a note each run)
    index = scan(tmp_path)
    assert index.unusable_classes == ["iphone"] and index.empty_classes == ["empty"]
    assert data.ignored_reason(str(tmp_path / "iphone" / "IMG_0.HEIC")) == (
        "a HEIC image, a type not read: convert it to JPEG or PNG (ignored)"
    )
    assert data.ignored_reason("notes.txt") == "not an image file type (ignored)"
    from core import cli

    cli._report_ignored(index)  # train and evaluate say so (they left the files out without a word)
    err = capsys.readouterr().err
    assert err.startswith("note: 3 photos in class folders left out, of a type not read, e.g. ")
    assert f"e.g. {tmp_path / 'iphone' / 'IMG_0.HEIC'}: a HEIC image, a type not read: convert it to JPEG" in err
    shutil.rmtree(tmp_path / "b")
    with pytest.raises(data.DataError, match=r"'iphone' holds no image of a type read \(3 other files, e\.g\. .*HEIC"):
        scan(tmp_path)


def test_a_big_file_is_hashed_in_chunks_with_the_same_result(tmp_path, jpeg_writer, monkeypatch):
    path = str(jpeg_writer(tmp_path / "x.jpg", 3, size=(300, 200)))
    whole = data.verify_image(path)
    monkeypatch.setattr(data, "IN_MEMORY_BYTES", 1000)  # the file is bigger than this
    read = []
    real_open = open

    class Recording(io.BufferedReader):
        def read(self, n=-1):
            read.append(n)
            return super().read(n)

    def recording_open(file, mode="r", *args, **kwargs):
        return Recording(real_open(file, "rb", buffering=0)) if file == path else real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", recording_open)
    assert data.verify_image(path) == whole and whole[1] is None
    assert read and -1 not in read and max(read) <= 1 << 20  # never the whole file at once
    monkeypatch.undo()
    Path(path).write_bytes(Path(path).read_bytes()[:-2000])
    monkeypatch.setattr(data, "IN_MEMORY_BYTES", 1000)
    assert data.verify_image(path)[1] == "truncated image"


def test_jpeg_under_other_common_names_is_an_image(tmp_path, jpeg_writer):
    """.jfif / .jpe are what browsers and Windows often name downloaded JPEGs: scanned, not skipped."""
    for cls in ("a", "b"):
        jpeg_writer(tmp_path / cls / "one.jpg", 1)
        jpeg_writer(tmp_path / cls / "two.jfif", 2)
        jpeg_writer(tmp_path / cls / "three.JPE", 3)
    idx = scan(tmp_path)
    assert idx.counts() == {"a": 3, "b": 3} and idx.bad_files == [] and idx.ignored_files == []


def test_scan_cancel(small_dataset):
    ev = threading.Event()

    def progress(done, total):
        if done >= 1:
            ev.set()

    with pytest.raises(DataError, match="scan cancelled"):
        scan(small_dataset, progress=progress, stop=ev, workers=1)

    class Token:
        stopped = True

    with pytest.raises(DataError, match="scan cancelled"):
        scan(small_dataset, stop=Token())


def test_scan_split_layout(tmp_path, jpeg_writer):
    seed = iter(range(1000))
    for part, n in (("train", 6), ("val", 2)):
        for c in ("a", "b"):
            for i in range(n):
                jpeg_writer(tmp_path / part / c / f"{i}.jpg", next(seed))
    jpeg_writer(tmp_path / "train" / "c" / "0.jpg", 555)  # a class only present in train
    idx = scan(tmp_path)
    assert idx.layout == "splits"
    assert idx.classes == ["a", "b", "c"]
    assert {s.split for s in idx.samples} == {"train", "val"}
    sp = split(idx, val=0.5, test=0.3, seed=1)
    assert len(sp.train) == 13 and len(sp.val) == 4 and sp.test == []
    assert all(idx.samples[i].split == "val" for i in sp.val)
    assert split(idx, seed=2) == sp  # folders decide, not the seed
    assert idx.leaked_duplicates() == []
    shutil.copy(tmp_path / "train" / "a" / "0.jpg", tmp_path / "val" / "a" / "same.jpg")  # validated and trained on
    idx = scan(tmp_path)
    assert idx.leaked_duplicates() == [
        [str(tmp_path / "train" / "a" / "0.jpg"), str(tmp_path / "val" / "a" / "same.jpg")]
    ]
    (tmp_path / "notes").mkdir()  # a folder that is neither a split nor in one: no guessing
    jpeg_writer(tmp_path / "notes" / "x.jpg", 900)
    with pytest.raises(DataError, match="train and val look like split folders, but notes does not"):
        scan(tmp_path)
    flat = tmp_path / "flat"
    for part in ("train", "val"):
        jpeg_writer(flat / part / "x.jpg", 901 + len(part))
    with pytest.raises(DataError, match="train and val hold no class folders; use ROOT/train/<class>/"):
        scan(flat)


def test_held_out_folders_without_train_are_read_as_splits(tmp_path, jpeg_writer):
    """test/<class>/ alone (the commonest held-out set) was one class named "test"; val/ + test/ was refused as
    "hold no class folders", which they did."""
    seed = iter(range(1000))
    for part in ("val", "test"):
        for c in ("a", "b"):
            for _ in range(2):
                jpeg_writer(tmp_path / "both" / part / c / f"{next(seed)}.jpg", next(seed))
    both = scan(tmp_path / "both")
    assert both.layout == "splits" and both.classes == ["a", "b"] and len(both.samples) == 8
    parts = data.split(both)  # its own parts, to evaluate on (training on it is refused: test_engine)
    assert (len(parts.train), len(parts.val), len(parts.test)) == (0, 4, 4)
    for c in ("a", "b"):
        jpeg_writer(tmp_path / "held" / "test" / c / "x.jpg", next(seed))
    held = scan(tmp_path / "held")
    assert held.layout == "splits" and held.classes == ["a", "b"]
    jpeg_writer(tmp_path / "one" / "test" / "a" / "x.jpg", next(seed))  # one class: enough to evaluate on
    with pytest.raises(DataError, match="only one class"):
        scan(tmp_path / "one")
    assert scan(tmp_path / "one", min_classes=1).classes == ["a"]


def test_scan_split_layout_without_val_carves_val_from_train(tmp_path, jpeg_writer):
    seed = iter(range(1000))
    for c in ("a", "b"):
        for i in range(10):
            jpeg_writer(tmp_path / "train" / c / f"{i}.jpg", next(seed))
        jpeg_writer(tmp_path / "test" / c / "t.jpg", next(seed))
    idx = scan(tmp_path)
    sp = split(idx, val=0.2, seed=0)
    assert len(sp.val) == 4 and len(sp.train) == 16 and len(sp.test) == 2
    assert all(idx.samples[i].split == "test" for i in sp.test)


# ---------------------------------------------------------------------------------------------------------- load_image


def test_load_image_exif_rotation(awkward_dir):
    img = load_image(awkward_dir.good["exif6"])
    assert img.mode == "RGB" and img.size == (20, 40)  # stored 40x20, displayed rotated
    a = np.asarray(img).astype(int)
    # stored top half red → displayed on the right; bottom half blue → on the left
    assert a[20, 15, 0] > 200 and a[20, 15, 2] < 60
    assert a[20, 4, 2] > 200 and a[20, 4, 0] < 60


def test_an_orientation_tag_of_two_values_is_used_without_pillows_nameless_warning(tmp_path):
    """predict printed "PIL/TiffImagePlugin.py:773: UserWarning: Metadata Warning, tag 274 had too many entries"
    with no file name among its results."""
    import io
    import struct
    import subprocess
    import sys

    buf = io.BytesIO()
    Image.new("RGB", (20, 10), "red").save(buf, "JPEG")
    # an APP1 EXIF block by hand (Pillow writes no such tag): Orientation (0x0112), SHORT, 2 values: 6, 6
    ifd = b"II\x2a\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x02\x00\x00\x00\x06\x00\x06\x00\x00\x00\x00\x00"
    app1 = b"\xff\xe1" + struct.pack(">H", len(ifd) + 8) + b"Exif\x00\x00" + ifd
    path = tmp_path / "two.jpg"
    path.write_bytes(buf.getvalue()[:2] + app1 + buf.getvalue()[2:])
    code = f"from core.data import load_image; print(load_image({str(path)!r}).size)"  # (a fresh process: Python
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)  # warns once per place)
    assert done.returncode == 0 and done.stdout.strip() == "(10, 20)", done.stderr  # (the first value: rotated)
    assert "Metadata Warning" not in done.stderr


def _jpeg_with_exif(tag: int, value: str, swap: bytes, to: bytes) -> bytes:
    """A 60x30 JPEG with EXIF orientation 6 and an ASCII tag, its bytes `swap` in the EXIF changed to `to`."""
    exif = Image.Exif()
    exif[0x0112], exif[tag] = 6, value
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 60, 3), dtype=np.uint8)).save(buf, "JPEG", exif=exif)
    raw = buf.getvalue()
    assert raw.count(swap) == 1
    return raw.replace(swap, to)


def test_a_damaged_exif_tag_does_not_make_a_good_photo_unreadable(tmp_path):
    """Text in a number's tag (0x0108, an image length): Pillow's exif_transpose failed writing the EXIF out again,
    so a photo that scan passed was "cannot decode image (error: required argument is not an integer)" in
    training and predict. It is turned by its orientation tag as any other."""
    path = tmp_path / "bad_exif.jpg"
    path.write_bytes(_jpeg_with_exif(0x010F, "Maker", b"\x01\x0f\x00\x02", b"\x01\x08\x00\x02"))
    assert load_image(path).size == (30, 60)  # rotated, as its orientation 6 says
    assert load_image(Image.open(path)).size == (30, 60)
    assert load_image(load_image(path)).size == (30, 60)  # the turned copy carries no orientation to turn again
    assert data.verify_image(str(path))[1] is None


def test_an_exif_offset_past_its_end_warns_nothing_nameless(tmp_path):
    """An EXIF entry pointing past the data: Pillow printed "UserWarning: Truncated File Read", naming no file."""
    import subprocess
    import sys

    entry = b"\x01\x0f\x00\x02\x00\x00\x00\x06"  # Make (big-endian EXIF): ASCII, 6 bytes, at an offset
    raw = _jpeg_with_exif(0x010F, "Maker", entry, entry)
    i = raw.index(entry) + len(entry)
    path = tmp_path / "cut_exif.jpg"
    path.write_bytes(raw[:i] + (0x7000).to_bytes(4, "big") + raw[i + 4 :])
    code = f"from core.data import load_image; print(load_image({str(path)!r}).size)"  # (a fresh process: Python
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)  # warns once per place)
    assert done.returncode == 0 and done.stdout.strip() == "(60, 30)", done.stderr  # (its orientation is lost)
    assert "Warning" not in done.stderr, done.stderr


def test_load_image_16bit_rescaled_not_clamped(awkward_dir):
    assert Image.open(awkward_dir.good["gray16"]).mode.startswith("I")
    a = np.asarray(load_image(awkward_dir.good["gray16"]))
    assert a.shape == (10, 30, 3)
    assert (a[:, :10] == 255).all() and (a[:, 10:20] == 128).all() and (a[:, 20:] == 0).all()


def test_load_image_palette_transparency_on_white(awkward_dir):
    a = np.asarray(load_image(awkward_dir.good["palette"]))
    assert (a[:, :10] == 255).all()  # transparent → white, not black
    assert (a[:, 10:] == (255, 0, 0)).all()


def test_load_image_rgba_and_la_on_white():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:, :2, 3] = 0  # transparent black
    rgba[:, 2:, 3] = 255  # opaque black
    a = np.asarray(load_image(Image.fromarray(rgba)))
    assert (a[:, :2] == 255).all() and (a[:, 2:] == 0).all()
    la = Image.fromarray(rgba).convert("LA")
    assert la.mode == "LA"
    b = np.asarray(load_image(la))
    assert (b[:, :2] == 255).all() and (b[:, 2:] == 0).all()


def test_load_image_cmyk(awkward_dir):
    a = np.asarray(load_image(awkward_dir.good["cmyk"])).astype(int)
    assert a.shape == (24, 24, 3)
    assert a[..., 0].min() > 200 and a[..., 1].max() < 60 and a[..., 2].max() < 60


def test_load_image_sources(awkward_dir):
    path = awkward_dir.good["cat0"]
    ref = np.asarray(load_image(path))
    assert ref.shape == (40, 48, 3)
    assert np.array_equal(np.asarray(load_image(str(path))), ref)
    with open(path, "rb") as f:
        assert np.array_equal(np.asarray(load_image(f)), ref)
    assert np.array_equal(np.asarray(load_image(io.BytesIO(path.read_bytes()))), ref)
    assert np.array_equal(np.asarray(load_image(Image.open(path))), ref)
    assert np.array_equal(np.asarray(load_image(ref)), ref)
    assert np.asarray(load_image(ref[:, :, 0])).shape == (40, 48, 3)
    gray = np.asarray(load_image(Image.fromarray(ref[:, :, 1])))
    assert (gray[..., 0] == ref[..., 1]).all() and (gray[..., 2] == ref[..., 1]).all()


def test_load_image_mode_i_and_f():
    i_img = Image.fromarray(np.array([[0, 1000, 65535]], np.int32))
    assert i_img.mode == "I"
    assert np.asarray(load_image(i_img))[0, :, 0].tolist() == [0, 4, 255]
    f_img = Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32))
    assert f_img.mode == "F"
    assert np.asarray(load_image(f_img))[0, :, 0].tolist() == [0, 128, 255]
    # masks: a boolean array, and a float one of 0.0 and 1.0 alone, are black and white (they were 0 and 1 of 255)
    for mask in (np.array([[False, True]]), np.array([[0.0, 1.0]], np.float32)):
        assert np.asarray(load_image(mask))[0, :, 0].tolist() == [0, 255], mask.dtype
        assert np.asarray(load_image(Image.fromarray(mask)))[0, :, 0].tolist() == [0, 255], mask.dtype
    assert np.asarray(load_image(np.array([[0, 1, 200]], np.int32)))[0, :, 0].tolist() == [0, 1, 200]  # (0..255)


def test_a_16_bit_png_with_a_transparent_grey_is_on_white_as_an_8_bit_one(tmp_path):
    """Its transparent pixels came out black; the same picture in 8 bits came out white."""
    a = np.zeros((4, 4), np.uint16)
    a[:, 2:] = 65535
    Image.fromarray(a).save(tmp_path / "i16.png", transparency=0)
    Image.fromarray((a // 257).astype(np.uint8)).save(tmp_path / "l8.png", transparency=0)
    assert Image.open(tmp_path / "i16.png").mode.startswith("I;16")
    wide, narrow = (np.asarray(load_image(tmp_path / n)) for n in ("i16.png", "l8.png"))
    assert wide[0, :, 0].tolist() == narrow[0, :, 0].tolist() == [255, 255, 255, 255]


def test_wide_pixel_data_past_its_full_scale_is_not_turned_near_black(tmp_path):
    """A float TIFF one rounding step over 1.0 was stretched min-max, and a 32-bit one of 0..256 divided by 257:
    both trained as near-black pictures, while 0..1.0 and 0..255 were right. Past the full scale, the brightest
    value is white."""
    ramp = np.linspace(0, 1, 48 * 40, dtype=np.float32).reshape(40, 48)
    means = {}
    for name, a in {
        "f_unit": ramp,
        "f_over": ramp * np.float32(1.0000001),
        "f_1.01": ramp * np.float32(1.01),
        "i_255": np.round(ramp * 255).astype(np.int32),
        "i_256": np.round(ramp * 256).astype(np.int32),
        "i_12bit": np.round(ramp * 4095).astype(np.int32),
    }.items():
        Image.fromarray(a).save(tmp_path / f"{name}.tif")
        pixels = np.asarray(load_image(tmp_path / f"{name}.tif"), np.float64)
        means[name] = pixels.mean()
        assert pixels.max() == 255, name
    assert all(abs(m - means["f_unit"]) < 1.0 for m in means.values()), means
    assert data.load_for_model(tmp_path / "f_over.tif", 32).float().mean() > 120  # (it was 0.5 of 255)
    signed = np.asarray(load_image(np.array([[-2.0, 0.0, 2.0]], np.float32)))[0, :, 0].tolist()
    assert signed == [0, 128, 255]  # (negative values: stretched min-max)
    assert np.asarray(load_image(np.full((2, 3), -1.0, np.float32))).max() == 0  # (one negative value: no ÷ 0)


@pytest.mark.parametrize("name", ["truncated", "zero", "text", "bomb"])
def test_load_image_errors_match_scan_reasons(awkward_dir, name):
    path, fragment = awkward_dir.bad[name]
    with pytest.raises(ImageLoadError) as e:
        load_image(path)
    assert e.value.path == str(path)
    assert e.value.reason.startswith(fragment)
    assert str(e.value).startswith(f"{path}: ")


def test_a_postscript_file_named_as_a_photo_is_not_handed_to_ghostscript(tmp_path, monkeypatch):
    """Any file of an image's name went to every reader Pillow has: a PostScript file named photo.jpg to its EPS
    reader, which runs Ghostscript on it (without Ghostscript: "corrupt image (Unable to locate Ghostscript…)")."""
    from PIL import EpsImagePlugin

    def ghostscript(*_a, **_k):
        raise AssertionError("Ghostscript was run")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", ghostscript)
    eps = tmp_path / "photo.jpg"
    Image.new("RGB", (20, 20), "red").save(eps, format="EPS")
    said = "a PostScript (EPS) file, which is not read (save it as PNG or JPEG)"
    with pytest.raises(ImageLoadError) as e:
        load_image(eps)
    assert e.value.reason == said
    assert data.verify_image(eps)[1] == said
    for kind in ("PNG", "JPEG", "TIFF", "WEBP", "GIF", "BMP"):  # the photo types still open, whatever their name
        Image.new("RGB", (20, 20), "red").save(tmp_path / "x.img", format=kind)
        assert load_image(tmp_path / "x.img").getpixel((5, 5))[0] > 200, kind


def test_load_image_missing_file_and_bad_array(tmp_path):
    with pytest.raises(ImageLoadError, match="file not found"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageLoadError, match="unsupported array shape"):
        load_image(np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(ImageLoadError, match=r"empty image \(0 x 5 pixels\)"):  # (ZeroDivisionError)
        data.load_for_model(Image.new("RGB", (0, 5)), 32)


# ---------------------------------------------------------------------------------------------------------- split


def test_split_deterministic_stratified(small_dataset):
    idx = scan(small_dataset)
    a = split(idx, val=0.25, test=0.25, seed=3)
    assert a == split(idx, val=0.25, test=0.25, seed=3)
    assert a != split(idx, val=0.25, test=0.25, seed=4)
    assert sorted(a.train + a.val + a.test) == list(range(len(idx.samples)))
    for part, n in ((a.val, 3), (a.test, 3), (a.train, 6)):
        per_class = np.bincount([idx.samples[i].label for i in part], minlength=3)
        assert per_class.tolist() == [n, n, n]


def test_split_small_classes_get_a_val_image(tmp_path, jpeg_writer):
    seed = iter(range(1000))
    for c, n in (("a", 2), ("b", 3), ("c", 20)):
        for i in range(n):
            jpeg_writer(tmp_path / c / f"{i}.jpg", next(seed))
    idx = scan(tmp_path)
    sp = split(idx, val=0.1, seed=0)
    val_labels = {idx.samples[i].label for i in sp.val}
    train_labels = {idx.samples[i].label for i in sp.train}
    assert val_labels == {0, 1, 2} and train_labels == {0, 1, 2}
    assert split(idx, val=0.0).val == []


def test_split_keeps_duplicates_together(tmp_path, jpeg_writer):
    seed = iter(range(1000))
    for c in ("a", "b"):
        for i in range(10):
            jpeg_writer(tmp_path / c / f"{i}.jpg", next(seed))
    for k in range(3):
        shutil.copy(tmp_path / "a" / "0.jpg", tmp_path / "a" / f"copy{k}.jpg")
    shutil.copy(tmp_path / "b" / "1.jpg", tmp_path / "b" / "copy.jpg")
    idx = scan(tmp_path)
    assert len(idx.duplicates) == 2
    pos = {s.path: i for i, s in enumerate(idx.samples)}
    for seed in range(12):
        sp = split(idx, val=0.3, test=0.2, seed=seed)
        where = {i: name for name in ("train", "val", "test") for i in getattr(sp, name)}
        for group in idx.duplicates:
            assert len({where[pos[p]] for p in group}) == 1, (seed, group)


def test_a_burst_of_copies_does_not_overfill_validation_nor_empty_train(tmp_path, jpeg_writer):
    """Each group of identical files went to validation whole while its quota was unmet: a burst of 6 copies in a
    class of 18 put 7-8 of 18 (not 4) in validation at 20 %, and a class of copies of one photo went there entire,
    leaving nothing to train on at any share above 0."""
    seed = iter(range(1000))
    for c in ("cat", "dog"):
        for i in range(12):
            jpeg_writer(tmp_path / c / f"{i}.jpg", next(seed))
        for k in range(6):
            shutil.copy(tmp_path / c / "0.jpg", tmp_path / c / f"burst{k}.jpg")
    jpeg_writer(tmp_path / "owl" / "0.jpg", next(seed))
    for k in range(4):
        shutil.copy(tmp_path / "owl" / "0.jpg", tmp_path / "owl" / f"copy{k}.jpg")
    idx = scan(tmp_path)
    names = idx.classes
    for s in range(20):
        sp = split(idx, val=0.2, seed=s)
        per_class = np.bincount([idx.samples[i].label for i in sp.val], minlength=3)
        assert per_class[names.index("cat")] == 4 and per_class[names.index("dog")] == 4, s
        owl = [i for i in range(len(idx.samples)) if idx.samples[i].label == names.index("owl")]
        assert set(owl) <= set(sp.train), s  # 5 copies of one photo: one group, which train keeps
    # every photo kept twice, and a quota of one image: a pair is as near as nothing, so it goes (else no class
    # would have a validation image at all)
    pairs = tmp_path / "pairs"
    for c in ("cat", "dog"):
        for i in range(6):
            jpeg_writer(pairs / c / f"{i}.jpg", next(seed))
            shutil.copy(pairs / c / f"{i}.jpg", pairs / c / f"{i} (copy).jpg")
    idx = scan(pairs)
    sp = split(idx, val=0.05, seed=0)
    assert sorted(Path(idx.samples[i].path).parent.name for i in sp.val) == ["cat", "cat", "dog", "dog"]
    cat_val = [Path(idx.samples[i].path) for i in sp.val if Path(idx.samples[i].path).parent.name == "cat"]
    assert len({p.stem.split(" ")[0] for p in cat_val}) == 1  # one photo and its copy
    # a class of two pairs and large shares: validation takes a pair for its quota of one, and test must not take
    # the other (the class had no training image left)
    few = tmp_path / "few"
    for i in range(2):
        jpeg_writer(few / "a" / f"{i}.jpg", next(seed))
        shutil.copy(few / "a" / f"{i}.jpg", few / "a" / f"{i} (copy).jpg")
    for i in range(10):
        jpeg_writer(few / "b" / f"{i}.jpg", next(seed))
    idx = scan(few)
    for val, test in ((0.2, 0.4), (0.1, 0.5), (0.3, 0.4)):
        for s in range(10):
            sp = split(idx, val=val, test=test, seed=s)
            assert {idx.samples[i].label for i in sp.train} == {0, 1}, (val, test, s)


# ---------------------------------------------------------------------------------------------------------- transforms


def test_resize_size_and_decode_for_size(tmp_path):
    assert resize_size(32) == 32 and resize_size(64) == 64 and resize_size(224) == 256 and resize_size(96) == 110
    img = Image.new("RGB", (200, 100), (10, 20, 30))
    t = decode_for_size(img, 224)
    assert t.dtype == torch.uint8 and tuple(t.shape) == (3, 256, 256)
    assert t[:, 0, 0].tolist() == [10, 20, 30]
    assert tuple(decode_for_size(Image.new("L", (30, 50)), 32).shape) == (3, 32, 32)


def test_a_long_strip_resizes_only_what_the_crop_keeps(monkeypatch):
    """A 1 x 1,000,000 PNG (2 KB, under Pillow's bomb limit) was resized whole to 32 x 32,000,000 first: 6 GB."""
    made: list[tuple[int, int]] = []
    resize = Image.Image.resize

    def recording(self, size, *args, **kwargs):
        made.append(tuple(size))
        return resize(self, size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", recording)
    strip = Image.fromarray(np.tile(np.arange(256, dtype=np.uint8), 4000)[:1_000_000, None])  # 1 wide, 1e6 tall
    t = decode_for_size(strip, 32)
    assert tuple(t.shape) == (3, 32, 32) and made and max(w * h for w, h in made) <= 32 * 32
    middle = np.asarray(strip)[500_000, 0]  # the crop is the strip's middle pixel, stretched
    assert abs(int(t[0, 16, 16]) - int(middle)) <= 1
    # a long picture that is merely long: the same pixels as resizing it whole, within one level
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (2000, 90, 3), dtype=np.uint8))
    whole = np.asarray(img.resize((36, 800), Image.Resampling.BILINEAR).crop((0, 382, 36, 418)), np.int16)
    assert np.abs(decode_for_size(img, 36).permute(1, 2, 0).numpy().astype(np.int16) - whole).max() <= 1


@pytest.mark.parametrize("augment", ["none", "light", "standard", "strong"])
@pytest.mark.parametrize("size", [32, 80])
def test_batch_transform_shapes_and_seeding(augment, size):
    cfg = DataConfig(image_size=size, augment=augment)
    r = resize_size(size)
    x = torch.randint(0, 256, (6, 3, r, r), dtype=torch.uint8)
    for train in (True, False):
        bt = BatchTransform(cfg, train)
        y = bt(x, generator=torch.Generator().manual_seed(1))
        assert y.dtype == torch.float32 and tuple(y.shape) == (6, 3, size, size)
        assert torch.isfinite(y).all()
        assert torch.equal(y, bt(x, generator=torch.Generator().manual_seed(1)))
        assert bt.describe().startswith("train:" if train else "eval:")
    if augment != "none":
        bt = BatchTransform(cfg, True)
        assert not torch.equal(
            bt(x, generator=torch.Generator().manual_seed(1)), bt(x, generator=torch.Generator().manual_seed(2))
        )


def _reference_augment(x, plan, s, gen):
    """The augmentations written out one image at a time, drawing the same random numbers in the same order."""
    import math

    import torch.nn.functional as F

    b = x.shape[0]
    if plan.crop == "pad":
        oy = torch.randint(0, x.shape[2] + 8 - s + 1, (b,), generator=gen)
        ox = torch.randint(0, x.shape[3] + 8 - s + 1, (b,), generator=gen)
        flip = torch.rand(b, generator=gen) < 0.5
        xp = F.pad(x, (4, 4, 4, 4))
        crops = [xp[i, :, oy[i] : oy[i] + s, ox[i] : ox[i] + s] for i in range(b)]
        return torch.stack([c.flip(-1) if f else c for c, f in zip(crops, flip, strict=True)]).float()
    lo, hi = plan.scale
    area, log_r, rx, ry, rf = (torch.rand(b, generator=gen) for _ in range(5))
    area = lo + (hi - lo) * area
    ratio = torch.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * log_r)
    cw, ch = torch.sqrt(area * ratio).clamp(max=1.0), torch.sqrt(area / ratio).clamp(max=1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = torch.where(rf < 0.5, -cw, cw)
    theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = (1 - cw) * (2 * rx - 1), ch, (1 - ch) * (2 * ry - 1)
    grid = F.affine_grid(theta, [b, 3, s, s], align_corners=False)
    return F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)


@pytest.mark.parametrize("size", [32, 112])
def test_batch_transform_crops_and_flips_as_written_out_per_image(size):
    """The batched crop + flip (a whole batch in two gathers, or one grid_sample on a grid made once) is the
    per-image recipe: pad-4 random crop and mirror at 32 px, random-resized crop (F.affine_grid's grid) at 112."""
    cfg = DataConfig(image_size=size, augment="standard")
    bt = BatchTransform(cfg, train=True)
    r = resize_size(size)
    x = torch.randint(0, 256, (16, 3, r, r), dtype=torch.uint8)
    x[:, :, :, : r // 3] = 0  # a left-right asymmetry, so a missing or extra flip shows
    got = bt(x, generator=torch.Generator().manual_seed(4))
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    expected = (_reference_augment(x, bt.plan, size, torch.Generator().manual_seed(4)) / 255 - mean) / std
    assert torch.allclose(got, expected, atol=1e-3), (got - expected).abs().max()
    flipped = torch.stack([e.flip(-1) for e in expected])
    assert (got - flipped).abs().amax(dim=(1, 2, 3)).max() > 0.5  # the check above can tell a flip apart


def test_batch_transform_eval_normalises_and_centre_crops():
    cfg = DataConfig(image_size=80)
    r = resize_size(80)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = torch.randint(0, 256, (2, 3, r, r), dtype=torch.uint8)
    y = BatchTransform(cfg, train=False)(x)
    off = (r - 80) // 2
    expected = (x[:, :, off : off + 80, off : off + 80].float() / 255 - mean) / std
    assert torch.allclose(y, expected, atol=1e-6)
    # augment "none" for training is exactly the eval transform
    assert torch.equal(BatchTransform(DataConfig(image_size=80, augment="none"), train=True)(x), y)


def test_batch_transform_overrides():
    bt = BatchTransform(DataConfig(image_size=32, augment="standard", hflip=False, color_jitter=0.5), True)
    assert not bt.plan.hflip and bt.plan.jitter == 0.5 and bt.plan.crop == "pad"
    x = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    x[:, :, :, :16] = 255
    bt_flip = BatchTransform(DataConfig(image_size=32, augment="none", random_erasing=1.0), True)
    y = bt_flip(x, generator=torch.Generator().manual_seed(0))
    assert (y == 0).any()  # erased patches hold 0 after normalisation
    assert "random erasing 1" in bt_flip.describe()


def test_preview_augmentations(small_dataset):
    path = next((small_dataset / "ant").glob("*.jpg"))
    ims = data.preview_augmentations(path, DataConfig(image_size=32, augment="strong"), n=5, seed=3)
    assert len(ims) == 5 and all(im.size == (32, 32) and im.mode == "RGB" for im in ims)
    again = data.preview_augmentations(path, DataConfig(image_size=32, augment="strong"), n=5, seed=3)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(ims, again, strict=True))


# ---------------------------------------------------------------------------------------------------------- loaders


def _collect(loader, epoch=0):
    loader.set_epoch(epoch)
    return list(loader)


def test_more_workers_than_cores_are_not_started_and_that_is_said(small_dataset, monkeypatch):
    """--num-workers 6 on 2 cores started 12 processes of ~0.5 GB each (train and val loaders), and torch's own
    warning about it came four times; 30 would have filled the memory."""
    import warnings

    from core.data import usable_cores

    idx = scan(small_dataset)
    cores = usable_cores()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (torch's "suggested max number of worker" warning fails the test)
        loader = make_loader(
            idx,
            list(range(10)),
            DataConfig(image_size=32, cache="stream"),
            batch_size=5,
            shuffle=False,
            seed=0,
            device="cpu",
            num_workers=cores + 30,
        )
    assert loader.workers == cores
    monkeypatch.setattr(data, "usable_cores", lambda: 2)  # taskset's 2 of 8 cores: the default leaves one to training
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert data.default_num_workers("cpu") == 1
    assert loader.describe().endswith(
        f"with {cores} worker(s); {cores + 30} workers asked for, {cores} used (one per core)"
    )


def test_memory_and_stream_give_identical_batches(small_dataset):
    idx = scan(small_dataset)
    sp = split(idx, val=0.25, seed=0)
    kw = dict(batch_size=5, shuffle=True, seed=7, device="cpu", num_workers=0)
    progress = []
    mem = make_loader(
        idx, sp.train, DataConfig(image_size=32, cache="memory"), progress=lambda d, t: progress.append((d, t)), **kw
    )
    stream = make_loader(idx, sp.train, DataConfig(image_size=32, cache="stream"), **kw)
    assert mem.mode == "memory" and stream.mode == "stream"
    assert progress[-1] == (len(sp.train), len(sp.train))
    assert len(mem) == len(stream) == 6 and mem.num_samples == 27
    assert "cached 27 images" in mem.describe() and "streaming 27 images" in stream.describe()
    for epoch in (0, 1):
        a, b = _collect(mem, epoch), _collect(stream, epoch)
        assert len(a) == len(b) == 6
        for ba, bb in zip(a, b, strict=True):
            assert ba.x.dtype == torch.uint8 and tuple(ba.x.shape[1:]) == (3, 32, 32)
            assert torch.equal(ba.x, bb.x) and torch.equal(ba.y, bb.y) and torch.equal(ba.idx, bb.idx)
            assert ba.errors == bb.errors == []
        assert sorted(torch.cat([x.idx for x in a]).tolist()) == sorted(sp.train)
    assert not torch.equal(_collect(mem, 0)[0].idx, _collect(mem, 1)[0].idx)  # reshuffled per epoch
    labels = [s.label for s in idx.samples]
    assert all(labels[i] == int(y) for bt in a for i, y in zip(bt.idx.tolist(), bt.y, strict=True))


@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_an_epoch_can_leave_out_its_first_batches(small_dataset, cache):
    """What a resumed, stopped epoch reads: the rest of the same order, counted from the left-out batches."""
    idx = scan(small_dataset)
    sp = split(idx, val=0.25, seed=0)
    loader = make_loader(
        idx,
        sp.train,
        DataConfig(image_size=32, cache=cache),
        batch_size=5,
        shuffle=True,
        seed=7,
        device="cpu",
        num_workers=0,
    )
    whole = _collect(loader, 3)
    assert loader.served == len(whole) == 6
    loader.set_epoch(3, skip=2)
    served = []
    rest = [served.append(loader.served) or b for b in loader]
    assert served == [3, 4, 5, 6] and loader.served == 6
    assert [b.idx.tolist() for b in rest] == [b.idx.tolist() for b in whole[2:]]
    assert all(torch.equal(a.x, b.x) for a, b in zip(rest, whole[2:], strict=True))
    assert len(_collect(loader, 3)) == 6  # set_epoch without skip reads the whole epoch again


def test_loader_matches_load_rule(small_dataset):
    idx = scan(small_dataset)
    loader = make_loader(idx, [0, 5], DataConfig(image_size=32), batch_size=2, shuffle=False, seed=0, device="cpu")
    b = next(iter(loader))
    for row, i in enumerate(b.idx.tolist()):
        assert torch.equal(b.x[row], data.load_for_model(idx.samples[i].path, 32))


def test_cache_budget(small_dataset):
    idx = scan(small_dataset)
    ids = list(range(len(idx.samples)))

    def loader(budget_mb: int):
        cfg = DataConfig(image_size=32, cache_budget_mb=budget_mb)
        return make_loader(idx, ids, cfg, batch_size=4, shuffle=False, seed=0, device="cpu", num_workers=0)

    tiny = loader(0)
    assert tiny.mode == "stream" and "budget" in tiny.describe()
    fits = loader(1)
    assert fits.mode == "memory"
    assert fits.cache.numel() * fits.cache.element_size() <= 1024 * 1024
    assert fits.cache.numel() == len(ids) * 3 * 32 * 32
    big = DataConfig(image_size=224, cache_budget_mb=1)  # 36 x 3 x 256 x 256 = 7 MB > 1 MB
    assert make_loader(idx, ids, big, batch_size=4, shuffle=False, seed=0, device="cpu", num_workers=0).mode == "stream"
    assert data.cache_budget_bytes(DataConfig(), "cpu") > 0
    # a given budget (the one the ranks of a distributed run agree on) decides, whatever the device has
    kw = dict(batch_size=4, shuffle=False, seed=0, device="cpu", num_workers=0)
    assert make_loader(idx, ids, DataConfig(image_size=32), budget=0, **kw).mode == "stream"


def test_the_processes_of_a_torchrun_share_the_machines_cache_budget(monkeypatch):
    """Each rank caches the whole training set: 4 CPU processes each with a quarter of the memory took it all."""
    monkeypatch.setattr(data, "total_memory_bytes", lambda: 16 << 30)
    monkeypatch.setattr(data, "available_memory_bytes", lambda: 12 << 30)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert data.cache_budget_bytes(DataConfig(), "cpu") == 4 << 30
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert data.cache_budget_bytes(DataConfig(), "cpu") == 1 << 30
    assert data.cache_budget_bytes(DataConfig(cache_budget_mb=100), "cpu") == 100 << 20  # (a number given stands)


def test_distributed_shards_cover_everything(small_dataset):
    idx = scan(small_dataset)
    ids = list(range(35))
    seen = []
    lens = set()
    for rank in range(4):
        ld = make_loader(
            idx,
            ids,
            DataConfig(image_size=32),
            batch_size=4,
            shuffle=True,
            seed=0,
            device="cpu",
            rank=rank,
            world_size=4,
        )
        lens.add((len(ld), ld.num_samples))
        seen += torch.cat([b.idx for b in ld]).tolist()
    assert lens == {(3, 9)}
    assert len(seen) == 36 and set(seen) == set(ids)  # padded to a multiple of the world size


def test_drop_last(small_dataset):
    idx = scan(small_dataset)
    ld = make_loader(
        idx, range(10), DataConfig(image_size=32), batch_size=4, shuffle=False, seed=0, device="cpu", drop_last=True
    )
    assert len(ld) == 2 and [len(b.y) for b in ld] == [4, 4]


def test_stream_mid_epoch_failure_is_reported(small_dataset):
    idx = scan(small_dataset)
    ids = list(range(8))
    ld = make_loader(
        idx,
        ids,
        DataConfig(image_size=32, cache="stream"),
        batch_size=4,
        shuffle=False,
        seed=0,
        device="cpu",
        num_workers=0,
    )
    victim = idx.samples[2].path
    os.remove(victim)
    Path(idx.samples[5].path).write_bytes(b"garbage")
    batches = list(ld)
    assert [len(b.y) for b in batches] == [3, 3]
    assert batches[0].errors == [(victim, "file not found")]
    assert batches[1].errors == [(idx.samples[5].path, "not an image (cannot identify image file)")]
    assert 2 not in batches[0].idx.tolist()


def test_memory_caching_failure_reported_in_first_batch_and_excluded(small_dataset):
    idx = scan(small_dataset)
    victim = idx.samples[3].path
    Path(victim).write_bytes(Path(victim).read_bytes()[:100])
    ld = make_loader(
        idx, range(8), DataConfig(image_size=32, cache="memory"), batch_size=4, shuffle=True, seed=0, device="cpu"
    )
    assert ld.mode == "memory" and ld.num_samples == 7 and len(ld) == 2
    first = list(ld)
    assert first[0].errors == [(victim, "truncated image")]
    assert all(b.errors == [] for b in first[1:])
    assert 3 not in torch.cat([b.idx for b in first]).tolist()
    assert all(b.errors == [] for b in _collect(ld, 1))


def test_all_failed_batch_errors_are_not_lost(small_dataset):
    idx = scan(small_dataset)
    ld = make_loader(
        idx,
        range(4),
        DataConfig(image_size=32, cache="stream"),
        batch_size=2,
        shuffle=False,
        seed=0,
        device="cpu",
        num_workers=0,
    )
    for i in (2, 3):
        os.remove(idx.samples[i].path)
    batches = list(ld)
    assert sum(len(b.errors) for b in batches) == 2
    assert sum(len(b.y) for b in batches) == 2


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_stream_with_spawned_worker(small_dataset):
    idx = scan(small_dataset)
    kw = dict(batch_size=6, shuffle=True, seed=1, device="cpu")
    ld = make_loader(idx, range(12), DataConfig(image_size=32, cache="stream"), num_workers=1, **kw)
    ref = make_loader(idx, range(12), DataConfig(image_size=32, cache="memory"), **kw)
    try:
        assert ld.workers == 1
        for a, b in zip(list(ld), list(ref), strict=True):
            assert torch.equal(a.x, b.x) and torch.equal(a.idx, b.idx)
        workers = ld._loader._iterator._workers  # persistent: alive between epochs
        assert workers and all(w.is_alive() for w in workers)
    finally:
        ld.close()  # (a trainer's run has ended): they end now, not when the loader is collected
    assert not any(w.is_alive() for w in workers)
    with pytest.raises(RuntimeError, match="closed"):
        list(ld)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_memory_cache_lives_on_the_gpu(small_dataset):
    idx = scan(small_dataset)
    kw = dict(batch_size=8, shuffle=True, seed=0, device="cuda")
    gpu = make_loader(idx, range(20), DataConfig(image_size=32, cache="memory"), **kw)
    stream = make_loader(idx, range(20), DataConfig(image_size=32, cache="stream"), num_workers=0, **kw)
    assert gpu.mode == "memory" and gpu.cache.is_cuda
    for a, b in zip(list(gpu), list(stream), strict=True):
        assert a.x.is_cuda and b.x.is_cuda and torch.equal(a.x, b.x) and torch.equal(a.idx, b.idx)
        y = BatchTransform(DataConfig(image_size=32, augment="strong"), True)(a.x, torch.Generator().manual_seed(0))
        assert y.is_cuda and y.shape == (len(a.y), 3, 32, 32)


# ---------------------------------------------------------------------------------------------------------- draft decode


def _photo(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Smooth colours plus mild noise: JPEG DCT scaling of this is close to a full decode + resize."""
    low = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(low).resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
    return Image.fromarray(np.clip(base + rng.normal(0, 4, (h, w, 1)), 0, 255).astype(np.uint8))


@pytest.fixture
def large_jpegs(tmp_path):
    """Two classes of 320x240 JPEGs (much larger than the 32 px model input), one with EXIF orientation 6."""
    rng = np.random.default_rng(5)
    for i in range(8):
        folder = tmp_path / ("a" if i % 2 else "b")
        folder.mkdir(exist_ok=True)
        img = _photo(rng, 320, 240)
        if i == 3:
            exif = Image.Exif()
            exif[0x0112] = 6
            img.save(folder / f"{i}.jpg", "JPEG", quality=90, exif=exif)
        else:
            img.save(folder / f"{i}.jpg", "JPEG", quality=90)
    return tmp_path


def test_draft_reduces_jpeg_decoding_but_keeps_the_short_side(large_jpegs):
    path = next((large_jpegs / "a").glob("*.jpg"))
    assert load_image(path).size == (320, 240)
    assert load_image(path, draft=32).size == (80, 60)  # 1/4 scale: 1/8 would make the short side 30 < 32
    assert load_image(path, draft=120).size == (160, 120)
    assert load_image(path, draft=256).size == (320, 240)  # never below the requested size
    fast, full = data.load_for_model(path, 32), decode_for_size(load_image(path), 32)
    assert fast.shape == full.shape == (3, 32, 32)
    assert (fast.float() - full.float()).abs().mean() < 3  # same picture, decoded at another scale
    png = large_jpegs / "big.png"
    _photo(np.random.default_rng(1), 320, 240).save(png)
    assert load_image(png, draft=32).size == (320, 240)  # not a JPEG: draft is a no-op


def test_draft_decode_is_identical_through_every_path(large_jpegs):
    from core.predict import Predictor

    idx = scan(large_jpegs)
    ids = list(range(len(idx.samples)))
    kw = dict(batch_size=3, shuffle=True, seed=2, device="cpu", num_workers=0)
    mem = make_loader(idx, ids, DataConfig(image_size=32, cache="memory"), **kw)
    stream = make_loader(idx, ids, DataConfig(image_size=32, cache="stream"), **kw)
    over = make_loader(idx, ids, DataConfig(image_size=32, cache="memory", cache_budget_mb=0), **kw)
    assert (mem.mode, stream.mode, over.mode) == ("memory", "stream", "stream")
    pred = Predictor(torch.nn.Identity(), idx.classes, 32)
    rotated = 0
    for bm, bs, bo in zip(list(mem), list(stream), list(over), strict=True):
        assert torch.equal(bm.x, bs.x) and torch.equal(bm.x, bo.x) and torch.equal(bm.idx, bs.idx)
        for row, i in enumerate(bm.idx.tolist()):
            path = idx.samples[i].path
            ref = data.load_for_model(path, 32)
            assert torch.equal(bm.x[row], ref)
            assert torch.equal(pred.decode(path), ref)  # the Predictor decodes exactly like training
            with open(path, "rb") as f:
                x, original = data.load_with_original(f, 32)
            assert torch.equal(x, ref)
            assert original.size in ((320, 240), (240, 320))
            rotated += original.size == (240, 320)
    assert rotated == 1  # the EXIF-rotated file went through draft + transpose like the others


def test_load_with_original_names_the_source_on_failure(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(ImageLoadError, match="bad.jpg"):
        data.load_with_original(bad, 32)
    with open(bad, "rb") as f, pytest.raises(ImageLoadError, match="bad.jpg: not an image"):
        data.load_with_original(f, 32)


def test_stream_over_budget_delivers_every_image_once_per_epoch(small_dataset):
    idx = scan(small_dataset)
    ids = list(range(len(idx.samples)))
    cfg = DataConfig(image_size=32, cache="memory", cache_budget_mb=0)  # asks for memory, cannot have it
    ld = make_loader(idx, ids, cfg, batch_size=8, shuffle=True, seed=3, device="cpu", num_workers=0)
    assert ld.mode == "stream" and ld.need > ld.budget == 0 and not hasattr(ld, "cache")
    assert "cache=memory but" in ld.describe()
    for epoch in (0, 1):
        got = torch.cat([b.idx for b in _collect(ld, epoch)]).tolist()
        assert sorted(got) == ids


def test_memory_and_workers_on_windows(monkeypatch):
    """Without /proc and sysconf every Windows PC was taken for 4 GiB (a 1 GiB cache budget)."""
    import os

    from core import data

    if os.name != "nt":
        assert data._windows_memory() is None  # (no kernel32 here: the portable answers are used)
    monkeypatch.setattr(data, "_windows_memory", lambda: (32 << 30, 20 << 30))
    monkeypatch.setattr(data, "usable_cores", lambda: 16)
    assert data.default_num_workers("cuda") == 8
    monkeypatch.setattr(os, "name", "nt")
    assert (data.total_memory_bytes(), data.available_memory_bytes()) == (32 << 30, 20 << 30)
    assert data.default_num_workers("cuda") == 4 and data.default_num_workers("cpu") == 4
    monkeypatch.setattr(data, "_windows_memory", lambda: None)  # the call failed: the portable answers
    assert data.total_memory_bytes() > 0 and data.available_memory_bytes() > 0


def test_a_lone_split_folder_and_unicode_twin_folders_are_said(tmp_path, jpeg_writer):
    """train/ beside cat/ and dog/ was read as a class named "train" without a word; café composed and decomposed
    (a copy between macOS and Linux) were merged into one class without a word."""
    for cls in ("train", "cat", "dog"):
        for i in range(2):
            jpeg_writer(tmp_path / "lone" / cls / f"{i}.jpg", i + 10 * len(cls))
    index = scan(tmp_path / "lone")
    assert index.classes == ["cat", "dog", "train"] and len(index.notes) == 1
    assert index.notes[0].startswith("train/ is read as a class beside the others")
    assert index.to_dict()["notes"] == index.notes
    for name, seed in (("caf\u00e9", 1), ("cafe\u0301", 2), ("dog", 3)):
        jpeg_writer(tmp_path / "twin" / name / f"{seed}.jpg", seed)
    twin = scan(tmp_path / "twin")
    assert twin.counts() == {"caf\u00e9": 2, "dog": 1}
    assert twin.notes == ["folders named 'caf\u00e9' in 2 Unicode spellings are one class (their images are merged)"]
    # a data set split in advance, and plain class folders, have nothing to say
    for part in ("train", "val"):
        for cls in ("cat", "dog"):
            jpeg_writer(tmp_path / "split" / part / cls / "0.jpg", len(part + cls))
    assert scan(tmp_path / "split").notes == [] and scan(tmp_path / "lone", min_classes=1).notes != []
    (tmp_path / "lone" / "train").rename(tmp_path / "lone" / "bird")
    assert scan(tmp_path / "lone").notes == []


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="needs symbolic links")
def test_problem_notes_count_files_and_folders_apart(tmp_path, jpeg_writer):
    """A link looping back to the data folder was counted among the files that could not be used."""
    for c in ("a", "b"):
        for i in range(3):
            jpeg_writer(tmp_path / c / f"{i}.jpg", i + (10 if c == "b" else 0))
    (tmp_path / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    os.symlink(tmp_path, tmp_path / "a" / "loop")
    idx = scan(tmp_path)
    assert idx.problem_notes() == ["1 file and 1 folder in the class folders could not be used and are left out"]
    shutil.copy(tmp_path / "a" / "0.jpg", tmp_path / "b" / "like_a.jpg")
    shutil.copy(tmp_path / "a" / "1.jpg", tmp_path / "stray.jpg")
    assert scan(tmp_path).problem_notes() == [
        "1 file and 1 folder in the class folders could not be used and are left out",
        "1 image outside the class folders is left out",
        "1 group of identical files in different classes (one image, two labels)",
    ]


def test_folder_problem_names_each_reason_and_never_raises(tmp_path):
    """A NUL in a typed path raised ValueError out of it (the callers had no reason to show)."""
    (tmp_path / "f.txt").write_text("x")
    assert data.folder_problem(tmp_path) == ""
    assert data.folder_problem(tmp_path / "none") == "no such folder"
    assert data.folder_problem(tmp_path / "f.txt") == "a file, not a folder"
    assert data.folder_problem(tmp_path / "f.txt" / "x") == "no such folder (a part of its path is a file)"
    assert data.folder_problem(str(tmp_path) + "/a\0b") == "no such folder"
    assert data.folder_problem(tmp_path / ("n" * 300)).startswith("cannot be opened (")


def test_an_input_of_a_type_that_is_no_image_is_named(tmp_path):
    """A tensor, None or a number was "cannot decode image (AttributeError: 'Tensor' object has no attribute
    'read')"."""
    import torch

    for thing, kind in ((torch.zeros(3, 8, 8), "Tensor"), (None, "NoneType"), (7, "int")):
        with pytest.raises(data.ImageLoadError, match=rf"not an image: a {kind} \(give a file's path"):
            data.load_image(thing)


def _counting_verify(monkeypatch) -> list[str]:
    seen: list[str] = []
    real = data.verify_image

    def counted(path):
        seen.append(path)
        return real(path)

    monkeypatch.setattr(data, "verify_image", counted)
    return seen


def _same_index(a, b) -> bool:
    return (a.classes, a.samples, a.bad_files, a.duplicates, a.content_digest, a.digests) == (
        b.classes,
        b.samples,
        b.bad_files,
        b.duplicates,
        b.content_digest,
        b.digests,
    )


def test_a_second_scan_decodes_only_what_changed_and_finds_the_same(tmp_path, jpeg_writer, monkeypatch):
    """The app opens on the last folder at every start: 20,000 images were read and decoded again each time
    (9.6 s; 0.8 s from the cache). Files found bad are checked at every scan; a file changed is checked again,
    even one written back with its old modification time and size."""
    root = tmp_path / "d"
    for i in range(4):
        jpeg_writer(root / "a" / f"{i}.jpg", i)
        jpeg_writer(root / "b" / f"{i}.jpg", 10 + i)
    shutil.copy(root / "a" / "0.jpg", root / "b" / "copy.jpg")
    (root / "b" / "broken.jpg").write_bytes((root / "a" / "1.jpg").read_bytes()[:200])
    seen = _counting_verify(monkeypatch)
    first = scan(root)
    assert len(seen) == 10 and len(first.bad_files) == 1 and first.duplicates
    seen.clear()
    again = scan(root)
    assert seen == [str(root / "b" / "broken.jpg")]  # the bad file alone, its reason said afresh
    assert _same_index(first, again)

    changed = root / "a" / "2.jpg"  # new content, same size and modification time (cp -p, rsync -t)
    st = os.stat(changed)
    other = (root / "b" / "2.jpg").read_bytes()
    changed.write_bytes(other[: st.st_size].ljust(st.st_size, b"\0"))
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns))
    seen.clear()
    third = scan(root)
    assert sorted(seen) == sorted([str(changed), str(root / "b" / "broken.jpg")])
    assert third.digests.get(str(changed)) != first.digests[str(changed)]  # (read again: not the old digest)
    seen.clear()
    assert _same_index(scan(root, use_cache=False), third) and len(seen) == 10


def test_a_damaged_or_unwritable_scan_cache_costs_only_time(tmp_path, jpeg_writer, monkeypatch):
    root = tmp_path / "d"
    for i in range(3):
        jpeg_writer(root / "a" / f"{i}.jpg", i)
        jpeg_writer(root / "b" / f"{i}.jpg", 10 + i)
    monkeypatch.setenv("RESNEXT_STUDIO_CACHE", str(tmp_path / "cache"))
    first = scan(root)
    (cache_file,) = (tmp_path / "cache" / "scans").iterdir()
    cache_file.write_text('{"version": 1, "files": [')  # cut short
    seen = _counting_verify(monkeypatch)
    assert _same_index(scan(root), first) and len(seen) == 6  # read again, whole
    seen.clear()
    assert _same_index(scan(root), first) and seen == []  # and the cache written again
    shutil.rmtree(tmp_path / "cache")
    (tmp_path / "cache").write_text("a file where the cache folder goes")
    assert _same_index(scan(root), first) and len(seen) == 6
