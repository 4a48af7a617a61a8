import { spawn } from 'node:child_process';
import { access, chmod, constants, stat } from 'node:fs/promises';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import ffprobeInstaller from '@ffprobe-installer/ffprobe';

/**
 * The ffmpeg and ffprobe binaries shipped by the installer packages, and one way to run them.
 * Their packages set the execute bit in an install script, which a locked-down `npm ci` may have
 * skipped, so the bit is checked (and set) once before first use.
 */

export type ToolName = 'ffmpeg' | 'ffprobe';

const TOOL_PATHS: Record<ToolName, string> = { ffmpeg: ffmpegInstaller.path, ffprobe: ffprobeInstaller.path };
const ready = new Map<ToolName, Promise<string>>();

export function toolPath(tool: ToolName): Promise<string> {
  let pending = ready.get(tool);
  if (!pending) {
    pending = ensureExecutable(TOOL_PATHS[tool]);
    ready.set(tool, pending);
    pending.catch(() => ready.delete(tool));
  }
  return pending;
}

async function ensureExecutable(path: string): Promise<string> {
  try {
    await access(path, constants.X_OK);
  } catch {
    const { mode } = await stat(path);
    await chmod(path, mode | 0o100);
  }
  return path;
}

/** A tool exited non-zero; `reason` is the last meaningful line it printed on stderr. */
export class ToolFailure extends Error {
  constructor(
    readonly tool: ToolName | string,
    readonly exitCode: number | null,
    readonly reason: string,
    readonly stderr: string,
  ) {
    super(`${tool} failed: ${reason}`);
    this.name = 'ToolFailure';
  }
}

export interface ToolResult {
  stdout: Buffer;
  stderr: string;
}

export interface RunOptions {
  signal: AbortSignal;
  cwd?: string;
  /** Receives stdout as it arrives instead of buffering it. */
  onStdout?: (chunk: Buffer) => void;
}

/** stderr kept per call: enough for the reason, bounded for chatty tools. */
const STDERR_TAIL_BYTES = 64 * 1024;

/** Runs a command (no shell) and resolves with its output, or rejects with ToolFailure / AbortError. */
export function runCommand(command: string, args: readonly string[], options: RunOptions, label: string = command): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    options.signal.throwIfAborted();
    const child = spawn(command, args, {
      cwd: options.cwd,
      signal: options.signal,
      killSignal: 'SIGKILL',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => {
      if (options.onStdout) options.onStdout(chunk);
      else out.push(chunk);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      err += chunk;
      if (err.length > STDERR_TAIL_BYTES * 2) err = err.slice(-STDERR_TAIL_BYTES);
    });
    child.on('error', (error) => reject(options.signal.aborted ? (options.signal.reason ?? error) : error));
    child.on('close', (code) => {
      if (options.signal.aborted) {
        reject(options.signal.reason ?? new DOMException('aborted', 'AbortError'));
        return;
      }
      if (code === 0) resolve({ stdout: Buffer.concat(out), stderr: err });
      else reject(new ToolFailure(label, code, lastMeaningfulLine(err) ?? `exited with code ${code}`, err));
    });
  });
}

export async function runTool(tool: ToolName, args: readonly string[], options: RunOptions): Promise<ToolResult> {
  return runCommand(await toolPath(tool), args, options, tool);
}

/** Flags that keep ffmpeg quiet except for errors, so its last stderr line is the reason. */
export const FFMPEG_QUIET = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y'] as const;

export function lastMeaningfulLine(text: string): string | null {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !/^(Conversion failed!|Exiting normally)/.test(l));
  return lines.at(-1) ?? null;
}

/** The even-dimension filter libx264 with yuv420p needs. */
export const EVEN_DIMENSIONS = 'scale=trunc(iw/2)*2:trunc(ih/2)*2';
