"""Synthetic NCIC extracts for demos, tests and benchmarks: large, realistic in shape, fake.

Every record is invented (random plates in common US state formats, real-looking ORIs, NICs,
dates and vehicles); output is deterministic for the same ``count``, ``seed`` and ``as_of``::

    python -m alprbox_hotlist_ncic.generator extract.txt --count 1000000 --seed 7
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import BinaryIO

from .extract import FILE_CODES, HEADER, TRAILER_PREFIX

logger = logging.getLogger(__name__)

# Share of each file among the records that are not Immigration Violator records.
_FILE_WEIGHTS = {
    "VEH": 44.0,
    "LIC": 20.0,
    "WAN": 12.0,
    "POF": 5.0,
    "ERP": 0.5,
    "MPF": 3.0,
    "GNG": 3.0,
    "TSC": 0.5,
    "SRF": 2.5,
    "SOR": 6.0,
    "PIF": 0.5,
    "VPF": 3.0,
}
_IMMIGRATION_CODE = "IVF"

# (plate state, share, plate templates): L a letter, D a digit, anything else literal.
_STATES = (
    ("CA", 62.0, ("DLLLDDD", "DLLLDDD", "DLLLDDD", "DLDDDDD")),  # 7ABC123; commercial 1A23456
    ("TX", 7.0, ("LLLDDDD",)),  # ABC1234
    ("AZ", 5.0, ("LLLDDDD",)),
    ("NV", 4.0, ("DLLDDD",)),
    ("OR", 4.0, ("DDD LLL",)),  # 123 ABC
    ("WA", 4.0, ("LLLDDDD",)),
    ("NY", 4.0, ("LLL-DDDD",)),  # ABC-1234
    ("FL", 3.0, ("LLL LDD",)),  # ABC D12
    ("IL", 3.0, ("LL DDDDD",)),
    ("PA", 2.0, ("LLL-DDDD",)),
    ("UT", 2.0, ("LDDDLL",)),
)
_COUNTIES = {"CA": 58, "TX": 254, "NY": 62, "FL": 67, "IL": 102, "PA": 67, "UT": 29}
_FEDERAL_ORIS = ("DCFBIWA00", "DCUSM0000", "DCATF0000", "DCDEA0000")
_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"  # I, O and Q are not issued: they read as 1 and 0
_DIGITS = "0123456789"

_CARS = (
    ("TOYT", "CAM"), ("TOYT", "COR"), ("TOYT", "RAV"), ("TOYT", "TAC"), ("HOND", "CIV"),
    ("HOND", "ACC"), ("HOND", "CRV"), ("FORD", "F15"), ("FORD", "EXP"), ("FORD", "FUS"),
    ("CHEV", "SIL"), ("CHEV", "MAL"), ("CHEV", "EQU"), ("NISS", "ALT"), ("NISS", "SEN"),
    ("NISS", "ROG"), ("TESL", "MD3"), ("TESL", "MDY"), ("HYUN", "ELA"), ("HYUN", "SON"),
    ("KIA", "OPT"), ("DODG", "CHA"), ("DODG", "RAM"), ("JEEP", "GRA"), ("SUBA", "OUT"),
    ("VOLK", "JET"), ("BMW", "328"), ("MERZ", "C30"), ("LEXS", "RX3"), ("MAZD", "MZ3"),
)  # fmt: skip
_TRUCKS = (("FORD", "F25"), ("FRHT", "CAS"), ("ISU", "NPR"), ("RAM", "250"))
_MOTORCYCLES = (("HOND", "CBR"), ("HD", "FLH"), ("YAMA", "YZF"), ("KAWK", "NIN"))
_COLOURS = (
    "BLK", "WHI", "SIL", "GRY", "BLU", "RED", "GRN", "BGE", "MAR", "GLD", "BRO", "TAN",
    "BLK/WHI",
)  # fmt: skip

_REASONS = {
    "VEH": ("STOLEN VEHICLE", "TAKEN IN CARJACKING - ARMED", "EMBEZZLED VEHICLE"),
    "LIC": ("STOLEN PLATE", "STOLEN PLATE - BOTH PLATES TAKEN"),
    "WAN": ("FELONY WARRANT - ROBBERY", "FELONY WARRANT - ASSAULT W/ DEADLY WEAPON",
            "FELONY WARRANT - BURGLARY", "MISD WARRANT - DUI"),
    "POF": ("PROTECTION ORDER - STAY AWAY FROM PROTECTED PARTY",),
    "ERP": ("EXTREME RISK PROTECTION ORDER - FIREARMS PROHIBITED",),
    "MPF": ("ENDANGERED MISSING ADULT", "MISSING JUVENILE", "MISSING - INVOLUNTARY"),
    "GNG": ("GANG FILE SUBJECT - DO NOT DETAIN ON THIS RECORD ALONE",),
    "TSC": ("TSC RECORD - DO NOT ADVISE SUBJECT - CONTACT TSC",),
    "SRF": ("SUPERVISED RELEASE - CONTACT SUPERVISING OFFICER",),
    "SOR": ("REGISTERED SEX OFFENDER - VERIFY REGISTRATION STATUS",),
    "IVF": ("IMMIGRATION VIOLATOR",),
    "PIF": ("PROTECTIVE INTEREST - OFFICER CAUTION - DO NOT ADVISE",),
    "VPF": ("VIOLENT PERSON - OFFICER SAFETY CAUTION",),
}  # fmt: skip

_NIC_STRIDE = 387_420_489  # 3**18: coprime to 10**9, so NICs never repeat below 10**9 records
_CHUNK = 10_000


def generate_lines(
    count: int,
    seed: int = 0,
    *,
    immigration_fraction: float = 0.01,
    as_of: date | None = None,
) -> Iterator[str]:
    """Yield the lines of an extract of ``count`` records, header and trailer included, each
    ending in a newline. About ``immigration_fraction`` of the records are Immigration Violator
    records (which the parser drops); dates of entry lie before ``as_of`` (default today).
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    if not 0.0 <= immigration_fraction <= 1.0:
        raise ValueError("immigration_fraction must be between 0 and 1")
    rng = random.Random(seed)
    as_of = as_of or date.today()
    others = sum(_FILE_WEIGHTS.values())
    codes = [*_FILE_WEIGHTS, _IMMIGRATION_CODE]
    weights = [w / others * (1.0 - immigration_fraction) for w in _FILE_WEIGHTS.values()]
    weights.append(immigration_fraction)
    state_names = [s[0] for s in _STATES]
    state_weights = [s[1] for s in _STATES]
    templates = {s[0]: s[2] for s in _STATES}
    days = [(as_of - timedelta(days=n)).strftime("%Y%m%d") for n in range(3653)]
    nic_offset = rng.randrange(10**9)
    prefixes = {code: FILE_CODES[code].nic_prefix for code in codes}

    yield HEADER + "\n"
    done = 0
    while done < count:
        n = min(_CHUNK, count - done)
        files = rng.choices(codes, weights, k=n)
        states = rng.choices(state_names, state_weights, k=n)
        lines = []
        for i in range(n):
            code = files[i]
            state = states[i]
            serial = (nic_offset + (done + i) * _NIC_STRIDE) % 10**9
            nic = f"{prefixes[code]}{serial:09d}"
            plate = _plate(rng, rng.choice(templates[state]))
            kind = rng.random()
            if kind < 0.9:
                lit, (make, model) = "PC", rng.choice(_CARS)
            elif kind < 0.97:
                lit, (make, model) = "TK", rng.choice(_TRUCKS)
            else:
                lit, (make, model) = "MC", rng.choice(_MOTORCYCLES)
            age = min(int(rng.expovariate(1 / 240)), 3652)
            reason = rng.choice(_REASONS[code])
            case = f"{days[age][2:4]}-{rng.randrange(1, 99999):05d}"
            lines.append(
                f"{code}|{nic}|{_ori(rng, state)}|{plate}|{state}|{lit}|"
                f"{as_of.year + rng.randrange(-1, 2)}|{rng.randrange(1995, as_of.year + 1)}|"
                f"{make}|{model}|{rng.choice(_COLOURS)}|{days[age]}|{reason} - CASE {case}\n"
            )
        yield from lines
        done += n
    yield f"{TRAILER_PREFIX}{count}\n"


