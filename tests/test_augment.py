import pytest
import torch

from slicevid.augment import PAPER_ANGLES, RandomAxialRotation, rotate_axial
from slicevid.errors import ConfigError


def test_zero_angle_is_identity():
    volume = torch.rand(2, 1, 3, 16, 20)
    assert torch.allclose(rotate_axial(volume, torch.zeros(2)), volume, atol=1e-5)


def test_rotation_by_90_degrees_moves_pixels_in_plane_only():
    volume = torch.zeros(1, 1, 2, 9, 9)
    volume[0, 0, :, 4, 7] = 1.0  # a point to the right of centre, on every slice
    rotated = rotate_axial(volume, torch.tensor([90.0]))
    peak = rotated[0, 0, 0].argmax()
    assert divmod(int(peak), 9) in {(1, 4), (7, 4)}  # now above or below centre
    assert torch.equal(rotated[0, 0, 0], rotated[0, 0, 1])  # same angle for all slices


def test_paper_angles_and_clip():
    aug = RandomAxialRotation()
    assert aug.angles.tolist() == list(PAPER_ANGLES)
    gen = torch.Generator().manual_seed(0)
    angles = aug.sample_angles(2000, gen)
    assert set(angles.tolist()) == set(PAPER_ANGLES)
    out = aug(torch.rand(4, 1, 3, 16, 16) * 1.5, gen)
    assert out.shape == (4, 1, 3, 16, 16) and out.max() <= 1.0 and out.min() >= 0.0


def test_notebook_variant_skips_a_quarter():
    aug = RandomAxialRotation.notebook_variant()
    angles = aug.sample_angles(8000, torch.Generator().manual_seed(1))
    assert 0.0 not in aug.angles.tolist()
    assert abs((angles == 0).float().mean().item() - 0.25) < 0.02


def test_single_volume_and_bad_shape():
    aug = RandomAxialRotation(angles=[10.0])
    assert aug(torch.rand(1, 2, 8, 8)).shape == (1, 2, 8, 8)
    with pytest.raises(ConfigError, match=r"\(C, D, H, W\)"):
        aug(torch.rand(8, 8))
    with pytest.raises(ConfigError, match="p must"):
        RandomAxialRotation(p=2.0)


def test_study_augmentation_moves_every_slice_together():
    from slicevid.augment import StudyAugmentation

    torch.manual_seed(0)
    slice_ = torch.rand(1, 1, 1, 24, 24)
    volume = slice_.expand(2, 1, 5, 24, 24).clone()
    out = StudyAugmentation(noise=0.0)(volume, lengths=torch.tensor([5, 3]))
    assert out.shape == volume.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.allclose(out[0], volume[0])  # something happened
    for sample, depth in ((0, 5), (1, 3)):
        for k in range(1, depth):
            assert torch.allclose(out[sample, :, k], out[sample, :, 0], atol=1e-5)  # one transform per study
    assert torch.equal(out[1, :, 3:], volume[1, :, 3:])  # padding untouched


def test_study_augmentation_is_reproducible_from_the_torch_seed():
    from slicevid.augment import StudyAugmentation

    volume = torch.rand(1, 1, 4, 16, 16)
    torch.manual_seed(3)
    a = StudyAugmentation()(volume)
    torch.manual_seed(3)
    assert torch.equal(a, StudyAugmentation()(volume))
