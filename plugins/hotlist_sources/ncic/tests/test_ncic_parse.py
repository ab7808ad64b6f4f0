"""Parsing the NCIC extract: field mapping, the Immigration Violator drop, and bad input."""

from __future__ import annotations

from datetime import date

import pytest
from alprbox_hotlist_ncic import (
    FILE_CODES,
    HEADER,
    IMMIGRATION_VIOLATOR_REASON,
    normalize_plate,
    parse_extract,
)
from alprbox_hotlist_ncic.extract import MAX_SKIPPED_MESSAGES

from appliance import HotlistFormatError


def record(
    fil: str = "VEH",
    nic: str = "V000000001",
    ori: str = "CA0010000",
    lic: str = "7ABC123",
    lis: str = "CA",
    lit: str = "PC",
    liy: str = "2026",
    vyr: str = "2019",
    vma: str = "TOYT",
    vmo: str = "CAM",
    vco: str = "BLK",
    dte: str = "20250301",
    mis: str = "STOLEN VEHICLE - CASE 25-00001",
) -> str:
    return "|".join((fil, nic, ori, lic, lis, lit, liy, vyr, vma, vmo, vco, dte, mis))


def extract(*records: str, trailer: int | None = None) -> bytes:
    count = len(records) if trailer is None else trailer
    return "\n".join([HEADER, *records, f"END|{count}", ""]).encode("utf-8")


def nics(n: int, prefix: str = "V") -> list[str]:
    return [f"{prefix}{i:09d}" for i in range(1, n + 1)]


def test_maps_every_field() -> None:
    batch = parse_extract(extract(record()))
    assert batch.dropped == {}
    assert batch.skipped == ()
    (entry,) = batch.entries
    assert entry.plate == "7ABC123"
    assert entry.state == "CA"
    assert entry.plate_type == "PC"
    assert entry.category == "NCIC Vehicle File"
    assert entry.reason == "STOLEN VEHICLE - CASE 25-00001"
    assert entry.reference == "V000000001"
    assert entry.agency == "CA0010000"
    assert entry.entered == date(2025, 3, 1)
    assert entry.expires is None
    assert (entry.vehicle_year, entry.vehicle_make, entry.vehicle_model) == (2019, "TOYT", "CAM")
    assert entry.vehicle_colour == "BLK"
    assert entry.covert is False


def test_every_imported_file_is_named_in_full() -> None:
    codes = [c for c, f in FILE_CODES.items() if f.excluded_by is None]
    batch = parse_extract(
        extract(*(record(fil=c, nic=n) for c, n in zip(codes, nics(len(codes)), strict=True)))
    )
    assert [e.category for e in batch.entries] == [FILE_CODES[c].name for c in codes]
    assert len(codes) == 12
    assert all(
        e.category.startswith("NCIC ") and e.category.endswith(" File") for e in batch.entries
    )
    # Threat Screening Center and Protective Interest hits go to privileged roles only.
    assert {e.category for e in batch.entries if e.covert} == {
        "NCIC Threat Screening Center File",
        "NCIC Protective Interest File",
    }


def test_optional_fields_may_be_blank_and_odd_descriptions_are_blanked() -> None:
    batch = parse_extract(
        extract(record(lis="", lit="", liy="", vyr="19x9", vma="", vmo="", vco="", mis="a\tb\x1bc"))
    )
    (entry,) = batch.entries
    assert entry.state is None and entry.plate_type is None and entry.vehicle_year is None
    assert entry.vehicle_make is entry.vehicle_model is entry.vehicle_colour is None
    assert entry.reason == "a b c"


def test_crlf_line_ends_and_a_byte_order_mark_are_accepted() -> None:
    data = b"\xef\xbb\xbf" + extract(record(), record(nic="V000000002")).replace(b"\n", b"\r\n")
    assert len(parse_extract(data).entries) == 2


# -- Immigration Violator File: Cal. Gov. Code 7284.6, Vallejo 426.6 ---------------------------


def test_immigration_violator_records_are_dropped_and_counted() -> None:
    data = extract(
        record(nic="V000000001", lic="7ABC123"),
        record(fil="IVF", nic="I000000002", lic="8IMM001"),
        record(fil="ivf", nic="I000000003", lic="8IMM002"),  # case and padding do not matter
        record(fil=" IVF ", nic="I000000004", lic="8IMM003"),
        record(fil="IVF", nic="V000000001", lic=""),  # even a broken one is dropped, not skipped
    )
    batch = parse_extract(data)
    assert [e.plate for e in batch.entries] == ["7ABC123"]
    assert batch.dropped == {IMMIGRATION_VIOLATOR_REASON: 4}
    assert batch.skipped == ()
    assert "7284.6" in IMMIGRATION_VIOLATOR_REASON and "Immigration Violator" in (
        IMMIGRATION_VIOLATOR_REASON
    )


