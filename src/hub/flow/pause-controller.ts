// Decides when the hub tells an upstream producer to PAUSE and when to RESUME.
//
// Two causes hold the producer paused: the downstream buffer filling past `pausePct`
// (threshold pause, released at `resumePct`, below it, so the signal does not flap) and a drain
// (the downstream is gone or failing and its buffer waits for it). The producer sees only the
// union: one PAUSE when the first cause starts, one RESUME when the last one ends, never two of
// the same signal in a row. The reference hub sent a second PAUSE when a drain began while
// already threshold-paused; counting causes instead of signals removes that.

export type PauseSignal = 'pause' | 'resume';

export interface PauseThresholds {
  /** Percent of buffer utilisation at which to pause; 0 turns threshold pausing off. */
  readonly pausePct: number;
  /** Percent at which to resume; must be below pausePct (see normalizeDeliveryConfig). */
  readonly resumePct: number;
}

export interface PauseControllerStats {
  readonly upstreamPaused: boolean;
  readonly thresholdPaused: boolean;
  readonly drainPaused: boolean;
  readonly pausesEmitted: number;
  readonly resumesEmitted: number;
  /** Utilisation samples that were not a number from 0 up; ignored. */
  readonly invalidObservations: number;
}

export class PauseController {
  readonly #pauseAt: number;
  readonly #resumeAt: number;
  #thresholdPaused = false;
  #drainPaused = false;
  #pausesEmitted = 0;
  #resumesEmitted = 0;
  #invalidObservations = 0;

  constructor(thresholds: PauseThresholds) {
    // Compare fractions: pct / 100 gives the same double as the decimal literal (80 → 0.8).
    this.#pauseAt = thresholds.pausePct / 100;
    this.#resumeAt = thresholds.resumePct / 100;
  }

  /** True while the producer has been told to pause and not yet to resume. */
  get upstreamPaused(): boolean {
    return this.#thresholdPaused || this.#drainPaused;
  }

  /**
   * Feeds the buffer's utilisation (0–1, max of count and byte fill). Returns the signal to send
   * upstream, if any.
   */
  observe(utilization: number): PauseSignal | undefined {
    if (!Number.isFinite(utilization) || utilization < 0) {
      this.#invalidObservations++;
      return undefined;
    }
    if (this.#pauseAt <= 0) return undefined;
    if (!this.#thresholdPaused && utilization >= this.#pauseAt) {
      return this.#change(() => (this.#thresholdPaused = true));
    }
    if (this.#thresholdPaused && utilization <= this.#resumeAt) {
      return this.#change(() => (this.#thresholdPaused = false));
    }
    return undefined;
  }

  /** The buffer started waiting for a missing or failing downstream. */
  drainStarted(): PauseSignal | undefined {
    return this.#change(() => (this.#drainPaused = true));
  }

  /** The buffer emptied; the drain is over (a threshold pause, if any, still holds). */
  drainFinished(): PauseSignal | undefined {
    return this.#change(() => (this.#drainPaused = false));
  }

  stats(): PauseControllerStats {
    return {
      upstreamPaused: this.upstreamPaused,
      thresholdPaused: this.#thresholdPaused,
      drainPaused: this.#drainPaused,
      pausesEmitted: this.#pausesEmitted,
      resumesEmitted: this.#resumesEmitted,
      invalidObservations: this.#invalidObservations,
    };
  }

  #change(apply: () => void): PauseSignal | undefined {
    const before = this.upstreamPaused;
    apply();
    const after = this.upstreamPaused;
    if (before === after) return undefined;
    if (after) {
      this.#pausesEmitted++;
      return 'pause';
    }
    this.#resumesEmitted++;
    return 'resume';
  }
}
