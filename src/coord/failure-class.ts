// Why a fetch from the origin failed, as the coordination protocol reports it.
//
// The class decides what peers do with a recent failure: auth, not-found and rate-limited
// are verdicts about the origin that another node would get too, so the cold-start cascade
// trusts them and stops; transient failures (5xx, resets, timeouts) only earn a short wait.

export type FailureClass = 'auth' | 'not-found' | 'rate-limited' | 'transient';

export const FAILURE_CLASSES: readonly FailureClass[] = ['auth', 'not-found', 'rate-limited', 'transient'];

/** True for one of the four failure classes; for values decoded from the wire. */
export function isFailureClass(value: unknown): value is FailureClass {
  return typeof value === 'string' && (FAILURE_CLASSES as readonly string[]).includes(value);
}

/** The class of an origin's HTTP answer: 401/403 auth, 404 not-found, 429 rate-limited, else transient. */
export function failureClassOfStatus(httpStatus: number): FailureClass {
  switch (httpStatus) {
    case 401:
    case 403:
      return 'auth';
    case 404:
      return 'not-found';
    case 429:
      return 'rate-limited';
    default:
      return 'transient';
  }
}
