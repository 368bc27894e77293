// `npm run logs` exits after printing (issue 26): a process that streamed a command's output over
// SSH must be free to exit once the command has ended, and with --follow once it is told to stop
// (its connection closed, so the host's `logs --follow --while-stdin-open` ends). Each case runs
// execStream in a child node process against an ssh2 server in this process on 127.0.0.1, and
// asserts that the child exits by itself within seconds. No hosts.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { AddressInfo } from "node:net";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { Server, utils } from "ssh2";

const SSH_MODULE = path.resolve(__dirname, "..", "..", "components", "remote", "ssh.js");

const hostKey = utils.generateKeyPairSync("ed25519");
const clientKey = utils.generateKeyPairSync("ed25519");
let server: Server;
let port = 0;
/** Connections the server saw end, and follow commands it was running when they did. */
let closed = 0;

/** A child node process running `body` (ssh is the compiled components/remote/ssh). */
function child(body: string): { exited: Promise<{ code: number | null; ms: number }>; stdout: () => string; kill: (s: NodeJS.Signals) => void } {
    const target = { host: "127.0.0.1", port, user: "deploy", privateKey: clientKey.private, hostKey: hostKey.public, connectTimeoutMs: 5000 };
    const script = `const ssh = require(${JSON.stringify(SSH_MODULE)}); const target = ${JSON.stringify(target)};\n${body}`;
    const started = Date.now();
    const p = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (c: Buffer) => (out += c.toString()));
    const exited = new Promise<{ code: number | null; ms: number }>((resolve) => p.on("exit", (code) => resolve({ code, ms: Date.now() - started })));
    return { exited, stdout: () => out, kill: (s) => p.kill(s) };
}

async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
    try {
        return await Promise.race([p, timeout]);
    } finally {
        clearTimeout(timer);
    }
}

describe("execStream lets its process exit (in-process ssh2 server)", () => {
    before(async () => {
        server = new Server({ hostKeys: [hostKey.private] }, (conn) => {
            conn.on("authentication", (ctx) => (ctx.method === "publickey" ? ctx.accept() : ctx.reject(["publickey"])));
            conn.on("close", () => closed++);
            conn.on("error", () => undefined);
            conn.on("session", (accept) => {
                accept().on("exec", (acceptExec, _reject, info) => {
                    const ch = acceptExec();
                    if (info.command === "lines") {
                        ch.write("one\ntwo\n");
                        ch.stderr.write("warn\n");
                        ch.exit(3);
                        ch.end();
                    } else {
                        // follow: a line now, then nothing until the client goes.
                        ch.write("first\n");
                        ch.on("error", () => undefined);
                    }
                });
            });
        });
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        port = (server.address() as AddressInfo).port;
    });
    after(() => server.close());

    it("a command that ends: its output, its exit status, and the process exits by itself", async () => {
        const c = child(`ssh.execStream(target, "lines", (chunk, s) => process.stdout.write(s + ":" + chunk)).then((code) => console.log("code " + code));`);
        const r = await within(10000, "the child exits", c.exited);
        assert.equal(r.code, 0);
        assert.match(c.stdout(), /stdout:one\ntwo\n/);
        assert.match(c.stdout(), /stderr:warn\n/);
        assert.match(c.stdout(), /code 3\n$/);
        console.log(`exited ${r.ms} ms after it started`);
    });

    it("--follow: SIGTERM aborts the stream, closes the connection, and the process exits", async () => {
        const before = closed;
        const c = child(
            `const stop = new AbortController(); process.once("SIGTERM", () => stop.abort());\n` +
                `ssh.execStream(target, "follow", (chunk) => process.stdout.write(chunk), { holdStdin: true, signal: stop.signal }).then((code) => console.log("code " + code));`,
        );
        await within(
            10000,
            "the first line",
            (async () => {
                while (!c.stdout().includes("first\n")) await new Promise((r) => setTimeout(r, 20));
            })(),
        );
        const t0 = Date.now();
        c.kill("SIGTERM");
        const r = await within(5000, "the child exits after SIGTERM", c.exited);
        assert.equal(r.code, 0);
        assert.match(c.stdout(), /code null\n$/);
        await within(
            5000,
            "the server sees the connection end",
            (async () => {
                while (closed === before) await new Promise((r) => setTimeout(r, 20));
            })(),
        );
        console.log(`exited ${Date.now() - t0} ms after SIGTERM`);
    });
});
