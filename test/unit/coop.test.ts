// Coop with Pulumi's engine mocked: the resources per co-op and per host, the env file's content,
// the release document each host gets, and no secret in provider code or in the release.
import * as pulumi from "@pulumi/pulumi";
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import type { CoopSpec } from "../../components/config";

interface Registered {
    type: string;
    name: string;
    inputs: Record<string, any>;
}

const registered: Registered[] = [];
const SENTINEL = "sentinel-db-password-91f3";
const IMAGE = `127.0.0.1:5001/coop-demo@sha256:${"a".repeat(64)}`;

before(async () => {
    await pulumi.runtime.setMocks(
        {
            newResource(args) {
                registered.push({ type: args.type, name: args.name, inputs: args.inputs });
                const state: Record<string, unknown> = { ...args.inputs };
                if (args.type.endsWith(":RandomSecret")) state.value = `generated-for-${args.name}`;
                if (args.name.endsWith("/up"))
                    state.stdout = JSON.stringify({ network: "coop", networkCreated: false, proxy: { container: "coop-proxy", image: IMAGE, changed: false } });
                if (args.type.endsWith(":CoopRelease")) state.stdout = JSON.stringify({ coop: "alpha", changed: false, slot: "blue", image: IMAGE, releaseKey: "k" });
                return { id: `${args.name}-id`, state };
            },
            call: () => ({}),
        },
        "coop",
        "local",
        false,
    );
});

const coop: CoopSpec = {
    id: "alpha",
    domains: ["alpha.localhost"],
    image: IMAGE,
    port: 8080,
    healthPath: "/health",
    uptimePath: "/",
    healthTimeout: 15,
    migrate: ["migrate"],
    env: { GREETING: "hi" },
    secretEnv: { DATABASE_URL: "alphaDb" },
    generatedSecrets: ["SECRET_KEY"],
    configFiles: { "coop.yaml": "name: Alpha\n" },
    memory: "128m",
    cpus: undefined,
    retain: 2,
    rollbackWindow: 900,
    deleteDataOnRemove: false,
    dataVolume: "scratch",
};

async function settle<T>(o: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => o.apply(resolve));
}

const AGENT_IMAGE = `127.0.0.1:5001/coop-agent@sha256:${"9".repeat(64)}`;

describe("Coop", () => {
    it("makes generated secrets once per co-op and a release per host, named so that none can collide", async () => {
        const { HostBootstrap } = await import("../../components/host");
        const { Coop } = await import("../../components/coop");
        const proxy = { image: IMAGE, bindAddress: "127.0.0.1", httpPort: 8080, httpsPort: 8443, tls: false };
        const hosts = ["h1", "h2"].map(
            (h) =>
                new HostBootstrap(h, {
                    connection: { host: h, port: 22, user: "deploy", privateKey: pulumi.secret("k"), hostKey: "ssh-ed25519 AAAA" },
                    root: "/opt/coop",
                    network: "coop",
                    proxy,
                    agentImage: AGENT_IMAGE,
                }),
        );
        const c = new Coop("alpha", { coop, hosts, secrets: { DATABASE_URL: pulumi.secret(SENTINEL) }, root: "/opt/coop", tls: false });
        assert.equal((await settle(c.reports.h2)).slot, "blue");

        const mine = registered.filter((r) => r.name.startsWith("alpha")).map((r) => `${r.type.replace("pulumi-nodejs:dynamic/", "")} ${r.name}`);
        assert.deepEqual(mine.sort(), ["coop:CoopRelease alpha/h1", "coop:CoopRelease alpha/h2", "coop:RandomSecret alpha/secret/SECRET_KEY", "coop:app:Coop alpha"]);
    });

    it("hands each host the release document, the env file (a secret) and the config files", () => {
        const r = registered.find((x) => x.name === "alpha/h1")!;
        assert.deepEqual(r.inputs.release, {
            coop: "alpha",
            image: IMAGE,
            port: 8080,
            healthPath: "/health",
            domains: ["alpha.localhost"],
            migrate: ["migrate"],
            memory: "128m",
            network: "coop",
            retain: 2,
            tls: false,
            healthTimeoutSeconds: 15,
            drainTimeoutSeconds: 30,
            rollbackWindowSeconds: 900,
        });
        assert.equal(r.inputs.agent, `/opt/coop/bin/coop-agent-${"9".repeat(12)}`);
        assert.equal(r.inputs.root, "/opt/coop");
        assert.equal(r.inputs.deleteData, false);
        assert.equal(r.inputs.timeoutMs, (15 + 30 + 900) * 1000);
        // Registered as a secret (Pulumi's secret signature wraps the value), so state encrypts it.
        assert.deepEqual(r.inputs.env, {
            [pulumi.runtime.specialSigKey]: pulumi.runtime.specialSecretSig,
            value: `COOP_ID=alpha\nDATABASE_URL=${SENTINEL}\nGREETING=hi\nSECRET_KEY=generated-for-alpha/secret/SECRET_KEY\n`,
        });
        assert.deepEqual(r.inputs.configFiles, { "coop.yaml": "name: Alpha\n" });
    });

    it("never puts a secret in the release document, a command or the serialized provider code", () => {
        for (const r of registered) {
            for (const key of ["create", "delete", "release", "configFiles", "__provider"]) {
                assert.ok(!JSON.stringify(r.inputs[key] ?? "").includes(SENTINEL), `${r.name}.${key} holds the secret`);
            }
        }
    });
});
