"""Renders a bench template: `@NAME@` placeholders from NAME=VALUE arguments.

`@CHAT_BODY@` and `@SSE_BODY@` are the fixtures in bench/nginx/ escaped as one nginx quoted
string (nginx's parser turns `\\n` back into a newline), so `return 200 '...'` answers the
fixture byte for byte. load.sh checks that with curl before any load.

usage: render.py TEMPLATE OUT NAME=VALUE...
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "nginx")


def nginx_quoted(text: str) -> str:
    """The body of a single-quoted nginx string whose value is `text`."""
    return text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")


def main() -> None:
    template, out, *pairs = sys.argv[1:]
    values = dict(p.split("=", 1) for p in pairs)
    for name, fixture in (("CHAT_BODY", "chat.json"), ("SSE_BODY", "stream.sse")):
        with open(os.path.join(FIXTURES, fixture)) as f:
            values[name] = nginx_quoted(f.read())
    with open(template) as f:
        text = f.read()

    def sub(m: "re.Match[str]") -> str:
        if m.group(1) not in values:
            sys.exit(f"render.py: {template}: no value for @{m.group(1)}@")
        return values[m.group(1)]

    with open(out, "w") as f:
        f.write(re.sub(r"@([A-Z_]+)@", sub, text))


if __name__ == "__main__":
    main()
