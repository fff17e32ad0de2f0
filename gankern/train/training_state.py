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
            f"missing {missing}, unexpected {extra}: {_explain_components(missing, extra)}"
        )
    for name in sorted(wanted):
        state = decode_state(skeletons[name], tensors)
        try:
            components[name].load_state_dict(state)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise ValueError(
                f"the checkpoint's {name} does not fit this run (a different --cfg, "
                f"resolution, label count or option?): {_first_problem(exc)}"
            ) from exc
    if restore_rng:
        rng_tensors = {k[len("rng/"):]: v for k, v in tensors.items() if k.startswith("rng/")}
        restore_rng_state(rng_tensors, metadata["rng"])


# What a run component is there for, to explain a checkpoint that lacks or has one.
_COMPONENT_MEANING = {
    "augment_pipe": "ADA augmentation (--aug ada)",
    "ada": "ADA augmentation (--aug ada)",
    "loss_scaler": "float16 loss scaling (--precision fp16 with autocast)",
    "G_ema": "the generator's moving average (--ema-kimg > 0)",
}


def _explain_components(missing: list[str], extra: list[str]) -> str:
    """Why a checkpoint's components differ from a run's, in words."""
    def meaning(names):
        return ", ".join(dict.fromkeys(_COMPONENT_MEANING.get(n, n) for n in names))

    parts = []
    if missing:
        parts.append(f"this run has {meaning(missing)}, which the checkpoint was trained "
                     "without")
    if extra:
        parts.append(f"the checkpoint was trained with {meaning(extra)}, which this run lacks")
    return ("; ".join(parts) + ". Resume with the options the checkpoint was trained with "
            "(a different --data also changes the default --aug: noaug on built-in data, "
            "ada on your own images)")


def _first_problem(exc: Exception) -> str:
    """The first specific line of a ``load_state_dict`` error (its first line is only the
    header "Error(s) in loading state_dict for X:"), and how many more there are."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if len(lines) > 1 and lines[0].startswith("Error(s) in loading state_dict"):
        details = lines[1:]
        more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
        return details[0].rstrip(".") + more
    return lines[0]
