import { allStates, edgeContainer, groupEdges, type StatechartEdge, type StatechartMachine, type StatechartState } from './statechart.ts';
import { escapeXml } from '../lib/xml.ts';

/**
 * Draws one machine of the statechart as SVG with a simple layered layout: the states of a
 * level in one column ordered by how far they are from the initial state, states that many
 * others lead to (FAILED) in a column to the right, compound states holding their own column.
 * Every state is a `<g class="sc-state" data-machine data-state>`; the page marks the current
 * ones with `data-current="true"`.
 */

const NODE_W = 168;
const BASE_H = 28;
const LINE_H = 13;
const GAP_Y = 42;
const HUB_GAP = 230;
const PAD = 12;
const HEADER = 22;
const LANE_W = 14;
const INITIAL_SPACE = 16;
const CHAR_W = 5.6;
const MARGIN = 12;
const TITLE_H = 20;

interface Placed {
  state: StatechartState;
  x: number;
  y: number;
  w: number;
  h: number;
  lines: string[];
  region: Region | null;
}

interface Region {
  container: string;
  x: number;
  y: number;
  w: number;
  h: number;
  main: Placed[];
  hubs: Placed[];
  edges: StatechartEdge[];
  laneOf: Map<StatechartEdge, number>;
  laneReserve: number;
  initial: Placed | null;
}

function within(path: string, ancestor: string): boolean {
  return path === ancestor || path.startsWith(`${ancestor}.`);
}

function textWidth(text: string, charW = CHAR_W): number {
  return Math.ceil(text.length * charW);
}

/** Sibling order: longest path from the initial state over forward edges, then definition order. */
function orderByRank(states: readonly StatechartState[], pairs: ReadonlyArray<[number, number]>, initial: number): number[] {
  const n = states.length;
  const out: number[][] = Array.from({ length: n }, () => []);
  for (const [a, b] of pairs) if (!out[a]!.includes(b)) out[a]!.push(b);
  // Drop back edges found by a depth-first walk from the initial state, then from the rest.
  const color = new Array<number>(n).fill(0);
  const forward: number[][] = Array.from({ length: n }, () => []);
  const visit = (v: number) => {
    color[v] = 1;
    for (const w of out[v]!) {
      if (color[w] === 1) continue;
      forward[v]!.push(w);
      if (color[w] === 0) visit(w);
    }
    color[v] = 2;
  };
  visit(initial);
  for (let v = 0; v < n; v++) if (color[v] === 0) visit(v);
  const rank = new Array<number>(n).fill(0);
  // Longest path in a DAG: relax n times (n is a handful of states).
  for (let round = 0; round < n; round++) {
    for (let v = 0; v < n; v++) for (const w of forward[v]!) rank[w] = Math.max(rank[w]!, rank[v]! + 1);
  }
  return Array.from({ length: n }, (_, i) => i).sort((a, b) => rank[a]! - rank[b]! || a - b);
}

class Layout {
  readonly placed = new Map<string, Placed>();
  readonly regions: Region[] = [];
  private readonly edges: StatechartEdge[];

  constructor(readonly machine: StatechartMachine) {
    this.edges = groupEdges(machine);
  }

  selfLoops(path: string): string[] {
    return this.edges.filter((e) => e.source === path && e.target === path).flatMap((e) => e.labels);
  }

  measure(state: StatechartState): Placed {
    const lines = [
      ...(state.description ? [state.description] : []),
      ...state.invokes.map((i) => `invoke ${i.src}${i.id !== i.src ? ` (${i.id})` : ''}`),
      ...this.selfLoops(state.path).map((l) => `↻ ${l}`),
    ];
    let placed: Placed;
    if (state.states.length > 0) {
      const region = this.region(state.states, state.path, state.initial);
      placed = { state, x: 0, y: 0, w: Math.max(NODE_W, region.w + 2 * PAD, textWidth(state.key) + 40), h: HEADER + region.h + PAD, lines, region };
    } else {
      const w = Math.max(NODE_W, ...lines.map((l) => textWidth(l, 5.2) + 16), textWidth(state.key, 7) + 20);
      placed = { state, x: 0, y: 0, w, h: BASE_H + LINE_H * lines.length, lines, region: null };
    }
    this.placed.set(state.path, placed);
    return placed;
  }

