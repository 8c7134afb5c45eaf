// A hello worker that waits on the host before it answers (a timer of 0 ms: one host call per
// request, as a KV read or a subrequest would make): the warm A/B's case for requests that do not
// answer within their batch (bench/warm-ab.mjs --worker-file=bench/workers/timer-hello.js).
export default {
  async fetch() {
    await new Promise((resolve) => setTimeout(resolve, 0));
    return new Response('Hello World after a timer!\n');
  },
};
