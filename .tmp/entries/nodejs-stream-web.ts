import * as ns from '../../sandbox/addons/node/stream-web.js';
export default function install() { return { modules: { 'x:stream-web': ns } }; }
