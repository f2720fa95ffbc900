// weft/testing: what a user needs to test code built on Weft without sleeping or
// mocking the network by hand.
//
// - `FakeClock` implements the `Clock` every Weft component accepts; time moves only
//   when the test calls `advance`/`advanceAsync`, and timers fire in due order.
// - `serviceGate` decides whether a test that needs a real PostgreSQL or NATS runs,
//   is skipped with a reason, or (with WEFT_REQUIRE_SERVICES=1) fails.
// - `TestGrid` starts n grid nodes on loopback that know each other.
// - `RuntimeHarness` runs StateFun functions on the runtime with an in-memory store and a
//   FakeClock: send a message, advance time, read an address's state, collect egress.

export { FakeClock } from '../internal/fake-clock.ts';
export { TestGrid } from './test-grid.ts';
export { RuntimeHarness } from './runtime-harness.ts';
export { serviceGate, postgresService, natsService, requireServicesVariable } from './services.ts';

export type { Clock, Timer, TimerOptions } from '../internal/clock.ts';
export type { Logger } from '../internal/log-safely.ts';
export type { FakeClockOptions } from '../internal/fake-clock.ts';
export type { ServiceGate, ServiceProbe } from './services.ts';
export type { TestGridOptions } from './test-grid.ts';
export type { RuntimeHarnessOptions, CollectedEgress } from './runtime-harness.ts';
