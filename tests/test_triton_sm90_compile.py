"""The Triton kernels of upfirdn2d and modulated_conv2d compile for an H100 (sm_90), here.

The drivers below run the public ops on CPU tensors: forward, backward and, once, the double
backward of R1 / path length regularization. Every kernel launch they make is compiled
offline for sm_90 with the launcher's own specialization and must fit an H100 without
spilling registers (see ``triton_offline_compile.py``). One process compiles everything.

Each scenario is chosen for the launch configurations it produces, so that together they
cover: the three dtypes and TF32; NCHW and channels_last (a stride of 1 becomes a constant);
up and down by 2 (zero-skipping transposed and strided convolutions), StyleGAN2's 4x4 and a
separable 12-tap filter, up by 4; 1x1 kernels with 3 outputs (ToRGB: the narrowest tiles);
channel counts that reach the largest tiles each launcher picks for a GPU; batch 1 and one
channel (sizes of 1 become constants); noise, bias, clamp and the heavier activations; and
64-bit offsets (meta tensors stand for a tensor spanning 2**31 elements).
"""

from __future__ import annotations

import pytest
import torch
from triton_offline_compile import compile_launches, seen, sm90_problems, summary

from gankern.ops import ACTIVATIONS

CL = torch.channels_last


def _filter(taps=(1, 3, 3, 1), separable=None):
    from gankern.ops import setup_filter

    return setup_filter(list(taps), separable=separable)


def _grads(y, inputs, create_graph=False):
    wrt = [t for t in inputs if t is not None and t.requires_grad]
    return torch.autograd.grad(y, wrt, torch.ones_like(y), create_graph=create_graph)


def _upfirdn2d(shape, dtype, fmt=torch.contiguous_format, f=None, grad=True, **kw):
    from gankern.ops import upfirdn2d

    x = torch.randn(shape).to(dtype=dtype, memory_format=fmt).requires_grad_(grad)
    y = upfirdn2d(x, f, **kw)
    if grad:
        _grads(y, [x])


def _modconv(n, c, o, res, k, dtype, *, up=1, down=1, fmt=torch.contiguous_format,
             demodulate=True, noise=True, order=1, **kw):  # fmt: skip
    from gankern.ops import modulated_conv2d

    x = torch.randn(n, c, res, res).to(dtype=dtype, memory_format=fmt).requires_grad_()
    w = torch.randn(o, c, k, k, requires_grad=True)
    s = torch.randn(n, c, requires_grad=True)
    out = res * up // down
    nz = torch.randn(n, 1, out, out, dtype=dtype) if noise else None
    b = torch.randn(o, requires_grad=True)
    y = modulated_conv2d(
        x, w, s, noise=nz, up=up, down=down, padding=k // 2, resample_filter=_filter(),
        demodulate=demodulate, flip_weight=up == 1, bias=b, **kw,
    )  # fmt: skip
    grads = _grads(y, [x, w, s, b], create_graph=order == 2)
    if order == 2:
        # R1 / path length: differentiate a function of the first gradients.
        _grads(sum(g.float().square().sum() for g in grads), [x, w, s, b])


def launch_upfirdn2d():
    """upfirdn2d launches beyond those modulated_conv2d makes."""
    from gankern.ops.triton.upfirdn2d import upfirdn2d_triton

    # A separable 12-tap filter, downsampling (its gradient upsamples), half precision.
    _upfirdn2d((2, 4, 16, 16), torch.float16, f=_filter([1] * 12, True), down=2, padding=5)
    # One channel, filtering only; upsampling by 4.
    _upfirdn2d((1, 1, 5, 5), torch.float32, f=_filter(), padding=[2, 1, 2, 1], grad=False)
    _upfirdn2d((2, 4, 4, 4), torch.float32, f=_filter([1, 2, 1]), up=4, padding=1, grad=False)
    # StyleGAN2's 2x upsampling of a planar half-precision image (contiguous-store check).
    _upfirdn2d((2, 8, 32, 32), torch.float16, f=_filter(), up=2, padding=[2, 1, 2, 1])
    # 64-bit offsets: channels_last, 2**31 elements (meta tensors, the kernel's own launcher).
    big = dict(size=(2, 32, 2**13, 2**13), stride=(2**31, 1, 2**18, 32), device="meta")
    x = torch.empty_strided(**big, dtype=torch.bfloat16)
    upfirdn2d_triton(x, _filter(), torch.empty_like(x), 1, 1, 1, 1, 2, 2, False, 1.0)


