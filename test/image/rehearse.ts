/**
 * The container image, rehearsed without Docker: the Dockerfile's build stage (its install,
 * compile, page-script bundle and prune commands, with the same flags) in a scratch directory, its
 * runtime stage's files only (package.json, node_modules, dist), then what the image runs:
 * `node dist/cli/main.js --help`, `node dist/cli/main.js serve` completing one request through
 * HTTP against the scripted test gateway and showing its page with the bundled script, and `dist/handler.js` loaded by a stand-in of the
 * OpenFaaS Node template's index.js completing another.
 *
 * Then the stage image (Dockerfile.stages), as rehearse-stages.ts describes.
 *
 *   npx tsx test/image/rehearse.ts [--node <path to a node binary>]... [--keep]
 *
 * Each `--node` runs the image's processes under that binary (default: this one); the install
 * and the compile run once, with this machine's npm. Exits non-zero with the failing step named.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FsStore } from '../../src/persistence/fs-store.ts';
import { startTestGateway, type TestGateway } from '../support/test-gateway.ts';
import { until } from '../support/until.ts';
import { buildStageImage, checkStagesDockerfile, rehearseStages, type Runner } from './rehearse-stages.ts';

const REPO = join(import.meta.dirname, '..', '..');
const BUCKET = 'fave-artifacts';
const VIDEO_KEY = 'uploads/rehearsal.mp4';
const CLIPS = 3;

/** The build stage's commands, as the Dockerfile spells them; checked against it before running. */
const BUILD_STEPS = [
  'npm ci --omit=optional --ignore-scripts --no-audit --no-fund',
  'npx tsc -p tsconfig.build.json',
  'node scripts/bundle-browser.mjs',
  'npm prune --omit=dev --omit=optional --no-audit --no-fund',
];
/** What the build stage copies in, and what the runtime stage keeps of it. */
const BUILD_INPUTS = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts', 'src'];
const RUNTIME_KEEPS = ['package.json', 'node_modules', 'dist'];
/** The optional packages the image leaves out; their absence is what the rehearsal is about. */
const LEFT_OUT = ['@ffmpeg-installer/linux-x64', '@ffprobe-installer/linux-x64', 'onnxruntime-node'];

/**
 * The environment of the image's processes (the stack.yml settings that matter here), the one
 * place to add what the server needs to start, e.g. credentials the API may come to require.
 */
/** The image refuses to start without API tokens: the rehearsal gives it one and calls with it. */
const API_TOKEN = 'rehearsal-operate-token-0123456789';

function imageEnv(dataDir: string, gatewayUrl: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    GATEWAY_URL: gatewayUrl,
    FAVE_STORE: 'fs',
    FAVE_DATA_DIR: dataDir,
    ARTIFACT_BUCKET: BUCKET,
    OPENFAAS_SECRETS_DIR: join(dataDir, 'no-secrets'),
    RETRY_BASE_DELAY_MS: '5',
    RETRY_MAX_DELAY_MS: '20',
    LOG_LEVEL: 'info',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    FAVE_API_TOKENS: `operate:${API_TOKEN}`,
  };
}

const STEP_TIMEOUT_MS = 180_000;
const START_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 60_000;

class StepFailed extends Error {}

function step(name: string): void {
  process.stdout.write(`image rehearsal: ${name}\n`);
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

function collect(child: ChildProcess): { output: () => string; exit: Promise<Exit> } {
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exit = new Promise<Exit>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, output })));
  return { output: () => output, exit };
}

