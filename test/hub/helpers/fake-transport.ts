// An outbound transport for tests: records what is written, and pushes back after `room`
// messages until `drain()`, as a Node Writable does when its buffer is full.

import { EventEmitter } from 'node:events';

export class FakeTransport<M> extends EventEmitter {
  readonly written: M[] = [];
  room: number;
  ended = false;

  constructor(room = Number.POSITIVE_INFINITY) {
    super();
    this.room = room;
  }

  write(message: M): boolean {
    this.written.push(message);
    this.room--;
    return this.room > 0;
  }

  drain(room = Number.POSITIVE_INFINITY): void {
    this.room = room;
    this.emit('drain');
  }

  end(): void {
    this.ended = true;
  }
}
