import numpy as np
import pytest
import torch

from slicevid import DataError
from slicevid.data import UCF50_PAPER_CLASSES, ucf50, ucf101
from slicevid.data.synthetic import write_action_videos, write_video
from slicevid.data.ucf import video_group
from slicevid.errors import ConfigError

CLASSES = ("Billiards", "JumpRope", "Rowing")


@pytest.fixture(scope="module")
def ucf_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ucf")
    write_action_videos(root, classes=CLASSES, n_per_class=6, frames=24, size=32, seed=0)
    # UCF50's quirk: the Billiards folder holds v_Billards_* files; the folder is the label.
    for path in (root / "Billiards").iterdir():
        path.rename(path.with_name(path.name.replace("Billiards", "Billards")))
    return root


def test_clips_are_grayscale_unit_range(ucf_root):
    ds = ucf50(ucf_root, classes=CLASSES, num_frames=16, size=24)
    assert len(ds) == 18 and ds.classes == CLASSES
    clip, label = ds[0]
    assert clip.shape == (1, 16, 24, 24) and clip.dtype == torch.float32
    assert clip.min() >= 0.0 and clip.max() <= 1.0
    assert label == 0 and ds.files[0].name.startswith("v_Billards_")


def test_first_and_uniform_frames(ucf_root):
    first = ucf50(ucf_root, classes=CLASSES, num_frames=12, size=16, frames="first")
    uniform = ucf50(ucf_root, classes=CLASSES, num_frames=12, size=16, frames="uniform")
    assert first.frame_indices(24).tolist() == list(range(12))
    assert uniform.frame_indices(24)[[0, -1]].tolist() == [0, 23]
    a, b = first[5][0], uniform[5][0]
    assert torch.allclose(a[:, 0], b[:, 0], atol=1e-6) and not torch.allclose(a, b)


def test_default_classes_are_all_folders(ucf_root):
    assert ucf50(ucf_root, num_frames=8, size=16).classes == tuple(sorted(CLASSES))
    assert len(UCF50_PAPER_CLASSES) == 10


def test_short_clips_dropped_or_padded(tmp_path):
    write_action_videos(tmp_path, classes=("Rowing",), n_per_class=2, frames=20, size=16)
    write_video(tmp_path / "Rowing" / "v_Rowing_g09_c01.avi", np.zeros((5, 16, 16, 3), np.uint8))
    with pytest.warns(UserWarning, match="fewer than num_frames=10"):
        dropped = ucf50(tmp_path, num_frames=10, size=16)
    assert len(dropped) == 2 and "v_Rowing_g09_c01.avi" in dropped.skipped[0][0]
    padded = ucf50(tmp_path, num_frames=10, size=16, short="pad")
    assert len(padded) == 3
    clip = padded[2][0]
    assert clip.shape == (1, 10, 16, 16) and torch.equal(clip[:, 4], clip[:, 9])


def test_random_and_group_splits(ucf_root):
    train = ucf50(ucf_root, classes=CLASSES, num_frames=8, size=16, split="train")
    val = ucf50(ucf_root, classes=CLASSES, num_frames=8, size=16, split="val")
    assert len(train) + len(val) == 18 and not set(train.files) & set(val.files)
    gtrain = ucf50(ucf_root, classes=CLASSES, num_frames=8, size=16, split="train", split_by="group")
    gval = ucf50(ucf_root, classes=CLASSES, num_frames=8, size=16, split="val", split_by="group")
    assert len(gtrain) + len(gval) == 18 and len(gval) > 0
    assert not {video_group(f) for f in gtrain.files} & {video_group(f) for f in gval.files}


def test_undecodable_video(tmp_path):
    write_action_videos(tmp_path, classes=("Rowing",), n_per_class=1, frames=12, size=16)
    bad = tmp_path / "Rowing" / "v_Rowing_g02_c01.avi"
    bad.write_bytes(b"RIFF....AVI garbage")
    with pytest.raises(DataError, match="v_Rowing_g02_c01.avi: undecodable video"):
        ucf50(tmp_path, num_frames=8, size=16)
    with pytest.warns(UserWarning):
        ds = ucf50(tmp_path, num_frames=8, size=16, on_error="skip")
    assert len(ds) == 1


def test_missing_folders(tmp_path):
    with pytest.raises(DataError, match="UCF50 folder not found"):
        ucf50(tmp_path / "nope")
    (tmp_path / "A").mkdir()
    with pytest.raises(DataError, match="Mixing: class folder not found"):
        ucf50(tmp_path, classes=UCF50_PAPER_CLASSES)


