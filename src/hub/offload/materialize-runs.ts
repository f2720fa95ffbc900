// Which materialize runs exist and whom they serve. A materialize run is named
// `<story run>-<materialize step id>`, so names from different runs or targets can collide
// (run `x` with target `y-materialize-z` and run `x-materialize-y` with target `z` share one).
// The reference hub reused any run with the wanted name; that would hand one story run's data to
// another's materializer. Here a run is reused only by its own story run for its own target; a
// run seen without an owner, or owned by someone else, is refused, as the reference controller does.

import { ConfigError } from '../../internal/errors.ts';
import {
  InvalidMaterializeMessageError,
  MaterializeRunLimitError,
  MaterializeRunNotOwnedError,
} from './errors.ts';
import { materializeStepId, stepIdProblem } from './materialize-request.ts';

export interface MaterializeRunsConfig {
  /** Runs tracked at once, across namespaces. Default 10_000. */
  readonly maxRuns?: number;
}

export const defaultMaterializeRunsConfig: Required<MaterializeRunsConfig> = { maxRuns: 10_000 };

export interface MaterializeRunOwner {
  readonly namespace: string;
  readonly storyRun: string;
  readonly targetStepId: string;
}

export interface MaterializeRun {
  readonly namespace: string;
  /** `<storyRun>-<stepId>`. */
  readonly name: string;
  /** `materialize-<target>`. */
  readonly stepId: string;
  /** Undefined for a run observed without an owner. */
  readonly storyRun: string | undefined;
  readonly targetStepId: string | undefined;
}

export interface MaterializeRunsStats {
  readonly runs: number;
  readonly maxRuns: number;
  readonly created: number;
  readonly reused: number;
  readonly refusedUnowned: number;
  readonly refusedMismatch: number;
  readonly refusedFull: number;
  readonly released: number;
}

const maxNameLength = 253;

export class MaterializeRuns {
  readonly #maxRuns: number;
  /** `namespace/name` → run. */
  readonly #runs = new Map<string, MaterializeRun>();
  readonly #counts = {
    created: 0,
    reused: 0,
    refusedUnowned: 0,
    refusedMismatch: 0,
    refusedFull: 0,
    released: 0,
  };

  constructor(config: MaterializeRunsConfig = {}) {
    const maxRuns = config.maxRuns ?? defaultMaterializeRunsConfig.maxRuns;
    if (!Number.isSafeInteger(maxRuns) || maxRuns < 1) {
      throw new ConfigError('hub.materialize.maxRuns', `must be a positive integer, got ${String(maxRuns)}`);
    }
    this.#maxRuns = maxRuns;
  }

  /**
   * The materialize run serving `owner`, created when none has its name. Throws
   * `MaterializeRunNotOwnedError` when the name is taken by an unowned run or by another story
   * run or target, `MaterializeRunLimitError` when the registry is full.
   */
  ensure(owner: MaterializeRunOwner): { readonly run: MaterializeRun; readonly created: boolean } {
    checkOwner(owner);
    const stepId = materializeStepId(owner.targetStepId);
    const name = `${owner.storyRun}-${stepId}`;
    const key = `${owner.namespace}/${name}`;
    const existing = this.#runs.get(key);
    if (existing !== undefined) {
      if (existing.storyRun === undefined || existing.targetStepId === undefined) {
        this.#counts.refusedUnowned++;
        throw new MaterializeRunNotOwnedError(name, 'it has no owning story run and target');
      }
      if (existing.storyRun !== owner.storyRun || existing.targetStepId !== owner.targetStepId) {
        this.#counts.refusedMismatch++;
        throw new MaterializeRunNotOwnedError(
          name,
          `it serves story run ${existing.storyRun} step ${existing.targetStepId}, not ${owner.storyRun} step ${owner.targetStepId}`,
        );
      }
      this.#counts.reused++;
      return { run: existing, created: false };
    }
    const run: MaterializeRun = Object.freeze({
      namespace: owner.namespace,
      name,
      stepId,
      storyRun: owner.storyRun,
      targetStepId: owner.targetStepId,
    });
    this.#insert(key, run);
    this.#counts.created++;
    return { run, created: true };
  }

  /**
   * Records a run that exists outside this registry (found at startup, made by another hub).
   * Without `storyRun` and `targetStepId` it is unowned, and `ensure` refuses to reuse it.
   */
  observe(run: {
    readonly namespace: string;
    readonly name: string;
    readonly storyRun?: string;
    readonly targetStepId?: string;
  }): void {
    checkName(run.namespace, 'namespace');
    checkName(run.name, 'name');
    const key = `${run.namespace}/${run.name}`;
    const owned = run.storyRun !== undefined && run.targetStepId !== undefined;
    if (owned)
      checkOwner({ namespace: run.namespace, storyRun: run.storyRun, targetStepId: run.targetStepId });
    const record: MaterializeRun = Object.freeze({
      namespace: run.namespace,
      name: run.name,
      stepId: owned ? materializeStepId(run.targetStepId) : '',
      storyRun: owned ? run.storyRun : undefined,
      targetStepId: owned ? run.targetStepId : undefined,
    });
    if (this.#runs.has(key)) this.#runs.set(key, record);
    else this.#insert(key, record);
  }

  get(namespace: string, name: string): MaterializeRun | undefined {
    return this.#runs.get(`${namespace}/${name}`);
  }

  /** Forgets every run owned by `storyRun` (it ended). Returns how many. */
  release(namespace: string, storyRun: string): number {
    let released = 0;
    for (const [key, run] of this.#runs) {
      if (run.namespace === namespace && run.storyRun === storyRun) {
        this.#runs.delete(key);
        released++;
      }
    }
    this.#counts.released += released;
    return released;
  }

  /** Forgets one run by name; true when it was known. */
  remove(namespace: string, name: string): boolean {
    const removed = this.#runs.delete(`${namespace}/${name}`);
    if (removed) this.#counts.released++;
    return removed;
  }

  stats(): MaterializeRunsStats {
    return { runs: this.#runs.size, maxRuns: this.#maxRuns, ...this.#counts };
  }

  #insert(key: string, run: MaterializeRun): void {
    if (this.#runs.size >= this.#maxRuns) {
      this.#counts.refusedFull++;
      throw new MaterializeRunLimitError(this.#maxRuns);
    }
    this.#runs.set(key, run);
  }
}

function checkOwner(owner: MaterializeRunOwner): void {
  checkName(owner.namespace, 'namespace');
  checkName(owner.storyRun, 'storyRun');
  const problem = stepIdProblem(owner.targetStepId);
  if (problem !== undefined) throw new InvalidMaterializeMessageError(`targetStepId ${problem}`);
}

function checkName(value: unknown, field: string): void {
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    value.length > maxNameLength ||
    value.includes('/')
  ) {
    throw new InvalidMaterializeMessageError(`${field} must be 1–${maxNameLength} characters without "/"`);
  }
}
