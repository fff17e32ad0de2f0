"""The image-to-image objectives against written-out formulas: pix2pix's GAN + L1 and halved D
loss, CycleGAN's adversarial, cycle and identity losses and its discriminators' image pools
(the pool rule re-implemented from its documentation), SRGAN's content and adversarial
losses on bicubic inputs made by Pillow, SRResNet's MSE; on toy networks whose NumPy twins
compute every value (float64; D's logits are cast to float32 as in the trainer, hence
float32 tolerances), gradients against central differences. Then CycleGAN's learning-rate
schedule (100 epochs constant, 100 of linear decay) and the PatchGAN receptive fields of the
families' configurations against direct computations."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from img2img_toys import (
    ToyPatchD,
    ToyTranslator,
    images,
    np_D,
    np_G,
    np_l1,
    np_mse,
    phase_inputs,
)
from objective_toys import numeric_gradient, phase, settings
from PIL import Image

from gankern.train.families.cyclegan import CycleGANFamily
from gankern.train.families.pix2pix import Pix2PixFamily
from gankern.train.families.srgan import SRGANFamily, SRResNetFamily, random_crops
from gankern.train.family import DataInfo
from gankern.train.options import TrainingOptions

RTOL, ATOL = 1e-5, 1e-6


def _softplus(x):
    return np.logaddexp(0.0, x)


# The adversarial losses per logit, written out again.
G_FORMULAS = {"nonsaturating": lambda f: _softplus(-f), "lsgan": lambda f: 0.5 * (f - 1) ** 2}
D_FORMULAS = {"nonsaturating": lambda r, f: _softplus(-r) + _softplus(f),
              "lsgan": lambda r, f: 0.5 * ((r - 1) ** 2 + f**2)}


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def _objective(out) -> torch.Tensor:
    return torch.stack([t.double() for t in out.terms]).sum()


def _value(out) -> float:
    return float(_objective(out).detach())


def _check(out, expected_fn, params):
    """The objective's value and its gradients with respect to ``params``."""
    objective = _objective(out)
    assert float(objective.detach()) == pytest.approx(expected_fn(), rel=RTOL, abs=ATOL)
    grads = torch.autograd.grad(objective, params)
    for got, want in zip(grads, numeric_gradient(expected_fn, params), strict=True):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-6)


def _family(cls, networks, loss, **model_options):
    family = cls(TrainingOptions(model=cls.name, model_options=model_options, seed=5))
    family.setup(networks, settings(loss=loss, batch=4, batch_gpu=4))
    return family


# --- pix2pix -------------------------------------------------------------------------------


def _pix2pix(loss, **options):
    nets = {"G": ToyTranslator(1, 3, seed=1), "D": ToyPatchD(1 + 3, seed=2)}
    return _family(Pix2PixFamily, nets, loss, **options), nets


@pytest.mark.parametrize("loss", ["nonsaturating", "lsgan"])
def test_pix2pix_generator_is_gan_plus_100_l1(loss):
    family, nets = _pix2pix(loss)
    x, y = images(4, 1, 6, seed=3), images(4, 3, 6, seed=4)

    def expected():
        fake = np_G(nets["G"], _np(x))
        adversarial = G_FORMULAS[loss](np_D(nets["D"], _np(x), fake)).mean(1)
        return (adversarial + 100.0 * np_l1(fake, _np(y))).mean()

    out = family.compute(phase("Gmain"), phase_inputs(x, y))
    np.testing.assert_allclose(_np(out.stats["Loss/G/L1"]), np_l1(np_G(nets["G"], _np(x)),
                                                                    _np(y)), rtol=RTOL)
    _check(out, expected, [nets["G"].weight, nets["G"].bias])


def test_pix2pix_lambda_l1_option():
    family, nets = _pix2pix("nonsaturating", lambda_l1=7.0)
    x, y = images(4, 1, 6, seed=3), images(4, 3, 6, seed=4)
    fake = np_G(nets["G"], _np(x))
    want = (_softplus(-np_D(nets["D"], _np(x), fake)).mean(1) + 7.0 * np_l1(fake, _np(y))).mean()
    out = family.compute(phase("Gmain"), phase_inputs(x, y))
    assert _value(out) == pytest.approx(want, rel=RTOL)


