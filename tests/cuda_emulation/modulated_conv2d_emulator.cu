// Host emulation of csrc/kernels/modulated_conv2d.cu, for tests on machines without a GPU.
//
// Includes the kernel source and runs its per-element function (the exact code every GPU
// thread runs) over all elements on the CPU. Built as a shared library by
// tests/test_modulated_conv2d_cuda.py and called through ctypes with CPU tensors.
#include "kernels/modulated_conv2d.cu"

namespace {

using gankern::modconv::EpilogueParams;
namespace mc = gankern::modconv;

template <typename T, int ACT>
void run(const EpilogueParams& p) {
  const int64_t total = p.size[0] * p.size[1] * p.size[2] * p.size[3];
  for (int64_t i = 0; i < total; ++i) mc::detail::epilogue_element<T, ACT>(p, i);
}

template <typename T>
int run_act(const EpilogueParams& p) {
  const cudaError_t err = gankern::dispatch_activation(p.act, [&](auto act) {
    run<T, decltype(act)::value>(p);
    return cudaSuccess;
  });
  return err == cudaSuccess ? 0 : 1;
}

}  // namespace

// dtype: 0 float32, 1 float16, 2 bfloat16. Returns 0 on success.
extern "C" int gankern_modconv_epilogue_host(int dtype, void* y, const void* z, const float* post,
                                             const float* noise, const float* bias,
                                             const int64_t* size, const int64_t* y_stride,
                                             const int64_t* z_stride, const int64_t* noise_stride,
                                             const int64_t* post_stride, int channels_last,
                                             int act, float alpha, float gain, float clamp) {
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
  switch (dtype) {
    case 0: return run_act<float>(p);
    case 1: return run_act<__half>(p);
    case 2: return run_act<__nv_bfloat16>(p);
    default: return 1;
  }
}
