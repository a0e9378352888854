import net from "node:net";

/**
 * A TCP proxy in front of a real server that can be switched to "hold": connections are
 * accepted and then get no answer at all (a hung DC, a dropped route), which is what makes an
 * LDAP lookup wait for its full timeout. Switching back to "forward" destroys the held sockets.
 */
export async function startHoldingProxy(target: { host: string; port: number }) {
  let mode: "forward" | "hold" = "forward";
  const held = new Set<net.Socket>();
  const all = new Set<net.Socket>();
  const server = net.createServer((client) => {
    all.add(client);
    client.on("close", () => all.delete(client));
    client.on("error", () => client.destroy());
    if (mode === "hold") {
      held.add(client);
      client.on("close", () => held.delete(client));
      return;
    }
    const upstream = net.connect(target.port, target.host);
    all.add(upstream);
    upstream.on("close", () => all.delete(upstream));
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    hold() {
      mode = "hold";
      // Connections made before now would still answer: cut them so every new lookup hangs.
      for (const s of all) s.destroy();
    },
    forward() {
      mode = "forward";
      for (const s of held) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of all) s.destroy();
        server.close(() => resolve());
      }),
  };
}