  region(states: readonly StatechartState[], container: string, initialPath: string | null): Region {
    const edges = this.edges.filter((e) => e.source !== '' && e.source !== e.target && edgeContainer(e.source, e.target) === container);
    const sibling = (path: string) => states.findIndex((s) => within(path, s.path));
    const pairs: Array<[number, number]> = [];
    const sources = states.map(() => new Set<number>());
    for (const e of edges) {
      const a = sibling(e.source);
      const b = sibling(e.target);
      if (a < 0 || b < 0 || a === b) continue;
      pairs.push([a, b]);
      sources[b]!.add(a);
    }
    const initial = Math.max(0, initialPath ? states.findIndex((s) => s.path === initialPath) : 0);
    // A state most others lead to (FAILED) gets a column of its own instead of a tangle of edges.
    const isHub = states.map((_, i) => i !== initial && sources[i]!.size >= 3);
    const order = orderByRank(
      states,
      pairs.filter(([a, b]) => !isHub[a] && !isHub[b]),
      initial,
    );
    const measured = states.map((s) => this.measure(s));
    const main = order.filter((i) => !isHub[i]).map((i) => measured[i]!);
    const hubs = states
      .map((_, i) => i)
      .filter((i) => isHub[i])
      .map((i) => measured[i]!);

    // Edges between states that are not neighbours in the column go round on the left.
    const mainIndex = new Map(main.map((p, i) => [p.state.path, i]));
    const laneOf = new Map<StatechartEdge, number>();
    let labelRoom = 0;
    for (const e of edges) {
      const a = mainIndex.get(states[sibling(e.source)]?.path ?? '');
      const b = mainIndex.get(states[sibling(e.target)]?.path ?? '');
      if (a === undefined || b === undefined || Math.abs(a - b) === 1) continue;
      laneOf.set(e, laneOf.size);
      labelRoom = Math.max(labelRoom, textWidth(e.labels.join(', ')));
    }
    const laneReserve = laneOf.size > 0 ? laneOf.size * LANE_W + Math.min(labelRoom, 120) + 8 : 0;

    const colW = Math.max(0, ...main.map((p) => p.w));
    let y = initialPath !== null || container === '' ? INITIAL_SPACE : 0;
    for (const p of main) {
      p.x = laneReserve + (colW - p.w) / 2;
      p.y = y;
      y += p.h + GAP_Y;
    }
    const mainBottom = main.length > 0 ? y - GAP_Y : 0;
    const hubX = laneReserve + colW + HUB_GAP;
    let hubY = INITIAL_SPACE;
    for (const p of hubs) {
      p.x = hubX;
      p.y = hubY;
      if (hubs.length === 1) p.h = Math.max(p.h, mainBottom - hubY);
      hubY += p.h + GAP_Y;
    }
    const hubW = Math.max(0, ...hubs.map((p) => p.w));
    const region: Region = {
      container,
      x: 0,
      y: 0,
      w: hubs.length > 0 ? hubX + hubW : laneReserve + colW,
      h: Math.max(mainBottom, hubs.length > 0 ? hubY - GAP_Y : 0),
      main,
      hubs,
      edges,
      laneOf,
      laneReserve,
      initial: measured[initial] ?? null,
    };
    this.regions.push(region);
    return region;
  }

  /** Turns region-relative positions into absolute ones, depth first. */
  place(region: Region, ox: number, oy: number): void {
    region.x = ox;
    region.y = oy;
    for (const p of [...region.main, ...region.hubs]) {
      p.x += ox;
      p.y += oy;
      if (p.region) this.place(p.region, p.x + PAD, p.y + HEADER);
    }
  }
}

