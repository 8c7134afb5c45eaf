import * as ns from '../../sandbox/addons/node/util-types.js';
export default function install() { return { modules: { 'x:util-types': ns } }; }
