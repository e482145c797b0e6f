"""The preferences' backend choice: this computer, a server, or a Hugging Face Space; their
properties (a mixin of the preferences class), their drawing, and the remote backend's settings
read from them. Tokens live in the preferences (or the Hugging Face token file), never in a .blend.
"""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

from .client import BackendUnavailable
from .client.remote_settings import (
    DEFAULT_SPACE,
    SPACE,
    RemoteSettings,
    is_loopback,
    saved_hf_token,
    server_settings,
    space_settings,
)
from .settings import get_preferences

LOCAL = "LOCAL"
OFFLINE_HINT = (
    "turn on Allow Online Access in Preferences > System, or use a server on this computer "
    "(127.0.0.1)"
)


class RemoteBackendPreferences:
    """The properties of the backend choice, mixed into the add-on's preferences."""

    backend_kind: EnumProperty(
        name="Generate On",
        items=(
            (LOCAL, "This Computer", "The backend worker on this computer's GPU"),
            ("SERVER", "Server", "A PartPacker server (python -m backend web), a studio's GPU box"),
            (SPACE, "Hugging Face Space", "The public nvidia/PartPacker Space, or a copy of it"),
        ),
        default=LOCAL,
    )
    server_url: StringProperty(
        name="Server Address",
        description="The server's address, for instance http://gpu-box.studio.lan:7860",
    )
    server_token: StringProperty(
        name="Server Token",
        subtype="PASSWORD",
        description="The token the server was started with (--token); empty for an open server",
    )
    space_id: StringProperty(
        name="Space",
        default=DEFAULT_SPACE,
        description="The Hugging Face Space, as owner/name",
    )
    space_token: StringProperty(
        name="Hugging Face Token",
        subtype="PASSWORD",
        description="Your Hugging Face token (empty: the one `hf auth login` saved, if any); "
        "logged-in users get more GPU time on the public Space",
    )
    remote_timeout: IntProperty(
        name="Network Time-Out",
        default=120,
        min=5,
        description="Seconds the server may stay silent before the job fails",
    )


def uses_remote(context: bpy.types.Context | None = None) -> bool:
    return get_preferences(context).backend_kind != LOCAL


def remote_settings(context: bpy.types.Context | None = None) -> RemoteSettings:
    """The chosen server or Space. Raises BackendUnavailable for an address that cannot work,
    and for one beyond this computer while Blender's online access is off."""
    prefs = get_preferences(context)
    if prefs.backend_kind == SPACE:
        token = prefs.space_token or saved_hf_token()
        settings = space_settings(prefs.space_id, token, float(prefs.remote_timeout))
    else:
        settings = server_settings(prefs.server_url, prefs.server_token, prefs.remote_timeout)
    if not bpy.app.online_access and not is_loopback(settings.url):
        raise BackendUnavailable(
            f"Blender's online access is off, so PartPacker does not connect to {settings.label}",
            OFFLINE_HINT,
        )
    return settings


def draw_backend_choice(prefs: bpy.types.AddonPreferences, layout: bpy.types.UILayout) -> None:
    """The choice, and for a remote one its address and token (the local settings follow)."""
    column = layout.column(heading="Generate On")
    column.prop(prefs, "backend_kind", text="")
    if prefs.backend_kind == "SERVER":
        column.prop(prefs, "server_url")
        column.prop(prefs, "server_token")
    elif prefs.backend_kind == SPACE:
        column.prop(prefs, "space_id")
        column.prop(prefs, "space_token")
        if not prefs.space_token:
            saved = "found" if saved_hf_token() else "none found"
            column.label(text=f"Token saved by `hf auth login`: {saved}", icon="INFO")
    if prefs.backend_kind != LOCAL:
        column.prop(prefs, "remote_timeout")
        if not bpy.app.online_access:
            column.label(text="Online access is off: only a server on 127.0.0.1", icon="ERROR")
