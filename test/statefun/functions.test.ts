import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';

import { fromBinary } from '@bufbuild/protobuf';
import fc from 'fast-check';

import { KafkaProducerRecordSchema } from '../../src/gen/statefun/kafka-egress_pb.ts';
import {
  FromFunction_ExpirationSpec_ExpireMode as ExpireMode,
  FromFunction_PersistedValueMutation_MutationType as MutationType,
  FromFunctionSchema,
  type FromFunction_InvocationResponse,
  type TypedValue,
} from '../../src/gen/statefun/request-reply_pb.ts';
import { Address } from '../../src/statefun/address.ts';
import { kafkaEgressMessage } from '../../src/statefun/egress.ts';
import { messageBuilder } from '../../src/statefun/message.ts';
import { intType, stringType } from '../../src/statefun/primitive-types.ts';
import {
  FunctionFailedError,
  InvalidRequestError,
  UnknownFunctionError,
} from '../../src/statefun/request-errors.ts';
import { StatefulFunctions } from '../../src/statefun/stateful-functions.ts';
import { valueSpec } from '../../src/statefun/value-spec.ts';
import { toFunction, typed } from './requests.ts';

const seen = valueSpec({ name: 'seen', type: intType, expireAfterWrite: 60_000 });
const lastName = valueSpec({ name: 'last_name', type: stringType });

/** A ToFunction for example/greeter:`id` with `state` (name → value, undefined = no value) and string messages. */
function request(
  state: Record<string, TypedValue | undefined> | undefined,
  names: readonly string[],
  target = { namespace: 'example', type: 'greeter', id: 'alice' },
): Uint8Array {
  return toFunction(
    `${target.namespace}/${target.type}/${target.id}`,
    Object.entries(state ?? {}),
    names.map((name, i) => ({
      caller: i === 0 ? undefined : `example/caller/c${i}`,
      argument: typed(stringType, name),
    })),
  );
}

function greeter(): StatefulFunctions {
  return new StatefulFunctions().withSpec({
    typeName: 'example/greeter',
    specs: [seen, lastName],
    fn(context, message) {
      const count = (context.storage.get(seen) ?? 0) + 1;
      context.storage.set(seen, count);
      context.storage.set(lastName, message.asString());
      const reply = messageBuilder({
        target: Address.of('example/printer', context.self.id),
        value: `#${count}`,
      });
      context.send(reply);
      context.sendAfter(1_000, reply, `reminder-${count}`);
      if (count > 42) context.cancelDelayedMessage('reminder-42');
      context.sendEgress(
        kafkaEgressMessage({
          typeName: 'example/out',
          topic: 'greetings',
          key: context.self.id,
          value: message.asString(),
        }),
      );
    },
  });
}

function invocationResult(bytes: Uint8Array): FromFunction_InvocationResponse {
  const reply = fromBinary(FromFunctionSchema, bytes);
  assert.equal(reply.response.case, 'invocationResult');
  return reply.response.value;
}

