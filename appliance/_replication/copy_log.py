"""The access log of a restored copy: every restore and every read-only inspection, for the
city's auditor.

Why a log file beside the copy and not the copy's own audit trail: the copy must stay exactly
what the replica held (it is evidence of what the box stored, and ``--txid`` copies are compared
row for row), the box's audit chain is signed with the *box's* key, which a city machine does not
hold, and a restore happens before anyone has a key to the data. So the city keeps its own chain:

- ``DIR/access-log.jsonl``, one JSON record per line, append-only: ``seq``, ``at``, ``kind``,
  ``actor``, ``host``, ``prev`` (the previous record's hash), ``detail`` (encrypted) and
  ``hash`` = SHA-256 of the canonical JSON of those fields; ``signature`` = Ed25519 over the hash
  with the city's *copy log key*. Changing, removing or reordering a record breaks the chain or a
  signature; :func:`verify_log` names the first bad record.
- The copy log key is an Ed25519 private key kept **outside** the copy (default
  ``$XDG_CONFIG_HOME/alprbox/copy-log.key``, 0600, made on first use). The auditor checks a log
  with only its public key (``alprbox copy log DIR --public-key HEX``), published when the key
  is made; reading the details takes the private key file.
- Details (purpose, case number, what was searched, which reads were shown) are sensitive: they
  are encrypted with AES-256-GCM under a key derived from the log key (HKDF-SHA256), bound to the
  record's seq, time and kind. Kind, time, actor and host stay clear so the chain can be listed.

What a chain cannot show by itself: a log cut back to an earlier record is still a valid chain.
Each append prints the new head (seq and hash); city IT forwards it to their own log collector
(syslog, SIEM) so a shortened log shows against the heads recorded there.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import json
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .._crypto import MasterKeyError, read_key_file, write_key_file

LOG_NAME = "access-log.jsonl"
LOG_KEY_ENV = "ALPRBOX_COPY_LOG_KEY"
_SIGN_DOMAIN = b"alprbox copy access log v1\x00"
_GENESIS = "0" * 64
_FIELDS = ("seq", "at", "kind", "actor", "host", "prev", "detail")


class CopyLogError(Exception):
    """The log or its key cannot be used; says which and what to do."""


def default_log_key() -> Path:
    env = os.environ.get(LOG_KEY_ENV)
    if env:
        return Path(env)
    config_home = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
    return config_home / "alprbox" / "copy-log.key"


def public_key_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def load_log_key(path: Path, copy_dir: Path | None, *, create: bool) -> Ed25519PrivateKey:
    """The city's copy log key; made (0600) when ``create`` and missing. A key inside the copy
    is refused: whoever can rewrite the copy could then re-sign its log."""
    if copy_dir is not None and path.resolve().is_relative_to(copy_dir.resolve()):
        raise CopyLogError(
            f"the copy log key {path} is inside the copy {copy_dir}: keep it elsewhere "
            f"(default {default_log_key()}, or set {LOG_KEY_ENV})"
        )
    if not path.exists():
        if not create:
            raise CopyLogError(f"no copy log key at {path}")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        write_key_file(path, key.private_bytes_raw(), replace=False)
        return key
    try:
        return Ed25519PrivateKey.from_private_bytes(read_key_file(path))
    except (OSError, ValueError, MasterKeyError) as err:
        raise CopyLogError(f"the copy log key {path} cannot be used: {err}") from err


def _detail_key(key: Ed25519PrivateKey) -> AESGCM:
    raw = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"alprbox copy log details v1"
    ).derive(key.private_bytes_raw())
    return AESGCM(raw)


def _record_hash(record: dict[str, Any]) -> str:
    body = json.dumps({f: record[f] for f in _FIELDS}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def _detail_ad(seq: int, at: str, kind: str) -> bytes:
    return f"copy-log|{seq}|{at}|{kind}".encode()


def _read_lines(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    records = []
    for number, line in enumerate(log.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise CopyLogError(f"{log}: line {number} is not a JSON record") from err
        if not isinstance(record, dict):
            raise CopyLogError(f"{log}: line {number} is not a JSON record")
        records.append(record)
    return records


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str


def append(
    copy_dir: Path,
    key: Ed25519PrivateKey,
    kind: str,
    detail: dict[str, Any],
    *,
    actor: str | None = None,
) -> Head:
    """Append one signed record to the copy's access log (fsynced before returning).

    The existing log is verified first: a record is never chained onto a broken log.
    """
    log = copy_dir / LOG_NAME
    report = verify_log(log, public_key_hex(key))
    if not report.intact:
        raise CopyLogError(
            f"{log} does not verify ({report.problem}): not appending to a broken log; keep it "
            "for the auditor and restore a fresh copy"
        )
    seq = report.records + 1
    at = datetime.now(UTC).isoformat(timespec="microseconds")
    nonce = secrets.token_bytes(12)
    sealed = nonce + _detail_key(key).encrypt(
        nonce, json.dumps(detail, sort_keys=True).encode(), _detail_ad(seq, at, kind)
    )
    record: dict[str, Any] = {
        "seq": seq,
        "at": at,
        "kind": kind,
        "actor": actor or getpass.getuser(),
        "host": socket.gethostname(),
        "prev": report.head or _GENESIS,
        "detail": base64.b64encode(sealed).decode(),
    }
    record["hash"] = _record_hash(record)
    record["signature"] = key.sign(_SIGN_DOMAIN + bytes.fromhex(record["hash"])).hex()
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (json.dumps(record, sort_keys=True) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return Head(seq, record["hash"])


@dataclass
class LogReport:
    intact: bool
    records: int
    head: str | None
    problem: str | None = None
    entries: list[dict[str, Any]] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "records": self.records,
            "head": self.head,
            "problem": self.problem,
            "entries": self.entries,
        }


def verify_log(
    log: Path, public_key: str, *, private_key: Ed25519PrivateKey | None = None
) -> LogReport:
    """Check every record's chain link, hash and signature; with the private key, also decrypt
    the details into ``entries``."""
    try:
        verifier = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key))
    except ValueError as err:
        raise CopyLogError(f"not an Ed25519 public key (64 hex digits): {public_key!r}") from err
    records = _read_lines(log)
    prev = _GENESIS
    entries: list[dict[str, Any]] = []
    aead = _detail_key(private_key) if private_key is not None else None
    for index, record in enumerate(records, start=1):
        problem = _check(record, index, prev, verifier)
        entry = {f: record.get(f) for f in ("seq", "at", "kind", "actor", "host")}
        if problem is None and aead is not None:
            sealed = base64.b64decode(record["detail"])
            ad = _detail_ad(record["seq"], record["at"], record["kind"])
            try:
                entry["detail"] = json.loads(aead.decrypt(sealed[:12], sealed[12:], ad))
            except InvalidTag:
                problem = "details do not decrypt with this log key"
        if problem is not None:
            return LogReport(
                False, index - 1, prev if index > 1 else None, f"record {index}: {problem}", entries
            )
        entries.append(entry)
        prev = record["hash"]
    return LogReport(True, len(records), prev if records else None, None, entries)


def _check(record: dict[str, Any], index: int, prev: str, verifier: Ed25519PublicKey) -> str | None:
    """Why a record breaks the log, or None."""
    if any(f not in record for f in (*_FIELDS, "hash", "signature")):
        return "fields missing"
    if record["seq"] != index:
        return f"sequence number {record['seq']} (records removed or reordered)"
    if record["prev"] != prev:
        return "does not chain to the record before it"
    if _record_hash(record) != record["hash"]:
        return "altered (its hash does not match)"
    try:
        verifier.verify(
            bytes.fromhex(record["signature"]), _SIGN_DOMAIN + bytes.fromhex(record["hash"])
        )
    except (InvalidSignature, ValueError):
        return "signature does not verify with this public key"
    return None
