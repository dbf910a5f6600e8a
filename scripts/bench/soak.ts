/**
 * The bench's soak (`npm run bench -- --soak [--soak-minutes N]`): types at 20 characters per second into a 5,000-line
 * file for N minutes (10 by default; fewer for a quick check while developing), asking for an inline completion
 * after every keystroke as the editor does, and samples the server's memory. Issue 15's targets: RSS grows at most
 * 10% after the first minute (a leak shows as steady growth), and no request is answered after its deadline.
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
  /** RSS in MB at the start, after the first minute (the baseline) and at the end. */
  rssStartMb: number;
  rssAfterFirstMinuteMb: number;
  rssEndMb: number;
  /** Growth from the first minute to the end. */
  growth: number;
  peakMb: number;
  /** RSS in MB every tenth of the run: a leak climbs steadily, a warm-up levels off. */
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
  let rssAfterFirstMinuteMb = NaN;
  const latencies: number[] = [];
  let answered = 0;
  let cancelled = 0;
  let late = 0;
  const samples: number[] = [];
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
    if (Number.isNaN(rssAfterFirstMinuteMb) && performance.now() - started >= Math.min(60_000, (minutes * 60_000) / 10)) rssAfterFirstMinuteMb = server.memory().rssMb;
    if (performance.now() - started >= ((samples.length + 1) * minutes * 60_000) / 10) samples.push(server.memory().rssMb);
    // The next keystroke 50 ms after this one was due, however long sending took.
    await new Promise((r) => setTimeout(r, Math.max(0, sent + 1000 / CHARS_PER_SECOND - performance.now())));
  }
  await Promise.all(pending);
  const memory = server.memory();
  latencies.sort((a, b) => a - b);
  return {
    minutes,
    requests: latencies.length,
    answered,
    cancelled,
    late,
    p50Ms: latencies[Math.floor(latencies.length / 2)] ?? NaN,
    maxMs: latencies[latencies.length - 1] ?? NaN,
    rssStartMb,
    rssAfterFirstMinuteMb,
    rssEndMb: memory.rssMb,
    growth: memory.rssMb / rssAfterFirstMinuteMb - 1,
    peakMb: memory.peakMb,
    samples,
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
    `Server RSS: ${mb(r.rssStartMb)} MB at the start, ${mb(r.rssAfterFirstMinuteMb)} MB after the first ${r.minutes >= 10 ? 'minute' : 'tenth of the run'}, ${mb(r.rssEndMb)} MB at the end ` +
      `(growth ${(100 * r.growth).toFixed(1)}%, target <= ${100 * GROWTH_TARGET}%: ${growthOk ? 'met' : 'MISSED'}); peak ${mb(r.peakMb)} MB.`,
    `RSS every tenth of the run (MB): ${r.samples.map(mb).join(' ')}.`,
    `Answered after the ${DEFAULT_DEADLINE_MS / 1000} s deadline: ${r.late} (target 0: ${r.late === 0 ? 'met' : 'MISSED'}).`,
  ];
}
