// gRPC health probe for containers (compose healthchecks, Kubernetes exec probes). Plain
// JavaScript on purpose: it runs every few seconds and must not pay for the TypeScript loader.
//
//   node healthcheck.mjs <port> [--tls-ca <ca.pem>] [--service <name>] [--host 127.0.0.1]
//   node healthcheck.mjs <port> --tcp        # a plain TCP connect (the dev stand-ins, no gRPC)
//
// Exec-form arguments only (no quoting, no shell syntax), so the same check works where a
// compose implementation turns the list into a `/bin/sh -c` string (podman-compose 1.0).
// Exit 0 when the service answers SERVING, 1 otherwise. With --tls-ca the channel is TLS and
// the server chain is checked against that CA; the host name is not, because the probe always
// dials the container's own loopback, which a production certificate need not name. No client
// certificate is sent: ingest and admin authorise callers per RPC, the handshake itself does
// not require one.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import grpc from "@grpc/grpc-js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    "tls-ca": { type: "string" },
    service: { type: "string", default: "" },
    host: { type: "string", default: "127.0.0.1" },
    timeout: { type: "string", default: "3000" },
    tcp: { type: "boolean", default: false },
  },
});
const port = Number(positionals[0] ?? process.env.PWSYNC_HEALTH_PORT);
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write("usage: healthcheck.mjs <port> [--tls-ca ca.pem] [--service name]\n");
  process.exit(2);
}

if (values.tcp) {
  const { connect } = await import("node:net");
  const socket = connect(port, values.host);
  socket.setTimeout(Number(values.timeout), () => socket.destroy(new Error("timed out")));
  socket.on("connect", () => {
    socket.end();
    process.exit(0);
  });
  socket.on("error", (err) => {
    process.stderr.write(`unhealthy: ${err.message}\n`);
    process.exit(1);
  });
} else {
  checkGrpc();
}

function checkGrpc() {
  // grpc.health.v1.HealthCheckRequest { string service = 1 } / HealthCheckResponse { enum status = 1 }.
  const encodeRequest = (req) => {
    const name = Buffer.from(req.service, "utf8");
    return name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a, name.length]), name]);
  };
  const decodeResponse = (buf) => ({ status: buf.length >= 2 && buf[0] === 0x08 ? buf[1] : 0 });
  const SERVING = 1;

  const credentials = values["tls-ca"]
    ? grpc.credentials.createSsl(readFileSync(values["tls-ca"]), null, null, { checkServerIdentity: () => undefined })
    : grpc.credentials.createInsecure();
  const Client = grpc.makeGenericClientConstructor(
    {
      check: {
        path: "/grpc.health.v1.Health/Check",
        requestStream: false,
        responseStream: false,
        requestSerialize: encodeRequest,
        requestDeserialize: () => ({}),
        responseSerialize: () => Buffer.alloc(0),
        responseDeserialize: decodeResponse,
      },
    },
    "Health",
  );
  const client = new Client(`${values.host}:${port}`, credentials);
  const deadline = new Date(Date.now() + Number(values.timeout));
  client.check({ service: values.service }, { deadline }, (err, response) => {
    client.close();
    if (err) {
      process.stderr.write(`unhealthy: ${err.code} ${err.details}\n`);
      process.exit(1);
    }
    if (response.status !== SERVING) {
      process.stderr.write(`unhealthy: status ${response.status}\n`);
      process.exit(1);
    }
    process.exit(0);
  });
}
