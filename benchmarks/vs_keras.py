"""The authors' ViPTT-Net in TF-Keras beside slicevid's preset: same input, threads and optimiser.

The Keras model is the reference's (REFERENCE.md): a Conv3D 1x1x1 adapter, TimeDistributed
VGG-16 without top plus global average pooling, LSTM 256, Dense 1024, softmax. Both models
start from random weights, take a ``(2, 16, 112, 112)`` one-channel batch by default, train
with SGD (lr 1e-3) on cross-entropy, and run on the same number of CPU threads. Each side runs
in its own process, one after the other, so that neither's thread pools slow the other.

Reported, as the median of repeated runs after warm-up:

* a training step (forward, backward, SGD update) and an inference batch, fp32, for Keras and
  for slicevid's default path (what ``fit`` and ``predict_scans`` run);
* slicevid's fast inference paths beside them: bf16 autocast, ONNX Runtime fp32, ONNX Runtime
  int8.

TensorFlow is in the optional ``[peers]`` extra (``pip install -e ".[peers]"``). Without it
the script says so and exits; ``--keras-python`` runs the Keras side with another interpreter
(a virtual environment that has TensorFlow).

    python benchmarks/vs_keras.py
    python benchmarks/vs_keras.py --keras-python /path/to/tf-venv/bin/python --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

CLASSES = 5


def median_seconds(fn: Callable[[], object], repeat: int, warmup: int) -> float:
    """Median wall time of ``fn()``; here rather than in _timing so the Keras side needs no torch."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def keras_side(batch: int, depth: int, size: int, threads: int, repeat: int) -> dict:
    """Build the reference model in TF-Keras and time it (run in the child process)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras = tf.keras
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(size, size, 3), pooling="avg")
    model = keras.Sequential(
        [
            keras.Input((depth, size, size, 1)),
            keras.layers.Conv3D(3, (1, 1, 1)),
            keras.layers.TimeDistributed(vgg),
            keras.layers.LSTM(256),
            keras.layers.Dense(1024, activation="relu"),
            keras.layers.Dense(CLASSES, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-3), loss="categorical_crossentropy")
    rng = np.random.default_rng(0)
    volumes = rng.random((batch, depth, size, size, 1), dtype=np.float32)
    targets = np.eye(CLASSES, dtype=np.float32)[rng.integers(0, CLASSES, batch)]
    return {
        "parameters": int(model.count_params()),
        "train_step_s": median_seconds(lambda: model.train_on_batch(volumes, targets), repeat, warmup=2),
        "inference_s": median_seconds(lambda: model.predict_on_batch(volumes), repeat, warmup=2),
        "version": f"TensorFlow {tf.__version__}",
    }


def slicevid_side(batch: int, depth: int, size: int, threads: int, repeat: int) -> dict:
    """Build slicevid's preset and time its default path and its fast inference paths."""
    import tempfile
    from pathlib import Path

    import torch

    from slicevid.presets import viptt_net

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = viptt_net(CLASSES, init="keras")
    volumes = torch.rand(batch, 1, depth, size, size)
    targets = torch.randint(0, CLASSES, (batch,))
    optimiser = torch.optim.SGD(model.parameters(), lr=1e-3)

    def train_step() -> None:
        model.train()
        optimiser.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(volumes), targets).backward()
        optimiser.step()

    def infer(autocast: bool = False) -> Callable[[], object]:
        def run() -> object:
            model.eval()
            with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=autocast):
                return model(volumes)

        return run

    result = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_step_s": median_seconds(train_step, repeat, warmup=1),
        "inference_s": median_seconds(infer(), repeat, warmup=1),
        "inference_bf16_s": median_seconds(infer(autocast=True), repeat, warmup=1),
        "version": f"PyTorch {torch.__version__}",
    }
    try:
        from slicevid.deploy import OnnxModel, export_onnx, quantize_onnx
    except ImportError:
        return result
    with tempfile.TemporaryDirectory() as folder:
        path = export_onnx(model, Path(folder) / "m.onnx", depth=depth)
        for name, graph in (("onnx", path), ("onnx_int8", quantize_onnx(path, Path(folder) / "int8.onnx"))):
            session = OnnxModel(graph, threads=threads)
            result[f"inference_{name}_s"] = median_seconds(lambda s=session: s(volumes), repeat, warmup=1)
    return result


def run_child(python: str, side: str, args: argparse.Namespace) -> dict:
    command = [python, __file__, "--side", side, *_shared_flags(args)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the {side} side failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _shared_flags(args: argparse.Namespace) -> list[str]:
    return [
        f"--batch={args.batch}",
        f"--depth={args.depth}",
        f"--size={args.size}",
        f"--threads={args.threads}",
        f"--repeat={args.repeat}",
    ]


def has_tensorflow(python: str) -> bool:
    probe = subprocess.run([python, "-c", "import tensorflow"], capture_output=True)
    return probe.returncode == 0


def report(keras: dict, ours: dict, args: argparse.Namespace) -> str:
    def row(name: str, seconds: float, reference: float) -> str:
        return f"| {name} | {seconds:.2f} | {reference / seconds:.2f}x |"

    shape = f"{args.batch} x {args.depth} x {args.size} x {args.size}"
    lines = [
        f"input {shape}, {args.threads} threads, median of {args.repeat}; {keras['version']}, {ours['version']}",
        f"parameters: Keras {keras['parameters']:,}, slicevid {ours['parameters']:,} (PyTorch's second LSTM bias)",
        "",
        "| training step, fp32 | seconds | speed vs Keras |",
        "|---|---|---|",
        row("Keras", keras["train_step_s"], keras["train_step_s"]),
        row("slicevid (fit's path)", ours["train_step_s"], keras["train_step_s"]),
        "",
        "| inference batch | seconds | speed vs Keras fp32 |",
        "|---|---|---|",
        row("Keras fp32", keras["inference_s"], keras["inference_s"]),
        row("slicevid fp32 (predict's path)", ours["inference_s"], keras["inference_s"]),
        row("slicevid bf16 autocast", ours["inference_bf16_s"], keras["inference_s"]),
    ]
    for key, name in (("inference_onnx_s", "ONNX Runtime fp32"), ("inference_onnx_int8_s", "ONNX Runtime int8")):
        if key in ours:
            lines.append(row(f"slicevid {name}", ours[key], keras["inference_s"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--depth", type=int, default=16)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--keras-python", default=sys.executable, help="interpreter with TensorFlow (default: this one)"
    )
    parser.add_argument("--json", default=None, help="also save the figures here")
    parser.add_argument("--side", choices=["keras", "slicevid"], default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = (args.batch, args.depth, args.size, args.threads, args.repeat)
    if args.side:  # a child process: print one JSON line
        print(json.dumps((keras_side if args.side == "keras" else slicevid_side)(*sizes)))
        return
    if not has_tensorflow(args.keras_python):
        print(f"TensorFlow is not installed for {args.keras_python}: pip install -e '.[peers]', or --keras-python")
        return
    keras = run_child(args.keras_python, "keras", args)
    ours = run_child(sys.executable, "slicevid", args)
    print(report(keras, ours, args))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"keras": keras, "slicevid": ours, "settings": vars(args)}, handle, indent=2)


if __name__ == "__main__":
    main()
