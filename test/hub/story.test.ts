import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  InvalidStreamKeyError,
  StoryLoadError,
  StoryValidationError,
  UnknownStepError,
  isStreamKey,
  loadStory,
  maxListedProblems,
  maxStoryBytes,
  parseStory,
  parseStreamKey,
  streamKey,
  validateStory,
  type StoryProblem,
} from '../../src/hub/story/index.ts';
import { streamOptionsOf } from '../../src/hub/step-options.ts';

const example = `
apiVersion: weft.dev/v1
kind: Story
metadata: { name: transcribe, namespace: media }
spec:
  defaults: { buffer: { maxMessages: 100 }, delivery: { mode: at_least_once } }
  steps:
    - id: ingest
    - id: transcribe
      needs: [ingest]
      policy: { buffer: { maxMessages: 500, dropPolicy: drop_oldest } }
    - id: publish
      needs: [transcribe]
`;

/** A story document with the given steps (and optional defaults), as plain data. */
function storyWith(steps: unknown[], defaults?: unknown): Record<string, unknown> {
  return {
    apiVersion: 'weft.dev/v1',
    kind: 'Story',
    metadata: { name: 'demo' },
    spec: defaults === undefined ? { steps } : { defaults, steps },
  };
}

/** The problems a refused story reports; fails the test if it was accepted. */
function problemsOf(run: () => unknown): readonly StoryProblem[] {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof StoryValidationError, `expected StoryValidationError, got ${String(error)}`);
    assert.equal(error.code, 'WEFT_HUB_INVALID_STORY');
    return error.problems;
  }
  assert.fail('story was accepted');
}

function lines(problems: readonly StoryProblem[]): string[] {
  return problems.map((p) => (p.path === '' ? p.message : `${p.path}: ${p.message}`));
}

