/**
 * The committed dev, uat and prod stacks against the pack's policies. Here the whole program runs
 * with Pulumi's engine mocked (the project's test/mockProgram.ts, compiled by the root
 * `npm run build`), and every resource it registers goes through the pack's own policies the way
 * @pulumi/policy calls them: the inputs in the engine's wire form (secrets marked, found by the
 * hook of src/secrets.ts), deserialized by the SDK, behind its unknown-checking proxy, each resource
 * policy filtering by its type. This runs on every machine; the real thing, `pulumi preview
 * --policy-pack policy` of the cloud stacks with the DigitalOcean provider plugin, runs in
 * test/e2e/cloudPreview.test.ts wherever the plugin is installed (and says it skipped where not).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, test } from "node:test";
import { PolicyResource, ResourceValidationArgs, ResourceValidationPolicy, StackValidationArgs, StackValidationPolicy, unknownCheckingProxy } from "@pulumi/policy";
import { IMAGE_DIGEST_HINT } from "../../components/rules";
import { policies } from "../src/pack";
import { TYPES } from "../src/rules";

/** The repository, from this file compiled to policy/build/policy/test/. */
const ROOT = resolve(__dirname, "..", "..", "..", "..");
const MOCK_PROGRAM = join(ROOT, "build", "test", "mockProgram.js");

const { Struct } = require("google-protobuf/google/protobuf/struct_pb") as { Struct: { fromJavaScript(o: unknown): unknown } };

const deserialize = require("@pulumi/policy/deserialize") as { deserializeProperties(s: unknown, proxySecrets: boolean): Record<string, unknown> };

interface Registered {
    type: string;
    name: string;
    /** As the mocks get them: the engine's wire form, secrets as `{sig, value}`. */
    inputs: Record<string, unknown>;
}

/** A resource's properties as the SDK hands them to a policy. */
function propsOf(inputs: Record<string, unknown>): Record<string, unknown> {
    return unknownCheckingProxy(deserialize.deserializeProperties(Struct.fromJavaScript(inputs), false));
}

/** Every violation of every policy of the pack, as `policy: resource: message`. */
function violations(resources: Registered[], environment: string): string[] {
    const out: string[] = [];
    const getConfig = () => ({ environment });
    const urn = (r: Registered) => `urn:pulumi:${environment}::coop-infra::${r.type}::${r.name}`;
    const stackResources: PolicyResource[] = [];
    for (const r of resources) {
        const props = propsOf(r.inputs);
        for (const p of policies) {
            if (!("validateResource" in p)) continue;
            const validate = (p as ResourceValidationPolicy).validateResource;
            assert.ok(typeof validate === "function", p.name);
            const args = { type: r.type, name: r.name, urn: urn(r), props, getConfig } as unknown as ResourceValidationArgs;
            validate(args, (message: string) => out.push(`${p.name}: ${r.name}: ${message}`));
        }
        // The mocks give every resource the id `<name>-id`, which is what a DatabaseFirewall's
        // clusterId then holds: the stack policy matches by known id (the engine's
        // propertyDependencies are not seen by the mocks).
        stackResources.push({
            type: r.type,
            name: r.name,
            urn: urn(r),
            props: propsOf({ ...r.inputs, id: `${r.name}-id` }),
            dependencies: [],
            propertyDependencies: {},
        } as unknown as PolicyResource);
    }
    for (const p of policies) {
        if (!("validateStack" in p)) continue;
        const args = { resources: stackResources, getConfig } as unknown as StackValidationArgs;
        (p as StackValidationPolicy).validateStack(args, (message: string, u?: string) => out.push(`${p.name}: ${u ?? "(stack)"}: ${message}`));
    }
    return out;
}

