/**
 * Arrays on the wire: `{dtype, shape, data}` where `data` is little-endian bytes (msgpack) or a
 * flat list of numbers with `null` for NaN (JSON). Both decode to the same typed arrays.
 */
import type { components } from './schema';

export type WireArray = components['schemas']['NDArray'];
export type NumericArray = Float32Array | Int32Array | Uint16Array | Uint8Array;

export interface Decoded {
  data: NumericArray;
  shape: number[];
}

const float16Table = (() => {
  // 65,536 entries: a table beats bit-twiddling per element and is built once (256 kB).
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    table[h] = halfToFloat(h);
  }
  return table;
})();

/** IEEE 754 half-precision bits to a number (subnormals, infinities and NaN included). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) {
    return sign * Math.pow(2, -14) * (fraction / 1024);
  }
  if (exponent === 0x1f) {
    return fraction ? NaN : sign * Infinity;
  }
  return sign * Math.pow(2, exponent - 15) * (1 + fraction / 1024);
}

function bytesOf(data: unknown): Uint8Array | null {
  if (data instanceof Uint8Array) {
    return data;
  }
  if (data instanceof ArrayBuffer) {
    return new Uint8Array(data);
  }
  return null;
}

/** Decode one wire array into a typed array (float16 widens to float32). */
export function decodeArray(wire: WireArray): Decoded {
  const shape = wire.shape;
  const count = shape.reduce((a, b) => a * b, 1);
  const bytes = bytesOf(wire.data);
  if (bytes) {
    // copy to an aligned buffer: typed-array views need offsets aligned to their element size
    const aligned = bytes.slice().buffer;
    const view = new DataView(aligned);
    switch (wire.dtype) {
      case 'float16': {
        const out = new Float32Array(count);
        for (let i = 0; i < count; i++) {
          out[i] = float16Table[view.getUint16(2 * i, true)];
        }
        return { data: out, shape };
      }
      case 'float32':
        return { data: littleEndian(new Float32Array(aligned, 0, count), view, 4), shape };
      case 'int32':
        return { data: littleEndian(new Int32Array(aligned, 0, count), view, 4), shape };
      case 'uint16':
        return { data: littleEndian(new Uint16Array(aligned, 0, count), view, 2), shape };
      case 'uint8':
        return { data: new Uint8Array(aligned, 0, count), shape };
    }
  }
  const list = wire.data as (number | null)[];
  if (list.length !== count) {
    throw new Error(`array of shape [${shape}] has ${list.length} values`);
  }
  const values = list.map(v => (v === null ? NaN : v));
  switch (wire.dtype) {
    case 'float16':
    case 'float32':
      return { data: Float32Array.from(values), shape };
    case 'int32':
      return { data: Int32Array.from(values), shape };
    case 'uint16':
      return { data: Uint16Array.from(values), shape };
    case 'uint8':
      return { data: Uint8Array.from(values), shape };
  }
  throw new Error(`unknown dtype ${String(wire.dtype)}`);
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function littleEndian<T extends Float32Array | Int32Array | Uint16Array>(arr: T, view: DataView, size: number): T {
  if (LITTLE_ENDIAN_HOST) {
    return arr;
  }
  for (let i = 0; i < arr.length; i++) {
    if (arr instanceof Float32Array) {
      arr[i] = view.getFloat32(i * size, true);
    } else if (arr instanceof Int32Array) {
      arr[i] = view.getInt32(i * size, true);
    } else {
      arr[i] = view.getUint16(i * size, true);
    }
  }
  return arr;
}
