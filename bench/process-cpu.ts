import { readdirSync, readFileSync } from 'node:fs';

/** CPU time (user + system, ms) of processes, read from /proc: the load-independent view of a multi-process figure. */

const TICK_MS = 10; // USER_HZ is 100 on Linux

function cpuOf(pid: number | string): { comm: string; ms: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm is in parentheses and may hold spaces; the fields after it are space-separated.
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const fields = stat.slice(close + 2).split(' ');
    return { comm, ms: (Number(fields[11]) + Number(fields[12])) * TICK_MS };
  } catch {
    return null;
  }
}

/** CPU ms of one process (all its threads). */
export const processCpuMs = (pid: number): number => cpuOf(pid)?.ms ?? 0;

/** CPU ms of every PostgreSQL server process on this machine (postmaster, backends, walwriter, …). */
export function postgresCpuMs(): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cpu = cpuOf(entry);
    if (cpu?.comm === 'postgres') total += cpu.ms;
  }
  return total;
}
