/**
 * The pages' inline CSS (their scripts are `src/ui/browser/`, see `scripts.ts`). Nothing is
 * fetched from elsewhere: the request page and the report are one self-contained file each.
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
