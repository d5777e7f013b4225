"""Pretraining sources: pytorchvideo's Kinetics, UCF101 and HMDB51 readers on tiny folders in their
layouts, and self-supervised pretraining on unlabeled scans (order, contrastive, chained after video)."""

from pathlib import Path

import pytest
import torch

from slicevid import SliceSequenceClassifier, create_model
from slicevid.cli import main
from slicevid.data import CTPreprocessing, from_pytorchvideo, hmdb51, kinetics
from slicevid.data.pytorchvideo_sources import ucf101
from slicevid.data.synthetic import write_action_videos, write_tb_phantoms
from slicevid.errors import DataError
from slicevid.train import TrainConfig, pretrain, pretrain_ssl
from slicevid.train.ssl import ORDER_CLASSES, SliceOrderViews, UnlabeledScans, _unlabeled_splits

CLASSES = ("Jumping", "Rowing", "Skiing")
QUIET = {"progress": False, "batch_size": 4}


def small_model(classes: int):
    torch.manual_seed(0)
    return create_model(
        "compact_cnn", "lstm", classes, encoder_kwargs={"widths": (4, 8)}, aggregator_kwargs={"hidden_size": 8}
    )


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """Kinetics (split/class/video), UCF101 (class/video + list) and HMDB51 (class/video + split files)."""
    root = tmp_path_factory.mktemp("videos")
    for split, seed in (("train", 0), ("val", 1)):
        write_action_videos(root / "kinetics" / split, CLASSES, 2, frames=10, size=32, seed=seed)
    write_action_videos(root / "ucf101", CLASSES, 2, frames=10, size=32)
    (root / "trainlist01.txt").write_text(
        "".join(f"{c}/v_{c}_g01_c01.avi {i + 1}\n" for i, c in enumerate(CLASSES))  # 1-based, as published
    )
    names = [c.lower() for c in CLASSES]
    write_action_videos(root / "hmdb51", names, 2, frames=10, size=32)
    (root / "splits").mkdir()
    for name in names:
        first, second = sorted(p.name for p in (root / "hmdb51" / name).iterdir())
        (root / "splits" / f"{name}_test_split1.txt").write_text(f"{first} 1\n{second} 2\n")
    return root


def test_a_kinetics_layout_pretrains_through_pytorchvideo(layouts, tmp_path):
    train = kinetics(layouts / "kinetics", "train", num_frames=6, size=24, progress=False)
    val = kinetics(layouts / "kinetics", "val", num_frames=6, size=24, progress=False)
    assert train.classes == CLASSES and len(train) == 6 and train.labels.tolist() == [0, 0, 1, 1, 2, 2]
    clip, label = train[0]
    assert clip.shape == (1, 6, 24, 24) and clip.min() >= 0 and clip.max() <= 1 and label == 0
    model = small_model(len(CLASSES))
    result = pretrain(model, train, val, TrainConfig(epochs=1, out_dir=str(tmp_path / "run"), **QUIET))
    saved = SliceSequenceClassifier.from_pretrained(tmp_path / "run" / "best")
    assert saved.class_names == CLASSES and saved.config.training_data.kind == "video"
    assert saved.config.input_size == (6, 24, 24) and result.evaluation.report.num_samples == 6


def test_an_hmdb51_layout_pretrains_through_pytorchvideo(layouts, tmp_path):
    options = {"num_frames": 6, "size": 24, "progress": False}
    train = hmdb51(layouts / "hmdb51", layouts / "splits", split_type="train", **options)
    test = hmdb51(layouts / "hmdb51", layouts / "splits", split_type="test", **options)
    assert train.classes == ("jumping", "rowing", "skiing") and len(train) == len(test) == 3
    assert not set(train.names) & set(test.names)  # the split files keep them apart
    pretrain(small_model(3), train, test, TrainConfig(epochs=1, out_dir=str(tmp_path / "run"), **QUIET))
    assert (tmp_path / "run" / "best" / "model.safetensors").is_file()


def test_ucf101_reads_an_official_list_and_clip_settings_apply(layouts):
    listed = ucf101(layouts / "ucf101", layouts / "trainlist01.txt", num_frames=4, size=16, progress=False)
    assert listed.labels.tolist() == [0, 1, 2] and listed[1][0].shape == (1, 4, 16, 16)  # labels from the folders
    every = ucf101(layouts / "ucf101", frames="uniform", num_frames=4, size=16, clips=8, progress=False)
    assert len(every) == 8  # a fixed epoch: a second pass tops it up
    raw = ucf101(layouts / "ucf101", num_frames=4, size=16, value_range=(0, 255), progress=False)
    assert raw[0][0].max() > 1


