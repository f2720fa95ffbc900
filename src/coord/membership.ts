// Who is in the cluster, as this node sees it. HRW ranks are always computed on the requester's
// own view (as Gantry does): two nodes whose views differ for a moment may pick different
// owners, which the cascade tolerates (at most a few fetchers per key, never a wrong answer).
//
// Today the view comes from the grid: this node's host and the peers it is connected to. The node
// will publish membership as a view later; anything with this shape fits.

import type { Manager } from '../grid/index.ts';

export interface Membership {
  /** This node's id, as it appears among the members (for the grid: its host URL). */
  readonly self: string;
  /** The members this node counts as live now, itself included, in no particular order. */
  members(): readonly string[];
}

/** A fixed list: for tests and for clusters configured by hand. */
export function staticMembership(self: string, members: readonly string[]): Membership {
  const all = [...new Set([self, ...members])];
  return { self, members: () => all };
}

/**
 * The grid's view: this node, and every peer whose connection is up right now. A peer that is
 * dialling or has failed is left out, so work is not designated to a node nobody can reach.
 */
export function gridMembership(manager: Pick<Manager, 'hostName' | 'targets' | 'connection'>): Membership {
  const self = manager.hostName();
  return {
    self,
    members: () => [
      self,
      ...manager.targets().filter((host) => manager.connection(host).state() === 'connected'),
    ],
  };
}
