// Activation ids shared by the kernels and their bindings: ActivationSpec.cuda_idx in
// gankern/ops/_activations.py (the Triton kernels use the same numbers). Plain C++, no CUDA.
#pragma once

namespace gankern {

enum Activation : int {
  kActLinear = 1,
  kActRelu = 2,
  kActLrelu = 3,
  kActTanh = 4,
  kActSigmoid = 5,
  kActElu = 6,
  kActSelu = 7,
  kActSoftplus = 8,
  kActSwish = 9,
};

}  // namespace gankern
