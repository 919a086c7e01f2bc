// A pusher-js client the Python tests drive: one JSON command per line on stdin, one JSON
// event per line on stdout. The tests decide (with the Python reference client) which key to
// connect with and what to do after a close code; this process only runs pusher-js.
//
// commands:
//   {"op": "connect", "key", "host", "port", "auth"?: URL, "user"?: id}
//   {"op": "subscribe", "channel"}
//   {"op": "disconnect"}
//   {"op": "exit"}
// events (each also carries "ms": milliseconds since the driver started):
//   {"type": "state", "previous", "current", "socket_id"}
//   {"type": "error", "code", "message"}            a Pusher error (e.g. 4001), or code null
//   {"type": "subscribed", "channel", "members"?}   members: the presence member ids
//   {"type": "subscription_error", "channel", "status", "error"}
//   {"type": "event", "channel", "event", "data"}
//   {"type": "bye"}
import { createInterface } from "node:readline";
import PusherModule from "pusher-js";

const Pusher = PusherModule.default ?? PusherModule;
let pusher = null;

function emit(event) {
  process.stdout.write(JSON.stringify({ ...event, ms: Math.round(performance.now()) }) + "\n");
}

function connect({ key, host, port, auth, user }) {
  if (pusher) pusher.disconnect();
  const options = {
    cluster: "local", // required by pusher-js; wsHost and wsPort decide where it connects
    wsHost: host,
    wsPort: port,
    forceTLS: false,
    enabledTransports: ["ws"],
    enableStats: false,
  };
  if (auth) {
    options.channelAuthorization = {
      endpoint: auth,
      transport: "ajax",
      // The auth server signs with the secret of the key this client connected with.
      params: { pusher_key: key },
      headers: user ? { "X-Demo-User": user } : {},
    };
  }
  const instance = new Pusher(key, options);
  pusher = instance;
  instance.connection.bind("state_change", ({ previous, current }) => {
    if (pusher !== instance) return;
    emit({ type: "state", previous, current, socket_id: instance.connection.socket_id ?? null });
  });
  instance.connection.bind("error", (err) => {
    if (pusher !== instance) return;
    const data = err?.error?.data ?? err?.data ?? {};
    emit({ type: "error", code: data.code ?? null, message: String(data.message ?? err?.type ?? "") });
  });
}

function subscribe({ channel }) {
  const subscription = pusher.subscribe(channel);
  subscription.bind("pusher:subscription_succeeded", (members) => {
    const event = { type: "subscribed", channel };
    if (channel.startsWith("presence-")) {
      event.members = [];
      members.each((member) => event.members.push(member.id));
      event.members.sort();
    }
    emit(event);
  });
  subscription.bind("pusher:subscription_error", (error) => {
    emit({ type: "subscription_error", channel, status: error?.status ?? null, error: String(error?.error ?? "") });
  });
  subscription.bind_global((event, data) => {
    if (!event.startsWith("pusher:") && !event.startsWith("pusher_internal:")) {
      emit({ type: "event", channel, event, data });
    }
  });
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const command = JSON.parse(line);
  if (command.op === "connect") connect(command);
  else if (command.op === "subscribe") subscribe(command);
  else if (command.op === "disconnect") {
    pusher?.disconnect();
    pusher = null;
  } else if (command.op === "exit") {
    pusher?.disconnect();
    emit({ type: "bye" });
    process.exit(0);
  }
});
lines.on("close", () => process.exit(0));
