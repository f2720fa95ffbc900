// A node's config: layers merge in order (defaults ← file ← environment ← flags), and anything
// wrong is refused with the field named, so a person can fix it.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ConfigError } from '../../src/internal/errors.ts';
import {
  MAX_CONFIG_FILE_BYTES,
  nodeConfigFromEnv,
  readNodeConfigFile,
  resolveNodeConfig,
  type NodeConfigInput,
} from '../../src/node/config.ts';

const secret = { cluster: { secret: 'a cluster secret of 16+ bytes' } } as const;

function refusedAt(field: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof ConfigError, `a ConfigError, got ${String(error)}`);
    assert.equal(error.field, field);
    return true;
  };
}

describe('node config', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'weft-node-config-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('runtime.postgres: a postgres URL from the file or WEFT_POSTGRES_URL; anything else refused without echoing it', () => {
    const url = 'postgres://weft:s3cret@db.internal:5432/weft';
    const config = resolveNodeConfig(secret, nodeConfigFromEnv({ WEFT_POSTGRES_URL: url }));
    assert.equal(config.runtime.postgres, url);
    assert.equal(config.runtime.postgresSchema, 'weft');
    assert.equal(config.runtime.postgresPoolSize, 10);
    assert.equal(resolveNodeConfig(secret).runtime.postgres, undefined, 'absent: lmdb');
    for (const bad of [
      'mysql://db/weft',
      'postgres:///weft',
      'postgres://db:5432/',
      'not a url',
      'postgres://weft:%zz-s3cret@db/weft',
    ]) {
      assert.throws(
        () => resolveNodeConfig(secret, { runtime: { postgres: bad } }),
        (error: unknown) =>
          refusedAt('runtime.postgres')(error) && !(error as Error).message.includes('s3cret'),
        bad,
      );
    }
    assert.throws(
      () => resolveNodeConfig(secret, { runtime: { postgresSchema: 'Weft; DROP' } }),
      refusedAt('runtime.postgresSchema'),
    );
    assert.throws(
      () => resolveNodeConfig(secret, { runtime: { postgresPoolSize: 0 } }),
      refusedAt('runtime.postgresPoolSize'),
    );
  });

  test('defaults: loopback on 7400, advertised as such, runtime on, hub and mirror off', () => {
    const config = resolveNodeConfig(secret);
    assert.deepEqual(config.listen, { host: '127.0.0.1', port: 7400 });
    assert.equal(config.advertise, 'http://127.0.0.1:7400');
    assert.deepEqual(config.cluster.seeds, []);
    assert.equal(config.runtime.enabled, true);
    assert.equal(config.hub.enabled, false);
    assert.equal(config.mirror.enabled, false);
    assert.equal(config.log.level, 'info');
  });

  test('later layers win field by field: file, then environment, then flags', () => {
    const file: NodeConfigInput = {
      ...secret,
      name: 'from-file',
      advertise: 'http://10.0.0.9:7100',
      listen: { host: '0.0.0.0', port: 7000 },
    };
    const env = nodeConfigFromEnv({
      WEFT_PORT: '7100',
      WEFT_SEEDS: 'http://10.0.0.1:7400, http://10.0.0.2:7400',
    });
    const flags: NodeConfigInput = { name: 'from-flags' };
    const config = resolveNodeConfig(file, env, flags);
    assert.equal(config.name, 'from-flags');
    assert.deepEqual(
      config.listen,
      { host: '0.0.0.0', port: 7100 },
      'the host from the file, the port from env',
    );
    assert.deepEqual(config.cluster.seeds, ['http://10.0.0.1:7400', 'http://10.0.0.2:7400']);
    assert.equal(config.cluster.secret, secret.cluster.secret, 'the secret from the file is kept');
  });

  test('every mistake names its field', () => {
    const cases: [NodeConfigInput | Record<string, unknown>, string][] = [
      [{}, 'cluster.secret'],
      [{ cluster: { secret: 'short' } }, 'cluster.secret'],
      [{ ...secret, listen: { port: 70_000 } }, 'listen.port'],
      [{ ...secret, listen: { prot: 1 } }, 'listen.prot'],
      [{ ...secret, colour: 'blue' }, 'colour'],
      [{ ...secret, log: { level: 'loud' } }, 'log.level'],
      [{ cluster: { ...secret.cluster, seeds: ['not a url'] } }, 'cluster.seeds[0]'],
      [{ cluster: { ...secret.cluster, seeds: ['http://10.0.0.1:7400/path'] } }, 'cluster.seeds[0]'],
      [{ cluster: { ...secret.cluster, seeds: ['ftp://10.0.0.1'] } }, 'cluster.seeds[0]'],
      [{ ...secret, advertise: 'http://user:pw@10.0.0.1:7400' }, 'advertise'],
      [{ ...secret, listen: { port: 0 } }, 'advertise'],
      [{ ...secret, listen: { host: '0.0.0.0' } }, 'advertise'],
      [{ ...secret, hub: { enabled: 'yes' } }, 'hub.enabled'],
      [{ ...secret, mirror: { origin: 'https://registry.example/v2' } }, 'mirror.origin'],
      [{ ...secret, listen: 'everywhere' }, 'listen'],
    ];
    for (const [input, field] of cases) {
      assert.throws(() => resolveNodeConfig(input), refusedAt(field), JSON.stringify(input));
    }
  });

  test('a YAML file is read, story paths resolved next to it; JSON works too', async () => {
    const yamlFile = path.join(dir, 'node.yaml');
    await writeFile(
      yamlFile,
      'name: n1\ncluster:\n  secret: a cluster secret of 16+ bytes\nhub:\n  enabled: true\n  stories: [stories/a.yaml]\n',
    );
    const config = resolveNodeConfig(await readNodeConfigFile(yamlFile));
    assert.equal(config.name, 'n1');
    assert.deepEqual(config.hub.stories, [path.join(dir, 'stories/a.yaml')]);
    const jsonFile = path.join(dir, 'node.json');
    await writeFile(jsonFile, JSON.stringify({ ...secret, name: 'n2' }));
    assert.equal(resolveNodeConfig(await readNodeConfigFile(jsonFile)).name, 'n2');
  });

  test('a file that is missing, too large, not YAML, or not a mapping is refused as `config`', async () => {
    const bad = path.join(dir, 'bad.yaml');
    await writeFile(bad, 'name: [unclosed\n');
    const list = path.join(dir, 'list.yaml');
    await writeFile(list, '- a\n- b\n');
    const big = path.join(dir, 'big.yaml');
    await writeFile(big, `# ${'x'.repeat(MAX_CONFIG_FILE_BYTES)}\n`);
    for (const file of [path.join(dir, 'missing.yaml'), bad, list, big, dir]) {
      await assert.rejects(readNodeConfigFile(file), refusedAt('config'), file);
    }
  });

  test('a file with an unknown key is refused with the key named', async () => {
    const file = path.join(dir, 'typo.yaml');
    await writeFile(file, 'mirror:\n  orgin: https://registry-1.docker.io\n');
    await assert.rejects(readNodeConfigFile(file), refusedAt('mirror.orgin'));
  });
});
