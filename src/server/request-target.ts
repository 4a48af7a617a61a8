/**
 * The request target as it arrived, before any URL parser resolves it. WHATWG URL parsing turns
 * `//x/metrics` into host `x` and path `/metrics`, and `/ui/../metrics` or `/x/%2e%2e/metrics`
 * into `/metrics`: a proxy in front that filters on paths would see one path and this service
 * route another. Such targets are refused, never routed on a resolved form.
 */

/** Why `target` (the raw `req.url`) is refused, or null when it is a plain origin-form path. */
export function badRequestTarget(target: string): string | null {
  const path = target.split('?')[0]!.split('#')[0]!;
  if (!path.startsWith('/')) return 'the request target must be a path starting with "/" (no absolute URL, no "*")';
  return badPath(path);
}

/**
 * Why a path (without its query) is refused: empty segments (`//`), `.` or `..` segments (percent-encoded
 * too), backslashes (URL parsers read them as slashes). Routing matches the path as it is, segment by segment, never a
 * decoded or resolved form, so an encoded slash inside a segment stays part of that segment.
 */
export function badPath(path: string): string | null {
  if (path.includes('\\')) return 'the path has a backslash';
  const segments = path.split('/').slice(1);
  // `/x/` (one trailing slash) is the same route as `/x`; `//` anywhere else is not a path of this service.
  if (segments.length > 1 && segments.at(-1) === '') segments.pop();
  for (const raw of segments) {
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      return 'the path has a malformed percent-encoding';
    }
    if (segment === '' && segments.length > 1) return 'the path has an empty segment ("//")';
    if (segment === '.' || segment === '..') return `the path has a "${segment}" segment`;
  }
  return null;
}
