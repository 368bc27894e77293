// npx tsc -p . && node build/bench/caddy-reload.js — the comparison figure for Caddy: the same
// fixed-rate keep-alive load as bench/cutover.ts, through a local Caddy that is switched between two
// demo containers, first BENCH_CUTOVERS times with `caddy reload` (the documented graceful reload
// of a Caddyfile), then BENCH_CUTOVERS times with a PATCH of the upstream's dial address through
// Caddy's admin API. Caddy runs as it ships (no tuning). Prints figures last.
//
// Traffic: the load generator and every check here go to 127.0.0.1 only; the two containers the
// benchmark starts itself on the default bridge network are the only other addresses contacted.
import { ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, openSync, closeSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { request } from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { localHostsUp, run, runOk } from "../test/support";
import { buildLoadgen, images, median, printFigures, sleep, startLoad } from "./common";

const RATE = Number(process.env.BENCH_RATE ?? 2000);
const CUTOVERS = Number(process.env.BENCH_CUTOVERS ?? 20);

const CADDY = process.env.CADDY_BIN ?? "/usr/bin/caddy";
const ADMIN = "127.0.0.1:20190";
const PROXY_PORT = 18080;
const TARGET = `http://127.0.0.1:${PROXY_PORT}/version`;
const SETTLE_MS = 1000; // between switches, so requests are served under each config
const CONTAINERS = { a: "caddy-bench-a", b: "caddy-bench-b" } as const;
type Side = keyof typeof CONTAINERS;
const VERSION: Record<Side, string> = { a: "v1", b: "v2" };

interface Reply {
    status: number;
    body: string;
}

/** One HTTP/1.1 request on a fresh connection; status 0 means no response. */
function http(url: string, opts: { method?: string; body?: string; timeoutMs?: number } = {}): Promise<Reply> {
    return new Promise((resolve) => {
        const u = new URL(url);
        const headers: Record<string, string | number> = {};
        if (opts.body !== undefined) {
            headers["content-type"] = "application/json";
            headers["content-length"] = Buffer.byteLength(opts.body);
        }
        const req = request(
            { host: u.hostname, port: Number(u.port), path: u.pathname + u.search, method: opts.method ?? "GET", headers, timeout: opts.timeoutMs ?? 5000, agent: false },
            (res) => {
                let body = "";
                res.setEncoding("utf8");
                res.on("data", (c) => (body += c));
                res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
                res.on("error", () => resolve({ status: 0, body }));
            },
        );
        req.on("error", () => resolve({ status: 0, body: "" }));
        req.on("timeout", () => req.destroy());
        req.end(opts.body);
    });
}

/** Polls until `ok` holds for a reply from `url`, or throws after `timeoutMs`. */
async function waitFor(url: string, ok: (r: Reply) => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: Reply = { status: 0, body: "" };
    while (Date.now() < deadline) {
        last = await http(url, { timeoutMs: 2000 });
        if (ok(last)) {
            return;
        }
        await sleep(100);
    }
    throw new Error(`${what}: no good answer from ${url} within ${timeoutMs} ms (last: ${last.status} ${last.body.trim().slice(0, 200)})`);
}

function caddyfile(upstream: string): string {
    return ["{", `\tadmin ${ADMIN}`, "\tauto_https off", "}", "", `http://:${PROXY_PORT} {`, "\tbind 127.0.0.1", `\treverse_proxy ${upstream}`, "}", ""].join("\n");
}

/** The admin-API path of the dial address of the (only) reverse_proxy handler's first upstream. */
function dialPath(config: unknown): string {
    const found: string[][] = [];
    const walk = (v: unknown, at: string[]): void => {
        if (Array.isArray(v)) {
            v.forEach((x, i) => walk(x, [...at, String(i)]));
        } else if (v && typeof v === "object") {
            const o = v as Record<string, unknown>;
            if (o.handler === "reverse_proxy" && Array.isArray(o.upstreams) && o.upstreams.length === 1) {
                found.push([...at, "upstreams", "0", "dial"]);
            }
            for (const [k, x] of Object.entries(o)) {
                walk(x, [...at, k]);
            }
        }
    };
    walk(config, []);
    if (found.length !== 1) {
        throw new Error(`expected one reverse_proxy handler with one upstream in the running config, found ${found.length}: ${JSON.stringify(config)}`);
    }
    return `/config/${found[0].join("/")}`;
}

function containerIp(name: string): string {
    const ip = runOk("docker", ["inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}}", name]).stdout.trim();
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip)) {
        throw new Error(`no bridge IP for ${name}: ${JSON.stringify(ip)}`);
    }
    return ip;
}

