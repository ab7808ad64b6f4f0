"""Evidence packages: records, images, chain of custody, a signed manifest, and a verifier that
names the first problem (tampered file, missing file, extra file, bad signature)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance._appliance import DB_NAME, Appliance
from appliance._sharing.evidence import (
    EvidenceError,
    build_package,
    fingerprint,
    verify_package,
    write_package,
)
from appliance._storage.audit import load_signing_key, signing_key_path
from appliance.models import PlateRead
from appliance.testing import FakeClock, make_appliance

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def read(plate: str) -> PlateRead:
    return PlateRead(camera="north-gate", text=plate, confidence=0.91, first_seen=T0,
                     last_seen=T0, box=(1, 2, 3, 4), crop_jpeg=b"\xff\xd8crop" + plate.encode(),
                     vehicle_jpeg=b"\xff\xd8vehicle" + plate.encode(), state="CA")


@pytest.fixture
async def box(tmp_path: Path) -> AsyncIterator[Appliance]:
    async with make_appliance(tmp_path / "box", clock=FakeClock(T0)) as app:
        yield app


async def package(box: Appliance, reads: list[PlateRead]) -> dict[str, bytes]:
    assert box.store is not None
    for r in reads:
        await box.store.add_read(r)
    await box.store.record_event("record.view", "rivera", {
        "query": {"read_id": reads[0].id, "plate": reads[0].text}, "purpose": "stolen vehicle",
        "case_number": "26-001234"})
    await box.store.record_event("login", "someone", {"remote": "127.0.0.1"})
    key = load_signing_key(signing_key_path(box.data_dir / DB_NAME), create=True)
    assert key is not None
    return await build_package(
        box.store, key, read_ids=[r.id for r in reads], case_number="26-001234",
        purpose="stolen vehicle", exported_by="rivera", organization="Test City PD",
        approval={"approval_id": "req-7"}, site="Test City", now=T0,
    )


def public_key(box: Appliance) -> bytes:
    key = load_signing_key(signing_key_path(box.data_dir / DB_NAME), create=False)
    assert key is not None
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)


async def test_package_holds_records_images_custody_and_verifies(
    box: Appliance, tmp_path: Path
) -> None:
    reads = [read("7ABC123"), read("8XYZ999")]
    files = await package(box, reads)
    out = write_package(files, tmp_path / "case-26-001234")
    record = json.loads((out / f"records/{reads[0].id}.json").read_text())
    assert record["plate"] == "7ABC123" and record["camera"] == "north-gate"
    assert (out / f"images/{reads[0].id}-crop.jpg").read_bytes() == reads[0].crop_jpeg
    assert (out / f"images/{reads[1].id}-vehicle.jpg").read_bytes() == reads[1].vehicle_jpeg
    custody = json.loads((out / "chain-of-custody.json").read_text())
    kinds = [e["kind"] for e in custody["events"]]
    assert "record.view" in kinds and "login" not in kinds  # only events about these reads
    assert custody["this_export"]["actor"] == "rivera"
    assert custody["this_export"]["detail"]["approval"] == {"approval_id": "req-7"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["public_key_fingerprint"] == fingerprint(public_key(box))
    assert set(manifest["files"]) == set(files) - {"manifest.json", "manifest.sig"}

    report = verify_package(out, public_key(box))
    assert report.ok, report.problem
    assert report.files_checked == len(files) - 2 and report.key_source == "given"
    assert verify_package(out).ok  # with the key the package carries


async def test_unknown_read_is_refused(box: Appliance) -> None:
    with pytest.raises(EvidenceError, match="no stored read"):
        await build_package(
            box.store,  # type: ignore[arg-type]
            Ed25519PrivateKey.generate(), read_ids=["nope"], case_number="26-1",
            purpose="stolen vehicle", exported_by="x", organization="y", approval={},
            site="s", now=T0,
        )


@pytest.fixture
async def written(box: Appliance, tmp_path: Path) -> tuple[Path, bytes, list[PlateRead]]:
    reads = [read("7ABC123"), read("8XYZ999")]
    files = await package(box, reads)
    return write_package(files, tmp_path / "pkg"), public_key(box), reads


async def test_tampered_file_is_named(written: tuple[Path, bytes, list[PlateRead]]) -> None:
    out, key, reads = written
    target = out / f"records/{reads[1].id}.json"
    target.write_text(target.read_text().replace("8XYZ999", "8XYZ990"))
    report = verify_package(out, key)
    assert not report.ok
    assert report.problem.startswith(f"tampered file: records/{reads[1].id}.json")


async def test_tampered_image_is_named(written: tuple[Path, bytes, list[PlateRead]]) -> None:
    out, key, reads = written
    (out / f"images/{reads[0].id}-crop.jpg").write_bytes(b"\xff\xd8other")
    assert verify_package(out, key).problem.startswith(
        f"tampered file: images/{reads[0].id}-crop.jpg")


async def test_missing_file_is_named(written: tuple[Path, bytes, list[PlateRead]]) -> None:
    out, key, reads = written
    (out / f"images/{reads[1].id}-vehicle.jpg").unlink()
    report = verify_package(out, key)
    assert report.problem == f"missing file: images/{reads[1].id}-vehicle.jpg"


async def test_extra_file_is_named(written: tuple[Path, bytes, list[PlateRead]]) -> None:
    out, key, _ = written
    (out / "images" / "planted.jpg").write_bytes(b"\xff\xd8planted")
    problem = verify_package(out, key).problem
    assert problem == "extra file: images/planted.jpg (not in the manifest)"


async def test_edited_manifest_fails_the_signature(
    written: tuple[Path, bytes, list[PlateRead]],
) -> None:
    out, key, _ = written
    # Re-hash a tampered record into the manifest: hashes agree again, the signature does not.
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["case_number"] = "26-999999"
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    assert verify_package(out, key).problem.startswith("bad signature")
    assert verify_package(out).problem.startswith("bad signature")


async def test_resigned_with_another_key_is_caught_with_the_published_key(
    written: tuple[Path, bytes, list[PlateRead]],
) -> None:
    out, key, _ = written
    forger = Ed25519PrivateKey.generate()
    from cryptography.hazmat.primitives import serialization

    manifest = json.loads((out / "manifest.json").read_text())
    forged_pub = forger.public_key().public_bytes(serialization.Encoding.Raw,
                                                  serialization.PublicFormat.Raw)
    manifest["public_key"] = forged_pub.hex()
    body = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    (out / "manifest.json").write_bytes(body)
    (out / "manifest.sig").write_text(forger.sign(body).hex() + "\n")
    assert verify_package(out).ok  # self-consistent, which is why the fingerprint is shown
    assert verify_package(out).public_key_fingerprint == fingerprint(forged_pub)
    report = verify_package(out, key)
    assert not report.ok and "signed with another key" in report.problem


async def test_zip_package_and_the_cli(box: Appliance, tmp_path: Path) -> None:
    files = await package(box, [read("7ABC123")])
    out = write_package(files, tmp_path / "evidence.zip")
    key_file = tmp_path / "box.pub"
    key_file.write_text(public_key(box).hex())
    cli = [sys.executable, "-m", "appliance", "evidence", "verify", str(out),
           "--public-key", str(key_file)]
    ok = await asyncio.to_thread(subprocess.run, [*cli, "--json"], capture_output=True,
                                 text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["ok"] is True
    # Tamper inside the zip: rewrite it with one record changed.
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.startswith("records/"):
                data = data.replace(b"7ABC123", b"7ABC128")
            dst.writestr(info, data)
    bad = await asyncio.to_thread(subprocess.run, [*cli[:5], str(tampered), *cli[6:]],
                                  capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "tampered file: records/" in bad.stdout


# -- through the policy gate, from the command line -------------------------------------------

DA = {"name": "Alameda County District Attorney", "ori": "CA0010200",
      "kind": "district attorney", "approved_by": "Chief of Police",
      "approved_on": "2026-01-02", "expires": "2026-12-31"}


async def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "appliance", *args], capture_output=True,
        text=True, timeout=120)


async def test_export_goes_through_the_gate_and_is_audited(tmp_path: Path) -> None:
    import yaml

    data = tmp_path / "box"
    sharing = {"enabled": True, "agencies": [DA]}
    r = read("7ABC123")
    async with make_appliance(data, config={"sharing": sharing}, clock=FakeClock(T0)) as box:
        assert box.store is not None
        await box.store.add_read(r)
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({
        "sharing": sharing, "keys": {"master_key_file": str(tmp_path / "box.key")}}))
    common = ["--config", str(site), "--data-dir", str(data), "--case-number", "26-001234",
              "--reads", r.id, "--purpose", "stolen vehicle"]

    refused = await cli("evidence", "export", *common, "--agency", "ICE ERO San Francisco",
                        "--out", str(tmp_path / "ice"))
    assert refused.returncode == 1 and "policy gate refused" in refused.stderr
    assert not (tmp_path / "ice").exists()

    done = await cli("evidence", "export", *common, "--agency", DA["name"], "--ori", DA["ori"],
                     "--out", str(tmp_path / "case.zip"), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["path"].endswith("case.zip")
    verified = await cli("evidence", "verify", str(tmp_path / "case.zip"))
    assert verified.returncode == 0 and "evidence package OK" in verified.stdout

    async with make_appliance(data, config={"sharing": sharing}, clock=FakeClock(T0)) as box:
        assert box.store is not None
        decisions = await box.store.events(10, kind="share.decision")
        assert [d["detail"]["allowed"] for d in decisions] == [True, False]
        assert any("denylist" in m for m in decisions[1]["detail"]["matched"])
        [exported] = await box.store.events(5, kind="evidence.exported")
        detail = exported["detail"]
        assert detail["recipient_agency"] == DA["name"] and detail["purpose"] == "stolen vehicle"
        assert detail["data"]["plates"] == ["7ABC123"] and detail["case_number"] == "26-001234"


async def test_export_of_everything_under_a_legal_hold(tmp_path: Path) -> None:
    import yaml

    from appliance._lifecycle.holds import Holds

    data = tmp_path / "box"
    sharing = {"enabled": True, "agencies": [DA]}
    held, other = read("7ABC123"), read("8XYZ999")
    async with make_appliance(data, config={"sharing": sharing}, clock=FakeClock(T0)) as box:
        assert box.store is not None
        for r in (held, other):
            await box.store.add_read(r)
        hold = await Holds(box.store).add(
            case_number="26-000777", reason="discovery request in the Main St homicide",
            actor="records", now=T0, read_ids=[held.id])
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({
        "sharing": sharing, "keys": {"master_key_file": str(tmp_path / "box.key")}}))
    out = tmp_path / "hold-package"
    done = await cli("evidence", "export", "--config", str(site), "--data-dir", str(data),
                     "--hold", str(hold.id), "--purpose", "homicide", "--agency", DA["name"],
                     "--ori", DA["ori"], "--out", str(out))
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["reads"] == [held.id] and manifest["case_number"] == "26-000777"
    assert manifest["approval"]["legal_hold"] == hold.id
    assert verify_package(out).ok
