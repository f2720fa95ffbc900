// The members this node last knew, kept in its data directory: at the next start they are seeds
// too, so a node whose config names no seeds (the first of a cluster), or whose seeds are gone,
// still finds the cluster again after a restart.

import { readFileSync, renameSync, writeFileSync } from 'node:fs';

import { nodeUrl } from './config.ts';
import type { NodeLogger } from './logger.ts';

const MAX_KNOWN = 1024;

export class KnownMembers {
  readonly #file: string;
  readonly #logger: NodeLogger;
  #saved = '';

  constructor(file: string, logger: NodeLogger) {
    this.#file = file;
    this.#logger = logger;
  }

  /** The hosts saved last time; none when the file is missing or unreadable (logged). */
  load(): string[] {
    let text: string;
    try {
      text = readFileSync(this.#file, 'utf8');
    } catch {
      return [];
    }
    try {
      const hosts = (JSON.parse(text) as { hosts?: unknown }).hosts;
      if (!Array.isArray(hosts)) throw new Error('no list of hosts');
      this.#saved = text;
      return hosts.slice(0, MAX_KNOWN).map((host, i) => nodeUrl(host, `members.json hosts[${i}]`));
    } catch (error) {
      this.#logger.warn({ file: this.#file, error: (error as Error).message }, 'known members ignored');
      return [];
    }
  }

  /** Saves the hosts of `members` when they changed (write, then rename: never half a file). */
  save(members: readonly { readonly host: string; readonly self: boolean }[]): void {
    const hosts = members
      .filter((m) => !m.self)
      .map((m) => m.host)
      .sort();
    const text = `${JSON.stringify({ hosts: hosts.slice(0, MAX_KNOWN) })}\n`;
    if (text === this.#saved) return;
    try {
      writeFileSync(`${this.#file}.tmp`, text);
      renameSync(`${this.#file}.tmp`, this.#file);
      this.#saved = text;
    } catch (error) {
      this.#logger.warn({ file: this.#file, error: (error as Error).message }, 'known members not saved');
    }
  }
}
