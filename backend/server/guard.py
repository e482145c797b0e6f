"""What every request passes before Gradio sees it: the token, a bound on its body, no `..` or
remote address in a path, and no input file outside the server's own folder.

One ASGI layer in front of the whole app, because Gradio's own login guards only some of its
routes (not /cancel or /heartbeat, for instance) and answers the page with a login form; and
because Gradio 6.31, mounted in an app of ours, does not check where an input file is when it is
named in a request to /gradio_api/call/...: it copies {"path": "/etc/passwd"} into its cache,
from where /gradio_api/file= serves it. Here a file named in a request must already be inside
the server's folder (uploaded by a client, or a result of this server).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_COOKIE = "partpacker_token"
LOGIN_PATH = "/token-login"
BODY_MARGIN = 64 << 10
"""Bytes a request may carry beyond the largest upload: multipart headers, JSON around it."""
PARENT_SEGMENT = re.compile(r"(^|[/\\])\.\.([/\\]|$)")
REMOTE_FILE_ROUTE = re.compile(r"/file=(https?:|//)|/proxy=", re.IGNORECASE)
REMOTE_ADDRESS = re.compile(r"^(https?:)?//", re.IGNORECASE)
LOGIN_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>PartPacker</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28em;margin:4em auto}}
input{{font-size:1em;padding:.3em;width:100%;box-sizing:border-box;margin:.5em 0}}</style>
</head><body><h1>PartPacker</h1><p>{message}</p>
<form method="post" action="{action}"><input type="password" name="token" autofocus
placeholder="token" aria-label="token"><input type="submit" value="Open"></form></body></html>"""


class RequestGuard:
    def __init__(
        self, app: ASGIApp, token: str | None, max_upload_bytes: int, folder: Path
    ) -> None:
        self.app = app
        self.token = token
        self.max_body_bytes = max_upload_bytes + BODY_MARGIN
        self.folder = folder.resolve()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and not self.authorized(scope):
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if PARENT_SEGMENT.search(path) or REMOTE_FILE_ROUTE.search(path):
            await refuse(
                send,
                403,
                "this path is not allowed: files are served from this "
                "server's own upload and output folders only",
            )
            return
        if self.token is not None and path == LOGIN_PATH and scope["method"] == "POST":
            await self.log_in(scope, receive, send)
            return
        if not self.authorized(scope):
            await self.refuse_stranger(scope, send)
            return
        await self.pass_body(scope, receive, send)

    def authorized(self, scope: Scope) -> bool:
        if self.token is None:
            return True
        offered = presented_credentials(scope)
        expected = (self.token, page_cookie(self.token))
        return any(hmac.compare_digest(a.encode(), b.encode()) for a in offered for b in expected)

    async def refuse_stranger(self, scope: Scope, send: Send) -> None:
        """401 for a missing and for a wrong token alike (RFC 6750); the detail says which."""
        wrong = bool(presented_credentials(scope))
        summary = "Wrong token." if wrong else "This server needs a token."
        if wants_html(scope):
            page = LOGIN_PAGE.format(message=summary, action=self.login_action(scope))
            await respond(send, 401, page.encode(), "text/html; charset=utf-8")
            return
        detail = (
            f"{summary[:-1].lower()}: send `Authorization: Bearer <token>` "
            "(gradio_client: Client(url, token=...))"
        )
        challenge = b'Bearer error="invalid_token"' if wrong else b"Bearer"
        await refuse(send, 401, detail, [(b"www-authenticate", challenge)])

    def login_action(self, scope: Scope) -> str:
        return (scope.get("root_path", "") or "") + LOGIN_PATH

    async def log_in(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive, 4096)
        token = parse_qs((body or b"").decode(errors="replace")).get("token", [""])[0]
        assert self.token is not None
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            page = LOGIN_PAGE.format(message="Wrong token.", action=self.login_action(scope))
            await respond(send, 401, page.encode(), "text/html; charset=utf-8")
            return
        cookie = f"{TOKEN_COOKIE}={page_cookie(self.token)}; Path=/; HttpOnly; SameSite=Strict"
        home = (scope.get("root_path", "") or "") + "/"
        await respond(
            send,
            303,
            b"",
            "text/plain",
            [(b"set-cookie", cookie.encode()), (b"location", home.encode())],
        )

    async def pass_body(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Bodies within the bound go on; all but uploads are read first, to refuse files
        outside the folder."""
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        length = header(scope, b"content-length")
        if length is None:
            await refuse(send, 411, "send the request with a Content-Length")
            return
        if not length.isdigit() or int(length) > self.max_body_bytes:
            limit = (self.max_body_bytes - BODY_MARGIN) / (1 << 20)
            await refuse(
                send,
                413,
                f"the request is too large: uploads are limited to {limit:g} MB on this server",
            )
            return
        if (header(scope, b"content-type") or "").startswith("multipart/form-data"):
            await self.app(scope, receive, send)  # an upload: Gradio writes it to the folder
            return
        # Anything else may be read as JSON (FastAPI parses a body without a type as JSON).
        body = await read_body(receive, self.max_body_bytes)
        foreign = foreign_file(body or b"", self.folder)
        if foreign is not None:
            await refuse(
                send,
                400,
                f"{foreign} is not a file uploaded to this server: it reads uploaded files "
                "only (gradio_client: handle_file('local/path.png'))",
            )
            return
        await self.app(scope, replay(body or b"", receive), send)


def presented_credentials(scope: Scope) -> list[str]:
    offered = []
    for name in (b"authorization", b"x-hf-authorization"):
        value = header(scope, name)
        if value and value[:7].lower() == "bearer ":
            offered.append(value[7:].strip())
    cookies = SimpleCookie(header(scope, b"cookie") or "")
    if TOKEN_COOKIE in cookies:
        offered.append(cookies[TOKEN_COOKIE].value)
    return offered


def page_cookie(token: str) -> str:
    """What the page's cookie holds: derived from the token, so the cookie is not the token."""
    return hmac.new(token.encode(), b"partpacker web page", hashlib.sha256).hexdigest()


def foreign_file(body: bytes, folder: Path) -> str | None:
    """The first file path in a JSON body that is a web address (Gradio would fetch it) or lies
    outside `folder`; None when there is none."""
    try:
        data = json.loads(body)
    except ValueError:
        return None  # not ours to judge: Gradio answers malformed JSON itself
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            path = item.get("path")
            if isinstance(path, str) and not inside(path, folder):
                return path
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def inside(path: str, folder: Path) -> bool:
    if REMOTE_ADDRESS.match(path):
        return False
    try:
        return Path(path).resolve().is_relative_to(folder)
    except (OSError, ValueError):
        return False


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def wants_html(scope: Scope) -> bool:
    return scope["method"] == "GET" and "text/html" in (header(scope, b"accept") or "")


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None when the client left or sent more than `limit` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the already-read body once, then the client's own messages."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive_again() -> Message:
        return pending.pop() if pending else await receive()

    return receive_again


async def refuse(
    send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"detail": detail}).encode()
    await respond(send, status, body, "application/json", headers)


async def respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
