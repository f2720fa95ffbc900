// The story module's failures, each with a stable code (see src/internal/errors.ts for the base).

import { WeftError, type WeftErrorOptions } from '../../internal/errors.ts';

/** One thing wrong with a story definition. */
export interface StoryProblem {
  /**
   * Where in the document, e.g. `spec.steps[2] (transcribe).policy.buffer.maxMessages`; `''` for
   * the document as a whole (too large, not YAML).
   */
  readonly path: string;
  /** The step the problem is in, when it is in one. */
  readonly stepId: string | undefined;
  /** What is wrong, naming the value found, e.g. `must be a positive integer, got -1`. */
  readonly message: string;
}

/**
 * A story definition was refused: too large, not JSON/YAML, or not a valid story. `problems`
 * lists every problem found (up to a bound; `omittedProblems` counts the rest), so a user can fix
 * them all in one pass. Terminal: the same text is refused every time.
 */
export class StoryValidationError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.hub.StoryValidationError');
  static readonly code = 'WEFT_HUB_INVALID_STORY';
  readonly problems: readonly StoryProblem[];
  /** Problems found beyond the listed ones and left out. */
  readonly omittedProblems: number;
  /** The story's name, when the document got far enough to have one. */
  readonly storyName: string | undefined;

  constructor(
    problems: readonly StoryProblem[],
    details: { omittedProblems?: number; storyName?: string | undefined } = {},
    options?: WeftErrorOptions,
  ) {
    const omitted = details.omittedProblems ?? 0;
    const lines = problems.map((p) => `  ${p.path === '' ? '' : `${p.path}: `}${p.message}`);
    if (omitted > 0) lines.push(`  … and ${omitted} more`);
    const subject = details.storyName === undefined ? 'story' : `story ${details.storyName}`;
    const count = problems.length + omitted;
    super(
      StoryValidationError.code,
      `invalid ${subject} (${count} ${count === 1 ? 'problem' : 'problems'}):\n${lines.join('\n')}`,
      false,
      options,
    );
    this.problems = Object.freeze(problems.map((p) => Object.freeze({ ...p })));
    this.omittedProblems = omitted;
    this.storyName = details.storyName;
  }
}

/** A story file could not be read (missing, unreadable, not a regular file). Terminal. */
export class StoryLoadError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.hub.StoryLoadError');
  static readonly code = 'WEFT_HUB_STORY_UNREADABLE';
  readonly path: string;

  constructor(path: string, problem: string, options?: WeftErrorOptions) {
    super(StoryLoadError.code, `cannot read story file ${path}: ${problem}`, false, options);
    this.path = path;
  }
}

/** A step id was asked of a story that has no such step. Terminal. */
export class UnknownStepError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.hub.UnknownStepError');
  static readonly code = 'WEFT_HUB_UNKNOWN_STEP';
  readonly storyName: string;
  readonly stepId: string;

  /** `missing` says what is missing when it is not the step itself, e.g. `no edge from a to b`. */
  constructor(storyName: string, stepId: string, missing?: string, options?: WeftErrorOptions) {
    const what = missing ?? `no step ${JSON.stringify(stepId)}`;
    super(UnknownStepError.code, `story ${storyName} has ${what}`, false, options);
    this.storyName = storyName;
    this.stepId = stepId;
  }
}

/**
 * A stream key or one of its parts (namespace, run, step) is malformed: each part is a DNS label
 * (1–63 of `a-z0-9-`, starting and ending alphanumeric). Terminal.
 */
export class InvalidStreamKeyError extends WeftError {
  static override readonly brand = Symbol.for('weft.error.hub.InvalidStreamKeyError');
  static readonly code = 'WEFT_HUB_INVALID_STREAM_KEY';

  constructor(message: string, options?: WeftErrorOptions) {
    super(InvalidStreamKeyError.code, message, false, options);
  }
}
