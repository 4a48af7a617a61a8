import type { Execution, ExecutionOutcome } from './execution.ts';

/** A request this process runs, or one it waits on while another owner runs it. */
export interface Handle {
  request_id: string;
  /** True when this process runs it; false when it waits on another owner or it had finished. */
  local: boolean;
  done: Promise<ExecutionOutcome>;
  execution: Execution | null;
}

/**
 * The executions running in this process, by request id, and the starts under way: within one
 * process a request id is never started twice at once, and a second submission joins the first.
 */
export class ExecutionRegistry {
  private readonly executions = new Map<string, Execution>();
  /** What a caller joining a local execution awaits: its outcome, or the winner's if it is taken over. */
  private readonly outcomes = new WeakMap<Execution, Promise<ExecutionOutcome>>();
  private readonly starting = new Map<string, Promise<Handle>>();

  get(requestId: string): Execution | undefined {
    return this.executions.get(requestId);
  }

  has(requestId: string): boolean {
    return this.executions.has(requestId);
  }

  /** True when it runs here or a start of it is under way. */
  busy(requestId: string): boolean {
    return this.executions.has(requestId) || this.starting.has(requestId);
  }

  all(): Execution[] {
    return [...this.executions.values()];
  }

  ids(): string[] {
    return [...this.executions.keys()];
  }

  /** Joins a running execution of `requestId`, or a start of it already under way, else runs `start`. */
  async once(requestId: string, start: () => Promise<Handle>): Promise<Handle> {
    const joined = this.executions.get(requestId);
    if (joined) return { request_id: requestId, local: true, done: this.outcomes.get(joined) ?? joined.done, execution: joined };
    const starting = this.starting.get(requestId);
    if (starting) return starting;
    const promise = start();
    this.starting.set(requestId, promise);
    try {
      return await promise;
    } finally {
      this.starting.delete(requestId);
    }
  }

  /** A claimed execution. */
  add(execution: Execution): void {
    this.executions.set(execution.requestId, execution);
  }

  /** What a caller joining `execution` awaits (else its own `done`). */
  joinWith(execution: Execution, outcome: Promise<ExecutionOutcome>): void {
    this.outcomes.set(execution, outcome);
  }

  /** Out as soon as it stops here, so status and sweeps read the store again; false when a newer one replaced it. */
  remove(execution: Execution): boolean {
    if (this.executions.get(execution.requestId) !== execution) return false;
    this.executions.delete(execution.requestId);
    return true;
  }

  /** Stops every local execution without touching its state, so another process can resume it. */
  async abandonAll(): Promise<void> {
    await Promise.all([...this.executions.values()].map((e) => e.abandon()));
    this.executions.clear();
  }
}
