"""Random number streams of the trainer.

Reproducibility, resumption and multi-process equivalence all rest on one rule: every
random number used for training is drawn from a stream *derived from counters*, never from
whatever state a global generator happens to be in.

* :func:`derive_seed` hashes ``(seed, *counters)`` into a 63-bit seed (NumPy's
  ``SeedSequence``, so nearby counters give unrelated streams).
* The loop draws the whole global batch's latents, labels and data order from generators
  seeded with ``(seed, step, phase)``: the same numbers whatever the number of processes.
* Randomness that happens inside the networks (noise inputs, augmentation) uses torch's
  global generator, which the loop reseeds per *slice* of the global batch with
  ``(seed, step, phase, slice)``; a slice is computed by one process or another, but
  always from the same seed.

The global generators' states (torch CPU and CUDA, NumPy, Python) are still saved in
checkpoints and restored on resume (:func:`capture_rng_state`), so that code outside the
loop's control, which might draw from them, resumes where it was too.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def derive_seed(seed: int, *counters: int) -> int:
    """A seed for the stream identified by ``seed`` and ``counters`` (all non-negative)."""
    words = np.random.SeedSequence([int(seed), *map(int, counters)]).generate_state(2, np.uint32)
    return int(words[0]) | (int(words[1] & 0x7FFFFFFF) << 32)


def make_generator(seed: int, *counters: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`derive_seed`."""
    g = torch.Generator(device="cpu")
    g.manual_seed(derive_seed(seed, *counters))
    return g


def seed_global_rngs(seed: int, *counters: int) -> None:
    """Reseed torch's global generators (CPU and every CUDA device) for one slice."""
    torch.manual_seed(derive_seed(seed, *counters))


def capture_rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    """The global RNG states as ``(tensors, json_metadata)`` for a checkpoint."""
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = state
    # The legacy global NumPy generator is what third-party code draws from, hence its use.
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    tensors["numpy_keys"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    version, internal, gauss_next = random.getstate()
    meta = {
        "numpy": {
            "kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)
        },
        "python": {"version": version, "state": list(internal), "gauss_next": gauss_next},
        "num_cuda": sum(1 for k in tensors if k.startswith("torch_cuda_")),
    }
    return tensors, meta


def restore_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Inverse of :func:`capture_rng_state` (CUDA states are restored where devices exist)."""
    torch.set_rng_state(tensors["torch_cpu"])
    num_cuda = int(meta.get("num_cuda", 0))
    if num_cuda and torch.cuda.is_available():
        states = [tensors[f"torch_cuda_{i}"] for i in range(num_cuda)]
        torch.cuda.set_rng_state_all(states[: torch.cuda.device_count()])
    np_meta = meta["numpy"]
    keys = tensors["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state(  # noqa: NPY002
        (np_meta["kind"], keys, np_meta["pos"], np_meta["has_gauss"], np_meta["cached"])
    )
    py = meta["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss_next"]))
