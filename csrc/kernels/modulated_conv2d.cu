// modulated_conv2d fused epilogue: one elementwise kernel, templated on the element type and
// the activation. See modulated_conv2d.h.
//
// The per-element work is a __host__ __device__ function so that a host harness
// (tests/cuda_emulation/modulated_conv2d_emulator.cu) can run exactly this code on a machine
// without a GPU.
#include "modulated_conv2d.h"

#include <cmath>

namespace gankern {
namespace modconv {
namespace detail {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535LL * 16;  // grid-stride loop beyond this

// torch.nn.functional.selu's constants; softplus is the identity above its threshold.
constexpr float kSeluAlpha = 1.6732632423543772848170429916717f;
constexpr float kSeluScale = 1.0507009873554804934193349852946f;
constexpr float kSoftplusThreshold = 20.0f;

__host__ __device__ inline float to_float(float v) { return v; }
__host__ __device__ inline float to_float(__half v) { return __half2float(v); }
__host__ __device__ inline float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__host__ __device__ inline T from_float(float v);
template <>
__host__ __device__ inline float from_float<float>(float v) { return v; }
template <>
__host__ __device__ inline __half from_float<__half>(float v) { return __float2half_rn(v); }
template <>
__host__ __device__ inline __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// act(v), StyleGAN2-ADA's definitions. NaN propagates (branch conditions are false for NaN).
template <int ACT>
__host__ __device__ inline float activate(float v, float alpha) {
  if constexpr (ACT == kRelu) return v < 0.0f ? 0.0f : v;
  if constexpr (ACT == kLrelu) return v < 0.0f ? v * alpha : v;
  if constexpr (ACT == kTanh) return tanhf(v);
  if constexpr (ACT == kSigmoid) return 1.0f / (1.0f + expf(-v));
  if constexpr (ACT == kElu) return v > 0.0f ? v : expm1f(v);
  if constexpr (ACT == kSelu) return kSeluScale * (v > 0.0f ? v : kSeluAlpha * expm1f(v));
  if constexpr (ACT == kSoftplus) return v > kSoftplusThreshold ? v : log1pf(expf(v));
  if constexpr (ACT == kSwish) return v / (1.0f + expf(-v));
  return v;  // kLinear
}

// Element i of the output, i counted in the visiting order (see EpilogueParams).
template <typename T, int ACT>
__host__ __device__ inline void epilogue_element(const EpilogueParams& p, int64_t i) {
  int64_t n, o, h, w;
  if (p.channels_last) {
    o = i % p.size[1];
    i /= p.size[1];
    w = i % p.size[3];
    i /= p.size[3];
    h = i % p.size[2];
    n = i / p.size[2];
  } else {
    w = i % p.size[3];
    i /= p.size[3];
    h = i % p.size[2];
    i /= p.size[2];
    o = i % p.size[1];
    n = i / p.size[1];
  }
  const T* z = static_cast<const T*>(p.z);
  float v = to_float(z[n * p.z_stride[0] + o * p.z_stride[1] + h * p.z_stride[2] + w * p.z_stride[3]]);
  if (p.post) v *= p.post[n * p.post_stride[0] + o * p.post_stride[1]];
  if (p.noise) {
    v += p.noise[n * p.noise_stride[0] + o * p.noise_stride[1] + h * p.noise_stride[2] +
                 w * p.noise_stride[3]];
  }
  if (p.bias) v += p.bias[o];
  v = activate<ACT>(v, p.alpha) * p.gain;
  if (p.clamp >= 0.0f) v = fminf(fmaxf(v, -p.clamp), p.clamp);
  T* y = static_cast<T*>(p.y);
  y[n * p.y_stride[0] + o * p.y_stride[1] + h * p.y_stride[2] + w * p.y_stride[3]] =
      from_float<T>(v);
}

template <typename T, int ACT>
__global__ void __launch_bounds__(kThreads) epilogue_kernel(const EpilogueParams p, int64_t total) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    epilogue_element<T, ACT>(p, i);
  }
}

template <typename T, int ACT>
cudaError_t launch(const EpilogueParams& p, int64_t total, cudaStream_t stream) {
  int64_t blocks = (total + kThreads - 1) / kThreads;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  epilogue_kernel<T, ACT><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p, total);
  return cudaGetLastError();
}

}  // namespace detail

template <typename T>
cudaError_t launch_epilogue(const EpilogueParams& p, cudaStream_t stream) {
  if (!p.y || !p.z) return cudaErrorInvalidValue;
  int64_t total = 1;
  for (int d = 0; d < 4; ++d) {
    if (p.size[d] < 1) return cudaErrorInvalidValue;
    total *= p.size[d];
  }
  switch (p.act) {
    case kLinear: return detail::launch<T, kLinear>(p, total, stream);
    case kRelu: return detail::launch<T, kRelu>(p, total, stream);
    case kLrelu: return detail::launch<T, kLrelu>(p, total, stream);
    case kTanh: return detail::launch<T, kTanh>(p, total, stream);
    case kSigmoid: return detail::launch<T, kSigmoid>(p, total, stream);
    case kElu: return detail::launch<T, kElu>(p, total, stream);
    case kSelu: return detail::launch<T, kSelu>(p, total, stream);
    case kSoftplus: return detail::launch<T, kSoftplus>(p, total, stream);
    case kSwish: return detail::launch<T, kSwish>(p, total, stream);
    default: return cudaErrorInvalidValue;
  }
}

template cudaError_t launch_epilogue<float>(const EpilogueParams&, cudaStream_t);
template cudaError_t launch_epilogue<__half>(const EpilogueParams&, cudaStream_t);
template cudaError_t launch_epilogue<__nv_bfloat16>(const EpilogueParams&, cudaStream_t);

}  // namespace modconv
}  // namespace gankern
