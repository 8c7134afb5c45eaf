import * as ns from '../../sandbox/addons/node/url.js';
export default function install() { return { modules: { 'x:url': ns } }; }
