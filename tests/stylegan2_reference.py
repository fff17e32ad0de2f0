"""Independent functional StyleGAN2 forward passes over source state dicts, for the tests.

Written from the published semantics, sample by sample, with plain ``torch.nn.functional``
and none of gankern's code:

* :func:`ada_generator` / :func:`ada_discriminator`: StyleGAN2-ADA's networks over its state
  dict names. Resampling follows conv2d_resample's definition literally: zero insertion,
  padding, FIR filter, then the convolution (flipped kernel for the upsampling conv), then
  FIR filter and decimation.
* :func:`rosinality_generator` / :func:`rosinality_discriminator`: rosinality's
  stylegan2-pytorch over its state dict names, in its own formulation: transposed
  convolution followed by a blur for upsampling, blur then strided convolution for
  downsampling, ``(out + skip) / sqrt(2)`` residuals, ``var(unbiased=False)`` minibatch std.

Everything runs in float64.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2)


def lrelu(x, gain=SQRT2):
    return F.leaky_relu(x, 0.2) * gain


def fir(taps=(1, 3, 3, 1)) -> torch.Tensor:
    k = torch.tensor(taps, dtype=torch.float64)
    k = torch.outer(k, k)
    return k / k.sum()


def zero_insert(x, factor=2):
    n, c, h, w = x.shape
    y = x.new_zeros([n, c, h * factor, w * factor])
    y[:, :, ::factor, ::factor] = x
    return y


def filt(x, pad0, pad1, gain=1.0):
    """Pad (pad0 before, pad1 after, both axes), then a true convolution with the FIR."""
    x = F.pad(x, [pad0, pad1, pad0, pad1])
    k = (fir() * gain).flip([0, 1]).to(x)
    c = x.shape[1]
    return F.conv2d(x, k[None, None].repeat(c, 1, 1, 1), groups=c)


def dense(state, name, x, lr=1.0, act=False):
    w, b = state[f"{name}.weight"], state[f"{name}.bias"]
    y = x @ (w * (lr / math.sqrt(w.shape[1]))).t() + b * lr
    return lrelu(y) if act else y


def pixel_norm(x):
    return x / (x.square().mean(dim=1, keepdim=True) + 1e-8).sqrt()


def clamp(x, value):
    return x if value is None else x.clamp(-value, value)


def mbstd_groups(x, group_size):
    """Minibatch std by an explicit loop: sample i's group is {j : j % (N/G) == i % (N/G)}."""
    n = x.shape[0]
    g = min(group_size, n)
    m = n // g
    stds = []
    for i in range(n):
        members = x[[i % m + k * m for k in range(g)]]
        var = ((members - members.mean(dim=0)) ** 2).mean(dim=0)
        stds.append((var + 1e-8).sqrt().mean())
    y = torch.stack(stds).reshape(n, 1, 1, 1).expand(n, 1, *x.shape[2:])
    return torch.cat([x, y], dim=1)


# --------------------------------------------------------------------------------------------
# StyleGAN2-ADA layout


