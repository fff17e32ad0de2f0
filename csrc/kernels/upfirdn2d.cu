// upfirdn2d kernels (see upfirdn2d.h for the semantics). Only CUDA headers, no torch.
//
// Tiled kernels: one block computes a tile of outputs (a TH x TW patch of one channel for
// planar layouts, or of CB channels for channels-last ones). It first stages the input window
// that the tile reads, and the correlation filter (flip and gain applied), in shared memory as
// float32; zeros stand for pixels outside the input, which implements padding and cropping
// with no branch in the inner loop. Then each thread gathers the taps of its outputs: output o
// along an axis reads input (o * down - pad0 + t) / up for the taps t that make the division
// exact, i.e. every up-th tap starting at t0 = (pad0 - o * down) mod up. A separable (1-D)
// filter is staged as its outer product: one pass over memory, like a 2-D filter, which beats
// two passes (x then y) for the few taps GAN filters have, the op being bound by memory.
//
// The per-thread work lives in __host__ __device__ code (TiledBlock, direct_output) and the
// choice of kernel in dispatch(), templated on a launcher: the GPU launcher below launches the
// kernels, and a host emulator (tests/cuda_emulation/upfirdn2d_emulator.cu) runs the very same
// code on the CPU, block by block and thread by thread, so the indexing is tested on machines
// without GPU.
#include "upfirdn2d.h"

#include <climits>
#include <cstddef>
#include <cstring>

#include "elementwise_math.h"

namespace gankern {
namespace upfirdn2d {
namespace detail {

constexpr int kThreads = 256;
constexpr size_t kMaxSharedBytes = 48 * 1024;  // the default dynamic shared memory limit

#define GANKERN_HD __host__ __device__ __forceinline__

GANKERN_HD int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
GANKERN_HD int pos_mod(int a, int b) {
  const int m = a % b;
  return m < 0 ? m + b : m;
}

constexpr bool divides(int a, int b) { return a > 0 && b % a == 0; }

// How many input samples along one axis a tile of `tile` outputs reads: exactly
// (tile - 1) * down + taps without upsampling, else an upper bound,
// floor((k0 + (tile - 1) * down + taps - 1) / up) - floor(k0 / up) + 1 for any k0.
GANKERN_HD int input_extent(int tile, int up, int down, int taps) {
  return up == 1 ? (tile - 1) * down + taps : ((tile - 1) * down + taps - 1) / up + 2;
}

// 16 bytes of T from a 16-byte aligned address, as floats.
template <typename T>
GANKERN_HD void load_vector(const T* src, float* out) {
  constexpr int kV = 16 / sizeof(T);
  const uint4 raw = *reinterpret_cast<const uint4*>(src);
  T v[kV];
  memcpy(v, &raw, sizeof(raw));
#pragma unroll
  for (int k = 0; k < kV; ++k) out[k] = to_float(v[k]);
}

// Correlation tap (ty, tx): the filter flipped unless flip_filter, times the gain.
// Splits a linear index over a block of `channels` x `height` x `width` values into (c, x, y),
// in the order the block is stored: channel fastest for channels_last, x fastest otherwise.
template <bool CL>
GANKERN_HD void split_block_index(int idx, int channels, int width, int height, int& c, int& x,
                                  int& y) {
  if (CL) {
    c = idx % channels;
    const int r = idx / channels;
    x = r % width;
    y = r / width;
  } else {
    x = idx % width;
    const int r = idx / width;
    y = r % height;
    c = r / height;
  }
}

GANKERN_HD float correlation_tap(const Params& p, int ty, int tx) {
  const int fy = p.flip_filter ? ty : p.fh - 1 - ty;
  const int fx = p.flip_filter ? tx : p.fw - 1 - tx;
  const float w = p.separable ? p.f[fy] * p.f[fx] : p.f[fy * p.fw + fx];
  return w * p.gain;
}

// One block of a tiled kernel. UP, DOWN and FT (filter size) are compile-time constants in
// the fast paths (the same along both axes) and 0 in the general path, which reads them from
// the parameters. TW x TH output pixels times CB channels per block; CL selects the
// channels-last thread mapping (channels fastest) over the planar one (columns fastest).
// In the fast paths each thread computes micro-tiles of RY x RX outputs of one channel, with
// the filter taps in registers (see compute_fixed); the general path computes one output at
// a time (RX = RY = 1).
template <typename T, int UP, int DOWN, int FT, int TW, int TH, int CB, bool CL, int RX = 1,
          int RY = 1>
struct TiledBlock {
  static constexpr bool kFixed = UP > 0 && DOWN > 0 && FT > 0;
  static_assert(kFixed || (RX == 1 && RY == 1), "the general path computes single outputs");
  static_assert(!kFixed || (divides(UP, FT) && divides(UP, RX) && divides(UP, RY)),
                "micro-tiles hold whole phase periods, and every tap is used");
  static_assert(TW % RX == 0 && TH % RY == 0, "tiles hold whole micro-tiles");

