// The product's main command, for real: `pulumi preview` of dev, uat and prod by the pinned CLI
// with the real DigitalOcean provider plugin and the policy pack (policy/config/<stack>.json),
// as an operator runs it before the first `up`: the committed stack file plus a deploy key (a
// throwaway one here, with its public half as deployPublicKey), a DigitalOcean token (a dummy:
// a preview of new resources never calls the API), a throwaway file backend. The preview must pass
// with no error, and register what the engine-mocked harness registers for the same file.
//
// It runs wherever the plugin is installed (an operator's machine, GitHub's runners); elsewhere it
// reports itself skipped with the command that installs it.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { DIGITALOCEAN_PLUGIN, cloudProject, digitaloceanPluginInstalled } from "../cloudProject";
import type { MockRun } from "../mockProgram";
import { ROOT, run } from "../support";

const skip = digitaloceanPluginInstalled()
    ? false
    : `the DigitalOcean provider plugin ${DIGITALOCEAN_PLUGIN} is not installed here; install it with: pulumi plugin install resource digitalocean ${DIGITALOCEAN_PLUGIN}`;

interface Step {
    op: string;
    urn: string;
}

const typeOf = (urn: string): string => urn.split("::")[2].split("$").at(-1)!;

/** The engine's events in a preview's streaming JSON output (PULUMI_ENABLE_STREAMING_JSON_PREVIEW), one a line. */
const streamedEvents = (stdout: string): Array<Record<string, any>> =>
    stdout
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, any>);

