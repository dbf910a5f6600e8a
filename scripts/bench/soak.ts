/**
 * The bench's soak (`npm run bench -- --soak [--soak-minutes N]`): types at 20 characters per second into a 5,000-line
 * file for N minutes (10 by default; fewer for a quick check while developing), asking for an inline completion
 * after every keystroke as the editor does, and samples the server's memory every second. Issue 15's targets: RSS
 * grows at most 10% after the first minute (a leak shows as steady growth), and no request is answered after its
 * deadline.
 *
 * Growth compares the highest RSS of the last minute with the highest of the second minute (the first is warm-up),
 * not two single readings: every keystroke replaces the whole document string (150 KB here, allocated straight into
 * V8's old generation), so the server's heap is a sawtooth between major collections. Measured with
 * process.memoryUsage() every 10 s of a 4-minute soak: the main thread's heapUsed went 21 -> 133 -> 49 MB and RSS
 * 240 -> 365 -> 290 MB with no trend, so one reading against another said +19% or +53% by the phase of the GC
 * alone. A leak lifts the sawtooth's tops; the peaks of two windows see that and not the phase.
 */
import {
  DidChangeTextDocumentNotification,
  DidOpenTextDocumentNotification,
  InlineCompletionRequest,
  type ProtocolConnection,
} from 'vscode-languageserver-protocol/node';
import { DEFAULT_DEADLINE_MS } from '../../server/runtime/model';

export interface SoakServer {
  readonly connection: ProtocolConnection;
  memory(): { rssMb: number; peakMb: number };
}

export interface SoakResult {
  minutes: number;
  requests: number;
  answered: number;
  cancelled: number;
  /** Answers that came after their deadline (DEFAULT_DEADLINE_MS): must be 0. */
  late: number;
  p50Ms: number;
  maxMs: number;
  /** RSS in MB at the start and at the end (single readings). */
  rssStartMb: number;
  rssEndMb: number;
  /** The highest RSS in MB of the baseline window (the second minute; the second tenth of a shorter run) and of the last. */
  baselinePeakMb: number;
  endPeakMb: number;
  /** Growth of the peaks, last window against the baseline: the target's number. */
  growth: number;
  peakMb: number;
  /** The highest RSS in MB of each tenth of the run: a leak climbs steadily, a warm-up levels off. */
  samples: number[];
}

const CHARS_PER_SECOND = 20;
const GROWTH_TARGET = 0.1;

/** A Python file of `lines` lines: classes of methods, so that the cursor sits in long bodies and at their ends. */
function bigFile(lines: number): string {
  const out: string[] = [];
  for (let c = 0; out.length < lines; c++) {
    out.push(`class Worker${c}:`, `    """Does job ${c}."""`, '');
    for (let m = 0; m < 12 && out.length < lines; m++) {
      out.push(`    def step${m}(self, items):`, '        total = 0', '        for item in items:', `            total += item * ${m}`, '        return total', '');
    }
  }
  return out.slice(0, lines).join('\n') + '\n';
}

/** What is typed: lines of code, each followed by a newline, cycled. */
const TYPED = ['        value = self.step1(items) + 1', '        if value > 10:', '            return value', '        result = [x for x in items if x]'];

