/**
 * The stage image (Dockerfile.stages), rehearsed without Docker: its install and prune in a
 * scratch directory, then, under each Node binary, its `fprocess` (`fave stage serve <name>`,
 * listening where the watchdog's upstream_url points) for each of the seven stages, chained by the
 * orchestrator as in a cluster: `fave run` from the same directory reaches them through a loopback
 * gateway that forwards `/function/{name}` as OpenFaaS does, with the artifacts in an S3 server
 * (s3rver), as the image's FAVE_STORE=s3 configuration has them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cp, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_STAGE_NAMES, STAGE_KEYS } from '../../src/domain/stage.ts';
import { makeToneBurstVideo } from '../../src/stages/local/sample-media.ts';
import { startGatewayServer } from '../../src/stages/gateway/server.ts';
import type { FunctionHandler } from '../../src/stages/gateway/types.ts';
import { freePort, freePorts } from '../support/free-port.ts';
import { s3StoreOn, startS3rver } from '../support/s3rver.ts';
import { until } from '../support/until.ts';

/**
 * Dockerfile.stages' commands, as it spells them; checked before running. Its `build` stage is
 * the orchestrator image's (install without optional packages, compile); its `deps` stage
 * installs what the stages run on.
 */
export const STAGE_COMPILE_STEPS = ['npm ci --omit=optional --ignore-scripts --no-audit --no-fund', 'npx tsc -p tsconfig.build.json'];
export const STAGE_DEPS_STEPS = [
  'npm ci --omit=dev --include=optional --ignore-scripts --no-audit --no-fund',
  'rm -rf node_modules/onnxruntime-node node_modules/onnxruntime-common',
];
/** What the stages need at run time; the rehearsal fails if the prune dropped one. */
const MUST_KEEP = ['@ffmpeg-installer/linux-x64', '@ffprobe-installer/linux-x64', '@vladmandic/human', '@tensorflow/tfjs-backend-wasm', '@aws-sdk/client-s3'];
const LEFT_OUT = ['onnxruntime-node', 'typescript', 'vitest'];
const VIDEO_KEY = 'uploads/rehearsal-stages.mp4';
const BURSTS: Array<[number, number]> = [
  [0.5, 2],
  [3, 4.5],
];

export interface Runner {
  step(name: string): void;
  run(command: string, cwd: string, env?: NodeJS.ProcessEnv): Promise<string>;
  fail(message: string): Error;
}

export async function checkStagesDockerfile(repo: string, r: Runner): Promise<void> {
  const dockerfile = await readFile(join(repo, 'Dockerfile.stages'), 'utf8');
  const stage = (name: string) =>
    (dockerfile.split(/^FROM /m).find((part) => new RegExp(` AS ${name}\\b`).test(part.split('\n')[0] ?? '')) ?? '').replace(/\\\n\s*/g, ' ').replace(/ +/g, ' ');
  for (const [name, commands] of [
    ['build', STAGE_COMPILE_STEPS],
    ['deps', STAGE_DEPS_STEPS],
  ] as const) {
    for (const command of commands) {
      if (!stage(name).includes(command)) throw r.fail(`Dockerfile.stages' ${name} stage no longer runs \`${command}\`: update the rehearsal with it`);
    }
  }
  for (const [from, keep] of [
    ['deps', 'package.json'],
    ['deps', 'node_modules'],
    ['build', 'dist'],
  ] as const) {
    if (!new RegExp(`COPY --from=${from} .*/src/${keep} `).test(dockerfile))
      throw r.fail(`Dockerfile.stages' runtime stage no longer copies ${keep} from ${from}: update the rehearsal`);
  }
}

/**
 * The image's files in `dir`: the deps stage's install, and the build stage's `dist`. That stage
 * runs the orchestrator image's commands on the same sources, so its `dist` is copied in rather
 * than compiled again.
 */
export async function buildStageImage(repo: string, dir: string, compiledDist: string, r: Runner): Promise<string> {
  for (const input of ['package.json', 'package-lock.json']) await cp(join(repo, input), join(dir, input));
  for (const command of STAGE_DEPS_STEPS) {
    r.step(`stage image: ${command}`);
    await r.run(command, dir);
  }
  await cp(compiledDist, join(dir, 'dist'), { recursive: true });
  await rm(join(dir, 'package-lock.json'));
  for (const pkg of MUST_KEEP) {
    if (!(await exists(join(dir, 'node_modules', pkg)))) throw r.fail(`${pkg} is missing from the stage image's node_modules`);
  }
  for (const pkg of LEFT_OUT) {
    if (await exists(join(dir, 'node_modules', pkg))) throw r.fail(`${pkg} is in the stage image's node_modules; it should be left out`);
  }
  const size = (await r.run('du -sk node_modules dist', dir)).split('\n').reduce((sum, line) => sum + (Number(line.split(/\s+/)[0]) || 0), 0);
  const described = `${Math.round(size / 1024)} MiB of node_modules and dist`;
  r.step(`stage image: ${described}`);
  return described;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

interface Proc {
  child: ChildProcess;
  output: () => string;
  stdout: () => string;
  exited: () => boolean;
  exit: Promise<number | null>;
}

function start(node: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Proc {
  const child = spawn(node, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let stdout = '';
  let done = false;
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exit = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      done = true;
      resolve(code);
    }),
  );
  return { child, output: () => output, stdout: () => stdout, exited: () => done, exit };
}

