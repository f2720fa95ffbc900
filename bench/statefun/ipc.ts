// The one message the statefun suite's server process sends the bench process, over the IPC
// channel `child_process.fork` opens: the port of each server. The bench stops the server by
// closing the channel, so nothing goes the other way.

export interface ReadyMessage {
  readonly type: 'ready';
  /** Our `StatefulFunctions.handler()`. */
  readonly oursPort: number;
  /** The official SDK's `StateFun.handler()`. */
  readonly officialPort: number;
  /** A bare node:http server: reads the body, answers 64 fixed bytes. */
  readonly floorPort: number;
}

function isPort(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 && value < 65_536;
}

export function parseReady(message: unknown): ReadyMessage {
  if (typeof message === 'object' && message !== null) {
    const { type, oursPort, officialPort, floorPort } = message as Record<string, unknown>;
    if (type === 'ready' && isPort(oursPort) && isPort(officialPort) && isPort(floorPort)) {
      return { type, oursPort, officialPort, floorPort };
    }
  }
  throw new TypeError(`unexpected message from the statefun bench server: ${JSON.stringify(message)}`);
}
