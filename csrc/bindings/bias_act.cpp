// Torch glue of the bias_act kernels (csrc/kernels/bias_act.cu): argument checks, dtype
// dispatch, the current stream, and registration as torch.ops.gankern_cuda.bias_act_elementwise.
//
// The Python side (gankern/ops/_bias_act_op.py) arranges the layouts; this re-checks every
// assumption the kernel makes, so a wrong call raises instead of reading out of bounds.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <optional>
#include <tuple>
#include <vector>

#include "kernels/bias_act.h"

namespace {

bool same_strides(const at::Tensor& a, const at::Tensor& b) {
  for (int64_t i = 0; i < a.dim(); ++i) {
    if (a.size(i) != 1 && a.stride(i) != b.stride(i)) return false;
  }
  return true;
}

// A saved tensor or gradient must match src exactly: device, dtype, shape, strides.
const void* check_like_src(const char* name, const std::optional<at::Tensor>& t,
                           const at::Tensor& src) {
  if (!t.has_value() || !t->defined()) return nullptr;
  TORCH_CHECK(t->device() == src.device(), "bias_act_elementwise: ", name,
              " must be on src's device (", src.device(), "), got ", t->device());
  TORCH_CHECK(t->scalar_type() == src.scalar_type(), "bias_act_elementwise: ", name,
              " must have src's dtype (", src.scalar_type(), "), got ", t->scalar_type());
  TORCH_CHECK(t->sizes() == src.sizes(), "bias_act_elementwise: ", name,
              " must have src's shape ", src.sizes(), ", got ", t->sizes());
  TORCH_CHECK(same_strides(*t, src), "bias_act_elementwise: ", name,
              " must have src's strides ", src.strides(), ", got ", t->strides());
  return t->data_ptr();
}

at::Tensor bias_act_elementwise(const at::Tensor& src, const std::optional<at::Tensor>& b,
                                const std::optional<at::Tensor>& x,
                                const std::optional<at::Tensor>& y,
                                const std::optional<at::Tensor>& dy, int64_t mode, int64_t dim,
                                int64_t act, double alpha, double gain, double clamp) {
  TORCH_CHECK(src.is_cuda(), "bias_act_elementwise: src must be a CUDA tensor, got ",
              src.device());
  const auto dtype = src.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kHalf || dtype == at::kBFloat16,
              "bias_act_elementwise: src must be float32, float16 or bfloat16, got ", dtype);
  TORCH_CHECK(src.numel() > 0, "bias_act_elementwise: src must not be empty, got shape ",
              src.sizes());
  TORCH_CHECK(src.dim() > 0 && dim >= 0 && dim < src.dim(),
              "bias_act_elementwise: dim must be in [0, ", src.dim() - 1, "], got ", dim);
  TORCH_CHECK(mode >= gankern::kBiasActForward && mode <= gankern::kBiasActGrad2,
              "bias_act_elementwise: mode must be 0, 1 or 2, got ", mode);
  TORCH_CHECK(act >= gankern::kActLinear && act <= gankern::kActSwish,
              "bias_act_elementwise: act must be an activation id in [1, 9], got ", act);
  TORCH_CHECK(src.is_non_overlapping_and_dense(),
              "bias_act_elementwise: src must be non-overlapping and dense, got strides ",
              src.strides());

  gankern::BiasActParams p{};
  p.src = src.data_ptr();
  p.x = check_like_src("x", x, src);
  p.y = check_like_src("y", y, src);
  p.dy = check_like_src("dy", dy, src);
  if (mode != gankern::kBiasActForward) {
    // The derivatives are read off x + b (swish) or the saved output (the others; linear
    // only needs it for the clamp mask).
    if (act == gankern::kActSwish) {
      TORCH_CHECK(p.x, "bias_act_elementwise: x is required for the derivatives of swish");
    } else if (act != gankern::kActLinear || clamp >= 0) {
      TORCH_CHECK(p.y, "bias_act_elementwise: y (the saved output) is required for act id ",
                  act, " with clamp ", clamp);
    }
  }
  TORCH_CHECK(mode != gankern::kBiasActGrad2 || p.dy,
              "bias_act_elementwise: dy is required in mode 2 (second derivative)");
  if (b.has_value() && b->defined()) {
    TORCH_CHECK(b->device() == src.device(), "bias_act_elementwise: b must be on src's device (",
                src.device(), "), got ", b->device());
    TORCH_CHECK(b->scalar_type() == dtype, "bias_act_elementwise: b must have src's dtype (",
                dtype, "), got ", b->scalar_type());
    TORCH_CHECK(b->dim() == 1 && b->size(0) == src.size(dim) && b->is_contiguous(),
                "bias_act_elementwise: b must be a contiguous vector of length ", src.size(dim),
                ", got shape ", b->sizes(), " and strides ", b->strides());
    p.b = b->data_ptr();
  }

  const c10::cuda::CUDAGuard guard(src.device());
  at::Tensor out = at::empty_like(src);
  TORCH_CHECK(same_strides(out, src), "bias_act_elementwise: internal error, output strides ",
              out.strides(), " differ from src's ", src.strides());
  p.out = out.data_ptr();
  p.n = src.numel();
  p.dim_size = src.size(dim);
  p.dim_stride = p.dim_size > 1 ? src.stride(dim) : 1;
  p.mode = static_cast<int>(mode);
  p.act = static_cast<int>(act);
  p.alpha = static_cast<float>(alpha);
  p.gain = static_cast<float>(gain);
  p.clamp = static_cast<float>(clamp);

  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  cudaError_t err = cudaErrorInvalidValue;
  switch (dtype) {
    case at::kFloat: err = gankern::launch_bias_act<float>(p, stream); break;
    case at::kHalf: err = gankern::launch_bias_act<__half>(p, stream); break;
    case at::kBFloat16: err = gankern::launch_bias_act<__nv_bfloat16>(p, stream); break;
    default: break;
  }
  TORCH_CHECK(err == cudaSuccess, "bias_act_elementwise: kernel launch failed: ",
              cudaGetErrorString(err));
  return out;
}

