"""Where image segment files go on the replica target: a folder, or an S3 bucket.

Segment files are append-only ciphertext (each image encrypted under its class and day key), so
they are shipped as whole files once closed, never re-sent (NOTES.md: images inline in SQLite made
litestream upload each byte about four times). They sit beside the databases' replicas, in
``<target path>/segments/<name>``. S3 requests are signed with AWS Signature Version 4 here, so
the box needs no AWS SDK; SFTP targets do not carry segments (yet).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import ssl
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlencode

import aiohttp
from yarl import URL

from .settings import FileTarget, S3Target, SftpTarget

SEGMENTS = "segments"
_TIMEOUT = aiohttp.ClientTimeout(total=600, sock_connect=10)


class SegmentStore(Protocol):
    """A place segment files are put to and fetched from."""

    url: str

    async def put(self, name: str, source: Path, size: int, sha256: str) -> None: ...

    async def names(self) -> list[str]: ...

    async def get(self, name: str, destination: Path) -> None: ...

    async def delete(self, name: str) -> None: ...


def segment_store(target: S3Target | FileTarget | SftpTarget) -> SegmentStore | None:
    """The segment store of a replication target; None when that kind cannot carry segments."""
    if isinstance(target, FileTarget):
        return FolderSegments(target.path / SEGMENTS)
    if isinstance(target, S3Target):
        return S3Segments(target)
    return None


class FolderSegments:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.url = f"file://{folder}"

    async def put(self, name: str, source: Path, size: int, sha256: str) -> None:
        import asyncio

        await asyncio.to_thread(self._copy, name, source)

    def _copy(self, name: str, source: Path) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = self.folder / f".{name}.part"
        with source.open("rb") as src, partial.open("wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(partial, self.folder / name)
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    async def names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir() if not p.name.startswith("."))

    async def get(self, name: str, destination: Path) -> None:
        import asyncio
        import shutil

        await asyncio.to_thread(shutil.copyfile, self.folder / name, destination)

    async def delete(self, name: str) -> None:
        import asyncio

        await asyncio.to_thread((self.folder / name).unlink, missing_ok=True)


def sigv4_headers(
    method: str, url: str, payload_sha256: str, *, access_key: str, secret_key: str,
    region: str, now: datetime, extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The headers of an AWS Signature Version 4 signed S3 request (path-style or virtual)."""
    split = URL(url)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    headers = {"host": split.raw_authority, "x-amz-date": amz_date,
               "x-amz-content-sha256": payload_sha256, **(extra or {})}
    lower = {k.lower(): " ".join(v.split()) for k, v in headers.items()}
    signed = sorted(lower)
    query = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~"))
                   for k, v in split.query.items())
    canonical = "\n".join([
        method,
        quote(split.path or "/", safe="/-_.~"),
        "&".join(f"{k}={v}" for k, v in query),
        "".join(f"{k}:{lower[k]}\n" for k in signed),
        ";".join(signed),
        payload_sha256,
    ])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{secret_key}".encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={';'.join(signed)}, Signature={signature}"
    )
    del headers["host"]  # aiohttp sends the same Host itself
    return headers


_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class S3Segments:
    def __init__(self, target: S3Target) -> None:
        self.target = target
        prefix = target.path.strip("/")
        self.prefix = f"{prefix}/{SEGMENTS}/" if prefix else f"{SEGMENTS}/"
        if target.endpoint and target.force_path_style:
            self.base = f"{target.endpoint}/{target.bucket}"
        elif target.endpoint:
            scheme, host = target.endpoint.split("://", 1)
            self.base = f"{scheme}://{target.bucket}.{host}"
        else:
            self.base = f"https://{target.bucket}.s3.{target.region}.amazonaws.com"
        self.url = f"s3://{target.bucket}/{self.prefix}"

    def _credentials(self) -> tuple[str, str]:
        t = self.target
        if t.access_key_id is not None and t.secret_access_key is not None:
            return t.access_key_id.get(), t.secret_access_key.get()
        try:
            return os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
        except KeyError:
            raise LookupError(
                "no S3 credentials: set access_key_id and secret_access_key"
            ) from None

    def _ssl(self) -> ssl.SSLContext | None:
        if self.target.ca_file is None:
            return None
        return ssl.create_default_context(cafile=str(self.target.ca_file))

    async def _request(self, method: str, url: str, payload_sha256: str, **kw: object) -> bytes:
        access, secret = self._credentials()
        extra = kw.pop("extra_headers", None)
        headers = sigv4_headers(method, url, payload_sha256, access_key=access,
                                secret_key=secret, region=self.target.region,
                                now=datetime.now(UTC),
                                extra=extra if isinstance(extra, dict) else None)
        async with (
            aiohttp.ClientSession(timeout=_TIMEOUT) as http,
            http.request(method, URL(url, encoded=True), headers=headers,
                         ssl=self._ssl(), **kw) as response,  # type: ignore[arg-type]
        ):
            body = await response.read()
            if response.status >= 300:
                raise OSError(f"S3 {method} {url}: HTTP {response.status} "
                              f"{body[:200].decode(errors='replace')}")
            return body

    def _object_url(self, name: str) -> str:
        return f"{self.base}/{quote(self.prefix + name, safe='/-_.~')}"

    async def put(self, name: str, source: Path, size: int, sha256: str) -> None:
        with source.open("rb") as f:
            await self._request("PUT", self._object_url(name), sha256, data=f,
                                extra_headers={"content-length": str(size)})

    async def names(self) -> list[str]:
        found: list[str] = []
        token: str | None = None
        while True:
            params = {"list-type": "2", "prefix": self.prefix}
            if token:
                params["continuation-token"] = token
            query = urlencode(sorted(params.items()), quote_via=quote, safe="-_.~")
            body = await self._request("GET", f"{self.base}/?{query}", _EMPTY_SHA256)
            root = ET.fromstring(body)
            ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
            for item in root.iter(f"{ns}Key"):
                key = item.text or ""
                if key.startswith(self.prefix) and "/" not in key[len(self.prefix):]:
                    found.append(key[len(self.prefix):])
            token_node = root.find(f"{ns}NextContinuationToken")
            if token_node is None or not token_node.text:
                return sorted(found)
            token = token_node.text

    async def get(self, name: str, destination: Path) -> None:
        import asyncio

        data = await self._request("GET", self._object_url(name), _EMPTY_SHA256)
        await asyncio.to_thread(destination.write_bytes, data)

    async def delete(self, name: str) -> None:
        await self._request("DELETE", self._object_url(name), _EMPTY_SHA256)
