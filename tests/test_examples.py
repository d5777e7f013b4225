"""Every script in examples/ runs to completion (each under a minute on a CPU)."""

import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import SHARED_ADRENALMNIST, write_medmnist_npz

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


def test_every_example_is_listed():
    assert {p.name for p in EXAMPLES} >= {
        "custom_timm_backbone.py",
        "register_encoder.py",
        "pretrain_finetune.py",
        "predict.py",
        "keras_weights.py",
        "medmnist.py",
    }


def _arguments(script: Path, folder: Path) -> list[str]:
    """medmnist.py reads the shared AdrenalMNIST3D file beside the repository, else a tiny one written here."""
    if script.name != "medmnist.py" or SHARED_ADRENALMNIST.is_file():
        return []
    return [str(write_medmnist_npz(folder / "adrenalmnist3d.npz", counts=(48, 16, 16), side=28))]


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script, tmp_path):
    command = [sys.executable, str(script), *_arguments(script, tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip()
