import type { AnyStateMachine, AnyStateNode } from 'xstate';
import { FaveFailure, faveError } from '../domain/errors.ts';
import { pipelineMachine } from '../machine/pipeline.machine.ts';

/**
 * The pipeline's statechart as data, read from the machine definitions themselves (state
 * nodes, transitions, guards, invokes), so a drawing cannot drift from the code. Every unit of
 * work is an actor a state invokes (a promise or a callback), so the pipeline machine is the only
 * machine there is to draw.
 */

export interface StatechartTransition {
  /** Path of the state that declares it (`DETECT.detecting`); `''` for the machine root. */
  source: string;
  /** Readable trigger: `CANCEL`, `done`, `error`, `child done`, `always`, `after 500 ms`. */
  event: string;
  /** The event descriptor as the definition has it; `''` for an eventless (always) transition. */
  raw_event: string;
  /** Guard name with its parameters (`failedIn FANOUT`); `else` for the fallback of a guarded choice. */
  guard: string | null;
  /** `event [guard]`, as drawn. */
  label: string;
  /** Target state paths; empty when the transition only runs actions. */
  targets: string[];
  actions: string[];
}

export interface StatechartActorRef {
  /** Invoke id (the `xstate.done.actor.{id}` it answers with). */
  id: string;
  /** The actor's name among the machine's actors (`stageCall`). */
  src: string;
}

export interface StatechartState {
  path: string;
  key: string;
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  /** The state's own `description` in the machine definition, if any. */
  description: string | null;
  /** Path of the initial child state of a compound state. */
  initial: string | null;
  entry: string[];
  invokes: StatechartActorRef[];
  transitions: StatechartTransition[];
  states: StatechartState[];
}

export interface StatechartMachine {
  id: string;
  initial: string | null;
  /** Transitions declared on the machine root (taken from any state). */
  transitions: StatechartTransition[];
  states: StatechartState[];
}

export interface Statechart {
  format: 'fave-statechart';
  version: 1;
  /** The pipeline machine, alone: a list so that the format can hold child machines if one is ever run. */
  machines: StatechartMachine[];
}

/** The pipeline machine's definition: read here, never run. */
export function definitionMachine(): AnyStateMachine {
  return pipelineMachine;
}

let cached: Statechart | null = null;

/** The statechart of the pipeline machine (computed once per process). */
export function pipelineStatechart(): Statechart {
  cached ??= describeStatechart(definitionMachine());
  return cached;
}

/** Describes a machine's states and transitions; its actors are named by their `src`. */
export function describeStatechart(machine: AnyStateMachine): Statechart {
  const described: StatechartMachine = {
    id: machine.id,
    initial: initialOf(machine.root),
    transitions: transitionsOf(machine.root),
    states: Object.values(machine.root.states).map(describeState),
  };
  return { format: 'fave-statechart', version: 1, machines: [described] };
}

/** `DETECT.detecting` from the node id `pipeline.DETECT.detecting`. */
function pathOf(node: AnyStateNode): string {
  return node.path.join('.');
}

function initialOf(node: AnyStateNode): string | null {
  if (node.type !== 'compound') return null;
  const target = node.initial.target[0];
  return target ? pathOf(target) : null;
}

function describeState(node: AnyStateNode): StatechartState {
  const path = pathOf(node);
  const entry = node.entry.map(actionName);
  const invokes = node.invoke.map((inv) => ({ id: inv.id, src: typeof inv.src === 'string' ? inv.src : 'inline' }));
  const transitions = transitionsOf(node);
  return {
    path,
    key: node.key,
    type: node.type,
    description: node.description ?? null,
    initial: initialOf(node),
    entry,
    invokes,
    transitions,
    states: Object.values(node.states).map(describeState),
  };
}

function transitionsOf(node: AnyStateNode): StatechartTransition[] {
  const source = pathOf(node);
  const invokeIds = new Set(node.invoke.map((inv) => inv.id));
  const out: StatechartTransition[] = [];
  const add = (rawEvent: string, list: ReadonlyArray<{ guard?: unknown; target?: ReadonlyArray<AnyStateNode> | undefined; actions: readonly unknown[] }>) => {
    const guarded = list.some((t) => t.guard !== undefined);
    for (const t of list) {
      const event = readableEvent(rawEvent, invokeIds);
      const guard = t.guard !== undefined ? guardName(t.guard) : guarded ? 'else' : null;
      out.push({
        source,
        event,
        raw_event: rawEvent,
        guard,
        label: guard ? `${event} [${guard}]` : event,
        targets: (t.target ?? []).map(pathOf),
        actions: t.actions.map(actionName),
      });
    }
  };
  for (const [event, list] of node.transitions) {
    // Delayed transitions also live under their generated `xstate.after.*` event.
    add(event, list);
  }
  if (node.always) add('', node.always);
  return out;
}