@pytest.mark.parametrize("loss", ["nonsaturating", "lsgan"])
def test_pix2pix_discriminator_is_halved_and_conditioned_on_the_input(loss):
    family, nets = _pix2pix(loss)
    x, y = images(4, 1, 6, seed=3), images(4, 3, 6, seed=4)
    D = nets["D"]

    def expected():
        fake = np_G(nets["G"], _np(x))
        return (0.5 * D_FORMULAS[loss](np_D(D, _np(x), _np(y)),
                                       np_D(D, _np(x), fake)).mean(1)).mean()

    out = family.compute(phase("Dmain"), phase_inputs(x, y))
    np.testing.assert_allclose(_np(out.real_logits), np_D(D, _np(x), _np(y)).mean(1), rtol=RTOL)
    _check(out, expected, [D.v, D.a, D.b])
    _objective(family.compute(phase("Dmain"), phase_inputs(x, y))).backward()
    assert nets["G"].weight.grad is None  # G's images are made without gradients


# --- CycleGAN ------------------------------------------------------------------------------


def _cyclegan(loss="lsgan", channels=(3, 3), **options):
    ca, cb = channels
    nets = {"G_AB": ToyTranslator(ca, cb, seed=1), "G_BA": ToyTranslator(cb, ca, seed=2),
            "D_A": ToyPatchD(ca, seed=3), "D_B": ToyPatchD(cb, seed=4)}
    return _family(CycleGANFamily, nets, loss, **options), nets


@pytest.mark.parametrize("lambda_cycle, lambda_identity", [(10.0, 0.5), (3.0, 0.0)])
def test_cyclegan_generator_terms(lambda_cycle, lambda_identity):
    """lsgan adversarial terms of both generators + lambda * (cycle A + cycle B) + lambda *
    lambda_identity * (|G_BA(a) - a| + |G_AB(b) - b|)."""
    family, nets = _cyclegan(lambda_cycle=lambda_cycle, lambda_identity=lambda_identity)
    a, b = images(4, 3, 6, seed=5), images(4, 3, 6, seed=6)
    G_AB, G_BA, D_A, D_B = (nets[k] for k in ("G_AB", "G_BA", "D_A", "D_B"))

    def expected():
        na, nb = _np(a), _np(b)
        fake_b, fake_a = np_G(G_AB, na), np_G(G_BA, nb)
        adversarial = (G_FORMULAS["lsgan"](np_D(D_B, fake_b)).mean(1)
                       + G_FORMULAS["lsgan"](np_D(D_A, fake_a)).mean(1))
        cycle = np_l1(np_G(G_BA, fake_b), na) + np_l1(np_G(G_AB, fake_a), nb)
        identity = np_l1(np_G(G_BA, na), na) + np_l1(np_G(G_AB, nb), nb)
        return (adversarial + lambda_cycle * cycle
                + lambda_cycle * lambda_identity * identity).mean()

    out = family.compute(phase("Gmain"), phase_inputs(a, b))
    np.testing.assert_allclose(_np(out.stats["Loss/G/cycle_A"]),
                               np_l1(np_G(G_BA, np_G(G_AB, _np(a))), _np(a)), rtol=RTOL)
    assert ("Loss/G/identity_A" in out.stats) == (lambda_identity > 0)
    _check(out, expected, [G_AB.weight, G_BA.weight, G_BA.bias])


def test_cyclegan_identity_needs_domains_with_the_same_channels():
    with pytest.raises(ValueError, match="--lambda-identity 0"):
        _cyclegan(channels=(1, 3))
    family, _ = _cyclegan(channels=(1, 3), lambda_identity=0.0)
    out = family.compute(phase("Gmain"), phase_inputs(images(2, 1, 4, 1), images(2, 3, 4, 2)))
    assert torch.isfinite(_objective(out))


def _pool_rule(stored: np.ndarray, new: np.ndarray, generator: torch.Generator) -> np.ndarray:
    """The documented rule for a full pool: per image, with probability 1/2 (u > 0.5) return
    a uniformly chosen stored image and store the new one in its place."""
    u = torch.rand(len(new), generator=generator)
    slots = torch.randint(len(stored), (len(new),), generator=generator)
    out = new.copy()
    for j in range(len(new)):
        if u[j] > 0.5:
            out[j] = stored[slots[j]].copy()
            stored[slots[j]] = new[j]
    return out


