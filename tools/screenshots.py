"""Capture the README screenshots: open the main window on the bundled sample, train briefly, grab every tab.

Usage: python tools/screenshots.py [--out docs/screenshots] [--epochs 15]
Runs offscreen unless DISPLAY is set (then a real window is shown and grabbed). Settings and runs go to a
temporary folder, so the user's own configuration is never touched.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    p.add_argument("--data", default=str(REPO / "resources" / "sample"))
    p.add_argument("--arch", default="", help="default: the recommended model for the CPU")
    p.add_argument("--epochs", type=int, default=15, help="epochs of the first run")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--size", default="1280x820")
    args = p.parse_args(argv)

    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(tempfile.mkdtemp(prefix="resnext-shots-"))
    os.environ["RESNEXT_STUDIO_RUNS"] = str(tmp / "runs")
    from PySide6.QtCore import QEventLoop, QSettings

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "settings"))

    from gui.app import create_application
    from gui.main_window import MainWindow

    app = create_application()  # noqa: F841 - kept alive for the whole capture
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    w, h = (int(v) for v in args.size.split("x"))
    window = MainWindow(data_dir=args.data, runs_dir=str(tmp / "runs"))
    window.resize(w, h)
    window.show()
    window.start_background_init()

    loop = QEventLoop()

    def spin(cond, timeout: float, step: float = 0.03) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            loop.processEvents()
            if cond():
                return True
            time.sleep(step)
        loop.processEvents()
        return bool(cond())

    def settle(seconds: float = 0.6) -> None:
        spin(lambda: False, seconds)

    def grab(name: str) -> None:
        settle()
        path = out / name
        window.grab().save(str(path))
        print(f"wrote {path}")

    panel, tab = window.dataset_panel, window.train_tab
    if not spin(lambda: panel.index is not None or bool(panel.last_error), 300):
        print("the data set scan did not finish", file=sys.stderr)
        return 1
    window.tabs.setCurrentWidget(tab)
    spin(lambda: "detecting" not in window.device_label.text(), 120)
    spin(lambda: bool(tab.model_panel.presets), 120)
    window.tabs.setCurrentWidget(panel)
    panel.class_table.selectRow(1)
    spin(lambda: panel.thumbnails_loaded >= min(30, panel.thumb_grid.count()), 60)
    spin(lambda: panel.preview_grid.count() > 0, 120)
    grab("dataset.png")

    def train(epochs: int, lr: float, capture_at: int | None) -> str | None:
        """One run with the recommended CPU settings; optionally grab the window mid-run."""
        window.tabs.setCurrentWidget(tab)
        tab.apply_recommended()
        if args.arch:
            tab.model_panel.set_arch(args.arch)
        tab.set_train_values({"epochs": epochs, "lr": lr, "device": "cpu"})
        spin(lambda: tab.model_panel.last_summary is not None, 120)
        if capture_at is not None:
            grab("train_settings.png")
        if not tab.start():
            print(f"could not start training: {tab.banner.text()}", file=sys.stderr)
            return None
        if capture_at is not None:
            spin(lambda: tab.charts is not None and tab.charts.epoch_points >= capture_at, 1800, 0.05)
            spin(lambda: tab.batch_bar.value() >= tab.batch_bar.maximum() // 2, 600, 0.05)
            grab("training.png")
        spin(lambda: tab.state == "idle", 3600, 0.1)
        return tab.run_dir

    first = train(args.epochs, args.lr, capture_at=max(2, args.epochs * 2 // 3))
    grab("train_result.png")
    second = train(max(3, args.epochs // 3), args.lr * 3, capture_at=None)
    run_dir = first

    best = Path(run_dir) / "best.pt" if run_dir else None
    if best is not None and best.is_file() and window.evaluate_tab is not None:
        window.show_evaluation(run_dir)
        ev_tab = window.evaluate_tab
        settle(2)
        if ev_tab.evaluation() is None:
            ev_tab.evaluate_now()
        spin(lambda: not ev_tab.is_busy(), 300)
        settle(1)
        grab("evaluate.png")
        if ev_tab.gallery_entries():
            ev_tab.side_tabs.setCurrentIndex(1)
            settle(2)
            ev_tab.gallery.setCurrentRow(0)
            spin(lambda: ev_tab.detail_result() is not None, 120)
            grab("evaluate_gallery.png")
    if best is not None and best.is_file() and window.predict_tab is not None:
        pt = window.predict_tab
        window.predict_with(str(best))
        notes = tmp / "notes.txt"
        notes.write_text("not an image")
        images = sorted(Path(args.data).glob("*/*.jpg"))[5::41][:10]
        settle(1)
        pt.predict_paths([str(p) for p in images] + [str(notes)])
        spin(lambda: not pt.is_busy(), 300)
        grab("predict.png")
        pt.predict_paths([str(images[3])])
        spin(lambda: not pt.is_busy(), 300)
        pt.cam_check.setChecked(True)
        settle(4)
        grab("predict_one.png")
    if window.runs_tab is not None:
        window.tabs.setCurrentWidget(window.runs_tab)
        window.runs_tab.refresh()
        settle(2)
        window.runs_tab.select_runs([r for r in (first, second) if r])
        settle(3)
        grab("runs.png")
    window.confirm_close = False
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
