// A validated story: its steps with resolved policies and the DAG between them. Immutable.

import { UnknownStepError } from './errors.ts';
import type { StepPolicy } from './policy.ts';

export interface StoryStep {
  readonly id: string;
  /** Position in `spec.steps`. */
  readonly index: number;
  /** The steps this one receives from, in the order written. */
  readonly needs: readonly string[];
  readonly description: string | undefined;
  /** Story defaults ← this step's policy, resolved. */
  readonly policy: StepPolicy;
}

/** Packets flow `from` → `to`. */
export interface StoryEdge {
  readonly from: string;
  readonly to: string;
  /** The step's policy ← the edge's own policy, resolved; the step's policy when the edge has none. */
  readonly policy: StepPolicy;
}

export interface Story {
  readonly apiVersion: 'weft.dev/v1';
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Built-in defaults ← `spec.defaults`, resolved. */
  readonly defaults: StepPolicy;
  /** Steps in document order. */
  readonly steps: readonly StoryStep[];
  readonly edges: readonly StoryEdge[];
  /** Step ids so that every step comes after all it needs (document order among equals). */
  readonly order: readonly string[];
  /** Steps that need nothing. */
  readonly roots: readonly string[];
  /** Steps nothing needs. */
  readonly sinks: readonly string[];
  hasStep(stepId: string): boolean;
  /** Throws UnknownStepError for an id not in the story; likewise for the methods below. */
  step(stepId: string): StoryStep;
  policyOf(stepId: string): StepPolicy;
  /** The policy of packets from `from` to `to`; throws UnknownStepError if there is no such edge. */
  edgePolicy(from: string, to: string): StepPolicy;
  /** Steps that receive what `stepId` emits, in document order. */
  downstreamOf(stepId: string): readonly string[];
  /** Steps `stepId` receives from (its needs). */
  upstreamOf(stepId: string): readonly string[];
}

export interface StoryParts {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly defaults: StepPolicy;
  readonly steps: readonly StoryStep[];
  readonly edges: readonly StoryEdge[];
  readonly order: readonly string[];
}

export class StoryImpl implements Story {
  readonly apiVersion = 'weft.dev/v1';
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly defaults: StepPolicy;
  readonly steps: readonly StoryStep[];
  readonly edges: readonly StoryEdge[];
  readonly order: readonly string[];
  readonly roots: readonly string[];
  readonly sinks: readonly string[];
  readonly #byId = new Map<string, StoryStep>();
  readonly #downstream = new Map<string, string[]>();
  readonly #edges = new Map<string, StoryEdge>();

  constructor(parts: StoryParts) {
    this.name = parts.name;
    this.namespace = parts.namespace;
    this.labels = Object.freeze({ ...parts.labels });
    this.defaults = parts.defaults;
    this.steps = Object.freeze(
      parts.steps.map((s) => Object.freeze({ ...s, needs: Object.freeze([...s.needs]) })),
    );
    this.edges = Object.freeze(parts.edges.map((e) => Object.freeze({ ...e })));
    this.order = Object.freeze([...parts.order]);
    for (const step of this.steps) {
      this.#byId.set(step.id, step);
      this.#downstream.set(step.id, []);
    }
    for (const step of this.steps) for (const from of step.needs) this.#downstream.get(from)?.push(step.id);
    for (const list of this.#downstream.values()) Object.freeze(list);
    for (const edge of this.edges) this.#edges.set(edgeKey(edge.from, edge.to), edge);
    this.roots = Object.freeze(this.steps.filter((s) => s.needs.length === 0).map((s) => s.id));
    this.sinks = Object.freeze(
      this.steps.filter((s) => this.#downstream.get(s.id)?.length === 0).map((s) => s.id),
    );
    Object.freeze(this);
  }

  hasStep(stepId: string): boolean {
    return this.#byId.has(stepId);
  }

  step(stepId: string): StoryStep {
    const step = this.#byId.get(stepId);
    if (step === undefined) throw new UnknownStepError(this.name, stepId);
    return step;
  }

  policyOf(stepId: string): StepPolicy {
    return this.step(stepId).policy;
  }

  edgePolicy(from: string, to: string): StepPolicy {
    const edge = this.#edges.get(edgeKey(from, to));
    if (edge === undefined) {
      this.step(from);
      this.step(to);
      throw new UnknownStepError(this.name, to, `no edge from ${from} to ${to}`);
    }
    return edge.policy;
  }

  downstreamOf(stepId: string): readonly string[] {
    this.step(stepId);
    return this.#downstream.get(stepId) ?? [];
  }

  upstreamOf(stepId: string): readonly string[] {
    return this.step(stepId).needs;
  }
}

function edgeKey(from: string, to: string): string {
  // Step ids never contain '/', so this cannot collide.
  return `${from}/${to}`;
}
