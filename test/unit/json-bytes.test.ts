// Text written as JSON from its UTF-8 bytes (engine/spill/json-bytes.ts): byte for byte what
// JSON.stringify writes for the decoded text, and nothing at all for bytes a decoder would replace.
import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { holdsControl, writeTextBytes, writeWellFormedText } from '../../shared/engine/spill/json-bytes';
import { rawLength, rawTrims } from '../../shared/engine/profile/text-bytes';
import { rawText } from '../../shared/engine/spill/spill-codec';

function written(src: Buffer, escape: boolean, undouble: boolean): string | null {
  const out = Buffer.alloc(src.length * 6 + 8);
  const end = writeTextBytes(src, 0, src.length, out, 0, escape, undouble);
  return end === -1 ? null : out.toString('utf8', 0, end);
}

// Characters that matter to JSON and to CSV: control characters, quotes, backslashes, non-Latin, astral.
const char = fc.oneof(
  fc.constantFrom('"', '\\', '\n', '\r', '\t', '\b', '\f', '\v', '\x00', '\x1f', '\x7f', '\u2028', '\ufeff', 'é', '李', '😀'),
  fc.string({ unit: 'grapheme', maxLength: 1 }),
  fc.string({ unit: 'binary', maxLength: 1 }).filter((c) => !/[\ud800-\udfff]/.test(c)),
);
const text = fc.array(char, { maxLength: 24 }).map((c) => c.join(''));

describe('text written as JSON from its bytes', () => {
  it('escaped: what JSON.stringify writes inside the quotes; undoubled: a CSV field\'s "" is one quote', () => {
    fc.assert(
      fc.property(text, (t) => {
        expect(written(Buffer.from(t), true, false)).toBe(JSON.stringify(t).slice(1, -1));
        expect(written(Buffer.from(t.replaceAll('"', '""')), true, true)).toBe(JSON.stringify(t).slice(1, -1));
        expect(written(Buffer.from(t.replaceAll('"', '""')), false, true)).toBe(t);
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses exactly the bytes that are not well-formed UTF-8 (overlong, surrogates, past U+10FFFF, cut short)', () => {
    for (const bad of ['c080', 'e08080', 'eda080', 'f4908080', 'e282', '80', 'ff', 'f09f98', 'f8888080', 'c1bf'])
      expect(written(Buffer.from(`a${bad}`, 'hex'), true, false), bad).toBeNull();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 12 }), (bytes) => {
        const src = Buffer.from(bytes);
        expect(written(src, true, false) !== null).toBe(isUtf8(src));
      }),
      { numRuns: 5000 },
    );
  });

  it('four bytes a step (well-formed text, anywhere in its buffer): the same bytes as one at a time', () => {
    const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
    fc.assert(
      fc.property(text, fc.nat(7), fc.nat(7), fc.boolean(), fc.boolean(), (t, before, outAt, escape, undouble) => {
        const field = Buffer.from(undouble ? t.replaceAll('"', '""') : t);
        const src = Buffer.concat([Buffer.alloc(before, 0x41), field, Buffer.from('\n,')]);
        const to = before + field.length;
        const bytewise = Buffer.alloc(field.length * 6 + 16);
        const wordwise = Buffer.alloc(field.length * 6 + 16);
        const end = writeTextBytes(src, before, to, bytewise, outAt, escape, undouble);
        expect(writeWellFormedText(src, view(src), before, to, wordwise, view(wordwise), outAt, escape, undouble)).toBe(end);
        expect(wordwise.subarray(outAt, end).toString('hex')).toBe(bytewise.subarray(outAt, end).toString('hex'));
        expect(holdsControl(src, view(src), before, to)).toBe([...t].some((c) => c.charCodeAt(0) < 0x20));
      }),
      { numRuns: 3000 },
    );
  });

  it('a raw token (a quoted field as it is in the file, its line feeds stood for): its text, as JSON.stringify writes it', () => {
    const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
    // The reading side writes no raw token for a field holding the bytes that stand for a line feed or separate tokens.
    const field = text.filter((t) => !t.includes('\x1e') && !t.includes('\x1f'));
    fc.assert(
      fc.property(field, fc.nat(7), fc.nat(7), (t, before, outAt) => {
        const raw = Buffer.from(t.replaceAll('"', '""').replaceAll('\n', '\x1e'));
        expect(rawText(raw.toString())).toBe(t);
        const src = Buffer.concat([Buffer.alloc(before, 0x41), raw, Buffer.from('\x1f,')]);
        const to = before + raw.length;
        const out = Buffer.alloc(raw.length * 6 + 16);
        const end = writeWellFormedText(src, view(src), before, to, out, view(out), outAt, true, true, true);
        expect(out.toString('utf8', outAt, end)).toBe(JSON.stringify(t).slice(1, -1));
        expect(rawLength(src, before, to)).toBe(t.length);
        if (t !== '') expect(rawTrims(src, before, to)).toBe(t.trim() !== t);
      }),
      { numRuns: 3000 },
    );
  });
});
