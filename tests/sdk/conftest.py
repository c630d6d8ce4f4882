"""Fixtures for the SDK suite: real `switchyard` processes on port 0, driven over sockets.

One `mock-upstream` and a few gateways start once per session and stop with SIGTERM at the end;
a gateway that does not exit 0 after SIGTERM fails the session. Start-up is synchronised on the
`... listening on http://ADDR` line each server prints on stdout, never on sleeps.

The binary comes from `SWITCHYARD_BIN` (set by `tests/sdk_clients.rs`), else
`target/debug/switchyard` under the repository root.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

REPO = Path(__file__).resolve().parents[2]

#: The mock provider's deterministic reply starts with this, then the last user message's words.
MOCK_PREFIX = "This is a mock reply from Switchyard to:"

#: Provider keys handed to the gateways through the environment. Distinctive, so a leak into a
#: response or a log line is found by a plain substring search.
OPENAI_SECRET = "sk-proj-UPSTREAM-OPENAI-SECRET-5f1c9e7a2b"
ANTHROPIC_SECRET = "sk-ant-UPSTREAM-ANTHROPIC-SECRET-8d3e0b4c6a"

#: Client tokens of the configs below.
TOKEN = "sk-lr-test"
FAIL_TOKEN = "sk-lr-fail"
CUT_TOKEN = "sk-lr-cut"
DEV_TOKEN = "sk-lr-dev"
#: Client tokens the tests send that are not in any config.
BAD_TOKENS = ("sk-lr-bad", "sk-lr-not-a-token", "sk-lr-wrong")

#: Checked in every server's output at the end of the session (`_stop_all`).
LOG_FORBIDDEN = (OPENAI_SECRET, ANTHROPIC_SECRET, TOKEN, FAIL_TOKEN, CUT_TOKEN, *BAD_TOKENS)

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0
#: Per-request client timeout: far above anything the mock does, far below a hung test run.
CLIENT_TIMEOUT_S = 20.0

LISTEN_RE = {
    "gateway": re.compile(r"switchyard gateway listening on (http://\S+)"),
    "admin": re.compile(r"switchyard admin listening on (http://\S+)"),
    "mock": re.compile(r"switchyard mock provider listening on (http://\S+)"),
}


def binary() -> Path:
    path = Path(os.environ.get("SWITCHYARD_BIN") or REPO / "target" / "debug" / "switchyard")
    if not path.is_file():
        raise RuntimeError(f"switchyard binary not found at {path}: run `cargo build` or set SWITCHYARD_BIN")
    return path.resolve()


#: Every server started, so a failing test's report can show what they said.
STARTED: list["Server"] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for s in STARTED:
            state = "running" if s.proc.poll() is None else f"exited {s.proc.returncode}"
            rep.sections.append((f"{s.name} ({state}) stderr, last lines", s.stderr_text()[-3000:]))


class Server:
    """One `switchyard` child process: stdout read by a thread, stderr kept in a file."""

    def __init__(self, name: str, args: list[str], workdir: Path, env: dict[str, str] | None = None):
        self.name = name
        STARTED.append(self)
        self.stderr_path = workdir / f"{name}.stderr"
        self._stderr = open(self.stderr_path, "wb")
        full_env = dict(os.environ)
        full_env.update(env or {})
        # Its own working directory: the embedded conversation store (`switchyard-state`) is
        # relative to it, and two processes cannot open one store.
        self.cwd = workdir / f"{name}.cwd"
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [str(binary()), *args],
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=full_env,
            text=True,
        )
        self.stdout_lines: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, pattern: re.Pattern[str]) -> str:
        """Blocks until a stdout line matches; returns the first group. Fails on exit or timeout."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{self.name}: no line matching {pattern.pattern!r} in {START_TIMEOUT_S}s\n{self.describe()}")
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
                raise RuntimeError(f"{self.name}: exited ({self.proc.returncode}) before listening\n{self.describe()}")
            m = pattern.search(line)
            if m:
                return m.group(1)

    def stderr_text(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def describe(self) -> str:
        return f"stdout:\n{''.join(self.stdout_lines)}\nstderr:\n{self.stderr_text()}"

    def stop(self) -> int:
        """SIGTERM, then waits for the exit; returns the exit code (kills only on a hang)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._reader.join(timeout=5)
                self._stderr.close()
                raise RuntimeError(f"{self.name}: still running {STOP_TIMEOUT_S}s after SIGTERM\n{self.describe()}")
        self._reader.join(timeout=5)
        self._stderr.close()
        return self.proc.returncode


class Gateway:
    """A running `switchyard serve`: its base url (`http://127.0.0.1:PORT`) and admin url."""

    def __init__(self, server: Server):
        self.server = server
        self.url = server.wait_for(LISTEN_RE["gateway"]).rstrip("/")
        self.admin_url = server.wait_for(LISTEN_RE["admin"]).rstrip("/")

    def openai(self, token: str = TOKEN, prefix: str = "", **kw) -> openai.OpenAI:
        """An OpenAI client on `{url}{prefix}/v1`, e.g. prefix `/projects/other`."""
        kw.setdefault("timeout", CLIENT_TIMEOUT_S)
        return openai.OpenAI(base_url=f"{self.url}{prefix}/v1", api_key=token, max_retries=0, **kw)

    def anthropic(self, token: str = TOKEN, prefix: str = "", bearer: bool = False, **kw) -> anthropic.Anthropic:
        """An Anthropic client on `{url}{prefix}`; the token as `x-api-key`, or as a Bearer token."""
        auth = {"auth_token": token} if bearer else {"api_key": token}
        kw.setdefault("timeout", CLIENT_TIMEOUT_S)
        return anthropic.Anthropic(
            base_url=f"{self.url}{prefix}", max_retries=0, **auth, **kw
        )


def _stop_all(servers: list[Server]) -> None:
    problems = []
    for s in reversed(servers):
        try:
            rc = s.stop()
        except RuntimeError as e:
            problems.append(str(e))
            continue
        if rc != 0:
            problems.append(f"{s.name}: exit code {rc} after SIGTERM (want 0)\n{s.describe()}")
    # Now that every log line is out: no provider key, and no client token but the dev token
    # the embedded config announces on purpose, in anything a server wrote.
    for s in servers:
        out = s.stderr_text() + "".join(s.stdout_lines)
        for secret in LOG_FORBIDDEN:
            if secret in out:
                problems.append(f"{s.name} wrote the credential {secret!r}:\n{s.describe()}")
    assert not problems, "\n\n".join(problems)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("switchyard")


@pytest.fixture(scope="session")
def servers():
    """Every server started this session, stopped (and checked) at its end."""
    started: list[Server] = []
    yield started
    _stop_all(started)


@pytest.fixture(scope="session")
def mock_upstream(servers, workdir) -> str:
    """`switchyard mock-upstream` on port 0; its url `http://127.0.0.1:PORT`."""
    s = Server("mock-upstream", ["mock-upstream", "--listen", "127.0.0.1:0", "--workers", "2"], workdir)
    servers.append(s)
    return s.wait_for(LISTEN_RE["mock"]).rstrip("/")


def _gateway_env() -> dict[str, str]:
    return {
        "TEST_OPENAI_KEY": OPENAI_SECRET,
        "TEST_ANTHROPIC_KEY": ANTHROPIC_SECRET,
        "SWITCHYARD_LOG": "debug",
    }


def _start_gateway(servers, workdir: Path, name: str, config: str | None) -> Gateway:
    args = ["serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--workers", "2"]
    if config is not None:
        path = workdir / f"{name}.toml"
        path.write_text(config)
        args += ["--config", str(path)]
    s = Server(name, args, workdir, env=_gateway_env())
    servers.append(s)
    return Gateway(s)


def providers_config(mock_url: str, server_extra: str = "") -> str:
    """The brief's config: mock-upstream as an OpenAI and an Anthropic provider."""
    return f"""
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
workers = 2
{server_extra}

[[providers]]
id = "oai"
kind = "openai"
base_url = "{mock_url}/v1"
api_key_env = "TEST_OPENAI_KEY"

[[providers]]
id = "ant"
kind = "anthropic"
base_url = "{mock_url}"
api_key_env = "TEST_ANTHROPIC_KEY"

[[models]]
id = "gpt-test"
provider = "oai"
upstream_id = "gpt-upstream"
input_per_million = 1.0
output_per_million = 2.0

[[models]]
id = "claude-test"
provider = "ant"

[[projects]]
slug = "default"
tokens = ["{TOKEN}"]
models = ["gpt-test", "claude-test"]
policies = ["health", "cheapest"]

[[projects]]
slug = "other"
tokens = ["{TOKEN}"]
models = ["claude-test"]

[[projects]]
slug = "locked"
tokens = ["sk-lr-someone-else"]
models = ["gpt-test", "claude-test"]
"""


def faults_config(mock_url: str) -> str:
    """Models whose upstream ids trip the mock's hooks: `fail-500-x` always 500, `cut-x` streams
    stop mid-answer. Each kind in its own project (own token), so no failover can hide it."""
    return f"""
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
workers = 2

[[providers]]
id = "oai"
kind = "openai"
base_url = "{mock_url}/v1"
api_key_env = "TEST_OPENAI_KEY"

[[providers]]
id = "ant"
kind = "anthropic"
base_url = "{mock_url}"
api_key_env = "TEST_ANTHROPIC_KEY"

[[models]]
id = "gpt-fail"
provider = "oai"
upstream_id = "fail-500-x"

[[models]]
id = "claude-fail"
provider = "ant"
upstream_id = "fail-500-x"

[[models]]
id = "gpt-cut"
provider = "oai"
upstream_id = "cut-x"

[[models]]
id = "claude-cut"
provider = "ant"
upstream_id = "cut-x"

[[projects]]
slug = "fail"
tokens = ["{FAIL_TOKEN}"]
models = ["gpt-fail", "claude-fail"]
policies = ["cheapest"]

[[projects]]
slug = "cut"
tokens = ["{CUT_TOKEN}"]
models = ["gpt-cut", "claude-cut"]
policies = ["cheapest"]
"""


@pytest.fixture(scope="session")
def default_gw(servers, workdir) -> Gateway:
    """`switchyard serve` with the embedded default config (in-process mock provider)."""
    return _start_gateway(servers, workdir, "gateway-default", None)


@pytest.fixture(scope="session")
def providers_gw(servers, workdir, mock_upstream) -> Gateway:
    """A gateway whose OpenAI and Anthropic providers are the mock-upstream."""
    return _start_gateway(servers, workdir, "gateway-providers", providers_config(mock_upstream))


@pytest.fixture(scope="session")
def faults_gw(servers, workdir, mock_upstream) -> Gateway:
    """A gateway whose only models fail (500) or cut their streams upstream."""
    return _start_gateway(servers, workdir, "gateway-faults", faults_config(mock_upstream))


def expected_reply_start(prompt: str) -> str:
    """What the mock's reply starts with for a prompt of at most 8 words."""
    assert len(prompt.split()) <= 8
    return f"{MOCK_PREFIX} {prompt}"


UUID_V7_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def assert_trace_id(headers) -> str:
    """The response carries `x-routerly-trace-id`, a UUIDv7; returns it."""
    tid = headers.get("x-routerly-trace-id")
    assert tid is not None, f"no x-routerly-trace-id in {dict(headers)}"
    assert UUID_V7_RE.match(tid), f"x-routerly-trace-id {tid!r} is not a UUIDv7"
    # RFC 9562 §5.7: the first 48 bits are the Unix time in milliseconds.
    stamped = int(tid.replace("-", "")[:12], 16) / 1000
    assert abs(stamped - time.time()) < 300, f"x-routerly-trace-id {tid!r} carries time {stamped}, now is {time.time()}"
    return tid


class Recorder:
    """A recording pass-through upstream: notes each request (method, path, headers, body), then
    forwards it to the mock-upstream and relays the answer chunk by chunk as it arrives."""

    def __init__(self, target: str):
        import http.server

        rec = self
        self.target = target
        self.requests: list[tuple[str, str, list[tuple[str, str]], bytes]] = []
        self._lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self._read_body()
                with rec._lock:
                    rec.requests.append((self.command, self.path, list(self.headers.items()), body))
                hop = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}
                fwd = [(k, v) for k, v in self.headers.items() if k.lower() not in hop]
                with httpx.Client(timeout=CLIENT_TIMEOUT_S) as c:
                    with c.stream(self.command, rec.target + self.path, content=body, headers=fwd) as r:
                        self.send_response(r.status_code)
                        for k, v in r.headers.items():
                            if k.lower() not in hop:
                                self.send_header(k, v)
                        self.send_header("transfer-encoding", "chunked")
                        self.end_headers()
                        for chunk in r.iter_raw():
                            if chunk:
                                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                                self.wfile.flush()
                        self.wfile.write(b"0\r\n\r\n")
                        self.wfile.flush()

            do_GET = do_POST

            def _read_body(self) -> bytes:
                if self.headers.get("transfer-encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("content-length") or 0))

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def take(self) -> list[tuple[str, str, dict[str, str], bytes]]:
        """The requests seen since the last call; headers lower-cased (last value wins)."""
        with self._lock:
            reqs, self.requests = self.requests, []
        return [(m, p, {k.lower(): v for k, v in h}, b) for m, p, h, b in reqs]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def recorder(mock_upstream):
    r = Recorder(mock_upstream)
    yield r
    r.close()


@pytest.fixture(scope="session")
def recorded_gw(servers, workdir, recorder) -> Gateway:
    """The providers config with the recorder in front of the mock-upstream."""
    return _start_gateway(servers, workdir, "gateway-recorded", providers_config(recorder.url))


def translation_config(upstream_url: str) -> str:
    """Models whose provider speaks the other protocol than the client: every project has one
    model only, so a request reaches it through translation or not at all (no same-protocol
    candidate can hide a missing translation). Reached with `/projects/{slug}/v1/...`:
    `to-ant` (Anthropic protocol), `to-oai` (OpenAI, serves /v1/responses itself), `to-chat`
    (OpenAI with `responses = false`: Responses requests go to its chat completions), and
    `ant-err` / `oai-err` / `chat-err`, whose upstream ids trip the mock's mid-stream error hook."""
    return f"""
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
workers = 2

[[providers]]
id = "oai"
kind = "openai"
base_url = "{upstream_url}/v1"
api_key_env = "TEST_OPENAI_KEY"

[[providers]]
id = "oai-chat"
kind = "openai"
responses = false
base_url = "{upstream_url}/v1"
api_key_env = "TEST_OPENAI_KEY"

[[providers]]
id = "ant"
kind = "anthropic"
base_url = "{upstream_url}"
api_key_env = "TEST_ANTHROPIC_KEY"

[[models]]
id = "claude-x"
provider = "ant"
upstream_id = "claude-upstream-x"
max_output_tokens = 4096

[[models]]
id = "gpt-x"
provider = "oai"
upstream_id = "gpt-upstream-x"

[[models]]
id = "gpt-chat"
provider = "oai-chat"
upstream_id = "gpt-upstream-chat"

[[models]]
id = "claude-err"
provider = "ant"
upstream_id = "error-claude"
max_output_tokens = 4096

[[models]]
id = "gpt-err"
provider = "oai"
upstream_id = "error-gpt"

[[models]]
id = "chat-err"
provider = "oai-chat"
upstream_id = "error-chat"

[[projects]]
slug = "to-ant"
tokens = ["{TOKEN}"]
models = ["claude-x"]

[[projects]]
slug = "to-oai"
tokens = ["{TOKEN}"]
models = ["gpt-x"]

[[projects]]
slug = "to-chat"
tokens = ["{TOKEN}"]
models = ["gpt-chat"]

[[projects]]
slug = "ant-err"
tokens = ["{TOKEN}"]
models = ["claude-err"]

[[projects]]
slug = "oai-err"
tokens = ["{TOKEN}"]
models = ["gpt-err"]

[[projects]]
slug = "chat-err"
tokens = ["{TOKEN}"]
models = ["chat-err"]
"""


@pytest.fixture(scope="session")
def translation_gw(servers, workdir, mock_upstream) -> Gateway:
    """The translation config on the mock-upstream."""
    return _start_gateway(servers, workdir, "gateway-translation", translation_config(mock_upstream))


@pytest.fixture(scope="session")
def translation_recorded_gw(servers, workdir, recorder) -> Gateway:
    """The translation config with the recorder in front of the mock-upstream: what the
    provider was sent, after translation, is in `recorder.take()`."""
    return _start_gateway(servers, workdir, "gateway-translation-recorded", translation_config(recorder.url))
