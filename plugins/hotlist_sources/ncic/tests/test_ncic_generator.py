"""The synthetic extract generator: shape, determinism, and that it parses back."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path

from alprbox_hotlist_ncic import HEADER, IMMIGRATION_VIOLATOR_REASON, parse_extract
from alprbox_hotlist_ncic.generator import generate_extract, generate_lines, write_extract

AS_OF = date(2026, 1, 1)


def test_generated_extract_parses_back_with_the_expected_count(tmp_path: Path) -> None:
    path = tmp_path / "extract.txt"
    size = write_extract(path, 10_000, seed=5, as_of=AS_OF)
    assert size == path.stat().st_size
    batch = parse_extract(path.read_bytes())
    dropped = batch.dropped[IMMIGRATION_VIOLATOR_REASON]
    assert len(batch.entries) + dropped == 10_000
    assert 60 <= dropped <= 140  # about 1 %
    assert batch.skipped == ()
    assert all(e.entered is not None and e.entered <= AS_OF for e in batch.entries)
    categories = Counter(e.category for e in batch.entries)
    assert len(categories) == 12
    assert categories.most_common(1)[0][0] == "NCIC Vehicle File"


def test_plates_come_in_common_state_formats() -> None:
    lines = list(generate_lines(5000, seed=1, as_of=AS_OF))
    assert lines[0] == HEADER + "\n"
    assert lines[-1] == "END|5000\n"
    by_state: dict[str, list[str]] = {}
    for line in lines[1:-1]:
        fields = line.rstrip("\n").split("|")
        by_state.setdefault(fields[4], []).append(fields[3])
    assert all(re.fullmatch(r"[1-9][A-Z]{3}[0-9]{3}|[1-9][A-Z][0-9]{5}", p) for p in by_state["CA"])
    assert all(re.fullmatch(r"[A-Z]{3}[0-9]{4}", p) for p in by_state["TX"])
    assert all(re.fullmatch(r"[A-Z]{3}-[0-9]{4}", p) for p in by_state["NY"])
    assert len(by_state["CA"]) > len(lines) / 2


def test_same_seed_same_extract_and_other_seed_another() -> None:
    assert generate_extract(500, seed=9, as_of=AS_OF) == generate_extract(500, seed=9, as_of=AS_OF)
    assert generate_extract(500, seed=9, as_of=AS_OF) != generate_extract(500, seed=8, as_of=AS_OF)


def test_immigration_fraction_is_honoured() -> None:
    batch = parse_extract(generate_extract(2000, seed=2, immigration_fraction=0.25, as_of=AS_OF))
    assert 400 <= batch.dropped[IMMIGRATION_VIOLATOR_REASON] <= 600
    none = parse_extract(generate_extract(2000, seed=2, immigration_fraction=0.0, as_of=AS_OF))
    assert none.dropped == {} and len(none.entries) == 2000


def test_writes_to_an_open_binary_file() -> None:
    out = io.BytesIO()
    write_extract(out, 1000, seed=4, as_of=AS_OF)
    assert out.getvalue() == generate_extract(1000, seed=4, as_of=AS_OF)


def test_command_line(tmp_path: Path) -> None:
    path = tmp_path / "cli.txt"
    done = subprocess.run(
        [sys.executable, "-m", "alprbox_hotlist_ncic.generator", str(path), "--count", "1000",
         "--seed", "3"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert "wrote 1000 records" in done.stdout
    batch = parse_extract(path.read_bytes())
    assert len(batch.entries) + sum(batch.dropped.values()) == 1000
