/**
 * onnxruntime-node, loaded only when a detector model is configured. It is an optional
 * dependency: everything else works without it, so it is imported by a computed specifier
 * (the type checker does not need it installed) and described here by the little we use.
 */

export interface OrtTensor {
  readonly dims: readonly number[];
  readonly data: unknown;
  readonly type: string;
}

export interface OrtValueMetadata {
  readonly name: string;
  readonly isTensor?: boolean;
  readonly shape?: ReadonlyArray<number | string>;
}

export interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata?: readonly OrtValueMetadata[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release?(): Promise<void>;
}

export interface OrtModule {
  InferenceSession: { create(path: string, options?: { executionProviders?: string[] }): Promise<OrtSession> };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;
}

const SPECIFIER = 'onnxruntime-node';
let loading: Promise<OrtModule> | null = null;

/** Resolves the runtime, or rejects with why it cannot be loaded here. */
export function loadOnnxRuntime(): Promise<OrtModule> {
  loading ??= (async () => {
    let mod: unknown;
    try {
      mod = await import(SPECIFIER);
    } catch (err) {
      throw new Error(`onnxruntime-node cannot be loaded: ${(err as Error).message.split('\n')[0]}`);
    }
    const candidate = pickModule(mod);
    if (!candidate) throw new Error('onnxruntime-node loaded but exposes no InferenceSession/Tensor');
    return candidate;
  })();
  loading.catch(() => {
    loading = null;
  });
  return loading;
}

function pickModule(mod: unknown): OrtModule | null {
  for (const m of [mod, (mod as { default?: unknown } | null)?.default]) {
    const c = m as Partial<OrtModule> | null | undefined;
    if (c && typeof c.InferenceSession?.create === 'function' && typeof c.Tensor === 'function') return c as OrtModule;
  }
  return null;
}

/** Sessions by model path, created once and shared by concurrent calls. */
export class SessionCache {
  private readonly sessions = new Map<string, Promise<{ ort: OrtModule; session: OrtSession }>>();

  get(modelPath: string): Promise<{ ort: OrtModule; session: OrtSession }> {
    let pending = this.sessions.get(modelPath);
    if (!pending) {
      pending = (async () => {
        const ort = await loadOnnxRuntime();
        const session = await ort.InferenceSession.create(modelPath, { executionProviders: ['cpu'] });
        return { ort, session };
      })();
      this.sessions.set(modelPath, pending);
      // A model that failed to load is tried again next time (it may have been fixed meanwhile).
      pending.catch(() => this.sessions.delete(modelPath));
    }
    return pending;
  }

  async close(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const pending of all) {
      const loaded = await pending.catch(() => null);
      await loaded?.session.release?.();
    }
  }
}

/** The square input size a model declares (`[1, 3, S, S]`), or null when it is dynamic. */
export function declaredInputSize(session: OrtSession): number | null {
  const shape = session.inputMetadata?.[0]?.shape;
  if (!shape || shape.length !== 4) return null;
  const [, , h, w] = shape;
  return typeof h === 'number' && h === w && h > 0 ? h : null;
}
