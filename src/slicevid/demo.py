"""``slicevid demo``: the whole ViPTT-Net method on the embedded synthetic data, on a CPU, in minutes.

1. write synthetic CT phantoms (NIfTI) and action videos (AVI) into the run folder;
2. pretrain on the videos (read through ``ucf50``);
3. fine-tune on the phantoms (read through ``ImageCLEFTBT`` and ``CTPreprocessing``) from the
   pretrained weights (PT) and from random weights (No PT);
4. evaluate both on test phantoms, a separate set used neither in training nor in choosing the
   best epoch (that is the validation split's job), and print a Table-1-style comparison;
5. write plots, a Markdown report and ``results.json``.

The model keeps the paper's structure (1x1x1 adapter, a slice encoder applied to every
slice, an LSTM read at the last step, a dense layer, a softmax output) at CPU size: the
``compact_cnn`` encoder at half width (8 to 64 channels, 25 k parameters) instead of VGG-16,
16 x 48 x 48 volumes, slice features layer-normalised before the LSTM, AdamW, and BatchNorm
statistics recomputed before each validation. There are no ImageNet weights offline, so video pretraining trains
the encoder too (the paper freezes an ImageNet VGG-16 there). Why each of these is needed,
with measurements, is in the docs (``docs/demo.md``: "The demo, and what makes it learn").
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ._io import atomic_write_text
from .data import TB_CLASSES, UCF50_PAPER_CLASSES, CTPreprocessing, ImageCLEFTBT, ucf50
from .data.synthetic import write_action_videos, write_tb_phantoms
from .metrics import ClassificationReport, format_table
from .model import SliceSequenceClassifier, create_model
from .plots import plot_confusion_matrix, plot_slice_montage
from .train import TrainConfig, evaluate, finetune, pretrain

ARM_SLUGS = {"PT": "pt", "No PT": "nopt"}  # file-name spelling of the two fine-tuning arms


@dataclass(frozen=True)
class DemoSettings:
    """Sizes and recipe of the demo; :meth:`quick` is a smoke-test version for the tests."""

    encoder: str = "compact_cnn"
    widths: tuple[int, ...] = (8, 16, 32, 64)
    aggregator: str = "lstm"
    hidden_size: int = 128
    head_hidden: int = 128
    phantoms_per_class: int = 40  # split 80/20 into training and validation (best-epoch choice)
    test_phantoms_per_class: int = 20  # an independent set, scored once with the chosen weights
    phantom_shape: tuple[int, int, int] = (32, 64, 64)
    volume_size: tuple[int, int, int] = (16, 48, 48)
    videos_per_class: int = 20
    pretrain_epochs: int = 14
    finetune_epochs: int = 12
    optimizer: str = "adamw"
    lr: float = 2e-3
    batch_size: int = 8
    plateau_patience: int = 3
    early_stopping_patience: int = 0  # a fixed budget: every run trains all its epochs, keeping its best
    precise_bn: int = 6
    seed: int = 0

    @classmethod
    def quick(cls) -> DemoSettings:
        return cls(
            phantoms_per_class=5,
            test_phantoms_per_class=1,
            phantom_shape=(16, 32, 32),
            volume_size=(8, 32, 32),
            videos_per_class=2,
            hidden_size=16,
            head_hidden=16,
            pretrain_epochs=1,
            finetune_epochs=2,
            precise_bn=2,
        )

    def replace(self, **changes) -> DemoSettings:
        return replace(self, **changes)

    def train_config(self, epochs: int, out_dir: Path, progress: bool) -> TrainConfig:
        return TrainConfig(
            epochs=epochs,
            batch_size=self.batch_size,
            optimizer=self.optimizer,
            lr=self.lr,
            plateau_patience=self.plateau_patience,
            early_stopping_patience=self.early_stopping_patience,
            precise_bn=self.precise_bn,
            seed=self.seed,
            device="cpu",
            out_dir=str(out_dir),
            overwrite=True,
            progress=progress,
        )

    def model(self, num_classes: int) -> SliceSequenceClassifier:
        import torch

        torch.manual_seed(self.seed)
        return create_model(
            self.encoder,
            self.aggregator,
            num_classes,
            head_hidden=self.head_hidden,
            encoder_kwargs={"widths": self.widths},
            feature_norm="layernorm",
            aggregator_kwargs={"hidden_size": self.hidden_size},
        )


@dataclass
class DemoResult:
    """What the demo measured; ``results.json`` in the run folder holds the same."""

    reports: dict[str, ClassificationReport] = field(default_factory=dict)  # on the test phantoms
    val_kappas: dict[str, float] = field(default_factory=dict)  # of the chosen epoch, on validation
    seconds: dict[str, float] = field(default_factory=dict)
    pretrain_val_accuracy: float = float("nan")
    out_dir: Path | None = None
    table: str = ""

    def to_json(self, seed: int) -> str:
        results = {
            name: {
                "kappa": r.kappa,
                "accuracy": r.accuracy,
                "f1": dict(zip(r.class_names, r.f1, strict=True)),
                "val_kappa": self.val_kappas[name],
            }
            for name, r in self.reports.items()
        }
        return (
            json.dumps(
                {
                    **results,
                    "pretrain_val_accuracy": self.pretrain_val_accuracy,
                    "seconds": round(sum(self.seconds.values()), 1),
                    "seconds_by_step": self.seconds,
                    "seed": seed,
                },
                indent=2,
            )
            + "\n"
        )


def run_demo(
    out_dir: str | Path = "slicevid-demo", settings: DemoSettings | None = None, progress: bool = True
) -> DemoResult:
    """Run the demo into ``out_dir`` (replacing an earlier demo there) and return what it measured."""
    settings = settings or DemoSettings()
    out = Path(out_dir)
    if (out / "results.json").is_file() or (out / "report.md").is_file():
        shutil.rmtree(out)  # a previous demo: the data, runs and report are all regenerated
    result = DemoResult(out_dir=out)
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        result.seconds[name] = round(now - clock, 1)
        clock = now

    say = print if progress else (lambda *_: None)
    say(f"[1/5] writing synthetic data to {out / 'data'} (stand-ins, not medical data)")
    labels_csv = write_tb_phantoms(
        out / "data" / "phantoms", settings.phantoms_per_class, settings.phantom_shape, settings.seed
    )
    test_csv = write_tb_phantoms(
        out / "data" / "phantoms-test",
        settings.test_phantoms_per_class,
        settings.phantom_shape,
        [settings.seed, 1],  # a second stream: no test phantom repeats a training one
        prefix="TST",
    )
    write_action_videos(
        out / "data" / "videos",
        UCF50_PAPER_CLASSES,
        settings.videos_per_class,
        settings.volume_size[0],
        settings.volume_size[1],
        settings.seed,
    )
    lap("synthetic data")

    say("[2/5] pretraining on action videos (10 classes)")
    video_kwargs = {
        "classes": UCF50_PAPER_CLASSES,
        "num_frames": settings.volume_size[0],
        "size": settings.volume_size[1],
        "seed": settings.seed,
        "cache_dir": out / "cache" / "clips",
    }
    videos_train = ucf50(out / "data" / "videos", split="train", **video_kwargs)
    videos_val = ucf50(out / "data" / "videos", split="val", **video_kwargs)
    video_model = settings.model(len(UCF50_PAPER_CLASSES))
    pretrained = pretrain(
        video_model,
        videos_train,
        videos_val,
        settings.train_config(settings.pretrain_epochs, out / "pretrain", progress),
        freeze_encoder=False,
    )  # no ImageNet weights offline: the encoder learns too
    result.pretrain_val_accuracy = pretrained.evaluation.report.accuracy
    lap("pretraining")

    say("[3/5] fine-tuning on CT phantoms: PT and No PT")
    ct_kwargs = {
        "preprocessing": CTPreprocessing(size=settings.volume_size),
        "seed": settings.seed,
        "cache_dir": out / "cache" / "volumes",
    }
    ct_train = ImageCLEFTBT(labels_csv.parent, labels_csv, split="train", **ct_kwargs)
    ct_val = ImageCLEFTBT(labels_csv.parent, labels_csv, split="val", **ct_kwargs)
    ct_test = ImageCLEFTBT(test_csv.parent, test_csv, split="all", **ct_kwargs)
    for split in (ct_train, ct_val, ct_test):
        split.fill_cache(workers=2, progress=progress)
    lap("CT preprocessing")
    tuned = {}
    for name, start in (("PT", video_model), ("No PT", settings.model(len(TB_CLASSES)))):
        config = settings.train_config(settings.finetune_epochs, out / f"finetune-{ARM_SLUGS[name]}", progress)
        tuned[name], fit_result = finetune(start, ct_train, ct_val, config)
        result.val_kappas[name] = fit_result.evaluation.report.kappa
        lap(f"fine-tuning {name}")

    say(f"[4/5] evaluation on {len(ct_test)} test phantoms (unseen in training and in the choice of epoch)")
    for name, model in tuned.items():
        report = evaluate(model, ct_test, batch_size=settings.batch_size, device="cpu", progress=False).report
        result.reports[name] = report
        plot_confusion_matrix(report, out / f"test-confusion-{ARM_SLUGS[name]}.png", title=f"{name}, test phantoms")
    result.table = format_table(result.reports, TB_CLASSES)
    say(result.table)
    lap("test evaluation")

    say("[5/5] plots, report and results.json")
    for label, name in enumerate(TB_CLASSES):
        index = int((ct_val.labels == label).nonzero()[0][0])
        plot_slice_montage(
            ct_val[index][0].numpy(),
            out / f"montage-{label + 1}-{name.lower()}.png",
            title=f"synthetic phantom: {name} pattern ({ct_val.file_ids[index]})",
        )
    lap("plots")
    atomic_write_text(out / "results.json", result.to_json(settings.seed))
    _write_report(out, settings, result, len(ct_train), len(ct_val), len(ct_test), len(videos_train), len(videos_val))
    say(
        f"Done in {sum(result.seconds.values()):.0f} s: PT kappa {result.reports['PT'].kappa:.2f}, "
        f"No PT kappa {result.reports['No PT'].kappa:.2f}, pretraining validation accuracy "
        f"{result.pretrain_val_accuracy:.2f}."
    )
    say(
        f"Report:  {out / 'report.md'}\nResults: {out / 'results.json'}\n"
        f"Plots:   {out}/test-confusion-*.png; {out}/finetune-pt/, {out}/finetune-nopt/, {out}/pretrain/"
        " (curves, validation confusion, montage)"
    )
    return result


def _write_report(out: Path, settings: DemoSettings, result: DemoResult, *sizes: int) -> None:
    ct_train, ct_val, ct_test, videos_train, videos_val = sizes
    timings = "\n".join(f"| {name} | {seconds:.1f} |" for name, seconds in result.seconds.items())
    montages = "\n".join(f"![{p.stem}]({p.name})" for p in sorted(out.glob("montage-*.png")))
    text = f"""# slicevid demo report

