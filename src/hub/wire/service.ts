// HubService.Process for grpc-js, built by hand from the generated protobuf-es schemas (no
// proto-loader at run time). The path is `/transport.v1.HubService/Process`, so connectors built
// for bubustack's hub call it unchanged.
//
// grpc-js turns a throwing request deserializer into INTERNAL. The server side therefore never
// throws: bytes that do not decode arrive as an `UndecodableRequest`, which the handler ends
// with INVALID_ARGUMENT (`grpcStatusOf(request.error)`).

import { fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  makeGenericClientConstructor,
  type CallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type Client,
  type ClientDuplexStream,
  type Metadata,
  type MethodDefinition,
  type ServiceDefinition,
} from '@grpc/grpc-js';

import {
  ProcessRequestSchema,
  ProcessResponseSchema,
  type ProcessRequest,
  type ProcessResponse,
} from '../../gen/transport/v1/hub_pb.ts';
import { UndecodableHubMessageError } from './errors.ts';

export const HUB_SERVICE_NAME = 'transport.v1.HubService';
export const HUB_PROCESS_PATH = '/transport.v1.HubService/Process';
/** Largest message either side sends or accepts (A1). */
export const HUB_MAX_MESSAGE_BYTES = 10 * 1024 * 1024;

/** Channel/server options that apply the message size limit; pass to `new Server()` and clients. */
export const hubChannelOptions: ChannelOptions = {
  'grpc.max_receive_message_length': HUB_MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': HUB_MAX_MESSAGE_BYTES,
};

/** A request whose bytes did not decode; the handler must end the call with `error`'s status. */
export class UndecodableRequest {
  readonly error: UndecodableHubMessageError;

  constructor(error: UndecodableHubMessageError) {
    this.error = error;
  }
}

/** What the server's handler reads from the call. */
export type IncomingRequest = ProcessRequest | UndecodableRequest;

/**
 * The encoded size of each request the server decoded: the hub's buffers count packets by their
 * encoded size, and encoding a packet again only to measure it would cost as much as the decode.
 */
export const encodedRequestSizes = new WeakMap<ProcessRequest, number>();

function decodeRequest(bytes: Buffer): IncomingRequest {
  try {
    const request = fromBinary(ProcessRequestSchema, asPlainBytes(bytes));
    encodedRequestSizes.set(request, bytes.length);
    return request;
  } catch (cause) {
    return new UndecodableRequest(
      new UndecodableHubMessageError('transport.v1.ProcessRequest', bytes.length, { cause }),
    );
  }
}

function decodeResponse(bytes: Buffer): ProcessResponse {
  // A throw here makes grpc-js cancel the client call with INTERNAL, which is right for a client.
  return fromBinary(ProcessResponseSchema, asPlainBytes(bytes));
}

// Decoded `bytes` fields are views of the input; a plain Uint8Array view keeps them plain
// Uint8Arrays (not Buffers), as protobuf-es creates them elsewhere. No copy.
function asPlainBytes(bytes: Buffer): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// Wraps toBinary's fresh bytes as a Buffer without copying them.
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** HubService as grpc-js describes a service: one bidirectional method, `Process`. */
export interface HubServiceDefinition extends ServiceDefinition {
  readonly process: MethodDefinition<IncomingRequest, ProcessResponse>;
}

/** The server-side definition: pass to `server.addService(hubServiceDefinition, { process })`. */
export const hubServiceDefinition: HubServiceDefinition = {
  process: {
    path: HUB_PROCESS_PATH,
    originalName: 'Process',
    requestStream: true,
    responseStream: true,
    requestSerialize: (request: IncomingRequest): Buffer => {
      if (request instanceof UndecodableRequest) throw request.error;
      return asBuffer(toBinary(ProcessRequestSchema, request));
    },
    requestDeserialize: decodeRequest,
    responseSerialize: (response: ProcessResponse): Buffer =>
      asBuffer(toBinary(ProcessResponseSchema, response)),
    responseDeserialize: decodeResponse,
  },
};

/** A HubService client; `process()` opens one bidirectional stream. */
export interface HubServiceClient extends Client {
  process(metadata?: Metadata, options?: CallOptions): ClientDuplexStream<ProcessRequest, ProcessResponse>;
}

/** Construct with `new HubServiceClientConstructor(address, credentials, hubChannelOptions)`. */
export const HubServiceClientConstructor = makeGenericClientConstructor(
  hubServiceDefinition,
  HUB_SERVICE_NAME,
) as unknown as new (
  address: string,
  credentials: ChannelCredentials,
  options?: ChannelOptions,
) => HubServiceClient;
