"""Renders a bench template: `@NAME@` placeholders from NAME=VALUE arguments.

`@CHAT_RETURN@`, `@SSE_RETURN@`, `@SHORT_RETURN@` and `@LONG_RETURN@` become directives that answer
with the fixtures in bench/nginx/ (chat.json, stream.sse, short.sse, long.sse) byte for byte: `return 200 '...'` of the file escaped as an nginx quoted string (nginx's parser turns
`\\n` back into a newline). One configuration token must fit nginx's 4 KiB parse buffer, so a
longer fixture is cut into `set $NAME_i '...';` pieces that `return` joins. Fixtures may not hold
`$` (nginx would read a variable). load.sh checks the answers with curl before any load.

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


PIECE = 1500  # raw bytes per quoted token: escaping can grow it, and it must stay under 4 KiB


def nginx_return(name: str, text: str) -> str:
    """Directives answering 200 with `text`: one `return`, or `set` pieces and a `return`."""
    if "$" in text:
        sys.exit(f"render.py: fixture {name} holds '$', which nginx would read as a variable")
    pieces = [text[i : i + PIECE] for i in range(0, len(text), PIECE)]
    if len(pieces) == 1:
        return f"return 200 '{nginx_quoted(text)}';"
    sets = [f"set ${name}_{i} '{nginx_quoted(p)}';" for i, p in enumerate(pieces)]
    joined = "".join(f"${name}_{i}" for i in range(len(pieces)))
    return "\n            ".join(sets + [f'return 200 "{joined}";'])


def main() -> None:
    template, out, *pairs = sys.argv[1:]
    values = dict(p.split("=", 1) for p in pairs)
    for name, fixture in (("CHAT", "chat.json"), ("SSE", "stream.sse"), ("SHORT", "short.sse"), ("LONG", "long.sse")):
        with open(os.path.join(FIXTURES, fixture)) as f:
            values[name + "_RETURN"] = nginx_return(name.lower(), f.read())
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
