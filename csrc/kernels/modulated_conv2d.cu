// modulated_conv2d fused epilogue: one elementwise kernel, templated on the element type, the
// activation, the layout and the access width. See modulated_conv2d.h.
//
// The output is walked in its memory order as [N][A][B] with B innermost: A = O channels and
// B = H * W pixels for NCHW, A = H * W pixels and B = O channels for channels_last. Each thread
// takes 8 consecutive elements. When B is a multiple of 8 and z, y are 16-byte aligned, the 8
// lie in one row: one (NCHW) or two (float32) 16-byte loads and stores, and the row, sample and
// channel (or pixel) come from two 32-bit multiply-shift divisions per thread (FastDiv), not
// per element. Otherwise each element splits its own index (still 32-bit FastDiv). Tensors of
// 2^31 elements or more take a 64-bit path with plain division.
//
// The per-thread work is __host__ __device__ code and the kernel choice lives in dispatch(),
// templated on a launcher, so that a host harness (tests/cuda_emulation/
// modulated_conv2d_emulator.cu) runs exactly this code on a machine without a GPU.
#include "modulated_conv2d.h"

#include <cstring>

#include "elementwise_math.h"

#define GANKERN_MC_HD __host__ __device__ __forceinline__

namespace gankern {
namespace modconv {
namespace detail {

constexpr int kThreads = 256;
constexpr int kPerThread = 8;  // elements per thread: 16 bytes of half, 32 of float
constexpr int64_t kMaxBlocks = 65535LL * 16;  // grid-stride loop beyond this (64-bit path)

// The launch-invariant parts of one call, prepared on the host.
struct EpilogueArgs {
  EpilogueParams p;
  uint32_t rows_per_sample;  // A
  uint32_t row_len;          // B
  uint32_t width;            // W, to split a pixel index for noise that is not H * W-flat
  FastDiv div_row_len;       // by B
  FastDiv div_rows;          // by A
  FastDiv div_width;         // by W
  bool noise_flat;           // noise's (h, w) offset is h * W + w (or noise is absent)
  uint32_t threads;          // threads of the launch: ceil(total / kPerThread)
};

// Loads / stores of 8 consecutive T through 16-byte words (the pointer 16-byte aligned).
template <typename T>
GANKERN_MC_HD void load8(const T* src, float* out) {
  constexpr int kWords = kPerThread * sizeof(T) / 16;
  uint4 raw[kWords];
#pragma unroll
  for (int w = 0; w < kWords; ++w) raw[w] = reinterpret_cast<const uint4*>(src)[w];
  T v[kPerThread];
  memcpy(v, raw, sizeof(v));
#pragma unroll
  for (int k = 0; k < kPerThread; ++k) out[k] = to_float(v[k]);
}

template <typename T>
GANKERN_MC_HD void store8(T* dst, const float* in) {
  constexpr int kWords = kPerThread * sizeof(T) / 16;
  T v[kPerThread];
#pragma unroll
  for (int k = 0; k < kPerThread; ++k) v[k] = from_float<T>(in[k]);
  uint4 raw[kWords];
  memcpy(raw, v, sizeof(v));
#pragma unroll
  for (int w = 0; w < kWords; ++w) reinterpret_cast<uint4*>(dst)[w] = raw[w];
}

// Offset of noise element (n, o, pixel) with pixel = h * W + w.
GANKERN_MC_HD int64_t noise_offset(const EpilogueArgs& a, uint32_t n, uint32_t o, uint32_t pixel) {
  const EpilogueParams& p = a.p;
  int64_t off = int64_t(n) * p.noise_stride[0] + int64_t(o) * p.noise_stride[1];
  if (a.noise_flat) return off + pixel;
  const uint32_t h = a.div_width.div(pixel);
  return off + int64_t(h) * p.noise_stride[2] + int64_t(pixel - h * a.width) * p.noise_stride[3];
}

template <int ACT>
GANKERN_MC_HD float finish(const EpilogueParams& p, float v) {
  v = act_forward<ACT>(v, p.alpha) * p.gain;
  return p.clamp >= 0.0f ? clamp_symmetric(v, p.clamp) : v;
}

// The 8 elements of thread t (32-bit path). CL: channels_last; VEC: B % 8 == 0 and aligned.
template <typename T, int ACT, bool CL, bool VEC>
GANKERN_MC_HD void epilogue_thread(const EpilogueArgs& a, uint32_t t) {
  const EpilogueParams& p = a.p;
  const T* z = static_cast<const T*>(p.z);
  T* y = static_cast<T*>(p.y);
  const uint32_t first = t * kPerThread;
  if constexpr (VEC) {
    // One row: sample n, row r within it, elements b0 .. b0 + 7 of the row.
    const uint32_t row = a.div_row_len.div(first);
    const uint32_t b0 = first - row * a.row_len;
    const uint32_t n = a.div_rows.div(row);
    const uint32_t r = row - n * a.rows_per_sample;
    float v[kPerThread];
    load8(z + first, v);
    if constexpr (!CL) {  // r is the channel, b0 the first pixel
      const float post = p.post ? p.post[int64_t(n) * p.post_stride[0] + int64_t(r) * p.post_stride[1]] : 1.0f;
      const float bias = p.bias ? p.bias[r] : 0.0f;
      const float* noise = p.noise ? p.noise + noise_offset(a, n, r, b0) : nullptr;
#pragma unroll
      for (int k = 0; k < kPerThread; ++k) {
        float u = v[k] * post;
        if (noise) u += a.noise_flat ? noise[k] : p.noise[noise_offset(a, n, r, b0 + k)];
        v[k] = finish<ACT>(p, u + bias);
      }
    } else {  // r is the pixel, b0 the first channel
#pragma unroll
      for (int k = 0; k < kPerThread; ++k) {
        const uint32_t o = b0 + k;
        float u = v[k];
        if (p.post) u *= p.post[int64_t(n) * p.post_stride[0] + int64_t(o) * p.post_stride[1]];
        if (p.noise) u += p.noise[noise_offset(a, n, o, r)];
        if (p.bias) u += p.bias[o];
        v[k] = finish<ACT>(p, u);
      }
    }
    store8(y + first, v);
  } else {
    const uint32_t total = uint32_t(p.size[0] * p.size[1] * p.size[2] * p.size[3]);
#pragma unroll
    for (int k = 0; k < kPerThread; ++k) {
      const uint32_t e = first + k;
      if (e >= total) return;
      const uint32_t row = a.div_row_len.div(e);
      const uint32_t b = e - row * a.row_len;
      const uint32_t n = a.div_rows.div(row);
      const uint32_t r = row - n * a.rows_per_sample;
      const uint32_t o = CL ? b : r;
      const uint32_t pixel = CL ? r : b;
      float u = to_float(z[e]);
      if (p.post) u *= p.post[int64_t(n) * p.post_stride[0] + int64_t(o) * p.post_stride[1]];
      if (p.noise) u += p.noise[noise_offset(a, n, o, pixel)];
      if (p.bias) u += p.bias[o];
      y[e] = from_float<T>(finish<ACT>(p, u));
    }
  }
}

// Element i (in the visiting order) of a tensor of 2^31 elements or more: 64-bit indices.
template <typename T, int ACT>
GANKERN_MC_HD void epilogue_element_wide(const EpilogueParams& p, int64_t i) {
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
  T* y = static_cast<T*>(p.y);
  y[n * p.y_stride[0] + o * p.y_stride[1] + h * p.y_stride[2] + w * p.y_stride[3]] =
      from_float<T>(finish<ACT>(p, v));
}

inline bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0; }

// Checks the parameters and prepares the 32-bit path's arguments; false on bad parameters.
// *wide is set when the tensor needs 64-bit indices.
inline bool make_args(const EpilogueParams& p, EpilogueArgs* a, bool* wide, bool* vec) {
  if (!p.y || !p.z) return false;
  int64_t total = 1;
  for (int d = 0; d < 4; ++d) {
    if (p.size[d] < 1) return false;
    total *= p.size[d];
  }
  *wide = total + kPerThread >= (int64_t{1} << 31);
  a->p = p;
  if (*wide) return true;
  const int64_t pixels = p.size[2] * p.size[3];
  a->rows_per_sample = uint32_t(p.channels_last ? pixels : p.size[1]);
  a->row_len = uint32_t(p.channels_last ? p.size[1] : pixels);
  a->width = uint32_t(p.size[3]);
  a->div_row_len = FastDiv(a->row_len);
  a->div_rows = FastDiv(a->rows_per_sample);
  a->div_width = FastDiv(a->width);
  a->noise_flat = !p.noise || ((p.size[3] == 1 || p.noise_stride[3] == 1) &&
                               (p.size[2] == 1 || p.noise_stride[2] == p.size[3]));
  a->threads = uint32_t((total + kPerThread - 1) / kPerThread);
  *vec = a->row_len % kPerThread == 0 && aligned16(p.z) && aligned16(p.y);
  return true;
}

// Picks the instantiation and hands it to the launcher:
//   launcher.template packs<T, ACT, CL, VEC>(args)  (32-bit path, args.threads threads)
//   launcher.template wide<T, ACT>(params, total)   (64-bit path)
template <typename T, typename Launcher>
cudaError_t dispatch(const EpilogueParams& p, Launcher& launcher) {
  EpilogueArgs a;
  bool wide = false, vec = false;
  if (!make_args(p, &a, &wide, &vec)) return cudaErrorInvalidValue;
  return dispatch_activation(p.act, [&](auto act) {
    constexpr int ACT = decltype(act)::value;
    if (wide) {
      return launcher.template wide<T, ACT>(p, p.size[0] * p.size[1] * p.size[2] * p.size[3]);
    }
    if (p.channels_last) {
      return vec ? launcher.template packs<T, ACT, true, true>(a)
                 : launcher.template packs<T, ACT, true, false>(a);
    }
    return vec ? launcher.template packs<T, ACT, false, true>(a)
               : launcher.template packs<T, ACT, false, false>(a);
  });
}

#ifndef GANKERN_MODCONV_HOST_EMULATION

template <typename T, int ACT, bool CL, bool VEC>
__global__ void __launch_bounds__(kThreads) epilogue_kernel(const EpilogueArgs a) {
  const uint32_t t = blockIdx.x * kThreads + threadIdx.x;
  if (t < a.threads) epilogue_thread<T, ACT, CL, VEC>(a, t);
}

template <typename T, int ACT>
__global__ void __launch_bounds__(kThreads) epilogue_wide_kernel(const EpilogueParams p,
                                                                 int64_t total) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    epilogue_element_wide<T, ACT>(p, i);
  }
}

