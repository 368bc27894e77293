import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, SECRET_PRESENT, decodeRawConfig, parseStackConfig } from "../../components/config";

/** Parses with the deploy key set as a secret, as every stack has it. */
const parse = (raw: Record<string, unknown>) => parseStackConfig(raw, ["sshPrivateKey"]);

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVGOpX7ih5+O7tL+Gvkn0JmyjHewtl2gl30Y5SrMMyi";
const IMAGE = `127.0.0.1:5001/kamal-proxy@sha256:${"a".repeat(64)}`;
const AGENT = `127.0.0.1:5001/coop-agent@sha256:${"9".repeat(64)}`;

function local(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    return {
        environment: "local",
        hosts: [{ name: "local-1", address: "127.0.0.1", port: 2222, hostKey: KEY }],
        proxy: { image: IMAGE, bindAddress: "127.0.0.1", httpPort: 8080, httpsPort: 8443 },
        sshPrivateKey: SECRET_PRESENT,
        agent: AGENT,
        ...overrides,
    };
}

/** A cloud stack's shape (no hosts list; the droplets are its hosts) with one droplet. */
function cloud(environment: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
    const { hosts: _, ...rest } = local({ environment, proxy: { image: IMAGE }, ...overrides });
    return {
        ...rest,
        digitalocean: {
            region: "ams3",
            vpcIpRange: "10.110.0.0/20",
            sshAllowlist: ["203.0.113.10/32"],
            deployPublicKey: KEY,
            droplets: { count: 1, size: "s-1vcpu-2gb" },
            database: { size: "db-s-1vcpu-1gb" },
            cache: { size: "db-s-1vcpu-1gb" },
            dnsZones: ["example.org"],
        },
    };
}

function errorsOf(raw: Record<string, unknown>, secretKeys: string[] = []): string[] {
    try {
        parseStackConfig(raw, ["sshPrivateKey", ...secretKeys]);
    } catch (e) {
        assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
        return e.errors;
    }
    assert.fail("expected the config to be refused");
}

describe("parseStackConfig", () => {
    it("reads a local stack and fills defaults", () => {
        const cfg = parse(local());
        assert.deepEqual(cfg, {
            environment: "local",
            sshUser: "deploy",
            hosts: [{ name: "local-1", address: "127.0.0.1", port: 2222, hostKey: KEY }],
            hostRoot: "/opt/coop",
            network: "coop",
            proxy: { image: IMAGE, bindAddress: "127.0.0.1", httpPort: 8080, httpsPort: 8443, tls: false },
            agent: AGENT,
            coops: [],
            registries: [],
        });
    });

    it("turns TLS on by default outside the local stack", () => {
        assert.equal(parse(cloud("prod")).proxy.tls, true);
    });

    it("names every bad field by its path, all at once", () => {
        const errors = errorsOf(
            local({
                environment: "staging",
                colour: "blue",
                hosts: [
                    { name: "a", address: "127.0.0.1", hostKey: "not a key", extra: 1 },
                    { name: "a", address: "127.0.0.1", port: 70000, hostKey: KEY },
                ],
                proxy: { image: "kamal-proxy:latest", httpPort: 8080, httpsPort: 8080 },
            }),
        );
        assert.deepEqual(errors, [
            "coop:colour: unknown key (known: environment, sshUser, hosts, hostRoot, network, proxy, agent, coops, digitalocean, sshPrivateKey, backups, spacesAccessKeyId, spacesSecretAccessKey, registries, and the keys coops[].secretEnv, the Slack webhook and registries[].passwordKey name)",
            "coop:environment: must be one of local, dev, uat, prod",
            "coop:hosts[0].extra: unknown key (known: name, address, port, hostKey)",
            'coop:hosts[0].hostKey: must be the host\'s OpenSSH public key, such as "ssh-ed25519 AAAA..." (remote commands never trust an unknown host key): type "not" is not one of ssh-ed25519, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521, ssh-rsa',
            'coop:hosts[1].name: duplicates the name of an earlier host ("a")',
            "coop:hosts[1].port: must be an integer from 1 to 65535",
            "coop:proxy.image: must be pinned by digest: REPOSITORY@sha256:<64 hex digits>",
            "coop:proxy.httpsPort: must differ from coop:proxy.httpPort",
        ]);
    });

    it("requires hosts on the local stack and a proxy everywhere", () => {
        assert.deepEqual(errorsOf({ environment: "local", sshPrivateKey: SECRET_PRESENT }), [
            "coop:hosts: is required on the local stack (scripts/local-hosts.sh up writes this machine's hosts to .local/machine.json)",
            "coop:proxy: is required",
            "coop:agent: is required: must be pinned by digest: REPOSITORY@sha256:<64 hex digits> (the host agent's image)",
        ]);
    });

    it("refuses a host root that is not a plain absolute path", () => {
        assert.deepEqual(errorsOf(local({ hostRoot: "opt/coop; rm -rf /" })), ["coop:hostRoot: must be an absolute path of letters, digits, '.', '_', '-' and '/'"]);
    });
});

