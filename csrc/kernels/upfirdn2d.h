// upfirdn2d: upsample (zero insertion), pad/crop, FIR filter, downsample, in one pass.
//
// Torch-free interface of csrc/kernels/upfirdn2d.cu: plain pointers, sizes and strides. The
// semantics are those of gankern.ops.upfirdn2d (StyleGAN2-ADA's): along each axis,
//   y[o] = gain * sum_t F[t] * xu[o * down + t - pad0],
// where xu is the input with up - 1 zeros inserted after each sample and F the correlation
// filter (the filter flipped unless flip_filter). The output size, which is the caller's,
// implies the trailing padding.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace gankern {
namespace upfirdn2d {

struct Params {
  const void* x;  // input [n, c, in_h, in_w], element strides sx (any layout)
  const float* f;  // filter taps, contiguous float32: [fh, fw], or [fh] when separable
  void* y;  // output [n, c, out_h, out_w], element strides sy (any layout)
  int n, c, in_h, in_w, out_h, out_w;
  int64_t sx[4];
  int64_t sy[4];
  int up_x, up_y, down_x, down_y;
  int pad_x0, pad_y0;
  int fh, fw;  // separable filters: fw == fh, the taps apply along both axes
  bool separable;
  bool flip_filter;
  float gain;  // total gain: the taps are multiplied by it once
  // Set by launch() (callers leave it false): x's base and the strides the staging walks
  // allow 16-byte vector loads of the input rows (planar) or channel runs (channels-last).
  bool vec16;
};

enum class Dtype : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

// Which kernel a call runs: the specialized tiled fast paths for the StyleGAN cases (4x4
// filters, the same factors along both axes), the tiled general path (runtime factors and
// filter size, input tile and filter in shared memory), and a direct path (taps gathered
// from global memory) for calls whose input tile would not fit in shared memory.
enum class Path : int {
  kUp2Filter4 = 0,
  kDown2Filter4 = 1,
  kFilter4 = 2,
  kTiledGeneral = 3,
  kDirect = 4,
};

// Launch on `stream` with elements of type `dtype` (computing in float32). Returns the
// launch error, if any. `path`, when not null, receives the kernel that was chosen.
cudaError_t launch(const Params& p, Dtype dtype, cudaStream_t stream, Path* path = nullptr);

}  // namespace upfirdn2d
}  // namespace gankern
