"""``slicevid demo``: the whole ViPTT-Net method on the embedded synthetic data, on a CPU, in minutes.

The demo is the ``demo`` recipe ([`demo_recipe()`][slicevid.recipes.demo_recipe]) run by the one runner
([`run_recipe()`][slicevid.recipes.run_recipe]) on data it writes first:

1. synthetic CT phantoms (NIfTI), test phantoms from a second random stream, and action videos (AVI);
2. pretraining on the videos (read through ``ucf50``);
3. fine-tuning on the phantoms from the pretrained weights (PT) and from random weights (No PT),
   each keeping its epoch of lowest validation loss;
4. scoring both on the test phantoms, used neither in training nor in choosing the epoch;
5. ``report.md``, ``results.json``, plots.

It deletes nothing it did not write: a folder it wrote before (listed in its manifest) is
cleared of exactly those files; a folder holding files of the same names that the demo did not
write is refused.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ._io import atomic_write_text
from .data import TB_CLASSES, CTPreprocessing, ImageCLEFTBT
from .data.synthetic import write_action_videos, write_tb_phantoms
from .errors import RunFolderError
from .plots import plot_slice_montage
from .recipes import RecipeResult, demo_recipe, run_recipe, stage_folder

MANIFEST = ".slicevid-demo.json"
"""The demo's list of what it wrote into its folder (what a later demo there may remove)."""
WRITES = ("data", "cache", "pretrain", "PT", "No_PT", "recipe.yaml", "results.json", "table.md", "report.md")
"""The names the demo writes (besides ``montage-*.png``)."""


@dataclass(frozen=True)
class DemoData:
    """How much synthetic data the demo writes; `quick()` is a smoke-test version for the tests.

    Attributes:
        phantoms_per_class: phantoms per class, split 80/20 into training and validation.
        test_phantoms_per_class: test phantoms per class, drawn from a second random stream.
        phantom_shape: ``(depth, height, width)`` of each phantom.
        videos_per_class: action clips per class.
    """

    phantoms_per_class: int = 40
    test_phantoms_per_class: int = 20
    phantom_shape: tuple[int, int, int] = (32, 64, 64)
    videos_per_class: int = 20

    @classmethod
    def quick(cls) -> DemoData:
        return cls(phantoms_per_class=5, test_phantoms_per_class=1, phantom_shape=(16, 32, 32), videos_per_class=2)


def run_demo(
    out_dir: str | Path = "slicevid-demo", *, seed: int = 0, quick: bool = False, progress: bool = True
) -> RecipeResult:
    """Write the synthetic data, run the demo recipe on it into ``out_dir``, and report.

    Args:
        out_dir: the demo's folder (an earlier demo there is replaced; nothing else is touched).
        seed: seed of the data, the splits and the training.
        quick: tiny data and epochs: a smoke test in seconds.
        progress: show progress bars and stage lines.

    Returns:
        What the runner measured, scored on the test phantoms.

    Raises:
        RunFolderError: ``out_dir`` holds files of the demo's names that an earlier demo did not write.
    """
    out = Path(out_dir)
    _clear_previous_demo(out)
    recipe = demo_recipe(quick).with_seed(seed)
    sizes = DemoData.quick() if quick else DemoData()
    say = print if progress else (lambda *_: None)
    started = time.perf_counter()
    say(f"[data] writing synthetic phantoms and videos to {out / 'data'} (stand-ins, not medical data)")
    labels_csv = write_tb_phantoms(out / "data" / "phantoms", sizes.phantoms_per_class, sizes.phantom_shape, seed)
    test_csv = write_tb_phantoms(
        out / "data" / "phantoms-test",
        sizes.test_phantoms_per_class,
        sizes.phantom_shape,
        [seed, 1],  # a second stream: no test phantom repeats a training one
        prefix="TST",
    )
    clip = recipe.video
    write_action_videos(
        out / "data" / "videos", recipe.video_classes, sizes.videos_per_class, clip.num_frames, clip.size, seed
    )
    data_seconds = round(time.perf_counter() - started, 1)
    result = run_recipe(
        recipe,
        videos=out / "data" / "videos",
        scans=labels_csv.parent,
        labels_csv=labels_csv,
        test_scans=test_csv.parent,
        test_labels_csv=test_csv,
        out=out,
        progress=progress,
    )
    result.seconds = {"synthetic data": data_seconds, **result.seconds}
    montages = _write_montages(out, labels_csv, recipe.preprocessing, recipe.finetune.seed)
    _record(out, [*WRITES, *montages])
    summary = json.loads((out / "results.json").read_text())
    summary.update(seed=seed, seconds=round(sum(result.seconds.values()), 1), seconds_by_stage=result.seconds)
    atomic_write_text(out / "results.json", json.dumps(summary, indent=2) + "\n")
    _write_report(out, result, sizes, montages)
    say(result.table)
    say(
        f"Done in {sum(result.seconds.values()):.0f} s: PT kappa {result.reports['PT'].kappa:.2f}, "
        f"No PT kappa {result.reports['No PT'].kappa:.2f} on the test phantoms, pretraining validation "
        f"accuracy {result.pretrain_val_accuracy:.2f}.\n"
        f"Report:  {out / 'report.md'}\nResults: {out / 'results.json'}\n"
        f"Plots:   {out}/PT/, {out}/No_PT/, {out}/pretrain/ (curves, confusion matrices, montage)"
    )
    return result


