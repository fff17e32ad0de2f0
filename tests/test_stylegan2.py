"""StyleGAN2 networks: parameter counts, configurations, forward passes against an
independent functional reference, gradients, truncation, style mixing, precision, errors."""

from __future__ import annotations

import contextlib
import copy
import math

import pytest
import torch
from stylegan2_reference import ada_discriminator, ada_generator, mbstd_groups
from stylegan2_utils import TINY, randomize_, state64, tiny_discriminator, tiny_generator
from testutils import assert_backend_ran, assert_close, network_terms, widest_fan_in

from gankern.models import get_config, mapping_with_mixing, mix_styles
from gankern.nn import MinibatchStdLayer


def count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------------------------------
# Parameter counts and configurations


def test_config_f_parameter_counts_equal_the_official_ones():
    # The official StyleGAN2 config-f at 1024 px: 30,370,060 (G) and 29,012,513 (D).
    cfg = get_config("stylegan2")
    G, D = cfg.G.build(), cfg.D.build()
    assert count_params(G) == 30_370_060
    assert count_params(D) == 29_012_513
    assert (G.num_ws, G.img_resolution, G.z_dim, G.w_dim) == (18, 1024, 512, 512)


# Feature maps per resolution, written out from StyleGAN2-ADA's min(channel_base // res, 512).
EXPECTED_CHANNELS = {
    "paper256": {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64},
    "cifar": {4: 512, 8: 512, 16: 512, 32: 512},
    "tiny": {4: 128, 8: 128, 16: 64, 32: 32},
    "small": {4: 256, 8: 256, 16: 256, 32: 128, 64: 64},
}


