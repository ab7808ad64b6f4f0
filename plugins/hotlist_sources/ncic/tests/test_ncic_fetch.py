"""Fetching the extract over real HTTP(S) on loopback from the mock feed server."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from alprbox_hotlist_ncic import IMMIGRATION_VIOLATOR_REASON, NcicSettings, NcicSource
from alprbox_hotlist_ncic.generator import generate_extract
from alprbox_hotlist_ncic.mock_server import create_feed_app, start_feed_server
from pydantic import ValidationError

from appliance import (
    AuthFailed,
    DeviceUnavailable,
    HotlistFormatError,
    PluginConfigError,
    PluginContext,
)
from appliance.feeds import basic_auth
from appliance.testing import FakeClock

USER, PASSWORD = "vallejo-alpr", "s3cret pass"
EXTRACT = generate_extract(2000, seed=3, as_of=date(2026, 1, 1))


def html_page() -> bytes:
    return b"<!DOCTYPE html>\n<html><body>Session expired, please sign in</body></html>\n"


def broken() -> bytes:
    raise RuntimeError("the feed's own bug: a 500")


FILES: dict[str, Any] = {
    "extract.txt": EXTRACT,
    "login": html_page,
    "truncated.txt": EXTRACT[: len(EXTRACT) // 2],
    "error": broken,
}


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_NCIC_PASSWORD", PASSWORD)


@pytest.fixture
async def feed() -> AsyncIterator[str]:
    runner, base_url = await start_feed_server(FILES, USER, PASSWORD)
    yield base_url
    await runner.cleanup()


@pytest.fixture
async def make_source(tmp_path: Path) -> AsyncIterator[Any]:
    sources: list[NcicSource] = []

    def make(url: str, **settings: Any) -> NcicSource:
        settings = {"username": USER, "password": "env:TEST_NCIC_PASSWORD", **settings}
        model = NcicSettings(type="ncic", name="ncic", url=url, **settings)
        context = PluginContext(logging.getLogger("test.ncic"), tmp_path, FakeClock())
        sources.append(NcicSource(model, context))
        return sources[-1]

    yield make
    for source in sources:
        await source.close()


async def test_fetches_and_parses_the_extract(feed: str, make_source: Any) -> None:
    source = make_source(f"{feed}/extract.txt")
    batch = await source.fetch()
    dropped = batch.dropped[IMMIGRATION_VIOLATOR_REASON]
    assert len(batch.entries) + dropped == 2000
    assert 5 <= dropped <= 50
    assert batch.skipped == ()
    assert not any("Immigration" in e.category for e in batch.entries)
    again = await source.fetch()  # the session is reused
    assert again.entries == batch.entries


async def test_the_feed_refuses_requests_without_credentials(feed: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{feed}/extract.txt") as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("Basic")
        auth = {"Authorization": basic_auth(USER, PASSWORD)}
        async with session.get(f"{feed}/extract.txt", headers=auth) as response:
            assert response.status == 200
            assert await response.read() == EXTRACT


async def test_wrong_password_is_auth_failed(
    feed: str, make_source: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_NCIC_PASSWORD", "wrong")
    with pytest.raises(AuthFailed, match=r"credentials refused \(HTTP 401\)") as err:
        await make_source(f"{feed}/extract.txt").fetch()
    assert "wrong" not in str(err.value)


async def test_wrong_user_is_auth_failed(feed: str, make_source: Any) -> None:
    with pytest.raises(AuthFailed):
        await make_source(f"{feed}/extract.txt", username="someone-else").fetch()


async def test_server_down_is_device_unavailable(make_source: Any) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DeviceUnavailable, match=r"ClientConnectorError"):
        await make_source(f"http://127.0.0.1:{port}/extract.txt").fetch()


async def test_an_html_page_is_a_format_error(feed: str, make_source: Any) -> None:
    with pytest.raises(HotlistFormatError, match=r"^line 1: not an NCIC extract"):
        await make_source(f"{feed}/login").fetch()


async def test_a_truncated_download_is_a_format_error(feed: str, make_source: Any) -> None:
    with pytest.raises(HotlistFormatError, match=r"truncated"):
        await make_source(f"{feed}/truncated.txt").fetch()


async def test_server_error_is_device_unavailable(feed: str, make_source: Any) -> None:
    with pytest.raises(DeviceUnavailable, match=r"HTTP 500"):
        await make_source(f"{feed}/error").fetch()


async def test_not_found_is_device_unavailable(feed: str, make_source: Any) -> None:
    with pytest.raises(DeviceUnavailable, match=r"HTTP 404"):
        await make_source(f"{feed}/nothing-here").fetch()


async def test_a_download_over_the_size_limit_is_refused(make_source: Any) -> None:
    big = EXTRACT * 12  # over 1 MB
    runner, base_url = await start_feed_server({"big": big}, USER, PASSWORD)
    try:
        with pytest.raises(HotlistFormatError, match=r"over max_size_mb"):
            await make_source(f"{base_url}/big", max_size_mb=1).fetch()
    finally:
        await runner.cleanup()


async def test_a_slow_feed_times_out_as_device_unavailable(make_source: Any) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.5)
        return web.Response(body=EXTRACT)

    app = web.Application()
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with pytest.raises(DeviceUnavailable, match=r"Timeout"):
            await make_source(f"http://127.0.0.1:{port}/slow", timeout_seconds=0.3).fetch()
    finally:
        await runner.cleanup()


async def test_an_unset_password_secret_is_a_config_error(
    feed: str, make_source: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_NCIC_PASSWORD")
    with pytest.raises(PluginConfigError, match=r"env:TEST_NCIC_PASSWORD"):
        await make_source(f"{feed}/extract.txt").fetch()


async def test_mock_feed_serves_callables_per_request() -> None:
    calls: list[int] = []

    def counted() -> bytes:
        calls.append(1)
        return b"x"

    app = create_feed_app({"f": counted}, "u", "p")
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/f"
    try:
        async with aiohttp.ClientSession(
            headers={"Authorization": basic_auth("u", "p")}
        ) as session:
            for _ in range(2):
                async with session.get(url) as response:
                    assert await response.read() == b"x"
    finally:
        await runner.cleanup()
    assert len(calls) == 2


async def test_mock_feed_binds_loopback_by_default() -> None:
    runner, base_url = await start_feed_server({}, "u", "p")
    try:
        host = runner.addresses[0][0]
        assert ipaddress.ip_address(host).is_loopback
        assert base_url.startswith("http://127.0.0.1:")
    finally:
        await runner.cleanup()


# -- HTTPS, with the feed's own certificate authority ----------------------------------------


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "feed.pem", tmp_path / "feed.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
async def https_feed(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    runner, base_url = await start_feed_server(FILES, USER, PASSWORD, ssl_context=context)
    yield base_url, cert
    await runner.cleanup()


async def test_https_with_the_feeds_ca_file(https_feed: tuple[str, Path], make_source: Any) -> None:
    base_url, cert = https_feed
    assert base_url.startswith("https://")
    batch = await make_source(f"{base_url}/extract.txt", ca_file=cert).fetch()
    assert len(batch.entries) > 1900


async def test_https_with_an_untrusted_certificate_is_device_unavailable(
    https_feed: tuple[str, Path], make_source: Any
) -> None:
    base_url, _ = https_feed
    with pytest.raises(DeviceUnavailable, match=r"Certificate"):
        await make_source(f"{base_url}/extract.txt").fetch()


async def test_a_missing_ca_file_is_a_config_error(
    https_feed: tuple[str, Path], make_source: Any, tmp_path: Path
) -> None:
    base_url, _ = https_feed
    with pytest.raises(PluginConfigError, match=r"ca_file"):
        await make_source(f"{base_url}/extract.txt", ca_file=tmp_path / "missing.pem").fetch()


# -- URL rules -------------------------------------------------------------------------------


def settings(**values: Any) -> NcicSettings:
    values = {"type": "ncic", "name": "ncic", "username": "u", "password": "env:X", **values}
    return NcicSettings(**values)


def test_plain_http_only_to_this_host_unless_allowed() -> None:
    settings(url="http://127.0.0.1:8089/x")
    settings(url="http://localhost/x")
    settings(url="https://feed.example.gov/x")
    with pytest.raises(ValidationError, match=r"unencrypted"):
        settings(url="http://feed.example.gov/x")
    settings(url="http://feed.example.gov/x", allow_plain_http=True)


@pytest.mark.parametrize(
    "url", ["https://user:pw@feed.example.gov/x", "ftp://feed.example.gov/x", "feed.example.gov"]
)
def test_bad_urls_are_rejected(url: str) -> None:
    with pytest.raises(ValidationError):
        settings(url=url)


def test_a_literal_password_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"references"):
        settings(url="https://feed.example.gov/x", password="hunter2")
