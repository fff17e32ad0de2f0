"""The phase machinery every family shares: D steps per G step and the order of the
players, lazy regularization's optimizer adjustment, Adam / RMSprop / SGD, the linear
learning-rate decay, and dynamic loss scaling."""

from __future__ import annotations

import pytest
import torch
from objective_toys import make_family, settings

from gankern.train.phases import lr_factor, make_phases
from gankern.train.precision import LossScaler


def _schedule(phases, steps):
    """Names of the phases due at each step."""
    return [[p.name for p in phases if p.due(step)] for step in range(steps)]


def test_n_critic_trains_g_after_every_nth_discriminator_step():
    family = make_family(settings(n_critic=3))
    _, phases = make_phases(family.networks, family.settings, family)
    assert [p.name for p in phases] == ["Dboth", "Gboth"]  # D first, then G
    assert _schedule(phases, 7) == [["Dboth"], ["Dboth"], ["Dboth", "Gboth"], ["Dboth"],
                                    ["Dboth"], ["Dboth", "Gboth"], ["Dboth"]]


def test_generator_first_order_and_lazy_phases():
    family = make_family(settings(d_reg="r1", gamma=1.0, r1_interval=4))
    family.phase_order = "GD"
    _, phases = make_phases(family.networks, family.settings, family)
    assert [p.name for p in phases] == ["Gboth", "Dmain", "Dreg"]
    assert _schedule(phases, 5)[0] == ["Gboth", "Dmain", "Dreg"]
    assert _schedule(phases, 5)[1:] == [["Gboth", "Dmain"]] * 3 + [["Gboth", "Dmain", "Dreg"]]
    (reg,) = [p for p in phases if p.name == "Dreg"]
    assert reg.reg_gain == 4.0 and reg.opt is phases[1].opt


@pytest.mark.parametrize("kind", ["adam", "rmsprop", "sgd"])
def test_optimizers_and_lazy_adjustment(kind):
    s = settings(optimizer=kind, glr=0.01, dlr=0.04, betas=(0.5, 0.9), d_reg="gp", gamma=10.0,
                 r1_interval=3)
    family = make_family(s)
    optimizers, phases = make_phases(family.networks, s, family)
    G_opt, D_opt = optimizers["G_opt"], optimizers["D_opt"]
    expected_type = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop,
                     "sgd": torch.optim.SGD}[kind]
    assert isinstance(G_opt, expected_type) and isinstance(D_opt, expected_type)
    assert G_opt.param_groups[0]["lr"] == 0.01  # no G regularizer: not adjusted
    ratio = 3 / 4  # lazy every 3 steps: lr * 3/4, Adam's betas ** (3/4)
    assert D_opt.param_groups[0]["lr"] == pytest.approx(0.04 * ratio)
    group = D_opt.param_groups[0]
    if kind == "adam":
        assert group["betas"] == pytest.approx((0.5**ratio, 0.9**ratio))
    elif kind == "rmsprop":
        assert group["alpha"] == 0.9
    else:
        assert group["momentum"] == 0.5
    assert [p.base_lr for p in phases if p.player == "D"] == pytest.approx([0.04 * ratio] * 2)


def test_linear_learning_rate_decay():
    s = settings(lr_schedule="linear", lr_decay_start=0.5, total_kimg=2.0)
    assert lr_factor(s, 0) == 1.0 and lr_factor(s, 1000) == 1.0
    assert lr_factor(s, 1500) == pytest.approx(0.5)  # halfway through the decay
    assert lr_factor(s, 1900) == pytest.approx(0.1)
    assert lr_factor(s, 2000) == 0.0 and lr_factor(s, 2600) == 0.0
    assert lr_factor(settings(lr_schedule="linear", total_kimg=4.0), 1000) == pytest.approx(0.75)
    assert lr_factor(settings(total_kimg=2.0), 1900) == 1.0  # constant


def test_loss_scaler_halves_on_overflow_and_grows_after_a_run_of_good_steps():
    scaler = LossScaler(init_scale=1024.0, growth_interval=3)
    scaler.update(False)
    assert scaler.scale == 512.0
    for _ in range(2):
        scaler.update(True)
    assert scaler.scale == 512.0
    scaler.update(True)
    assert scaler.scale == 1024.0
    state = scaler.state_dict()
    again = LossScaler()
    again.load_state_dict(state)
    assert again.scale == 1024.0
    with pytest.raises(ValueError, match="init_scale"):
        LossScaler(init_scale=0)
