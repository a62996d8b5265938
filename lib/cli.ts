#!/usr/bin/env node
/**
 * The `llama-duet` command line, on the public API only: demo, generate, inspect, serve, make-pair, bench. One file
 * per command under lib/cli/. Exit codes: 0 ok, 1 runtime error, 2 usage error; errors print one line (the
 * stack trace with --verbose).
 */
import { LlamaDuetError } from './errors.js';
import { bench, usage as benchUsage } from './cli/bench.js';
import { UsageError } from './cli/common.js';
import { demo, usage as demoUsage } from './cli/demo.js';
import { generate, usage as generateUsage } from './cli/generate.js';
import { inspect, usage as inspectUsage } from './cli/inspect.js';
import { makePair, usage as makePairUsage } from './cli/makePair.js';
import { serve, usage as serveUsage } from './cli/serve.js';

const help = `llama-duet — expert/amateur GGUF decoding for Node.js

Usage:
  ${demoUsage}
  ${generateUsage}
  ${inspectUsage}
  ${serveUsage}
  ${makePairUsage}
  ${benchUsage}
  llama-duet <command> --help
  llama-duet --help

Exit codes: 0 ok, 1 runtime error (a bad file, a failed load or generation), 2 usage error. --verbose prints
stack traces.

Environment: LLAMA_DUET_LOG=debug|info|warn|error prints llama.cpp's log to stderr.
  LLAMA_DUET_CPU_VARIANT=<name> (prebuilt binary) loads that CPU variant instead of the best one for this
  CPU; LLAMA_DUET_AMX=0 skips the AMX variant; LLAMA_DUET_ADDON=<file.node> loads a given build;
  LLAMA_DUET_KERNELS=0 leaves Q8_0/Q4_K/Q6_K weights to ggml's own matmuls instead of llama-duet's
  multi-row kernels (read when a model loads), and attention to ggml's flash attention (read at every op).
`;

const commands: Record<string, (args: string[]) => Promise<void>> = { demo, generate, inspect, serve, 'make-pair': makePair, bench };

async function main(argv: string[]): Promise<number> {
    const [cmd, ...rest] = argv;
    if (cmd === undefined || cmd === '-h' || cmd === '--help' || cmd === 'help') {
        process.stdout.write(help);
        return 0;
    }
    const run = commands[cmd];
    if (!run) throw new UsageError(`unknown command '${cmd}' (commands: ${Object.keys(commands).join(', ')})`);
    await run(rest);
    return 0;
}

// `llama-duet demo | head`: a closed pipe ends the command quietly
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
});

const verbose = process.argv.includes('--verbose');
main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
        if (err instanceof UsageError) {
            process.stderr.write(`llama-duet: ${err.message}\n${err.usage ? `usage: ${err.usage}\n` : 'run llama-duet --help for the commands\n'}`);
            process.exitCode = 2;
            return;
        }
        if (err instanceof LlamaDuetError) process.stderr.write(`llama-duet: ${err.name} [${err.code}]: ${err.message}\n`);
        else process.stderr.write(`llama-duet: ${err instanceof Error ? err.message : String(err)}\n`);
        if (verbose && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
        process.exitCode = 1;
    },
);
