import { readFileSync } from 'node:fs';

/**
 * Summarizes a V8 .cpuprofile: where the samples landed (self time by function and by module, native calls
 * charged to their nearest JS caller) and which hookrelay functions the time was spent under (inclusive).
 * Usage: node dist/bench/profile-summary.js <file.cpuprofile> [top=25]
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: node dist/bench/profile-summary.js <file.cpuprofile> [top]');
  process.exit(64);
}
const top = Number(topArg ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;

const byId = new Map<number, ProfileNode>();
const parent = new Map<number, number>();
for (const node of profile.nodes) byId.set(node.id, node);
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

const shortUrl = (url: string) =>
  url
    .replace(/^file:\/\//, '')
    .replace(/^.*\/node_modules\//, 'npm:')
    .replace(/^.*\/dist\//, '')
    .replace(/^node:internal\//, 'node:');

function moduleOf(url: string): string {
  if (url.includes('/node_modules/')) {
    const rest = url.split('/node_modules/').pop()!;
    const parts = rest.split('/');
    return 'npm:' + (parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]);
  }
  if (url.includes('/dist/')) return url.replace(/^.*\/dist\//, '');
  if (url.startsWith('node:')) return url.replace(/^node:internal\//, 'node:').split('/').slice(0, 2).join('/');
  return url || '(native)';
}

/** Native frames (no URL) are charged to the nearest caller that has one. */
function jsCaller(id: number): ProfileNode | null {
  let at = parent.get(id);
  while (at !== undefined) {
    const node = byId.get(at)!;
    if (node.callFrame.url) return node;
    at = parent.get(at);
  }
  return null;
}

const key = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'}  ${shortUrl(n.callFrame.url)}${n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ''}`;

const self = new Map<string, number>();
const selfByModule = new Map<string, number>();
const inclusive = new Map<string, number>();
let total = 0;
const special = new Map<string, number>();

for (let i = 0; i < profile.samples.length; i++) {
  const dt = (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0) / 1000;
  const node = byId.get(profile.samples[i])!;
  total += dt;
  const name = node.callFrame.functionName;
  if (name === '(idle)' || name === '(program)' || name === '(garbage collector)' || name === '(root)') {
    special.set(name, (special.get(name) ?? 0) + dt);
    continue;
  }
  let label = key(node);
  let module = moduleOf(node.callFrame.url);
  if (!node.callFrame.url) {
    const caller = jsCaller(node.id);
    label = `${name || '(anonymous)'} [native] ← ${caller ? key(caller) : '?'}`;
    module = `${caller ? moduleOf(caller.callFrame.url) : '?'} [native]`;
  }
  self.set(label, (self.get(label) ?? 0) + dt);
  selfByModule.set(module, (selfByModule.get(module) ?? 0) + dt);
  const seen = new Set<string>();
  for (let at: number | undefined = node.id; at !== undefined; at = parent.get(at)) {
    const frame = byId.get(at)!;
    if (!frame.callFrame.url.includes('/dist/src/')) continue;
    const k = key(frame);
    if (seen.has(k)) continue;
    seen.add(k);
    inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
  }
}

const pct = (v: number) => `${((v / total) * 100).toFixed(1).padStart(5)}%`;
const print = (title: string, map: Map<string, number>, n: number) => {
  console.log(`\n${title}`);
  for (const [k, v] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`  ${pct(v)}  ${v.toFixed(0).padStart(7)} ms  ${k}`);
};

console.log(`${file}: ${(total / 1000).toFixed(2)} s sampled`);
for (const [k, v] of special) console.log(`  ${pct(v)}  ${v.toFixed(0).padStart(7)} ms  ${k}`);
print('self time by module (native calls charged to their JS caller):', selfByModule, top);
print('self time by function:', self, top);
print('inclusive time under hookrelay functions:', inclusive, top);
