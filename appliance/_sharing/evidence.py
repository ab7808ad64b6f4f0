"""Evidence packages (P-13, issue 5 "Legal hold and evidence"): reads a case needs, copied to
portable media in a form a court, a defence expert or a records clerk can check on their own.

A package is a directory (or a zip of the same files)::

    manifest.json          what is in it: case, who exported it, when, under which approval,
                           the SHA-256 and size of every other file, the signing public key
    manifest.sig           Ed25519 signature over manifest.json's exact bytes (hex)
    public-key.pem         the box's audit signing public key (also in the manifest, with its
                           SHA-256 fingerprint, so it can be compared with the published one)
    records/<id>.json      each read: plate, state, camera, time, confidence, candidates, hits
    images/<id>-crop.jpg   the plate crop; images/<id>-vehicle.jpg the vehicle, where stored
    chain-of-custody.json  every audit event about these reads (searches, views, exports), and
                           this export itself, from the hash-chained audit trail

It is signed with the box's audit signing key (``audit-signing.key``), so the signature proves
the same box that keeps the audit trail made the package. The package is written in the clear:
it leaves the box as evidence, on purpose, and only after the policy gate approved it (channel
``evidence``); the export is audited with the 1798.90.52 access-record fields.
:func:`verify_package` checks every hash and the signature, and names the first problem.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

if TYPE_CHECKING:
    from .._storage import Store

FORMAT = "alprbox-evidence/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "public-key.pem"
CUSTODY = "chain-of-custody.json"
#: audit events scanned for the chain of custody (newest first)
CUSTODY_SCAN = 50_000


class EvidenceError(Exception):
    """The package cannot be built (unknown read ids, nothing to export) or read."""


def fingerprint(public_key: bytes) -> str:
    """SHA-256 of the raw Ed25519 public key, hex: what a person compares by eye."""
    return hashlib.sha256(public_key).hexdigest()


def _public_raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)


def _dumps(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _refers_to(detail: Mapping[str, Any], read_ids: set[str], plates: set[str]) -> bool:
    """Whether an audit event's detail names one of these reads or plates (query or data)."""
    text = json.dumps(detail, ensure_ascii=False)
    return any(i in text for i in read_ids) or any(f'"{p}"' in text for p in plates)


async def build_package(
    store: Store,
    signing_key: Ed25519PrivateKey,
    *,
    read_ids: list[str],
    case_number: str,
    purpose: str,
    exported_by: str,
    organization: str,
    approval: Mapping[str, Any],
    site: str,
    now: datetime,
) -> dict[str, bytes]:
    """Every file of the package, by relative path, signed. Raises :class:`EvidenceError` for
    read ids the store does not hold (purged, or never there): evidence is all or nothing."""
    wanted = list(dict.fromkeys(read_ids))
    if not wanted:
        raise EvidenceError("name at least one read to export")
    reads = await store.reads_by_id(wanted)
    missing = [i for i in wanted if i not in reads]
    if missing:
        raise EvidenceError(f"no stored read with id {', '.join(missing)} (purged or unknown)")
    files: dict[str, bytes] = {}
    for read_id in wanted:
        read = reads[read_id]
        record = {
            "read_id": read.id,
            "plate": read.text,
            "state": read.state,
            "state_confidence": read.state_confidence,
            "camera": read.camera,
            "first_seen": read.first_seen.astimezone(UTC).isoformat(),
            "last_seen": read.last_seen.astimezone(UTC).isoformat(),
            "confidence": read.confidence,
            "candidates": [[c.text, c.confidence] for c in read.candidates],
            "box": list(read.box),
            "frames": read.frames,
        }
        location = getattr(read, "location", None)
        if location is not None:
            record["location"] = str(location)
        for kind in ("crop", "vehicle"):
            image = await store.get_image(read_id, kind)
            if image:
                path = f"images/{read_id}-{kind}.jpg"
                files[path] = image
                record[f"{kind}_image"] = path
        files[f"records/{read_id}.json"] = _dumps(record)

    plates = {r.text for r in reads.values()}
    custody = [
        {"id": e["id"], "at": e["at"], "kind": e["kind"], "actor": e["actor"],
         "detail": e["detail"]}
        for e in await store.events(CUSTODY_SCAN, oldest_first=True)
        if _refers_to(e["detail"], set(wanted), plates)
    ]
    export_entry = {
        "at": now.astimezone(UTC).isoformat(),
        "kind": "evidence.exported",
        "actor": exported_by,
        "detail": {"organization": organization, "purpose": purpose,
                   "case_number": case_number, "read_ids": wanted, "approval": dict(approval)},
    }
    files[CUSTODY] = _dumps({"events": custody, "this_export": export_entry})

    public_raw = _public_raw(signing_key)
    files[PUBLIC_KEY] = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    manifest = {
        "format": FORMAT,
        "site": site,
        "case_number": case_number,
        "purpose": purpose,
        "exported_by": exported_by,
        "organization": organization,
        "exported_at": now.astimezone(UTC).isoformat(),
        "approval": dict(approval),
        "reads": wanted,
        "public_key": public_raw.hex(),
        "public_key_fingerprint": fingerprint(public_raw),
        "files": {
            path: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for path, data in sorted(files.items())
        },
    }
    manifest_bytes = _dumps(manifest)
    files[MANIFEST] = manifest_bytes
    files[SIGNATURE] = (signing_key.sign(manifest_bytes).hex() + "\n").encode()
    return files


