"""Multi-GPU / multi-node training under torchrun: process-group set-up, collectives, and launching/following a job.

How a run is distributed (the rules core.engine.Trainer follows when WORLD_SIZE > 1):

- `torchrun --nproc_per_node=N main.py train ...` starts N processes; each reads RANK / WORLD_SIZE / LOCAL_RANK,
  uses `cuda:LOCAL_RANK` with the NCCL backend (Gloo when training on the CPU) and wraps the model in
  DistributedDataParallel (after SyncBatchNorm when `train.sync_bn`, CUDA only).
- Global batch rule: `train.batch_size` (`--batch-size`) is the GLOBAL batch. Each process gets
  batch_size // world_size images per step (when it does not divide evenly the remainder is dropped and a warning
  says so; fewer than 2 per process is an error). The learning rate belongs to the global batch: changing the
  number of GPUs at a fixed global batch needs no learning-rate change.
- Each process sees a different shard of every epoch (DistributedSampler semantics: one shuffle per epoch seeded
  by (seed, epoch), padded to divide evenly) and draws augmentation from seed + rank. Loss sums, correct counts and
  image counts are summed across processes, so history.csv holds whole-data-set numbers: exactly for validation
  (the padding copies are taken back), and for training with up to world_size - 1 images the padding repeats
  (trained twice, counted twice: 54 for 53 images on 2 processes).
- Rank 0 alone creates the run folder (its path is broadcast) and writes checkpoints, history.csv, status.json,
  progress.json, evaluation.json and curves.png; the other ranks' callbacks are silent.
- Stop and failure decisions are collective: every step the ranks agree (stop requested, batch too small, the
  earliest loss any rank has read as not finite), so they stop together and rank 0 saves last.pt. They agree in a
  Gloo group of host values (`agree`), never on the GPU: the host does not wait for the GPU to finish the steps
  queued before a decision. A non-finite loss is noticed when a progress read of the running loss arrives (reads
  are queued every PROGRESS_INTERVAL_S and land a step or two later), and at the latest at the epoch's end or at
  a stop, before last.pt is written. SIGINT/SIGTERM set the stop request. A rank that crashes makes the others fail on the next agreement
  (Gloo notices the closed connection) or at the process-group timeout (RESNEXT_STUDIO_DDP_TIMEOUT_S, default
  600 s); torchrun then ends the job. Checkpoints are written atomically, so rank 0's last.pt stays intact: it
  holds the last epoch saved (written at epoch ends, at most once every train.save_every_s; none before the first).
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from core.config import ConfigError

DEFAULT_TIMEOUT_S = 600
RUN_INFO_ENV = "RESNEXT_STUDIO_RUN_INFO"  # file where rank 0 writes {"run_dir": ...} once the run folder exists
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device | None = None  # None when not distributed (the trainer resolves the device itself)
    backend: str | None = None  # "nccl" | "gloo" | None
    initialized_here: bool = False  # this call created the process group (so cleanup() should end it)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world_size() -> int:
    """WORLD_SIZE from the environment (1 when not started by torchrun)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        raise ConfigError(f"WORLD_SIZE={os.environ.get('WORLD_SIZE')!r}: not a number") from None


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r}: not a number") from None


def env_timeout_s() -> float:
    """RESNEXT_STUDIO_DDP_TIMEOUT_S, in seconds (DEFAULT_TIMEOUT_S when unset); anything but a positive number is
    refused in words (it had raised a traceback on every process, and 0 a C++ stack dump)."""
    value = os.environ.get("RESNEXT_STUDIO_DDP_TIMEOUT_S")
    if value is None:
        return float(DEFAULT_TIMEOUT_S)
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"RESNEXT_STUDIO_DDP_TIMEOUT_S={value!r}: not a positive number of seconds")
    return seconds


