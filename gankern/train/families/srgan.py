"""SRGAN and SRResNet (Ledig et al. 2017): 4x super-resolution of any folder of images.

The training data are high-resolution images (a folder, a zip, or the built-in
``builtin:digits-sr``); each step takes random ``hr_crop`` x ``hr_crop`` crops of them
(whole images when they are no larger) and makes the low-resolution inputs on the fly with
:class:`gankern.nn.BicubicDownsample` (the paper's bicubic kernel on the fused
``upfirdn2d``). Inputs and outputs are in [-1, 1] (the paper scales its inputs to [0, 1]:
an affine change the first convolution absorbs).

Two models, two modes of the paper:

* ``srresnet``: the generator alone, trained with the pixel MSE (the paper's SRResNet,
  10^6 updates; a G-only run: no discriminator, no adversarial loss);
* ``srgan``: the generator against the paper's discriminator: G minimizes
  ``content + adversarial_weight * generator_loss(D(G(lr)))`` (weight 1e-3, the
  non-saturating ``-log D``), D the logistic loss on the high-resolution images against
  ``G(lr)`` (made without gradients). ``--init-generator RUN`` starts G from an
  ``srresnet`` run, as the paper does.

SRGAN's content loss (``--content-loss``): ``vgg54`` (the paper's: the MSE of VGG19's
``relu5_4`` features, rescaled by 1/12.75), ``vgg22`` (``relu2_2``), ``mse`` (pixels: the
paper's SRGAN-MSE), or ``auto`` (the default): VGG54 when the VGG19 weights file is on this
machine (``--vgg-weights PATH``, ``$GANKERN_VGG19_WEIGHTS`` or
``~/.cache/gankern/models/vgg19-dcbb9e9d.pth``; gankern never downloads it), else the pixel
MSE; the run's log says which at its start. The 1/12.75 was calibrated for the authors'
VGG on their input scaling (``--vgg-rescale`` changes it).

Configurations: ``srgan`` (the paper's networks for 96x96 crops: SRResNet 16 blocks,
1,548,547 parameters; discriminator 23,563,649), Adam with beta1 0.9, lr 1e-4, batch 16,
10^5 + 10^5 updates for SRGAN (the paper lowers the rate to 1e-5 for the second 10^5, a
step the trainer's schedules do not express: not reproduced) and 10^6 for SRResNet;
``digits`` (4 blocks of 16 maps for ``builtin:digits-sr``, 32 px from 8 px).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankern.models.srgan import (
    SRGAN_PAPER_HYPERPARAMS,
    SRGANDiscriminatorConfig,
    SRResNetConfig,
    content_network,
    srgan_config,
)
from gankern.models.vgg import VGG19_WEIGHTS_ENV, VGG19_WEIGHTS_FILENAME, load_vgg19_features
from gankern.nn.bicubic import BicubicDownsample
from gankern.train.families._configured import from_paper
from gankern.train.families._img2img import (
    ImageToImageFamily,
    TranslationConfig,
    mse_per_image,
    nearest_upsample,
    per_image_mean,
)
from gankern.train.family import Hyperparameters, PhaseInputs, PhaseOutput, option
from gankern.train.losses import discriminator_loss, generator_loss

PAPER = SRGAN_PAPER_HYPERPARAMS
CONTENT_LOSSES = ("auto", "vgg54", "vgg22", "mse")
VGG_LAYERS = {"vgg54": "relu5_4", "vgg22": "relu2_2"}
SRGAN_KIMG = (PAPER.gan_iters + PAPER.gan_iters_low_lr) * PAPER.gan.batch / 1000
SRRESNET_KIMG = PAPER.pretrain_iters * PAPER.gan.batch / 1000
# gankern's settings of the small digits networks (measured: tests/test_train_img2img_learning.py).
DIGITS_SRRESNET = Hyperparameters(batch=16, glr=1e-3, dlr=1e-3, total_kimg=20,
                                  betas=(0.9, 0.999))
DIGITS_SRGAN = Hyperparameters(batch=16, glr=1e-4, dlr=1e-4, total_kimg=20, betas=(0.9, 0.999))


@dataclass(frozen=True)
class SRResNetOptions:
    """SRResNet's own options (defaults: the paper's)."""

    hr_crop: int = option(PAPER.hr_crop, "side of the random high-resolution crops (a multiple "
                          "of 16; images no larger are used whole)")


@dataclass(frozen=True)
class SRGANOptions(SRResNetOptions):
    """SRGAN's own options (defaults: the paper's)."""

    content_loss: str = option("auto", "G's content loss: vgg54 (the paper's), vgg22, mse "
                               "(pixels), auto (vgg54 if the VGG19 weights file is here, else "
                               "mse)", CONTENT_LOSSES)
    vgg_weights: str = option("", f"path of {VGG19_WEIGHTS_FILENAME} (empty: "
                              f"${VGG19_WEIGHTS_ENV}, then the gankern cache)")
    vgg_rescale: float = option(PAPER.vgg_rescale, "VGG feature maps are multiplied by this "
                                "before their MSE")
    adversarial_weight: float = option(PAPER.adversarial_weight, "weight of G's adversarial "
                                       "loss beside the content loss")
    init_generator: str = option("", "checkpoint or run directory of an srresnet run whose "
                                 "generator starts this run (empty: random initialization)")


def crop_side(data, options) -> int:
    """The side of the training crops: ``hr_crop``, or the whole images if not larger."""
    crop = options.hr_crop
    if crop < 16 or crop % 16:
        raise ValueError(f"hr_crop must be a positive multiple of 16, got {crop}")
    return min(crop, data.resolution)


def _networks(name: str, with_discriminator: bool):
    def make(data, options):
        if with_discriminator:
            G, D = srgan_config(name, crop_side(data, options), data.channels)
            return {"G": G, "D": D}
        crop_side(data, options)  # a check
        return {"G": srgan_config(name, None, data.channels)[0]}

    return make


def random_crops(images: torch.Tensor, side: int) -> torch.Tensor:
    """A random ``side`` x ``side`` crop of each image (torch's global generator, which the
    trainer seeds per slice); the images themselves when they are that size."""
    n, _, h, w = images.shape
    if (h, w) == (side, side):
        return images
    ys = torch.randint(h - side + 1, (n,)).tolist()
    xs = torch.randint(w - side + 1, (n,)).tolist()
    return torch.stack([img[:, y:y + side, x:x + side]
                        for img, y, x in zip(images, ys, xs, strict=True)])


class SRResNetFamily(ImageToImageFamily):
    """SRResNet: the SRGAN generator trained with the pixel MSE alone (a G-only run)."""

    name = "srresnet"
    title = "SRResNet (Ledig et al. 2017): 4x super-resolution, MSE (SRGAN's pre-training)"
    data_kind = "images"
    default_data = "builtin:digits-sr"
    options_type = SRResNetOptions
    knobs = ("optimizer", "glr", "betas", "lr_schedule", "lr_decay_start")
    players = {"G": ("G",)}
    configs = {
        "srgan": TranslationConfig(_networks("srgan", False), lambda data, options: from_paper(
            PAPER.gan, total_kimg=SRRESNET_KIMG), "the paper's SRResNet (16 blocks, 64 maps)"),
        "digits": TranslationConfig(_networks("digits", False),
                                    lambda data, options: DIGITS_SRRESNET,
                                    "4 blocks of 16 maps (CPU)"),
    }
    default_config = "srgan"
    standard_configs = {96: "srgan"}
    config_classes = {"G": SRResNetConfig, "D": SRGANDiscriminatorConfig}

    @classmethod
    def grid_columns(cls, nets, batch):
        """``bicubic-downsampled input (shown blown up) | G(input) | the image``."""
        (hr,) = batch
        G = nets["G"]
        lr = BicubicDownsample(G.scale).to(hr.device)(hr)
        return [nearest_upsample(lr, hr.shape[-1]), G(lr), hr]

    def setup(self, networks, settings, augment=None, channels_last=False) -> None:
        super().setup(networks, settings, augment, channels_last)
        G = networks["G"]
        self.downsample = BicubicDownsample(G.scale, impl=self.opts.impl).to(
            next(G.parameters()).device)

    def training_pair(self, hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(low-resolution input, high-resolution target)`` of a slice of real images."""
        hr = random_crops(hr, min(self.options.hr_crop, hr.shape[-1]))
        with torch.no_grad():
            lr = self.downsample(hr)
        return lr, hr

    def compute(self, phase, inputs: PhaseInputs) -> PhaseOutput:
        out = PhaseOutput()
        lr, hr = self.training_pair(inputs.real[0])
        mse = mse_per_image(self.networks["G"](lr), hr)
        out.terms.append(mse.sum() / inputs.batch)
        out.stats.update({"Loss/G/loss": mse, "Loss/G/mse": mse})
        return out


