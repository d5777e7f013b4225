import nibabel as nib
import numpy as np

from slicevid.data import load_ct, read_label_csv
from slicevid.data.synthetic import make_phantom, write_action_videos, write_tb_phantoms


def test_phantoms_are_hu_int16_nifti_with_spacing(tmp_path):
    csv = write_tb_phantoms(tmp_path, n_per_class=1, shape=(16, 32, 32), seed=0)
    rows = read_label_csv(csv)
    assert sorted(label for _, label in rows) == [0, 1, 2, 3, 4]
    image = nib.load(str(tmp_path / rows[0][0]))
    assert image.get_data_dtype() == np.int16 and image.shape == (32, 32, 16)
    volume, spacing = load_ct(tmp_path / rows[0][0])
    assert volume.min() < -900 and volume.max() > 0  # air and tissue in HU
    assert np.allclose(spacing, (300 / 16, 340 / 32, 340 / 32))


def test_writers_are_deterministic(tmp_path):
    a = write_tb_phantoms(tmp_path / "a", n_per_class=1, shape=(8, 16, 16), seed=5)
    b = write_tb_phantoms(tmp_path / "b", n_per_class=1, shape=(8, 16, 16), seed=5)
    assert a.read_text() == b.read_text()
    assert np.array_equal(load_ct(a.parent / "TRN_0003.nii.gz")[0], load_ct(b.parent / "TRN_0003.nii.gz")[0])
    write_action_videos(tmp_path / "va", classes=("X",), n_per_class=1, frames=6, size=16, seed=2)
    write_action_videos(tmp_path / "vb", classes=("X",), n_per_class=1, frames=6, size=16, seed=2)
    name = "X/v_X_g01_c01.avi"
    assert (tmp_path / "va" / name).read_bytes() == (tmp_path / "vb" / name).read_bytes()


def test_each_class_adds_a_distinct_lesion():
    shape = (24, 48, 48)
    lesion_voxels = []
    for label in range(5):
        volume = make_phantom(label, shape, np.random.default_rng(label))
        lesion_voxels.append(int(((volume > -600) & (volume < 200)).sum()))
    assert len(set(lesion_voxels)) == 5


def test_focal_column_has_gaps_between_slices_where_the_mass_is_continuous():
    def lesion_slices(label, seed):
        _, lesion = make_phantom(label, (96, 64, 64), np.random.default_rng(seed), return_lesion=True)
        return np.flatnonzero(lesion.any(axis=(1, 2)))

    for seed in range(3):
        column, mass = lesion_slices(1, seed), lesion_slices(2, seed)
        assert len(mass) > 0 and np.all(np.diff(mass) == 1)  # one continuous run of slices
        assert len(column) > 0 and np.any(np.diff(column) > 1)  # blobs separated by gaps


def test_lesion_mask_matches_painted_voxels():
    volume, lesion = make_phantom(4, (24, 48, 48), np.random.default_rng(0), return_lesion=True)
    assert lesion.shape == volume.shape and lesion.dtype == bool and lesion.any()