  static constexpr int kVec = 16 / int(sizeof(T));  // elements per 16-byte vector

  int up_x, up_y, down_x, down_y, fw, fh;
  int in_tw, in_th;  // input window extents
  // Planar windows are stored with their rows shifted by `lead` = ix0 mod kVec slots and
  // `row_stride` floats apart, so that aligned 16-byte vectors of the input land whole.
  int lead, row_stride;
  int n, c0, ox0, oy0;  // sample, first channel and first output pixel of the tile
  int ix0, iy0;  // first input pixel of the window (may lie outside the input)

  static GANKERN_HD int tiles_x(const Params& p) { return (p.out_w + TW - 1) / TW; }
  static GANKERN_HD int tiles_y(const Params& p) { return (p.out_h + TH - 1) / TH; }
  static GANKERN_HD int channel_groups(const Params& p) { return (p.c + CB - 1) / CB; }

  static int64_t num_blocks(const Params& p) {
    return int64_t(tiles_x(p)) * tiles_y(p) * channel_groups(p) * p.n;
  }

  GANKERN_HD explicit TiledBlock(const Params& p, int block)
      : up_x(UP > 0 ? UP : p.up_x),
        up_y(UP > 0 ? UP : p.up_y),
        down_x(DOWN > 0 ? DOWN : p.down_x),
        down_y(DOWN > 0 ? DOWN : p.down_y),
        fw(FT > 0 ? FT : p.fw),
        fh(FT > 0 ? FT : p.fh) {
    in_tw = input_extent(TW, up_x, down_x, fw);
    in_th = input_extent(TH, up_y, down_y, fh);
    const int tx = block % tiles_x(p);
    block /= tiles_x(p);
    const int ty = block % tiles_y(p);
    block /= tiles_y(p);
    c0 = (block % channel_groups(p)) * CB;
    n = block / channel_groups(p);
    ox0 = tx * TW;
    oy0 = ty * TH;
    ix0 = floor_div(ox0 * down_x - p.pad_x0, up_x);
    iy0 = floor_div(oy0 * down_y - p.pad_y0, up_y);
    lead = CL ? 0 : pos_mod(ix0, kVec);
    row_stride = CL ? in_tw : in_tw + 2 * kVec;
  }

  static GANKERN_HD size_t shared_floats(const Params& p) {
    const TiledBlock geometry(p, 0);
    const size_t width = CL ? geometry.in_tw : geometry.row_stride;
    return size_t(geometry.fh) * geometry.fw + size_t(CB) * geometry.in_th * width;
  }

  // Whether this block stages its window with 16-byte vector loads: the input allows them
  // (p.vec16: aligned base, strides in whole vectors). Vectors that would cross the input's
  // edge (or the last channel) are read element by element, with zeros outside.
  GANKERN_HD bool vector_window(const Params& p) const {
    return p.vec16 && (!CL || CB % kVec == 0);
  }

