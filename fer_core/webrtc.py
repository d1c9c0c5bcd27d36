"""WebRTC connection settings for the Live page: which ICE (STUN/TURN) servers to use.

By default none: without `iceServers: []` streamlit-webrtc falls back to a public STUN
server, which stalls ICE gathering for tens of seconds on a closed network. Localhost and a
LAN need no server; for remote use set `FER_ICE_SERVERS` to a JSON list of ICE servers,
e.g. `[{"urls": "stun:stun.example.org:3478"}]`.
"""

from __future__ import annotations

import json
import os

ICE_ENV = "FER_ICE_SERVERS"


def ice_servers() -> tuple[list[dict], str | None]:
    """ICE servers from `FER_ICE_SERVERS` (JSON list), [] when unset; and a problem, if any."""
    text = os.environ.get(ICE_ENV, "").strip()
    if not text:
        return [], None
    try:
        servers = json.loads(text)
        if not isinstance(servers, list) or not all(
            isinstance(s, dict) and "urls" in s for s in servers
        ):
            raise ValueError('expected a JSON list like [{"urls": "stun:host:3478"}]')
    except ValueError as exc:
        return [], f"{ICE_ENV} is not valid ({exc}); using no ICE servers"
    return servers, None
