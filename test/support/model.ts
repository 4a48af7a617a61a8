import { createActor, type AnyActorRef, type AnyStateMachine, type AnyTransitionDefinition, type EventObject, type Snapshot } from 'xstate';
import { getShortestPaths } from '@xstate/graph';
import type { StateNode } from 'xstate';

/** Every transition a machine definition declares, labelled readably. */
export function declaredTransitions(machine: AnyStateMachine): Map<AnyTransitionDefinition, string> {
  const all = new Map<AnyTransitionDefinition, string>();
  const label = (node: StateNode, event: string, def: AnyTransitionDefinition) => {
    const guard = def.guard
      ? typeof def.guard === 'string'
        ? def.guard
        : typeof def.guard === 'object' && 'type' in def.guard
          ? `${String(def.guard.type)}${'params' in def.guard && def.guard.params ? JSON.stringify(def.guard.params) : ''}`
          : 'inline'
      : '';
    const targets = def.target ? def.target.map((t) => t.id).join(',') : '(self)';
    return `${node.id} --${event}${guard ? ` [${guard}]` : ''}--> ${targets}`;
  };
  const walk = (node: StateNode) => {
    for (const [event, defs] of node.transitions) for (const def of defs) all.set(def, label(node, event, def));
    for (const def of node.always ?? []) all.set(def, label(node, 'always', def));
    for (const child of Object.values(node.states)) walk(child);
  };
  walk(machine.root);
  return all;
}

export interface CoverageOptions<TEvent extends EventObject> {
  input: unknown;
  events: (snapshot: Snapshot<unknown> & { value: unknown; context: unknown }) => TEvent[];
  serializeState: (snapshot: Snapshot<unknown> & { value: unknown; context: unknown }) => string;
  /** Called on the live actor after every event of every replayed path. */
  afterEvent?: (actor: AnyActorRef) => void;
}

/**
 * Walks the machine's state graph with @xstate/graph, then replays, on a real actor, the shortest
 * path to every reachable state followed by every event possible there, recording through the
 * inspection API which declared transitions were taken. Returns the labels of those taken.
 */
export function coverTransitions<TEvent extends EventObject>(
  machine: AnyStateMachine,
  options: CoverageOptions<TEvent>,
): {
  taken: Set<string>;
  states: number;
} {
  const declared = declaredTransitions(machine);
  // createTestModel refuses machines that invoke actors; the traversal itself does not.
  const paths = getShortestPaths(machine, {
    input: options.input as never,
    events: (snapshot) => options.events(snapshot as never) as never,
    serializeState: (snapshot) => options.serializeState(snapshot as never),
  });
  const taken = new Set<string>();
  for (const path of paths) {
    const events = path.steps.map((s) => s.event as EventObject);
    const last = path.state as unknown as Snapshot<unknown> & { value: unknown; context: unknown };
    const nexts = options.events(last);
    for (const next of nexts.length > 0 ? nexts : [null]) {
      const actor = createActor(machine, {
        input: options.input as never,
        inspect: (ev) => {
          if (ev.type === '@xstate.microstep' && (ev.actorRef as { sessionId?: string }).sessionId === ev.rootId) {
            for (const t of ev._transitions) {
              const name = declared.get(t);
              if (name) taken.add(name);
            }
          }
        },
      });
      actor.start();
      for (const e of [...events, ...(next ? [next] : [])]) {
        actor.send(e);
        options.afterEvent?.(actor);
      }
      actor.stop();
    }
  }
  return { taken, states: paths.length };
}
