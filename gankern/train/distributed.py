"""Multi-process training: process groups, gradient sums, launching.

Two ways to run N processes:

* ``torchrun --nproc_per_node N -m gankern train ...`` (also multi-node): torchrun sets
  ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``, and
  :func:`init_distributed` joins the group they describe;
* ``gankern train --gpus N``: :func:`spawn` starts N local processes itself
  (``torch.multiprocessing``) with the same environment.

Backends: NCCL between GPUs, gloo between CPU processes. The models are not wrapped in
``DistributedDataParallel``: the loop sums gradients itself (:meth:`DistributedContext.
all_reduce_`) once per optimizer step, after accumulating every local slice, which is
exactly what one process would compute over the whole batch, and what makes R1 and path
length regularization (double backward, lazy intervals) straightforward.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistributedContext:
    """Where this process stands: its rank among ``world_size`` processes and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that writes files and prints."""
        return self.rank == 0

    @property
    def backend(self) -> str | None:
        if self.world_size == 1:
            return None
        return "nccl" if self.device.type == "cuda" else "gloo"

    def all_reduce_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over all processes, in place (a no-op for one process)."""
        if self.world_size > 1:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def broadcast_module_(self, module: torch.nn.Module) -> None:
        """Copy rank 0's parameters and buffers into every process's ``module``."""
        if self.world_size == 1:
            return
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)

    def average_buffers_(self, module: torch.nn.Module) -> None:
        """Average floating-point buffers over processes (running statistics like ``w_avg``
        are updated from each process's own samples and would otherwise drift apart)."""
        if self.world_size == 1:
            return
        for b in module.buffers():
            if b.is_floating_point():
                dist.all_reduce(b.data, op=dist.ReduceOp.SUM)
                b.data.div_(self.world_size)

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None


def launched_by_torchrun() -> bool:
    """True when the environment describes a process group (torchrun, or :func:`spawn`)."""
    return _env_int("WORLD_SIZE") is not None and _env_int("RANK") is not None


def init_distributed(device: str = "auto", timeout_s: float = 1800.0) -> DistributedContext:
    """Join the process group described by the environment, or run as a single process.

    Args:
        device: ``"auto"`` (CUDA if available, else CPU), ``"cuda"`` or ``"cpu"``. With
            CUDA each process takes GPU ``LOCAL_RANK``.
        timeout_s: how long collective operations may wait for a peer.
    """
    if device not in ("auto", "cuda", "cpu"):
        raise ValueError(f"device must be 'auto', 'cuda' or 'cpu', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but no CUDA device is available")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    world_size = _env_int("WORLD_SIZE") if launched_by_torchrun() else 1
    rank = _env_int("RANK") if world_size > 1 else 0
    local_rank = (_env_int("LOCAL_RANK") or 0) if world_size > 1 else 0
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} CUDA devices "
                "are visible"
            )
        torch.cuda.set_device(local_rank)
        torch_device = torch.device("cuda", local_rank)
    else:
        torch_device = torch.device("cpu")
    ctx = DistributedContext(rank, world_size, local_rank, torch_device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(
            backend=ctx.backend,
            init_method="env://",
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    if not use_cuda and world_size > 1:
        # Processes on one machine share its cores: do not oversubscribe them.
        local_world = _env_int("LOCAL_WORLD_SIZE") or world_size
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return ctx


def shutdown_distributed() -> None:
    """Leave the process group (if any)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def free_port() -> int:
    """An unused TCP port on localhost for the rendezvous of spawned processes."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawned_entry(rank: int, world_size: int, port: int, fn: Callable, args: tuple) -> None:
    # Line-buffered output: nothing this process prints can wait in a buffer that a forked
    # child (a DataLoader worker) would inherit and flush a second time when output is
    # redirected to a file.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(line_buffering=True)
    os.environ.update(
        {
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world_size),
            "LOCAL_WORLD_SIZE": str(world_size),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )
    fn(*args)


def spawn(fn: Callable, world_size: int, args: tuple = ()) -> None:
    """Run ``fn(*args)`` in ``world_size`` new local processes forming one group.

    ``fn`` must be picklable (a module-level function); each process finds its rank in the
    environment, as under torchrun, so ``fn`` calls :func:`init_distributed` the same way.
    An exception in any process is raised here. SIGTERM and SIGINT sent to this process
    are passed on to the processes (a batch system often signals only the one it started),
    which stop after writing a snapshot (:mod:`gankern.train.preemption`).
    """
    import torch.multiprocessing as mp

    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    context = mp.start_processes(_spawned_entry, args=(world_size, free_port(), fn, args),
                                 nprocs=world_size, join=False, start_method="spawn")
    with _forward_signals(context.processes):
        _wait_for_all(context.processes)
        while not context.join():
            pass


def _wait_for_all(processes, grace_s: float = 30.0) -> None:
    """Wait until every process has exited; once one has failed, give the others
    ``grace_s`` to end on their own (they usually fail alike, and report it themselves)
    before torch's ``join`` terminates them."""
    import time
    from multiprocessing.connection import wait

    deadline = None
    while True:
        alive = [p for p in processes if p.is_alive()]
        if not alive:
            return
        if deadline is None and any(p.exitcode not in (None, 0) for p in processes):
            deadline = time.monotonic() + grace_s
        timeout = None if deadline is None else deadline - time.monotonic()
        if timeout is not None and timeout <= 0:
            return
        wait([p.sentinel for p in alive], timeout=timeout)


@contextlib.contextmanager
def _forward_signals(processes):
    """Pass SIGTERM and SIGINT on to ``processes`` while the block runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def forward(signum, frame):
        for process in processes:
            if process.is_alive():
                with contextlib.suppress(OSError):
                    os.kill(process.pid, signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
