"""Launching kernels on the device their tensors live on.

Triton launches a kernel on the *current* CUDA device and its current stream, whichever
device the tensors are on. With several GPUs, a tensor on ``cuda:1`` while ``cuda:0`` is
current would hand device-1 pointers to a device-0 launch: an illegal memory access, or
a race with the work queued on device 1's stream. The C++ bindings guard themselves
(``c10::cuda::CUDAGuard``); the custom ops wrap their Triton launches in
:func:`on_device_of`.
"""

from __future__ import annotations

import contextlib

import torch


def on_device_of(t: torch.Tensor) -> contextlib.AbstractContextManager:
    """A context in which ``t``'s CUDA device is the current one (no-op when it already is).

    For tensors off CUDA (the Triton interpreter's CPU tensors) it does nothing.
    """
    device = t.device
    if device.type != "cuda" or device.index == torch.cuda.current_device():
        return contextlib.nullcontext()
    return torch.cuda.device(device)
