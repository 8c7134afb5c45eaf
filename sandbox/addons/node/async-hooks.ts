// node:async_hooks as workerd offers it: AsyncLocalStorage and AsyncResource (the sandbox's own,
// on V8's continuation-preserved embedder data: sandbox/async-context.ts). The rest of Node's
// async_hooks (createHook, executionAsyncId, ...) is absent from workerd too.
import { AsyncLocalStorage, AsyncResource } from '../../async-context.js';

export { AsyncLocalStorage, AsyncResource };
export default { AsyncLocalStorage, AsyncResource };
