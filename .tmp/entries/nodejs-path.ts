import * as ns from '../../sandbox/addons/node/path.js';
export default function install() { return { modules: { 'x:path': ns } }; }
