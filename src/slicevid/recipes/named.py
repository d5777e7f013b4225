"""The named recipes: the authors' code, slicevid's choices, and the demo's CPU-sized recipe.

``slicevid recipe show NAME`` prints any of them in full as YAML.
"""

from __future__ import annotations

from collections.abc import Callable

from .._registry import check_choice
from ..data.clips import ClipSettings
from ..data.imageclef import TB_CLASSES
from ..data.preprocess import AUTHORS_CT_PREPROCESSING, CTPreprocessing
from ..data.ucf import UCF50_PAPER_CLASSES
from ..model_config import Architecture
from ..train.config import TrainConfig
from .recipe import PAPER_CONFIGURATIONS, Configuration, CTLabels, Recipe

IMAGECLEF_LABELS = CTLabels(classes=TB_CLASSES, first_label=1)
"""The challenge CSV: ``FileName`` and ``TypeOfTB`` numbered 1..5."""


def viptt_reproduction() -> Recipe:
    """The authors' code (Keras 2 / TF 2.4 notebooks), as exactly as slicevid can run it.

    Keras's VGG-16 ImageNet weights, Keras initialisation; slices rotated by 90 degrees and
    zoomed with scipy's ``mode="constant"``; fp32; raw 0-255 video frames in pretraining;
    the authors' UCF50 split (80/20, then the last 20% of training as validation) at batch
    size 1; Keras class-weight semantics and callback timing (slicevid's defaults); the
    notebook's augmentation; "No PT" with a frozen ImageNet VGG-16 beside the paper's
    "No PT (scratch)"; NaN test voxels replaced; submission lines ``TST_0001.nii.gz,2``.
    """
    return Recipe(
        name="ViPTT-Net, authors' code",
        encoder_weights="keras-imagenet",
        init="keras",
        video=ClipSettings(value_range=(0.0, 255.0)),
        video_classes=UCF50_PAPER_CLASSES,
        video_split="keras",
        labels=IMAGECLEF_LABELS,
        preprocessing=AUTHORS_CT_PREPROCESSING,
        pretrain=TrainConfig(batch_size=1, amp="off"),
        finetune=TrainConfig(batch_size=2, amp="off"),
        augment="notebook",
        configurations={
            "No PT": Configuration(pretrained=False, frozen_encoder=True),
            "No PT (scratch)": Configuration(pretrained=False, encoder_weights=False),
            **{name: config for name, config in PAPER_CONFIGURATIONS.items() if config.pretrained},
        },
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
        video_classes=UCF50_PAPER_CLASSES,
        video_split="group",
        labels=IMAGECLEF_LABELS,
    )


def demo_recipe(quick: bool = False) -> Recipe:
    """What ``slicevid demo`` runs: the paper's structure at CPU size, and what makes it learn there.

    A compact CNN at half width instead of VGG-16 (no ImageNet weights offline, so video
    pretraining trains the encoder too), 16 x 48 x 48 inputs, slice features layer-normalised
    before an LSTM of 128 units, AdamW at 2e-3 in batches of 8, BatchNorm statistics recomputed
    before each validation, a fixed budget of 14 + 12 epochs keeping the best; PT against No PT.
    ``quick`` is a smoke test in seconds.

    Args:
        quick: tiny sizes and one or two epochs (the test suite's).
    """
    size = (8, 32, 32) if quick else (16, 48, 48)
    hidden = 16 if quick else 128
    stage = {
        "batch_size": 8,
        "optimizer": "adamw",
        "lr": 2e-3,
        "plateau_patience": 3,
        "early_stopping_patience": 0,
        "precise_bn": 2 if quick else 6,
        "device": "cpu",
    }
    return Recipe(
        name="slicevid demo",
        model=Architecture(
            encoder="compact_cnn",
            encoder_kwargs={"widths": (8, 16, 32, 64)},
            aggregator_kwargs={"hidden_size": hidden},
            head_hidden=hidden,
            feature_norm="layernorm",
        ),
        encoder_weights=None,
        video=ClipSettings(num_frames=size[0], size=size[1]),
        video_classes=UCF50_PAPER_CLASSES,
        pretrain_frozen_encoder=False,
        labels=IMAGECLEF_LABELS,
        preprocessing=CTPreprocessing(size=size),
        pretrain=TrainConfig(epochs=1 if quick else 14, **stage),
        finetune=TrainConfig(epochs=2 if quick else 12, **stage),
        configurations={"PT": Configuration(), "No PT": Configuration(pretrained=False)},
    )


RECIPES: dict[str, Callable[[], Recipe]] = {
    "viptt-reproduction": viptt_reproduction,
    "slicevid": slicevid_recipe,
    "demo": demo_recipe,
}
"""The recipes ``slicevid recipe show`` knows, by name."""


def named_recipe(name: str) -> Recipe:
    """The recipe called ``name`` (see `RECIPES`).

    Args:
        name: ``"viptt-reproduction"``, ``"slicevid"`` or ``"demo"``.
    """
    return RECIPES[check_choice("recipe", name, RECIPES)]()
