import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { faveError, toFaveError } from '../../errors.ts';
import type { Orchestrator } from '../../orchestrator/orchestrator.ts';
import { renderRequestPage } from '../../ui/page.ts';
import { loadRequestView, type RequestView } from '../../ui/view.ts';
import { EXIT, exitFlushed, fail, requestId, withApp } from '../shared.ts';

/** The request page as one static HTML file: the view is embedded, nothing is fetched. */
export async function renderReport(orchestrator: Orchestrator, id: string): Promise<{ html: string; view: RequestView } | null> {
  const view = await loadRequestView(orchestrator, id);
  if (!view) return null;
  return { html: renderRequestPage(view, { mode: 'report' }), view };
}

/** `fave report <id> [-o file.html]`: writes the request page to a file that opens offline. */
export function registerReport(program: Command): void {
  program
    .command('report')
    .description("write a request's page (statechart, progress, invocation timeline) as one self-contained HTML file")
    .argument('<id>', 'request id', requestId)
    .option('-o, --output <file>', 'where to write it ("-" for stdout)', undefined)
    .action(async (id: string, opts: { output?: string }) => {
      const report = await withApp((app) => renderReport(app.orchestrator, id), true).catch((err: unknown) => fail(toFaveError(err)));
      if (!report) fail(faveError('INPUT_NOT_FOUND', `no request ${id}`));
      if (opts.output === '-') {
        process.stdout.write(report.html);
      } else {
        const file = resolve(opts.output ?? `fave-report-${id}.html`);
        await writeFile(file, report.html).catch((err: unknown) => fail(faveError('BAD_REQUEST', `cannot write ${file}: ${(err as Error).message}`)));
        process.stderr.write(`${report.view.status} request ${id}: ${report.view.invocations.length} invocations → ${file}\n`);
      }
      await exitFlushed(EXIT.completed);
    });
}