interface LoopResult {
    load: Record<string, number>;
    switchMs: number[];
    verifyFailed: number;
}

/**
 * Starts a fresh load, waits 2 s, does CUTOVERS switches alternating the upstream (each checked
 * through the proxy), waits 2 s and stops the load. `doSwitch` must have the new upstream live
 * when it resolves.
 */
async function loop(loadgen: string, start: Side, doSwitch: (to: Side) => Promise<void>): Promise<{ result: LoopResult; end: Side }> {
    const load = startLoad(loadgen, ["-url", TARGET, "-rate", String(RATE), "-duration", "30m", "-connections", "64"]);
    running.add(load); // stays there until it has been stopped, so a failure leaves it to cleanup()
    await sleep(2000);
    const switchMs: number[] = [];
    let verifyFailed = 0;
    let live = start;
    for (let i = 1; i <= CUTOVERS; i++) {
        const to: Side = live === "a" ? "b" : "a";
        const t0 = performance.now();
        await doSwitch(to);
        switchMs.push(performance.now() - t0);
        live = to;
        // One check through the proxy right after the switch. A failed answer is counted (it is a
        // failed request too); then the new upstream must still show up, or the run is void.
        const r = await http(TARGET);
        if (r.status !== 200 || r.body.trim() !== VERSION[to]) {
            verifyFailed++;
            console.error(`switch ${i}: expected ${VERSION[to]} from ${TARGET}, got ${r.status} ${JSON.stringify(r.body.trim())}`);
            await waitFor(TARGET, (x) => x.status === 200 && x.body.trim() === VERSION[to], 10000, `switch ${i}`);
        }
        await sleep(SETTLE_MS);
    }
    await sleep(2000);
    const summary = await load.stop();
    running.delete(load);
    return { result: { load: summary, switchMs, verifyFailed }, end: live };
}

// Everything this process started, for cleanup.
const running = new Set<ReturnType<typeof startLoad>>();
let caddy: ChildProcess | undefined;
let caddyExited: Promise<void> | undefined;
let tmp: string | undefined;

/** What a failure report needs: the containers' state and the end of Caddy's log. */
function diagnose(): string {
    const ps = run("docker", ["ps", "-a", "--filter", `name=${CONTAINERS.a}`, "--filter", `name=${CONTAINERS.b}`, "--format", "{{.Names}} {{.Status}}"]).stdout;
    let log = "";
    try {
        log = tmp ? readFileSync(path.join(tmp, "caddy.log"), "utf8").slice(-6000) : "";
    } catch {
        // no log yet
    }
    return `containers:\n${ps}caddy log (end):\n${log}`;
}

async function cleanup(): Promise<void> {
    for (const l of running) {
        l.proc.kill("SIGKILL");
    }
    running.clear();
    if (caddy && caddy.exitCode === null && caddy.signalCode === null) {
        caddy.kill("SIGTERM");
        const killed = await Promise.race([caddyExited!.then(() => true), sleep(10000).then(() => false)]);
        if (!killed) {
            caddy.kill("SIGKILL");
            await caddyExited;
        }
    }
    caddy = undefined;
    run("docker", ["rm", "-f", "-v", CONTAINERS.a, CONTAINERS.b]);
    if (tmp) {
        rmSync(tmp, { recursive: true, force: true });
        tmp = undefined;
    }
}

async function main(): Promise<void> {
    let figures: Record<string, string | number>;
    try {
        figures = await measure();
    } catch (e) {
        throw new Error(`${(e as Error).stack}\n${diagnose()}`, { cause: e });
    } finally {
        await cleanup();
    }
    printFigures(figures);
}

