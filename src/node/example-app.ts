// The example application `weft dev` deploys: a stateful function that counts what each address
// is sent, a view over its state (`functions`), and, on a node that runs the hub, a story that
// carries every count through the hub from a producer step to a consumer step.
//
//   weft send example/counter/ada '"hello"'
//   curl -X POST http://127.0.0.1:7400/v1/ingress/example/counter/ada \
//        -H 'Weft-Message-Type: weft/json' -d '"hello"'

import { HubConnector, validateStory, type Story } from '../hub/index.ts';
import { InProcessSink, type EgressSink } from '../runtime/index.ts';
import { egressMessage, intType, jsonType, StatefulFunctions, valueSpec } from '../statefun/index.ts';
import { type EventPublisher, type MapChange, putEvent } from '../views/index.ts';
import type { NodeLogger } from './logger.ts';

export const COUNTER_TYPE = 'example/counter';
export const COUNTS_EGRESS = 'example/counts';
/** The message type `weft send` uses by default: the body is JSON text. */
export const JSON_MESSAGE_TYPE = 'weft/json';
export const FUNCTIONS_TOPIC = 'functions';
export const COUNTS_STORY = 'counts';
const STORY_NAMESPACE = 'example';
const STORY_RUN = 'dev';
const MAX_SHOWN_CHARS = 256;

/** One address's entry in the `functions` view. */
export interface FunctionEntry {
  readonly type: string;
  readonly id: string;
  readonly state: unknown;
  readonly messages: number;
  readonly updatedAt: number;
}

interface CountRecord {
  readonly id: string;
  readonly count: number;
  readonly last: unknown;
}

const jsonMessage = jsonType<unknown>(JSON_MESSAGE_TYPE);
const countRecord = jsonType<CountRecord>('example/count-record');
const count = valueSpec({ name: 'count', type: intType });
const last = valueSpec({ name: 'last', type: jsonType<unknown>('example/last') });

export function exampleFunctions(): StatefulFunctions {
  return new StatefulFunctions().withSpec({
    typeName: COUNTER_TYPE,
    specs: [count, last],
    fn(context, message) {
      const value = message.is(jsonMessage) ? message.as(jsonMessage) : message.asString();
      const next = (context.storage.get(count) ?? 0) + 1;
      context.storage.set(count, next);
      context.storage.set(last, value);
      context.sendEgress(
        egressMessage({
          typeName: COUNTS_EGRESS,
          value: { id: context.self.id, count: next, last: value },
          valueType: countRecord,
        }),
      );
    },
  });
}

/** The story the example sends counts through: `counts` → `audit`, at least once. */
export function exampleStory(): Story {
  return validateStory({
    apiVersion: 'weft.dev/v1',
    kind: 'Story',
    metadata: { name: COUNTS_STORY, namespace: STORY_NAMESPACE },
    spec: {
      defaults: { delivery: { mode: 'at_least_once' } },
      steps: [{ id: 'counts' }, { id: 'audit', needs: ['counts'] }],
    },
  });
}

/** Publishes the `functions` topic (a map keyed by `<type>/<id>`); bounded by the addresses it saw. */
export class FunctionsTopic {
  readonly #publisher: EventPublisher;
  readonly #entries = new Map<string, FunctionEntry>();
  readonly #maxEntries: number;
  #dropped = 0;

  constructor(publisher: EventPublisher, maxEntries = 100_000) {
    this.#publisher = publisher;
    this.#maxEntries = maxEntries;
    publisher.registerTopic<MapChange<FunctionEntry>>(FUNCTIONS_TOPIC, {
      snapshot: () => ({
        index: publisher.index(FUNCTIONS_TOPIC),
        events: [...this.#entries].map(([key, entry]) => putEvent(key, entry)),
      }),
    });
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Entries not shown because the topic held `maxEntries`. */
  get dropped(): number {
    return this.#dropped;
  }

  put(entry: FunctionEntry): void {
    const key = `${entry.type}/${entry.id}`;
    if (!this.#entries.has(key) && this.#entries.size >= this.#maxEntries) {
      this.#dropped++;
      return;
    }
    this.#entries.set(key, entry);
    this.#publisher.publish(FUNCTIONS_TOPIC, [putEvent(key, entry)]);
  }
}

/**
 * The egress of the example: each count updates the `functions` view and, when a hub runs on
 * this node, goes into the `counts` story; the `audit` step acknowledges what it receives.
 */
export class ExampleApp {
  readonly #functions: FunctionsTopic;
  readonly #logger: NodeLogger;
  #producer: HubConnector | undefined;
  #consumer: HubConnector | undefined;
  #audited = 0;

  constructor(functions: FunctionsTopic, logger: NodeLogger) {
    this.#functions = functions;
    this.#logger = logger;
  }

  get audited(): number {
    return this.#audited;
  }

  egress(): Record<string, EgressSink> {
    return {
      [COUNTS_EGRESS]: new InProcessSink((record) => {
        const counted = countRecord.deserialize(record.value.value);
        this.#functions.put({
          type: COUNTER_TYPE,
          id: counted.id,
          state: { count: counted.count, last: shortened(counted.last) },
          messages: counted.count,
          updatedAt: Date.now(),
        });
        // The hub holds what it accepted; a send that fails is logged, the count is in the view.
        this.#producer
          ?.send({ payload: { id: counted.id, count: counted.count } }, { partition: counted.id })
          .catch((error: unknown) => {
            this.#logger.warn({ error: (error as Error).message }, 'example: a count did not reach the hub');
          });
      }),
    };
  }

  /** Connects the story's two steps to the hub on this node. */
  async connectHub(address: string): Promise<void> {
    const run = { address, namespace: STORY_NAMESPACE, run: STORY_RUN, story: COUNTS_STORY, generation: 1 };
    this.#consumer = await HubConnector.connect({ ...run, step: 'audit' });
    this.#producer = await HubConnector.connect({ ...run, step: 'counts' });
    const consumer = this.#consumer;
    void (async () => {
      try {
        for await (const delivery of consumer.received()) {
          this.#audited++;
          delivery.ack();
        }
      } catch (error) {
        this.#logger.warn({ error: (error as Error).message }, 'example: the audit step stopped');
      }
    })();
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.#producer?.close(), this.#consumer?.close()]);
  }
}

/** The last message as the view shows it: at most 256 characters of its JSON (a view is sent whole). */
function shortened(value: unknown): unknown {
  const text = JSON.stringify(value);
  return text.length <= MAX_SHOWN_CHARS ? value : `${text.slice(0, MAX_SHOWN_CHARS)}…`;
}
