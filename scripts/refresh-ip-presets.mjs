// Reads the providers' published webhook sender ranges again and rewrites src/inbound/ip-presets/presets.json with
// today's date. Run it on a machine that can reach the providers, review the diff, commit:
//   node scripts/refresh-ip-presets.mjs && git diff src/inbound/ip-presets/presets.json
import { readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';

const FILE = new URL('../src/inbound/ip-presets/presets.json', import.meta.url);

/** Where each preset's list is published, and how to read it from the answer. */
const SOURCES = {
  github: { url: 'https://api.github.com/meta', ranges: (body) => body.hooks },
  stripe: { url: 'https://stripe.com/files/ips/ips_webhooks.json', ranges: (body) => body.WEBHOOKS },
};

const valid = (entry) => typeof entry === 'string' && isIP(entry.split('/')[0]) !== 0;

const presets = JSON.parse(readFileSync(FILE, 'utf8'));
const today = new Date().toISOString().slice(0, 10);
let failed = false;
for (const [name, { url, ranges }] of Object.entries(SOURCES)) {
  try {
    const response = await fetch(url, { headers: { accept: 'application/json', 'user-agent': 'hookrelay-refresh-ip-presets' } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const list = ranges(await response.json());
    if (!Array.isArray(list) || list.length === 0 || !list.every(valid)) throw new Error('the answer has no list of addresses where expected');
    const before = new Set(presets[name].ranges);
    const added = list.filter((r) => !before.has(r));
    const removed = presets[name].ranges.filter((r) => !list.includes(r));
    presets[name] = { ...presets[name], retrieved: today, ranges: list };
    console.log(`${name}: ${list.length} ranges (${added.length} added, ${removed.length} removed)`);
  } catch (error) {
    failed = true;
    console.error(`${name}: could not read ${url}: ${error.message}; kept the list of ${presets[name].retrieved}`);
  }
}
writeFileSync(FILE, JSON.stringify(presets, null, 2) + '\n');
process.exit(failed ? 1 : 0);
