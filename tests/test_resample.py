import numpy as np
import pytest
import torch
from scipy import ndimage

from slicevid.errors import ConfigError
from slicevid.resample import SIZ, select_slices, spline_interpolated_zoom

SHAPES = [
    ((40, 64, 64), (70, 32, 32)),  # a short scan enlarged in depth, shrunk in-plane
    ((90, 48, 40), (70, 24, 24)),  # shrinking, non-square
    ((7, 13, 11), (12, 5, 6)),  # odd sizes
    ((70, 30, 30), (70, 30, 30)),  # identity
]


@pytest.mark.parametrize(("shape", "size"), SHAPES)
def test_siz_matches_scipy_nearest_mode(shape, size):
    volume = np.random.default_rng(0).random(shape, dtype=np.float32)
    factors = [t / s for t, s in zip(size, shape, strict=True)]
    expected = ndimage.zoom(volume, factors, order=1, mode="nearest")
    ours = spline_interpolated_zoom(volume, size)
    assert isinstance(ours, np.ndarray) and ours.shape == expected.shape == size
    assert np.abs(ours - expected).max() < 1e-4


def test_siz_keeps_kind_and_channels():
    tensor = torch.rand(2, 9, 10, 11)
    out = spline_interpolated_zoom(tensor, (5, 6, 7))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 5, 6, 7)
    assert torch.allclose(out[1], spline_interpolated_zoom(tensor[1], (5, 6, 7)))


def test_siz_orders():
    volume = np.random.default_rng(1).random((9, 12, 12)).astype(np.float32)
    nearest = spline_interpolated_zoom(volume, (5, 7, 7), order=0)
    assert nearest.shape == (5, 7, 7) and np.isin(nearest, volume).all()
    cubic = spline_interpolated_zoom(volume, (5, 7, 7), order=3)
    factors = [5 / 9, 7 / 12, 7 / 12]
    assert np.allclose(cubic, ndimage.zoom(volume, factors, order=3, mode="nearest"), atol=1e-5)
    with pytest.raises(ConfigError, match="order"):
        spline_interpolated_zoom(volume, (5, 7, 7), order=2)


def test_scipy_default_constant_mode_differs_only_at_edges():
    volume = np.random.default_rng(2).random((13, 17, 19)).astype(np.float32) + 1.0
    size = (7, 9, 10)
    factors = [t / s for t, s in zip(size, volume.shape, strict=True)]
    constant = ndimage.zoom(volume, factors, order=1)  # the original pipeline's call
    ours = spline_interpolated_zoom(volume, size)
    differs = np.abs(constant - ours) > 1e-4
    if differs.any():
        interior = differs[1:-1, 1:-1, 1:-1]
        assert not interior.any()


def test_siz_transform_clips():
    out = SIZ((4, 4, 4))(torch.linspace(-1, 2, 8**3).reshape(8, 8, 8))
    assert out.min() >= 0 and out.max() <= 1


def test_siz_rejects_bad_shapes():
    with pytest.raises(ConfigError, match=r"\(D, H, W\)"):
        spline_interpolated_zoom(np.zeros((4, 4)), (2, 2, 2))
    with pytest.raises(ConfigError, match="three positive"):
        spline_interpolated_zoom(np.zeros((4, 4, 4)), (2, 2))


@pytest.mark.parametrize(
    ("depth", "n", "how", "expected"),
    [
        (10, 4, "first", [0, 1, 2, 3]),
        (10, 4, "last", [6, 7, 8, 9]),
        (10, 4, "middle", [3, 4, 5, 6]),
        (10, 4, "even", [0, 3, 6, 9]),
        (3, 5, "first", [0, 1, 2, 2, 2]),
        (3, 5, "last", [0, 0, 0, 1, 2]),
        (3, 5, "middle", [0, 0, 1, 2, 2]),
        (3, 5, "even", [0, 0, 1, 2, 2]),
    ],
)
def test_select_slices(depth, n, how, expected):
    volume = np.arange(depth, dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)
    out = select_slices(volume, n, how)
    assert out[:, 0, 0].tolist() == expected
    channels = select_slices(torch.from_numpy(np.stack([volume, volume])), n, how)
    assert channels.shape == (2, n, 2, 2)


def test_select_slices_bad_arguments():
    with pytest.raises(ConfigError, match="how"):
        select_slices(np.zeros((4, 2, 2)), 2, "random")
    with pytest.raises(ConfigError, match="num_slices"):
        select_slices(np.zeros((4, 2, 2)), 0)