describe('invoke', () => {
  test('a request without declared state gets every missing value, with types and expiration, and runs nothing', async () => {
    let ran = false;
    const functions = greeter().withSpec({
      typeName: 'example/other',
      fn: () => {
        ran = true;
      },
    });
    const reply = fromBinary(
      FromFunctionSchema,
      await functions.invoke(request({ seen: typed(intType, 1) }, ['Bob'])),
    );
    assert.equal(reply.response.case, 'incompleteInvocationContext');
    const missing = reply.response.value.missingValues;
    assert.deepEqual(
      missing.map((m) => [m.stateName, m.typeTypename, m.expirationSpec]),
      [['last_name', 'io.statefun.types/string', undefined]],
    );
    const none = fromBinary(FromFunctionSchema, await functions.invoke(request(undefined, ['Bob'])));
    assert.equal(none.response.case, 'incompleteInvocationContext');
    const seenSpec = none.response.value.missingValues.find((m) => m.stateName === 'seen');
    assert.ok(seenSpec?.expirationSpec !== undefined);
    assert.equal(seenSpec.expirationSpec.mode, ExpireMode.AFTER_WRITE);
    assert.equal(seenSpec.expirationSpec.expireAfterMillis, 60_000n);
    assert.equal(ran, false);
  });

  test('a missing value is asked for even when another carries the wrong type; of a repeated value the last counts', async () => {
    const functions = greeter();
    // The runtime registers the missing value first; the wrong type is only an error once all are there.
    const reply = fromBinary(
      FromFunctionSchema,
      await functions.invoke(request({ seen: typed(stringType, 'not an int') }, ['Bob'])),
    );
    assert.equal(reply.response.case, 'incompleteInvocationContext');
    assert.deepEqual(
      reply.response.value.missingValues.map((m) => m.stateName),
      ['last_name'],
    );
    const repeated = toFunction(
      'example/greeter/alice',
      [
        ['seen', typed(intType, 1)],
        ['last_name', undefined],
        ['seen', typed(intType, 41)],
      ],
      [{ argument: typed(stringType, 'Bob') }],
    );
    const result = invocationResult(await functions.invoke(repeated));
    const count = result.stateMutations.find((m) => m.stateName === 'seen')?.stateValue;
    assert.ok(count !== undefined);
    assert.equal(intType.deserialize(count.value), 42);
  });

  test('a batch runs in order on one storage and reports only the final state, and every effect in order', async () => {
    const result = invocationResult(
      await greeter().invoke(request({ seen: typed(intType, 41), last_name: undefined }, ['Ann', 'Bob'])),
    );
    assert.deepEqual(
      result.stateMutations.map((m) => [
        m.mutationType,
        m.stateName,
        m.stateValue?.typename,
        Buffer.from(m.stateValue?.value ?? []).toString('hex'),
      ]),
      [
        [MutationType.MODIFY, 'seen', 'io.statefun.types/int', '0d2b000000'],
        [
          MutationType.MODIFY,
          'last_name',
          'io.statefun.types/string',
          Buffer.from(stringType.serialize('Bob')).toString('hex'),
        ],
      ],
    );
    assert.deepEqual(
      result.outgoingMessages.map((m) => [
        m.target?.namespace,
        m.target?.type,
        m.target?.id,
        stringType.deserialize(m.argument?.value ?? new Uint8Array()),
      ]),
      [
        ['example', 'printer', 'alice', '#42'],
        ['example', 'printer', 'alice', '#43'],
      ],
    );
    assert.deepEqual(
      result.delayedInvocations.map((d) => [d.isCancellationRequest, d.cancellationToken, d.delayInMs]),
      [
        [false, 'reminder-42', 1_000n],
        [false, 'reminder-43', 1_000n],
        [true, 'reminder-42', 0n],
      ],
    );
    assert.deepEqual(
      result.outgoingEgresses.map((e) => {
        const record = fromBinary(KafkaProducerRecordSchema, e.argument?.value ?? new Uint8Array());
        return [
          e.egressNamespace,
          e.egressType,
          record.topic,
          record.key,
          Buffer.from(record.valueBytes).toString(),
        ];
      }),
      [
        ['example', 'out', 'greetings', 'alice', 'Ann'],
        ['example', 'out', 'greetings', 'alice', 'Bob'],
      ],
    );
  });

  test('a removed value is reported as DELETE, an untouched one not at all, and a present zero is not missing', async () => {
    const counter = valueSpec({ name: 'counter', type: intType });
    const flag = valueSpec({ name: 'flag', type: stringType });
    const values: (number | undefined)[] = [];
    const functions = new StatefulFunctions().withSpec({
      typeName: 'example/zero',
      specs: [counter, flag],
      fn(context) {
        values.push(context.storage.get(counter));
        context.storage.remove(flag);
      },
    });
    const bytes = request({ counter: typed(intType, 0), flag: typed(stringType, 'x') }, ['go'], {
      namespace: 'example',
      type: 'zero',
      id: '1',
    });
    const result = invocationResult(await functions.invoke(bytes));
    assert.deepEqual(values, [0], 'zero is a value, not a missing one');
    assert.deepEqual(
      result.stateMutations.map((m) => [m.mutationType, m.stateName, m.stateValue]),
      [[MutationType.DELETE, 'flag', undefined]],
    );
  });

  test('bad requests, unknown functions and failing functions each get their own error', async () => {
    const functions = greeter();
    await assert.rejects(functions.invoke(Buffer.from([0xff, 0xff, 0xff])), InvalidRequestError);
    await assert.rejects(functions.invoke(new Uint8Array()), InvalidRequestError);
    await assert.rejects(
      functions.invoke(request({}, ['x'], { namespace: 'example', type: 'nobody', id: '1' })),
      UnknownFunctionError,
    );
    await assert.rejects(
      functions.invoke(request({ seen: typed(stringType, 'not an int'), last_name: undefined }, ['x'])),
      (e) => e instanceof InvalidRequestError && /holds a io.statefun.types\/string value/.test(e.message),
    );
    const failing = new StatefulFunctions().withSpec({
      typeName: 'example/failing',
      fn() {
        throw new Error('boom');
      },
    });
    await assert.rejects(
      failing.invoke(request({}, ['x'], { namespace: 'example', type: 'failing', id: '1' })),
      (e) => e instanceof FunctionFailedError && e.retryable && (e.cause as Error).message === 'boom',
    );
  });

  test('a batch with a malformed invocation further on is refused before any function runs', async () => {
    let ran = 0;
    const functions = new StatefulFunctions().withSpec({
      typeName: 'example/counted',
      fn() {
        ran += 1;
      },
    });
    const good = { argument: typed(stringType, 'x') };
    await assert.rejects(
      functions.invoke(toFunction('example/counted/1', [], [good, { argument: undefined }])),
      (e) => e instanceof InvalidRequestError && /an invocation has no argument/.test(e.message),
    );
    await assert.rejects(
      functions.invoke(
        toFunction('example/counted/1', [], [good, { caller: 'no-type', argument: good.argument }]),
      ),
      (e) => e instanceof InvalidRequestError && /the caller address is not valid/.test(e.message),
    );
    assert.equal(ran, 0);
    await functions.invoke(toFunction('example/counted/1', [], [good, good]));
    assert.equal(ran, 2);
  });

  test('a batch mixing synchronous and asynchronous invocations runs in order on one storage, and async failures are reported', async () => {
    const order: string[] = [];
    const functions = new StatefulFunctions().withSpec({
      typeName: 'example/mixed',
      specs: [seen],
      fn(context, message) {
        const name = message.asString();
        const step = (): void => {
          context.storage.set(seen, (context.storage.get(seen) ?? 0) + 1);
          order.push(`${name}@${context.storage.get(seen) ?? 0}`);
          if (name.endsWith('fail')) throw new Error('late boom');
        };
        // Every other message finishes after a promise round, the rest at once.
        if (name.startsWith('async')) return Promise.resolve().then(step);
        step();
        return undefined;
      },
    });
    const target = { namespace: 'example', type: 'mixed', id: '1' };
    const reply = invocationResult(
      await functions.invoke(request({ seen: undefined }, ['a', 'async-b', 'c', 'async-d', 'e'], target)),
    );
    assert.deepEqual(order, ['a@1', 'async-b@2', 'c@3', 'async-d@4', 'e@5']);
    assert.equal(reply.stateMutations.length, 1);
    await assert.rejects(
      functions.invoke(request({ seen: undefined }, ['a', 'async-fail', 'never'], target)),
      (e) => e instanceof FunctionFailedError && (e.cause as Error).message === 'late boom',
    );
    assert.ok(!order.includes('never@3'), 'nothing runs after a failed invocation');
  });

  test('invoke always answers with a promise, also for input it refuses at once', () => {
    const functions = greeter();
    const refused = functions.invoke(Buffer.from([0xff]));
    assert.ok(refused instanceof Promise);
    refused.catch(() => undefined);
    const answered = functions.invoke(request({ seen: undefined, last_name: undefined }, ['x']));
    assert.ok(answered instanceof Promise);
  });

  test('a function using a value it did not declare gets a clear error', async () => {
    const undeclared = valueSpec({ name: 'other', type: intType });
    const functions = new StatefulFunctions().withSpec({
      typeName: 'example/sloppy',
      fn(context) {
        context.storage.get(undeclared);
      },
    });
    await assert.rejects(
      functions.invoke(request({}, ['x'], { namespace: 'example', type: 'sloppy', id: '1' })),
      (e) => e instanceof FunctionFailedError && /other/.test(e.message),
    );
  });

  test('a spec equal to a declared one (same name, same type) is that value; one of another type is refused', async () => {
    const copy = valueSpec({ name: 'seen', type: intType });
    const otherType = valueSpec({ name: 'seen', type: stringType });
    const functions = new StatefulFunctions().withSpec({
      typeName: 'example/copies',
      specs: [seen],
      fn(context, message) {
        if (message.asString() === 'other') context.storage.get(otherType);
        else context.storage.set(copy, (context.storage.get(copy) ?? 0) + 10);
      },
    });
    const target = { namespace: 'example', type: 'copies', id: '1' };
    const result = invocationResult(
      await functions.invoke(request({ seen: typed(intType, 5) }, ['a', 'b'], target)),
    );
    assert.deepEqual(
      result.stateMutations.map((m) => [
        m.stateName,
        intType.deserialize(m.stateValue?.value ?? new Uint8Array()),
      ]),
      [['seen', 25]],
    );
    await assert.rejects(
      functions.invoke(request({ seen: typed(intType, 5) }, ['other'], target)),
      (e) => e instanceof FunctionFailedError && /seen.*not one of the specs/.test(e.message),
    );
  });

  test('duplicate functions and duplicate value names are refused when registered', () => {
    assert.throws(
      () => greeter().withSpec({ typeName: 'example/greeter', fn: () => undefined }),
      /already registered/,
    );
    assert.throws(
      () => new StatefulFunctions().withSpec({ typeName: 'a/b', specs: [seen, seen], fn: () => undefined }),
      /declared twice/,
    );
    assert.throws(() => valueSpec({ name: '1bad', type: intType }), /does not match/);
    assert.throws(
      () => valueSpec({ name: 'x', type: intType, expireAfterCall: 1, expireAfterWrite: 1 }),
      /not both/,
    );
    // A custom type written in JavaScript without a typeName is caught here, not per request.
    const untyped = { serialize: () => new Uint8Array(), deserialize: () => 0 } as unknown as typeof intType;
    assert.throws(() => valueSpec({ name: 'x', type: untyped }), /is not a type/);
  });

  test('the bytes invoke() answers with have an ArrayBuffer of their own, whatever the size of the reply', async () => {
    // The HTTP handler writes replies from a shared buffer; a host calling invoke() may pass
    // `.buffer` on, so what it gets must hold nothing else.
    for (const names of [['Bob'], Array.from({ length: 20 }, (_, i) => `name-${i}`)]) {
      const reply = await greeter().invoke(request({ seen: typed(intType, 1), last_name: undefined }, names));
      assert.ok(reply.byteLength > 64);
      assert.equal(reply.byteOffset, 0);
      assert.equal(reply.buffer.byteLength, reply.byteLength);
    }
  });

  // Random bytes almost never decode, so this only proves the first refusal is a request
  // error; invoke-fuzz.test.ts fuzzes damaged valid requests, which reach the functions.
  test('fuzz: random bytes are refused with a request error (or, rarely, answered), never anything else', async () => {
    const functions = greeter();
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 256 }), async (bytes) => {
        let reply: Uint8Array;
        try {
          reply = await functions.invoke(bytes);
        } catch (error) {
          if (error instanceof InvalidRequestError || error instanceof UnknownFunctionError) return;
          throw error;
        }
        fromBinary(FromFunctionSchema, reply);
      }),
      { numRuns: 2_000 },
    );
  });
});

