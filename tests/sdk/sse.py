"""A small SSE reader for the raw-stream tests: events as the WHATWG spec frames them, comments kept."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx

from conftest import CLIENT_TIMEOUT_S


@dataclass
class Event:
    event: str | None = None
    data_lines: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)

    @property
    def data(self) -> str:
        return "\n".join(self.data_lines)

    def json(self):
        return json.loads(self.data)


def parse(text: str) -> list[Event]:
    """Splits a stream into events (blank-line separated); comment-only blocks are events too."""
    events = []
    cur = Event()
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line == "":
            if cur.event is not None or cur.data_lines or cur.comments:
                events.append(cur)
            cur = Event()
        elif line.startswith(":"):
            cur.comments.append(line[1:].lstrip(" "))
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                cur.event = value
            elif name == "data":
                cur.data_lines.append(value)
    if cur.event is not None or cur.data_lines or cur.comments:
        events.append(cur)
    return events


def post_stream(url: str, body: dict, headers: dict) -> tuple[httpx.Response, str]:
    """POSTs and reads the whole streamed body; returns the response and its text."""
    with httpx.Client(timeout=CLIENT_TIMEOUT_S) as c:
        with c.stream("POST", url, json=body, headers=headers) as r:
            text = "".join(r.iter_text())
    return r, text
