import { test } from 'node:test';
import assert from 'node:assert/strict';

import { HttpResponse, buildRequest, partnerMessage, retryAfterMs, send, statusError } from '../src/http.js';
import { FakeHost, answer, noAnswer } from '../src/testing.js';

const NOW = Date.UTC(2015, 9, 21, 7, 27, 50); // ten seconds before the date below

test('Retry-After: delta-seconds or an HTTP date, else nothing', () => {
  const cases = [
    ['7', 7000],
    [' 120 ', 120_000],
    ['0', 0],
    ['Wed, 21 Oct 2015 07:28:00 GMT', 10_000],
    ['Wed, 21 Oct 2015 07:27:00 GMT', 0], // in the past: now
    ['99999999999999999999999', 4_294_967_295],
    ['5000000', 4_294_967_295],
    ['Sun, 31 Feb 2015 07:28:00 GMT', undefined],
    ['Wednesday, 21-Oct-15 07:28:00 GMT', undefined],
    ['soon', undefined],
    ['-1', undefined],
    ['1.5', undefined],
    ['', undefined],
    [undefined, undefined],
  ];
  for (const [value, expected] of cases) {
    assert.equal(retryAfterMs(value, NOW), expected, String(value));
  }
});

test('a non-2xx status maps to the error the host retries by', () => {
  /** @type {Array<[number, Record<string, string>, object]>} */
  const cases = [
    [429, { 'Retry-After': '7' }, { tag: 'rate-limited', val: 7000 }],
    [429, { 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' }, { tag: 'rate-limited', val: 10_000 }],
    [429, {}, { tag: 'rate-limited', val: undefined }],
    [429, { 'retry-after': 'soon' }, { tag: 'rate-limited', val: undefined }],
    [401, {}, { tag: 'unauthorized', val: 'HTTP 401: boom' }],
    [403, {}, { tag: 'unauthorized', val: 'HTTP 403: boom' }],
    [404, {}, { tag: 'not-found', val: 'HTTP 404: boom' }],
    [408, {}, { tag: 'transient', val: 'HTTP 408: boom' }],
    [500, {}, { tag: 'transient', val: 'HTTP 500: boom' }],
    [502, {}, { tag: 'transient', val: 'HTTP 502: boom' }],
    [503, {}, { tag: 'transient', val: 'HTTP 503: boom' }],
    [599, {}, { tag: 'transient', val: 'HTTP 599: boom' }],
    [400, {}, { tag: 'invalid-request', val: 'HTTP 400: boom' }],
    [405, {}, { tag: 'invalid-request', val: 'HTTP 405: boom' }],
    [409, {}, { tag: 'invalid-request', val: 'HTTP 409: boom' }],
    [422, {}, { tag: 'invalid-request', val: 'HTTP 422: boom' }],
    [302, {}, { tag: 'invalid-request', val: 'HTTP 302: boom' }],
  ];
  for (const [status, headers, expected] of cases) {
    const response = new HttpResponse(answer(status, { headers }));
    assert.deepEqual(statusError(response, 'boom', NOW).payload, expected, `HTTP ${status}`);
  }
});

test('long partner messages are cut', () => {
  const error = statusError(new HttpResponse(answer(400)), 'x'.repeat(1000)).payload;
  assert.equal(error.tag, 'invalid-request');
  assert.ok('val' in error && typeof error.val === 'string' && [...error.val].length < 320);
});

test('requests: query encoding, headers set once, bodies', () => {
  const get = buildRequest('get', 'https://h.example/v5/x', {
    query: { page_size: 250, bookmark: "a b&c=d/é!'", absent: undefined },
    headers: [['Accept', 'text/plain'], ['accept', 'application/json']],
    bearer: 'tok',
  });
  assert.equal(get.method, 'GET');
  assert.equal(get.url, 'https://h.example/v5/x?page_size=250&bookmark=a%20b%26c%3Dd%2F%C3%A9%21%27');
  assert.deepEqual(get.headers, [['accept', 'application/json'], ['authorization', 'Bearer tok']]);
  assert.equal(get.body.length, 0);

  assert.equal(buildRequest('GET', 'https://h.example/x?a=1', { query: [['b', '2']] }).url, 'https://h.example/x?a=1&b=2');

  const json = buildRequest('patch', 'https://h.example/x', { json: { operation_type: 'ADD' } });
  assert.deepEqual(json.headers, [['content-type', 'application/json']]);
  assert.equal(new TextDecoder().decode(json.body), '{"operation_type":"ADD"}');

  const form = buildRequest('POST', 'https://h.example/token', { form: [['grant_type', 'authorization_code'], ['redirect_uri', 'https://a.b/c?d=e f']] });
  assert.deepEqual(form.headers, [['content-type', 'application/x-www-form-urlencoded']]);
  assert.equal(new TextDecoder().decode(form.body), 'grant_type=authorization_code&redirect_uri=https%3A%2F%2Fa.b%2Fc%3Fd%3De+f');

  assert.throws(() => buildRequest('POST', 'https://h.example', { json: {}, body: 'x' }), /one of json, form and body; got json and body/);
});

test('responses: headers ignore case, text, json, blank', () => {
  const response = new HttpResponse(answer(201, { headers: { 'X-Partner-Rid': 'abc' }, body: '{"id":"7"}' }));
  assert.equal(response.ok, true);
  assert.equal(response.header('x-partner-rid'), 'abc');
  assert.equal(response.header('retry-after'), undefined);
  assert.deepEqual(response.json(), { id: '7' });
  assert.equal(response.isBlank(), false);
  assert.equal(new HttpResponse(answer(204, { body: ' \n' })).isBlank(), true);
  assert.equal(new HttpResponse(answer(302)).ok, false);
  assert.throws(() => new HttpResponse(answer(200, { body: '<html>' })).json(), SyntaxError);
});

test('send: an answer of any status, or the failure the host retries by', () => {
  const host = new FakeHost([answer(503), noAnswer({ tag: 'timeout' }), noAnswer({ tag: 'denied', val: 'host not allowed: evil.example' })]);
  const request = buildRequest('GET', 'https://h.example/x');
  assert.equal(send(host, request).status, 503);
  assert.throws(() => send(host, request), (e) => /** @type {any} */ (e).payload.tag === 'transient');
  assert.throws(() => send(host, request), (e) => /** @type {any} */ (e).payload.tag === 'invalid-request' && /evil\.example/.test(/** @type {any} */ (e).payload.val));
  assert.equal(host.requests.length, 3);
  const broken = { send() { throw new RangeError('bug'); } };
  assert.throws(() => send(broken, request), RangeError);
});

test("the partner's message: a JSON message or error field, else the text", () => {
  const cases = [
    ['{"message":" no such audience "}', 'no such audience'],
    ['{"error":"bad token"}', 'bad token'],
    ['{"code":400}', '{"code":400}'],
    ['plain words', 'plain words'],
    ['x'.repeat(300), `${'x'.repeat(200)}…`],
  ];
  for (const [body, expected] of cases) {
    assert.equal(partnerMessage(new HttpResponse(answer(400, { body }))), expected);
  }
});
