// The errors every Weft module shares. Each module's index re-exports this list, so one
// import from any module covers what its calls throw; the root entry does the same.

export {
  CancelledError,
  CapacityExceededError,
  ClosedError,
  ConfigError,
  DeadlineExceededError,
  isRetryable,
  WeftError,
} from './errors.ts';
