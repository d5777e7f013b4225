"""Choose a pretraining: action videos through pytorchvideo, the unlabeled scans themselves, or both.

Every start below trains the same encoder and aggregator, so each fine-tunes the same way. On the
synthetic data (Kinetics-layout clips, unlabeled phantoms) it runs offline in about a minute.

    python examples/choose_pretraining.py
"""

import tempfile
from pathlib import Path

from slicevid import SliceSequenceClassifier, create_model
from slicevid.data import CTPreprocessing, ImageCLEFTBT, kinetics
from slicevid.data.synthetic import write_action_videos, write_tb_phantoms
from slicevid.train import TrainConfig, finetune, pretrain, pretrain_ssl

SIZE = (8, 48, 48)
SETTINGS = {"batch_size": 4, "optimizer": "adamw", "lr": 2e-3, "progress": False}

with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    for split, seed in (("train", 0), ("val", 1)):  # Kinetics' published layout: <split>/<class>/<video>
        write_action_videos(tmp / "kinetics" / split, ("Jumping", "Rowing", "Skiing"), 4, 12, 48, seed)
    labels = write_tb_phantoms(tmp / "scans", n_per_class=6, shape=(12, 48, 48))
    write_tb_phantoms(tmp / "unlabeled", n_per_class=6, shape=(12, 48, 48), seed=[0, 2])  # labels unused

    # --8<-- [start:video]
    # Any pytorchvideo labeled dataset: Kinetics, UCF101 and HMDB51 have helpers, from_pytorchvideo the rest.
    clips = {split: kinetics(tmp / "kinetics", split, num_frames=SIZE[0], size=SIZE[1]) for split in ("train", "val")}
    model = create_model("compact_cnn", "lstm", num_classes=len(clips["train"].classes), feature_norm="layernorm")
    config = TrainConfig(epochs=2, out_dir=str(tmp / "video"), **SETTINGS)
    pretrain(model, clips["train"], clips["val"], config, freeze_encoder=False)  # no ImageNet weights here
    # --8<-- [end:video]

    # --8<-- [start:ssl]
    # The unlabeled scans: tell ordered slices from reversed and shuffled ones ("order"), or match
    # two augmented views of each scan ("contrastive"). Here after the video stage: the two chain.
    video_model = SliceSequenceClassifier.from_pretrained(tmp / "video" / "best")
    config = TrainConfig(epochs=2, out_dir=str(tmp / "ssl"), **SETTINGS)
    pretrain_ssl(video_model, tmp / "unlabeled", "order", config, preprocessing=CTPreprocessing(size=SIZE))
    # --8<-- [end:ssl]

    # --8<-- [start:finetune]
    # Half of the labelled training scans (stratified), from each start.
    split = {"preprocessing": CTPreprocessing(size=SIZE), "val_fraction": 0.25}
    train = ImageCLEFTBT(labels.parent, labels, "train", label_fraction=0.5, **split)
    val = ImageCLEFTBT(labels.parent, labels, "val", **split)
    for start in ("video", "ssl"):
        config = TrainConfig(epochs=2, out_dir=str(tmp / f"tuned-{start}"), **SETTINGS)
        _, result = finetune(tmp / start / "best", train, val, config, num_classes=5)
        print(f"from {start}: {len(train)} labelled scans, validation kappa {result.evaluation.report.kappa:.2f}")
    # --8<-- [end:finetune]
