/**
 * base64url as JOSE and keyops use it: the URL-safe alphabet, padding optional on input and
 * never produced. Written here (rather than atob/btoa) so it behaves the same in browsers,
 * Node and React Native, and rejects anything outside the alphabet.
 */
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const SHAPE = /^[A-Za-z0-9_-]*={0,2}$/;

/** Decode base64url, with or without padding; throws a plain Error on anything else. */
export function decode(text: string): Uint8Array {
  if (!SHAPE.test(text)) throw new Error("not base64url");
  const data = text.replace(/=+$/, "");
  // One character past a 4-character group cannot encode a whole byte.
  if (data.length % 4 === 1) throw new Error("not base64url");
  const out = new Uint8Array(Math.floor((data.length * 3) / 4));
  let acc = 0;
  let bits = 0;
  let j = 0;
  for (let i = 0; i < data.length; i++) {
    acc = ((acc << 6) | ALPHABET.indexOf(data[i]!)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[j++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

/** Encode bytes as unpadded base64url. */
export function encode(bytes: Uint8Array): string {
  let out = "";
  let acc = 0;
  let bits = 0;
  for (const byte of bytes) {
    acc = ((acc << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += ALPHABET[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += ALPHABET[(acc << (6 - bits)) & 63];
  return out;
}

/** base64url text of a JSON value's UTF-8 bytes is decoded, or throws. */
export function decodeJson(segment: string): unknown {
  return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(decode(segment)));
}
