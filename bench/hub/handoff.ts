// The handoff gap: a producer sends as fast as the hub takes packets to a consumer (generation
// 1) that acks each; once it is flowing, a consumer of generation 2 connects for the same step
// (blue-green: the hub cuts over to it at once and replays what generation 1 left unacked). One
// sample is the longest pause between two deliveries at the consumer side, either generation,
// from the last delivery before the cutover until generation 2 has carried `afterCutover`
// packets. Nothing may be lost: the sample fails unless every packet sent arrived.

import type { Delivery, HubConnector } from '../../src/hub/connector/index.ts';
import { connectorOptions, packetOf, payloadOfPacket } from './connector-pair.ts';
import type { HubModule } from './load-hub.ts';
import { consumerStep, Countdown, indexOf, producerStep } from './workload.ts';

const beforeCutover = 2_000;
const afterCutover = 4_000;
/** Sends in flight at once from the producer loop (its outbox holds up to 1000 unacked). */
const sendChunk = 64;

export async function measureHandoffGap(hub: HubModule, address: string, run: string): Promise<number> {
  const deliveredAt: number[] = [];
  const seen = new Set<number>();
  const onDelivery = (delivery: Delivery, counter: Countdown): void => {
    deliveredAt.push(performance.now());
    seen.add(indexOf(payloadOfPacket(delivery.packet)));
    delivery.ack();
    counter.add();
  };
  const read = async (consumer: HubConnector, counter: Countdown): Promise<void> => {
    for await (const delivery of consumer.received()) onDelivery(delivery, counter);
  };

  const blueCount = new Countdown();
  const greenCount = new Countdown();
  const blue = await hub.HubConnector.connect(connectorOptions(address, run, 'at_least_once', consumerStep));
  // Generation 1 is ended by the cutover (it is superseded): its reader ends with that refusal.
  const blueReading = read(blue, blueCount).catch(() => undefined);
  const producer = await hub.HubConnector.connect(
    connectorOptions(address, run, 'at_least_once', producerStep),
  );
  let sent = 0;
  // Read through a function so the loop sees the `finally` below clear it.
  let producing = true;
  const stillProducing = (): boolean => producing;
  const producing$ = (async () => {
    while (stillProducing()) {
      const sends: Promise<unknown>[] = [];
      for (let i = 0; i < sendChunk; i++) sends.push(producer.send(packetOf(sent++)));
      await Promise.all(sends);
    }
  })();
  let green: HubConnector | undefined;
  let greenReading: Promise<void> = Promise.resolve();
  try {
    await blueCount.reach(beforeCutover, 'handoff: generation 1');
    const cutoverFrom = deliveredAt.length - 1;
    green = await hub.HubConnector.connect({
      ...connectorOptions(address, run, 'at_least_once', consumerStep),
      generation: 2,
    });
    greenReading = read(green, greenCount);
    await greenCount.reach(afterCutover, 'handoff: generation 2');
    const until = deliveredAt.length;
    producing = false;
    await producing$;
    await producer.drained();
    for (let i = 0; i < sent; i++) {
      if (!seen.has(i)) throw new Error(`handoff lost packet ${i} of ${sent}`);
    }
    let longest = 0;
    for (let i = cutoverFrom + 1; i < until; i++) {
      longest = Math.max(longest, (deliveredAt[i] ?? 0) - (deliveredAt[i - 1] ?? 0));
    }
    return longest;
  } finally {
    producing = false;
    await producing$.catch(() => undefined);
    await Promise.all([producer.close(), blue.close(), green?.close()]);
    await Promise.all([blueReading, greenReading]);
  }
}
