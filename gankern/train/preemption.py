"""Stopping a run cleanly on SIGTERM or SIGINT (preemption, ``scancel``, Ctrl-C).

SLURM, Kubernetes and cloud preemption send SIGTERM and wait a grace period before
SIGKILL. :class:`StopRequest` catches SIGTERM and SIGINT while the training loop runs; the
loop finishes the step in progress, writes a snapshot, and raises
:class:`TrainingInterrupted`, whose message says how to resume (``--resume auto`` picks
that snapshot up, so a requeued job script continues unchanged). A second Ctrl-C more than
two seconds after the first stops at once (``KeyboardInterrupt``), for when the snapshot
itself is not wanted.

With several processes every one receives (or is forwarded) the signal at a slightly
different moment, so the processes agree on the step to stop after: each step ends with
a sum of the flags over the processes (:meth:`StopRequest.agreed`).
"""

from __future__ import annotations

import signal
import threading
import time

import torch

from gankern.train.distributed import DistributedContext

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# A second SIGINT this long after the first one aborts without a snapshot.
FORCE_AFTER_SEC = 2.0


class TrainingInterrupted(Exception):
    """The run stopped on a signal after writing a snapshot; ``str()`` says how to resume.

    Attributes:
        signum: the signal (``signal.SIGTERM`` or ``signal.SIGINT``).
        snapshot: the snapshot written (None if none could be).
    """

    def __init__(self, message: str, signum: int, snapshot=None):
        super().__init__(message)
        self.signum = int(signum)
        self.snapshot = snapshot


class StopRequest:
    """Signal handlers that turn SIGTERM/SIGINT into a request to stop after this step.

    Use as a context manager around the training steps; outside the main thread (where
    Python cannot install handlers) it does nothing and never requests a stop.
    """

    def __init__(self) -> None:
        self.signum: int = 0
        self._first_at = 0.0
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in HANDLED_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        now = time.monotonic()
        if self.signum:
            if signum == signal.SIGINT and now - self._first_at > FORCE_AFTER_SEC:
                raise KeyboardInterrupt
            return
        self.signum, self._first_at = signum, now

    @property
    def name(self) -> str:
        """The signal's name (``SIGTERM``), or "" when none arrived."""
        return signal.Signals(self.signum).name if self.signum else ""

    def agreed(self, ctx: DistributedContext) -> bool:
        """True when any process received a signal (a collective with several processes:
        call it at the same point of every step on every process)."""
        if ctx.world_size == 1:
            return bool(self.signum)
        flags = torch.tensor([float(self.signum)], device=ctx.device)
        ctx.all_reduce_(flags)
        if not self.signum and float(flags) > 0:
            self.signum = signal.SIGTERM  # another process's signal: stop alike
        return float(flags) > 0
