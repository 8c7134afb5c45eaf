// node:string_decoder: the npm port of Node's own (its Buffer is node:buffer's, through the
// bundler alias in scripts/node-compat-aliases.mjs).
import { StringDecoder } from 'string_decoder';

export { StringDecoder };
export default { StringDecoder };