function mockRun(stackFile: string): Registered[] {
    const r = spawnSync(process.execPath, [MOCK_PROGRAM, stackFile], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    assert.equal(r.status, 0, r.stderr);
    const run = JSON.parse(r.stdout) as { resources: Registered[]; error?: string; duplicates: string[] };
    assert.equal(run.error, undefined);
    assert.deepEqual(run.duplicates, []);
    return run.resources;
}

describe("the committed stacks under the pack's policies", () => {
    const runs = new Map<string, Registered[]>();
    const resourcesOf = (stack: string): Registered[] => {
        if (!runs.has(stack)) runs.set(stack, mockRun(join(ROOT, `Pulumi.${stack}.yaml`)));
        return runs.get(stack)!;
    };

    for (const stack of ["dev", "uat", "prod"]) {
        test(`Pulumi.${stack}.yaml: no violation, and every policy had its resources to check`, () => {
            const resources = resourcesOf(stack);
            const types = new Set(resources.map((r) => r.type));
            for (const t of Object.values(TYPES)) {
                if (t === TYPES.loadBalancer && stack === "dev") continue; // one host: no load balancer
                assert.ok(types.has(t), `${stack} registers no ${t}`);
            }
            // A release per co-op per host, `<coop>/<host>`, each with its release document.
            const named = (type: string) => resources.filter((r) => r.type === type).map((r) => r.name);
            const coops = named("coop:app:Coop");
            const hosts = named("coop:app:HostBootstrap");
            assert.ok(coops.length >= 2 && hosts.length >= 1, `${stack}: co-ops ${coops}, hosts ${hosts}`);
            const releases = resources.filter((r) => r.type === TYPES.coopRelease);
            assert.deepEqual(releases.map((r) => r.name).sort(), coops.flatMap((c) => hosts.map((h) => `${c}/${h}`)).sort());
            for (const r of releases) {
                assert.equal(typeof (r.inputs.release as { image?: unknown }).image, "string", r.name);
            }
            assert.deepEqual(violations(resources, stack), []);
        });
    }

    test("the release the program registers is what the co-op policies read: a bad one is reported", () => {
        const release = resourcesOf("prod").find((r) => r.type === TYPES.coopRelease && r.name === "alpha/prod-app-1");
        assert.ok(release);
        const doc = release.inputs.release as Record<string, unknown>;
        const bad: Registered = { ...release, inputs: { ...release.inputs, release: { ...doc, image: "ghcr.io/example-coop/coop-app:v1", healthPath: "health", retain: 0 } } };
        assert.deepEqual(violations([bad], "prod"), [
            `coop-image-pinned-by-digest: alpha/prod-app-1: release.image: "ghcr.io/example-coop/coop-app:v1" is not pinned by digest (${IMAGE_DIGEST_HINT})`,
            'coop-health-check: alpha/prod-app-1: release.healthPath: "health" is not an absolute path (starts with /)',
            "coop-release-retention: alpha/prod-app-1: release.retain: 0 keeps no previous release (needs >= 1 for rollback)",
        ]);
        // Its connection and env hold the deploy key and the database URL: as secrets, not reported;
        // the same values in plaintext are.
        const unwrap = (v: unknown) => (v as { value: unknown }).value;
        const plain: Registered = { ...release, inputs: { ...release.inputs, connection: unwrap(release.inputs.connection), env: unwrap(release.inputs.env) } };
        assert.deepEqual(violations([plain], "prod"), [
            "no-plaintext-secrets: alpha/prod-app-1: connection.privateKey: a private key block in plaintext; pass it as a Pulumi secret",
            "no-plaintext-secrets: alpha/prod-app-1: env: a password in a URL (scheme://user:password@) in plaintext; pass it as a Pulumi secret",
        ]);
    });

    test("dev with SSH open to the internet (its config allows it): the pack reports it", () => {
        const dir = mkdtempSync(join(tmpdir(), "coop-policy-stacks-"));
        try {
            const file = join(dir, "Pulumi.dev.yaml");
            const text = readFileSync(join(ROOT, "Pulumi.dev.yaml"), "utf8");
            assert.match(text, /sshAllowlist: \[[^\]]*\]/);
            writeFileSync(file, text.replace(/sshAllowlist: \[[^\]]*\]/, 'sshAllowlist: [0.0.0.0/0, "::/0"]'));
            assert.deepEqual(violations(mockRun(file), "dev"), ["no-ssh-from-anywhere: dev-firewall-firewall: inboundRules[0].sourceAddresses: SSH (22) open to 0.0.0.0/0, ::/0"]);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });
});
