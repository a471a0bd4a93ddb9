// SQL migrations are read at run time; copy them next to the compiled stores.
import { cpSync } from 'node:fs';
for (const dialect of ['sqlite', 'postgres']) {
  cpSync(`src/store/${dialect}/migrations`, `dist/src/store/${dialect}/migrations`, { recursive: true });
}
