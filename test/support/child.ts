import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { until } from './until.ts';

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
 * `fave serve` on loopback with `env`, on a port it picks itself (`--port 0`): its address is read
 * from the line it prints once listening. A port probed free beforehand could be taken by another
 * process before the server binds it.
 */
export async function serveOnAnyPort(env: Record<string, string>): Promise<ServedFave> {
  const run = runFave(['serve', '--port', '0', '--host', '127.0.0.1'], env);
  let log = '';
  let printed = '';
  let exited: string | null = null;
  run.child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  run.child.stdout!.on('data', (d: Buffer) => (printed += d.toString()));
  void run.exit.then(({ code, signal }) => (exited = `exited (code ${code}, signal ${signal})`));
  const listened = until(
    () => {
      const listening = /^fave serve: API (http:\/\/127\.0\.0\.1:\d+)\//m.exec(printed);
      if (listening) return listening[1];
      if (exited !== null) throw new Error(`fave serve ${exited} before it listened; stderr: ${log}`);
      return null;
    },
    { timeoutMs: 30_000, everyMs: 20, message: () => `fave serve to print its address; stdout: ${printed}; stderr: ${log}` },
  );
  const base = await listened.catch((err: unknown) => {
    // No caller holds it yet to stop it.
    if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
    throw err;
  });
  return { run, base, log: () => log };
}

/**
 * `fave serve` on loopback over the embedded store in `{dir}/data`, with no secrets, logging
 * warnings only; `env` adds to or overrides that.
 */
export function serveFave(dir: string, env: Record<string, string>): Promise<ServedFave> {
  return serveOnAnyPort({
    FAVE_DATA_DIR: join(dir, 'data'),
    LOG_LEVEL: 'warn',
    OPENFAAS_SECRETS_DIR: join(dir, 'no-secrets'),
    ...env,
  });
}
