"""The built-in digits: content against an independent bicubic upscale, determinism, dataset."""

import numpy as np
import pytest
from sklearn.datasets import load_digits as sklearn_load_digits

from gankern.data import BuiltinDigitsDataset, load_digits, open_dataset


def _keys_cubic(t, a=-0.5):
    """Keys' cubic convolution kernel (the bicubic of Pillow and most image libraries)."""
    t = np.abs(t)
    near = (a + 2) * t**3 - (a + 3) * t**2 + 1
    far = a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def _bicubic_upscale(images: np.ndarray, size: int) -> np.ndarray:
    """Separable bicubic upscale with pixel-center alignment; weights that fall outside
    the image are dropped and the rest renormalized."""
    n = images.shape[-1]
    centers = (np.arange(size) + 0.5) * (n / size) - 0.5
    weights = _keys_cubic(np.arange(n)[None, :] - centers[:, None])
    weights /= weights.sum(axis=1, keepdims=True)
    return np.einsum("ij,bjk,lk->bil", weights, images, weights)


def test_digits_shape_dtype_labels():
    images, labels = load_digits(16)
    source = sklearn_load_digits()
    assert images.shape == (1797, 1, 16, 16) and images.dtype == np.uint8
    assert labels.shape == (1797,) and labels.dtype == np.int64
    np.testing.assert_array_equal(labels, source.target)
    assert np.bincount(labels).tolist() == np.bincount(source.target, minlength=10).tolist()
    # White digit on black: the left and right edges are background (dark), the image is
    # mostly dark and the strokes reach full white.
    assert images[..., 0].mean() < 5 and images[..., -1].mean() < 5
    assert images.mean() < 100 and images.max() == 255


def test_digits_native_resolution_is_rescaled_source():
    images, _ = load_digits(8)
    expected = np.rint(sklearn_load_digits().images * (255.0 / 16.0))
    np.testing.assert_array_equal(images[:, 0], expected.astype(np.uint8))


def test_digits_upscale_matches_independent_bicubic():
    images, _ = load_digits(32)
    source = sklearn_load_digits().images[:200] * (255.0 / 16.0)
    expected = np.clip(np.rint(_bicubic_upscale(source, 32)), 0, 255)
    diff = np.abs(images[:200, 0].astype(np.float64) - expected)
    assert diff.max() <= 1.0, diff.max()


def test_digits_deterministic_and_cache_protected():
    first, labels = load_digits(16)
    first[:] = 0
    labels[:] = -1
    second, labels2 = load_digits(16)
    assert second.any() and (labels2 >= 0).all()
    np.testing.assert_array_equal(second, load_digits(16)[0])


@pytest.mark.parametrize("bad,error", [(12, ValueError), (4, ValueError), (2048, ValueError),
                                       ("32", TypeError), (True, TypeError), (32.0, TypeError)])
def test_digits_bad_resolution(bad, error):
    with pytest.raises(error, match="resolution"):
        load_digits(bad)


def test_digits_dataset_interface():
    images, labels = load_digits(16)
    ds = BuiltinDigitsDataset(16, use_labels=True, xflip=True)
    assert len(ds) == 2 * 1797 and ds.name == "digits"
    assert (ds.resolution, ds.num_channels, ds.c_dim, ds.has_labels) == (16, 1, 10, True)
    for i in (0, 5, 1796):
        image, label = ds[i]
        assert image.dtype == np.uint8 and label.dtype == np.float32
        np.testing.assert_array_equal(image, images[i])
        assert label.shape == (10,) and label.sum() == 1 and label[labels[i]] == 1
        flipped, flipped_label = ds[1797 + i]
        np.testing.assert_array_equal(flipped[0], np.fliplr(images[i, 0]))
        np.testing.assert_array_equal(flipped_label, label)


def test_digits_dataset_without_labels_and_subset():
    ds = open_dataset("builtin:digits", resolution=8, max_size=100, random_seed=3)
    assert len(ds) == 100 and ds.c_dim == 0 and not ds.has_labels
    assert ds[0][1].shape == (0,)
    again = open_dataset("builtin:digits", resolution=8, max_size=100, random_seed=3)
    np.testing.assert_array_equal(np.stack([ds[i][0] for i in range(100)]),
                                  np.stack([again[i][0] for i in range(100)]))
    # Every subset image is one of the originals.
    originals = {bytes(im) for im in load_digits(8)[0]}
    chosen = [bytes(ds[i][0]) for i in range(100)]
    assert set(chosen) <= originals


def test_open_dataset_bad_names():
    with pytest.raises(ValueError, match="builtin:digits"):
        open_dataset("builtin:mnist")
    with pytest.raises(TypeError, match="data"):
        open_dataset(3)
    with pytest.raises(ValueError, match="max_size"):
        open_dataset("builtin:digits", resolution=8, max_size=0)
    with pytest.raises(ValueError, match="on_bad_file"):
        open_dataset("builtin:digits", resolution=8, on_bad_file="ignore")
    with pytest.raises(TypeError, match="xflip"):
        open_dataset("builtin:digits", resolution=8, xflip="yes")
