// workerd's words for what a worker's global scope may not do (sandbox/global-scope.ts refuses in
// the guest; src/runtime/outside-invocation.ts refuses the same on the host).
export const GLOBAL_SCOPE_MESSAGE =
  'Disallowed operation called within global scope. Asynchronous I/O (ex: fetch() or connect()), setting a timeout, and generating random values are not allowed within global scope. To fix this error, perform this operation within a handler. https://developers.cloudflare.com/workers/runtime-apis/handlers/';