@pytest.mark.parametrize("name", sorted(EXPECTED_CHANNELS))
def test_config_structure(name):
    cfg = get_config(name)
    G, D = cfg.G.build(), cfg.D.build()
    channels = EXPECTED_CHANNELS[name]
    res = max(channels)
    assert G.img_resolution == D.img_resolution == res
    assert G.num_ws == 2 * int(math.log2(res)) - 2
    for r, ch in channels.items():
        assert getattr(G.synthesis, f"b{r}").conv1.weight.shape[0] == ch
        if r > 4:
            assert getattr(D, f"b{r}").conv0.weight.shape[0] == ch
    assert D.b4.conv.weight.shape[0] == channels[4]
    # Mixed precision in the (at most) 4 highest resolutions, never at 4x4.
    num_fp16 = cfg.G.num_fp16_res
    fp16 = {r for r in channels if r >= max(8, res // 2 ** (num_fp16 - 1))} if num_fp16 else set()
    assert {r for r in channels if getattr(G.synthesis, f"b{r}").use_fp16} == fp16
    mapping_layers = sum(1 for n, _ in G.mapping.named_children() if n.startswith("fc"))
    assert mapping_layers == cfg.G.mapping_layers
    assert D.b4.mbstd.group_size == cfg.D.mbstd_group_size


def test_published_hyperparameters():
    # StyleGAN2-ADA train.py cfg_specs.
    cifar = get_config("cifar")
    assert cifar.D.architecture == "orig" and cifar.D.mbstd_group_size == 32
    assert (cifar.train.pl_weight, cifar.train.style_mixing_prob, cifar.train.gamma) == (0, 0, 0.01)
    assert (cifar.train.ema_kimg, cifar.train.ema_rampup, cifar.G.mapping_layers) == (500, 0.05, 2)
    p512, p1024, f = get_config("paper512"), get_config("paper1024"), get_config("stylegan2")
    assert (p512.train.batch, p512.train.gamma, p512.G.channel_base) == (64, 0.5, 32768)
    assert (p1024.train.batch, p1024.train.gamma, p1024.train.lrate) == (32, 2, 0.002)
    assert (f.train.gamma, f.D.mbstd_group_size, f.G.mapping_layers) == (10, 4, 8)
    assert f.G.num_fp16_res == 4 and f.G.conv_clamp == 256


@pytest.mark.parametrize(
    "res, gpus, batch, mbstd, base, lrate, gamma, ema",
    [
        (256, 1, 16, 4, 16384, 0.0025, 0.8192, 5.0),  # the benchmark's auto config
        (1024, 8, 32, 4, 32768, 0.002, 6.5536, 10.0),
        (32, 2, 64, 4, 16384, 0.0025, 0.0032, 20.0),
    ],
)
def test_auto_config_formula(res, gpus, batch, mbstd, base, lrate, gamma, ema):
    cfg = get_config("auto", resolution=res, gpus=gpus)
    t = cfg.train
    assert (t.batch, cfg.D.mbstd_group_size, cfg.G.channel_base, t.lrate) == (
        batch,
        mbstd,
        base,
        lrate,
    )
    assert t.gamma == pytest.approx(gamma) and t.ema_kimg == pytest.approx(ema)
    assert (cfg.G.mapping_layers, t.ema_rampup, t.batch_gpu) == (2, 0.05, batch // gpus)


# ---------------------------------------------------------------------------------------------
# Forward passes against the independent reference (float64, ref backend)


@pytest.mark.parametrize(
    "architecture, conv_clamp, fused_modconv",
    [("skip", None, True), ("resnet", 0.8, False), ("orig", 0.8, True)],
)
def test_generator_matches_reference(architecture, conv_clamp, fused_modconv):
    G = randomize_(tiny_generator(c_dim=3, architecture=architecture, conv_clamp=conv_clamp))
    G = G.double().eval().set_impl("ref")
    z, c = (
        torch.randn(3, TINY["z_dim"], dtype=torch.float64),
        torch.randn(3, 3, dtype=torch.float64),
    )
    img = G(
        z,
        c,
        truncation_psi=0.7,
        truncation_cutoff=3,
        noise_mode="const",
        fused_modconv=fused_modconv,
    )
    want = ada_generator(
        state64(G), z, c, resolution=16, num_layers=2, architecture=architecture,
        conv_clamp=conv_clamp, psi=0.7, cutoff=3,
    )  # fmt: skip
    assert img.shape == (3, 3, 16, 16)
    assert_close(img, want, terms=widest_fan_in(G))


@pytest.mark.parametrize("architecture, c_dim", [("resnet", 3), ("skip", 0), ("orig", 2)])
def test_discriminator_matches_reference(architecture, c_dim):
    D = tiny_discriminator(
        c_dim=c_dim, architecture=architecture, conv_clamp=0.9,
        epilogue_kwargs=dict(mbstd_group_size=4),
    )  # fmt: skip
    D = randomize_(D).double().set_impl("ref")
    img = torch.randn(8, 3, 16, 16, dtype=torch.float64)
    c = torch.randn(8, c_dim, dtype=torch.float64) if c_dim else None
    want = ada_discriminator(
        state64(D), img, c, resolution=16, architecture=architecture, conv_clamp=0.9,
        mbstd_group=4, mapping_layers=2,
    )  # fmt: skip
    assert_close(D(img, c), want, terms=widest_fan_in(D))


def test_minibatch_std_matches_loop():
    x = torch.randn(6, 4, 3, 5, dtype=torch.float64)
    for group in (2, 3, 6, 10):
        assert_close(MinibatchStdLayer(group)(x), mbstd_groups(x, group))
    with pytest.raises(ValueError, match="divisible by the minibatch-std group size"):
        MinibatchStdLayer(4)(x)


# ---------------------------------------------------------------------------------------------
# Gradients


def test_forward_backward_float32_every_parameter_learns():
    G = tiny_generator(c_dim=2, architecture="skip", conv_clamp=256).train()
    D = tiny_discriminator(c_dim=2, conv_clamp=256).train()
    z, c = torch.randn(4, TINY["z_dim"]), torch.randn(4, 2)
    img = G(z, c)
    assert img.shape == (4, 3, 16, 16) and img.dtype == torch.float32
    logits = D(img, c)
    assert logits.shape == (4, 1)
    torch.nn.functional.softplus(-logits).mean().backward()
    for name, p in [*G.named_parameters(), *D.named_parameters()]:
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("g_arch, d_arch", [("skip", "resnet"), ("resnet", "skip")])
def test_every_parameter_gradient_matches_the_reference(g_arch, d_arch):
    # The generator's non-saturating loss through both networks: each parameter's gradient
    # equals the gradient of the same state-dict entry through the independent functional
    # networks (stylegan2_reference), so a parameter that is missing from the graph, scaled
    # wrongly (equalized learning rate, gains) or wired to the wrong layer fails here.
    G = randomize_(tiny_generator(c_dim=2, architecture=g_arch, conv_clamp=0.9))
    D = randomize_(tiny_discriminator(c_dim=2, architecture=d_arch, conv_clamp=0.9))
    G, D = G.double().eval().set_impl("ref"), D.double().eval().set_impl("ref")
    z = torch.randn(4, TINY["z_dim"], dtype=torch.float64)
    c = torch.randn(4, 2, dtype=torch.float64)
    logits = D(G(z, c, noise_mode="const"), c)
    torch.nn.functional.softplus(-logits).mean().backward()

    sg, sd = state64(G), state64(D)
    params = {**{("G", k): sg[k] for k, _ in G.named_parameters()},
              **{("D", k): sd[k] for k, _ in D.named_parameters()}}
    for t in params.values():
        t.requires_grad_(True)
    img = ada_generator(sg, z, c, resolution=16, num_layers=2, architecture=g_arch,
                        conv_clamp=0.9)
    want_logits = ada_discriminator(sd, img, c, resolution=16, architecture=d_arch,
                                    conv_clamp=0.9, mbstd_group=4, mapping_layers=2)
    terms = network_terms(G, D)  # whole networks, another order of operations
    assert_close(logits, want_logits, terms=terms)
    wanted = torch.autograd.grad(torch.nn.functional.softplus(-want_logits).mean(),
                                 list(params.values()), allow_unused=True)
    modules = {"G": dict(G.named_parameters()), "D": dict(D.named_parameters())}
    for (net, name), want in zip(params, wanted, strict=True):
        got = modules[net][name].grad
        assert want is not None and want.abs().sum() > 0, (net, name)  # every parameter learns
        assert got is not None, (net, name)
        try:
            assert_close(got, want, terms=terms)
        except AssertionError as exc:
            raise AssertionError(f"{net}.{name}: {exc}") from None


def test_r1_double_backward_reaches_discriminator_weights():
    D = randomize_(tiny_discriminator())
    reals = torch.randn(4, 3, 16, 16, requires_grad=True)
    (grad,) = torch.autograd.grad(D(reals).sum(), reals, create_graph=True)
    grad.square().sum().backward()
    assert torch.isfinite(D.b16.conv0.weight.grad).all() and D.b16.conv0.weight.grad.abs().sum() > 0


def _copy_pair(make):
    a = randomize_(make()).train()
    b = make().train()
    b.load_state_dict(a.state_dict())
    return a, b


def test_fused_triton_path_equals_ref():
    # The Triton kernels run in the interpreter on CPU: keep the networks 8x8 and narrow.
    kw = dict(resolution=8, conv_clamp=256)
    G_ref, G_tri = _copy_pair(lambda: tiny_generator(**kw))
    D_ref, D_tri = _copy_pair(lambda: tiny_discriminator(**kw))
    G_ref.set_impl("ref"), D_ref.set_impl("ref")
    G_tri.set_impl("triton"), D_tri.set_impl("triton")
    z = torch.randn(2, TINY["z_dim"])
    outs = []
    for G, D in ((G_ref, D_ref), (G_tri, D_tri)):
        img = G(z, None, noise_mode="const", fused_modconv=False)
        logits = D(img, None)
        logits.sum().backward()
        outs.append((img, logits, G.synthesis.b8.conv0.weight.grad, D.b8.conv1.weight.grad))
    fan_in = widest_fan_in(G_ref, D_ref)
    for got, want in zip(outs[1], outs[0], strict=True):
        assert_close(got, want, terms=fan_in)


# ---------------------------------------------------------------------------------------------
# Truncation, w average, style mixing


def test_truncation_moves_ws_towards_w_avg():
    G = randomize_(tiny_generator()).eval()
    z = torch.randn(5, TINY["z_dim"])
    ws = G.mapping(z, None)
    w_avg = G.mapping.w_avg
    assert_close(G.mapping(z, None, truncation_psi=0), w_avg.expand_as(ws))
    got = G.mapping(z, None, truncation_psi=0.4, truncation_cutoff=2)
    assert_close(got[:, :2], w_avg + 0.4 * (ws[:, :2] - w_avg))
    assert_close(got[:, 2:], ws[:, 2:])
    # psi = 0: every sample renders the same image.
    img = G(z, None, truncation_psi=0, noise_mode="const")
    assert_close(img, img[:1].expand_as(img))


def test_w_avg_tracking():
    G = tiny_generator().train()
    z = torch.randn(6, TINY["z_dim"])
    before = G.mapping.w_avg.clone()
    ws = G.mapping(z, None)
    beta = 0.995
    assert_close(G.mapping.w_avg, beta * before + (1 - beta) * ws[:, 0].mean(dim=0))
    after = G.mapping.w_avg.clone()
    G.mapping(z, None, skip_w_avg_update=True)
    G.eval()
    G.mapping(z, None)
    assert torch.equal(G.mapping.w_avg, after)


def _mixing_cutoff(ws, base):
    """The layer from which ws stops matching base (num_ws if never)."""
    same = (ws == base).all(dim=2).all(dim=0)
    return int(same.long().cumprod(0).sum())


def test_style_mixing():
    G = randomize_(tiny_generator()).eval()
    z = torch.randn(4, TINY["z_dim"])
    base = G.mapping(z, None)
    num_ws = G.num_ws
    assert torch.equal(mapping_with_mixing(G.mapping, z, None, 0.0), base)
    cutoffs = []
    for seed in range(40):
        ws = mapping_with_mixing(
            G.mapping, z, None, 1.0, generator=torch.Generator().manual_seed(seed)
        )
        k = _mixing_cutoff(ws, base)
        assert 1 <= k < num_ws
        # The mixed-in part is one broadcast w per sample, from another latent.
        assert_close(ws[:, k:], ws[:, k : k + 1].expand_as(ws[:, k:]))
        assert not torch.allclose(ws[:, k], base[:, k])
        cutoffs.append(k)
    assert set(cutoffs) == set(range(1, num_ws))  # uniform over [1, num_ws): all seen in 40 draws
    mixed = 0
    for seed in range(200):
        ws = mapping_with_mixing(G.mapping, z, None, 0.5, torch.Generator().manual_seed(seed))
        mixed += _mixing_cutoff(ws, base) < num_ws
    assert 70 < mixed < 130
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(
        mapping_with_mixing(G.mapping, z, None, 0.9, g1),
        mapping_with_mixing(G.mapping, z, None, 0.9, g2),
    )
    a, b = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    assert torch.equal(mix_styles(a, b, 2), torch.cat([a[:, :2], b[:, 2:]], dim=1))


# ---------------------------------------------------------------------------------------------
# Precision and memory format


def _record_dtypes(module, names):
    seen = {}
    for name in names:
        sub = module.get_submodule(name)
        sub.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o.dtype))
    return seen


def test_bfloat16_blocks_on_cpu():
    G32 = randomize_(tiny_generator(num_fp16_res=2, conv_clamp=256)).eval()
    G16 = tiny_generator(num_fp16_res=2, conv_clamp=256, fp16_channels_last=True).eval()
    G16.load_state_dict(G32.state_dict())
    G16.set_half_dtype("bfloat16")
    seen = _record_dtypes(G16, ["synthesis.b4.conv1", "synthesis.b8.conv1", "synthesis.b16.conv1"])
    z = torch.randn(2, TINY["z_dim"])
    img = G16(z, None, noise_mode="const")
    assert seen == {
        "synthesis.b4.conv1": torch.float32,
        "synthesis.b8.conv1": torch.bfloat16,
        "synthesis.b16.conv1": torch.bfloat16,
    }
    assert img.dtype == torch.float32
    assert_close(img, G32(z, None, noise_mode="const"), dtype=torch.bfloat16)
    # float16 blocks run in float32 on the CPU (no fast CPU float16 kernels).
    assert torch.equal(
        G32.set_half_dtype("float16")(z, None, noise_mode="const"),
        G32(z, None, noise_mode="const", force_fp32=True),
    )

    D = randomize_(tiny_discriminator(num_fp16_res=1, conv_clamp=256)).set_half_dtype("bfloat16")
    seen = _record_dtypes(D, ["b16.conv1", "b8.conv1"])
    x = torch.randn(4, 3, 16, 16)
    out = D(x, None)
    assert seen == {"b16.conv1": torch.bfloat16, "b8.conv1": torch.float32}
    assert out.dtype == torch.float32
    assert_close(out, D(x, None, force_fp32=True), dtype=torch.bfloat16)


def test_freeze_layers_turns_leading_layers_into_buffers():
    D = tiny_discriminator(block_kwargs=dict(freeze_layers=2))
    names = {n for n, _ in D.named_parameters()}
    assert "b16.fromrgb.weight" not in names and "b16.conv0.weight" not in names
    assert "b16.conv1.weight" in names
    assert "b16.fromrgb.weight" in D.state_dict()


# ---------------------------------------------------------------------------------------------
# Errors


def test_bad_inputs_raise_clear_errors():
    G = tiny_generator(c_dim=2)
    D = tiny_discriminator()
    z, c = torch.randn(2, TINY["z_dim"]), torch.randn(2, 2)
    with pytest.raises(ValueError, match=r"z must have shape \[N, 8\]"):
        G(torch.randn(2, 5), c)
    with pytest.raises(TypeError, match="c must be a torch.Tensor"):
        G(z, None)
    with pytest.raises(ValueError, match=r"c must have shape \[2, 2\]"):
        G(z, torch.randn(3, 2))
    with pytest.raises(ValueError, match="noise_mode must be one of"):
        G(z, c, noise_mode="fixed")
    with pytest.raises(ValueError, match=r"truncation_cutoff must be in \[0, 6\]"):
        G(z, c, truncation_psi=0.5, truncation_cutoff=7)
    with pytest.raises(ValueError, match=r"ws must have shape \[N, 6, 8\]"):
        G.synthesis(torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match=r"img must have shape \[N, 3, 16, 16\]"):
        D(torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match="impl must be one of"):
        G.set_impl("fast")
    with pytest.raises(ValueError, match="half_dtype must be one of"):
        G.set_half_dtype("float8")
    with pytest.raises(ValueError, match="img_resolution must be a power of two"):
        tiny_generator(resolution=20)
    with pytest.raises(ValueError, match="architecture must be one of"):
        tiny_generator(architecture="unet")
    with pytest.raises(ValueError, match="config name must be one of"):
        get_config("config-z")
    with pytest.raises(ValueError, match="resolution must be a power of two"):
        get_config("tiny", resolution=48)
    with pytest.raises(ValueError, match="the auto config needs the resolution"):
        get_config("auto")


def test_noise_modes_and_copies():
    G = randomize_(tiny_generator()).eval()
    z = torch.randn(2, TINY["z_dim"])
    silent = tiny_generator().eval()
    silent.load_state_dict(G.state_dict())
    with torch.no_grad():
        for name, p in silent.named_parameters():
            if name.endswith("noise_strength"):
                p.zero_()
    assert_close(G(z, None, noise_mode="none"), silent(z, None, noise_mode="const"))
    a, b = G(z, None, noise_mode="random"), G(z, None, noise_mode="random")
    assert not torch.allclose(a, b)  # fresh noise each call
    # Deep copies (EMA) and state-dict round trips into a network of the same configuration.
    twin = copy.deepcopy(G)
    assert torch.equal(twin(z, None, noise_mode="const"), G(z, None, noise_mode="const"))
    fresh = tiny_generator().eval()
    fresh.load_state_dict(G.state_dict())
    assert torch.equal(fresh(z, None, noise_mode="const"), G(z, None, noise_mode="const"))


@pytest.mark.cuda
@pytest.mark.parametrize("impl", ["ref", "auto"])
def test_cuda_float16_blocks_track_float32(impl):
    G = randomize_(tiny_generator(num_fp16_res=2, conv_clamp=256)).cuda().eval().set_impl(impl)
    D = randomize_(tiny_discriminator(num_fp16_res=2, conv_clamp=256)).cuda().set_impl(impl)
    seen = _record_dtypes(G, ["synthesis.b4.conv1", "synthesis.b16.conv1"])
    z = torch.randn(4, TINY["z_dim"], device="cuda")
    with contextlib.ExitStack() as stack:
        if impl == "auto":  # the CUDA backend, no fallback (else ref would meet ref)
            stack.enter_context(assert_backend_ran("modulated_conv2d", "cuda"))
        img = G(z, None, noise_mode="const")
    assert seen == {"synthesis.b4.conv1": torch.float32, "synthesis.b16.conv1": torch.float16}
    assert img.dtype == torch.float32 and torch.isfinite(img).all()
    # Half precision through a few layers stays within the coarsest (bfloat16) tolerance.
    assert_close(img, G(z, None, noise_mode="const", force_fp32=True), dtype=torch.bfloat16)
    logits = D(img, None)
    assert_close(logits, D(img, None, force_fp32=True), dtype=torch.bfloat16)
    logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in D.parameters())
