import * as ns from '../../sandbox/addons/node/util.js';
export default function install() { return { modules: { 'x:util': ns } }; }
