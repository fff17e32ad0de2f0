"""GAN architectures, one per file, each configured by dataclasses.

* :mod:`gankern.models.stylegan2`: StyleGAN2 ``Generator`` and ``Discriminator``
  (StyleGAN2-ADA's API and parameter names).
* :mod:`gankern.models.stylegan2_configs`: named configurations (``get_config``).
* :mod:`gankern.models.dcgan`: DCGAN (and its cGAN, ACGAN, projection and WGAN-GP critic
  variants).
* :mod:`gankern.models.gan`: the original GAN's MLPs (and cGAN by label concatenation).
* :mod:`gankern.models.sngan`: the ResNet generator and discriminator of SNGAN (and of
  WGAN-GP's CIFAR code), unconditional, projection or ACGAN.
* :mod:`gankern.models.hyperparams`: :class:`GANHyperparams`, a paper's training settings.
* :mod:`gankern.models.pix2pix`: the pix2pix U-Net generator (``UNetGeneratorConfig``) and,
  in :mod:`gankern.models.patchgan`, the PatchGAN discriminator (``PatchGANConfig``).
* :mod:`gankern.models.cyclegan`: the CycleGAN ResNet generator (``ResnetGeneratorConfig``)
  and the image history pool (``ImagePool``).
* :mod:`gankern.models.srgan`: SRGAN's SRResNet generator and discriminator
  (``SRResNetConfig``, ``SRGANDiscriminatorConfig``), and in :mod:`gankern.models.vgg` the
  VGG19 content network (torchvision names, weights from a local file only).
* :mod:`gankern.models.convert_ada`, :mod:`gankern.models.convert_rosinality`: official
  pretrained weights (StyleGAN2-ADA / StyleGAN3 ``.pkl`` read without running pickled code,
  rosinality ``.pt``).
"""

from gankern.models.convert_ada import load_stylegan2_pkl
from gankern.models.convert_rosinality import load_rosinality_checkpoint
from gankern.models.cyclegan import (
    CYCLEGAN_PAPER_HYPERPARAMS,
    CycleGANHyperparams,
    ResnetGenerator,
    ResnetGeneratorConfig,
    cyclegan_config,
)
from gankern.models.dcgan import (
    DCGAN_CONFIGS,
    DCGAN_HYPERPARAMS,
    DCGANDiscriminator,
    DCGANDiscriminatorConfig,
    DCGANGenerator,
    DCGANGeneratorConfig,
    dcgan_config,
)
from gankern.models.gan import (
    GAN_CONFIGS,
    GAN_HYPERPARAMS,
    MLPDiscriminator,
    MLPDiscriminatorConfig,
    MLPGenerator,
    MLPGeneratorConfig,
    gan_config,
)
from gankern.models.hyperparams import GANHyperparams
from gankern.models.image_pool import ImagePool
from gankern.models.patchgan import PatchGANConfig, PatchGANDiscriminator, receptive_field
from gankern.models.pix2pix import (
    PIX2PIX_PAPER_HYPERPARAMS,
    Pix2PixHyperparams,
    UNetGenerator,
    UNetGeneratorConfig,
    pix2pix_config,
)
from gankern.models.sngan import (
    SNGAN_CONFIGS,
    SNGAN_HYPERPARAMS,
    ResNetDiscriminator,
    ResNetDiscriminatorConfig,
    ResNetGenerator,
    ResNetGeneratorConfig,
    sngan_config,
)
from gankern.models.srgan import (
    SRGAN_PAPER_HYPERPARAMS,
    SRGANDiscriminator,
    SRGANDiscriminatorConfig,
    SRGANHyperparams,
    SRResNet,
    SRResNetConfig,
    content_network,
    srgan_config,
)
from gankern.models.stylegan2 import (
    Discriminator,
    Generator,
    mapping_with_mixing,
    mix_styles,
)
from gankern.models.stylegan2_configs import (
    CONFIGS,
    DiscriminatorConfig,
    GeneratorConfig,
    StyleGAN2Config,
    TrainingHyperparams,
    get_config,
    register_config,
)
from gankern.models.vgg import VGG19Features, find_vgg19_weights, load_vgg19_features

__all__ = [
    "CONFIGS",
    "CYCLEGAN_PAPER_HYPERPARAMS",
    "DCGAN_CONFIGS",
    "DCGAN_HYPERPARAMS",
    "GAN_CONFIGS",
    "GAN_HYPERPARAMS",
    "PIX2PIX_PAPER_HYPERPARAMS",
    "SRGAN_PAPER_HYPERPARAMS",
    "CycleGANHyperparams",
    "DCGANDiscriminator",
    "DCGANDiscriminatorConfig",
    "DCGANGenerator",
    "DCGANGeneratorConfig",
    "Discriminator",
    "DiscriminatorConfig",
    "GANHyperparams",
    "Generator",
    "GeneratorConfig",
    "ImagePool",
    "MLPDiscriminator",
    "MLPDiscriminatorConfig",
    "MLPGenerator",
    "MLPGeneratorConfig",
    "ResNetDiscriminator",
    "ResNetDiscriminatorConfig",
    "ResNetGenerator",
    "ResNetGeneratorConfig",
    "SNGAN_CONFIGS",
    "SNGAN_HYPERPARAMS",
    "PatchGANConfig",
    "PatchGANDiscriminator",
    "Pix2PixHyperparams",
    "ResnetGenerator",
    "ResnetGeneratorConfig",
    "SRGANDiscriminator",
    "SRGANDiscriminatorConfig",
    "SRGANHyperparams",
    "SRResNet",
    "SRResNetConfig",
    "StyleGAN2Config",
    "TrainingHyperparams",
    "UNetGenerator",
    "UNetGeneratorConfig",
    "VGG19Features",
    "content_network",
    "cyclegan_config",
    "dcgan_config",
    "find_vgg19_weights",
    "gan_config",
    "get_config",
    "load_rosinality_checkpoint",
    "load_stylegan2_pkl",
    "load_vgg19_features",
    "mapping_with_mixing",
    "mix_styles",
    "pix2pix_config",
    "receptive_field",
    "register_config",
    "sngan_config",
    "srgan_config",
]