Synthetic stand-in data, not medical data: the numbers show the method at work on a task
built to resemble the paper's, not how ViPTT-Net performs on CT.

## Test phantoms ({ct_test} scans)

Fine-tuned on {ct_train} phantoms; the epoch kept is the one with the lowest validation loss on
{ct_val} others (its validation kappa: PT {result.val_kappas["PT"]:.2f}, No PT
{result.val_kappas["No PT"]:.2f}). The test
phantoms, drawn separately, played no part in either, so their scores are not inflated by
that choice.

{result.table}

PT: pretrained on {videos_train} synthetic action clips (validation accuracy
{result.pretrain_val_accuracy:.2f} on {videos_val} clips), then fine-tuned.
No PT: fine-tuned from random weights, the same way.

## Settings

```json
{json.dumps(asdict(settings), indent=2)}
```

## Time (seconds, this machine)

| step | seconds |
|---|---|
{timings}

## Plots

Test confusion matrices: `test-confusion-pt.png`, `test-confusion-nopt.png`. Fine-tuning curves
and validation confusion matrices: `finetune-pt/`, `finetune-nopt/` (`curves.png`,
`confusion.png`); pretraining: `pretrain/`.

![PT curves](finetune-pt/curves.png)
![PT, test phantoms](test-confusion-pt.png)
![No PT, test phantoms](test-confusion-nopt.png)

## Phantom slices, one per class

{montages}
"""
    atomic_write_text(out / "report.md", text)
