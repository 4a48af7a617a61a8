import type { FinalResult } from '../domain/result.ts';
import type { RequestView } from '../domain/request-view.ts';
import { describeLocation, type FaveError } from '../domain/errors.ts';
import { objectCountText } from '../domain/answer.ts';
import { NO_DETECTOR_MODEL_NOTE, NO_SPEECH_ENGINE, noTranscriptNote } from '../domain/notes.ts';

const STATES = ['INIT', 'FFMPEG0', 'LIBROSA', 'CLIP', 'FANOUT', 'DETECT'];

/** One line of progress for a terminal: state, a bar over clips and frames, invocations. */
export function progressLine(view: Pick<RequestView, 'state' | 'progress'>, width = 24): string {
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
  return text.length > max ? `${text.slice(0, Math.max(0, max - 1))}…` : text;
}

/** Words wrapped to `width` after `prefix`, continuation lines indented by `indent`. */
function wrap(text: string, width: number, indent: string, prefix = ''): string[] {
  const lines: string[] = [];
  let line = prefix;
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const blank = line === prefix || line === indent;
    const next = blank ? `${line}${word}` : `${line} ${word}`;
    if (next.length > width && !blank) {
      lines.push(line);
      line = `${indent}${word}`;
    } else line = next;
  }
  if (line !== prefix) lines.push(line);
  return lines;
}

type NotedColumn = 'transcript' | 'objects';

/**
 * What a person can do about a note the local stages leave on an empty column, by column and
 * note. Notes of other stages are shown as they are.
 */
const NOTE_ADVICE: Array<{ column: NotedColumn; note: string; variable: string; value: string; doc: string }> = [
  {
    column: 'transcript',
    note: noTranscriptNote(NO_SPEECH_ENGINE),
    variable: 'FAVE_SPEECH_COMMAND',
    value: 'a speech-to-text command line',
    doc: 'docs/stages.md, "Plugging in a speech engine"',
  },
  { column: 'objects', note: NO_DETECTOR_MODEL_NOTE, variable: 'FAVE_DETECTOR_MODEL', value: 'a YOLO .onnx model', doc: 'docs/stages.md, "Plugging in a detector model"' },
];

function adviceFor(column: NotedColumn, note: string): string {
  const advice = NOTE_ADVICE.find((a) => a.column === column && a.note === note);
  return advice ? `; set ${advice.variable} to ${advice.value} (${advice.doc})` : '';
}

/** Numbers the distinct notes of empty cells, in order of first appearance. */
class Notes {
  private readonly texts: string[] = [];
  ref(column: NotedColumn, note: string): string {
    const text = `${note}${adviceFor(column, note)}`;
    let n = this.texts.indexOf(text);
    if (n < 0) n = this.texts.push(text) - 1;
    return `(note ${n + 1})`;
  }
  render(width: number): string[] {
    if (this.texts.length === 0) return [];
    const lines = ['notes:'];
    this.texts.forEach((text, i) => {
      lines.push(...wrap(text, width, '     ', `  ${i + 1}. `));
    });
    return lines;
  }
}

export interface RenderOptions {
  /** Terminal columns the table must fit in. */
  width?: number;
  /** Where a stored object is on this machine (the local store), or null to show its URI. */
  localPath?: (uri: string) => string | null;
}

/** The clip files: a heading naming the first and last, then their directory on a line of its own. */
function clipFilesLines(uris: string[], localPath: RenderOptions['localPath']): string[] {
  if (uris.length === 0) return [];
  const shown = uris.map((uri) => localPath?.(uri) ?? uri);
  const dir = shown[0]!.slice(0, shown[0]!.lastIndexOf('/') + 1);
  if (!shown.every((p) => p.startsWith(dir))) return ['clip files:', ...shown.map((p) => `  ${p}`)];
  const first = shown[0]!.slice(dir.length);
  const last = shown.at(-1)!.slice(dir.length);
  return [`clip files (${first === last ? first : `${first} … ${last}`}):`, `  ${dir}`];
}

