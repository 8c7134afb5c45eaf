import { build } from 'esbuild';
import { nodeCompatAliases } from '../scripts/node-compat-aliases.mjs';
import { vendorShims } from '../scripts/sandbox-vendor-shims.mjs';
const r = await build({ entryPoints: ['sandbox/addons/nodejs-compat.ts'], bundle: true, write: false, metafile: true, format: 'iife', platform: 'neutral', mainFields: ['module','main'], conditions: ['worker','browser'], minifyWhitespace: true, minifySyntax: true, keepNames: true, plugins: [{name:'base', setup(b){ b.onResolve({filter:/^\.\.\/\.\.\/(api|async-context|env|addons)/}, a => ({path:a.path, external:true})); b.onResolve({filter:/^\.\.\/(addons|env)\.js/}, a => ({path:a.path, external:true}));}}, nodeCompatAliases, vendorShims], logLevel: 'error' });
const out = Object.values(r.metafile.outputs)[0];
const byPkg = {};
for (const [file, info] of Object.entries(out.inputs)) { const m = file.match(/node_modules\/((@[^/]+\/)?[^/]+)/); const k = m ? m[1] : file.replace(/^sandbox\/addons\/node\//,''); byPkg[k] = (byPkg[k]||0) + info.bytesInOutput; }
console.log(Object.entries(byPkg).sort((a,b)=>b[1]-a[1]).map(([k,v])=>`${k} ${(v/1024).toFixed(1)}`).join('\n'));
