"""ICE servers for the webcam stream: none by default, a JSON list from FER_ICE_SERVERS."""

from __future__ import annotations

import json

import pytest

from fer_core.webrtc import ICE_ENV, ice_servers


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
