// The NATS sinks against the NATS server on this machine (WEFT_TEST_NATS_URL; skipped with the
// reason where it is absent, a failure where WEFT_REQUIRE_SERVICES=1). Each test makes a stream of
// its own, on subjects of its own, and deletes it afterwards.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test, type TestContext } from 'node:test';

import { connect, type JetStreamManager, type NatsConnection, type StoredMsg } from 'nats';

import { FakeClock } from '../../src/internal/fake-clock.ts';
import { JetStreamSink } from '../../src/runtime/egress/jetstream-sink.ts';
import { KafkaRecordSink, KinesisRecordSink } from '../../src/runtime/egress/mapped-record-sink.ts';
import { NatsCoreSink } from '../../src/runtime/egress/nats-core-sink.ts';
import { OutboxDrainer } from '../../src/runtime/egress/outbox-drainer.ts';
import { MemoryStateStore } from '../../src/runtime/store/memory-store.ts';
import type { OutboxRecord, StoredValue } from '../../src/runtime/store/state-store.ts';
import { kafkaEgressMessage, kinesisEgressMessage } from '../../src/statefun/index.ts';
import { natsService, serviceGate } from '../../src/testing/index.ts';
import { RecordingLogger } from '../grid/recording-logger.ts';

const gate = await serviceGate(natsService);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const unique = (): string => randomBytes(6).toString('hex');

function outboxRecord(
  seq: number,
  value: StoredValue,
  egress: readonly [string, string] = ['shop', 'out'],
): OutboxRecord {
  return { seq, egress, value };
}

const text = (body: string): StoredValue => ({ typename: 'shop/Receipt', value: encoder.encode(body) });

