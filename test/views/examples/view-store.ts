// The ViewStore example of docs/views.md: the code between the region markers is the
// document's, word for word, with 'weft/views' for the source path (test/views/docs.test.ts
// checks both, and runs this).

// #region docs
import {
  EventPublisher,
  MapView,
  Materializer,
  putEvent,
  ViewStore,
  type MapChange,
  type ViewRequest,
} from '../../../src/views/index.ts';

interface Member {
  readonly addr: string;
}

// A topic of this process (for one on another node, see "Across the grid").
const publisher = new EventPublisher();
const members = new Map<string, Member>();
publisher.registerTopic<MapChange<Member>>('cluster.members', {
  // What a new subscriber starts from: every member, or the one it asks for.
  snapshot: (subject) => ({
    index: publisher.index('cluster.members'),
    events: [...members]
      .filter(([id]) => subject === undefined || id === subject)
      .map(([id, member]) => putEvent(id, member)),
  }),
});
function join(id: string, addr: string): void {
  members.set(id, { addr });
  publisher.publish('cluster.members', [putEvent(id, { addr })]);
}

const store = new ViewStore();
// Every request with this key shares one materializer, started by the first.
const membersRequest: ViewRequest<ReadonlyMap<string, Member>> = {
  key: 'cluster.members',
  newMaterializer: () =>
    new Materializer({
      source: (request, signal) => publisher.subscribe<MapChange<Member>>(request, { signal }),
      request: { topic: 'cluster.members' },
      view: new MapView<Member>(),
    }),
};

// The current value (once the first snapshot is in)...
const { index } = await store.get(membersRequest);
join('node-a', '10.0.0.1:9000');
// ...and the first after it: here node-a's join. Had nothing changed in 30 s, the same value.
const next = await store.get(membersRequest, { minIndex: index, timeoutMs: 30_000 });
// next.index > index; next.value.get('node-a') is { addr: '10.0.0.1:9000' }

// Every new value, and every failure (with `error` set), until the signal aborts.
const controller = new AbortController();
let latest: ReadonlyMap<string, Member> | undefined;
const watching = store.notify(
  membersRequest,
  (update) => {
    if (update.error === undefined) latest = update.value;
  },
  { signal: controller.signal },
);
join('node-b', '10.0.0.2:9000'); // `latest` gets node-b soon after
// #endregion

export type { Member };
export { controller, join, latest, membersRequest, next, publisher, store, watching };