def launch_modulated_conv2d():
    """modulated_conv2d launches, as StyleGAN2's synthesis layers make them."""
    # Float32 products follow PyTorch's TF32 switch for cuDNN convolutions (on by default):
    # IEEE for the float32 layers, then TF32 for the last one.
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        # fp16 3x3 layer with noise, bias, lrelu and StyleGAN2's clamp; 128 channels reach the
        # largest tiles of the convolution and of the weight gradient.
        _modconv(2, 128, 128, 8, 3, torch.float16, act="lrelu", clamp=256.0)
        # bf16 channels_last, batch 1, down by 2 (strided convolution), second order.
        _modconv(1, 16, 24, 8, 3, torch.bfloat16, down=2, fmt=CL, order=2, act="lrelu")
        # StyleGAN2's half-precision layers in channels_last (64 channels: whole 16-byte
        # channel vectors), fp16 plain and bf16 up by 2: the fast paths the main-loop checks
        # look at.
        _modconv(2, 64, 64, 16, 3, torch.float16, fmt=CL, act="lrelu", clamp=256.0)
        _modconv(2, 64, 64, 8, 3, torch.bfloat16, up=2, fmt=CL, act="lrelu", clamp=256.0)
        # float32 (FMA products) up by 2: zero-skipping transposed convolution, the filter and a
        # separate epilogue (every activation, with a clamp); 64 channels reach the largest
        # float32 tiles. Only the epilogue kernels differ between the activations.
        for act in ACTIVATIONS:
            _modconv(2, 64, 64, 4, 3, torch.float32, up=2, act=act, clamp=1.0)
        # TF32 channels_last ToRGB-like: 1x1, 3 outputs, no demodulation or noise, up by 2.
        torch.backends.cudnn.allow_tf32 = True
        _modconv(2, 32, 3, 4, 1, torch.float32, up=2, fmt=CL, demodulate=False, noise=False)
    finally:
        torch.backends.cudnn.allow_tf32 = tf32


def launch_all():
    launch_upfirdn2d()
    launch_modulated_conv2d()


@pytest.fixture(scope="module")
def variants():
    return compile_launches("test_triton_sm90_compile:launch_all")


def test_every_variant_compiles_and_fits_sm90(variants):
    problems = [p for v in variants for p in sm90_problems(v)]
    assert not problems, "\n".join(problems) + "\n\nall variants:\n" + summary(variants)


def test_upfirdn2d_variants_cover_the_launch_space(variants):
    k = "_upfirdn2d_kernel"
    assert seen(variants, k, "x_ptr") == {"*fp32", "*fp16", "*bf16"}
    assert seen(variants, k, "UPX") == {1, 2, 4}
    assert seen(variants, k, "DOWNY") == {1, 2}
    assert seen(variants, k, "SEPARABLE") == {True, False}
    assert seen(variants, k, "FLIP") == {True, False}
    assert seen(variants, k, "INT64") == {True, False}
    assert max(seen(variants, k, "TAPS_Y")) == 12
    assert {1, 32} <= seen(variants, k, "BLOCK_C")  # NCHW and channels_last tiles
    assert any("C" in v.constants for v in variants if v.kernel == k)  # one channel


