import type { Statechart } from '../visualize/statechart.ts';
import { STYLES } from './assets.ts';
import { pageScript } from './scripts.ts';
import { renderAnswer, type MediaLinks } from './answer-html.ts';
import { escapeXml, htmlDocument, scriptJson } from './html.ts';
import { duration } from './format.ts';
import { renderMachineSvg } from '../visualize/statechart-svg.ts';
import type { RequestPageView, RequestSummary } from './view.ts';

/**
 * The HTML pages. The request page is the same document live and as a report: the embedded
 * view JSON draws it; a live page then polls for newer views, a report does not.
 */

function utc(epoch: number | null): string {
  return epoch === null ? '—' : `${new Date(epoch).toISOString().replace('T', ' ').slice(0, 19)} UTC`;
}

const chartCache = new WeakMap<Statechart, string>();

/** The statechart as SVG (drawn once per statechart). */
export function renderStatecharts(chart: Statechart): string {
  const cached = chartCache.get(chart);
  if (cached) return cached;
  const html = chart.machines
    .map((machine) => {
      const drawn = renderMachineSvg(machine, `${machine.id} machine`);
      const uses = 'one per request';
      return `<figure class="chart-box">${drawn.svg}<figcaption style="max-width:${drawn.width}px">${escapeXml(uses)}</figcaption></figure>`;
    })
    .join('\n');
  chartCache.set(chart, html);
  return html;
}

export interface RequestPageOptions {
  /** Live pages poll the server; a report is a snapshot that never touches the network. */
  mode: 'live' | 'report';
  /** Where the answer's pictures and clips come from; a live page uses the artifact route. */
  media?: MediaLinks;
  /** The origin a report may play clips from (its CSP allows only that). */
  mediaOrigin?: string | null;
}

/** The artifact route, relative to `/ui/requests/{id}` (the script corrects for a trailing slash). */
export function liveMedia(requestId: string): MediaLinks {
  const at = (artifact: string) => `../../requests/${encodeURIComponent(requestId)}/artifacts/${encodeURIComponent(artifact)}`;
  return { picture: at, video: at };
}

export function renderRequestPage(view: RequestPageView, options: RequestPageOptions): string {
  const live = options.mode === 'live';
  const id = escapeXml(view.request_id);
  const media = options.media ?? (live ? liveMedia(view.request_id) : { picture: () => null, video: () => null });
  const body = `
<header>
  <h1>request <code>${id}</code></h1>
  <span id="status" class="badge status-${escapeXml(view.status.toLowerCase())}">${escapeXml(view.status)}</span>
  <span>state <code id="current-state">${escapeXml(view.active[view.active.length - 1] ?? view.state)}</code></span>
  <span id="live-note" class="muted"></span>
  ${live ? '<a id="back" href="../">all requests</a>' : ''}
</header>
<main>
  ${renderAnswer(view.answer, view.query, media)}
  <h2 class="section">Execution</h2>
  <dl class="meta">
    <dt>video</dt><dd class="mono">${escapeXml(view.video_uri)}</dd>
    <dt>query</dt><dd>${view.query ? escapeXml(view.query) : '<span class="muted">none</span>'}</dd>
    <dt>profile</dt><dd>${escapeXml(view.profile ?? '—')}</dd>
    <dt>started</dt><dd>${escapeXml(utc(view.started_at))}</dd>
    <dt>wall time</dt><dd id="wall">${escapeXml(duration(view.wall_ms))}</dd>
  </dl>
  <div id="error" class="error" hidden></div>
  <h3>Progress</h3>
  <div class="progress">
    <span><span class="bar"><span id="clips-bar"></span></span> <span id="clips-text"></span></span>
    <span><span class="bar"><span id="frames-bar"></span></span> <span id="frames-text"></span></span>
    <span id="invocations-text"></span>
  </div>
  <h3>Statechart</h3>
  <p class="muted">The current state is highlighted in amber; hover an edge for its event and guard.</p>
  <div class="charts">
${renderStatecharts(view.statechart)}
  </div>
  <h3>Invocations</h3>
  <div class="legend">
    <span><i style="background:var(--queue)"></i>queued</span>
    <span><i style="background:var(--ok)"></i>ran, succeeded</span>
    <span><i style="background:var(--fail)"></i>ran, failed ✕</span>
    <span><i style="background:var(--queue);border:1.5px dashed var(--fail)"></i>interrupted (sent, answer lost with its process)</span>
    <span><i style="background:#fff;border:1.5px dashed var(--warn)"></i>retry</span>
    <span><i style="background:#0ea5e9;width:8px"></i>cold start</span>
    <span><i style="background:none;border-left:2px dashed #0ea5e9;width:2px"></i>pre-warm scale call (filled: raise, hollow: give back)</span>
    <span><i style="background:#fff;border:2px solid var(--crit)"></i>critical path</span>
  </div>
  <p id="critical-text" class="muted"></p>
  <div id="timeline"></div>
</main>
<script type="application/json" id="fave-data">${scriptJson(view)}</script>
<script>${pageScript('request')}</script>`;
  return htmlDocument({
    title: `${view.request_id} · ${view.status} · fave`,
    live,
    body,
    bodyAttributes: { 'data-live': String(live), 'data-status': view.status },
    head: `<style>${STYLES}</style>`,
    mediaOrigin: options.mediaOrigin ?? null,
  });
}

