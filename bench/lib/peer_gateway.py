"""Runs TensorZero's gateway as a standalone HTTP server, the peer gateway of the load bench.

The `tensorzero` wheel on PyPI carries the whole Rust gateway (`tensorzero.abi3.so`); besides the
embedded client (`TensorZeroGateway.build_embedded`, in-process calls, no HTTP) it exposes
`_start_http_gateway`, which starts the gateway's real axum HTTP server on a free loopback port
(what its `patch_openai_client` uses). The OpenAI-compatible route is `POST {base}/chat/completions`
with `model = "tensorzero::model_name::NAME"`. Its tokio runtime sizes itself from the CPU affinity,
so under `taskset -c 0` it runs one worker thread.

usage: peer_gateway.py CONFIG.toml   (prints "base_url URL" and "version V", then serves until killed)
"""

import signal
import sys
import time


def main() -> None:
    import tensorzero
    from tensorzero.tensorzero import _start_http_gateway

    gateway = _start_http_gateway(
        config_file=sys.argv[1],
        clickhouse_url=None,
        postgres_url=None,
        valkey_url=None,
        async_setup=False,
    )
    print(f"base_url {gateway.base_url}", flush=True)
    print(f"version {tensorzero.__version__}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
