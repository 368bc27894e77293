/**
 * The committed dev, uat and prod stacks against the pack's rules. The DigitalOcean provider
 * plugin cannot be built on this machine, so `pulumi preview --policy-pack` cannot run on those
 * stacks here; instead the whole program runs with Pulumi's engine mocked (the project's
 * test/mockProgram.ts, compiled by the root `npm run build`) and every resource it registers goes
 * through the same rule functions the pack wires, with the secrets the program marked as secrets.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, test } from "node:test";
import * as rules from "../src/rules";
import { secretPathsInWire } from "../src/secrets";
import { Props } from "../src/values";

const ROOT = resolve(__dirname, "..", "..", "..");
const MOCK_PROGRAM = join(ROOT, "build", "test", "mockProgram.js");
const SIG = "4dabf18193072939515e22adb298388d";

interface Registered {
    type: string;
    name: string;
    inputs: Record<string, unknown>;
}

/** Mock inputs keep the wire form of secrets ({sig, value}); rules see the plain value. */
function unwrap(v: unknown): unknown {
    if (Array.isArray(v)) return v.map(unwrap);
    if (v !== null && typeof v === "object") {
        const o = v as Record<string, unknown>;
        if (SIG in o) return unwrap(o.value);
        return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, unwrap(x)]));
    }
    return v;
}

/** Every violation of every rule, as `rule: resource: message`. */
function violations(resources: Registered[], environment: string): string[] {
    const out: string[] = [];
    const stackResources: rules.StackResource[] = [];
    for (const r of resources) {
        const props = unwrap(r.inputs) as Props;
        const report = (rule: string, messages: string[]) => messages.forEach((m) => out.push(`${rule}: ${r.name}: ${m}`));
        if (r.type === rules.TYPES.firewall) report("no-ssh-from-anywhere", rules.sshFromAnywhere(props));
        if (r.type === rules.TYPES.databaseCluster) report("database-in-vpc", rules.databaseInVpc(props));
        if (r.type === rules.TYPES.droplet) {
            report("droplet-monitoring", rules.dropletMonitoring(props));
            report("droplet-backups-in-prod", rules.dropletBackups(props, environment));
        }
        if (r.type === rules.TYPES.loadBalancer) report("load-balancer-https-redirect", rules.loadBalancerHttpsRedirect(props));
        report("coop-image-pinned-by-digest", rules.coopImagePinned(props));
        report("coop-health-check", rules.coopHealthCheck(props));
        report("coop-release-retention", rules.coopReleaseRetention(props));
        report("no-plaintext-secrets", rules.plaintextSecrets(props, secretPathsInWire(r.inputs)));
        // The mocks give every resource the id `<name>-id`.
        stackResources.push({ urn: r.name, name: r.name, type: r.type, props: { ...props, id: `${r.name}-id` }, dependencies: [], propertyDependencies: {} });
    }
    rules.databaseBehindFirewall(stackResources).forEach((v) => out.push(`database-behind-firewall: ${v.urn}: ${v.message}`));
    return out;
}

function mockRun(stackFile: string): Registered[] {
    const r = spawnSync(process.execPath, [MOCK_PROGRAM, stackFile], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    assert.equal(r.status, 0, r.stderr);
    const run = JSON.parse(r.stdout) as { resources: Registered[]; error?: string };
    assert.equal(run.error, undefined);
    return run.resources;
}

describe("the committed stacks under the pack's rules", () => {
    for (const stack of ["dev", "uat", "prod"]) {
        test(`Pulumi.${stack}.yaml: no violation`, () => {
            const resources = mockRun(join(ROOT, `Pulumi.${stack}.yaml`));
            assert.ok(resources.some((r) => r.type === rules.TYPES.droplet));
            assert.deepEqual(violations(resources, stack), []);
        });
    }

    test("dev with SSH open to the internet (its config allows it): the pack reports it", () => {
        const dir = mkdtempSync(join(tmpdir(), "coop-policy-stacks-"));
        try {
            const file = join(dir, "Pulumi.dev.yaml");
            writeFileSync(file, readFileSync(join(ROOT, "Pulumi.dev.yaml"), "utf8").replace(/sshAllowlist: \[[^\]]*\]/, "sshAllowlist: [0.0.0.0/0]"));
            assert.deepEqual(violations(mockRun(file), "dev"), ["no-ssh-from-anywhere: dev-firewall-firewall: inboundRules[0].sourceAddresses: SSH (22) open to 0.0.0.0/0"]);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });
});
