import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createActor, type Snapshot } from 'xstate';
import { pipelineMachine } from '../src/machine/pipeline.machine.ts';
import { inertActors } from './support/inert-actors.ts';
import { inputOfContext } from '../src/domain/context.ts';
import { parseStateFile } from '../src/persistence/state-file.ts';
import { requestKeys } from '../src/persistence/store.ts';
import { startHarness, type Harness } from './support/harness.ts';

/**
 * A state.json written before the request was declared once in the domain module: it has the
 * dead `clips_note`, a clip whose status says `running`, no `retrying` or `dispatched`, a retry
 * policy without `stop_on_repeated_error`, no per-stage call modes, and the permission flags
 * that once were stored with a request. It was taken in FANOUT: one clip done, one in flight.
 */
const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), 'fixtures/state-before-domain-module.json');
const text = readFileSync(FIXTURE, 'utf8');

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

describe('a state.json of the earlier format', () => {
  it('loads into the current context: dead fields dropped, absent ones at their defaults', () => {
    const raw = JSON.parse(text) as { snapshot: { context: Record<string, unknown> } };
    expect(raw.snapshot.context).toHaveProperty('clips_note');

    const { snapshot } = parseStateFile(text, FIXTURE);
    const context = snapshot.context;
    expect(context).not.toHaveProperty('clips_note');
    expect(context).not.toHaveProperty('allow_local_path');
    expect(context).not.toHaveProperty('allow_private_network');
    expect(context.clips.map((c) => c.status)).toEqual(['pending', 'done']);
    expect(context.retrying).toEqual({});
    expect(context.dispatched).toEqual({});
    expect(context.settings.retry.stop_on_repeated_error).toBe(true);
    expect(context.settings.call_modes).toBeUndefined();
  });

  it('restores into the pipeline machine where it was', () => {
    const { snapshot } = parseStateFile(text, FIXTURE);
    const machine = pipelineMachine.provide({
      actors: inertActors(),
    });
    // A request in FANOUT is an active snapshot: it has neither output nor error yet.
    const restored: Snapshot<unknown> = { ...snapshot, status: 'active', output: undefined, error: undefined };
    const actor = createActor(machine, { snapshot: restored, input: inputOfContext(snapshot.context) }).start();
    expect(actor.getSnapshot().value).toBe('FANOUT');
    expect(Object.keys(actor.getSnapshot().children)).toEqual(['runClips']);
    actor.stop();
  });

  it('resumes to a completed answer, redoing only the clip that was in flight', async () => {
    h = await startHarness({ gateway: { clips: 2, framesPerClip: 1, requireInputs: false } });
    await h.store.put({ bucket: 'fave-artifacts', key: requestKeys.state('legacy') }, text);

    const outcome = await (await h.app.orchestrator.resume('legacy')).done;
    expect(outcome.status).toBe('COMPLETED');
    // Clip 0 had done ffmpeg-2 and deepspeech: only its ffmpeg-3 is called again; then both frames.
    expect(h.gateway.calls.map((c) => c.stage).sort()).toEqual(['stage-ffmpeg-3', 'stage-object-detector', 'stage-object-detector']);
    const final = await h.readFinal('legacy');
    expect(final.clips.map((c) => c.transcript)).toEqual(['clip 0 mentions a red car', 'clip 1 has a dog barking in the distance']);
  });
});
