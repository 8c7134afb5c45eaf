import * as ns from 'buffer';
export default function install() { return { modules: { 'x:b': ns } }; }
