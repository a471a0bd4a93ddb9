/** Where a `--db` value points, without loading either store (the CLI's clients need only this). */

/** Whether a `--db` value names a PostgreSQL database (`postgres://…` or `postgresql://…`). */
export const isPostgresUrl = (db: string) => /^postgres(ql)?:\/\//i.test(db);

/** The SQLite file a `--db` value names: a path, `sqlite:path` or `file:path`. */
export function sqlitePath(db: string): string | null {
  if (isPostgresUrl(db)) return null;
  return db.replace(/^(sqlite|file):(\/\/)?/i, '');
}
