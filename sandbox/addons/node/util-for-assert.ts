// What the `assert` package takes from `util/` (inspect for its messages, types for its
// comparisons), without node:util's own import of that comparison (which would be a cycle).
import { inspect } from '../../api/inspect.js';
import * as types from './util-types.js';

export { inspect, types };
export default { inspect, types };
