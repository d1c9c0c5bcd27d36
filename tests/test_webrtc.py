"""ICE servers for the webcam stream: none by default, a JSON list from FER_ICE_SERVERS."""

from __future__ import annotations

import json

import pytest

from fer_core.webrtc import ICE_ENV, ice_servers

pytestmark = pytest.mark.usefixtures("fer_dirs")


def test_no_ice_servers_by_default(monkeypatch):
    monkeypatch.delenv(ICE_ENV, raising=False)
    assert ice_servers() == ([], None)
    monkeypatch.setenv(ICE_ENV, "   ")
    assert ice_servers() == ([], None)


def test_a_json_list_of_servers_is_used(monkeypatch):
    servers = [{"urls": ["stun:stun.example.org:3478"]},
               {"urls": "turn:turn.example.org", "username": "u", "credential": "p"}]
    monkeypatch.setenv(ICE_ENV, json.dumps(servers))
    assert ice_servers() == (servers, None)


@pytest.mark.parametrize("text", ["stun:not-json", '{"urls": "stun:x"}', '[{"url": "stun:x"}]',
                                  '["stun:x"]'])
def test_invalid_settings_fall_back_to_none_and_say_why(monkeypatch, text):
    monkeypatch.setenv(ICE_ENV, text)
    servers, problem = ice_servers()
    assert servers == []
    assert problem is not None and ICE_ENV in problem


def _relay_track(kind: str, frames: list):
    """A buffered aiortc relay proxy whose queue already holds `frames`."""
    from aiortc.contrib.media import RelayStreamTrack

    class Relay:  # the two calls a proxy makes on its relay
        def _start(self, proxy):
            pass

        def _stop(self, proxy):
            pass

    class Source:
        pass

    Source.kind = kind
    track = RelayStreamTrack(Relay(), Source(), buffered=True)
    for frame in frames:
        track._queue.put_nowait(frame)
    return track


def _frames(n: int) -> list:
    import av
    import numpy as np

    out = []
    for i in range(n):
        frame = av.VideoFrame.from_ndarray(np.zeros((4, 4, 3), np.uint8), format="bgr24")
        frame.pts = i
        out.append(frame)
    return out


def test_relayed_video_hands_out_the_newest_frame_and_counts_the_skipped():
    import asyncio

    from fer_core.webrtc import drop_stale_video_frames, skipped_before

    assert drop_stale_video_frames() and drop_stale_video_frames()  # idempotent
    track = _relay_track("video", _frames(5))
    newest = asyncio.run(track.recv())
    assert newest.pts == 4 and skipped_before(newest) == 4
    track = _relay_track("video", _frames(1))
    only = asyncio.run(track.recv())
    assert only.pts == 0 and skipped_before(only) == 0


def test_relayed_video_keeps_the_end_of_stream_and_audio_is_untouched():
    import asyncio

    from aiortc.mediastreams import MediaStreamError

    from fer_core.webrtc import drop_stale_video_frames

    drop_stale_video_frames()
    track = _relay_track("video", [*_frames(2), None])
    assert asyncio.run(track.recv()).pts == 1
    with pytest.raises(MediaStreamError):  # the end still ends the stream
        asyncio.run(track.recv())
    track = _relay_track("audio", _frames(3))
    assert asyncio.run(track.recv()).pts == 0  # audio must not lose samples


def test_relayed_video_does_not_hand_out_the_same_frame_twice():
    import asyncio

    from fer_core.webrtc import drop_stale_video_frames

    drop_stale_video_frames()
    first, second = _frames(2)
    track = _relay_track("video", [first])
    assert asyncio.run(track.recv()) is first
    track._queue.put_nowait(first)  # handed out again by the processing track...
    track._queue.put_nowait(second)

    async def next_two():
        one = await track.recv()
        track._queue.put_nowait(one)  # ...and once more while nothing new is queued
        track._queue.put_nowait(first)
        return one, await asyncio.wait_for(track.recv(), timeout=0.2)

    one, two = asyncio.run(next_two())
    assert one is second and two is first  # `first` again is new after `second`
    track._queue.put_nowait(first)

    async def repeat_only():
        return await asyncio.wait_for(track.recv(), timeout=0.2)

    with pytest.raises(TimeoutError):  # the same frame twice in a row is never handed out
        asyncio.run(repeat_only())