describe('story: parsing and the DAG', () => {
  test('the example YAML story resolves to a DAG with merged per-step policies', () => {
    const story = parseStory(example);
    assert.equal(story.name, 'transcribe');
    assert.equal(story.namespace, 'media');
    assert.deepEqual(story.order, ['ingest', 'transcribe', 'publish']);
    assert.deepEqual(story.roots, ['ingest']);
    assert.deepEqual(story.sinks, ['publish']);
    assert.deepEqual(story.downstreamOf('ingest'), ['transcribe']);
    assert.deepEqual(story.upstreamOf('publish'), ['transcribe']);
    assert.deepEqual(
      story.edges.map((e) => `${e.from}->${e.to}`),
      ['ingest->transcribe', 'transcribe->publish'],
    );

    const transcribe = story.policyOf('transcribe');
    assert.equal(transcribe.buffer.maxMessages, 500);
    assert.equal(transcribe.buffer.dropPolicy, 'drop_oldest');
    assert.equal(transcribe.buffer.maxBytes, 10 * 1024 * 1024);
    // The story default reaches every step; at_least_once implies per_stream ordering.
    assert.equal(transcribe.delivery.mode, 'at_least_once');
    assert.equal(transcribe.delivery.ordering, 'per_stream');
    assert.equal(story.policyOf('publish').buffer.maxMessages, 100);
    assert.equal(story.policyOf('publish').buffer.dropPolicy, 'drop_newest');
  });

  test('steps with no policy anywhere get the built-in defaults', () => {
    const p = validateStory(storyWith([{ id: 'only' }])).policyOf('only');
    assert.deepEqual(p.buffer, {
      maxMessages: 100,
      maxBytes: 10 * 1024 * 1024,
      dropPolicy: 'drop_newest',
      maxAgeMs: 0,
      lanes: {},
    });
    assert.deepEqual(p.retry, { maxRetries: 3, delayMs: 1000, backoff: 'exponential', maxDelayMs: 30_000 });
    assert.deepEqual(p.delivery, { mode: 'none', ordering: 'none', replay: 'none', maxInFlight: 1000 });
    assert.deepEqual(p.flow, {
      mode: 'none',
      initialCredits: { messages: 100, bytes: 10 * 1024 * 1024 },
      window: 100,
      pausePct: 0,
      resumePct: 0,
    });
    assert.deepEqual(p.drain, { enabled: false, timeoutMs: 30_000 });
    assert.deepEqual(p.offload, { thresholdBytes: 1024 * 1024, policy: 'reference' });
    assert.deepEqual(p.heartbeat, { enabled: true, intervalMs: 10_000 });
    assert.equal(validateStory(storyWith([{ id: 'only' }])).namespace, 'default');
  });

  test("a step's heartbeat policy reaches its stream's options", () => {
    const story = validateStory(
      storyWith([
        { id: 'a', policy: { heartbeat: { intervalMs: 30_000 } } },
        { id: 'b', policy: { heartbeat: { enabled: false } } },
      ]),
    );
    const [a, b] = story.steps.map((step) => streamOptionsOf(step.policy));
    assert.deepEqual([a?.heartbeat, a?.heartbeatIntervalMs, b?.heartbeat], [true, 30_000, false]);
  });

  test('the same story in JSON resolves identically to YAML', () => {
    const json = JSON.stringify({
      apiVersion: 'weft.dev/v1',
      kind: 'Story',
      metadata: { name: 'transcribe', namespace: 'media' },
      spec: {
        defaults: { buffer: { maxMessages: 100 }, delivery: { mode: 'at_least_once' } },
        steps: [
          { id: 'ingest' },
          {
            id: 'transcribe',
            needs: ['ingest'],
            policy: { buffer: { maxMessages: 500, dropPolicy: 'drop_oldest' } },
          },
          { id: 'publish', needs: ['transcribe'] },
        ],
      },
    });
    const fromJson = parseStory(json);
    const fromYaml = parseStory(example);
    assert.deepEqual(fromJson.steps, fromYaml.steps);
    assert.deepEqual(parseStory(json, { format: 'json' }).order, fromYaml.order);
  });

  test('a diamond orders every step after all it needs, ties in document order', () => {
    const story = validateStory(
      storyWith([
        { id: 'sink', needs: ['left', 'right'] },
        { id: 'right', needs: ['src'] },
        { id: 'left', needs: ['src'] },
        { id: 'src' },
        { id: 'side' },
      ]),
    );
    assert.deepEqual(story.order, ['src', 'side', 'right', 'left', 'sink']);
    assert.deepEqual(story.roots, ['src', 'side']);
    assert.deepEqual(story.sinks, ['sink', 'side']);
    assert.deepEqual(story.downstreamOf('src'), ['right', 'left']);
    assert.deepEqual(story.upstreamOf('sink'), ['left', 'right']);
  });

  test('a story and everything in it is frozen', () => {
    const story = parseStory(example);
    assert.ok(Object.isFrozen(story));
    assert.ok(Object.isFrozen(story.steps));
    assert.ok(Object.isFrozen(story.steps[1]));
    assert.ok(Object.isFrozen(story.policyOf('transcribe').buffer));
    assert.ok(Object.isFrozen(story.downstreamOf('ingest')));
    assert.throws(() => {
      (story.policyOf('transcribe').buffer as { maxMessages: number }).maxMessages = 1;
    }, TypeError);
  });

  test('asking for a step the story does not have throws UnknownStepError', () => {
    const story = parseStory(example);
    assert.equal(story.hasStep('nope'), false);
    for (const call of [
      () => story.downstreamOf('nope'),
      () => story.upstreamOf('nope'),
      () => story.policyOf('nope'),
    ]) {
      assert.throws(
        call,
        (e: unknown) =>
          e instanceof UnknownStepError && e.code === 'WEFT_HUB_UNKNOWN_STEP' && e.stepId === 'nope',
      );
    }
    assert.throws(() => story.edgePolicy('ingest', 'publish'), /no edge from ingest to publish/);
  });
});

