import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';

import { LmdbStateStore } from '../../src/runtime/store/lmdb-store.ts';
import type { StateStore } from '../../src/runtime/store/state-store.ts';
import { describeStateStore } from './store-conformance.ts';

// Each store's directory, so a reopen finds the same data.
const directories = new WeakMap<StateStore, string>();

async function openAt(t: TestContext, directory: string): Promise<LmdbStateStore> {
  const store = await LmdbStateStore.open({ path: directory });
  directories.set(store, directory);
  t.after(() => store.close());
  return store;
}

describeStateStore('LmdbStateStore', {
  open: async (t) => {
    const directory = await mkdtemp(path.join(tmpdir(), 'weft-lmdb-'));
    t.after(() => rm(directory, { recursive: true, force: true }));
    return openAt(t, directory);
  },
  reopen: async (t, store) => {
    const directory = directories.get(store);
    if (directory === undefined) throw new Error('not a store this test opened');
    await store.close();
    return openAt(t, directory);
  },
});
