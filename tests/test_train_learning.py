"""The models really learn: short fixed-seed CPU runs on the built-in digits (16x16, one
thread) bring ``fid_digits`` far below the untrained generator's, and a conditional model
draws the requested class.

Each threshold sits beside the value measured on the CI's CPU build of torch 2.13 (the runs
are deterministic for a given torch build); the margins allow for other builds. The same
runs break when the objective is wrong: a flipped generator loss, for one, leaves the
ratio near or above 1.
"""

from __future__ import annotations

import pytest
from learning import class_accuracy, train_and_score

# A StyleGAN2 sized for a CPU test: 32 feature maps at most, 32-d latents.
STYLEGAN2_SMALL = {
    "cfg": "tiny",
    "extra": {"G": {"channel_base": 256, "channel_max": 32, "z_dim": 32, "w_dim": 32},
              "D": {"channel_base": 256, "channel_max": 32}},
}

# model, kimg, options, largest allowed fid_digits ratio trained / untrained (measured)
CASES = [
    ("gan", 30, {}, 0.55),  # measured 3670 -> 1500 (0.41)
    ("dcgan", 20, {}, 0.5),  # measured 3745 -> 1220 (0.33)
    ("lsgan", 20, {}, 0.3),  # measured 3744 -> 498 (0.13), batch 32
    ("stylegan2", 10, STYLEGAN2_SMALL, 0.6),  # measured 1923 -> 808 (0.42)
    ("wgan-gp", 20, {}, 0.5),  # measured 3744 -> 1082 (0.29)
    ("wgan", 20, {}, 0.6),  # measured 3744 -> 1497 (0.40)
    # SNGAN's ResNets at 32 px (at 16 px their 2x2 bottom learned nothing), batch 16.
    ("sngan", 12, {"resolution": 32}, 0.7),  # measured 1498 -> 682 (0.46)
    # Progressive growing: 4, 8 and 16 px, each trained and faded in over 0.6k (ProGAN) or
    # 1k (StyleGAN) images, then the full resolution.
    # Measured on a loaded CI machine: about 45 s of training (process time, one thread).
    ("progan", 8, {"model_options": {"schedule_scale": 0.15}}, 0.55),  # 1265 -> 503 (0.40)
    ("stylegan", 8, {"model_options": {"schedule_scale": 0.25}}, 0.6),  # 1028 -> 494 (0.48)
]


@pytest.mark.slow
@pytest.mark.parametrize("model, kimg, options, max_ratio", CASES,
                         ids=[case[0] for case in CASES])
def test_model_learns_the_digits(tmp_path, model, kimg, options, max_ratio):
    result = train_and_score(tmp_path, model, kimg, **options)
    print(f"{model}: fid_digits {result.fid_untrained:.0f} -> {result.fid_trained:.0f} "
          f"(ratio {result.ratio:.3f}) in {result.train_seconds:.1f} s")
    assert result.ratio < max_ratio, (
        f"{model}: fid_digits {result.fid_untrained:.0f} -> {result.fid_trained:.0f} "
        f"(ratio {result.ratio:.3f}, allowed {max_ratio}) in {result.train_seconds:.0f} s")


# model, kimg, options, largest fid_digits ratio, smallest class accuracy (measured; chance
# is 10%). Projection discriminators, conditional batch norm, BigGAN's shared embedding;
# about 45 s of training each (process time, one thread, on a loaded CI machine).
CONDITIONAL_CASES = [
    ("sagan", 12, {"cond": True}, 0.2, 0.5),  # measured 3684 -> 200 (0.054), 72%
    ("biggan", 12, {}, 0.35, 0.6),  # measured 1354 -> 218 (0.161), 87%
]


@pytest.mark.slow
@pytest.mark.parametrize("model, kimg, options, max_ratio, min_accuracy", CONDITIONAL_CASES,
                         ids=[case[0] for case in CONDITIONAL_CASES])
def test_projection_model_draws_the_requested_class(tmp_path, model, kimg, options, max_ratio,
                                                    min_accuracy):
    result = train_and_score(tmp_path, model, kimg, **options)
    accuracy = class_accuracy(result.run_dir)
    summary = (f"{model}: fid_digits {result.fid_untrained:.0f} -> {result.fid_trained:.0f} "
               f"(ratio {result.ratio:.3f}), class accuracy {accuracy:.2f}, "
               f"{result.train_seconds:.0f} s")
    assert result.ratio < max_ratio, summary
    assert accuracy > min_accuracy, summary


@pytest.mark.slow
def test_conditional_model_draws_the_requested_class(tmp_path):
    """ACGAN: the digits classifier recognizes the requested class in most images (chance
    is 10%; measured 90% of 500 images after 20 kimg, fid_digits 3743 -> 1604)."""
    result = train_and_score(tmp_path, "acgan", 20)
    accuracy = class_accuracy(result.run_dir)
    print(f"acgan: class accuracy {accuracy:.3f}, fid_digits {result.fid_untrained:.0f} -> "
          f"{result.fid_trained:.0f} in {result.train_seconds:.1f} s")
    assert accuracy > 0.6, f"class accuracy {accuracy:.2f}"
    assert result.ratio < 0.6, f"fid_digits ratio {result.ratio:.3f}"
