// Be an app with the BUILT @keyops/client (clients/js/dist): fetch once per job, print JSON.
//   node tests/e2e/js/fetch.mjs JOBS.json
// JOBS.json: [{"config": PATH, "install_id": ID, "app_version": V, "clock_offset": SECONDS?}]
// Prints one result per job: the credential (the key is public by nature) and the attempts.
// It never prints the config's HMAC secret or a token.
import { readFileSync } from "node:fs";

import { Fetcher } from "../../../clients/js/dist/index.js";

const jobs = JSON.parse(readFileSync(process.argv[2], "utf8"));
const results = [];
for (const job of jobs) {
  const config = JSON.parse(readFileSync(job.config, "utf8"));
  const offset = job.clock_offset ?? 0;
  const fetcher = new Fetcher(
    config,
    { appVersion: job.app_version, installId: job.install_id },
    // Generous per-attempt deadline: a shared 2-core machine under test load is slow.
    { policy: { attemptTimeout: 20, maxRounds: 1 }, clock: () => Date.now() / 1000 + offset },
  );
  const outcomes = (attempts) => attempts.map((a) => `${a.url}: ${a.outcome} (${a.detail})`);
  try {
    const r = await fetcher.refresh();
    results.push({
      credential_id: r.credentialId,
      key: r.key,
      cluster: r.cluster,
      bundle_version: r.bundleVersion,
      source: r.source,
      stale: r.stale,
      attempts: outcomes(r.attempts),
    });
  } catch (error) {
    results.push({ error: error.name, message: error.message, attempts: outcomes(error.attempts ?? []) });
  }
}
process.stdout.write(JSON.stringify(results));
