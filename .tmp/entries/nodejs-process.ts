import * as ns from '../../sandbox/addons/node/process.js';
export default function install() { return { modules: { 'x:process': ns } }; }
