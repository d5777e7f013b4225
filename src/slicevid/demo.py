"""``slicevid demo``: the whole ViPTT-Net workflow on the embedded synthetic data, on a CPU.

1. write synthetic CT phantoms (NIfTI) and action videos (AVI) into the run folder;
2. pretrain on the videos;
3. fine-tune on the phantoms from the pretrained weights (PT) and from scratch (No PT);
4. evaluate both on the held-out split and print a Table-1-style comparison;
5. write plots and a Markdown report.

The demo keeps the paper's structure (1x1x1 adapter, per-slice encoder, LSTM(256) read at
the last step, Dense 1024, softmax) but is scaled for 2 CPU cores: a ResNet-18 encoder
instead of VGG-16, 24 x 64 x 64 volumes, a few epochs, SGD with momentum. Offline there
are no ImageNet weights, so the encoder starts random and video pretraining trains it
too (the paper freezes an ImageNet VGG-16 there). Numbers are printed as measured; on
synthetic data they say nothing about medical performance.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ._io import atomic_write_text
from .data import TB_CLASSES, UCF50_PAPER_CLASSES, CTPreprocessing, ImageCLEFTBT, ucf50
from .data.synthetic import write_action_videos, write_tb_phantoms
from .metrics import ClassificationReport, format_table
from .model import create_model
from .train import TrainConfig, finetune, pretrain
from .train.plots import plot_slice_montage


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo; ``quick()`` is a smoke-test version for the tests."""

    encoder: str = "timm:resnet18"
    phantoms_per_class: int = 12
    phantom_shape: tuple[int, int, int] = (48, 96, 96)
    volume_size: tuple[int, int, int] = (24, 64, 64)
    videos_per_class: int = 6
    video_frames: int = 30
    pretrain_epochs: int = 6
    finetune_epochs: int = 12
    lr: float = 0.01
    momentum: float = 0.9
    batch_size: int = 2
    seed: int = 0

    @classmethod
    def quick(cls) -> DemoSettings:
        return cls(encoder="timm:test_resnet", phantoms_per_class=5, phantom_shape=(16, 32, 32),
                   volume_size=(8, 32, 32), videos_per_class=2, video_frames=10, pretrain_epochs=1,
                   finetune_epochs=2)


@dataclass
class DemoResult:
    reports: dict[str, ClassificationReport] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    out_dir: Path | None = None
    table: str = ""


def _config(settings: DemoSettings, epochs: int, out_dir: Path, progress: bool) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=settings.batch_size, lr=settings.lr, momentum=settings.momentum,
                       seed=settings.seed, out_dir=str(out_dir), device="cpu", progress=progress)


def _model(settings: DemoSettings, num_classes: int):
    torch.manual_seed(settings.seed)
    return create_model(settings.encoder, "lstm", num_classes, aggregator_kwargs={"hidden_size": 256})


