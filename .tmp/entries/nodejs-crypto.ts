import * as ns from '../../sandbox/addons/node/crypto.js';
export default function install() { return { modules: { 'x:crypto': ns } }; }
