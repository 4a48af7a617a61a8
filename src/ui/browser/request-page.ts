/**
 * The request page's script: reads the view JSON embedded in the page, draws it, and on a live
 * page polls for the next one every 500 ms until the request ends. It only ever sets text and
 * attributes, never HTML. Bundled into the page (see `src/ui/scripts.ts`).
 */
import type { RequestPageView } from '../view.ts';
import type { Invocation } from '../timeline.ts';
import { duration } from '../format.ts';
import { describeLocation } from '../../domain/location.ts';

const SVG = 'http://www.w3.org/2000/svg';
const POLL_MS = 500;

function byId(id: string): HTMLElement | null {
  return document.getElementById(id);
}

function setText(id: string, text: string): void {
  const e = byId(id);
  if (e) e.textContent = text;
}

function svg(name: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function clock(t: number): string {
  return `${new Date(t).toISOString().replace('T', ' ').slice(0, 23)} UTC`;
}

function stateText(value: RequestPageView['value']): string {
  if (typeof value === 'string') return value;
  return Object.entries(value)
    .map(([k, v]) => `${k}.${stateText(v)}`)
    .join(', ');
}

function tickStep(span: number, target: number): number {
  const raw = span / target;
  const pow = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1))));
  for (const step of [1, 2, 5, 10]) if (pow * step >= raw) return pow * step;
  return pow * 10;
}

function details(inv: Invocation, critical: boolean): string {
  const lines = [
    `${describeLocation(inv)} · attempt ${inv.attempt}`,
    `outcome: ${inv.outcome}${inv.http_status !== null ? ` (HTTP ${inv.http_status})` : ''}`,
    `${inv.call_mode === 'async' ? 'queued in the gateway ' : 'queued '}${duration(inv.started_at - inv.queued_at)}, ran ${duration(inv.ended_at - inv.started_at)}`,
    `started ${clock(inv.started_at)}`,
  ];
  if (inv.cold_start) lines.push('cold start');
  if (inv.attempt > 1) lines.push('retry');
  if (inv.error) lines.push(`error ${inv.error.code}: ${inv.error.message}`);
  if (inv.call_id) lines.push(`call ${inv.call_id}`);
  if (critical) lines.push('on the critical path');
  return lines.join('\n');
}

