// The connector's default transport: HubService.Process over a grpc-js channel.

import {
  type ChannelCredentials,
  credentials as grpcCredentials,
  Metadata,
  type StatusObject,
} from '@grpc/grpc-js';

import type { ProcessResponse } from '../../gen/transport/v1/hub_pb.ts';
import { hubChannelOptions, HubServiceClientConstructor } from '../wire/service.ts';
import type { ReconnectConfig } from './config.ts';
import { registrationEntries, type HubTransport } from './transport.ts';

export interface GrpcTransportOptions {
  readonly address: string;
  readonly credentials: ChannelCredentials | undefined;
  readonly reconnect: ReconnectConfig;
}

export function grpcHubTransport(options: GrpcTransportOptions): HubTransport {
  const { reconnect } = options;
  // The channel's own reconnect backoff (1 s by default) would otherwise fail our faster retries.
  const client = new HubServiceClientConstructor(
    options.address,
    options.credentials ?? grpcCredentials.createInsecure(),
    {
      ...hubChannelOptions,
      'grpc.initial_reconnect_backoff_ms': Math.max(1, reconnect.initialDelayMs),
      'grpc.max_reconnect_backoff_ms': Math.max(1, reconnect.maxDelayMs),
    },
  );
  return {
    open(registration, listener) {
      const metadata = new Metadata();
      for (const [key, value] of registrationEntries(registration)) metadata.set(key, value);
      const call = client.process(metadata);
      // The status event carries the same outcome; without a listener an error would throw.
      call.on('error', () => undefined);
      call.on('status', (end: StatusObject) => {
        listener.onEnd({ code: end.code, details: end.details });
      });
      call.on('data', (response: ProcessResponse) => {
        listener.onResponse(response);
      });
      return {
        write: (request, onWritten) => {
          call.write(request, (error: unknown) => {
            if (error === null || error === undefined) onWritten?.();
          });
        },
        end: () => call.end(),
        cancel: () => {
          call.cancel();
        },
        pause: () => {
          call.pause();
        },
        resume: () => {
          call.resume();
        },
      };
    },
    close: () => {
      client.close();
    },
  };
}
