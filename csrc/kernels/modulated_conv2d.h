// modulated_conv2d: the fused epilogue of a modulated convolution (StyleGAN2 synthesis layer).
//
//   y[n, o, h, w] = clamp(act(z[n, o, h, w] * post[n, o] + noise[n, o, h, w] + bias[o]) * gain,
//                         -clamp, clamp)
//
// z is the convolution of the style-modulated input (computed by cuDNN), post the
// demodulation coefficients; post, noise and bias are optional. One pass over memory replaces
// the four of the unfused layer (demodulate, add noise, bias_act, clamp).
//
// Torch-free: CUDA headers only, plain pointers, sizes and strides. The torch glue (argument
// checks, dtype dispatch, streams, registration) lives in csrc/bindings/modulated_conv2d.cpp.
#pragma once

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "activations.h"

namespace gankern {
namespace modconv {

struct EpilogueParams {
  void* y;             // output [N, O, H, W], element type T, strides y_stride
  const void* z;       // input, element type T, strides z_stride
  const float* post;   // [N, O] (strides post_stride), or null
  const float* noise;  // broadcast to [N, O, H, W] by its strides (0 on broadcast axes), or null
  const float* bias;   // [O] contiguous, or null
  int64_t size[4];     // N, O, H, W
  int64_t y_stride[4];
  int64_t z_stride[4];
  int64_t noise_stride[4];
  int64_t post_stride[2];
  bool channels_last;  // visit elements in (n, h, w, o) order instead of (n, o, h, w)
  int act;             // Activation (activations.h)
  float alpha;         // lrelu slope
  float gain;
  float clamp;         // < 0: no clamping
};

// T is float, __half or __nv_bfloat16; arithmetic is in float. Enqueues on `stream`; returns
// cudaErrorInvalidValue for bad parameters, else the launch's error.
template <typename T>
cudaError_t launch_epilogue(const EpilogueParams& p, cudaStream_t stream);

extern template cudaError_t launch_epilogue<float>(const EpilogueParams&, cudaStream_t);
extern template cudaError_t launch_epilogue<__half>(const EpilogueParams&, cudaStream_t);
extern template cudaError_t launch_epilogue<__nv_bfloat16>(const EpilogueParams&, cudaStream_t);

}  // namespace modconv
}  // namespace gankern
