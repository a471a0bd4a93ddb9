/** How CLI commands print: `--json` for programs (pretty JSON), aligned tables for people. */

export type Out = (text: string) => void;

export const printJson = (out: Out, value: unknown) => out(JSON.stringify(value, null, 2) + '\n');

export interface Column<T> {
  title: string;
  value: (row: T) => unknown;
}

const cell = (value: unknown): string => {
  if (value === null || value === undefined) return '-';
  if (Array.isArray(value)) return value.length === 0 ? '-' : value.join(',');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value).replace(/[\r\n\t]+/g, ' ');
};

export function printTable<T>(out: Out, rows: T[], columns: Column<T>[]): void {
  const cells = rows.map((row) => columns.map((c) => cell(c.value(row))));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((r) => r[i].length)));
  const line = (values: string[]) => values.map((v, i) => (i === values.length - 1 ? v : v.padEnd(widths[i]))).join('  ').trimEnd() + '\n';
  out(line(columns.map((c) => c.title.toUpperCase())));
  for (const row of cells) out(line(row));
}

/** One record as `field  value` lines. */
export function printRecord(out: Out, record: Record<string, unknown>): void {
  const width = Math.max(...Object.keys(record).map((k) => k.length));
  for (const [key, value] of Object.entries(record)) out(`${key.padEnd(width)}  ${cell(value)}\n`);
}