if (gate.skip !== false) {
  test('NATS egress sinks', { skip: gate.skip }, () => undefined);
} else {
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  before(async () => {
    nc = await connect({ servers: gate.url });
    jsm = await nc.jetstreamManager();
  });
  after(() => nc.close());

  /** A stream capturing `subjects`, deleted after the test. */
  const streamFor = async (t: TestContext, subjects: string[]): Promise<string> => {
    const name = `weft_egress_${unique()}`;
    await jsm.streams.add({ name, subjects });
    t.after(() => jsm.streams.delete(name));
    return name;
  };

  const messagesOf = async (stream: string): Promise<StoredMsg[]> => {
    const info = await jsm.streams.info(stream);
    const messages: StoredMsg[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      messages.push(await jsm.streams.getMessage(stream, { seq }));
    }
    return messages;
  };

  describe('JetStreamSink', () => {
    test('the same outbox record published twice is one stream message', async (t) => {
      const subject = `weft.test.${unique()}`;
      const stream = await streamFor(t, [subject]);
      const sink = new JetStreamSink({ connection: nc, subject });
      const record = outboxRecord(41, text('receipt 1'));
      await sink.deliver([record]);
      await sink.deliver([record]);
      assert.deepEqual(sink.stats(), { stored: 1, duplicates: 1 });
      const messages = await messagesOf(stream);
      assert.equal(messages.length, 1);
      const [message] = messages;
      assert.ok(message);
      assert.equal(decoder.decode(message.data), 'receipt 1');
      assert.equal(message.header.get('Weft-Type'), 'shop/Receipt');
      assert.equal(message.header.get('Nats-Msg-Id'), 'weft-outbox-41');
    });

    test('a redelivery by the drainer after a crash is dropped by the stream', async (t) => {
      const subject = `weft.test.${unique()}`;
      const stream = await streamFor(t, [subject]);
      const store = new MemoryStateStore();
      await store.commit(
        [{ address: ['shop', 'cart', 'c1'], egress: [{ egress: ['shop', 'receipts'], value: text('r1') }] }],
        0,
      );
      const [committed] = await store.outbox(1);
      assert.ok(committed);
      // The record went out once before a crash that lost the acknowledgement.
      await new JetStreamSink({ connection: nc, subject }).deliver([committed]);

      const sink = new JetStreamSink({ connection: nc, subject });
      const drainer = new OutboxDrainer({
        store,
        clock: new FakeClock(),
        routes: new Map([['shop/receipts', sink]]),
        logger: new RecordingLogger(),
      });
      drainer.wake();
      await drainer.drained();
      await drainer.close();
      assert.deepEqual(sink.stats(), { stored: 0, duplicates: 1 });
      assert.equal((await messagesOf(stream)).length, 1);
      assert.deepEqual(await store.outbox(10), []);
    });

    test('a subject no stream captures fails the delivery, naming the subject', async () => {
      const subject = `weft.nostream.${unique()}`;
      const sink = new JetStreamSink({ connection: nc, subject });
      await assert.rejects(sink.deliver([outboxRecord(1, text('x'))]), {
        code: 'WEFT_EGRESS_DELIVERY_FAILED',
        message: new RegExp(`no JetStream stream captures subject ${subject.replaceAll('.', '\\.')}`),
      });
    });
  });

  describe('KafkaRecordSink and KinesisRecordSink', () => {
    test('a Kafka record goes to kafka.<topic>, its value as the body and its key as a header', async (t) => {
      const topic = `orders-${unique()}`;
      const stream = await streamFor(t, [`kafka.${topic}`]);
      const sink = new KafkaRecordSink({ connection: nc });
      const { typedValue } = kafkaEgressMessage({
        typeName: 'shop/kafka',
        topic,
        key: 'user-7',
        value: 'hello',
      });
      await sink.deliver([outboxRecord(5, typedValue)]);
      const [message, ...rest] = await messagesOf(stream);
      assert.equal(rest.length, 0);
      assert.ok(message);
      assert.equal(message.subject, `kafka.${topic}`);
      assert.equal(decoder.decode(message.data), 'hello');
      assert.equal(message.header.get('Kafka-Key'), 'user-7');
      assert.equal(message.header.get('Nats-Msg-Id'), 'weft-outbox-5');
    });

    test('a key that a header cannot carry as it is travels base64-encoded', async (t) => {
      const topic = `orders-${unique()}`;
      const stream = await streamFor(t, [`kafka.${topic}`]);
      const key = 'line one\r\nInjected: yes';
      const { typedValue } = kafkaEgressMessage({ typeName: 'shop/kafka', topic, key, value: 'v' });
      await new KafkaRecordSink({ connection: nc }).deliver([outboxRecord(6, typedValue)]);
      const [message] = await messagesOf(stream);
      assert.ok(message);
      assert.equal(message.header.get('Kafka-Key-Encoding'), 'base64');
      assert.equal(Buffer.from(message.header.get('Kafka-Key'), 'base64').toString('utf8'), key);
      assert.equal(message.header.has('Injected'), false);
    });

    test('a Kinesis record goes to kinesis.<stream> with its partition and hash keys', async (t) => {
      const kinesisStream = `clicks-${unique()}`;
      const stream = await streamFor(t, [`kinesis.${kinesisStream}`]);
      const { typedValue } = kinesisEgressMessage({
        typeName: 'shop/kinesis',
        stream: kinesisStream,
        partitionKey: 'p-1',
        explicitHashKey: '12345',
        value: 'click',
      });
      await new KinesisRecordSink({ connection: nc }).deliver([outboxRecord(9, typedValue)]);
      const [message] = await messagesOf(stream);
      assert.ok(message);
      assert.equal(message.subject, `kinesis.${kinesisStream}`);
      assert.equal(decoder.decode(message.data), 'click');
      assert.equal(message.header.get('Kinesis-Partition-Key'), 'p-1');
      assert.equal(message.header.get('Kinesis-Explicit-Hash-Key'), '12345');
    });

    test('a malformed record is counted, logged and dropped; the rest of its group is delivered', async (t) => {
      const topic = `orders-${unique()}`;
      const stream = await streamFor(t, [`kafka.${topic}`]);
      const logger = new RecordingLogger();
      const sink = new KafkaRecordSink({ connection: nc, logger });
      const good = kafkaEgressMessage({ typeName: 'shop/kafka', topic, value: 'ok' }).typedValue;
      await sink.deliver([
        outboxRecord(1, { typename: KafkaRecordSink.typename, value: new Uint8Array([0x0a, 0xff]) }),
        outboxRecord(2, good),
        outboxRecord(3, text('not a Kafka record at all')),
      ]);
      assert.deepEqual(sink.stats(), { stored: 1, duplicates: 0, malformed: 2 });
      assert.equal((await messagesOf(stream)).length, 1);
      const discarded = logger.lines.filter((line) => line.level === 'error');
      assert.deepEqual(
        discarded.map((line) => line.details?.['seq']),
        [1, 3],
      );
      assert.match(discarded[0]?.message ?? '', /discarding malformed kafka egress record 1/);
    });

    test('a custom subjectFor that throws fails the delivery instead of dropping the record', async () => {
      const sink = new KafkaRecordSink({
        connection: nc,
        subjectFor: () => {
          throw new Error('no mapping');
        },
      });
      const { typedValue } = kafkaEgressMessage({ typeName: 'shop/kafka', topic: 't', value: 'v' });
      await assert.rejects(sink.deliver([outboxRecord(1, typedValue)]), {
        code: 'WEFT_EGRESS_DELIVERY_FAILED',
      });
      assert.equal(sink.stats().malformed, 0);
    });
  });

  describe('NatsCoreSink', () => {
    test('publishes each record to its subject and resolves after the server has them', async () => {
      const subject = `weft.core.${unique()}`;
      const subscription = nc.subscribe(subject, { max: 2 });
      const received: string[] = [];
      const done = (async () => {
        for await (const message of subscription) {
          received.push(`${decoder.decode(message.data)} ${message.headers?.get('Weft-Type') ?? ''}`);
        }
      })();
      const sink = new NatsCoreSink({ connection: nc, subject });
      await sink.deliver([outboxRecord(1, text('a')), outboxRecord(2, text('b'))]);
      await done;
      assert.deepEqual(received, ['a shop/Receipt', 'b shop/Receipt']);
      assert.deepEqual(sink.stats(), { published: 2 });
    });
  });
}