describe('story: policy merging', () => {
  test('story defaults ← step policy ← edge policy, field by field', () => {
    const story = validateStory(
      storyWith(
        [
          { id: 'audio' },
          { id: 'video' },
          {
            id: 'mix',
            needs: [
              'audio',
              { step: 'video', policy: { buffer: { maxBytes: 2048, lanes: { video: { maxBytes: 1024 } } } } },
            ],
            policy: {
              buffer: { maxMessages: 10, lanes: { video: { maxMessages: 5 } } },
              retry: { backoff: 'linear' },
            },
          },
        ],
        { buffer: { maxAgeMs: 5000, lanes: { audio: { maxMessages: 7 } } }, retry: { maxRetries: 9 } },
      ),
    );
    const step = story.policyOf('mix');
    assert.equal(step.buffer.maxMessages, 10);
    assert.equal(step.buffer.maxAgeMs, 5000);
    assert.deepEqual(step.buffer.lanes, {
      audio: { maxMessages: 7, maxBytes: undefined },
      video: { maxMessages: 5, maxBytes: undefined },
    });
    assert.equal(step.retry.maxRetries, 9);
    assert.equal(step.retry.backoff, 'linear');

    assert.equal(story.edgePolicy('audio', 'mix'), step);
    const edge = story.edgePolicy('video', 'mix');
    assert.equal(edge.buffer.maxBytes, 2048);
    assert.equal(edge.buffer.maxMessages, 10);
    assert.deepEqual(edge.buffer.lanes.video, { maxMessages: 5, maxBytes: 1024 });
    assert.equal(edge.retry.maxRetries, 9);
    assert.deepEqual(story.upstreamOf('mix'), ['audio', 'video']);
  });

  test('derived values follow the step’s own merged buffer, not the story defaults', () => {
    const story = validateStory(
      storyWith(
        [
          {
            id: 'a',
            policy: { buffer: { maxMessages: 40, maxBytes: 4096 }, flow: { mode: 'credits', pausePct: 80 } },
          },
        ],
        {
          buffer: { maxMessages: 1000 },
        },
      ),
    );
    const flow = story.policyOf('a').flow;
    assert.deepEqual(flow.initialCredits, { messages: 40, bytes: 4096 });
    assert.equal(flow.window, 40);
    assert.equal(flow.resumePct, 40);
    assert.equal(story.defaults.flow.initialCredits.messages, 1000);
  });

  test('replay of unacked packets forces at_least_once delivery with per-stream ordering', () => {
    const p = validateStory(storyWith([{ id: 'a', policy: { delivery: { replay: 'unacked' } } }])).policyOf(
      'a',
    );
    assert.equal(p.delivery.mode, 'at_least_once');
    assert.equal(p.delivery.ordering, 'per_stream');
    const partitioned = validateStory(
      storyWith([{ id: 'a', policy: { delivery: { mode: 'at_least_once', ordering: 'per_partition' } } }]),
    ).policyOf('a');
    assert.equal(partitioned.delivery.ordering, 'per_partition');
  });

  test('a long retry delay raises the default delay cap instead of contradicting it', () => {
    const p = validateStory(storyWith([{ id: 'a', policy: { retry: { delayMs: 60_000 } } }])).policyOf('a');
    assert.equal(p.retry.maxDelayMs, 60_000);
  });

  test('contradictions that appear only once layers merge are refused at the step', () => {
    const problems = problemsOf(() =>
      validateStory(
        storyWith(
          [
            { id: 'a', policy: { flow: { pausePct: 50 } } },
            { id: 'b', policy: { retry: { maxDelayMs: 500 } } },
          ],
          { flow: { resumePct: 60 }, retry: { delayMs: 1000 } },
        ),
      ),
    );
    assert.deepEqual(lines(problems), [
      'spec.defaults.flow.resumePct: has no effect without pausePct; set pausePct too',
      'spec.steps[0] (a).policy.flow.resumePct: must be below pausePct (50) once merged, got 60',
      'spec.steps[1] (b).policy.retry.maxDelayMs: must be at least delayMs (1000) once merged, got 500',
      'spec.steps[1] (b).policy.flow.resumePct: has no effect without pausePct; set pausePct too',
    ]);
  });
});

