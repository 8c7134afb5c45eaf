export default function install() { return { modules: { 'x:e': { a: 1 } } }; }
