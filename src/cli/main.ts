#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { z } from 'zod';
import { FaveFailure, toFaveError } from '../domain/errors.ts';
import { importLocalStages } from '../stages/load-local.ts';
import { describeOwner } from './ownership.ts';
import { progressLine, describeFailure } from './render.ts';
import { EXIT, awaitWithProgress, exitFlushed, fail, finish, localPathOf, requestId, withApp } from './shared.ts';
import { linkLocalRefusal, notAVideo, speechEngineLine } from './input-checks.ts';
import { registerServe } from './commands/serve.ts';
import { registerGateway } from './commands/gateway.ts';
import { registerVisualize } from './commands/visualize.ts';
import { registerReport } from './commands/report.ts';
import { registerLoad } from './commands/load.ts';
import { registerAnalyze } from './commands/analyze.ts';
import { registerStage } from './commands/stage.ts';

/** package.json sits two levels up both from src/cli/main.ts and from the image's dist/cli/main.js. */
function packageVersion(): string {
  const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  return z.object({ version: z.string() }).parse(JSON.parse(text)).version;
}
import { registerGc } from './commands/gc.ts';

const program = new Command()
  .name('fave')
  .description('Orchestrates the FAVE video-analysis pipeline: clips, transcripts, objects, query matches')
  .version(packageVersion(), '-V, --version', 'print the version')
  .showHelpAfterError();
program.exitOverride((err) => {
  process.exit(err.exitCode === 0 ? 0 : EXIT.badInput);
});

async function sampleVideo(): Promise<string> {
  const dir = resolve(process.env.FAVE_DATA_DIR || './.fave', 'samples');
  const path = resolve(dir, 'sample.mp4');
  if (!existsSync(path)) {
    process.stderr.write(`generating a sample video at ${path}\n`);
    await writeSample(path);
  }
  return path;
}

async function writeSample(path: string): Promise<void> {
  const { mkdir } = await import('node:fs/promises');
  const { dirname } = await import('node:path');
  const { makeSampleVideo } = await importLocalStages(() => import('../stages/local/sample-media.ts'));
  await mkdir(dirname(path), { recursive: true });
  await makeSampleVideo(path);
}

/** Why a local video path cannot be read, before any request is made of it; null when it can. */
async function unreadableFile(path: string): Promise<string | null> {
  const { access, constants, stat } = await import('node:fs/promises');
  const info = await stat(path).catch(() => null);
  if (!info) return `no such file: ${path}`;
  if (info.isDirectory()) return `${path} is a directory, not a video file`;
  if (!info.isFile()) return `${path} is not a regular file`;
  const denied = await access(path, constants.R_OK).then(
    () => null,
    (err: unknown) => (err as Error).message,
  );
  return denied ? `${path} cannot be read (${denied})` : null;
}

program
  .command('run')
  .description('run the pipeline on a video (a local file, s3:// or http(s):// URI), or on a generated sample')
  .argument('[video]', 'video file path or URI')
  .option('--sample', 'generate a 12 s sample video (three tone bursts; the silences between them are clips too) and run on it')
  .option('-q, --query <text>', 'what to look for, e.g. "find scenes with cars"')
  .option('-p, --profile <name>', 'profile (default, cold, warm, burst-ready, or one of FAVE_PROFILES_FILE)')
  .option('--request-id <id>', 'request id (re-using one joins or returns that request)', requestId)
  .option('--json', 'print the result JSON on stdout (logs stay on stderr)')
  .action(async (given: string | undefined, opts: { sample?: boolean; query?: string; profile?: string; requestId?: string; json?: boolean }) => {
    const json = opts.json === true;
    if (!given && !opts.sample) fail({ code: 'BAD_REQUEST', message: 'video: give a video file or URI, or --sample' });
    const video = given ?? (await sampleVideo().catch((err: unknown) => fail(toFaveError(err))));
    const isUri = /^(s3|https?):\/\//i.test(video);
    if (!isUri) {
      const problem = (await unreadableFile(video)) ?? (await notAVideo(video));
      if (problem) fail({ code: 'BAD_REQUEST', message: `video: ${problem}` });
    }
    const source = isUri ? video : resolve(video);
    const outcome = await withApp(
      async (app) => {
        const refusal = app.config.allowPrivateSources ? null : await linkLocalRefusal(source);
        if (refusal) fail({ code: 'BAD_REQUEST', message: `video: ${refusal}` });
        const speech = app.config.gatewayUrl ? null : await speechEngineLine();
        if (speech) process.stderr.write(`${speech}\n`);
        let handle;
        try {
          handle = await app.orchestrator.submit(
            { video_uri: source, query: opts.query ?? null, profile: opts.profile ?? null, request_id: opts.requestId ?? null },
            // The CLI acts for the person running it: their files and their network, though not the
            // cloud's metadata service unless ALLOW_PRIVATE_SOURCES says so.
            { allowLocalPath: !isUri, allowPrivateNetwork: app.config.allowPrivateSources ? true : 'except-link-local' },
          );
        } catch (err) {
          fail(toFaveError(err));
        }
        if (!json) process.stderr.write(`request ${handle.request_id}\n`);
        return { outcome: await awaitWithProgress(app, handle, json), localPath: localPathOf(app) };
      },
      !json && process.stderr.isTTY === true,
    ).catch((err: unknown) => fail(toFaveError(err)));
    await finish(outcome.outcome, json, outcome.localPath);
  });