describe('story: validation problems', () => {
  test('a bad policy value is named by step id and field path', () => {
    const story = storyWith([
      { id: 'ingest' },
      { id: 'split' },
      { id: 'transcribe', policy: { buffer: { maxMessages: -1 } } },
    ]);
    const problems = problemsOf(() => validateStory(story));
    assert.deepEqual(lines(problems), [
      'spec.steps[2] (transcribe).policy.buffer.maxMessages: must be a positive integer, got -1',
    ]);
    assert.equal(problems[0]?.stepId, 'transcribe');
  });

  test('every kind of bad value is reported, all at once', () => {
    const problems = problemsOf(() =>
      validateStory(
        storyWith([
          {
            id: 'a',
            policy: {
              buffer: { maxBytes: 1.5, dropPolicy: 'drop_all', lanes: { subtitles: { maxMessages: 1 } } },
              retry: { maxRetries: 1001, backoff: 'random' },
              delivery: { maxInFlight: '10' },
              flow: { pausePct: 120 },
              drain: { enabled: 'yes' },
              heartbeat: { intervalMs: 5 },
            },
          },
        ]),
      ),
    );
    assert.deepEqual(lines(problems), [
      'spec.steps[0] (a).policy.buffer.maxBytes: must be a positive integer, got 1.5',
      'spec.steps[0] (a).policy.buffer.dropPolicy: must be one of drop_newest, drop_oldest, got "drop_all"',
      'spec.steps[0] (a).policy.buffer.lanes.subtitles: unknown key (expected one of: audio, video, binary, payload)',
      'spec.steps[0] (a).policy.retry.maxRetries: must be at most 1000, got 1001',
      'spec.steps[0] (a).policy.retry.backoff: must be one of exponential, linear, constant, got "random"',
      'spec.steps[0] (a).policy.delivery.maxInFlight: must be a positive integer, got "10"',
      'spec.steps[0] (a).policy.flow.pausePct: must be a number from 0 to 100, got 120',
      'spec.steps[0] (a).policy.drain.enabled: must be true or false, got "yes"',
      'spec.steps[0] (a).policy.heartbeat.intervalMs: must be an integer ≥ 100, got 5',
    ]);
  });

  test('unknown fields are refused everywhere, with a guess at the intended name', () => {
    const doc = storyWith([{ id: 'a', neds: ['b'], policy: { bufer: {}, retry: { maxRetry: 2 } } }], {
      buffer: { maxMessage: 5 },
    });
    doc['extra'] = true;
    (doc['metadata'] as Record<string, unknown>)['nmespace'] = 'x';
    const problems = problemsOf(() => validateStory(doc));
    assert.deepEqual(lines(problems), [
      'extra: unknown field (expected one of: apiVersion, kind, metadata, spec)',
      'metadata.nmespace: unknown field (did you mean namespace?)',
      'spec.defaults.buffer.maxMessage: unknown field (did you mean maxMessages?)',
      'spec.steps[0] (a).neds: unknown field (did you mean needs?)',
      'spec.steps[0] (a).policy.bufer: unknown field (did you mean buffer?)',
      'spec.steps[0] (a).policy.retry.maxRetry: unknown field (did you mean maxRetries?)',
    ]);
  });

  test('a cycle is refused and named in the direction packets flow', () => {
    const problems = problemsOf(() =>
      validateStory(
        storyWith([
          { id: 'src' },
          { id: 'a', needs: ['src', 'c'] },
          { id: 'b', needs: ['a'] },
          { id: 'c', needs: ['b'] },
        ]),
      ),
    );
    assert.deepEqual(lines(problems), ['spec.steps[1] (a).needs: steps form a cycle: a → b → c → a']);
  });

  test('unknown, self and duplicate needs and duplicate step ids are refused', () => {
    const problems = problemsOf(() =>
      validateStory(
        storyWith([
          { id: 'a' },
          { id: 'b', needs: ['a', 'a', 'ghost', 'b'] },
          { id: 'a' },
          { id: 'c', needs: [{ step: 'Bad_Id' }, 42] },
        ]),
      ),
    );
    assert.deepEqual(lines(problems), [
      'spec.steps[1] (b).needs[1]: duplicate need "a"',
      'spec.steps[2] (a).id: duplicate step id, also spec.steps[0]',
      'spec.steps[3] (c).needs[0].step: must name a step: must be lowercase letters, digits and \'-\', starting and ending with a letter or digit, got "Bad_Id"',
      'spec.steps[3] (c).needs[1]: must name a step: must be a string, got 42',
      'spec.steps[1] (b).needs[2]: unknown step "ghost"',
      'spec.steps[1] (b).needs[3]: a step cannot need itself',
    ]);
  });

  test('document-level mistakes are reported with their paths', () => {
    assert.deepEqual(lines(problemsOf(() => validateStory([]))), ['a story must be an object, got a list']);
    assert.deepEqual(
      lines(
        problemsOf(() =>
          validateStory({ apiVersion: 'v2', kind: 'Pipeline', metadata: { name: 'X' }, spec: { steps: [] } }),
        ),
      ),
      [
        'apiVersion: must be weft.dev/v1, got "v2"',
        'kind: must be Story, got "Pipeline"',
        'metadata.name: must be lowercase letters, digits and \'-\', starting and ending with a letter or digit, got "X"',
        'spec.steps: must list at least one step',
      ],
    );
    assert.deepEqual(lines(problemsOf(() => validateStory(storyWith([{ name: 'a' }])))), [
      'spec.steps[0].id: must be a string, got nothing',
    ]);
  });

  test('too many steps are refused without validating each one', () => {
    const steps = Array.from({ length: 1001 }, (_, i) => ({ id: `s${i}` }));
    assert.deepEqual(lines(problemsOf(() => validateStory(storyWith(steps)))), [
      'spec.steps: must have at most 1000 steps, got 1001',
    ]);
    const chain = Array.from({ length: 1000 }, (_, i) =>
      i === 0 ? { id: 's0' } : { id: `s${i}`, needs: [`s${i - 1}`] },
    );
    const story = validateStory(storyWith(chain));
    assert.equal(story.order.at(-1), 's999');
  });

  test('the problem list is bounded; the rest are counted', () => {
    const steps = Array.from({ length: 300 }, (_, i) => ({
      id: `s${i}`,
      policy: { buffer: { maxMessages: 0 } },
    }));
    try {
      validateStory(storyWith(steps));
      assert.fail('accepted');
    } catch (error) {
      assert.ok(error instanceof StoryValidationError);
      assert.equal(error.problems.length, maxListedProblems);
      assert.equal(error.omittedProblems, 200);
      assert.match(error.message, /invalid story demo \(300 problems\)/);
      assert.match(error.message, /… and 200 more/);
    }
  });

  test('a labels map with a prototype key is refused, not assigned', () => {
    const doc = JSON.parse(
      '{"apiVersion":"weft.dev/v1","kind":"Story","metadata":{"name":"a","labels":{"__proto__":{"x":1},"team":"media"}},"spec":{"steps":[{"id":"a","__proto__":{}}]}}',
    ) as unknown;
    const problems = lines(problemsOf(() => validateStory(doc)));
    assert.ok(
      problems.some((p) => p.startsWith('metadata.labels: label key "__proto__"')),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => p.startsWith('spec.steps[0] (a).__proto__: unknown field')),
      problems.join('\n'),
    );
  });
});

