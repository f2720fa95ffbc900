// A story step's resolved policy, as the stream manager's options for that step's stream key.

import type { StepPolicy } from './story/index.ts';
import type { StreamOptions } from './stream-manager.ts';

export function streamOptionsOf(policy: StepPolicy): StreamOptions {
  const { buffer, retry, delivery, flow, drain } = policy;
  return {
    buffer: {
      maxMessages: buffer.maxMessages,
      maxBytes: buffer.maxBytes,
      dropPolicy: buffer.dropPolicy,
      maxAgeMs: buffer.maxAgeMs,
      laneLimits: Object.fromEntries(
        Object.entries(buffer.lanes).map(([lane, limits]) => [
          lane,
          {
            ...(limits.maxMessages === undefined ? {} : { maxMessages: limits.maxMessages }),
            ...(limits.maxBytes === undefined ? {} : { maxBytes: limits.maxBytes }),
          },
        ]),
      ),
      retry: {
        maxRetries: retry.maxRetries,
        delayMs: retry.delayMs,
        backoff: retry.backoff,
        maxDelayMs: retry.maxDelayMs,
      },
    },
    delivery: {
      semantics: delivery.mode === 'at_least_once' ? 'at_least_once' : 'best_effort',
      ordering: delivery.ordering,
      // Unacked packets are held in memory and checkpointed by the hub when it has a store.
      replay: delivery.replay === 'unacked' ? 'memory' : 'none',
      flowMode: flow.mode,
      initialCreditsMessages: flow.mode === 'window' ? flow.window : flow.initialCredits.messages,
      initialCreditsBytes: flow.initialCredits.bytes,
      maxInFlight: delivery.maxInFlight,
      pausePct: flow.pausePct,
      resumePct: flow.resumePct,
    },
    drainTimeoutMs: drain.enabled ? drain.timeoutMs : undefined,
    heartbeat: policy.heartbeat.enabled,
    heartbeatIntervalMs: policy.heartbeat.intervalMs,
  };
}
