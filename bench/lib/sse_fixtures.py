"""Writes the short and long stream fixtures of the load bench: bench/nginx/short.sse and long.sse.

Both are OpenAI `chat.completion.chunk` streams in the shape of stream.sse (compact: no
system_fingerprint, no logprobs), a role chunk, content chunks, a finish chunk (finish_reason "stop") and
`data: [DONE]`, each event `data: {...}` and a blank line:

  short.sse  3 content chunks, 5 events and [DONE], under 1 KB: a one-line answer
  long.sse   LONG_CONTENT content chunks of 150-200 bytes each: a long answer, ~25 KB

load.sh serves them from the static nginx upstream (render.py inlines them) and checks that the
last content chunk (" sweet.", " tok-last.") and the end of the stream come back through every
proxy. Run again after changing it: `python3 bench/lib/sse_fixtures.py`; the files are committed.

usage: sse_fixtures.py [OUT_DIR]   (default: bench/nginx)
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
LONG_CONTENT = 128  # content chunks of the long stream

WORDS = ("The gateway relays each event as it arrives from the upstream, one chunk after another, "
         "so a long answer streams to the client at the pace the model writes it. ").split()


def chunk(stream_id: str, delta: dict, finish) -> str:
    obj = {"id": stream_id, "object": "chat.completion.chunk", "created": 1732550400, "model": "bench-model",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return "data: " + json.dumps(obj, separators=(",", ":")) + "\n\n"


def stream(stream_id: str, contents: list) -> str:
    events = [chunk(stream_id, {"role": "assistant", "content": ""}, None)]
    events += [chunk(stream_id, {"content": c}, None) for c in contents]
    events.append(chunk(stream_id, {}, "stop"))
    return "".join(events) + "data: [DONE]\n\n"


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "nginx")
    short = stream("chatcmpl-bench-short", ["Short", " and", " sweet."])
    # each content chunk: a word of WORDS and its index, so every event differs; the last is
    # " tok-last.", which the check looks for
    contents = []
    for i in range(LONG_CONTENT - 1):
        contents.append(f" {WORDS[i % len(WORDS)]} (tok {i + 1:03d})")
    contents.append(" tok-last.")
    long = stream("chatcmpl-bench-long", contents)
    assert len(short.encode()) < 1000, len(short.encode())
    for e in long.split("\n\n")[1:-3]:
        assert 150 <= len(e) + 2 <= 200, (len(e) + 2, e)
    assert "$" not in short + long  # render.py: nginx would read a variable
    for name, text in (("short.sse", short), ("long.sse", long)):
        with open(os.path.join(out, name), "w") as f:
            f.write(text)
        events = text.count("data: ")
        print(f"{name}: {events} events ({events - 1} chunks and [DONE]), {len(text.encode())} bytes")


if __name__ == "__main__":
    main()
