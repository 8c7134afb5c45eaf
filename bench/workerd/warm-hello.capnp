# workerd as its users run one worker (bench/warm.mjs): a plain config, no experimental flag, the
# worker alone in its own process.   workerd serve warm-hello.capnp --socket-addr http=127.0.0.1:PORT
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [(name = "main", worker = .main)],
  sockets = [(name = "http", address = "127.0.0.1:8902", http = (), service = "main")],
);

const main :Workerd.Worker = (
  compatibilityDate = "2025-09-01",
  modules = [(name = "worker.js", esModule = embed "../.build/hello.mjs")],
);
