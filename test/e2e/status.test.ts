// `npm run status` and `npm run logs` against a stack of their own on the local host, through the
// real CLI and the real agent: what serves and what is kept for a rollback after two releases,
// a difference from the stack's history once the live container is stopped behind its back, and
// the co-op's log with each line marked with its host (and --follow ending with its client).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { images, initLocalStack } from "../../bench/common";
import { exec } from "../../components/remote/ssh";
import { ROOT, suiteHost, suiteHostUp, suiteTarget, suiteGet, pulumi, run } from "../support";

const STACK = "it-status";
const COOP = "it-status";

describe("status and logs (real CLI, real agent)", () => {
    let backend = "";
    let env: NodeJS.ProcessEnv = {};
    const script = (name: string, args: string[]) => run(path.join(ROOT, "scripts", "node-env.sh"), [name, ...args], { env });

    before(() => {
        suiteHostUp();
        backend = mkdtempSync(path.join(tmpdir(), "coop-status-"));
        env = { PULUMI_BACKEND_URL: `file://${backend}`, PULUMI_CONFIG_PASSPHRASE: "status-test-only" };
        initLocalStack(STACK, [{ id: COOP, domains: [`${COOP}.localhost`], image: images()["demo:v1"], migrate: ["migrate"], healthTimeout: 20 }], env, suiteHost());
        for (const tag of ["demo:v1", "demo:v2"]) {
            assert.equal(pulumi(["config", "set", "--stack", STACK, "--path", "coop:coops[0].image", images()[tag]], { env }).status, 0);
            const up = pulumi(["up", "--stack", STACK, "--yes", "--skip-preview"], { env });
            assert.equal(up.status, 0, up.stdout + up.stderr);
        }
    });

    after(async () => {
        pulumi(["destroy", "--stack", STACK, "--yes", "--skip-preview"], { env });
        pulumi(["stack", "rm", "--stack", STACK, "--yes", "--force"], { env });
        rmSync(path.join(ROOT, `Pulumi.${STACK}.yaml`), { force: true });
        rmSync(backend, { recursive: true, force: true });
        await exec(suiteTarget(), `docker rm -f coop-${COOP}-blue coop-${COOP}-green >/dev/null 2>&1; true`);
    });

    it("says what serves, since when, what is kept for a rollback, and that the host agrees", () => {
        const r = script("status", ["--stack", STACK, "--json"]);
        assert.equal(r.status, 0, r.stdout + r.stderr);
        const row = (JSON.parse(r.stdout).rows as Array<Record<string, unknown>>).find((x) => x.coop === COOP)!;
        assert.equal(row.host, "suite-1");
        assert.equal(row.live, images()["demo:v2"]);
        assert.equal(row.stack, images()["demo:v2"]);
        assert.equal((row.idle as { image: string }).image, images()["demo:v1"]);
        assert.equal(row.healthy, true);
        assert.equal(row.agrees, true);
        assert.ok(Math.abs(Date.now() - Date.parse(row.since as string)) < 10 * 60 * 1000, `since ${row.since}`);

        const table = script("status", ["--stack", STACK]);
        assert.equal(table.status, 0, table.stderr);
        assert.match(table.stdout, new RegExp(`^${COOP}\\s+suite-1\\s+coop-demo@[0-9a-f]{12}\\s.*\\sok\\s+-\\s+agrees$`, "m"));
    });

    it("prints the live release's log, each line marked with its host", async () => {
        assert.equal((await suiteGet("/version", `${COOP}.localhost`)).body.trim(), "v2");
        const r = script("logs", ["--stack", STACK, "--coop", COOP, "--since", "10m"]);
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout, /^suite-1 \| .*coop-demo v2 \(schema \d+\) listening on/m);
        assert.match(r.stdout, /^suite-1 \| .*GET \/version/m);
        assert.doesNotMatch(r.stdout, /coop-demo v1/, "only the live release's log");
        const bad = script("logs", ["--stack", STACK, "--coop", "no-such-coop"]);
        assert.equal(bad.status, 1);
        assert.match(bad.stderr, /--coop no-such-coop: the stack has no such co-op/);
    });

    it("follows the log until its client goes, and the agent on the host goes with it", async () => {
        const child = spawn(path.join(ROOT, "scripts", "node-env.sh"), ["logs", "--stack", STACK, "--coop", COOP, "--follow", "--since", "1s"], {
            cwd: ROOT,
            env: { ...process.env, ...env },
            stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        child.stdout.on("data", (c: Buffer) => (out += c.toString()));
        const marker = `/follow-${Date.now()}`;
        for (let i = 0; i < 100 && !out.includes(marker); i++) {
            await suiteGet(marker, `${COOP}.localhost`);
            await new Promise((r) => setTimeout(r, 200));
        }
        assert.ok(out.includes(marker), `a request made while following shows up: ${out.slice(-500)}`);
        const following = await exec(suiteTarget(), `pgrep -f '[l]ogs ${COOP} --since .*--follow' >/dev/null`);
        assert.equal(following.code, 0, "the agent follows on the host");
        child.kill("SIGINT");
        await new Promise((r) => child.on("exit", r));
        const gone = await exec(suiteTarget(), `for i in $(seq 50); do pgrep -f '[l]ogs ${COOP} --since .*--follow' >/dev/null || exit 0; sleep 0.1; done; exit 1`);
        assert.equal(gone.code, 0, "the agent's follow ended with its client");
    });

    it("differs, and exits 2, when the live container stops behind the stack's back", async () => {
        await exec(suiteTarget(), `docker stop $(docker ps -q --filter name=coop-${COOP}-) >/dev/null`);
        try {
            const r = script("status", ["--stack", STACK]);
            assert.equal(r.status, 2, r.stdout + r.stderr);
            assert.match(r.stdout, /DIFFERS: stack coop-demo@/);
        } finally {
            const up = pulumi(["refresh", "--stack", STACK, "--yes", "--skip-preview"], { env });
            assert.equal(up.status, 0, up.stdout + up.stderr);
        }
    });
});
