// Gates for tests that need a real PostgreSQL or NATS server.
//
// On a developer's machine without the service, such a test is skipped with a reason
// that says what was tried. Where `WEFT_REQUIRE_SERVICES=1` (CI), an absent service
// fails the test instead, so a broken environment cannot pass as green. Each probe
// speaks the first bytes of the real protocol, so "something listens on the port"
// is not mistaken for the service.

import net from 'node:net';

export interface ServiceProbe {
  /** Human name used in skip reasons, e.g. "PostgreSQL". */
  readonly name: string;
  /** Environment variable that overrides `defaultUrl`. */
  readonly urlVariable: string;
  readonly defaultUrl: string;
  readonly defaultPort: number;
  /** Confirms the peer is this service from the first bytes it answers; resolves or throws. */
  readonly greet: (socket: net.Socket) => Promise<void>;
}

export interface ServiceGate {
  /** The URL the tests should use. */
  readonly url: string;
  /** A skip reason for `test(name, { skip }, …)`, or false when the service answered. */
  readonly skip: string | false;
}

/** Set to 1 to turn "service absent, test skipped" into a failure. */
export const requireServicesVariable = 'WEFT_REQUIRE_SERVICES';

export const postgresService: ServiceProbe = {
  name: 'PostgreSQL',
  urlVariable: 'WEFT_TEST_PG_URL',
  defaultUrl: 'postgres://127.0.0.1:5432/test',
  defaultPort: 5432,
  // SSLRequest (length 8, code 80877103): a PostgreSQL server answers one byte, S or N.
  greet: (socket) =>
    exchange(socket, Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]), (reply) => {
      if (reply.length === 0) return undefined;
      const answer = String.fromCharCode(reply[0] ?? 0);
      if (answer === 'S' || answer === 'N') return true;
      throw new Error(`answered ${JSON.stringify(answer)} to an SSLRequest`);
    }),
};

export const natsService: ServiceProbe = {
  name: 'NATS',
  urlVariable: 'WEFT_TEST_NATS_URL',
  defaultUrl: 'nats://127.0.0.1:4222',
  defaultPort: 4222,
  // A NATS server speaks first, with an INFO line.
  greet: (socket) =>
    exchange(socket, undefined, (reply) => {
      if (reply.length < 5) return undefined;
      if (reply.subarray(0, 5).toString('latin1') === 'INFO ') return true;
      throw new Error(`greeted with ${JSON.stringify(reply.subarray(0, 16).toString('latin1'))}, not INFO`);
    }),
};

/**
 * Probes `service` and returns its URL with a skip reason, or throws when the service is
 * absent and `WEFT_REQUIRE_SERVICES=1`.
 */
export async function serviceGate(
  service: ServiceProbe,
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ServiceGate> {
  const env = options.env ?? process.env;
  const url = env[service.urlVariable] ?? service.defaultUrl;
  const problem = await probe(service, url, options.timeoutMs ?? 2_000);
  if (problem === undefined) return { url, skip: false };
  const reason = `${service.name} not reachable at ${url} (${problem}); set ${service.urlVariable} to point elsewhere`;
  if (env[requireServicesVariable] === '1') {
    throw new Error(`${reason}. ${requireServicesVariable}=1, so this is a failure, not a skip`);
  }
  return { url, skip: reason };
}

async function probe(service: ServiceProbe, url: string, timeoutMs: number): Promise<string | undefined> {
  let host: string;
  let port: number;
  try {
    const parsed = new URL(url);
    host = parsed.hostname.replace(/^\[|\]$/g, '');
    port = parsed.port === '' ? service.defaultPort : Number(parsed.port);
  } catch {
    return `cannot parse ${service.urlVariable}`;
  }
  const socket = net.connect({ host, port });
  socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)));
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    await service.greet(socket);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    socket.destroy();
  }
}

/** Writes `request` (if any) and reads until `judge` returns true or throws. */
function exchange(
  socket: net.Socket,
  request: Buffer | undefined,
  judge: (reply: Buffer) => true | undefined,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let reply = Buffer.alloc(0);
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      reply = Buffer.concat([reply, chunk]);
      try {
        if (judge(reply) === true) {
          cleanup();
          resolve();
        }
      } catch (error) {
        cleanup();
        reject(error);
      }
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error('connection closed before the greeting'));
    };
    socket.on('data', onData);
    socket.once('error', onError);
    socket.once('close', onClose);
    if (request !== undefined) socket.write(request);
  });
}
