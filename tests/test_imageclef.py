import numpy as np
import pytest
import torch

from slicevid import DataError
from slicevid.data import TB_CLASSES, CTPreprocessing, ImageCLEFTBT, read_label_csv
from slicevid.data.splits import holdout_split
from slicevid.metrics import balanced_class_weights

SMALL = CTPreprocessing(size=(6, 16, 16))


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    from slicevid.data.synthetic import write_tb_phantoms

    root = tmp_path_factory.mktemp("phantoms")
    return root, write_tb_phantoms(root, n_per_class=5, shape=(12, 32, 32), seed=3)


def test_loads_volumes_and_labels(phantoms):
    root, csv = phantoms
    ds = ImageCLEFTBT(root, csv, split="all", preprocessing=SMALL)
    assert len(ds) == 25 and TB_CLASSES[0] == "Infiltrative" and len(TB_CLASSES) == 5
    volume, label = ds[0]
    assert volume.shape == (1, 6, 16, 16) and volume.dtype == torch.float32
    assert volume.min() >= 0.0 and volume.max() <= 1.0 and 0 <= label < 5
    assert ds.class_counts().tolist() == [5] * 5
    assert read_label_csv(csv)[0][1] == label


def test_stratified_split_counts(phantoms):
    root, csv = phantoms
    train = ImageCLEFTBT(root, csv, split="train", preprocessing=SMALL)
    val = ImageCLEFTBT(root, csv, split="val", preprocessing=SMALL)
    assert len(train) == 20 and len(val) == 5
    assert train.class_counts().tolist() == [4] * 5 and val.class_counts().tolist() == [1] * 5
    assert not set(train.file_ids) & set(val.file_ids)
    again = ImageCLEFTBT(root, csv, split="val", preprocessing=SMALL)
    assert again.file_ids == val.file_ids  # seeded
    other = ImageCLEFTBT(root, csv, split="val", seed=1, preprocessing=SMALL)
    assert other.file_ids != val.file_ids


PAPER_TOTALS = [419, 225, 102, 100, 70]  # 916 scans: the class totals behind the paper's training counts


def test_paper_split_sizes():
    labels = np.repeat(np.arange(5), PAPER_TOTALS)
    train, val = holdout_split(len(labels), 0.2, 0, stratify=labels)
    assert (len(train), len(val)) == (732, 184)
    assert np.bincount(labels[train]).tolist() == [335, 180, 81, 80, 56]


def test_917_rows_need_one_exclusion_for_the_paper_split(tmp_path):
    """The CSV has 917 rows; 732/184 comes back only once one scan is excluded."""
    rng = np.random.default_rng(0)
    extra_class = 1
    labels = rng.permutation(np.repeat(np.arange(5), [t + (k == extra_class) for k, t in enumerate(PAPER_TOTALS)]))
    names = [f"TRN_{i:04d}.nii.gz" for i in range(1, 918)]
    for name in names:
        (tmp_path / name).touch()
    csv = tmp_path / "labels.csv"
    csv.write_text("FileName,TypeOfTB\n" + "".join(f"{n},{lab + 1}\n" for n, lab in zip(names, labels, strict=True)))
    whole = ImageCLEFTBT(tmp_path, csv, "train")
    assert len(whole) == 733
    dropped = names[int(np.flatnonzero(labels == extra_class)[0])]
    exclusion = tmp_path / "exclude.txt"
    exclusion.write_text(f"# the authors' data lacked one scan\n{dropped}\n")
    train = ImageCLEFTBT(tmp_path, csv, "train", exclude=exclusion)
    val = ImageCLEFTBT(tmp_path, csv, "val", exclude=[dropped])
    assert (len(train), len(val)) == (732, 184)
    assert train.class_counts().tolist() == [335, 180, 81, 80, 56]


def test_too_few_scans_for_a_stratified_split():
    with pytest.raises(DataError, match=r"Cannot split 15 samples .*holding out 0.2"):
        holdout_split(15, 0.2, 0, stratify=np.repeat(np.arange(5), 3))


def test_balanced_class_weights_on_paper_counts():
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.repeat(np.arange(5), [335, 180, 81, 80, 56])
    weights = balanced_class_weights(labels, 5)
    assert np.allclose(weights.numpy(), [0.437, 0.813, 1.807, 1.830, 2.614], atol=1e-3)
    assert np.allclose(weights.numpy(), compute_class_weight("balanced", classes=np.arange(5), y=labels))
    with pytest.raises(DataError, match=r"classes \[4\]"):
        balanced_class_weights(np.array([0, 1, 2, 3]), 5)


