"""Parsing the DMV list: field mapping and bad input."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from alprbox_hotlist_dmv import HEADER, normalize_plate, parse_dmv
from alprbox_hotlist_dmv.generator import generate_dmv_file, write_dmv_file
from alprbox_hotlist_dmv.records import MAX_SKIPPED_MESSAGES

from appliance import HotlistFormatError


def row(
    plate: str = "7ABC123",
    state: str = "CA",
    status: str = "SUSPENDED",
    reason: str = "NO PROOF OF INSURANCE",
    effective: str = "2025-11-02",
    year: str = "2017",
    make: str = "HOND",
    model: str = "CIV",
    colour: str = "SIL",
) -> str:
    return ",".join((plate, state, status, reason, effective, year, make, model, colour))


def dmv_file(*rows: str, trailer: int | None = None) -> bytes:
    count = len(rows) if trailer is None else trailer
    return "\n".join([HEADER, *rows, f"#END,{count}", ""]).encode("utf-8")


def test_maps_every_field() -> None:
    batch = parse_dmv(
        dmv_file(
            row(),
            row(plate="1B23456", status="revoked", reason='"FRAUDULENT APPLICATION, CASE 25-1"'),
        )
    )
    assert batch.dropped == {} and batch.skipped == ()
    suspended, revoked = batch.entries
    assert suspended.plate == "7ABC123" and suspended.state == "CA"
    assert suspended.category == "DMV suspended registration"
    assert suspended.reason == "NO PROOF OF INSURANCE"
    assert suspended.entered == date(2025, 11, 2)
    assert (suspended.vehicle_year, suspended.vehicle_make) == (2017, "HOND")
    assert (suspended.vehicle_model, suspended.vehicle_colour) == ("CIV", "SIL")
    assert (suspended.reference, suspended.agency, suspended.covert) == ("", "", False)
    assert revoked.category == "DMV revoked registration"
    assert revoked.reason == "FRAUDULENT APPLICATION, CASE 25-1"


def test_crlf_and_byte_order_mark_are_accepted() -> None:
    data = b"\xef\xbb\xbf" + dmv_file(row(), row(plate="8XYZ999")).replace(b"\n", b"\r\n")
    assert len(parse_dmv(data).entries) == 2


def test_not_utf8_names_the_line_and_byte_offset() -> None:
    data = dmv_file(row(), row(plate="8XYZ999", reason="CAFÉ")).replace("É".encode(), b"\xc9")
    offset = data.index(b"\xc9")
    with pytest.raises(
        HotlistFormatError, match=rf"^line 3: not valid UTF-8 at byte offset {offset}"
    ):
        parse_dmv(data)


@pytest.mark.parametrize(
    "data",
    [
        b"<html><head><title>Login</title></head></html>\n",
        b"FIL|NIC|ORI|LIC\nVEH|V1|CA0010000|7ABC123\n",
        dmv_file(row()).split(b"\n", 1)[1],
    ],
)
def test_a_first_line_that_is_not_the_header_is_refused(data: bytes) -> None:
    with pytest.raises(HotlistFormatError, match=r"^line 1: not a DMV registration list") as err:
        parse_dmv(data)
    assert "7ABC123" not in str(err.value)


def test_empty_file_is_refused() -> None:
    with pytest.raises(HotlistFormatError, match=r"^line 1: the file is empty"):
        parse_dmv(b"")


def test_truncated_file_is_refused() -> None:
    data = dmv_file(row(), row(plate="8XYZ999"))
    with pytest.raises(HotlistFormatError, match=r"^line 3: truncated"):
        parse_dmv(data[: data.index(b"#END")])


def test_trailer_count_must_match() -> None:
    with pytest.raises(HotlistFormatError, match=r"^line 3: the trailer says 7 records but .* 1"):
        parse_dmv(dmv_file(row(), trailer=7))


def test_malformed_trailer_and_data_after_it_are_refused() -> None:
    with pytest.raises(HotlistFormatError, match=r"^line 3: malformed trailer"):
        parse_dmv(dmv_file(row()).replace(b"#END,1", b"#END,x"))
    with pytest.raises(HotlistFormatError, match=r"^line 4: data after the #END trailer"):
        parse_dmv(dmv_file(row()) + b"8XYZ999,CA,REVOKED,,2025-01-01,,,,\n")


def test_a_huge_line_is_refused_with_a_short_message() -> None:
    with pytest.raises(HotlistFormatError, match=r"^line 3: \d+ bytes long") as err:
        parse_dmv(dmv_file(row(), row(plate="8XYZ999", reason="X" * 10_000_000)))
    assert len(str(err.value)) < 120


def test_binary_data_is_refused() -> None:
    with pytest.raises(HotlistFormatError, match=r"^line 2: binary data"):
        parse_dmv(dmv_file(row(reason="A\x00B")))


def test_no_usable_records_is_refused() -> None:
    with pytest.raises(HotlistFormatError, match=r"^line 4: no usable records .*2 skipped"):
        parse_dmv(dmv_file(row(plate=""), row(status="EXPIRED")))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (row(plate="7ABC-123"), "line 3: plate already listed on line 2"),
        (row(plate=""), "line 3: plate is empty"),
        (row(plate="8TOOLONG1"), "line 3: plate is not 1-8 letters and digits"),
        (row(plate="8XY*9"), "line 3: plate is not 1-8 letters and digits"),
        (row(plate="8XYZ999", state="C"), "line 3: state is not a two-letter code"),
        (row(plate="8XYZ999", status="EXPIRED"), "line 3: status 'EXPIRED' is neither"),
        (row(plate="8XYZ999", effective="2025-02-30"), "line 3: effective_date is not a valid"),
        (row(plate="8XYZ999", effective="11/02/2025"), "line 3: effective_date is not a valid"),
        (row(plate="8XYZ999") + ",extra", "line 3: 10 fields, expected 9"),
        (row(plate="8XYZ999", reason='"unclosed'), "line 3: malformed CSV"),
    ],
)
def test_bad_records_are_skipped_naming_the_line(bad: str, message: str) -> None:
    batch = parse_dmv(dmv_file(row(), bad, row(plate="9LAST99")))
    assert [e.plate for e in batch.entries] == ["7ABC123", "9LAST99"]
    (skipped,) = batch.skipped
    assert skipped.startswith(message)
    assert "8XYZ999" not in skipped and "TOOLONG" not in skipped


def test_same_plate_in_another_state_is_not_a_duplicate() -> None:
    assert len(parse_dmv(dmv_file(row(), row(state="NV"))).entries) == 2


def test_skip_messages_are_capped_and_the_rest_counted() -> None:
    batch = parse_dmv(dmv_file(*(row(plate="") for _ in range(130)), row()))
    assert len(batch.skipped) == MAX_SKIPPED_MESSAGES + 1
    assert batch.skipped[-1] == "30 more records skipped (messages not kept)"


@pytest.mark.parametrize(
    ("raw", "plate"),
    [
        ("７ＡＢＣ１２３", "7ABC123"),
        ("7АВС123", "7ABC123"),  # Cyrillic
        ("7ΑΒΕ123", "7ABE123"),  # Greek
        ("7abc 12.3", "7ABC123"),
    ],
)
def test_lookalike_plates_are_normalized(raw: str, plate: str) -> None:
    assert normalize_plate(raw) == plate
    assert parse_dmv(dmv_file(row(plate=raw))).entries[0].plate == plate


def test_generated_file_parses_back_with_the_expected_count(tmp_path: Path) -> None:
    path = tmp_path / "dmv.csv"
    size = write_dmv_file(path, 5000, seed=3)
    assert size == path.stat().st_size
    batch = parse_dmv(path.read_bytes())
    assert len(batch.entries) == 5000 and batch.skipped == ()
    assert {e.category for e in batch.entries} == {
        "DMV suspended registration",
        "DMV revoked registration",
    }
    assert generate_dmv_file(100, 1) == generate_dmv_file(100, 1) != generate_dmv_file(100, 2)
