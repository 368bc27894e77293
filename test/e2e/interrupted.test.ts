// An update killed while it creates a co-op, through the real CLI on the local host: the state
// keeps a pending create, which every later `up` would warn about and `refresh --yes` would not
// clear. The next command through scripts/pulumi.sh drops it (the co-op's release is a step the next
// up redoes) and says so; the up converges, and the one after it is clean.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { images, initLocalStack } from "../../bench/common";
import { exec } from "../../components/remote/ssh";
import { ROOT, suiteHost, suiteHostUp, suiteTarget, suiteGet, pulumi } from "../support";

const STACK = "it-interrupted";

/** The CLI starts its plugins in process groups of their own, so they outlive a SIGKILL of its group: they are found by the backend in their environment. */
function killOrphanedPlugins(backendDir: string): void {
    for (const pid of readdirSync("/proc").filter((d) => /^[0-9]+$/.test(d) && Number(d) !== process.pid)) {
        try {
            if (readFileSync(`/proc/${pid}/environ`, "latin1").split("\0").includes(`PULUMI_BACKEND_URL=file://${backendDir}`)) process.kill(Number(pid), "SIGKILL");
        } catch {
            // gone already, or not ours to read
        }
    }
}
const COOP = "it-interrupted";

describe("an update killed while it creates a co-op", () => {
    let backend = "";
    let env: NodeJS.ProcessEnv = {};

    before(() => {
        suiteHostUp();
        backend = mkdtempSync(path.join(tmpdir(), "coop-interrupted-"));
        env = { PULUMI_BACKEND_URL: `file://${backend}`, PULUMI_CONFIG_PASSPHRASE: "interrupted-test-only" };
        initLocalStack(STACK, [{ id: COOP, domains: [`${COOP}.localhost`], image: images()["demo:v1"], migrate: ["migrate"], healthTimeout: 20 }], env, suiteHost());
    });

    after(async () => {
        pulumi(["destroy", "--stack", STACK, "--yes", "--skip-preview"], { env });
        pulumi(["stack", "rm", "--stack", STACK, "--yes", "--force"], { env });
        rmSync(path.join(ROOT, `Pulumi.${STACK}.yaml`), { force: true });
        rmSync(backend, { recursive: true, force: true });
        await exec(suiteTarget(), `docker rm -f coop-${COOP}-blue coop-${COOP}-green >/dev/null 2>&1; true`);
    });

    it("leaves a pending create that the next command drops, and the next up converges", async () => {
        const child = spawn(path.join(ROOT, "scripts", "pulumi.sh"), ["up", "--stack", STACK, "--yes", "--skip-preview", "--non-interactive"], {
            cwd: ROOT,
            env: { ...process.env, ...env },
            detached: true,
            stdio: "ignore",
        });
        // Kill the whole update (CLI, language host, providers) once the co-op's release is running on the host.
        const started = await exec(suiteTarget(), `for i in $(seq 1200); do test -d /opt/coop/coops/${COOP}/lock && exit 0; sleep 0.05; done; exit 1`);
        assert.equal(started.code, 0, "the co-op's release started on the host");
        const exited = new Promise((resolve) => child.on("exit", resolve));
        process.kill(-child.pid!, "SIGKILL");
        await exited;
        killOrphanedPlugins(backend);

        const state = JSON.parse(pulumi(["stack", "export", "--stack", STACK], { env }).stdout);
        const pending = (state.deployment.pending_operations ?? []) as Array<{ type: string; resource: { urn: string } }>;
        assert.ok(
            pending.some((o) => o.type === "creating" && o.resource.urn.endsWith(`::${COOP}/suite-1`)),
            `a pending create of ${COOP}/suite-1: ${JSON.stringify(pending.map((o) => o.resource.urn))}`,
        );

        const up = pulumi(["up", "--stack", STACK, "--yes", "--skip-preview"], { env });
        assert.equal(up.status, 0, up.stdout + up.stderr);
        assert.match(up.stderr, new RegExp(`dropped \\d+ pending create\\(s\\) an interrupted update left; the next up redoes them: .*${COOP}/suite-1`));
        assert.equal((await suiteGet("/version", `${COOP}.localhost`)).body.trim(), "v1");

        const again = pulumi(["up", "--stack", STACK, "--yes", "--skip-preview"], { env });
        assert.equal(again.status, 0, again.stdout + again.stderr);
        assert.doesNotMatch(again.stdout + again.stderr, /pending/i, "nothing pending is left");
        const clean = JSON.parse(pulumi(["stack", "export", "--stack", STACK], { env }).stdout);
        assert.equal(clean.deployment.pending_operations, undefined);
    });
});
