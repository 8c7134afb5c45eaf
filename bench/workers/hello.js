// The hello worker every runtime in the bench serves (Cinder, workerd direct and through its
// Worker Loader). Module syntax, no imports, one Response with a header.
export default {
  fetch(request) {
    return new Response('Hello World!\n', { headers: { 'content-type': 'text/plain;charset=UTF-8' } });
  },
};
