"""AdaController: direction and size of the p adjustments (StyleGAN2-ADA's rule written out
by hand), clamping, checkpoint round trip, and the all-reduce over two gloo processes."""

import json
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from gankern.train.augment import AdaController, AugmentPipe
from gankern.train.distributed import free_port
from gankern.train.state_codec import decode_state, encode_state


class _Pipe(nn.Module):
    """Anything with a scalar ``p`` buffer will do (and needs no filters)."""

    def __init__(self, p: float):
        super().__init__()
        self.register_buffer("p", torch.tensor(p))


def _expected(p: float, rt: float, target: float, num_images: int, kimg: float) -> float:
    step = num_images / (kimg * 1000)
    if rt > target:
        p += step
    elif rt < target:
        p -= step
    return min(max(p, 0.0), 1.0)


def test_p_rises_when_d_is_confident_on_reals():
    pipe = _Pipe(0.5)
    ctl = AdaController(pipe, target=0.6, interval=4, kimg=500)
    for _ in range(4):
        ctl.accumulate(torch.rand(8, 1) + 0.1)  # all positive: rt = 1
    assert ctl.update(32) == 1.0
    assert ctl.rt == 1.0
    assert abs(ctl.p - (0.5 + 32 / 500_000)) < 1e-7


def test_p_falls_below_target_and_rt_is_the_mean_sign():
    pipe = _Pipe(0.25)
    ctl = AdaController(pipe, target=0.6, kimg=2)
    logits = torch.tensor([2.0, 0.5, -1.0, 3.0, 0.0, -0.2, 1.0, 4.0])
    ctl.accumulate(logits[:5])
    ctl.accumulate(logits[5:].view(3, 1))
    signs = [1, 1, -1, 1, 0, -1, 1, 1]
    rt = sum(signs) / len(signs)  # 0.375
    assert ctl.update(100) == pytest.approx(rt)
    assert ctl.p == pytest.approx(_expected(0.25, rt, 0.6, 100, 2), abs=1e-7)


def test_no_change_at_the_target_and_clamping_to_unit_interval():
    ctl = AdaController(_Pipe(0.3), target=0.5)
    ctl.accumulate(torch.tensor([1.0, 1.0, 1.0, -1.0]))  # rt = 0.5 exactly
    ctl.update(1000)
    assert ctl.p == pytest.approx(0.3, abs=1e-7)
    low = AdaController(_Pipe(0.0001), kimg=1)
    low.accumulate(-torch.ones(4))
    low.update(64)
    assert low.p == 0.0
    high = AdaController(_Pipe(0.9999), kimg=1)
    high.accumulate(torch.ones(4))
    high.update(64)
    assert high.p == 1.0


def test_nan_logits_are_ignored_and_no_statistics_means_no_update():
    ctl = AdaController(_Pipe(0.5), kimg=1)
    assert ctl.update(10) is None and ctl.rt is None and ctl.p == 0.5
    ctl.accumulate(torch.tensor([float("nan"), -1.0, -2.0]))
    assert ctl.update(10) == -1.0
    assert ctl.p == pytest.approx(0.5 - 10 / 1000, abs=1e-7)
    # The statistics restart after each update.
    ctl.accumulate(torch.tensor([5.0]))
    assert ctl.update(10) == 1.0


def test_statistics_span_the_whole_interval():
    ctl = AdaController(_Pipe(0.5), target=0.0, kimg=1)
    ctl.accumulate(torch.ones(3))
    ctl.accumulate(-torch.ones(5))
    assert ctl.update(1) == pytest.approx(-0.25)


def test_state_round_trips_through_the_checkpoint_codec():
    pipe = AugmentPipe("bgc", p=0.125)
    ctl = AdaController(pipe, kimg=3)
    ctl.accumulate(torch.tensor([1.0, 2.0, -1.0]))
    ctl.update(40)
    ctl.accumulate(torch.tensor([0.5, 0.5, -3.0, 1.0]))  # pending at the snapshot
    tensors = {}
    skeleton = json.loads(json.dumps(encode_state(ctl.state_dict(), "augment", tensors)))
    other_pipe = AugmentPipe("bgc")
    other = AdaController(other_pipe, kimg=3)
    other.load_state_dict(decode_state(skeleton, tensors))
    assert other.rt == ctl.rt and float(other_pipe.p) == float(pipe.p)
    assert other.update(40) == ctl.update(40) == 0.5
    assert float(other_pipe.p) == float(pipe.p)


def test_bad_arguments():
    with pytest.raises(TypeError, match="pipe must have a scalar"):
        AdaController(object())
    with pytest.raises(ValueError, match="interval"):
        AdaController(_Pipe(0.0), interval=0)
    with pytest.raises(ValueError, match="kimg"):
        AdaController(_Pipe(0.0), kimg=0)
    with pytest.raises(ValueError, match="target"):
        AdaController(_Pipe(0.0), target=1.5)
    ctl = AdaController(_Pipe(0.0))
    with pytest.raises(ValueError, match="num_images"):
        ctl.update(-1)
    with pytest.raises(TypeError, match="num_images"):
        ctl.update(2.5)
    with pytest.raises(TypeError, match="real_logits"):
        ctl.accumulate([1.0])
    with pytest.raises(TypeError, match="real_logits"):
        ctl.accumulate(torch.ones(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="keys"):
        ctl.load_state_dict({"p": torch.tensor(0.0)})


def _ddp_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size
    )
    try:
        ctl = AdaController(_Pipe(0.5), target=0.6, kimg=1)
        # Rank 0 sees 3 positive logits, rank 1 one positive and three negative: together
        # rt = (3 + 1 - 3) / 7, below the target, although rank 0 alone is above it.
        logits = [torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, -1.0, -2.0, -3.0])][rank]
        ctl.accumulate(logits)
        rt = ctl.update(100)
        with open(os.path.join(out_dir, f"{rank}.json"), "w") as f:
            json.dump({"rt": rt, "p": ctl.p}, f)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_statistics_are_all_reduced_across_processes(tmp_path):
    mp.spawn(_ddp_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    results = [json.loads((tmp_path / f"{r}.json").read_text()) for r in range(2)]
    for result in results:
        assert result["rt"] == pytest.approx(1 / 7)
        assert result["p"] == pytest.approx(0.5 - 100 / 1000, abs=1e-7)
