"""Speed and memory of the ViPTT-Net preset, measured side by side in one run.

Sections (each prints a table; ``--json`` saves everything):

1. inference and one training step: slicevid (all B*D slices in one batched call) against a
   naive loop that encodes one slice at a time, as TimeDistributed ports often do;
2. precision and layout: fp32, bf16 autocast, channels_last, and torch.compile (CUDA);
3. the frozen-encoder feature cache: a video-pretraining epoch with and without it;
4. memory of a training step with and without slice chunking + activation checkpointing
   (CUDA: peak allocated; everywhere: bytes of activations saved for backward);
5. the physical limit: FLOPs per scan, counted from the model, over the measured time, beside
   the card's dense bf16 peak; and the per-scan training speed against the reference's;
6. what the slice-sequence options cost against the LSTM baseline (training step time and
   activations saved for backward): BiGRU, attention, transformer, 2.5D slice context, and a
   padded batch of two depths (padding is never encoded).

    python benchmarks/throughput.py                 # full size: (2, 1, 70, 224, 224), for a GPU
    python benchmarks/throughput.py --quick         # tiny sizes on CPU (smoke test)
    python benchmarks/throughput.py --depth 16 --size 112   # a CPU-sized run
"""

from __future__ import annotations

import argparse
import contextlib

import torch
from _timing import machine, markdown_table, median_seconds, save_json
from torch.utils.data import TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from slicevid.presets import VIPTT_INPUT_SIZE, viptt_net
from slicevid.train import TrainConfig, fit

# Reference speeds (REFERENCE.md), measured on older cards with Keras / TF 2.4.
REFERENCE_FINETUNE_S_PER_SCAN = 0.67  # all layers, batch 2, P100
REFERENCE_PRETRAIN_S_PER_CLIP = 0.20  # VGG frozen, batch 1, V100
# Dense bf16 tensor-core peaks (TFLOP/s) from NVIDIA's data sheets.
BF16_PEAK_TFLOPS = {"H100 SXM": 989.4, "H100 PCIe": 756.0, "H100 NVL": 835.0, "H200": 989.4, "A100": 312.0}


def card_peak() -> tuple[str, float | None]:
    if not torch.cuda.is_available():
        return "CPU", None
    name = torch.cuda.get_device_name()
    for key, peak in BF16_PEAK_TFLOPS.items():
        if all(part in name for part in key.split()):
            return key, peak
    if "H100" in name:
        return "H100 SXM", BF16_PEAK_TFLOPS["H100 SXM"]
    return name, None


def naive_forward(model, x):
    """One slice at a time through the encoder: B * D separate calls."""
    x = model.adapter(x)
    batch, _, depth = x.shape[:3]
    features = torch.stack([torch.cat([model.encoder(x[b : b + 1, :, d]) for d in range(depth)]) for b in range(batch)])
    return model.forward_head(features)


