import type { FinalResult } from '../contracts/result.ts';
import type { ProgressView } from '../orchestrator/execution.ts';
import { describeLocation, type FaveError } from '../errors.ts';

const STATES = ['INIT', 'FFMPEG0', 'LIBROSA', 'CLIP', 'FANOUT', 'DETECT'];

/** One line of progress for a terminal: state, a bar over clips and frames, invocations. */
export function progressLine(view: ProgressView, width = 24): string {
  const p = view.progress;
  const units = p.clips_total + p.frames_total;
  const doneUnits = p.clips_done + p.clips_failed + p.frames_done;
  const step = Math.max(0, STATES.indexOf(view.state));
  const fraction = units > 0 ? doneUnits / units : step / STATES.length;
  const filled = Math.round(Math.min(1, fraction) * width);
  const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
  const frames = p.frames_total > 0 ? ` frames ${p.frames_done}/${p.frames_total}` : '';
  return `${view.state.padEnd(9)} ${bar} clips ${p.clips_done}/${p.clips_total}${frames} · ${p.invocations} calls`;
}

function fmtTime(seconds: number | null): string {
  if (seconds === null) return '?';
  const m = Math.floor(seconds / 60);
  const s = seconds - m * 60;
  return `${String(m).padStart(2, '0')}:${s.toFixed(2).padStart(5, '0')}`;
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function describeFailure(error: FaveError): string {
  const where = describeLocation(error);
  const tries = error.attempts ? ` after ${error.attempts} attempt${error.attempts === 1 ? '' : 's'}` : '';
  return `${error.code}${where ? ` at ${where}` : ''}${tries}: ${error.message}`;
}

/** A readable table of clips, times, transcripts, objects and matches. */
export function renderResult(result: FinalResult): string {
  const lines: string[] = [];
  lines.push(`request ${result.request_id}: ${result.status}${result.partial ? ' (partial)' : ''}`);
  if (result.query) lines.push(`query: "${result.query}"`);
  lines.push('');
  const header = ['clip', 'start', 'end', 'transcript', 'objects', 'match'];
  const matchSet = new Set(result.matches.map((m) => m.clip_index));
  const rows = result.clips.map((c) => [
    String(c.index),
    fmtTime(c.start_s),
    fmtTime(c.end_s),
    truncate(c.transcript ?? `(${c.transcript_note ?? 'none'})`, 40),
    truncate(
      c.objects.length > 0 ? c.objects.map((o) => `${o.label}×${o.count}`).join(', ') : `(${c.objects_note ?? 'none'})`,
      40,
    ),
    c.status === 'failed' ? 'FAILED' : matchSet.has(c.index) ? '✔' : '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd();
  lines.push(fmt(header));
  lines.push(widths.map((w) => '─'.repeat(w)).join('  '));
  for (const r of rows) lines.push(fmt(r));
  lines.push('');
  if (result.query) {
    if (result.matches.length === 0) lines.push('no clip matches the query');
    for (const m of result.matches) {
      const why = m.reasons.map((r) => (r.type === 'object' ? `${r.label} (${r.confidence.toFixed(2)})` : `"${r.word}" said`)).join(', ');
      lines.push(`match: clip ${m.clip_index} ${fmtTime(m.start_s)}–${fmtTime(m.end_s)} score ${m.score.toFixed(2)}: ${why}`);
    }
  }
  for (const f of result.failed_clips) lines.push(`failed clip ${f.clip_index}: ${f.error.message}`);
  if (result.error) lines.push(`error: ${describeFailure(result.error as FaveError)}`);
  const m = result.metrics;
  lines.push(`${m.invocations} stage calls, ${m.retries} retries, ${m.cold_starts} cold starts, ${(m.wall_ms / 1000).toFixed(1)} s`);
  return lines.join('\n');
}