def test_modulated_conv2d_variants_cover_the_launch_space(variants):
    conv, wgrad = "_modconv_kernel", "_modconv_wgrad_kernel"
    for kernel in (conv, wgrad):
        assert seen(variants, kernel, "x_ptr") == {"*fp32", "*fp16", "*bf16"}
        assert seen(variants, kernel, "UP") == {1, 2}
        assert seen(variants, kernel, "STRIDE") == {1, 2}
        assert seen(variants, kernel, "DOT_PRECISION") == {"ieee", "tf32"}
    assert seen(variants, conv, "HAS_PRE") == {True, False}
    assert seen(variants, conv, "SAVE_Z") == {True, False}
    assert seen(variants, conv, "HAS_CLAMP") == {True, False}
    assert {16, 64} <= seen(variants, conv, "BLOCK_N")
    assert 128 in seen(variants, wgrad, "BLOCK_M")
    assert any({"KH", "KW"} <= set(v.constants) for v in variants if v.kernel == conv)  # 1x1
    assert any("N" in v.constants for v in variants if v.kernel == conv)  # batch 1
    assert seen(variants, "_epilogue_kernel", "CHANNELS_LAST") == {True, False}
    for kernel in ("_epilogue_kernel", "_epilogue_grad_kernel"):
        assert seen(variants, kernel, "ACT") == {a.cuda_idx for a in ACTIVATIONS.values()}
    assert seen(variants, "_epilogue_grad_kernel", "NONLINEAR") == {True, False}
    assert seen(variants, "_modulation_grad_kernel", "NEED_PRE") == {True}


HALF = {"*fp16", "*bf16"}


def _half(v) -> bool:
    return v.types.get("x_ptr") in HALF


def _loop_problems(v, label: str) -> list[str]:
    """Why the main loop of a half-precision GEMM variant is not wide, async and on wgmma."""
    loop = v.extra["mma_loop_ops"]
    problems = []
    if loop["wgmma"] == 0:
        problems.append(
            f"{label}: no wgmma in the main loop (tensor-core warpgroup MMA regressed to "
            f"mma.sync or FMA; loop ops {loop})"
        )
    if loop["ld_global_16bit"]:
        problems.append(
            f"{label}: {loop['ld_global_16bit']} scalar 2-byte global loads in the main loop (an "
            f"operand tile is no longer read as 16-byte vectors; loop ops {loop})"
        )
    if loop["cp_async_16"] + loop["ld_global_v4"] < 2:
        problems.append(
            f"{label}: fewer than two 16-byte operand streams in the main loop (both operands "
            f"should arrive as 16-byte cp.async copies or vector loads; loop ops {loop})"
        )
    return problems


def _tiles_hold_vectors(v, a_rows: str, b_cols: str) -> bool:
    """Each thread's share of both operand tiles is at least one 16-byte vector (8 halves):
    smaller tiles (layers of 16 channels) cannot be copied in 16-byte pieces at all."""
    threads = 32 * v.num_warps
    k = v.constexprs["BLOCK_K"]
    return min(v.constexprs[a_rows], v.constexprs[b_cols]) * k >= 8 * threads


def test_modconv_main_loops_are_asynchronous_wide_and_on_tensor_cores(variants):
    """The half-precision convolution (forward and input gradient) and weight-gradient kernels
    on channels_last activations with whole channel vectors: both operands in 16-byte
    asynchronous copies (or vector loads), wgmma, in the steady-state loop."""
    problems, checked = [], {"_modconv_kernel": 0, "_modconv_wgrad_kernel": 0}
    for v in variants:
        if v.kernel not in checked or not _half(v):
            continue
        if not _tiles_hold_vectors(v, "BLOCK_M", "BLOCK_N"):
            continue
        if v.kernel == "_modconv_kernel" and v.constexprs["A_LAYOUT"] == 1:
            role = "forward" if v.constexprs["HAS_PRE"] else "input gradient"
            problems += _loop_problems(v, f"convolution ({role}) {v.label()}")
        elif v.kernel == "_modconv_wgrad_kernel" and v.constexprs["BLOCK_M"] >= 64:
            if v.constexprs["G_VEC"] and v.constexprs["X_VEC"]:
                problems += _loop_problems(v, f"weight gradient {v.label()}")
            else:
                continue
        else:
            continue
        checked[v.kernel] += 1
    assert all(checked.values()), f"no variant of some kernel was checked: {checked}"
    assert not problems, "\n".join(problems)


