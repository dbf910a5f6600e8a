/**
 * Reads the few top-level fields of an ONNX file that onnxruntime-node does not expose: `metadata_props` (where the
 * recipe writes the model facts), the IR version and the opset imports. onnxruntime-node 1.30 gives the JavaScript
 * side input and output metadata but not the model's metadata_props, so this reads the protobuf wire format directly.
 *
 * Only the top level of the ModelProto is walked; the graph (field 7, nearly the whole file) is skipped by seeking
 * past it, so reading the metadata of a 30 MB model touches a few kilobytes.
 */
import * as fs from 'node:fs';

/** What the runtime needs from the ModelProto besides the graph. */
export interface OnnxFileInfo {
  readonly irVersion: number;
  readonly opsets: Readonly<Record<string, number>>;
  readonly producer: string;
  /** metadata_props as a plain map (later duplicates win, as in onnxruntime). */
  readonly metadata: Readonly<Record<string, string>>;
}

// ModelProto field numbers (onnx/onnx.proto).
const MODEL_IR_VERSION = 1;
const MODEL_PRODUCER_NAME = 2;
const MODEL_OPSET_IMPORT = 8;
const MODEL_METADATA_PROPS = 14;

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

/** Fields above this size are skipped rather than read (only the graph is that big). */
const MAX_READ_FIELD_BYTES = 16 * 1024 * 1024;

/** A cursor over a file that reads small pieces on demand and can seek past large ones. */
class FileCursor {
  private buffer = Buffer.alloc(0);
  private bufferStart = 0;
  offset = 0;

  constructor(
    private readonly fd: number,
    readonly size: number,
  ) {}

  private ensure(length: number): void {
    const end = this.offset + length;
    if (this.offset >= this.bufferStart && end <= this.bufferStart + this.buffer.length) return;
    if (end > this.size) throw new Error(`truncated file: needs byte ${end} but has ${this.size}`);
    const chunk = Math.max(length, 64 * 1024);
    const readLength = Math.min(chunk, this.size - this.offset);
    this.buffer = Buffer.alloc(readLength);
    fs.readSync(this.fd, this.buffer, 0, readLength, this.offset);
    this.bufferStart = this.offset;
  }

  byte(): number {
    this.ensure(1);
    const value = this.buffer[this.offset - this.bufferStart];
    this.offset += 1;
    return value;
  }

  bytes(length: number): Buffer {
    this.ensure(length);
    const start = this.offset - this.bufferStart;
    this.offset += length;
    return this.buffer.subarray(start, start + length);
  }

  /** Reads a base-128 varint; values above 2^53 lose precision, which no field read here reaches. */
  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.byte();
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return result;
      scale *= 128;
    }
    throw new Error('malformed varint');
  }
}

/** Decodes the fields of a small in-memory message into (field number, wire type, value) triples. */
function* messageFields(buf: Uint8Array): Generator<{ field: number; wire: number; value: number | Uint8Array }> {
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= buf.length) throw new Error('truncated varint');
      const b = buf[pos++];
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return result;
      scale *= 128;
    }
    throw new Error('malformed varint');
  };
  while (pos < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === WIRE_VARINT) {
      yield { field, wire, value: varint() };
    } else if (wire === WIRE_LENGTH_DELIMITED) {
      const length = varint();
      if (pos + length > buf.length) throw new Error('truncated length-delimited field');
      yield { field, wire, value: buf.subarray(pos, pos + length) };
      pos += length;
    } else if (wire === WIRE_FIXED64) {
      pos += 8;
    } else if (wire === WIRE_FIXED32) {
      pos += 4;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeStringPair(buf: Uint8Array): [string, string] {
  let key = '';
  let value = '';
  for (const f of messageFields(buf)) {
    if (f.wire !== WIRE_LENGTH_DELIMITED) continue;
    if (f.field === 1) key = utf8.decode(f.value as Uint8Array);
    if (f.field === 2) value = utf8.decode(f.value as Uint8Array);
  }
  return [key, value];
}

function decodeOpset(buf: Uint8Array): [string, number] {
  let domain = '';
  let version = 0;
  for (const f of messageFields(buf)) {
    if (f.field === 1 && f.wire === WIRE_LENGTH_DELIMITED) domain = utf8.decode(f.value as Uint8Array);
    if (f.field === 2 && f.wire === WIRE_VARINT) version = f.value as number;
  }
  return [domain, version];
}

/**
 * Reads the IR version, opsets, producer and metadata_props of an ONNX file.
 * Throws an Error that names the file when it is not a readable ONNX ModelProto.
 */
export function readOnnxFileInfo(file: string): OnnxFileInfo {
  const fd = fs.openSync(file, 'r');
  try {
    const cursor = new FileCursor(fd, fs.fstatSync(fd).size);
    let irVersion = 0;
    let producer = '';
    const opsets: Record<string, number> = {};
    const metadata: Record<string, string> = {};
    let sawGraph = false;
    while (cursor.offset < cursor.size) {
      const key = cursor.varint();
      const field = Math.floor(key / 8);
      const wire = key & 7;
      if (field === 0) throw new Error('field number 0');
      if (wire === WIRE_VARINT) {
        const value = cursor.varint();
        if (field === MODEL_IR_VERSION) irVersion = value;
      } else if (wire === WIRE_LENGTH_DELIMITED) {
        const length = cursor.varint();
        if (cursor.offset + length > cursor.size) throw new Error(`field ${field} runs past the end of the file`);
        if (field === 7) sawGraph = true;
        const wanted = field === MODEL_METADATA_PROPS || field === MODEL_OPSET_IMPORT || field === MODEL_PRODUCER_NAME;
        if (wanted && length <= MAX_READ_FIELD_BYTES) {
          const body = cursor.bytes(length);
          if (field === MODEL_METADATA_PROPS) {
            const [k, v] = decodeStringPair(body);
            metadata[k] = v;
          } else if (field === MODEL_OPSET_IMPORT) {
            const [domain, version] = decodeOpset(body);
            opsets[domain] = version;
          } else {
            producer = utf8.decode(body);
          }
        } else {
          cursor.offset += length;
        }
      } else if (wire === WIRE_FIXED64) {
        cursor.offset += 8;
      } else if (wire === WIRE_FIXED32) {
        cursor.offset += 4;
      } else {
        throw new Error(`unsupported wire type ${wire} at byte ${cursor.offset}`);
      }
    }
    if (irVersion === 0 || !sawGraph) throw new Error('no ir_version or graph: not an ONNX model');
    return { irVersion, opsets, producer, metadata };
  } catch (err) {
    throw new Error(`${file} is not a readable ONNX model (${(err as Error).message})`);
  } finally {
    fs.closeSync(fd);
  }
}
