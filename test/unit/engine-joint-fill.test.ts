import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { infill } from '../../server/engine/infill';
import { resolveSamplerOptions } from '../../server/engine/options';
import type { ModelFn } from '../../server/engine/types';
import { answer, CharCodec, EOS, FACTS, MASK, tok, VOCAB } from './engine-mocks';

/**
 * "Fill All Holes" relies on this: the holes of one request share a canvas, so a token committed in one hole is
 * context for the still-masked positions of the others from the next step on.
 */
describe('joint multi-hole fill', () => {
  const segments = ['a = ', '\nb = ', '\n'];
  const first = 1 + segments[0].length;
  const second = first + 8 + segments[1].length;

  /**
   * Hole 0 starts with a sure "1". Hole 1 copies whatever hole 0 starts with, surely, once it can see it, and
   * guesses "?" weakly while hole 0 is still masked. Every other position ends its span.
   */
  const model: ModelFn = async ({ ids, batch, seqLen, positions, numPositions }) => {
    const out = new Float32Array(batch * numPositions * VOCAB);
    for (let r = 0; r < batch; r++) {
      for (let j = 0; j < numPositions; j++) {
        const position = positions[r * numPositions + j];
        const seen = ids[r * seqLen + first];
        const [token, strength] =
          position === first ? [tok('1'), 12] : position === second ? (seen === MASK ? [tok('?'), 2] : [seen, 12]) : [EOS, 10];
        out[(r * numPositions + j) * VOCAB + token] = strength;
      }
    }
    return answer(out);
  };

  it('lets a hole use the tokens another hole committed in an earlier step', async () => {
    const result = await infill(
      model,
      new CharCodec(),
      FACTS,
      { segments, holes: [{ maxTokens: 8 }, { maxTokens: 8 }], languageId: 'python' },
      resolveSamplerOptions({ steps: 4 }),
    );
    assert.deepEqual(result.candidates[0].holes, ['1', '1'], 'hole 1 copied what hole 0 committed');
    const stepOf = (hole: number, index: number): number | undefined =>
      result.trace.tokens.find((t) => t.hole === hole && t.index === index)?.step;
    assert.equal(stepOf(0, 0), 0);
    assert.ok(stepOf(1, 0)! > stepOf(0, 0)!, 'hole 1 was committed after it could see hole 0');
    assert.deepEqual(result.trace.holeLengths, [8, 8], 'one trace covers both holes');
  });
});
