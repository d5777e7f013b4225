"""Regenerate the documentation figures: the architecture diagram and a phantom gallery.

python docs/scripts/make_figures.py
"""

import itertools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from slicevid.data import TB_CLASSES, hu_window
from slicevid.data.synthetic import make_phantom

IMAGES = Path(__file__).resolve().parents[1] / "images"


def architecture() -> None:
    """Five boxes in a row, text at 12 pt: legible (about 13 px) when the page shows it 1100 px wide."""
    fig, ax = plt.subplots(figsize=(15, 3.0))
    ax.set(xlim=(-0.1, 15.4), ylim=(0.2, 2.8))
    ax.axis("off")
    width = 2.65
    boxes = [
        (0.0, "volume\n(B, 1, D, H, W)", "#eeeeee"),
        (2.9, "channel adapter\nConv3d 1x1x1\n1 -> 3 channels", "#dbe9f6"),
        (5.8, "slice encoder\nVGG-16 + GAP on\nall B*D slices at once", "#c6dbef"),
        (8.7, "aggregator\nLSTM(256), last step\n(B, D, 512) -> (B, 256)", "#fdd0a2"),
        (11.6, "head\nDense 1024, ReLU\n-> logits (B, K)", "#c7e9c0"),
    ]
    for x, text, color in boxes:
        ax.add_patch(FancyBboxPatch((x, 0.45), width, 2.1, boxstyle="round,pad=0.05", fc=color, ec="#444444"))
        ax.text(x + width / 2, 1.5, text, ha="center", va="center", fontsize=12, linespacing=1.4)
    for (x, *_), (nx, *_) in itertools.pairwise(boxes):
        ax.add_patch(FancyArrowPatch((x + width + 0.07, 1.5), (nx - 0.07, 1.5), arrowstyle="-|>", mutation_scale=18))
    ax.text(14.4, 1.5, "softmax:\nTB type", ha="left", va="center", fontsize=12)
    fig.savefig(IMAGES / "architecture.png", dpi=150, bbox_inches="tight")
    plt.close(fig)


def phantoms() -> None:
    fig, axes = plt.subplots(len(TB_CLASSES), 6, figsize=(9, 8))
    for label, name in enumerate(TB_CLASSES):
        volume, lesion = make_phantom(label, (48, 96, 96), np.random.default_rng(label), return_lesion=True)
        volume = hu_window(volume)
        centre = int(np.flatnonzero(lesion.any(axis=(1, 2))).mean())
        for column, index in enumerate(np.clip(centre + np.arange(-10, 12, 4), 0, 47)):
            ax = axes[label, column]
            ax.imshow(volume[index], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"slice {index}", fontsize=7)
        axes[label, 0].set_ylabel(name, fontsize=9)
    fig.suptitle("Synthetic phantoms (not medical data): one row per lesion pattern", fontsize=10)
    fig.tight_layout()
    fig.savefig(IMAGES / "phantoms.png", dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    IMAGES.mkdir(parents=True, exist_ok=True)
    architecture()
    phantoms()
    print(f"wrote {sorted(p.name for p in IMAGES.glob('*.png'))}")