export function describeFailure(error: FaveError): string {
  const where = describeLocation(error);
  const tries = error.attempts ? ` after ${error.attempts} attempt${error.attempts === 1 ? '' : 's'}` : '';
  return `${error.code}${where ? ` at ${where}` : ''}${tries}: ${error.message}`;
}

/**
 * A readable table of clips, times, transcripts, objects and matches, fitted to `width`: the
 * transcript and objects columns share what the fixed ones leave. An empty cell points to a note
 * printed once, in full, below the table.
 */
export function renderResult(result: FinalResult, options: RenderOptions = {}): string {
  const width = Math.max(60, options.width ?? 100);
  const lines: string[] = [];
  lines.push(`request ${result.request_id}: ${result.status}${result.partial ? ' (partial)' : ''}`);
  if (result.query) lines.push(`query: "${result.query}"`);
  lines.push('');
  const header = ['clip', 'start', 'end', 'transcript', 'objects', 'match'];
  const matchSet = new Set(result.matches.map((m) => m.clip_index));
  const notes = new Notes();
  const rows = result.clips.map((c) => [
    String(c.index),
    fmtTime(c.start_s),
    fmtTime(c.end_s),
    c.transcript ?? (c.transcript_note ? notes.ref('transcript', c.transcript_note) : '(none)'),
    c.objects.length > 0 ? c.objects.map((o) => `${o.label} (${objectCountText(o)})`).join(', ') : c.objects_note ? notes.ref('objects', c.objects_note) : '(none)',
    c.status === 'failed' ? 'FAILED' : matchSet.has(c.index) ? '✔' : '',
  ]);
  const natural = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  // Columns 3 and 4 (transcript, objects) flex; the others keep their natural width.
  const fixed = natural[0]! + natural[1]! + natural[2]! + natural[5]! + 2 * (header.length - 1);
  const room = Math.max(20, width - fixed);
  const [t, o] = [natural[3]!, natural[4]!];
  let objectsWidth = Math.min(o, Math.max(10, Math.floor(room * 0.4)));
  const transcriptWidth = Math.min(t, room - objectsWidth);
  objectsWidth = Math.min(o, room - transcriptWidth);
  const widths = [natural[0]!, natural[1]!, natural[2]!, transcriptWidth, objectsWidth, natural[5]!];
  const fmt = (r: string[]) =>
    r
      .map((cell, i) => truncate(cell, widths[i]!).padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  lines.push(fmt(header));
  lines.push(widths.map((w) => '─'.repeat(w)).join('  '));
  for (const r of rows) lines.push(fmt(r));
  lines.push(
    ...clipFilesLines(
      result.clips.flatMap((c) => (c.uri ? [c.uri] : [])),
      options.localPath,
    ),
  );
  lines.push(...notes.render(width));
  lines.push('');
  if (result.query) {
    if (result.matches.length === 0) lines.push('no clip matches the query');
    for (const m of result.matches) {
      const why = m.reasons.map((r) => (r.type === 'object' ? `${r.label} (${r.confidence.toFixed(2)})` : `"${r.word}" said`)).join(', ');
      lines.push(...wrap(`match: clip ${m.clip_index} ${fmtTime(m.start_s)}–${fmtTime(m.end_s)} score ${m.score.toFixed(2)}: ${why}`, width, '  '));
    }
  }
  for (const f of result.failed_clips) lines.push(...wrap(`failed clip ${f.clip_index}: ${f.error.message}`, width, '  '));
  if (result.error) lines.push(...wrap(`error: ${describeFailure(result.error as FaveError)}`, width, '  '));
  const m = result.metrics;
  lines.push(`${m.invocations} stage calls, ${m.retries} retries, ${m.cold_starts} cold starts, ${(m.wall_ms / 1000).toFixed(1)} s`);
  return lines.join('\n');
}