describe('story: hostile text', () => {
  test('a YAML alias bomb is refused cleanly', () => {
    let text = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n';
    let previous = 'a';
    for (const name of 'bcdefghi') {
      text += `${name}: &${name} [${Array(9).fill(`*${previous}`).join(',')}]\n`;
      previous = name;
    }
    assert.match(lines(problemsOf(() => parseStory(text)))[0] ?? '', /^not a usable YAML story: .*alias/i);
  });

  test('a few aliases sharing a policy block are fine', () => {
    const text = `
apiVersion: weft.dev/v1
kind: Story
metadata: { name: shared }
spec:
  steps:
    - id: a
      policy: &fast { buffer: { maxMessages: 7 } }
    - id: b
      needs: [a]
      policy: *fast
`;
    assert.equal(parseStory(text).policyOf('b').buffer.maxMessages, 7);
  });

  test('text over 1 MiB is refused before parsing', () => {
    const huge = `# ${'x'.repeat(maxStoryBytes)}\n`;
    assert.match(lines(problemsOf(() => parseStory(huge)))[0] ?? '', /larger than the limit of 1048576/);
    // Multi-byte characters count as bytes, not as characters.
    const wide = `# ${'é'.repeat(maxStoryBytes / 2)}`;
    assert.match(lines(problemsOf(() => parseStory(wide)))[0] ?? '', /larger than the limit/);
  });

  test('absurdly deep nesting is refused cleanly in both formats', () => {
    const depth = 200_000;
    assert.ok(
      problemsOf(() => parseStory('['.repeat(depth) + ']'.repeat(depth), { format: 'json' })).length > 0,
    );
    assert.ok(
      problemsOf(() => parseStory('['.repeat(depth) + ']'.repeat(depth), { format: 'yaml' })).length > 0,
    );
    const deepPolicy = `{"apiVersion":"weft.dev/v1","kind":"Story","metadata":{"name":"a"},"spec":{"steps":[{"id":"a","policy":{"buffer":${'['.repeat(5000)}${']'.repeat(5000)}}}]}}`;
    assert.deepEqual(lines(problemsOf(() => parseStory(deepPolicy))), [
      'spec.steps[0] (a).policy.buffer: must be an object, got a list',
    ]);
  });

  test('YAML tags, merge keys, duplicate keys and extra documents are refused', () => {
    const base =
      'apiVersion: weft.dev/v1\nkind: Story\nmetadata: { name: a }\nspec: { steps: [ { id: a } ] }\n';
    assert.equal(parseStory(base).name, 'a');
    assert.match(
      lines(problemsOf(() => parseStory(base.replace('name: a', 'name: !!binary YQ=='))))[0] ?? '',
      /tags are not allowed/,
    );
    assert.match(
      lines(problemsOf(() => parseStory(base.replace('name: a', 'name: !custom a'))))[0] ?? '',
      /not valid YAML|tags are not allowed/,
    );
    assert.match(
      lines(problemsOf(() => parseStory(`${base}kind: Story\n`)))[0] ?? '',
      /not valid YAML: Map keys must be unique/,
    );
    assert.match(lines(problemsOf(() => parseStory(`${base}---\n${base}`)))[0] ?? '', /multiple documents/);
    const merged = lines(problemsOf(() => parseStory(`${base}x: &x { a: 1 }\n<<: *x\n`)));
    assert.ok(
      merged.some((p) => p.startsWith('"<<": unknown field')),
      merged.join('\n'),
    );
  });

  test('malformed JSON and YAML are refused with the parser’s reason', () => {
    assert.match(lines(problemsOf(() => parseStory('{"apiVersion": ')))[0] ?? '', /^not valid JSON: /);
    assert.match(lines(problemsOf(() => parseStory('a: [1, 2')))[0] ?? '', /^not valid YAML: /);
    assert.deepEqual(lines(problemsOf(() => parseStory(''))), ['a story must be an object, got null']);
  });
});