export async function soak(server: SoakServer, minutes: number): Promise<SoakResult> {
  const uri = 'file:///bench/soak.py';
  const text = bigFile(5000);
  await server.connection.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: 'python', version: 1, text } });
  // Type into the middle of the file: a new line after a method's `return total`, with thousands of lines after it.
  let line = text.split('\n').findIndex((l, i) => i > 2500 && l === '        return total') + 1;
  let character = 0;
  let version = 1;
  const insert = async (piece: string): Promise<void> => {
    await server.connection.sendNotification(DidChangeTextDocumentNotification.type, {
      textDocument: { uri, version: ++version },
      contentChanges: [{ range: { start: { line, character }, end: { line, character } }, text: piece }],
    });
  };
  await insert('\n');

  const started = performance.now();
  const end = started + minutes * 60_000;
  const rssStartMb = server.memory().rssMb;
  /** [ms since start, RSS in MB], one a second. */
  const readings: [number, number][] = [];
  const latencies: number[] = [];
  let answered = 0;
  let cancelled = 0;
  let late = 0;
  const pending: Promise<void>[] = [];
  for (let typed = 0; performance.now() < end; typed++) {
    const source = TYPED[Math.floor(typed / 60) % TYPED.length];
    const column = typed % 60;
    if (column < source.length) {
      await insert(source[column]);
      character += 1;
    } else if (column === source.length) {
      await insert('\n');
      line += 1;
      character = 0;
    }
    const sent = performance.now();
    pending.push(
      Promise.resolve(server.connection.sendRequest(InlineCompletionRequest.type, { textDocument: { uri }, position: { line, character }, context: { triggerKind: 2 } })).then(
        (result) => {
          const ms = performance.now() - sent;
          latencies.push(ms);
          if (ms > DEFAULT_DEADLINE_MS) late += 1;
          if (result === null) cancelled += 1;
          else answered += 1;
        },
      ),
    );
    const at = performance.now() - started;
    if (readings.length === 0 || at - readings[readings.length - 1][0] >= 1000) readings.push([at, server.memory().rssMb]);
    // The next keystroke 50 ms after this one was due, however long sending took.
    await new Promise((r) => setTimeout(r, Math.max(0, sent + 1000 / CHARS_PER_SECOND - performance.now())));
  }
  await Promise.all(pending);
  const memory = server.memory();
  latencies.sort((a, b) => a - b);
  const runMs = minutes * 60_000;
  const windowMs = Math.min(60_000, runMs / 10);
  const peak = (from: number, to: number): number => Math.max(...readings.filter(([t]) => t >= from && t < to).map(([, mb]) => mb));
  const baselinePeakMb = peak(windowMs, 2 * windowMs);
  const endPeakMb = peak(runMs - windowMs, Infinity);
  return {
    minutes,
    requests: latencies.length,
    answered,
    cancelled,
    late,
    p50Ms: latencies[Math.floor(latencies.length / 2)] ?? NaN,
    maxMs: latencies[latencies.length - 1] ?? NaN,
    rssStartMb,
    rssEndMb: memory.rssMb,
    baselinePeakMb,
    endPeakMb,
    growth: endPeakMb / baselinePeakMb - 1,
    peakMb: memory.peakMb,
    samples: Array.from({ length: 10 }, (_, i) => peak((i * runMs) / 10, ((i + 1) * runMs) / 10)),
  };
}

/** The soak's report lines, with issue 15's targets. */
export function soakLines(r: SoakResult): string[] {
  const mb = (x: number): string => x.toFixed(0);
  const growthOk = r.growth <= GROWTH_TARGET;
  return [
    '',
    `### Soak: ${r.minutes} min of typing at ${CHARS_PER_SECOND} characters/s in a 5,000-line Python file (inline completion per keystroke)`,
    '',
    `${r.requests} requests: ${r.answered} answered, ${r.cancelled} cancelled by the next keystroke; latency p50 ${r.p50Ms.toFixed(0)} ms, max ${r.maxMs.toFixed(0)} ms.`,
    `Server RSS: ${mb(r.rssStartMb)} MB at the start, ${mb(r.rssEndMb)} MB at the end; highest ${mb(r.baselinePeakMb)} MB in the ${r.minutes >= 10 ? 'second minute' : 'second tenth of the run'} ` +
      `and ${mb(r.endPeakMb)} MB in the last (growth ${(100 * r.growth).toFixed(1)}%, target <= ${100 * GROWTH_TARGET}%: ${growthOk ? 'met' : 'MISSED'}); peak ${mb(r.peakMb)} MB.`,
    `Highest RSS of each tenth of the run (MB): ${r.samples.map(mb).join(' ')}.`,
    `Answered after the ${DEFAULT_DEADLINE_MS / 1000} s deadline: ${r.late} (target 0: ${r.late === 0 ? 'met' : 'MISSED'}).`,
  ];
}
