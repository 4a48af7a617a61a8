import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig } from '../../config/config.ts';
import { openStore } from '../../app.ts';
import { toFaveError } from '../../domain/errors.ts';
import { collectGarbage, parseDuration, type RemovedRequest } from '../../persistence/retention.ts';
import { EXIT, exitFlushed, fail } from '../shared.ts';

function duration(value: string): number {
  try {
    return parseDuration(value);
  } catch {
    throw new InvalidArgumentError('must be a duration such as 30d, 12h, 90m or 45s');
  }
}

function megabytes(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MB`;
}

function line(r: RemovedRequest, verb: string): string {
  const finished = r.finished_at === null ? 'state.json already gone' : `finished ${new Date(r.finished_at).toISOString()}`;
  return `${verb} ${r.request_id} (${r.status ?? 'leftovers'}, ${finished}): ${r.objects} objects, ${megabytes(r.bytes)}\n`;
}

/**
 * `fave gc --older-than 30d [--dry-run]`: removes finished requests and their artifacts from the
 * configured store (filesystem or S3), and says what it removed and freed. Running requests are
 * never touched. docs/operations.md has the S3 lifecycle rule that does the same in a bucket.
 */
export function registerGc(program: Command): void {
  program
    .command('gc')
    .description('remove finished requests (and their artifacts) that finished longer ago than --older-than; running ones are never touched')
    .requiredOption('--older-than <age>', 'age since the request finished: 30d, 12h, 90m, 45s', duration)
    .option('--dry-run', 'list what would be removed, remove nothing')
    .option('--json', 'print the report as JSON on stdout')
    .action(async (opts: { olderThan: number; dryRun?: boolean; json?: boolean }) => {
      const dryRun = opts.dryRun === true;
      const json = opts.json === true;
      let report;
      try {
        const config = loadConfig(process.env);
        const store = await openStore(config.store);
        try {
          await store.init();
          report = await collectGarbage(store, config.bucket, {
            olderThanMs: opts.olderThan,
            dryRun,
            onRemoved: (r) => {
              if (!json) process.stdout.write(line(r, dryRun ? 'would remove' : 'removed'));
            },
          });
        } finally {
          await store.close();
        }
      } catch (err) {
        fail(toFaveError(err));
      }
      if (json) {
        process.stdout.write(`${JSON.stringify(report)}\n`);
      } else {
        const what = `${report.removed.length} requests, ${report.objects} objects, ${megabytes(report.bytes)}`;
        process.stdout.write(
          `${dryRun ? `would remove ${what} (dry run: nothing removed)` : `removed ${what} freed`}; ` +
            `cutoff ${new Date(report.cutoff).toISOString()}` +
            `${report.running_skipped > 0 ? `; ${report.running_skipped} that had finished and run again (redriven) left alone` : ''}` +
            `${report.indexed > 0 ? `; ${report.indexed} finished requests ${dryRun ? 'would be' : 'were'} added to the listing index` : ''}\n`,
        );
      }
      await exitFlushed(EXIT.completed);
    });
}