describe("co-ops in the config", () => {
    const DIGEST = `ghcr.io/org/app@sha256:${"d".repeat(64)}`;
    const coop = (o: Record<string, unknown> = {}) => ({ id: "alpha", domains: ["alpha.example.org"], image: DIGEST, ...o });

    it("fills a co-op's defaults", () => {
        const [c] = parse(local({ coops: [coop()] })).coops;
        assert.deepEqual(c, {
            id: "alpha",
            domains: ["alpha.example.org"],
            image: DIGEST,
            port: 8080,
            healthPath: "/health",
            uptimePath: "/",
            healthTimeout: 60,
            migrate: [],
            env: {},
            secretEnv: {},
            generatedSecrets: [],
            configFiles: {},
            retain: 2,
            rollbackWindow: 900,
            deleteDataOnRemove: false,
            dataVolume: "scratch",
        });
    });

    it("takes a rollback window of 0 to 86400 seconds, and refuses anything else by path", () => {
        assert.equal(parse(local({ coops: [coop({ rollbackWindow: 0 })] })).coops[0].rollbackWindow, 0);
        for (const bad of [-1, 86401, 1.5, "900"]) {
            const errors = errorsOf(local({ coops: [coop({ rollbackWindow: bad })] }));
            assert.equal(errors.length, 1, `${bad}: ${errors.join("; ")}`);
            assert.match(errors[0], /^coop:coops\[0\]\.rollbackWindow: /);
        }
    });

    it("refuses duplicate ids and domains, and names both places", () => {
        const errors = errorsOf(local({ coops: [coop(), coop({ domains: ["b.example.org", "alpha.example.org"] })] }));
        assert.deepEqual(errors, ['coop:coops[1].id: duplicates coop:coops[0].id ("alpha")', 'coop:coops[1].domains[1]: "alpha.example.org" is already served by coop "alpha"']);
    });

    it("takes an image by digest only, on every stack (the host agent refuses a tag)", () => {
        const message = "coop:coops[0].image: must be pinned by digest (REPOSITORY@sha256:<64 hex digits>): a tag names no fixed release, and the host agent refuses it";
        assert.deepEqual(errorsOf(local({ coops: [coop({ image: "ghcr.io/org/app:v1" })] })), [message]);
        assert.deepEqual(errorsOf(cloud("prod", { coops: [coop({ image: "ghcr.io/org/app:v1" })] })), [message]);
        assert.deepEqual(errorsOf(local({ coops: [coop({ image: "ghcr.io/org/app@sha256:abc" })] })), [message]);
    });

    it("requires every secretEnv key to be set, as a secret", () => {
        const raw = local({ coops: [coop({ secretEnv: { DATABASE_URL: "alphaDb", API_KEY: "alphaApi" } })], alphaApi: "plain text" });
        assert.deepEqual(errorsOf(raw, []), [
            "coop:coops[0].secretEnv.DATABASE_URL: coop:alphaDb must be set as a secret (pulumi config set --secret coop:alphaDb ...)",
            "coop:coops[0].secretEnv.API_KEY: coop:alphaApi must be set as a secret (pulumi config set --secret coop:alphaApi ...)",
        ]);
        const ok = parseStackConfig({ ...raw, alphaApi: SECRET_PRESENT, alphaDb: SECRET_PRESENT }, ["sshPrivateKey", "alphaApi", "alphaDb"]);
        assert.deepEqual(ok.coops[0].secretEnv, { DATABASE_URL: "alphaDb", API_KEY: "alphaApi" });
    });

    it("refuses placeholders in uat and prod, not on local", () => {
        const coops = [coop({ env: { SITE_NAME: "CHANGE_ME" }, configFiles: { "coop.yaml": "name: <COOP NAME>\n" } })];
        assert.equal(parse(local({ coops })).coops.length, 1);
        assert.deepEqual(errorsOf(cloud("uat", { coops })), [
            "coop:coops[0].env.SITE_NAME: holds a placeholder value; set the real value before deploying to uat",
            "coop:coops[0].configFiles.coop.yaml: holds a placeholder value; set the real value before deploying to uat",
        ]);
    });

    it("refuses a variable set twice, a multi-line value, a bad file name and a bad limit", () => {
        assert.deepEqual(
            errorsOf(
                local({
                    coops: [
                        coop({
                            env: { SECRET_KEY: "x", MOTD: "a\nb" },
                            generatedSecrets: ["SECRET_KEY"],
                            configFiles: { "../etc/passwd": "x" },
                            memory: "lots",
                        }),
                    ],
                }),
            ),
            [
                "coop:coops[0].env.MOTD: must be a single line without carriage returns or NUL bytes (env files hold one variable a line)",
                "coop:coops[0].configFiles.../etc/passwd: must be a plain file name of at most 255 bytes (letters, digits, '.', '_', '-')",
                "coop:coops[0].memory: must be a size such as 512m or 1g",
                "coop:coops[0]: environment variable SECRET_KEY is set more than once (env, secretEnv, generatedSecrets)",
            ],
        );
    });
});

