// The request line's target, in the forms HTTP/1.1 allows (RFC 9112 section 3.2): origin-form
// (`/path?q`) with the Host header, or absolute-form (`http://host/path?q`), in which case the
// target's authority is the host and the Host header is ignored. Anything else (`*`, authority
// form) names no resource a worker serves.

export interface RequestTarget {
  /** host[:port] the request is for */
  host: string;
  /** path and query, origin-form */
  pathAndQuery: string;
  /** path alone (routing) */
  path: string;
}

export function parseRequestTarget(rawUrl: string, hostHeader: string | undefined): RequestTarget | null {
  let host = hostHeader ?? 'localhost';
  let pathAndQuery = rawUrl;
  if (!rawUrl.startsWith('/')) {
    if (!/^https?:\/\//i.test(rawUrl)) return null;
    let url: URL;
    try {
      url = new URL(rawUrl);
    } catch {
      return null;
    }
    host = url.host;
    pathAndQuery = `${url.pathname}${url.search}`;
  }
  const queryAt = pathAndQuery.indexOf('?');
  return { host, pathAndQuery, path: queryAt === -1 ? pathAndQuery : pathAndQuery.slice(0, queryAt) };
}
