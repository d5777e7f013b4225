import gzip

import numpy as np
import pytest
import torch
from scipy import ndimage

from slicevid import DataError
from slicevid.data import CTPreprocessing, hu_window, load_ct
from slicevid.errors import ConfigError

from .helpers import write_dicom_series, write_nifti


@pytest.fixture
def volume():
    return np.random.default_rng(0).integers(-1000, 400, size=(6, 10, 12)).astype(np.int16)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_load_nifti_returns_dhw_hu_and_spacing(tmp_path, volume, suffix):
    path = write_nifti(tmp_path / f"scan{suffix}", volume, spacing=(2.0, 0.8, 0.7))
    loaded, spacing = load_ct(path)
    assert loaded.dtype == np.float32 and loaded.shape == (6, 10, 12)
    assert np.array_equal(loaded, volume.astype(np.float32))
    assert np.allclose(spacing, (2.0, 0.8, 0.7))


def test_rotate90_reproduces_reference_rotation(tmp_path):
    volume = np.random.default_rng(1).integers(-1000, 400, size=(4, 9, 9)).astype(np.int16)  # square, as 512x512
    path = write_nifti(tmp_path / "scan.nii.gz", volume)
    rotated, _ = load_ct(path, rotate90=True)
    raw_xyz = volume.transpose(2, 1, 0).astype(np.float32)
    for k in range(volume.shape[0]):  # the reference: scipy.ndimage.rotate(slice, 90) per (x, y) slice
        assert np.allclose(rotated[k], ndimage.rotate(raw_xyz[:, :, k], 90, reshape=False, order=1))


def test_load_dicom_series(tmp_path, volume):
    folder = write_dicom_series(tmp_path / "series", volume, spacing=(2.5, 0.8, 0.8))
    loaded, spacing = load_ct(folder)
    assert loaded.shape == volume.shape
    assert np.allclose(loaded, volume)
    assert np.allclose(spacing, (2.5, 0.8, 0.8))


def test_hu_window():
    hu = np.array([-2000.0, -1000.0, -300.0, 400.0, 3000.0])
    assert np.allclose(hu_window(hu), [0.0, 0.0, 0.5, 1.0, 1.0])
    assert torch.allclose(hu_window(torch.tensor(hu)), torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0]))
    assert np.allclose(hu_window(hu, -1000, 0), [0, 0, 0.7, 1, 1])
    with pytest.raises(ConfigError, match="hi > lo"):
        hu_window(hu, 10, 10)


def test_preprocessing_pipeline(tmp_path, volume):
    path = write_nifti(tmp_path / "scan.nii.gz", volume)
    out = CTPreprocessing(size=(4, 5, 6))(path)
    assert out.shape == (4, 5, 6) and out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
    selected = CTPreprocessing(size=(3, 10, 12), resample="first")(path)
    assert np.allclose(selected, hu_window(volume[:3].astype(np.float32)), atol=1e-6)
    with pytest.raises(ConfigError, match="resample"):
        CTPreprocessing(resample="bogus")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.nii.gz: file not found"):
        load_ct(tmp_path / "nope.nii.gz")


def test_truncated_nifti(tmp_path, volume):
    path = write_nifti(tmp_path / "scan.nii.gz", volume)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"scan\.nii\.gz: could not read"):
        load_ct(path)


def test_garbage_nifti(tmp_path):
    path = tmp_path / "junk.nii.gz"
    path.write_bytes(gzip.compress(b"not a nifti file at all" * 10))
    with pytest.raises(DataError, match="junk.nii.gz"):
        load_ct(path)


def test_nan_volume(tmp_path, volume):
    bad = volume.astype(np.float32)
    bad[2, 3, 4] = np.nan
    bad[1, 1, 1] = np.inf
    path = write_nifti(tmp_path / "nan.nii.gz", bad, dtype=np.float32)
    with pytest.raises(DataError, match="nan.nii.gz: volume holds 2 NaN or infinite"):
        load_ct(path)


def test_2d_image_is_rejected(tmp_path):
    path = write_nifti(tmp_path / "flat.nii.gz", np.zeros((1, 8, 8)))
    with pytest.raises(DataError, match="flat.nii.gz: expected a 3D volume"):
        load_ct(path)


