import { createApp, type App } from '../app.ts';
import { FsStore } from '../persistence/fs-store.ts';
import { parseS3Uri } from '../persistence/store.ts';
import { toFaveError, type ErrorCode, type FaveError } from '../domain/errors.ts';
import { REQUEST_ID_MESSAGE, REQUEST_ID_PATTERN } from '../domain/request.ts';
import type { ExecutionOutcome } from '../orchestrator/execution.ts';
import { InvalidArgumentError } from 'commander';
import { reportOwnerWhileWaiting } from './ownership.ts';
import { describeFailure, progressLine, renderResult } from './render.ts';

/** The exit codes of every command. */
export const EXIT = { completed: 0, failed: 1, badInput: 2 } as const;

export const BAD_INPUT_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['BAD_REQUEST', 'BAD_CONFIG', 'INPUT_NOT_FOUND', 'REQUEST_NOT_FOUND', 'STATE_CORRUPT', 'STATE_VERSION']);

export function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port number (0-65535)');
  return n;
}

export function requestId(value: string): string {
  if (!REQUEST_ID_PATTERN.test(value)) throw new InvalidArgumentError(REQUEST_ID_MESSAGE);
  return value;
}

export function fail(error: FaveError): never {
  process.stderr.write(`fave: ${describeFailure(error)}\n`);
  process.exit(BAD_INPUT_CODES.has(error.code) ? EXIT.badInput : EXIT.failed);
}

export async function withApp<T>(fn: (app: App) => Promise<T>, quietLogs: boolean): Promise<T> {
  let app: App;
  try {
    const env = { ...process.env };
    if (quietLogs && !env.LOG_LEVEL) env.LOG_LEVEL = 'warn';
    app = await createApp({ env });
  } catch (err) {
    fail(toFaveError(err));
  }
  try {
    return await fn(app);
  } finally {
    await app.close();
  }
}

/**
 * Exits with `code` once stdout and stderr have handed everything written to them to the OS.
 * `process.exit()` right after a write drops whatever a pipe has not taken yet (a pipe holds
 * 64 KiB), so `fave run --json | cat` would print a cut answer and still exit 0. A reader that
 * went away (EPIPE) ends the wait too. The promise never settles: the process ends first.
 */
export function exitFlushed(code: number): Promise<never> {
  process.exitCode = code;
  return new Promise<never>(() => {
    let waiting = 2;
    const done = () => {
      waiting -= 1;
      if (waiting === 0) process.exit(code);
    };
    for (const stream of [process.stdout, process.stderr]) {
      stream.once('error', () => process.exit(code));
      stream.write('', done);
    }
  });
}

/** Where the local store keeps an `s3://` object, for showing it as a path; null for S3. */
export function localPathOf(app: App): (uri: string) => string | null {
  const store = app.store;
  if (!(store instanceof FsStore)) return () => null;
  return (uri) => {
    try {
      return store.path(parseS3Uri(uri));
    } catch {
      return null;
    }
  };
}

/** Columns of the terminal the table goes to; COLUMNS or 100 when stdout is not one. */
function outputWidth(): number {
  if (process.stdout.isTTY && process.stdout.columns) return process.stdout.columns;
  const fromEnv = Number(process.env.COLUMNS);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : 100;
}

/** Prints the outcome and exits with its code once it is all out. */
export function finish(outcome: ExecutionOutcome, json: boolean, localPath: (uri: string) => string | null = () => null): Promise<never> {
  if (json) process.stdout.write(`${JSON.stringify(outcome.result, null, 2)}\n`);
  else process.stdout.write(`${renderResult(outcome.result, { width: outputWidth(), localPath })}\n`);
  return exitFlushed(outcome.status === 'COMPLETED' ? EXIT.completed : EXIT.failed);
}

export async function awaitWithProgress(app: App, handle: Awaited<ReturnType<App['orchestrator']['submit']>>, json: boolean): Promise<ExecutionOutcome> {
  const id = handle.request_id;
  const tty = !json && process.stderr.isTTY === true;
  let stop = () => {};
  if (tty && handle.execution) {
    let last = 0;
    stop = handle.execution.onProgress((view) => {
      const now = Date.now();
      if (now - last < 100 && view.status === 'RUNNING') return;
      last = now;
      process.stderr.write(`\r\x1b[2K${progressLine(view)}`);
    });
  } else if (!handle.local) {
    // Another owner runs it (or it had finished, which the reporter sees and says nothing about).
    stop = reportOwnerWhileWaiting(app, id, process.stderr.isTTY === true);
  }
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    stop();
    process.stderr.write(`\ninterrupted: request ${id} stays resumable; continue it with\n  fave resume ${id}\n`);
    void app.close().then(() => exitFlushed(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await handle.done;
  } catch (err) {
    // Abandoning the request on a signal rejects it; the signal handler exits, with 130.
    if (interrupted) return new Promise<never>(() => {});
    throw err;
  } finally {
    stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (tty) process.stderr.write('\r\x1b[2K');
  }
}
