"""GUI overhead benchmark: training through the Train tab vs headless, event-loop stalls, start-up to window.

Usage: python benchmarks/bench_gui.py [--epochs 3] [--repeats 4] [--gap-runs 2] [--per-class 48] [--image-size 32]
Prints a table: (a) headless/GUI throughput ratio (target ≥ 0.97), (b) longest event-loop gap while the GUI
trains (target ≤ 100 ms), (c) seconds from process start to a visible window (target ≤ 1.5 s).
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def make_dataset(root: Path, classes: int, per_class: int, size: int = 40) -> Path:
    import random

    from PIL import Image, ImageDraw

    rng = random.Random(0)
    for c in range(classes):
        d = root / f"class{c}"
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = Image.new("RGB", (size, size), tuple(rng.randrange(256) for _ in range(3)))
            draw = ImageDraw.Draw(img)
            x, y = rng.randrange(size // 2), rng.randrange(size // 2)
            box = [x, y, x + size // 3, y + size // 3]
            (draw.ellipse if c % 2 else draw.rectangle)(box, fill=(255, 255, 255) if c < 2 else (0, 0, 0))
            img.save(d / f"{i:03d}.jpg", quality=90)
    return root


def startup_times(repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as home:
            env = {
                **os.environ,
                "QT_QPA_PLATFORM": "offscreen",
                "RESNEXT_STUDIO_EXIT_WHEN_SHOWN": "1",
                "HOME": home,
                "XDG_CONFIG_HOME": str(Path(home) / "cfg"),
                "PYTHONPATH": str(REPO),
            }
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, str(REPO / "main.py"), "gui"],
                env=env,
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            line = proc.stdout.readline()
            t = time.perf_counter() - t0
            proc.wait(timeout=120)
            if "window-visible True" in line:
                times.append(t)
    return times


def headless_worker(spec_json: str) -> None:
    """Child process: scan and one warm-up fit (untimed: first-run kernel generation, lazy imports), then time
    Trainer(...).fit(); prints [wall s, sum of epoch seconds]."""
    from core.config import RunConfig
    from core.data import scan
    from core.engine import Trainer

    spec = json.loads(spec_json)
    index = scan(spec["data"])
    Trainer(RunConfig.from_dict(spec["config"]), index, runs_dir=spec["runs"]).fit()  # warm-up, as in the GUI
    t0 = time.perf_counter()
    result = Trainer(RunConfig.from_dict(spec["config"]), index, runs_dir=spec["runs"]).fit()
    wall = time.perf_counter() - t0
    assert result.reason == "completed", result.message
    print(json.dumps([wall, sum(r["seconds"] for r in result.history)]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--per-class", type=int, default=48)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--arch", default="resnext11_4x8d")
    ap.add_argument("--startup-repeats", type=int, default=5)
    ap.add_argument("--headless-worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--gap-runs", type=int, default=2, help="GUI runs with the 10 ms event-loop probe")
    args = ap.parse_args(argv)
    if args.headless_worker:
        headless_worker(args.headless_worker)
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="bench-gui-"))
    os.environ["RESNEXT_STUDIO_RUNS"] = str(tmp / "runs")
    from PySide6.QtCore import QEventLoop, QSettings, QTimer

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "settings"))
    from gui.app import create_application, freeze_imported_objects, pause_gc_for_imports

    pause_gc_for_imports()  # as MainWindow does around its background imports

    app = create_application()
    from gui.dataset_panel import DatasetPanel
    from gui.train_tab import TrainTab
    from gui.worker import wait_for_workers

    data = make_dataset(tmp / "data", 4, args.per_class)
    panel = DatasetPanel()
    tab = TrainTab(panel, runs_dir=str(tmp / "runs"))
    tab.resize(1280, 800)
    tab.show()
    panel.load_folder(str(data))
    while panel.index is None:
        app.processEvents()
        time.sleep(0.01)
    panel.set_image_size(args.image_size)
    tab.model_panel.set_arch(args.arch)
    tab.set_train_values({"epochs": args.epochs, "batch_size": 16, "device": "cpu", "warmup_epochs": 0})
    config = tab.build_config()
    n_train = None

    def headless() -> tuple[float, float]:
        """Trainer.fit() in a process of its own, as the command line runs it. Not in this process: a torch
        parallel region on this (main) thread would leave an OpenMP thread pool here, and with more OpenMP threads
        than cores libgomp stops spinning between regions, which slowed a later training thread (the GUI's) by
        5-7 % on 2 cores. The application never computes on its GUI thread, so that would not be its speed."""
        spec = json.dumps({"config": config.to_dict(), "data": str(data), "runs": str(tmp / "runs")})
        proc = subprocess.run(
            [sys.executable, __file__, "--headless-worker", spec],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        if proc.returncode != 0:
            raise RuntimeError(f"headless run failed:\n{proc.stderr[-3000:]}")
        wall, epochs = json.loads(proc.stdout.strip().splitlines()[-1])
        return float(wall), float(epochs)

    gaps: list[float] = []
    draw_cpu: list[float] = []
    blit_cpu: list[float] = []
    gui_cpu: list[float] = []
    slot_cpu: list[float] = []
    tab.ensure_charts()
    canvas = tab.charts
    freeze_imported_objects()  # what MainWindow does once torch and matplotlib are imported
    gc_pauses: list[float] = []
    gc_start = [0.0]

    def gc_probe(phase: str, info: dict) -> None:
        if phase == "start":
            gc_start[0] = time.perf_counter()
        elif info["generation"] == 2:
            gc_pauses.append(time.perf_counter() - gc_start[0])

    gc.callbacks.append(gc_probe)
    plain_render = canvas._render

    def timed_render(*a, **k):  # GUI-thread CPU time of one chart update (insensitive to other processes)
        t = time.thread_time()
        full = canvas.full_draws
        plain_render(*a, **k)
        (draw_cpu if canvas.full_draws > full else blit_cpu).append(time.thread_time() - t)

    canvas._render = timed_render
    plain_batch = tab._on_batch

    def timed_batch(p):
        t = time.thread_time()
        plain_batch(p)
        slot_cpu.append(time.thread_time() - t)

    from gui.worker import _Relay

    tab.worker_slot_for_bench_receiver = _Relay(timed_batch, tab)

    def idle_gaps(seconds: float) -> list[float]:
        out: list[float] = []
        last = [time.perf_counter()]

        def tick() -> None:
            now = time.perf_counter()
            out.append(now - last[0])
            last[0] = now

        timer = QTimer()
        timer.setInterval(10)
        timer.timeout.connect(tick)
        timer.start()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.001)
        timer.stop()
        return out

    def gui_run(measure_gaps: bool = False) -> tuple[float, float]:
        """One run through the Train tab, waited for in the Qt event loop as the application does. With
        measure_gaps a 10 ms timer records event-loop gaps; it wakes the GUI thread 100 times a second, so the
        throughput runs go without it."""
        nonlocal n_train
        last = [time.perf_counter()]

        def tick() -> None:
            now = time.perf_counter()
            gaps.append(now - last[0])
            last[0] = now

        timer = QTimer()
        timer.setInterval(10)
        timer.timeout.connect(tick)
        loop = QEventLoop()
        tab.run_finished.connect(loop.quit)
        t0 = time.perf_counter()
        cpu0 = time.thread_time()
        assert tab.start(), tab.banner.text()
        tab.worker.batch.disconnect(tab._on_batch)
        tab.worker.batch.connect(tab.worker_slot_for_bench_receiver.call)
        last[0] = time.perf_counter()
        if measure_gaps:
            timer.start()
        if tab.result is None:
            loop.exec()
        timer.stop()
        tab.run_finished.disconnect(loop.quit)
        while tab.state != "idle":
            app.processEvents()
        wall = time.perf_counter() - t0
        if not measure_gaps:
            gui_cpu.append(time.thread_time() - cpu0)
        assert tab.result.reason == "completed", tab.result.message
        n_train = tab.fit_info.train_size
        tab.result = None
        with open(Path(tab.run_dir) / "history.csv", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        return wall, sum(float(r["seconds"]) for r in rows)

    gui_run()  # warm-up of this process (the headless child warms itself up)
    gui_cpu.clear()
    h_runs, g_runs = [], []
    for i in range(args.repeats):  # alternate the order: the machine's load drifts
        if i % 2:
            g_runs.append(gui_run())
            h_runs.append(headless())
        else:
            h_runs.append(headless())
            g_runs.append(gui_run())
    for _ in range(args.gap_runs):
        gui_run(measure_gaps=True)
    wait_for_workers(60)
    from PySide6.QtCore import QCoreApplication, QEvent

    for w in (tab, panel):
        w.close()
        w.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    app.processEvents()

    h_wall = min(r[0] for r in h_runs)
    g_wall = min(r[0] for r in g_runs)
    h_ep = min(r[1] for r in h_runs)
    g_ep = min(r[1] for r in g_runs)
    gc.callbacks.remove(gc_probe)
    baseline = idle_gaps(5.0)
    worst_gap_ms = max(gaps) * 1000 if gaps else float("nan")
    p99 = sorted(gaps)[int(0.99 * (len(gaps) - 1))] * 1000 if gaps else float("nan")
    starts = startup_times(args.startup_repeats)

    print(
        f"\nGUI benchmark ({args.arch}, {args.image_size} px, {args.epochs} epochs, {n_train} training images, "
        f"batch 16, CPU, {args.repeats} GUI/headless pairs)"
    )
    print(f"{'measure':48s} {'value':>12s} {'target':>10s}")
    print(f"{'headless fit() wall time (s)':48s} {h_wall:12.2f}   runs: " + " ".join(f"{r[0]:.2f}" for r in h_runs))
    print(
        f"{'GUI (Train tab + worker) wall time (s)':48s} {g_wall:12.2f}   runs: "
        + " ".join(f"{r[0]:.2f}" for r in g_runs)
    )
    pairs = [h[0] / g[0] for h, g in zip(h_runs, g_runs, strict=True)]  # run back to back: same machine state
    pairs_ep = [h[1] / g[1] for h, g in zip(h_runs, g_runs, strict=True)]
    print(
        f"{'(a) GUI/headless, median of paired runs, wall':48s} {statistics.median(pairs):12.3f} {'≥ 0.97':>10s}"
        f"   pairs: {' '.join(f'{r:.3f}' for r in pairs)}"
    )
    print(
        f"{'(a) GUI/headless, median of paired runs, epochs':48s} {statistics.median(pairs_ep):12.3f} {'≥ 0.97':>10s}"
    )
    print(f"{'    best GUI run / best headless run, wall':48s} {h_wall / g_wall:12.3f}")
    print(f"{'    best GUI run / best headless run, epochs':48s} {h_ep / g_ep:12.3f}")
    print(f"{'(b) longest event-loop gap while training (ms)':48s} {worst_gap_ms:12.1f} {'≤ 100':>10s}")
    print(f"{'    99th percentile gap (ms)':48s} {p99:12.1f}")
    print(f"{'    GUI thread CPU per run, start to end (ms)':48s} {min(gui_cpu) * 1000:12.0f}")
    print(f"{'    same timer, idle loop, no training (ms)':48s} {max(baseline) * 1000:12.1f}")
    if draw_cpu:
        print(
            f"{'    full chart draws: count / max GUI CPU (ms)':48s} {len(draw_cpu):6d} / {max(draw_cpu) * 1000:5.1f}"
        )
    if blit_cpu:
        print(f"{'    curve blits: count / max GUI CPU (ms)':48s} {len(blit_cpu):6d} / {max(blit_cpu) * 1000:5.1f}")
    print(
        f"{'    full garbage collections: count / longest (ms)':48s} {len(gc_pauses):6d} / "
        f"{max(gc_pauses, default=0) * 1000:5.1f}"
    )
    if slot_cpu:
        print(f"{'    batch updates: count / max GUI CPU (ms)':48s} {len(slot_cpu):6d} / {max(slot_cpu) * 1000:5.1f}")
    if starts:
        print(
            f"{'(c) process start → visible window, median (s)':48s} {statistics.median(starts):12.2f} {'≤ 1.5':>10s}"
        )
        print(f"{'    best of ' + str(len(starts)) + ' (s)':48s} {min(starts):12.2f}")
    else:
        print("(c) the window did not report itself visible")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{'machine load average (1 min) / cores':48s} {load:8.1f} / {os.cpu_count()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
