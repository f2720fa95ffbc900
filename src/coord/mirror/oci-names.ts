// Repository names and tags as the OCI distribution spec spells them, shared by the origin client
// and the mirror's HTTP routes so both accept exactly the same strings.
//
// The name grammar admits only lowercase alphanumeric components joined by `.`, `_`, `__` or runs
// of `-`, and components joined by single `/`: so `..`, `//`, `%`, `\`, NUL and leading or
// trailing `/` can never appear in an accepted name, and a name is safe to embed in a URL path.

/** OCI distribution spec repository name grammar. */
export const REPOSITORY_NAME_PATTERN =
  /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;

/** Longest repository name accepted: the bound Docker applies to names. */
export const MAX_REPOSITORY_NAME_LENGTH = 255;

/** OCI distribution spec tag grammar (at most 128 characters). */
export const TAG_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** True when `value` is an accepted repository name, e.g. `library/alpine`. */
export function isRepositoryName(value: unknown): value is string {
  // The length bound comes first so the pattern never runs on huge input.
  return (
    typeof value === 'string' &&
    value.length <= MAX_REPOSITORY_NAME_LENGTH &&
    REPOSITORY_NAME_PATTERN.test(value)
  );
}

/** True when `value` is an accepted tag, e.g. `3.20` or `latest`. */
export function isTag(value: unknown): value is string {
  return typeof value === 'string' && value.length <= 128 && TAG_PATTERN.test(value);
}
