import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createWebSocketReceiver, type StatelyInspectionEvent } from '@statelyai/inspect';
import { createInspectorServer } from '@statelyai/inspect/server';
import { describe, expect, it } from 'vitest';
import { and, createActor, createMachine, not } from 'xstate';
import { TOP_LEVEL_STATES } from '../src/domain/context.ts';
import { renderMachineSvg, statePaths } from '../src/visualize/statechart-svg.ts';
import { createInspector, summarizeRecords } from '../src/visualize/inspect.ts';
import {
  allStates,
  definitionMachine,
  describeStatechart,
  findState,
  guardName,
  mermaidBlockOf,
  pipelineStatechart,
  replaceMermaidBlock,
  toMermaid,
  type StatechartMachine,
} from '../src/visualize/statechart.ts';
import { freePort } from './support/free-port.ts';
import { until } from './support/until.ts';

const root = join(import.meta.dirname, '..');
const chart = pipelineStatechart();
const machine = (id: string): StatechartMachine => chart.machines.find((m) => m.id === id)!;
const labels = (m: StatechartMachine, source: string) => findState(m.states, source)!.transitions.map((t) => `${t.label} → ${t.targets.join(',') || '(self)'}`);

describe('the statechart read from the machine definitions', () => {
  it('has the eight top-level states, in definition order, in JSON and in Mermaid', () => {
    const pipeline = machine('pipeline');
    expect(pipeline.states.map((s) => s.path)).toEqual([...TOP_LEVEL_STATES]);
    expect(pipeline.initial).toBe('INIT');
    const mermaid = toMermaid(chart);
    for (const state of TOP_LEVEL_STATES) expect(mermaid).toMatch(new RegExp(`^\\s*state (?:"${state}" as )?${state}\\b`, 'm'));
    expect(findState(pipeline.states, 'DETECT')!.states.map((s) => s.key)).toEqual(['planning', 'detecting', 'aggregating']);
    expect(findState(pipeline.states, 'FAILED')!.states.map((s) => s.key)).toEqual(['reporting', 'settled']);
    expect(findState(pipeline.states, 'COMPLETED')!.type).toBe('final');
  });

  it('labels transitions with readable events and guard names', () => {
    const pipeline = machine('pipeline');
    expect(labels(pipeline, 'FFMPEG0')).toEqual(expect.arrayContaining(['done [callSucceeded] → LIBROSA', 'done [else] → FAILED', 'CANCEL → FAILED']));
    expect(labels(pipeline, 'INIT')).toEqual(expect.arrayContaining(['done → FFMPEG0', 'error → FAILED']));
    expect(labels(pipeline, 'FANOUT')).toEqual(
      expect.arrayContaining([
        'CLIPS.PROGRESS [runnerFailed] → FAILED',
        'CLIPS.PROGRESS [else] → (self)',
        'always [tooManyFailures] → FAILED',
        'always [allClipsSettled] → DETECT',
      ]),
    );
    expect(labels(pipeline, 'FAILED')).toEqual(expect.arrayContaining(['REDRIVE [failedIn FANOUT] → FANOUT', 'REDRIVE [failedIn INIT] → INIT']));
    for (const state of TOP_LEVEL_STATES.filter((s) => s !== 'COMPLETED' && s !== 'FAILED')) {
      const cancel = [...pipeline.transitions, ...findState(pipeline.states, state)!.transitions].find((t) => t.event === 'CANCEL');
      expect(cancel?.targets, `CANCEL from ${state}`).toEqual(['FAILED']);
    }
    const done = findState(pipeline.states, 'FFMPEG0')!.transitions.find((t) => t.guard === 'callSucceeded')!;
    expect(done.raw_event).toBe(`xstate.done.actor.${findState(pipeline.states, 'FFMPEG0')!.invokes[0]!.id}`);
    expect(done.actions).toEqual(['recordStep']);
  });

  it('shows where the fan-out runs: the clip chain in FANOUT, the detection in DETECT', () => {
    expect(chart.machines.map((m) => m.id)).toEqual(['pipeline']);
    const pipeline = machine('pipeline');
    expect(findState(pipeline.states, 'FANOUT')!.invokes.map((i) => i.src)).toEqual(['runClips']);
    expect(findState(pipeline.states, 'FANOUT')!.description).toBe('per clip: ffmpeg-2 → deepspeech → ffmpeg-3');
    expect(findState(pipeline.states, 'DETECT.detecting')!.description).toBe('per frame: object detector');
    expect(findState(pipeline.states, 'DETECT.detecting')!.invokes.map((i) => i.src)).toEqual(['detectFrames']);
    const mermaid = toMermaid(chart);
    expect(mermaid).toContain('FAILED --> FANOUT : REDRIVE [failedIn FANOUT]');
    expect(mermaid).toContain('FFMPEG0 --> LIBROSA : done [callSucceeded]');
    expect(mermaid).toContain('FANOUT --> DETECT : always [allClipsSettled]');
    expect(mermaid).toContain('FANOUT : per clip∶ ffmpeg-2 → deepspeech → ffmpeg-3');
  });

  it('runs no child machines: every unit of work is an invoked actor the host provides', () => {
    const pipeline = machine('pipeline');
    const invoked = new Set(allStates(pipeline.states).flatMap((s) => s.invokes.map((i) => i.src)));
    expect([...invoked].sort()).toEqual(['detectFrames', 'importInput', 'runClips', 'stageCall', 'writeResult']);
  });

  it('is deterministic', () => {
    const again = describeStatechart(definitionMachine());
    expect(again).toEqual(chart);
    expect(toMermaid(again)).toBe(toMermaid(chart));
    expect(JSON.stringify(again)).toBe(JSON.stringify(chart));
  });

  it('names guards, with their parameters and combinators', () => {
    expect(guardName('hasClips')).toBe('hasClips');
    expect(guardName({ type: 'failedIn', params: { state: 'DETECT' } })).toBe('failedIn DETECT');
    expect(guardName({ type: 'between', params: { min: 1, max: 3 } })).toBe('between min=1,max=3');
    expect(guardName({ type: 'callSucceeded', params: () => ({}) })).toBe('callSucceeded');
    expect(guardName(not('isRunning'))).toBe('!isRunning');
    expect(guardName(and(['a', not('b')]))).toBe('a && !b');
    expect(guardName(function isBig() {})).toBe('isBig');
  });
});

