// Host emulation of csrc/kernels/bias_act.cu, for tests on machines without a GPU.
//
// Includes the kernel source with the GPU launcher compiled out and runs kernel_body (the
// exact code every GPU thread runs) for every thread of the grid, one after the other. Built
// as a shared library by tests/test_bias_act_cuda_emulated.py and called through ctypes with
// CPU tensors.
#define GANKERN_BIAS_ACT_HOST_EMULATION
#include "kernels/bias_act.cu"

namespace {

namespace detail = gankern::bias_act_detail;

struct HostLauncher {
  int64_t threads;  // threads of the emulated grid; <= 0: the grid the GPU launch would use
  bool force_wide;  // run the 64-bit-index instantiation whatever the size

  template <typename T, int MODE, int ACT, bool WIDE>
  cudaError_t run(const detail::KernelArgs<T>& a, unsigned blocks) {
    const int64_t grid = threads > 0 ? threads : int64_t{blocks} * detail::kThreads;
    for (int64_t t = 0; t < grid; ++t) {
      if (force_wide) {
        detail::kernel_body<T, MODE, ACT, true>(a, t, grid);
      } else {
        detail::kernel_body<T, MODE, ACT, WIDE>(a, t, grid);
      }
    }
    return cudaSuccess;
  }
};

}  // namespace

// dtype: 0 float32, 1 float16, 2 bfloat16. Returns the cudaError_t that launch_bias_act
// would (0 on success).
extern "C" int gankern_bias_act_emulate(int dtype, void* out, const void* src, const void* b,
                                        const void* x, const void* y, const void* dy, int64_t n,
                                        int64_t dim_stride, int64_t dim_size, int mode, int act,
                                        float alpha, float gain, float clamp, int64_t threads,
                                        int force_wide) {
  gankern::BiasActParams p{};
  p.out = out;
  p.src = src;
  p.b = b;
  p.x = x;
  p.y = y;
  p.dy = dy;
  p.n = n;
  p.dim_stride = dim_stride;
  p.dim_size = dim_size;
  p.mode = mode;
  p.act = act;
  p.alpha = alpha;
  p.gain = gain;
  p.clamp = clamp;
  HostLauncher launcher{threads, force_wide != 0};
  switch (dtype) {
    case 0: return detail::dispatch<float>(p, launcher);
    case 1: return detail::dispatch<__half>(p, launcher);
    case 2: return detail::dispatch<__nv_bfloat16>(p, launcher);
    default: return cudaErrorInvalidValue;
  }
}

// Whether the emulated launch would take the vectorized (16-byte) path for these pointers.
extern "C" int gankern_bias_act_vectorized(const void* out, const void* src, const void* x,
                                           const void* y, const void* dy) {
  gankern::BiasActParams p{};
  p.out = const_cast<void*>(out);
  p.src = src;
  p.x = x;
  p.y = y;
  p.dy = dy;
  p.n = 1;
  p.dim_stride = 1;
  p.dim_size = 1;
  detail::KernelArgs<float> a;
  return detail::make_args(p, &a) && a.vectorized ? 1 : 0;
}
