"""The ViPTT-Net recipe in miniature: pretrain on action videos, then fine-tune on CT scans.

Uses the embedded synthetic videos (UCF50 layout) and CT phantoms (NIfTI + labels CSV), so
it runs offline on a CPU in under a minute. For the real thing, point ``ucf50`` at UCF50 and
``ImageCLEFTBT`` at the ImageCLEF scans, and use ``viptt_net(encoder_weights="imagenet")``.

    python examples/pretrain_finetune.py
"""

import tempfile
from pathlib import Path

from slicevid import create_model
from slicevid.data import UCF50_PAPER_CLASSES, CTPreprocessing, ImageCLEFTBT, ucf50
from slicevid.data.synthetic import write_action_videos, write_tb_phantoms
from slicevid.train import TrainConfig, finetune, pretrain

DEPTH, SIZE = 8, 48

with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    write_action_videos(tmp / "videos", n_per_class=3, frames=12, size=SIZE)
    labels = write_tb_phantoms(tmp / "scans", n_per_class=5, shape=(16, 48, 48))

    # --8<-- [start:pretrain]
    # Stage 1: video pretraining, encoder frozen. With the feature cache the adapter is frozen too,
    # and slice features are computed once (exact for a frozen adapter; see the docs).
    videos = ucf50(tmp / "videos", UCF50_PAPER_CLASSES, num_frames=DEPTH, size=SIZE)
    model = create_model("timm:resnet10t", "lstm", num_classes=len(UCF50_PAPER_CLASSES))
    result = pretrain(
        model,
        videos,
        None,
        TrainConfig(epochs=3, batch_size=4, feature_cache=True, out_dir=str(tmp / "pretrain"), progress=False),
    )
    print(f"pretrained {len(result.history)} epochs; saved to {tmp / 'pretrain' / 'best'}")
    # --8<-- [end:pretrain]

    # --8<-- [start:finetune]
    # Stage 2: new 5-way head, every layer trained, class weights and the paper's rotation.
    prep = CTPreprocessing(size=(DEPTH, SIZE, SIZE))
    train = ImageCLEFTBT(labels.parent, labels, "train", preprocessing=prep, cache_dir=tmp / "cache")
    val = ImageCLEFTBT(labels.parent, labels, "val", preprocessing=prep, cache_dir=tmp / "cache")
    config = TrainConfig(
        epochs=2, batch_size=2, class_weights=True, augment="paper", progress=False, out_dir=str(tmp / "finetune")
    )
    model, result = finetune(tmp / "pretrain" / "best", train, val, config, num_classes=5)
    print(result.evaluation.report.to_markdown("PT+CW+AUG (synthetic)"))
    # --8<-- [end:finetune]
    print("run folder:", sorted(p.name for p in (tmp / "finetune").iterdir()))
