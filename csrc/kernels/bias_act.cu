// bias_act kernels: one elementwise kernel, templated on the element type, the mode (forward,
// first derivative, second derivative), the activation and the index width. See bias_act.h.
//
// The per-thread work (kernel_body and everything it calls) is __host__ __device__ code and
// the choice of instantiation lives in dispatch(), templated on a launcher: GpuLauncher below
// launches the kernel, and a host emulator (tests/cuda_emulation/bias_act_emulator.cu, built
// with GANKERN_BIAS_ACT_HOST_EMULATION) runs the very same code on the CPU thread by thread,
// so the arithmetic, the vectorized path and the indexing are tested without a GPU.
#include "bias_act.h"

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "elementwise_math.h"

#define GANKERN_BA_HD __host__ __device__ __forceinline__

namespace gankern {
namespace bias_act_detail {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 1 << 20;  // grid-stride loop beyond this

template <typename T>
struct KernelArgs {
  T* out;
  const T* src;
  const T* b;
  const T* x;
  const T* y;
  const T* dy;
  int64_t n;
  int64_t dim_stride;
  int64_t dim_size;
  FastDiv div_stride;
  FastDiv div_size;
  float alpha;
  float gain;
  float inv_gain;      // 1 / gain, or 0 when gain is 0 (then every derivative is 0 anyway)
  float clamp;         // < 0: none
  float clamp_stored;  // clamp rounded to T: what a clamped saved output holds
  bool vectorized;     // every pointer is 16-byte aligned
};

// Read-only data (the bias) through the non-coherent cache on the GPU.
template <typename T>
GANKERN_BA_HD T load_readonly(const T* p) {
#ifdef __CUDA_ARCH__
  return __ldg(p);
#else
  return *p;
#endif
}

// f'(z), from yy = f(z) or (swish) from z.
template <int ACT>
GANKERN_BA_HD float act_grad(float z, float yy, float alpha) {
  if constexpr (ACT == kActRelu) return yy > 0.0f ? 1.0f : 0.0f;
  if constexpr (ACT == kActLrelu) return yy > 0.0f ? 1.0f : alpha;
  if constexpr (ACT == kActTanh) return 1.0f - yy * yy;
  if constexpr (ACT == kActSigmoid) return yy * (1.0f - yy);
  if constexpr (ACT == kActElu) return yy > 0.0f ? 1.0f : yy + 1.0f;
  if constexpr (ACT == kActSelu) return yy > 0.0f ? kSeluScale : yy + kSeluScale * kSeluAlpha;
  if constexpr (ACT == kActSoftplus) return -expm1f(-yy);  // sigmoid(z) = 1 - exp(-f(z))
  if constexpr (ACT == kActSwish) {
    const float s = sigmoid(z);
    return s * (1.0f + z * (1.0f - s));
  }
  return 1.0f;
}

// f''(z), from yy = f(z) or (swish) from z; zero for the piecewise-linear activations. At the
// kink of elu and selu (z = 0) the right-hand value 0, as torch's double backward.
template <int ACT>
GANKERN_BA_HD float act_grad2(float z, float yy) {
  if constexpr (ACT == kActTanh) return -2.0f * yy * (1.0f - yy * yy);
  if constexpr (ACT == kActSigmoid) return yy * (1.0f - yy) * (1.0f - 2.0f * yy);
  if constexpr (ACT == kActElu) return yy < 0.0f ? yy + 1.0f : 0.0f;
  if constexpr (ACT == kActSelu) return yy < 0.0f ? yy + kSeluScale * kSeluAlpha : 0.0f;
  if constexpr (ACT == kActSoftplus) {
    const float g = -expm1f(-yy);
    return g * (1.0f - g);
  }
  if constexpr (ACT == kActSwish) {
    const float s = sigmoid(z);
    return s * (1.0f - s) * (2.0f + z * (1.0f - 2.0f * s));
  }
  return 0.0f;
}

// One output element from its inputs (already in float; unused ones are 0).
template <int MODE, int ACT, typename T>
GANKERN_BA_HD float compute(const KernelArgs<T>& a, float src, float bias, float xv,
                                         float yv, float dyv) {
  if constexpr (MODE == kBiasActForward) {
    float v = act_forward<ACT>(src + bias, a.alpha) * a.gain;
    if (a.clamp >= 0.0f) v = clamp_symmetric(v, a.clamp);
    return v;
  } else {
    const float z = xv + bias;  // read by swish only
    const float yy = yv * a.inv_gain;
    float out;
    if constexpr (MODE == kBiasActGrad) {
      out = src * a.gain * act_grad<ACT>(z, yy, a.alpha);
    } else {
      out = src * dyv * a.gain * act_grad2<ACT>(z, yy);
    }
    if (a.clamp >= 0.0f) {
      bool keep;
      if constexpr (ACT == kActSwish) {
        // Recomputed from z, exactly as torch.clamp's gradient (the bounds pass).
        const float v = act_forward<ACT>(z, a.alpha) * a.gain;
        keep = v >= -a.clamp && v <= a.clamp;
      } else {
        keep = fabsf(yv) < a.clamp_stored;
      }
      if (!keep) out = 0.0f;
    }
    return out;
  }
}

// Index along the bias dimension of flat offset i.
template <bool WIDE, typename T, typename Index>
GANKERN_BA_HD int64_t channel(const KernelArgs<T>& a, Index i) {
  if constexpr (WIDE) {
    return (static_cast<int64_t>(i) / a.dim_stride) % a.dim_size;
  } else {
    const uint32_t q = a.div_stride.div(i);
    return q - a.div_size.div(q) * static_cast<uint32_t>(a.dim_size);
  }
}

template <int MODE, int ACT, bool WIDE, typename T, typename Index>
GANKERN_BA_HD void process_one(const KernelArgs<T>& a, Index i) {
  const float src = to_float(a.src[i]);
  const float bias = a.b ? to_float(load_readonly(a.b + channel<WIDE>(a, i))) : 0.0f;
  float xv = 0.0f, yv = 0.0f, dyv = 0.0f;
  if constexpr (MODE != kBiasActForward) {
    if (a.x) xv = to_float(a.x[i]);
    if (a.y) yv = to_float(a.y[i]);
  }
  if constexpr (MODE == kBiasActGrad2) dyv = to_float(a.dy[i]);
  a.out[i] = from_float<T>(compute<MODE, ACT>(a, src, bias, xv, yv, dyv));
}

// 16 bytes of T, moved with one vector load or store.
template <typename T>
struct Pack {
  static constexpr int kSize = 16 / sizeof(T);
  T v[kSize];

