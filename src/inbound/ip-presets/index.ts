import { readFileSync } from 'node:fs';

/**
 * Providers' published webhook sender ranges, for source allow-lists (`allowedIpPresets`). The data is in
 * presets.json beside this file, each list with where it comes from and when it was read;
 * `node scripts/refresh-ip-presets.mjs` reads the published lists again and rewrites it.
 */
export interface IpPreset {
  name: string;
  source: string;
  retrieved: string;
  ranges: string[];
}

let presets: Map<string, IpPreset> | null = null;

export function ipPresets(): Map<string, IpPreset> {
  presets ??= new Map(Object.entries(JSON.parse(readFileSync(new URL('./presets.json', import.meta.url), 'utf8')) as Record<string, IpPreset>));
  return presets;
}