def init_from_env(device: str = "auto", timeout_s: float | None = None) -> DistContext:
    """Join the torchrun process group described by RANK / WORLD_SIZE / LOCAL_RANK (no-op when WORLD_SIZE is 1).

    `device` is the run's train.device: "auto"/"cuda"/"cuda:N" → cuda:LOCAL_RANK with NCCL when CUDA is available;
    "cpu" (or no CUDA) → the CPU with Gloo. Raises ConfigError for settings that cannot work.
    """
    world = env_world_size()
    if world <= 1:
        return DistContext()
    local_rank = _env_int("LOCAL_RANK", 0)
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed support")
    want = (device or "auto").strip().lower()
    if want == "mps":
        raise ConfigError("device='mps': distributed training is not supported on Apple GPUs; use one process")
    use_cuda = want != "cpu" and torch.cuda.is_available()
    if want.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={want!r}: no CUDA GPU is available on this machine; use --device cpu")
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK={local_rank}: only {torch.cuda.device_count()} CUDA device(s) on "
                f"{socket.gethostname()}; lower --nproc_per_node"
            )
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
        backend = "nccl" if dist.is_nccl_available() else "gloo"  # (Windows builds have no NCCL; Gloo does CUDA too)
    else:
        dev, backend = torch.device("cpu"), "gloo"
    timeout = timeout_s if timeout_s is not None else env_timeout_s()
    here = False
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout))
        here = True
    _make_control_group(timeout)  # now, in the same order on every rank; network trouble shows before the run
    backend = str(dist.get_backend())
    return DistContext(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=local_rank,
        device=dev,
        backend=backend,
        initialized_here=here,
    )


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_main() -> bool:
    """True on rank 0, and always when not running distributed."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum `tensor` over all ranks in place (and return it); unchanged when not distributed."""
    if _active():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


_control_group: Any = None
SEPARATE_CONTROL_GROUP = False  # tests: a second Gloo group even when the default one is Gloo (as beside NCCL)


def _make_control_group(timeout_s: float) -> None:
    """The Gloo group the ranks agree in: the default group under Gloo, a second (CPU) group beside NCCL, with the
    same timeout. Collective: every rank calls it at the same point (init_from_env)."""
    global _control_group
    if dist.get_backend() == "gloo" and not SEPARATE_CONTROL_GROUP:
        _control_group = dist.group.WORLD
    else:
        _control_group = dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=timeout_s))


def _control() -> Any:
    if _control_group is None:  # a process group made elsewhere, then used directly
        _make_control_group(env_timeout_s())
    return _control_group


def agree(values: list[float]) -> list[float]:
    """The element-wise maximum of host `values` over all ranks (`values` itself when not distributed).

    For decisions every rank must take together, e.g. [stop?, skip?]: any rank's 1 is every rank's 1. The values
    travel host to host (Gloo), so agreeing never waits for work queued on a GPU."""
    if not _active():
        return [float(v) for v in values]
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=_control())
    return t.tolist()


def barrier() -> None:
    if _active():
        dist.barrier()


