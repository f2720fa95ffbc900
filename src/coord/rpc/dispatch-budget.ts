// The dispatch budget: the longest a node works on one coord call (Gantry: 2 s). Past it the
// call is answered with a `DeadlineExceededError` and the work is abandoned: its signal aborts,
// and whatever it settles with later is ignored. A caller waiting on the cascade is better
// served by a quick "don't know" than by an answer that comes after it stopped listening.

import { onAbort } from '../../internal/abort.ts';
import type { Clock } from '../../internal/clock.ts';
import { DeadlineExceededError } from '../../internal/errors.ts';

/**
 * Runs `work` with a signal that aborts after `budgetMs` on `clock` (with a
 * `DeadlineExceededError` naming the budget) or when `parent` aborts (with its reason), and
 * settles with whichever comes first. `onExpired` runs once if the budget is what ended it.
 */
export function withinBudget<T>(
  clock: Clock,
  budgetMs: number,
  what: string,
  parent: AbortSignal | undefined,
  work: (signal: AbortSignal) => Promise<T>,
  onExpired: () => void = () => undefined,
): Promise<T> {
  if (parent?.aborted === true) return Promise.reject(parent.reason as Error);
  const controller = new AbortController();
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const end = (settle: () => void): void => {
      if (settled) return;
      settled = true;
      timer.cancel();
      stopListening();
      settle();
    };
    const timer = clock.setTimeout(() => {
      const error = new DeadlineExceededError(`${what} exceeded its ${budgetMs} ms dispatch budget`, {
        timeoutMs: budgetMs,
      });
      end(() => {
        onExpired();
        controller.abort(error);
        reject(error);
      });
    }, budgetMs);
    const stopListening = onAbort(parent, (reason) => {
      end(() => {
        controller.abort(reason);
        reject(reason);
      });
    });
    let running: Promise<T>;
    try {
      running = work(controller.signal);
    } catch (error) {
      running = Promise.reject(error);
    }
    running.then(
      (value) => {
        end(() => {
          resolve(value);
        });
      },
      (error: unknown) => {
        end(() => {
          reject(error);
        });
      },
    );
  });
}
