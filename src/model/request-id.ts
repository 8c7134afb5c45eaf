// Request ids: unique within the process (a random prefix per process, then a counter), carried by
// every invocation, log line and record a request causes.
let requestCounter = 0;
const requestPrefix = Math.floor(Math.random() * 0xffffff).toString(16).padStart(6, '0');

export function newRequestId(): string {
  return `${requestPrefix}${(++requestCounter).toString(16).padStart(10, '0')}`;
}
