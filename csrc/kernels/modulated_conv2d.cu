// modulated_conv2d fused epilogue: one elementwise kernel, templated on the element type and
// the activation. See modulated_conv2d.h.
//
// The per-element work is a __host__ __device__ function so that a host harness
// (tests/cuda_emulation/modulated_conv2d_emulator.cu) can run exactly this code on a machine
// without a GPU.
#include "modulated_conv2d.h"

#include "elementwise_math.h"

namespace gankern {
namespace modconv {
namespace detail {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535LL * 16;  // grid-stride loop beyond this

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
  v = act_forward<ACT>(v, p.alpha) * p.gain;
  if (p.clamp >= 0.0f) v = clamp_symmetric(v, p.clamp);
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
  return dispatch_activation(p.act, [&](auto act) {
    return detail::launch<T, decltype(act)::value>(p, total, stream);
  });
}

template cudaError_t launch_epilogue<float>(const EpilogueParams&, cudaStream_t);
template cudaError_t launch_epilogue<__half>(const EpilogueParams&, cudaStream_t);
template cudaError_t launch_epilogue<__nv_bfloat16>(const EpilogueParams&, cudaStream_t);

}  // namespace modconv
}  // namespace gankern
