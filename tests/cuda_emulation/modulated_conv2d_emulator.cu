// Host emulation of csrc/kernels/modulated_conv2d.cu, for tests on machines without a GPU.
//
// Includes the kernel source with the GPU launcher compiled out and runs its per-thread
// function (the exact code every GPU thread runs) for every thread of the launch on the CPU.
// Built as a shared library by tests/test_modulated_conv2d_cuda.py and called through ctypes
// with CPU tensors.
#define GANKERN_MODCONV_HOST_EMULATION
#include "kernels/modulated_conv2d.cu"

namespace {

using gankern::modconv::EpilogueParams;
namespace detail = gankern::modconv::detail;

// Runs every thread of the launch the GPU path would make, one after the other.
struct HostLauncher {
  int path = -1;  // 0: 8 elements per thread, 16-byte accesses; 1: per element; 2: 64-bit

  template <typename T, int ACT, bool CL, bool VEC>
  cudaError_t packs(const detail::EpilogueArgs& a) {
    path = VEC ? 0 : 1;
    for (uint32_t t = 0; t < a.threads; ++t) detail::epilogue_thread<T, ACT, CL, VEC>(a, t);
    return cudaSuccess;
  }

  template <typename T, int ACT>
  cudaError_t wide(const EpilogueParams& p, int64_t total) {
    path = 2;
    for (int64_t i = 0; i < total; ++i) detail::epilogue_element_wide<T, ACT>(p, i);
    return cudaSuccess;
  }
};

}  // namespace

// dtype: 0 float32, 1 float16, 2 bfloat16. Returns the path taken (HostLauncher::path), or
// -1 on bad parameters.
extern "C" int gankern_modconv_epilogue_host(int dtype, void* y, const void* z, const float* post,
                                             const float* noise, const float* bias,
                                             const int64_t* size, const int64_t* y_stride,
                                             const int64_t* z_stride, const int64_t* noise_stride,
                                             const int64_t* post_stride, int channels_last,
                                             int act, float alpha, float gain, float clamp,
                                             int force_wide) {
  EpilogueParams p{};
  p.y = y;
  p.z = z;
  p.post = post;
  p.noise = noise;
  p.bias = bias;
  for (int d = 0; d < 4; ++d) {
    p.size[d] = size[d];
    p.y_stride[d] = y_stride[d];
    p.z_stride[d] = z_stride[d];
    p.noise_stride[d] = noise_stride[d];
  }
  p.post_stride[0] = post_stride[0];
  p.post_stride[1] = post_stride[1];
  p.channels_last = channels_last != 0;
  p.act = act;
  p.alpha = alpha;
  p.gain = gain;
  p.clamp = clamp;
  HostLauncher launcher;
  cudaError_t err = cudaErrorInvalidValue;
  if (force_wide) {  // the 64-bit path, which the dispatch takes from 2^31 elements on
    const int64_t total = p.size[0] * p.size[1] * p.size[2] * p.size[3];
    err = gankern::dispatch_activation(p.act, [&](auto act) {
      constexpr int ACT = decltype(act)::value;
      switch (dtype) {
        case 0: return launcher.wide<float, ACT>(p, total);
        case 1: return launcher.wide<__half, ACT>(p, total);
        case 2: return launcher.wide<__nv_bfloat16, ACT>(p, total);
        default: return cudaErrorInvalidValue;
      }
    });
    return err == cudaSuccess ? launcher.path : -1;
  }
  switch (dtype) {
    case 0: err = detail::dispatch<float>(p, launcher); break;
    case 1: err = detail::dispatch<__half>(p, launcher); break;
    case 2: err = detail::dispatch<__nv_bfloat16>(p, launcher); break;
    default: break;
  }
  return err == cudaSuccess ? launcher.path : -1;
}