describe("a co-op whose data volume holds state", () => {
    const coop = (o: Record<string, unknown> = {}) => ({ id: "alpha", domains: ["alpha.example.org"], image: `ghcr.io/org/app@sha256:${"d".repeat(64)}`, ...o });
    const host = (n: number) => ({ name: `local-${n}`, address: `10.0.0.${n}`, port: 22, hostKey: KEY });

    it("runs on a stack of one host", () => {
        assert.equal(parse(local({ coops: [coop({ dataVolume: "state" })] })).coops[0].dataVolume, "state");
        assert.equal(parse(cloud("prod", { coops: [coop({ dataVolume: "state" })] })).coops[0].dataVolume, "state");
    });

    it("is refused, by path, where the load balancer spreads it over several hosts; scratch data is not", () => {
        const coops = [coop(), coop({ id: "beta", domains: ["beta.example.org"], dataVolume: "state" })];
        assert.deepEqual(errorsOf(local({ hosts: [host(1), host(2), host(3)], coops })), [
            'coop:coops[1].dataVolume: "state" needs the one copy of /data on one host, and this stack has 3 hosts (coop:hosts), each with its own copy behind the load balancer; keep the state in the database or object storage and say "scratch", or run one host',
        ]);
        const raw = cloud("uat", { coops });
        (raw.digitalocean as { droplets: { count: number } }).droplets.count = 2;
        assert.deepEqual(errorsOf(raw), [
            'coop:coops[1].dataVolume: "state" needs the one copy of /data on one host, and this stack has 2 hosts (coop:digitalocean.droplets.count), each with its own copy behind the load balancer; keep the state in the database or object storage and say "scratch", or run one host',
        ]);
        assert.deepEqual(errorsOf(local({ coops: [coop({ dataVolume: "shared" })] })), ['coop:coops[0].dataVolume: must be "scratch" or "state"']);
    });
});