function arrowPath(points: ReadonlyArray<[number, number]>): string {
  return points.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${round(x)},${round(y)}`).join(' ');
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

interface Drawn {
  edges: string[];
  labels: string[];
}

function label(x: number, y: number, text: string, anchor: 'start' | 'end' | 'middle' = 'start'): string {
  return `<text class="sc-label" x="${round(x)}" y="${round(y)}" text-anchor="${anchor}">${escapeXml(text)}</text>`;
}

function edgeSvg(d: string, title: string, marker: string): string {
  return `<path class="sc-edge" d="${d}" marker-end="url(#${marker})"><title>${escapeXml(title)}</title></path>`;
}

function drawRegion(layout: Layout, region: Region, marker: string, out: Drawn): void {
  const at = (path: string) => layout.placed.get(path);
  const hubs = new Set(region.hubs.map((h) => h.state.path));
  const sibling = (path: string) => [...region.main, ...region.hubs].find((p) => within(path, p.state.path));
  const pairs = new Set(region.edges.map((e) => `${sibling(e.source)?.state.path}>${sibling(e.target)?.state.path}`));

  for (const e of region.edges) {
    const s = at(e.source);
    const t = at(e.target);
    const ss = sibling(e.source);
    const st = sibling(e.target);
    if (!s || !t || !ss || !st) continue;
    const text = e.labels.join(', ');
    const title = `${e.source} → ${e.target}: ${text}`;
    const fromHub = hubs.has(ss.state.path);
    const toHub = hubs.has(st.state.path);
    const anchorY = (p: Placed) => (p.region ? p.y + HEADER / 2 : p.y + p.h / 2);
    if (toHub && !fromHub) {
      const y = anchorY(s) - 5;
      out.edges.push(
        edgeSvg(
          arrowPath([
            [s.x + s.w, y],
            [st.x, y],
          ]),
          title,
          marker,
        ),
      );
      out.labels.push(label(Math.max(s.x + s.w, ss.x + ss.w) + 8, y - 4, text));
    } else if (fromHub && !toHub) {
      const y = anchorY(t) + 7;
      out.edges.push(
        edgeSvg(
          arrowPath([
            [ss.x, y],
            [t.x + t.w, y],
          ]),
          title,
          marker,
        ),
      );
      out.labels.push(label(Math.max(t.x + t.w, st.x + st.w) + 8, y + 12, text));
    } else if (region.laneOf.has(e)) {
      const lane = region.laneOf.get(e)!;
      const x = region.x + region.laneReserve - LANE_W * (lane + 1);
      const y1 = anchorY(s) - 4 + (lane % 3) * 4;
      const y2 = anchorY(t) + 4;
      out.edges.push(
        edgeSvg(
          arrowPath([
            [s.x, y1],
            [x, y1],
            [x, y2],
            [t.x, y2],
          ]),
          title,
          marker,
        ),
      );
      out.labels.push(label(x - 4, (y1 + y2) / 2 + 4, text, 'end'));
    } else if (!fromHub && !toHub) {
      const down = ss.y < st.y;
      const both = pairs.has(`${st.state.path}>${ss.state.path}`);
      const cx = ss.x + ss.w / 2 + (both ? (down ? -10 : 10) : 0);
      const y1 = down ? s.y + s.h : s.y;
      const y2 = down ? t.y : t.y + t.h;
      out.edges.push(
        edgeSvg(
          arrowPath([
            [cx, y1],
            [cx, y2],
          ]),
          title,
          marker,
        ),
      );
      const mid = (y1 + y2) / 2 + 4;
      out.labels.push(both && down ? label(cx - 6, mid, text, 'end') : label(cx + 6, mid, text));
    } else {
      const y = anchorY(t);
      out.edges.push(
        edgeSvg(
          arrowPath([
            [s.x + s.w / 2, anchorY(s)],
            [t.x, y],
          ]),
          title,
          marker,
        ),
      );
      out.labels.push(label((s.x + t.x) / 2, y - 4, text, 'middle'));
    }
  }
  if (region.initial) {
    const p = region.initial;
    const cx = p.x + p.w / 2;
    out.edges.push(`<circle class="sc-initial" cx="${round(cx)}" cy="${round(p.y - INITIAL_SPACE + 3)}" r="3.5"/>`);
    out.edges.push(
      `<path class="sc-edge" d="${arrowPath([
        [cx, p.y - INITIAL_SPACE + 6],
        [cx, p.y],
      ])}" marker-end="url(#${marker})"/>`,
    );
  }
}

