/**
 * The pack's wiring: each policy called the way @pulumi/policy calls it (properties behind the
 * SDK's unknown-checking proxy, secrets found by the hook of src/secrets.ts), and the config files.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { ResourceValidationArgs, ResourceValidationPolicy, StackValidationPolicy, unknownCheckingProxy } from "@pulumi/policy";
import { specialSecretSig, specialSigKey } from "@pulumi/pulumi/runtime/rpc";
import { ENVIRONMENTS, PACK_NAME, policies } from "../src/pack";
import { secretPathsInWire, secretPathsOf } from "../src/secrets";
import { IMAGE_DIGEST_HINT } from "../../components/rules";
import { TYPES } from "../src/rules";

const { Struct } = require("google-protobuf/google/protobuf/struct_pb") as { Struct: { fromJavaScript(o: unknown): { toJavaScript(): unknown } } };
// The SDK's internals the wiring relies on (src/secrets.ts, src/values.ts).

const deserialize = require("@pulumi/policy/deserialize") as { deserializeProperties(s: unknown, proxySecrets: boolean): Record<string, unknown> };

const { unknownStringValue } = require("@pulumi/policy/proxy") as { unknownStringValue: string };

/** policy/, from this file compiled to policy/build/policy/test/. */
const POLICY_DIR = resolve(__dirname, "..", "..", "..");

const NAMES = [
    "no-ssh-from-anywhere",
    "database-in-vpc",
    "database-behind-firewall",
    "droplet-monitoring",
    "droplet-backups-in-prod",
    "coop-image-pinned-by-digest",
    "coop-health-check",
    "coop-release-retention",
    "no-plaintext-secrets",
    "load-balancer-https-redirect",
];

function policy(name: string): ResourceValidationPolicy {
    const p = policies.find((x) => x.name === name);
    assert.ok(p && "validateResource" in p, name);
    return p as ResourceValidationPolicy;
}

const secret = (value: unknown) => ({ [specialSigKey]: specialSecretSig, value });

/** Runs a resource policy on wire-format properties the way the SDK's analyze RPC does. */
function run(name: string, type: string, wire: Record<string, unknown>, config: Record<string, unknown> = {}): string[] {
    const props = unknownCheckingProxy(deserialize.deserializeProperties(Struct.fromJavaScript(wire), false));
    const out: string[] = [];
    const args = { type, props, urn: `urn:pulumi:t::p::${type}::r`, name: "r", getConfig: () => config } as unknown as ResourceValidationArgs;
    const validate = policy(name).validateResource;
    assert.ok(typeof validate === "function");
    validate(args, (message: string) => out.push(message));
    return out;
}

test("the pack is coop-policies with one policy per rule", () => {
    assert.equal(PACK_NAME, "coop-policies");
    assert.deepEqual(
        policies.map((p) => p.name),
        NAMES,
    );
    assert.ok("validateStack" in (policies.find((p) => p.name === "database-behind-firewall") as StackValidationPolicy));
});

test("config files: dev advisory, uat and prod mandatory, each naming its environment", () => {
    for (const env of ["dev", "uat", "prod"]) {
        const config = JSON.parse(readFileSync(join(POLICY_DIR, "config", `${env}.json`), "utf8")) as Record<string, unknown>;
        assert.deepEqual(config, { all: env === "dev" ? "advisory" : "mandatory", "droplet-backups-in-prod": { environment: env } });
        for (const key of Object.keys(config)) {
            assert.ok(key === "all" || NAMES.includes(key), key);
        }
        assert.ok((ENVIRONMENTS as readonly string[]).includes(env));
    }
});

test("a value unknown at preview is read as unknown, not as a reason to give up", () => {
    // Through the SDK's proxy, reading privateNetworkUuid would throw UnknownValueError.
    assert.deepEqual(run("database-in-vpc", TYPES.databaseCluster, { engine: "pg", privateNetworkUuid: unknownStringValue }), []);
    assert.deepEqual(run("database-in-vpc", TYPES.databaseCluster, { engine: "pg" }), [
        "privateNetworkUuid: the managed pg cluster is not inside a VPC (set privateNetworkUuid to a VPC's id)",
    ]);
});

