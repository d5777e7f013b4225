"""SIZ speed: slicevid's torch zoom against scipy.ndimage.zoom, MONAI Resize and torchio Resize.

All four resample the same 512 x 512 x 120 HU-windowed volume to 70 x 224 x 224 with linear
interpolation, in one run; ratios are scipy's time (or the others') over ours.

    python benchmarks/resample.py            # the full 512 x 512 x 120 case
    python benchmarks/resample.py --quick    # a small volume, for smoke tests
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _timing import machine, markdown_table, median_seconds, save_json
from scipy import ndimage

from slicevid.resample import spline_interpolated_zoom


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small volume, one repeat")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    shape, size = ((40, 128, 128), (20, 64, 64)) if args.quick else ((120, 512, 512), (70, 224, 224))
    repeat = 1 if args.quick else args.repeat
    volume = np.random.default_rng(0).random(shape, dtype=np.float32)
    factors = [t / s for t, s in zip(size, shape, strict=True)]
    tensor = torch.from_numpy(volume)

    candidates = {
        "slicevid (torch, trilinear)": lambda: spline_interpolated_zoom(tensor, size),
        "scipy.ndimage.zoom order=1": lambda: ndimage.zoom(volume, factors, order=1, mode="nearest"),
    }
    try:
        from monai.transforms import Resize

        monai_resize = Resize(size, mode="trilinear", align_corners=True)
        candidates["MONAI Resize trilinear"] = lambda: monai_resize(tensor[None])
    except ImportError:
        pass
    try:
        import torchio as tio

        image = tio.ScalarImage(tensor=tensor[None])
        tio_resize = tio.Resize(size, image_interpolation="linear")
        candidates["torchio Resize linear"] = lambda: tio_resize(image)
    except ImportError:
        pass

    seconds = {name: median_seconds(fn, repeat=repeat) for name, fn in candidates.items()}
    ours = seconds["slicevid (torch, trilinear)"]
    rows = [[name, f"{s * 1000:.0f}", f"{s / ours:.1f}x"] for name, s in seconds.items()]
    print(f"SIZ {shape} -> {size}, {machine()}")
    print(markdown_table(["method", "ms", "time / slicevid"], rows))
    result = {
        "shape": shape,
        "size": size,
        "seconds": seconds,
        "machine": machine(),
        "speedup_vs_scipy": seconds["scipy.ndimage.zoom order=1"] / ours,
    }
    save_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
