// Label values that come from events (a peer's host, a function type) are open sets. A
// budget keeps each metric's series bounded: past it, new values are folded into `other`.

export const OTHER_LABEL = 'other';

export interface LabelBudget {
  /** `value` itself while the budget lasts or once seen, else `other`. */
  admit(value: string): string;
}

export function labelBudget(maxValues: number): LabelBudget {
  const seen = new Set<string>();
  return {
    admit(value) {
      if (seen.has(value)) return value;
      if (seen.size >= maxValues) return OTHER_LABEL;
      seen.add(value);
      return value;
    },
  };
}