test("resource policies only look at their type", () => {
    const open = { inboundRules: [{ protocol: "tcp", portRange: "22", sourceAddresses: ["0.0.0.0/0"] }] };
    assert.deepEqual(run("no-ssh-from-anywhere", TYPES.firewall, open), ["inboundRules[0].sourceAddresses: SSH (22) open to 0.0.0.0/0"]);
    assert.deepEqual(run("no-ssh-from-anywhere", TYPES.loadBalancer, open), []);
    assert.deepEqual(run("droplet-monitoring", TYPES.firewall, {}), []);
});

test("droplet-backups-in-prod enforces for the configured environment, prod by default", () => {
    const msg = ["backups: droplet backups are false in prod (set backups: true)"];
    assert.deepEqual(run("droplet-backups-in-prod", TYPES.droplet, { backups: false }, {}), msg);
    assert.deepEqual(run("droplet-backups-in-prod", TYPES.droplet, { backups: false }, { environment: "prod" }), msg);
    assert.deepEqual(run("droplet-backups-in-prod", TYPES.droplet, { backups: false }, { environment: "dev" }), []);
    assert.deepEqual(run("droplet-backups-in-prod", TYPES.droplet, { backups: true }, { environment: "prod" }), []);
});

test("secrets: the SDK unwraps them; the hook records where they were", () => {
    const wire = {
        connection: { user: "deploy", privateKey: secret("-----BEGIN OPENSSH PRIVATE KEY-----\nA\n-----END OPENSSH PRIVATE KEY-----") },
        stdin: secret({ password: "hunter2" }),
        triggers: ["a", secret("postgres://u:p@h/db")],
        plain: { password: "hunter2" },
    };
    assert.deepEqual(secretPathsInWire(wire), ["connection.privateKey", "stdin", "triggers[1]"]);
    const props = deserialize.deserializeProperties(Struct.fromJavaScript(wire), false);
    // What a rule gets: the plaintext value, no wrapper...
    assert.equal((props.connection as Record<string, unknown>).privateKey, "-----BEGIN OPENSSH PRIVATE KEY-----\nA\n-----END OPENSSH PRIVATE KEY-----");
    // ...and, through the SDK's proxy, the paths the hook attached.
    assert.deepEqual(secretPathsOf(unknownCheckingProxy(props)), ["connection.privateKey", "stdin", "triggers[1]"]);
    // The mark is not a property: nothing that walks the properties sees it.
    assert.deepEqual(Object.keys(props).sort(), ["connection", "plain", "stdin", "triggers"]);
    assert.equal(JSON.stringify(props).includes("secretPaths"), false);
    assert.deepEqual(run("no-plaintext-secrets", "pulumi-nodejs:dynamic/coop:RemoteCommand", wire), [
        "plain.password: password holds a plaintext string; pass it as a Pulumi secret",
    ]);
});

test("co-op rules read the release document of the project's CoopRelease resources", () => {
    const release = {
        coop: "alpha",
        image: "127.0.0.1:5001/coop-demo:v1",
        port: 8080,
        healthPath: "/health",
        domains: ["alpha.localhost"],
        migrate: [],
        network: "coop",
        retain: 2,
        tls: false,
        healthTimeoutSeconds: 10,
        drainTimeoutSeconds: 30,
    };
    const wire = {
        connection: secret({ host: "127.0.0.1", port: 2222, user: "deploy", privateKey: "k", hostKey: "h" }),
        agent: "/opt/coop/bin/coop-agent-0123",
        root: "/opt/coop",
        release,
        env: secret("COOP_ID=alpha\n"),
    };
    assert.equal(TYPES.coopRelease, "pulumi-nodejs:dynamic/coop:CoopRelease");
    assert.deepEqual(run("coop-image-pinned-by-digest", TYPES.coopRelease, wire), [`release.image: "127.0.0.1:5001/coop-demo:v1" is not pinned by digest (${IMAGE_DIGEST_HINT})`]);
    assert.deepEqual(run("coop-health-check", TYPES.coopRelease, wire), []);
    assert.deepEqual(run("coop-release-retention", TYPES.coopRelease, { ...wire, release: { ...release, retain: 0 } }), [
        "release.retain: 0 keeps no previous release (needs >= 1 for rollback)",
    ]);
    // Only CoopRelease resources: a host's bootstrap RemoteCommand has no release.
    assert.deepEqual(run("coop-image-pinned-by-digest", "pulumi-nodejs:dynamic/coop:RemoteCommand", wire), []);
    assert.deepEqual(run("coop-health-check", "pulumi-nodejs:dynamic/coop:RemoteCommand", { create: "mkdir -p /opt/coop/bin" }), []);
});

