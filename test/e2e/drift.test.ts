// Drift through the real CLI: a stack of its own (bench-drift, its stack file git-ignored and
// removed afterwards; co-op drift-a, which no other stack has) on the local host. `pulumi refresh`
// reads what the host runs; a release deployed by hand, or a co-op removed by hand, shows as a
// changed CoopRelease, and the next `pulumi up` deploys the stack's release again.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { images, initLocalStack, must } from "../../bench/common";
import { render } from "../../components/remote/shell";
import { exec } from "../../components/remote/ssh";
import { ROOT, suiteHost, suiteHostUp, suiteTarget, suiteGet, pulumi } from "../support";

const STACK = "bench-drift";
const env = { PULUMI_CONFIG_PASSPHRASE: "drift-test-only" };
const cf = ["--stack", STACK];

async function onHost(command: string, stdin?: string): Promise<string> {
    const r = await exec(suiteTarget(), command, stdin === undefined ? {} : { stdin });
    assert.equal(r.code, 0, `${command}: ${r.stderr}`);
    return r.stdout.trim();
}

const version = async (): Promise<string> => (await suiteGet("/version", "drift-a.localhost")).body.trim();

/** `pulumi refresh`; resolves with its output. */
function refresh(): string {
    const r = must(pulumi(["refresh", ...cf, "--yes", "--skip-preview", "--diff"], { env }), "refresh");
    return r.stdout;
}

/** A refresh's `--diff` output says that drift-a's CoopRelease changed (its id and urn follow the line). */
const changed = (out: string): boolean => /CoopRelease: \(update\)\n[^\n]*\n[^\n]*CoopRelease::drift-a\/suite-1\]/.test(out);

describe("drift through the real CLI (refresh shows it, up repairs it)", () => {
    let agent = "";

    before(() => {
        suiteHostUp();
        initLocalStack(
            STACK,
            [{ id: "drift-a", domains: ["drift-a.localhost"], image: images()["demo:v1"], migrate: ["migrate"], generatedSecrets: ["SECRET_KEY"], deleteDataOnRemove: true }],
            env,
            suiteHost(),
        );
        must(pulumi(["up", ...cf, "--yes", "--skip-preview"], { env }), "initial up");
        agent = JSON.parse(must(pulumi(["stack", "output", ...cf, "--json"], { env }), "outputs").stdout).agents["suite-1"];
    });

    after(() => {
        pulumi(["destroy", ...cf, "--yes", "--skip-preview"], { env });
        pulumi(["stack", "rm", ...cf, "--yes", "--force"], { env });
        rmSync(path.join(ROOT, `Pulumi.${STACK}.yaml`), { force: true });
    });

    it("a refresh of a host that runs the stack's release shows no change", async () => {
        assert.equal(await version(), "v1");
        const out = refresh();
        assert.ok(!changed(out), out);
        const up = must(pulumi(["up", ...cf, "--yes", "--skip-preview"], { env }), "up");
        assert.doesNotMatch(up.stdout, /drift-a\/suite-1.*updated|updated.*drift-a\/suite-1/, up.stdout);
    });

    it("a release deployed by hand shows as drift, and the next up deploys the stack's release again", async () => {
        const doc = JSON.parse(await onHost("cat /opt/coop/coops/drift-a/release.json"));
        await onHost(render([agent, "deploy"]), JSON.stringify({ ...doc, image: images()["demo:v2"] }));
        assert.equal(await version(), "v2");
        const out = refresh();
        assert.ok(changed(out), `refresh did not show the drift:\n${out}`);
        assert.match(out, /~ live {7}: \{\n\s+~ image {5}: "[^"]+" => "[^"]+"/);
        const exported = JSON.parse(must(pulumi(["stack", "export", ...cf], { env }), "export").stdout);
        const release = exported.deployment.resources.find((r: { type: string; urn: string }) => r.type.endsWith("CoopRelease") && r.urn.endsWith("drift-a/suite-1"));
        assert.equal(release.outputs.live.image, images()["demo:v2"], "the state holds what the host runs");
        assert.ok(release.outputs.env?.ciphertext, "the env file stays a secret in the state after a refresh");
        const up = must(pulumi(["up", ...cf, "--yes", "--skip-preview"], { env }), "repairing up");
        assert.match(up.stdout, /drift-a\/suite-1/, up.stdout);
        assert.equal(await version(), "v1");
        assert.ok(!changed(refresh()), "no drift after the repair");
    });

    it("a co-op removed by hand shows as drift, and the next up brings it back", async () => {
        await onHost(render([agent, "remove", "drift-a"]));
        assert.equal((await suiteGet("/version", "drift-a.localhost")).status, 404);
        const out = refresh();
        assert.ok(changed(out), `refresh did not show the removal:\n${out}`);
        must(pulumi(["up", ...cf, "--yes", "--skip-preview"], { env }), "repairing up");
        assert.equal(await version(), "v1");
    });
});