  // Phase 1 (thread tid of kThreads): stage the filter and the input window.
  GANKERN_HD void load(const Params& p, int tid, float* smem) const {
    for (int i = tid; i < fh * fw; i += kThreads) smem[i] = correlation_tap(p, i / fw, i % fw);
    float* tile = smem + fh * fw;
    const T* x = static_cast<const T*>(p.x) + int64_t(n) * p.sx[0];
    if (vector_window(p)) {
      load_vectors(p, tid, x, tile);
      return;
    }
    const int total = CB * in_th * in_tw;
    for (int idx = tid; idx < total; idx += kThreads) {
      int c, col, row;
      split_block_index<CL>(idx, CB, in_tw, in_th, c, col, row);
      tile[tile_index(c, row, col)] = input(p, x, c0 + c, iy0 + row, ix0 + col);
    }
  }

  // Input element (channel gc, row gy, column gx) of sample n as float, 0 outside.
  static GANKERN_HD float input(const Params& p, const T* x, int gc, int gy, int gx) {
    if (gc < p.c && gx >= 0 && gx < p.in_w && gy >= 0 && gy < p.in_h)
      return to_float(x[gc * p.sx[1] + gy * p.sx[2] + gx * p.sx[3]]);
    return 0.f;
  }

  // The window in 16-byte vectors: along the rows (planar, from the aligned column at or
  // before ix0) or along the channels of each pixel (channels-last).
  GANKERN_HD void load_vectors(const Params& p, int tid, const T* x, float* tile) const {
    if constexpr (CL) {
      constexpr int kPerPixel = CB / kVec > 0 ? CB / kVec : 1;
      const int total = in_th * in_tw * kPerPixel;
      for (int v = tid; v < total; v += kThreads) {
        const int cv = v % kPerPixel, pix = v / kPerPixel;
        const int col = pix % in_tw, row = pix / in_tw;
        const int gc = c0 + cv * kVec, gy = iy0 + row, gx = ix0 + col;
        float* dst = tile + tile_index(cv * kVec, row, col);
        if (gc + kVec <= p.c && gx >= 0 && gx < p.in_w && gy >= 0 && gy < p.in_h) {
          load_vector(x + gc + gy * p.sx[2] + gx * p.sx[3], dst);
        } else {
          for (int k = 0; k < kVec; ++k) dst[k] = input(p, x, gc + k, gy, gx);
        }
      }
    } else {
      const int vectors = (lead + in_tw + kVec - 1) / kVec;
      const int total = CB * in_th * vectors;
      for (int v = tid; v < total; v += kThreads) {
        const int j = v % vectors, r = v / vectors;
        const int row = r % in_th, c = r / in_th;
        const int gc = c0 + c, gy = iy0 + row, gx = ix0 - lead + j * kVec;
        float* dst = tile + (c * in_th + row) * row_stride + j * kVec;
        if (gc < p.c && gy >= 0 && gy < p.in_h && gx >= 0 && gx + kVec <= p.in_w) {
          load_vector(x + gc * p.sx[1] + gy * p.sx[2] + gx, dst);
        } else {
          for (int k = 0; k < kVec; ++k) dst[k] = input(p, x, gc, gy, gx + k);
        }
      }
    }
  }

  GANKERN_HD int tile_index(int c, int row, int col) const {
    return CL ? (row * in_tw + col) * CB + c : (c * in_th + row) * row_stride + lead + col;
  }

  // Phase 2 (after a barrier): each thread computes its outputs from shared memory.
  GANKERN_HD void compute(const Params& p, int tid, const float* smem) const {
    if constexpr (kFixed) {
      compute_fixed(p, tid, smem);
    } else {
      compute_general(p, tid, smem);
    }
  }

