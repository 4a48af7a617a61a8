/**
 * The pages' inline CSS and JavaScript. Nothing is fetched from elsewhere: the request page
 * and the report are one self-contained file each. The script reads the view JSON embedded in
 * the page, draws it, and on a live page polls for the next one every 500 ms until the
 * request ends. It only ever sets text and attributes, never HTML.
 */

export const STYLES = String.raw`
:root { --fg:#1f2933; --muted:#616e7c; --line:#cbd2d9; --bg:#fff; --panel:#f5f7fa; --ok:#2f855a; --run:#3b82f6;
  --queue:#cbd5e1; --fail:#dc2626; --warn:#d97706; --cur:#fde68a; --curline:#b45309; --crit:#7c3aed; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; flex-wrap: wrap; gap: 12px; align-items: baseline; padding: 14px 20px; border-bottom: 1px solid var(--line); background: var(--panel); }
header h1 { font-size: 18px; margin: 0; }
header a { color: var(--muted); }
main { padding: 12px 20px 40px; }
h2 { font-size: 15px; margin: 22px 0 8px; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; background: var(--muted); }
.status-running { background: var(--run); } .status-completed { background: var(--ok); } .status-failed, .status-unreadable { background: var(--fail); }
.muted { color: var(--muted); }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 8px 0; }
dl.meta dt { color: var(--muted); } dl.meta dd { margin: 0; word-break: break-all; }
.error { border: 1px solid var(--fail); background: #fef2f2; color: #7f1d1d; padding: 8px 12px; border-radius: 6px; margin: 10px 0; }
.progress { display: flex; flex-wrap: wrap; gap: 18px; align-items: center; }
.progress .bar { width: 220px; height: 10px; background: var(--queue); border-radius: 5px; overflow: hidden; display: inline-block; vertical-align: middle; }
.progress .bar > span { display: block; height: 100%; width: 0; background: var(--ok); }
.charts { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
.chart-box { border: 1px solid var(--line); border-radius: 8px; padding: 4px; overflow-x: auto; max-width: 100%; margin: 0; }
.chart-box figcaption { font-size: 12px; color: var(--muted); padding: 0 10px 8px; }
svg.statechart { display: block; }
.sc-title { font-size: 12px; font-weight: 600; fill: var(--muted); }
.sc-box { fill: #fff; stroke: #52606d; stroke-width: 1.2; }
.sc-compound > .sc-box { fill: #f8fafc; }
.sc-final { fill: none; stroke: #52606d; stroke-width: 1; }
.sc-name { font-size: 12.5px; font-weight: 600; fill: var(--fg); }
.sc-sub { font-size: 10px; fill: var(--muted); }
.sc-edge { fill: none; stroke: #7b8794; stroke-width: 1.1; }
.sc-edge:hover { stroke: var(--fg); stroke-width: 2; }
.sc-arrowhead { fill: #7b8794; }
.sc-initial { fill: #52606d; }
.sc-label { font-size: 10px; fill: #3e4c59; paint-order: stroke; stroke: #fff; stroke-width: 3px; stroke-linejoin: round; }
.sc-state[data-current="true"] > .sc-box { fill: var(--cur); stroke: var(--curline); stroke-width: 2.5; }
.sc-state[data-current="true"] > .sc-name { fill: #78350f; }
#timeline { border: 1px solid var(--line); border-radius: 8px; overflow-x: auto; min-height: 40px; }
.tl-lane-bg { fill: var(--panel); } .tl-lane-bg.odd { fill: #fff; }
.tl-lane-label { font-size: 11px; fill: var(--fg); }
.tl-axis { stroke: var(--line); } .tl-tick { font-size: 10px; fill: var(--muted); }
.inv .q { fill: var(--queue); }
.inv .r { fill: var(--run); }
.inv.outcome-success .r { fill: var(--ok); }
.inv.outcome-error .r { fill: var(--fail); }
.inv.outcome-interrupted .r { fill: var(--queue); stroke: var(--fail); stroke-width: 1.2; stroke-dasharray: 3 2; }
.inv.retry .r { stroke: var(--warn); stroke-width: 1.5; stroke-dasharray: 2 1.5; }
.inv.critical .r { stroke: var(--crit); stroke-width: 2.2; stroke-dasharray: none; }
.inv .cold { fill: #0ea5e9; }
.prewarm line { stroke: #0ea5e9; stroke-width: 1.5; stroke-dasharray: 2 2; } .prewarm path { fill: #0ea5e9; }
.prewarm.give-back path { fill: #fff; stroke: #0ea5e9; } .prewarm.failed line, .prewarm.failed path { stroke: var(--fail); }
.inv .failmark { stroke: #fff; stroke-width: 1.4; }
.inv:hover .r { filter: brightness(0.85); }
.legend { display: flex; flex-wrap: wrap; gap: 14px; font-size: 12px; color: var(--muted); margin: 6px 0; }
.legend i { display: inline-block; width: 18px; height: 10px; vertical-align: middle; margin-right: 4px; border-radius: 2px; }
table.requests { border-collapse: collapse; width: 100%; }
table.requests th, table.requests td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
table.requests th { font-size: 12px; color: var(--muted); font-weight: 600; }
table.requests td.video { max-width: 380px; word-break: break-all; }
h2.section { font-size: 17px; margin: 34px 0 6px; padding-top: 14px; border-top: 1px solid var(--line); }
h3 { font-size: 14px; margin: 18px 0 8px; }
.answer { max-width: 1180px; }
.ask { display: flex; flex-wrap: wrap; gap: 10px; align-items: baseline; margin-top: 6px; }
.ask .query { font-size: 22px; font-weight: 650; letter-spacing: -0.01em; }
.terms { display: flex; gap: 6px; flex-wrap: wrap; }
.term { font-size: 12px; padding: 1px 8px; border-radius: 10px; background: #e0e7ff; color: #3730a3; }
.term-label { background: #dcfce7; color: #166534; }
.verdict { font-size: 16px; margin: 6px 0 12px; font-weight: 600; }
.verdict-match { color: var(--ok); } .verdict-cannot-match, .verdict-failed { color: #9a3412; } .verdict-no-match { color: var(--fg); }
.verdict-running { color: var(--run); } .verdict-no-query { color: var(--muted); font-weight: 500; }
.strip-wrap { margin: 4px 0 18px; }
.strip { position: relative; height: 26px; background: repeating-linear-gradient(90deg, #eef2f6 0 10px, #e6ebf1 10px 20px); border-radius: 6px; border: 1px solid var(--line); }
.seg { position: absolute; top: 3px; bottom: 3px; border: 0; padding: 0; border-radius: 3px; background: #94a3b8; cursor: pointer; box-shadow: inset 0 0 0 1px rgba(255,255,255,.6); }
.seg:hover, .seg:focus-visible { filter: brightness(0.85); outline: 2px solid var(--fg); outline-offset: 1px; }
.seg-silent { background: repeating-linear-gradient(45deg, #cbd5e1 0 4px, #b8c3d1 4px 8px); }
.seg-match { background: #f59e0b; top: 0; bottom: 0; box-shadow: 0 0 0 1px #b45309; }
.seg-failed { background: var(--fail); }
.strip-axis { position: relative; height: 16px; font-size: 11px; color: var(--muted); }
.strip-axis span { position: absolute; transform: translateX(-50%); } .strip-axis span:first-child { transform: none; } .strip-axis span:last-child { transform: translateX(-100%); }
.cards { display: grid; gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 10px; background: #fff; overflow: hidden; }
.card-match { border-color: #f5c46b; box-shadow: 0 1px 3px rgba(180, 83, 9, .12); }
.card.playing { outline: 3px solid #f59e0b; }
.card-head { display: flex; gap: 12px; align-items: baseline; padding: 8px 14px; background: var(--panel); border-bottom: 1px solid var(--line); }
.card-match .card-head { background: #fff8eb; }
.rank { font-weight: 700; color: #b45309; } .time { font-weight: 600; font-variant-numeric: tabular-nums; }
.score { margin-left: auto; font-weight: 700; font-variant-numeric: tabular-nums; padding: 0 8px; border-radius: 8px; background: #fde68a; color: #78350f; }
.tag { font-size: 11px; padding: 0 7px; border-radius: 8px; background: #e2e8f0; color: #334155; }
.tag-failed { background: #fee2e2; color: #991b1b; } .tag-pending { background: #dbeafe; color: #1e40af; }
.card-body { display: grid; grid-template-columns: minmax(240px, 340px) 1fr; gap: 14px; padding: 12px 14px; }
@media (max-width: 760px) { .card-body { grid-template-columns: 1fr; } }
.player { width: 100%; max-height: 200px; background: #0f172a; border-radius: 6px; display: block; }
.thumbs { display: grid; grid-template-columns: repeat(4, 1fr); gap: 4px; margin-top: 6px; }
.thumb { width: 100%; aspect-ratio: 4 / 3; object-fit: cover; border-radius: 4px; background: #e2e8f0; display: block; }
.transcript { margin: 0 0 8px; font-size: 14.5px; line-height: 1.5; white-space: pre-wrap; overflow-wrap: anywhere; }
mark { background: #fde047; color: inherit; padding: 0 2px; border-radius: 3px; }
.chips { display: flex; flex-wrap: wrap; gap: 6px; margin: 6px 0; font-size: 12.5px; }
.chip { padding: 2px 9px; border-radius: 12px; background: #eef2f6; border: 1px solid var(--line); font-variant-numeric: tabular-nums; }
.chip.hit { background: #dcfce7; border-color: #86efac; }
.reasons { margin: 6px 0 0; padding-left: 18px; color: var(--muted); font-size: 12.5px; }
.clip-error { color: #7f1d1d; font-size: 12.5px; }
details.others { margin-top: 14px; }
details.others > summary { cursor: pointer; font-weight: 600; padding: 6px 0; color: var(--muted); }
details.others .card { opacity: .96; }
.media-note { font-size: 12.5px; }
form.submit { display: grid; grid-template-columns: max-content minmax(220px, 520px); gap: 8px 12px; align-items: center; padding: 14px; border: 1px solid var(--line); border-radius: 10px; background: var(--panel); max-width: 760px; margin: 8px 0 22px; }
form.submit label { color: var(--muted); font-size: 13px; }
form.submit input[type=text], form.submit select { font: inherit; padding: 5px 8px; border: 1px solid var(--line); border-radius: 6px; background: #fff; width: 100%; }
form.submit #f-video-note { display: block; font-size: 12px; margin-top: 3px; }
form.submit .profile-notes { display: grid; grid-template-columns: max-content 1fr; gap: 2px 8px; margin: 6px 0 0; font-size: 12px; }
form.submit .profile-notes dt { font-weight: 600; } form.submit .profile-notes dd { margin: 0; }
.request-notes { margin: 0 0 10px; padding-left: 18px; font-size: 13px; }
form.submit .actions { grid-column: 2; display: flex; gap: 12px; align-items: center; }
form.submit button { font: inherit; font-weight: 600; padding: 6px 16px; border-radius: 6px; border: 0; background: var(--run); color: #fff; cursor: pointer; }
form.submit button:disabled { background: var(--muted); cursor: default; }
#submit-status.error { color: var(--fail); }
`;

