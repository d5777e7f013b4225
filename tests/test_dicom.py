"""Real DICOM, written by others: pydicom's bundled test files, decoded or refused in one line, and messy series
built from its CT file by changing positions, UIDs, image types and rescale values."""

import shutil
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from slicevid.data import load_ct
from slicevid.data.ct import scan_depth_and_spacing
from slicevid.errors import DataError


def one_file_folder(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / Path(name).stem
    folder.mkdir()
    shutil.copy(get_testdata_file(name), folder / name)
    return folder


def series_of(tmp_path: Path, name: str, count: int = 4, *, folder: str = "series", step: float = 2.5, **changes):
    """``count`` copies of a pydicom test file as one series, ``step`` mm apart; ``changes`` set per copy."""
    out = tmp_path / folder
    out.mkdir(exist_ok=True)
    source = pydicom.dcmread(get_testdata_file(name))
    series = pydicom.uid.generate_uid()
    for k in range(count):
        ds = source.copy()
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0.0, 0.0, k * step]
        ds.InstanceNumber = count - k  # the instance numbers run backwards: order must follow positions
        for key, values in changes.items():
            setattr(ds, key, values[k] if isinstance(values, list) else values)
        ds.save_as(out / f"IM{k:04d}", enforce_file_format=True)
    return out


@pytest.mark.parametrize(
    ("name", "syntax"),
    [
        ("MR_small_jpeg_ls_lossless.dcm", "JPEG-LS Lossless"),
        ("MR_small_jp2klossless.dcm", "JPEG 2000 (lossless)"),
        ("MR_small_RLE.dcm", "RLE Lossless"),
        ("MR_small_bigendian.dcm", "big-endian"),
    ],
)
def test_compressed_series_decode_to_the_uncompressed_values(tmp_path, name, syntax):
    with pytest.warns(UserWarning, match="modality MR, not CT"):
        volume, _ = load_ct(series_of(tmp_path, name, 3))
    reference = pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array.astype(np.float32)
    assert volume.shape == (3, 64, 64) and np.array_equal(volume[0], reference), syntax


@pytest.mark.parametrize(
    ("name", "syntax"),
    [
        ("SC_rgb_jpeg_gdcm.dcm", "JPEG Lossless, Non-Hierarchical, First-Order Prediction"),
        ("JPGExtended.dcm", "JPEG Extended"),
        ("SC_rgb_jpeg.dcm", "JPEG Baseline"),
        ("JPEGLSNearLossless_16.dcm", "JPEG-LS Lossy"),
        ("693_J2KI.dcm", "JPEG 2000 Image Compression"),
    ],
)
def test_every_compressed_syntax_decodes(name, syntax):
    dataset = pydicom.dcmread(get_testdata_file(name))
    assert syntax in dataset.file_meta.TransferSyntaxUID.name
    assert dataset.pixel_array.size > 0  # the pylibjpeg plugins slicevid depends on decode it


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("SC_rgb_jpeg_dcmtk.dcm", "colour image (YBR_FULL"),
        ("examples_palette.dcm", "colour image (PALETTE COLOR"),
        ("ExplVR_BigEnd.dcm", "colour image (RGB"),
        ("liver_1frame.dcm", "a SEG object (segmentation)"),
        ("rtdose.dcm", "a RTDOSE object (RT dose grid)"),
        ("rtstruct.dcm", "a RTSTRUCT object"),
        ("rtplan.dcm", "a RTPLAN object"),
        ("test-SR.dcm", "a SR object (structured report)"),
        ("waveform_ecg.dcm", "a ECG object (waveform)"),
        ("ExplVR_LitEndNoMeta.dcm", "a RTPLAN object"),  # no preamble, no meta header: read with force
        ("badVR.dcm", "invalid value of DICOM element NumberOfFrames"),
        ("CT_small.dcm", "expected a 3D volume"),  # one slice
        ("JPEG2000-embedded-sequence-delimiter.dcm", "failed to read the header"),
        ("MR_truncated.dcm", "pixel data"),
    ],
)
def test_what_is_not_a_scan_is_refused_in_one_line(tmp_path, name, fragment):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError) as error:
            load_ct(one_file_folder(tmp_path, name))
    message = str(error.value)
    assert (fragment in message and "\n" not in message and name in message) or Path(name).stem in message


def test_an_undecodable_stream_names_its_decoder(tmp_path):
    """pydicom's J2K stub: 250 bytes whose header declares a 4-billion-pixel-wide image; no decoder reads it."""
    with pytest.raises(DataError, match=r"JPEG 2000 .*GDCM's included; pylibjpeg-openjpeg decodes this syntax"):
        load_ct(one_file_folder(tmp_path, "JPEG2000-embedded-sequence-delimiter.dcm"))


