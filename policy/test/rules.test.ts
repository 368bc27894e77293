import assert from "node:assert/strict";
import { test } from "node:test";
import * as rules from "../src/rules";
import { Props, UNKNOWN } from "../src/values";

const DIGEST = "sha256:" + "0123456789abcdef".repeat(4);
const TOOL = "/opt/coop/bin/coopctl-0a1b2c3d4e5f";

function deploy(id: string, parts: string): string {
    return `${TOOL} deploy ${id} ${parts} --network coop --health-timeout 10 --drain-timeout 30 --domain ${id}.localhost --migrate migrate`;
}

test("no-ssh-from-anywhere", () => {
    const bad = {
        inboundRules: [
            { protocol: "tcp", portRange: "22", sourceAddresses: ["0.0.0.0/0", "::/0"] },
            { protocol: "tcp", portRange: "80", sourceAddresses: ["0.0.0.0/0"] },
            { protocol: "tcp", portRange: "1-65535", sourceAddresses: ["10.0.0.0/8", "::/0"] },
            { protocol: "tcp", portRange: "all", sourceAddresses: ["0.0.0.0/0"] },
        ],
    };
    assert.deepEqual(rules.sshFromAnywhere(bad), [
        "inboundRules[0].sourceAddresses: SSH (22) open to 0.0.0.0/0, ::/0",
        'inboundRules[2].sourceAddresses: SSH (port range "1-65535" includes 22) open to ::/0',
        'inboundRules[3].sourceAddresses: SSH (port range "all" includes 22) open to 0.0.0.0/0',
    ]);
    const good: Props = {
        inboundRules: [
            { protocol: "tcp", portRange: "22", sourceAddresses: ["203.0.113.7/32"] },
            { protocol: "tcp", portRange: "22", sourceTags: ["bastion"] },
            { protocol: "tcp", portRange: "80-443", sourceAddresses: ["0.0.0.0/0", "::/0"] },
            { protocol: "udp", portRange: "22", sourceAddresses: ["0.0.0.0/0"] },
            { protocol: "icmp", sourceAddresses: ["0.0.0.0/0"] },
            { protocol: "tcp", portRange: UNKNOWN, sourceAddresses: ["0.0.0.0/0"] },
        ],
    };
    assert.deepEqual(rules.sshFromAnywhere(good), []);
    assert.deepEqual(rules.sshFromAnywhere({}), []);
});

test("portRangeIncludes", () => {
    assert.equal(rules.portRangeIncludes("22", 22), true);
    assert.equal(rules.portRangeIncludes("20-30", 22), true);
    assert.equal(rules.portRangeIncludes("23-30", 22), false);
    assert.equal(rules.portRangeIncludes("0", 22), true);
    assert.equal(rules.portRangeIncludes(undefined, 22), true);
    assert.equal(rules.portRangeIncludes("2222", 22), false);
});

test("database-in-vpc", () => {
    assert.deepEqual(rules.databaseInVpc({ engine: "pg", name: "main" }), [
        "privateNetworkUuid: the managed pg cluster is not inside a VPC (set privateNetworkUuid to a VPC's id)",
    ]);
    assert.deepEqual(rules.databaseInVpc({ engine: "valkey", privateNetworkUuid: "" }), [
        "privateNetworkUuid: the managed valkey cluster is not inside a VPC (set privateNetworkUuid to a VPC's id)",
    ]);
    assert.deepEqual(rules.databaseInVpc({ engine: "pg", privateNetworkUuid: "5ab3b2b6-0000-4000-8000-000000000001" }), []);
    // A VPC created in the same update has no id at preview: it will be set.
    assert.deepEqual(rules.databaseInVpc({ engine: "valkey", privateNetworkUuid: UNKNOWN }), []);
});

function res(urn: string, type: string, props: rules.StackResource["props"], clusterIdFrom: string[] = []): rules.StackResource {
    return { urn, name: urn.split("::").pop() ?? urn, type, props, dependencies: clusterIdFrom, propertyDependencies: clusterIdFrom.length ? { clusterId: clusterIdFrom } : {} };
}

