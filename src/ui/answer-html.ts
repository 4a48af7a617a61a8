import type { MatchReason } from '../domain/result.ts';
import { normalizeWords } from '../domain/query/match.ts';
import { objectCountText } from '../domain/answer.ts';
import type { Answer, AnswerClip } from './answer.ts';
import { escapeXml } from './html.ts';

/**
 * The answer as HTML, one code path for the live page and the report: only the media links
 * differ. Everything a stage answered (transcripts, labels, notes) goes through `escapeXml`.
 */

export interface MediaLinks {
  /** The `src` of a frame picture, or null to leave it out. */
  picture(artifact: string): string | null;
  /** The `src` of a clip video, or null for no player. */
  video(artifact: string): string | null;
  /** Said under the verdict, e.g. that some thumbnails were left out of a report. */
  note?: string | null;
}

export function clock(seconds: number | null): string {
  if (seconds === null) return '?';
  const tenths = Math.round(seconds * 10);
  const m = Math.floor(tenths / 600);
  const s = (tenths % 600) / 10;
  return `${m}:${s.toFixed(1).padStart(4, '0')}`;
}

function range(clip: Pick<AnswerClip, 'start_s' | 'end_s'>): string {
  return `${clock(clip.start_s)} – ${clock(clip.end_s)}`;
}