def test_an_extract_of_only_immigration_violator_records_is_no_list() -> None:
    data = extract(record(fil="IVF", nic="I000000001"), record(fil="IVF", nic="I000000002"))
    with pytest.raises(HotlistFormatError, match=r"line 4: no usable records .*2 dropped"):
        parse_extract(data)


def test_the_file_table_cannot_be_changed_to_keep_them() -> None:
    assert FILE_CODES["IVF"].excluded_by == IMMIGRATION_VIOLATOR_REASON
    with pytest.raises(TypeError):
        FILE_CODES["IVF"] = FILE_CODES["VEH"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        FILE_CODES["IVF"].excluded_by = None  # type: ignore[misc]


# -- files that cannot be trusted as a whole -----------------------------------------------


def test_not_utf8_names_the_line_and_byte_offset() -> None:
    data = extract(record(), record(nic="V000000002", mis="CAF\xc9"))
    data = data.replace("CAFÉ".encode(), b"CAF\xc9")  # Latin-1, not UTF-8
    offset = data.index(b"\xc9")
    line_start = data.rindex(b"\n", 0, offset) + 1
    with pytest.raises(HotlistFormatError) as err:
        parse_extract(data)
    assert str(err.value).startswith("line 3: not valid UTF-8")
    assert f"byte offset {offset}" in str(err.value)
    assert f"byte {offset - line_start + 1} of the line" in str(err.value)


def test_html_page_is_refused() -> None:
    page = b"<!DOCTYPE html>\n<html><body><h1>Sign in</h1></body></html>\n"
    with pytest.raises(
        HotlistFormatError, match=r"^line 1: not an NCIC extract.*'<!DOCTYPE html>'"
    ):
        parse_extract(page)


@pytest.mark.parametrize(
    "data",
    [
        b"plate,state,status\n7ABC123,CA,SUSPENDED\n",  # another format
        extract(record()).split(b"\n", 1)[1],  # header missing: the first record is line 1
        HEADER.replace("LIS", "LST").encode() + b"\n" + record().encode() + b"\nEND|1\n",
    ],
)
def test_a_first_line_that_is_not_the_header_is_refused(data: bytes) -> None:
    with pytest.raises(HotlistFormatError, match=r"^line 1: not an NCIC extract") as err:
        parse_extract(data)
    assert "7ABC123" not in str(err.value)  # a plate is never quoted


def test_empty_file_is_refused() -> None:
    with pytest.raises(HotlistFormatError, match=r"^line 1: the file is empty"):
        parse_extract(b"")


def test_truncated_file_without_trailer_is_refused() -> None:
    data = extract(*(record(nic=n) for n in nics(5)))
    cut = data[: data.index(b"END|")] + b"VEH|V0000000"  # the download stopped mid-record
    with pytest.raises(HotlistFormatError, match=r"^line 7: truncated: .*END"):
        parse_extract(cut)


def test_trailer_count_must_match() -> None:
    data = extract(*(record(nic=n) for n in nics(3)), trailer=5)
    with pytest.raises(HotlistFormatError, match=r"^line 5: the trailer says 5 records but .* 3"):
        parse_extract(data)


def test_malformed_trailer_is_refused() -> None:
    data = extract(record()).replace(b"END|1", b"END|one")
    with pytest.raises(HotlistFormatError, match=r"^line 3: malformed trailer"):
        parse_extract(data)


def test_data_after_the_trailer_is_refused() -> None:
    data = extract(record()) + record(nic="V000000002").encode() + b"\n"
    with pytest.raises(HotlistFormatError, match=r"^line 4: data after the END trailer on line 3"):
        parse_extract(data)


def test_a_huge_line_is_refused_with_a_short_message() -> None:
    huge = record(mis="X" * 10_000_000)
    with pytest.raises(HotlistFormatError, match=r"^line 3: \d{8} bytes long") as err:
        parse_extract(extract(record(), huge))
    assert len(str(err.value)) < 200


def test_a_line_just_over_the_limit_in_multibyte_characters_is_refused() -> None:
    long_mis = "É" * 2100  # 2100 characters, 4200 bytes
    with pytest.raises(HotlistFormatError, match=r"^line 2: \d+ bytes long, over the 4096"):
        parse_extract(extract(record(mis=long_mis)))
    parse_extract(extract(record(mis="É" * 1900)))  # 3800 bytes: fine


def test_binary_data_is_refused() -> None:
    data = extract(record(), record(nic="V000000002", mis="A\x00B"))
    with pytest.raises(HotlistFormatError, match=r"^line 3: binary data"):
        parse_extract(data)


def test_no_usable_records_is_refused() -> None:
    data = extract(record(lic=""), record(nic="bad"))
    with pytest.raises(HotlistFormatError, match=r"^line 4: no usable records .*2 skipped"):
        parse_extract(data)


def test_header_and_trailer_only_is_refused() -> None:
    with pytest.raises(HotlistFormatError, match=r"^line 2: no usable records"):
        parse_extract(extract())


# -- records that are bad on their own ------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            record(nic="V000000001", lic="8DUP001"),
            "line 3: duplicate NIC, already listed on line 2",
        ),
        (record(nic="V000000002", lic=""), "line 3: plate (LIC) is empty"),
        (record(nic="V000000002", lic=" - . "), "line 3: plate (LIC) is not 1-8 letters"),
        (record(nic="V000000002", lic="8TOOLONG1"), "line 3: plate (LIC) is not 1-8 letters"),
        (record(nic="V000000002", lic="8AB*12"), "line 3: plate (LIC) is not 1-8 letters"),
        (record(nic="V000000002", lic="8ÄB12"), "line 3: plate (LIC) is not 1-8 letters"),
        (record(fil="XYZ", nic="V000000002"), "line 3: unknown file code 'XYZ'"),
        (record(nic="V000000002") + "|extra", "line 3: 14 fields, expected 13"),
        (record(nic="12345"), "line 3: NIC is missing or not a letter and nine digits"),
        (record(nic="V000000002", ori="CA001"), "line 3: ORI is missing"),
        (record(nic="V000000002", lis="CAL"), "line 3: plate state (LIS) is not a two-letter"),
        (record(nic="V000000002", dte="20250230"), "line 3: date of entry (DTE) is not a valid"),
        (record(nic="V000000002", dte=""), "line 3: date of entry (DTE) is not a valid"),
    ],
)
def test_bad_records_are_skipped_naming_the_line(bad: str, message: str) -> None:
    batch = parse_extract(extract(record(nic="V000000001"), bad, record(nic="V000000003")))
    assert [e.reference for e in batch.entries] == ["V000000001", "V000000003"]
    (skipped,) = batch.skipped
    assert skipped.startswith(message)
    assert "8DUP001" not in skipped and "TOOLONG" not in skipped  # plates are never quoted
    assert batch.dropped == {}


