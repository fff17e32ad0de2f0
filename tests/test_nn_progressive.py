"""Progressive growing helpers: nearest/box resampling equal the torch ops, fade-in blending
at alpha 0, 0.5 and 1, level and alpha checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from testutils import assert_close

from gankern.nn import box_downsample, fade_in, nearest_upsample
from gankern.nn.progressive import check_alpha, check_level


@pytest.mark.parametrize("impl", ["ref", "auto"])
@pytest.mark.parametrize("factor", [1, 2, 4])
def test_nearest_and_box_resampling_equal_the_torch_ops(factor, impl):
    x = torch.randn(2, 3, 8, 12)
    up = nearest_upsample(x, factor, impl=impl)
    assert torch.equal(up, F.interpolate(x, scale_factor=factor, mode="nearest"))
    down = box_downsample(x, factor, impl=impl)
    assert_close(down, F.avg_pool2d(x, factor))


def test_box_downsample_needs_divisible_sizes():
    with pytest.raises(ValueError, match="divisible by factor=2"):
        box_downsample(torch.randn(1, 1, 5, 4))


def test_fade_in_at_alpha_0_half_and_1():
    new = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    old = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    # The upsampled lower level written out: each old pixel covers a 2x2 block.
    old_up = old.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    assert torch.equal(fade_in(new, old, 0.0), old_up)
    assert torch.equal(fade_in(new, old, 1.0), new)
    assert_close(fade_in(new, old, 0.5), (new + old_up) / 2)
    assert_close(fade_in(new, old, 0.25), 0.25 * new + 0.75 * old_up)
    # Same resolution (the discriminator's features): a plain blend.
    same = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    assert_close(fade_in(new, same, 0.5), (new + same) / 2)
    assert torch.equal(fade_in(new, same, torch.tensor(0.0)), same)


def test_fade_in_is_continuous_in_alpha():
    new = torch.randn(1, 2, 8, 8, dtype=torch.float64)
    old = torch.randn(1, 2, 4, 4, dtype=torch.float64)
    eps = 1e-9
    assert (fade_in(new, old, eps) - fade_in(new, old, 0.0)).abs().max() < 1e-8
    assert (fade_in(new, old, 1 - eps) - fade_in(new, old, 1.0)).abs().max() < 1e-8


def test_fade_in_errors():
    new = torch.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        fade_in(new, torch.randn(2, 3, 4, 4), 1.5)
    with pytest.raises(TypeError, match="alpha"):
        fade_in(new, torch.randn(2, 3, 4, 4), "half")
    with pytest.raises(ValueError, match="old must have shape"):
        fade_in(new, torch.randn(2, 3, 3, 3), 0.5)
    with pytest.raises(ValueError, match="old must have shape"):
        fade_in(new, torch.randn(2, 4, 4, 4), 0.5)


def test_level_checks():
    assert check_level(None, 3) == 3
    assert check_level(2, 3) == 2
    with pytest.raises(ValueError, match=r"level must be in \[0, 3\]"):
        check_level(4, 3)
    with pytest.raises(TypeError, match="level"):
        check_level(1.0, 3)
    assert check_alpha(torch.tensor(0.25)) == 0.25
