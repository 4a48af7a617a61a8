/**
 * The request list's script: links relative to the list's own address, the form that uploads
 * a file or takes a URI and starts a request, and a reload every 3 s while a request runs.
 * Bundled into the page (see `src/ui/scripts.ts`).
 */

/** The message of an error answer, `{error: {message}}`. */
function messageOf(body: unknown): string | null {
  if (typeof body !== 'object' || body === null || !('error' in body)) return null;
  const { error } = body;
  if (typeof error !== 'object' || error === null || !('message' in error)) return null;
  return typeof error.message === 'string' ? error.message : null;
}

function field(id: string): HTMLInputElement | null {
  const e = document.getElementById(id);
  return e instanceof HTMLInputElement ? e : null;
}

function start(): void {
  // Links are relative to the list's own address, with or without a trailing slash.
  const base = location.pathname.replace(/\/+$/, '');
  for (const link of document.querySelectorAll('a[data-request]')) {
    link.setAttribute('href', `${base}/requests/${encodeURIComponent(link.getAttribute('data-request') ?? '')}`);
  }
  const form = document.getElementById('submit-form');
  const root = base.replace(/\/ui$/, '');
  const say = (text: string, isError = false) => {
    const s = document.getElementById('submit-status');
    if (!s) return;
    s.textContent = text;
    s.className = isError ? 'error' : 'muted';
  };
  const failure = async (r: Response): Promise<never> => {
    const message = await r.json().then(
      (b: unknown) => messageOf(b) ?? `HTTP ${r.status}`,
      () => `HTTP ${r.status}`,
    );
    throw new Error(message);
  };
  const submitButton = () => document.getElementById('f-submit');
  const setBusy = (on: boolean) => {
    busy = on;
    const button = submitButton();
    if (button instanceof HTMLButtonElement) button.disabled = on;
  };
  let busy = false;

  async function submit(): Promise<void> {
    const file = field('f-file')?.files?.[0];
    const uri = field('f-video')?.value.trim() ?? '';
    const query = field('f-query')?.value.trim() ?? '';
    const profileInput = document.getElementById('f-profile');
    const profile = profileInput instanceof HTMLSelectElement || profileInput instanceof HTMLInputElement ? profileInput.value : '';
    if (!file && !uri) return say('give a video URI or choose a file', true);
    const max = Number(form?.getAttribute('data-max-upload'));
    if (file && max && file.size > max) return say(`${file.name} is ${file.size} bytes, more than the ${max} allowed`, true);
    setBusy(true);
    try {
      let videoUri = uri;
      if (file) {
        say(`uploading ${file.name}…`);
        const r = await fetch(`${root}/uploads?filename=${encodeURIComponent(file.name)}`, {
          method: 'POST',
          body: file,
          headers: { 'content-type': 'application/octet-stream' },
        });
        videoUri = ((await (r.ok ? r.json() : failure(r))) as { uri: string }).uri;
      }
      say('starting…');
      const body: Record<string, string> = { video_uri: videoUri, profile };
      if (query) body.query = query;
      const r = await fetch(`${root}/?async=true`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
      const started = (await (r.ok ? r.json() : failure(r))) as { request_id: string };
      location.href = `${base}/requests/${encodeURIComponent(started.request_id)}`;
    } catch (e) {
      say(e instanceof Error ? e.message : String(e), true);
      setBusy(false);
    }
  }

  form?.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!busy) void submit();
  });
  if (document.body.getAttribute('data-running') === 'true') {
    setTimeout(() => {
      // Never throw away what is being typed into the form.
      const typing = (form && document.activeElement && form.contains(document.activeElement)) || busy;
      if (!typing) location.reload();
    }, 3000);
  }
}

start();
