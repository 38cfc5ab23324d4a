"""Where `app.py` listens, and the refusal to listen beyond loopback with nobody required to sign in.

On loopback only the machine's own users can connect, so no sign-in is needed. Any other
address (`0.0.0.0`, a LAN address, a host name) exposes the assistant to a network: then users
(`ASSISTANT_USERS`) or API tokens (`ASSISTANT_API_TOKENS`) must be configured, or anonymous use
chosen on purpose with `ASSISTANT_ALLOW_ANONYMOUS=true`.

Example:
    >>> from assistant.settings import Settings
    >>> bind_address(Settings(), {"GRADIO_SERVER_NAME": "0.0.0.0"})
    ('0.0.0.0', 7860)
    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, True, False)
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from assistant.server.auth import Credentials
    from assistant.settings import Settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860


def bind_address(settings: "Settings", environ: Mapping[str, str]) -> tuple[str, int]:
    """`(host, port)`: `ASSISTANT_HOST`/`_PORT`, else Gradio's `GRADIO_SERVER_NAME`/`_PORT`, else loopback:7860."""
    host = settings.host or environ.get("GRADIO_SERVER_NAME") or DEFAULT_HOST
    if settings.port is not None:
        return host, settings.port
    raw = environ.get("GRADIO_SERVER_PORT")
    if raw is None:
        return host, DEFAULT_PORT
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"GRADIO_SERVER_PORT must be a port number, got {raw!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"GRADIO_SERVER_PORT must be between 1 and 65535, got {port}")
    return host, port


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # another host name: it may resolve to anything, so it counts as exposed
        return False


def exposure_error(host: str, settings: "Settings", credentials: "Credentials") -> str | None:
    """Why serving on `host` is refused, in one line with the fix; None when it is allowed."""
    if is_loopback(host) or credentials.required or settings.allow_anonymous:
        return None
    return (
        f"refusing to serve on {host}: anyone who can reach it could ask without signing in. Set ASSISTANT_USERS "
        "and/or ASSISTANT_API_TOKENS (README: Running it for others), or ASSISTANT_ALLOW_ANONYMOUS=true "
        "if that is intended, or serve on 127.0.0.1 behind a reverse proxy."
    )
