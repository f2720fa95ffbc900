import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import diagnosticsChannel from 'node:diagnostics_channel';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';

import { Manager } from '../../src/grid/index.ts';
import { FakeClock } from '../../src/internal/fake-clock.ts';

/** A self-signed certificate for 127.0.0.1, made with openssl; undefined when openssl is absent. */
function selfSignedCertificate(): { key: Buffer; cert: Buffer } | undefined {
  const dir = mkdtempSync(path.join(tmpdir(), 'weft-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    return { key: readFileSync(path.join(dir, 'key.pem')), cert: readFileSync(path.join(dir, 'cert.pem')) };
  } catch {
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const certificate = selfSignedCertificate();
const skip = certificate === undefined ? 'openssl is not installed: cannot make a test certificate' : false;

/**
 * Two managers on https hosts, closed after the test; `trust` gives dials the certificate
 * as their CA. Managers are attached by the caller, which may listen for their states first.
 */
async function httpsPair(
  t: TestContext,
  cert: { key: Buffer; cert: Buffer },
  trust: boolean,
): Promise<{ managers: Manager[]; servers: https.Server[]; hosts: string[] }> {
  const servers = await Promise.all(
    [0, 1].map(async () => {
      const server = https.createServer(cert);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return server;
    }),
  );
  const hosts = servers.map((s) => `https://127.0.0.1:${(s.address() as AddressInfo).port}`);
  const clock = new FakeClock();
  const managers = hosts.map(
    (local) =>
      new Manager({
        local,
        hosts,
        auth: { secret: 'tls-test-cluster-secret' },
        clock,
        ...(trust ? { tls: { client: { ca: cert.cert } } } : {}),
      }),
  );
  t.after(async () => {
    await Promise.all(managers.map((m) => m.close()));
    for (const server of servers) {
      server.closeAllConnections();
      server.close();
    }
  });
  return { managers, servers, hosts };
}

test('over https hosts the grid dials wss, verifies the peer certificate, and works', { skip }, async (t) => {
  assert.ok(certificate !== undefined);
  const { managers, servers, hosts } = await httpsPair(t, certificate, true);
  managers.forEach((manager, i) => {
    manager.registerSingle(64, (payload) => payload);
    manager.attach(servers[i] as http.Server);
  });
  const connection = (managers[0] as Manager).connection(hosts[1] as string);
  await connection.waitForConnect();
  const reply = await connection.request(64, Buffer.from('over tls'));
  assert.equal(Buffer.from(reply ?? []).toString(), 'over tls');
});

test('a peer whose certificate is not trusted is never connected', { skip }, async (t) => {
  assert.ok(certificate !== undefined);
  // No `ca`: the self-signed certificate is not trusted.
  const { managers, servers } = await httpsPair(t, certificate, false);
  const errors: unknown[] = [];
  const onState = (message: unknown): void => {
    const { state, error } = message as { state: string; error?: unknown };
    if (state === 'connection-error') errors.push(error);
  };
  diagnosticsChannel.subscribe('weft:grid:connection-state', onState);
  t.after(() => diagnosticsChannel.unsubscribe('weft:grid:connection-state', onState));
  managers.forEach((manager, i) => {
    manager.attach(servers[i] as http.Server);
  });
  while (errors.length === 0) await new Promise((resolve) => setImmediate(resolve));
  assert.match((errors[0] as Error).message, /self[- ]signed|certificate/i);
});