  // Fast paths. Outputs come in micro-tiles whose first pixel is a multiple of UP along each
  // axis, so the phase of output o_b + r depends only on r mod UP: each thread resolves the
  // phases, the input offsets and the taps they use once, into registers. With UP == 1 there
  // is no phase, and the micro-tile's input window is read once into registers and shared by
  // its outputs (a column of RY outputs reads (RY - 1) * DOWN + FT rows instead of RY * FT);
  // with UP > 1 each output reads its FT / UP squared taps from shared memory.
  GANKERN_HD void compute_fixed(const Params& p, int tid, const float* smem) const {
    constexpr int kTaps = FT / UP;
    constexpr int kMicroX = TW / RX, kMicroY = TH / RY;
    const float* filt = smem;
    const float* tile = smem + FT * FT;
    int base_x[UP], base_y[UP];  // input offset of the first tap of residue r
    float w[UP][UP][kTaps][kTaps];  // taps of residue (ry, rx)
#pragma unroll
    for (int r = 0; r < UP; ++r) {
      const int t0x = pos_mod(p.pad_x0 - r * DOWN, UP);
      const int t0y = pos_mod(p.pad_y0 - r * DOWN, UP);
      base_x[r] = (r * DOWN - p.pad_x0 + t0x) / UP;  // exact division
      base_y[r] = (r * DOWN - p.pad_y0 + t0y) / UP;
#pragma unroll
      for (int rx = 0; rx < UP; ++rx) {
        const int t0xx = pos_mod(p.pad_x0 - rx * DOWN, UP);
#pragma unroll
        for (int jy = 0; jy < kTaps; ++jy)
#pragma unroll
          for (int jx = 0; jx < kTaps; ++jx)
            w[r][rx][jy][jx] = filt[(t0y + jy * UP) * FT + t0xx + jx * UP];
      }
    }
    T* y = static_cast<T*>(p.y) + int64_t(n) * p.sy[0];
    for (int idx = tid; idx < CB * kMicroY * kMicroX; idx += kThreads) {
      int c, mx, my;
      split_block_index<CL>(idx, CB, kMicroX, kMicroY, c, mx, my);
      const int gc = c0 + c, ox_b = ox0 + mx * RX, oy_b = oy0 + my * RY;
      if (gc >= p.c || ox_b >= p.out_w || oy_b >= p.out_h) continue;
      // Window position of the micro-tile's input (o_b * DOWN is a multiple of UP).
      const int lx = ox_b * DOWN / UP - ix0;
      const int ly = oy_b * DOWN / UP - iy0;
      T* y_b = y + gc * p.sy[1] + oy_b * p.sy[2] + ox_b * p.sy[3];
      const bool full = ox_b + RX <= p.out_w && oy_b + RY <= p.out_h;
      if constexpr (UP == 1) {
        constexpr int kWinY = (RY - 1) * DOWN + FT, kWinX = (RX - 1) * DOWN + FT;
        float win[kWinY][kWinX];
#pragma unroll
        for (int wy = 0; wy < kWinY; ++wy)
#pragma unroll
          for (int wx = 0; wx < kWinX; ++wx)
            win[wy][wx] = tile[tile_index(c, ly + base_y[0] + wy, lx + base_x[0] + wx)];
#pragma unroll
        for (int ry = 0; ry < RY; ++ry) {
#pragma unroll
          for (int rx = 0; rx < RX; ++rx) {
            float acc = 0.f;
#pragma unroll
            for (int ty = 0; ty < FT; ++ty)
#pragma unroll
              for (int tx = 0; tx < FT; ++tx)
                acc += w[0][0][ty][tx] * win[ry * DOWN + ty][rx * DOWN + tx];
            if (full || (ox_b + rx < p.out_w && oy_b + ry < p.out_h))
              y_b[ry * p.sy[2] + rx * p.sy[3]] = from_float<T>(acc);
          }
        }
      } else {
#pragma unroll
        for (int ry = 0; ry < RY; ++ry) {
          const int row = ly + base_y[ry % UP] + (ry / UP) * DOWN;
#pragma unroll
          for (int rx = 0; rx < RX; ++rx) {
            const int col = lx + base_x[rx % UP] + (rx / UP) * DOWN;
            float acc = 0.f;
#pragma unroll
            for (int jy = 0; jy < kTaps; ++jy)
#pragma unroll
              for (int jx = 0; jx < kTaps; ++jx)
                acc += w[ry % UP][rx % UP][jy][jx] * tile[tile_index(c, row + jy, col + jx)];
            if (full || (ox_b + rx < p.out_w && oy_b + ry < p.out_h))
              y_b[ry * p.sy[2] + rx * p.sy[3]] = from_float<T>(acc);
          }
        }
      }
    }
  }

