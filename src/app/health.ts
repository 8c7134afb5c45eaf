// Health and readiness for load balancers and orchestrators, on the admin port, without a token:
//   GET /healthz  200 while the process runs (liveness: restart it if this fails)
//   GET /readyz   200 when it should be sent traffic; 503 while starting or draining (SIGTERM,
//                 rolling restart). With --redis it says whether Redis is reachable, but Redis
//                 going down does not make a running node unready: every node would go unready at
//                 once and the balancer would stop all traffic, while each node can keep serving
//                 what it has loaded (only deploys are refused). A node cannot start without Redis.
// Both answer JSON naming the node, the pid and why not ready.
//
// Not on the data plane: every host and path there belongs to tenants (a route "*/*" may claim
// everything), so a reserved path would take one from them. A load balancer checks the admin
// port (keep it on a private interface the balancer reaches: --admin-host).
export interface HealthState {
  node: string;
  phase: 'starting' | 'ready' | 'draining';
  /** serving processes of this node */
  processes: number;
  /** whether Redis is reachable now; null when the node does not use Redis */
  redis: (() => boolean) | null;
}

export function healthHandler(state: HealthState): (request: Request) => Response | null {
  return (request) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return null;
    const path = new URL(request.url).pathname;
    const about = { node: state.node, pid: process.pid, processes: state.processes };
    if (path === '/healthz') return Response.json({ ok: true, ...about });
    if (path !== '/readyz') return null;
    const redis = state.redis ? (state.redis() ? 'up' : 'down') : undefined;
    const reason = state.phase !== 'ready' ? state.phase : null;
    const degraded = redis === 'down' ? 'Redis is unreachable: deploys are refused; the workers loaded here keep serving' : undefined;
    return Response.json({ ready: reason === null, ...(reason ? { reason } : {}), ...(redis ? { redis } : {}), ...(degraded ? { degraded } : {}), ...about }, { status: reason === null ? 200 : 503 });
  };
}
