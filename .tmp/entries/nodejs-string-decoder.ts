import * as ns from '../../sandbox/addons/node/string-decoder.js';
export default function install() { return { modules: { 'x:string-decoder': ns } }; }
