import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Agent } from 'undici';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { loadConfig } from '../../config/config.ts';
import { faveError, toFaveError } from '../../domain/errors.ts';
import { REGIMES, type Regime } from '../../research/arrivals.ts';
import { LOAD_LIMITS, resultsFileName, runLoad, uploadVideo, writeResultsFile, type LoadProgress } from '../../research/load.ts';
import { scaleAndWait } from '../../research/openfaas-system.ts';
import { OpenFaasSystemClient } from '../../transport/openfaas-system.ts';
import { EXIT, exitFlushed, fail } from '../shared.ts';

/** Per system API call: a gateway under load answers a scale call slower than pre-warming may wait. */
const SCALE_CALL_TIMEOUT_MS = 10_000;

function bounded(name: string, min: number, max: number, integer: boolean): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      throw new InvalidArgumentError(`${name} must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}`);
    }
    return n;
  };
}

function httpUrl(value: string): string {
  if (!URL.canParse(value) || !/^https?:$/.test(new URL(value).protocol)) throw new InvalidArgumentError('must be an http(s) URL');
  return value.replace(/\/+$/, '');
}

/** One line, redrawn in place, on a terminal only. */
function progressBar(p: LoadProgress): string {
  const width = 30;
  const filled = Math.round((p.done / Math.max(1, p.total)) * width);
  return `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.done}/${p.total} done, ${p.started - p.done} in flight, ${p.failed} failed `;
}

interface LoadFlags {
  target: string;
  video: string;
  regime: Regime;
  rate: number;
  requests: number;
  concurrency?: number;
  profile: string;
  cold?: boolean;
  warm?: boolean;
  out: string;
  token?: string;
  timeout: number;
  attempts: number;
  maxDuration: number;
  gateway?: string;
  functions?: string;
  scaleTimeout: number;
}

/** `fave load`: open-loop load on an orchestrator, written as FAVE's results file. */
export function registerLoad(program: Command): void {
  program
    .command('load')
    .description("send requests to an orchestrator on an open-loop schedule and write FAVE's results file")
    .requiredOption('--target <url>', 'the orchestrator (fave serve, or the function /function/fave-orchestrator)', httpUrl)
    .requiredOption('--video <file|uri>', 'a local video (uploaded once through POST /uploads) or an s3:// or http(s):// URI')
    .addOption(new Option('--regime <regime>', 'arrivals: steady (1/R apart), ramp (rate rising from 0 to R), burst (all at once)').choices(REGIMES).default('steady'))
    .option('--rate <r>', 'requests per second (steady; the final rate of a ramp)', bounded('--rate', 0.001, LOAD_LIMITS.rate, false), 1)
    .option('--requests <n>', 'how many requests', bounded('--requests', 1, LOAD_LIMITS.requests, true), 1)
    .option('--concurrency <c>', 'most requests in flight (default: no limit below --requests)', bounded('--concurrency', 1, LOAD_LIMITS.concurrency, true))
    .option('--profile <name>', 'the profile each request names', 'default')
    .addOption(new Option('--cold', 'scale every stage to 0 replicas first, and wait until they report 0').conflicts('warm'))
    .addOption(new Option('--warm', "scale every stage to the profile's replicas.min first, and wait until they report it").conflicts('cold'))
    .option('--out <dir>', 'where the results file goes', 'experiments')
    .option('--token <token>', 'API token (sent as Authorization: Bearer)')
    .option('--timeout <s>', 'per HTTP attempt, in seconds', bounded('--timeout', 1, 6 * 3600, false), 900)
    .option('--attempts <n>', 'HTTP attempts per request; a retry repeats the request id', bounded('--attempts', 1, LOAD_LIMITS.attempts, true), 3)
    .option('--max-duration <s>', 'the whole run; requests still running then are recorded as failures', bounded('--max-duration', 1, 7 * 24 * 3600, false), 3600)
    .option('--gateway <url>', 'the OpenFaaS gateway for --cold/--warm (default GATEWAY_URL; its admin login: OPENFAAS_USERNAME/OPENFAAS_PASSWORD)', httpUrl)
    .option('--functions <names>', 'the functions --cold/--warm scale, comma-separated (default: the configured stage names)')
    .option('--scale-timeout <s>', 'how long to wait for the replicas', bounded('--scale-timeout', 1, 3600, false), 300)
    .action(async (flags: LoadFlags) => {
      const tty = process.stderr.isTTY === true;
      const say = (line: string): void => {
        if (tty) process.stderr.write(`${line}\n`);
      };
      const replicas = flags.cold ? 'cold' : flags.warm ? 'warm' : null;
      try {
        if (replicas) {
          const config = loadConfig();
          const profile = config.profiles[flags.profile];
          if (!profile) fail(faveError('BAD_REQUEST', `--profile: unknown profile "${flags.profile}" (known: ${Object.keys(config.profiles).join(', ')})`));
          const gatewayUrl = flags.gateway ?? config.gatewayUrl;
          if (!gatewayUrl) fail(faveError('BAD_REQUEST', `--${replicas}: give the OpenFaaS gateway (--gateway or GATEWAY_URL)`));
          const stageNames = Object.entries(config.stageNames)
            .filter(([key]) => key !== 'detector' || config.detectorEnabled)
            .map(([, name]) => name);
          const names = flags.functions
            ? flags.functions
                .split(',')
                .map((n) => n.trim())
                .filter((n) => n !== '')
            : stageNames;
          const target = replicas === 'cold' ? 0 : profile.replicas.min;
          say(`scaling ${names.length} functions to ${target} replicas…`);
          // A password is never a flag (it would show in the process list): the login is the
          // orchestrator's own system API login.
          const client = new OpenFaasSystemClient({ gatewayUrl, auth: config.systemAuth, timeoutMs: SCALE_CALL_TIMEOUT_MS });
          await scaleAndWait(client, names, target, { timeoutMs: flags.scaleTimeout * 1000 });
        }
        const agent = new Agent({ headersTimeout: flags.timeout * 1000, bodyTimeout: flags.timeout * 1000 });
        const isUri = /^(s3|https?):\/\//i.test(flags.video);
        const video = isUri ? flags.video : await uploadVideo(flags.target, resolve(flags.video), flags.token ?? null, agent);
        if (!isUri) say(`uploaded ${flags.video} as ${video}`);
        await agent.close();
        const options = {
          target: flags.target,
          video,
          regime: flags.regime,
          rate: flags.rate,
          requests: flags.requests,
          concurrency: flags.concurrency ?? flags.requests,
          profile: flags.profile,
          token: flags.token ?? null,
          timeoutMs: flags.timeout * 1000,
          attempts: flags.attempts,
          maxDurationMs: flags.maxDuration * 1000,
        };
        const records = await runLoad(options, video, tty ? (p) => process.stderr.write(progressBar(p)) : undefined);
        if (tty) process.stderr.write('\n');
        const dir = resolve(flags.out);
        await mkdir(dir, { recursive: true });
        const path = await writeResultsFile(dir, resultsFileName(options, replicas, new Date()), records);
        const ok = records.filter((r) => r.status === 'success').length;
        say(`${ok}/${records.length} answered; FAVE's results file:`);
        process.stdout.write(`${path}\n`);
      } catch (err) {
        fail(toFaveError(err));
      }
      await exitFlushed(EXIT.completed);
    });
}
