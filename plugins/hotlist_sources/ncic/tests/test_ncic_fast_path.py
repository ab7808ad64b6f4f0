"""The parser's fast, column-wise path gives exactly what the careful, line-by-line path gives.

``parse_extract`` reads chunks of lines column by column and sends any line it does not vouch
for down the careful path; ``_parse(data, fast=False)`` sends every line down it, checking NICs
for repeats as it goes (as the parser always did). Both must give equal entries, drop and skip
counts, and the same messages in the same order, or raise the same error.
"""

from __future__ import annotations

import gc
import random
from datetime import date

import pytest
from alprbox_hotlist_ncic import extract, parse_extract
from alprbox_hotlist_ncic.generator import generate_lines

from appliance import HotlistBatch, HotlistEntry, HotlistFormatError

AS_OF = date(2026, 1, 1)


def careful(data: bytes) -> HotlistBatch:
    return extract._parse(data, fast=False)


def assert_same(data: bytes) -> HotlistBatch:
    fast = parse_extract(data)
    slow = careful(data)
    assert all(type(e) is HotlistEntry for e in fast.entries)
    assert len(fast.entries) == len(slow.entries)
    for got, want in zip(fast.entries, slow.entries, strict=True):
        assert got == want
    assert fast.dropped == slow.dropped and list(fast.dropped) == list(slow.dropped)
    assert fast.skipped == slow.skipped
    return fast


def assert_same_error(data: bytes) -> str:
    with pytest.raises(HotlistFormatError) as fast:
        parse_extract(data)
    with pytest.raises(HotlistFormatError) as slow:
        careful(data)
    assert str(fast.value) == str(slow.value)
    return str(fast.value)


# Each takes a record's fields (a list of 13) and changes them in place.
MUTATIONS = [
    lambda f: f.__setitem__(0, f[0].lower()),  # file code in lower case
    lambda f: f.__setitem__(0, f" {f[0]} "),
    lambda f: f.__setitem__(0, "XYZ"),  # unknown file code
    lambda f: f.__setitem__(0, "IVF"),  # dropped, whatever else is wrong below
    lambda f: f.__setitem__(1, f[1].lower()),
    lambda f: f.__setitem__(1, f"{f[1]} "),
    lambda f: f.__setitem__(1, f[1][:5]),  # bad NIC
    lambda f: f.__setitem__(1, ""),
    lambda f: f.__setitem__(2, f[2].lower()),
    lambda f: f.__setitem__(2, "CA001"),  # bad ORI
    lambda f: f.__setitem__(2, f"\t{f[2]}"),
    lambda f: f.__setitem__(3, f[3].lower()),
    lambda f: f.__setitem__(3, f" {f[3]}-"),
    lambda f: f.__setitem__(3, f[3].replace("A", "А")),  # Cyrillic А
    lambda f: f.__setitem__(3, "７ＡＢＣ１２３"),  # fullwidth
    lambda f: f.__setitem__(3, ""),  # empty plate
    lambda f: f.__setitem__(3, " - . "),
    lambda f: f.__setitem__(3, "8TOOLONG1"),
    lambda f: f.__setitem__(3, "8AB*12"),
    lambda f: f.__setitem__(3, "7ABC\t123"),
    lambda f: f.__setitem__(3, "8ÄB12"),
    lambda f: f.__setitem__(4, f[4].lower()),
    lambda f: f.__setitem__(4, ""),  # state unknown
    lambda f: f.__setitem__(4, "CAL"),
    lambda f: f.__setitem__(4, f" {f[4]}"),
    lambda f: f.__setitem__(5, "tk"),
    lambda f: f.__setitem__(5, "A\x1bB"),
    lambda f: f.__setitem__(5, "X" * 20),
    lambda f: f.__setitem__(7, "19x9"),
    lambda f: f.__setitem__(7, " 2019"),
    lambda f: f.__setitem__(7, "٢٠١٩"),  # Arabic-Indic digits: not a year
    lambda f: f.__setitem__(8, ""),
    lambda f: f.__setitem__(9, "cam "),
    lambda f: f.__setitem__(10, "\x07"),
    lambda f: f.__setitem__(11, "20250230"),  # no such day
    lambda f: f.__setitem__(11, ""),
    lambda f: f.__setitem__(11, " 20250301"),
    lambda f: f.__setitem__(12, f"  {f[12]}  "),
    lambda f: f.__setitem__(12, "a\tb\x1bc"),
    lambda f: f.__setitem__(12, "CAFÉ – ÜBER"),
    lambda f: f.__setitem__(12, "É" * 1500),  # a long line, under the byte limit
    lambda f: f.__setitem__(12, f"{f[12]}\r"),  # a CRLF line end
    lambda f: f.append("extra"),  # 14 fields
    lambda f: f.pop(),  # 12 fields
]


