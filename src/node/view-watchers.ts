// Who is watching which view: SSE streams and blocking queries open now, per view, for the
// dashboard. Counted around the views handler, for the views this node serves only (a request
// for any other name must not grow the table).

import type http from 'node:http';

import type { ViewsHttpHandler } from '../views/index.ts';

export interface ViewWatchers {
  readonly handler: (request: http.IncomingMessage, response: http.ServerResponse) => void;
  /** Per view: requests open on it now. */
  watchers(): Record<string, { readonly watchers: number }>;
}

export function countViewWatchers(
  views: ViewsHttpHandler,
  prefix: string,
  names: readonly string[],
): ViewWatchers {
  const open = new Map<string, number>(names.map((name) => [name, 0]));
  return {
    handler(request, response) {
      const pathname = new URL(request.url ?? '/', 'http://x').pathname;
      let name: string | undefined;
      try {
        name = decodeURIComponent(pathname.slice(prefix.length));
      } catch {
        name = undefined;
      }
      const count = name === undefined ? undefined : open.get(name);
      if (name !== undefined && count !== undefined) {
        open.set(name, count + 1);
        response.once('close', () => {
          open.set(name, (open.get(name) ?? 1) - 1);
        });
      }
      views(request, response);
    },
    watchers() {
      return Object.fromEntries([...open].map(([name, watchers]) => [name, { watchers }]));
    },
  };
}