def test_from_pytorchvideo_checks_what_it_is_given():
    video = torch.full((3, 5, 8, 8), 128.0)
    clips = from_pytorchvideo([{"video": video, "label": "b"}, {"video": video, "label": "a"}], num_frames=5, size=8)
    assert clips.classes == ("a", "b") and clips.labels.tolist() == [1, 0]
    with pytest.raises(DataError, match="3 frames, fewer than num_frames=5"):
        from_pytorchvideo([{"video": video[:, :3], "label": 0, "video_name": "x.mp4"}], num_frames=5, size=8)
    with pytest.raises(DataError, match="labels \\[3\\] do not index the 2 classes"):
        from_pytorchvideo([{"video": video, "label": 3}], num_frames=5, size=8, classes=["a", "b"])
    with pytest.raises(DataError, match="yielded no clip"):
        from_pytorchvideo([], num_frames=5, size=8)


@pytest.fixture(scope="module")
def unlabeled(tmp_path_factory):
    """Unlabeled phantoms of 6 to 10 slices (their label file is ignored)."""
    root = tmp_path_factory.mktemp("unlabeled")
    write_tb_phantoms(root / "scans", 2, (10, 32, 32), seed=0, depths=(6, 10))
    return root / "scans"


NATIVE = CTPreprocessing(size=(None, 32, 32), resample="native")


def test_order_views_reverse_and_shuffle_each_scan(unlabeled):
    train, _ = _unlabeled_splits(unlabeled, NATIVE, 0.2, 0, None)
    views = SliceOrderViews(train, seed=0)
    (ordered, a), (reversed_, b), (shuffled, c) = views[0], views[1], views[2]
    assert (a, b, c) == (0, 1, 2) and views.classes == ORDER_CLASSES
    assert torch.equal(reversed_, ordered.flip(1)) and not torch.equal(shuffled, ordered)
    assert torch.equal(shuffled.sort(dim=1).values, ordered.sort(dim=1).values)  # the same slices, reordered
    assert len(set(views.depths())) > 1  # mixed depths: batched by depth and padded


@pytest.mark.parametrize("objective", ["order", "contrastive"])
def test_ssl_trains_on_mixed_depths_and_changes_the_encoder(unlabeled, tmp_path, objective):
    model = small_model(5)
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    config = TrainConfig(epochs=1, optimizer="adamw", lr=1e-2, out_dir=str(tmp_path / "run"), **QUIET)
    result = pretrain_ssl(model, unlabeled, objective, config, preprocessing=NATIVE)
    assert any(not torch.equal(before[k], v) for k, v in model.encoder.state_dict().items())
    saved = SliceSequenceClassifier.from_pretrained(tmp_path / "run" / "best")
    for key, value in saved.encoder.state_dict().items():
        assert torch.equal(value, model.encoder.state_dict()[key]), key
    assert saved.config.preprocessing == NATIVE and result.history


@pytest.mark.slow
def test_video_then_ssl_chains_and_the_cli_checkpoint_fine_tunes(layouts, unlabeled, tmp_path):
    videos = layouts / "kinetics" / "train"
    small = ["--encoder", "compact_cnn", "--aggregator", "lstm", "--epochs", "1", "--batch-size", "4", "--no-progress"]
    video_run, ssl_run, tuned = tmp_path / "video", tmp_path / "ssl", tmp_path / "tuned"
    assert main(["pretrain", "--videos", str(videos), "--classes", "all", "--num-frames", "6", "--size", "32",
                 "--train-encoder", "--out", str(video_run), *small]) == 0  # fmt: skip
    common = ["--epochs", "1", "--batch-size", "4", "--no-progress"]
    assert main(["pretrain", "--ssl", "order", "--scans", str(unlabeled), "--pretrained", str(video_run / "best"),
                 "--resample", "native", "--size", "32", "--out", str(ssl_run), *common]) == 0  # fmt: skip
    after_video = SliceSequenceClassifier.from_pretrained(video_run / "best")
    after_ssl = SliceSequenceClassifier.from_pretrained(ssl_run / "best")
    assert after_ssl.config.encoder == after_video.config.encoder and list(after_ssl.tasks) == ["slice_order"]
    assert any(
        not torch.equal(v, after_video.encoder.state_dict()[k]) for k, v in after_ssl.encoder.state_dict().items()
    )
    assert main(["finetune", "--pretrained", str(ssl_run / "best"), "--scans", str(unlabeled),
                 "--labels-csv", str(unlabeled / "labels.csv"), "--val-fraction", "0.5", "--out", str(tuned),
                 *common]) == 0  # fmt: skip
    assert SliceSequenceClassifier.from_pretrained(tuned / "best").num_classes == 5


def test_ssl_refuses_what_it_cannot_use(unlabeled, tmp_path):
    with pytest.raises(DataError, match="1 scan\\(s\\) found"):
        pretrain_ssl(small_model(5), [next(Path(unlabeled).glob("*.nii.gz"))], "order")
    with pytest.raises(Exception, match="objective"):
        pretrain_ssl(small_model(5), unlabeled, "jigsaw")
    assert main(["pretrain", "--ssl", "order", "--out", str(tmp_path / "x")]) == 2  # --scans missing


def test_unlabeled_scans_keep_their_depths(unlabeled):
    train, val = _unlabeled_splits(unlabeled, NATIVE, 0.2, 0, None)
    assert isinstance(train, UnlabeledScans) and len(train) + len(val) == 10
    assert [train[i][0].shape[1] for i in range(len(train))] == train.depths()