def train_step(model, forward, x, y, optimizer, autocast_dtype=None):
    with torch.autocast(x.device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
        loss = torch.nn.functional.cross_entropy(forward(x).float(), y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def saved_activation_bytes(model, x, y, lengths=None) -> int:
    """Bytes of distinct tensors autograd keeps for backward (parameters excluded)."""
    params = {p.data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(tensor):
        ptr = tensor.untyped_storage().data_ptr()
        if ptr not in params:
            seen[ptr] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = torch.nn.functional.cross_entropy(model(x, lengths), y)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return sum(seen.values())


def cuda_peak_bytes(fn) -> int | None:
    if not torch.cuda.is_available():
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: (2, 1, 4, 32, 32), one repeat")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--depth", type=int, default=VIPTT_INPUT_SIZE[0])
    parser.add_argument("--size", type=int, default=VIPTT_INPUT_SIZE[1])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--clips", type=int, default=16, help="clips in the feature-cache epoch")
    parser.add_argument("--chunk", type=int, default=16, help="slice_chunk for the memory comparison")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile even on CUDA")
    parser.add_argument("--json", help="write all results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.depth, args.size, args.repeat, args.clips = 4, 32, 1, 4
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.type == "cuda"
    shape = (args.batch, 1, args.depth, args.size, args.size)
    torch.manual_seed(0)
    x = torch.rand(shape, device=device)
    y = torch.arange(args.batch, device=device) % 5
    model = viptt_net().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    scans = args.batch
    results: dict = {"machine": machine(), "input": shape}
    print(f"ViPTT-Net preset, input {shape}, {machine()}\n")

    # 1. batched vs naive
    def infer(forward):
        def run():
            with torch.no_grad():
                forward(x)

        return run

    model.eval()
    timing = {
        "inference, slicevid": median_seconds(infer(model), args.repeat),
        "inference, naive loop": median_seconds(infer(lambda v: naive_forward(model, v)), args.repeat),
    }
    model.train()
    timing["train step, slicevid"] = median_seconds(lambda: train_step(model, model, x, y, optimizer), args.repeat)
    timing["train step, naive loop"] = median_seconds(
        lambda: train_step(model, lambda v: naive_forward(model, v), x, y, optimizer), args.repeat
    )
    rows = [[name, f"{s / scans * 1000:.1f}"] for name, s in timing.items()]
    print("1. batched slices vs one slice at a time (fp32)")
    print(markdown_table(["what", "ms per scan"], rows))
    print(
        f"speed-up: inference {timing['inference, naive loop'] / timing['inference, slicevid']:.2f}x, "
        f"training {timing['train step, naive loop'] / timing['train step, slicevid']:.2f}x\n"
    )
    results["batched_vs_naive_s"] = timing

    # 2. precision and layout (training step)
    variants: dict[str, float] = {"fp32": timing["train step, slicevid"]}
    variants["bf16 autocast"] = median_seconds(
        lambda: train_step(model, model, x, y, optimizer, torch.bfloat16), args.repeat
    )
    model.set_slice_execution(channels_last=True)
    variants["bf16 + channels_last"] = median_seconds(
        lambda: train_step(model, model, x, y, optimizer, torch.bfloat16), args.repeat
    )
    if cuda and not args.no_compile:
        compiled = torch.compile(model)
        variants["bf16 + channels_last + compile"] = median_seconds(
            lambda: train_step(model, compiled, x, y, optimizer, torch.bfloat16), args.repeat, warmup=3
        )
    model.set_slice_execution(channels_last=False)
    fp32 = variants["fp32"]
    print("2. precision and layout, training step")
    print(
        markdown_table(
            ["variant", "ms per scan", "speed-up vs fp32"],
            [[k, f"{v / scans * 1000:.1f}", f"{fp32 / v:.2f}x"] for k, v in variants.items()],
        )
    )
    if not cuda:
        print("(torch.compile: CUDA only here, not measured on CPU)")
    print()
    results["train_step_variants_s"] = variants

    # 3. feature cache: a pretraining epoch (frozen encoder and adapter)
    clips = TensorDataset(torch.rand(args.clips, *shape[1:]), torch.arange(args.clips) % 10)
    config = {"batch_size": args.batch, "progress": False, "device": str(device), "amp": "auto"}
    epoch = {}
    for cached in (False, True):
        video = viptt_net(10)
        video.freeze_encoder(include_adapter=True)
        result = fit(video, clips, None, TrainConfig(epochs=3, feature_cache=cached, **config))
        epoch[cached] = min(row["seconds"] for row in result.history[1:])
    ratio = epoch[False] / epoch[True]
    print("3. pretraining epoch with the frozen-encoder feature cache (epochs after the first)")
    print(
        markdown_table(
            ["path", f"seconds per epoch ({args.clips} clips)", "ms per clip"],
            [
                ["uncached", f"{epoch[False]:.3f}", f"{epoch[False] / args.clips * 1000:.1f}"],
                ["cached", f"{epoch[True]:.4f}", f"{epoch[True] / args.clips * 1000:.2f}"],
            ],
        )
    )
    print(f"speed-up: {ratio:.0f}x\n")
    results["feature_cache_epoch_s"] = {"uncached": epoch[False], "cached": epoch[True], "speedup": ratio}

    # 4. memory: plain vs chunked + checkpointed
    memory = {}
    for label, chunk, ckpt in (("plain", None, False), (f"chunk {args.chunk} + checkpointing", args.chunk, True)):
        model.set_slice_execution(chunk=chunk, checkpoint=ckpt)
        seconds = median_seconds(lambda: train_step(model, model, x, y, optimizer), args.repeat)
        memory[label] = {
            "saved_bytes": saved_activation_bytes(model, x, y),
            "cuda_peak_bytes": cuda_peak_bytes(lambda: train_step(model, model, x, y, optimizer)),
            "seconds": seconds,
        }
    model.set_slice_execution()
    base, low = memory["plain"], memory[f"chunk {args.chunk} + checkpointing"]
    mib = lambda b: "n/a" if b is None else f"{b / 2**20:.0f}"  # noqa: E731
    print("4. training-step memory (fp32)")
    print(
        markdown_table(
            ["path", "activations saved for backward (MiB)", "CUDA peak (MiB)", "ms per scan"],
            [
                [k, mib(v["saved_bytes"]), mib(v["cuda_peak_bytes"]), f"{v['seconds'] / scans * 1000:.1f}"]
                for k, v in memory.items()
            ],
        )
    )
    print(
        f"saved-activation ratio {low['saved_bytes'] / base['saved_bytes']:.3f}, "
        f"time ratio {low['seconds'] / base['seconds']:.2f}\n"
    )
    results["memory"] = memory

    # 5. physical limit and the reference
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.encoder(torch.rand(args.depth, 3, args.size, args.size, device=device))
    encoder_flops = counter.get_total_flops()  # per scan (its D slices)
    slices = torch.rand(scans * args.depth, 3, args.size, args.size, device=device)
    context = torch.autocast(device.type, dtype=torch.bfloat16) if cuda else contextlib.nullcontext()

    def encoder_forward():
        with torch.no_grad(), context:
            model.encoder(slices)

    encoder_s = median_seconds(encoder_forward, args.repeat)
    achieved = encoder_flops * scans / encoder_s / 1e12
    card, peak = card_peak()
    best_train = min(variants.values()) / scans
    paper_size = (args.depth, args.size, args.size) == VIPTT_INPUT_SIZE
    versus = f"{REFERENCE_FINETUNE_S_PER_SCAN / best_train:.1f}x" if paper_size else "n/a (input is not 70x224x224)"
    print("5. physical limit (encoder forward, bf16 on CUDA / fp32 on CPU) and the reference")
    rows = [
        ["encoder GFLOPs per scan (counted)", f"{encoder_flops / 1e9:.1f}"],
        ["encoder forward, achieved TFLOP/s", f"{achieved:.2f}"],
        [f"{card} dense bf16 peak TFLOP/s", f"{peak:.0f}" if peak else "n/a"],
        ["share of peak", f"{achieved / peak:.0%}" if peak else "n/a"],
        ["best training step, s per scan", f"{best_train:.4f}"],
        ["reference fine-tuning (P100, older card), s per scan", f"{REFERENCE_FINETUNE_S_PER_SCAN}"],
        ["speed-up vs reference fine-tuning", versus],
        ["cached pretraining, s per clip", f"{epoch[True] / args.clips:.5f}"],
        ["reference pretraining (V100, older card), s per clip", f"{REFERENCE_PRETRAIN_S_PER_CLIP}"],
    ]
    print(markdown_table(["quantity", "value"], rows))
    results["limit"] = {
        "encoder_gflops_per_scan": encoder_flops / 1e9,
        "achieved_tflops": achieved,
        "card": card,
        "peak_tflops": peak,
        "best_train_s_per_scan": best_train,
    }
    results["options"] = option_costs(x, y, args.repeat)
    save_json(args.json, results)
    return results


OPTIONS = {
    "LSTM (the preset)": {},
    "BiGRU": {"aggregator": "gru", "aggregator_kwargs": {"hidden_size": 256, "bidirectional": True}},
    "attention": {"aggregator": "attention", "aggregator_kwargs": {}},
    "transformer": {"aggregator": "transformer", "aggregator_kwargs": {}},
    "slice_context=1 (adapter none)": {"slice_context": 1, "adapter": "none"},
}


def option_costs(x: torch.Tensor, y: torch.Tensor, repeat: int) -> dict:
    """Section 6: training-step time and saved activations of each option, relative to the LSTM preset."""
    costs = {}
    for name, overrides in OPTIONS.items():
        torch.manual_seed(0)
        model = viptt_net(**overrides).to(x.device)
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
        costs[name] = {
            "seconds": median_seconds(lambda m=model, o=optimizer: train_step(m, m, x, y, o), repeat),
            "saved_bytes": saved_activation_bytes(model, x, y),
        }
    half = x.shape[2] // 2
    lengths = torch.tensor([x.shape[2]] + [half] * (x.shape[0] - 1), device=x.device)
    model = viptt_net().to(x.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    padded = lambda v: model(v, lengths)  # noqa: E731
    costs[f"LSTM, padded batch (depths {x.shape[2]} and {half})"] = {
        "seconds": median_seconds(lambda: train_step(model, padded, x, y, optimizer), repeat),
        "saved_bytes": saved_activation_bytes(model, x, y, lengths),
    }
    base = costs["LSTM (the preset)"]
    print("6. slice-sequence options against the LSTM preset (training step, fp32)")
    print(
        markdown_table(
            ["option", "ms per scan", "time / LSTM", "activations saved (MiB)", "memory / LSTM"],
            [
                [
                    k,
                    f"{v['seconds'] / x.shape[0] * 1000:.1f}",
                    f"{v['seconds'] / base['seconds']:.2f}x",
                    f"{v['saved_bytes'] / 2**20:.0f}",
                    f"{v['saved_bytes'] / base['saved_bytes']:.2f}x",
                ]
                for k, v in costs.items()
            ],
        )
    )
    return costs


if __name__ == "__main__":
    main()
