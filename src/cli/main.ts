#!/usr/bin/env node
// The `weft` executable: `weft <command> [options]`; `weft help` lists the commands.

import { VERSION } from '../weft/index.ts';
import { sendCommand, statusCommand, viewCommand } from './client-commands.ts';
import { devCommand } from './dev-command.ts';
import { startCommand } from './start-command.ts';
import { COMMAND_HELP, CommandFailedError, EXIT_FAILED, EXIT_USAGE, HELP, UsageError } from './usage.ts';

async function run(argv: readonly string[]): Promise<number> {
  const [command, ...args] = argv;
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(COMMAND_HELP[command ?? ''] ?? HELP);
    return 0;
  }
  switch (command) {
    case 'start':
      return startCommand(args);
    case 'dev':
      return devCommand(args);
    case 'status':
      return statusCommand(args, process.env);
    case 'send':
      return sendCommand(args, process.env);
    case 'view':
      return viewCommand(args, process.env);
    case 'version':
    case '--version':
      console.log(VERSION);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(args[0] === undefined ? HELP : (COMMAND_HELP[args[0]] ?? HELP));
      return 0;
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

const [command] = process.argv.slice(2);
try {
  process.exitCode = await run(process.argv.slice(2));
  // A node that has stopped is done: nothing it left (a native store's thread, an idle socket)
  // may keep the process alive.
  if (command === 'start' || command === 'dev') process.exit(process.exitCode);
} catch (error) {
  const usage =
    error instanceof UsageError ||
    (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true ||
    (error as { code?: string }).code === 'WEFT_INVALID_CONFIG';
  if (usage) {
    process.stderr.write(`weft: ${(error as Error).message}\nRun \`weft help\` for usage.\n`);
    process.exitCode = EXIT_USAGE;
  } else if (error instanceof CommandFailedError) {
    process.stderr.write(`weft: ${error.message}\n`);
    process.exitCode = EXIT_FAILED;
  } else {
    process.stderr.write(`weft: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = EXIT_FAILED;
  }
}