export const REQUEST_SCRIPT = String.raw`
(function () {
  'use strict';
  var SVG = 'http://www.w3.org/2000/svg';
  var POLL_MS = 500;
  var data = JSON.parse(document.getElementById('fave-data').textContent);
  var live = document.body.getAttribute('data-live') === 'true';
  var machineId = data.statechart.machines.length > 0 ? data.statechart.machines[0].id : 'pipeline';

  function byId(id) { return document.getElementById(id); }
  function setText(id, text) { var e = byId(id); if (e) e.textContent = text; }
  function svg(name, attrs, text) {
    var e = document.createElementNS(SVG, name);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function ms(n) { return n < 1000 ? Math.round(n) + ' ms' : (n / 1000).toFixed(n < 10000 ? 2 : 1) + ' s'; }
  function clock(t) { return new Date(t).toISOString().replace('T', ' ').slice(0, 23) + ' UTC'; }
  function stateText(value) {
    if (typeof value === 'string') return value;
    var parts = [];
    for (var k in value) parts.push(k + '.' + stateText(value[k]));
    return parts.join(', ');
  }
  function where(inv) {
    var s = inv.stage;
    if (inv.clip_index !== null) s += ', clip ' + inv.clip_index;
    if (inv.frame_index !== null) s += ', frame ' + inv.frame_index;
    return s;
  }

  function highlight(active) {
    var nodes = document.querySelectorAll('.sc-state[data-machine="' + machineId + '"]');
    for (var i = 0; i < nodes.length; i++) {
      var on = active.indexOf(nodes[i].getAttribute('data-state')) !== -1;
      if (on) nodes[i].setAttribute('data-current', 'true'); else nodes[i].removeAttribute('data-current');
    }
  }

  function progress(d) {
    var p = d.progress;
    var clipsSettled = p.clips_done + p.clips_failed;
    setText('clips-text', p.clips_done + ' of ' + p.clips_total + ' clips done' + (p.clips_failed ? ', ' + p.clips_failed + ' failed' : ''));
    setText('frames-text', p.frames_done + ' of ' + p.frames_total + ' frames done');
    setText('invocations-text', d.invocations.length + ' invocations');
    byId('clips-bar').style.width = (p.clips_total ? Math.round(100 * clipsSettled / p.clips_total) : 0) + '%';
    byId('frames-bar').style.width = (p.frames_total ? Math.round(100 * p.frames_done / p.frames_total) : 0) + '%';
  }

  function header(d) {
    var badge = byId('status');
    badge.textContent = d.status;
    badge.className = 'badge status-' + d.status.toLowerCase();
    setText('current-state', stateText(d.value));
    setText('wall', ms(d.wall_ms) + (d.status === 'RUNNING' ? ' so far' : ''));
    var err = byId('error');
    if (d.error) {
      err.hidden = false;
      var e = d.error;
      var at = [e.stage, e.clip_index !== undefined ? 'clip ' + e.clip_index : null, e.frame_index !== undefined ? 'frame ' + e.frame_index : null]
        .filter(function (x) { return x !== null && x !== undefined; }).join(', ');
      err.textContent = e.code + (at ? ' at ' + at : '') + (e.attempts ? ' after ' + e.attempts + ' attempt' + (e.attempts === 1 ? '' : 's') : '') + ': ' + e.message;
    } else {
      err.hidden = true;
    }
  }

  function tickStep(span, target) {
    var raw = span / target;
    var pow = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1))));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) if (pow * steps[i] >= raw) return pow * steps[i];
    return pow * 10;
  }

  function details(inv, critical) {
    var lines = [
      where(inv) + ' · attempt ' + inv.attempt,
      'outcome: ' + inv.outcome + (inv.http_status !== null ? ' (HTTP ' + inv.http_status + ')' : ''),
      (inv.call_mode === 'async' ? 'queued in the gateway ' : 'queued ') + ms(inv.started_at - inv.queued_at) + ', ran ' + ms(inv.ended_at - inv.started_at),
      'started ' + clock(inv.started_at),
    ];
    if (inv.cold_start) lines.push('cold start');
    if (inv.attempt > 1) lines.push('retry');
    if (inv.error) lines.push('error ' + inv.error.code + ': ' + inv.error.message);
    if (inv.call_id) lines.push('call ' + inv.call_id);
    if (critical) lines.push('on the critical path');
    return lines.join('\n');
  }

  function timeline(d) {
    var host = byId('timeline');
    var tl = d.timeline;
    var labelW = 190, rowH = 12, rowGap = 3, lanePad = 6, axisH = 22;
    var width = Math.max(640, (host.clientWidth || 1000) - 2);
    var plotW = width - labelW - 16;
    var laneTop = [];
    var y = axisH;
    for (var i = 0; i < tl.lanes.length; i++) { laneTop.push(y); y += tl.lanes[i].rows * (rowH + rowGap) - rowGap + 2 * lanePad; }
    var height = Math.max(y, axisH + 20) + 4;
    var span = Math.max(1, tl.end - tl.start);
    function x(t) { return labelW + ((t - tl.start) / span) * plotW; }
    var root = svg('svg', { xmlns: SVG, width: width, height: height, viewBox: '0 0 ' + width + ' ' + height, class: 'timeline-svg' });
    for (var l = 0; l < tl.lanes.length; l++) {
      var lane = tl.lanes[l];
      var lh = lane.rows * (rowH + rowGap) - rowGap + 2 * lanePad;
      root.appendChild(svg('rect', { class: 'tl-lane-bg' + (l % 2 ? ' odd' : ''), x: 0, y: laneTop[l], width: width, height: lh }));
      root.appendChild(svg('text', { class: 'tl-lane-label', x: 8, y: laneTop[l] + lh / 2 + 4 }, lane.stage));
    }
    var step = tickStep(span, 8);
    for (var t = 0; t <= span + 1; t += step) {
      var tx = x(tl.start + t);
      root.appendChild(svg('line', { class: 'tl-axis', x1: tx, x2: tx, y1: axisH - 4, y2: height }));
      root.appendChild(svg('text', { class: 'tl-tick', x: tx + 2, y: axisH - 8 }, ms(t)));
    }
    for (var b = 0; b < tl.bars.length; b++) {
      var bar = tl.bars[b];
      var inv = d.invocations[bar.index];
      var top = laneTop[bar.lane] + lanePad + bar.row * (rowH + rowGap);
      var cls = 'inv outcome-' + inv.outcome + (inv.attempt > 1 ? ' retry' : '') + (inv.cold_start ? ' cold-start' : '') + (bar.critical ? ' critical' : '');
      var g = svg('g', { class: cls, 'data-invocation': inv.key });
      g.appendChild(svg('title', {}, details(inv, bar.critical)));
      if (inv.started_at > inv.queued_at) {
        g.appendChild(svg('rect', { class: 'q', x: x(inv.queued_at), y: top + 3, width: Math.max(1, x(inv.started_at) - x(inv.queued_at)), height: rowH - 6 }));
      }
      var rx = x(inv.started_at);
      var rw = Math.max(2, x(inv.ended_at) - rx);
      g.appendChild(svg('rect', { class: 'r', x: rx, y: top, width: rw, height: rowH, rx: 2 }));
      if (inv.cold_start) g.appendChild(svg('path', { class: 'cold', d: 'M' + rx + ',' + (top - 1) + ' l4,0 l-2,4 z' }));
      if (inv.outcome === 'error') {
        var cx = rx + rw / 2, cy = top + rowH / 2;
        g.appendChild(svg('path', { class: 'failmark', d: 'M' + (cx - 3) + ',' + (cy - 3) + ' l6,6 M' + (cx + 3) + ',' + (cy - 3) + ' l-6,6' }));
      }
      root.appendChild(g);
    }
    var marks = d.prewarm || [];
    for (var m = 0; m < marks.length; m++) {
      var mark = marks[m];
      var ml = -1;
      for (var li = 0; li < tl.lanes.length; li++) if (tl.lanes[li].stage === mark.stage) ml = li;
      if (ml < 0 || mark.at < tl.start || mark.at > tl.end) continue;
      var mx = x(mark.at), my = laneTop[ml];
      var mh = tl.lanes[ml].rows * (rowH + rowGap) - rowGap + 2 * lanePad;
      var mg = svg('g', { class: 'prewarm ' + mark.kind + (mark.ok ? '' : ' failed'), 'data-prewarm': mark.stage });
      mg.appendChild(svg('title', {}, (mark.kind === 'raise' ? 'pre-warm: ' : 'give back: ') + mark.stage + ' ' + mark.from + ' → ' + mark.replicas + ' replicas at ' + clock(mark.at) + (mark.ok ? '' : ' (failed: ' + mark.error + ')')));
      mg.appendChild(svg('line', { x1: mx, x2: mx, y1: my, y2: my + mh }));
      mg.appendChild(svg('path', { d: 'M' + (mx - 4) + ',' + my + ' l8,0 l-4,6 z' }));
      root.appendChild(mg);
    }
    host.replaceChildren(root);
    var path = tl.critical_path;
    if (path.length > 0) {
      var first = d.invocations[path[0]], last = d.invocations[path[path.length - 1]];
      var busy = 0;
      for (var c = 0; c < path.length; c++) busy += d.invocations[path[c]].ended_at - d.invocations[path[c]].started_at;
      setText('critical-text', 'critical path: ' + path.length + ' invocations from ' + where(first) + ' to ' + where(last) + ', ' + ms(busy) + ' running of ' + ms(last.ended_at - first.queued_at));
    } else {
      setText('critical-text', 'no invocations yet');
    }
  }

  function render(d) {
    header(d);
    highlight(d.active);
    progress(d);
    timeline(d);
    document.body.setAttribute('data-status', d.status);
  }

  function apiUrl() {
    var path = location.pathname.replace(/\/+$/, '');
    return path.replace(/\/requests\/[^\/]*$/, '/api/requests/' + encodeURIComponent(data.request_id));
  }

  function poll() {
    fetch(apiUrl(), { cache: 'no-store', headers: { accept: 'application/json' } })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(function (d) {
        data = d;
        render(d);
        if (d.status === 'RUNNING') { setText('live-note', 'live · updated ' + clock(d.observed_at)); setTimeout(poll, POLL_MS); }
        else setText('live-note', 'finished');
        refreshAnswer(d);
      })
      .catch(function (e) { setText('live-note', 'cannot reach the server (' + e.message + '); retrying'); setTimeout(poll, POLL_MS * 4); });
  }


  function answerMedia() {
    // Artifact links are relative to /ui/requests/{id}; with a trailing slash they need one more '../'.
    if (location.protocol === 'file:' || !/\/$/.test(location.pathname)) return;
    var media = document.querySelectorAll('.answer img[src^="../"], .answer video[src^="../"]');
    for (var i = 0; i < media.length; i++) media[i].setAttribute('src', '../' + media[i].getAttribute('src'));
  }
  function playClip(index) {
    var card = byId('clip-' + index);
    if (!card) return;
    var others = byId('others');
    if (others && others.contains(card)) others.open = true;
    var playing = document.querySelectorAll('.card.playing');
    for (var i = 0; i < playing.length; i++) playing[i].classList.remove('playing');
    card.classList.add('playing');
    card.scrollIntoView({ behavior: 'smooth', block: 'center' });
    var video = card.querySelector('video');
    if (video) { try { video.currentTime = 0; } catch (e) {} var p = video.play(); if (p && p.catch) p.catch(function () {}); }
  }
  function bindStrip() {
    var strip = byId('strip');
    if (strip) strip.addEventListener('click', function (ev) {
      var seg = ev.target.closest ? ev.target.closest('[data-clip]') : null;
      if (seg) playClip(seg.getAttribute('data-clip'));
    });
  }
  bindStrip();
  answerMedia();
  // The answer is drawn by the server (one code path with the report): a live page swaps in the
  // section of a fresh copy of itself when clips settle or the request ends.
  function answerKey(d) { return d.status + ':' + d.progress.clips_total + ':' + (d.progress.clips_done + d.progress.clips_failed) + ':' + d.progress.frames_done; }
  var shownAnswer = answerKey(data);
  function refreshAnswer(d) {
    var key = answerKey(d);
    if (key === shownAnswer) return;
    shownAnswer = key;
    fetch(location.href, { cache: 'no-store', headers: { accept: 'text/html' } })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, 'text/html').getElementById('answer');
        var current = byId('answer');
        if (fresh && current) { current.replaceWith(document.importNode(fresh, true)); bindStrip(); answerMedia(); }
      })
      .catch(function () { shownAnswer = ''; });
  }
  var back = byId('back');
  if (back && location.protocol !== 'file:') {
    back.setAttribute('href', location.pathname.replace(/\/+$/, '').replace(/\/requests\/[^\/]*$/, '') || '/');
  }
  render(data);
  if (live && data.status === 'RUNNING') { setText('live-note', 'live'); setTimeout(poll, POLL_MS); }
  else setText('live-note', live ? 'finished' : 'report taken ' + clock(data.observed_at));
  window.addEventListener('resize', function () { timeline(data); });
})();
`;

