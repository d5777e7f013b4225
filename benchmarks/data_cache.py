"""Epoch data time with and without the preprocessed-volume cache, on synthetic phantoms.

Writes phantoms (NIfTI, int16 HU, gzip) at a CT-like size, then times reading one epoch
through ``ImageCLEFTBT`` (load, HU window, SIZ to 70 x 224 x 224) uncached, the first
cached epoch (which fills the cache), and a later cached epoch. The ratio is uncached
over later-cached.

    python benchmarks/data_cache.py           # 5 phantoms of 120 x 512 x 512
    python benchmarks/data_cache.py --quick   # small phantoms, for smoke tests
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _timing import machine, markdown_table, save_json

from slicevid.data import CTPreprocessing, ImageCLEFTBT
from slicevid.data.synthetic import write_tb_phantoms


def epoch_seconds(dataset) -> float:
    start = time.perf_counter()
    for index in range(len(dataset)):
        dataset[index]
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--scans", type=int, default=5, help="number of phantoms, rounded down to a multiple of 5")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    shape, size = ((24, 96, 96), (12, 48, 48)) if args.quick else ((120, 512, 512), (70, 224, 224))
    per_class = max(1, args.scans // 5) if not args.quick else 1
    with tempfile.TemporaryDirectory() as tmp:
        labels = write_tb_phantoms(Path(tmp) / "scans", per_class, shape, seed=0)
        preprocessing = CTPreprocessing(size=size)
        uncached = ImageCLEFTBT(labels.parent, labels, "all", preprocessing=preprocessing)
        cached = ImageCLEFTBT(labels.parent, labels, "all", preprocessing=preprocessing, cache_dir=Path(tmp) / "c")
        uncached.load_volume(0)  # warm-up: imports and first-touch costs are not data time
        seconds = {
            "uncached epoch": epoch_seconds(uncached),
            "cached, first epoch (fills the cache)": epoch_seconds(cached),
            "cached, later epoch": epoch_seconds(cached),
        }
    later = seconds["cached, later epoch"]
    rows = [[name, f"{s:.2f}", f"{s / len(uncached) * 1000:.0f}", f"{s / later:.1f}x"] for name, s in seconds.items()]
    print(f"{len(uncached)} phantoms {shape} -> {size}, {machine()}")
    print(markdown_table(["epoch", "seconds", "ms / scan", "time / later cached"], rows))
    result = {
        "scans": len(uncached),
        "shape": shape,
        "size": size,
        "seconds": seconds,
        "machine": machine(),
        "speedup": seconds["uncached epoch"] / later,
    }
    save_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