/** Serves `listener` on a loopback port, closed when the test ends; the port. */
async function listen(t: TestContext, listener: http.RequestListener): Promise<number> {
  const server = http.createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

describe('the HTTP handler', () => {
  async function serve(t: TestContext, logged: unknown[]): Promise<string> {
    const failing = greeter().withSpec({
      typeName: 'example/failing',
      fn() {
        throw new Error('boom');
      },
    });
    const port = await listen(t, failing.handler({ logger: { error: (message) => logged.push(message) } }));
    return `http://127.0.0.1:${port}/statefun`;
  }

  test('answers POSTed octet-stream requests, and each kind of refusal with its status', async (t) => {
    const logged: unknown[] = [];
    const url = await serve(t, logged);
    const post = (body: Uint8Array, contentType = 'application/octet-stream'): Promise<Response> =>
      fetch(url, { method: 'POST', body, headers: { 'content-type': contentType } });

    const ok = await post(request({ seen: typed(intType, 1), last_name: undefined }, ['Bob']));
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('content-type'), 'application/octet-stream');
    assert.equal(invocationResult(new Uint8Array(await ok.arrayBuffer())).stateMutations.length, 2);

    assert.equal((await fetch(url)).status, 405);
    assert.equal((await post(Buffer.from('x'), 'text/plain')).status, 415);
    assert.equal((await post(new Uint8Array())).status, 400);
    assert.equal((await post(Buffer.from([0xff, 0xff]))).status, 400);
    assert.equal(
      (await post(request({}, ['x'], { namespace: 'example', type: 'nobody', id: '1' }))).status,
      404,
    );
    const failed = await post(request({}, ['x'], { namespace: 'example', type: 'failing', id: '1' }));
    assert.equal(failed.status, 500);
    assert.match(await failed.text(), /boom/);
    assert.equal(logged.length, 1, 'the failure was logged, not swallowed');
  });
});