def test_unknown_extension(tmp_path):
    path = tmp_path / "scan.png"
    path.write_bytes(b"x")
    with pytest.raises(DataError, match="scan.png"):
        load_ct(path)


def test_nan_replacement_warns_with_file_and_count(tmp_path, volume):
    bad = volume.astype(np.float32)
    bad[2, 3, 4] = np.nan
    path = write_nifti(tmp_path / "nan.nii.gz", bad, dtype=np.float32)
    with pytest.warns(UserWarning, match=r"nan.nii.gz: replaced 1 NaN or infinite voxels by -1000 HU"):
        loaded, _ = load_ct(path, nan_policy="replace")
    assert loaded[2, 3, 4] == -1000
    with pytest.warns(UserWarning, match="replaced 1"):
        out = CTPreprocessing(size=(4, 5, 6), nan_policy="replace")(path)
    assert np.isfinite(out).all()


def test_4d_nifti_with_time_is_refused(tmp_path):
    import nibabel as nib

    path = tmp_path / "dynamic.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 1, 5), np.int16), np.eye(4)), str(path))
    with pytest.raises(DataError, match=r"dynamic.nii.gz: expected one 3D volume.*5 values along its 4th axis"):
        load_ct(path)
    single = tmp_path / "channel.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 6, 1), np.int16), np.eye(4)), str(single))
    assert load_ct(single)[0].shape == (6, 8, 8)


def multiframe_ct(path, **changes):
    """pydicom's RT dose grid (15 frames), relabelled as a CT: a real multi-frame file with frame offsets."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import CTImageStorage

    dataset = pydicom.dcmread(get_testdata_file("rtdose.dcm"))
    dataset.Modality, dataset.SOPClassUID = "CT", CTImageStorage
    dataset.file_meta.MediaStorageSOPClassUID = CTImageStorage
    for key, value in changes.items():
        setattr(dataset, key, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(path)
    return path


def test_multiframe_dicom_reads_frames_as_depth(tmp_path):
    folder = tmp_path / "dose"
    multiframe_ct(folder / "frames.dcm")
    for path in (folder, folder / "frames.dcm"):
        volume, spacing = load_ct(path)
        assert volume.shape == (15, 10, 10) and np.allclose(spacing, (5.0, 10.0, 10.0))


def test_multiframe_dicom_with_uneven_frames_is_refused(tmp_path):
    offsets = [5.0 * k for k in range(15)]
    offsets[7] += 2.0
    with pytest.raises(DataError, match="not evenly spaced"):
        load_ct(multiframe_ct(tmp_path / "uneven.dcm", GridFrameOffsetVector=offsets))


def test_native_and_spacing_resampling(tmp_path, volume):
    path = write_nifti(tmp_path / "scan.nii.gz", volume, spacing=(2.0, 0.8, 0.7))
    assert CTPreprocessing(size=(None, 5, 6), resample="native")(path).shape == (6, 5, 6)
    assert CTPreprocessing(size=(None, 5, 6), resample="spacing", slice_spacing=4.0)(path).shape == (3, 5, 6)
    with pytest.raises(ConfigError, match="depth must be None exactly when"):
        CTPreprocessing(size=(6, 5, 6), resample="native")
    with pytest.raises(ConfigError, match="slice_spacing is needed"):
        CTPreprocessing(size=(None, 5, 6), resample="spacing")


def test_authors_zoom_mode_zeroes_the_last_row_and_column(tmp_path):
    volume = np.full((12, 64, 64), 200, dtype=np.int16)  # 64 -> 24 rounds like the paper's 512 -> 224
    path = write_nifti(tmp_path / "scan.nii.gz", volume)
    authors = CTPreprocessing(size=(6, 24, 24), zoom_mode="constant")(path)
    ours = CTPreprocessing(size=(6, 24, 24))(path)
    assert np.all(authors[:, -1, :] == 0) and np.all(authors[:, :, -1] == 0)
    assert np.allclose(authors[:, :-1, :-1], ours[:, :-1, :-1])
