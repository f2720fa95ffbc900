// The view-factory example of docs/views.md, word for word between the region markers (see
// view-store.ts), using the publisher and store of the ViewStore example.

import { publisher, store, type Member } from './view-store.ts';

// #region docs
import { MapView, Materializer, viewsHttpHandler, type MapChange } from '../../../src/views/index.ts';

const memberViews = viewsHttpHandler(store, {
  views: {
    // GET /v1/views/member?id=node-a: one member's entry.
    member: (query) => {
      const id = query.get('id');
      if (id === null) throw new TypeError('id is required'); // a 400 with this message
      return {
        key: `cluster.members/${id}`, // one materializer per member asked for
        newMaterializer: () =>
          new Materializer({
            source: (request, signal) => publisher.subscribe<MapChange<Member>>(request, { signal }),
            request: { topic: 'cluster.members', subject: id },
            view: new MapView<Member>(),
          }),
      };
    },
  },
});
// #endregion

export { memberViews };