  // The general path: one output per step, phases and taps resolved per output.
  GANKERN_HD void compute_general(const Params& p, int tid, const float* smem) const {
    const float* filt = smem;
    const float* tile = smem + fh * fw;
    T* y = static_cast<T*>(p.y) + int64_t(n) * p.sy[0];
    const int taps_x = (fw + up_x - 1) / up_x;
    const int taps_y = (fh + up_y - 1) / up_y;
    for (int idx = tid; idx < CB * TH * TW; idx += kThreads) {
      int c, lx, ly;
      split_block_index<CL>(idx, CB, TW, TH, c, lx, ly);
      const int gc = c0 + c, ox = ox0 + lx, oy = oy0 + ly;
      if (gc >= p.c || ox >= p.out_w || oy >= p.out_h) continue;
      // First contributing tap and the window position of the input sample it reads.
      const int kx = ox * down_x - p.pad_x0;
      const int ky = oy * down_y - p.pad_y0;
      const int t0x = pos_mod(-kx, up_x);
      const int t0y = pos_mod(-ky, up_y);
      const int bx = (kx + t0x) / up_x - ix0;  // exact division
      const int by = (ky + t0y) / up_y - iy0;
      float acc = 0.f;
#pragma unroll
      for (int jy = 0; jy < taps_y; ++jy) {
        const int ty = t0y + jy * up_y;
        if (ty < fh) {
#pragma unroll
          for (int jx = 0; jx < taps_x; ++jx) {
            const int tx = t0x + jx * up_x;
            if (tx < fw) acc += filt[ty * fw + tx] * tile[tile_index(c, by + jy, bx + jx)];
          }
        }
      }
      y[gc * p.sy[1] + oy * p.sy[2] + ox * p.sy[3]] = from_float<T>(acc);
    }
  }
};

// The direct path: output `index` (in the output's memory order) gathered from global memory.
template <typename T, bool CL>
GANKERN_HD void direct_output(const Params& p, int64_t index) {
  int c, ox, oy, n;
  if (CL) {
    c = int(index % p.c);
    index /= p.c;
    ox = int(index % p.out_w);
    index /= p.out_w;
  } else {
    ox = int(index % p.out_w);
    index /= p.out_w;
  }
  oy = int(index % p.out_h);
  index /= p.out_h;
  if (!CL) {
    c = int(index % p.c);
    index /= p.c;
  }
  n = int(index);
  const int kx = ox * p.down_x - p.pad_x0;
  const int ky = oy * p.down_y - p.pad_y0;
  const int t0x = pos_mod(-kx, p.up_x);
  const int t0y = pos_mod(-ky, p.up_y);
  const int ix = (kx + t0x) / p.up_x;
  const int iy = (ky + t0y) / p.up_y;
  const T* x = static_cast<const T*>(p.x) + n * p.sx[0] + c * p.sx[1];
  float acc = 0.f;
  for (int jy = 0, ty = t0y; ty < p.fh; ++jy, ty += p.up_y) {
    const int gy = iy + jy;
    if (gy < 0 || gy >= p.in_h) continue;
    for (int jx = 0, tx = t0x; tx < p.fw; ++jx, tx += p.up_x) {
      const int gx = ix + jx;
      if (gx < 0 || gx >= p.in_w) continue;
      acc += correlation_tap(p, ty, tx) * to_float(x[gy * p.sx[2] + gx * p.sx[3]]);
    }
  }
  T* y = static_cast<T*>(p.y);
  y[n * p.sy[0] + c * p.sy[1] + oy * p.sy[2] + ox * p.sy[3]] = from_float<T>(acc);
}

template <typename Block>
bool fits_in_shared_memory(const Params& p) {
  return Block::shared_floats(p) * sizeof(float) <= kMaxSharedBytes;
}

// Pick the kernel for `p` and run it through `launcher`, which provides
//   tiled<TiledBlock<...>>(p, path) and direct<T, CL>(p, path).
// Whether x's base and the strides the staging steps over keep 16-byte vectors aligned.
template <typename T>
bool vectorizable(const Params& p, bool cl) {
  constexpr int kVec = 16 / int(sizeof(T));
  if ((reinterpret_cast<uintptr_t>(p.x) & 15u) != 0) return false;
  const int inner = cl ? 1 : 3;
  if (p.sx[inner] != 1) return false;
  for (int d = 0; d < 4; ++d) {
    if (d != inner && p.sx[d] % kVec != 0) return false;
  }
  return true;
}

template <typename T, typename Launcher>
cudaError_t dispatch(const Params& params, Launcher& launcher) {
  // Channels-last mapping when channels are the fastest dimension and numerous enough to
  // fill a warp's loads; few channels (RGB) tile planes.
  const bool cl = params.sx[1] < params.sx[3] && params.c >= 8;
  Params p = params;
  p.vec16 = vectorizable<T>(p, cl);
  const bool same_axes = p.up_x == p.up_y && p.down_x == p.down_y && p.fw == p.fh;
  if (same_axes && p.fw == 4) {
    // Micro-tiles: 2 x 2 outputs (one per phase) when upsampling; columns of 4 outputs
    // otherwise, so that neighbouring threads of a planar tile read neighbouring columns.
    if (p.up_x == 2 && p.down_x == 1) {
      // Planar tiles as wide as the output (a 128-wide tile leaves half its threads idle at
      // 64 pixels), 4096 outputs each.
      if (cl) {
        return launcher.template tiled<TiledBlock<T, 2, 1, 4, 8, 8, 32, true, 2, 2>>(
            p, Path::kUp2Filter4);
      }
      if (p.out_w > 64) {
        return launcher.template tiled<TiledBlock<T, 2, 1, 4, 128, 32, 1, false, 2, 2>>(
            p, Path::kUp2Filter4);
      }
      if (p.out_w > 32) {
        return launcher.template tiled<TiledBlock<T, 2, 1, 4, 64, 64, 1, false, 2, 2>>(
            p, Path::kUp2Filter4);
      }
      return launcher.template tiled<TiledBlock<T, 2, 1, 4, 32, 64, 1, false, 2, 2>>(
          p, Path::kUp2Filter4);
    }
    if (p.up_x == 1 && p.down_x == 2) {
      // Channels-last: 16 x 8 outputs of 16 channels stage 33 x 17 inputs, 4.4 per output
      // (8 x 4 of 32 staged 6.5); planar tiles as wide as the output.
      if (cl) {
        return launcher.template tiled<TiledBlock<T, 1, 2, 4, 16, 8, 16, true, 1, 4>>(
            p, Path::kDown2Filter4);
      }
      if (p.out_w > 16) {
        return launcher.template tiled<TiledBlock<T, 1, 2, 4, 32, 32, 1, false, 1, 4>>(
            p, Path::kDown2Filter4);
      }
      return launcher.template tiled<TiledBlock<T, 1, 2, 4, 16, 64, 1, false, 1, 4>>(
          p, Path::kDown2Filter4);
    }
    if (p.up_x == 1 && p.down_x == 1) {
      return cl ? launcher.template tiled<TiledBlock<T, 1, 1, 4, 8, 8, 32, true, 1, 4>>(
                      p, Path::kFilter4)
                : launcher.template tiled<TiledBlock<T, 1, 1, 4, 64, 32, 1, false, 1, 4>>(
                      p, Path::kFilter4);
    }
  }
  using GeneralCL = TiledBlock<T, 0, 0, 0, 4, 4, 32, true>;
  using GeneralPlanar = TiledBlock<T, 0, 0, 0, 32, 16, 1, false>;
  if (cl && fits_in_shared_memory<GeneralCL>(p))
    return launcher.template tiled<GeneralCL>(p, Path::kTiledGeneral);
  if (!cl && fits_in_shared_memory<GeneralPlanar>(p))
    return launcher.template tiled<GeneralPlanar>(p, Path::kTiledGeneral);
  // The direct path follows the output's memory order, so that stores coalesce.
  return p.sy[1] < p.sy[3] ? launcher.template direct<T, true>(p, Path::kDirect)
                           : launcher.template direct<T, false>(p, Path::kDirect);
}

#ifndef GANKERN_UPFIRDN2D_HOST_EMULATION

template <typename Block>
__global__ void __launch_bounds__(kThreads) tiled_kernel(Params p) {
  extern __shared__ float smem[];
  const Block block(p, blockIdx.x);
  block.load(p, threadIdx.x, smem);
  __syncthreads();
  block.compute(p, threadIdx.x, smem);
}

template <typename T, bool CL>
__global__ void __launch_bounds__(kThreads) direct_kernel(Params p, int64_t total) {
  const int64_t stride = int64_t(gridDim.x) * kThreads;
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < total; i += stride)
    direct_output<T, CL>(p, i);
}

struct GpuLauncher {
  cudaStream_t stream;
  Path* path;

