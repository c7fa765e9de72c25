// tests/e2e/openai_client.mjs — drives `kvant serve` with the official openai npm package (v4):
// non-streaming and streaming chat completions, a completion, and the models list.
// Usage: node openai_client.mjs http://127.0.0.1:PORT/v1   (prints "openai client: ok" on success)
import OpenAI from 'openai';

const baseURL = process.argv[2];
const client = new OpenAI({ baseURL, apiKey: 'not-needed', maxRetries: 0, timeout: 60000 });

function check(condition, message) {
  if (!condition) {
    console.error('openai client: FAILED: ' + message);
    process.exit(1);
  }
}

const messages = [{ role: 'user', content: 'Tell me a story.' }];
const whole = await client.chat.completions.create({ model: 'kvant', messages, temperature: 0, max_tokens: 16 });
check(whole.object === 'chat.completion', 'object is ' + whole.object);
check(typeof whole.choices[0].message.content === 'string', 'no message content');
check(whole.usage.completion_tokens === 16, 'completion_tokens ' + whole.usage.completion_tokens);

const stream = await client.chat.completions.create({ model: 'kvant', messages, temperature: 0, max_tokens: 16, stream: true });
let streamed = '';
let finish = null;
for await (const chunk of stream) {
  if (chunk.choices.length > 0) {
    streamed += chunk.choices[0].delta?.content ?? '';
    finish = chunk.choices[0].finish_reason ?? finish;
  }
}
check(streamed === whole.choices[0].message.content, `streamed '${streamed}' != '${whole.choices[0].message.content}'`);
check(finish === 'length', 'finish_reason ' + finish);

const completion = await client.completions.create({ model: 'kvant', prompt: 'Once upon a time', temperature: 0, max_tokens: 8 });
check(completion.choices[0].text.length > 0, 'empty completion');

const models = await client.models.list();
check(models.data.length === 1, 'models ' + JSON.stringify(models.data));

let rejected = false;
try {
  await client.completions.create({ model: 'kvant', prompt: 'x', max_tokens: -1 });
} catch (e) {
  rejected = e.status === 400 && typeof e.message === 'string';
}
check(rejected, 'max_tokens -1 was not a 400 APIError');
console.log('openai client: ok');