test("database-behind-firewall", () => {
    const urn = (t: string, n: string) => `urn:pulumi:prod::coop-infra::${t}::${n}`;
    const pg = res(urn(rules.TYPES.databaseCluster, "pg"), rules.TYPES.databaseCluster, { engine: "pg", privateNetworkUuid: UNKNOWN });
    const cache = res(urn(rules.TYPES.databaseCluster, "cache"), rules.TYPES.databaseCluster, { engine: "valkey", privateNetworkUuid: UNKNOWN });
    const pgFirewall = res(urn(rules.TYPES.databaseFirewall, "pg-fw"), rules.TYPES.databaseFirewall, { clusterId: UNKNOWN }, [pg.urn]);
    // Depends on the cache only through dependsOn, not through clusterId: does not count.
    const stray: rules.StackResource = { ...res(urn(rules.TYPES.databaseFirewall, "stray-fw"), rules.TYPES.databaseFirewall, { clusterId: "other" }), dependencies: [cache.urn] };
    assert.deepEqual(rules.databaseBehindFirewall([pg, cache, pgFirewall, stray]), [
        {
            urn: cache.urn,
            message:
                'clusterId: no digitalocean:index/databaseFirewall:DatabaseFirewall has the managed valkey cluster "cache" as its clusterId ' +
                "(add a DatabaseFirewall with clusterId: <cluster>.id and rules for the app droplets)",
        },
    ]);
    const cacheFirewall = res(urn(rules.TYPES.databaseFirewall, "cache-fw"), rules.TYPES.databaseFirewall, { clusterId: UNKNOWN }, [cache.urn]);
    assert.deepEqual(rules.databaseBehindFirewall([pg, cache, pgFirewall, cacheFirewall]), []);
    // Known ids (resources read from state) match too.
    const known = res(urn(rules.TYPES.databaseCluster, "old"), rules.TYPES.databaseCluster, { id: "c-1", engine: "pg" });
    const knownFw = res(urn(rules.TYPES.databaseFirewall, "old-fw"), rules.TYPES.databaseFirewall, { clusterId: "c-1" });
    assert.deepEqual(rules.databaseBehindFirewall([known, knownFw]), []);
});

test("droplet-monitoring", () => {
    assert.deepEqual(rules.dropletMonitoring({ image: "debian-12-x64" }), ["monitoring: droplet monitoring is unset (set monitoring: true)"]);
    assert.deepEqual(rules.dropletMonitoring({ monitoring: false }), ["monitoring: droplet monitoring is false (set monitoring: true)"]);
    assert.deepEqual(rules.dropletMonitoring({ monitoring: true }), []);
});

test("droplet-backups-in-prod", () => {
    assert.deepEqual(rules.dropletBackups({ backups: false }, "prod"), ["backups: droplet backups are false in prod (set backups: true)"]);
    assert.deepEqual(rules.dropletBackups({}, "prod"), ["backups: droplet backups are unset in prod (set backups: true)"]);
    assert.deepEqual(rules.dropletBackups({ backups: true }, "prod"), []);
    assert.deepEqual(rules.dropletBackups({ backups: false }, "uat"), []);
    assert.deepEqual(rules.dropletBackups({ backups: false }, "dev"), []);
});

test("load-balancer-https-redirect", () => {
    assert.deepEqual(rules.loadBalancerHttpsRedirect({ redirectHttpToHttps: false }), [
        "redirectHttpToHttps: HTTP is not redirected to HTTPS: false (set redirectHttpToHttps: true)",
    ]);
    assert.deepEqual(rules.loadBalancerHttpsRedirect({}), ["redirectHttpToHttps: HTTP is not redirected to HTTPS: unset (set redirectHttpToHttps: true)"]);
    assert.deepEqual(rules.loadBalancerHttpsRedirect({ redirectHttpToHttps: true }), []);
});

test("coop-image-pinned-by-digest", () => {
    assert.deepEqual(rules.coopImagePinned({ create: deploy("alpha", "--image 127.0.0.1:5001/coop-demo:v1 --port 8080 --health-path /health --retain 2") }), [
        "create: coopctl deploy alpha --image 127.0.0.1:5001/coop-demo:v1 is not pinned by digest (REPOSITORY@sha256:<64 hex>)",
    ]);
    assert.deepEqual(rules.coopImagePinned({ create: deploy("alpha", "--image ghcr.io/org/app@sha256:abc --retain 2") }), [
        "create: coopctl deploy alpha --image ghcr.io/org/app@sha256:abc is not pinned by digest (REPOSITORY@sha256:<64 hex>)",
    ]);
    assert.deepEqual(rules.coopImagePinned({ update: deploy("beta", "--port 8080") }), ["update: coopctl deploy beta has no --image"]);
    assert.deepEqual(rules.coopImagePinned({ create: deploy("alpha", `--image 127.0.0.1:5001/coop-demo@${DIGEST} --retain 2`) }), []);
    assert.deepEqual(rules.coopImagePinned({ create: deploy("alpha", `--image ghcr.io/org/app:v1@${DIGEST}`) }), []);
    // Not a deploy, or not known yet: nothing to check.
    assert.deepEqual(rules.coopImagePinned({ create: `${TOOL} prepare alpha` }), []);
    assert.deepEqual(rules.coopImagePinned({ create: UNKNOWN }), []);
});

