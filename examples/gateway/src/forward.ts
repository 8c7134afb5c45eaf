// The request as the upstream worker sees it: same method, URL and body, plus who forwarded it.
export function forwarded(request: Request, via: string): Request {
  const copy = new Request(request);
  copy.headers.set('x-forwarded-by', via);
  return copy;
}