def broadcast_buffers(module: torch.nn.Module, src: int = 0) -> None:
    """Rank `src`'s buffers (BatchNorm's running statistics) on every rank, in place; nothing when not distributed.
    DDP sends them at the start of each training forward only: after an epoch's last step each rank holds the
    statistics of its own last batch."""
    if _active():
        for b in module.buffers():
            dist.broadcast(b, src=src)


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank `src`'s `obj` on every rank (picklable objects); `obj` itself when not distributed."""
    if not _active():
        return obj
    box = [obj if dist.get_rank() == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def merge_dicts(part: dict) -> dict:
    """Every rank's `part` merged (over the control group, so a stuck rank times out rather than hangs);
    `part` alone when that fails."""
    if not _active():
        return dict(part)
    parts: list[Any] = [None] * dist.get_world_size()
    try:
        dist.all_gather_object(parts, dict(part), group=_control())
    except Exception:  # noqa: BLE001 - a report of what could not be read must not fail the run
        return dict(part)
    merged: dict = {}
    for p in parts:
        merged.update(p or {})
    return merged


def cleanup() -> None:
    """Leave the process group (safe to call when there is none)."""
    global _control_group
    _control_group = None
    if dist.is_available() and dist.is_initialized():
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


def per_rank_batch(global_batch: int, world_size: int) -> tuple[int, str | None]:
    """The per-process batch for a GLOBAL batch, and a warning when it does not divide evenly.

    Raises ConfigError when a process would get fewer than 2 images (BatchNorm cannot train on one).
    """
    per = global_batch // max(1, world_size)
    if per < 2:
        raise ConfigError(
            f"train.batch_size={global_batch}: the global batch is split over {world_size} processes "
            f"and each needs at least 2 images; use --batch-size {2 * world_size} or more"
        )
    if per * world_size == global_batch:
        return per, None
    return per, (
        f"batch size {global_batch} is the global batch but does not divide by {world_size} processes: "
        f"each uses {per}, so the global batch is {per * world_size}"
    )


# ------------------------------------------------------------------------------------------- launching (GUI side)


def free_port() -> int:
    """A TCP port that is free on this machine right now (for --master_port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def torchrun_command(args: list[str], nproc: int, master_port: int | None = None) -> list[str]:
    """The command line of a single-node torchrun job: `python -m torch.distributed.run ... main.py train ... --json`."""
    if nproc < 1:
        raise ValueError(f"nproc={nproc}: must be ≥ 1")
    args = list(args)
    if not args or args[0] != "train":
        args.insert(0, "train")
    if "--json" not in args:
        args.append("--json")
    port = master_port or free_port()
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=1",
        f"--nproc_per_node={nproc}",
        "--master_addr=127.0.0.1",
        f"--master_port={port}",
        str(PROJECT_ROOT / "main.py"),
        *args,
    ]


def launch_torchrun(
    args: list[str],
    nproc: int,
    *,
    master_port: int | None = None,
    env: dict[str, str] | None = None,
    stdout: Any = subprocess.PIPE,
    stderr: Any = subprocess.PIPE,
) -> subprocess.Popen:
    """Start `main.py train <args> --json` on `nproc` local processes under torchrun, in its own process group.

    The returned Popen has `.run_info_path`: run_dir_of(proc) reads the run folder from it once rank 0 made it.
    Stop the job with stop_torchrun(proc); follow it with follow_run(run_dir).
    """
    fd, info = tempfile.mkstemp(prefix="resnext-studio-run-", suffix=".json")
    os.close(fd)
    os.unlink(info)  # rank 0 creates it atomically; absence means "no run folder yet"
    full_env = dict(os.environ if env is None else env)
    full_env[RUN_INFO_ENV] = info
    full_env.setdefault("OMP_NUM_THREADS", "1")
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    kwargs: dict[str, Any] = {}
    if os.name == "posix":
        kwargs["start_new_session"] = True  # its own process group, so a stop reaches torchrun and every rank
    else:
        kwargs["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
    proc = subprocess.Popen(
        torchrun_command(args, nproc, master_port),
        cwd=str(PROJECT_ROOT),
        env=full_env,
        stdout=stdout,
        stderr=stderr,
        text=True,
        **kwargs,
    )
    proc.run_info_path = info  # type: ignore[attr-defined]
    return proc


def run_dir_of(proc: subprocess.Popen) -> Path | None:
    """The run folder of a job started by launch_torchrun, once rank 0 has created it (else None)."""
    path = getattr(proc, "run_info_path", None)
    if not path:
        return None
    try:
        return Path(json.loads(Path(path).read_text(encoding="utf-8"))["run_dir"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def stop_torchrun(proc: subprocess.Popen, sig: int = signal.SIGINT) -> None:
    """Ask a launch_torchrun job to stop: every rank finishes its step, rank 0 saves last.pt, status "stopped"."""
    if proc.poll() is not None:
        return
    if os.name == "posix":
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
    else:
        proc.send_signal(getattr(signal, "CTRL_BREAK_EVENT", signal.SIGTERM))


def write_run_info(run_dir: Path) -> None:
    """Rank 0: tell a launcher (RESNEXT_STUDIO_RUN_INFO) where the run folder is."""
    target = os.environ.get(RUN_INFO_ENV)
    if not target:
        return
    tmp = f"{target}.{os.getpid()}.tmp"
    with contextlib.suppress(OSError):
        Path(tmp).write_text(json.dumps({"run_dir": str(run_dir)}), encoding="utf-8")
        os.replace(tmp, target)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def follow_run(run_dir: str | Path) -> dict[str, Any]:
    """A snapshot of a (possibly running) run folder, for polling: {"status", "progress", "history"}.

    status: status.json (None until written); progress: progress.json {epoch, step, steps, loss, images_per_s,
    eta_s, world_size, updated} written by rank 0 at most every 0.5 s (None before the first batch);
    history: history.csv rows with numbers as floats (epoch as int), empty values as None.
    """
    run_dir = Path(run_dir)
    rows: list[dict[str, Any]] = []
    with contextlib.suppress(OSError), open(run_dir / "history.csv", encoding="utf-8", newline="") as f:
        for raw in csv.DictReader(f):
            row: dict[str, Any] = {}
            for k, v in raw.items():
                if k is None:
                    continue
                try:
                    row[k] = None if v in ("", None) else (int(v) if k == "epoch" else float(v))
                except ValueError:
                    row[k] = v
            rows.append(row)
    return {
        "status": _read_json(run_dir / "status.json"),
        "progress": _read_json(run_dir / "progress.json"),
        "history": rows,
    }


__all__ = [
    "DistContext",
    "agree",
    "all_reduce_sum",
    "barrier",
    "broadcast_buffers",
    "broadcast_object",
    "merge_dicts",
    "cleanup",
    "follow_run",
    "init_from_env",
    "is_main",
    "launch_torchrun",
    "per_rank_batch",
    "run_dir_of",
    "stop_torchrun",
    "torchrun_command",
]
