// bias_act: bias + activation + gain + clamp, and its first and second derivatives.
//
// Torch-free: CUDA headers only, plain pointers, sizes and strides. The torch glue (argument
// checks, dtype dispatch, streams, registration) lives in csrc/bindings/bias_act.cpp.
#pragma once

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "activations.h"

namespace gankern {

// What one launch computes, with z = x + b, f the activation and m the clamp mask (0 where
// the forward output was clamped, else 1):
//   kBiasActForward: out = clamp(f(src + b) * gain, -clamp, clamp)
//   kBiasActGrad:    out = src * gain * f'(z) * m                    (src = dy)
//   kBiasActGrad2:   out = src * dy * gain * f''(z) * m              (src = d(dx))
enum BiasActMode : int { kBiasActForward = 0, kBiasActGrad = 1, kBiasActGrad2 = 2 };

struct BiasActParams {
  void* out;        // output, laid out like src
  const void* src;  // x (forward), dy (grad) or d(dx) (grad2)
  const void* b;    // bias, dim_size contiguous elements, or null
  const void* x;    // saved input (swish's derivatives), or null
  const void* y;    // saved output (derivatives of the other activations, clamp mask), or null
  const void* dy;   // first-order gradient (grad2 only), or null
  int64_t n;           // elements of each tensor
  int64_t dim_stride;  // stride (in elements) of the bias dimension; 1 if its size is 1
  int64_t dim_size;    // size of the bias dimension (the bias length)
  int mode;            // BiasActMode
  int act;             // Activation (activations.h)
  float alpha;         // lrelu slope
  float gain;
  float clamp;         // < 0: no clamping
};

// The first derivative and the bias gradient's partial sums in one pass (kBiasActGrad plus
// db = dx summed over every dimension but the bias dimension). The dense storage is seen as a
// row-major [rows, cols] matrix: with channel_is_col the bias index is the column (the bias
// dimension is innermost: channels_last, a last-dimension bias), otherwise every row is one
// plane of channel row % channels (NCHW: cols = H * W). The kernel writes out (as
// kBiasActGrad) and float32 partial sums of the gradient before its rounding to T:
//   channel_is_col:  part[g][col] for g < groups  (db[c] = sum_g part[g][c])
//   otherwise:       part[row][g] for g < groups  (db[c] = sum over rows of channel c and g)
// each summed in a fixed order (deterministic); the caller adds them up.
struct BiasActGradDbParams {
  void* out;        // dx, laid out like src
  const void* src;  // dy
  const void* b;    // bias (read for swish only, whose derivative needs x + b), or null
  const void* x;    // saved input (swish), or null
  const void* y;    // saved output (the other activations, clamp mask), or null
  float* part;      // partial sums, bias_act_grad_db_groups() groups (see above)
  int64_t rows;
  int64_t cols;
  int64_t channels;  // the bias length
  bool channel_is_col;
  int act;  // Activation (activations.h)
  float alpha;
  float gain;
  float clamp;  // < 0: no clamping
};

// The number of groups of partial sums a launch with these parameters writes (<= 0 for bad
// parameters); part must be allocated accordingly (everything but part set in p).
template <typename T>
int64_t bias_act_grad_db_groups(const BiasActGradDbParams& p);

template <typename T>
cudaError_t launch_bias_act_grad_db(const BiasActGradDbParams& p, cudaStream_t stream);

// Every tensor has the same shape and strides and that layout is dense (non-overlapping,
// no holes, any dimension order): the kernel walks the storage as a flat array and finds
// each element's bias index as (offset / dim_stride) % dim_size.
//
// T is float, __half or __nv_bfloat16; arithmetic is in float. Enqueues on `stream` and
// returns cudaErrorInvalidValue for bad parameters, else the launch's error.
template <typename T>
cudaError_t launch_bias_act(const BiasActParams& p, cudaStream_t stream);

extern template cudaError_t launch_bias_act<float>(const BiasActParams&, cudaStream_t);
extern template cudaError_t launch_bias_act<__half>(const BiasActParams&, cudaStream_t);
extern template cudaError_t launch_bias_act<__nv_bfloat16>(const BiasActParams&, cudaStream_t);
extern template int64_t bias_act_grad_db_groups<float>(const BiasActGradDbParams&);
extern template int64_t bias_act_grad_db_groups<__half>(const BiasActGradDbParams&);
extern template int64_t bias_act_grad_db_groups<__nv_bfloat16>(const BiasActGradDbParams&);
extern template cudaError_t launch_bias_act_grad_db<float>(const BiasActGradDbParams&,
                                                           cudaStream_t);
extern template cudaError_t launch_bias_act_grad_db<__half>(const BiasActGradDbParams&,
                                                            cudaStream_t);
extern template cudaError_t launch_bias_act_grad_db<__nv_bfloat16>(const BiasActGradDbParams&,
                                                                   cudaStream_t);

}  // namespace gankern
