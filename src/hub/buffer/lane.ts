// A lane is the kind of frame a packet carries; each lane may have its own limits, so that a
// burst of video cannot push out the audio waiting beside it.

export const lanes = ['audio', 'video', 'binary', 'payload'] as const;

/** The packet's frame type (`audio | video | binary`), else `payload`. */
export type Lane = (typeof lanes)[number];

export function isLane(value: unknown): value is Lane {
  return typeof value === 'string' && (lanes as readonly string[]).includes(value);
}
