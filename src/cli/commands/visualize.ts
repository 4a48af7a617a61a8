import { readFile, writeFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { faveError, toFaveError } from '../../domain/errors.ts';
import { mermaidBlockOf, pipelineStatechart, replaceMermaidBlock, toMermaid } from '../../visualize/statechart.ts';
import { EXIT, fail } from '../shared.ts';

function format(value: string): 'mermaid' | 'json' {
  if (value !== 'mermaid' && value !== 'json') throw new InvalidArgumentError('must be mermaid or json');
  return value;
}

/**
 * `fave visualize`: the pipeline statechart, read from the machine definitions, as Mermaid or
 * JSON. `--update <file.md>` rewrites the first ```mermaid block of a Markdown file with it.
 */
export function registerVisualize(program: Command): void {
  program
    .command('visualize')
    .description('print the pipeline statechart (from the machine definition) as Mermaid or JSON')
    .option('-f, --format <format>', 'mermaid or json', format, 'mermaid' as const)
    .option('--update <file>', 'replace the ```mermaid block of this Markdown file instead of printing')
    .action(async (opts: { format: 'mermaid' | 'json'; update?: string }) => {
      const chart = pipelineStatechart();
      if (opts.update) {
        try {
          const before = await readFile(opts.update, 'utf8');
          const mermaid = toMermaid(chart);
          if (mermaidBlockOf(before) === mermaid) {
            process.stderr.write(`${opts.update} is up to date\n`);
          } else {
            await writeFile(opts.update, replaceMermaidBlock(before, mermaid));
            process.stderr.write(`${opts.update} updated\n`);
          }
        } catch (err) {
          fail(toFaveError(err, {}).code === 'INTERNAL' ? faveError('BAD_REQUEST', `cannot update ${opts.update}: ${(err as Error).message}`) : toFaveError(err));
        }
        process.exit(EXIT.completed);
      }
      process.stdout.write(opts.format === 'json' ? `${JSON.stringify(chart, null, 2)}\n` : toMermaid(chart));
    });
}
