"""The penalties', lazy regularization's and the ADA controller's argument checks: each bad
argument raises with a message that starts with the argument's name (anchored, so a message
naming another argument fails), and the boundary values are accepted."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gankern.train import (
    PathLengthPenalty,
    lazy_adam_hyperparameters,
    lazy_regularization,
    r1_penalty,
    r2_penalty,
    wgan_gp_penalty,
)
from gankern.train.augment import AdaController

X = torch.randn(2, 3, requires_grad=False)
WS = torch.randn(2, 2, 3, requires_grad=True)
W_UNUSED = torch.ones(1, requires_grad=True)  # an output that needs gradients, not from x


def D(x, *args, **kwargs):
    return (x**2).flatten(1).sum(1)


class _Pipe(nn.Module):
    def __init__(self, p=0.5, dtype=torch.float32):
        super().__init__()
        self.register_buffer("p", torch.tensor(p, dtype=dtype))


def _ada():
    return AdaController(_Pipe())


CASES = {
    "r1 discriminator": (lambda: r1_penalty(3, X), TypeError,
                         "discriminator must be an nn.Module or a callable, got int"),
    "r1 reals": (lambda: r1_penalty(D, [1.0]), TypeError,
                 "reals must be a torch.Tensor, got list"),
    "r1 reals dtype": (lambda: r1_penalty(D, torch.ones(2, 2, dtype=torch.int64)), TypeError,
                       "reals must be a floating point tensor"),
    "r1 reals shape": (lambda: r1_penalty(D, torch.ones(2)), ValueError,
                       r"reals must be a non-empty batch \[N, ...\], got shape \(2,\)"),
    "r1 return_logits": (lambda: r1_penalty(D, X, return_logits=1), TypeError,
                         "return_logits must be a bool, got 1"),
    "r1 skip": (lambda: r1_penalty(D, X, skip_weight_gradients="yes"), TypeError,
                "skip_weight_gradients must be a bool"),
    "r2 fakes": (lambda: r2_penalty(D, torch.ones(0, 3)), ValueError,
                 "fakes must be a non-empty batch"),
    "wgan discriminator": (lambda: wgan_gp_penalty(None, X, X), TypeError,
                           "discriminator must be an nn.Module or a callable"),
    "wgan reals": (lambda: wgan_gp_penalty(D, X.long(), X), TypeError,
                   "reals must be a floating point tensor"),
    "wgan fakes": (lambda: wgan_gp_penalty(D, X, "x"), TypeError,
                   "fakes must be a torch.Tensor"),
    "wgan fakes dtype": (lambda: wgan_gp_penalty(D, X, X.double()), ValueError,
                         "fakes must match reals in shape, dtype and device"),
    "wgan skip": (lambda: wgan_gp_penalty(D, X, X, skip_weight_gradients=0), TypeError,
                  "skip_weight_gradients must be a bool"),
    "pl decay negative": (lambda: PathLengthPenalty(decay=-0.1), ValueError,
                          "decay must be >= 0"),
    "pl decay above one": (lambda: PathLengthPenalty(decay=1.5), ValueError,
                           r"decay must be in \[0, 1\]"),
    "pl weight": (lambda: PathLengthPenalty(weight="2"), TypeError,
                  "weight must be a real number"),
    "pl images": (lambda: PathLengthPenalty()(torch.ones(2, dtype=torch.int32), WS),
                  TypeError, "images must be a torch.Tensor|images must be a floating point"),
    "pl ws": (lambda: PathLengthPenalty()(torch.ones(2, 3), [1.0]), TypeError,
              "ws must be a torch.Tensor"),
    "pl generator": (lambda: PathLengthPenalty()(WS * 2, WS, generator=1), TypeError,
                     "generator must be a torch.Generator or None, got int"),
    "pl path_lengths skip": (
        lambda: PathLengthPenalty().path_lengths(WS * 2, WS, skip_weight_gradients=1),
        TypeError, "skip_weight_gradients must be a bool, got 1"),
    "input unused": (lambda: r1_penalty(lambda x: W_UNUSED * torch.ones(len(x)), X), ValueError,
                     "the network's output does not depend on its input$"),
    "pl from_generator synthesis": (lambda: PathLengthPenalty().from_generator(3, WS),
                                    TypeError, "synthesis must be an nn.Module or a callable"),
    "pl from_generator ws": (lambda: PathLengthPenalty().from_generator(lambda w: w, "w"),
                             TypeError, "ws must be a torch.Tensor"),
    "lazy step": (lambda: lazy_regularization(2.5, 4), TypeError, "step must be an int"),
    "lazy lr": (lambda: lazy_adam_hyperparameters(0, (0.0, 0.99), 4), ValueError,
                "lr must be a positive number, got 0"),
    "lazy lr type": (lambda: lazy_adam_hyperparameters("1", (0.0, 0.99), 4), ValueError,
                     "lr must be a positive number"),
    "lazy betas": (lambda: lazy_adam_hyperparameters(1e-3, 0.9, 4), TypeError,
                   "betas must be a sequence of numbers"),
    "lazy betas empty": (lambda: lazy_adam_hyperparameters(1e-3, (), 4), TypeError,
                         "betas must be a sequence of numbers"),
    "lazy beta": (lambda: lazy_adam_hyperparameters(1e-3, (0.0, "x"), 4), ValueError,
                  "betas must be numbers in"),
    "ada pipe p shape": (lambda: AdaController(type("P", (), {"p": torch.zeros(2)})()),
                         TypeError, "pipe must have a scalar floating-point tensor p"),
    "ada pipe p dtype": (lambda: AdaController(type("P", (), {"p": torch.tensor(1)})()),
                         TypeError, "pipe must have a scalar floating-point tensor p"),
    "ada target": (lambda: AdaController(_Pipe(), target="0.6"), TypeError,
                   "target must be a real number"),
    "ada target range": (lambda: AdaController(_Pipe(), target=-1.01), ValueError,
                         r"target must be in \[-1, 1\]"),
    "ada interval": (lambda: AdaController(_Pipe(), interval=0), ValueError,
                     "interval must be >= 1, got 0"),
    "ada kimg": (lambda: AdaController(_Pipe(), kimg=None), TypeError,
                 "kimg must be a number, got None"),
    "ada num_images": (lambda: _ada().update(-1), ValueError,
                       "num_images must be >= 0, got -1"),
    "ada state keys": (lambda: _ada().load_state_dict({"p": 0.1}), ValueError,
                       r"state must have the keys \['p', 'rt', 'stats'\], got \['p'\]"),
    "ada state type": (lambda: _ada().load_state_dict(3), ValueError,
                       r"state must have the keys \['p', 'rt', 'stats'\], got int"),
    "ada state rt nan": (
        lambda: _ada().load_state_dict({"p": 0.1, "stats": [0.0, 0.0], "rt": float("nan")}),
        ValueError, r"state\['rt'\] must be a finite number or None, got nan"),
    "ada state rt str": (
        lambda: _ada().load_state_dict({"p": 0.1, "stats": [0.0, 0.0], "rt": "x"}),
        ValueError, r"state\['rt'\] must be a finite number or None"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_argument_message_starts_with_its_name(case):
    call, error, message = CASES[case]
    with pytest.raises(error, match=f"^(?:{message})"):
        call()


def test_ada_defaults_are_stylegan2_adas():
    ctl = AdaController(_Pipe())
    assert (ctl.target, ctl.interval, ctl.kimg) == (0.6, 4, 500.0)


def test_ada_counts_half_precision_logits_exactly():
    # 3001 is not a float16 number: the signs must be summed in float64.
    ctl = AdaController(_Pipe())
    ctl.accumulate(torch.ones(3001, dtype=torch.float16))
    assert ctl.state_dict()["stats"].tolist() == [3001.0, 3001.0]


def test_boundary_values_are_accepted():
    PathLengthPenalty(decay=0.0)
    PathLengthPenalty(decay=1.0)
    for target in (-1.0, 1.0):
        AdaController(_Pipe(), target=target)
    ctl = AdaController(_Pipe(), interval=1)
    ctl.accumulate(torch.ones(2))
    assert ctl.update(0) == 1.0 and ctl.p == 0.5  # zero images: no move
    assert lazy_regularization(0, 1) == (True, 1.0)
    lr, betas = lazy_adam_hyperparameters(1e-3, [0.0, 0.5], 1)
    assert lr == pytest.approx(5e-4) and betas == pytest.approx((0.0, 0.5**0.5))


def test_ada_state_dict_holds_the_pending_float64_statistics():
    ctl = AdaController(_Pipe(0.25))
    ctl.accumulate(torch.tensor([2.0, -1.0, 3.0, float("nan")], dtype=torch.float16))
    state = ctl.state_dict()
    assert state["stats"].dtype == torch.float64
    assert state["stats"].tolist() == [1.0, 3.0]  # sum of signs, number of non-NaN logits
    assert state["rt"] is None and float(state["p"]) == 0.25
    other = AdaController(_Pipe(0.0))
    other.load_state_dict({"p": 0.75, "stats": [1, 3], "rt": 0})  # plain Python numbers
    assert other.p == 0.75 and other.rt == 0.0 and isinstance(other.rt, float)
    other.accumulate(torch.ones(1))
    fresh = AdaController(_Pipe())
    fresh.load_state_dict({"p": 0.5, "stats": [0.0, 0.0], "rt": None})
    assert fresh.rt is None
    assert other.state_dict()["stats"].dtype == torch.float64
    assert other.update(4) == pytest.approx(0.5)


def test_path_length_from_generator_passes_its_arguments_on():
    seen = []

    def synthesis(ws, scale, *, shift):
        seen.append((scale, shift))
        return (ws * scale + shift).sum(1)[:, None, :, None].repeat(1, 3, 1, 2)

    ws = torch.randn(2, 2, 3)
    value = PathLengthPenalty(decay=1.0, weight=1.0).from_generator(
        synthesis, ws, 2.0, shift=0.5, generator=torch.Generator().manual_seed(0),
        reduction="none")
    assert seen == [(2.0, 0.5)] and value.shape == (2,)
