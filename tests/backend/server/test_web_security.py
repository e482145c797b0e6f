"""The web server is closed to strangers and reads no file but its own: real HTTP against the
real server processes (raw requests where a client library would tidy the request up)."""

from __future__ import annotations

import http.client
import io
import json
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from conftest import MAX_PIXELS, MAX_UPLOAD_MB, TOKEN, ServerProcess
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, AuthenticationError
from PIL import Image

from backend.errors import BadInputError
from backend.server.options import ServerOptions
from backend.server.uploads import checked_upload
from tests.backend.special_files import call_unblocked, make_fifo

PASSWD_LINE = "root:"
API_ROUTES = [
    ("GET", "gradio_api/info"),
    ("GET", "config"),
    ("GET", "gradio_api/queue/data?session_hash=abc"),
    ("GET", "gradio_api/heartbeat/abc"),
    ("GET", "gradio_api/file=/etc/hostname"),
    ("GET", "theme.css"),
    ("POST", "gradio_api/upload"),
    ("POST", "gradio_api/queue/join"),
    ("POST", "gradio_api/cancel"),
    ("POST", "gradio_api/call/process_3d"),
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def raw_get(url: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """GET `path` byte for byte as written (httpx would resolve `..` before sending it)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    return response.status, response.read().decode(errors="replace")


# --- a token on every request ----------------------------------------------------------------


@pytest.mark.parametrize(("method", "route"), API_ROUTES)
def test_every_route_refuses_a_missing_or_wrong_token(
    token_server: ServerProcess, method: str, route: str
) -> None:
    url = token_server.url + route
    missing = httpx.request(method, url, content=b"{}")
    assert missing.status_code == 401 and "needs a token" in missing.json()["detail"]
    wrong = httpx.request(method, url, content=b"{}", headers=bearer("guess"))
    assert wrong.status_code == 401 and "wrong token" in wrong.json()["detail"]
    as_space_token = httpx.request(
        method, url, content=b"{}", headers={"X-HF-Authorization": "Bearer guess"}
    )
    assert as_space_token.status_code == 401


def test_the_page_needs_the_token_and_its_form_opens_it(token_server: ServerProcess) -> None:
    page = {"Accept": "text/html"}
    stranger = httpx.get(token_server.url, headers=page)
    assert stranger.status_code == 401
    assert "<form" in stranger.text and "gradio" not in stranger.text.lower()
    with httpx.Client(base_url=token_server.url, headers=page) as browser:
        assert browser.post("token-login", data={"token": "guess"}).status_code == 401
        assert browser.get("/").status_code == 401
        opened = browser.post("token-login", data={"token": TOKEN})
        assert opened.status_code == 303 and TOKEN not in opened.headers["set-cookie"]
        assert browser.get("/").status_code == 200 and "gradio" in browser.get("/").text.lower()
        assert browser.get("gradio_api/info").status_code == 200


def test_gradio_client_works_with_the_token_and_not_without(
    token_server: ServerProcess, rgba_object: Path, tmp_path: Path
) -> None:
    for token in (None, "guess"):
        with pytest.raises(AuthenticationError, match="credentials were not provided"):
            Client(token_server.url, token=token, verbose=False)
    client = Client(token_server.url, token=TOKEN, download_files=tmp_path, verbose=False)
    segmentation = client.predict(handle_file(str(rgba_object)), api_name="/process_image")
    assert Image.open(segmentation).size == (518, 518), "upload, job and download all passed"
    by_header = Client(token_server.url, headers=bearer(TOKEN), verbose=False)
    assert by_header.predict(False, 5, api_name="/get_random_seed") == 5


def test_which_addresses_need_a_token() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert ServerOptions(host=host).host == host
    for host in ("0.0.0.0", "192.168.1.20", "::", "studio-gpu.local"):
        with pytest.raises(BadInputError, match="without a token"):
            ServerOptions(host=host)
        assert ServerOptions(host=host, token="t").token == "t"
        assert ServerOptions(host=host, insecure=True).insecure


# --- uploads: size and pixels ----------------------------------------------------------------


def test_an_upload_over_the_size_limit_is_refused(open_server: ServerProcess) -> None:
    too_big = io.BytesIO(bytes(int((MAX_UPLOAD_MB + 0.5) * (1 << 20))))
    answer = httpx.post(
        open_server.url + "gradio_api/upload", files={"files": ("big.png", too_big, "image/png")}
    )
    assert answer.status_code == 413
    assert f"limited to {MAX_UPLOAD_MB:g} MB" in answer.json()["detail"]
    just_over = io.BytesIO(bytes(MAX_UPLOAD_MB * (1 << 20) + 1))  # within the request margin
    answer = httpx.post(
        open_server.url + "gradio_api/upload", files={"files": ("big.png", just_over, "image/png")}
    )
    assert answer.status_code == 413 and "maximum allowed size" in answer.text


def test_an_image_with_too_many_pixels_is_refused(
    open_server: ServerProcess, tmp_path: Path
) -> None:
    side = int(MAX_PIXELS**0.5) + 1
    path = tmp_path / "large.png"
    Image.fromarray(np.zeros((side, side, 4), dtype=np.uint8)).save(path)  # compresses to KBs
    client = Client(open_server.url, download_files=tmp_path, verbose=False)
    with pytest.raises(AppError) as refused:
        client.predict(handle_file(str(path)), api_name="/process_image")
    assert f"{side}x{side} = {side * side:,} pixels" in str(refused.value)
    assert f"at most {MAX_PIXELS:,} pixels" in str(refused.value)


def test_a_file_that_is_not_an_image_is_refused(open_server: ServerProcess, tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("not a picture")
    client = Client(open_server.url, download_files=tmp_path, verbose=False)
    with pytest.raises(AppError, match="cannot identify image file"):
        client.predict(handle_file(str(path)), api_name="/process_image")


# --- no file outside its own folders ----------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "content_type"),
    [
        ("process_image", "application/json"),
        ("process_3d", "application/json"),
        ("process_image", None),
    ],
)
def test_an_input_naming_a_file_of_the_server_is_refused(
    open_server: ServerProcess, endpoint: str, content_type: str | None
) -> None:
    """Gradio, mounted, would copy the file into its cache and serve it from there."""
    passwd = {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}
    data = [passwd] if endpoint == "process_image" else [passwd, 2, 7, 256, 1, False, 100000]
    headers = {"Content-Type": content_type} if content_type else {}
    for route in (f"gradio_api/call/{endpoint}", "gradio_api/queue/join"):
        body = {"data": data, "fn_index": 0, "session_hash": "s"}
        answer = httpx.post(open_server.url + route, content=json.dumps(body), headers=headers)
        assert answer.status_code == 400, answer.text
        assert "/etc/passwd is not a file uploaded to this server" in answer.json()["detail"]
    assert not list(open_server.work_dir.rglob("passwd")), "no copy in the server's folder"


@pytest.mark.parametrize(
    "path", ["https://example.com/bus.png", "//example.com/bus.png", "../../etc/hostname"]
)
def test_an_input_naming_an_address_or_a_relative_path_is_refused(
    open_server: ServerProcess, path: str
) -> None:
    remote = {"path": path, "meta": {"_type": "gradio.FileData"}}
    answer = httpx.post(open_server.url + "gradio_api/call/process_image", json={"data": [remote]})
    assert answer.status_code == 400
    assert "not a file uploaded to this server" in answer.json()["detail"]


def test_the_file_route_serves_its_own_folder_only(
    open_server: ServerProcess, rgba_object: Path, tmp_path: Path
) -> None:
    client = Client(open_server.url, download_files=False, verbose=False)
    own = client.predict(handle_file(str(rgba_object)), api_name="/process_image")["path"]
    assert httpx.get(f"{open_server.url}gradio_api/file={own}").status_code == 200
    outside = tmp_path / "secret.png"
    outside.write_bytes(Path(own).read_bytes())
    work = open_server.work_dir
    refused = {
        "/etc/passwd": "/gradio_api/file=/etc/passwd",
        "outside": f"/gradio_api/file={outside}",
        "dot-dot": f"/gradio_api/file={work}/jobs/../../../etc/passwd",
        "encoded": f"/gradio_api/file={work}/%2e%2e/%2e%2e/etc/passwd",
        "old route": f"/file={work}/../../etc/passwd",
        "web address": "/gradio_api/file=https://example.com/x.png",
        "proxy": "/gradio_api/proxy=https://example.com/x.png",
    }
    for trick, path in refused.items():
        status, body = raw_get(open_server.url, path)
        assert status in (403, 404), (trick, status, body)
        assert PASSWD_LINE not in body, trick


def test_an_image_outside_the_servers_folder_is_not_read(tmp_path: Path) -> None:
    """The server's own check, whatever Gradio lets through."""
    root = tmp_path / "work"
    root.mkdir()
    outside = tmp_path / "elsewhere.png"
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(outside)
    for path in (outside, root / ".." / "elsewhere.png"):
        with pytest.raises(BadInputError, match="not a file uploaded to this server"):
            checked_upload(str(path), root.resolve(), MAX_PIXELS)
    inside = root / "upload.png"
    inside.write_bytes(outside.read_bytes())
    assert checked_upload(str(inside), root.resolve(), MAX_PIXELS) == inside.resolve()


def test_a_body_without_a_length_is_refused(open_server: ServerProcess) -> None:
    parts = urlsplit(open_server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.request(
        "POST",
        "/gradio_api/queue/join",
        body=iter([b"{}"]),
        encode_chunked=True,
        headers={"Content-Type": "application/json"},
    )
    assert connection.getresponse().status == 411


def test_json_bodies_are_bounded_too(open_server: ServerProcess) -> None:
    huge = json.dumps({"data": ["x" * (MAX_UPLOAD_MB + 1) * (1 << 20)]})
    answer = httpx.post(
        open_server.url + "gradio_api/call/get_random_seed",
        content=huge,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 413


def test_a_fifo_in_the_servers_folder_is_refused_unopened(tmp_path: Path) -> None:
    fifo = make_fifo(tmp_path)
    error = call_unblocked(lambda: checked_upload(str(fifo), tmp_path.resolve(), MAX_PIXELS), fifo)
    assert isinstance(error, BadInputError)
    assert "is a named pipe (FIFO), not an image file" in error.message
