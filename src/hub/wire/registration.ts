// Who is calling: a connector names its story run, namespace and step in the call's metadata
// when it opens Process, and optionally its connector generation (for blue-green handoff).
//
// Names are bounded and restricted so they are safe in stream keys (`ns/run/step`), logs and
// checkpoint paths: namespace is a DNS-1123 label (≤ 63, [a-z0-9-]), the story run name a
// DNS-1123 subdomain (≤ 253, [a-z0-9.-]), and the step id ≤ 63 of [A-Za-z0-9._-] starting and
// ending alphanumeric (step ids end up in Kubernetes label values, which allow exactly that).
// None of them may contain '/', so the key is unambiguous.

import type { Metadata } from '@grpc/grpc-js';

import { InvalidConnectorGenerationError, InvalidHubRegistrationError } from './errors.ts';

export const STORYRUN_NAME_KEY = 'storyrun-name';
export const STORYRUN_NAMESPACE_KEY = 'storyrun-namespace';
export const CURRENT_STEP_ID_KEY = 'current-step-id';
export const CONNECTOR_GENERATION_KEY = 'connector-generation';

export interface Registration {
  readonly storyRunName: string;
  readonly storyRunNamespace: string;
  readonly currentStepId: string;
  /** Undefined when the connector did not send one. */
  readonly connectorGeneration: number | undefined;
  /** `namespace/run/step`: the stream key. */
  readonly key: string;
}

export type RegistrationCheck =
  | { readonly ok: true; readonly registration: Registration }
  | {
      readonly ok: false;
      readonly problem: InvalidHubRegistrationError | InvalidConnectorGenerationError;
    };

const namePatterns = {
  [STORYRUN_NAMESPACE_KEY]: {
    pattern: /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/,
    maxLength: 63,
    rule: 'a DNS-1123 label',
  },
  [STORYRUN_NAME_KEY]: {
    pattern: /^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?$/,
    maxLength: 253,
    rule: 'a DNS-1123 subdomain',
  },
  [CURRENT_STEP_ID_KEY]: {
    pattern: /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/,
    maxLength: 63,
    rule: 'made of [A-Za-z0-9._-], starting and ending alphanumeric',
  },
} as const;

const MAX_INT32 = 2 ** 31 - 1;

/** Reads the registration from a Process call's metadata. */
export function parseRegistration(metadata: Metadata): RegistrationCheck {
  const names: Record<keyof typeof namePatterns, string> = {
    [STORYRUN_NAME_KEY]: '',
    [STORYRUN_NAMESPACE_KEY]: '',
    [CURRENT_STEP_ID_KEY]: '',
  };
  for (const key of [STORYRUN_NAME_KEY, STORYRUN_NAMESPACE_KEY, CURRENT_STEP_ID_KEY] as const) {
    const read = singleValue(metadata, key);
    if (typeof read !== 'string') return { ok: false, problem: read.problem };
    const { pattern, maxLength, rule } = namePatterns[key];
    if (read === '') {
      return { ok: false, problem: new InvalidHubRegistrationError(key, 'is required') };
    }
    if (read.length > maxLength) {
      return {
        ok: false,
        problem: new InvalidHubRegistrationError(key, `is longer than ${maxLength} characters`),
      };
    }
    if (!pattern.test(read)) {
      return { ok: false, problem: new InvalidHubRegistrationError(key, `must be ${rule}`) };
    }
    names[key] = read;
  }

  let connectorGeneration: number | undefined;
  if (metadata.get(CONNECTOR_GENERATION_KEY).length > 0) {
    const read = singleValue(metadata, CONNECTOR_GENERATION_KEY);
    if (typeof read !== 'string') return { ok: false, problem: read.problem };
    // Canonical decimal only: "+1", "01", " 1" or "1e3" could be read differently by other hubs.
    const value = /^[1-9][0-9]{0,9}$/.test(read) ? Number(read) : NaN;
    if (!(value <= MAX_INT32)) {
      return { ok: false, problem: new InvalidConnectorGenerationError(read) };
    }
    connectorGeneration = value;
  }

  const storyRunName = names[STORYRUN_NAME_KEY];
  const storyRunNamespace = names[STORYRUN_NAMESPACE_KEY];
  const currentStepId = names[CURRENT_STEP_ID_KEY];
  return {
    ok: true,
    registration: {
      storyRunName,
      storyRunNamespace,
      currentStepId,
      connectorGeneration,
      key: `${storyRunNamespace}/${storyRunName}/${currentStepId}`,
    },
  };
}

/** The key's one string value, '' when absent; several values are ambiguous and refused. */
function singleValue(metadata: Metadata, key: string): string | { problem: InvalidHubRegistrationError } {
  const values = metadata.get(key);
  if (values.length === 0) return '';
  if (values.length > 1) {
    return { problem: new InvalidHubRegistrationError(key, `was sent ${values.length} times`) };
  }
  const value = values[0];
  if (typeof value !== 'string') {
    return { problem: new InvalidHubRegistrationError(key, 'must be a text value') };
  }
  return value;
}
