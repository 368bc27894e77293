// A killed CLI leaves no orphans (issue 26): the CLI starts its language host and providers in
// process groups of their own, so they outlived the CLI (115 MB, no parent) when it or the wrapper
// was killed. Real CLI through scripts/pulumi.sh, a scratch project whose one dynamic resource
// takes 30 s to create, a file backend in a temporary directory; no hosts. Every process of a run
// is found by a marker in its environment that only that run carries.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { Proc, ROOT, processesWith, scratchProject } from "../support";

const WRAPPER = path.join(ROOT, "scripts", "pulumi.sh");

const PROGRAM = `const pulumi = require("@pulumi/pulumi");
const provider = {
    async create(inputs) {
        await new Promise((r) => setTimeout(r, 30000));
        return { id: "slow", outs: inputs };
    },
};
class Slow extends pulumi.dynamic.Resource { constructor(name, props) { super(provider, name, props); } }
// A resource of its own per run: each up has one to create, whatever an earlier run left.
new Slow("slow-" + process.env.ORPHANS_RUN, { run: process.env.ORPHANS_RUN });
`;

let work = "";
let project = "";
const runs: string[] = [];
let env: (extra?: NodeJS.ProcessEnv) => NodeJS.ProcessEnv;

/** The processes of run `run` (its marker in their environment), zombies left out. */
function processesOf(run: string): Proc[] {
    return processesWith(`ORPHANS_RUN=${run}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(seconds: number, what: string, f: () => T | undefined | false): Promise<T> {
    const deadline = Date.now() + seconds * 1000;
    for (;;) {
        const v = f();
        if (v) return v;
        if (Date.now() > deadline) throw new Error(`${what}: not within ${seconds} s`);
        await sleep(100);
    }
}

/** An `up` through the wrapper, once its dynamic provider is creating the slow resource. */
async function upCreating(run: string) {
    runs.push(run);
    const child = spawn(WRAPPER, ["--cwd", project, "up", "--stack", "dev", "--yes", "--skip-preview", "--non-interactive"], {
        cwd: ROOT,
        env: env({ ORPHANS_RUN: run }),
        stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr.on("data", (c: Buffer) => (output += c.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
    await until(120, "the dynamic provider runs", () => processesOf(run).some((p) => p.cmdline.includes("dynamic-provider")));
    await until(30, "the create has started", () => /slow-\S+\s+creating/.test(output));
    const procs = processesOf(run);
    for (const kind of ["pulumi", "language", "cmd/run", "dynamic-provider"]) {
        assert.ok(
            procs.some((p) => p.comm === kind || p.cmdline.includes(kind)),
            `${kind} among the run's processes: ${procs.map((p) => p.cmdline.slice(0, 80)).join(" | ")}`,
        );
    }
    return { child, exited, procs, output: () => output };
}

describe("a killed CLI leaves no orphans (real CLI, scratch project, file backend)", () => {
    before(() => {
        ({ work, project, env } = scratchProject("orphans-scratch", PROGRAM, "orphans-test-only"));
    });
    after(() => {
        // Whatever a failed case left behind.
        for (const run of runs) for (const p of processesOf(run)) process.kill(p.pid, "SIGKILL");
        rmSync(work, { recursive: true, force: true });
    });

    it("SIGTERM to the wrapper: the CLI cancels, and no process of the run remains", async () => {
        const run = `term-${process.pid}`;
        const up = await upCreating(run);
        const t0 = Date.now();
        up.child.kill("SIGTERM");
        const r = await up.exited;
        await until(10, "every process of the run ended", () => processesOf(run).length === 0 || undefined);
        console.log(`SIGTERM: wrapper ended (${JSON.stringify(r)}) and no process of the run remained ${Date.now() - t0} ms later`);
        assert.notEqual(r.code, 0, "the update did not finish");
        assert.match(up.output(), /SIGTERM received; cancelling/);
    });

    it("SIGKILL to the pulumi process itself: the wrapper ends its language host and provider, and passes the status on", async () => {
        const run = `kill-${process.pid}`;
        const up = await upCreating(run);
        const cli = up.procs.find((p) => p.comm === "pulumi")!;
        const t0 = Date.now();
        process.kill(cli.pid, "SIGKILL");
        const r = await up.exited;
        assert.equal(r.code, 137, "the CLI's death by SIGKILL is the wrapper's status");
        await until(10, "every process of the run ended", () => processesOf(run).length === 0 || undefined);
        console.log(`SIGKILL of the CLI: no process of the run remained ${Date.now() - t0} ms later`);
    });

    it(
        "SIGKILL to the wrapper: the CLI is told (PR_SET_PDEATHSIG), cancels, and takes its plugins with it once the create under way has ended",
        { skip: spawnSync("setpriv", ["--help"]).status !== 0 && "setpriv is not installed" },
        async () => {
            const run = `wrapper-kill-${process.pid}`;
            const up = await upCreating(run);
            const t0 = Date.now();
            up.child.kill("SIGKILL");
            await up.exited;
            // A TERM cancels gracefully: the CLI waits for the create under way (30 s), then ends its plugins.
            await until(60, "every process of the run ended", () => processesOf(run).length === 0 || undefined);
            assert.match(up.output(), /SIGTERM received; cancelling/);
            console.log(`SIGKILL of the wrapper: no process of the run remained ${Date.now() - t0} ms later`);
        },
    );

    it("SIGINT to the wrapper (no terminal): passed on once, the CLI cancels gracefully, nothing remains", async () => {
        const run = `int-${process.pid}`;
        const up = await upCreating(run);
        up.child.kill("SIGINT");
        const r = await up.exited;
        await until(10, "every process of the run ended", () => processesOf(run).length === 0 || undefined);
        assert.match(up.output(), /\^C received; cancelling/);
        assert.doesNotMatch(up.output(), /received; terminating/);
        assert.notEqual(r.code, 0);
    });

    it("an update that ends by itself: its status passes through and nothing remains", () => {
        const run = `plain-${process.pid}`;
        const r = spawnSync(WRAPPER, ["--cwd", project, "stack", "select", "no-such-stack", "--non-interactive"], { cwd: ROOT, env: env({ ORPHANS_RUN: run }), encoding: "utf8" });
        assert.equal(r.status, 6, "the CLI's own exit status (6: no such stack)");
        assert.equal(processesOf(run).length, 0);
    });
});