async function stopAll(procs: Proc[]): Promise<void> {
  for (const p of procs) if (!p.exited()) p.child.kill('SIGTERM');
  await Promise.all(
    procs.map(async (p) => {
      const timer = setTimeout(() => p.child.kill('SIGKILL'), 10_000);
      await p.exit.finally(() => clearTimeout(timer));
    }),
  );
}

/** Every stage's fprocess, the orchestrator chaining them through a gateway. */
export async function rehearseStages(node: string, dir: string, tag: string, scratch: string, r: Runner): Promise<void> {
  const s3 = await startS3rver();
  const store = s3StoreOn(s3);
  const procs: Proc[] = [];
  const calls = new Map<string, number>();
  let gateway: Awaited<ReturnType<typeof startGatewayServer>> | null = null;
  try {
    const video = join(scratch, `stages-${tag}.mp4`);
    await makeToneBurstVideo(video, { bursts: BURSTS, duration: 5, size: '160x120', fps: 5 });
    await store.put({ bucket: s3.bucket, key: VIDEO_KEY }, await readFile(video));
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'production',
      FAVE_STORE: 's3',
      ARTIFACT_ENDPOINT: s3.endpoint,
      ARTIFACT_BUCKET: s3.bucket,
      ARTIFACT_REGION: 'us-east-1',
      ARTIFACT_ACCESS_KEY: s3.accessKeyId,
      ARTIFACT_SECRET_KEY: s3.secretAccessKey,
      OPENFAAS_SECRETS_DIR: join(scratch, 'no-secrets'),
      LOG_LEVEL: 'warn',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    const upstreams: Record<string, string> = {};
    const names = STAGE_KEYS.map((key) => DEFAULT_STAGE_NAMES[key]);
    // As the image runs it: the fprocess of stack.yml, the port from the watchdog's upstream_url.
    const serve = (name: string, port: number): Proc => {
      upstreams[name] = `http://127.0.0.1:${port}`;
      return start(node, ['dist/cli/main.js', 'stage', 'serve', name], dir, { ...env, upstream_url: upstreams[name] });
    };
    for (const [i, port] of (await freePorts(names.length)).entries()) procs.push(serve(names[i]!, port));
    // A port free when it was picked may be taken before the stage binds it (by another process,
    // or as the source port of a connection): that stage starts again on another one.
    const restarts = new Array<number>(names.length).fill(0);
    r.step(`${tag}: stage image: fave stage serve, seven stages`);
    await until(
      async () => {
        for (const [i, p] of procs.entries()) {
          if (!p.exited()) continue;
          if (p.output().includes('EADDRINUSE') && restarts[i]! < 3) {
            restarts[i]!++;
            procs[i] = serve(names[i]!, await freePort());
            continue;
          }
          throw r.fail(`\`fave stage serve ${names[i]}\` exited:\n${p.output()}`);
        }
        const up = await Promise.all(
          Object.values(upstreams).map((u) =>
            fetch(`${u}/_/health`).then(
              (res) => res.ok,
              () => false,
            ),
          ),
        );
        return up.every(Boolean) || null;
      },
      { timeoutMs: 60_000, everyMs: 100 },
    );
    const functions: Record<string, FunctionHandler> = {};
    for (const [name, upstream] of Object.entries(upstreams)) {
      functions[name] = async (call) => {
        calls.set(name, (calls.get(name) ?? 0) + 1);
        const res = await fetch(upstream, { method: 'POST', headers: { 'content-type': 'application/json' }, body: call.body, signal: call.signal });
        return { status: res.status, headers: { 'content-type': res.headers.get('content-type') ?? 'text/plain' }, body: Buffer.from(await res.arrayBuffer()) };
      };
    }
    gateway = await startGatewayServer({ functions });
    r.step(`${tag}: stage image: fave run through a gateway to the seven stages`);
    const run = start(node, ['dist/cli/main.js', 'run', `s3://${s3.bucket}/${VIDEO_KEY}`, '--json', '-q', 'find scenes with a clock'], dir, {
      ...env,
      GATEWAY_URL: gateway.url,
      RETRY_BASE_DELAY_MS: '5',
      RETRY_MAX_DELAY_MS: '20',
    });
    const timer = setTimeout(() => run.child.kill('SIGKILL'), 120_000);
    const code = await run.exit.finally(() => clearTimeout(timer));
    const out = run.output();
    const json = run.stdout();
    let result: { status?: unknown; clips?: Array<{ frames?: number }> };
    try {
      result = JSON.parse(json) as typeof result;
    } catch {
      throw r.fail(`fave run through the stage image exited ${code} without a JSON result:\n${out}\nstage output:\n${procs.map((p) => p.output()).join('\n')}`);
    }
    const frames = (result.clips ?? []).reduce((n, c) => n + (c.frames ?? 0), 0);
    if (code !== 0 || result.status !== 'COMPLETED' || !result.clips?.length || frames === 0) {
      throw r.fail(`fave run through the stage image exited ${code}, expected a COMPLETED result with clips and frames:\n${out.slice(0, 3000)}`);
    }
    const missed = STAGE_KEYS.map((k) => DEFAULT_STAGE_NAMES[k]).filter((name) => !calls.get(name));
    if (missed.length) throw r.fail(`the pipeline never called ${missed.join(', ')}`);
    r.step(`${tag}: stage image: COMPLETED, ${result.clips.length} clips, ${frames} frames; calls ${[...calls].map(([n, c]) => `${n}×${c}`).join(' ')}`);
  } finally {
    await gateway?.close();
    await stopAll(procs);
    await store.close();
    await s3.stop();
  }
}
