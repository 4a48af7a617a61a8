import { runCommand } from './tools.ts';

/**
 * The external speech-to-text command: a command line (no shell) whose `{wav}` placeholder is
 * replaced by the path of a 16 kHz mono WAV file; whatever it prints on stdout is the transcript.
 */

/** Splits a command line like a POSIX shell would, honouring quotes and backslashes (no expansions). */
export function splitCommandLine(line: string): string[] {
  const args: string[] = [];
  let current = '';
  let inArg = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote === "'") {
      if (ch === "'") quote = null;
      else current += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = null;
      else if (ch === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1]!)) current += line[++i];
      else current += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inArg = true;
    } else if (ch === '\\' && i + 1 < line.length) {
      current += line[++i];
      inArg = true;
    } else if (/\s/.test(ch)) {
      if (inArg) args.push(current);
      current = '';
      inArg = false;
    } else {
      current += ch;
      inArg = true;
    }
  }
  if (quote) throw new Error(`unterminated ${quote} quote in speech command: ${line}`);
  if (inArg) args.push(current);
  return args;
}

/** The argv to run for one file: `{wav}` replaced, or the path appended when there is no placeholder. */
export function speechArgv(commandLine: string, wavPath: string): string[] {
  const argv = splitCommandLine(commandLine);
  if (argv.length === 0) throw new Error('speech command is empty');
  const placed = argv.some((a) => a.includes('{wav}'));
  const filled = argv.map((a) => a.split('{wav}').join(wavPath));
  return placed ? filled : [...filled, wavPath];
}

/** Runs the engine on one file; the transcript is its stdout with the lines joined by spaces. */
export async function transcribe(commandLine: string, wavPath: string, signal: AbortSignal): Promise<string> {
  const [command, ...args] = speechArgv(commandLine, wavPath);
  const { stdout } = await runCommand(command!, args, { signal }, command!);
  return stdout
    .toString('utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' ');
}
