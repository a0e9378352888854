// A service that starts and never says it is ready (what a service stuck on a dependency looks like).
process.stdout.write(`${JSON.stringify({ msg: "starting", pid: process.pid })}\n`);
setInterval(() => {}, 1000);
