"""Every route the console registers, walked: sign-in, roles, training and hostile input.

New routes are picked up automatically from ``app.router.routes()``, so a route added without
protection fails here.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from console_fixtures import (
    T0,
    add_user,
    appliance_with_lists,
    csrf_from,
    login_as,
    make_read,
)

from appliance._appliance import Appliance
from appliance._auth import hash_password
from appliance._web import create_app
from appliance.testing import FakeClock

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]
SITE = "site: {name: Test City, timezone: America/Los_Angeles}\n"
PASSWORD = "correct horse 42"
#: a dummy value for each path parameter, matching its pattern
DUMMY = {
    "read_id": "r" * 16,
    "alert_id": "a" * 32,
    "name": "ncic",
    "bolo_id": "b" * 12,
    "username": "operator",
    "sha256": "c" * 64,
    "delivery_id": "d" * 32,
    "share_id": "d" * 12,
    "key_id": "d" * 12,
    "camera": "gate",
}
#: what answers 200 without a session: nothing else may
PUBLIC_200 = {
    ("GET", "/login"), ("HEAD", "/login"),
    ("GET", "/healthz"), ("HEAD", "/healthz"),
    ("GET", "/metrics"), ("HEAD", "/metrics"),
    ("GET", "/static/console.css"), ("HEAD", "/static/console.css"),
    ("GET", "/transparency"), ("HEAD", "/transparency"),
    ("GET", "/policy"), ("HEAD", "/policy"),
}
#: POSTs a signed-in auditor may make: signing out, sign-in steps (which only redirect a
#: signed-in session) and the audit page's own filter and sample
AUDITOR_POSTS = {"/login", "/logout", "/mfa", "/mfa/enrol", "/password", "/audit",
                 "/audit/sample", "/account/password", "/account/recovery-codes",
                 "/account/mfa-reset", "/account/api-keys",
                 f"/account/api-keys/{DUMMY['key_id']}/revoke"}
#: open without current training (no ALPR data): sign-out, user administration, sign-in steps
TRAINING_EXEMPT = re.compile(
    r"^/(logout|users(/.*)?|account(/.*)?|login|healthz|metrics|static/.*|transparency|policy)$"
)
HOSTILES = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "' OR 1=1 --",
    "bad\x00\x07\x1b[31mred\x1b[0m\x7f",
)


def app_of(client: Client) -> web.Application:
    app = client.app
    assert isinstance(app, web.Application)
    return app


def walk(app: web.Application) -> list[tuple[str, str]]:
    """(method, path) for every registered route, path parameters filled with dummies."""
    out = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        if "prefix" in info:  # the static files
            path = str(info["prefix"]).rstrip("/") + "/console.css"
        elif "formatter" in info:
            path = str(info["formatter"]).format(**DUMMY)
        else:
            path = str(info["path"])
        out.append((route.method, path))
    assert len(out) > 30, "the walk found too few routes"
    return out


@pytest.fixture
async def appliance(tmp_path: Path) -> AsyncIterator[Appliance]:
    clock = FakeClock(T0)
    async with appliance_with_lists(tmp_path / "data", SITE, clock) as app:
        assert app.store is not None
        await app.store.add_read(make_read("7ABC123"))
        clock.advance(60)
        yield app


@pytest.fixture
async def client(aiohttp_client: MakeClient, appliance: Appliance) -> Client:
    return await aiohttp_client(create_app(appliance))


async def as_role(client: Client, appliance: Appliance, role: str, name: str | None = None) -> str:
    """Sign in as ``name`` (a trained user of ``role``); returns the session's CSRF token."""
    name = name or role
    assert appliance.store is not None
    if await appliance.store.get_user(name) is None:
        await add_user(appliance, name, role, PASSWORD)
    await login_as(client, name, PASSWORD)
    return csrf_from(await (await client.get("/users" if role == "administrator"
                                             else "/plugins")).text())


async def request(client: Client, method: str, path: str, token: str | None = None) -> int:
    data = {"csrf_token": token} if token else None
    response = await client.request(method, path, data=data, allow_redirects=False)
    await response.read()
    return response.status


async def test_anonymous_requests_get_200_only_on_public_routes(client: Client) -> None:
    ok = set()
    for method, path in walk(app_of(client)):
        status = await request(client, method, path)
        assert status != 500, (method, path)
        if status == 200:
            ok.add((method, path))
        elif method not in ("GET", "HEAD") or path not in {p for _, p in PUBLIC_200}:
            assert status in (303, 401, 403, 404, 405), (method, path, status)
    assert ok == PUBLIC_200


