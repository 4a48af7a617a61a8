#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { FaveFailure, toFaveError } from '../errors.ts';
import { progressLine, describeFailure } from './render.ts';
import { EXIT, awaitWithProgress, fail, finish, requestId, withApp } from './shared.ts';
import { registerServe } from './commands/serve.ts';
import { registerGateway } from './commands/gateway.ts';
import { registerVisualize } from './commands/visualize.ts';
import { registerReport } from './commands/report.ts';

const program = new Command()
  .name('fave')
  .description('Orchestrates the FAVE video-analysis pipeline: clips, transcripts, objects, query matches')
  .showHelpAfterError();
program.exitOverride((err) => {
  process.exit(err.exitCode === 0 ? 0 : EXIT.badInput);
});

async function sampleVideo(): Promise<string> {
  const dir = resolve(process.env.FAVE_DATA_DIR || './.fave', 'samples');
  const path = resolve(dir, 'sample.mp4');
  if (!existsSync(path)) {
    const { mkdir } = await import('node:fs/promises');
    const { makeSampleVideo } = await import('../stages/local/sample-media.ts');
    await mkdir(dir, { recursive: true });
    process.stderr.write(`generating a sample video at ${path}\n`);
    await makeSampleVideo(path);
  }
  return path;
}

program
  .command('run')
  .description('run the pipeline on a video (a local file, s3:// or http(s):// URI), or on a generated sample')
  .argument('[video]', 'video file path or URI')
  .option('--sample', 'generate a 12 s sample video (three tone bursts) and run on it')
  .option('-q, --query <text>', 'what to look for, e.g. "find scenes with cars"')
  .option('-p, --profile <name>', 'profile (default, cold, warm, burst-ready, or one of FAVE_PROFILES_FILE)')
  .option('--request-id <id>', 'request id (re-using one joins or returns that request)', requestId)
  .option('--json', 'print the result JSON on stdout (logs stay on stderr)')
  .action(async (given: string | undefined, opts: { sample?: boolean; query?: string; profile?: string; requestId?: string; json?: boolean }) => {
    const json = opts.json === true;
    if (!given && !opts.sample) fail({ code: 'BAD_REQUEST', message: 'video: give a video file or URI, or --sample' });
    const video = given ?? (await sampleVideo().catch((err: unknown) => fail(toFaveError(err))));
    const isUri = /^(s3|https?):\/\//i.test(video);
    if (!isUri && !existsSync(video)) fail({ code: 'BAD_REQUEST', message: `video: no such file: ${video}` });
    const source = isUri ? video : resolve(video);
    const outcome = await withApp(async (app) => {
      let handle;
      try {
        handle = await app.orchestrator.submit(
          { video_uri: source, query: opts.query ?? null, profile: opts.profile ?? null, request_id: opts.requestId ?? null },
          // The CLI acts for the person running it: their files and their network.
          { allowLocalPath: !isUri, allowPrivateNetwork: true },
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
      // As for `fave run`: the person running the CLI may use their files and their network.
      const handle = await app.orchestrator.resume(id, { allowLocalPath: true, allowPrivateNetwork: true });
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

registerServe(program);
registerGateway(program);
registerVisualize(program);
registerReport(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof FaveFailure) fail(err.error);
  throw err;
}
