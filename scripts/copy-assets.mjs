// SQL migrations and the providers' IP ranges are read at run time; copy them next to the compiled code.
import { cpSync } from 'node:fs';
cpSync('src/inbound/ip-presets/presets.json', 'dist/src/inbound/ip-presets/presets.json');
for (const dialect of ['sqlite', 'postgres']) {
  cpSync(`src/store/${dialect}/migrations`, `dist/src/store/${dialect}/migrations`, { recursive: true });
}