export interface SubmitFormOptions {
  profiles: readonly string[];
  /** What each profile is for (from the configuration), shown under the picker. */
  profileDescriptions?: Readonly<Record<string, string>>;
  /** What each profile does at run time, in one line (shown in the picker). */
  profileSummaries?: Readonly<Record<string, string>>;
  /** A file upload field (the embedded default: local store, stages in process). */
  uploads: boolean;
  /** The upload cap, said next to the field. */
  maxUploadBytes: number;
}

function bytes(n: number): string {
  if (n >= 1024 ** 3) return `${+(n / 1024 ** 3).toFixed(1)} GiB`;
  if (n >= 1024 ** 2) return `${+(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${Math.round(n / 1024)} KiB`;
}

/** The form that starts a request: a video URI or (embedded) a file, a query and a profile. */
export function renderSubmitForm(options: SubmitFormOptions): string {
  const descriptions = options.profileDescriptions ?? {};
  const profiles = options.profiles
    .map((p) => {
      const summary = options.profileSummaries?.[p];
      return `<option value="${escapeXml(p)}"${summary ? ` title="${escapeXml(summary)}"` : ''}>${escapeXml(summary ? `${p} — ${summary}` : p)}</option>`;
    })
    .join('');
  const explained = options.profiles
    .filter((p) => descriptions[p])
    .map((p) => `<dt>${escapeXml(p)}</dt><dd>${escapeXml(descriptions[p]!)}</dd>`)
    .join('');
  const upload = options.uploads
    ? `<label for="f-file">or a file</label><div><input id="f-file" name="file" type="file" accept="video/*"> <span class="muted">stored under uploads/, at most ${escapeXml(bytes(options.maxUploadBytes))}</span></div>`
    : '';
  return `<form class="submit" id="submit-form" data-max-upload="${options.maxUploadBytes}">
  <label for="f-video">video</label><div><input id="f-video" name="video_uri" type="text" placeholder="s3://bucket/key.mp4 or https://…" autocomplete="off" aria-describedby="f-video-note"> <span id="f-video-note" class="muted">an s3:// or http(s):// address; paths on the server's disk are refused${options.uploads ? ' (upload a file instead)' : ''}</span></div>
  ${upload}
  <label for="f-query">query</label><input id="f-query" name="query" type="text" placeholder="where are the cars?" autocomplete="off">
  <label for="f-profile">profile</label><div><select id="f-profile" name="profile" aria-describedby="f-profile-notes">${profiles}</select>${explained ? `<dl class="profile-notes muted" id="f-profile-notes">${explained}</dl>` : ''}</div>
  <div class="actions"><button type="submit" id="f-submit">Start</button><span id="submit-status" class="muted" role="status"></span></div>
</form>`;
}

/** Where the list is in its pages: the next page's cursor (null on the last). */
export interface ListPaging {
  next: string | null;
  limit: number;
  /** True on the first page, which holds the running requests. */
  first: boolean;
}