function drawState(p: Placed, machineId: string): string {
  const { state } = p;
  const cls = `sc-state sc-${state.type}`;
  const parts: string[] = [];
  parts.push(`<g class="${cls}" data-machine="${escapeXml(machineId)}" data-state="${escapeXml(state.path)}">`);
  parts.push(`<title>${escapeXml(`${machineId} · ${state.path}${state.type === 'final' ? ' (final)' : ''}`)}</title>`);
  parts.push(`<rect class="sc-box" x="${round(p.x)}" y="${round(p.y)}" width="${round(p.w)}" height="${round(p.h)}" rx="8"/>`);
  if (state.type === 'final') {
    parts.push(`<rect class="sc-final" x="${round(p.x + 3)}" y="${round(p.y + 3)}" width="${round(p.w - 6)}" height="${round(p.h - 6)}" rx="6"/>`);
  }
  if (p.region) {
    parts.push(`<text class="sc-name" x="${round(p.x + 10)}" y="${round(p.y + 15)}">${escapeXml(state.key)}</text>`);
    const header = p.lines.join(' · ');
    if (header) parts.push(`<text class="sc-sub" x="${round(p.x + p.w - 8)}" y="${round(p.y + 15)}" text-anchor="end">${escapeXml(header)}</text>`);
  } else {
    parts.push(`<text class="sc-name" x="${round(p.x + p.w / 2)}" y="${round(p.y + 18)}" text-anchor="middle">${escapeXml(state.key)}</text>`);
    p.lines.forEach((line, i) => {
      parts.push(`<text class="sc-sub" x="${round(p.x + p.w / 2)}" y="${round(p.y + 18 + LINE_H * (i + 1))}" text-anchor="middle">${escapeXml(line)}</text>`);
    });
  }
  parts.push('</g>');
  if (p.region) {
    for (const child of [...p.region.main, ...p.region.hubs]) parts.push(drawState(child, machineId));
  }
  return parts.join('');
}

export interface StatechartSvg {
  svg: string;
  width: number;
  height: number;
}

/** One machine as a standalone `<svg>`; `title` is drawn above it. */
export function renderMachineSvg(machine: StatechartMachine, title: string): StatechartSvg {
  const layout = new Layout(machine);
  const root = layout.region(machine.states, '', machine.initial);
  const rootEdges = machine.transitions.flatMap((t) => t.targets.map((target) => ({ t, target })));
  // Root transitions without a target leave the state as it is: listed, not drawn as arrows.
  const anywhere = machine.transitions.filter((t) => t.targets.length === 0).map((t) => t.label);
  const anyH = rootEdges.length > 0 ? 40 : 0;
  const anywhereH = anywhere.length > 0 ? 16 : 0;
  layout.place(root, MARGIN, MARGIN + TITLE_H + anywhereH + anyH);
  const marker = `sc-arrow-${machine.id.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  const drawn: Drawn = { edges: [], labels: [] };
  for (const region of layout.regions) drawRegion(layout, region, marker, drawn);

  if (anywhere.length > 0) {
    drawn.labels.push(`<text class="sc-sub" x="${MARGIN}" y="${round(MARGIN + TITLE_H + 10)}">in any state: ${escapeXml(anywhere.join(', '))}</text>`);
  }
  // Transitions declared on the machine root are taken from any state.
  rootEdges.forEach(({ t, target }, i) => {
    const p = layout.placed.get(target);
    if (!p) return;
    const x = p.x + p.w / 2 + i * 8;
    const top = MARGIN + TITLE_H + anywhereH;
    drawn.edges.push(`<text class="sc-sub" x="${round(x)}" y="${round(top + 8)}" text-anchor="middle">any state</text>`);
    drawn.edges.push(
      edgeSvg(
        arrowPath([
          [x, top + 12],
          [x, p.y],
        ]),
        `any state → ${target}: ${t.label}`,
        marker,
      ),
    );
    drawn.labels.push(label(x + 6, top + 28, t.label));
  });

  const width = Math.ceil(root.w + 2 * MARGIN + 40);
  const height = Math.ceil(MARGIN + TITLE_H + anywhereH + anyH + root.h + MARGIN + 10);
  const states = [...root.main, ...root.hubs].map((p) => drawState(p, machine.id)).join('');
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="statechart" data-machine="${escapeXml(machine.id)}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeXml(title)}">`,
    `<defs><marker id="${marker}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="sc-arrowhead"/></marker></defs>`,
    `<text class="sc-title" x="${MARGIN}" y="${MARGIN + 10}">${escapeXml(title)}</text>`,
    states,
    drawn.edges.join(''),
    drawn.labels.join(''),
    '</svg>',
  ].join('');
  return { svg, width, height };
}

/** The paths of every state of a machine, for checks that each one is drawn. */
export function statePaths(machine: StatechartMachine): string[] {
  return allStates(machine.states).map((s) => s.path);
}
