"""gankern: fused GAN kernels (CUDA C++ and Triton), GAN architectures, trainer and metrics."""

__version__ = "0.1.0"
