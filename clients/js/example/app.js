// The example page's script: fetch the key with the built @keyops/client browser bundle and show
// what happened. The page never shows the request secret or a token (nothing here can).
import { Fetcher, newInstallId } from "./keyops-client.js";

const show = (id, text) => {
  document.getElementById(id).textContent = text;
};
const attempts = (list) => list.map((a) => `${a.url}: ${a.outcome} (${a.detail})`).join("\n");

show("origin", location.origin);
try {
  const config = await (await fetch("./keyops-web.json", { cache: "no-store" })).json();
  show("client", config.client);
  show("endpoint", config.endpoints.join(", "));
  // Stable per install: it picks the rollout bucket.
  const installId = localStorage.getItem("keyops-install") ?? newInstallId();
  localStorage.setItem("keyops-install", installId);
  // ?clock_offset=-3600 plays a device whose clock is an hour slow: the client then corrects
  // its clock from the answer's Date header, which only an exposed header makes readable.
  const offset = Number(new URLSearchParams(location.search).get("clock_offset") ?? 0);
  const fetcher = new Fetcher(
    config,
    { appVersion: "1.0.0", installId },
    { policy: { attemptTimeout: 20, maxRounds: 1 }, clock: () => Date.now() / 1000 + offset },
  );
  const result = await fetcher.refresh();
  show("status", `ok: ${result.credentialId} from ${result.source}`);
  show("credential", result.credentialId);
  show("key", result.key);
  show("cluster", result.cluster);
  show("bundle-version", String(result.bundleVersion));
  show("attempts", attempts(result.attempts));
  document.body.dataset.state = "ok";
} catch (error) {
  show("status", `${error.name}: ${error.message}`);
  show("attempts", attempts(error.attempts ?? []));
  document.body.dataset.state = "error";
}