describe("decodeRawConfig", () => {
    it("strips the namespace, decodes JSON values and never reads a secret's value", () => {
        const raw = decodeRawConfig(
            {
                "coop:environment": "local",
                "coop:hosts": '[{"name":"h"}]',
                "coop:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----",
                "coop:alphaDb": "postgres://secret",
                "digitalocean:token": "x",
            },
            ["alphaDb"],
        );
        assert.deepEqual(raw, { environment: "local", hosts: [{ name: "h" }], sshPrivateKey: SECRET_PRESENT, alphaDb: SECRET_PRESENT });
    });
});

describe("the local stack's machine facts (.local/machine.json)", () => {
    const { withLocalMachine } = require("../../components/config/localMachine") as typeof import("../../components/config/localMachine");
    const { generateHostKey } = require("../../components/remote/hostKey") as typeof import("../../components/remote/hostKey");
    const key = generateHostKey("local-deploy");
    const pair = { private: key.privateKey, public: key.publicKey };
    const machine = {
        hosts: [{ name: "local-1", address: "127.0.0.1", port: 2222, hostKey: KEY }],
        deployKey: pair.private,
        images: {
            "kamal-proxy": IMAGE,
            "coop-agent": AGENT,
            "demo:v1": `127.0.0.1:5001/coop-demo@sha256:${"1".repeat(64)}`,
            "coop-pgtools": `127.0.0.1:5001/coop-pgtools@sha256:${"4".repeat(64)}`,
        },
    };
    const committed = {
        environment: "local",
        proxy: { bindAddress: "127.0.0.1", httpPort: 8080, httpsPort: 8443, tls: false },
        coops: [{ id: "alpha", domains: ["alpha.localhost"] }],
    };

    it("fill what the tracked stack file leaves out: hosts, deploy key, proxy and agent images, a co-op's image", () => {
        const r = withLocalMachine(committed, [], {}, machine);
        const cfg = parseStackConfig(r.raw, r.secretKeys, r.ctx);
        assert.deepEqual(cfg.hosts, machine.hosts);
        assert.equal(cfg.proxy.image, IMAGE);
        assert.equal(cfg.agent, AGENT);
        assert.equal(cfg.coops[0].image, machine.images["demo:v1"]);
        assert.equal(r.deployKey, pair.private);
        assert.deepEqual(r.secretKeys, ["sshPrivateKey"], "the deploy key counts as a secret");
    });

    it("give coop:backups: {} this machine's backup tools image, and keep one the stack file names", () => {
        const on = parseStackConfig(withLocalMachine({ ...committed, backups: { keep: 3 } }, [], {}, machine).raw, ["sshPrivateKey"], {});
        assert.deepEqual(on.backups, { keep: 3, image: machine.images["coop-pgtools"] });
        const named = `x/pgtools@sha256:${"5".repeat(64)}`;
        assert.deepEqual(withLocalMachine({ ...committed, backups: { image: named } }, [], {}, machine).raw.backups, { image: named });
        assert.equal(withLocalMachine(committed, [], {}, machine).raw.backups, undefined, "off unless the stack file says backups");
    });

    it("never override what the stack file sets, and touch no other stack", () => {
        const set = { ...committed, agent: `x/agent@sha256:${"2".repeat(64)}`, coops: [{ id: "alpha", domains: ["alpha.localhost"], image: `x/app@sha256:${"3".repeat(64)}` }] };
        const r = withLocalMachine(set, [], {}, machine);
        assert.equal(r.raw.agent, set.agent);
        assert.deepEqual(r.raw.coops, set.coops);
        const cloud = { ...committed, environment: "dev" };
        assert.equal(withLocalMachine(cloud, [], {}, machine).raw, cloud);
    });

    it("read each local stack's own machine file, with its load balancer's paths under .local/ and every missing field named", () => {
        const { mkdtempSync, mkdirSync, writeFileSync } = require("node:fs") as typeof import("node:fs");
        const { tmpdir } = require("node:os") as typeof import("node:os");
        const path = require("node:path") as typeof import("node:path");
        const { machineFile, readLocalMachine } = require("../../components/config/localMachine") as typeof import("../../components/config/localMachine");
        assert.equal(machineFile("local"), path.join(".local", "machine.json"));
        assert.equal(machineFile("multi"), path.join(".local", "machine.multi.json"));
        const root = mkdtempSync(path.join(tmpdir(), "coop-machine-"));
        mkdirSync(path.join(root, ".local"));
        const lb = { address: "127.0.0.1:8090", adminSocket: "netns/haproxy.sock", backend: "coop", serversFile: "netns/lb-servers" };
        writeFileSync(path.join(root, ".local", "machine.multi.json"), JSON.stringify({ hosts: [], loadBalancer: lb }));
        assert.equal(readLocalMachine(root, "local"), undefined, "the local stack reads machine.json, not another stack's file");
        assert.deepEqual(readLocalMachine(root, "multi")!.balancer, {
            ...lb,
            adminSocket: path.join(root, ".local", "netns", "haproxy.sock"),
            serversFile: path.join(root, ".local", "netns", "lb-servers"),
        });
        writeFileSync(path.join(root, ".local", "machine.multi.json"), JSON.stringify({ hosts: [], loadBalancer: { ...lb, backend: "" } }));
        assert.throws(() => readLocalMachine(root, "multi"), /machine\.multi\.json: loadBalancer\.backend must be a non-empty string/);
    });
});

