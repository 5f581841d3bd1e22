"""Capture the README screenshots: open the main window on the bundled sample, train briefly, grab every tab.

Usage: python tools/screenshots.py [--out docs/screenshots] [--epochs 3] [--image-size 32]
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
    p.add_argument("--arch", default="resnext11_4x8d")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=4, help="epochs finished before the mid-run capture")
    p.add_argument("--size", default="1280x820")
    args = p.parse_args(argv)

    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(tempfile.mkdtemp(prefix="resnext-shots-"))
    os.environ["RESNEXT_STUDIO_RUNS"] = str(tmp / "runs")
    from PySide6.QtCore import QSettings

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "settings"))

    from gui.app import create_application
    from gui.main_window import MainWindow

    app = create_application()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    w, h = (int(v) for v in args.size.split("x"))
    window = MainWindow(data_dir=args.data, runs_dir=str(tmp / "runs"))
    window.resize(w, h)
    window.show()
    window.start_background_init()

    def spin(cond, timeout: float, step: float = 0.03) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            app.processEvents()
            if cond():
                return True
            time.sleep(step)
        app.processEvents()
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
    panel.set_image_size(args.image_size)
    panel.class_table.selectRow(1)
    spin(lambda: panel.thumbnails_loaded >= min(30, panel.thumb_grid.count()), 60)
    spin(lambda: panel.preview_grid.count() > 0, 120)
    grab("dataset.png")

    window.tabs.setCurrentWidget(tab)
    spin(lambda: "detecting" not in window.device_label.text(), 120)
    spin(lambda: bool(tab.model_panel.presets), 120)
    tab.model_panel.set_arch(args.arch)
    tab.set_train_values({"epochs": args.epochs + 5, "batch_size": 16, "lr": 2e-3, "warmup_epochs": 0,
                          "device": "cpu"})
    spin(lambda: tab.model_panel.last_summary is not None
         and tab.model_panel.last_summary.get("image_size") == args.image_size, 120)
    grab("train_settings.png")

    if not tab.start():
        print(f"could not start training: {tab.banner.text()}", file=sys.stderr)
        return 1
    spin(lambda: tab.charts is not None and tab.charts.epoch_points >= args.epochs, 1800, 0.05)
    spin(lambda: tab.epoch_label.text().startswith(f"Epoch {args.epochs + 1} ")
         and tab.batch_bar.value() >= tab.batch_bar.maximum() // 2, 600, 0.05)
    grab("training.png")
    tab.stop()
    spin(lambda: tab.state == "idle", 300)
    grab("train_result.png")

    run_dir = tab.run_dir
    best = Path(run_dir) / "best.pt" if run_dir else None
    if best is not None and best.is_file() and window.evaluate_tab is not None:
        window.show_evaluation(run_dir)
        ev_tab = window.evaluate_tab
        settle(2)
        current = getattr(ev_tab, "evaluation", None)
        current = current() if callable(current) else current
        if current is None and hasattr(ev_tab, "evaluate_now"):
            ev_tab.evaluate_now()
        settle(2)
        spin(lambda: not getattr(ev_tab, "is_busy", lambda: False)(), 300)
        settle(2)
        grab("evaluate.png")
    if best is not None and best.is_file() and window.predict_tab is not None:
        window.predict_with(str(best))
        images = sorted(Path(args.data).glob("*/*.jpg"))[::37][:12]
        settle(3)
        window.predict_tab.predict_paths([str(p) for p in images])
        settle(20)
        grab("predict.png")
    if window.runs_tab is not None:
        window.tabs.setCurrentWidget(window.runs_tab)
        window.runs_tab.refresh()
        settle(3)
        if run_dir and hasattr(window.runs_tab, "select_runs"):
            window.runs_tab.select_runs([run_dir])
        settle(5)
        grab("runs.png")
    window.confirm_close = False
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
