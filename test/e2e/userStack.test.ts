// The suite keeps to its own stack and host. A user's `local` stack, deployed as scripts/up.sh
// deploys it, still serves and still agrees with its state after the suite's own stack has been
// brought up and destroyed on the suite's host, with an agent installed there beside it. (The
// suite once destroyed the user's stack, and removed the agent binary that stack's state named:
// its next up, refresh and destroy then exited 127.)
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { exec } from "../../components/remote/ssh";
import { ROOT, SUITE_STACK, installTool, localTarget, proxyGet, pulumi, suiteHost, suiteHostUp } from "../support";

const LOCAL = ["--stack", "local"];
const SUITE = ["--stack", SUITE_STACK];

function resources(stack: string[]): { urn: string; type: string }[] {
    const r = pulumi(["stack", "export", ...stack]);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout).deployment.resources ?? [];
}

function ok(args: string[]): string {
    const r = pulumi(args);
    assert.equal(r.status, 0, `pulumi ${args.join(" ")}:\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
}

describe("a user's local stack beside the suite (real CLI, both hosts)", () => {
    /** Whether this test deployed the local stack (and so takes it down again). */
    let deployedHere = false;

    before(() => {
        suiteHostUp();
        if (resources(LOCAL).length === 0) {
            ok(["up", ...LOCAL, "--yes", "--skip-preview"]);
            deployedHere = true;
        }
    });

    after(async () => {
        if (deployedHere) ok(["destroy", ...LOCAL, "--yes", "--skip-preview"]);
        // The agent it put beside the suite's: left there, it would keep the suite host's last
        // agent and its link in place after the next destroy (the agent keeps them while any
        // other agent is there).
        await exec(suiteHost().target, "rm -f /opt/coop/bin/coop-agent-beside");
    });

    it("the suite's stack up and down on its host leaves the local stack serving and in agreement", async () => {
        const urns = resources(LOCAL).map((r) => r.urn);
        const served = await proxyGet("/version", "alpha.localhost");
        assert.equal(served.status, 200, served.body);
        const agents = await exec(localTarget(), "ls /opt/coop/bin");
        assert.equal(agents.code, 0, agents.stderr);

        // What the suite does: an agent of its own on its host, then its stack up and destroyed.
        await installTool("coop-agent-beside", suiteHost());
        const images = JSON.parse(readFileSync(path.join(ROOT, ".local", "images.json"), "utf8")).images as Record<string, string>;
        ok(["config", "set", ...SUITE, "--path", "coop:coops[0].image", images["demo:v2"]]);
        ok(["up", ...SUITE, "--yes", "--skip-preview"]);
        ok(["destroy", ...SUITE, "--yes", "--skip-preview"]);

        const after = await proxyGet("/version", "alpha.localhost");
        assert.deepEqual([after.status, after.body], [served.status, served.body], "the local stack's alpha serves as before");
        assert.equal((await exec(localTarget(), "ls /opt/coop/bin")).stdout, agents.stdout, "the local host's agents are as they were");
        assert.deepEqual(
            resources(LOCAL).map((r) => r.urn),
            urns,
            "the local stack's state is as it was",
        );
        // It reads its hosts through the agent its state names, and finds what it deployed.
        ok(["refresh", ...LOCAL, "--yes", "--skip-preview", "--expect-no-changes"]);
        ok(["preview", ...LOCAL, "--expect-no-changes"]);
    });
});
