// The same hello worker in service-worker syntax, for edge-runtime (whose EdgeRuntime evaluates
// `initialCode` as a classic script).
addEventListener('fetch', (event) => {
  event.respondWith(new Response('Hello World!\n', { headers: { 'content-type': 'text/plain;charset=UTF-8' } }));
});
