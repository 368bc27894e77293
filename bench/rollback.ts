// npm run bench:rollback — time from `rollback` starting to the old version answering on its
// domain: on the fast path inside the rollback window (the idle slot still runs the release: a
// proxy switch alone), after the window (the slot stopped: started, health-checked, switched) and
// on the pull path (slot and image pruned), against a fresh deploy through `pulumi up` (a new
// release of a digest already on the host: new container and migrations). A fixed-rate load runs
// throughout; fast_over_fresh_ratio is the in-window rollback's.
// It takes the local stack over and leaves it destroyed, with Pulumi.local.yaml as it found it.
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { exec } from "../components/remote/ssh";
import { ROOT, localHostsUp, localTarget, proxyGet, pulumi, run } from "../test/support";
import { buildLoadgen, get, images, printFigures, sleep, startLoad } from "./common";

const STACK_FILE = path.join(ROOT, "Pulumi.local.yaml");
const RATE = Number(process.env.BENCH_RATE ?? 500);
/** What rollback prints when it switched alpha itself (not the pulumi up it runs after, which would reuse the slot too). */
const SWITCHED = /fast path: alpha on \S+ switched/;

function must(ok: boolean, what: string): void {
    if (!ok) throw new Error(what);
}

async function version(): Promise<string> {
    return (await proxyGet("/version", "alpha.localhost", 2000)).body.trim();
}

/** Runs a command and measures until alpha answers `want` and until the command exits. */
async function timed(cmd: string, args: readonly string[], want: string): Promise<{ visibleMs: number; commandMs: number; out: string }> {
    const started = performance.now();
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c) => (out += c));
    const exited = new Promise<number>((resolve) => child.on("exit", (code) => resolve(code ?? 1)));
    let visibleMs = 0;
    while (visibleMs === 0) {
        if ((await version()) === want) visibleMs = performance.now() - started;
        else await sleep(20);
        if (performance.now() - started > 300000) throw new Error(`${want} never answered:\n${out}`);
    }
    const code = await exited;
    must(code === 0, `${cmd} ${args.join(" ")} exited ${code}:\n${out}`);
    return { visibleMs, commandMs: performance.now() - started, out };
}

async function lastHostRecord(): Promise<{ reused: boolean; ms: number }> {
    const r = await exec(localTarget(), "tail -n 1 /opt/coop/coops/alpha/releases.log");
    return JSON.parse(r.stdout);
}

function up(message: string): void {
    const r = pulumi(["up", "--stack", "local", "--yes", "--skip-preview", "--message", message]);
    must(r.status === 0, `up failed: ${r.stdout}\n${r.stderr}`);
}

async function main(): Promise<void> {
    localHostsUp();
    const img = images();
    const loadgen = buildLoadgen();
    const saved = readFileSync(STACK_FILE, "utf8");
    const rollback = (...args: string[]) => [path.join(ROOT, "scripts", "node-env.sh"), ["rollback", "--stack", "local", ...args]] as const;
    const setAlpha = (key: string, value: string) => must(pulumi(["config", "set", "--stack", "local", "--path", `coop:coops[0].${key}`, value]).status === 0, "config set");
    try {
        must(pulumi(["destroy", "--stack", "local", "--yes", "--skip-preview"]).status === 0, "destroy");
        run("npx", ["tsc", "-p", "."]);
        setAlpha("image", img["demo:v1"]);
        up("bench: alpha v1");
        setAlpha("image", img["demo:v2"]);
        up("bench: alpha v2");

        const load = startLoad(loadgen, ["-url", "http://127.0.0.1:8080/version", "-host", "alpha.localhost", "-rate", String(RATE), "-duration", "30m", "-connections", "32"]);
        await sleep(1000);

        // In the rollback window (the stack's default): v1's slot still runs, idle; a rollback is a switch.
        const fast = await timed(...rollback(), "v1");
        const fastHost = await lastHostRecord();
        must(fastHost.reused && SWITCHED.test(fast.out), `the in-window rollback did not switch to the idle slot:\n${fast.out}`);

        // After the window: back to v2, then v1's slot stopped (as the host's watch stops it once
        // its window ends); a rollback starts it, waits for its health and switches.
        await timed(...rollback(), "v2");
        await exec(localTarget(), `docker stop $(docker ps -q --filter label=coop.id=alpha --filter label=coop.image=${img["demo:v1"]}) >/dev/null`);
        const stopped = await timed(...rollback(), "v1");
        const stoppedHost = await lastHostRecord();
        must(stoppedHost.reused && SWITCHED.test(stopped.out), `the rollback to the stopped slot did not reuse it:\n${stopped.out}`);

        // Pull path: back to v2, then v1's slot and image pruned from the host, then roll back to v1.
        await timed(...rollback(), "v2");
        await exec(
            localTarget(),
            `docker rm -f $(docker ps -aq --filter label=coop.id=alpha --filter label=coop.image=${img["demo:v1"]}) >/dev/null; docker image rm ${img["demo:v1"]} >/dev/null`,
        );
        const pull = await timed(...rollback(), "v1");
        const pullHost = await lastHostRecord();
        must(!pullHost.reused, "the pull-path rollback reused a slot");

        // Fresh deploy of the same digest: from v2 live, v1 as a new release (changed env, so a
        // new container and migrations; the image is on the host) through pulumi up.
        await timed(...rollback(), "v2");
        setAlpha("image", img["demo:v1"]);
        setAlpha("env.GREETING", `bench-${Date.now()}`);
        const fresh = await timed(path.join(ROOT, "scripts", "pulumi.sh"), ["up", "--stack", "local", "--yes", "--skip-preview", "--message", "bench: fresh v1"], "v1");
        const freshHost = await lastHostRecord();

        await sleep(1000);
        const r = await load.stop();
        const health = await get("/health", "alpha.localhost");
        must(health === 200, "alpha unhealthy at the end");
        printFigures({
            rollback_fast_visible_ms: fast.visibleMs,
            rollback_fast_command_ms: fast.commandMs,
            rollback_fast_on_host_ms: fastHost.ms,
            rollback_stopped_visible_ms: stopped.visibleMs,
            rollback_stopped_command_ms: stopped.commandMs,
            rollback_stopped_on_host_ms: stoppedHost.ms,
            rollback_pull_visible_ms: pull.visibleMs,
            rollback_pull_command_ms: pull.commandMs,
            rollback_pull_on_host_ms: pullHost.ms,
            fresh_deploy_visible_ms: fresh.visibleMs,
            fresh_deploy_command_ms: fresh.commandMs,
            fresh_deploy_on_host_ms: freshHost.ms,
            fast_over_fresh_ratio_on_host: fastHost.ms / freshHost.ms,
            stopped_over_fresh_ratio: stopped.visibleMs / fresh.visibleMs,
            rate_target_rps: RATE,
            requests: r.requests,
            failed_requests: r.failed_requests,
            fast_over_fresh_ratio: fast.visibleMs / fresh.visibleMs,
        });
    } finally {
        writeFileSync(STACK_FILE, saved);
        pulumi(["destroy", "--stack", "local", "--yes", "--skip-preview"]);
        run("bash", ["-c", "docker volume rm coop-beta-data >/dev/null 2>&1; true"]);
    }
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
