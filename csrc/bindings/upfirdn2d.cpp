// Torch glue of the upfirdn2d CUDA kernels: argument checks, dtype dispatch, current stream.
//
// Registers gankern_cuda::upfirdn2d, which writes into a preallocated output: the Python
// custom op gankern::upfirdn2d (gankern/ops/_upfirdn2d_op.py) allocates it, so that the
// output's size and memory format are decided in one place for every backend.
#include <ATen/ATen.h>
#include <ATen/MemoryOverlap.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstdlib>
#include <limits>

#include "kernels/upfirdn2d.h"

namespace {

namespace up = gankern::upfirdn2d;

int checked_int(int64_t value, const char* name) {
  TORCH_CHECK(value >= std::numeric_limits<int>::min() && value <= std::numeric_limits<int>::max(),
              "gankern_cuda::upfirdn2d: ", name, " must fit in 32 bits, got ", value);
  return static_cast<int>(value);
}

up::Dtype kernel_dtype(const at::Tensor& x) {
  switch (x.scalar_type()) {
    case at::kFloat:
      return up::Dtype::kFloat32;
    case at::kHalf:
      return up::Dtype::kFloat16;
    case at::kBFloat16:
      return up::Dtype::kBFloat16;
    default:
      TORCH_CHECK(false, "gankern_cuda::upfirdn2d: x must be float32, float16 or bfloat16, got ",
                  x.scalar_type());
  }
  return up::Dtype::kFloat32;  // unreachable: TORCH_CHECK(false) throws
}

void upfirdn2d_cuda(const at::Tensor& x, const at::Tensor& f, at::Tensor& y, int64_t up_x,
                    int64_t up_y, int64_t down_x, int64_t down_y, int64_t pad_x0, int64_t pad_y0,
                    bool flip_filter, double gain) {
  TORCH_CHECK(x.is_cuda(), "gankern_cuda::upfirdn2d: x must be a CUDA tensor, got ", x.device());
  TORCH_CHECK(x.dim() == 4, "gankern_cuda::upfirdn2d: x must be [N, C, H, W], got ", x.sizes());
  TORCH_CHECK(x.numel() > 0, "gankern_cuda::upfirdn2d: x must not be empty, got ", x.sizes());
  TORCH_CHECK(f.device() == x.device(), "gankern_cuda::upfirdn2d: f must be on ", x.device(),
              ", got ", f.device());
  TORCH_CHECK(f.scalar_type() == at::kFloat && f.is_contiguous() && (f.dim() == 1 || f.dim() == 2),
              "gankern_cuda::upfirdn2d: f must be a contiguous float32 1-D or 2-D filter, got ",
              f.scalar_type(), " of shape ", f.sizes());
  TORCH_CHECK(f.numel() > 0, "gankern_cuda::upfirdn2d: f must not be empty");
  TORCH_CHECK(y.device() == x.device() && y.scalar_type() == x.scalar_type(),
              "gankern_cuda::upfirdn2d: y must have x's device and dtype (", x.device(), ", ",
              x.scalar_type(), "), got ", y.device(), ", ", y.scalar_type());
  TORCH_CHECK(y.dim() == 4 && y.size(0) == x.size(0) && y.size(1) == x.size(1) && y.numel() > 0,
              "gankern_cuda::upfirdn2d: y must be [", x.size(0), ", ", x.size(1),
              ", out_h, out_w], got ", y.sizes());
  // Each output element is written by exactly one thread: y must not overlap itself or x.
  TORCH_CHECK(y.is_non_overlapping_and_dense(),
              "gankern_cuda::upfirdn2d: y must be non-overlapping and dense, got strides ",
              y.strides());
  at::assert_no_overlap(y, x);
  TORCH_CHECK(up_x >= 1 && up_y >= 1 && down_x >= 1 && down_y >= 1,
              "gankern_cuda::upfirdn2d: up and down must be >= 1, got up=[", up_x, ", ", up_y,
              "], down=[", down_x, ", ", down_y, "]");

  up::Params p{};
  p.x = x.const_data_ptr();
  p.f = f.const_data_ptr<float>();
  p.y = y.mutable_data_ptr();
  p.n = checked_int(x.size(0), "N");
  p.c = checked_int(x.size(1), "C");
  p.in_h = checked_int(x.size(2), "H");
  p.in_w = checked_int(x.size(3), "W");
  p.out_h = checked_int(y.size(2), "out_h");
  p.out_w = checked_int(y.size(3), "out_w");
  for (int i = 0; i < 4; ++i) {
    p.sx[i] = x.stride(i);
    p.sy[i] = y.stride(i);
  }
  p.up_x = checked_int(up_x, "up_x");
  p.up_y = checked_int(up_y, "up_y");
  p.down_x = checked_int(down_x, "down_x");
  p.down_y = checked_int(down_y, "down_y");
  p.pad_x0 = checked_int(pad_x0, "pad_x0");
  p.pad_y0 = checked_int(pad_y0, "pad_y0");
  p.separable = f.dim() == 1;
  p.fh = checked_int(f.size(0), "fh");
  p.fw = checked_int(p.separable ? f.size(0) : f.size(1), "fw");
  p.flip_filter = flip_filter;
  p.gain = static_cast<float>(gain);
  // Coordinates are 32-bit in the kernels: keep the upsampled, padded extents in range.
  checked_int(int64_t(p.in_h) * p.up_y + std::abs(pad_y0) + int64_t(p.out_h) * p.down_y, "the rows");
  checked_int(int64_t(p.in_w) * p.up_x + std::abs(pad_x0) + int64_t(p.out_w) * p.down_x, "the columns");

  const c10::cuda::CUDAGuard guard(x.device());
  const cudaError_t err =
      up::launch(p, kernel_dtype(x), c10::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(err == cudaSuccess, "gankern_cuda::upfirdn2d: kernel launch failed: ",
              cudaGetErrorString(err));
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(gankern_cuda, m) {
  m.def(
      "upfirdn2d(Tensor x, Tensor f, Tensor(a!) y, int up_x, int up_y, int down_x, int down_y, "
      "int pad_x0, int pad_y0, bool flip_filter, float gain) -> ()");
}

TORCH_LIBRARY_IMPL(gankern_cuda, CUDA, m) { m.impl("upfirdn2d", &upfirdn2d_cuda); }