def write_package(files: Mapping[str, bytes], out: Path) -> Path:
    """Write the package to ``out``: a zip if it ends in ``.zip``, else a new directory."""
    for path in files:
        _check_relative(path)
    if out.suffix == ".zip":
        if out.exists():
            raise EvidenceError(f"{out} exists already; choose a new name")
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "x", zipfile.ZIP_DEFLATED) as archive:
            for path, data in sorted(files.items()):
                archive.writestr(path, data)
        return out
    if out.exists() and any(out.iterdir()):
        raise EvidenceError(f"{out} is not empty; evidence goes into a new directory")
    out.mkdir(parents=True, exist_ok=True)
    for path, data in files.items():
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return out


def _check_relative(path: str) -> None:
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise EvidenceError(f"unsafe path in package: {path!r}")


# -- verification ----------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    problem: str
    files_checked: int = 0
    case_number: str = ""
    public_key_fingerprint: str = ""
    #: "given" (checked against --public-key) or "package" (the key the package carries: compare
    #: its fingerprint with the box's published one)
    key_source: str = "package"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_package(path: Path) -> dict[str, bytes]:
    """Every file of a package directory or zip, by relative path."""
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return {
                info.filename: archive.read(info)
                for info in archive.infolist()
                if not info.is_dir()
            }
    if not path.is_dir():
        raise EvidenceError(f"{path} is neither a package directory nor a zip")
    return {
        p.relative_to(path).as_posix(): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def load_public_key(data: bytes) -> bytes:
    """A raw Ed25519 public key from a PEM file or 64 hex digits."""
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(text)
        if not isinstance(key, Ed25519PublicKey):
            raise EvidenceError("the public key is not an Ed25519 key")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        raw = bytes.fromhex(text.decode())
    except ValueError:
        raise EvidenceError("the public key is neither PEM nor hex") from None
    if len(raw) != 32:
        raise EvidenceError("a raw Ed25519 public key is 32 bytes (64 hex digits)")
    return raw


def verify_package(path: Path, public_key: bytes | None = None) -> VerifyReport:
    """Check the signature over the manifest, then every file's hash; name the first problem.

    ``public_key`` (raw) is the box's published key; without it the key in the package is used
    and the report says so (anyone can sign with their own key: compare the fingerprint).
    """
    try:
        files = read_package(path)
    except (OSError, zipfile.BadZipFile) as err:
        return VerifyReport(False, f"cannot read the package: {err}")
    source = "given" if public_key is not None else "package"
    for required in (MANIFEST, SIGNATURE):
        if required not in files:
            return VerifyReport(False, f"missing file: {required}", key_source=source)
    manifest_bytes = files[MANIFEST]
    try:
        manifest = json.loads(manifest_bytes)
        listed: dict[str, dict[str, Any]] = manifest["files"]
        carried = bytes.fromhex(manifest["public_key"])
        signature = bytes.fromhex(files[SIGNATURE].decode().strip())
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        return VerifyReport(False, f"bad signature: the manifest or signature is unreadable "
                            f"({type(err).__name__})", key_source=source)
    key = public_key if public_key is not None else carried
    report_key = fingerprint(key)
    case = str(manifest.get("case_number", ""))
    if public_key is not None and carried != public_key:
        return VerifyReport(False, "bad signature: the package was signed with another key "
                            f"(fingerprint {fingerprint(carried)}, expected {report_key})",
                            case_number=case, public_key_fingerprint=report_key,
                            key_source=source)
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, manifest_bytes)
    except (InvalidSignature, ValueError):
        return VerifyReport(False, "bad signature: the manifest was altered or not signed by "
                            "this key", case_number=case, public_key_fingerprint=report_key,
                            key_source=source)
    checked = 0
    for name, entry in sorted(listed.items()):
        data = files.get(name)
        if data is None:
            return VerifyReport(False, f"missing file: {name}", checked, case, report_key,
                                source)
        if hashlib.sha256(data).hexdigest() != entry.get("sha256") or len(data) != entry.get(
            "size"
        ):
            return VerifyReport(False, f"tampered file: {name} (SHA-256 differs from the "
                                "manifest)", checked, case, report_key, source)
        checked += 1
    extra = sorted(set(files) - set(listed) - {MANIFEST, SIGNATURE})
    if extra:
        return VerifyReport(False, f"extra file: {extra[0]} (not in the manifest)", checked,
                            case, report_key, source)
    return VerifyReport(True, f"{checked} file(s) match the signed manifest", checked, case,
                        report_key, source)


