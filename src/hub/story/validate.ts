// Turns a parsed document (plain JSON/YAML data) into a Story, or a StoryValidationError listing
// every problem with its path. Nothing unknown passes: a misspelt field is refused, not ignored.

import { orderSteps } from './dag.ts';
import { StoryValidationError } from './errors.ts';
import { nameProblem } from './names.ts';
import { mergePolicies, policyField, resolvePolicy, type PolicyInput, type StepPolicy } from './policy.ts';
import { describeValue, isPlainObject, ProblemList } from './problems.ts';
import { child, readField, unknownFields, type Place } from './schema.ts';
import { StoryImpl, type Story, type StoryEdge, type StoryStep } from './story.ts';

export const storyApiVersion = 'weft.dev/v1';
/** Most steps a story may have. */
export const maxSteps = 1000;
const maxLabels = 64;
const maxLabelValueLength = 253;
const maxDescriptionLength = 1024;
const labelKey = /^[A-Za-z0-9]([-A-Za-z0-9_./]{0,61}[A-Za-z0-9])?$/;

interface StepDraft {
  readonly id: string;
  readonly index: number;
  readonly place: Place;
  readonly needs: {
    readonly step: string;
    readonly policy: PolicyInput | undefined;
    readonly place: Place;
    /** `spec.steps[i] (id).needs[j]`, as written. */
    readonly path: string;
  }[];
  readonly description: string | undefined;
  readonly policy: PolicyInput | undefined;
}

/** Validates a parsed story document; returns a frozen Story or throws StoryValidationError. */
export function validateStory(document: unknown): Story {
  const problems = new ProblemList();
  const root: Place = { path: '' };
  if (!isPlainObject(document)) {
    problems.add('', `a story must be an object, got ${describeValue(document)}`);
    throw refusal(problems, undefined);
  }
  unknownFields(document, ['apiVersion', 'kind', 'metadata', 'spec'], root, problems);
  if (document['apiVersion'] !== storyApiVersion) {
    problems.add('apiVersion', `must be ${storyApiVersion}, got ${describeValue(document['apiVersion'])}`);
  }
  if (document['kind'] !== 'Story')
    problems.add('kind', `must be Story, got ${describeValue(document['kind'])}`);

  const metadata = readMetadata(document['metadata'], problems);
  const spec = document['spec'];
  if (!isPlainObject(spec)) {
    problems.add('spec', `must be an object, got ${describeValue(spec)}`);
    throw refusal(problems, metadata.name);
  }
  unknownFields(spec, ['defaults', 'steps'], { path: 'spec' }, problems);

  const defaultsPlace: Place = { path: 'spec.defaults' };
  const defaultsInput = readPolicy(spec['defaults'], defaultsPlace, problems);
  const drafts = readSteps(spec['steps'], problems);
  const upstream = checkNeeds(drafts, problems);

  let order: readonly string[] = [];
  if (problems.empty) {
    const sorted = orderSteps(
      drafts.map((d) => d.id),
      upstream,
    );
    if (sorted.cycle !== undefined) {
      const first = drafts.find((d) => d.id === sorted.cycle?.[0]) as StepDraft;
      problems.add(
        child(first.place, 'needs').path,
        `steps form a cycle: ${sorted.cycle.join(' → ')}`,
        first.id,
      );
    }
    order = sorted.order;
  }

  const defaults = resolvePolicy(mergePolicies(defaultsInput), defaultsPlace, problems);
  const steps: StoryStep[] = [];
  const edges: StoryEdge[] = [];
  for (const draft of drafts) {
    const merged = mergePolicies(defaultsInput, draft.policy);
    const policy = resolvePolicy(merged, child(draft.place, 'policy'), problems);
    if (policy === undefined) continue;
    steps.push({
      id: draft.id,
      index: draft.index,
      needs: draft.needs.map((n) => n.step),
      description: draft.description,
      policy,
    });
    for (const need of draft.needs) {
      const edgePolicy: StepPolicy | undefined =
        need.policy === undefined
          ? policy
          : resolvePolicy(mergePolicies(merged, need.policy), child(need.place, 'policy'), problems);
      if (edgePolicy !== undefined) edges.push({ from: need.step, to: draft.id, policy: edgePolicy });
    }
  }

  if (!problems.empty || defaults === undefined || metadata.name === undefined)
    throw refusal(problems, metadata.name);
  return new StoryImpl({
    name: metadata.name,
    namespace: metadata.namespace,
    labels: metadata.labels,
    defaults,
    steps,
    edges,
    order,
  });
}

function refusal(problems: ProblemList, storyName: string | undefined): StoryValidationError {
  return new StoryValidationError(problems.problems, { omittedProblems: problems.omitted, storyName });
}

interface Metadata {
  readonly name: string | undefined;
  readonly namespace: string;
  readonly labels: Record<string, string>;
}

