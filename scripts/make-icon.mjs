#!/usr/bin/env node
/**
 * Draws the extension's icon, media/icon.png (128 x 128): lines of code as token bars on a dark tile, the upper ones
 * committed (coloured by the step that committed them, as the unmasking-order panel colours them) and the lower ones
 * still masked (outlined). No dependencies: 4x4 supersampled shapes, written as an RGBA PNG with node:zlib.
 *
 *   node scripts/make-icon.mjs [out.png]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as zlib from 'node:zlib';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = process.argv[2] ?? path.join(ROOT, 'media/icon.png');
const SIZE = 128;
const SS = 4;

/** Signed distance to a rounded rectangle (negative inside). */
function roundRect(px, py, x, y, w, h, r) {
  const cx = Math.abs(px - (x + w / 2)) - (w / 2 - r);
  const cy = Math.abs(py - (y + h / 2)) - (h / 2 - r);
  const ox = Math.max(cx, 0);
  const oy = Math.max(cy, 0);
  return Math.hypot(ox, oy) + Math.min(Math.max(cx, cy), 0) - r;
}

const hex = (h) => [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)];
const BG = hex('#1b1f2e');
const MASK = hex('#5c6480');
// Step colours: early steps teal, later ones violet.
const STEP = ['#3ddbd9', '#4fb3ff', '#7c8cff', '#b07cff'].map(hex);

// Token bars: [x, y, width, step] (step -1: still masked, drawn as an outline).
const H = 12;
const bars = [
  [18, 24, 34, 0], [56, 24, 22, 1], [82, 24, 28, 0],
  [30, 44, 26, 2], [60, 44, 40, 1],
  [30, 64, 20, 3], [54, 64, 30, -1], [88, 64, 18, 2],
  [30, 84, 38, -1], [72, 84, 24, -1],
  [18, 104, 28, 3], [50, 104, 22, -1],
];

function sample(px, py) {
  // Returns [r, g, b, a] (0..1 alpha) of the icon at a point.
  if (roundRect(px, py, 2, 2, SIZE - 4, SIZE - 4, 24) > 0) return [0, 0, 0, 0];
  for (const [x, y, w, step] of bars) {
    const d = roundRect(px, py, x, y - H / 2, w, H, 5);
    if (step >= 0 && d <= 0) return [...STEP[step], 1];
    if (step < 0 && d <= 0 && d > -2) return [...MASK, 1];
  }
  return [...BG, 1];
}

const rgba = Buffer.alloc(SIZE * SIZE * 4);
for (let y = 0; y < SIZE; y++) {
  for (let x = 0; x < SIZE; x++) {
    const acc = [0, 0, 0, 0];
    for (let sy = 0; sy < SS; sy++) {
      for (let sx = 0; sx < SS; sx++) {
        const [r, g, b, a] = sample(x + (sx + 0.5) / SS, y + (sy + 0.5) / SS);
        acc[0] += r * a;
        acc[1] += g * a;
        acc[2] += b * a;
        acc[3] += a;
      }
    }
    const i = (y * SIZE + x) * 4;
    const alpha = acc[3] / (SS * SS);
    for (let c = 0; c < 3; c++) rgba[i + c] = acc[3] > 0 ? Math.round(acc[c] / acc[3]) : 0;
    rgba[i + 3] = Math.round(alpha * 255);
  }
}

function crc32(buf) {
  let c = ~0;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
const ihdr = Buffer.alloc(13);
ihdr.writeUInt32BE(SIZE, 0);
ihdr.writeUInt32BE(SIZE, 4);
ihdr[8] = 8; // bit depth
ihdr[9] = 6; // RGBA
const raw = Buffer.alloc(SIZE * (SIZE * 4 + 1));
for (let y = 0; y < SIZE; y++) rgba.copy(raw, y * (SIZE * 4 + 1) + 1, y * SIZE * 4, (y + 1) * SIZE * 4);
const png = Buffer.concat([
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  chunk('IHDR', ihdr),
  chunk('IDAT', zlib.deflateSync(raw, { level: 9 })),
  chunk('IEND', Buffer.alloc(0)),
]);
fs.writeFileSync(OUT, png);
console.log(`icon: ${path.relative(ROOT, OUT)} (${SIZE}x${SIZE}, ${png.length} bytes)`);
