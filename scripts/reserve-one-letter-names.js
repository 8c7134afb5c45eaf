// Injected at the top of the sandbox bundle by build-sandbox.mjs. It declares every one-letter
// identifier at the bundle's top level, which makes esbuild rename every other binding with a
// one-letter name anywhere in the bundle (`e` -> `e2`, `s` -> `s2`): a nested name may not shadow
// a top-level one in the flat IIFE esbuild emits.
//
// Why: in an isolate created from an isolated-vm (V8 11.3) snapshot, a function compiled after
// deserialization cannot resolve a variable with a one-character name (most letters, `_`, `é`)
// declared in a scope that was compiled before the snapshot — "s is not defined" — and bytecode
// flushing can put any function in that position later. Minified dependencies
// (web-streams-polyfill) are full of such names.
// The cause, found later (src/runtime/snapshot-check.ts): every one-character string held in a
// snapshot's heap — a scope's variable name as much as a value — comes back as another, random
// character. Names are guarded here; values are caught by the snapshot self-test. These declarations themselves are harmless: only
// this module's top-level code, compiled before the snapshot, refers to them.
var a = [], b = a, c = a, d = a, e = a, f = a, g = a, h = a, i = a, j = a, k = a, l = a, m = a;
var n = a, o = a, p = a, q = a, r = a, s = a, t = a, u = a, v = a, w = a, x = a, y = a, z = a;
var A = a, B = a, C = a, D = a, E = a, F = a, G = a, H = a, I = a, J = a, K = a, L = a, M = a;
var N = a, O = a, P = a, Q = a, R = a, S = a, T = a, U = a, V = a, W = a, X = a, Y = a, Z = a;
var _ = a, $ = a;
// A side effect, so that tree shaking keeps the declarations.
a.push(b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v, w, x, y, z);
a.push(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q, R, S, T, U, V, W, X, Y, Z, _, $);
a.length = 0;
