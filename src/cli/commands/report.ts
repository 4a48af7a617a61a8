import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { faveError, toFaveError } from '../../domain/errors.ts';
import type { Orchestrator } from '../../orchestrator/orchestrator.ts';
import { renderRequestPage } from '../../ui/page.ts';
import { DEFAULT_MAX_EMBED_BYTES, prepareReportMedia } from '../../ui/report-media.ts';
import { liveFeedOf } from '../../ui/live-feed.ts';
import { pageViewOf, type RequestPageView } from '../../ui/view.ts';
import { EXIT, exitFlushed, fail, requestId, withApp } from '../shared.ts';

export interface ReportOptions {
  /** Where `fave serve` answers: the report's clip players stream from its artifact route. */
  baseUrl?: string | null;
  /** The most bytes of pictures embedded. */
  maxEmbedBytes?: number;
}

export interface Report {
  html: string;
  view: RequestPageView;
  embedded: number;
  leftOut: number;
}

/** The request page as one static HTML file: the view and the thumbnails are embedded, nothing is fetched. */
export async function renderReport(orchestrator: Orchestrator, id: string, options: ReportOptions = {}): Promise<Report | null> {
  const request = await orchestrator.requests.view(id);
  if (!request) return null;
  const view = pageViewOf(request, liveFeedOf(orchestrator).records(id), orchestrator.prewarmActions(id));
  const media = await prepareReportMedia({
    store: orchestrator.store,
    context: request.context,
    answer: view.answer,
    baseUrl: options.baseUrl ?? null,
    maxEmbedBytes: options.maxEmbedBytes ?? DEFAULT_MAX_EMBED_BYTES,
  });
  return {
    html: renderRequestPage(view, { mode: 'report', media: media.media, mediaOrigin: media.mediaOrigin }),
    view,
    embedded: media.embedded,
    leftOut: media.leftOut,
  };
}

function baseUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('must be an http(s) URL, e.g. http://127.0.0.1:8080');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError('must be an http(s) URL');
  return url.href.replace(/\/+$/, '');
}

function kib(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 1024 * 1024) throw new InvalidArgumentError('must be a whole number of KiB between 0 and 1048576');
  return n * 1024;
}

/** `fave report <id> [-o file.html]`: writes the request page to a file that opens offline. */
export function registerReport(program: Command): void {
  program
    .command('report')
    .description("write a request's page (answer with thumbnails, statechart, progress, invocation timeline) as one self-contained HTML file")
    .argument('<id>', 'request id', requestId)
    .option('-o, --output <file>', 'where to write it ("-" for stdout)', undefined)
    .option('--base-url <url>', 'a fave serve address the clip players stream from (none: no players)', baseUrl)
    .option('--max-embed-kib <n>', `the most KiB of thumbnails to embed (default ${DEFAULT_MAX_EMBED_BYTES / 1024})`, kib)
    .action(async (id: string, opts: { output?: string; baseUrl?: string; maxEmbedKib?: number }) => {
      const report = await withApp(
        (app) => renderReport(app.orchestrator, id, { baseUrl: opts.baseUrl ?? null, ...(opts.maxEmbedKib !== undefined ? { maxEmbedBytes: opts.maxEmbedKib } : {}) }),
        true,
      ).catch((err: unknown) => fail(toFaveError(err)));
      if (!report) fail(faveError('REQUEST_NOT_FOUND', `no request ${id}`));
      const pictures = `${report.embedded} thumbnails embedded${report.leftOut ? `, ${report.leftOut} left out` : ''}`;
      if (opts.output === '-') {
        process.stdout.write(report.html);
      } else {
        const file = resolve(opts.output ?? `fave-report-${id}.html`);
        await writeFile(file, report.html).catch((err: unknown) => fail(faveError('BAD_REQUEST', `cannot write ${file}: ${(err as Error).message}`)));
        process.stderr.write(`${report.view.status} request ${id}: ${report.view.answer.verdict.text}; ${report.view.invocations.length} invocations, ${pictures} → ${file}\n`);
      }
      await exitFlushed(EXIT.completed);
    });
}
