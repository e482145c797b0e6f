"""Where a remote backend is and how to talk to it: a PartPacker server (`python -m backend web`)
or a Hugging Face Space with the same API. Plain Python: no bpy."""

from __future__ import annotations

import ipaddress
import os
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from .backend import BackendUnavailable

SERVER = "SERVER"
SPACE = "SPACE"
DEFAULT_SPACE = "nvidia/PartPacker"
SPACE_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class RemoteSettings:
    kind: str
    """SERVER or SPACE."""
    url: str
    """The app's address, ending with a slash."""
    token: str = ""
    timeout: float = 120.0
    """Seconds any request, or the event stream between two messages, may stay silent (Gradio
    sends a heartbeat every 15 s)."""
    space_id: str = ""

    @property
    def label(self) -> str:
        """How messages name it: "the server http://..." or "the Space nvidia/PartPacker"."""
        return f"the Space {self.space_id}" if self.kind == SPACE else f"the server {self.url}"

    @property
    def kind_name(self) -> str:
        return "Hugging Face Space" if self.kind == SPACE else "Server"

    def headers(self) -> dict[str, str]:
        """A server takes the token as `Authorization`; a Space as gradio_client sends it."""
        if not self.token:
            return {}
        name = "X-HF-Authorization" if self.kind == SPACE else "Authorization"
        return {name: f"Bearer {self.token}"}


def server_settings(url: str, token: str = "", timeout: float = 120.0) -> RemoteSettings:
    return RemoteSettings(SERVER, checked_url(url), token.strip(), timeout)


def space_settings(space_id: str, token: str = "", timeout: float = 120.0) -> RemoteSettings:
    space_id = space_id.strip() or DEFAULT_SPACE
    return RemoteSettings(SPACE, space_url(space_id), token.strip(), timeout, space_id)


def space_url(space_id: str) -> str:
    """`owner/name` -> https://owner-name.hf.space/, as Hugging Face names a Space's host."""
    if not SPACE_ID.match(space_id):
        raise BackendUnavailable(
            f"{space_id!r} is not a Space id",
            "enter it as on its page: owner/name, for instance nvidia/PartPacker",
        )
    host = re.sub(r"[^a-z0-9]+", "-", space_id.lower()).strip("-")
    return f"https://{host}.hf.space/"


def checked_url(text: str) -> str:
    text = text.strip()
    if text and "://" not in text:
        text = "http://" + text
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BackendUnavailable(
            f"{text!r} is not a server address" if text else "no server address is set",
            "enter the server's address in the add-on preferences, for instance "
            "http://gpu-box.studio.lan:7860",
        )
    return urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc, parts.path.rstrip("/") + "/", "", "")
    )


def is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def saved_hf_token(env: dict[str, str] | None = None) -> str:
    """The Hugging Face token `hf auth login` saved: $HF_TOKEN, else $HF_TOKEN_PATH, else
    $HF_HOME/token, else ~/.cache/huggingface/token; "" when there is none."""
    env = dict(os.environ) if env is None else env
    if env.get("HF_TOKEN", "").strip():
        return env["HF_TOKEN"].strip()
    home = Path(
        env.get("HF_HOME")
        or Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"
    )
    path = Path(env.get("HF_TOKEN_PATH") or home / "token")
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""
