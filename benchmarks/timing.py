"""Timing a callable: CUDA events on a GPU, ``time.perf_counter`` on the CPU.

Both timers call the function once (compilation, extension build, first allocations),
warm up for ``warmup_ms``, then time enough single calls to fill ``rep_ms`` (between
``min_reps`` and ``max_reps``) and report the median and the 20th/80th percentiles.

On a GPU each call is bracketed by its own pair of CUDA events. So that the events measure
the GPU's work and not the host's speed at issuing it, each batch of timed calls is queued
behind a spin kernel (``torch.cuda._sleep``) long enough for the host to enqueue the whole
batch: the calls then run back to back on the GPU, as they do inside a training step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

MiB = 2**20


@dataclass(frozen=True)
class TimingSettings:
    """How long to warm up and how many repetitions to time."""

    warmup_ms: float = 100.0
    rep_ms: float = 400.0
    min_reps: int = 10
    max_reps: int = 300


# For --quick runs (tiny shapes, the CPU): enough to exercise everything, not to be precise.
QUICK_TIMING = TimingSettings(warmup_ms=2.0, rep_ms=10.0, min_reps=3, max_reps=10)


@dataclass(frozen=True)
class Timing:
    """Per-call times in milliseconds over ``reps`` repetitions."""

    median_ms: float
    p20_ms: float
    p80_ms: float
    reps: int
    host_ms: float  # mean host time to issue one call (on the CPU: the call itself)


def summarize(times_ms, host_ms: float) -> Timing:
    """Median and 20th/80th percentiles (linear interpolation) of the repetitions."""
    t = np.asarray(times_ms, dtype=np.float64)
    if t.size == 0:
        raise ValueError("times_ms must hold at least one repetition, got none")
    p20, median, p80 = np.percentile(t, [20, 50, 80])
    return Timing(float(median), float(p20), float(p80), int(t.size), float(host_ms))


def _rep_count(per_call_ms: float, settings: TimingSettings) -> int:
    reps = settings.rep_ms / max(per_call_ms, 1e-6)
    return int(min(settings.max_reps, max(settings.min_reps, math.ceil(reps))))


def time_cpu(fn: Callable[[], object], settings: TimingSettings) -> Timing:
    """Time ``fn`` on the host with ``time.perf_counter``."""
    fn()
    start = time.perf_counter()
    calls = 0
    while calls < 1 or (time.perf_counter() - start) * 1e3 < settings.warmup_ms:
        fn()
        calls += 1
    per_call_ms = (time.perf_counter() - start) * 1e3 / calls
    times = []
    for _ in range(_rep_count(per_call_ms, settings)):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return summarize(times, host_ms=float(np.mean(times)))


_sleep_cycles_per_ms: dict[int, float] = {}


def _cycles_per_ms(device: torch.device) -> float | None:
    """Calibrate ``torch.cuda._sleep`` (its argument is in GPU clock cycles) once per device."""
    if not hasattr(torch.cuda, "_sleep"):
        return None
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in _sleep_cycles_per_ms:
        cycles = 10_000_000
        torch.cuda._sleep(cycles // 10)  # load the kernel
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        torch.cuda._sleep(cycles)
        end.record()
        end.synchronize()
        _sleep_cycles_per_ms[index] = cycles / max(start.elapsed_time(end), 1e-3)
    return _sleep_cycles_per_ms[index]


def time_cuda(fn: Callable[[], object], settings: TimingSettings, device: torch.device) -> Timing:
    """Time ``fn`` on the GPU of ``device`` with one pair of CUDA events per call."""
    with torch.cuda.device(device):
        fn()
        torch.cuda.synchronize()
        # Estimate from a few calls issued onto an idle queue (so the host never blocks):
        # the GPU time per call sets the repetition counts, the host time the spin lengths.
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        host = []
        start.record()
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            host.append((time.perf_counter() - t0) * 1e3)
        end.record()
        torch.cuda.synchronize()
        per_call_ms = start.elapsed_time(end) / len(host)
        host_ms = float(np.median(host))
        for _ in range(max(1, math.ceil(settings.warmup_ms / max(per_call_ms, 1e-3)))):
            fn()
        reps = _rep_count(per_call_ms, settings)

        cycles_per_ms = _cycles_per_ms(device)
        # Batches whose issuing takes about 20 ms of host time, each queued behind a spin
        # kernel lasting 1.5 times as long, so the host is never what the events measure.
        batch = max(1, min(64, int(20.0 / max(host_ms, 1e-3))))
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        for first in range(0, reps, batch):
            last = min(reps, first + batch)
            if cycles_per_ms is not None:
                torch.cuda._sleep(int(cycles_per_ms * (1.5 * host_ms * (last - first) + 0.05)))
            for i in range(first, last):
                starts[i].record()
                fn()
                ends[i].record()
        torch.cuda.synchronize()
        times = [s.elapsed_time(e) for s, e in zip(starts, ends, strict=True)]
    return summarize(times, host_ms=host_ms)


def time_fn(fn: Callable[[], object], settings: TimingSettings, device: torch.device) -> Timing:
    """Time ``fn`` with the timer for ``device`` (CUDA events or ``perf_counter``)."""
    if device.type == "cuda":
        return time_cuda(fn, settings, device)
    return time_cpu(fn, settings)


def peak_memory_mib(fn: Callable[[], object], device: torch.device) -> float | None:
    """Peak memory that one call of ``fn`` allocates above what was allocated before it.

    CUDA devices only (``torch.cuda.max_memory_allocated``); None elsewhere, since the CPU
    allocator keeps no such statistics.
    """
    if device.type != "cuda":
        return None
    with torch.cuda.device(device):
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        result = fn()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        del result
    return (peak - before) / MiB


def copy_bandwidth_gbps(device: torch.device, nbytes: int, settings: TimingSettings) -> float:
    """Device-to-device copy bandwidth in GB/s (1e9 bytes/s, read + write counted), median.

    ``nbytes`` should be far larger than the last-level cache (the timing then sees memory,
    not cache).
    """
    src = torch.ones(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    timing = time_fn(lambda: dst.copy_(src), settings, device)
    return 2 * nbytes / (timing.median_ms * 1e-3) / 1e9


def matmul_tflops(device: torch.device, n: int, dtype: torch.dtype, settings: TimingSettings):
    """Rate of an ``n x n x n`` matrix product in ``dtype``, TFLOP/s (2 n^3 flops), median."""
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
    out = torch.empty(n, n, device=device, dtype=dtype)
    timing = time_fn(lambda: torch.mm(a, b, out=out), settings, device)
    return 2 * n**3 / (timing.median_ms * 1e-3) / 1e12