/** Links to the newest page and to the next (older) one; relative, so they work behind any prefix. */
function pagingLinks(paging: ListPaging): string {
  const links: string[] = [];
  if (!paging.first) links.push(`<a href="?limit=${paging.limit}">newest</a>`);
  if (paging.next) links.push(`<a rel="next" href="?limit=${paging.limit}&amp;cursor=${encodeURIComponent(paging.next)}">older requests →</a>`);
  return links.length > 0 ? `<p class="paging">${links.join(' · ')}</p>` : '';
}

export function renderListPage(rows: readonly RequestSummary[], form?: SubmitFormOptions, paging: ListPaging = { next: null, limit: rows.length, first: true }): string {
  const running = rows.some((r) => r.status === 'RUNNING');
  const body = rows
    .map((r) => {
      const progress = r.progress
        ? `${r.progress.clips_done}/${r.progress.clips_total} clips, ${r.progress.frames_done}/${r.progress.frames_total} frames, ${r.progress.invocations} calls`
        : '';
      return `<tr>
  <td><a class="mono" data-request="${escapeXml(r.request_id)}" href="ui/requests/${encodeURIComponent(r.request_id)}">${escapeXml(r.request_id)}</a></td>
  <td><span class="badge status-${escapeXml(r.status.toLowerCase())}">${escapeXml(r.status)}</span>${r.state && r.state !== r.status ? ` <span class="muted">${escapeXml(r.state)}</span>` : ''}</td>
  <td class="video mono">${escapeXml(r.video_uri ?? '')}</td>
  <td>${r.query ? escapeXml(r.query) : '<span class="muted">—</span>'}</td>
  <td>${escapeXml(utc(r.started_at))}</td>
  <td>${escapeXml(duration(r.wall_ms))}</td>
  <td class="muted">${escapeXml(progress)}${r.error ? `<br>${escapeXml(r.error)}` : ''}</td>
</tr>`;
    })
    .join('\n');
  return htmlDocument({
    title: 'requests · fave',
    live: true,
    bodyAttributes: { 'data-running': String(running) },
    head: `<style>${STYLES}</style>`,
    body: `
<header><h1>Requests</h1><span class="muted">${rows.length} shown${running ? ' · refreshing while any runs' : ''}</span></header>
<main>
${form ? `<h2>New request</h2>\n${renderSubmitForm(form)}\n<h2>All requests</h2>` : ''}
${
  rows.length === 0
    ? '<p class="muted">No requests yet. Start one here, with <code>fave run</code> or with <code>POST /</code>.</p>'
    : `<table class="requests">
<thead><tr><th>request</th><th>status</th><th>video</th><th>query</th><th>started</th><th>wall time</th><th>progress</th></tr></thead>
<tbody>
${body}
</tbody>
</table>`
}
${pagingLinks(paging)}
</main>
<script>${pageScript('list')}</script>`,
  });
}

export function renderMessagePage(title: string, message: string): string {
  return htmlDocument({
    title: `${title} · fave`,
    live: false,
    head: `<style>${STYLES}</style>`,
    body: `<header><h1>${escapeXml(title)}</h1></header><main><p>${escapeXml(message)}</p></main>`,
  });
}

/** The sign-in form: a token from `FAVE_API_TOKENS` becomes an HttpOnly cookie. */
export function renderSignInPage(action: string, message: string | null): string {
  return htmlDocument({
    title: 'Sign in · fave',
    live: false,
    form: true,
    head: `<style>${STYLES}</style>`,
    body: [
      '<header><h1>Sign in</h1></header><main>',
      message
        ? `<p role="alert">${escapeXml(message)}</p>`
        : '<p>This service needs an API token (a <code>read</code> or <code>operate</code> token of <code>FAVE_API_TOKENS</code>).</p>',
      `<form method="post" action="${escapeXml(action)}">`,
      '<label>Token <input type="password" name="token" autocomplete="current-password" required></label> ',
      '<button type="submit">Sign in</button>',
      '</form></main>',
    ].join(''),
  });
}
