// Starts the real `switchyard serve` (path from SWITCHYARD_BIN, set by tests/node_clients.rs) on
// the embedded default config: the built-in mock provider serving both protocols, models
// `mock-small` and `mock-large`, token `sk-lr-dev`. Start-up is synchronised on the
// `switchyard gateway listening on http://ADDR` line, never on sleeps; `stop()` sends SIGTERM,
// waits for the exit and fails on anything but exit code 0.

import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const TOKEN = 'sk-lr-dev';
/** The mock's deterministic reply starts with this, then the last user message's words. */
export const MOCK_PREFIX = 'This is a mock reply from Switchyard to:';

const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 20_000;
const LISTEN_RE = /switchyard gateway listening on (http:\/\/\S+)/;

/** A per-test bound far above anything the mock does, far below a hung run. */
export const TEST_TIMEOUT_MS = 30_000;

export async function startGateway() {
  const bin = process.env.SWITCHYARD_BIN;
  if (!bin) throw new Error('SWITCHYARD_BIN is not set: run these tests through `cargo test --test node_clients`');
  // Its own working directory: the embedded conversation store is relative to it, and two
  // gateways cannot open one store.
  const cwd = mkdtempSync(join(tmpdir(), 'switchyard-node-'));
  const proc = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd,
  });
  let stderr = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const spawned = new Promise((resolve, reject) => {
    proc.once('spawn', resolve);
    proc.once('error', (e) => reject(new Error(`cannot start ${bin}: ${e.message}`)));
  });
  await spawned;

  const lines = createInterface({ input: proc.stdout });
  const stdout = [];
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`no listening line in ${START_TIMEOUT_MS} ms\nstdout:\n${stdout.join('\n')}\nstderr:\n${stderr}`));
    }, START_TIMEOUT_MS);
    lines.on('line', (line) => {
      stdout.push(line);
      const m = LISTEN_RE.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1].replace(/\/$/, ''));
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited (${code ?? signal}) before listening\nstdout:\n${stdout.join('\n')}\nstderr:\n${stderr}`));
    });
  });

  return {
    url,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      let timer;
      const res = await Promise.race([exited, new Promise((resolve) => { timer = setTimeout(resolve, STOP_TIMEOUT_MS, null); })]);
      clearTimeout(timer);
      if (res === null) {
        proc.kill('SIGKILL');
        await exited;
        throw new Error(`gateway still running ${STOP_TIMEOUT_MS} ms after SIGTERM\nstderr:\n${stderr}`);
      }
      if (res.code !== 0) throw new Error(`gateway exit ${res.code ?? res.signal} after SIGTERM (want 0)\nstderr:\n${stderr}`);
    },
  };
}

/** Every item of an async iterable, in order. */
export async function collect(iterable) {
  const out = [];
  for await (const x of iterable) out.push(x);
  return out;
}
