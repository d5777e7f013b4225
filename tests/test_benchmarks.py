"""The benchmark scripts run in their quick modes and print their tables (speed is not asserted)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("script", ["throughput.py", "resample.py", "data_cache.py", "imageclef_table.py"])
def test_help(script):
    assert "usage:" in run(script, "--help")


def test_throughput_quick(tmp_path):
    out = run("throughput.py", "--quick", "--json", str(tmp_path / "t.json"))
    for heading in ("1. batched slices", "2. precision", "3. pretraining epoch", "4. training-step memory",
                    "5. physical limit"):
        assert heading in out
    assert "| inference, naive loop |" in out and "n/a (input is not 70x224x224)" in out
    assert (tmp_path / "t.json").is_file()


def test_resample_and_cache_quick():
    assert "| scipy.ndimage.zoom order=1 |" in run("resample.py", "--quick")
    assert "| cached, later epoch |" in run("data_cache.py", "--quick")


def test_imageclef_table_synthetic_and_resume(tmp_path):
    out = run("imageclef_table.py", "--synthetic", "--quick", "--out", str(tmp_path))
    for method in ("No PT", "PT", "PT+CW", "PT+CW+AUG"):
        assert f"| {method} |" in out
    assert (tmp_path / "settings.json").is_file() and (tmp_path / "table.md").is_file()
    again = run("imageclef_table.py", "--synthetic", "--quick", "--out", str(tmp_path))
    assert again.count("already done") == 4
