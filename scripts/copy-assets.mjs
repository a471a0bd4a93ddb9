// SQL migrations are read at run time; copy them next to the compiled store.
import { cpSync } from 'node:fs';
cpSync('src/store/sqlite/migrations', 'dist/src/store/sqlite/migrations', { recursive: true });