function readableEvent(raw: string, ownInvokes: ReadonlySet<string>): string {
  if (raw === '') return 'always';
  if (raw === 'xstate.done.actor.*') return 'child done';
  if (raw === 'xstate.error.actor.*') return 'child error';
  const done = /^xstate\.done\.actor\.(.+)$/.exec(raw);
  if (done) return ownInvokes.has(done[1]!) ? 'done' : `${done[1]} done`;
  const error = /^xstate\.error\.actor\.(.+)$/.exec(raw);
  if (error) return ownInvokes.has(error[1]!) ? 'error' : `${error[1]} error`;
  const after = /^xstate\.after\.(\d+)\./.exec(raw);
  if (after) return `after ${after[1]} ms`;
  if (raw.startsWith('xstate.done.state.')) return 'substates done';
  return raw;
}

function actionName(action: unknown): string {
  if (typeof action === 'string') return action;
  if ((typeof action === 'object' || typeof action === 'function') && action !== null) {
    // Built-in actions (assign, enqueueActions…) are functions carrying their `type`.
    const type = (action as { type?: unknown }).type;
    if (typeof type === 'string') return type;
    if (typeof action === 'function' && action.name) return action.name;
  }
  return 'inline';
}

function formatParam(value: unknown): string {
  if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) return String(value);
  return JSON.stringify(value) ?? String(value);
}

/** `callSucceeded`, `failedIn FANOUT`, `!a`, `a && b`; runtime parameters are left out. */
export function guardName(guard: unknown): string {
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') {
    const inner = (guard as { guards?: unknown }).guards;
    if (Array.isArray(inner)) {
      const names = inner.map(guardName);
      if (guard.name === 'not') return `!${names[0] ?? '?'}`;
      return names.join(guard.name === 'or' ? ' || ' : ' && ');
    }
    return guard.name || 'inline';
  }
  if (typeof guard === 'object' && guard !== null && typeof (guard as { type?: unknown }).type === 'string') {
    const { type, params } = guard as { type: string; params?: unknown };
    if (typeof params !== 'object' || params === null) return type;
    const entries = Object.entries(params as Record<string, unknown>);
    if (entries.length === 0) return type;
    if (entries.length === 1) return `${type} ${formatParam(entries[0]![1])}`;
    return `${type} ${entries.map(([k, v]) => `${k}=${formatParam(v)}`).join(',')}`;
  }
  return 'inline';
}

// ── lookups shared by the renderers ──────────────────────────────────────────────────────────

export function findState(states: readonly StatechartState[], path: string): StatechartState | null {
  for (const state of states) {
    if (state.path === path) return state;
    const inner = findState(state.states, path);
    if (inner) return inner;
  }
  return null;
}

export function allStates(states: readonly StatechartState[]): StatechartState[] {
  return states.flatMap((s) => [s, ...allStates(s.states)]);
}

/** Every state path a state value makes active: `{DETECT: 'detecting'}` → DETECT, DETECT.detecting. */
export function activePaths(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix ? `${prefix}.${value}` : value];
  if (typeof value !== 'object' || value === null) return [];
  const out: string[] = [];
  for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
    const path = prefix ? `${prefix}.${key}` : key;
    out.push(path, ...activePaths(inner, path));
  }
  return out;
}

// ── Mermaid ──────────────────────────────────────────────────────────────────────────────────

/** A Mermaid id: the state's path, with `_` for the dots Mermaid does not take. */
function mermaidId(path: string): string {
  return path.replace(/\./g, '_');
}

