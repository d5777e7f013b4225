"""Recipes: every setting of a two-stage run (video pretraining, CT fine-tuning) in one object.

:func:`viptt_reproduction` is the authors' code, setting by setting (REFERENCE.md and the
docs' reproduction table list each one with what the paper says); where the paper and the
code disagree it follows the code, because the paper's numbers came from the code.
:func:`slicevid_recipe` keeps the paper's recipe but makes slicevid's choices where they are
better or more general (documented beside each).

``benchmarks/imageclef_table.py`` runs a recipe end to end; a user with the data gets the
authors' pipeline with one command.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .data.preprocess import CTPreprocessing
from .data.ucf import UCF50_PAPER_CLASSES
from .train.config import TrainConfig


@dataclass(frozen=True)
class VideoSettings:
    """How pretraining clips are read (arguments of :func:`slicevid.data.ucf50`)."""

    classes: tuple[str, ...] = UCF50_PAPER_CLASSES
    num_frames: int = 70
    size: int = 224
    frames: str = "first"
    value_range: tuple[float, float] = (0.0, 1.0)
    split_by: str = "random"
    short: str = "drop"


@dataclass(frozen=True)
class Recipe:
    """A complete two-stage recipe.

    Attributes:
        name: a label for tables and logs.
        encoder_weights: the VGG-16 starting weights (``"keras-imagenet"``, ``"imagenet"`` or a path).
        init: initialisation of the other layers (``"keras"`` or ``"pytorch"``).
        preprocessing: CT preprocessing for training and validation scans.
        test_nan_policy: NaN handling for test scans (``"replace"`` predicts every scan).
        video: how pretraining clips are read.
        pretrain: training settings of the video stage.
        finetune: training settings of the CT stage.
        augment: the augmentation of the "+AUG" configuration.
        no_pt_frozen_encoder: the "No PT" configuration keeps the ImageNet encoder frozen.
        submission_ids: ``"filename"`` (``TST_0001.nii.gz``) or ``"stem"`` (``TST_0001``).
    """

    name: str
    encoder_weights: str | None
    init: str
    preprocessing: CTPreprocessing
    test_nan_policy: str
    video: VideoSettings
    pretrain: TrainConfig = field(default_factory=TrainConfig)
    finetune: TrainConfig = field(default_factory=TrainConfig)
    augment: str = "paper"
    no_pt_frozen_encoder: bool = False
    submission_ids: str = "stem"

    def replace(self, **changes) -> Recipe:
        return replace(self, **changes)


def viptt_reproduction() -> Recipe:
    """The authors' code (Keras 2 / TF 2.4 notebooks), as exactly as slicevid can run it.

    Keras's VGG-16 ImageNet weights, Keras initialisation; slices rotated by 90 degrees and
    zoomed with scipy's ``mode="constant"``; fp32; raw 0-255 video frames in pretraining;
    the authors' UCF50 split (80/20, then the last 20% of training as validation) at batch
    size 1; Keras class-weight semantics and callback timing (slicevid's defaults); the
    notebook's augmentation; "No PT" with a frozen ImageNet VGG-16; NaN test voxels
    replaced; submission lines ``TST_0001.nii.gz,2``.
    """
    return Recipe(
        name="ViPTT-Net, authors' code",
        encoder_weights="keras-imagenet",
        init="keras",
        preprocessing=CTPreprocessing(rotate90=True, zoom_mode="constant"),
        test_nan_policy="replace",
        video=VideoSettings(value_range=(0.0, 255.0), split_by="keras"),
        pretrain=TrainConfig(batch_size=1, amp="off"),
        finetune=TrainConfig(batch_size=2, amp="off"),
        augment="notebook",
        no_pt_frozen_encoder=True,
        submission_ids="filename",
    )


def slicevid_recipe() -> Recipe:
    """The paper's recipe with slicevid's choices.

    torchvision's ImageNet VGG-16 and PyTorch initialisation; no 90-degree rotation (scans
    keep the orientation rule of ``load_ct``) and edge-preserving SIZ; bf16 autocast on
    GPUs; [0, 1] video frames, like the CT inputs; clips split by UCF group, so no scene sits
    on both sides; the paper's augmentation; a "No PT" that trains every layer, as the paper
    describes it.
    """
    return Recipe(
        name="ViPTT-Net, slicevid",
        encoder_weights="imagenet",
        init="pytorch",
        preprocessing=CTPreprocessing(),
        test_nan_policy="replace",
        video=VideoSettings(split_by="group"),
        pretrain=TrainConfig(batch_size=2),
        finetune=TrainConfig(batch_size=2),
    )


RECIPES = {"reproduction": viptt_reproduction, "slicevid": slicevid_recipe}
