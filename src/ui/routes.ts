import type { Orchestrator } from '../orchestrator/orchestrator.ts';
import type { HttpRequestLike, HttpResponseLike } from '../server/types.ts';

/** Serves `/ui` and its assets; null when the path is not the UI's. */
export async function handleUi(request: HttpRequestLike, orchestrator: Orchestrator): Promise<HttpResponseLike | null> {
  void request;
  void orchestrator;
  return null;
}
