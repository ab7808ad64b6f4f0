"""A mock hot-list feed for the demo and tests: files served behind HTTP Basic auth.

It binds loopback only unless told otherwise, and serves synthetic data::

    python -m alprbox_hotlist_ncic.mock_server --port 8089 --count 100000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hmac
import logging
import ssl
import sys
from collections.abc import Callable, Mapping

from aiohttp import web

from .generator import generate_extract

logger = logging.getLogger(__name__)

FeedFiles = Mapping[str, bytes | Callable[[], bytes]]
EXTRACT_NAME = "ncic-extract.txt"


def create_feed_app(files: FeedFiles, username: str, password: str) -> web.Application:
    """An app serving each of ``files`` at ``/<name>`` to clients with these credentials.

    A value may be a callable, called on every request (to change the content between fetches,
    or to serve something broken). Requests without the right credentials get 401.
    """
    expected = (username.encode(), password.encode())
    served = dict(files)

    async def serve(request: web.Request) -> web.StreamResponse:
        if not _authorized(request, expected):
            return web.Response(
                status=401,
                text="401: authentication required\n",
                headers={"WWW-Authenticate": 'Basic realm="hot-list feed"'},
            )
        content = served.get(request.match_info["name"])
        if content is None:
            raise web.HTTPNotFound()
        body = content() if callable(content) else content
        html = body.lstrip()[:1] == b"<"
        return web.Response(
            body=body, content_type="text/html" if html else "text/plain", charset="utf-8"
        )

    app = web.Application()
    app.router.add_get("/{name}", serve)
    return app


def _authorized(request: web.Request, expected: tuple[bytes, bytes]) -> bool:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        login, _, password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
    except ValueError:
        return False
    # Compare both parts, always, in constant time.
    user_ok = hmac.compare_digest(login, expected[0])
    password_ok = hmac.compare_digest(password, expected[1])
    return user_ok and password_ok


async def start_feed_server(
    files: FeedFiles,
    username: str,
    password: str,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> tuple[web.AppRunner, str]:
    """Start the feed; return its runner (``await runner.cleanup()`` to stop) and base URL.

    ``port=0`` picks a free port. The base URL has no trailing slash: files are at
    ``f"{base_url}/{name}"``.
    """
    runner = web.AppRunner(create_feed_app(files, username, password), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound_host, bound_port = runner.addresses[0][:2]
    scheme = "https" if ssl_context is not None else "http"
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return runner, f"{scheme}://{shown}:{bound_port}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m alprbox_hotlist_ncic.mock_server",
        description="Serve a synthetic NCIC extract behind HTTP Basic auth (demo and tests).",
    )
    parser.add_argument("--port", type=int, default=8089, help="port (default 8089; 0 = any)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)"
    )
    parser.add_argument("--count", type=int, default=10_000, help="records (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--username", default="demo", help="user name (default demo)")
    parser.add_argument("--password", default="demo", help="password (default demo)")
    args = parser.parse_args(argv)
    extract = generate_extract(args.count, args.seed)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args, {EXTRACT_NAME: extract}))
    return 0


async def _serve_forever(args: argparse.Namespace, files: FeedFiles) -> None:
    runner, base_url = await start_feed_server(
        files, args.username, args.password, args.host, args.port
    )
    print(
        f"serving a synthetic NCIC extract of {args.count} records at {base_url}/{EXTRACT_NAME} "
        f"(user {args.username!r}); Ctrl-C stops",
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    sys.exit(main())
