"""modulated_conv2d: one StyleGAN2 synthesis layer, and an R1 step on a StyleGAN2 discriminator.

Layer cases (issue 3): batch 32, a 3x3 modulated convolution with demodulation, per-pixel
noise, bias, lrelu and clamp 256 (what ``SynthesisLayer`` runs), at StyleGAN2's widths:
512 channels at 4 to 64 px, 256 at 128 px, 128 at 256 px; without (``conv``) and with
(``up2``, input at half the resolution, the previous resolution's channels) upsampling;
and ``torgb`` (1x1 to 3 channels, no demodulation, no activation). The weight and the styles
stay float32 (as StyleGAN2 keeps its parameters), activations and noise take the dtype.

Providers: the fused op (``gankern_cuda``, ``gankern_triton``), the reference in both of
StyleGAN2's formulations (``ref_grouped``: one grouped convolution over per-sample weights;
``ref_scaling``: the shared weight on style-scaled inputs), and ``torch.compile`` of each.

Flop model (multiply-adds x 2 of the convolution, the only compute-bound part):
forward ``2 N O C k^2 P`` with ``P`` the output pixels (input pixels for ``up2``, whose
transposed convolution meets only real pixels); backward twice that (input and weight
gradients); double backward (R1/path length through this layer) twice that as well (the
convolution of the input gradient by ``dy`` and its weight gradient).

``r1_step``: D forward on 256 px reals, the R1 input gradient with ``create_graph=True`` and
the penalty's backward, on the paper256 discriminator (half precision in its 4 highest
resolutions for float16/bfloat16, float32 throughout otherwise); gankern's fastest backends
against the reference path. Timed in the harness's ``forward`` mode (the whole step is one
call).

Targets (issue 3, one H100, float16 and bfloat16): the fused layer at least 1.5x faster than
the faster reference formulation and 1.2x faster than torch.compile(ref), forward and
backward; the R1 step at least 1.3x faster than on the reference.
"""

from __future__ import annotations

import torch

from benchmarks.harness import BenchCase, Config, Provider, Target, Variant, register, to_layout
from gankern.ops import modulated_conv2d, setup_filter

HALF = (torch.float16, torch.bfloat16)

# (resolution, in_channels of the up2 layer, channels) of StyleGAN2 at 256 px, batch 32.
RESOLUTIONS = [(4, 512, 512), (8, 512, 512), (16, 512, 512), (32, 512, 512), (64, 512, 512),
               (128, 512, 256), (256, 256, 128)]


