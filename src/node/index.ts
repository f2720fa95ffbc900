// weft/node: a Weft node in a process of your own. `startNode(config)` wires the grid, views,
// the runtime, the hub and the mirror behind one HTTP server, with membership, metrics, health
// and the dashboard (docs/operations.md). The `weft` executable (`weft start`) is this, with its
// configuration read from a file, the environment and flags.

export { startNode, INGRESS_PREFIX, STATUS_PATH, VIEWS_PREFIX } from './node.ts';
export {
  defaultNodeConfig,
  DEFAULT_PORT,
  nodeConfigFromEnv,
  readNodeConfigFile,
  resolveNodeConfig,
} from './config.ts';
export { MEMBERS_TOPIC, MEMBERSHIP_HANDLER } from './membership.ts';
export { NODE_STATS_TOPIC } from './node-stats.ts';
export { COUNTER_TYPE, FUNCTIONS_TOPIC, JSON_MESSAGE_TYPE } from './example-app.ts';
export type { LogLevel, NodeConfig, NodeConfigInput } from './config.ts';
export type { StartNodeOptions, WeftNode } from './node.ts';
export type { Member, MemberState } from './membership.ts';
export type { ConnectionSummary, NodeStats } from './node-stats.ts';
export type { PoolFigures } from './postgres-pool.ts';
export type { FunctionEntry } from './example-app.ts';
export type { NodeLogger } from './logger.ts';
export type { Clock, Timer, TimerOptions } from '../internal/clock.ts';
