/**
 * The rollout bucket the server puts an install in, for one credential:
 * `int.from_bytes(sha256(f"{client}:{credential_id}:{install_id}")[:8], "big") % 100`.
 * An app never needs it to fetch; it helps to explain which key a given install gets.
 */
export async function rolloutBucket(
  client: string,
  credentialId: string,
  installId: string,
): Promise<number> {
  const text = new TextEncoder().encode(`${client}:${credentialId}:${installId}`);
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", text));
  // The first 8 bytes, big-endian, modulo 100, one byte at a time (no 64-bit integers needed).
  let bucket = 0;
  for (let i = 0; i < 8; i++) bucket = (bucket * 256 + digest[i]!) % 100;
  return bucket;
}
