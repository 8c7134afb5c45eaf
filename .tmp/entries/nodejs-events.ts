import * as ns from '../../sandbox/addons/node/events.js';
export default function install() { return { modules: { 'x:events': ns } }; }
