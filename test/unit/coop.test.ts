// Coop and CoopInstance with Pulumi's engine mocked: the resources per co-op and per host, the
// env file's content and mode, the exact deploy command, and no secret in provider code.
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
                if (args.name.endsWith("-up")) state.stdout = JSON.stringify({ network: "coop", proxy: {} });
                if (args.name.endsWith("-deploy")) state.stdout = JSON.stringify({ coop: "alpha", changed: true, slot: "blue", image: IMAGE, releaseKey: "k" });
                if (args.type.endsWith(":RemoteFile")) state.path = args.inputs.path;
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
    healthTimeout: 15,
    migrate: ["migrate"],
    env: { GREETING: "hi" },
    secretEnv: { DATABASE_URL: "alphaDb" },
    generatedSecrets: ["SECRET_KEY"],
    configFiles: { "coop.yaml": "name: Alpha\n" },
    memory: "128m",
    cpus: undefined,
    retain: 2,
    deleteDataOnRemove: false,
};

async function settle<T>(o: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => o.apply(resolve));
}

describe("Coop", () => {
    it("makes generated secrets once per co-op and an instance per host", async () => {
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
                    toolSource: "tool",
                }),
        );
        const c = new Coop("alpha", { coop, hosts, secrets: { DATABASE_URL: pulumi.secret(SENTINEL) }, root: "/opt/coop", tls: false });
        assert.equal(await settle(c.instances.h2.slot), "blue");

        const mine = registered.filter((r) => r.name.startsWith("alpha")).map((r) => `${r.type.replace("pulumi-nodejs:dynamic/", "")} ${r.name}`);
        assert.deepEqual(mine.sort(), [
            "coop:RandomSecret alpha-secret-key",
            "coop:RemoteCommand alpha-h1-deploy",
            "coop:RemoteCommand alpha-h1-prepare",
            "coop:RemoteCommand alpha-h2-deploy",
            "coop:RemoteCommand alpha-h2-prepare",
            "coop:RemoteFile alpha-h1-config-coop.yaml",
            "coop:RemoteFile alpha-h1-env",
            "coop:RemoteFile alpha-h2-config-coop.yaml",
            "coop:RemoteFile alpha-h2-env",
            "coop:app:Coop alpha",
            "coop:app:CoopInstance alpha-h1",
            "coop:app:CoopInstance alpha-h2",
        ]);
    });

    it("writes the env file with every variable, mode 0600, in the co-op's directory", () => {
        const env = registered.find((r) => r.name === "alpha-h1-env")!;
        assert.equal(env.inputs.path, "/opt/coop/coops/alpha/env");
        assert.equal(env.inputs.mode, 0o600);
        // Registered as a secret (Pulumi's secret signature wraps the value), so state encrypts it.
        assert.deepEqual(env.inputs.content, {
            [pulumi.runtime.specialSigKey]: pulumi.runtime.specialSecretSig,
            value: `COOP_ID=alpha\nDATABASE_URL=${SENTINEL}\nGREETING=hi\nSECRET_KEY=generated-for-alpha-secret-key\n`,
        });
        const cfg = registered.find((r) => r.name === "alpha-h1-config-coop.yaml")!;
        assert.deepEqual([cfg.inputs.path, cfg.inputs.mode, cfg.inputs.content], ["/opt/coop/coops/alpha/config/coop.yaml", 0o644, "name: Alpha\n"]);
    });

    it("deploys with the exact coopctl command and removes without deleting data", () => {
        const deploy = registered.find((r) => r.name === "alpha-h1-deploy")!;
        const tool = registered.find((r) => r.name === "h1-tool")!.inputs.path;
        assert.equal(
            deploy.inputs.create,
            `${tool} deploy alpha --image ${IMAGE} --port 8080 --health-path /health --network coop --memory 128m --retain 2 --health-timeout 15 --drain-timeout 30 --domain alpha.localhost --migrate migrate`,
        );
        assert.equal(deploy.inputs.delete, `${tool} remove alpha`);
    });

    it("never puts a secret in a command or in the serialized provider code", () => {
        for (const r of registered) {
            for (const key of ["create", "delete", "__provider"]) {
                assert.ok(!String(r.inputs[key] ?? "").includes(SENTINEL), `${r.name}.${key} holds the secret`);
            }
        }
    });
});
