"""DiffAugment: each policy against an explicit construction (slicing, loops, least squares)."""

import pytest
import torch

from gankern.train.augment import diff_augment


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _images(n, c, h, w, seed=1):
    # Values in [0.1, 1]: never 0, so zeroed pixels are recognizable.
    return torch.rand(n, c, h, w, generator=_gen(seed)) * 0.9 + 0.1


def _shifted(img, tx, ty):
    """``img`` [C, H, W] moved tx right and ty down, zeros where nothing comes in."""
    out = torch.zeros_like(img)
    _, h, w = img.shape
    for i in range(h):
        for j in range(w):
            si, sj = i - ty, j - tx
            if 0 <= si < h and 0 <= sj < w:
                out[:, i, j] = img[:, si, sj]
    return out


def test_empty_policy_is_identity():
    x = _images(2, 3, 8, 8)
    assert torch.equal(diff_augment(x, "", generator=_gen()), x)


def test_translation_shifts_content_with_zero_fill():
    x = _images(12, 2, 8, 16)
    out = diff_augment(x, "translation", generator=_gen())
    shifts = []
    for n in range(12):
        # Shifts reach round(size / 8): 1 row, 2 columns.
        matches = [
            (tx, ty)
            for tx in range(-2, 3)
            for ty in range(-1, 2)
            if torch.equal(out[n], _shifted(x[n], tx, ty))
        ]
        assert len(matches) == 1, (n, matches)
        shifts.append(matches[0])
    assert len(set(shifts)) > 3 and any(s != (0, 0) for s in shifts)


def test_cutout_zeroes_one_square():
    x = _images(16, 3, 8, 10)
    out = diff_augment(x, "cutout", generator=_gen())
    full = 0
    for n in range(16):
        zero = (out[n] == 0).all(dim=0)  # [H, W]
        assert torch.equal(out[n][:, ~zero], x[n][:, ~zero])
        rows = zero.any(dim=1).nonzero()[:, 0]
        cols = zero.any(dim=0).nonzero()[:, 0]
        assert len(rows) > 0 and len(cols) > 0
        # A solid axis-aligned rectangle of at most half the image per side.
        assert int(zero.sum()) == len(rows) * len(cols)
        assert rows.max() - rows.min() + 1 == len(rows) and cols.max() - cols.min() + 1 == len(cols)
        assert len(rows) <= 4 and len(cols) <= 5
        full += len(rows) == 4 and len(cols) == 5
    assert full > 0  # squares away from the borders are not clipped


def test_color_on_gray_is_an_affine_map_per_sample():
    x = _images(32, 1, 6, 6)
    out = diff_augment(x, "color", generator=_gen())
    for n in range(32):
        design = torch.stack([x[n].flatten(), torch.ones(36)], dim=1).double()
        coef = torch.linalg.lstsq(design, out[n].flatten().double()[:, None]).solution[:, 0]
        torch.testing.assert_close(design @ coef, out[n].flatten().double(), rtol=0, atol=1e-5)
        # Saturation does nothing on one channel; the contrast factor is in [0.5, 1.5).
        assert 0.5 - 1e-5 <= float(coef[0]) < 1.5 + 1e-5


def test_color_on_rgb_scales_chroma_per_sample_and_shifts_the_mean():
    x = _images(32, 3, 6, 6)
    out = diff_augment(x, "color", generator=_gen())
    shift = out.mean(dim=(1, 2, 3)) - x.mean(dim=(1, 2, 3))  # brightness only moves the mean
    assert (shift.abs() <= 0.5 + 1e-5).all() and shift.std() > 0.1
    chroma_in = x - x.mean(dim=1, keepdim=True)
    chroma_out = out - out.mean(dim=1, keepdim=True)
    ratio = (chroma_out * chroma_in).sum(dim=(1, 2, 3)) / chroma_in.square().sum(dim=(1, 2, 3))
    torch.testing.assert_close(chroma_out, chroma_in * ratio.view(-1, 1, 1, 1), rtol=0, atol=1e-5)
    assert (ratio >= 0).all() and (ratio < 3).all()  # saturation U(0, 2) x contrast U(0.5, 1.5)


def test_gradients_and_determinism():
    x = _images(2, 3, 8, 8).double().requires_grad_()
    policy = "color,translation,cutout"
    assert torch.autograd.gradcheck(
        lambda t: diff_augment(t, policy, generator=_gen(3)), (x,), fast_mode=True
    )
    assert torch.equal(diff_augment(x, policy, _gen(4)), diff_augment(x, policy, _gen(4)))
    assert not torch.equal(diff_augment(x, policy, _gen(4)), diff_augment(x, policy, _gen(5)))
    torch.manual_seed(3)
    first = diff_augment(x, policy)
    torch.manual_seed(3)
    assert torch.equal(diff_augment(x, policy), first)
    assert first.shape == x.shape and first.dtype == x.dtype


def test_bad_arguments():
    x = _images(1, 3, 8, 8)
    with pytest.raises(ValueError, match="unknown: \\['colour'\\]"):
        diff_augment(x, "colour,cutout")
    with pytest.raises(TypeError, match="policy"):
        diff_augment(x, ["color"])
    with pytest.raises(ValueError, match="x must have 4 dimensions"):
        diff_augment(x[0], "color")
    with pytest.raises(TypeError, match="generator"):
        diff_augment(x, "color", generator=1)