def _clear_previous_demo(out: Path) -> None:
    """Remove what an earlier demo wrote into ``out`` (and nothing else); refuse clashes with other files."""
    manifest = out / MANIFEST
    if manifest.is_file():
        for name in json.loads(manifest.read_text())["wrote"]:
            target = out / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
        manifest.unlink()
    elif out.exists():
        clashes = [name for name in WRITES if (out / name).exists()] + [p.name for p in out.glob("montage-*.png")]
        if clashes:
            raise RunFolderError(
                f"--out {out} holds {', '.join(sorted(clashes))}, which no earlier demo wrote; "
                "choose another folder (the demo deletes only what it wrote itself)"
            )
    _record(out, WRITES)  # before writing anything: a killed demo's files are still known


def _record(out: Path, names) -> None:
    atomic_write_text(out / MANIFEST, json.dumps({"wrote": sorted(set(names))}, indent=2) + "\n")


def _write_montages(out: Path, labels_csv: Path, preprocessing: CTPreprocessing, seed: int) -> list[str]:
    """One validation phantom of each class, as the model sees it."""
    val = ImageCLEFTBT(
        labels_csv.parent,
        labels_csv,
        "val",
        seed=seed,
        preprocessing=preprocessing,
        cache_dir=out / "cache" / "volumes",
    )
    names = []
    for label, name in enumerate(TB_CLASSES):
        index = int((val.labels == label).nonzero()[0][0])
        names.append(f"montage-{label + 1}-{name.lower()}.png")
        plot_slice_montage(
            val[index][0].numpy(), out / names[-1], title=f"synthetic phantom: {name} pattern ({val.file_ids[index]})"
        )
    return names


def _write_report(out: Path, result: RecipeResult, sizes: DemoData, montages: list[str]) -> None:
    timings = "\n".join(f"| {name} | {seconds:.1f} |" for name, seconds in result.seconds.items())
    val_kappas = ", ".join(f"{name} {report.kappa:.2f}" for name, report in result.val_reports.items())
    pt, no_pt = stage_folder(out, "PT").name, stage_folder(out, "No PT").name
    text = f"""# slicevid demo report

Synthetic stand-in data, not medical data: the numbers show the method at work on a task
built to resemble the paper's, not how ViPTT-Net performs on CT.

## Test phantoms ({sizes.test_phantoms_per_class * 5} scans)

Fine-tuned on {sizes.phantoms_per_class * 4} phantoms; the epoch kept is the one with the lowest
validation loss on {sizes.phantoms_per_class} others (its validation kappa: {val_kappas}). The test
phantoms, drawn separately, played no part in either, so their scores are not inflated by
that choice.

{result.table}

PT: pretrained on {sizes.videos_per_class * 10} synthetic action clips (80% of them to train; validation
accuracy {result.pretrain_val_accuracy:.2f}), then fine-tuned. No PT: fine-tuned from random weights, the same way.

## Settings

The `demo` recipe, in full: `recipe.yaml` (`slicevid recipe show demo` prints the same).

## Time (seconds, this machine)

| step | seconds |
|---|---|
{timings}

## Plots

Test confusion matrices: `{pt}/test-confusion.png`, `{no_pt}/test-confusion.png`. Fine-tuning curves
and validation confusion matrices: `{pt}/`, `{no_pt}/` (`curves.png`, `confusion.png`); pretraining: `pretrain/`.

![PT curves]({pt}/curves.png)
![PT, test phantoms]({pt}/test-confusion.png)
![No PT, test phantoms]({no_pt}/test-confusion.png)

## Phantom slices, one per class

{chr(10).join(f"![{name}]({name})" for name in montages)}
"""
    atomic_write_text(out / "report.md", text)