async function measure(): Promise<Record<string, string | number>> {
    localHostsUp();
    const loadgen = buildLoadgen();
    const img = images();

    // Leftovers of an interrupted run of this benchmark (these names are its own).
    run("docker", ["rm", "-f", "-v", CONTAINERS.a, CONTAINERS.b]);
    runOk("docker", ["run", "-d", "--name", CONTAINERS.a, img["demo:v1"]]);
    runOk("docker", ["run", "-d", "--name", CONTAINERS.b, img["demo:v2"]]);
    const upstream: Record<Side, string> = { a: `${containerIp(CONTAINERS.a)}:8080`, b: `${containerIp(CONTAINERS.b)}:8080` };
    for (const side of ["a", "b"] as const) {
        await waitFor(`http://${upstream[side]}/health`, (r) => r.status === 200, 30000, CONTAINERS[side]);
        await waitFor(`http://${upstream[side]}/version`, (r) => r.status === 200 && r.body.trim() === VERSION[side], 5000, CONTAINERS[side]);
    }

    tmp = mkdtempSync(path.join(os.tmpdir(), "caddy-bench-"));
    const file = path.join(tmp, "Caddyfile");
    const logFile = path.join(tmp, "caddy.log");
    // Caddy's storage and autosaved config stay in the temp dir; its log goes to a file so a
    // busy event loop here can never block it on a full pipe.
    const env = { ...process.env, XDG_DATA_HOME: path.join(tmp, "data"), XDG_CONFIG_HOME: path.join(tmp, "config") };
    writeFileSync(file, caddyfile(upstream.a));
    const log = openSync(logFile, "a");
    caddy = spawn(CADDY, ["run", "--config", file, "--adapter", "caddyfile"], { stdio: ["ignore", log, log], env });
    closeSync(log);
    caddyExited = new Promise((resolve) => caddy!.on("exit", () => resolve()));
    caddy.on("error", (e) => console.error(`caddy: ${e.message}`));
    try {
        await waitFor(TARGET, (r) => r.status === 200 && r.body.trim() === VERSION.a, 15000, "caddy");
    } catch (e) {
        throw new Error(`${(e as Error).message}\ncaddy log:\n${readFileSync(logFile, "utf8").slice(-4000)}`, { cause: e });
    }
    const caddyVersion = run(CADDY, ["version"]).stdout.trim().split(/\s+/)[0];

    // 1. `caddy reload` with a rewritten Caddyfile.
    const reload = await loop(loadgen, "a", async (to) => {
        writeFileSync(file, caddyfile(upstream[to]));
        runOk(CADDY, ["reload", "--config", file, "--adapter", "caddyfile", "--address", ADMIN], { env, timeoutMs: 60000 });
    });

    // 2. PATCH of the upstream's dial address through the admin API.
    const cfg = await http(`http://${ADMIN}/config/`);
    if (cfg.status !== 200) {
        throw new Error(`GET /config/: ${cfg.status} ${cfg.body}`);
    }
    const dial = dialPath(JSON.parse(cfg.body));
    const api = await loop(loadgen, reload.end, async (to) => {
        const r = await http(`http://${ADMIN}${dial}`, { method: "PATCH", body: JSON.stringify(upstream[to]), timeoutMs: 60000 });
        if (r.status !== 200) {
            throw new Error(`PATCH ${dial}: ${r.status} ${r.body}`);
        }
    });

    if (caddy.exitCode !== null || caddy.signalCode !== null) {
        throw new Error(`caddy exited during the benchmark\n${readFileSync(logFile, "utf8").slice(-4000)}`);
    }

    const figures: Record<string, string | number> = {
        caddy_version: caddyVersion,
        caddy_api_dial_path: dial,
        rate_target_rps: RATE,
        settle_between_switches_ms: SETTLE_MS,
    };
    for (const [prefix, { load: r, switchMs, verifyFailed }] of [
        ["caddy_reload_", reload.result],
        ["caddy_api_", api.result],
    ] as const) {
        Object.assign(figures, {
            [`${prefix}cutovers`]: switchMs.length,
            [`${prefix}switch_ms_median`]: median(switchMs),
            [`${prefix}switch_ms_max`]: Math.max(...switchMs),
            [`${prefix}verify_checks_failed`]: verifyFailed,
            [`${prefix}achieved_rps`]: r.achieved_rps,
            [`${prefix}requests`]: r.requests,
            [`${prefix}ok_2xx`]: r.ok_2xx,
            [`${prefix}non_2xx`]: r.non_2xx,
            [`${prefix}socket_errors`]: r.socket_errors,
            [`${prefix}failed_requests`]: r.failed_requests,
            [`${prefix}p50_ms`]: r.p50_ms,
            [`${prefix}p99_ms`]: r.p99_ms,
            [`${prefix}max_ms`]: r.max_ms,
            [`${prefix}timeouts`]: r.timeouts,
            [`${prefix}dropped_by_client`]: r.dropped_by_client,
        });
        const extra = r as unknown as { status_codes?: Record<string, number>; errors?: string[] };
        const codes = Object.entries(extra.status_codes ?? {}).filter(([c]) => !c.startsWith("2"));
        if (codes.length > 0) {
            figures[`${prefix}non_2xx_codes`] = codes.map(([c, n]) => `${c}:${n}`).join(",");
        }
        for (const e of extra.errors ?? []) {
            console.error(`${prefix}error: ${e}`);
        }
    }
    return figures;
}

for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
        void cleanup().finally(() => process.exit(130));
    });
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
