import { MemoryStateStore } from '../../src/runtime/store/memory-store.ts';
import { describeStateStore } from './store-conformance.ts';

describeStateStore('MemoryStateStore', {
  open: (t) => {
    const store = new MemoryStateStore();
    t.after(() => store.close());
    return Promise.resolve(store);
  },
});
