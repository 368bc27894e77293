import assert from "node:assert/strict";
import { test } from "node:test";
import { IMAGE_DIGEST_HINT } from "../../components/rules";
import * as rules from "../src/rules";
import { Props, UNKNOWN, Value } from "../src/values";

const DIGEST = "sha256:" + "0123456789abcdef".repeat(4);

/** A CoopRelease's inputs as components/coop.ts gives them, its release document changed by `change`. */
function coopRelease(change: Record<string, Value> = {}): Props {
    return {
        connection: { host: "127.0.0.1", port: 2222, user: "deploy", privateKey: UNKNOWN, hostKey: "ssh-ed25519 AAAA" },
        agent: "/opt/coop/bin/coop-agent-0123456789ab",
        root: "/opt/coop",
        release: {
            coop: "alpha",
            image: `127.0.0.1:5001/coop-demo@${DIGEST}`,
            port: 8080,
            healthPath: "/health",
            domains: ["alpha.localhost"],
            migrate: ["migrate"],
            network: "coop",
            retain: 2,
            tls: false,
            healthTimeoutSeconds: 10,
            drainTimeoutSeconds: 30,
            ...change,
        },
        env: "COOP_ID=alpha\n",
        configFiles: {},
        deleteData: false,
        timeoutMs: 940000,
    };
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

test("no-ssh-from-anywhere judges a range by its prefix length, as the config parser does", () => {
    // Any address before /0 admits every address of its family; written as the firewall has it.
    const anywhere = ["1.2.3.4/0", "2001:db8::/0", "::0/0", "10.0.0.0/0", " 0.0.0.0/0 ", "FFFF::1/0"];
    for (const a of anywhere) {
        assert.deepEqual(
            rules.sshFromAnywhere({ inboundRules: [{ protocol: "tcp", portRange: "22", sourceAddresses: ["203.0.113.7/32", a] }] }),
            [`inboundRules[0].sourceAddresses: SSH (22) open to ${a}`],
            a,
        );
    }
    // A range no wider than an IPv4 /8 or an IPv6 /16 is one network; a bare address is one host; not a range at all is not "anywhere".
    const ranges = ["10.0.0.0/8", "2001:db8::/32", "2001::/16", "1.2.3.4", "0.0.0.0", "::", "0.0.0.0/00", "anywhere", ""];
    for (const a of ranges) {
        assert.deepEqual(rules.sshFromAnywhere({ inboundRules: [{ protocol: "tcp", portRange: "22", sourceAddresses: [a] }] }), [], a);
    }
    // Unknown at preview (an address of a resource not yet created) is not a violation by itself.
    assert.deepEqual(rules.sshFromAnywhere({ inboundRules: [{ protocol: "tcp", portRange: "22", sourceAddresses: [UNKNOWN, "192.0.2.0/24"] }] }), []);
    assert.deepEqual(rules.sshFromAnywhere({ inboundRules: [{ protocol: "tcp", portRange: "22", sourceAddresses: UNKNOWN }] }), []);
});

test("no-ssh-from-anywhere judges the union of the ranges and refuses one wider than a network (issue 25)", () => {
    const ssh = (...sourceAddresses: string[][]) => ({ inboundRules: sourceAddresses.map((s) => ({ protocol: "tcp", portRange: "22", sourceAddresses: s })) });
    // Wider than an IPv4 /8 or an IPv6 /16: refused by index, each on its own.
    assert.deepEqual(rules.sshFromAnywhere(ssh(["0.0.0.0/1", "128.0.0.0/1"])), [
        "inboundRules[0].sourceAddresses[0]: SSH (22) open to 0.0.0.0/1, which is wider than an IPv4 /8, wider than any one network of operators or CI runners",
        "inboundRules[0].sourceAddresses[1]: SSH (22) open to 128.0.0.0/1, which is wider than an IPv4 /8, wider than any one network of operators or CI runners",
    ]);
    assert.equal(rules.sshFromAnywhere(ssh(["::/1"])).length, 1);
    assert.equal(rules.sshFromAnywhere(ssh(["2000::/3"])).length, 1);
    assert.equal(rules.sshFromAnywhere(ssh(["::ffff:0:0/95"])).length, 1, "an IPv4-mapped range stands for IPv4");
    // Ranges narrow enough each, that add up to all of IPv4 or all of global unicast IPv6, even across rules.
    const all4 = Array.from({ length: 256 }, (_, i) => `${i}.0.0.0/8`);
    assert.deepEqual(rules.sshFromAnywhere(ssh(all4.slice(0, 100), all4.slice(100))), [`inboundRules: SSH open to every IPv4 address (0.0.0.0/0) by ${all4.join(", ")} together`]);
    const global6 = Array.from({ length: 8192 }, (_, i) => `${(0x2000 + i).toString(16)}::/16`);
    assert.deepEqual(rules.sshFromAnywhere(ssh(global6)), [`inboundRules: SSH open to every global unicast IPv6 address (2000::/3) by ${global6.join(", ")} together`]);
    // One /8 missing, or another port: no violation.
    assert.deepEqual(rules.sshFromAnywhere(ssh(all4.slice(1))), []);
    assert.deepEqual(rules.sshFromAnywhere({ inboundRules: [{ protocol: "tcp", portRange: "80", sourceAddresses: ["0.0.0.0/1", "128.0.0.0/1"] }] }), []);
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

test("coop-image-pinned-by-digest reads release.image with the shared rule", () => {
    const notPinned = (v: string) => `release.image: ${v} is not pinned by digest (${IMAGE_DIGEST_HINT})`;
    assert.deepEqual(rules.coopImagePinned(coopRelease({ image: "127.0.0.1:5001/coop-demo:v1" })), [notPinned('"127.0.0.1:5001/coop-demo:v1"')]);
    assert.deepEqual(rules.coopImagePinned(coopRelease({ image: "ghcr.io/org/app@sha256:abc" })), [notPinned('"ghcr.io/org/app@sha256:abc"')]);
    // Upper-case hex, or an upper-case repository path: components/rules.ts refuses both, and so does the pack.
    assert.deepEqual(rules.coopImagePinned(coopRelease({ image: `ghcr.io/org/app@${DIGEST.toUpperCase().replace("SHA256", "sha256")}` })).length, 1);
    assert.deepEqual(rules.coopImagePinned(coopRelease({ image: `ghcr.io/Org/app@${DIGEST}` })).length, 1);
    assert.deepEqual(rules.coopImagePinned(coopRelease({ image: undefined })), [notPinned("unset")]);
    assert.deepEqual(rules.coopImagePinned(coopRelease({ image: 7 })), [notPinned("7")]);
    assert.deepEqual(rules.coopImagePinned(coopRelease()), []);
    assert.deepEqual(rules.coopImagePinned(coopRelease({ image: `ghcr.io/org/app:v1@${DIGEST}` })), []);
    assert.deepEqual(rules.coopImagePinned(coopRelease({ image: `Registry.Example:5000/org/app@${DIGEST}` })), []);
    // Not known yet (an image built in the same update), or the whole document not known: nothing to check.
    assert.deepEqual(rules.coopImagePinned(coopRelease({ image: UNKNOWN })), []);
    assert.deepEqual(rules.coopImagePinned({ ...coopRelease(), release: UNKNOWN }), []);
    // A CoopRelease without a release document cannot be checked: said, not passed.
    assert.deepEqual(rules.coopImagePinned({ ...coopRelease(), release: undefined }), [
        "release: unset, not a release document: release.image cannot be checked (a CoopRelease deploys its release input)",
    ]);
    // A command line is not read back (DESIGN.md): only the release document decides.
    assert.deepEqual(rules.coopImagePinned({ ...coopRelease(), create: "/opt/coop/bin/coopctl deploy alpha --image x:v1" }), []);
});

test("coop-health-check reads release.healthPath", () => {
    const none = (v: string) => `release.healthPath: no health path (${v}); the proxy must check the new release before switching (set an absolute path such as /health)`;
    assert.deepEqual(rules.coopHealthCheck(coopRelease({ healthPath: undefined })), [none("unset")]);
    assert.deepEqual(rules.coopHealthCheck(coopRelease({ healthPath: "" })), [none('""')]);
    assert.deepEqual(rules.coopHealthCheck(coopRelease({ healthPath: null })), [none("null")]);
    assert.deepEqual(rules.coopHealthCheck(coopRelease({ healthPath: "health" })), ['release.healthPath: "health" is not an absolute path (starts with /)']);
    assert.deepEqual(rules.coopHealthCheck(coopRelease({ healthPath: "http://x/health" })), ['release.healthPath: "http://x/health" is not an absolute path (starts with /)']);
    assert.deepEqual(rules.coopHealthCheck(coopRelease()), []);
    assert.deepEqual(rules.coopHealthCheck(coopRelease({ healthPath: "/up?full=1" })), []);
    assert.deepEqual(rules.coopHealthCheck(coopRelease({ healthPath: UNKNOWN })), []);
    assert.deepEqual(rules.coopHealthCheck({ ...coopRelease(), release: UNKNOWN }), []);
    assert.deepEqual(rules.coopHealthCheck({ ...coopRelease(), release: "x" }), [
        'release: "x", not a release document: release.healthPath cannot be checked (a CoopRelease deploys its release input)',
    ]);
});

test("coop-release-retention reads release.retain", () => {
    assert.deepEqual(rules.coopReleaseRetention(coopRelease({ retain: 0 })), ["release.retain: 0 keeps no previous release (needs >= 1 for rollback)"]);
    assert.deepEqual(rules.coopReleaseRetention(coopRelease({ retain: -1 })), ["release.retain: -1 keeps no previous release (needs >= 1 for rollback)"]);
    assert.deepEqual(rules.coopReleaseRetention(coopRelease({ retain: undefined })), [
        "release.retain: unset is not a whole number of previous releases (keep at least 1 for rollback)",
    ]);
    assert.deepEqual(rules.coopReleaseRetention(coopRelease({ retain: "2" })), ['release.retain: "2" is not a whole number of previous releases (keep at least 1 for rollback)']);
    assert.deepEqual(rules.coopReleaseRetention(coopRelease({ retain: 1.5 })), ["release.retain: 1.5 is not a whole number of previous releases (keep at least 1 for rollback)"]);
    assert.deepEqual(rules.coopReleaseRetention(coopRelease({ retain: 1 })), []);
    assert.deepEqual(rules.coopReleaseRetention(coopRelease({ retain: 2 })), []);
    assert.deepEqual(rules.coopReleaseRetention(coopRelease({ retain: UNKNOWN })), []);
    assert.deepEqual(rules.coopReleaseRetention({ ...coopRelease(), release: UNKNOWN }), []);
});

test("the co-op rules read nothing but the release: the secret inputs may be unknown or anything", () => {
    const release = coopRelease();
    const unknownSecrets: Props = { ...release, connection: UNKNOWN, env: UNKNOWN, agent: UNKNOWN };
    for (const props of [release, unknownSecrets]) {
        assert.deepEqual([...rules.coopImagePinned(props), ...rules.coopHealthCheck(props), ...rules.coopReleaseRetention(props)], []);
    }
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
    assert.deepEqual(rules.plaintextSecrets(props, ["connection.privateKey", "env", "triggers[1]", "dbPassword", "apiToken", '["client-secret"]', "secretAccessKey"]), []);
    assert.deepEqual(rules.plaintextSecrets({ connection: { user: "deploy" }, create: "coop-agent deploy", url: "https://example.org/a@b" }, []), []);
    // A CoopRelease: its release document holds nothing secret; connection and env are secrets.
    assert.deepEqual(rules.plaintextSecrets({ ...coopRelease(), env: "SECRET_KEY=abc\nDATABASE_URL=postgres://u:p@h/db\n" }, ["connection", "env"]), []);
    assert.deepEqual(rules.plaintextSecrets({ ...coopRelease(), env: "DATABASE_URL=postgres://u:p@h/db\n" }, ["connection"]), [
        "env: a password in a URL (scheme://user:password@) in plaintext; pass it as a Pulumi secret",
    ]);
});

test("isSecretKeyName", () => {
    for (const k of [
        "password",
        "dbPassword",
        "db_password",
        "PASSWORD",
        "secret",
        "clientSecret",
        "token",
        "apiToken",
        "privateKey",
        "private_key",
        "apiKey",
        "secretAccessKey",
        "passphrase",
    ]) {
        assert.equal(rules.isSecretKeyName(k), true, k);
    }
    for (const k of ["secretEnv", "generatedSecrets", "tokenUrl", "hostKey", "publicKey", "passwordPolicy", "key", "sshKeys"]) {
        assert.equal(rules.isSecretKeyName(k), false, k);
    }
});