def variants(quick: bool) -> list[Variant]:
    """The synthesis layers of StyleGAN2 (batch 32); tiny shapes for --quick."""
    if quick:
        return [
            Variant("conv", (2, 8, 8, 8), {"k": 3, "up": 1, "out": 8}),
            Variant("up2", (2, 8, 4, 4), {"k": 3, "up": 2, "out": 8}),
            Variant("torgb", (2, 8, 8, 8), {"k": 1, "up": 1, "out": 3}),
        ]
    out = []
    for res, up_in, ch in RESOLUTIONS:
        out.append(Variant("conv", (32, ch, res, res), {"k": 3, "up": 1, "out": ch}))
        if res > 4:
            up_params = {"k": 3, "up": 2, "out": ch}
            out.append(Variant("up2", (32, up_in, res // 2, res // 2), up_params))
        if res >= 64:
            out.append(Variant("torgb", (32, ch, res, res), {"k": 1, "up": 1, "out": 3}))
    return out


def _is_torgb(config: Config) -> bool:
    return config.case == "torgb"


def make_inputs(config: Config, device: torch.device) -> list:
    n, c, h, w = config.shape
    o, k, up = config.params["out"], config.params["k"], config.params["up"]
    x = to_layout(torch.randn(config.shape, device=device, dtype=config.dtype), config.layout)
    weight = torch.randn(o, c, k, k, device=device)
    styles = torch.randn(n, c, device=device) + 1
    if _is_torgb(config):
        styles = styles / (c * k * k) ** 0.5  # ToRGB's weight gain goes onto the styles
        noise = None
    else:
        noise = torch.randn(n, 1, h * up, w * up, device=device, dtype=config.dtype) * 0.1
    bias = torch.zeros(o, device=device, dtype=config.dtype)
    args = [x, weight, styles, noise, bias]
    for t in args:
        if t is not None:
            t.requires_grad_()
    return args


def _provider(impl: str, fused_modconv: bool = False):
    def build(config: Config):
        k, up = config.params["k"], config.params["up"]
        torgb = _is_torgb(config)
        filters = {}  # device -> the [1, 3, 3, 1] filter, made once (not copied every call)

        def run(x, weight, styles, noise, bias):
            if x.device not in filters:
                filters[x.device] = setup_filter([1, 3, 3, 1], device=x.device)
            return modulated_conv2d(
                x, weight, styles, noise=noise, up=up, padding=k // 2,
                resample_filter=filters[x.device], demodulate=not torgb, flip_weight=up == 1,
                fused_modconv=fused_modconv, bias=bias, act="linear" if torgb else "lrelu",
                clamp=256.0, impl=impl,
            )

        return run

    return build


def flops(config: Config, mode: str) -> int:
    n, c, h, w = config.shape
    o, k = config.params["out"], config.params["k"]
    # The input's pixels: the output's without resampling (same padding), and for up2 the
    # pixels the transposed convolution really multiplies (the inserted zeros are skipped).
    forward = 2 * n * o * c * k * k * h * w
    return forward if mode == "forward" else 2 * forward


def _layer_target(config: Config, mode: str) -> bool:
    return config.dtype in HALF and mode in ("forward", "backward")


LAYER = register(
    BenchCase(
        op="modulated_conv2d",
        description="StyleGAN2 synthesis layer: modulated conv, demod, noise, bias, lrelu, clamp",
        variants=variants,
        make_inputs=make_inputs,
        providers=[
            Provider("gankern_cuda", "gankern", _provider("cuda"), backend="cuda"),
            Provider("gankern_triton", "gankern", _provider("triton"), backend="triton"),
            Provider("ref_grouped", "ref", _provider("ref", fused_modconv=True)),
            Provider("ref_scaling", "ref", _provider("ref", fused_modconv=False)),
            Provider("compile_ref_grouped", "compile", _provider("ref", fused_modconv=True)),
            Provider("compile_ref_scaling", "compile", _provider("ref", fused_modconv=False)),
        ],
        flops=flops,
        targets=[
            Target(
                "fused synthesis layer, float16/bfloat16, forward and backward: >= 1.5x the "
                "faster ref formulation and >= 1.2x torch.compile(ref) (issue 3)",
                applies=_layer_target,
                min_speedup_vs_ref=1.5,
                min_speedup_vs_compile=1.2,
            )
        ],
    )
)


# --- R1 step on the StyleGAN2 discriminator -------------------------------------------------


def r1_variants(quick: bool) -> list[Variant]:
    if quick:
        return [Variant("r1_step", (4, 3, 16, 16), {"channel_base": 256, "channel_max": 16})]
    return [Variant("r1_step", (32, 3, 256, 256), {"channel_base": 16384, "channel_max": 512})]


def r1_inputs(config: Config, device: torch.device) -> list:
    reals = torch.randn(config.shape, device=device, dtype=torch.float32)
    return [to_layout(reals, config.layout).requires_grad_()]


def _r1_provider(impl: str):
    def build(config: Config):
        from gankern.models.stylegan2_configs import DiscriminatorConfig
        from gankern.train.penalties import r1_penalty

        half = config.dtype in HALF
        d_config = DiscriminatorConfig(
            img_resolution=config.shape[-1], img_channels=config.shape[1],
            channel_base=config.params["channel_base"], channel_max=config.params["channel_max"],
            num_fp16_res=4 if half else 0, fp16_channels_last=config.layout == "channels_last",
        )
        device = config.device
        torch.manual_seed(0)
        D = d_config.build(impl=impl).to(device).train()
        if half:
            D.set_half_dtype(config.dtype)
        gamma = 1.0

        def step(reals):
            D.zero_grad(set_to_none=True)
            loss = r1_penalty(D, reals, None) * (gamma / 2)
            loss.backward()
            return loss.detach()

        return step

    return build


R1 = register(
    BenchCase(
        op="stylegan2_r1",
        description="R1 step (D forward + double backward) on the paper256 StyleGAN2 discriminator",
        variants=r1_variants,
        make_inputs=r1_inputs,
        providers=[
            Provider("gankern_auto", "gankern", _r1_provider("auto")),
            Provider("ref", "ref", _r1_provider("ref")),
        ],
        modes=("forward",),
        targets=[
            Target(
                "R1 step, float16/bfloat16: >= 1.3x the reference path (issue 3)",
                applies=lambda config, mode: config.dtype in HALF,
                min_speedup_vs_ref=1.3,
            )
        ],
    )
)
