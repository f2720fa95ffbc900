// The examples of docs/views.md are code that runs. A code block marked
// `<!-- example: <file> -->` is that file's `#region docs`, word for word (with
// 'weft/views' for the source path), and the tests below run the files and check what the
// document says they do. The examples use the system clock as an application would; nothing
// here waits for a timer.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';

import { ClosedError } from '../../src/internal/errors.ts';
import { eventually } from '../grid/reliability-harness.ts';

const root = new URL('../../', import.meta.url);
const doc = readFileSync(new URL('docs/views.md', root), 'utf8');

/** The document's part of an example file. */
function region(file: string): string {
  const text = readFileSync(new URL(file, root), 'utf8');
  const match = /\n\/\/ #region docs\n([\s\S]*?)\/\/ #endregion\n/.exec(text);
  assert.ok(match?.[1] !== undefined, `${file} has a docs region`);
  return match[1].replaceAll("'../../../src/views/index.ts'", "'weft/views'");
}

/** The HTTP example's server, once a test has started it. */
let appServer: http.Server | undefined;

describe('docs/views.md examples', () => {
  after(async () => {
    // Whatever a failed test left running.
    const { store } = await import('./examples/view-store.ts');
    store.close();
    appServer?.closeAllConnections();
    appServer?.close();
  });

  test('each marked code block is its example file, word for word', () => {
    const blocks = [...doc.matchAll(/<!-- example: (\S+) -->\n\n```ts\n([\s\S]*?)```\n/g)];
    assert.deepEqual(
      blocks.map(([, file]) => file),
      [
        'test/views/examples/view-store.ts',
        'test/views/examples/http-app.ts',
        'test/views/examples/view-factory.ts',
      ],
    );
    for (const [, file = '', block] of blocks) assert.equal(block, region(file), file);
  });

  test('the ViewStore example gets the current value, then the next change, and watches every one', async () => {
    const example = await import('./examples/view-store.ts');
    assert.equal(example.next.index, 2);
    assert.deepEqual(example.next.value.get('node-a'), { addr: '10.0.0.1:9000' });
    await eventually(() => example.latest?.has('node-b') === true, 'notify to deliver node-b');
    assert.equal(example.store.stats().started, 1, 'one materializer for every request');
    example.controller.abort();
    await example.watching;
  });

  test('the view-factory example reads its own query parameter, and refuses a request without it', async (t) => {
    const { memberViews } = await import('./examples/view-factory.ts');
    const server = http.createServer(memberViews);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => server.close());
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/views/member`;
    const one = await fetch(`${base}?id=node-b`);
    assert.equal(one.status, 200);
    assert.deepEqual(await one.json(), { 'node-b': { addr: '10.0.0.2:9000' } });
    const refused = await fetch(base);
    assert.equal(refused.status, 400);
    assert.equal(await refused.text(), 'id is required\n');
  });

  test('the HTTP example serves the view and hands every other request to the application', async () => {
    process.env['PORT'] = '0';
    const { server, views } = await import('./examples/http-app.ts');
    appServer = server;
    const { store } = await import('./examples/view-store.ts');
    if (!server.listening) await new Promise((resolve) => server.once('listening', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const answer = await fetch(`${base}/v1/views/members`);
    assert.equal(answer.status, 200);
    assert.deepEqual(Object.keys((await answer.json()) as object).sort(), ['node-a', 'node-b']);
    assert.equal(await (await fetch(`${base}/healthz`)).text(), 'ok\n');
    for (const path of ['/nope', '/v1/views/nope']) {
      const other = await fetch(`${base}${path}`);
      assert.equal(other.status, 404);
      assert.equal(await other.text(), 'not found\n', 'the application answered');
    }
    assert.equal(views.stats().notFound, 0);

    // Shutting down as the document says: the store first, so nothing holds the server open.
    store.close();
    await new Promise((resolve) => server.close(resolve));
    await assert.rejects(fetch(`${base}/healthz`));
    await assert.rejects(
      store.get({ key: 'x', newMaterializer: () => assert.fail('not started') }),
      ClosedError,
    );
  });
});
