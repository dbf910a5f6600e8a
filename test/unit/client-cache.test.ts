import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CompletionCache, hashText, type CacheQuery } from '../../client/cache';

const query = (prefix: string, suffix = '\n', uri = 'file:///a.py'): CacheQuery => ({
  uri,
  offset: prefix.length,
  prefix,
  suffix,
});

describe('the completion cache', () => {
  it('returns what was stored for exactly the same cursor context', () => {
    const cache = new CompletionCache();
    cache.set(query('def add(a, b):\n    '), [{ text: 'return a + b', replaceAfter: 0 }]);
    assert.deepEqual(cache.get(query('def add(a, b):\n    ')), [{ text: 'return a + b', replaceAfter: 0 }]);
  });

  it('misses when the text after the cursor differs', () => {
    const cache = new CompletionCache();
    cache.set(query('x = ', '\nprint(x)'), [{ text: '1', replaceAfter: 0 }]);
    assert.equal(cache.get(query('x = ', '\nprint(y)')), undefined);
  });

  it('misses for another document with the same text', () => {
    const cache = new CompletionCache();
    cache.set(query('x = '), [{ text: '1', replaceAfter: 0 }]);
    assert.equal(cache.get(query('x = ', '\n', 'file:///b.py')), undefined);
  });

  it('serves the rest of a completion the user is typing along', () => {
    const cache = new CompletionCache();
    cache.set(query('    '), [{ text: 'return a + b', replaceAfter: 0 }]);
    assert.deepEqual(cache.get(query('    ret')), [{ text: 'urn a + b', replaceAfter: 0 }]);
    assert.deepEqual(cache.get(query('    return a +')), [{ text: ' b', replaceAfter: 0 }]);
  });

  it('keeps only the alternatives that still match what was typed', () => {
    const cache = new CompletionCache();
    cache.set(query('    '), [
      { text: 'return a + b', replaceAfter: 0 },
      { text: 'result = a', replaceAfter: 0 },
    ]);
    assert.deepEqual(cache.get(query('    re')), [
      { text: 'turn a + b', replaceAfter: 0 },
      { text: 'sult = a', replaceAfter: 0 },
    ]);
    assert.deepEqual(cache.get(query('    res')), [{ text: 'ult = a', replaceAfter: 0 }]);
  });

  it('does not serve typing that diverges from the completion, or that finished it', () => {
    const cache = new CompletionCache();
    cache.set(query('    '), [{ text: 'return a', replaceAfter: 0 }]);
    assert.equal(cache.get(query('    rex')), undefined);
    assert.equal(cache.get(query('    return a')), undefined);
  });

  it('does not serve typing along when the text before the completion changed', () => {
    const cache = new CompletionCache();
    cache.set(query('a = 1\n'), [{ text: 'b = 2', replaceAfter: 0 }]);
    assert.equal(cache.get(query('a = 7\nb')), undefined);
  });

  it('works with context windows: only the tail of the prefix and the head of the suffix identify an entry', () => {
    const cache = new CompletionCache({ maxEntries: 10, contextChars: 8 });
    const long = 'x'.repeat(50) + 'value = ';
    cache.set(query(long), [{ text: 'compute()', replaceAfter: 0 }]);
    assert.deepEqual(cache.get(query('y'.repeat(50) + 'value = ')), [{ text: 'compute()', replaceAfter: 0 }]);
    assert.deepEqual(cache.get(query(long + 'comp')), [{ text: 'ute()', replaceAfter: 0 }]);
  });

  it('drops the least recently used entry when full', () => {
    const cache = new CompletionCache({ maxEntries: 2, contextChars: 100 });
    cache.set(query('a'), [{ text: '1', replaceAfter: 0 }]);
    cache.set(query('bb'), [{ text: '2', replaceAfter: 0 }]);
    cache.get(query('a')); // "a" is now the most recently used.
    cache.set(query('ccc'), [{ text: '3', replaceAfter: 0 }]);
    assert.equal(cache.size, 2);
    assert.notEqual(cache.get(query('a')), undefined);
    assert.equal(cache.get(query('bb')), undefined);
    assert.notEqual(cache.get(query('ccc')), undefined);
  });

  it('forgets one document, or everything', () => {
    const cache = new CompletionCache();
    cache.set(query('a', '\n', 'file:///a.py'), [{ text: '1', replaceAfter: 0 }]);
    cache.set(query('a', '\n', 'file:///b.py'), [{ text: '1', replaceAfter: 0 }]);
    cache.clear('file:///a.py');
    assert.equal(cache.get(query('a', '\n', 'file:///a.py')), undefined);
    assert.notEqual(cache.get(query('a', '\n', 'file:///b.py')), undefined);
    cache.clear();
    assert.equal(cache.size, 0);
  });

  it('hashes different texts differently and equal texts equally', () => {
    assert.equal(hashText('def f():'), hashText('def f():'));
    assert.notEqual(hashText('def f():'), hashText('def g():'));
    assert.notEqual(hashText('same'), hashText('same', 1));
  });
});
