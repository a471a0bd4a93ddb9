// Builds the dashboard and the customer portal (src/dashboard/web) into dist/src/dashboard/static, which hookrelay
// serves itself: type-checks the browser code (its own tsconfig: DOM, Preact's JSX), bundles each page's script with
// esbuild (Preact included, no CDN), and copies the HTML and CSS. Runs offline from installed npm packages.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { build } from 'esbuild';

const SOURCE = 'src/dashboard/web';
const OUT = 'dist/src/dashboard/static';
const PAGES = ['dashboard', 'portal'];

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const check = spawnSync(process.execPath, [tsc, '-p', `${SOURCE}/tsconfig.json`], { stdio: 'inherit' });
if (check.status !== 0) process.exit(check.status ?? 1);

rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
await build({
  entryPoints: PAGES.map((page) => `${SOURCE}/${page}.tsx`),
  outdir: OUT,
  bundle: true,
  format: 'esm',
  target: 'es2020',
  minify: true,
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  logLevel: 'warning',
});
for (const page of PAGES) copyFileSync(`${SOURCE}/${page}.html`, `${OUT}/${page}.html`);
copyFileSync(`${SOURCE}/ui.css`, `${OUT}/ui.css`);
