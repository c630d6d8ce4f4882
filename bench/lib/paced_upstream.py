"""A paced OpenAI-style upstream for the stream-gap probe.

Answers any POST on keep-alive HTTP/1.1: a request whose body has `"stream":true` gets the events of
bench/nginx/stream.sse as a chunked text/event-stream, the first at once and each next one GAP_MS
later, as a model emitting tokens would; any other request gets bench/nginx/chat.json. The static
nginx upstream sends the whole stream in one write, so only a paced upstream shows whether a proxy
relays each event when it arrives or holds events back.

usage: paced_upstream.py PORT [GAP_MS]   (prints "ready" once listening)
"""

import asyncio
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "nginx")

with open(os.path.join(FIXTURES, "chat.json"), "rb") as f:
    CHAT = f.read()
with open(os.path.join(FIXTURES, "stream.sse"), "rb") as f:
    EVENTS = [e + b"\n\n" for e in f.read().split(b"\n\n") if e.strip()]

MAX_HEAD = 64 * 1024


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gap: float) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > MAX_HEAD:
                return
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length) if length else b""
            compact = body.replace(b" ", b"")
            if b'"stream":true' in compact:
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
                )
                for i, event in enumerate(EVENTS):
                    if i:
                        await asyncio.sleep(gap)
                    writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                    await writer.drain()
                writer.write(b"0\r\n\r\n")
            else:
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(CHAT), CHAT)
                )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main() -> None:
    port = int(sys.argv[1])
    gap = float(sys.argv[2] if len(sys.argv) > 2 else 10) / 1000
    server = await asyncio.start_server(
        lambda r, w: serve(r, w, gap), "127.0.0.1", port, backlog=1024
    )
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
