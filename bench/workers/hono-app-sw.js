// hono-app.js in service-worker syntax (for edge-runtime, which runs classic scripts).
import app from './hono-app.js';

addEventListener('fetch', (event) => {
  event.respondWith(app.fetch(event.request));
});
