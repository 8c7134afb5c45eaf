// The smallest worker: answers every request with a greeting.
export default {
  async fetch(request) {
    const url = new URL(request.url);
    return new Response(`Hello from Cinder! You asked for ${url.pathname}\n`, {
      headers: { 'content-type': 'text/plain; charset=utf-8' },
    });
  },
};