def test_a_damaged_12_bit_jpeg_extended_stream_is_decoded_by_gdcm():
    """pydicom's JPEG-lossy.dcm (an invalid scan header) decodes as its repaired copy does, to one grey level."""
    from pydicom import dcmread
    from pydicom.data import get_testdata_file
    from pydicom.pixels import pixel_array

    from slicevid.data.dicom import pixels

    damaged = pixels(Path(get_testdata_file("JPEG-lossy.dcm")))
    repaired = pixel_array(dcmread(get_testdata_file("JPGExtended.dcm")), decoding_plugin="pylibjpeg")
    assert damaged.shape == repaired.shape == (1024, 256)
    assert np.abs(damaged - repaired.astype(np.float32)).max() <= 1


@pytest.mark.slow
def test_every_bundled_file_is_read_or_refused_in_one_line(tmp_path):
    """The whole bundled corpus: nothing gives a traceback, nothing colour or non-image becomes a volume."""
    from pydicom.data import get_testdata_files

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        files = [Path(f) for f in get_testdata_files("*.dcm")]
        assert len(files) > 60
        for path in files:
            try:
                volume, _ = load_ct(one_file_folder(tmp_path, path.name))
            except DataError as error:
                assert "\n" not in str(error), path.name
            else:  # nothing in this corpus is a 3D grayscale series of one file
                pytest.fail(f"{path.name} was read as a volume of shape {volume.shape}")


def test_slices_sort_by_position_not_by_file_or_instance_number(tmp_path):
    folder = series_of(tmp_path, "CT_small.dcm", 4, RescaleIntercept=[0, 100, 200, 300])
    volume, spacing = load_ct(folder)
    raw = pydicom.dcmread(get_testdata_file("CT_small.dcm")).pixel_array.astype(np.float32)
    assert [float(np.median(volume[k] - raw)) for k in range(4)] == [0, 100, 200, 300]
    assert spacing[0] == pytest.approx(2.5)


def test_rescale_and_padding_are_applied(tmp_path):
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    stored = source.pixel_array.copy()
    stored[:4, :4] = -2000
    folder = series_of(
        tmp_path,
        "CT_small.dcm",
        3,
        PixelData=stored.astype(source.pixel_array.dtype).tobytes(),
        RescaleSlope=2,
        RescaleIntercept=-1024,
        PixelPaddingValue=-2000,
    )
    volume, _ = load_ct(folder)
    assert np.all(volume[:, :4, :4] == -1000)  # padding is air, not 2 * -2000 - 1024
    assert volume[0, 10, 10] == stored[10, 10] * 2 - 1024


def test_several_series_are_refused_then_chosen(tmp_path):
    series_of(tmp_path, "CT_small.dcm", 4, SeriesDescription="CHEST")
    series_of(tmp_path, "CT_small.dcm", 2, folder="other", SeriesDescription="SCOUT")
    for path in (tmp_path / "other").iterdir():
        shutil.move(path, tmp_path / "series" / f"B{path.name}")
    with pytest.raises(
        DataError, match=r"holds 2 series, largest first: 1\. .*\(4 file\(s\), 'CHEST'\); 2\. .*'SCOUT'"
    ):
        load_ct(tmp_path / "series")
    assert load_ct(tmp_path / "series", series=1)[0].shape[0] == 4
    assert load_ct(tmp_path / "series", series="2")[0].shape[0] == 2


def test_localizers_duplicates_and_gaps(tmp_path):
    folder = series_of(
        tmp_path,
        "CT_small.dcm",
        6,
        ImageType=[["ORIGINAL", "PRIMARY", "LOCALIZER"]] + [["ORIGINAL", "PRIMARY", "AXIAL"]] * 5,
        ImagePositionPatient=[[0, 0, 0], [0, 0, 0], [0, 0, 2.5], [0, 0, 2.5], [0, 0, 5], [0, 0, 15]],
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        volume, spacing = load_ct(folder)
    messages = " | ".join(str(w.message) for w in caught)
    assert "left out 1 localizer" in messages and "dropped 1 slice(s) at duplicate positions" in messages
    assert "1 gap(s) larger than 1.5 times the median slice spacing" in messages
    assert volume.shape[0] == 4 and spacing[0] == pytest.approx(2.5)  # median of 2.5, 2.5, 10


def test_tilt_and_orientation_are_warned(tmp_path):
    tilted = series_of(tmp_path, "CT_small.dcm", 3, GantryDetectorTilt=15)
    with pytest.warns(UserWarning, match="gantry tilt of 15 degrees"):
        load_ct(tilted)
    sagittal = series_of(
        tmp_path,
        "CT_small.dcm",
        3,
        folder="sagittal",
        ImageOrientationPatient=[[0, 1, 0, 0, 0, -1]] * 3,
        ImagePositionPatient=[[k * 2.5, 0, 0] for k in range(3)],
    )
    with pytest.warns(UserWarning, match="sagittal slices, not axial"):
        load_ct(sagittal)


def test_header_only_depth_matches_the_volume(tmp_path):
    folder = series_of(tmp_path, "CT_small.dcm", 5)
    depth, spacing = scan_depth_and_spacing(folder)
    volume, full_spacing = load_ct(folder)
    assert depth == volume.shape[0] == 5 and spacing == pytest.approx(full_spacing)