class _Camera:
    """An input track for the processing track: numbered frames, one every `interval_s`."""

    kind = "video"

    def __init__(self, frames, interval_s: float) -> None:
        from fractions import Fraction

        self.frames, self.interval_s = list(frames), interval_s
        for frame in self.frames:
            frame.time_base = Fraction(1, 30)

    def on(self, *_args) -> None:
        pass

    def stop(self) -> None:
        pass

    async def recv(self):
        import asyncio

        await asyncio.sleep(self.interval_s)
        return self.frames.pop(0)


class _SlowProcessor:
    """Takes `delay_s` per frame in the processing thread; marks each result with its input's pts."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    async def recv_queued(self, frames):
        import time

        time.sleep(self.delay_s)
        (out,) = _frames(1)
        out.opaque = ("result of", frames[-1].pts)
        return [out]


def _processed(delay_s: float, n: int = 6) -> list:
    import asyncio

    from streamlit_webrtc.process import AsyncVideoProcessTrack

    track = AsyncVideoProcessTrack(_Camera(_frames(n), 0.03), _SlowProcessor(delay_s))

    async def run():
        return [await track.recv() for _ in range(n)]

    try:
        return asyncio.run(run())
    finally:
        track.stop()


def test_each_camera_frame_is_answered_with_its_own_result():
    from fer_core.webrtc import send_each_frames_own_result

    assert send_each_frames_own_result() and send_each_frames_own_result()  # idempotent
    sent = _processed(delay_s=0.005)
    assert [f.opaque for f in sent] == [("result of", i) for i in range(6)]
    assert [f.pts for f in sent] == list(range(6))


def test_a_result_slower_than_the_wait_does_not_hold_the_stream_back():
    import time

    from fer_core.webrtc import RESULT_WAIT_S, send_each_frames_own_result

    send_each_frames_own_result()
    start = time.perf_counter()
    sent = _processed(delay_s=RESULT_WAIT_S + 0.04, n=4)
    # Each recv gave up after RESULT_WAIT_S and sent what there was: the first camera frame
    # itself (nothing processed yet), then the newest result finished by then.
    assert time.perf_counter() - start < 4 * (0.03 + RESULT_WAIT_S) + 0.1
    assert sent[0].opaque is None
    done = [f.opaque[1] for f in sent[1:] if f.opaque]
    assert done and done == sorted(done) and all(pts < i + 1 for i, pts in enumerate(done, 1))


def _packet(seq: int, timestamp: int, marker: bool = False):
    from aiortc.rtp import RtpPacket

    packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=timestamp,
                       marker=int(marker))
    packet._data = bytes([seq])  # what the receiver puts there: the depayloaded bytes
    return packet


def test_a_video_frame_is_released_at_its_last_packet_not_at_the_next_frames_first():
    from aiortc.jitterbuffer import JitterBuffer

    from fer_core.webrtc import release_video_frames_at_marker

    assert release_video_frames_at_marker() and release_video_frames_at_marker()  # idempotent
    buffer = JitterBuffer(capacity=512, is_video=True)
    assert buffer.add(_packet(10, 3000))[1] is None
    assert buffer.add(_packet(11, 3000))[1] is None
    frame = buffer.add(_packet(12, 3000, marker=True))[1]
    assert frame is not None and (frame.data, frame.timestamp) == (bytes([10, 11, 12]), 3000)
    assert buffer.add(_packet(13, 6000))[1] is None  # the next frame does not release it again
    frame = buffer.add(_packet(14, 6000, marker=True))[1]
    assert (frame.data, frame.timestamp) == (bytes([13, 14]), 6000)


def test_a_video_frame_missing_a_packet_is_not_released_at_its_marker():
    from aiortc.jitterbuffer import JitterBuffer

    from fer_core.webrtc import release_video_frames_at_marker

    release_video_frames_at_marker()
    buffer = JitterBuffer(capacity=512, is_video=True)
    assert buffer.add(_packet(20, 3000))[1] is None
    assert buffer.add(_packet(22, 3000, marker=True))[1] is None  # 21 is missing
    frame = buffer.add(_packet(21, 3000))[1]  # late, but in: now the frame is whole
    assert (frame.data, frame.timestamp) == (bytes([20, 21, 22]), 3000)


def test_audio_buffers_still_wait_for_their_prefetch():
    from aiortc.jitterbuffer import JitterBuffer

    from fer_core.webrtc import release_video_frames_at_marker

    release_video_frames_at_marker()
    buffer = JitterBuffer(capacity=16, prefetch=4)
    assert all(buffer.add(_packet(i, 160 * i, marker=True))[1] is None for i in range(4))


def _map_with(*uris: str):
    from aiortc import rtp
    from aiortc.rtcrtpparameters import (
        RTCRtpHeaderExtensionParameters,
        RTCRtpParameters,
    )

    extensions = [RTCRtpHeaderExtensionParameters(id=i, uri=uri) for i, uri in enumerate(uris, 3)]
    extensions_map = rtp.HeaderExtensionsMap()
    extensions_map.configure(RTCRtpParameters(headerExtensions=extensions))
    return extensions_map


ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"


def test_video_packets_ask_for_zero_playout_delay_once_negotiated():
    from aiortc import rtp

    from fer_core.webrtc import PLAYOUT_DELAY_URI, ask_browser_to_show_frames_at_once

    assert ask_browser_to_show_frames_at_once() and ask_browser_to_show_frames_at_once()
    values = rtp.HeaderExtensions(abs_send_time=1234)
    sent = rtp.unpack_header_extensions(*_map_with(ABS_SEND_TIME, PLAYOUT_DELAY_URI).set(values))
    # min and max playout delay 0 (12 bits each), beside the extensions aiortc sends itself
    assert sent == [(3, (1234).to_bytes(3, "big")), (4, bytes(3))]
    packet = rtp.RtpPacket(payload_type=96, sequence_number=1, timestamp=0)
    packet.extensions = values
    assert rtp.RtpPacket.parse(packet.serialize(_map_with(ABS_SEND_TIME, PLAYOUT_DELAY_URI)),
                               _map_with(ABS_SEND_TIME)).extensions.abs_send_time == 1234
    # not negotiated (audio, or a browser that does not offer it): nothing added
    assert rtp.unpack_header_extensions(*_map_with(ABS_SEND_TIME).set(values)) == sent[:1]


def test_the_playout_delay_extension_is_offered_and_answered_for_video_only():
    import asyncio

    from aiortc import RTCPeerConnection

    from fer_core.webrtc import PLAYOUT_DELAY_URI, ask_browser_to_show_frames_at_once

    ask_browser_to_show_frames_at_once()

    async def negotiate() -> tuple[str, str]:
        offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
        try:
            offerer.addTransceiver("video")
            offerer.addTransceiver("audio")
            await offerer.setLocalDescription(await offerer.createOffer())
            await answerer.setRemoteDescription(offerer.localDescription)
            answer = await answerer.createAnswer()
            return offerer.localDescription.sdp, answer.sdp
        finally:
            await offerer.close()
            await answerer.close()

    for sdp in asyncio.run(negotiate()):
        video, audio = (m for m in sdp.split("\r\nm=")[1:])
        assert video.startswith("video") and PLAYOUT_DELAY_URI in video
        assert PLAYOUT_DELAY_URI not in audio
        assert sdp.count(PLAYOUT_DELAY_URI) == 1  # the patch added it once


# =========================================== ICE servers from the environment


@pytest.mark.parametrize("text", [
    pytest.param("[" * 100_000 + "]" * 100_000, id="nested-100000-deep"),
    '[{"urls": 5}]',
    '[{"urls": []}]',
    '[{"urls": ["stun:a.org", 3]}]',
    '[{"urls": "http://a.org"}]',
    '[{"urls": "turn:a.org", "username": 1, "credential": "p"}]',
    '[{"urls": "turn:a.org", "credential": ["p"]}]',
    '[{"urls": "stun:a.org", "port": 3478}]',
    '[["stun:a.org"]]',
])
def test_ice_servers_of_the_wrong_shape_are_a_problem_message(monkeypatch, text) -> None:
    monkeypatch.setenv(ICE_ENV, text)
    servers, problem = ice_servers()
    assert servers == [] and problem and ICE_ENV in problem and len(problem) < 300


def test_ice_servers_of_the_right_shape_are_used(monkeypatch) -> None:
    servers = [{"urls": "stun:a.org:3478"},
               {"urls": ["turn:b.org", "turns:b.org:443"], "username": "u", "credential": "p"}]
    monkeypatch.setenv(ICE_ENV, json.dumps(servers))
    assert ice_servers() == (servers, None)

