// Each committed cloud stack file run through the whole program with Pulumi's engine mocked:
// resource counts by type, and the security invariants asserted on the registered inputs.
// Each run is its own process (the program is a module and runs once per process).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { deployKey, type MockRun, type Registered } from "../mockProgram";
import { ROOT, run } from "../support";

function mockRun(stackFile: string, ...args: string[]): MockRun {
    const r = run(process.execPath, [path.join(ROOT, "build", "test", "mockProgram.js"), stackFile, ...args]);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as MockRun;
}

const short = (type: string): string => type.split(/[:/]/).at(-1)!;

function counts(resources: Registered[]): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of resources.filter((x) => x.type.startsWith("digitalocean:"))) {
        out[short(r.type)] = (out[short(r.type)] ?? 0) + 1;
    }
    return out;
}

const of = (run: MockRun, type: string): Registered[] =>
    run.resources.filter((r) => short(r.type) === type && (r.type.startsWith("digitalocean:") || !type.startsWith("Database")));
/** The plain value of an input the program made secret (mocks see the secret envelope). */
const plain = (v: unknown): any => (v && typeof v === "object" && "value" in (v as object) ? (v as { value: unknown }).value : v);
const isSecret = (v: unknown): boolean => typeof v === "object" && v !== null && "4dabf18193072939515e22adb298388d" in v;

// Shared by every stack: one VPC, tag, firewall and project; a Postgres and a Valkey cluster,
// each behind its own database firewall; a database, user and pool per co-op (two co-ops).
const COMMON = {
    Vpc: 1,
    Tag: 1,
    Firewall: 1,
    Project: 1,
    DatabaseCluster: 2,
    DatabaseFirewall: 2,
    DatabaseValkeyConfig: 1,
    DatabaseDb: 2,
    DatabaseUser: 2,
    DatabaseConnectionPool: 2,
    // CPU, memory and disk of the droplets (by their tag) and of the clusters.
    MonitorAlert: 6,
};
const EXPECTED: Record<string, Record<string, number>> = {
    // An uptime check and its alert per co-op domain.
    dev: { ...COMMON, Droplet: 1, ReservedIp: 1, ReservedIpAssignment: 1, Domain: 1, DnsRecord: 1, UptimeCheck: 2, UptimeAlert: 2 },
    uat: { ...COMMON, Droplet: 2, LoadBalancer: 1, Certificate: 1, Domain: 2, DnsRecord: 3, UptimeCheck: 3, UptimeAlert: 3 },
    prod: { ...COMMON, Droplet: 2, LoadBalancer: 1, Certificate: 1, Domain: 2, DnsRecord: 3, UptimeCheck: 3, UptimeAlert: 3 },
};
const sorted = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));

