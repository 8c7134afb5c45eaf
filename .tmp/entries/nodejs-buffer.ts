import * as ns from '../../sandbox/addons/node/buffer.js';
export default function install() { return { modules: { 'x:buffer': ns } }; }