def mutated_extract(count: int, seed: int) -> bytes:
    """A generated extract with about 1 line in 40 changed, repeated or blank."""
    rng = random.Random(seed)
    lines = [line.rstrip("\n") for line in generate_lines(count, seed, as_of=AS_OF)]
    header, records, trailer = lines[0], lines[1:-1], lines[-1]
    out = []
    for line in records:
        roll = rng.random()
        if roll < 0.01:
            out.append(rng.choice(["", "   ", "\r"]))  # blank lines do not count as records
        elif roll < 0.02 and out:
            out.append(rng.choice([r for r in out[-50:] if r.strip()] or [line]))  # a repeat
        elif roll < 0.04:
            fields = line.split("|")
            for mutate in rng.sample(MUTATIONS, rng.choice((1, 1, 2))):
                mutate(fields)
            out.append("|".join(fields))
        if roll >= 0.01:
            out.append(line)
    records_count = sum(1 for line in out if line.strip())
    assert trailer.startswith("END|")
    return "\n".join(["\ufeff" + header, *out, f"END|{records_count}", ""]).encode()


@pytest.mark.parametrize("chunk", [7, 64, extract._CHUNK_LINES])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_and_careful_agree_on_a_generated_file_with_oddities(
    chunk: int, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(extract, "_CHUNK_LINES", chunk)
    batch = assert_same(mutated_extract(4000, seed))
    assert batch.dropped and batch.skipped  # the oddities did come through
    assert any("duplicate NIC" in message for message in batch.skipped)


def test_fast_and_careful_agree_on_a_plain_generated_file() -> None:
    data = "".join(generate_lines(20_000, 4, as_of=AS_OF)).encode()
    batch = assert_same(data)
    assert batch.skipped == () and len(batch.entries) > 19_000


def test_repeated_nics_are_reported_in_line_order_among_other_skips(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(extract, "_CHUNK_LINES", 16)
    lines = [line.rstrip("\n") for line in generate_lines(600, 5, as_of=AS_OF)]
    records = lines[1:-1]
    out = []
    for n, line in enumerate(records):
        out.append(line)
        if n % 3 == 0:
            out.append(records[n // 2])  # repeats an earlier NIC (or its own, just listed)
        if n % 5 == 0:
            out.append(line.replace("|", "|x|", 1))  # 14 fields: skipped
    data = "\n".join([lines[0], *out, f"END|{len(out)}", ""]).encode()
    batch = assert_same(data)
    assert len(batch.skipped) == extract.MAX_SKIPPED_MESSAGES + 1
    assert batch.skipped[-1].endswith("more records skipped (messages not kept)")


def test_crlf_file_takes_the_fast_path_and_agrees() -> None:
    data = "".join(generate_lines(3000, 6, as_of=AS_OF)).replace("\n", "\r\n").encode()
    batch = assert_same(data)
    assert not any(e.reason.endswith("\r") for e in batch.entries)


@pytest.mark.parametrize(
    "breakage",
    [
        "trailer-count",
        "data-after-trailer",
        "long-line",
        "truncated",
        "malformed-trailer",
        "trailer-mid-chunk",
        "only-dropped",
    ],
)
def test_fast_and_careful_raise_the_same_error(breakage: str) -> None:
    lines = [line.rstrip("\n") for line in generate_lines(3000, 7, as_of=AS_OF)]
    header, records, trailer = lines[0], lines[1:-1], lines[-1]
    if breakage == "trailer-count":
        lines = [header, *records, "END|2999"]
    elif breakage == "data-after-trailer":
        lines = [header, *records, trailer, records[0]]
    elif breakage == "long-line":
        records[1500] += "X" * 5000
        lines = [header, *records, trailer]
    elif breakage == "truncated":
        lines = [header, *records[:2000]]
    elif breakage == "malformed-trailer":
        lines = [header, *records, "END|lots"]
    elif breakage == "trailer-mid-chunk":
        lines = [header, *records[:100], "END|100", *records[100:], trailer]
    elif breakage == "only-dropped":
        lines = [header, *("IVF" + r[3:] for r in records), trailer]
    message = assert_same_error("\n".join([*lines, ""]).encode())
    assert message.startswith("line ")


def test_parse_leaves_the_collector_as_it_found_it() -> None:
    data = "".join(generate_lines(100, 8, as_of=AS_OF)).encode()
    assert gc.isenabled()
    parse_extract(data)
    assert gc.isenabled()
    gc.disable()
    try:
        parse_extract(data)
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(HotlistFormatError):
        parse_extract(b"nonsense\n")
    assert gc.isenabled()


@pytest.mark.parametrize("chunk", [16, extract._CHUNK_LINES])
def test_a_short_and_a_long_record_in_one_chunk_are_not_misread(
    chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 12 fields on one line and 14 on another: the chunk still has 13 fields a line on average.
    monkeypatch.setattr(extract, "_CHUNK_LINES", chunk)
    lines = [line.rstrip("\n") for line in generate_lines(50, 9, as_of=AS_OF)]
    records = lines[1:-1]
    records[3] = records[3].rsplit("|", 1)[0]
    records[9] = records[9].replace("|", "|V000000001|", 1)
    records[31] = records[31].rsplit("|", 1)[0]  # the last line of the next chunk of 16
    batch = assert_same("\n".join([lines[0], *records, lines[-1], ""]).encode())
    assert [m.split(":")[0] for m in batch.skipped] == ["line 5", "line 11", "line 33"]
