#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { createApp, type App } from '../app.ts';
import { FaveFailure, toFaveError, type FaveError } from '../errors.ts';
import { REQUEST_ID_PATTERN } from '../contracts/request.ts';
import type { ExecutionOutcome } from '../orchestrator/execution.ts';
import { describeFailure, progressLine, renderResult } from './render.ts';

/** Exit codes of DESIGN §8. */
const EXIT = { completed: 0, failed: 1, badInput: 2 } as const;

const BAD_INPUT_CODES = new Set(['BAD_REQUEST', 'BAD_CONFIG', 'INPUT_NOT_FOUND', 'STATE_CORRUPT', 'STATE_VERSION']);

function requestId(value: string): string {
  if (!REQUEST_ID_PATTERN.test(value)) throw new InvalidArgumentError('must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$');
  return value;
}

function fail(error: FaveError): never {
  process.stderr.write(`fave: ${describeFailure(error)}\n`);
  process.exit(BAD_INPUT_CODES.has(error.code) ? EXIT.badInput : EXIT.failed);
}

async function withApp<T>(fn: (app: App) => Promise<T>, quietLogs: boolean): Promise<T> {
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

/** Prints the outcome and exits with its code. */
function finish(outcome: ExecutionOutcome, json: boolean): never {
  if (json) process.stdout.write(`${JSON.stringify(outcome.result, null, 2)}\n`);
  else process.stdout.write(`${renderResult(outcome.result)}\n`);
  process.exit(outcome.status === 'COMPLETED' ? EXIT.completed : EXIT.failed);
}

async function awaitWithProgress(app: App, handle: Awaited<ReturnType<App['orchestrator']['submit']>>, json: boolean): Promise<ExecutionOutcome> {
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
  } else if (!json && !handle.local) {
    process.stderr.write(`request ${handle.request_id} is run by another process; waiting for it\n`);
  }
  const onSignal = () => {
    process.stderr.write('\ninterrupted: the request stays resumable with `fave resume`\n');
    void app.close().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  try {
    return await handle.done;
  } finally {
    stop();
    process.off('SIGINT', onSignal);
    if (tty) process.stderr.write('\r\x1b[2K');
  }
}

const program = new Command()
  .name('fave')
  .description('Orchestrates the FAVE video-analysis pipeline: clips, transcripts, objects, query matches')
  .showHelpAfterError();
program.exitOverride((err) => {
  process.exit(err.exitCode === 0 ? 0 : EXIT.badInput);
});

program
  .command('run')
  .description('run the pipeline on a video (a local file, s3:// or http(s):// URI)')
  .argument('<video>', 'video file path or URI')
  .option('-q, --query <text>', 'what to look for, e.g. "find scenes with cars"')
  .option('-p, --profile <name>', 'profile (default, cold, warm, burst-ready, or one of FAVE_PROFILES_FILE)')
  .option('--request-id <id>', 'request id (re-using one joins or returns that request)', requestId)
  .option('--json', 'print the result JSON on stdout (logs stay on stderr)')
  .action(async (video: string, opts: { query?: string; profile?: string; requestId?: string; json?: boolean }) => {
    const json = opts.json === true;
    const isUri = /^(s3|https?):\/\//i.test(video);
    if (!isUri && !existsSync(video)) fail({ code: 'BAD_REQUEST', message: `video: no such file: ${video}` });
    const source = isUri ? video : resolve(video);
    const outcome = await withApp(async (app) => {
      let handle;
      try {
        handle = await app.orchestrator.submit(
          { video_uri: source, query: opts.query ?? null, profile: opts.profile ?? null, request_id: opts.requestId ?? null },
          { allowLocalPath: !isUri },
        );
      } catch (err) {
        fail(toFaveError(err));
      }
      if (!json) process.stderr.write(`request ${handle.request_id}\n`);
      return awaitWithProgress(app, handle, json);
    }, !json && process.stderr.isTTY === true).catch((err: unknown) => fail(toFaveError(err)));
    finish(outcome, json);
  });

program
  .command('resume')
  .description('resume an interrupted request, or redrive a failed one from the step that failed')
  .argument('<id>', 'request id', requestId)
  .option('--json', 'print the result JSON on stdout')
  .action(async (id: string, opts: { json?: boolean }) => {
    const json = opts.json === true;
    const outcome = await withApp(async (app) => {
      const handle = await app.orchestrator.resume(id);
      return awaitWithProgress(app, handle, json);
    }, !json && process.stderr.isTTY === true).catch((err: unknown) => fail(toFaveError(err)));
    finish(outcome, json);
  });

program
  .command('status')
  .description("show a request's state and progress")
  .argument('<id>', 'request id', requestId)
  .option('--json', 'print JSON')
  .action(async (id: string, opts: { json?: boolean }) => {
    const view = await withApp((app) => app.orchestrator.status(id), true).catch((err: unknown) => fail(toFaveError(err)));
    if (!view) fail({ code: 'INPUT_NOT_FOUND', message: `no request ${id}` });
    if (opts.json) process.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
    else {
      process.stdout.write(`${view.request_id}: ${view.status} (${view.state})\n${progressLine(view)}\n`);
      if (view.error) process.stdout.write(`error: ${describeFailure(view.error)}\n`);
    }
    process.exit(view.status === 'FAILED' ? EXIT.failed : EXIT.completed);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof FaveFailure) fail(err.error);
  throw err;
}
