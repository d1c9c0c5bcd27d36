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

