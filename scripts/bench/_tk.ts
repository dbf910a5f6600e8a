import * as fs from 'node:fs';
import { loadTokenizer } from '../../server/runtime/tokenizer';
const facts = { vocabSize: 8192, maxSeqLen: 256, maskId: 1, eosId: 2, padId: 0, fileSepId: 3, langIds: { other: 10 }, spanBuckets: [8] };
const t0 = performance.now();
const t = loadTokenizer('models/recipe/data/tokenizer/tokenizer.json', facts);
console.log('load', (performance.now() - t0).toFixed(1));
const text = fs.readFileSync('server/protocol/server.ts', 'utf8');
for (const n of [1000, 2000, 8192, 8192, 8192, 8192, 3000, 3001, 3002]) { const s = performance.now(); const ids = t.codec.encode(text.slice(0, n)); console.log(n, ids.length, (performance.now() - s).toFixed(1), 'ms'); }
