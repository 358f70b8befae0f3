// Bundles the extension (Node, CommonJS; `vscode` is provided by the host) and the webview's
// script (browser). The API client and its types come from ../labextension/src/api: one copy,
// shared with the JupyterLab extension; esbuild resolves @msgpack/msgpack from the repo's
// node_modules beside it.
import * as esbuild from 'esbuild';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');
const common = { bundle: true, sourcemap: !production, minify: production, logLevel: 'warning', target: 'es2022' };
const builds = [
  { ...common, entryPoints: ['src/extension.ts'], outfile: 'dist/extension.js', platform: 'node', format: 'cjs', external: ['vscode'] },
  { ...common, entryPoints: ['src/webview/main.ts'], outfile: 'dist/webview.js', platform: 'browser', format: 'iife' }
];
if (watch) {
  for (const b of builds) {
    await (await esbuild.context(b)).watch();
  }
} else {
  await Promise.all(builds.map(b => esbuild.build(b)));
}
