// The HTTP example of docs/views.md, word for word between the region markers (see
// view-store.ts), using the store and request of the ViewStore example.

import { membersRequest, store } from './view-store.ts';

// #region docs
import http from 'node:http';

import { viewsHttpHandler } from '../../../src/views/index.ts';

const views = viewsHttpHandler(store, {
  views: { members: () => membersRequest }, // name → the store request for a query
});
const server = http.createServer((request, response) => {
  // A request that is not for a view goes on to the rest of the application.
  views(request, response, () => {
    if (request.url === '/healthz') {
      response.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
    } else {
      response.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    }
  });
});
server.listen(Number(process.env['PORT'] ?? 8500));
// #endregion

export { server, views };