def test_cyclegan_discriminators_see_their_pools():
    """Two D phases with pools of 4 images: the first fills them (D sees the new images),
    the second follows the pool rule; each D's loss is halved lsgan on (real, pooled)."""
    family, nets = _cyclegan(pool_size=4)
    first = (images(4, 3, 6, seed=7), images(4, 3, 6, seed=8))
    family.compute(phase("Dmain"), phase_inputs(*first))
    stored = {"A": np_G(nets["G_BA"], _np(first[1])), "B": np_G(nets["G_AB"], _np(first[0]))}
    for domain in ("A", "B"):
        np.testing.assert_allclose(_np(family.pools[domain].images), stored[domain], rtol=1e-12)
    generators = {}
    for domain, pool in family.pools.items():
        generators[domain] = torch.Generator()
        generators[domain].set_state(pool.generator.get_state())

    a, b = images(4, 3, 6, seed=9), images(4, 3, 6, seed=10)
    pooled = {"B": _pool_rule(stored["B"], np_G(nets["G_AB"], _np(a)), generators["B"]),
              "A": _pool_rule(stored["A"], np_G(nets["G_BA"], _np(b)), generators["A"])}
    assert not np.allclose(pooled["B"], np_G(nets["G_AB"], _np(a)))  # the pool did swap

    def d_loss(domain, real):
        D = nets[f"D_{domain}"]
        return 0.5 * D_FORMULAS["lsgan"](np_D(D, _np(real)), np_D(D, pooled[domain])).mean(1)

    out = family.compute(phase("Dmain"), phase_inputs(a, b))
    want = (d_loss("A", a) + d_loss("B", b)).mean()
    assert _value(out) == pytest.approx(want, rel=RTOL)
    np.testing.assert_allclose(_np(out.stats["Loss/D/loss_B"]), d_loss("B", b), rtol=RTOL)


def test_cyclegan_pools_are_the_objective_state():
    """A family restored from another's state_dict makes the same pool choices."""
    family, nets = _cyclegan(pool_size=3)
    for seed in (1, 2):
        family.compute(phase("Dmain"), phase_inputs(images(2, 3, 4, seed), images(2, 3, 4, 9)))
    restored, _ = _cyclegan(pool_size=3)
    restored.networks = family.networks
    restored.load_state_dict(family.state_dict())
    batch = phase_inputs(images(4, 3, 4, 3), images(4, 3, 4, 4))
    assert _value(family.compute(phase("Dmain"), batch)) == _value(
        restored.compute(phase("Dmain"), batch))
    assert _cyclegan(pool_size=0)[0].state_dict() is None


# --- SRGAN and SRResNet ----------------------------------------------------------------------


