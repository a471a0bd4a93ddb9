import { basename, dirname, join } from 'node:path';
import { sqlitePath } from './store/location.js';

/** Where an admin token generated on first start is kept, beside the database file. */
export function adminTokenFile(db: string): string | null {
  const path = sqlitePath(db);
  if (path === null || path === ':memory:') return null;
  return join(dirname(path), `${basename(path).replace(/\.[^.]*$/, '')}.admin-token`);
}
