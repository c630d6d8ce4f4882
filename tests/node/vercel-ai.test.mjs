// The Vercel AI SDK's `streamText` on both protocols. The AI SDK validates every `data:` payload
// against the protocol's schema: a chunk it cannot parse becomes an error part (and no text), and
// an Anthropic event of an unknown type ends the text. The streamed text must be non-empty, equal
// `generateText`'s for the same prompt, and `fullStream` must carry no error part.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText } from 'ai';

import { MOCK_PREFIX, TEST_TIMEOUT_MS, TOKEN, collect, startGateway } from './gateway.mjs';

const MODEL = 'mock-small';

describe('Vercel AI SDK', { timeout: 3 * TEST_TIMEOUT_MS }, () => {
  let gw;
  before(async () => { gw = await startGateway(); });
  after(async () => { await gw?.stop(); });

  async function check(model, prompt) {
    const expected = (await generateText({ model, prompt, maxRetries: 0 })).text;
    assert.ok(expected.startsWith(`${MOCK_PREFIX} ${prompt}`), expected);

    const errors = [];
    const result = streamText({ model, prompt, maxRetries: 0, onError: ({ error }) => errors.push(error) });
    const [text, parts] = await Promise.all([
      collect(result.textStream).then((t) => t.join('')),
      collect(result.fullStream),
    ]);
    const errorParts = parts.filter((p) => p.type === 'error');
    assert.deepEqual(errorParts.map((p) => String(p.error?.message ?? p.error)), [], 'no error part in fullStream');
    assert.deepEqual(errors.map((e) => String(e?.message ?? e)), [], 'no error reported to onError');
    assert.notEqual(text, '', 'streamText yielded no text');
    assert.equal(text, expected);
    assert.equal(await result.text, expected);
  }

  test('streamText over chat completions (openai.chat)', { timeout: TEST_TIMEOUT_MS }, async () => {
    const openai = createOpenAI({ baseURL: `${gw.url}/v1`, apiKey: TOKEN });
    await check(openai.chat(MODEL), 'vercel over chat completions');
  });

  test('streamText over messages (createAnthropic)', { timeout: TEST_TIMEOUT_MS }, async () => {
    const anthropic = createAnthropic({ baseURL: `${gw.url}/v1`, apiKey: TOKEN });
    await check(anthropic(MODEL), 'vercel over messages');
  });
});
