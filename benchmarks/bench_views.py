"""GUI-thread time of showing big results: an evaluation of many classes in the Evaluate tab (shown, shown again, a
cell of the matrix listed), and the Runs tab comparing many runs that each carry a large evaluation.json.

Each is a freeze of the window while it lasts, so each should stay well under a second; a cost that grows faster
than the count shows as a rising "per class" or "per run" column across sizes.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_views.py [--classes 100 300 600] [--runs 50 200]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def evaluation(classes: int, per_class: int = 12, seed: int = 0) -> dict:
    """A made-up evaluation.json of `classes` classes: a third of each class's images confused with others."""
    rng = random.Random(seed)
    names = [f"class_{i:04d}" for i in range(classes)]
    cm = [[0] * classes for _ in range(classes)]
    mis = []
    for t in range(classes):
        for k in range(per_class):
            p = t if k % 3 else rng.randrange(classes)
            cm[t][p] += 1
            if p != t:
                mis.append(
                    {
                        "path": f"/home/user/datasets/photos/{names[t]}/IMG_{t:04d}{k:02d}.jpg",
                        "true": names[t],
                        "predicted": names[p],
                    }
                )
                mis[-1]["confidence"] = rng.random()
    rows = [{"name": n, "precision": 0.7, "recall": 0.66, "f1": 0.68, "support": per_class} for n in names]
    return {
        "accuracy": sum(cm[i][i] for i in range(classes)) / (classes * per_class),
        "num_samples": classes * per_class,
        "split": "val",
        "class_names": names,
        "confusion_matrix": cm,
        "per_class": rows,
        "misclassified": mis,
        "errors": [],
    }


def timed(app, fn) -> float:
    """Seconds of `fn` plus the events it posted (the repaint included)."""
    t0 = time.perf_counter()
    fn()
    app.processEvents()
    return time.perf_counter() - t0


def bench_evaluate(app, sizes: list[int]) -> None:
    from gui.evaluate_tab import GALLERY_LIMIT, EvaluateTab
    from gui.worker import wait_for_workers

    tab = EvaluateTab()
    tab.resize(1400, 900)
    tab.show()
    print(f"\nEvaluate tab (12 images a class, a third misclassified; the gallery holds the {GALLERY_LIMIT} most sure)")
    print(
        f"{'classes':>8s} {'shown':>8s} {'again':>8s} {'/class ms':>10s} {'cell':>8s} {'its images':>10s} {'all':>8s}"
    )
    for n in sizes:
        ev = evaluation(n)
        first = timed(app, lambda ev=ev: tab.show_evaluation(ev))
        again = timed(app, lambda ev=ev: tab.show_evaluation(ev))
        shown = {(e["true"], e["predicted"]) for e in tab.gallery_entries()}
        # a cell none of whose images is among the most confident (with many classes, most cells)
        pair = next(
            ((m["true"], m["predicted"]) for m in ev["misclassified"] if (m["true"], m["predicted"]) not in shown), None
        )
        pair = pair or (ev["misclassified"][-1]["true"], ev["misclassified"][-1]["predicted"])
        cell = timed(app, lambda pair=pair: tab.filter_gallery(pair))
        listed = len(tab.gallery_entries())
        back = timed(app, lambda: tab.filter_gallery(None))
        print(f"{n:8d} {first:8.2f} {again:8.2f} {again / n * 1000:10.2f} {cell:8.3f} {listed:10d} {back:8.3f}")
        wait_for_workers(60)
    tab.close()


def bench_runs(app, sizes: list[int], tmp: Path) -> None:
    from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from core.runs import write_history
    from gui.runs_tab import RunsTab

    ev = json.dumps(evaluation(300))  # a run evaluated on 3600 images: 2 MB
    print(f"\nRuns tab (each run with a {len(ev) / 1e6:.1f} MB evaluation.json)")
    print(f"{'runs':>8s} {'listed':>8s} {'all selected':>13s} {'/run ms':>8s} {'one run':>8s} {'RSS MB':>8s}")
    for n in sizes:
        root = tmp / f"runs{n}"
        cfg = json.dumps(RunConfig(data=DataConfig(root="/data/x"), model=ModelConfig(), train=TrainConfig()).to_dict())
        for i in range(n):
            d = root / f"20260101-{i:06d}-resnext11_2x4d-x"
            d.mkdir(parents=True)
            (d / "config.json").write_text(cfg)
            (d / "status.json").write_text(json.dumps({"status": "completed", "started": 1.7e9 + i, "epochs_done": 5}))
            (d / "evaluation.json").write_text(ev)
            history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1 / e, "val_acc": 0.1 * e} for e in range(1, 6)]
            write_history(d, history)
        tab = RunsTab()
        tab.resize(1400, 900)
        tab.show()
        listed = timed(app, lambda tab=tab, root=root: tab.set_runs_dir(root))
        every = [str(p) for p in sorted(root.iterdir())]
        selected = timed(app, tab.table.selectAll)  # (Ctrl+A)
        one = timed(app, lambda tab=tab, every=every: tab.select_runs(every[:1]))
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{n:8d} {listed:8.2f} {selected:13.2f} {selected / n * 1000:8.1f} {one:8.3f} {rss:8.0f}")
        tab.close()
        shutil.rmtree(root)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", type=int, nargs="*", default=[100, 300, 600])
    ap.add_argument("--runs", type=int, nargs="*", default=[50, 200])
    args = ap.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(tempfile.mkdtemp(prefix="bench-views-"))
    from PySide6.QtCore import QSettings

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "settings"))
    from gui.app import create_application

    app = create_application()
    try:
        bench_evaluate(app, args.classes)
        bench_runs(app, args.runs, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nmachine load average (1 min) / cores: {load:.1f} / {os.cpu_count()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
