"""Timing helpers shared by the benchmark scripts (median of repeats, CUDA-synchronised)."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch


def median_seconds(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    _sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def machine() -> str:
    """A one-line description of where the numbers come from."""
    if torch.cuda.is_available():
        device = torch.cuda.get_device_name()
    else:
        device = f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return f"{device}; torch {torch.__version__}; Python {platform.python_version()}"


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def save_json(path: str | Path | None, payload: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(payload, indent=2) + "\n")


def finish_table(
    out: Path, title: str, started: float, body: str, results: object, name: str = "results.json", spent: float = 0.0
) -> str:
    """A table script's last step: ``title``, the machine and the run's seconds above ``body``.

    The seconds are those since ``started``, or ``spent`` when larger (a resumed run's earlier
    work). The text is printed and written to ``out/table.md``, ``results`` to ``out/name``
    (each atomically).
    """
    from slicevid._io import atomic_write_text

    seconds = max(time.perf_counter() - started, spent)
    text = f"{title}, {machine()}, {seconds:.0f} s in all\n\n{body}\n"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / name, json.dumps(results, indent=2, default=str) + "\n")
    atomic_write_text(out / "table.md", text)
    print(text)
    return text