def _pillow_bicubic(hr: np.ndarray, factor: int) -> np.ndarray:
    """Low-resolution images made by Pillow's bicubic resize, channel by channel."""
    n, c, h, w = hr.shape
    out = np.empty((n, c, h // factor, w // factor))
    for i in range(n):
        for k in range(c):
            image = Image.fromarray(hr[i, k].astype(np.float32), mode="F")
            out[i, k] = np.asarray(image.resize((w // factor, h // factor), Image.BICUBIC))
    return out


def _srgan(cls=SRGANFamily, loss="nonsaturating", **options):
    nets = {"G": ToyTranslator(1, 1, seed=1, scale=4), "D": ToyPatchD(1, seed=2,
                                                                       single_logit=True)}
    if cls is SRGANFamily:
        options.setdefault("content_loss", "mse")
    else:
        del nets["D"]
    family = _family(cls, nets, loss, **options)
    return family, nets


def test_srgan_generator_is_content_plus_a_thousandth_adversarial():
    family, nets = _srgan()
    hr = images(4, 1, 16, seed=3)

    def expected():
        sr = np_G(nets["G"], _pillow_bicubic(_np(hr), 4))
        return (np_mse(sr, _np(hr)) + 1e-3 * _softplus(-np_D(nets["D"], sr))[:, 0]).mean()

    _check(family.compute(phase("Gmain"), phase_inputs(hr, torch.zeros(4, 0))), expected,
           [nets["G"].weight, nets["G"].bias])


def test_srgan_vgg_content_loss_is_the_rescaled_feature_mse():
    """A stand-in feature network (the real VGG19 needs its weights file): the content loss
    is the MSE of the features, each multiplied by vgg_rescale."""
    family, nets = _srgan(vgg_rescale=0.25, adversarial_weight=0.0)
    features = ToyTranslator(1, 5, seed=9)
    family.vgg = features
    hr = images(3, 1, 16, seed=4)
    sr = np_G(nets["G"], _pillow_bicubic(_np(hr), 4))
    want = np_mse(0.25 * np_G(features, sr), 0.25 * np_G(features, _np(hr))).mean()
    out = family.compute(phase("Gmain"), phase_inputs(hr, torch.zeros(3, 0)))
    assert _value(out) == pytest.approx(want, rel=RTOL)


def test_srgan_discriminator():
    family, nets = _srgan()
    hr = images(4, 1, 16, seed=5)
    D = nets["D"]

    def expected():
        sr = np_G(nets["G"], _pillow_bicubic(_np(hr), 4))
        return D_FORMULAS["nonsaturating"](np_D(D, _np(hr)), np_D(D, sr)).mean()

    _check(family.compute(phase("Dmain"), phase_inputs(hr, torch.zeros(4, 0))), expected,
           [D.v, D.a, D.b])


def test_srresnet_is_the_pixel_mse_alone():
    family, nets = _srgan(SRResNetFamily)
    hr = images(4, 1, 16, seed=6)
    want = np_mse(np_G(nets["G"], _pillow_bicubic(_np(hr), 4)), _np(hr)).mean()
    out = family.compute(phase("Gmain"), phase_inputs(hr, torch.zeros(4, 0)))
    assert _value(out) == pytest.approx(want, rel=RTOL)
    assert SRResNetFamily.players == {"G": ("G",)}


def test_random_crops_are_slices_at_the_drawn_offsets():
    hr = images(3, 2, 20, seed=7)
    torch.manual_seed(11)
    crops = random_crops(hr, 16)
    g = torch.Generator().manual_seed(11)
    ys, xs = torch.randint(5, (3,), generator=g), torch.randint(5, (3,), generator=g)
    for i in range(3):
        np.testing.assert_array_equal(_np(crops[i]),
                                      _np(hr[i, :, ys[i]:ys[i] + 16, xs[i]:xs[i] + 16]))
    assert random_crops(hr, 20) is hr


def test_srgan_content_loss_falls_back_to_the_pixel_mse_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKERN_CACHE", str(tmp_path))
    monkeypatch.delenv("GANKERN_VGG19_WEIGHTS", raising=False)
    family, _ = _srgan(content_loss="auto")
    assert family.vgg is None and family.content_kind == "mse"
    (note,) = family.notes()
    assert "pixel MSE" in note and "no VGG19 weights file was found" in note
    with pytest.raises(FileNotFoundError, match="VGG19"):
        _srgan(content_loss="vgg54")


# --- CycleGAN's learning-rate schedule -----------------------------------------------------


def test_cyclegan_published_schedule_is_100_epochs_constant_then_100_linear(tmp_path):
    """On data of 1,000 images (an epoch: max(|A|, |B|)) the published configuration trains
    200 epochs, decaying from epoch 100; the optimizer's rate after each step is the paper's
    lr(epoch) = 2e-4 * min(1, (200 - epoch) / 100), with epoch = images seen / 1000."""
    data = DataInfo(name="x", kind="unpaired", resolution=256, channels=3, channels_b=3,
                    num_images=1000)
    family = CycleGANFamily(TrainingOptions(model="cyclegan"))
    hp = family.network_config("resnet9", data, 1, "fp32", {}).recommended
    assert (hp.total_kimg, hp.lr_decay_start, hp.lr_schedule) == (200.0, 0.5, "linear")
    assert (hp.glr, hp.dlr, hp.batch, hp.loss) == (2e-4, 2e-4, 1, "lsgan")

    # The same schedule run by the trainer on the tiny networks: 200 "epochs" of 0.1 images
    # (20 steps of batch 1).
    from gankern.train.distributed import DistributedContext
    from gankern.train.run import build_training_run

    small = DataInfo(name="x", kind="unpaired", resolution=16, channels=1, channels_b=1)
    opts = TrainingOptions(model="cyclegan", cfg="digits", batch=1, kimg=0.02,
                           lr_schedule="linear", lr_decay_start=hp.lr_decay_start,
                           metrics=[], device="cpu")
    run = build_training_run(opts, small, DistributedContext())
    data_batch = (images(1, 1, 16, 1).float(), images(1, 1, 16, 2).float())
    for _ in range(20):
        run.step([data_batch])
        epoch = (run.nimg - 1) / 0.1  # the rate of a step is set before it
        want = 2e-4 * min(1.0, (200 - epoch) / 100)
        for opt in run.optimizers.values():
            assert opt.param_groups[0]["lr"] == pytest.approx(want, rel=1e-9, abs=1e-15)


# --- PatchGAN receptive fields of the configurations -----------------------------------------


def _support_side(config, side: int = 96) -> int:
    """Side of the input region that moves one interior logit of the discriminator of
    ``config`` built without normalization (batch and instance statistics couple all
    pixels; the receptive field is the convolutions')."""
    D = dataclasses.replace(config, norm="none").build("ref")
    channels = D.in_channels
    x = torch.randn(1, channels, side, side, requires_grad=True)
    logits = D(x) if D.cond_channels == 0 else D(x[:, :D.cond_channels], x[:, D.cond_channels:])
    h, w = logits.shape[2:]
    (grad,) = torch.autograd.grad(logits[0, 0, h // 2, w // 2], x)
    rows = torch.nonzero(grad.abs().sum((0, 1)).sum(1)).flatten()
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize("cls, cfg, options, expected", [
    (Pix2PixFamily, "unet256", {}, 70),
    (Pix2PixFamily, "digits", {}, 34),
    (Pix2PixFamily, "digits", {"n_layers": 1}, 16),
    (CycleGANFamily, "resnet9", {}, 70),
    (CycleGANFamily, "digits", {}, 34),
])
def test_patchgan_receptive_fields_of_the_configurations(cls, cfg, options, expected):
    kind = "paired" if cls is Pix2PixFamily else "unpaired"
    data = DataInfo(name="x", kind=kind, resolution=256, channels=3, channels_b=3)
    family = cls(TrainingOptions(model=cls.name, model_options=options))
    configs = family.network_config(cfg, data, 1, "fp32", {}).configs
    config = configs["D" if cls is Pix2PixFamily else "D_B"]
    assert config.build("ref").receptive_field == expected
    assert _support_side(config) == expected


def test_srgan_vgg22_content_loss_from_a_weights_file(tmp_path):
    """``--content-loss vgg22 --vgg-weights FILE``: the content loss is the MSE of VGG19's
    relu2_2 features (ImageNet-normalized inputs, gray repeated to RGB) times vgg_rescale,
    computed here with functional convolutions from the file's tensors."""
    g = torch.Generator().manual_seed(0)
    shapes = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128)}
    state = {}
    for index, (cout, cin) in shapes.items():
        state[f"features.{index}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * 0.05
        state[f"features.{index}.bias"] = torch.randn(cout, generator=g) * 0.05
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(state, path)
    family, nets = _srgan(content_loss="vgg22", vgg_weights=str(path), vgg_rescale=0.5,
                          adversarial_weight=0.0)
    assert family.notes() == ["SRGAN content loss: vgg22, the MSE of VGG19 relu2_2 features "
                              "times 0.5"]

    def features(x):
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        x = ((x.float().repeat(1, 3, 1, 1) + 1) / 2 - mean) / std
        for index in (0, 2, 5, 7):
            x = F.relu(F.conv2d(x, state[f"features.{index}.weight"],
                                state[f"features.{index}.bias"], padding=1))
            if index == 2:
                x = F.max_pool2d(x, 2)
        return x

    hr = images(2, 1, 16, seed=8)
    sr = torch.from_numpy(np_G(nets["G"], _pillow_bicubic(_np(hr), 4)))
    want = (0.5 * features(sr) - 0.5 * features(hr)).square().mean()
    out = family.compute(phase("Gmain"), phase_inputs(hr, torch.zeros(2, 0)))
    assert _value(out) == pytest.approx(float(want), rel=1e-4)