async def test_auditor_is_refused_every_data_changing_post(
    client: Client, appliance: Appliance
) -> None:
    token = await as_role(client, appliance, "auditor")
    posts = [p for m, p in walk(app_of(client)) if m == "POST" and p not in AUDITOR_POSTS]
    assert "/search" in posts and "/bolos" in posts and "/users" in posts
    for path in posts:
        assert await request(client, "POST", path, token) == 403, path
    assert appliance.store is not None
    assert await appliance.store.events(10, kind="search") == []


async def test_user_without_current_training_is_refused_every_data_page(
    client: Client, appliance: Appliance
) -> None:
    assert appliance.store is not None
    # An administrator could open every page; without training, none that shows ALPR data.
    await appliance.store.create_user("untrained", hash_password(PASSWORD), "administrator",
                                      "Test City")
    await login_as(client, "untrained", PASSWORD)
    token = csrf_from(await (await client.get("/users")).text())
    checked = []
    for method, path in walk(app_of(client)):
        if TRAINING_EXEMPT.match(path) or path in ("/mfa", "/mfa/enrol", "/mfa/qr.svg",
                                                   "/password"):
            continue
        status = await request(client, method, path, token if method == "POST" else None)
        assert status == 403, (method, path, status)
        checked.append(path)
    for must in ("/", "/search", "/audit", "/api/reads", "/events", "/bolos", "/alerts"):
        assert must in checked
    assert await appliance.store.events(10, kind="search") == []


# -- hostile input --------------------------------------------------------------------------

SEARCH_FORM = {
    "purpose": "stolen vehicle", "case_number": "26-001234",
    "reason": "Stolen Camry reported by the owner on Main St", "plate": "7ABC123",
    "camera": "", "start": "", "end": "",
}
BOLO_FORM = {
    "plate": "7AB*123", "state": "CA", "category": "major crime (partial plate)",
    "case_number": "26-001234", "synopsis": "Armed robbery suspect vehicle, grey sedan",
    "expires": (T0.date() + timedelta(days=14)).isoformat(),
}


def assert_escaped(html: str, where: str) -> None:
    for hostile in HOSTILES:
        assert hostile not in html, (where, hostile)
    assert "<script>alert" not in html and "<img src=x" not in html, where
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", html), where


async def post(client: Client, path: str, token: str, data: dict[str, str]) -> tuple[int, str]:
    response = await client.post(path, data={"csrf_token": token, **data})
    return response.status, await response.text()


@pytest.mark.parametrize("hostile", HOSTILES)
async def test_hostile_strings_in_the_search_form_are_escaped(
    client: Client, appliance: Appliance, hostile: str
) -> None:
    token = await as_role(client, appliance, "operator")
    for field in SEARCH_FORM:
        status, html = await post(client, "/search", token, {**SEARCH_FORM, field: hostile})
        assert status in (200, 400), (field, status)
        assert_escaped(html, f"search {field}")
    token = await as_role(client, appliance, "auditor")
    html = await (await client.get("/audit")).text()
    assert_escaped(html, "audit page")
    assert "search.refused" in html
    if "<" in hostile:
        assert "&lt;" in html  # the refused requests' data queried, shown escaped
    status, html = await post(client, "/audit", token, {"user": hostile, "plate": hostile,
                                                        "organization": hostile})
    assert status in (200, 400)
    assert_escaped(html, "audit filter")


@pytest.mark.parametrize("hostile", HOSTILES)
async def test_hostile_strings_in_the_bolo_form_are_escaped(
    client: Client, appliance: Appliance, hostile: str
) -> None:
    token = await as_role(client, appliance, "operator")
    for field in BOLO_FORM:
        response = await client.post("/bolos", data={"csrf_token": token,
                                                     **BOLO_FORM, field: hostile})
        html = await response.text()
        assert response.status in (200, 400), (field, response.status)
        assert_escaped(html, f"bolo {field}")
    assert_escaped(await (await client.get("/bolos")).text(), "bolo list")


@pytest.mark.parametrize("hostile", HOSTILES)
async def test_hostile_strings_in_the_user_forms_are_escaped(
    client: Client, appliance: Appliance, hostile: str
) -> None:
    token = await as_role(client, appliance, "administrator", "boss")
    form = {"username": "newuser", "role": "operator", "organization": "Test City"}
    for n, field in enumerate(form):
        data = {**form, "username": f"new{n}", field: hostile}
        status, html = await post(client, "/users", token, data)
        assert status in (200, 400), (field, status)
        assert_escaped(html, f"users {field}")
    for field in ("course", "completed_on"):
        data = {"course": "annual", "completed_on": "", field: hostile}
        status, html = await post(client, "/users/boss/training", token, data)
        assert status in (200, 400), (field, status)
        assert_escaped(html, f"training {field}")
    listing = await (await client.get("/users")).text()
    assert_escaped(listing, "users list")
    if "<" in hostile:  # stored as given, shown escaped
        assert hostile.replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;") in listing