describe("pulumi preview of the cloud stacks with the real DigitalOcean provider", { skip }, () => {
    let work = "";

    before(() => {
        work = mkdtempSync(path.join(tmpdir(), "coop-cloud-preview-"));
        const main = (JSON.parse(readFileSync(path.join(ROOT, "policy", "package.json"), "utf8")) as { main: string }).main;
        const built = run("test", ["-f", path.join(ROOT, "policy", main)]);
        assert.equal(built.status, 0, `the policy pack is not built (no policy/${main}): run npm run test:policy`);
    });
    after(() => rmSync(work, { recursive: true, force: true }));

    for (const stack of ["dev", "uat", "prod"] as const) {
        it(`${stack}: previews with no error, passes the policy pack, and registers what the harness registers`, () => {
            const p = cloudProject(work, stack);
            const { dir } = p;
            const started = Date.now();
            // Streaming JSON: the engine's events, the policy pack's among them.
            const r = p.pulumi(
                ["preview", "--stack", stack, "--json", "--policy-pack", path.join(ROOT, "policy"), "--policy-pack-config", path.join(ROOT, "policy", "config", `${stack}.json`)],
                {
                    env: { PULUMI_ENABLE_STREAMING_JSON_PREVIEW: "1" },
                },
            );
            const seconds = (Date.now() - started) / 1000;
            const events = streamedEvents(r.stdout);
            const diagnostics = events.filter((e) => e.diagnosticEvent).map((e) => e.diagnosticEvent as { severity: string; message: string });
            assert.equal(
                r.status,
                0,
                `preview of ${stack} failed:\n${diagnostics
                    .filter((d) => d.severity === "error")
                    .map((d) => d.message)
                    .join("\n")}\n${r.stderr.slice(-2000)}`,
            );
            assert.deepEqual(
                diagnostics.filter((d) => d.severity === "error").map((d) => d.message),
                [],
                "no error diagnostics",
            );
            const summary = events.find((e) => e.summaryEvent)?.summaryEvent as { result: string; resourceChanges: Record<string, number> };
            assert.equal(summary.result, "succeeded");
            // The pack ran on every resource, and reported nothing (not even advisories).
            assert.equal(events.filter((e) => e.policyLoadEvent).length, 1, "the policy pack loaded");
            assert.ok(events.filter((e) => e.policyAnalyzeSummaryEvent).length >= summary.resourceChanges.create, "the pack analyzed every resource");
            assert.deepEqual(
                events.filter((e) => e.policyEvent).map((e) => `${e.policyEvent.policyName}: ${e.policyEvent.message}`),
                [],
                "no policy violation",
            );
            const steps: Step[] = events.filter((e) => e.resourcePreEvent).map((e) => e.resourcePreEvent.metadata as Step);

            // The engine-mocked harness on the same stack file must register the same resources.
            writeFileSync(path.join(dir, "plaintext.json"), JSON.stringify({ "coop:sshPrivateKey": p.privateKey }));
            const mocked = run(process.execPath, [
                path.join(ROOT, "build", "test", "mockProgram.js"),
                path.join(dir, `Pulumi.${stack}.yaml`),
                "--as-is",
                "--project",
                dir,
                "--plaintext",
                path.join(dir, "plaintext.json"),
            ]);
            const m = JSON.parse(mocked.stdout) as MockRun;
            assert.equal(m.error, undefined);
            const count = (types: string[]) => types.reduce<Record<string, number>>((o, t) => ((o[t] = (o[t] ?? 0) + 1), o), {});
            const real = count(steps.filter((x) => x.op === "create").map((x) => typeOf(x.urn)));
            const harness = count(m.resources.map((x) => x.type));
            assert.deepEqual(real, harness, "the real preview creates what the harness registered");
            console.log(`# ${stack}: ${summary.resourceChanges.create} creates in ${seconds.toFixed(1)} s`);
        });
    }

    it("prod grown to three droplets: the third gets every co-op, and the load balancer waits for them", () => {
        const p = cloudProject(work, "prod", (c) => (c["coop:digitalocean"].droplets.count = 3));
        const r = p.pulumi(
            ["preview", "--stack", "prod", "--json", "--policy-pack", path.join(ROOT, "policy"), "--policy-pack-config", path.join(ROOT, "policy", "config", "prod.json")],
            {
                env: { PULUMI_ENABLE_STREAMING_JSON_PREVIEW: "1" },
            },
        );
        const events = streamedEvents(r.stdout);
        assert.equal(
            r.status,
            0,
            events
                .filter((e) => e.diagnosticEvent?.severity === "error")
                .map((e) => e.diagnosticEvent.message)
                .join("\n"),
        );
        const creates = events.filter((e) => e.resourcePreEvent?.metadata.op === "create").map((e) => e.resourcePreEvent.metadata.urn as string);
        assert.equal(creates.filter((u) => u.endsWith("Droplet::prod-hosts-3")).length, 1);
        assert.deepEqual(creates.filter((u) => /CoopRelease::[a-z]+\/prod-app-3$/.test(u)).length, 2);
        assert.deepEqual(
            events.filter((e) => e.policyEvent),
            [],
        );
    });

    it("uat with coop:backups: the Spaces bucket, and the backup section on the first droplet's releases only", () => {
        const pgtools = `registry.digitalocean.com/coop/coop-pgtools@sha256:${"c".repeat(64)}`;
        const p = cloudProject(work, "uat", (c) => (c["coop:backups"] = { keep: 5, image: pgtools }));
        for (const key of ["spacesAccessKeyId", "spacesSecretAccessKey"]) {
            assert.equal(p.pulumi(["config", "set", "--secret", `coop:${key}`, "preview-only", "--stack", "uat"]).status, 0);
        }
        const r = p.pulumi(["preview", "--stack", "uat", "--json"], { env: { PULUMI_ENABLE_STREAMING_JSON_PREVIEW: "1" } });
        const events = streamedEvents(r.stdout);
        assert.equal(r.status, 0, r.stderr.slice(-2000));
        const creates = events.filter((e) => e.resourcePreEvent?.metadata.op === "create").map((e) => e.resourcePreEvent.metadata);
        assert.equal(creates.filter((m) => typeOf(m.urn).endsWith(":SpacesBucket")).length, 1);
        // The first droplet's migrations change the shared database first: its releases take the dump before them.
        const withBackup = creates.filter((m) => typeOf(m.urn).endsWith(":CoopRelease") && m.new?.inputs?.backup !== undefined).map((m) => m.urn.split("::").at(-1));
        const releases = creates.filter((m) => typeOf(m.urn).endsWith(":CoopRelease")).map((m) => m.urn.split("::").at(-1) as string);
        assert.deepEqual(withBackup.sort(), releases.filter((n) => n.endsWith("/uat-app-1")).sort());
        assert.ok(
            releases.some((n) => n.endsWith("/uat-app-2")),
            releases.join(", "),
        );
    });
});
