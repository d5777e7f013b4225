"""Inference per scan, side by side in one run: PyTorch eager fp32 and bf16, ONNX Runtime fp32
and int8, batched against one scan at a time; accuracy of each path and of test-time augmentation.

Two models:

* the demo's fine-tuned model (``slicevid-demo/PT/best``, written by ``slicevid demo``), on the
  demo's test phantoms: milliseconds per scan, and kappa / accuracy / agreement with eager fp32
  for every path, plus the gain or loss of each test-time augmentation;
* the ViPTT-Net preset (VGG-16 + LSTM, random weights) at a reduced input size, 16 x 112 x 112 by
  default: milliseconds per scan, and how far each path's probabilities stray from eager fp32.

Times are model time on preprocessed volumes in memory (reading NIfTI is the same for every
path), the median of repeated passes over the test set after one warm-up pass.

On a GPU (``--device cuda``) the eager paths run there, and ONNX Runtime runs with its CUDA
execution provider (and TensorRT's, as a row of its own, where ``onnxruntime-gpu`` offers it);
its times include copying each batch from and to the host, as ``predict`` does. A GPU machine
without nibabel can run the preset part alone (``--preset-only``).

    python benchmarks/inference.py                      # after slicevid demo
    python benchmarks/inference.py --demo-dir DIR --json out.json
    python benchmarks/inference.py --device cuda --depth 70 --size 224 --json inference-cuda.json
    python benchmarks/inference.py --quick              # runs a quick demo first (smoke test)
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from _timing import machine, markdown_table, median_seconds, save_json

from slicevid import SliceSequenceClassifier
from slicevid.data import ImageCLEFTBT
from slicevid.deploy import OnnxModel, export_onnx, quantize_onnx
from slicevid.metrics import classification_report
from slicevid.outputs import Outputs
from slicevid.predict import predict_batch
from slicevid.presets import viptt_net

BATCH = 8


def eager(model: torch.nn.Module, device: torch.device, dtype: torch.dtype | None = None) -> Callable:
    """The model on ``device`` (under autocast to ``dtype`` if given), returning outputs by task like ``OnnxModel``."""
    model = model.to(device)

    def run(volumes: torch.Tensor, lengths: torch.Tensor | None = None) -> Outputs:
        volumes = volumes.to(device)
        lengths = None if lengths is None else lengths.to(device)
        with torch.autocast(device.type, dtype or torch.float32, enabled=dtype is not None):
            outputs = model.forward_outputs(volumes, lengths)
        return Outputs({name: logits.float().cpu() for name, logits in outputs.tasks.items()})

    return run


def onnx_providers(device: torch.device) -> dict[str, list[str]]:
    """ONNX Runtime's execution providers to time on ``device``, by row label."""
    if device.type == "cpu":
        return {"": ["CPUExecutionProvider"]}
    import onnxruntime as ort

    available = ort.get_available_providers()
    rows = {}
    for provider, label in (("TensorrtExecutionProvider", " TensorRT"), ("CUDAExecutionProvider", " CUDA")):
        if provider in available:
            rows[label] = [provider, "CPUExecutionProvider"]
    if not rows:
        print(f"ONNX Runtime has no GPU provider here ({', '.join(available)}): its rows are left out")
    return rows


def paths(model: SliceSequenceClassifier, folder: Path, depth: int, device: torch.device) -> dict[str, Callable]:
    """Every way to run ``model``: eager fp32, eager bf16, ONNX Runtime fp32 and int8."""
    graph = export_onnx(model, folder / "model.onnx", depth=depth)
    int8 = quantize_onnx(graph, folder / "int8.onnx")
    threads = torch.get_num_threads()
    runs = {"PyTorch eager fp32": eager(model, device), "PyTorch eager bf16": eager(model, device, torch.bfloat16)}
    for label, providers in onnx_providers(device).items():
        runs[f"ONNX Runtime{label} fp32"] = OnnxModel(graph, threads=threads, providers=providers)
        runs[f"ONNX Runtime{label} int8"] = OnnxModel(int8, threads=threads, providers=providers)
    return runs


def probabilities(run: Callable, volumes: torch.Tensor, tasks: dict, batch: int, tta=()) -> torch.Tensor:
    """The first task's probabilities for every volume, ``batch`` volumes per call."""
    name = next(iter(tasks))
    parts = [
        predict_batch(run, volumes[start : start + batch], None, tasks, tta)[name]
        for start in range(0, len(volumes), batch)
    ]
    return torch.cat(parts)


def time_per_scan(run: Callable, volumes: torch.Tensor, tasks: dict, batch: int, repeat: int) -> float:
    seconds = median_seconds(lambda: probabilities(run, volumes, tasks, batch), repeat=repeat)
    return 1000 * seconds / len(volumes)