def test_ucf101_split_files(ucf_root, tmp_path):
    (tmp_path / "classInd.txt").write_text("1 Billiards\n2 JumpRope\n3 Rowing\n")
    train_lines = [
        f"{f.parent.name}/{f.name} {ucf_root_label + 1}"
        for ucf_root_label, name in enumerate(CLASSES)
        for f in sorted((ucf_root / name).iterdir())[:2]
    ]
    (tmp_path / "trainlist01.txt").write_text("\n".join(train_lines) + "\n")
    (tmp_path / "testlist01.txt").write_text("\n".join(line.split()[0] for line in train_lines[:3]) + "\n")
    train = ucf101(ucf_root, tmp_path / "trainlist01.txt", num_frames=8, size=16)
    test = ucf101(ucf_root, tmp_path / "testlist01.txt", num_frames=8, size=16)
    assert train.labels.tolist() == [0, 0, 1, 1, 2, 2]  # 0-indexed, from classInd
    assert test.labels.tolist() == [0, 0, 1] and train.classes == CLASSES
    (tmp_path / "bad.txt").write_text("Skiing/v_Skiing_g01_c01.avi\n")
    with pytest.raises(DataError, match="'Skiing'"):
        ucf101(ucf_root, tmp_path / "bad.txt")


def test_first_frames_equal_a_full_decode(ucf_root):
    import av

    from slicevid.data.video import clip_to_tensor

    ds = ucf50(ucf_root, classes=CLASSES, num_frames=10, size=24)
    with av.open(str(ds.files[4])) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    full = torch.from_numpy(frames).permute(3, 0, 1, 2).float()  # (3, T, H, W) in [0, 255]
    expected = clip_to_tensor(full, np.arange(10), 24)
    assert torch.allclose(ds[4][0], expected, atol=1e-5)
    assert ds.fps[4] == 25.0 and ds.frame_counts[4] == 24


def test_value_range_and_clip_cache(ucf_root, tmp_path):
    unit = ucf50(ucf_root, classes=CLASSES, num_frames=8, size=16, cache_dir=tmp_path / "cache")
    raw = ucf50(ucf_root, classes=CLASSES, num_frames=8, size=16, value_range=(0, 255), cache_dir=tmp_path / "cache")
    clip = unit[3][0]
    assert torch.allclose(raw[3][0], clip * 255)
    assert raw.input_spec() == {"input_size": (8, 16, 16), "input_range": (0.0, 255.0)}
    assert unit.cache.misses == 1 and raw.cache.hits == 1  # decoded once, read back from the cache
    with pytest.raises(ConfigError, match="value_range"):
        ucf50(ucf_root, classes=CLASSES, num_frames=8, size=16, value_range=(0, 2))


def test_keras_three_way_split(ucf_root):
    splits = {
        s: ucf50(ucf_root, classes=CLASSES, num_frames=8, size=16, split=s, split_by="keras")
        for s in ("train", "val", "test")
    }
    assert [len(d) for d in splits.values()] == [11, 3, 4]  # 18 clips: 14 / 4, then the last 20% of 14
    assert len({f for d in splits.values() for f in d.files}) == 18
    with pytest.raises(ConfigError, match="split_by='keras'"):
        ucf50(ucf_root, classes=CLASSES, num_frames=8, size=16, split="test")


def test_keras_split_sizes_on_the_paper_clip_count():
    from slicevid.data.splits import holdout_split, keras_validation_split

    train, test = holdout_split(1366, 0.2, 0)
    train, val = keras_validation_split(train, 0.2)
    assert (len(train), len(val), len(test)) == (873, 219, 274)


def test_class_folder_without_videos(tmp_path):
    write_action_videos(tmp_path, classes=("Rowing",), n_per_class=1, frames=8, size=16)
    (tmp_path / "Skijet").mkdir()
    with pytest.raises(DataError, match="Skijet: class folder holds no videos"):
        ucf50(tmp_path, num_frames=8, size=16)


def test_video_broken_in_the_middle_is_skipped_before_training(tmp_path):
    write_action_videos(tmp_path, classes=("Rowing",), n_per_class=2, frames=30, size=32)
    broken = tmp_path / "Rowing" / "v_Rowing_g01_c02.avi"
    data = bytearray(broken.read_bytes())
    start, end = int(len(data) * 0.3), int(len(data) * 0.7)  # header and index survive, the frames do not
    data[start:end] = np.random.default_rng(0).integers(0, 256, end - start, dtype=np.uint8).tobytes()
    broken.write_bytes(bytes(data))
    ds = ucf50(tmp_path, num_frames=24, size=16)  # the header probe cannot tell
    with pytest.raises(DataError, match="v_Rowing_g01_c02.avi"):
        for index in range(len(ds)):
            ds[index]
    with pytest.warns(UserWarning, match="Skipped 1 video"):
        skipped = ucf50(tmp_path, num_frames=24, size=16, on_error="skip")
    assert len(skipped) == 1 and "v_Rowing_g01_c02.avi" in skipped.skipped[0][0]