test("co-op rules: a release field unknown at preview is no violation, through the SDK's proxy", () => {
    const release = {
        coop: "alpha",
        image: unknownStringValue,
        port: 8080,
        healthPath: unknownStringValue,
        domains: [],
        migrate: [],
        network: "coop",
        retain: unknownStringValue,
        tls: false,
    };
    for (const name of ["coop-image-pinned-by-digest", "coop-health-check", "coop-release-retention"]) {
        assert.deepEqual(run(name, TYPES.coopRelease, { release }), [], name);
        assert.deepEqual(run(name, TYPES.coopRelease, { release: unknownStringValue }), [], name);
    }
    // Known fields next to an unknown one are still checked.
    assert.deepEqual(run("coop-release-retention", TYPES.coopRelease, { release: { ...release, retain: 0 } }), [
        "release.retain: 0 keeps no previous release (needs >= 1 for rollback)",
    ]);
});

test("no-ssh-from-anywhere: a range of prefix length 0 is anywhere, whatever its address", () => {
    const rule = (sourceAddresses: string[]) => run("no-ssh-from-anywhere", TYPES.firewall, { inboundRules: [{ protocol: "tcp", portRange: "22", sourceAddresses }] });
    assert.deepEqual(rule(["1.2.3.4/0", "2001:db8::/0"]), ["inboundRules[0].sourceAddresses: SSH (22) open to 1.2.3.4/0, 2001:db8::/0"]);
    assert.deepEqual(rule(["1.2.3.4/8", "2001:db8::/32"]), []);
    assert.deepEqual(rule(["0.0.0.0/8", "2001:db8::/16"]), []);
});

test("database-behind-firewall reads the link from the firewall's propertyDependencies", () => {
    const p = policies.find((x) => x.name === "database-behind-firewall") as StackValidationPolicy;
    const resource = (type: string, name: string, wire: Record<string, unknown>) => ({
        type,
        name,
        urn: `urn:pulumi:prod::coop-infra::${type}::${name}`,
        props: unknownCheckingProxy(deserialize.deserializeProperties(Struct.fromJavaScript(wire), false)),
        dependencies: [] as unknown[],
        propertyDependencies: {} as Record<string, unknown[]>,
    });
    const pg = resource(TYPES.databaseCluster, "pg", { engine: "pg", privateNetworkUuid: unknownStringValue });
    const cache = resource(TYPES.databaseCluster, "cache", { engine: "valkey", privateNetworkUuid: unknownStringValue });
    const fw = resource(TYPES.databaseFirewall, "pg-fw", { clusterId: unknownStringValue });
    fw.dependencies = [pg];
    fw.propertyDependencies = { clusterId: [pg] };
    const out: [string, string | undefined][] = [];
    const args = { resources: [pg, cache, fw], getConfig: () => ({}) } as unknown as Parameters<StackValidationPolicy["validateStack"]>[0];
    p.validateStack(args, (message: string, urn?: string) => out.push([message, urn]));
    assert.deepEqual(out, [
        [
            'clusterId: no digitalocean:index/databaseFirewall:DatabaseFirewall has the managed valkey cluster "cache" as its clusterId ' +
                "(add a DatabaseFirewall with clusterId: <cluster>.id and rules for the app droplets)",
            cache.urn,
        ],
    ]);
});
