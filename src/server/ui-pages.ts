import type { Logger } from 'pino';
import { roleOfToken, type ApiAuth } from '../config/api-tokens.ts';
import { FaveFailure, faveError } from '../domain/errors.ts';
import type { Orchestrator } from '../orchestrator/orchestrator.ts';
import { liveFeedOf } from '../ui/live-feed.ts';
import { renderListPage, renderRequestPage, renderSignInPage } from '../ui/page.ts';
import { z } from 'zod';
import { ListCursorSchema } from '../persistence/request-index.ts';
import { LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, listRequestSummaries, loadRequestPage } from '../ui/view.ts';
import { htmlAnswer, jsonAnswer } from './answers.ts';
import { mediaType, sessionCookie } from './auth.ts';
import { basePath, secureRequest } from './forwarded.ts';
import type { HttpRequestLike, HttpResponseLike } from './types.ts';
import { parseJsonBody } from './validate.ts';

/**
 * The UI's handlers; the router holds their routes, checks the request id and answers their failures:
 * - `GET /ui`: the form that starts a request, then a page of requests, newest first (`?limit=&cursor=`);
 * - `GET /ui/requests/{id}`: the request page (statechart, progress, invocation timeline);
 * - `GET /ui/api/requests/{id}`: the view JSON that page polls; `GET /ui/api/requests`: the list;
 * - `GET`/`POST /ui/login`, `POST /ui/logout`: the sign-in form and its cookie.
 */
export interface UiPages {
  list(request: HttpRequestLike): Promise<HttpResponseLike>;
  listJson(request: HttpRequestLike): Promise<HttpResponseLike>;
  page(requestId: string): Promise<HttpResponseLike>;
  view(requestId: string): Promise<HttpResponseLike>;
  /** The sign-in form, also the 401 answer of every page without a valid token. */
  signInForm(request: HttpRequestLike, status?: number, message?: string | null): HttpResponseLike;
  signIn(request: HttpRequestLike): HttpResponseLike;
  signOut(request: HttpRequestLike): HttpResponseLike;
}

export interface UiPagesDeps {
  orchestrator: Orchestrator;
  auth: ApiAuth;
  logger: Logger;
  /** The cap of `POST /uploads` (0: no upload field). */
  maxUploadBytes: number;
}

const ListQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(LIST_LIMIT_MAX).default(LIST_LIMIT_DEFAULT),
  cursor: ListCursorSchema.optional(),
});

/** `?limit=` (1–200, default 50) and `?cursor=` (a `next_cursor` of the list); a bad one is a 400 naming it. */
function listQuery(request: HttpRequestLike): { limit: number; cursor: string | null } {
  const parsed = ListQuerySchema.safeParse({ limit: request.query.limit, cursor: request.query.cursor });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = String(issue.path[0] ?? 'query');
    throw new FaveFailure(faveError('BAD_REQUEST', `${field}: ${issue.message}`));
  }
  return { limit: parsed.data.limit, cursor: parsed.data.cursor ?? null };
}

export function createUiPages(deps: UiPagesDeps): UiPages {
  const { orchestrator, auth, logger, maxUploadBytes } = deps;

  /** From the first look at the UI on, live views of running requests see every invocation as it ends. */
  function watch(): void {
    liveFeedOf(orchestrator);
  }

  async function viewOf(requestId: string) {
    watch();
    const view = await loadRequestPage(orchestrator, requestId);
    if (!view) throw new FaveFailure(faveError('REQUEST_NOT_FOUND', `no request ${requestId}`));
    return view;
  }

  function signInForm(request: HttpRequestLike, status = 200, message: string | null = null): HttpResponseLike {
    return htmlAnswer(status, renderSignInPage(`${basePath(request)}/ui/login`, message), { form: true });
  }

  return {
    async list(request) {
      watch();
      const query = listQuery(request);
      const form = {
        profiles: orchestrator.profileNames,
        profileDescriptions: orchestrator.profileDescriptions,
        profileSummaries: orchestrator.profileSummaries,
        // The upload field is for the embedded default; elsewhere videos are already in a bucket.
        uploads: maxUploadBytes > 0 && orchestrator.embedded && orchestrator.store.kind === 'fs',
        maxUploadBytes,
      };
      const page = await listRequestSummaries(orchestrator, query);
      return htmlAnswer(200, renderListPage(page.requests, form, { next: page.next_cursor, limit: page.limit, first: query.cursor === null }), { live: true });
    },
    async listJson(request) {
      watch();
      return jsonAnswer(200, await listRequestSummaries(orchestrator, listQuery(request)));
    },
    async page(requestId) {
      return htmlAnswer(200, renderRequestPage(await viewOf(requestId), { mode: 'live' }), { live: true });
    },
    async view(requestId) {
      return jsonAnswer(200, await viewOf(requestId));
    },
    signInForm,
    signIn(request) {
      let token: string | null = null;
      if (mediaType(request.headers) === 'application/json') {
        const body = parseJsonBody(request.body, false);
        if (body.ok && typeof body.value === 'object' && body.value !== null && 'token' in body.value && typeof body.value.token === 'string') token = body.value.token;
      } else {
        token = new URLSearchParams(request.body === undefined ? '' : request.body.toString()).get('token');
      }
      const role = token ? roleOfToken(auth, token.trim()) : null;
      if (!token || !role) return signInForm(request, 401, 'That token is not valid.');
      logger.info({ event: 'ui_sign_in', role });
      return {
        status: 303,
        headers: { location: `${basePath(request)}/ui`, 'set-cookie': sessionCookie(token.trim(), secureRequest(request)), 'cache-control': 'no-store' },
        body: '',
      };
    },
    signOut(request) {
      return {
        status: 303,
        headers: { location: `${basePath(request)}/ui/login`, 'set-cookie': sessionCookie('', secureRequest(request)), 'cache-control': 'no-store' },
        body: '',
      };
    },
  };
}