def test_a_nic_is_free_again_if_its_first_record_was_skipped() -> None:
    batch = parse_extract(extract(record(lic=""), record(lic="7ABC123")))
    assert [e.plate for e in batch.entries] == ["7ABC123"]
    assert batch.skipped == ("line 2: plate (LIC) is empty",)


def test_skip_messages_are_capped_and_the_rest_counted() -> None:
    bad = [record(nic=n, lic="") for n in nics(250, prefix="B")]
    batch = parse_extract(extract(*bad, record()))
    assert len(batch.entries) == 1
    assert len(batch.skipped) == MAX_SKIPPED_MESSAGES + 1
    assert batch.skipped[0] == "line 2: plate (LIC) is empty"
    assert batch.skipped[-1] == "150 more records skipped (messages not kept)"


def test_blank_lines_are_ignored_and_not_counted() -> None:
    data = "\n".join([HEADER, "", record(), "   ", "END|1", "", ""]).encode()
    assert len(parse_extract(data).entries) == 1


# -- plate normalization --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "plate"),
    [
        ("7abc123", "7ABC123"),
        ("ABC-1234", "ABC1234"),
        ("ABC 1234", "ABC1234"),
        ("A.B.C 12", "ABC12"),
        ("７ＡＢＣ１２３", "7ABC123"),  # fullwidth
        ("АВС123", "ABC123"),  # Cyrillic А В С
        ("ЕКМНОРТХ", "EKMHOPTX"),  # Cyrillic
        ("кмнорх12", "KMHOPX12"),  # lower-case Cyrillic
        ("ΑΒΕ123", "ABE123"),  # Greek Α Β Ε
        ("ΤΧ 4", "TX4"),  # Greek
        ("7ABC\u00a0123", "7ABC123"),  # no-break space
        ("ABC－123", "ABC123"),  # fullwidth hyphen
    ],
)
def test_lookalike_plates_are_normalized(raw: str, plate: str) -> None:
    assert normalize_plate(raw) == plate
    (entry,) = parse_extract(extract(record(lic=raw))).entries
    assert entry.plate == plate


@pytest.mark.parametrize("raw", ["", "   ", "ABCDEFGHI", "ÄBC123", "AB/123", "AB_123", "中文"])
def test_plates_that_cannot_be_plates_are_rejected(raw: str) -> None:
    assert normalize_plate(raw) is None