// Allocates the partial sums for p's launch plan, launches, and returns them.
template <typename T>
at::Tensor grad_db_typed(gankern::BiasActGradDbParams& p, const at::Tensor& src) {
  const int64_t groups = gankern::bias_act_grad_db_groups<T>(p);
  TORCH_CHECK(groups > 0, "bias_act_grad_db: the geometry [", p.rows, ", ", p.cols,
              "] with ", p.channels, " channels (channel_is_col=", p.channel_is_col,
              ") does not describe src, or swish lacks x or b");
  const auto shape = p.channel_is_col ? std::vector<int64_t>{groups, p.cols}
                                      : std::vector<int64_t>{p.rows, groups};
  at::Tensor part = at::empty(shape, src.options().dtype(at::kFloat));
  p.part = part.data_ptr<float>();
  const cudaError_t err =
      gankern::launch_bias_act_grad_db<T>(p, c10::cuda::getCurrentCUDAStream());
  TORCH_CHECK(err == cudaSuccess, "bias_act_grad_db: kernel launch failed: ",
              cudaGetErrorString(err));
  return part;
}

// The first derivative (mode 1) and the bias gradient's float32 partial sums (see
// BiasActGradDbParams): returns (dx, part); Python adds part up to db.
std::tuple<at::Tensor, at::Tensor> bias_act_grad_db(
    const at::Tensor& src, const std::optional<at::Tensor>& b, const std::optional<at::Tensor>& x,
    const std::optional<at::Tensor>& y, int64_t rows, int64_t cols, int64_t channels,
    bool channel_is_col, int64_t act, double alpha, double gain, double clamp) {
  TORCH_CHECK(src.is_cuda(), "bias_act_grad_db: src must be a CUDA tensor, got ", src.device());
  const auto dtype = src.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kHalf || dtype == at::kBFloat16,
              "bias_act_grad_db: src must be float32, float16 or bfloat16, got ", dtype);
  TORCH_CHECK(src.is_non_overlapping_and_dense(),
              "bias_act_grad_db: src must be non-overlapping and dense, got strides ",
              src.strides());
  TORCH_CHECK(act >= gankern::kActLinear && act <= gankern::kActSwish,
              "bias_act_grad_db: act must be an activation id in [1, 9], got ", act);
  TORCH_CHECK(rows > 0 && cols > 0 && rows * cols == src.numel(), "bias_act_grad_db: rows (",
              rows, ") x cols (", cols, ") must be src's ", src.numel(), " elements");
  gankern::BiasActGradDbParams p{};
  p.src = src.data_ptr();
  p.x = check_like_src("x", x, src);
  p.y = check_like_src("y", y, src);
  if (act == gankern::kActSwish) {
    TORCH_CHECK(p.x, "bias_act_grad_db: x is required for the derivatives of swish");
  } else if (act != gankern::kActLinear || clamp >= 0) {
    TORCH_CHECK(p.y, "bias_act_grad_db: y (the saved output) is required for act id ", act,
                " with clamp ", clamp);
  }
  if (act == gankern::kActSwish) {
    TORCH_CHECK(b.has_value() && b->defined(), "bias_act_grad_db: b is required for swish");
    TORCH_CHECK(b->device() == src.device() && b->scalar_type() == dtype && b->dim() == 1 &&
                    b->size(0) == channels && b->is_contiguous(),
                "bias_act_grad_db: b must be a contiguous ", dtype, " vector of length ",
                channels, " on ", src.device(), ", got ", b->scalar_type(), " of shape ",
                b->sizes(), " on ", b->device());
    p.b = b->data_ptr();
  }
  p.rows = rows;
  p.cols = cols;
  p.channels = channels;
  p.channel_is_col = channel_is_col;
  p.act = static_cast<int>(act);
  p.alpha = static_cast<float>(alpha);
  p.gain = static_cast<float>(gain);
  p.clamp = static_cast<float>(clamp);

  const c10::cuda::CUDAGuard guard(src.device());
  at::Tensor out = at::empty_like(src);
  TORCH_CHECK(same_strides(out, src), "bias_act_grad_db: internal error, output strides ",
              out.strides(), " differ from src's ", src.strides());
  p.out = out.data_ptr();
  at::Tensor part;
  switch (dtype) {
    case at::kFloat: part = grad_db_typed<float>(p, src); break;
    case at::kHalf: part = grad_db_typed<__half>(p, src); break;
    default: part = grad_db_typed<__nv_bfloat16>(p, src); break;
  }
  return {out, part};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(gankern_cuda, m) {
  m.def(
      "bias_act_elementwise(Tensor src, Tensor? b, Tensor? x, Tensor? y, Tensor? dy, int mode, "
      "int dim, int act, float alpha, float gain, float clamp) -> Tensor");
  m.def(
      "bias_act_grad_db(Tensor src, Tensor? b, Tensor? x, Tensor? y, int rows, int cols, "
      "int channels, bool channel_is_col, int act, float alpha, float gain, float clamp) "
      "-> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(gankern_cuda, CUDA, m) {
  m.impl("bias_act_elementwise", &bias_act_elementwise);
  m.impl("bias_act_grad_db", &bias_act_grad_db);
}