describe("coop:backups", () => {
    const PGTOOLS = `127.0.0.1:5001/coop-pgtools@sha256:${"b".repeat(64)}`;

    it("keeps 7 dumps per co-op unless told otherwise", () => {
        assert.deepEqual(parse(local({ backups: { image: PGTOOLS } })).backups, { keep: 7, image: PGTOOLS });
        assert.equal(parse(local()).backups, undefined, "no backups unless asked for");
    });

    it("names every bad field by its path", () => {
        assert.deepEqual(errorsOf(local({ backups: { keep: 0, image: "coop-pgtools:latest", extra: 1 } })), [
            "coop:backups.extra: unknown key (known: keep, image)",
            "coop:backups.keep: must be an integer from 1 to 100",
            "coop:backups.image: must be pinned by digest: REPOSITORY@sha256:<64 hex digits> (the coop-pgtools image; scripts/build-images.sh builds one here)",
        ]);
    });

    it("needs the Spaces keys, as secrets, on a cloud stack, and refuses them where they are not read", () => {
        assert.deepEqual(errorsOf(cloud("dev", { backups: { image: PGTOOLS }, spacesAccessKeyId: "AK" })), [
            "coop:spacesAccessKeyId: must be set as a secret (pulumi config set --secret coop:spacesAccessKeyId ...): a plain value would be committed with the stack file",
            "coop:spacesSecretAccessKey: is required with coop:backups: the key of the Spaces bucket the backups go to (pulumi config set --secret coop:spacesSecretAccessKey ...)",
        ]);
        const ok = parseStackConfig(cloud("dev", { backups: { image: PGTOOLS }, spacesAccessKeyId: SECRET_PRESENT, spacesSecretAccessKey: SECRET_PRESENT }), [
            "sshPrivateKey",
            "spacesAccessKeyId",
            "spacesSecretAccessKey",
        ]);
        assert.equal(ok.backups?.keep, 7);
        assert.deepEqual(errorsOf(local({ spacesAccessKeyId: SECRET_PRESENT }), ["spacesAccessKeyId"]), [
            "coop:spacesAccessKeyId: is only read on dev, uat and prod (the local stack's S3 server has keys of its own)",
        ]);
    });
});