struct GpuLauncher {
  cudaStream_t stream;

  template <typename T, int ACT, bool CL, bool VEC>
  cudaError_t packs(const EpilogueArgs& a) {
    const unsigned blocks = (a.threads + kThreads - 1) / kThreads;
    epilogue_kernel<T, ACT, CL, VEC><<<blocks, kThreads, 0, stream>>>(a);
    return cudaGetLastError();
  }

  template <typename T, int ACT>
  cudaError_t wide(const EpilogueParams& p, int64_t total) {
    int64_t blocks = (total + kThreads - 1) / kThreads;
    if (blocks > kMaxBlocks) blocks = kMaxBlocks;
    epilogue_wide_kernel<T, ACT><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p, total);
    return cudaGetLastError();
  }
};

#endif  // GANKERN_MODCONV_HOST_EMULATION

}  // namespace detail

#ifndef GANKERN_MODCONV_HOST_EMULATION

template <typename T>
cudaError_t launch_epilogue(const EpilogueParams& p, cudaStream_t stream) {
  detail::GpuLauncher launcher{stream};
  return detail::dispatch<T>(p, launcher);
}

template cudaError_t launch_epilogue<float>(const EpilogueParams&, cudaStream_t);
template cudaError_t launch_epilogue<__half>(const EpilogueParams&, cudaStream_t);
template cudaError_t launch_epilogue<__nv_bfloat16>(const EpilogueParams&, cudaStream_t);

#endif  // GANKERN_MODCONV_HOST_EMULATION

}  // namespace modconv
}  // namespace gankern

#undef GANKERN_MC_HD