describe('story: loading files', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'weft-story-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a YAML or JSON file is loaded by its extension', async () => {
    await writeFile(path.join(dir, 'story.yaml'), example);
    assert.equal((await loadStory(path.join(dir, 'story.yaml'))).name, 'transcribe');
    await writeFile(path.join(dir, 'story.json'), JSON.stringify(storyWith([{ id: 'a' }])));
    assert.deepEqual((await loadStory(path.join(dir, 'story.json'))).order, ['a']);
    // A .json file must really be JSON.
    await writeFile(path.join(dir, 'yaml.json'), example);
    await assert.rejects(loadStory(path.join(dir, 'yaml.json')), /not valid JSON/);
  });

  test('a file over 1 MiB is refused without being parsed', async () => {
    const file = path.join(dir, 'big.yaml');
    await writeFile(file, `# ${'x'.repeat(maxStoryBytes)}`);
    await assert.rejects(
      loadStory(file),
      (e: unknown) => e instanceof StoryValidationError && /larger than the limit/.test(e.message),
    );
  });

  test('missing files, directories and invalid UTF-8 fail clearly', async () => {
    await assert.rejects(
      loadStory(path.join(dir, 'absent.yaml')),
      (e: unknown) =>
        e instanceof StoryLoadError && e.code === 'WEFT_HUB_STORY_UNREADABLE' && /ENOENT/.test(e.message),
    );
    await mkdir(path.join(dir, 'sub.yaml'));
    await assert.rejects(loadStory(path.join(dir, 'sub.yaml')), (e: unknown) => e instanceof StoryLoadError);
    await writeFile(path.join(dir, 'bad.yaml'), Buffer.from([0x61, 0x3a, 0x20, 0xff, 0xfe]));
    await assert.rejects(loadStory(path.join(dir, 'bad.yaml')), /not valid UTF-8/);
  });
});

describe('story: stream keys', () => {
  test('a stream key joins namespace, run and step, and parses back', () => {
    const key = streamKey('media', 'run-42', 'transcribe');
    assert.equal(key, 'media/run-42/transcribe');
    assert.deepEqual(parseStreamKey(key), { namespace: 'media', run: 'run-42', step: 'transcribe' });
    assert.ok(isStreamKey(key));
  });

  test('each part must be a bounded DNS label, and the error names the part', () => {
    const bad: [string, string, string, RegExp][] = [
      ['', 'r', 's', /namespace must not be empty/],
      ['ns', 'a/b', 's', /run must be lowercase/],
      ['ns', 'r', 'Step', /step must be lowercase/],
      ['ns', 'r', '-s', /step must be lowercase/],
      ['ns', 'r'.repeat(64), 's', /run must be at most 63 characters, got 64/],
    ];
    for (const [ns, run, step, message] of bad) {
      assert.throws(
        () => streamKey(ns, run, step),
        (e: unknown) =>
          e instanceof InvalidStreamKeyError &&
          e.code === 'WEFT_HUB_INVALID_STREAM_KEY' &&
          message.test(e.message),
      );
    }
  });

  test('malformed keys are refused by parseStreamKey', () => {
    for (const key of ['a/b', 'a/b/c/d', 'a//c', '../b/c', 'a/b/c/', 'x'.repeat(500)]) {
      assert.throws(() => parseStreamKey(key), InvalidStreamKeyError, key);
      assert.equal(isStreamKey(key), false);
    }
    assert.equal(isStreamKey(42), false);
  });
});