def run_demo(out_dir: str | Path = "slicevid-demo", settings: DemoSettings | None = None,
             progress: bool = True) -> DemoResult:
    """Run the demo into ``out_dir`` and return the measured reports and timings."""
    settings = settings or DemoSettings()
    out = Path(out_dir)
    result = DemoResult(out_dir=out)
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        result.seconds[name] = round(now - clock, 1)
        clock = now

    say = print if progress else (lambda *_: None)
    say(f"[1/5] writing synthetic data to {out / 'data'}")
    labels_csv = write_tb_phantoms(out / "data" / "phantoms", settings.phantoms_per_class,
                                   settings.phantom_shape, settings.seed)
    write_action_videos(out / "data" / "videos", UCF50_PAPER_CLASSES, settings.videos_per_class,
                        settings.video_frames, settings.volume_size[1], settings.seed)
    lap("synthetic data")

    say("[2/5] pretraining on action videos (10 classes)")
    video_kwargs = {"classes": UCF50_PAPER_CLASSES, "num_frames": settings.volume_size[0],
                    "size": settings.volume_size[1], "seed": settings.seed}
    videos_train = ucf50(out / "data" / "videos", split="train", **video_kwargs)
    videos_val = ucf50(out / "data" / "videos", split="val", **video_kwargs)
    video_model = _model(settings, len(UCF50_PAPER_CLASSES))
    # No ImageNet weights offline: the encoder must learn too (see the module docs).
    pretrain(video_model, videos_train, videos_val, _config(settings, settings.pretrain_epochs, out / "pretrain",
             progress), freeze_encoder=False, class_names=UCF50_PAPER_CLASSES)
    lap("pretraining")

    say("[3/5] fine-tuning on CT phantoms: PT and No PT")
    ct_kwargs = {"preprocessing": CTPreprocessing(size=settings.volume_size), "seed": settings.seed,
                 "cache_dir": out / "cache"}
    ct_train = ImageCLEFTBT(labels_csv.parent, labels_csv, split="train", **ct_kwargs)
    ct_val = ImageCLEFTBT(labels_csv.parent, labels_csv, split="val", **ct_kwargs)
    ct_train.fill_cache(progress=progress)
    ct_val.fill_cache(progress=progress)
    for name, start in (("PT", video_model), ("No PT", _model(settings, len(TB_CLASSES)))):
        run_dir = out / ("finetune-pt" if name == "PT" else "finetune-nopt")
        config = _config(settings, settings.finetune_epochs, run_dir, progress)
        _, fit_result = finetune(start, ct_train, ct_val, config)
        result.reports[name] = fit_result.evaluation.report
        lap(f"fine-tuning {name}")

    say("[4/5] evaluation on the held-out phantoms")
    result.table = format_table(result.reports, TB_CLASSES)
    say(result.table)

    say("[5/5] plots and report")
    for label, name in enumerate(TB_CLASSES):
        index = int((ct_val.labels == label).nonzero()[0][0])
        plot_slice_montage(ct_val[index][0].numpy(), out / f"montage-{label + 1}-{name.lower()}.png",
                           title=f"synthetic phantom: {name} pattern ({ct_val.file_ids[index]})")
    lap("plots")
    _write_report(out, settings, result, len(ct_train), len(ct_val), len(videos_train), len(videos_val))
    say(f"Done in {sum(result.seconds.values()):.0f} s. Report: {out / 'report.md'}")
    return result


def _write_report(out: Path, settings: DemoSettings, result: DemoResult, *sizes: int) -> None:
    ct_train, ct_val, videos_train, videos_val = sizes
    timings = "\n".join(f"| {name} | {seconds:.1f} |" for name, seconds in result.seconds.items())
    montages = "\n".join(f"![{p.stem}]({p.name})" for p in sorted(out.glob("montage-*.png")))
    text = f"""# slicevid demo report

Synthetic stand-in data, not medical data: the numbers show the pipeline runs end to end,
not how ViPTT-Net performs on CT.

## Held-out phantoms ({ct_val} scans; fine-tuned on {ct_train})

{result.table}

PT: pretrained on {videos_train} synthetic action clips ({videos_val} for validation), then fine-tuned.
No PT: fine-tuned from random weights.

Both start from random encoder weights (no ImageNet weights offline) and train for a few CPU
minutes on {ct_train} scans, so kappas near zero are expected: slice features of an untrained
encoder barely differ between scans, which is the situation pretraining is meant to improve.
With ImageNet VGG-16 and the real data, use `slicevid pretrain` / `slicevid finetune`.

## Settings

```json
{json.dumps(settings.__dict__, indent=2)}
```

## Time (seconds, this machine)

| step | seconds |
|---|---|
{timings}

## Plots

Fine-tuning curves and confusion matrices: `finetune-pt/`, `finetune-nopt/`
(`curves.png`, `confusion.png`); pretraining: `pretrain/`.

![PT curves](finetune-pt/curves.png)
![PT confusion](finetune-pt/confusion.png)
![No PT confusion](finetune-nopt/confusion.png)

## Phantom slices, one per class

{montages}
"""
    atomic_write_text(out / "report.md", text)
