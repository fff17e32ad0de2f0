"""Pretrained-weight conversion: official StyleGAN2-ADA / StyleGAN3 pickles (read without
running pickled code) and rosinality checkpoints reproduce the source networks' outputs.

The source states are built here from the published key layouts (names and shapes written out
below, filled with random tensors), saved in the source's file format, converted, and the
converted networks are compared with independent functional forward passes over the source
states (tests/stylegan2_reference.py).
"""

from __future__ import annotations

import argparse
import collections
import io
import math
import pickle
import sys
import types

import numpy as np
import pytest
import torch
from stylegan2_reference import (
    ada_discriminator,
    ada_generator,
    fir,
    rosinality_discriminator,
    rosinality_generator,
)
from testutils import assert_close

from gankern.models import load_rosinality_checkpoint, load_stylegan2_pkl
from gankern.models.safe_pickle import PickledModule, UnsafePickleError, read_network_pickle

RES, Z, W, IMG = 16, 8, 8, 3
CH = {4: 8, 8: 8, 16: 4}  # min(64 // res, 8)
BUFFERS = ("w_avg", "noise_const", "resample_filter")


# ---------------------------------------------------------------------------------------------
# StyleGAN2-ADA key layout (training/networks.py)


def ada_generator_layout(c_dim: int, mapping_layers: int, architecture: str) -> dict:
    """name -> shape of a StyleGAN2-ADA Generator's parameters and buffers."""
    shapes = {}
    embed = W if c_dim else 0
    if c_dim:
        shapes["mapping.embed.weight"], shapes["mapping.embed.bias"] = [embed, c_dim], [embed]
    for i in range(mapping_layers):
        shapes[f"mapping.fc{i}.weight"] = [W, Z + embed if i == 0 else W]
        shapes[f"mapping.fc{i}.bias"] = [W]
    shapes["mapping.w_avg"] = [W]

    def layer(name, cin, cout, res):
        shapes.update({
            f"{name}.weight": [cout, cin, 3, 3], f"{name}.bias": [cout],
            f"{name}.noise_const": [res, res], f"{name}.noise_strength": [],
            f"{name}.affine.weight": [cin, W], f"{name}.affine.bias": [cin],
            f"{name}.resample_filter": [4, 4],
        })  # fmt: skip

    def torgb(name, cin):
        shapes.update({
            f"{name}.weight": [IMG, cin, 1, 1], f"{name}.bias": [IMG],
            f"{name}.affine.weight": [cin, W], f"{name}.affine.bias": [cin],
        })  # fmt: skip

    for res in (4, 8, 16):
        b = f"synthesis.b{res}"
        shapes[f"{b}.resample_filter"] = [4, 4]
        if res == 4:
            shapes[f"{b}.const"] = [CH[4], 4, 4]
        else:
            layer(f"{b}.conv0", CH[res // 2], CH[res], res)
        layer(f"{b}.conv1", CH[res], CH[res], res)
        if architecture == "skip" or res == RES:
            torgb(f"{b}.torgb", CH[res])
        if architecture == "resnet" and res > 4:
            shapes[f"{b}.skip.weight"] = [CH[res], CH[res // 2], 1, 1]
            shapes[f"{b}.skip.resample_filter"] = [4, 4]
    return shapes


def ada_discriminator_layout(c_dim: int, mapping_layers: int) -> dict:
    """name -> shape of a StyleGAN2-ADA resnet Discriminator's parameters and buffers."""
    shapes = {}
    for res in (16, 8):
        b, tmp, out = f"b{res}", CH[res], CH[res // 2]
        if res == RES:
            shapes[f"{b}.fromrgb.weight"], shapes[f"{b}.fromrgb.bias"] = [tmp, IMG, 1, 1], [tmp]
            shapes[f"{b}.fromrgb.resample_filter"] = [4, 4]
        shapes.update({
            f"{b}.resample_filter": [4, 4],
            f"{b}.conv0.weight": [tmp, tmp, 3, 3], f"{b}.conv0.bias": [tmp],
            f"{b}.conv0.resample_filter": [4, 4],
            f"{b}.conv1.weight": [out, tmp, 3, 3], f"{b}.conv1.bias": [out],
            f"{b}.conv1.resample_filter": [4, 4],
            f"{b}.skip.weight": [out, tmp, 1, 1], f"{b}.skip.resample_filter": [4, 4],
        })  # fmt: skip
    cmap = CH[4] if c_dim else 0
    if c_dim:
        shapes["mapping.embed.weight"], shapes["mapping.embed.bias"] = [cmap, c_dim], [cmap]
        for i in range(mapping_layers):
            shapes[f"mapping.fc{i}.weight"], shapes[f"mapping.fc{i}.bias"] = [cmap, cmap], [cmap]
    shapes.update({
        "b4.conv.weight": [CH[4], CH[4] + 1, 3, 3], "b4.conv.bias": [CH[4]],
        "b4.conv.resample_filter": [4, 4],
        "b4.fc.weight": [CH[4], CH[4] * 16], "b4.fc.bias": [CH[4]],
        "b4.out.weight": [cmap or 1, CH[4]], "b4.out.bias": [cmap or 1],
    })  # fmt: skip
    return shapes


def random_state(shapes: dict, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in shapes.items():
        leaf = name.rsplit(".", 1)[-1]
        t = torch.randn(shape, generator=g)
        if leaf == "resample_filter":
            t = fir().float()
        elif leaf in ("bias", "noise_strength"):
            t = 0.3 * t + (1.0 if ".affine." in name else 0.0)
        state[name] = t
    return state


# ---------------------------------------------------------------------------------------------
# Writing a pickle the way torch_utils.persistence does


@pytest.fixture
def official_modules(monkeypatch):
    """Stand-ins for ``torch_utils.persistence`` and ``dnnlib`` so pickle can name them."""
    persistence = types.ModuleType("torch_utils.persistence")
    dnnlib_util = types.ModuleType("dnnlib.util")

    def _reconstruct_persistent_obj(meta):  # never called: the test only writes pickles
        raise AssertionError("the reader must not call the pickled reconstruct function")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    easydict = type("EasyDict", (dict,), {"__module__": "dnnlib.util"})
    dnnlib_util.EasyDict = easydict
    monkeypatch.setitem(sys.modules, "torch_utils", types.ModuleType("torch_utils"))
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", persistence)
    monkeypatch.setitem(sys.modules, "dnnlib", types.ModuleType("dnnlib"))
    monkeypatch.setitem(sys.modules, "dnnlib.util", dnnlib_util)
    return types.SimpleNamespace(reconstruct=_reconstruct_persistent_obj, EasyDict=easydict)


class Persistent:
    """Pickles as ``_reconstruct_persistent_obj(meta)``, as persistent classes do."""

    def __init__(self, reconstruct, meta):
        self.reconstruct, self.meta = reconstruct, meta

    def __reduce__(self):
        return (self.reconstruct, (self.meta,))


def persistent_tree(mods, state, class_name, module_src, init_kwargs, attributes):
    """Nest a flat state dict into persistent module records, like nn.Module.__dict__."""
    nodes: dict = {}

    def node(path):
        if path not in nodes:
            nodes[path] = dict(params=collections.OrderedDict(), buffers=collections.OrderedDict(),
                               children=collections.OrderedDict())  # fmt: skip
            if path:
                parent, _, leaf = path.rpartition(".")
                node(parent)["children"][leaf] = path
        return nodes[path]

    for name, tensor in state.items():
        path, _, leaf = name.rpartition(".")
        n = node(path)
        if leaf in BUFFERS:
            n["buffers"][leaf] = tensor.clone()
        else:
            n["params"][leaf] = torch.nn.Parameter(tensor.clone())

    def build(path):
        n = nodes[path]
        module_state = {
            "training": False,
            "_parameters": n["params"],
            "_buffers": n["buffers"],
            "_non_persistent_buffers_set": set(),
            "_forward_hooks": collections.OrderedDict(),
            "_modules": collections.OrderedDict((k, build(v)) for k, v in n["children"].items()),
            "_init_args": (),
            "_init_kwargs": init_kwargs if path == "" else mods.EasyDict(),
            **attributes.get(path, {}),
        }
        name = class_name if path == "" else "Layer"
        meta = dict(
            type="class", version=6, module_src=module_src, class_name=name, state=module_state
        )
        return Persistent(mods.reconstruct, meta)

    return build("")


def layer_attributes(state, conv_clamp, use_fp16_res=()):
    """Some per-module attributes as the official classes store them (numpy scalars too)."""
    attrs = {}
    for name, tensor in state.items():
        path, _, leaf = name.rpartition(".")
        if path.endswith(".affine") and leaf == "weight":
            gain = np.float64(1 / math.sqrt(tensor.shape[1]))
            attrs[path] = {"weight_gain": gain, "bias_gain": 1, "activation": "linear"}
        if path.startswith("mapping.fc") and leaf == "weight":
            gain = np.float64(0.01 / math.sqrt(tensor.shape[1]))
            attrs[path] = {"weight_gain": gain, "bias_gain": 0.01, "activation": "lrelu"}
        if leaf == "noise_const":
            up = 2 if path.endswith("conv0") else 1
            attrs[path] = {"conv_clamp": conv_clamp, "use_noise": True, "up": up, "padding": 1}
        if path.startswith("synthesis.b") and path.count(".") == 1:
            res = int(path.split(".b")[1])
            attrs[path] = {"use_fp16": res in use_fp16_res, "resolution": res}
    return attrs


ADA_SRC = "# StyleGAN2-ADA training/networks.py\nclass Generator(torch.nn.Module): ...\n"
SG3_SRC = "# StyleGAN3 training/networks_stylegan2.py\ndef forward(self, update_emas=False): ...\n"


def write_official_pickle(mods, path, *, flavor="ada", c_dim=2, architecture="skip"):
    g_state = random_state(ada_generator_layout(c_dim, 2, architecture), seed=1)
    g_ema_state = random_state(ada_generator_layout(c_dim, 2, architecture), seed=2)
    d_state = random_state(ada_discriminator_layout(c_dim, 2), seed=3)
    E = mods.EasyDict
    if flavor == "ada":
        src, conv_clamp, fp16 = ADA_SRC, None, ()
        g_kwargs = E(z_dim=Z, c_dim=c_dim, w_dim=W, img_resolution=RES, img_channels=IMG,
                     mapping_kwargs=E(num_layers=2),
                     synthesis_kwargs=E(channel_base=64, channel_max=8, num_fp16_res=0,
                                        conv_clamp=None, architecture=architecture))  # fmt: skip
        d_kwargs = E(c_dim=c_dim, img_resolution=RES, img_channels=IMG, channel_base=64,
                     channel_max=8, num_fp16_res=0, conv_clamp=None,
                     block_kwargs=E(), mapping_kwargs=E(num_layers=2),
                     epilogue_kwargs=E(mbstd_group_size=4))  # fmt: skip
    else:  # StyleGAN3's stylegan2 networks: flat synthesis kwargs, other defaults
        src, conv_clamp, fp16 = SG3_SRC, 256, (8, 16)
        g_kwargs = E(z_dim=Z, c_dim=c_dim, w_dim=W, img_resolution=RES, img_channels=IMG,
                     mapping_kwargs=E(num_layers=2), channel_base=64, channel_max=8,
                     architecture=architecture, fused_modconv_default="inference_only")  # fmt: skip
        d_kwargs = E(c_dim=c_dim, img_resolution=RES, img_channels=IMG, channel_base=64,
                     channel_max=8, block_kwargs=E(), mapping_kwargs=E(num_layers=2),
                     epilogue_kwargs=E(mbstd_group_size=4))  # fmt: skip
    data = {
        name: persistent_tree(
            mods, state, cls, src, kwargs, layer_attributes(state, conv_clamp, fp16)
        )
        for name, state, cls, kwargs in (
            ("G", g_state, "Generator", g_kwargs),
            ("D", d_state, "Discriminator", d_kwargs),
            ("G_ema", g_ema_state, "Generator", g_kwargs),
        )
    }  # fmt: skip
    data["augment_pipe"] = persistent_tree(
        mods, {"p": torch.zeros([])}, "AugmentPipe", src, E(xflip=1), {}
    )
    data["training_set_kwargs"] = E(path="ffhq.zip", resolution=RES, xflip=True)
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return g_state, d_state, g_ema_state


def _float64(state):
    return {k: v.double() for k, v in state.items()}


@pytest.mark.parametrize("flavor, architecture", [("ada", "skip"), ("sg3", "resnet")])
def test_official_pickle_reproduces_source_outputs(
    official_modules, tmp_path, flavor, architecture
):
    path = tmp_path / "network-snapshot.pkl"
    g_state, d_state, g_ema_state = write_official_pickle(
        official_modules, path, flavor=flavor, architecture=architecture
    )
    nets = load_stylegan2_pkl(path, impl="ref")
    assert sorted(nets) == ["D", "G", "G_ema"]
    G, D = nets["G_ema"].double(), nets["D"].double()
    conv_clamp = 256 if flavor == "sg3" else None
    assert G.synthesis.b16.conv1.conv_clamp == conv_clamp
    assert G.synthesis.b16.use_fp16 == (flavor == "sg3")
    assert G.mapping.w_avg_beta == (0.998 if flavor == "sg3" else 0.995)

    z, c = torch.randn(3, Z, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    img = G(z, c, truncation_psi=0.6, truncation_cutoff=4, noise_mode="const")
    want = ada_generator(
        _float64(g_ema_state), z, c, resolution=RES, num_layers=2, architecture=architecture,
        conv_clamp=conv_clamp, psi=0.6, cutoff=4,
    )  # fmt: skip
    assert_close(img, want)
    imgs = torch.randn(4, IMG, RES, RES, dtype=torch.float64)
    c4 = torch.randn(4, 2, dtype=torch.float64)
    want = ada_discriminator(
        _float64(d_state), imgs, c4, resolution=RES, conv_clamp=conv_clamp, mapping_layers=2
    )
    assert_close(D(imgs, c4), want)
    # G (not EMA) holds its own tensors.
    assert torch.equal(nets["G"].synthesis.b8.conv0.weight, g_state["synthesis.b8.conv0.weight"])


def test_pickle_attributes_are_checked(official_modules, tmp_path):
    path = tmp_path / "net.pkl"
    write_official_pickle(official_modules, path)
    data = read_network_pickle(path)
    G = data["G"]
    assert isinstance(G, PickledModule) and G.class_name == "Generator"
    assert G.init_kwargs["synthesis_kwargs"]["channel_base"] == 64
    # The layers say conv_clamp=256, the constructor arguments say None: refuse.
    from gankern.models.convert_ada import convert_pickled_network

    for _, module in G.named_modules():
        if "conv_clamp" in module.attributes:
            module.attributes["conv_clamp"] = 256
    with pytest.raises(ValueError, match=r"conv_clamp: the pickle has 256"):
        convert_pickled_network(G)
    G = read_network_pickle(path)["G"]
    G.module_src += "\nclass SynthesisInput(torch.nn.Module): ..."
    with pytest.raises(ValueError, match="StyleGAN3 \\(alias-free"):
        convert_pickled_network(G)


def test_restricted_unpickler_runs_no_pickled_code(tmp_path):
    marker = tmp_path / "pwned"
    evil = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()
    with pytest.raises(UnsafePickleError, match="refusing to load os.system"):
        read_network_pickle(io.BytesIO(evil))
    assert not marker.exists()
    evil_eval = b"cbuiltins\neval\n(S'1+1'\ntR."
    with pytest.raises(UnsafePickleError, match="builtins.eval"):
        read_network_pickle(io.BytesIO(evil_eval))
    tf_pickle = b"\x80\x04cdnnlib.tflib.network\nNetwork\n)\x81."
    with pytest.raises(UnsafePickleError, match="dnnlib.tflib.network.Network"):
        read_network_pickle(io.BytesIO(tf_pickle))
    with pytest.raises(ValueError, match="expected a network pickle holding a dict"):
        read_network_pickle(io.BytesIO(pickle.dumps([1, 2])))


# ---------------------------------------------------------------------------------------------
# rosinality/stylegan2-pytorch key layout (model.py)


def rosinality_generator_layout(n_mlp: int) -> dict:
    shapes = {}
    for i in range(1, n_mlp + 1):
        shapes[f"style.{i}.weight"], shapes[f"style.{i}.bias"] = [W, W], [W]
    shapes["input.input"] = [1, CH[4], 4, 4]

    def styled_conv(name, cin, cout, upsample):
        shapes.update({
            f"{name}.conv.weight": [1, cout, cin, 3, 3],
            f"{name}.conv.modulation.weight": [cin, W], f"{name}.conv.modulation.bias": [cin],
            f"{name}.noise.weight": [1], f"{name}.activate.bias": [cout],
        })  # fmt: skip
        if upsample:
            shapes[f"{name}.conv.blur.kernel"] = [4, 4]

    def to_rgb(name, cin, upsample):
        shapes.update({
            f"{name}.conv.weight": [1, 3, cin, 1, 1],
            f"{name}.conv.modulation.weight": [cin, W], f"{name}.conv.modulation.bias": [cin],
            f"{name}.bias": [1, 3, 1, 1],
        })  # fmt: skip
        if upsample:
            shapes[f"{name}.upsample.kernel"] = [4, 4]

    styled_conv("conv1", CH[4], CH[4], False)
    to_rgb("to_rgb1", CH[4], False)
    for k, res in enumerate((8, 16)):
        styled_conv(f"convs.{2 * k}", CH[res // 2], CH[res], True)
        styled_conv(f"convs.{2 * k + 1}", CH[res], CH[res], False)
        to_rgb(f"to_rgbs.{k}", CH[res], True)
    for j in range(5):  # (log_size - 2) * 2 + 1 noise buffers
        res = 2 ** ((j + 5) // 2)
        shapes[f"noises.noise_{j}"] = [1, 1, res, res]
    return shapes


def rosinality_discriminator_layout() -> dict:
    shapes = {"convs.0.0.weight": [CH[16], 3, 1, 1], "convs.0.1.bias": [CH[16]]}
    for k, res in enumerate((16, 8), start=1):
        cin, cout = CH[res], CH[res // 2]
        shapes.update({
            f"convs.{k}.conv1.0.weight": [cin, cin, 3, 3], f"convs.{k}.conv1.1.bias": [cin],
            f"convs.{k}.conv2.0.kernel": [4, 4], f"convs.{k}.conv2.1.weight": [cout, cin, 3, 3],
            f"convs.{k}.conv2.2.bias": [cout],
            f"convs.{k}.skip.0.kernel": [4, 4], f"convs.{k}.skip.1.weight": [cout, cin, 1, 1],
        })  # fmt: skip
    shapes.update({
        "final_conv.0.weight": [CH[4], CH[4] + 1, 3, 3], "final_conv.1.bias": [CH[4]],
        "final_linear.0.weight": [CH[4], CH[4] * 16], "final_linear.0.bias": [CH[4]],
        "final_linear.1.weight": [1, CH[4]], "final_linear.1.bias": [1],
    })  # fmt: skip
    return shapes


def rosinality_state(shapes: dict, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in shapes.items():
        t = torch.randn(shape, generator=g)
        if name.endswith("kernel"):
            # make_kernel([1, 3, 3, 1]), times factor**2 for the upsampling ones
            t = fir().float() * (4 if ("blur" in name or "upsample" in name) else 1)
        elif name.endswith(("bias", "noise.weight")):
            t = 0.3 * t + (1.0 if "modulation" in name else 0.0)
        state[name] = t
    return state


def test_rosinality_checkpoint_reproduces_source_outputs(tmp_path):
    g_ema = rosinality_state(rosinality_generator_layout(n_mlp=2), seed=4)
    d = rosinality_state(rosinality_discriminator_layout(), seed=5)
    latent_avg = torch.randn(W)
    path = tmp_path / "550000.pt"
    ckpt = {"g_ema": g_ema, "d": d, "latent_avg": latent_avg, "args": argparse.Namespace(size=16)}
    torch.save(ckpt, path)

    nets = load_rosinality_checkpoint(path, lr_mlp=0.01, impl="ref")
    assert sorted(nets) == ["D", "G_ema"]
    G, D = nets["G_ema"].double(), nets["D"].double()
    assert (G.img_resolution, G.num_ws, D.img_resolution) == (16, 6, 16)
    s64 = _float64(g_ema)
    z = torch.randn(3, W, dtype=torch.float64)
    for psi in (1.0, 0.6):
        img = G(z, None, truncation_psi=psi, noise_mode="const")
        want = rosinality_generator(s64, z, n_mlp=2, truncation=psi, latent_avg=latent_avg.double())
        # rosinality (like the TensorFlow original) adds demodulation's epsilon 1e-8 to the
        # sum of squares of the weight *after* its 1/sqrt(fan_in) scale, StyleGAN2-ADA before
        # it: a relative difference of ~1e-8, below float32 resolution, hence float32's
        # tolerance for this float64 comparison.
        assert_close(img, want, dtype=torch.float32)
    imgs = torch.randn(8, 3, 16, 16, dtype=torch.float64)
    assert_close(D(imgs), rosinality_discriminator(_float64(d), imgs))


def test_rosinality_without_latent_avg_estimates_w_avg(tmp_path):
    g = rosinality_state(rosinality_generator_layout(n_mlp=2), seed=6)
    path = tmp_path / "g.pt"
    torch.save({"g": g}, path)
    G = load_rosinality_checkpoint(path, impl="ref")["G"]
    ws = G.mapping(torch.randn(8192, W), None)[:, 0]
    spread = ws.std(dim=0).max()
    assert (G.mapping.w_avg - ws.mean(dim=0)).abs().max() < 0.1 * spread


def test_rosinality_errors(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"model": {"w": torch.zeros(1)}}, path)
    with pytest.raises(ValueError, match="no g_ema, g or d state dict"):
        load_rosinality_checkpoint(path)
    bad = rosinality_state(rosinality_generator_layout(n_mlp=2), seed=7)
    del bad["noises.noise_3"]
    torch.save({"g_ema": bad}, path)
    with pytest.raises(ValueError, match="noises.noise_3"):
        load_rosinality_checkpoint(path)
