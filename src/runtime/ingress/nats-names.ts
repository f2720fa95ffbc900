// What JetStream accepts as a stream or consumer name: it becomes a token of API subjects and,
// on the server, a directory name.

// Keeps `nats:<stream>:<sequence>` well within the 512 characters a store keeps of an ingress id.
const MAX_NAME_LENGTH = 255;

/** Why `name` cannot name a stream or consumer, or undefined when it can. */
export function natsNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string' || name === '') return 'must be a non-empty string';
  if (name.length > MAX_NAME_LENGTH) return `must be at most ${MAX_NAME_LENGTH} characters`;
  if (/[\s.*>/\\]/.test(name) || /\p{Cc}/u.test(name)) {
    return `${JSON.stringify(name)} contains whitespace, a control character or one of . * > / \\`;
  }
  return undefined;
}
