import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';

/**
 * The better-sqlite3 build for the running Node.js. Release 13 is a Node-API addon shipped prebuilt for every
 * platform, and the only safe one on Node 24 (12's statements abort the process when the garbage collector frees
 * them on Node ≥ 24.19); it needs Node ≥ 22. On Node 20 the last Node-ABI release (12) is loaded instead, installed
 * as the optional dependency `better-sqlite3-node20`.
 */
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);
const PACKAGE = NODE_MAJOR >= 22 ? 'better-sqlite3' : 'better-sqlite3-node20';

function load(): typeof BetterSqlite3 {
  try {
    return createRequire(import.meta.url)(PACKAGE) as typeof BetterSqlite3;
  } catch (error) {
    throw new Error(`the SQLite driver ${PACKAGE} for Node ${process.versions.node} is not installed or failed to build (${(error as Error).message}); run npm install again, or use Node 22 or later`);
  }
}

export const Database = load();
