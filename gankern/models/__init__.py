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
* :mod:`gankern.models.convert_ada`, :mod:`gankern.models.convert_rosinality`: official
  pretrained weights (StyleGAN2-ADA / StyleGAN3 ``.pkl`` read without running pickled code,
  rosinality ``.pt``).
"""

from gankern.models.convert_ada import load_stylegan2_pkl
from gankern.models.convert_rosinality import load_rosinality_checkpoint
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
from gankern.models.sngan import (
    SNGAN_CONFIGS,
    SNGAN_HYPERPARAMS,
    ResNetDiscriminator,
    ResNetDiscriminatorConfig,
    ResNetGenerator,
    ResNetGeneratorConfig,
    sngan_config,
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

__all__ = [
    "CONFIGS",
    "DCGAN_CONFIGS",
    "DCGAN_HYPERPARAMS",
    "DCGANDiscriminator",
    "DCGANDiscriminatorConfig",
    "DCGANGenerator",
    "DCGANGeneratorConfig",
    "Discriminator",
    "DiscriminatorConfig",
    "GAN_CONFIGS",
    "GAN_HYPERPARAMS",
    "GANHyperparams",
    "Generator",
    "GeneratorConfig",
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
    "StyleGAN2Config",
    "TrainingHyperparams",
    "dcgan_config",
    "gan_config",
    "get_config",
    "load_rosinality_checkpoint",
    "load_stylegan2_pkl",
    "mapping_with_mixing",
    "mix_styles",
    "register_config",
    "sngan_config",
]
