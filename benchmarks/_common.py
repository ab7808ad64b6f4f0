"""Helpers the benchmark scripts share: import path, machine description, recognizer set-up."""

from __future__ import annotations

import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
# Run from a checkout without installing the package.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from appliance._recognition.plugin import PlatedetRecognizer, PlatedetSettings  # noqa: E402
from appliance.base import PluginContext, SystemClock  # noqa: E402


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(threads: int, ocr_threads: int) -> dict[str, Any]:
    import onnxruntime

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "detector_threads": threads,
        "ocr_threads": ocr_threads,
    }


def load_recognizer(
    threads: int, ocr_threads: int, beam: int, engine: str = "platerec"
) -> PlatedetRecognizer:
    settings = PlatedetSettings.model_validate(
        {
            "threads": threads,
            "ocr_threads": ocr_threads,
            "ocr_beam_width": beam,
            "ocr_engine": engine,
        }
    )
    context = PluginContext(
        logger=logging.getLogger("benchmark"),
        data_dir=Path(tempfile.gettempdir()),
        clock=SystemClock(),
    )
    recognizer = PlatedetRecognizer(settings, context)
    # The benchmark runs one stage at a time in one thread, so process time is exact here and,
    # unlike thread time, also counts onnxruntime's worker threads.
    recognizer.cpu_clock = time.process_time
    recognizer.load()
    return recognizer