def test_unlabeled_test_mode(phantoms):
    root, _ = phantoms
    ds = ImageCLEFTBT(root, split="test", preprocessing=SMALL)
    assert len(ds) == 25 and ds[3][1] == -1 and ds.file_ids[0] == "TRN_0001"
    with pytest.raises(DataError, match="labels_csv"):
        ImageCLEFTBT(root, split="train")


def test_custom_columns(tmp_path, phantoms):
    root, _ = phantoms
    csv = tmp_path / "mine.csv"
    csv.write_text("scan;x\n".replace(";", ",") + "TRN_0001,3\nTRN_0002.nii.gz,1\n")
    ds = ImageCLEFTBT(root, csv, split="all", file_column="scan", label_column="x", preprocessing=SMALL)
    assert ds.labels.tolist() == [2, 0]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("name,type\nTRN_0001.nii.gz,1\n", r"labels.csv: missing column\(s\) \['FileName', 'TypeOfTB'\]"),
        (
            "FileName,TypeOfTB\nTRN_0001.nii.gz,1\nTRN_0002.nii.gz,7\n",
            r"line 3: unknown label '7' for 'TRN_0002.nii.gz'",
        ),
    ],
    ids=["missing-columns", "unknown-label"],
)
def test_bad_label_csv(tmp_path, phantoms, content, match):
    csv = tmp_path / "labels.csv"
    csv.write_text(content)
    with pytest.raises(DataError, match=match):
        ImageCLEFTBT(phantoms[0], csv, split="all")


def test_duplicate_rows_merge_and_conflicts_fail(tmp_path, phantoms):
    csv = tmp_path / "labels.csv"
    csv.write_text("FileName,TypeOfTB\nTRN_0001.nii.gz,1\nTRN_0002.nii.gz,2\nTRN_0001,1\n")
    with pytest.warns(UserWarning, match=r"merged 1 duplicate row\(s\): TRN_0001 \(line 4 repeats line 2\)"):
        ds = ImageCLEFTBT(phantoms[0], csv, split="all", preprocessing=SMALL)
    assert ds.file_ids == ["TRN_0001", "TRN_0002"]
    csv.write_text("FileName,TypeOfTB\nTRN_0001.nii.gz,1\nTRN_0002.nii.gz,2\nTRN_0001,3\n")
    with pytest.raises(DataError, match="TRN_0001 has label 1 on line 2 and 3 on line 4"):
        ImageCLEFTBT(phantoms[0], csv, split="all")


@pytest.mark.parametrize("name", ["../outside.nii.gz", "/etc/passwd"])
def test_names_outside_the_scan_folder_are_refused(tmp_path, phantoms, name):
    csv = tmp_path / "labels.csv"
    csv.write_text(f"FileName,TypeOfTB\n{name},1\n")
    with pytest.raises(DataError, match="points outside the scan folder"):
        ImageCLEFTBT(phantoms[0], csv, split="all")


def test_missing_scan_raise_or_skip(tmp_path, phantoms):
    root, _ = phantoms
    csv = tmp_path / "labels.csv"
    csv.write_text("FileName,TypeOfTB\nTRN_0001.nii.gz,1\nTRN_9999.nii.gz,2\n")
    with pytest.raises(DataError, match="TRN_9999.nii.gz: scan listed in labels.csv not found"):
        ImageCLEFTBT(root, csv, split="all")
    with pytest.warns(UserWarning, match="Skipped 1"):
        ds = ImageCLEFTBT(root, csv, split="all", on_error="skip", preprocessing=SMALL)
    assert len(ds) == 1 and "TRN_9999" in ds.skipped[0][0]


def test_corrupt_scan_skipped_when_caching(tmp_path, phantoms):
    import shutil

    root, _ = phantoms
    scans = tmp_path / "scans"
    scans.mkdir()
    for name in ("TRN_0001.nii.gz", "TRN_0002.nii.gz"):
        shutil.copy(root / name, scans / name)
    (scans / "TRN_0002.nii.gz").write_bytes(b"\x1f\x8b truncated")
    csv = tmp_path / "labels.csv"
    csv.write_text("FileName,TypeOfTB\nTRN_0001.nii.gz,1\nTRN_0002.nii.gz,2\n")
    with pytest.raises(DataError, match="TRN_0002.nii.gz: damaged gzip data"):
        ImageCLEFTBT(scans, csv, split="all", preprocessing=SMALL)[1]
    with pytest.warns(UserWarning, match="Skipped 1 scan"):
        ds = ImageCLEFTBT(scans, csv, split="all", preprocessing=SMALL, cache_dir=tmp_path / "c", on_error="skip")
    assert ds.file_ids == ["TRN_0001"] and "damaged gzip data" in ds.skipped[0][1]