program
  .command('resume')
  .description('resume an interrupted request, or redrive a failed one from the step that failed')
  .argument('<id>', 'request id', requestId)
  .option('--json', 'print the result JSON on stdout')
  .action(async (id: string, opts: { json?: boolean }) => {
    const json = opts.json === true;
    const outcome = await withApp(
      async (app) => {
        const before = await app.orchestrator.requests.view(id);
        // As for `fave run`: the person running the CLI may use their files and their network.
        const handle = await app.orchestrator.resume(id, { allowLocalPath: true, allowPrivateNetwork: app.config.allowPrivateSources ? true : 'except-link-local' });
        if (before?.status === 'COMPLETED') process.stderr.write(`request ${id} is already COMPLETED; nothing to resume. Its answer:\n`);
        return { outcome: await awaitWithProgress(app, handle, json), localPath: localPathOf(app) };
      },
      !json && process.stderr.isTTY === true,
    ).catch((err: unknown) => fail(toFaveError(err)));
    await finish(outcome.outcome, json, outcome.localPath);
  });

program
  .command('status')
  .description("show a request's state and progress")
  .argument('<id>', 'request id', requestId)
  .option('--json', 'print JSON')
  .action(async (id: string, opts: { json?: boolean }) => {
    const view = await withApp((app) => app.orchestrator.requests.view(id), true).catch((err: unknown) => fail(toFaveError(err)));
    if (!view) fail({ code: 'REQUEST_NOT_FOUND', message: `no request ${id}` });
    const owner = view.status === 'RUNNING' ? describeOwner(view, Date.now()) : null;
    if (opts.json) {
      const { request_id, status, state, progress, error, lease, updated_at } = view;
      process.stdout.write(`${JSON.stringify({ request_id, status, state, progress, error, lease, updated_at }, null, 2)}\n`);
    } else {
      process.stdout.write(`${view.request_id}: ${view.status} (${view.state})${owner ? `, ${owner}` : ''}\n${progressLine(view)}\n`);
      if (view.error) process.stdout.write(`error: ${describeFailure(view.error)}\n`);
    }
    await exitFlushed(view.status === 'FAILED' ? EXIT.failed : EXIT.completed);
  });

program
  .command('sample')
  .description('write the sample video: 12 s of test pattern with three tone bursts (the silences between them become clips too)')
  .requiredOption('-o, --output <path>', 'where to write it, e.g. video.mp4')
  .action(async (opts: { output: string }) => {
    const path = resolve(opts.output);
    await writeSample(path).catch((err: unknown) => fail(toFaveError(err)));
    process.stdout.write(`${path}\n`);
    await exitFlushed(EXIT.completed);
  });

registerServe(program);
registerGateway(program);
registerVisualize(program);
registerReport(program);
registerLoad(program);
registerAnalyze(program);
registerStage(program);
registerGc(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof FaveFailure) fail(err.error);
  throw err;
}