describe('the HTTP handler, signals and bodies', () => {
  test('a function that reads its signal over HTTP gets a live one, aborted when the invocation ends', async (t) => {
    const signals: AbortSignal[] = [];
    const functions = new StatefulFunctions().withSpec({
      typeName: 'example/watcher',
      fn(context) {
        assert.equal(context.signal.aborted, false);
        signals.push(context.signal);
      },
    });
    const port = await listen(t, functions.handler());
    const reply = await fetch(`http://127.0.0.1:${port}/`, {
      method: 'POST',
      body: request({}, ['one', 'two'], { namespace: 'example', type: 'watcher', id: '1' }),
    });
    assert.equal(reply.status, 200);
    assert.equal(signals.length, 2);
    assert.ok(signals.every((signal) => signal.aborted));
  });

  test('a client that goes away aborts the signal of the invocation still running', async (t) => {
    let reachedFunction!: () => void;
    const reached = new Promise<void>((resolve) => (reachedFunction = resolve));
    let abortedWith: unknown;
    const functions = new StatefulFunctions().withSpec({
      typeName: 'example/slow',
      async fn(context) {
        const { signal } = context;
        reachedFunction();
        await new Promise<void>((resolve) => {
          signal.addEventListener(
            'abort',
            () => {
              resolve();
            },
            { once: true },
          );
        });
        abortedWith = signal.reason;
      },
    });
    const port = await listen(t, functions.handler());
    const body = request({}, ['x'], { namespace: 'example', type: 'slow', id: '1' });
    const client = http.request({ port, host: '127.0.0.1', method: 'POST', path: '/' });
    client.on('error', () => undefined);
    client.end(body);
    await reached;
    client.destroy();
    await new Promise<void>((resolve) => {
      const poll = (): void => {
        if (abortedWith !== undefined) resolve();
        else setImmediate(poll);
      };
      poll();
    });
    assert.match(String(abortedWith), /went away/);
  });

  test('a body that arrives in several chunks is read whole', async (t) => {
    const port = await listen(t, greeter().handler());
    const body = request({ seen: typed(intType, 1), last_name: undefined }, ['Bob']);
    const status = await new Promise<number>((resolve, reject) => {
      const client = http.request(
        {
          port,
          host: '127.0.0.1',
          method: 'POST',
          path: '/',
          headers: { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
        },
        (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        },
      );
      client.on('error', reject);
      client.write(body.subarray(0, 5));
      setImmediate(() => client.end(body.subarray(5)));
    });
    assert.equal(status, 200);
  });

  test('a body larger than maxBodyBytes is refused with 413, and no function runs', async (t) => {
    let ran = false;
    const functions = new StatefulFunctions().withSpec({
      typeName: 'example/greeter',
      fn() {
        ran = true;
      },
    });
    const body = request({}, ['a message long enough to pass the limit']);
    const port = await listen(t, functions.handler({ maxBodyBytes: body.length - 1 }));
    const reply = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body });
    assert.equal(reply.status, 413);
    assert.match(await reply.text(), new RegExp(`exceeds ${body.length - 1} bytes`));
    assert.equal(ran, false);
  });
});

describe('the invocation signal', () => {
  test('aborts when the invocation is over, and when the request is abandoned during it', async () => {
    const signals: AbortSignal[] = [];
    const abandon = new AbortController();
    const functions = new StatefulFunctions().withSpec({
      typeName: 'example/watcher',
      async fn(context, message) {
        signals.push(context.signal);
        assert.equal(context.signal.aborted, false, 'live while the invocation runs');
        if (message.asString() === 'abandon') {
          abandon.abort(new Error('client left'));
          assert.equal(context.signal.aborted, true, 'the request was abandoned');
        }
        await Promise.resolve();
      },
    });
    const target = { namespace: 'example', type: 'watcher', id: '1' };
    await functions.invoke(request({}, ['one', 'two'], target));
    assert.equal(signals.length, 2);
    assert.ok(signals.every((signal) => signal.aborted));
    await functions.invoke(request({}, ['abandon'], target), { signal: abandon.signal });
  });
});
