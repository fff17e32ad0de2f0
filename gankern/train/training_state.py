"""What a training checkpoint holds, and putting it back.

Everything needed to continue a run exactly where it stopped:

* ``G``, ``D``, ``G_ema``: parameters and buffers (``state_dict``);
* ``G_opt``, ``D_opt``: the optimizers' states (Adam moments, step counts, lr and betas);
* ``augment``: the augmentation pipeline's state (ADA's probability ``p``) and its
  controller's statistics;
* ``loss``: the loss's state (the path length running mean);
* ``rng``: the global RNG states (torch CPU/CUDA, NumPy, Python);
* in the JSON metadata: counters (images, steps, ticks), the options, the network
  configuration (enough for :func:`gankern.train.networks.load_generator` to rebuild G).

The data order needs no state: it is a function of the seed and the step
(:mod:`gankern.train.rng`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from gankern.train.rng import capture_rng_state, restore_rng_state
from gankern.train.state_codec import decode_state, encode_state


def collect_state(components: Mapping[str, object], metadata: dict) -> tuple[dict, dict]:
    """``(tensors, metadata)`` for :func:`gankern.train.checkpoint.save_checkpoint`.

    Args:
        components: name -> anything with ``state_dict()`` (modules, optimizers, the loss,
            the augmentation controller); None entries are skipped.
        metadata: JSON-able run information (counters, options, network configuration).
    """
    tensors: dict[str, torch.Tensor] = {}
    skeletons = {}
    for name, obj in components.items():
        if obj is None:
            continue
        skeletons[name] = encode_state(obj.state_dict(), name, tensors)
    rng_tensors, rng_meta = capture_rng_state()
    for key, value in rng_tensors.items():
        tensors[f"rng/{key}"] = value
    meta = dict(metadata)
    meta["states"] = skeletons
    meta["rng"] = rng_meta
    return tensors, meta


def restore_state(
    components: Mapping[str, object],
    tensors: Mapping[str, torch.Tensor],
    metadata: dict,
    restore_rng: bool = True,
) -> None:
    """Load every component's ``state_dict`` from a checkpoint (and the RNG states).

    A component present here but missing from the checkpoint (or the reverse) is an error:
    resuming with, say, a different augmentation mode cannot continue the same run.
    """
    skeletons = metadata.get("states", {})
    wanted = {name for name, obj in components.items() if obj is not None}
    missing = sorted(wanted - set(skeletons))
    extra = sorted(set(skeletons) - wanted)
    if missing or extra:
        raise ValueError(
            "the checkpoint does not match this run's components: "
            f"missing {missing}, unexpected {extra} (different augmentation or options?)"
        )
    for name in sorted(wanted):
        state = decode_state(skeletons[name], tensors)
        try:
            components[name].load_state_dict(state)
        except (RuntimeError, ValueError, KeyError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ValueError(
                f"the checkpoint's {name} does not fit this run (a different --cfg, "
                f"resolution, label count or option?): {first_line}"
            ) from exc
    if restore_rng:
        rng_tensors = {k[len("rng/"):]: v for k, v in tensors.items() if k.startswith("rng/")}
        restore_rng_state(rng_tensors, metadata["rng"])