describe('docs/statechart.md', () => {
  it('holds the diagram the machines produce now', async () => {
    const doc = await readFile(join(root, 'docs/statechart.md'), 'utf8');
    const block = mermaidBlockOf(doc);
    expect(block, 'docs/statechart.md has no ```mermaid block').not.toBeNull();
    expect(block, 'docs/statechart.md is stale: run `npx tsx src/cli/main.ts visualize --update docs/statechart.md`').toBe(toMermaid(chart));
    expect(doc).toContain('@statelyai/inspect');
    expect(doc).toContain('@xstate/inspect');
  });

  it('can have its block replaced without touching the rest', () => {
    const doc = 'intro\n```sh\nls\n```\n```mermaid\nold\n```\noutro\n';
    expect(replaceMermaidBlock(doc, 'new')).toBe('intro\n```sh\nls\n```\n```mermaid\nnew\n```\noutro\n');
    expect(mermaidBlockOf(replaceMermaidBlock(doc, 'a $& b\n'))).toBe('a $& b\n');
    expect(() => replaceMermaidBlock('no block', 'x')).toThrow(/no ```mermaid block/);
  });

  it('is what `fave visualize` prints, and --format json is the same description', async () => {
    const run = promisify(execFile);
    const tsx = join(root, 'node_modules/.bin/tsx');
    const cli = join(root, 'src/cli/main.ts');
    const [mermaid, json] = await Promise.all([run(tsx, [cli, 'visualize'], { cwd: root }), run(tsx, [cli, 'visualize', '--format', 'json'], { cwd: root })]);
    expect(mermaid.stdout).toBe(toMermaid(chart));
    expect(JSON.parse(json.stdout)).toEqual(chart);
  });
});

describe('the statechart as SVG', () => {
  it('draws every state of every machine as an element the page can highlight', () => {
    for (const m of chart.machines) {
      const { svg } = renderMachineSvg(m, m.id);
      for (const path of statePaths(m)) expect(svg, `${m.id} ${path}`).toContain(`data-machine="${m.id}" data-state="${path}"`);
      expect(svg.match(/class="sc-state /g)).toHaveLength(statePaths(m).length);
      expect(svg).not.toMatch(/NaN|undefined/);
    }
  });
});

describe('createInspector', () => {
  it('is off unless FAVE_INSPECT asks for it', async () => {
    expect(await createInspector({})).toBeNull();
    expect(await createInspector({ FAVE_INSPECT: 'false' })).toBeNull();
    expect(await createInspector({ FAVE_INSPECT: '' })).toBeNull();
    await expect(createInspector({ FAVE_INSPECT: 'maybe' })).rejects.toThrow(/FAVE_INSPECT is invalid/);
    await expect(createInspector({ FAVE_INSPECT: 'true', FAVE_INSPECT_URL: 'http://localhost:1' })).rejects.toThrow(/FAVE_INSPECT_URL is invalid/);
  });

  it('summarises invocation records in inspected contexts', () => {
    const context = { request_id: 'r', records: [1, 2], clips: [{ records: [1], frames: [{ records: [] }] }] };
    expect(summarizeRecords(context)).toEqual({
      request_id: 'r',
      records: '2 invocation records',
      clips: [{ records: '1 invocation record', frames: [{ records: '0 invocation records' }] }],
    });
  });

  it('sends a running actor to a @statelyai/inspect relay with FAVE_INSPECT=true', async () => {
    const port = await freePort();
    const relay = createInspectorServer({ port, autoOpen: false });
    const url = `ws://127.0.0.1:${port}`;
    const seen: StatelyInspectionEvent[] = [];
    const receiver = createWebSocketReceiver({ server: url });
    receiver.subscribe((event) => seen.push(event));
    const inspector = (await createInspector({ FAVE_INSPECT: 'true', FAVE_INSPECT_URL: url }))!;
    expect(inspector.target).toBe(url);
    try {
      const probe = createMachine({ id: 'probe', initial: 'idle', context: { records: [1, 2, 3] }, states: { idle: { on: { GO: 'busy' } }, busy: {} } });
      const actor = createActor(probe, { inspect: inspector.inspect }).start();
      actor.send({ type: 'GO' });
      const snapshot = await until(
        () =>
          seen.find(
            (e): e is Extract<StatelyInspectionEvent, { type: '@xstate.snapshot' }> => e.type === '@xstate.snapshot' && (e.snapshot as { value?: unknown }).value === 'busy',
          ),
        { everyMs: 20, message: 'the relay to see the snapshot in `busy`' },
      );
      expect((snapshot.snapshot as { context?: unknown }).context).toEqual({ records: '3 invocation records' });
      expect(seen.some((e) => e.type === '@xstate.actor')).toBe(true);
      actor.stop();
    } finally {
      inspector.stop();
      relay.stop();
    }
  });
});