  template <typename Block>
  cudaError_t tiled(const Params& p, Path chosen) {
    if (path) *path = chosen;
    const int64_t blocks = Block::num_blocks(p);
    if (blocks > INT_MAX) return cudaErrorInvalidConfiguration;
    const size_t smem = Block::shared_floats(p) * sizeof(float);
    tiled_kernel<Block><<<unsigned(blocks), kThreads, smem, stream>>>(p);
    return cudaGetLastError();
  }

  template <typename T, bool CL>
  cudaError_t direct(const Params& p, Path chosen) {
    if (path) *path = chosen;
    const int64_t total = int64_t(p.n) * p.c * p.out_h * p.out_w;
    int64_t blocks = (total + kThreads - 1) / kThreads;
    if (blocks > (int64_t(1) << 20)) blocks = int64_t(1) << 20;  // grid-stride beyond that
    direct_kernel<T, CL><<<unsigned(blocks), kThreads, 0, stream>>>(p, total);
    return cudaGetLastError();
  }
};

#endif  // GANKERN_UPFIRDN2D_HOST_EMULATION

}  // namespace detail

#ifndef GANKERN_UPFIRDN2D_HOST_EMULATION

cudaError_t launch(const Params& p, Dtype dtype, cudaStream_t stream, Path* path) {
  detail::GpuLauncher launcher{stream, path};
  switch (dtype) {
    case Dtype::kFloat32:
      return detail::dispatch<float>(p, launcher);
    case Dtype::kFloat16:
      return detail::dispatch<__half>(p, launcher);
    case Dtype::kBFloat16:
      return detail::dispatch<__nv_bfloat16>(p, launcher);
  }
  return cudaErrorInvalidValue;
}

#endif  // GANKERN_UPFIRDN2D_HOST_EMULATION

}  // namespace upfirdn2d
}  // namespace gankern

#undef GANKERN_HD
