// Runs one ONNX model with onnxruntime-node for the recipe's Python checks (ort_session.py starts it when the Python
// onnxruntime is not installed): the same runtime the extension uses, one process per model, requests and answers as
// JSON lines on stdin and stdout.
//
// Run: node models/recipe/node/ort_serve.mjs model.onnx
// First line out: {"ready": true, "version": "<onnxruntime version>"}. Then per request line
// {"feeds": {name: tensor}, "outputs": [name, ...]} one answer line {"outputs": {name: tensor}} or {"error": "..."},
// where a tensor is {"type": "int64" | "int32" | "float32" | "bool", "dims": [...], "data": base64 of its
// little-endian bytes}. The process ends when stdin closes.
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

// Resolve onnxruntime-node from the repository's node_modules, whatever the caller's working directory.
const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(resolve(here, "../../../package.json"));
const ort = require("onnxruntime-node");

const ARRAYS = { int64: BigInt64Array, int32: Int32Array, float32: Float32Array, bool: Uint8Array };

function toTensor({ type, dims, data }) {
  const bytes = Buffer.from(data, "base64");
  const Array_ = ARRAYS[type];
  if (!Array_) throw new Error(`unsupported tensor type ${type}`);
  // A copy into a fresh buffer: typed arrays need an offset aligned to their element size.
  const copy = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return new ort.Tensor(type, new Array_(copy), dims);
}

function fromTensor(tensor) {
  const d = tensor.data;
  return { type: tensor.type, dims: tensor.dims, data: Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString("base64") };
}

const session = await ort.InferenceSession.create(process.argv[2], { executionProviders: ["cpu"] });
process.stdout.write(JSON.stringify({ ready: true, version: ort.env?.versions?.common ?? "unknown" }) + "\n");
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  let answer;
  try {
    const request = JSON.parse(line);
    const feeds = Object.fromEntries(Object.entries(request.feeds).map(([name, t]) => [name, toTensor(t)]));
    const results = await session.run(feeds, request.outputs);
    answer = { outputs: Object.fromEntries(request.outputs.map((name) => [name, fromTensor(results[name])])) };
  } catch (e) {
    answer = { error: String((e && e.stack) || e) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