test("coop-health-check", () => {
    assert.deepEqual(rules.coopHealthCheck({ create: deploy("alpha", `--image x@${DIGEST} --port 8080 --retain 2`) }), [
        "create: coopctl deploy alpha has no --health-path (the proxy must check the new release before switching)",
    ]);
    assert.deepEqual(rules.coopHealthCheck({ create: deploy("alpha", `--image x@${DIGEST} --health-path health`) }), [
        "create: coopctl deploy alpha --health-path health is not an absolute path (starts with /)",
    ]);
    assert.deepEqual(rules.coopHealthCheck({ create: deploy("alpha", `--image x@${DIGEST} --health-path /health`) }), []);
});

test("coop-release-retention", () => {
    assert.deepEqual(rules.coopReleaseRetention({ create: deploy("alpha", `--image x@${DIGEST} --retain 0`) }), [
        "create: coopctl deploy alpha --retain 0 keeps no previous release (needs >= 1 for rollback)",
    ]);
    assert.deepEqual(rules.coopReleaseRetention({ create: deploy("alpha", `--image x@${DIGEST}`) }), [
        "create: coopctl deploy alpha has no --retain (keep at least 1 previous release for rollback)",
    ]);
    assert.deepEqual(rules.coopReleaseRetention({ create: deploy("alpha", `--image x@${DIGEST} --retain two`) }), [
        "create: coopctl deploy alpha --retain two is not a whole number",
    ]);
    assert.deepEqual(rules.coopReleaseRetention({ create: deploy("alpha", `--image x@${DIGEST} --retain 1`) }), []);
    assert.deepEqual(rules.coopReleaseRetention({ create: deploy("alpha", `--image x@${DIGEST} --retain 2`) }), []);
});

test("no-plaintext-secrets", () => {
    const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
    const props: Props = {
        connection: { host: "10.0.0.5", port: 22, user: "deploy", privateKey: key, hostKey: "ssh-ed25519 AAAA" },
        env: { DATABASE_URL: "postgres://coop:hunter2@db.internal:25060/coop?sslmode=require", SITE_NAME: "Alpha" },
        triggers: ["x", "token dop_v1_" + "a1".repeat(32)],
        dbPassword: "hunter2",
        apiToken: "abc",
        "client-secret": "s",
        secretAccessKey: "k",
        emptyPassword: "",
        secretEnv: { DATABASE_URL: "alphaDatabaseUrl" },
        tokenUrl: "https://example.org/token",
        rules: [{ password: UNKNOWN }],
    };
    assert.deepEqual(rules.plaintextSecrets(props, []), [
        "connection.privateKey: a private key block in plaintext; pass it as a Pulumi secret",
        "env.DATABASE_URL: a password in a URL (scheme://user:password@) in plaintext; pass it as a Pulumi secret",
        "triggers[1]: a DigitalOcean token (do?_v1_...) in plaintext; pass it as a Pulumi secret",
        "dbPassword: dbPassword holds a plaintext string; pass it as a Pulumi secret",
        "apiToken: apiToken holds a plaintext string; pass it as a Pulumi secret",
        '["client-secret"]: client-secret holds a plaintext string; pass it as a Pulumi secret',
        "secretAccessKey: secretAccessKey holds a plaintext string; pass it as a Pulumi secret",
    ]);
    // The same values as Pulumi secrets (a secret field, or a secret object around them) are fine.
    assert.deepEqual(
        rules.plaintextSecrets(props, ["connection.privateKey", "env", "triggers[1]", "dbPassword", "apiToken", '["client-secret"]', "secretAccessKey"]),
        [],
    );
    assert.deepEqual(rules.plaintextSecrets({ connection: { user: "deploy" }, create: "coopctl deploy alpha", url: "https://example.org/a@b" }, []), []);
});

test("isSecretKeyName", () => {
    for (const k of ["password", "dbPassword", "db_password", "PASSWORD", "secret", "clientSecret", "token", "apiToken", "privateKey", "private_key", "apiKey", "secretAccessKey", "passphrase"]) {
        assert.equal(rules.isSecretKeyName(k), true, k);
    }
    for (const k of ["secretEnv", "generatedSecrets", "tokenUrl", "hostKey", "publicKey", "passwordPolicy", "key", "sshKeys"]) {
        assert.equal(rules.isSecretKeyName(k), false, k);
    }
});