function readMetadata(value: unknown, problems: ProblemList): Metadata {
  const labels: Record<string, string> = {};
  if (!isPlainObject(value)) {
    problems.add('metadata', `must be an object with a name, got ${describeValue(value)}`);
    return { name: undefined, namespace: 'default', labels };
  }
  unknownFields(value, ['name', 'namespace', 'labels'], { path: 'metadata' }, problems);
  const nameError = nameProblem(value['name']);
  if (nameError !== undefined) problems.add('metadata.name', nameError);
  const namespaceValue = value['namespace'] ?? 'default';
  const namespaceError = nameProblem(namespaceValue);
  if (namespaceError !== undefined) problems.add('metadata.namespace', namespaceError);

  const rawLabels = value['labels'];
  if (rawLabels !== undefined && rawLabels !== null) {
    if (!isPlainObject(rawLabels)) {
      problems.add('metadata.labels', `must be an object, got ${describeValue(rawLabels)}`);
    } else {
      const keys = Object.keys(rawLabels);
      if (keys.length > maxLabels)
        problems.add('metadata.labels', `must have at most ${maxLabels} labels, got ${keys.length}`);
      for (const key of keys.slice(0, maxLabels)) {
        const labelValue = rawLabels[key];
        if (!labelKey.test(key)) {
          problems.add(
            `metadata.labels`,
            `label key ${describeValue(key)} must be 1–63 of letters, digits, '-', '_', '.', '/'`,
          );
        } else if (typeof labelValue !== 'string' || labelValue.length > maxLabelValueLength) {
          problems.add(
            `metadata.labels.${key}`,
            `must be a string of at most ${maxLabelValueLength} characters, got ${describeValue(labelValue)}`,
          );
        } else {
          labels[key] = labelValue;
        }
      }
    }
  }
  return {
    name: nameError === undefined ? (value['name'] as string) : undefined,
    namespace: namespaceError === undefined ? (namespaceValue as string) : 'default',
    labels,
  };
}

function readPolicy(value: unknown, place: Place, problems: ProblemList): PolicyInput | undefined {
  if (value === undefined || value === null) return undefined;
  return readField(value, policyField, place, problems) as PolicyInput | undefined;
}

function readSteps(value: unknown, problems: ProblemList): StepDraft[] {
  if (!Array.isArray(value)) {
    problems.add('spec.steps', `must be a list of steps, got ${describeValue(value)}`);
    return [];
  }
  if (value.length === 0) {
    problems.add('spec.steps', 'must list at least one step');
    return [];
  }
  if (value.length > maxSteps) {
    // Refused before looking at any step, so a huge list costs nothing more.
    problems.add('spec.steps', `must have at most ${maxSteps} steps, got ${value.length}`);
    return [];
  }
  const drafts: StepDraft[] = [];
  const firstIndex = new Map<string, number>();
  value.forEach((raw: unknown, index) => {
    const bare: Place = { path: `spec.steps[${index}]` };
    if (!isPlainObject(raw)) {
      problems.add(bare.path, `must be an object with an id, got ${describeValue(raw)}`);
      return;
    }
    const idError = nameProblem(raw['id']);
    if (idError !== undefined) {
      problems.add(`${bare.path}.id`, idError);
      return;
    }
    const id = raw['id'] as string;
    const place: Place = { path: `${bare.path} (${id})`, stepId: id };
    unknownFields(raw, ['id', 'needs', 'policy', 'description'], place, problems);
    const earlier = firstIndex.get(id);
    if (earlier !== undefined) {
      problems.add(`${place.path}.id`, `duplicate step id, also spec.steps[${earlier}]`, id);
      return;
    }
    firstIndex.set(id, index);
    const description = raw['description'];
    if (
      description !== undefined &&
      (typeof description !== 'string' || description.length > maxDescriptionLength)
    ) {
      problems.add(
        `${place.path}.description`,
        `must be a string of at most ${maxDescriptionLength} characters, got ${describeValue(description)}`,
        id,
      );
    }
    drafts.push({
      id,
      index,
      place,
      needs: readNeeds(raw['needs'], child(place, 'needs'), problems),
      description: typeof description === 'string' ? description : undefined,
      policy: readPolicy(raw['policy'], child(place, 'policy'), problems),
    });
  });
  return drafts;
}

/** `needs` entries: a step id, or `{ step, policy }` for an edge with its own policy. */
function readNeeds(value: unknown, place: Place, problems: ProblemList): StepDraft['needs'] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    problems.add(place.path, `must be a list of step ids, got ${describeValue(value)}`, place.stepId);
    return [];
  }
  if (value.length > maxSteps) {
    problems.add(place.path, `must list at most ${maxSteps} steps, got ${value.length}`, place.stepId);
    return [];
  }
  const needs: { step: string; policy: PolicyInput | undefined; place: Place; path: string }[] = [];
  value.forEach((entry: unknown, index) => {
    const at: Place = { path: `${place.path}[${index}]`, stepId: place.stepId };
    let step: unknown = entry;
    let policy: PolicyInput | undefined;
    let edgePlace = at;
    if (isPlainObject(entry)) {
      step = entry['step'];
      edgePlace = { path: `${at.path} (${typeof step === 'string' ? step : '?'})`, stepId: place.stepId };
      unknownFields(entry, ['step', 'policy'], edgePlace, problems);
      policy = readPolicy(entry['policy'], child(edgePlace, 'policy'), problems);
    }
    const error = nameProblem(step);
    if (error !== undefined) {
      problems.add(
        isPlainObject(entry) ? `${at.path}.step` : at.path,
        `must name a step: ${error}`,
        place.stepId,
      );
      return;
    }
    if (needs.some((n) => n.step === step)) {
      problems.add(at.path, `duplicate need ${describeValue(step)}`, place.stepId);
      return;
    }
    needs.push({ step: step as string, policy, place: edgePlace, path: at.path });
  });
  return needs;
}

/** Every need names another step of the story; returns each step's upstream list. */
function checkNeeds(drafts: readonly StepDraft[], problems: ProblemList): Map<string, readonly string[]> {
  const ids = new Set(drafts.map((d) => d.id));
  const upstream = new Map<string, readonly string[]>();
  for (const draft of drafts) {
    draft.needs.forEach((need) => {
      const path = need.path;
      if (need.step === draft.id) problems.add(path, 'a step cannot need itself', draft.id);
      else if (!ids.has(need.step)) problems.add(path, `unknown step ${describeValue(need.step)}`, draft.id);
    });
    upstream.set(
      draft.id,
      draft.needs.map((n) => n.step),
    );
  }
  return upstream;
}
