import nibabel as nib
import numpy as np
import pytest

from slicevid.data import load_ct, read_label_csv
from slicevid.data.synthetic import make_action_clip, make_phantom, write_action_videos, write_tb_phantoms
from slicevid.data.synthetic.phantoms import AIR_HU, LESION_HU
from slicevid.data.synthetic.videos import MOTIONS
from slicevid.errors import ConfigError


def test_phantoms_are_hu_int16_nifti_with_spacing(tmp_path):
    csv = write_tb_phantoms(tmp_path, n_per_class=1, shape=(16, 32, 32), seed=0)
    rows = read_label_csv(csv)
    assert sorted(label for _, label in rows) == [0, 1, 2, 3, 4]
    image = nib.load(str(tmp_path / rows[0][0]))
    assert image.get_data_dtype() == np.int16 and image.shape == (32, 32, 16)
    volume, spacing = load_ct(tmp_path / rows[0][0])
    assert volume.min() < -900 and volume.max() > 0  # air and tissue in HU
    assert np.allclose(spacing, (300 / 16, 340 / 32, 340 / 32))


def test_class_counts_and_varying_depths(tmp_path):
    csv = write_tb_phantoms(tmp_path, n_per_class=(3, 2, 1, 1, 1), shape=(16, 32, 32), seed=1, depths=(10, 20))
    rows = read_label_csv(csv)
    assert np.bincount([label for _, label in rows]).tolist() == [3, 2, 1, 1, 1]
    depths = {load_ct(tmp_path / name)[0].shape[0] for name, _ in rows}
    assert len(depths) > 1 and all(10 <= d <= 20 for d in depths)
    with pytest.raises(ConfigError, match="one count or 5 counts"):
        write_tb_phantoms(tmp_path, n_per_class=(1, 2), shape=(8, 16, 16))


def test_writers_are_deterministic(tmp_path):
    a = write_tb_phantoms(tmp_path / "a", n_per_class=1, shape=(8, 16, 16), seed=5)
    b = write_tb_phantoms(tmp_path / "b", n_per_class=1, shape=(8, 16, 16), seed=5)
    assert a.read_text() == b.read_text()
    assert np.array_equal(load_ct(a.parent / "TRN_0003.nii.gz")[0], load_ct(b.parent / "TRN_0003.nii.gz")[0])
    write_action_videos(tmp_path / "va", classes=("X",), n_per_class=1, frames=6, size=16, seed=2)
    write_action_videos(tmp_path / "vb", classes=("X",), n_per_class=1, frames=6, size=16, seed=2)
    name = "X/v_X_g01_c01.avi"
    assert (tmp_path / "va" / name).read_bytes() == (tmp_path / "vb" / name).read_bytes()


def test_a_test_set_from_the_same_seed_is_a_different_draw(tmp_path):
    train = write_tb_phantoms(tmp_path / "train", n_per_class=1, shape=(8, 16, 16), seed=5)
    test = write_tb_phantoms(tmp_path / "test", n_per_class=1, shape=(8, 16, 16), seed=[5, 1], prefix="TST")
    assert [name for name, _ in read_label_csv(test)] == [f"TST_000{i}.nii.gz" for i in range(1, 6)]
    train_volumes = [load_ct(train.parent / name)[0] for name, _ in read_label_csv(train)]
    for name, _ in read_label_csv(test):
        volume = load_ct(test.parent / name)[0]
        assert not any(np.array_equal(volume, seen) for seen in train_volumes)


@pytest.mark.parametrize("label", range(5))
def test_every_class_paints_a_lesion_inside_the_lungs(label):
    volume, lesion = make_phantom(label, (32, 64, 64), np.random.default_rng(label), return_lesion=True)
    assert lesion.shape == volume.shape and lesion.dtype == bool and lesion.sum() > 20


def test_cavity_has_air_inside_a_dense_wall():
    volume, lesion = make_phantom(4, (48, 96, 96), np.random.default_rng(0), return_lesion=True)
    assert (volume[lesion] > LESION_HU - 200).any() and (volume[lesion] < AIR_HU + 200).any()


def test_focal_column_has_gaps_between_slices_where_the_mass_is_continuous():
    def lesion_slices(label, seed):
        _, lesion = make_phantom(label, (24, 48, 48), np.random.default_rng(seed), return_lesion=True)
        return np.flatnonzero(lesion.any(axis=(1, 2)))

    for seed in range(4):
        column, mass = lesion_slices(1, seed), lesion_slices(2, seed)
        assert len(mass) > 0 and np.all(np.diff(mass) == 1)  # one continuous run of slices
        assert len(column) > 0 and np.any(np.diff(column) > 1)  # nodules separated by gaps at demo resolution


def test_motion_classes_and_the_time_reversed_pair():
    assert len(MOTIONS) == 10
    grow = make_action_clip(7, 12, 32, np.random.default_rng(0))
    shrink = make_action_clip(8, 12, 32, np.random.default_rng(0))
    assert grow.shape == (12, 32, 32, 3) and grow.dtype == np.uint8
    bright = lambda clip: (clip.mean(-1) > 150).sum(axis=(1, 2))  # noqa: E731
    assert bright(grow)[-1] > bright(grow)[0] and bright(shrink)[0] > bright(shrink)[-1]
    assert np.array_equal(bright(grow), bright(shrink)[::-1])  # same frames, reversed order