def zip_bytes(files: Mapping[str, bytes]) -> bytes:
    """The package as one zip in memory (for an exporter delivering it as a single file)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in sorted(files.items()):
            archive.writestr(path, data)
    return buffer.getvalue()


async def queue_evidence(
    outbox: Any,
    exporter: str,
    approval_id: str,
    *,
    read_ids: list[str],
    actor: str,
    organization: str,
    site: str,
) -> str:
    """Queue a signed evidence package for an ``evidence`` exporter (e.g. a media writer)
    under an approval covering the ``evidence`` channel; returns the delivery id.

    The gate is asked first (:class:`~.authority.DeliveryRefused` when it says no); the package
    holds only the reads the approval's scope allows, and is signed by the host, never by the
    plugin, which receives finished files.
    """
    from .._appliance import DB_NAME
    from .._storage.audit import load_signing_key, signing_key_path

    authorization = await outbox.authority.authorize_delivery(
        approval_id, exporter=exporter, channel="evidence", actor=actor)
    store = outbox.store
    reads = await store.reads_by_id(read_ids)
    allowed = [i for i in read_ids
               if i in reads and authorization.scope.allows_read(i, reads[i].first_seen,
                                                                  reads[i].text)]
    if len(allowed) != len(dict.fromkeys(read_ids)):
        raise EvidenceError("some reads are outside what the approval covers or not stored")
    key = load_signing_key(signing_key_path(store.path.parent / DB_NAME), create=True)
    assert key is not None
    files = await build_package(
        store, key, read_ids=allowed, case_number=authorization.case_number,
        purpose=authorization.purpose, exported_by=actor, organization=organization,
        approval={"approval_id": approval_id,
                  "recipient": authorization.recipient.agency,
                  "ori": authorization.recipient.ori},
        site=site, now=outbox.clock.now(),
    )
    payload = {"kind": "evidence", "case_number": authorization.case_number,
               "reads": [{"read_id": i, "plate": reads[i].text} for i in allowed],
               "manifest_sha256": hashlib.sha256(files[MANIFEST]).hexdigest()}
    delivery_id: str = await outbox.enqueue(authorization, exporter, payload, files=files,
                                            actor=actor)
    return delivery_id