/** The transcript with the matched words in `<mark>`; every piece escaped. */
export function highlightTranscript(text: string, words: readonly string[]): string {
  if (words.length === 0) return escapeXml(text);
  const wanted = new Set(words);
  return text
    .split(/([\p{L}\p{N}'\u2019]+)/u)
    .map((piece, i) => {
      if (i % 2 === 0) return escapeXml(piece);
      const [word] = normalizeWords(piece);
      return word !== undefined && wanted.has(word) ? `<mark>${escapeXml(piece)}</mark>` : escapeXml(piece);
    })
    .join('');
}

function reasonText(reason: MatchReason): string {
  return reason.type === 'object' ? `${reason.label} seen (confidence ${reason.confidence.toFixed(2)})` : `“${reason.word}” said`;
}

function card(clip: AnswerClip, media: MediaLinks, shared: ReadonlySet<string> = new Set()): string {
  const match = clip.match;
  const head = [
    match ? `<span class="rank">#${match.rank}</span>` : '',
    `<span class="time">${escapeXml(range(clip))}</span>`,
    `<span class="muted">clip ${clip.index}</span>`,
    match ? `<span class="score" title="score">${match.score.toFixed(2)}</span>` : '',
    clip.no_speech ? '<span class="tag">no speech</span>' : '',
    clip.status !== 'done' ? `<span class="tag tag-${clip.status}">${clip.status}</span>` : '',
  ].join('');
  const videoSrc = media.video(clip.video);
  const player = videoSrc ? `<video class="player" controls preload="metadata" src="${escapeXml(videoSrc)}" data-clip="${clip.index}"></video>` : '';
  const pictures = clip.thumbnails
    .map((t) => ({ t, src: media.picture(t.artifact) }))
    .filter((p): p is { t: AnswerClip['thumbnails'][number]; src: string } => p.src !== null)
    .map(({ t, src }) => `<img class="thumb" alt="frame ${t.frame_index} of clip ${clip.index}" src="${escapeXml(src)}" data-frame="${t.frame_index}">`)
    .join('');
  const left = clip.thumbnails.length === 0 ? `<div class="no-frames muted">${clip.frames === 0 ? 'no frames' : ''}</div>` : '';
  const transcript =
    clip.transcript !== null && clip.transcript.trim() !== ''
      ? `<p class="transcript">${highlightTranscript(clip.transcript, clip.highlight)}</p>`
      : clip.transcript_note !== null && shared.has(clip.transcript_note)
        ? '<p class="transcript muted">(no transcript: see the note above)</p>'
        : `<p class="transcript muted">${escapeXml(clip.transcript_note ? `(${clip.transcript_note})` : '(no transcript)')}</p>`;
  const chips =
    clip.objects.length > 0
      ? `<div class="chips">${clip.objects
          .map((o) => {
            const hit = match?.reasons.some((r) => r.type === 'object' && r.label === o.label) ? ' hit' : '';
            return `<span class="chip${hit}" data-label="${escapeXml(o.label)}"><b>${escapeXml(o.label)}</b> ${escapeXml(objectCountText(o))} · ${o.max_confidence.toFixed(2)}</span>`;
          })
          .join('')}</div>`
      : clip.objects_note && !shared.has(clip.objects_note)
        ? `<div class="chips muted">${escapeXml(clip.objects_note)}</div>`
        : '';
  const reasons = match ? `<ul class="reasons">${match.reasons.map((r) => `<li>${escapeXml(reasonText(r))}</li>`).join('')}</ul>` : '';
  const error = clip.error ? `<p class="clip-error">${escapeXml(clip.error)}</p>` : '';
  return `<article class="card${match ? ' card-match' : ''}" id="clip-${clip.index}" data-clip="${clip.index}"${match ? ` data-score="${match.score}"` : ''}>
  <div class="card-head">${head}</div>
  <div class="card-body">
    <div class="media">${player}<div class="thumbs">${pictures}</div>${left}</div>
    <div class="facts">${transcript}${chips}${reasons}${error}</div>
  </div>
</article>`;
}

function strip(answer: Answer): string {
  const span = answer.duration_s;
  if (span === null || span <= 0) return '';
  const matched = new Set(answer.matches);
  const segments = answer.clips
    .filter((c) => c.start_s !== null && c.end_s !== null)
    .map((c) => {
      const left = (100 * c.start_s!) / span;
      const width = Math.max(0.4, (100 * (c.end_s! - c.start_s!)) / span);
      const cls = `seg${matched.has(c.index) ? ' seg-match' : ''}${c.no_speech ? ' seg-silent' : ''}${c.status === 'failed' ? ' seg-failed' : ''}`;
      const title = `clip ${c.index} · ${range(c)}${c.match ? ` · match #${c.match.rank}, score ${c.match.score.toFixed(2)}` : ''}${c.no_speech ? ' · no speech' : ''}`;
      return `<button type="button" class="${cls}" style="left:${left.toFixed(3)}%;width:${width.toFixed(3)}%" data-clip="${c.index}" title="${escapeXml(title)}"></button>`;
    })
    .join('');
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => `<span style="left:${f * 100}%">${escapeXml(clock(f * span))}</span>`).join('');
  return `<div class="strip-wrap"><div class="strip" id="strip">${segments}</div><div class="strip-axis">${ticks}</div></div>`;
}

/**
 * Notes about how the request was set up rather than about one clip (no speech engine, which
 * detector looked and what to expect of it): said once above the clips, not under each.
 */
const SETUP_NOTE = /no speech engine configured|^detected by |no detector|object detection disabled/i;

export function requestNotes(answer: Pick<Answer, 'clips'>): string[] {
  const notes = answer.clips.flatMap((c) => [c.transcript_note, c.objects.length === 0 ? c.objects_note : null]);
  return [...new Set(notes.filter((n): n is string => n !== null && SETUP_NOTE.test(n)))];
}

export function renderAnswer(answer: Answer, query: string | null, media: MediaLinks): string {
  const byIndex = new Map(answer.clips.map((c) => [c.index, c]));
  const matches = answer.matches.map((i) => byIndex.get(i)!).filter(Boolean);
  const others = answer.clips.filter((c) => c.match === null);
  const terms = [
    ...answer.terms.labels.map((l) => `<span class="term term-label">${escapeXml(l)}</span>`),
    ...answer.terms.words.map((w) => `<span class="term">${escapeXml(w)}</span>`),
  ].join('');
  const notes = requestNotes(answer);
  const shared = new Set(notes);
  const otherCards = others.map((c) => card(c, media, shared)).join('\n');
  return `<section class="answer" id="answer" data-verdict="${answer.verdict.kind}">
  <div class="ask">
    <div class="query">${query ? `“${escapeXml(query)}”` : '<span class="muted">no query</span>'}</div>
    ${terms ? `<div class="terms">${terms}</div>` : ''}
  </div>
  <p class="verdict verdict-${answer.verdict.kind}" id="verdict">${escapeXml(answer.verdict.text)}</p>
  ${media.note ? `<p class="media-note muted" id="media-note">${escapeXml(media.note)}</p>` : ''}
  ${notes.length > 0 ? `<ul class="request-notes muted" id="request-notes">${notes.map((n) => `<li>${escapeXml(n)}</li>`).join('')}</ul>` : ''}
  ${strip(answer)}
  ${matches.length > 0 ? `<div class="cards" id="matches">\n${matches.map((c) => card(c, media, shared)).join('\n')}\n</div>` : ''}
  ${
    others.length > 0
      ? `<details class="others" id="others"${matches.length === 0 && answer.verdict.kind === 'no-query' ? ' open' : ''}><summary>${matches.length > 0 ? `${others.length} other clip${others.length === 1 ? '' : 's'}` : `all ${others.length} clip${others.length === 1 ? '' : 's'}`}</summary><div class="cards">\n${otherCards}\n</div></details>`
      : ''
  }
</section>`;
}
