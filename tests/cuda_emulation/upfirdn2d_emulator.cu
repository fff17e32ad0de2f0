// Host emulation of csrc/kernels/upfirdn2d.cu, for tests on machines without a GPU.
//
// Includes the kernel source with the GPU launcher compiled out and runs the same per-block
// code on the CPU: for every block, phase 1 (staging into shared memory) for each of its
// threads, then phase 2 (computing outputs) for each thread, which is what the barrier
// between the phases guarantees on the GPU. Shared memory is a buffer surrounded by NaNs, so
// a read outside the staged window poisons the output instead of passing unnoticed.
#define GANKERN_UPFIRDN2D_HOST_EMULATION
#include "kernels/upfirdn2d.cu"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

namespace {

using gankern::upfirdn2d::Params;
using gankern::upfirdn2d::Path;
namespace detail = gankern::upfirdn2d::detail;

struct HostLauncher {
  Path path = Path::kDirect;
  int vector_blocks = 0;  // blocks that staged their window with 16-byte vector loads

  template <typename Block>
  cudaError_t tiled(const Params& p, Path chosen) {
    path = chosen;
    const size_t size = Block::shared_floats(p);
    const size_t margin = size + 1024;
    std::vector<float> buffer(size + 2 * margin);
    float* smem = buffer.data() + margin;
    for (int64_t b = 0; b < Block::num_blocks(p); ++b) {
      std::fill(buffer.begin(), buffer.end(), std::numeric_limits<float>::quiet_NaN());
      const Block block(p, int(b));
      vector_blocks += block.vector_window(p) ? 1 : 0;
      for (int t = 0; t < detail::kThreads; ++t) block.load(p, t, smem);
      for (int t = 0; t < detail::kThreads; ++t) block.compute(p, t, smem);
    }
    return cudaSuccess;
  }

  template <typename T, bool CL>
  cudaError_t direct(const Params& p, Path chosen) {
    path = chosen;
    const int64_t total = int64_t(p.n) * p.c * p.out_h * p.out_w;
    for (int64_t i = 0; i < total; ++i) detail::direct_output<T, CL>(p, i);
    return cudaSuccess;
  }
};

}  // namespace

// Runs upfirdn2d like gankern::upfirdn2d::launch would; returns the Path taken, -1 on a
// bad dtype, and in *vector_blocks how many blocks staged with 16-byte vector loads. dtype: 0 float32, 1 float16, 2 bfloat16 (x and y hold raw 16-bit values).
extern "C" int gankern_upfirdn2d_emulate(
    const void* x, const float* f, void* y, int n, int c, int in_h, int in_w, int out_h,
    int out_w, const int64_t* sx, const int64_t* sy, int up_x, int up_y, int down_x,
    int down_y, int pad_x0, int pad_y0, int fh, int fw, int separable, int flip_filter,
    float gain, int dtype, int* vector_blocks) {
  Params p{};
  p.x = x;
  p.f = f;
  p.y = y;
  p.n = n;
  p.c = c;
  p.in_h = in_h;
  p.in_w = in_w;
  p.out_h = out_h;
  p.out_w = out_w;
  for (int i = 0; i < 4; ++i) {
    p.sx[i] = sx[i];
    p.sy[i] = sy[i];
  }
  p.up_x = up_x;
  p.up_y = up_y;
  p.down_x = down_x;
  p.down_y = down_y;
  p.pad_x0 = pad_x0;
  p.pad_y0 = pad_y0;
  p.fh = fh;
  p.fw = fw;
  p.separable = separable != 0;
  p.flip_filter = flip_filter != 0;
  p.gain = gain;
  HostLauncher launcher;
  switch (dtype) {
    case 0:
      detail::dispatch<float>(p, launcher);
      break;
    case 1:
      detail::dispatch<__half>(p, launcher);
      break;
    case 2:
      detail::dispatch<__nv_bfloat16>(p, launcher);
      break;
    default:
      return -1;
  }
  *vector_blocks = launcher.vector_blocks;
  return int(launcher.path);
}
