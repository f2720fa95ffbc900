// The materializer-connector path (A6): when a step's `with` template needs offloaded data and
// the policy is `inject`, the hub sends the template to a materialize step, which resolves it and
// replies with the result; the hub routes that result to the target step as its inputs.
//
// Request: the original packet (payload, frame, transports, metadata) with inputs
// `{ mode: "object", template, vars }` and metadata `materialize-next-step: <target step id>`.
// Reply: `inputs.result` must be a JSON object; it becomes the target's inputs, marker removed.

import { createHash } from 'node:crypto';

import type { JsonObject } from '@bufbuild/protobuf';

import type { DataPacket } from '../../gen/transport/v1/hub_pb.ts';
import { isHeartbeat } from '../wire/heartbeat.ts';
import { InvalidMaterializeMessageError } from './errors.ts';

export const MATERIALIZE_NEXT_STEP_KEY = 'materialize-next-step';
export const MATERIALIZE_MODE_OBJECT = 'object';
/** Default bound on the JSON size of a request's inputs. */
export const DEFAULT_MAX_MATERIALIZE_INPUT_BYTES = 1024 * 1024;

const maxStepIdLength = 63;
const stepIdPattern = /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/;
const prefix = 'materialize-';

/** Why `value` is not a step id (≤ 63 of [A-Za-z0-9._-], alphanumeric at both ends); undefined if it is. */
export function stepIdProblem(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0) return 'must be a non-empty string';
  if (value.length > maxStepIdLength)
    return `must be at most ${maxStepIdLength} characters, got ${value.length}`;
  if (!stepIdPattern.test(value))
    return 'must be letters, digits, ".", "_" or "-", alphanumeric at both ends';
  return undefined;
}

/**
 * The step id of the materialize step for `targetStepId`: `materialize-<target>`, or, when that
 * would pass 63 characters, the target cut short plus 8 hex of its sha256 so ids stay distinct.
 */
export function materializeStepId(targetStepId: string): string {
  requireStepId(targetStepId, 'targetStepId');
  const plain = prefix + targetStepId;
  if (plain.length <= maxStepIdLength) return plain;
  const hash = createHash('sha256').update(targetStepId).digest('hex').slice(0, 8);
  const head = targetStepId
    .slice(0, maxStepIdLength - prefix.length - hash.length - 1)
    .replace(/[._-]+$/, '');
  return `${prefix}${head}-${hash}`;
}

export interface MaterializeRequestInput {
  /** The packet that needed materializing; its payload, frame, transports and metadata are carried over. */
  readonly original: DataPacket;
  readonly targetStepId: string;
  /** The target step's raw `with` template. */
  readonly template: JsonObject;
  /** Values the template is evaluated against (step outputs, inputs). */
  readonly vars: JsonObject;
  /** Bound on the JSON size of the inputs. Default 1 MiB. */
  readonly maxInputBytes?: number;
}

/**
 * The packet to send to the materialize step. The envelope is cleared: the materialize stream
 * assigns its own sequence. Throws `InvalidMaterializeMessageError` for a bad target, a template
 * or vars that are not objects, or inputs over `maxInputBytes`.
 */
export function buildMaterializeRequest(input: MaterializeRequestInput): DataPacket {
  const { original, targetStepId, template, vars } = input;
  requireStepId(targetStepId, 'targetStepId');
  if (!isPlainObject(template)) throw new InvalidMaterializeMessageError('template must be a JSON object');
  if (!isPlainObject(vars)) throw new InvalidMaterializeMessageError('vars must be a JSON object');
  const inputs: JsonObject = { mode: MATERIALIZE_MODE_OBJECT, template, vars };
  const maxInputBytes = input.maxInputBytes ?? DEFAULT_MAX_MATERIALIZE_INPUT_BYTES;
  const size = Buffer.byteLength(JSON.stringify(inputs));
  if (size > maxInputBytes) {
    throw new InvalidMaterializeMessageError(
      `inputs are ${size} bytes as JSON, over the limit of ${maxInputBytes}`,
    );
  }
  return {
    ...original,
    inputs,
    envelope: undefined,
    metadata: { ...original.metadata, [MATERIALIZE_NEXT_STEP_KEY]: targetStepId },
  };
}

export type MaterializeReply =
  /** A heartbeat from the materialize step: ignore it. */
  | { readonly kind: 'heartbeat' }
  /** No `materialize-next-step`: not a materialize result, nothing to route (as the reference). */
  | { readonly kind: 'unaddressed' }
  | {
      readonly kind: 'result';
      readonly targetStepId: string;
      /** `inputs.result`: the target step's inputs. */
      readonly inputs: JsonObject;
      /** The reply with `inputs` replaced by the result and the marker removed, ready to route. */
      readonly packet: DataPacket;
    };

/**
 * Reads a packet sent by a materialize step. Throws `InvalidMaterializeMessageError` when it names
 * a bad target, has no inputs, or its `inputs.result` is missing or not an object. Whether the
 * target exists in the story is the caller's check (NotFound).
 */
export function parseMaterializeReply(packet: DataPacket): MaterializeReply {
  if (isHeartbeat(packet)) return { kind: 'heartbeat' };
  if (!Object.hasOwn(packet.metadata, MATERIALIZE_NEXT_STEP_KEY)) return { kind: 'unaddressed' };
  const targetStepId = (packet.metadata[MATERIALIZE_NEXT_STEP_KEY] ?? '').trim();
  requireStepId(targetStepId, MATERIALIZE_NEXT_STEP_KEY);
  if (packet.inputs === undefined) throw new InvalidMaterializeMessageError('the reply has no inputs');
  if (!Object.hasOwn(packet.inputs, 'result'))
    throw new InvalidMaterializeMessageError('the reply has no inputs.result');
  const result = packet.inputs['result'];
  if (!isPlainObject(result)) {
    throw new InvalidMaterializeMessageError(`inputs.result must be an object, got ${describe(result)}`);
  }
  const metadata = Object.fromEntries(
    Object.entries(packet.metadata).filter(([key]) => key !== MATERIALIZE_NEXT_STEP_KEY),
  );
  return { kind: 'result', targetStepId, inputs: result, packet: { ...packet, metadata, inputs: result } };
}

function requireStepId(value: unknown, field: string): void {
  const problem = stepIdProblem(value);
  if (problem !== undefined) throw new InvalidMaterializeMessageError(`${field} ${problem}`);
}

function isPlainObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}
