// Torch glue of the modulated convolution's fused epilogue (csrc/kernels/modulated_conv2d.cu):
// argument checks, dtype dispatch, the current stream, and registration as
// torch.ops.gankern_cuda.modulated_conv2d_epilogue.
//
// The Python side (gankern/ops/modulated_conv2d_cuda.py) passes z in NCHW or channels_last
// layout; everything the kernel assumes is re-checked here, so a wrong call raises instead of
// reading out of bounds.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <optional>

#include "kernels/modulated_conv2d.h"

namespace {

constexpr const char* kOp = "modulated_conv2d_epilogue: ";

bool defined(const std::optional<at::Tensor>& t) { return t.has_value() && t->defined(); }

void check_device(const char* name, const at::Tensor& t, const at::Tensor& z) {
  TORCH_CHECK(t.device() == z.device(), kOp, name, " must be on z's device (", z.device(),
              "), got ", t.device());
}

at::Tensor modulated_conv2d_epilogue(const at::Tensor& z, const std::optional<at::Tensor>& post,
                                     const std::optional<at::Tensor>& noise,
                                     const std::optional<at::Tensor>& bias, int64_t act,
                                     double alpha, double gain, double clamp) {
  TORCH_CHECK(z.is_cuda(), kOp, "z must be a CUDA tensor, got ", z.device());
  const auto dtype = z.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kHalf || dtype == at::kBFloat16, kOp,
              "z must be float32, float16 or bfloat16, got ", dtype);
  TORCH_CHECK(z.dim() == 4 && z.numel() > 0, kOp, "z must be a non-empty [N, O, H, W], got ",
              z.sizes());
  TORCH_CHECK(act >= gankern::kActLinear && act <= gankern::kActSwish, kOp,
              "act must be an activation id in [1, 9], got ", act);
  const bool channels_last =
      !z.is_contiguous() && z.is_contiguous(at::MemoryFormat::ChannelsLast);
  TORCH_CHECK(channels_last || z.is_contiguous(), kOp,
              "z must be contiguous or channels_last, got strides ", z.strides());

  gankern::modconv::EpilogueParams p{};
  for (int d = 0; d < 4; ++d) {
    p.size[d] = z.size(d);
    p.z_stride[d] = z.stride(d);
  }

  at::Tensor post_f, noise_f, bias_f;  // keep converted copies alive until the launch
  if (defined(post)) {
    check_device("post", *post, z);
    TORCH_CHECK(post->scalar_type() == at::kFloat, kOp, "post must be float32, got ",
                post->scalar_type());
    TORCH_CHECK(post->dim() == 2 && post->size(0) == z.size(0) && post->size(1) == z.size(1),
                kOp, "post must have shape [", z.size(0), ", ", z.size(1), "], got ",
                post->sizes());
    post_f = *post;
    p.post = post_f.data_ptr<float>();
    p.post_stride[0] = post_f.stride(0);
    p.post_stride[1] = post_f.stride(1);
  }
  if (defined(noise)) {
    check_device("noise", *noise, z);
    TORCH_CHECK(noise->dim() == 4, kOp, "noise must have 4 dimensions, got ", noise->sizes());
    for (int d = 0; d < 4; ++d) {
      TORCH_CHECK(noise->size(d) == 1 || noise->size(d) == z.size(d), kOp, "noise of shape ",
                  noise->sizes(), " does not broadcast to z's shape ", z.sizes());
    }
    noise_f = noise->to(at::kFloat).contiguous();
    p.noise = noise_f.data_ptr<float>();
    for (int d = 0; d < 4; ++d) p.noise_stride[d] = noise_f.size(d) == 1 ? 0 : noise_f.stride(d);
  }
  if (defined(bias)) {
    check_device("bias", *bias, z);
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == z.size(1), kOp, "bias must have shape [",
                z.size(1), "], got ", bias->sizes());
    bias_f = bias->to(at::kFloat).contiguous();
    p.bias = bias_f.data_ptr<float>();
  }

  const c10::cuda::CUDAGuard guard(z.device());
  const auto format = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  at::Tensor y = at::empty(z.sizes(), z.options().memory_format(format));
  for (int d = 0; d < 4; ++d) p.y_stride[d] = y.stride(d);
  p.y = y.data_ptr();
  p.z = z.data_ptr();
  p.channels_last = channels_last;
  p.act = static_cast<int>(act);
  p.alpha = static_cast<float>(alpha);
  p.gain = static_cast<float>(gain);
  p.clamp = static_cast<float>(clamp);

  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  cudaError_t err = cudaErrorInvalidValue;
  switch (dtype) {
    case at::kFloat: err = gankern::modconv::launch_epilogue<float>(p, stream); break;
    case at::kHalf: err = gankern::modconv::launch_epilogue<__half>(p, stream); break;
    case at::kBFloat16: err = gankern::modconv::launch_epilogue<__nv_bfloat16>(p, stream); break;
    default: break;
  }
  TORCH_CHECK(err == cudaSuccess, kOp, "kernel launch failed: ", cudaGetErrorString(err));
  return y;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(gankern_cuda, m) {
  m.def(
      "modulated_conv2d_epilogue(Tensor z, Tensor? post, Tensor? noise, Tensor? bias, int act, "
      "float alpha, float gain, float clamp) -> Tensor");
}

TORCH_LIBRARY_IMPL(gankern_cuda, CUDA, m) {
  m.impl("modulated_conv2d_epilogue", &modulated_conv2d_epilogue);
}