def generate_extract(
    count: int,
    seed: int = 0,
    *,
    immigration_fraction: float = 0.01,
    as_of: date | None = None,
) -> bytes:
    """The whole extract as bytes (arguments as for :func:`generate_lines`)."""
    lines = generate_lines(count, seed, immigration_fraction=immigration_fraction, as_of=as_of)
    return "".join(lines).encode("utf-8")


def write_extract(
    path_or_file: str | Path | BinaryIO,
    count: int,
    seed: int = 0,
    *,
    immigration_fraction: float = 0.01,
    as_of: date | None = None,
) -> int:
    """Write an extract of ``count`` records to a path or a binary file; return bytes written."""
    lines = generate_lines(count, seed, immigration_fraction=immigration_fraction, as_of=as_of)
    if isinstance(path_or_file, str | Path):
        with open(path_or_file, "wb") as out:
            return _write(lines, out)
    return _write(lines, path_or_file)


def _write(lines: Iterator[str], out: BinaryIO) -> int:
    written = 0
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= _CHUNK:
            written += out.write("".join(batch).encode("utf-8"))
            batch.clear()
    written += out.write("".join(batch).encode("utf-8"))
    return written


def _plate(rng: random.Random, template: str) -> str:
    value = rng.getrandbits(48)
    chars = []
    for t in template:
        if t == "L":
            value, r = divmod(value, len(_LETTERS))
            chars.append(_LETTERS[r])
        elif t == "D":
            value, r = divmod(value, 10)
            chars.append(_DIGITS[r])
        else:
            chars.append(t)
    if template[0] == "D" and chars[0] == "0":
        chars[0] = "1"  # CA-style serials do not start with 0
    return "".join(chars)


def _ori(rng: random.Random, state: str) -> str:
    if rng.random() < 0.02:
        return rng.choice(_FEDERAL_ORIS)
    county = rng.randrange(1, _COUNTIES.get(state, 40) + 1)
    return f"{state}{county:03d}{rng.randrange(0, 40):02d}00"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m alprbox_hotlist_ncic.generator",
        description="Write a synthetic NCIC plate-reader extract (fake data, for demos and tests).",
    )
    parser.add_argument("out", type=Path, help="file to write")
    parser.add_argument("--count", type=int, default=10_000, help="records (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--immigration-fraction",
        type=float,
        default=0.01,
        help="share of Immigration Violator records, which the importer drops (default 0.01)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    size = write_extract(
        args.out, args.count, args.seed, immigration_fraction=args.immigration_fraction
    )
    print(
        f"wrote {args.count} records ({size} bytes) to {args.out} "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
