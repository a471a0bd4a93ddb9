// Runs every compiled test file with node's built-in runner. Node 20 takes no globs, so list the files here.
// The timeout bounds each test file as a whole: the three-process PostgreSQL test needs minutes on a loaded 2-core box.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'helpers' ? [] : find(path);
    return entry.name.endsWith('.test.js') ? [path] : [];
  });
}

// Arguments name the files to run (a part of their path); one that begins with `!` leaves the files it names out.
const patterns = process.argv.slice(2);
const only = patterns.filter((pattern) => !pattern.startsWith('!'));
const except = patterns.filter((pattern) => pattern.startsWith('!')).map((pattern) => pattern.slice(1));
const files = find('dist/test')
  .filter((file) => only.length === 0 || only.some((pattern) => file.includes(pattern)))
  .filter((file) => !except.some((pattern) => file.includes(pattern)))
  .sort();
if (files.length === 0) {
  console.error('no test files found under dist/test');
  process.exit(1);
}
const result = spawnSync(process.execPath, ['--test', '--test-timeout=600000', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
