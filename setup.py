"""Build script.

By default gankern installs as pure Python: the CUDA extension is compiled just in time
on first use (see ``gankern/_ext.py``). Set ``GANKERN_BUILD_CUDA=1`` to compile it ahead
of time into ``gankern._C`` (needs a CUDA build of torch and nvcc); ``TORCH_CUDA_ARCH_LIST``
picks the GPU architectures as usual (for example ``9.0`` for Hopper).
"""

import glob
import os

from setuptools import setup


def _extensions():
    if os.environ.get("GANKERN_BUILD_CUDA", "0") != "1":
        return [], {}
    from torch.utils.cpp_extension import BuildExtension, CUDAExtension

    sources = sorted(glob.glob("csrc/kernels/*.cu")) + sorted(glob.glob("csrc/bindings/*.cpp"))
    ext = CUDAExtension(
        name="gankern._C",
        sources=sources,
        include_dirs=[os.path.abspath("csrc")],
        extra_compile_args={
            "cxx": ["-O3"],
            "nvcc": ["-O3", "-lineinfo"],
        },
    )
    return [ext], {"build_ext": BuildExtension}


ext_modules, cmdclass = _extensions()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