describe("a co-op's uptime path", () => {
    const coop = (over: Record<string, unknown>) => ({ id: "alpha", domains: ["alpha.localhost"], image: IMAGE, ...over });
    it("is / unless set, and never the health path", () => {
        assert.equal(parse(local({ coops: [coop({})] })).coops[0].uptimePath, "/");
        assert.deepEqual(errorsOf(local({ coops: [coop({ healthPath: "/healthcheck", uptimePath: "/healthcheck?from=uptime" })] })), [
            `coop:coops[0].uptimePath: "/healthcheck?from=uptime" is the health path, which the proxy answers with 200 itself while the co-op's traffic is held (a database restore): the uptime checks would never see it down; name a page the app serves, such as /`,
        ]);
    });
});

describe("coop:registries", () => {
    const login = (over: Record<string, unknown> = {}) => ({ server: "ghcr.io", username: "coop-bot", passwordKey: "ghcrToken", ...over });

    it("reads each registry's login, its token a secret key of its own", () => {
        const cfg = parseStackConfig(local({ registries: [login()], ghcrToken: SECRET_PRESENT }), ["sshPrivateKey", "ghcrToken"]);
        assert.deepEqual(cfg.registries, [login()]);
    });

    it("names every bad field by its path", () => {
        assert.deepEqual(
            errorsOf(
                local({
                    registries: [
                        login({ server: "https://ghcr.io/org", username: "a:b", passwordKey: "no spaces" }),
                        login({ passwordKey: "plain" }),
                        login({ server: "GHCR.io", passwordKey: "other" }),
                    ],
                    plain: "t0ken",
                    other: SECRET_PRESENT,
                }),
                ["other"],
            ),
            [
                "coop:registries[0].server: must be a registry as image names start with it, such as ghcr.io or registry.example.org:5000 (no scheme, no path)",
                "coop:registries[0].username: must be a user name of printable characters with no ':' or space (a registry login cannot carry them)",
                "coop:registries[0].passwordKey: must name a coop: config key (letters, digits, '_', '-') set with --secret",
                `coop:registries[2].server: "GHCR.io" is already coop:registries[1].server: one login per registry`,
            ],
        );
        assert.deepEqual(errorsOf(local({ registries: [login({ passwordKey: "plain" })], plain: "t0ken" })), [
            "coop:registries[0].passwordKey: coop:plain must be set as a secret (pulumi config set --secret coop:plain < token)",
        ]);
    });

    it("never sends the stack's own secrets, or another purpose's, to a registry", () => {
        assert.deepEqual(errorsOf(local({ registries: [login({ passwordKey: "sshPrivateKey" })] })), [
            "coop:registries[0].passwordKey: coop:sshPrivateKey is the stack's own setting (the deploy key), never a registry's token: it would be sent to ghcr.io; name a key of its own",
        ]);
        const coop = { id: "alpha", domains: ["alpha.localhost"], image: IMAGE, secretEnv: { API_TOKEN: "ghcrToken" } };
        assert.deepEqual(errorsOf(local({ registries: [login()], ghcrToken: SECRET_PRESENT, coops: [coop] }), ["ghcrToken"]), [
            `coop:coops[0].secretEnv.API_TOKEN: coop:ghcrToken is already the token of ghcr.io (coop:registries[0].passwordKey); a secret key serves one purpose, so give this one a key of its own`,
        ]);
        assert.deepEqual(errorsOf(local({ registries: [login(), login({ server: "registry.example.org:5000" })], ghcrToken: SECRET_PRESENT }), ["ghcrToken"]), [
            "coop:registries[1].passwordKey: coop:ghcrToken is already the token of ghcr.io (coop:registries[0].passwordKey); a secret key serves one purpose, so give this one a key of its own",
        ]);
    });

    it("refuses a token that spans lines", () => {
        const r = parseStackConfig.bind(null, local({ registries: [login()], ghcrToken: SECRET_PRESENT }), ["sshPrivateKey", "ghcrToken"], {
            secretFacts: { ghcrToken: { singleLine: false } },
        });
        assert.throws(r, /coop:registries\[0\]\.passwordKey: the value of coop:ghcrToken spans lines or holds a NUL byte/);
    });
});
