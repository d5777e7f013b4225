"""Embedded synthetic data: CT-like phantoms and action-like videos, written to real files.

These are **synthetic stand-ins, not medical data**. They exist so the demo, the tests, the
docs and CI exercise the real loaders (NIfTI in Hounsfield units, encoded video in the UCF50
layout) on any machine, offline, in minutes. Both writers are deterministic from their seed.

The two kinds share their visual primitives on purpose: the phantoms' lesions are blobs,
rings, clusters and patches that appear, grow and vanish across slices, and the videos show
the same primitives appearing, growing and moving across frames. That gives video
pretraining something to transfer, the premise of ViPTT-Net, on data small enough for a CPU.
"""

from .phantoms import make_findings_phantom, make_phantom, write_tb_phantoms
from .report import mask_folder, write_report_phantoms
from .videos import make_action_clip, write_action_videos, write_video

__all__ = [
    "make_action_clip",
    "make_findings_phantom",
    "make_phantom",
    "mask_folder",
    "write_action_videos",
    "write_report_phantoms",
    "write_tb_phantoms",
    "write_video",
]
