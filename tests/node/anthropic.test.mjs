// The official `@anthropic-ai/sdk` Node SDK against the gateway: the plain for-await loop over
// `stream: true` events and the `messages.stream` helper; both texts equal the non-streamed answer.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';

import { MOCK_PREFIX, TEST_TIMEOUT_MS, TOKEN, startGateway } from './gateway.mjs';

const MODEL = 'mock-small';
const MAX_TOKENS = 100;
const user = (text) => [{ role: 'user', content: text }];

describe('@anthropic-ai/sdk', { timeout: 3 * TEST_TIMEOUT_MS }, () => {
  let gw;
  let client;
  before(async () => {
    gw = await startGateway();
    client = new Anthropic({ baseURL: gw.url, apiKey: TOKEN, maxRetries: 0, timeout: TEST_TIMEOUT_MS });
  });
  after(async () => { await gw?.stop(); });

  async function whole(prompt) {
    const m = await client.messages.create({ model: MODEL, max_tokens: MAX_TOKENS, messages: user(prompt) });
    const text = m.content[0].text;
    assert.ok(text.startsWith(`${MOCK_PREFIX} ${prompt}`), text);
    return text;
  }

  test('messages stream: the plain for-await loop', { timeout: TEST_TIMEOUT_MS }, async () => {
    const prompt = 'the plain node event loop';
    const stream = await client.messages.create({ model: MODEL, max_tokens: MAX_TOKENS, messages: user(prompt), stream: true });
    let text = '';
    const types = [];
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
    }
    assert.equal(types[0], 'message_start');
    assert.equal(types.at(-1), 'message_stop');
    assert.equal(text, await whole(prompt));
  });

  test('messages.stream helper: text events and finalMessage', { timeout: TEST_TIMEOUT_MS }, async () => {
    const prompt = 'the node message helper';
    const deltas = [];
    const stream = client.messages.stream({ model: MODEL, max_tokens: MAX_TOKENS, messages: user(prompt) });
    stream.on('text', (delta) => deltas.push(delta));
    const final = await stream.finalMessage();
    const expected = await whole(prompt);
    assert.equal(deltas.join(''), expected);
    assert.equal(final.content[0].text, expected);
    assert.equal(final.stop_reason, 'end_turn');
  });
});
