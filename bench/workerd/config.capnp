# workerd configuration for Cinder's benchmarks (bench/cold.mjs, bench/warm.mjs, bench/density.mjs).
# Run from bench/workerd/ as: workerd serve --experimental config.capnp
#   --socket-addr loader=127.0.0.1:PORT --socket-addr hello=127.0.0.1:PORT
# The bench writes ../.build/ (bundled workers) before starting workerd.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "parent", worker = .parent),
    (name = "hello", worker = .hello),
  ],
  sockets = [
    # Cold starts: every request with a new id gets a new isolate from the Worker Loader.
    (name = "loader", address = "127.0.0.1:8901", http = (), service = "parent"),
    # Warm throughput: the hello worker served directly.
    (name = "hello", address = "127.0.0.1:8902", http = (), service = "hello"),
  ],
);

const parent :Workerd.Worker = (
  compatibilityDate = "2025-09-01",
  compatibilityFlags = ["experimental"],
  modules = [
    (name = "parent.js", esModule = embed "parent.js"),
    (name = "hello-src", text = embed "../.build/hello.mjs"),
    (name = "hono-src", text = embed "../.build/hono-app.mjs"),
    (name = "api-src", text = embed "../.build/api-worker.mjs"),
  ],
  bindings = [
    (name = "LOADER", workerLoader = ()),
  ],
);

const hello :Workerd.Worker = (
  compatibilityDate = "2025-09-01",
  modules = [
    (name = "worker.js", esModule = embed "../.build/hello.mjs"),
  ],
);