def _ada_modconv(x, weight, styles, demodulate, up):
    outs = []
    for n in range(x.shape[0]):
        w = weight * styles[n].reshape(1, -1, 1, 1)
        if demodulate:
            w = w / (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        xi = x[n : n + 1]
        if up:
            # conv2d_resample, up=2, padding 1, 4-tap filter: pads (3, 2), gain 4, then a true
            # convolution (flip_weight=False) without padding.
            xi = filt(zero_insert(xi), 3, 2, gain=4.0)
            xi = F.conv2d(xi, w.flip([2, 3]))
        else:
            xi = F.conv2d(xi, w, padding=w.shape[-1] // 2)
        outs.append(xi)
    return torch.cat(outs)


def _ada_layer(s, name, x, w, up, clamp_value, gain=1.0):
    styles = dense(s, f"{name}.affine", w)
    y = _ada_modconv(x, s[f"{name}.weight"], styles, demodulate=True, up=up)
    y = y + s[f"{name}.noise_const"] * s[f"{name}.noise_strength"]
    y = lrelu(y + s[f"{name}.bias"].reshape(1, -1, 1, 1), gain=SQRT2 * gain)
    return clamp(y, None if clamp_value is None else clamp_value * gain)


def _ada_torgb(s, name, x, w, clamp_value):
    weight = s[f"{name}.weight"]
    styles = dense(s, f"{name}.affine", w) / math.sqrt(weight.shape[1])
    y = _ada_modconv(x, weight, styles, demodulate=False, up=False)
    return clamp(y + s[f"{name}.bias"].reshape(1, -1, 1, 1), clamp_value)


def _ada_upsample_img(img):
    return filt(zero_insert(img), 2, 1, gain=4.0)


def ada_mapping(s, z, c, num_layers, num_ws, prefix="mapping", lr=0.01):
    parts = []
    if z is not None:
        parts.append(pixel_norm(z))
    if c is not None:
        parts.append(pixel_norm(dense(s, f"{prefix}.embed", c)))
    x = torch.cat(parts, dim=1)
    for i in range(num_layers):
        x = dense(s, f"{prefix}.fc{i}", x, lr=lr, act=True)
    return x if num_ws is None else x.unsqueeze(1).repeat(1, num_ws, 1)


def ada_generator(
    s, z, c, *, resolution, num_layers, architecture="skip", conv_clamp=None,
    psi=1.0, cutoff=None,
):  # fmt: skip
    """StyleGAN2-ADA ``Generator(z, c, psi, cutoff, noise_mode="const")`` over state ``s``."""
    log2 = int(math.log2(resolution))
    num_ws = 2 * log2 - 2
    ws = ada_mapping(s, z, c, num_layers, num_ws)
    if psi != 1:
        cut = num_ws if cutoff is None else cutoff
        avg = s["mapping.w_avg"]
        ws = torch.cat([avg + psi * (ws[:, :cut] - avg), ws[:, cut:]], dim=1)

    x = s["synthesis.b4.const"].unsqueeze(0).repeat(z.shape[0], 1, 1, 1)
    x = _ada_layer(s, "synthesis.b4.conv1", x, ws[:, 0], False, conv_clamp)
    img = None
    if architecture == "skip" or resolution == 4:
        img = _ada_torgb(s, "synthesis.b4.torgb", x, ws[:, 1], conv_clamp)
    for k, res in enumerate(2**i for i in range(3, log2 + 1)):
        b = f"synthesis.b{res}"
        i = 2 * k + 1
        if architecture == "resnet":
            skip = filt(zero_insert(F.conv2d(x, s[f"{b}.skip.weight"])), 2, 1, gain=4.0)
            skip = skip / math.sqrt(x.shape[1]) * math.sqrt(0.5)
            x = _ada_layer(s, f"{b}.conv0", x, ws[:, i], True, conv_clamp)
            x = _ada_layer(s, f"{b}.conv1", x, ws[:, i + 1], False, conv_clamp, gain=math.sqrt(0.5))
            x = skip + x
        else:
            x = _ada_layer(s, f"{b}.conv0", x, ws[:, i], True, conv_clamp)
            x = _ada_layer(s, f"{b}.conv1", x, ws[:, i + 1], False, conv_clamp)
        if img is not None:
            img = _ada_upsample_img(img)
        if architecture == "skip" or res == resolution:
            y = _ada_torgb(s, f"{b}.torgb", x, ws[:, i + 2], conv_clamp)
            img = y if img is None else img + y
    return img


def _ada_conv(s, name, x, act=True, gain=1.0, clamp_value=None, down=False, bias=True):
    w = s[f"{name}.weight"]
    w = w / math.sqrt(w[0].numel())
    k = w.shape[-1]
    if down:
        # conv2d_resample, down=2, padding k//2, 4-tap filter: pads k//2 + 1 on both sides,
        # the convolution, then filter and keep every second pixel.
        y = F.conv2d(F.pad(x, [k // 2 + 1] * 4), w)
        y = filt(y, 0, 0)[:, :, ::2, ::2]
    else:
        y = F.conv2d(x, w, padding=k // 2)
    if bias:
        y = y + s[f"{name}.bias"].reshape(1, -1, 1, 1)
    y = lrelu(y, gain=SQRT2 * gain) if act else y * gain
    return clamp(y, None if clamp_value is None else clamp_value * gain)


def ada_discriminator(
    s, img, c, *, resolution, architecture="resnet", conv_clamp=None, mbstd_group=4,
    mapping_layers=8,
):  # fmt: skip
    """StyleGAN2-ADA ``Discriminator(img, c)`` over state ``s``."""
    log2 = int(math.log2(resolution))
    x = None
    for res in (2**i for i in range(log2, 2, -1)):
        b = f"b{res}"
        if res == resolution or architecture == "skip":
            y = _ada_conv(s, f"{b}.fromrgb", img, clamp_value=conv_clamp)
            x = y if x is None else x + y
            if architecture == "skip":
                img = filt(img, 1, 1)[:, :, ::2, ::2]
        if architecture == "resnet":
            skip = _ada_conv(
                s, f"{b}.skip", x, act=False, gain=math.sqrt(0.5), down=True, bias=False
            )
            x = _ada_conv(s, f"{b}.conv0", x, clamp_value=conv_clamp)
            x = _ada_conv(
                s, f"{b}.conv1", x, gain=math.sqrt(0.5), clamp_value=conv_clamp, down=True
            )
            x = skip + x
        else:
            x = _ada_conv(s, f"{b}.conv0", x, clamp_value=conv_clamp)
            x = _ada_conv(s, f"{b}.conv1", x, clamp_value=conv_clamp, down=True)
    if architecture == "skip":
        x = x + _ada_conv(s, "b4.fromrgb", img)
    x = mbstd_groups(x, mbstd_group)
    x = _ada_conv(s, "b4.conv", x, clamp_value=conv_clamp)
    x = dense(s, "b4.fc", x.flatten(1), act=True)
    x = dense(s, "b4.out", x)
    if c is not None:
        cmap = ada_mapping(s, None, c, mapping_layers, None)
        x = (x * cmap).sum(dim=1, keepdim=True) / math.sqrt(cmap.shape[1])
    return x


# --------------------------------------------------------------------------------------------
# rosinality layout


def _ros_modconv(s, name, x, w, demodulate, upsample):
    weight = s[f"{name}.conv.weight"][0]
    scale = 1 / math.sqrt(weight[0].numel())
    style = dense(s, f"{name}.conv.modulation", w)
    outs = []
    for n in range(x.shape[0]):
        wn = scale * weight * style[n].reshape(1, -1, 1, 1)
        if demodulate:
            wn = wn * (wn.pow(2).sum(dim=[1, 2, 3], keepdim=True) + 1e-8).rsqrt()
        xi = x[n : n + 1]
        if upsample:
            xi = F.conv_transpose2d(xi, wn.transpose(0, 1), stride=2, padding=0)
            xi = filt(xi, 1, 1, gain=4.0)  # Blur(pad=(1, 1), upsample_factor=2)
        else:
            xi = F.conv2d(xi, wn, padding=wn.shape[-1] // 2)
        outs.append(xi)
    return torch.cat(outs)


def _ros_styled_conv(s, name, x, w, noise, upsample):
    out = _ros_modconv(s, name, x, w, True, upsample)
    out = out + s[f"{name}.noise.weight"] * noise
    return lrelu(out + s[f"{name}.activate.bias"].reshape(1, -1, 1, 1))


def _ros_to_rgb(s, name, x, w, skip):
    out = _ros_modconv(s, name, x, w, False, False) + s[f"{name}.bias"]
    if skip is not None:
        out = out + filt(zero_insert(skip), 2, 1, gain=4.0)  # Upsample: pad (2, 1), kernel * 4
    return out


def rosinality_generator(s, z, *, n_mlp, lr_mlp=0.01, truncation=1.0, latent_avg=None):
    """rosinality ``Generator([z], truncation, truncation_latent, randomize_noise=False)``."""
    style = pixel_norm(z)
    for i in range(1, n_mlp + 1):
        style = dense(s, f"style.{i}", style, lr=lr_mlp, act=True)
    if truncation < 1:
        style = latent_avg + truncation * (style - latent_avg)
    num_up = sum(1 for k in s if k.startswith("to_rgbs.") and k.endswith(".conv.weight"))
    n_latent = 2 * (num_up + 2) - 2
    latent = style.unsqueeze(1).repeat(1, n_latent, 1)
    out = s["input.input"].repeat(z.shape[0], 1, 1, 1)
    out = _ros_styled_conv(s, "conv1", out, latent[:, 0], s["noises.noise_0"], False)
    skip = _ros_to_rgb(s, "to_rgb1", out, latent[:, 1], None)
    i = 1
    for k in range(num_up):
        out = _ros_styled_conv(s, f"convs.{2 * k}", out, latent[:, i], s[f"noises.noise_{i}"], True)
        out = _ros_styled_conv(
            s, f"convs.{2 * k + 1}", out, latent[:, i + 1], s[f"noises.noise_{i + 1}"], False
        )
        skip = _ros_to_rgb(s, f"to_rgbs.{k}", out, latent[:, i + 2], skip)
        i += 2
    return skip


def _ros_conv_layer(s, name, x, downsample, activate=True, bias=True):
    # ConvLayer: [Blur] + EqualConv2d (+ FusedLeakyReLU); the indices shift with the Blur.
    i = 0
    k = s[f"{name}.{1 if downsample else 0}.weight"].shape[-1]
    if downsample:
        p = 2 + (k - 1)
        x = filt(x, (p + 1) // 2, p // 2)
        i = 1
    w = s[f"{name}.{i}.weight"]
    x = F.conv2d(x, w / math.sqrt(w[0].numel()), stride=2 if downsample else 1,
                 padding=0 if downsample else k // 2)  # fmt: skip
    if activate:
        x = lrelu(x + s[f"{name}.{i + 1}.bias"].reshape(1, -1, 1, 1))
    return x


def rosinality_discriminator(s, img):
    """rosinality ``Discriminator(img)``."""
    out = _ros_conv_layer(s, "convs.0", img, False)
    k = 1
    while f"convs.{k}.conv1.0.weight" in s:
        x = _ros_conv_layer(s, f"convs.{k}.conv1", out, False)
        x = _ros_conv_layer(s, f"convs.{k}.conv2", x, True)
        skip = _ros_conv_layer(s, f"convs.{k}.skip", out, True, activate=False, bias=False)
        out = (x + skip) / SQRT2
        k += 1
    batch, channel, height, width = out.shape
    group = min(batch, 4)
    std = out.view(group, -1, 1, channel, height, width)
    std = torch.sqrt(std.var(0, unbiased=False) + 1e-8).mean([2, 3, 4], keepdim=True).squeeze(2)
    out = torch.cat([out, std.repeat(group, 1, height, width)], 1)
    out = _ros_conv_layer(s, "final_conv", out, False)
    out = dense(s, "final_linear.0", out.view(batch, -1), act=True)
    return dense(s, "final_linear.1", out)
