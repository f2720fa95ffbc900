import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ConfigError } from '../../src/internal/errors.ts';
import { SubjectRouter, type RoutableMessage } from '../../src/runtime/ingress/subject-routes.ts';

const STRING_TYPE = 'io.statefun.types/string';
const payload = new Uint8Array([1, 2, 3]);

function message(subject: string, headers: Record<string, string | string[]> = {}): RoutableMessage {
  const entries = Object.entries(headers).map(([name, value]): [string, string[]] => [
    name,
    Array.isArray(value) ? value : [value],
  ]);
  return { subject, headers: new Map(entries), data: payload };
}

describe('subject routes', () => {
  test('a message whose headers cannot be read is unmappable, not an exception', () => {
    const router = new SubjectRouter([{ subject: 'orders.*', functionType: 'shop/cart' }]);
    // nats.js parses headers when they are read and throws on a malformed key from another client.
    const message = {
      subject: 'orders.7',
      get headers(): never {
        throw new Error('BAD_HEADER: invalid header key');
      },
      data: new Uint8Array(),
    } as RoutableMessage;
    const mapping = router.map(message);
    assert.ok(!mapping.ok);
    assert.equal(mapping.reason, 'bad-headers');
    assert.match(mapping.detail, /BAD_HEADER/);
  });

  test('the last token of the subject is the id, the header the type', () => {
    const router = new SubjectRouter([{ subject: 'orders.*.created', functionType: 'shop/cart' }]);
    const mapping = router.map(message('orders.eu.created', { 'Weft-Message-Type': STRING_TYPE }));
    assert.deepEqual(mapping, {
      ok: true,
      route: 0,
      target: ['shop', 'cart', 'created'],
      argument: { typename: STRING_TYPE, value: payload },
    });
  });

  test('Weft-Id overrides the route’s id rule, and header names match in any case', () => {
    const router = new SubjectRouter([
      { subject: 'orders.>', functionType: 'example.com/shop/cart', messageType: 'example.com/Order' },
    ]);
    const mapping = router.map(message('orders.eu.7', { 'weft-id': 'customer 9' }));
    assert.ok(mapping.ok);
    assert.deepEqual(mapping.target, ['example.com/shop', 'cart', 'customer 9']);
    assert.equal(mapping.argument.typename, 'example.com/Order');
  });

  test('a route may take the id from a header of its choosing', () => {
    const router = new SubjectRouter([
      {
        subject: 'payments',
        functionType: 'shop/ledger',
        messageType: STRING_TYPE,
        id: { header: 'Account' },
      },
    ]);
    const mapped = router.map(message('payments', { account: 'acc-1' }));
    assert.ok(mapped.ok);
    assert.equal(mapped.target[2], 'acc-1');
    assert.deepEqual(router.map(message('payments')), {
      ok: false,
      reason: 'bad-id',
      detail: 'no account header',
    });
  });

  test('the first matching route wins, and `>` needs at least one token', () => {
    const router = new SubjectRouter([
      { subject: 'a.b', functionType: 'ns/first', messageType: STRING_TYPE },
      { subject: 'a.>', functionType: 'ns/second', messageType: STRING_TYPE },
      { subject: '*', functionType: 'ns/third', messageType: STRING_TYPE },
    ]);
    assert.equal(router.routeOf('a.b'), 0);
    assert.equal(router.routeOf('a.b.c'), 1);
    assert.equal(router.routeOf('a'), 2);
    assert.equal(router.routeOf('b.c'), -1);
    assert.deepEqual(router.subjects, ['a.b', 'a.>', '*']);
  });

  test('messages that can never be delivered say why', () => {
    const router = new SubjectRouter([{ subject: 'orders.*', functionType: 'shop/cart' }]);
    const reasons = [
      router.map(message('invoices.7', { 'Weft-Message-Type': STRING_TYPE })),
      router.map(message('orders.7')),
      router.map(message('orders.7', { 'Weft-Message-Type': 'no-slash' })),
      router.map(message('orders.7', { 'Weft-Message-Type': [STRING_TYPE, STRING_TYPE] })),
      router.map(message('orders.7', { 'Weft-Message-Type': STRING_TYPE, 'Weft-Id': '' })),
    ].map((mapping) => (mapping.ok ? 'ok' : `${mapping.reason}: ${mapping.detail}`));
    assert.deepEqual(reasons, [
      'no-route: no route matches subject invoices.7',
      'bad-type: no Weft-Message-Type header, and the route names no messageType',
      'bad-type: Weft-Message-Type: invalid type name "no-slash": expected namespace/name',
      'bad-type: 2 Weft-Message-Type headers, and the route names no messageType',
      'bad-id: the id is empty',
    ]);
  });

  test('bad routes are refused at construction, naming the field', () => {
    const cases: [unknown, string][] = [
      [[], 'routes'],
      [[{ subject: 'a..b', functionType: 'ns/f' }], 'routes[0].subject'],
      [[{ subject: 'a.>.b', functionType: 'ns/f' }], 'routes[0].subject'],
      [[{ subject: 'a.b*', functionType: 'ns/f' }], 'routes[0].subject'],
      [
        [
          { subject: 'a', functionType: 'ns/f' },
          { subject: 'b', functionType: 'nope' },
        ],
        'routes[1].functionType',
      ],
      [[{ subject: 'a', functionType: 'ns/f', messageType: 'x/' }], 'routes[0].messageType'],
      [[{ subject: 'a', functionType: 'ns/f', id: { header: 'bad header' } }], 'routes[0].id'],
    ];
    for (const [routes, field] of cases) {
      assert.throws(
        () => new SubjectRouter(routes as never),
        (error: unknown) => error instanceof ConfigError && error.field === field,
        field,
      );
    }
  });
});
