"""The webhook exporter against a real aiohttp receiver on loopback, through the host's outbox:
signature, idempotency key, a flapping destination (500s), a slow one (timeouts)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from alprbox_exporter_webhook import plugin

from appliance._sharing.authority import Authorization, DeliveryRefused
from appliance._sharing.outbox import Outbox
from appliance.base import Recipient
from appliance.testing import ExporterConformance, FakeClock, make_appliance

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECRET = "s3cret-shared-with-oakland"
AUTH = Authorization(approval_id="req-9", channel="webhook",
                     recipient=Recipient("Oakland Police Department", "CA0010900"),
                     purpose="stolen vehicle", case_number="26-001234", requested_by="rivera")


class Standing:
    async def authorize_delivery(self, approval_id: str, *, exporter: str, channel: str,
                                 actor: str) -> Authorization:
        if approval_id != AUTH.approval_id:
            raise DeliveryRefused("unknown approval")
        return AUTH


class Receiver:
    """A partner's endpoint that checks the signature and can be told to fail or stall."""

    def __init__(self) -> None:
        self.fail: list[int] = []
        self.stall = 0.0
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.bad_signatures = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.stall:
            await asyncio.sleep(self.stall)
        if self.fail:
            return web.Response(status=self.fail.pop(0))
        stamp = request.headers[plugin.TIMESTAMP_HEADER]
        expected = "sha256=" + hmac.new(SECRET.encode(), stamp.encode() + b"." + body,
                                        hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers[plugin.SIGNATURE_HEADER]):
            self.bad_signatures += 1
            return web.Response(status=401)
        self.seen.append((request.headers[plugin.IDEMPOTENCY_HEADER], json.loads(body)))
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield rec, f"http://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()


async def run_outbox(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch,
                     request_timeout: float = 5.0) -> AsyncIterator[tuple[Outbox, FakeClock]]:
    monkeypatch.setenv("OAKLAND_HOOK_SECRET", SECRET)
    clock = FakeClock(T0)
    config = {"exporters": [{"type": "webhook", "name": "oakland", "url": url,
                             "secret": "env:OAKLAND_HOOK_SECRET",
                             "request_timeout": request_timeout, "max_attempts": 5}]}
    async with make_appliance(tmp_path / "box", plugins=[plugin], config=config,
                              clock=clock) as box:
        assert box.sharing is not None
        outbox = box.sharing.outbox  # the box's own, built from the config; the test drives it
        assert isinstance(outbox.exporters["oakland"][0], plugin.WebhookExporter)
        outbox.authority = Standing()
        yield outbox, clock


async def test_flapping_destination_gets_the_delivery_once_with_one_key(
    tmp_path: Path, receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rec, url = receiver
    rec.fail = [500, 503]
    async for outbox, clock in run_outbox(tmp_path, url, monkeypatch):
        delivery_id = await outbox.enqueue(AUTH, "oakland", {"kind": "hit", "plate": "7ABC123"},
                                           actor="system")
        for _ in range(3):
            await outbox.deliver_due("oakland")
            clock.advance(10)
        row = await outbox.records.get(delivery_id)
        assert row is not None and row.status == "delivered" and row.attempts == 3
    [(key, body)] = rec.seen
    assert key == delivery_id and body["delivery_id"] == delivery_id
    assert body["payload"] == {"kind": "hit", "plate": "7ABC123"}
    assert body["recipient"]["ori"] == "CA0010900" and body["approval_id"] == "req-9"
    assert rec.bad_signatures == 0


async def test_slow_destination_times_out_and_is_retried(
    tmp_path: Path, receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rec, url = receiver
    rec.stall = 1.0
    async for outbox, clock in run_outbox(tmp_path, url, monkeypatch, request_timeout=0.2):
        delivery_id = await outbox.enqueue(AUTH, "oakland", {"kind": "hit"}, actor="system")
        await outbox.deliver_due("oakland")
        row = await outbox.records.get(delivery_id)
        assert row is not None and row.status == "pending" and row.attempts == 1
        assert "unreachable" in (row.last_error or "")
        rec.stall = 0.0
        clock.advance(10)
        await outbox.deliver_due("oakland")
        row = await outbox.records.get(delivery_id)
        assert row is not None and row.status == "delivered"
    assert [k for k, _ in rec.seen] == [delivery_id]


async def test_wrong_secret_is_refused_by_the_receiver(
    tmp_path: Path, receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rec, url = receiver
    async for outbox, _clock in run_outbox(tmp_path, url, monkeypatch):
        monkeypatch.setenv("OAKLAND_HOOK_SECRET", "not-the-secret")
        delivery_id = await outbox.enqueue(AUTH, "oakland", {"kind": "hit"}, actor="system")
        await outbox.deliver_due("oakland")
        row = await outbox.records.get(delivery_id)
        assert row is not None and "signature" in (row.last_error or "")
    assert rec.seen == [] and rec.bad_signatures == 1


class TestWebhookConformance(ExporterConformance):
    @pytest.fixture
    def exporter_plugin(self) -> object:
        return plugin

    @pytest.fixture
    def exporter_settings(self, receiver: tuple[Receiver, str],
                          monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
        monkeypatch.setenv("OAKLAND_HOOK_SECRET", SECRET)
        return {"type": "webhook", "name": "oakland", "url": receiver[1],
                "secret": "env:OAKLAND_HOOK_SECRET"}


def test_plain_http_is_refused_except_to_this_machine() -> None:
    from pydantic import ValidationError

    base = {"type": "webhook", "name": "x", "secret": "env:X"}
    with pytest.raises(ValidationError, match="https"):
        plugin.WebhookSettings.model_validate({**base, "url": "http://alpr.example.gov/hook"})
    plugin.WebhookSettings.model_validate({**base, "url": "https://alpr.example.gov/hook"})
    plugin.WebhookSettings.model_validate({**base, "url": "http://127.0.0.1:8000/hook"})
