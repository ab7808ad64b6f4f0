"""Reads and their images, encrypted under the data key of their retention class and day.

A read is stored as class ``read`` (non-hit): its payload under the ``read`` key of its UTC day,
its crop and vehicle image in that day's ``image`` segment under the ``image`` key. When it
matches a hot list, :meth:`ReadRecords.promote_to_hit` re-encrypts all of it under the day's
``hit`` key (images copied into a ``hit`` segment), so purging non-hit days never loses a hit.
Reads written before keys.db (legacy ciphertext, crops inline in ``crops``) stay readable.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .. import models
from .._storage.plate_keys import INSERT_PLATE_KEY
from ..models import PlateCandidate, PlateRead

if TYPE_CHECKING:
    from .._storage import Store

READ, HIT, IMAGE, HOLD = "read", "hit", "image", "hold"
IMAGE_KINDS = ("crop", "vehicle")


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def read_ad(read_id: str, camera: str, seen_at: str) -> bytes:
    return f"read|{read_id}|{camera}|{seen_at}".encode()


def _location(read: PlateRead) -> dict[str, Any] | None:
    # PlateRead.location arrives with the GPS work (issue 8); read it defensively.
    location = getattr(read, "location", None)
    if location is None:
        return None
    out: dict[str, Any] = {}
    for f in dataclasses.fields(location):
        value = getattr(location, f.name)
        out[f.name] = utc(value) if isinstance(value, datetime) else value
    return out


def _decode_location(data: dict[str, Any] | None) -> Any:
    cls = getattr(models, "Location", None)
    if data is None or cls is None:
        return None
    fields = dict(data)
    if isinstance(fields.get("fix_time"), str):
        fields["fix_time"] = datetime.fromisoformat(fields["fix_time"])
    return cls(**fields)


def image_class_for(read_class: str) -> str:
    return HIT if read_class == HIT else IMAGE


class ReadRecords:
    """The read and image rows of a :class:`~appliance._storage.Store`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def _cipher(self) -> Any:
        return self._store.cipher

    async def add(self, read: PlateRead) -> None:
        """Store a read and its images; returns once committed (see segments.py on durability)."""
        first_seen = utc(read.first_seen)
        day = first_seen[:10]
        associated = read_ad(read.id, read.camera, first_seen)
        body: dict[str, Any] = {
            "text": read.text,
            "confidence": read.confidence,
            "candidates": [[c.text, c.confidence] for c in read.candidates],
            "box": list(read.box),
            "frames": read.frames,
            "last_seen": utc(read.last_seen),
            "state": read.state,
            "state_confidence": read.state_confidence,
            # Inside the encrypted payload like every other descriptive field (issue 3).
            "vehicle_colour": read.vehicle_colour,
            "vehicle_colour_confidence": read.vehicle_colour_confidence,
        }
        location = _location(read)
        if location is not None:
            body["location"] = location
        cipher = self._cipher
        payload = cipher.encrypt_for(READ, day, json.dumps(body).encode(), associated)
        row = (
            read.id,
            read.camera,
            first_seen,
            day,
            cipher.plate_index(read.text),
            payload,
            READ,
            cipher.key_id_of(payload),
        )
        images = [
            (kind, cipher.encrypt_for(IMAGE, day, data, associated + f"|{kind}".encode()))
            for kind, data in (("crop", read.crop_jpeg), ("vehicle", read.vehicle_jpeg))
            if data
        ]
        segments = self._store.segments

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO reads (id, camera, seen_at, day, plate_index, payload, class, key_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            conn.execute(INSERT_PLATE_KEY, (day, row[4], read.id))
            for kind, blob in images:
                name, offset = segments.append(conn, IMAGE, day, blob)
                conn.execute(
                    "INSERT INTO images (read_id, kind, class, day, segment, offset, length,"
                    " key_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (read.id, kind, IMAGE, day, name, offset, len(blob), cipher.key_id_of(blob)),
                )

        await self._store.write(op)

    async def get_image(self, read_id: str, kind: str) -> bytes | None:
        """A read's ``crop`` or ``vehicle`` image, decrypted; None if absent."""
        if kind not in IMAGE_KINDS:
            raise KeyError(kind)
        segments = self._store.segments

        def fetch(c: sqlite3.Connection) -> tuple[str, str, bytes] | None:
            row = c.execute(
                "SELECT r.camera, r.seen_at, i.segment, i.offset, i.length FROM reads r"
                " JOIN images i ON i.read_id = r.id WHERE r.id = ? AND i.kind = ?",
                (read_id, kind),
            ).fetchone()
            if row is not None:
                return row[0], row[1], segments.read(row[2], row[3], row[4])
            # Stores written before segment files kept images inline.
            column = {"crop": "data", "vehicle": "vehicle"}[kind]
            legacy = c.execute(
                f"SELECT r.camera, r.seen_at, k.{column} FROM reads r"
                " JOIN crops k ON k.read_id = r.id WHERE r.id = ?",
                (read_id,),
            ).fetchone()
            if legacy is None or not legacy[2]:
                return None
            return legacy[0], legacy[1], bytes(legacy[2])

        found = await self._store.query(fetch)
        if found is None:
            return None
        camera, seen_at, blob = found
        return bytes(
            self._cipher.decrypt(blob, read_ad(read_id, camera, seen_at) + f"|{kind}".encode())
        )

    def decode(self, read_id: str, camera: str, seen_at: str, payload: bytes) -> PlateRead:
        data = json.loads(self._cipher.decrypt(bytes(payload), read_ad(read_id, camera, seen_at)))
        extra: dict[str, Any] = {}
        location = _decode_location(data.get("location"))
        if location is not None:
            extra["location"] = location
        return PlateRead(
            id=read_id,
            camera=camera,
            text=data["text"],
            confidence=data["confidence"],
            candidates=tuple(PlateCandidate(t, c) for t, c in data["candidates"]),
            box=(data["box"][0], data["box"][1], data["box"][2], data["box"][3]),
            frames=data["frames"],
            first_seen=datetime.fromisoformat(seen_at),
            last_seen=datetime.fromisoformat(data["last_seen"]),
            state=data["state"],
            state_confidence=data["state_confidence"],
            # Reads stored before colour estimation (issue 3) have none.
            vehicle_colour=data.get("vehicle_colour"),
            vehicle_colour_confidence=data.get("vehicle_colour_confidence", 0.0),
            **extra,
        )

    # -- re-encryption -----------------------------------------------------------------------

    async def promote_to_hit(self, read_id: str) -> bool:
        """Re-encrypt a read and its images under the ``hit`` key of its day.

        Returns False when the read is already a hit or unknown. Done in one transaction: the
        row never points at images of another class.
        """
        return await self._store.write(lambda conn: self.promote_on_writer(conn, read_id))

    def promote_on_writer(self, conn: sqlite3.Connection, read_id: str) -> bool:
        row = conn.execute(
            "SELECT day, class, key_id FROM reads WHERE id = ?", (read_id,)
        ).fetchone()
        if row is None or row[1] == HIT:
            return False
        day, _, key_id = row
        if key_id is not None and self._cipher.ring.by_id(int(key_id)).klass == HOLD:
            # Under a hold key already: it stays there; only its retention class changes.
            conn.execute("UPDATE reads SET class = ? WHERE id = ?", (HIT, read_id))
            return True
        self.reencrypt(conn, read_id, HIT, day, HIT)
        return True

    def reencrypt(
        self, conn: sqlite3.Connection, read_id: str, key_class: str, key_day: str, row_class: str
    ) -> None:
        """On the writer thread: move a read and its images under the key of (class, day).

        ``row_class`` is the read's retention class afterwards (a hold key keeps it).
        """
        row = conn.execute(
            "SELECT camera, seen_at, payload FROM reads WHERE id = ?", (read_id,)
        ).fetchone()
        if row is None:
            return
        camera, seen_at, payload = row
        cipher = self._cipher
        associated = read_ad(read_id, camera, seen_at)
        plain = cipher.decrypt(bytes(payload), associated)
        new_payload = cipher.encrypt_for(key_class, key_day, plain, associated)
        conn.execute(
            "UPDATE reads SET payload = ?, key_id = ?, class = ? WHERE id = ?",
            (new_payload, cipher.key_id_of(new_payload), row_class, read_id),
        )
        segments = self._store.segments
        for kind, segment, offset, length in conn.execute(
            "SELECT kind, segment, offset, length FROM images WHERE read_id = ?", (read_id,)
        ).fetchall():
            image_ad = associated + f"|{kind}".encode()
            data = cipher.decrypt(segments.read(segment, offset, length), image_ad)
            blob = cipher.encrypt_for(key_class, key_day, data, image_ad)
            name, new_offset = segments.append(conn, key_class, key_day, blob)
            conn.execute(
                "UPDATE images SET class = ?, day = ?, segment = ?, offset = ?, length = ?,"
                " key_id = ? WHERE read_id = ? AND kind = ?",
                (
                    key_class,
                    key_day,
                    name,
                    new_offset,
                    len(blob),
                    cipher.key_id_of(blob),
                    read_id,
                    kind,
                ),
            )
