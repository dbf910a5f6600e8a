/**
 * The fault suite's bookkeeping: every generated input is counted once as an answer, a clear error, an unclear error
 * (a refusal whose message does not say what was wrong), a crash or a hang. A watchdog marks an input whose promise
 * has not settled by its deadline as a hang and lets the suite go on, so one stuck server cannot stall the run.
 */
import * as fs from 'node:fs';

export type Outcome = 'answer' | 'clear' | 'unclear' | 'crash';
/** An outcome, with what was seen when it is a bad one (the answer or message, for the report). */
export type Checked = Outcome | { outcome: Outcome; seen: string };

/** Messages that leak an implementation failure instead of saying what was wrong with the input. */
const UNCLEAR = /Cannot read propert|is not a function|is not defined|undefined is not|Maximum call stack|\n\s+at /;

/** Whether an error message tells the user what was wrong (a crash's stack or a TypeError does not). */
export function isClear(message: string): boolean {
  return message.trim().length > 0 && !UNCLEAR.test(message);
}

export interface GroupCounts {
  inputs: number;
  answers: number;
  clear: number;
  unclear: number;
  crashes: number;
  hangs: number;
  restarts: number;
  /** Wall time spent on the group's checked inputs, in seconds (concurrent ones overlap). */
  seconds: number;
}

const zero = (): GroupCounts => ({ inputs: 0, answers: 0, clear: 0, unclear: 0, crashes: 0, hangs: 0, restarts: 0, seconds: 0 });

export class Tally {
  readonly groups = new Map<string, GroupCounts>();
  /** A few examples of every bad outcome, for the report. */
  readonly examples: string[] = [];
  /** Peak resident memory (VmHWM) in MiB of the processes measured, by what they are ("server", "CLI"). */
  readonly peakRssMb = new Map<string, number>();
  /** Measurements a group reports under the table (the restart timings of hung workers). */
  readonly notes: string[] = [];

  group(name: string): GroupCounts {
    let counts = this.groups.get(name);
    if (!counts) this.groups.set(name, (counts = zero()));
    return counts;
  }

  record(group: string, outcome: Outcome | 'hang', what: string): void {
    const counts = this.group(group);
    counts.inputs += 1;
    if (outcome === 'answer') counts.answers += 1;
    else if (outcome === 'clear') counts.clear += 1;
    else if (outcome === 'unclear') counts.unclear += 1;
    else if (outcome === 'crash') counts.crashes += 1;
    else counts.hangs += 1;
    if (outcome !== 'answer' && outcome !== 'clear' && this.examples.length < 40) this.examples.push(`${group}: ${outcome}: ${what.slice(0, 300)}`);
  }

  /**
   * Counts one input: `work` settles to an outcome within `deadlineMs`, or the input is a hang. A rejection is an
   * outcome too (classified by its message). Never rejects.
   */
  async check(group: string, what: string, deadlineMs: number, work: () => Promise<Checked>): Promise<Outcome | 'hang'> {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const watchdog = new Promise<'hang'>((resolve) => (timer = setTimeout(() => resolve('hang'), deadlineMs)));
    const checked = await Promise.race([
      work().catch((err: Error): Checked => {
        const message = err.message ?? String(err);
        return { outcome: isClear(message) ? 'clear' : 'unclear', seen: message };
      }),
      watchdog,
    ]);
    clearTimeout(timer);
    this.group(group).seconds += (performance.now() - started) / 1000;
    const outcome = typeof checked === 'string' ? checked : checked.outcome;
    this.record(group, outcome, typeof checked === 'string' ? what : `${what} -> ${checked.seen}`);
    return outcome;
  }

  /** Reads a live process's peak resident memory (Linux /proc) into the peak of `label`; elsewhere nothing. */
  measure(pid: number | undefined, label: string): void {
    if (pid === undefined) return;
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      const mb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
      this.peakRssMb.set(label, Math.max(this.peakRssMb.get(label) ?? 0, mb));
    } catch {
      // The process is gone or this is not Linux: nothing to read.
    }
  }

  total(): GroupCounts {
    const sum = zero();
    for (const counts of this.groups.values()) for (const key of Object.keys(sum) as (keyof GroupCounts)[]) sum[key] += counts[key];
    return sum;
  }

  /** The table the suite prints: one row per group and a total. */
  table(): string {
    const header = ['group', 'inputs', 'answers', 'clear errors', 'unclear errors', 'crashes', 'hangs', 'restarts', 'seconds'];
    const rows = [...this.groups.entries(), ['total', this.total()] as const].map(([name, c]) => [
      name,
      ...[c.inputs, c.answers, c.clear, c.unclear, c.crashes, c.hangs, c.restarts].map(String),
      c.seconds.toFixed(0),
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
    const rule = `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
    const peaks = [...this.peakRssMb.entries()].map(([label, mb]) => `${label} ${mb.toFixed(0)} MiB`).join(', ');
    return [line(header), rule, ...rows.map(line), '', `peak RSS: ${peaks || 'not measured (no /proc)'}`, ...this.notes].join('\n');
  }
}