  GANKERN_BA_HD static Pack load(const T* p) {
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    Pack pack;
    memcpy(pack.v, &raw, sizeof(raw));
    return pack;
  }
  GANKERN_BA_HD void store(T* p) const {
    uint4 raw;
    memcpy(&raw, v, sizeof(raw));
    *reinterpret_cast<uint4*>(p) = raw;
  }
};

template <int MODE, int ACT, bool WIDE, typename T, typename Index>
GANKERN_BA_HD void process_pack(const KernelArgs<T>& a, Index i) {
  constexpr int V = Pack<T>::kSize;
  const Pack<T> src = Pack<T>::load(a.src + i);
  Pack<T> xs{}, ys{}, dys{}, out;
  if constexpr (MODE != kBiasActForward) {
    if (a.x) xs = Pack<T>::load(a.x + i);
    if (a.y) ys = Pack<T>::load(a.y + i);
  }
  if constexpr (MODE == kBiasActGrad2) dys = Pack<T>::load(a.dy + i);
#pragma unroll
  for (int k = 0; k < V; ++k) {
    const float bias = a.b ? to_float(load_readonly(a.b + channel<WIDE>(a, i + k))) : 0.0f;
    out.v[k] = from_float<T>(compute<MODE, ACT>(a, to_float(src.v[k]), bias, to_float(xs.v[k]),
                                                to_float(ys.v[k]), to_float(dys.v[k])));
  }
  out.store(a.out + i);
}

// What one thread of the kernel does, for thread `tid` of `nthreads` (a grid-stride loop over
// 16-byte packs when every pointer is aligned, then over the remaining elements one by one).
// WIDE: 64-bit indices and plain division, for tensors of 2^31 elements or more.
template <typename T, int MODE, int ACT, bool WIDE>
GANKERN_BA_HD void kernel_body(const KernelArgs<T>& a, int64_t tid, int64_t nthreads) {
  using Index = std::conditional_t<WIDE, int64_t, uint32_t>;
  constexpr int V = Pack<T>::kSize;
  const Index n = static_cast<Index>(a.n);
  const Index step = static_cast<Index>(nthreads);
  Index tail = 0;
  if (a.vectorized) {
    const Index packs = n / V;
    for (Index p = static_cast<Index>(tid); p < packs; p += step) {
      process_pack<MODE, ACT, WIDE>(a, p * V);
    }
    tail = packs * V;
  }
  for (Index i = tail + static_cast<Index>(tid); i < n; i += step) {
    process_one<MODE, ACT, WIDE>(a, i);
  }
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// The clamp as a saved output of type T holds it (a clamped y equals this).
template <typename T>
float clamp_as_stored(float clamp) {
  return to_float(from_float<T>(clamp));
}

// Host-side setup shared by the GPU launcher and the host emulator; false on bad parameters.
template <typename T>
bool make_args(const BiasActParams& p, KernelArgs<T>* a) {
  if (p.n <= 0 || p.dim_size <= 0 || p.dim_stride <= 0 || !p.out || !p.src) return false;
  if (p.mode < kBiasActForward || p.mode > kBiasActGrad2) return false;
  if (p.mode == kBiasActGrad2 && !p.dy) return false;
  a->out = static_cast<T*>(p.out);
  a->src = static_cast<const T*>(p.src);
  a->b = static_cast<const T*>(p.b);
  a->x = static_cast<const T*>(p.x);
  a->y = static_cast<const T*>(p.y);
  a->dy = static_cast<const T*>(p.dy);
  a->n = p.n;
  a->dim_stride = p.dim_stride;
  a->dim_size = p.dim_size;
  const bool narrow = p.n < (int64_t{1} << 31);
  a->div_stride = FastDiv(narrow ? static_cast<uint32_t>(p.dim_stride) : 1u);
  a->div_size = FastDiv(narrow ? static_cast<uint32_t>(p.dim_size) : 1u);
  a->alpha = p.alpha;
  a->gain = p.gain;
  a->inv_gain = p.gain != 0.0f ? 1.0f / p.gain : 0.0f;
  a->clamp = p.clamp;
  a->clamp_stored = p.clamp >= 0.0f ? clamp_as_stored<T>(p.clamp) : 0.0f;
  a->vectorized = aligned16(p.out) && aligned16(p.src) && (!p.x || aligned16(p.x)) &&
                  (!p.y || aligned16(p.y)) && (!p.dy || aligned16(p.dy));
  return true;
}

// Blocks of kThreads threads for one launch.
template <typename T>
unsigned num_blocks(const KernelArgs<T>& a) {
  const int64_t work = a.vectorized ? (a.n + Pack<T>::kSize - 1) / Pack<T>::kSize : a.n;
  const int64_t blocks = (work + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

// Picks the instantiation (mode, activation, index width) and hands it to the launcher:
// launcher.template run<T, MODE, ACT, WIDE>(args, blocks).
template <typename T, int MODE, typename Launcher>
cudaError_t dispatch_act(const KernelArgs<T>& a, int act, unsigned blocks, Launcher& launcher) {
  // Narrow indices while every index the loops form (below n plus one grid) fits in 32 bits.
  const bool wide = a.n >= (int64_t{1} << 31);
  return dispatch_activation(act, [&](auto act_id) {
    constexpr int ACT = decltype(act_id)::value;
    return wide ? launcher.template run<T, MODE, ACT, true>(a, blocks)
                : launcher.template run<T, MODE, ACT, false>(a, blocks);
  });
}

template <typename T, typename Launcher>
cudaError_t dispatch(const BiasActParams& p, Launcher& launcher) {
  KernelArgs<T> a;
  if (!make_args(p, &a)) return cudaErrorInvalidValue;
  const unsigned blocks = num_blocks(a);
  switch (p.mode) {
    case kBiasActForward: return dispatch_act<T, kBiasActForward>(a, p.act, blocks, launcher);
    case kBiasActGrad: return dispatch_act<T, kBiasActGrad>(a, p.act, blocks, launcher);
    case kBiasActGrad2: return dispatch_act<T, kBiasActGrad2>(a, p.act, blocks, launcher);
    default: return cudaErrorInvalidValue;
  }
}

// ---------------------------------------------------------------------------------------
// The first derivative with the bias gradient's partial sums (BiasActGradDbParams).

constexpr int64_t kTargetBlocks = 1024;  // ~8 resident blocks of kThreads per SM of an H100

inline int pow2_ceil(int64_t v) {
  int p = 1;
  while (p < v && p < kThreads) p <<= 1;
  return p;
}

// How one launch splits the [rows, cols] matrix (host code, shared with the emulator).
// Threads are laid out as `width` x `lanes` (lanes a power of 2): the `lanes` threads of a
// reduction sum the same channel(s) and end in a tree reduction through shared memory.
//   channel_is_col: thread (lane, col) = (tid / width, tid % width) walks the rows
//     lane, lane + lanes, ... of its group, at pack column blk * width + col.
//   otherwise:      thread (row, lane) = (tid / lanes, tid % lanes) walks the packs
//     lane, lane + lanes, ... of its group in row blk * width + row.
struct GradDbPlan {
  bool vec = false;           // 16-byte packs along the rows (else single elements)
  int v = 1;                  // elements per pack
  int width = 1;              // see above
  int lanes = 1;
  int64_t packs_per_row = 0;  // ceil(cols / v)
  int64_t blocks = 0;         // blocks across the kept axis
  int64_t groups = 0;         // groups along the reduced axis (partial sums per channel)
  int64_t chunk = 0;          // rows (channel_is_col) or packs (otherwise) per group
};

template <typename T>
bool make_grad_db_plan(const BiasActGradDbParams& p, GradDbPlan* plan) {
  if (p.rows <= 0 || p.cols <= 0 || p.channels <= 0 || !p.out || !p.src) return false;
  if (p.channel_is_col ? p.cols != p.channels : p.rows % p.channels != 0) return false;
  if (p.act == kActSwish && (!p.x || !p.b)) return false;
  const int pack = Pack<T>::kSize;
  plan->vec = p.cols % pack == 0 && aligned16(p.out) && aligned16(p.src) &&
              (!p.x || aligned16(p.x)) && (!p.y || aligned16(p.y));
  plan->v = plan->vec ? pack : 1;
  plan->packs_per_row = (p.cols + plan->v - 1) / plan->v;
  int64_t reduced;  // steps along the reduced axis
  if (p.channel_is_col) {
    plan->width = pow2_ceil(plan->packs_per_row);
    plan->lanes = kThreads / plan->width;
    plan->blocks = (plan->packs_per_row + plan->width - 1) / plan->width;
    reduced = p.rows;
  } else {
    plan->lanes = pow2_ceil(plan->packs_per_row);
    plan->width = kThreads / plan->lanes;
    plan->blocks = (p.rows + plan->width - 1) / plan->width;
    reduced = plan->packs_per_row;
  }
  int64_t groups = (kTargetBlocks + plan->blocks - 1) / plan->blocks;
  const int64_t max_groups = (reduced + plan->lanes - 1) / plan->lanes;
  groups = groups < 1 ? 1 : (groups > max_groups ? max_groups : groups);
  plan->chunk = (reduced + groups - 1) / groups;
  plan->groups = (reduced + plan->chunk - 1) / plan->chunk;
  return plan->blocks * plan->groups <= INT32_MAX;
}

template <typename T>
struct GradDbArgs {
  KernelArgs<T> e;  // the elementwise arguments (kBiasActGrad)
  float* part;
  int64_t rows;
  int64_t cols;
  int64_t channels;
  GradDbPlan plan;
};

// One block of the kernel, in phases separated by barriers: accumulate (each thread),
// log2(lanes) tree steps, finish (the lane-0 threads write the partial sums). The host
// emulator runs each phase for every thread of the block before the next phase.
template <typename T, int ACT, bool COL, bool VEC>
struct GradDbBlock {
  static constexpr int V = VEC ? Pack<T>::kSize : 1;
  const GradDbArgs<T>& a;
  int64_t blk;
  int64_t group;

  GANKERN_BA_HD GradDbBlock(const GradDbArgs<T>& args, int64_t block)
      : a(args), blk(block / args.plan.groups), group(block % args.plan.groups) {}

  GANKERN_BA_HD int lane(int tid) const { return COL ? tid / a.plan.width : tid % a.plan.lanes; }

  // V consecutive elements from offset i (all of one row), gradient to out, and the float32
  // gradients to g.
  GANKERN_BA_HD void grad(int64_t i, int64_t channel, bool channel_steps, float* g) const {
    const KernelArgs<T>& e = a.e;
    T src[V], xs[V] = {}, ys[V] = {}, out[V];
    if constexpr (VEC) {
      memcpy(src, Pack<T>::load(e.src + i).v, sizeof(src));
      if (e.x) memcpy(xs, Pack<T>::load(e.x + i).v, sizeof(xs));
      if (e.y) memcpy(ys, Pack<T>::load(e.y + i).v, sizeof(ys));
    } else {
      src[0] = e.src[i];
      if (e.x) xs[0] = e.x[i];
      if (e.y) ys[0] = e.y[i];
    }
#pragma unroll
    for (int k = 0; k < V; ++k) {
      float bias = 0.0f;
      if (ACT == kActSwish) bias = to_float(load_readonly(e.b + channel + (channel_steps ? k : 0)));
      g[k] = compute<kBiasActGrad, ACT>(e, to_float(src[k]), bias, to_float(xs[k]),
                                        to_float(ys[k]), 0.0f);
      out[k] = from_float<T>(g[k]);
    }
    if constexpr (VEC) {
      Pack<T> pk;
      memcpy(pk.v, out, sizeof(out));
      pk.store(e.out + i);
    } else {
      e.out[i] = out[0];
    }
  }

  GANKERN_BA_HD void accumulate(int tid, float* red) const {
    float acc[V] = {};
    const GradDbPlan& pl = a.plan;
    const int ln = lane(tid);
    if constexpr (COL) {
      const int64_t pack = blk * pl.width + tid % pl.width;
      const int64_t r1 = (group + 1) * pl.chunk < a.rows ? (group + 1) * pl.chunk : a.rows;
      if (pack < pl.packs_per_row) {
        for (int64_t r = group * pl.chunk + ln; r < r1; r += pl.lanes) {
          float g[V];
          grad(r * a.cols + pack * V, pack * V, true, g);
#pragma unroll
          for (int k = 0; k < V; ++k) acc[k] += g[k];
        }
      }
    } else {
      const int64_t row = blk * pl.width + tid / pl.lanes;
      const int64_t p1 = (group + 1) * pl.chunk < pl.packs_per_row ? (group + 1) * pl.chunk
                                                                   : pl.packs_per_row;
      if (row < a.rows) {
        const int64_t channel = row % a.channels;
        for (int64_t pk = group * pl.chunk + ln; pk < p1; pk += pl.lanes) {
          float g[V];
          grad(row * a.cols + pk * V, channel, false, g);
#pragma unroll
          for (int k = 0; k < V; ++k) acc[0] += g[k];
        }
      }
    }
#pragma unroll
    for (int k = 0; k < V; ++k) red[tid * V + k] = acc[k];
  }

  // Tree step s (lanes / 2, lanes / 4, ..., 1): lanes below s add the lane s above them.
  GANKERN_BA_HD void step(int s, int tid, float* red) const {
    if (lane(tid) >= s) return;
    const int partner = COL ? tid + s * a.plan.width : tid + s;
#pragma unroll
    for (int k = 0; k < V; ++k) red[tid * V + k] += red[partner * V + k];
  }

  GANKERN_BA_HD void finish(int tid, const float* red) const {
    if (lane(tid) != 0) return;
    if constexpr (COL) {
      const int64_t pack = blk * a.plan.width + tid % a.plan.width;
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const int64_t col = pack * V + k;
        if (col < a.cols) a.part[group * a.cols + col] = red[tid * V + k];
      }
    } else {
      const int64_t row = blk * a.plan.width + tid / a.plan.lanes;
      if (row < a.rows) a.part[row * a.plan.groups + group] = red[tid * V];
    }
  }
};

// Picks the instantiation (activation, orientation, packs) and hands it to the launcher:
// launcher.template run_grad_db<T, ACT, COL, VEC>(args).
template <typename T, typename Launcher>
cudaError_t dispatch_grad_db(const BiasActGradDbParams& p, Launcher& launcher) {
  GradDbArgs<T> a;
  if (!make_grad_db_plan<T>(p, &a.plan) || !p.part) return cudaErrorInvalidValue;
  BiasActParams e{};
  e.out = p.out;
  e.src = p.src;
  e.b = p.b;
  e.x = p.x;
  e.y = p.y;
  e.n = p.rows * p.cols;
  e.dim_stride = 1;
  e.dim_size = 1;
  e.mode = kBiasActGrad;
  e.act = p.act;
  e.alpha = p.alpha;
  e.gain = p.gain;
  e.clamp = p.clamp;
  if (!make_args(e, &a.e)) return cudaErrorInvalidValue;
  a.part = p.part;
  a.rows = p.rows;
  a.cols = p.cols;
  a.channels = p.channels;
  return dispatch_activation(p.act, [&](auto act_id) {
    constexpr int ACT = decltype(act_id)::value;
    if (p.channel_is_col) {
      return a.plan.vec ? launcher.template run_grad_db<T, ACT, true, true>(a)
                        : launcher.template run_grad_db<T, ACT, true, false>(a);
    }
    return a.plan.vec ? launcher.template run_grad_db<T, ACT, false, true>(a)
                      : launcher.template run_grad_db<T, ACT, false, false>(a);
  });
}

#ifndef GANKERN_BIAS_ACT_HOST_EMULATION

template <typename T, int ACT, bool COL, bool VEC>
__global__ void __launch_bounds__(kThreads) bias_act_grad_db_kernel(const GradDbArgs<T> a) {
  __shared__ float red[kThreads * GradDbBlock<T, ACT, COL, VEC>::V];
  const GradDbBlock<T, ACT, COL, VEC> block(a, blockIdx.x);
  block.accumulate(threadIdx.x, red);
  for (int s = a.plan.lanes / 2; s > 0; s >>= 1) {
    __syncthreads();
    block.step(s, threadIdx.x, red);
  }
  __syncthreads();
  block.finish(threadIdx.x, red);
}

template <typename T, int MODE, int ACT, bool WIDE>
__global__ void __launch_bounds__(kThreads) bias_act_kernel(const KernelArgs<T> a) {
  kernel_body<T, MODE, ACT, WIDE>(a, int64_t{blockIdx.x} * kThreads + threadIdx.x,
                                  int64_t{gridDim.x} * kThreads);
}

struct GpuLauncher {
  cudaStream_t stream;

  template <typename T, int MODE, int ACT, bool WIDE>
  cudaError_t run(const KernelArgs<T>& a, unsigned blocks) {
    bias_act_kernel<T, MODE, ACT, WIDE><<<blocks, kThreads, 0, stream>>>(a);
    return cudaGetLastError();
  }

  template <typename T, int ACT, bool COL, bool VEC>
  cudaError_t run_grad_db(const GradDbArgs<T>& a) {
    const auto blocks = static_cast<unsigned>(a.plan.blocks * a.plan.groups);
    bias_act_grad_db_kernel<T, ACT, COL, VEC><<<blocks, kThreads, 0, stream>>>(a);
    return cudaGetLastError();
  }
};

#endif  // GANKERN_BIAS_ACT_HOST_EMULATION

}  // namespace bias_act_detail

#ifndef GANKERN_BIAS_ACT_HOST_EMULATION

template <typename T>
cudaError_t launch_bias_act(const BiasActParams& p, cudaStream_t stream) {
  bias_act_detail::GpuLauncher launcher{stream};
  return bias_act_detail::dispatch<T>(p, launcher);
}

template <typename T>
int64_t bias_act_grad_db_groups(const BiasActGradDbParams& p) {
  bias_act_detail::GradDbPlan plan;
  return bias_act_detail::make_grad_db_plan<T>(p, &plan) ? plan.groups : 0;
}

template <typename T>
cudaError_t launch_bias_act_grad_db(const BiasActGradDbParams& p, cudaStream_t stream) {
  bias_act_detail::GpuLauncher launcher{stream};
  return bias_act_detail::dispatch_grad_db<T>(p, launcher);
}

template int64_t bias_act_grad_db_groups<float>(const BiasActGradDbParams&);
template int64_t bias_act_grad_db_groups<__half>(const BiasActGradDbParams&);
template int64_t bias_act_grad_db_groups<__nv_bfloat16>(const BiasActGradDbParams&);
template cudaError_t launch_bias_act_grad_db<float>(const BiasActGradDbParams&, cudaStream_t);
template cudaError_t launch_bias_act_grad_db<__half>(const BiasActGradDbParams&, cudaStream_t);
template cudaError_t launch_bias_act_grad_db<__nv_bfloat16>(const BiasActGradDbParams&,
                                                            cudaStream_t);
template cudaError_t launch_bias_act<float>(const BiasActParams&, cudaStream_t);
template cudaError_t launch_bias_act<__half>(const BiasActParams&, cudaStream_t);
template cudaError_t launch_bias_act<__nv_bfloat16>(const BiasActParams&, cudaStream_t);

#endif  // GANKERN_BIAS_ACT_HOST_EMULATION

}  // namespace gankern

#undef GANKERN_BA_HD
