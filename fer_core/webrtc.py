"""WebRTC connection settings for the Live page: which ICE (STUN/TURN) servers to use.

By default none: without `iceServers: []` streamlit-webrtc falls back to a public STUN
server, which stalls ICE gathering for tens of seconds on a closed network. Localhost and a
LAN need no server; for remote use set `FER_ICE_SERVERS` to a JSON list of ICE servers,
e.g. `[{"urls": "stun:stun.example.org:3478"}]`.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable

ICE_ENV = "FER_ICE_SERVERS"
ICE_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")
_SERVER_KEYS = ("urls", "username", "credential")
_EXAMPLE = '[{"urls": "stun:host:3478"}]'


def ice_servers() -> tuple[list[dict], str | None]:
    """ICE servers from `FER_ICE_SERVERS` (JSON list), [] when unset; and a problem, if any
    (then no servers: a malformed setting must not fail later, when the stream starts)."""
    text = os.environ.get(ICE_ENV, "").strip()
    if not text:
        return [], None
    try:
        servers = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting thousands deep
        problem = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        return [], f"{ICE_ENV} is not valid JSON ({problem}); using no ICE servers"
    problem = ice_servers_problem(servers)
    if problem:
        return [], f"{ICE_ENV} is not valid ({problem}); using no ICE servers"
    return servers, None


def ice_servers_problem(servers: object) -> str | None:
    """What is wrong with a decoded ICE server list, or None: it must be a list of objects,
    each with `urls` (a stun:/turn: URL or a non-empty list of them) and optionally
    `username` and `credential` strings."""
    if not isinstance(servers, list):
        return f"expected a JSON list like {_EXAMPLE}, got {type(servers).__name__}"
    for i, server in enumerate(servers):
        where = f"server {i + 1}"
        if not isinstance(server, dict):
            return f"{where} is {type(server).__name__}, expected an object like {_EXAMPLE[1:-1]}"
        unknown = sorted(set(server) - set(_SERVER_KEYS))
        if unknown:
            return (f"{where} has unknown key(s) {', '.join(map(repr, unknown))}; "
                    f"known: {', '.join(_SERVER_KEYS)}")
        problem = _urls_problem(server.get("urls")) or next(
            (f"{key} must be a string, got {type(server[key]).__name__}"
             for key in _SERVER_KEYS[1:] if key in server and not isinstance(server[key], str)),
            None)
        if problem:
            return f"{where}: {problem}"
    return None


def _urls_problem(urls: object) -> str | None:
    urls = [urls] if isinstance(urls, str) else urls
    if not isinstance(urls, list) or not urls:
        return f"urls must be a URL string or a non-empty list of them, got {urls!r}"[:160]
    for url in urls:
        if not isinstance(url, str) or not url.lower().startswith(ICE_SCHEMES):
            return (f"urls entry {url!r} is not a {'/'.join(s[:-1] for s in ICE_SCHEMES)} "
                    "URL")[:160]
    return None


def _replace_once(owner: type, name: str, patch: Callable[[Callable], Callable]) -> None:
    """Replace the method `owner.name` by `patch(the method)`, unless it was replaced already:
    each patch below is applied once however often a page calls it."""
    current = getattr(owner, name)
    if getattr(current, "_fer_patched", False):
        return
    replacement = patch(current)
    replacement._fer_patched = True
    setattr(owner, name, replacement)


def drop_stale_video_frames() -> bool:
    """Make aiortc's relayed video tracks hand out only the newest frame waiting.

    streamlit-webrtc relays the browser's camera track through `aiortc.contrib.media.MediaRelay`
    with an unbounded queue. When the machine falls behind (the sender's loop pulls frames
    slower than the camera sends them), frames pile up there, before the page's callback
    ever sees them, and the boxes drift seconds behind the camera (1.3 s measured with a busy
    CPU). With this patch a video track's `recv` skips to the newest queued frame and notes
    how many it skipped in the frame's `opaque` attribute (`skipped_before`), so they are
    counted as dropped; and a frame identical (the same object) to the one it handed out
    last is not handed out again, so a processed frame is encoded and sent once. Audio and
    unbuffered relays are untouched. Idempotent; returns False when aiortc is not installed.
    """
    try:
        from aiortc.contrib.media import RelayStreamTrack
    except ImportError:
        return False

    def patch(original):
        async def recv_newest(self):
            while True:
                frame = await original(self)
                queue = getattr(self, "_queue", None)
                if self.kind != "video" or queue is None:
                    return frame
                skipped = 0
                while not queue.empty():
                    newer = queue.get_nowait()
                    if newer is None:  # the end of the stream: leave it for the next call
                        queue.put_nowait(None)
                        break
                    frame, skipped = newer, skipped + 1
                if skipped:
                    self._frame = frame
                    frame.opaque = skipped
                # streamlit-webrtc's processing track hands out its last processed frame again
                # (the same object) for each camera frame that arrives while the next one is
                # being processed; sending it again would cost an encode here and a decode in
                # the browser for a picture already shown.
                if frame is not getattr(self, "_fer_last_frame", None):
                    self._fer_last_frame = frame
                    return frame

        return recv_newest

    _replace_once(RelayStreamTrack, "recv", patch)
    return True


def release_video_frames_at_marker() -> bool:
    """Make aiortc hand a received video frame to the decoder as soon as its last packet is in.

    aiortc's `JitterBuffer` only knows a frame is complete when a packet of the *next* frame
    arrives (another RTP time stamp), so every camera frame waited one camera interval (33 ms
    at 30 fps) before the page's callback could see it. The sender marks each frame's last
    packet (the RTP marker bit); patched, a video buffer whose packets from its start up to a
    marked one are all in, with one time stamp, releases that frame at once. A frame with a
    missing packet still waits as before (and is dropped or completed by aiortc's own rules);
    audio buffers and prefetching buffers are untouched. Idempotent; returns False when aiortc
    is not installed.
    """
    try:
        from aiortc.jitterbuffer import JitterBuffer, JitterFrame
    except ImportError:
        return False

    def patch(original):
        def remove_frame_at_marker(self, sequence_number: int):
            frame = original(self, sequence_number)
            if frame is not None or not self._is_video or self._prefetch or self._origin is None:
                return frame
            packets = []
            for count in range(self.capacity):
                packet = self._packets[(self._origin + count) % self.capacity]
                if packet is None or (packets and packet.timestamp != packets[0].timestamp):
                    return None
                packets.append(packet)
                if packet.marker:
                    self.remove(count + 1)
                    return JitterFrame(data=b"".join(p._data for p in packets),
                                       timestamp=packet.timestamp)
            return None

        return remove_frame_at_marker

    _replace_once(JitterBuffer, "_remove_frame", patch)
    return True


PLAYOUT_DELAY_URI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
_PLAYOUT_DELAY_ID = 9  # used only when aiortc makes the offer; unused by aiortc's own (1-3)


def ask_browser_to_show_frames_at_once() -> bool:
    """Make aiortc ask the browser to show the processed video as soon as it is decoded.

    A browser's video jitter buffer holds each frame back by how much frames' arrival times
    have varied lately; on a busy 2-core machine Chromium held the boxes back 27-70 ms (9-23 ms
    on a quiet one), the biggest wait between the camera and the drawn boxes. The RTP
    playout-delay header extension (which Chromium offers) lets a sender bound that. aiortc does
    not know it; patched, it accepts the extension for video and sends minimum and maximum
    delay 0 on every video packet, the setting WebRTC's cloud-gaming senders use: render each
    frame when it is decoded, never queue it. Idempotent; returns False when aiortc is not
    installed.
    """
    try:
        from aiortc import codecs, rtp
        from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters
    except ImportError:
        return False
    video = codecs.HEADER_EXTENSIONS["video"]
    if all(ext.uri != PLAYOUT_DELAY_URI for ext in video):
        video.append(RTCRtpHeaderExtensionParameters(id=_PLAYOUT_DELAY_ID, uri=PLAYOUT_DELAY_URI))

    def patch_configure(original):
        def configure(self, parameters) -> None:
            original(self, parameters)
            self._fer_playout_delay_id = next(
                (ext.id for ext in parameters.headerExtensions if ext.uri == PLAYOUT_DELAY_URI),
                None)

        return configure

    def patch_set(original):
        def set_with_playout_delay(self, values):
            profile, value = original(self, values)
            ext_id = getattr(self, "_fer_playout_delay_id", None)
            if ext_id is None:
                return profile, value
            extensions = rtp.unpack_header_extensions(profile, value) if value else []
            return rtp.pack_header_extensions([*extensions, (ext_id, b"\x00\x00\x00")])

        return set_with_playout_delay

    _replace_once(rtp.HeaderExtensionsMap, "configure", patch_configure)
    _replace_once(rtp.HeaderExtensionsMap, "set", patch_set)
    return True


def skipped_before(frame) -> int:
    """Frames that `drop_stale_video_frames` skipped to reach this one (0 if none)."""
    skipped = getattr(frame, "opaque", None)
    return skipped if isinstance(skipped, int) and skipped > 0 else 0


# How long the processing track waits for the frame it just queued to come back processed
# before it sends the last processed frame instead (a full face scan takes ~30 ms here).
RESULT_WAIT_S = 0.05
_RESULT_POLL_S = 0.002


def send_each_frames_own_result(wait_s: float = RESULT_WAIT_S) -> bool:
    """Make streamlit-webrtc's asynchronous video processing send each frame's own result.

    Its `AsyncVideoProcessTrack.recv` queues the camera frame for the processing thread and
    returns at once with whatever was processed before, so the picture sent is the previous
    frame's: one camera interval (33 ms at 30 fps) of lag on every frame, added to the codecs'
    and jitter buffers'. Patched, `recv` waits (without blocking the event loop) until a result
    produced after its frame was queued is there, up to `wait_s`, and sends the newest; past
    the wait it sends what there is, as before, so a slow frame never stalls the stream.
    Idempotent; returns False when streamlit-webrtc is not installed.
    """
    try:
        from aiortc.mediastreams import MediaStreamError
        from streamlit_webrtc.process import AsyncMediaProcessTrack
    except ImportError:
        return False

    def patch(original):
        async def recv_own_result(self):
            if self.kind != "video":
                return await original(self)
            if self.readyState != "live":
                raise MediaStreamError
            with self._worker_exception_lock:
                if self._worker_exception:
                    raise self._worker_exception
            self._start()
            if not all(hasattr(self, a) for a in ("_out_deque", "_out_lock", "_in_queue")):
                return await original(self)  # another streamlit-webrtc inside: leave it as it is
            frame = await self.track.recv()
            with self._out_lock:
                waiting = len(self._out_deque)  # results of earlier frames, not yet sent
            self._in_queue.put(frame)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait_s
            while True:
                with self._out_lock:
                    fresh = len(self._out_deque) > waiting
                    if fresh or loop.time() >= deadline:
                        newest = self._out_deque[-1] if self._out_deque else None
                        self._out_deque.clear()
                        break
                await asyncio.sleep(_RESULT_POLL_S)
            new_frame = newest if newest is not None else self._last_out_frame
            if new_frame is None:
                return frame
            self._last_out_frame = new_frame
            new_frame.pts, new_frame.time_base = frame.pts, frame.time_base
            return new_frame

        return recv_own_result

    _replace_once(AsyncMediaProcessTrack, "recv", patch)
    return True