def demo_rows(demo: Path, repeat: int, device: torch.device) -> tuple[list[list], list[list]]:
    """Speed and accuracy of every path for the demo's model, and the TTA table."""
    model = SliceSequenceClassifier.from_pretrained(demo / "PT" / "best").eval()
    test = demo / "data" / "phantoms-test"
    data = ImageCLEFTBT(test, test / "labels.csv", "all", preprocessing=model.config.preprocessing)
    volumes = torch.stack([data[i][0] for i in range(len(data))])
    truth = [int(data[i][1]) for i in range(len(data))]
    tasks, classes = model.tasks, model.config.class_names
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        runs = paths(model, Path(folder), volumes.shape[2], device)
        reference = probabilities(runs["PyTorch eager fp32"], volumes, tasks, BATCH).argmax(1)
        for name, run in runs.items():
            predicted = probabilities(run, volumes, tasks, BATCH).argmax(1)
            report = classification_report(truth, predicted.tolist(), classes)
            one = time_per_scan(run, volumes, tasks, 1, repeat)
            batched = time_per_scan(run, volumes, tasks, BATCH, repeat)
            rows.append(
                [
                    name,
                    f"{one:.2f}",
                    f"{batched:.2f}",
                    f"{one / batched:.2f}x",
                    f"{report.kappa:.3f}",
                    f"{report.accuracy:.3f}",
                    f"{(predicted == reference).float().mean():.3f}",
                ]
            )
    tta_rows = []
    for tta in ((), ("flip",), ("reverse",), ("flip", "reverse")):
        predicted = probabilities(runs["PyTorch eager fp32"], volumes, tasks, BATCH, tta).argmax(1)
        report = classification_report(truth, predicted.tolist(), classes)
        tta_rows.append([" + ".join(tta) or "none", f"{report.kappa:.3f}", f"{report.accuracy:.3f}"])
    return rows, tta_rows


def preset_rows(depth: int, size: int, scans: int, repeat: int, device: torch.device) -> list[list]:
    """Speed of every path for the ViPTT-Net preset with random weights, and its fidelity to fp32."""
    torch.manual_seed(0)
    model = viptt_net(5).eval()
    volumes = torch.rand(scans, 1, depth, size, size)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        runs = paths(model, Path(folder), depth, device)
        reference = probabilities(runs["PyTorch eager fp32"], volumes, model.tasks, 2)
        for name, run in runs.items():
            stray = (probabilities(run, volumes, model.tasks, 2) - reference).abs().max()
            one = time_per_scan(run, volumes, model.tasks, 1, repeat)
            batched = time_per_scan(run, volumes, model.tasks, 2, repeat)
            rows.append([name, f"{one:.0f}", f"{batched:.0f}", f"{one / batched:.2f}x", f"{stray:.1e}"])
    base = float(rows[0][1])
    for row in rows:
        row.insert(3, f"{base / float(row[1]):.2f}x")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-dir", default="slicevid-demo", help="folder of a finished slicevid demo")
    parser.add_argument("--depth", type=int, default=16, help="the preset's input depth")
    parser.add_argument("--size", type=int, default=112, help="the preset's input height and width")
    parser.add_argument("--scans", type=int, default=4, help="volumes timed through the preset")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="run a quick demo first and time tiny sizes")
    parser.add_argument("--device", default="cpu", help="'cpu' or 'cuda' (eager there; ONNX Runtime's GPU providers)")
    parser.add_argument("--preset-only", action="store_true", help="time the preset only (no demo folder needed)")
    parser.add_argument("--json", default=None, help="also save the tables here")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    demo = Path(args.demo_dir)
    if args.quick:
        from slicevid.demo import run_demo

        demo = Path(tempfile.mkdtemp()) / "demo"
        run_demo(demo, quick=True, progress=False)
        args.depth, args.size, args.scans, args.repeat = 4, 32, 2, 1
    if not args.preset_only and not (demo / "PT" / "best").is_dir():
        raise SystemExit(
            f"{demo / 'PT' / 'best'} not found: run slicevid demo first (or pass --demo-dir, --quick or --preset-only)"
        )
    print(machine())
    speed = tta = []
    if not args.preset_only:
        speed, tta = demo_rows(demo, args.repeat, device)
        print(f"\nThe demo's model on its {demo / 'data' / 'phantoms-test'} (ms per scan):")
        header = ["path", "one at a time", f"batches of {BATCH}", "batching", "kappa", "accuracy", "same class as fp32"]
        print(markdown_table(header, speed))
        print("\nTest-time augmentation (eager fp32):")
        print(markdown_table(["augmentation", "kappa", "accuracy"], tta))
    preset = preset_rows(args.depth, args.size, args.scans, args.repeat, device)
    print(f"\nThe ViPTT-Net preset at {args.depth} x {args.size} x {args.size}, random weights (ms per scan):")
    header = ["path", "one at a time", "batches of 2", "vs eager fp32", "batching", "max |p - p fp32|"]
    print(markdown_table(header, preset))
    save_json(args.json, {"machine": machine(), "demo": speed, "tta": tta, "preset": preset})


if __name__ == "__main__":
    main()