export const LIST_SCRIPT = String.raw`
(function () {
  'use strict';
  // Links are relative to the list's own address, with or without a trailing slash.
  var base = location.pathname.replace(/\/+$/, '');
  var links = document.querySelectorAll('a[data-request]');
  for (var i = 0; i < links.length; i++) {
    links[i].setAttribute('href', base + '/requests/' + encodeURIComponent(links[i].getAttribute('data-request')));
  }
  var form = document.getElementById('submit-form');
  var root = base.replace(/\/ui$/, '');
  function say(text, isError) {
    var s = document.getElementById('submit-status');
    s.textContent = text;
    s.className = isError ? 'error' : 'muted';
  }
  function errorOf(r) {
    return r.json().then(function (b) { return (b && b.error && b.error.message) || ('HTTP ' + r.status); }, function () { return 'HTTP ' + r.status; })
      .then(function (m) { throw new Error(m); });
  }
  var busy = false;
  if (form) form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    if (busy) return;
    var fileInput = document.getElementById('f-file');
    var file = fileInput && fileInput.files && fileInput.files[0];
    var uri = document.getElementById('f-video').value.trim();
    var query = document.getElementById('f-query').value.trim();
    var profile = document.getElementById('f-profile').value;
    if (!file && !uri) { say('give a video URI or choose a file', true); return; }
    var max = Number(form.getAttribute('data-max-upload'));
    if (file && max && file.size > max) { say(file.name + ' is ' + file.size + ' bytes, more than the ' + max + ' allowed', true); return; }
    busy = true;
    document.getElementById('f-submit').disabled = true;
    var video = file
      ? (say('uploading ' + file.name + '…'),
        fetch(root + '/uploads?filename=' + encodeURIComponent(file.name), { method: 'POST', body: file, headers: { 'content-type': 'application/octet-stream' } })
          .then(function (r) { return r.ok ? r.json() : errorOf(r); })
          .then(function (b) { return b.uri; }))
      : Promise.resolve(uri);
    video
      .then(function (videoUri) {
        say('starting…');
        var body = { video_uri: videoUri, profile: profile };
        if (query) body.query = query;
        return fetch(root + '/?async=true', { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
      })
      .then(function (r) { return r.ok ? r.json() : errorOf(r); })
      .then(function (b) { location.href = base + '/requests/' + encodeURIComponent(b.request_id); })
      .catch(function (e) { say(e.message, true); busy = false; document.getElementById('f-submit').disabled = false; });
  });
  if (document.body.getAttribute('data-running') === 'true') setTimeout(function () {
    // Never throw away what is being typed into the form.
    var typing = form && (document.activeElement && form.contains(document.activeElement) || busy);
    if (!typing) location.reload();
  }, 3000);
})();
`;
