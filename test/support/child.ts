import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from './free-port.ts';

export const FAVE_BIN = join(import.meta.dirname, '..', '..', 'bin', 'fave.js');

export interface ChildRun {
  child: ChildProcess;
  /** Resolves when the process exits, with what it printed. */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** Runs the real `fave` CLI in a child process, from the sources. */
export function runFave(args: string[], env: Record<string, string>): ChildRun {
  const child = spawn(process.execPath, [FAVE_BIN, ...args], {
    env: { ...process.env, ...env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    // 'close', not 'exit': it comes once the pipes are drained, so nothing printed is missed.
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, exit };
}

export interface ServedFave {
  run: ChildRun;
  /** `http://127.0.0.1:{port}` */
  base: string;
  /** What the server has printed on stderr so far, for failure messages. */
  log(): string;
}

/**
 * `fave serve` on loopback over the embedded store in `{dir}/data`, with no secrets, logging
 * warnings only; `env` adds to or overrides that.
 */
export async function serveFave(dir: string, env: Record<string, string>): Promise<ServedFave> {
  const port = await freePort();
  const run = runFave(['serve', '--port', String(port), '--host', '127.0.0.1'], {
    FAVE_DATA_DIR: join(dir, 'data'),
    LOG_LEVEL: 'warn',
    OPENFAAS_SECRETS_DIR: join(dir, 'no-secrets'),
    ...env,
  });
  let log = '';
  run.child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  return { run, base: `http://127.0.0.1:${port}`, log: () => log };
}