def test_modconv_nchw_and_gather_variants_still_use_tensor_cores(variants):
    """Activations read element by element (NCHW, strided views) keep wgmma wherever a tile
    has 64 rows, and the weights still arrive as 16-byte cp.async copies."""
    problems = []
    for v in variants:
        if v.kernel != "_modconv_kernel" or not _half(v) or v.constexprs["A_LAYOUT"] == 1:
            continue
        loop = v.extra["mma_loop_ops"]
        if v.constexprs["BLOCK_M"] >= 64 and loop["wgmma"] == 0:
            problems.append(f"{v.label()}: no wgmma in the main loop ({loop})")
        weights_tile = v.constexprs["BLOCK_K"] * v.constexprs["BLOCK_N"]
        if weights_tile >= 8 * 32 * v.num_warps and loop["cp_async_16"] == 0:
            problems.append(f"{v.label()}: the weights are no 16-byte cp.async copies ({loop})")
    assert not problems, "\n".join(problems)


def test_upfirdn2d_2x_up_stores_whole_runs(variants):
    """Planar 2x upsampling interleaves its two column phases before storing: no 2-byte
    stores of every other column (each thread writes neighbouring output columns), wherever
    a tile gives every thread at least one output per phase."""

    def per_phase(v):
        c = v.constexprs
        return c["BLOCK_C"] * c["BLOCK_QH"] * c["BLOCK_QW"] // (32 * v.num_warps)

    checked = [
        v for v in variants
        if v.kernel == "_upfirdn2d_kernel" and v.constexprs["JOIN_X"]
        and v.types["y_ptr"] in HALF and per_phase(v) >= 1
    ]  # fmt: skip
    assert checked, "no half-precision 2x-up variant was compiled"
    for v in checked:
        ops = v.extra["ops"]
        assert ops["st_global_16bit"] == 0, (
            f"{v.label()}: {ops['st_global_16bit']} 2-byte stores: the 2x-up output is written "
            f"column by column again (strided) instead of in contiguous runs ({ops})"
        )


def test_modconv_fused_gradient_kernels_use_16_byte_vectors(variants):
    """The fused first-order gradient kernels (epilogue, modulation) on dense NCHW or
    channels_last half-precision tensors with whole-vector sizes: no 2-byte global loads,
    16-byte vector loads and stores (pixels addressed without division, see FLAT)."""
    problems, checked = [], 0
    for v in variants:
        if v.kernel not in ("_epilogue_grad_kernel", "_modulation_grad_kernel"):
            continue
        dtype = v.types.get("dy_ptr") or v.types.get("dxs_ptr")
        channels = "O" if v.kernel == "_epilogue_grad_kernel" else "C"
        if dtype not in HALF or not v.constexprs["FLAT"]:
            continue
        if not {"HW", channels} <= set(v.divisible):
            continue
        checked += 1
        ops = v.extra["ops"]
        if ops["ld_global_16bit"] or not ops["ld_global_v4"] or not ops["st_global_v4"]:
            problems.append(
                f"{v.label()}: the gradient tiles are no longer 16-byte vector accesses "
                f"({ops['ld_global_16bit']} 2-byte loads, {ops['ld_global_v4']} vector loads, "
                f"{ops['st_global_v4']} vector stores; ops {ops})"
            )
    assert checked, "no fused gradient variant with whole-vector sizes was compiled"
    assert not problems, "\n".join(problems)
