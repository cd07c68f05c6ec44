// Aileron's in-container bridge (ADR 0023). The container runs with `--network none`: its only
// ways out are the Unix sockets the daemon serves for this session, mounted at /run/aileron.
// Agents speak TCP, so this forwards 127.0.0.1:4000 to /run/aileron/api.sock (the actions API
// and the LLM gateway) and 127.0.0.1:3128 to /run/aileron/egress.sock (the egress proxy), byte
// for byte, both ways, half-close included. Node only, no dependencies.
//
//   node bridge.js [--ready-fd FD | --background] [--api PORT:SOCKET] [--egress PORT:SOCKET]
//
// Each route also comes from the environment (AILERON_BRIDGE_API, AILERON_BRIDGE_EGRESS), else
// its default. The API route is required; the egress route is skipped when its socket does not
// exist (the session has no egress proxy). With --ready-fd the bridge writes "ready\n" to FD and
// closes it once every port accepts connections (it exits 1 before that if it cannot start, so
// FD closes without "ready"); the container's entry starts it that way in the background and
// waits for that line before it execs the agent (one node start-up on the launch's path).
// Terminal signals (Ctrl-C, Ctrl-\, Ctrl-Z) and hang-ups are ignored: they are the agent's.
// With --background the bridge starts itself as a detached process (its own session), waits
// until every port accepts connections and exits 0; it exits 1 if the bridge could not start.
"use strict";

const fs = require("fs");
const net = require("net");
const { spawn } = require("child_process");

const HOST = "127.0.0.1";
const DEFAULTS = { api: "4000:/run/aileron/api.sock", egress: "3128:/run/aileron/egress.sock" };
const ENV = { api: "AILERON_BRIDGE_API", egress: "AILERON_BRIDGE_EGRESS" };
const START_TIMEOUT_MS = 10000;

function fail(message) {
  process.stderr.write(`aileron-bridge: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const options = { background: false, readyFd: null, routes: {} };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--background") options.background = true;
    else if (arg === "--ready-fd") {
      const fd = Number(argv[++i]);
      if (!Number.isInteger(fd) || fd < 3) fail("--ready-fd needs a file descriptor >= 3");
      options.readyFd = fd;
    } else if (arg === "--api" || arg === "--egress") {
      if (i + 1 >= argv.length) fail(`${arg} needs PORT:SOCKET`);
      options.routes[arg.slice(2)] = argv[++i];
    } else fail(`unknown argument ${JSON.stringify(arg)}`);
  }
  return options;
}

function route(name, given) {
  const text = given || process.env[ENV[name]] || DEFAULTS[name];
  const colon = text.indexOf(":");
  const port = Number(text.slice(0, colon));
  const path = text.slice(colon + 1);
  if (colon < 1 || !Number.isInteger(port) || port < 1 || port > 65535 || !path) {
    fail(`${name}: expected PORT:SOCKET, got ${JSON.stringify(text)}`);
  }
  return { name, port, path };
}

// One accepted connection: open the Unix socket and copy bytes both ways until both sides
// have finished. An end on one side ends the other's writing side only (half-close); an error
// on either side closes both. Nothing here may throw: a failing connection never stops the
// bridge.
function relay(client, path) {
  // Small writes go out at once: with Nagle's algorithm on, each short answer waits ~40 ms
  // for the client's delayed ACK.
  client.setNoDelay(true);
  const upstream = net.createConnection({ path, allowHalfOpen: true });
  client.on("error", () => upstream.destroy());
  upstream.on("error", () => client.destroy());
  client.on("close", (hadError) => hadError && upstream.destroy());
  upstream.on("close", (hadError) => hadError && client.destroy());
  client.pipe(upstream);
  upstream.pipe(client);
}

function listen(r) {
  return new Promise((resolve, reject) => {
    const server = net.createServer({ allowHalfOpen: true }, (client) => relay(client, r.path));
    server.once("error", reject);
    server.listen(r.port, HOST, () => {
      server.removeListener("error", reject);
      server.on("error", (error) => process.stderr.write(`aileron-bridge: ${error}\n`));
      resolve(server);
    });
  });
}

async function serve(options) {
  const routes = [route("api", options.routes.api)];
  const egress = route("egress", options.routes.egress);
  if (fs.existsSync(egress.path)) routes.push(egress);
  if (!fs.existsSync(routes[0].path)) fail(`${routes[0].path} does not exist`);
  for (const signal of ["SIGINT", "SIGHUP", "SIGQUIT", "SIGPIPE", "SIGTSTP"]) {
    process.on(signal, () => {});
  }
  try {
    await Promise.all(routes.map(listen));
  } catch (error) {
    fail(`cannot listen: ${error.message}`);
  }
  if (options.readyFd !== null) {
    fs.writeSync(options.readyFd, "ready\n");
    fs.closeSync(options.readyFd);
  }
  if (process.send) {
    process.send("ready");
    process.disconnect();
  }
}

function background(argv) {
  const child = spawn(process.execPath, [__filename, ...argv.filter((a) => a !== "--background")], {
    detached: true,
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  const timer = setTimeout(() => {
    child.kill();
    fail(`not listening after ${START_TIMEOUT_MS / 1000} s`);
  }, START_TIMEOUT_MS);
  child.on("message", (message) => {
    if (message !== "ready") return;
    clearTimeout(timer);
    child.unref();
    process.exit(0);
  });
  child.on("exit", (code) => {
    clearTimeout(timer);
    fail(`stopped while starting (exit ${code})`);
  });
  child.on("error", (error) => fail(`cannot start: ${error.message}`));
}

const options = parseArgs(process.argv.slice(2));
if (options.background) background(process.argv.slice(2));
else serve(options);