class SRGANFamily(SRResNetFamily):
    """SRGAN's recipe on the one trainer (see the module docstring)."""

    name = "srgan"
    title = "SRGAN (Ledig et al. 2017): SRResNet + discriminator, content + 1e-3 adversarial"
    options_type = SRGANOptions
    knobs = SRResNetFamily.knobs + ("dlr", "n_critic", "loss")
    players = {"G": ("G",), "D": ("D",)}
    configs = {
        "srgan": TranslationConfig(_networks("srgan", True), lambda data, options: from_paper(
            PAPER.gan, total_kimg=SRGAN_KIMG), "the paper's networks for 96x96 crops"),
        "digits": TranslationConfig(_networks("digits", True), lambda data, options: DIGITS_SRGAN,
                                    "SRResNet 4 blocks of 16 maps, D of 8..64 maps (CPU)"),
    }

    # --- networks ------------------------------------------------------------------------

    def build_networks(self, config, precision, impl) -> dict:
        networks = super().build_networks(config, precision, impl)
        path = self.options.init_generator
        if path and self.opts.resume is None:  # a resumed run has its own G
            networks["G"].load_state_dict(self._pretrained_generator(path, config.configs["G"]))
        return networks

    @staticmethod
    def _pretrained_generator(path: str, config) -> dict:
        from gankern.train.checkpoint import load_checkpoint, resolve_resume_path
        from gankern.train.networks import checkpoint_model, load_network

        tensors, meta = load_checkpoint(resolve_resume_path(path))
        model = checkpoint_model(meta)
        if model not in ("srresnet", "srgan"):
            raise ValueError(f"init_generator {path!r} is a {model} checkpoint; it must be an "
                             "srresnet (or srgan) run")
        saved = SRResNetConfig(**meta["networks"]["G"])
        if saved != config:
            raise ValueError(f"init_generator {path!r} holds a generator {saved}, but this run "
                             f"builds {config} (use the same --cfg and data channels)")
        return load_network(meta, tensors, "G").state_dict()

    # --- the content loss ----------------------------------------------------------------

    def setup(self, networks, settings, augment=None, channels_last=False) -> None:
        super().setup(networks, settings, augment, channels_last)
        o = self.options
        device = next(networks["G"].parameters()).device
        weights = o.vgg_weights or None
        kind = o.content_loss
        self.vgg = None
        if kind == "auto":
            self.vgg = content_network(weights, VGG_LAYERS["vgg54"], device=device)
            kind = "vgg54" if self.vgg is not None else "mse"
            self._fallback = self.vgg is None
        elif kind != "mse":
            self.vgg = load_vgg19_features(weights, layer=VGG_LAYERS[kind], device=device)
        self.content_kind = kind

    def notes(self) -> list[str]:
        if self.content_kind == "mse":
            why = (f": no VGG19 weights file was found (for the paper's VGG54 loss, put "
                   f"torchvision's {VGG19_WEIGHTS_FILENAME} in ~/.cache/gankern/models/, "
                   f"point ${VGG19_WEIGHTS_ENV} at it, or pass --vgg-weights)"
                   if getattr(self, "_fallback", False) else "")
            return [f"SRGAN content loss: pixel MSE (the paper's SRGAN-MSE){why}"]
        return [f"SRGAN content loss: {self.content_kind}, the MSE of VGG19 "
                f"{VGG_LAYERS[self.content_kind]} features times {self.options.vgg_rescale:g}"]

    def content_loss(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """The content loss per image ``[N]`` (see the module docstring)."""
        if self.vgg is None:
            return mse_per_image(sr, hr)
        scale = self.options.vgg_rescale
        dtype = next(self.vgg.parameters()).dtype  # the images may be in another precision
        with torch.no_grad():
            target = self.vgg(hr.to(dtype)) * scale
        return mse_per_image(self.vgg(sr.to(dtype)) * scale, target)

    # --- the objective -------------------------------------------------------------------

    def compute(self, phase, inputs: PhaseInputs) -> PhaseOutput:
        out = PhaseOutput()
        lr, hr = self.training_pair(inputs.real[0])
        n, loss, G = hr.shape[0], self.settings.loss, self.networks["G"]
        if phase.trains_generator:
            sr = G(lr)
            logits = self.run_D("D", sr)
            adversarial = per_image_mean(generator_loss(loss, logits.reshape(-1)), n)
            content = self.content_loss(sr, hr)
            total = content + self.options.adversarial_weight * adversarial
            out.terms.append(total.sum() / inputs.batch)
            out.stats.update({"Loss/G/loss": total, "Loss/G/content": content,
                              "Loss/G/adversarial": adversarial,
                              "Loss/scores/fake": logits.mean(1)})
            return out
        with torch.no_grad():
            sr = G(lr)
        real_logits, fake_logits = self.run_D("D", hr), self.run_D("D", sr)
        total = per_image_mean(discriminator_loss(loss, real_logits.reshape(-1),
                                                  fake_logits.reshape(-1)), n)
        out.terms.append(total.sum() / inputs.batch)
        out.real_logits = real_logits.detach().mean(1)
        out.stats.update({"Loss/D/loss": total, "Loss/scores/real": out.real_logits,
                          "Loss/scores/fake": fake_logits.mean(1),
                          "Loss/signs/real": out.real_logits.sign()})
        return out

