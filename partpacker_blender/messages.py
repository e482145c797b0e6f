"""What the panel says, in the user's words: the backend's stages, and its errors with the
command-line advice (environment variables, `python -m backend ...`, `--weights-dir`) turned
into what to do in Blender. The full original text stays available through Details
(details_text). Plain Python.
"""

from __future__ import annotations

import re

from .problems import sentence

STAGE_NAMES = {
    "load": "Loading models",
    "prepare": "Preparing image",
    "condition": "Reading image",
    "sample": "Sampling",
    "decode": "Decoding volumes",
    "extract": "Extracting surfaces",
    "postprocess": "Splitting parts",
    "export": "Writing files",
}

PREFERENCES = "the add-on's preferences (Edit > Preferences > Add-ons > PartPacker)"
ONLINE_ACCESS = "Allow Online Access (Preferences > System)"
DETAILS = "Details shows the backend's last output"

HINTS_BY_CODE = {
    "weights": f"download the weights, or choose the folder that holds them, in {PREFERENCES}",
    "worker_died": f"{DETAILS}; Check in {PREFERENCES} tells what is missing",
    "worker_start": f"Check in {PREFERENCES} tells what is missing",
    "protocol": "install the add-on and the backend from the same release",
    "internal": f"this is a bug: {DETAILS}, which a bug report needs",
}
"""What to do, for the codes whose backend hint speaks to a command line (or where the client
knows better); other codes keep the backend's own hint."""
BACKGROUND_REMOVAL_HINT = (
    f"use an image whose background is already transparent, or turn on {ONLINE_ACCESS} once "
    "for the background-removal model to download"
)

PLAIN_WORDS = (
    (r"\s*\(HF_HUB_OFFLINE\)", ""),
    (r"HF_HUB_OFFLINE is set", "downloads are off"),
    (r"unset HF_HUB_OFFLINE", f"turn on {ONLINE_ACCESS}"),
    (r"run `?python -m backend download[^`,;]*`?", f"use Download Weights in {PREFERENCES}"),
    (r"point --weights-dir at", "choose as Weights Folder"),
    (r"--weights-dir", "the Weights Folder preference"),
)
COMMAND_LINE = re.compile(r"`|\$[A-Z_]|\b[A-Z]+_[A-Z_]+\b|(?<!\w)--\w|python -m")
"""What still reads like a command line once PLAIN_WORDS are applied."""


def plain_words(text: str) -> str:
    for pattern, replacement in PLAIN_WORDS:
        text = re.sub(pattern, replacement, text)
    return text


def speaks_command_line(text: str) -> bool:
    return bool(COMMAND_LINE.search(text))


def user_error(code: str, message: str, hint: str = "") -> tuple[str, str]:
    """The (message, hint) the panel shows for a backend or client error, as sentences."""
    message = plain_words(message)
    if speaks_command_line(message):
        message = message.split(":")[0]  # the sentence before the technical part
    if code == "weights" and "background" in message:
        hint = BACKGROUND_REMOVAL_HINT
    elif code in HINTS_BY_CODE:
        hint = HINTS_BY_CODE[code]
    else:
        hint = plain_words(hint)
        if speaks_command_line(hint):
            hint = DETAILS
    return sentence(message), sentence(hint) if hint else ""


def stage_name(stage: str) -> str:
    return STAGE_NAMES.get(stage, stage.replace("_", " ").capitalize())


def details_text(code: str, message: str, hint: str, traceback: str, backend_log: str) -> str:
    """Everything known about an error, unabridged, for the Details text."""
    shown_message, shown_hint = user_error(code, message, hint)
    sections = ["PartPacker: what went wrong", "", shown_message, shown_hint]
    if (shown_message, shown_hint) != (sentence(message), sentence(hint)):
        sections += ["", "The backend's own words:", sentence(message), sentence(hint)]
    sections += ["", f"Error code: {code}"]
    if traceback.strip():
        sections += ["", "Traceback:", traceback.rstrip()]
    sections += ["", "The backend's last output:", backend_log.rstrip() or "(none)"]
    return "\n".join(sections) + "\n"
