"""Gradio's HTTP API as its own web client uses it (queue protocol "sse_v3", Gradio 4 to 6), with
the standard library alone: the app's config, file upload, joining the queue, the event stream,
file download and cancel. Every failure is a RemoteError in the user's words.

    POST {prefix}/upload              multipart "files"        -> ["<server path>"]
    POST {prefix}/queue/join          {"data", "fn_index", "session_hash"} -> {"event_id"}
    GET  {prefix}/queue/data?session_hash=...   text/event-stream, one JSON message a line:
         estimation (rank, queue_size), process_starts, progress (progress_data), log,
         heartbeat, process_completed (success, output), close_stream
    POST {prefix}/cancel              {"session_hash", "fn_index", "event_id"}
    GET  {prefix}/file=<server path>
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from http.client import HTTPException, HTTPResponse
from pathlib import Path
from typing import Any

CHUNK = 1 << 20
AUTH_HINT = "check the token in the add-on preferences (PartPacker > Backend)"


class RemoteError(Exception):
    """A remote backend failed: `code` as in the worker protocol's errors, plus remote ones
    (unreachable, auth, busy, quota, timeout, server)."""

    def __init__(self, code: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


class GradioConnection:
    def __init__(
        self, base_url: str, headers: dict[str, str], timeout: float, name: str = ""
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.headers = headers
        self.timeout = timeout
        self.name = name or self.base_url
        self.prefix = "gradio_api/"
        self._functions: dict[str, int] = {}

    def connect(self) -> None:
        """Read the app's config: its API prefix and which function has which name."""
        config = self._json(self._open("config"))
        prefix = str(config.get("api_prefix", "")).strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        for index, dependency in enumerate(config.get("dependencies", [])):
            name = dependency.get("api_name")
            if isinstance(name, str) and name:
                self._functions[name] = int(dependency.get("id", index))

    def function_index(self, api_name: str) -> int:
        try:
            return self._functions[api_name]
        except KeyError:
            raise RemoteError(
                "not_partpacker",
                f"{self.name} has no /{api_name} endpoint: it is not a PartPacker server",
                "check the address in the add-on preferences",
            ) from None

    def upload(self, path: Path) -> str:
        boundary = uuid.uuid4().hex
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        body = head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        content_type = f"multipart/form-data; boundary={boundary}"
        paths = self._json(self._open(self.prefix + "upload", body, content_type))
        if not isinstance(paths, list) or not paths:
            raise RemoteError("server", f"{self.name} answered the upload with {paths!r}")
        return str(paths[0])

    def join(self, fn_index: int, data: list[Any], session_hash: str) -> str:
        body = {"data": data, "fn_index": fn_index, "session_hash": session_hash}
        answer = self._json(self._post_json(self.prefix + "queue/join", body))
        return str(answer["event_id"])

    def messages(self, session_hash: str) -> Iterator[dict[str, Any]]:
        """The session's stream until the server closes it (close_stream or end of stream)."""
        query = urllib.parse.urlencode({"session_hash": session_hash})
        with self._open(f"{self.prefix}queue/data?{query}") as stream:
            while True:
                try:
                    line = stream.readline()
                except TimeoutError:
                    raise self._timeout() from None
                except (OSError, HTTPException) as error:
                    raise self._unreachable(error) from error
                if not line:
                    return
                if not line.startswith(b"data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("msg") == "close_stream":
                    return
                yield message

    def cancel(self, fn_index: int, session_hash: str, event_id: str) -> None:
        body = {"session_hash": session_hash, "fn_index": fn_index, "event_id": event_id}
        self._post_json(self.prefix + "cancel", body).close()

    def download(self, server_path: str, target: Path) -> Path:
        quoted = urllib.parse.quote(server_path, safe="/:")
        with self._open(f"{self.prefix}file={quoted}") as response, target.open("wb") as file:
            try:
                while chunk := response.read(CHUNK):
                    file.write(chunk)
            except TimeoutError:
                raise self._timeout() from None
        return target

    def _post_json(self, path: str, body: dict[str, Any]) -> HTTPResponse:
        return self._open(path, json.dumps(body).encode(), "application/json")

    def _open(self, path: str, data: bytes | None = None, content_type: str = "") -> HTTPResponse:
        headers = {**self.headers, **({"Content-Type": content_type} if content_type else {})}
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as error:
            raise self._refused(error, path) from None
        except TimeoutError:
            raise self._timeout() from None
        except (urllib.error.URLError, OSError, HTTPException) as error:
            raise self._unreachable(error) from error

    def _json(self, response: HTTPResponse) -> Any:
        with response:
            try:
                return json.loads(response.read())
            except ValueError:
                raise RemoteError(
                    "not_partpacker",
                    f"{self.name} did not answer as a Gradio app does",
                    "check the address in the add-on preferences",
                ) from None

    def _refused(self, error: urllib.error.HTTPError, path: str) -> RemoteError:
        detail = _detail(error)
        status = error.code
        if status in (401, 403):
            sent = "Authorization" in self.headers or "X-HF-Authorization" in self.headers
            what = "refused the token" if sent else "needs a token"
            return RemoteError("auth", f"{self.name} {what} (HTTP {status}): {detail}", AUTH_HINT)
        if status == 404:
            return RemoteError(
                "not_partpacker",
                f"{self.name} has no {path.split('?')[0]} (HTTP 404): it is not a PartPacker "
                "server, or not a Gradio app",
                "check the address in the add-on preferences",
            )
        if status == 503 or status == 429:
            return RemoteError(
                "busy", f"{self.name} is busy (HTTP {status}): {detail}", "try again later"
            )
        if status in (411, 413, 400):
            return RemoteError("bad_input", f"{self.name} refused the request: {detail}")
        return RemoteError(
            "server",
            f"{self.name} failed (HTTP {status}): {detail}",
            "try again; if it keeps failing, the server's log says why",
        )

    def _unreachable(self, error: BaseException) -> RemoteError:
        reason = getattr(error, "reason", error)
        return RemoteError(
            "unreachable",
            f"cannot reach {self.name}: {reason}",
            "check the address in the add-on preferences, that the server runs and that this "
            "computer is online",
        )

    def _timeout(self) -> RemoteError:
        return RemoteError(
            "timeout",
            f"{self.name} did not answer within {self.timeout:.0f} s",
            "try again; a server far away or under load may need a longer time-out",
        )


def _detail(error: urllib.error.HTTPError) -> str:
    """The error's JSON `detail` or `error`, else its text, else its reason."""
    try:
        text = error.read().decode("utf-8", "replace")
    except OSError:
        text = ""
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()[:300] or str(error.reason)
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("error") or body)[:300]
    return str(body)[:300]