async function run(command: string, cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const child = spawn('sh', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const { exit } = collect(child);
  const timer = setTimeout(() => child.kill('SIGKILL'), STEP_TIMEOUT_MS);
  const result = await exit.finally(() => clearTimeout(timer));
  if (result.code !== 0) throw new StepFailed(`\`${command}\` exited ${result.code ?? result.signal}:\n${result.output}`);
  return result.output;
}

async function checkDockerfile(): Promise<void> {
  const dockerfile = await readFile(join(REPO, 'Dockerfile'), 'utf8');
  const buildStage = dockerfile.split(/^FROM /m).find((stage) => / AS build\b/.test(stage.split('\n')[0] ?? '')) ?? '';
  const flat = buildStage.replace(/\\\n\s*/g, ' ').replace(/ +/g, ' ');
  for (const command of BUILD_STEPS) {
    if (!flat.includes(command)) throw new StepFailed(`the Dockerfile's build stage no longer runs \`${command}\`: update the rehearsal with it`);
  }
  for (const keep of RUNTIME_KEEPS) {
    if (!new RegExp(`COPY --from=build .*/src/${keep} `).test(dockerfile)) throw new StepFailed(`the Dockerfile's runtime stage no longer copies ${keep}: update the rehearsal`);
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** The build stage, then only what the runtime stage copies. */
async function buildImage(dir: string): Promise<void> {
  for (const input of BUILD_INPUTS) await cp(join(REPO, input), join(dir, input), { recursive: true });
  for (const command of BUILD_STEPS) {
    step(command);
    await run(command, dir);
  }
  for (const entry of BUILD_INPUTS) if (!RUNTIME_KEEPS.includes(entry)) await rm(join(dir, entry), { recursive: true, force: true });
  for (const pkg of LEFT_OUT) {
    if (await exists(join(dir, 'node_modules', pkg))) throw new StepFailed(`${pkg} is in the image's node_modules; the rehearsal expects it left out`);
  }
}

async function nodeVersion(node: string): Promise<string> {
  return (await run(`"${node}" --version`, REPO)).trim();
}

/** Starts a process and waits for the line that says where it listens. */
async function startListening(
  node: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  portOf: (output: string) => string | null,
): Promise<{ child: ChildProcess; url: string; output: () => string; exit: Promise<Exit> }> {
  const child = spawn(node, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const { output, exit } = collect(child);
  let exited: Exit | null = null;
  void exit.then((e) => (exited = e));
  const url = await until(
    () => {
      const found = portOf(output());
      if (!found && exited) throw new StepFailed(`\`node ${args.join(' ')}\` exited ${(exited as Exit).code ?? (exited as Exit).signal} before listening:\n${output()}`);
      return found;
    },
    { timeoutMs: START_TIMEOUT_MS, everyMs: 50 },
  ).catch((err: unknown) => {
    if (err instanceof StepFailed) throw err;
    child.kill('SIGKILL');
    throw new StepFailed(`\`node ${args.join(' ')}\` did not listen within ${START_TIMEOUT_MS / 1000} s:\n${output()}`);
  });
  return { child, url, output, exit };
}

async function stop(server: { child: ChildProcess; exit: Promise<Exit> }): Promise<Exit> {
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 15_000);
  return server.exit.finally(() => clearTimeout(timer));
}

/** One synchronous request through HTTP; the answer must be a COMPLETED result with every clip. */
async function completeOneRequest(base: string, requestId: string, what: string): Promise<void> {
  const health = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  if (health.status !== 200) throw new StepFailed(`${what}: GET /healthz answered ${health.status}: ${await health.text()}`);
  const res = await fetch(`${base}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_TOKEN}` },
    body: JSON.stringify({ video_uri: `s3://${BUCKET}/${VIDEO_KEY}`, query: 'find scenes with cars', request_id: requestId }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await res.text();
  let body: { status?: unknown; result?: { clips?: unknown[] } };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new StepFailed(`${what}: POST / answered ${res.status} with a body that is not JSON: ${text.slice(0, 500)}`);
  }
  if (res.status !== 200 || body.status !== 'COMPLETED' || body.result?.clips?.length !== CLIPS) {
    throw new StepFailed(`${what}: POST / answered ${res.status}, expected 200 COMPLETED with ${CLIPS} clips: ${text.slice(0, 1000)}`);
  }
}

/** The request's page, with the script the build bundled (dist/ui/browser/) inlined. */
async function requestPageHasItsScript(base: string, requestId: string): Promise<void> {
  const res = await fetch(`${base}/ui/requests/${requestId}`, { headers: { authorization: `Bearer ${API_TOKEN}` }, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const html = await res.text();
  if (res.status !== 200 || !html.includes('critical path: ')) {
    throw new StepFailed(`GET /ui/requests/${requestId} answered ${res.status} without the page's script: ${html.slice(0, 500)}`);
  }
}

async function smokeCli(node: string, dir: string, env: NodeJS.ProcessEnv, tag: string): Promise<void> {
  step(`${tag}: node dist/cli/main.js --help`);
  const help = await run(`"${node}" dist/cli/main.js --help`, dir, env);
  if (!/\bserve\b/.test(help)) throw new StepFailed(`--help does not list serve:\n${help}`);

  step(`${tag}: node dist/cli/main.js run with no GATEWAY_URL says the local stages are not installed`);
  const { GATEWAY_URL: _gateway, ...withoutGateway } = env;
  const local = spawn(node, ['dist/cli/main.js', 'run', join(dir, 'package.json')], { cwd: dir, env: withoutGateway, stdio: ['ignore', 'pipe', 'pipe'] });
  const localExit = await collect(local).exit;
  if (localExit.code !== 2 || !localExit.output.includes('the local stages cannot be loaded')) {
    throw new StepFailed(`\`fave run\` with no GATEWAY_URL exited ${localExit.code ?? localExit.signal}, expected 2 naming the missing local stages:\n${localExit.output}`);
  }

  step(`${tag}: node dist/cli/main.js serve, one request through HTTP`);
  const server = await startListening(node, ['dist/cli/main.js', 'serve', '--port', '0', '--host', '127.0.0.1', '--require-auth'], dir, env, (out) => {
    for (const line of out.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const entry = JSON.parse(line) as { event?: string; url?: string };
        if (entry.event === 'listening' && entry.url) return entry.url;
      } catch {
        // a partial line; the next poll sees it whole
      }
    }
    return null;
  });
  try {
    await completeOneRequest(server.url, `image-serve-${tag.replace(/\W/g, '-')}`, 'fave serve');
    await requestPageHasItsScript(server.url, `image-serve-${tag.replace(/\W/g, '-')}`);
  } catch (err) {
    server.child.kill('SIGKILL');
    if (err instanceof StepFailed) err.message += `\nserver output:\n${server.output()}`;
    throw err;
  }
  const exit = await stop(server);
  if (exit.code !== 0) throw new StepFailed(`fave serve exited ${exit.code ?? exit.signal} on SIGTERM:\n${exit.output}`);
}

/**
 * The node22 template's layout: index.js beside `function/`, which holds the function's
 * package.json, node_modules and the CommonJS `handler.js` the template requires. dist/ is marked
 * as ES modules by its own package.json, as docs/deploy.md describes.
 */
async function layOutTemplate(dir: string, templateDir: string): Promise<void> {
  const fn = join(templateDir, 'function');
  await mkdir(fn, { recursive: true });
  await cp(join(REPO, 'test', 'image', 'of-node-template.cjs'), join(templateDir, 'index.js'));
  await writeFile(join(templateDir, 'package.json'), `${JSON.stringify({ name: 'openfaas-node22', private: true }, null, 2)}\n`);
  await rename(join(dir, 'node_modules'), join(fn, 'node_modules'));
  await rename(join(dir, 'dist'), join(fn, 'dist'));
  await writeFile(join(fn, 'package.json'), `${JSON.stringify({ name: 'function', private: true }, null, 2)}\n`);
  await writeFile(join(fn, 'dist', 'package.json'), `${JSON.stringify({ type: 'module' }, null, 2)}\n`);
  await writeFile(join(fn, 'handler.js'), "module.exports = async (event, context) => (await import('./dist/handler.js')).default(event, context);\n");
}

async function smokeHandler(node: string, templateDir: string, env: NodeJS.ProcessEnv, tag: string): Promise<void> {
  step(`${tag}: dist/handler.js in the node22 template's index.js, one request through HTTP`);
  const server = await startListening(node, ['index.js'], templateDir, { ...env, http_port: '0' }, (out) => {
    const port = /template listening on port: (\d+)/.exec(out)?.[1];
    return port ? `http://127.0.0.1:${port}` : null;
  });
  try {
    await completeOneRequest(server.url, `image-handler-${tag.replace(/\W/g, '-')}`, 'the template handler');
  } catch (err) {
    if (err instanceof StepFailed) err.message += `\ntemplate output:\n${server.output()}`;
    throw err;
  } finally {
    server.child.kill('SIGKILL');
    await server.exit;
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const nodes: string[] = [];
  let keep = false;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--node' && args[i + 1]) nodes.push(resolve(args[++i]!));
    else if (args[i] === '--keep') keep = true;
    else throw new StepFailed(`unknown argument ${args[i]}; usage: rehearse.ts [--node <path>]... [--keep]`);
  }
  if (nodes.length === 0) nodes.push(process.execPath);

  await checkDockerfile();
  const runner: Runner = { step, run, fail: (message) => new StepFailed(message) };
  await checkStagesDockerfile(REPO, runner);
  const scratch = await mkdtemp(join(tmpdir(), 'fave-image-'));
  const dir = join(scratch, 'home-app');
  const stagesDir = join(scratch, 'stages-home-app');
  const templateDir = join(scratch, 'template');
  const dataDir = join(scratch, 'data');
  let gateway: TestGateway | null = null;
  const store = new FsStore(dataDir, BUCKET);
  try {
    await mkdir(dir);
    await buildImage(dir);
    await store.init();
    await store.put({ bucket: BUCKET, key: VIDEO_KEY }, Buffer.from('the scripted stages do not read the video'));
    gateway = await startTestGateway({ store, clips: CLIPS, framesPerClip: 1 });
    const env = imageEnv(dataDir, gateway.url);
    const tags: Array<{ node: string; tag: string }> = [];
    for (const node of nodes) {
      const version = await nodeVersion(node);
      tags.push({ node, tag: version });
      await smokeCli(node, dir, env, version);
    }
    await mkdir(stagesDir);
    const stagesStarted = performance.now();
    const size = await buildStageImage(REPO, stagesDir, join(dir, 'dist'), runner);
    let stagesMs = performance.now() - stagesStarted;
    await layOutTemplate(dir, templateDir);
    for (const { node, tag } of tags) await smokeHandler(node, templateDir, env, tag);
    const pipelineStarted = performance.now();
    for (const { node, tag } of tags) await rehearseStages(node, stagesDir, tag, scratch, runner);
    stagesMs += performance.now() - pipelineStarted;
    step(`stage image: ${size}; its rehearsal took ${(stagesMs / 1000).toFixed(0)} s`);
    step(`passed (${tags.map((t) => t.tag).join(', ')})`);
  } finally {
    await gateway?.close();
    await store.close();
    if (keep) process.stdout.write(`image rehearsal: kept ${scratch}\n`);
    else await rm(scratch, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`image rehearsal FAILED: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
