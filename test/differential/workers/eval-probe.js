// Code generation from strings (eval, new Function and its async and generator kin): allowed
// while a worker starts (its top level), refused in its handlers with an EvalError, as workerd
// does since its allow_eval_during_startup compatibility date (2025-06-01).
function attempt(make) {
  try {
    const made = make();
    return typeof made === 'function' ? `function: ${made(21)}` : `value: ${made}`;
  } catch (error) {
    return `${error.constructor.name}: ${error.message}`;
  }
}

const atStartup = {
  eval: attempt(() => eval('6 * 7')),
  newFunction: attempt(() => new Function('a', 'return a * 2')),
};
const madeAtStartup = new Function('a', 'return a + 1');

export default {
  fetch() {
    return Response.json({
      atStartup,
      madeAtStartupStillRuns: madeAtStartup(41),
      eval: attempt(() => eval('6 * 7')),
      indirectEval: attempt(() => (0, eval)('6 * 7')),
      newFunction: attempt(() => new Function('a', 'return a * 2')),
      functionCall: attempt(() => Function('a', 'return a * 2')),
      asyncFunction: attempt(() => new (async function () {}).constructor('return 1')),
      generatorFunction: attempt(() => new (function* () {}).constructor('yield 1')),
    });
  },
};
