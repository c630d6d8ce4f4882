// The official `openai` Node SDK against the gateway: the everyday streaming loop with no trace
// skipping, the chat stream helper, runTools (a real tool round trip) and the Responses stream helper. Each streamed text
// must equal the non-streamed answer to the same request (the mock's reply is deterministic).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';

import { MOCK_PREFIX, TEST_TIMEOUT_MS, TOKEN, startGateway } from './gateway.mjs';

const MODEL = 'mock-small';
const user = (text) => [{ role: 'user', content: text }];

describe('openai SDK', { timeout: 4 * TEST_TIMEOUT_MS }, () => {
  let gw;
  let client;
  before(async () => {
    gw = await startGateway();
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: TOKEN, maxRetries: 0, timeout: TEST_TIMEOUT_MS });
  });
  after(async () => { await gw?.stop(); });

  async function whole(prompt) {
    const c = await client.chat.completions.create({ model: MODEL, messages: user(prompt) });
    const text = c.choices[0].message.content;
    assert.ok(text.startsWith(`${MOCK_PREFIX} ${prompt}`), text);
    return text;
  }

  test('chat stream: the everyday for-await loop', { timeout: TEST_TIMEOUT_MS }, async () => {
    const prompt = 'the everyday node loop';
    const stream = await client.chat.completions.create({ model: MODEL, messages: user(prompt), stream: true });
    let text = '';
    // No optional chaining on choices[0] or delta: every chunk, the trace's too, must have them.
    for await (const chunk of stream) text += chunk.choices[0].delta.content ?? '';
    assert.equal(text, await whole(prompt));
  });

  test('chat.completions.stream helper: content events and finalChatCompletion', { timeout: TEST_TIMEOUT_MS }, async () => {
    const prompt = 'the node chat helper';
    const deltas = [];
    const stream = client.chat.completions.stream({ model: MODEL, messages: user(prompt) });
    stream.on('content', (delta) => deltas.push(delta));
    const final = await stream.finalChatCompletion();
    const expected = await whole(prompt);
    assert.equal(deltas.join(''), expected);
    assert.equal(final.choices[0].message.content, expected);
    assert.equal(final.choices[0].message.role, 'assistant');
    assert.equal(final.choices[0].finish_reason, 'stop');
  });

  test('chat.completions.runTools streaming: finalContent is the reply', { timeout: TEST_TIMEOUT_MS }, async () => {
    const prompt = 'the node tool runner';
    const calls = [];
    const runner = client.chat.completions.runTools({
      model: MODEL,
      messages: user(prompt),
      stream: true,
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            description: 'The weather in a city.',
            parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
            parse: JSON.parse,
            function: ({ city }) => { calls.push(city); return { city, sky: 'clear' }; },
          },
        },
      ],
    });
    const deltas = [];
    runner.on('content', (delta) => deltas.push(delta));
    const content = await runner.finalContent();
    // The mock calls the first tool with the prompt's words, then answers from its result.
    assert.deepEqual(calls, [prompt], 'the tool ran once, with the arguments the mock streamed');
    assert.ok(content.startsWith(`Tool said: ${JSON.stringify({ city: prompt, sky: 'clear' })}`), content);
    assert.equal(deltas.join(''), content);
  });

  test('responses.stream helper: deltas and finalResponse', { timeout: TEST_TIMEOUT_MS }, async () => {
    const prompt = 'the node responses helper';
    const expected = (await client.responses.create({ model: MODEL, input: prompt })).output_text;
    assert.ok(expected.startsWith(`${MOCK_PREFIX} ${prompt}`), expected);
    const deltas = [];
    const types = [];
    const stream = client.responses.stream({ model: MODEL, input: prompt });
    stream.on('event', (e) => types.push(e.type));
    stream.on('response.output_text.delta', (e) => deltas.push(e.delta));
    const final = await stream.finalResponse();
    assert.equal(types[0], 'response.created');
    assert.equal(types.at(-1), 'response.completed');
    assert.equal(deltas.join(''), expected);
    assert.equal(final.status, 'completed');
    assert.equal(final.output_text, expected);
  });
});