function start(): void {
  const embedded = byId('fave-data')?.textContent;
  if (!embedded) return;
  let data = JSON.parse(embedded) as RequestPageView;
  const live = document.body.getAttribute('data-live') === 'true';
  const machineId = data.statechart.machines[0]?.id ?? 'pipeline';

  function highlight(active: readonly string[]): void {
    const nodes = document.querySelectorAll(`.sc-state[data-machine="${machineId}"]`);
    for (const node of nodes) {
      if (active.includes(node.getAttribute('data-state') ?? '')) node.setAttribute('data-current', 'true');
      else node.removeAttribute('data-current');
    }
  }

  function progress(d: RequestPageView): void {
    const p = d.progress;
    const clipsSettled = p.clips_done + p.clips_failed;
    setText('clips-text', `${p.clips_done} of ${p.clips_total} clips done${p.clips_failed ? `, ${p.clips_failed} failed` : ''}`);
    setText('frames-text', `${p.frames_done} of ${p.frames_total} frames done`);
    setText('invocations-text', `${d.invocations.length} invocations`);
    const clipsBar = byId('clips-bar');
    if (clipsBar) clipsBar.style.width = `${p.clips_total ? Math.round((100 * clipsSettled) / p.clips_total) : 0}%`;
    const framesBar = byId('frames-bar');
    if (framesBar) framesBar.style.width = `${p.frames_total ? Math.round((100 * p.frames_done) / p.frames_total) : 0}%`;
  }

  function header(d: RequestPageView): void {
    const badge = byId('status');
    if (badge) {
      badge.textContent = d.status;
      badge.className = `badge status-${d.status.toLowerCase()}`;
    }
    setText('current-state', stateText(d.value));
    setText('wall', duration(d.wall_ms) + (d.status === 'RUNNING' ? ' so far' : ''));
    const err = byId('error');
    if (!err) return;
    if (d.error) {
      err.hidden = false;
      const e = d.error;
      const at = describeLocation(e);
      err.textContent = `${e.code}${at ? ` at ${at}` : ''}${e.attempts ? ` after ${e.attempts} attempt${e.attempts === 1 ? '' : 's'}` : ''}: ${e.message}`;
    } else {
      err.hidden = true;
    }
  }

  function timeline(d: RequestPageView): void {
    const host = byId('timeline');
    if (!host) return;
    const tl = d.timeline;
    const labelW = 190;
    const rowH = 12;
    const rowGap = 3;
    const lanePad = 6;
    const axisH = 22;
    const width = Math.max(640, (host.clientWidth || 1000) - 2);
    const plotW = width - labelW - 16;
    const laneTop: number[] = [];
    let y = axisH;
    for (const lane of tl.lanes) {
      laneTop.push(y);
      y += lane.rows * (rowH + rowGap) - rowGap + 2 * lanePad;
    }
    const height = Math.max(y, axisH + 20) + 4;
    const span = Math.max(1, tl.end - tl.start);
    const x = (t: number) => labelW + ((t - tl.start) / span) * plotW;
    const root = svg('svg', { xmlns: SVG, width, height, viewBox: `0 0 ${width} ${height}`, class: 'timeline-svg' });
    tl.lanes.forEach((lane, l) => {
      const top = laneTop[l] ?? axisH;
      const lh = lane.rows * (rowH + rowGap) - rowGap + 2 * lanePad;
      root.appendChild(svg('rect', { class: `tl-lane-bg${l % 2 ? ' odd' : ''}`, x: 0, y: top, width, height: lh }));
      root.appendChild(svg('text', { class: 'tl-lane-label', x: 8, y: top + lh / 2 + 4 }, lane.stage));
    });
    const step = tickStep(span, 8);
    for (let t = 0; t <= span + 1; t += step) {
      const tx = x(tl.start + t);
      root.appendChild(svg('line', { class: 'tl-axis', x1: tx, x2: tx, y1: axisH - 4, y2: height }));
      root.appendChild(svg('text', { class: 'tl-tick', x: tx + 2, y: axisH - 8 }, duration(t)));
    }
    for (const bar of tl.bars) {
      const inv = d.invocations[bar.index];
      if (!inv) continue;
      const top = (laneTop[bar.lane] ?? axisH) + lanePad + bar.row * (rowH + rowGap);
      const cls = `inv outcome-${inv.outcome}${inv.attempt > 1 ? ' retry' : ''}${inv.cold_start ? ' cold-start' : ''}${bar.critical ? ' critical' : ''}`;
      const g = svg('g', { class: cls, 'data-invocation': inv.key });
      g.appendChild(svg('title', {}, details(inv, bar.critical)));
      if (inv.started_at > inv.queued_at) {
        g.appendChild(svg('rect', { class: 'q', x: x(inv.queued_at), y: top + 3, width: Math.max(1, x(inv.started_at) - x(inv.queued_at)), height: rowH - 6 }));
      }
      const rx = x(inv.started_at);
      const rw = Math.max(2, x(inv.ended_at) - rx);
      g.appendChild(svg('rect', { class: 'r', x: rx, y: top, width: rw, height: rowH, rx: 2 }));
      if (inv.cold_start) g.appendChild(svg('path', { class: 'cold', d: `M${rx},${top - 1} l4,0 l-2,4 z` }));
      if (inv.outcome === 'error') {
        const cx = rx + rw / 2;
        const cy = top + rowH / 2;
        g.appendChild(svg('path', { class: 'failmark', d: `M${cx - 3},${cy - 3} l6,6 M${cx + 3},${cy - 3} l-6,6` }));
      }
      root.appendChild(g);
    }
    for (const mark of d.prewarm) {
      const ml = tl.lanes.findIndex((lane) => lane.stage === mark.stage);
      const lane = tl.lanes[ml];
      if (!lane || mark.at < tl.start || mark.at > tl.end) continue;
      const mx = x(mark.at);
      const my = laneTop[ml] ?? axisH;
      const mh = lane.rows * (rowH + rowGap) - rowGap + 2 * lanePad;
      const mg = svg('g', { class: `prewarm ${mark.kind}${mark.ok ? '' : ' failed'}`, 'data-prewarm': mark.stage });
      const what = `${mark.kind === 'raise' ? 'pre-warm' : 'give back'}: ${mark.stage} ${mark.from} → ${mark.replicas} replicas at ${clock(mark.at)}`;
      mg.appendChild(svg('title', {}, `${what}${mark.ok ? '' : ` (failed: ${mark.error ?? 'unknown'})`}`));
      mg.appendChild(svg('line', { x1: mx, x2: mx, y1: my, y2: my + mh }));
      mg.appendChild(svg('path', { d: `M${mx - 4},${my} l8,0 l-4,6 z` }));
      root.appendChild(mg);
    }
    host.replaceChildren(root);
    const path = tl.critical_path.map((i) => d.invocations[i]).filter((inv): inv is Invocation => inv !== undefined);
    const first = path[0];
    const last = path[path.length - 1];
    if (first && last) {
      const busy = path.reduce((sum, inv) => sum + (inv.ended_at - inv.started_at), 0);
      setText(
        'critical-text',
        `critical path: ${path.length} invocations from ${describeLocation(first)} to ${describeLocation(last)}, ${duration(busy)} running of ${duration(last.ended_at - first.queued_at)}`,
      );
    } else {
      setText('critical-text', 'no invocations yet');
    }
  }

  function render(d: RequestPageView): void {
    header(d);
    highlight(d.active);
    progress(d);
    timeline(d);
    document.body.setAttribute('data-status', d.status);
  }

  function apiUrl(): string {
    const path = location.pathname.replace(/\/+$/, '');
    return path.replace(/\/requests\/[^/]*$/, `/api/requests/${encodeURIComponent(data.request_id)}`);
  }

  function poll(): void {
    fetch(apiUrl(), { cache: 'no-store', headers: { accept: 'application/json' } })
      .then((r) => {
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        return r.json() as Promise<RequestPageView>;
      })
      .then((d) => {
        data = d;
        render(d);
        if (d.status === 'RUNNING') {
          setText('live-note', `live · updated ${clock(d.observed_at)}`);
          setTimeout(poll, POLL_MS);
        } else setText('live-note', 'finished');
        refreshAnswer(d);
      })
      .catch((e: unknown) => {
        setText('live-note', `cannot reach the server (${e instanceof Error ? e.message : String(e)}); retrying`);
        setTimeout(poll, POLL_MS * 4);
      });
  }

  function answerMedia(): void {
    // Artifact links are relative to /ui/requests/{id}; with a trailing slash they need one more '../'.
    if (location.protocol === 'file:' || !/\/$/.test(location.pathname)) return;
    for (const media of document.querySelectorAll('.answer img[src^="../"], .answer video[src^="../"]')) {
      media.setAttribute('src', `../${media.getAttribute('src') ?? ''}`);
    }
  }

  function playClip(index: string): void {
    const card = byId(`clip-${index}`);
    if (!card) return;
    const others = byId('others');
    if (others instanceof HTMLDetailsElement && others.contains(card)) others.open = true;
    for (const playing of document.querySelectorAll('.card.playing')) playing.classList.remove('playing');
    card.classList.add('playing');
    card.scrollIntoView({ behavior: 'smooth', block: 'center' });
    const video = card.querySelector('video');
    if (video) {
      try {
        video.currentTime = 0;
      } catch {
        // A clip not loaded yet cannot seek; it plays from the start anyway.
      }
      video.play().catch(() => undefined);
    }
  }

  function bindStrip(): void {
    byId('strip')?.addEventListener('click', (ev) => {
      const seg = ev.target instanceof Element ? ev.target.closest('[data-clip]') : null;
      const clip = seg?.getAttribute('data-clip');
      if (clip) playClip(clip);
    });
  }

  bindStrip();
  answerMedia();
  // The answer is drawn by the server (one code path with the report): a live page swaps in the
  // section of a fresh copy of itself when clips settle or the request ends.
  const answerKey = (d: RequestPageView) => `${d.status}:${d.progress.clips_total}:${d.progress.clips_done + d.progress.clips_failed}:${d.progress.frames_done}`;
  let shownAnswer = answerKey(data);
  function refreshAnswer(d: RequestPageView): void {
    const key = answerKey(d);
    if (key === shownAnswer) return;
    shownAnswer = key;
    fetch(location.href, { cache: 'no-store', headers: { accept: 'text/html' } })
      .then((r) => {
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        return r.text();
      })
      .then((html) => {
        const fresh = new DOMParser().parseFromString(html, 'text/html').getElementById('answer');
        const current = byId('answer');
        if (fresh && current) {
          current.replaceWith(document.importNode(fresh, true));
          bindStrip();
          answerMedia();
        }
      })
      .catch(() => {
        shownAnswer = '';
      });
  }

  const back = byId('back');
  if (back && location.protocol !== 'file:') {
    back.setAttribute('href', location.pathname.replace(/\/+$/, '').replace(/\/requests\/[^/]*$/, '') || '/');
  }
  render(data);
  if (live && data.status === 'RUNNING') {
    setText('live-note', 'live');
    setTimeout(poll, POLL_MS);
  } else setText('live-note', live ? 'finished' : `report taken ${clock(data.observed_at)}`);
  window.addEventListener('resize', () => timeline(data));
}

start();
