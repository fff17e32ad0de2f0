// Per-element arithmetic shared by the kernels (bias_act, upfirdn2d, the modulated
// convolution's epilogue): conversions between the storage types and float, the activations
// and the switch that turns an activation id into a template argument. Only CUDA headers;
// __host__ __device__, so the host emulators in tests/cuda_emulation run the same code.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "activations.h"

namespace gankern {

__host__ __device__ __forceinline__ float to_float(float v) { return v; }
__host__ __device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__host__ __device__ __forceinline__ float to_float(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <typename T>
__host__ __device__ __forceinline__ T from_float(float v);
template <>
__host__ __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__host__ __device__ __forceinline__ __half from_float<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__host__ __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// torch.nn.functional.selu's constants; softplus returns z itself above its threshold.
constexpr float kSeluAlpha = 1.6732632423543772848170429916717f;
constexpr float kSeluScale = 1.0507009873554804934193349852946f;
constexpr float kSoftplusThreshold = 20.0f;

__host__ __device__ __forceinline__ float sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }

// act(z) with StyleGAN2-ADA's definitions (lrelu slope alpha). NaN propagates: the
// comparisons that pick a branch are false for NaN.
template <int ACT>
__host__ __device__ __forceinline__ float act_forward(float z, float alpha) {
  if constexpr (ACT == kActRelu) return z < 0.0f ? 0.0f : z;
  if constexpr (ACT == kActLrelu) return z < 0.0f ? z * alpha : z;
  if constexpr (ACT == kActTanh) return tanhf(z);
  if constexpr (ACT == kActSigmoid) return sigmoid(z);
  if constexpr (ACT == kActElu) return z > 0.0f ? z : expm1f(z);
  if constexpr (ACT == kActSelu) {
    return z > 0.0f ? kSeluScale * z : kSeluScale * kSeluAlpha * expm1f(z);
  }
  if constexpr (ACT == kActSoftplus) return z > kSoftplusThreshold ? z : log1pf(expf(z));
  if constexpr (ACT == kActSwish) return z * sigmoid(z);
  return z;  // kActLinear
}

// n / d for 0 <= n < 2^31 and 1 <= d < 2^31 by a multiply and a shift (round-up method of
// Granlund and Montgomery): shift = ceil(log2 d), magic = floor(2^32 (2^shift - d) / d) + 1.
// Built on the host, used in kernels to split flat indices without 32- or 64-bit division.
struct FastDiv {
  uint32_t magic;
  uint32_t shift;

  __host__ __device__ explicit FastDiv(uint32_t d = 1) {
    shift = 0;
    while ((uint64_t{1} << shift) < d) ++shift;
    magic = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << shift) - d)) / d + 1);
  }
  __host__ __device__ __forceinline__ uint32_t div(uint32_t n) const {
#ifdef __CUDA_ARCH__
    const uint32_t hi = __umulhi(n, magic);
#else
    const uint32_t hi = static_cast<uint32_t>((uint64_t{n} * magic) >> 32);
#endif
    return (hi + n) >> shift;
  }
};

// clamp(v, -c, c) by comparisons, not fminf/fmaxf, so that NaN stays NaN (as torch.clamp).
__host__ __device__ __forceinline__ float clamp_symmetric(float v, float c) {
  return v > c ? c : (v < -c ? -c : v);
}

// Calls f(std::integral_constant<int, ACT>{}) for the activation id `act` (host code), so that
// one switch turns a runtime id into a compile-time template argument; returns what f
// returns, or cudaErrorInvalidValue for an unknown id.
template <typename F>
cudaError_t dispatch_activation(int act, F&& f) {
  switch (act) {
    case kActLinear: return f(std::integral_constant<int, kActLinear>{});
    case kActRelu: return f(std::integral_constant<int, kActRelu>{});
    case kActLrelu: return f(std::integral_constant<int, kActLrelu>{});
    case kActTanh: return f(std::integral_constant<int, kActTanh>{});
    case kActSigmoid: return f(std::integral_constant<int, kActSigmoid>{});
    case kActElu: return f(std::integral_constant<int, kActElu>{});
    case kActSelu: return f(std::integral_constant<int, kActSelu>{});
    case kActSoftplus: return f(std::integral_constant<int, kActSoftplus>{});
    case kActSwish: return f(std::integral_constant<int, kActSwish>{});
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace gankern
