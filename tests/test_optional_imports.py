"""The model and the throughput benchmark work without the data-side packages.

The GPU machines this project benchmarks on have torch, torchvision and timm but not MONAI,
torchio, pytorchvideo, PyAV or nibabel, so those imports must stay lazy.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKED = ["monai", "torchio", "pytorchvideo", "av", "nibabel", "pydicom", "sklearn"]


@pytest.mark.slow
def test_model_and_throughput_benchmark_without_data_packages():
    script = textwrap.dedent(
        f"""
        import sys
        for name in {BLOCKED!r}:
            sys.modules[name] = None  # any import of them now raises ImportError
        sys.path.insert(0, {str(ROOT / "benchmarks")!r})
        import slicevid.presets, slicevid.train
        import throughput
        throughput.main(["--quick"])
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "5. physical limit" in done.stdout