for (const stack of ["dev", "uat", "prod"] as const) {
    describe(`Pulumi.${stack}.yaml under mocks`, () => {
        const r = mockRun(path.join(ROOT, `Pulumi.${stack}.yaml`));
        const strict = stack !== "dev";

        it("runs, and registers the expected resources by type, no name twice", () => {
            assert.equal(r.error, undefined);
            assert.deepEqual(r.duplicates, []);
            assert.deepEqual(sorted(counts(r.resources)), sorted(EXPECTED[stack]));
        });

        it("opens SSH only to the allowlist, web ports to the load balancer when there is one, and allows outbound", () => {
            const [fw] = of(r, "Firewall");
            const rules = fw.inputs.inboundRules as Array<Record<string, any>>;
            const ssh = rules.filter((x) => x.portRange === "22");
            assert.equal(ssh.length, 1);
            for (const cidr of ssh[0].sourceAddresses) assert.ok(!["0.0.0.0/0", "::/0"].includes(cidr), cidr);
            for (const port of ["80", "443"]) {
                const web = rules.find((x) => x.portRange === port)!;
                if (strict) {
                    assert.deepEqual(web.sourceLoadBalancerUids, [`${stack}-edge-lb-id`]);
                    assert.equal(web.sourceAddresses, undefined);
                } else {
                    assert.deepEqual(web.sourceAddresses, ["0.0.0.0/0", "::/0"]);
                }
            }
            assert.deepEqual((fw.inputs.outboundRules as Array<{ protocol: string }>).map((x) => x.protocol).sort(), ["icmp", "tcp", "udp"]);
            assert.deepEqual(fw.inputs.tags, [`coop-${stack}-app`]);
        });

        it("runs droplets in the VPC with monitoring, a secret hardened cloud-init, and backups in prod", () => {
            for (const d of of(r, "Droplet")) {
                assert.equal(d.inputs.vpcUuid, `${stack}-network-vpc-id`);
                assert.equal(d.inputs.monitoring, true);
                assert.equal(d.inputs.image, "ubuntu-24-04-x64");
                assert.ok(isSecret(d.inputs.userData), "userData carries the host's private key: a secret");
                const ud = plain(d.inputs.userData) as string;
                assert.match(ud, /PasswordAuthentication no\n\s+KbdInteractiveAuthentication no\n\s+PermitRootLogin no/);
                assert.doesNotMatch(ud, /sha256:|coop-app/, "no release detail in cloud-init: a change would replace the droplet");
                assert.equal(d.inputs.backups, stack === "prod");
                if (stack === "prod") assert.deepEqual(d.inputs.backupPolicy, { plan: "daily", hour: 4 }, "a daily plan has no weekday");
            }
        });

        it("keeps Postgres and Valkey in the VPC, each behind a firewall that admits only the app hosts' tag", () => {
            const clusters = of(r, "DatabaseCluster");
            assert.deepEqual(clusters.map((c) => c.inputs.engine).sort(), ["pg", "valkey"]);
            for (const c of clusters) {
                assert.equal(c.inputs.privateNetworkUuid, `${stack}-network-vpc-id`);
                assert.equal(c.inputs.region, "ams3");
                const fw = of(r, "DatabaseFirewall").filter((f) => f.inputs.clusterId === `${c.name}-id`);
                assert.equal(fw.length, 1, `${c.name} has a firewall`);
                assert.deepEqual(fw[0].inputs.rules, [{ type: "tag", value: `coop-${stack}-app` }]);
            }
            assert.equal(clusters.find((c) => c.inputs.engine === "pg")!.inputs.nodeCount, strict ? 2 : 1);
            assert.equal(of(r, "DatabaseValkeyConfig")[0].inputs.valkeyMaxmemoryPolicy, "allkeys-lru", "the provider's spelling");
        });

        it("gives each co-op its own database, user and pool, whose URL reaches only that co-op, as a secret", () => {
            assert.deepEqual(
                of(r, "DatabaseDb")
                    .map((d) => d.inputs.name)
                    .sort(),
                stack === "dev" ? ["coop_alpha", "coop_beta"] : ["coop_alpha", "coop_riverside"],
            );
            const releases = of(r, "CoopRelease");
            assert.ok(releases.length >= 2);
            for (const f of releases) {
                assert.ok(isSecret(f.inputs.env), `${f.name}'s env is a secret`);
                const text = plain(f.inputs.env) as string;
                const id = /^COOP_ID=(.*)$/m.exec(text)![1];
                assert.match(text, new RegExp(`^DATABASE_URL=postgresql://coop_${id}:[^@]+@private-pool[^/]+/coop_${id}$`, "m"));
                assert.match(text, /^REDIS_URL=valkey:\/\//m);
            }
        });

        it("points every co-op domain at the load balancer or the host's reserved IP", () => {
            const records = of(r, "DnsRecord");
            assert.ok(records.every((x) => x.inputs.type === "A" && x.inputs.value === (strict ? "192.0.2.251" : "192.0.2.250")));
            if (strict) {
                const [lb] = of(r, "LoadBalancer").filter((x) => x.type.startsWith("digitalocean:"));
                assert.equal(lb.inputs.redirectHttpToHttps, true);
                assert.equal(lb.inputs.vpcUuid, `${stack}-network-vpc-id`);
                const [cert] = of(r, "Certificate");
                assert.match(cert.inputs.name as string, new RegExp(`^coop-${stack}-[0-9a-f]{8}$`), "named after its domains: a new set gets a new name");
                assert.deepEqual((lb.inputs.forwardingRules as unknown[])[0], {
                    entryPort: 443,
                    entryProtocol: "https",
                    targetPort: 80,
                    targetProtocol: "http",
                    certificateName: cert.inputs.name,
                });
                assert.deepEqual(lb.inputs.healthcheck, {
                    port: 80,
                    protocol: "tcp",
                    checkIntervalSeconds: 5,
                    responseTimeoutSeconds: 3,
                    healthyThreshold: 2,
                    unhealthyThreshold: 3,
                });
                assert.equal(cert.inputs.type, "lets_encrypt");
            }
        });

        it("hands the application layer each droplet with its pinned host key, after cloud-init finishes", () => {
            const boots = r.resources.filter((x) => x.name.endsWith("/boot"));
            assert.equal(boots.length, EXPECTED[stack].Droplet);
            for (const b of boots) {
                assert.equal(b.inputs.create, "cloud-init status --wait");
                const conn = plain(b.inputs.connection) as { host: string; hostKey: string; user: string; port: number };
                assert.match(conn.host, /^192\.0\.2\.\d+$/);
                assert.match(conn.hostKey, new RegExp(`^ssh-ed25519 \\S+ ${b.name.replace(/\/boot$/, "")}$`));
                assert.deepEqual([conn.user, conn.port], ["deploy", 22]);
            }
        });

        it("deploys each co-op one host after the other", () => {
            const releases = of(r, "CoopRelease").filter((x) => x.name.startsWith("alpha/"));
            assert.deepEqual(
                releases.map((x) => [x.name, x.dependsOn]),
                releases.map((x, i) => [x.name, [x.name.split("/")[1], ...(i === 0 ? [] : [releases[i - 1].name])]]),
            );
            assert.equal(releases.length, EXPECTED[stack].Droplet);
        });

        it("groups the droplets, clusters, load balancer and zones in the environment's project", () => {
            const [p] = of(r, "Project");
            assert.equal(p.inputs.environment, { dev: "Development", uat: "Staging", prod: "Production" }[stack]);
            const urns = p.inputs.resources as string[];
            assert.equal(urns.filter((u) => u.startsWith("do:droplet:")).length, EXPECTED[stack].Droplet);
            assert.equal(urns.filter((u) => u.startsWith("do:dbaas:")).length, 2);
            assert.equal(urns.filter((u) => u.startsWith("do:loadbalancer:")).length, strict ? 1 : 0);
        });

        it(`${stack === "prod" ? "protects" : "does not protect"} the stateful resources`, () => {
            const stateful = r.resources.filter((x) => /DatabaseCluster|DatabaseDb|DatabaseUser|Droplet$|Domain$|SshHostKey/.test(x.type) && !x.type.startsWith("coop:"));
            assert.ok(stateful.length >= 8);
            for (const x of stateful) assert.equal(x.protect, stack === "prod", x.name);
        });
    });
}

describe("a bad stack file", () => {
    it("fails before any resource is registered, with every error by path", () => {
        const dir = mkdtempSync(path.join(tmpdir(), "coop-badstack-"));
        try {
            const file = path.join(dir, "Pulumi.prod.yaml");
            writeFileSync(
                file,
                `config:
  coop:environment: prod
  coop:proxy: { image: "ghcr.io/x/proxy@sha256:${"a".repeat(64)}" }
  coop:agent: "ghcr.io/x/agent@sha256:${"c".repeat(64)}"
  coop:digitalocean:
    region: ams3
    vpcIpRange: 10.1.0.0/20
    sshAllowlist: [0.0.0.0/0]
    deployPublicKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKhSIrBDJO3FZ6GraOLKddfv/BRbJpD+ATtojKA5puLX
    droplets: { count: 0, size: s-1vcpu-2gb }
    database: { size: db-s-1vcpu-1gb, region: nyc3 }
    cache: { size: db-s-1vcpu-1gb }
    dnsZones: [coophost.example]
  coop:coops:
    - { id: a, domains: [a.coophost.example], image: "ghcr.io/x/app@sha256:${"b".repeat(64)}" }
    - { id: b, domains: [a.coophost.example], image: "ghcr.io/x/app:latest", colour: red }
`,
            );
            const res = mockRun(file);
            assert.deepEqual(
                res.resources.filter((x) => x.type !== "pulumi:pulumi:Stack"),
                [],
            );
            assert.deepEqual(
                res.error?.split("\n").map((l) => l.trim()),
                [
                    "invalid stack configuration:",
                    'coop:digitalocean.sshAllowlist[0]: "0.0.0.0/0" opens SSH to the whole internet, which prod refuses; list the operators\' addresses',
                    "coop:digitalocean.droplets.count: must be an integer from 1 to 20",
                    'coop:digitalocean.database.region: "nyc3" differs from the VPC\'s region "ams3"; a cluster joins a VPC only in its own region',
                    'coop:coops[1].domains[0]: "a.coophost.example" is already served by coop "a"',
                    "coop:coops[1].colour: unknown key (known: id, domains, image, port, healthPath, uptimePath, healthTimeout, migrate, env, secretEnv, generatedSecrets, databaseEnvName, configFiles, memory, cpus, retain, rollbackWindow, deleteDataOnRemove, dataVolume)",
                    "coop:coops[1].image: must be pinned by digest (REPOSITORY@sha256:<64 hex digits>): a tag names no fixed release, and the host agent refuses it",
                ],
            );
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });
});

describe("Pulumi.yaml's declarations reach every stack", () => {
    // The CLI hands a declared default to the program on every stack. A default that some stack's
    // program refuses must fail here, not first in a real preview (it did: `hosts: {default: []}`
    // made every cloud stack fail with "coop:hosts: must not be set on dev").
    it("a default the program refuses on a cloud stack fails the stack under mocks", () => {
        const dir = mkdtempSync(path.join(tmpdir(), "coop-project-"));
        try {
            const project = readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8");
            writeFileSync(path.join(dir, "Pulumi.yaml"), `${project}  hosts:\n    description: the local stack's hosts\n    default: []\n`);
            const res = mockRun(path.join(ROOT, "Pulumi.dev.yaml"), "--project", dir);
            assert.match(res.error ?? "", /coop:hosts: must not be set on dev/);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });

    it("a declared key that a stack does not set stops the stack as the CLI does", () => {
        const dir = mkdtempSync(path.join(tmpdir(), "coop-project-"));
        try {
            const project = readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8");
            writeFileSync(path.join(dir, "Pulumi.yaml"), `${project}  siteOwner:\n    type: string\n`);
            const res = mockRun(path.join(ROOT, "Pulumi.prod.yaml"), "--project", dir);
            assert.equal(res.error, "the CLI refuses the stack: Stack 'prod' is missing configuration value 'siteOwner'");
            assert.deepEqual(res.resources, []);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });
});

describe("names that cannot collide", () => {
    // Each case once made two resources of one type and name (a duplicate URN at the engine).
    const key = deployKey();
    const IMAGE = `127.0.0.1:5001/coop-demo@sha256:${"a".repeat(64)}`;
    function runWith(stack: string, config: Record<string, unknown>): MockRun {
        const dir = mkdtempSync(path.join(tmpdir(), "coop-names-"));
        try {
            const yaml = require("js-yaml") as { dump(v: unknown): string };
            const file = path.join(dir, `Pulumi.${stack}.yaml`);
            writeFileSync(file, yaml.dump({ config: { ...config, "coop:sshPrivateKey": { secure: "v1:x" } } }));
            writeFileSync(path.join(dir, "plaintext.json"), JSON.stringify({ "coop:sshPrivateKey": key.private }));
            return mockRun(file, "--as-is", "--plaintext", path.join(dir, "plaintext.json"));
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    }
    const local = (coops: unknown[], hosts = ["local-1"]) =>
        runWith("local", {
            "coop:environment": "local",
            "coop:hosts": hosts.map((name, i) => ({ name, address: "127.0.0.1", port: 2222 + i, hostKey: key.public })),
            "coop:proxy": { image: `127.0.0.1:5001/kamal-proxy@sha256:${"b".repeat(64)}`, bindAddress: "127.0.0.1", httpPort: 8080, httpsPort: 8443 },
            "coop:agent": `127.0.0.1:5001/coop-agent@sha256:${"c".repeat(64)}`,
            "coop:coops": coops,
        });

    it("co-ops a and a-b on hosts b-c and c", () => {
        const r = local(
            [
                { id: "a", domains: ["a.localhost"], image: IMAGE },
                { id: "a-b", domains: ["ab.localhost"], image: IMAGE },
            ],
            ["b-c", "c"],
        );
        assert.equal(r.error, undefined);
        assert.deepEqual(r.duplicates, []);
        assert.equal(r.resources.filter((x) => x.type.endsWith(":CoopRelease")).length, 4);
    });

    it("generated secrets SECRET_KEY and secret_key, and config files named like the resources' parts", () => {
        const r = local([
            { id: "a", domains: ["a.localhost"], image: IMAGE, generatedSecrets: ["SECRET_KEY", "secret_key"], configFiles: { env: "x", up: "y", "local-1": "z", agent: "w" } },
        ]);
        assert.equal(r.error, undefined);
        assert.deepEqual(r.duplicates, []);
        assert.deepEqual(
            r.resources
                .filter((x) => x.type.endsWith(":RandomSecret"))
                .map((x) => x.name)
                .sort(),
            ["a/secret/SECRET_KEY", "a/secret/secret_key"],
        );
    });

    it("zones a-b.example and a.b.example, with domains a-b.ZONE and a.b.ZONE", () => {
        const committed = (require("js-yaml") as { load(t: string): any }).load(readFileSync(path.join(ROOT, "Pulumi.prod.yaml"), "utf8")).config;
        const d = { ...committed["coop:digitalocean"], dnsZones: ["a-b.example", "a.b.example"], deployPublicKey: key.public };
        const r = runWith("prod", {
            ...committed,
            "coop:digitalocean": d,
            "coop:coops": [
                { id: "one", domains: ["a-b.a-b.example", "a.b.a-b.example"], image: IMAGE },
                { id: "two", domains: ["a-b.a.b.example", "a.b.a.b.example", "a.b.example"], image: IMAGE },
            ],
        });
        assert.equal(r.error, undefined);
        assert.deepEqual(r.duplicates, []);
        assert.deepEqual(
            r.resources
                .filter((x) => x.type.endsWith(":Domain"))
                .map((x) => x.name)
                .sort(),
            ["prod-dns/a-b.example", "prod-dns/a.b.example"],
        );
        assert.equal(r.resources.filter((x) => x.type.endsWith(":DnsRecord")).length, 5);
    });
});

describe("uptime checks and alerts on the cloud stacks", () => {
    const r = mockRun(path.join(ROOT, "Pulumi.prod.yaml"));
    it("checks every co-op domain's uptime path (not its health path, which the proxy answers itself while held) over HTTPS and alerts when it is down everywhere", () => {
        const checks = of(r, "UptimeCheck");
        assert.deepEqual(checks.map((c) => c.inputs.target).sort(), [
            "https://alpha.coophost.example/",
            "https://riverside-housing.example/",
            "https://www.riverside-housing.example/",
        ]);
        for (const alert of of(r, "UptimeAlert")) {
            assert.equal(alert.inputs.type, "down_global");
            assert.deepEqual(alert.inputs.notifications, [{ emails: ["ops@coophost.example"], slacks: [] }]);
        }
    });
    it("alerts on the droplets by their tag and on both clusters", () => {
        const alerts = of(r, "MonitorAlert");
        const droplets = alerts.filter((a) => String(a.inputs.type).startsWith("v1/insights/droplet/"));
        assert.deepEqual(
            droplets.map((a) => a.inputs.tags),
            [["coop-prod-app"], ["coop-prod-app"], ["coop-prod-app"]],
        );
        const clusters = alerts.filter((a) => String(a.inputs.type).startsWith("v1/dbaas/"));
        assert.deepEqual(
            clusters.map((a) => a.inputs.entities),
            Array(3).fill(["prod-db-cluster-id", "prod-cache-cluster-id"]),
        );
        for (const a of alerts) assert.deepEqual([a.inputs.compare, a.inputs.window], ["GreaterThan", "5m"]);
    });
});

describe("hosts added and removed through droplets.count", () => {
    const three = (() => {
        const dir = mkdtempSync(path.join(tmpdir(), "coop-count-"));
        try {
            const yaml = require("js-yaml") as { load(t: string): any; dump(v: unknown): string };
            const doc = yaml.load(readFileSync(path.join(ROOT, "Pulumi.prod.yaml"), "utf8"));
            doc.config["coop:digitalocean"].droplets.count = 3;
            const file = path.join(dir, "Pulumi.prod.yaml");
            writeFileSync(file, yaml.dump(doc));
            return mockRun(file);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    })();

    it("a third droplet is bootstrapped and gets every co-op, one host after the other", () => {
        assert.equal(three.error, undefined);
        assert.equal(of(three, "Droplet").length, 3);
        assert.deepEqual(
            of(three, "CoopRelease")
                .map((x) => x.name)
                .sort(),
            ["alpha/prod-app-1", "alpha/prod-app-2", "alpha/prod-app-3", "riverside/prod-app-1", "riverside/prod-app-2", "riverside/prod-app-3"],
        );
        assert.deepEqual(of(three, "CoopRelease").find((x) => x.name === "alpha/prod-app-3")!.dependsOn, ["prod-app-3", "alpha/prod-app-2"]);
    });

    it("the load balancer lists droplets by id, each once every co-op is released on it (not by tag, which would send traffic to a bare host)", () => {
        const [lb] = of(three, "LoadBalancer").filter((x) => x.type.startsWith("digitalocean:"));
        assert.equal(lb.inputs.dropletTag, undefined);
        assert.equal((lb.inputs.dropletIds as number[]).length, 3);
        assert.deepEqual(
            [...lb.dependsOn].sort(),
            of(three, "CoopRelease")
                .map((x) => x.name)
                .sort(),
        );
    });
});

describe("database backups on a cloud stack (coop:backups)", () => {
    const PGTOOLS = `registry.digitalocean.com/coop/coop-pgtools@sha256:${"c".repeat(64)}`;
    const withBackups = (() => {
        const dir = mkdtempSync(path.join(tmpdir(), "coop-backups-"));
        try {
            const yaml = require("js-yaml") as { load(t: string): any; dump(v: unknown): string };
            const doc = yaml.load(readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8"));
            doc.config["coop:backups"] = { keep: 5, image: PGTOOLS };
            doc.config["coop:digitalocean"].droplets.count = 2;
            doc.config["coop:spacesAccessKeyId"] = { secure: "v1:spaces-id" };
            doc.config["coop:spacesSecretAccessKey"] = { secure: "v1:spaces-secret" };
            const file = path.join(dir, "Pulumi.dev.yaml");
            writeFileSync(file, yaml.dump(doc));
            return mockRun(file);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    })();

    it("makes a private Spaces bucket in the droplets' region", () => {
        assert.equal(withBackups.error, undefined);
        const buckets = of(withBackups, "SpacesBucket");
        assert.equal(buckets.length, 1);
        assert.deepEqual([buckets[0].name, buckets[0].inputs.name, buckets[0].inputs.region, buckets[0].inputs.acl], ["dev-backups", "coop-dev-backups", "ams3", "private"]);
        assert.equal(of(mockRun(path.join(ROOT, "Pulumi.dev.yaml")), "SpacesBucket").length, 0, "no bucket without coop:backups");
    });

    it("hands each co-op's release on the first host its backup section as a secret: the co-op's direct database URL, the bucket, the keys; the release document stays free of it", () => {
        const releases = of(withBackups, "CoopRelease");
        const coops = new Set(releases.map((r) => r.name.split("/")[0]));
        const first = releases.filter((r) => r.inputs.backup !== undefined);
        // The first host's migrations run first against the shared database: a dump on the second would already hold them.
        assert.deepEqual(first.map((r) => r.name).sort(), [...coops].map((c) => `${c}/dev-app-1`).sort());
        assert.equal(releases.length, 2 * coops.size, "every co-op on both droplets");
        for (const r of first) {
            assert.ok(isSecret(r.inputs.backup), `${r.name}: the backup section is a secret`);
            const b = plain(r.inputs.backup);
            assert.equal(b.image, PGTOOLS);
            assert.equal(b.keep, 5);
            assert.deepEqual(b.store, {
                endpoint: "https://ams3.digitaloceanspaces.com",
                region: "ams3",
                bucket: "coop-dev-backups",
                prefix: "dev",
                accessKeyId: "mock-secret-of-coop:spacesAccessKeyId",
                secretAccessKey: "mock-secret-of-coop:spacesSecretAccessKey",
            });
            const id = (plain(r.inputs.release) as { coop: string }).coop.replace(/-/g, "_");
            assert.match(b.database, new RegExp(`^postgresql://coop_${id}:[^@]+@[^/]+/coop_${id}\\?sslmode=require$`), "a direct URL, not the pool's");
            assert.equal(JSON.stringify(plain(r.inputs.release)).includes("backup"), false);
        }
    });
});
