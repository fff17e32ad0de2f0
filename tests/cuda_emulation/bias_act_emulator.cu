// Host emulation of csrc/kernels/bias_act.cu, for tests on machines without a GPU.
//
// Includes the kernel source with the GPU launcher compiled out and runs kernel_body (the
// exact code every GPU thread runs) for every thread of the grid, one after the other. Built
// as a shared library by tests/test_bias_act_cuda_emulated.py and called through ctypes with
// CPU tensors.
#define GANKERN_BIAS_ACT_HOST_EMULATION
#include "kernels/bias_act.cu"

#include <algorithm>
#include <limits>
#include <vector>

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

  // Every block of the grid, phase by phase (what the barriers between them guarantee),
  // with a fresh NaN-filled shared buffer: a slot read before it is written shows.
  template <typename T, int ACT, bool COL, bool VEC>
  cudaError_t run_grad_db(const detail::GradDbArgs<T>& a) {
    using Block = detail::GradDbBlock<T, ACT, COL, VEC>;
    std::vector<float> red(detail::kThreads * Block::V);
    for (int64_t b = 0; b < a.plan.blocks * a.plan.groups; ++b) {
      std::fill(red.begin(), red.end(), std::numeric_limits<float>::quiet_NaN());
      const Block block(a, b);
      for (int t = 0; t < detail::kThreads; ++t) block.accumulate(t, red.data());
      for (int s = a.plan.lanes / 2; s > 0; s >>= 1) {
        for (int t = 0; t < detail::kThreads; ++t) block.step(s, t, red.data());
      }
      for (int t = 0; t < detail::kThreads; ++t) block.finish(t, red.data());
    }
    return cudaSuccess;
  }
};

gankern::BiasActGradDbParams grad_db_params(void* out, const void* src, const void* b,
                                            const void* x, const void* y, float* part,
                                            int64_t rows, int64_t cols, int64_t channels,
                                            int channel_is_col, int act, float alpha, float gain,
                                            float clamp) {
  gankern::BiasActGradDbParams p{};
  p.out = out;
  p.src = src;
  p.b = b;
  p.x = x;
  p.y = y;
  p.part = part;
  p.rows = rows;
  p.cols = cols;
  p.channels = channels;
  p.channel_is_col = channel_is_col != 0;
  p.act = act;
  p.alpha = alpha;
  p.gain = gain;
  p.clamp = clamp;
  return p;
}

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

// The partial-sum groups launch_bias_act_grad_db would write (0 for bad parameters), and
// whether it takes the 16-byte path; part is not read.
extern "C" int64_t gankern_bias_act_grad_db_plan(int dtype, void* out, const void* src,
                                                 const void* b, const void* x, const void* y,
                                                 int64_t rows, int64_t cols, int64_t channels,
                                                 int channel_is_col, int act, int* vectorized) {
  const auto p = grad_db_params(out, src, b, x, y, nullptr, rows, cols, channels,
                                channel_is_col, act, 0.f, 1.f, -1.f);
  detail::GradDbPlan plan;
  bool ok = false;
  switch (dtype) {
    case 0: ok = detail::make_grad_db_plan<float>(p, &plan); break;
    case 1: ok = detail::make_grad_db_plan<__half>(p, &plan); break;
    case 2: ok = detail::make_grad_db_plan<__nv_bfloat16>(p, &plan); break;
    default: break;
  }
  *vectorized = ok && plan.vec ? 1 : 0;
  return ok ? plan.groups : 0;
}

// launch_bias_act_grad_db on the host; returns its cudaError_t (0 on success).
extern "C" int gankern_bias_act_grad_db_emulate(int dtype, void* out, const void* src,
                                                const void* b, const void* x, const void* y,
                                                float* part, int64_t rows, int64_t cols,
                                                int64_t channels, int channel_is_col, int act,
                                                float alpha, float gain, float clamp) {
  const auto p = grad_db_params(out, src, b, x, y, part, rows, cols, channels, channel_is_col,
                                act, alpha, gain, clamp);
  HostLauncher launcher{0, false};
  switch (dtype) {
    case 0: return detail::dispatch_grad_db<float>(p, launcher);
    case 1: return detail::dispatch_grad_db<__half>(p, launcher);
    case 2: return detail::dispatch_grad_db<__nv_bfloat16>(p, launcher);
    default: return cudaErrorInvalidValue;
  }
}
