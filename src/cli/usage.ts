// The CLI's help text and its errors. Exit codes: 0 done, 1 the command failed (a node could
// not be reached, refused the request, failed to start), 2 the command line or config is wrong.

export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** A mistake in the command line or the config: printed with a hint, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A command that could not do its work: printed as it is, exit code 1. */
export class CommandFailedError extends Error {
  override readonly name = 'CommandFailedError';
}

export const HELP = `weft: run and talk to Weft nodes

Usage:
  weft start [--config FILE] [options]   run a node in this process
  weft dev [--nodes N] [--port P] [--postgres URL]
                                         a cluster of N nodes on loopback with the example app
  weft status [--node URL] [--json]      members, connections, functions and streams of a node
  weft send ADDRESS VALUE [--node URL]   send VALUE to a function, e.g. example/counter/ada '"hi"'
  weft view NAME [--watch] [--node URL]  print a view (cluster.members, node.stats, functions)
  weft help [COMMAND]

Options of start (each also settable in the config file; flags win over WEFT_* variables,
which win over the file):
  --config FILE        YAML or JSON config (docs/operations.md lists every setting)
  --name NAME          shown on the dashboard (WEFT_NAME)
  --host HOST          address to listen on (WEFT_HOST, default 127.0.0.1)
  --port PORT          HTTP port (WEFT_PORT, default 7400)
  --advertise URL      URL peers reach this node at (WEFT_ADVERTISE)
  --seed URL           a member to join through; repeat for more (WEFT_SEEDS, comma-separated)
  --data-dir DIR       where state lives (WEFT_DATA_DIR, default ./weft-data)
  --log-level LEVEL    fatal, error, warn, info, debug, trace or silent (WEFT_LOG_LEVEL)
  --example            run the example application
  --postgres URL       keep the runtime's state in PostgreSQL, shared by the cluster
                       (WEFT_POSTGRES_URL; put a password there, not in a flag; docs/cluster.md)
The cluster secret comes from the config file or WEFT_CLUSTER_SECRET, never from a flag
(a flag is visible to every user of the machine in the process list).

The node URL of status, send and view: --node, else WEFT_NODE, else http://127.0.0.1:7400.
Exit codes: 0 done, 1 failed, 2 bad command line or config.
`;

export const COMMAND_HELP: Readonly<Record<string, string>> = {
  start:
    'weft start [--config FILE] [--name NAME] [--host HOST] [--port PORT] [--advertise URL] [--seed URL]... [--data-dir DIR] [--log-level LEVEL] [--example] [--postgres URL]\n',
  dev: 'weft dev [--nodes N (1-9, default 3)] [--port P (first HTTP port, default 7400)] [--data-dir DIR (default ./.weft-dev)] [--postgres URL (state in PostgreSQL)]\n',
  status: 'weft status [--node URL] [--json]\n',
  send: 'weft send ADDRESS VALUE [--type TYPE (default weft/json)] [--node URL]\n  ADDRESS is namespace/type/id; VALUE is JSON, or taken as a JSON string when it is not JSON\n',
  view: 'weft view NAME [--watch] [--node URL]\n',
};