function mermaidText(text: string): string {
  // `:`, `;` and `#` end or break a Mermaid statement; keep labels on one clean line.
  return text.replace(/[;#]/g, ' ').replace(/:/g, '∶').replace(/\s+/g, ' ').trim();
}

export interface StatechartEdge {
  /** `''` for a transition declared on the machine root. */
  source: string;
  target: string;
  labels: string[];
}

/**
 * The transitions of a machine as drawable edges, one per (source, target) pair in definition
 * order; a transition without a target is an edge back to its own state.
 */
export function groupEdges(machine: StatechartMachine): StatechartEdge[] {
  const edges = new Map<string, StatechartEdge>();
  const transitions = [...machine.transitions, ...allStates(machine.states).flatMap((s) => s.transitions)];
  for (const t of transitions) {
    const targets = t.targets.length > 0 ? t.targets : [t.source];
    for (const target of targets) {
      const key = `${t.source}\u0000${target}`;
      const edge = edges.get(key) ?? { source: t.source, target, labels: [] };
      if (!edge.labels.includes(t.label)) edge.labels.push(t.label);
      edges.set(key, edge);
    }
  }
  return [...edges.values()];
}

/** The deepest composite state holding both ends of an edge (`''` for the machine root). */
export function edgeContainer(source: string, target: string): string {
  const a = source.split('.');
  const b = target.split('.');
  const limit = Math.min(a.length, b.length) - 1;
  const common: string[] = [];
  for (let i = 0; i < limit && a[i] === b[i]; i++) common.push(a[i]!);
  return common.join('.');
}

/**
 * A Mermaid `stateDiagram-v2` of the pipeline. Transitions read `event [guard]`; targetless ones are self-loops. Edges
 * are written in the composite that holds both ends, and composites referenced by edges keep
 * their plain id, the two forms Mermaid lays out reliably.
 */
export function toMermaid(chart: Statechart): string {
  const lines: string[] = ['stateDiagram-v2'];
  for (const machine of chart.machines) emitMachine(machine, lines);
  return `${lines.join('\n')}\n`;
}

function emitMachine(machine: StatechartMachine, lines: string[]): void {
  const indent = '  ';
  const id = mermaidId;
  const edges = new Map<string, string[]>();
  const addEdge = (container: string, edge: string) => {
    const list = edges.get(container) ?? [];
    list.push(edge);
    edges.set(container, list);
  };
  if (machine.initial) addEdge('', `[*] --> ${id(machine.initial)}`);
  for (const state of allStates(machine.states)) {
    const parent = state.path.split('.').slice(0, -1).join('.');
    if (state.type === 'final') addEdge(parent, `${id(state.path)} --> [*]`);
  }
  const anyId = id('any_state');
  // One edge per pair of states, its triggers joined: parallel edges pile their labels up.
  for (const edge of groupEdges(machine)) {
    const from = edge.source === '' ? anyId : id(edge.source);
    // A targetless transition on the root stays in whatever state the machine is in.
    const to = edge.target === '' ? anyId : id(edge.target);
    const container = edge.source === '' ? '' : edgeContainer(edge.source, edge.target);
    addEdge(container, `${from} --> ${to} : ${mermaidText(edge.labels.join(', '))}`);
  }

  const emitStates = (states: readonly StatechartState[], container: string, pad: string) => {
    for (const state of states) {
      const sid = id(state.path);
      const display = mermaidText(state.key);
      if (state.states.length > 0) {
        lines.push(sid === display ? `${pad}state ${sid} {` : `${pad}state "${display}" as ${sid} {`);
        if (state.initial) lines.push(`${pad}  [*] --> ${id(state.initial)}`);
        emitStates(state.states, state.path, `${pad}  `);
        lines.push(`${pad}}`);
        continue;
      }
      lines.push(`${pad}state "${display}" as ${sid}`);
      if (state.description) lines.push(`${pad}${sid} : ${mermaidText(state.description)}`);
      for (const inv of state.invokes) lines.push(`${pad}${sid} : invoke ${mermaidText(inv.src)}${inv.src !== inv.id ? ` (${mermaidText(inv.id)})` : ''}`);
    }
    for (const edge of edges.get(container) ?? []) lines.push(`${pad}${edge}`);
  };

  if (machine.transitions.length > 0) lines.push(`${indent}state "any state" as ${anyId}`);
  emitStates(machine.states, '', indent);
}

const MERMAID_BLOCK = /```mermaid\n[\s\S]*?```/;

/** The first ```mermaid block of a Markdown text, without its fences; null when there is none. */
export function mermaidBlockOf(markdown: string): string | null {
  const match = MERMAID_BLOCK.exec(markdown);
  return match ? match[0].slice('```mermaid\n'.length, -'```'.length) : null;
}

/** The Markdown text with its first ```mermaid block replaced by the given diagram. */
export function replaceMermaidBlock(markdown: string, mermaid: string): string {
  const block = `\`\`\`mermaid\n${mermaid.endsWith('\n') ? mermaid : `${mermaid}\n`}\`\`\``;
  if (!MERMAID_BLOCK.test(markdown)) throw new FaveFailure(faveError('BAD_REQUEST', 'the document has no ```mermaid block to replace'));
  return markdown.replace(MERMAID_BLOCK, () => block);
}
