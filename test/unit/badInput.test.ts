// Bad input, as a person writes it into a stack file: each case must be refused before anything
// is registered, naming its path, never with a stack trace; names that could collide must not.
// Part one: the cases found by mutating the committed stack files (issue 9), one by one.
// Part two: a sweep of mechanical mutations of every field of every committed stack file, each of
// which must be accepted or refused by path, never crash.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { Outcome, operatorConfig, throughProgram } from "../configPath";
import { deployKey } from "../mockProgram";
import { ROOT } from "../support";

const yaml = require("js-yaml") as { load(text: string): unknown };

type Config = Record<string, any>;

function committed(stack: string): Config {
    return (yaml.load(readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8")) as { config: Config }).config;
}

const clone = <T>(v: T): T => (v === undefined || typeof v === "symbol" ? v : (JSON.parse(JSON.stringify(v)) as T));
const DIGEST = `127.0.0.1:5001/coop-demo@sha256:${"a".repeat(64)}`;

/** The local stack as scripts/local-hosts.sh completes it on a machine: hosts, keys, images. */
function localConfig(): Config {
    const c = clone(committed("local"));
    // What a machine's setup wrote into the working copy is replaced by made-up values.
    delete c["coop:sshPrivateKey"];
    c["coop:hosts"] = [{ name: "local-1", address: "127.0.0.1", port: 2222, hostKey: deployKey().public }];
    c["coop:proxy"] = { ...c["coop:proxy"], image: `127.0.0.1:5001/kamal-proxy@sha256:${"b".repeat(64)}` };
    c["coop:agent"] = `127.0.0.1:5001/coop-agent@sha256:${"c".repeat(64)}`;
    for (const coop of c["coop:coops"]) coop.image = DIGEST;
    c["coop:betaApiToken"] = { secure: "v1:token" };
    return c;
}

const STACKS: Record<string, () => Config> = { local: localConfig, dev: () => committed("dev"), uat: () => committed("uat"), prod: () => committed("prod") };

/** Runs `edit` on an operator's copy of `stack` and returns what the program makes of it. */
function attempt(stack: string, edit: (c: Config, plaintext: Record<string, string>) => void): Outcome {
    const { config, plaintext } = operatorConfig(STACKS[stack]());
    edit(config, plaintext);
    return throughProgram(stack, config, plaintext);
}

/** Asserts a refusal by the program whose lines include one starting with `path: ` (and matching `why`). */
function refused(o: Outcome, path: string, why?: RegExp): void {
    assert.ok(!("crashed" in o), `crashed: ${"crashed" in o ? o.crashed.stack : ""}`);
    assert.ok("refused" in o, `accepted, but ${path} should be refused`);
    const line = o.refused.find((l) => l.startsWith(`${path}: `));
    assert.ok(line, `no error at ${path}; got:\n  ${o.refused.join("\n  ")}`);
    if (why) assert.match(line, why);
    for (const l of o.refused) assert.match(l, /^[a-z]+:[^\s]*: /, `every error names its path: ${l}`);
}

describe("bad input from the committed stack files is refused by path, before anything runs", () => {
    describe("values that crashed the env-file renderer", () => {
        it("an env value with a carriage return or a NUL byte", () => {
            for (const bad of ["Hello\rWorld", "Hello\0World"]) {
                refused(
                    attempt("dev", (c) => (c["coop:coops"][0].env.GREETING = bad)),
                    "coop:coops[0].env.GREETING",
                    /carriage returns or NUL/,
                );
            }
        });
        it("secretEnv naming the deploy key, or a secret whose value spans lines", () => {
            refused(
                attempt("local", (c) => (c["coop:coops"][1].secretEnv.API_TOKEN = "sshPrivateKey")),
                "coop:coops[1].secretEnv.API_TOKEN",
                /deploy key/,
            );
            refused(
                attempt("local", (_, p) => (p["coop:betaApiToken"] = "line one\nline two")),
                "coop:coops[1].secretEnv.API_TOKEN",
                /spans lines/,
            );
        });
    });

    describe("dangerous values that were accepted", () => {
        it("the deploy key as a plain value (it would be committed)", () => {
            refused(
                attempt("prod", (c) => (c["coop:sshPrivateKey"] = deployKey().private)),
                "coop:sshPrivateKey",
                /must be set as a secret .*a plain value would be committed with the stack file/,
            );
        });
        it("an SSH range that admits every address, whatever is written before /0", () => {
            for (const cidr of ["1.2.3.4/0", "0.0.0.0/0", "::/0", "2001:db8::/0"]) {
                refused(
                    attempt("prod", (c) => (c["coop:digitalocean"].sshAllowlist = [cidr])),
                    "coop:digitalocean.sshAllowlist[0]",
                );
            }
        });
        it("Docker's own networks", () => {
            for (const n of ["host", "none", "bridge"])
                refused(
                    attempt("dev", (c) => (c["coop:network"] = n)),
                    "coop:network",
                    /Docker's own networks/,
                );
        });
        it("a host root that would hand a system directory to the deploy user", () => {
            for (const root of ["/tmp", "/", "/etc", "/usr", "/usr/local/coop", "/opt", "/var/lib/docker/coop", "/opt/../etc", "/opt/coop/"]) {
                refused(
                    attempt("dev", (c) => (c["coop:hostRoot"] = root)),
                    "coop:hostRoot",
                );
            }
        });
        it("root or a system account as the deploy user", () => {
            for (const u of ["root", "daemon", "www-data", "systemd-network", "nobody"])
                refused(
                    attempt("uat", (c) => (c["coop:sshUser"] = u)),
                    "coop:sshUser",
                );
        });
        it("another environment's name on a stack named after an environment", () => {
            refused(
                attempt("dev", (c) => (c["coop:environment"] = "uat")),
                "coop:environment",
                /stack named dev/,
            );
        });
        it("a misspelt namespace", () => {
            refused(
                attempt("dev", (c) => ((c["coops:coops"] = c["coop:coops"]), delete c["coop:coops"])),
                "coops:coops",
                /unknown namespace "coops".*did you mean coop:coops/,
            );
        });
        it("__proto__ as a variable name (JSON holds it, a JavaScript object drops it)", () => {
            refused(
                attempt("dev", (c) => Object.defineProperty(c["coop:coops"][0].env, "__proto__", { value: "x", enumerable: true })),
                "coop:coops[0].env.__proto__",
            );
        });
        it("a co-op setting COOP_ID, or a database variable named COOP_ID", () => {
            refused(
                attempt("dev", (c) => (c["coop:coops"][0].env.COOP_ID = "other")),
                "coop:coops[0]",
                /COOP_ID/,
            );
            refused(
                attempt("dev", (c) => (c["coop:digitalocean"].database.envName = "COOP_ID")),
                "coop:digitalocean.database.envName",
                /COOP_ID/,
            );
        });
    });

    describe("values the provider or DigitalOcean refuse minutes later", () => {
        it("a public, malformed, oversized or reserved VPC range", () => {
            for (const r of ["8.8.0.0/16", "10/8", "10.110.0.0", "010.110.0.0/20", "10.0.0.0/8", "10.110.0.0/29", "10.244.0.0/16", "10.110.0.1/20"]) {
                refused(
                    attempt("prod", (c) => (c["coop:digitalocean"].vpcIpRange = r)),
                    "coop:digitalocean.vpcIpRange",
                );
            }
        });
        it("a deploy key that only looks like a key", () => {
            for (const k of ["ssh-ed25519 AAAA", "ssh-ed25519", "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIKhSIrBDJO3FZ6GraOLKddfv/BRbJpD+ATtojKA5puLX"]) {
                refused(
                    attempt("prod", (c) => (c["coop:digitalocean"].deployPublicKey = k)),
                    "coop:digitalocean.deployPublicKey",
                );
            }
        });
        it("more pooled connections than the database plan serves", () => {
            refused(
                attempt("dev", (c) => (c["coop:coops"] = Array.from({ length: 500 }, (_, i) => ({ id: `c${i}`, domains: [`c${i}.dev.coophost.example`], image: DIGEST })))),
                "coop:digitalocean.database.poolSize",
                /500 co-ops × 3 connections = 1500, more than the 22/,
            );
        });
        it("CPU limits of 0, below 0.01, beyond the droplet, or as a list", () => {
            for (const cpus of [0, "0", 0.001, 64, "3", ["1"]])
                refused(
                    attempt("prod", (c) => (c["coop:coops"][0].cpus = cpus)),
                    "coop:coops[0].cpus",
                );
        });
        it("memory limits of nothing, or more than any host", () => {
            for (const m of ["0m", "1m", "99999999999g", "5g", "lots"])
                refused(
                    attempt("prod", (c) => (c["coop:coops"][0].memory = m)),
                    "coop:coops[0].memory",
                );
        });
        it("a config file name longer than a file name can be", () => {
            refused(
                attempt("dev", (c) => (c["coop:coops"][0].configFiles["x".repeat(256)] = "y")),
                `coop:coops[0].configFiles.${"x".repeat(256)}`,
            );
        });
        it("a NUL or carriage return in a migration argument", () => {
            for (const a of ["migrate\0", "migrate\r", "a\nb"])
                refused(
                    attempt("dev", (c) => (c["coop:coops"][0].migrate = [a])),
                    "coop:coops[0].migrate[0]",
                );
        });
        it("a proxy bind address that is no address", () => {
            for (const a of ["localhost", "999.1.1.1", "1.2.3", "::g"])
                refused(
                    attempt("local", (c) => (c["coop:proxy"].bindAddress = a)),
                    "coop:proxy.bindAddress",
                );
        });
        it("a load balancer with no co-op (its certificate would have no name)", () => {
            refused(
                attempt("prod", (c) => (c["coop:coops"] = [])),
                "coop:coops",
                /load balancer/,
            );
        });
        it("a standby node on the smallest database plan", () => {
            refused(
                attempt("uat", (c) => (c["coop:digitalocean"].cache.size = "db-s-1vcpu-1gb")),
                "coop:digitalocean.cache.nodes",
            );
        });
    });

    it("the committed stacks, as an operator has them, are accepted", () => {
        for (const stack of Object.keys(STACKS)) {
            const o = attempt(stack, () => undefined);
            assert.ok("ok" in o, `${stack}: ${"refused" in o ? o.refused.join("\n") : "crashed" in o ? o.crashed.stack : ""}`);
        }
    });
});

// ---- issue 25: what an independent mutation of the stack files still got through ---------------

/** Asserts the program accepts the edited stack. */
/** Sets `k` on `o` as JSON would, even where `k` is __proto__. */
const define = (o: Config, k: string, value: unknown) => Object.defineProperty(o, k, { value, enumerable: true, writable: true, configurable: true });

function accepted(o: Outcome, what: string): void {
    assert.ok("ok" in o, `${what}: ${"refused" in o ? o.refused.join("\n") : "crashed" in o ? o.crashed.stack : ""}`);
}

describe("issue 25: the security holes of the third round of bad input are refused by path", () => {
    it("SSH ranges that admit all of IPv4 or IPv6 together, or one wider than a network, in uat and prod", () => {
        const allow = (stack: string, list: string[]) => attempt(stack, (c) => (c["coop:digitalocean"].sshAllowlist = list));
        for (const stack of ["uat", "prod"]) {
            // Each too wide on its own (the halves of IPv4, IPv6's first half, all of global unicast, IPv4-mapped IPv6).
            for (const list of [["0.0.0.0/1", "128.0.0.0/1"], ["203.0.113.10/32", "::/1"], ["2000::/3"], ["0.0.0.0/7"], ["::ffff:0:0/96"], ["2000::/15"]]) {
                refused(allow(stack, list), `coop:digitalocean.sshAllowlist[${list.length - 1}]`, new RegExp(`wider than an IPv[46] /(8|16).*${stack} refuses`));
            }
            // Each narrow enough, together all of IPv4 or all of global unicast IPv6.
            const all4 = Array.from({ length: 256 }, (_, i) => `${i}.0.0.0/8`);
            refused(allow(stack, all4), "coop:digitalocean.sshAllowlist", /together admit every IPv4 address/);
            const global6 = Array.from({ length: 8192 }, (_, i) => `${(0x2000 + i).toString(16)}::/16`);
            refused(allow(stack, global6), "coop:digitalocean.sshAllowlist", /together admit every global unicast IPv6 address \(2000::\/3\)/);
            // One /8 short of the whole, operators' networks and a v6 site: accepted.
            accepted(allow(stack, all4.slice(1)), `${stack}: 255 /8s`);
            accepted(allow(stack, ["10.0.0.0/8", "203.0.113.10/32", "2001:db8::/32", "2a01::/16"]), `${stack}: networks`);
        }
        // dev keeps its rule: /0 and wide ranges are its own business.
        accepted(allow("dev", ["0.0.0.0/1", "128.0.0.0/1", "::/0"]), "dev");
    });

    it("a host root that is not a directory of the program's own under /opt or /srv", () => {
        for (const root of [
            "/var/lib",
            "/var/lib/dpkg",
            "/var/lib/cloud/scripts/per-boot",
            "/opt/digitalocean",
            "/opt",
            "/srv",
            "/home/deploy",
            "/var/coop",
            "/opt/containerd",
            "/opt/coopx",
            "/srv/www",
        ]) {
            for (const stack of ["dev", "local"])
                refused(
                    attempt(stack, (c) => (c["coop:hostRoot"] = root)),
                    "coop:hostRoot",
                    /directory of the program's own/,
                );
        }
        for (const root of ["/opt/coop", "/srv/coop", "/opt/coop-prod", "/srv/coop/apps", "/opt/coop_2/x"])
            accepted(
                attempt("prod", (c) => (c["coop:hostRoot"] = root)),
                root,
            );
    });

    it("a secret key named for a second purpose: the deploy key as the Slack webhook, one key for two co-ops or for a co-op and the webhook", () => {
        const slack = (key: string) => (c: Config) => (c["coop:digitalocean"].alerts = { slack: { channel: "#ops", webhookKey: key } });
        for (const key of ["sshPrivateKey", "spacesSecretAccessKey", "spacesAccessKeyId"]) {
            refused(attempt("uat", slack(key)), "coop:digitalocean.alerts.slack.webhookKey", /stack's own setting.*never the Slack webhook URL/);
        }
        const withSecret = (stack: string, key: string, edit: (c: Config) => void) =>
            attempt(stack, (c, p) => {
                c[`coop:${key}`] = { secure: "v1:x" };
                p[`coop:${key}`] = "https://hooks.slack.com/services/T/B/x";
                edit(c);
            });
        accepted(withSecret("uat", "opsWebhook", slack("opsWebhook")), "a webhook key of its own");
        refused(
            withSecret("uat", "opsWebhook", (c) => (slack("opsWebhook")(c), (c["coop:coops"][1].secretEnv = { HOOK: "opsWebhook" }))),
            "coop:coops[1].secretEnv.HOOK",
            /coop:opsWebhook is already the Slack webhook URL/,
        );
        refused(
            withSecret("uat", "sharedToken", (c) => ((c["coop:coops"][0].secretEnv = { API_TOKEN: "sharedToken" }), (c["coop:coops"][1].secretEnv = { TOKEN: "sharedToken" }))),
            "coop:coops[1].secretEnv.TOKEN",
            /already co-op "alpha"'s environment/,
        );
        // Two variables of one co-op may hold one secret: one purpose.
        accepted(
            withSecret("uat", "sharedToken", (c) => (c["coop:coops"][0].secretEnv = { API_TOKEN: "sharedToken", TOKEN: "sharedToken" })),
            "one co-op, two names",
        );
    });

    it("the provider's settings: a plaintext token, an endpoint that is not DigitalOcean's over https, an unknown key", () => {
        const provider = (key: string, value: unknown, secret?: string) =>
            attempt("prod", (c, p) => {
                c[`digitalocean:${key}`] = value;
                if (secret !== undefined) p[`digitalocean:${key}`] = secret;
            });
        for (const key of ["token", "spacesSecretKey", "spacesAccessId"]) refused(provider(key, "dop_v1_plain"), `digitalocean:${key}`, /must be set as a secret/);
        accepted(provider("token", { secure: "v1:x" }, "dop_v1_secret"), "a secret token");
        for (const url of [
            "http://api.digitalocean.com",
            "https://api.digitalocean.com.evil.example",
            "https://evil.example",
            "https://user@api.digitalocean.com",
            "https://api.digitalocean.com:8443",
            "https://api.digitalocean.com/v2?x=1",
            "api.digitalocean.com",
        ]) {
            refused(provider("apiEndpoint", url), "digitalocean:apiEndpoint", /https:\/\/ to a DigitalOcean host/);
            refused(provider("apiEndpoint", { secure: "v1:x" }, url), "digitalocean:apiEndpoint", /https:\/\/ to a DigitalOcean host/);
        }
        refused(provider("spacesEndpoint", "http://ams3.digitaloceanspaces.com"), "digitalocean:spacesEndpoint");
        refused(provider("spacesEndpoint", "https://ams3.digitaloceanspaces.com.evil.example"), "digitalocean:spacesEndpoint");
        for (const [key, value] of [
            ["apiEndpoint", "https://api.digitalocean.com"],
            ["apiEndpoint", "https://api.digitalocean.com/"],
            ["spacesEndpoint", "https://ams3.digitaloceanspaces.com"],
            ["spacesEndpoint", "https://{{.Region}}.digitaloceanspaces.com"],
            ["httpRetryMax", "4"],
            ["requestsPerSecond", "10"],
        ]) {
            accepted(provider(key, value), `digitalocean:${key}`);
        }
        refused(provider("tokne", "x"), "digitalocean:tokne", /unknown key: the DigitalOcean provider reads/);
    });

    it("__proto__, constructor and prototype as keys, at the top and inside any object", () => {
        // A top-level coop:__proto__ once became the prototype of the parsed config: nothing saw it.
        refused(
            attempt("dev", (c) => (c["coop:__proto__"] = { hostRoot: "/var/lib" })),
            "coop:__proto__",
            /cannot be a name here/,
        );
        refused(
            attempt("dev", (c) => (c["coop:constructor"] = "x")),
            "coop:constructor",
        );
        refused(
            attempt("dev", (c) => define(c["coop:digitalocean"], "__proto__", { protect: false })),
            "coop:digitalocean.__proto__",
        );
        refused(
            attempt("dev", (c) => (c["coop:coops"][0].env.constructor = "x")),
            "coop:coops[0].env.constructor",
        );
        refused(
            attempt("local", (c) => define(c["coop:coops"][1].secretEnv, "prototype", "betaApiToken")),
            "coop:coops[1].secretEnv.prototype",
        );
        refused(
            attempt("dev", (c) => define(c["coop:digitalocean"].droplets, "__proto__", { count: 9 })),
            "coop:digitalocean.droplets.__proto__",
        );
    });

    it("a DNS zone listed twice (it would register one Domain twice)", () => {
        refused(
            attempt("prod", (c) => c["coop:digitalocean"].dnsZones.push("coophost.example")),
            "coop:digitalocean.dnsZones[2]",
            /already coop:digitalocean.dnsZones\[0\]/,
        );
    });
});

describe("issue 25: what was accepted and then failed at up (medium) is refused by path", () => {
    it("proxy ports other than 80 and 443, or a bind address other than all of the droplet's, on a cloud stack", () => {
        for (const stack of ["dev", "uat", "prod"]) {
            const proxy = (p: Record<string, unknown>) => attempt(stack, (c) => (c["coop:proxy"] = { ...c["coop:proxy"], ...p }));
            refused(proxy({ httpPort: 8080 }), "coop:proxy.httpPort", /must be 80 on/);
            refused(proxy({ httpsPort: 8443 }), "coop:proxy.httpsPort", /must be 443 on/);
            refused(proxy({ bindAddress: "127.0.0.1" }), "coop:proxy.bindAddress", /must be 0\.0\.0\.0 \(or ::\)/);
            accepted(proxy({ bindAddress: "::" }), `${stack} on IPv6's all-addresses`);
        }
        accepted(
            attempt("local", (c) => (c["coop:proxy"] = { ...c["coop:proxy"], httpPort: 8080, bindAddress: "127.0.0.1" })),
            "the local stack on its loopback ports",
        );
    });

    it("a deploy user named after a group or system account of the image (useradd refuses it)", () => {
        for (const user of ["sudo", "adm", "staff", "users", "ubuntu", "ssh"]) {
            refused(
                attempt("prod", (c) => (c["coop:sshUser"] = user)),
                "coop:sshUser",
                /not root or a system account or group of the image/,
            );
        }
        accepted(
            attempt("prod", (c) => (c["coop:sshUser"] = "coopdeploy")),
            "a user of its own",
        );
    });

    it("an environment variable the image and the loader own: in env, secretEnv, generatedSecrets, or as the database's name", () => {
        for (const name of ["PATH", "LD_PRELOAD", "HOME"]) {
            refused(
                attempt("local", (c) => (c["coop:coops"][0].env = { ...c["coop:coops"][0].env, [name]: "/x" })),
                "coop:coops[0]",
                new RegExp(`sets ${name}, which belongs to the image`),
            );
            refused(
                attempt("dev", (c) => c["coop:coops"][0].generatedSecrets.push(name)),
                "coop:coops[0]",
                new RegExp(`sets ${name}`),
            );
        }
        refused(
            attempt("prod", (c) => (c["coop:digitalocean"].database = { ...c["coop:digitalocean"].database, envName: "PATH" })),
            "coop:digitalocean.database.envName",
            /PATH belongs to the image and the loader/,
        );
    });

    it("a cloud environment's stack file run as a stack of another name (prod-eu, Dev): it would take that environment's names and tags", () => {
        const { config, plaintext } = operatorConfig(committed("prod"));
        refused(throughProgram("prod-eu", config, plaintext), "coop:environment", /on the stack named prod-eu: a cloud stack is named after its environment/);
        const dev = operatorConfig(committed("dev"));
        refused(throughProgram("Dev", dev.config, dev.plaintext), "coop:environment", /on the stack named Dev/);
        accepted(throughProgram("prod", config, plaintext), "prod as prod");
    });
});

describe("issue 25: the rest of the medium classes, duplicates and the low classes are refused by path", () => {
    it("droplet sizes, regions and database sizes DigitalOcean does not offer, and a droplet image other than Ubuntu LTS", () => {
        const edit = (f: (d: Config) => void) => attempt("dev", (c) => f(c["coop:digitalocean"]));
        refused(
            edit((d) => (d.droplets.size = "s-1vcpu-3gb-xl")),
            "coop:digitalocean.droplets.size",
            /a droplet size DigitalOcean offers/,
        );
        refused(
            edit((d) => (d.region = "ams9")),
            "coop:digitalocean.region",
            /a region DigitalOcean offers: nyc1/,
        );
        refused(
            edit((d) => (d.database.size = "db-s-3vcpu-1gb")),
            "coop:digitalocean.database.size",
            /a database size DigitalOcean offers/,
        );
        refused(
            edit((d) => (d.cache.size = "db-s-1vcpu-3gb")),
            "coop:digitalocean.cache.size",
            /a database size DigitalOcean offers/,
        );
        for (const image of ["debian-12-x64", "ubuntu-23-10-x64", "ubuntu-20-04-x64", "rockylinux-9-x64"]) {
            refused(
                edit((d) => (d.droplets.image = image)),
                "coop:digitalocean.droplets.image",
                /Ubuntu LTS/,
            );
        }
        accepted(
            edit((d) => ((d.droplets.image = "ubuntu-22-04-x64"), (d.droplets.size = "s-2vcpu-4gb-amd"))),
            "Ubuntu 22.04 on an AMD droplet",
        );
        accepted(
            edit((d) => ((d.region = "atl1"), delete d.database.region, delete d.cache.region)),
            "Atlanta, which the provider's list lacks",
        );
        accepted(
            edit((d) => (d.database.size = "gd-2vcpu-8gb")),
            "a general-purpose database node",
        );
    });

    it("an env value longer than the kernel passes a process for one variable", () => {
        refused(
            attempt("local", (c) => (c["coop:coops"][0].env = { ...c["coop:coops"][0].env, BIG: "a".repeat(131072) })),
            "coop:coops[0].env.BIG",
            /more than the 131072 the kernel passes/,
        );
        accepted(
            attempt("local", (c) => (c["coop:coops"][0].env = { ...c["coop:coops"][0].env, BIG: "a".repeat(131072 - "BIG=".length - 1) })),
            "exactly the limit",
        );
        refused(
            attempt("local", (_, p) => (p["coop:betaApiToken"] = "t".repeat(200000))),
            "coop:coops[1].secretEnv.API_TOKEN",
            /more than the 131072 bytes/,
        );
    });

    it("a deploy key whose comment makes the droplets' user data more than DigitalOcean's 64 KiB", () => {
        const o = attempt("dev", (c) => (c["coop:digitalocean"].deployPublicKey = `${c["coop:digitalocean"].deployPublicKey} ${"c".repeat(70000)}`));
        refused(o, "coop:digitalocean.deployPublicKey", /user data \d+ bytes, more than DigitalOcean's 65536 \(64 KiB\): its comment is 700\d\d characters; shorten it/);
        accepted(
            attempt("dev", (c) => (c["coop:digitalocean"].deployPublicKey = `${c["coop:digitalocean"].deployPublicKey} ${"c".repeat(50000)}`)),
            "a long comment that fits",
        );
    });

    it("a control character in the deploy key's comment (cloud-init's YAML refuses it)", () => {
        for (const comment of ["deploy\u0007", "a\u001b[31mb", "tab\there"]) {
            refused(
                attempt("prod", (c) => (c["coop:digitalocean"].deployPublicKey = `${c["coop:digitalocean"].deployPublicKey} ${comment}`)),
                "coop:digitalocean.deployPublicKey",
                /TYPE BASE64 \[COMMENT\]/,
            );
        }
    });

    it("uat and prod on one droplet with the proxy's TLS off (plain HTTP to the internet)", () => {
        for (const stack of ["uat", "prod"]) {
            refused(
                attempt(stack, (c) => ((c["coop:digitalocean"].droplets.count = 1), (c["coop:proxy"] = { ...c["coop:proxy"], tls: false }))),
                "coop:proxy.tls",
                new RegExp(`must be true on ${stack} with one droplet`),
            );
            accepted(
                attempt(stack, (c) => (c["coop:digitalocean"].droplets.count = 1)),
                `${stack} on one droplet, TLS on by default`,
            );
        }
        accepted(
            attempt("dev", (c) => (c["coop:proxy"] = { ...c["coop:proxy"], tls: false })),
            "dev may serve plain HTTP",
        );
    });

    it("placeholders the uat/prod guard missed: CHANGE-ME, CHANGE ME, look-alike letters, FIXME, ${...}; in env, migrate, domains and secrets", () => {
        for (const v of ["CHANGE-ME", "CHANGE ME", "СHANGEME", "ＣＨＡＮＧＥＭＥ", "CHANGE\u200bME", "FIXME", "${DATABASE_PASSWORD}", "fix-me later"]) {
            refused(
                attempt("prod", (c) => (c["coop:coops"][0].env = { ...c["coop:coops"][0].env, TOKEN: v })),
                "coop:coops[0].env.TOKEN",
                /placeholder/,
            );
        }
        refused(
            attempt("uat", (c) => (c["coop:coops"][0].migrate = ["migrate", "--tenant=CHANGE-ME"])),
            "coop:coops[0].migrate[1]",
            /placeholder/,
        );
        refused(
            attempt("prod", (c) => (c["coop:coops"][0].domains = ["changeme.coophost.example"])),
            "coop:coops[0].domains[0]",
            /placeholder/,
        );
        const withSecret = (value: string) =>
            attempt("prod", (c, p) => {
                c["coop:coops"][0].secretEnv = { API_TOKEN: "alphaToken" };
                c["coop:alphaToken"] = { secure: "v1:x" };
                p["coop:alphaToken"] = value;
            });
        refused(withSecret("CHANGE-ME"), "coop:coops[0].secretEnv.API_TOKEN", /coop:alphaToken holds a placeholder value; set the real secret/);
        accepted(withSecret("s3cr3t-value"), "a real secret");
        accepted(
            attempt("dev", (c) => (c["coop:coops"][0].env = { ...c["coop:coops"][0].env, TOKEN: "CHANGE-ME" })),
            "dev keeps its placeholders",
        );
    });

    it("alert emails over 254 characters, or with bidi or invisible characters", () => {
        const emails = (list: string[]) => attempt("prod", (c) => (c["coop:digitalocean"].alerts = { ...c["coop:digitalocean"].alerts, emails: list }));
        refused(emails([`${"a".repeat(250)}@example.org`]), "coop:digitalocean.alerts.emails[0]", /at most 254 ASCII characters/);
        refused(emails(["ops\u202e@example.org"]), "coop:digitalocean.alerts.emails[0]");
        refused(emails(["ops@exa\u200bmple.org"]), "coop:digitalocean.alerts.emails[0]");
        accepted(emails(["ops+alerts@coophost.example"]), "a tagged address");
    });

    it("a registry port over 65535, in an image and in coop:registries", () => {
        refused(
            attempt("prod", (c) => (c["coop:coops"][0].image = `ghcr.io:99999/example-coop/app@sha256:${"a".repeat(64)}`)),
            "coop:coops[0].image",
        );
        refused(
            attempt("prod", (c, p) => {
                c["coop:registries"] = [{ server: "registry.example.org:70000", username: "ci", passwordKey: "registryToken" }];
                c["coop:registryToken"] = { secure: "v1:x" };
                p["coop:registryToken"] = "token";
            }),
            "coop:registries[0].server",
        );
    });

    it("two local hosts at one address and port", () => {
        refused(
            attempt("local", (c) => c["coop:hosts"].push({ ...c["coop:hosts"][0], name: "local-2" })),
            "coop:hosts[1].address",
            /127\.0\.0\.1 port 2222 is already coop:hosts\[0\]/,
        );
        accepted(
            attempt("local", (c) => c["coop:hosts"].push({ ...c["coop:hosts"][0], name: "local-2", port: 2223 })),
            "another port",
        );
    });

    it("a secret wrapped in a list (set with --path KEY[0]) named as a co-op's secret", () => {
        refused(
            attempt("local", (c) => (c["coop:betaApiToken"] = [{ secure: "v1:token" }])),
            "coop:coops[1].secretEnv.API_TOKEN",
            /coop:betaApiToken holds a list with a secret inside/,
        );
    });

    it("control and invisible characters in what an error quotes are escaped, never printed raw", () => {
        for (const bad of ["\u001b[2J", "\u202e", "\u200b", "\r"]) {
            const o = attempt("local", (c) => (c["coop:coops"][0].domains = [`x${bad}.localhost`]));
            assert.ok("refused" in o);
            for (const l of o.refused) assert.doesNotMatch(l, /[\p{Cc}\p{Cf}]/u, `raw: ${JSON.stringify(l)}`);
            const k = attempt("local", (c) => define(c["coop:coops"][0].env, `K${bad}`, "v"));
            assert.ok("refused" in k);
            assert.ok(
                k.refused.some((l) => l.includes(`K\\u{${bad.codePointAt(0)!.toString(16)}}`)),
                k.refused.join("\n"),
            );
        }
    });

    it("a co-op's database variable named PATH, COOP_ID or the cache's variable, or set by the co-op itself", () => {
        refused(
            attempt("prod", (c) => (c["coop:coops"][0].databaseEnvName = "PATH")),
            "coop:coops[0].databaseEnvName",
            /belongs to the image or the stack/,
        );
        refused(
            attempt("local", (c) => (c["coop:coops"][0].databaseEnvName = "COOP_ID")),
            "coop:coops[0].databaseEnvName",
            /belongs to the image or the stack/,
        );
        refused(
            attempt("prod", (c) => (c["coop:coops"][0].databaseEnvName = "REDIS_URL")),
            "coop:coops[0].databaseEnvName",
            /the cache's variable/,
        );
        refused(
            attempt("dev", (c) => ((c["coop:coops"][0].databaseEnvName = "DSN"), (c["coop:coops"][0].env = { ...c["coop:coops"][0].env, DSN: "x" }))),
            "coop:coops[0]",
            /sets DSN, which the stack sets from its managed database/,
        );
        const ok = attempt("prod", (c) => (c["coop:coops"][0].databaseEnvName = "DSN"));
        accepted(ok, "an app that reads DSN");
        assert.equal("ok" in ok && ok.ok.coops[0].databaseEnvName, "DSN");
    });

    it('a secure value inside a co-op (or any structured key) is named as what it is, not as "must be a list"', () => {
        const o = attempt("local", (c) => (c["coop:coops"][0].env = { ...c["coop:coops"][0].env, GREETING: { secure: "v1:x" } }));
        refused(o, "coop:coops", /holds a secret value inside it \(a secure: entry/);
        assert.ok("refused" in o && !o.refused.some((l) => /must be a list/.test(l)), "refused" in o ? o.refused.join("\n") : "");
        refused(
            attempt("prod", (c) => (c["coop:digitalocean"].alerts = { ...c["coop:digitalocean"].alerts, emails: [{ secure: "v1:x" }] })),
            "coop:digitalocean",
            /holds a secret value inside it/,
        );
    });
});

// ---- the sweep ------------------------------------------------------------------------------

/** Replacement values tried at every field. */
const VALUES: unknown[] = [
    null,
    "",
    " ",
    0,
    -1,
    1.5,
    1e12,
    true,
    false,
    [],
    {},
    "x\ry",
    "x\0y",
    "x\ny",
    "é",
    "a".repeat(300),
    "0.0.0.0/0",
    "../x",
    [null],
    { x: 1 },
    // Issue 25's round: a placeholder, a bidi override, a secret where config was, a secret in a list.
    "CHANGE-ME",
    "x\u202ey",
    { secure: "v1:sweep" },
    [{ secure: "v1:sweep" }],
];

/** Every path of a value: [path, parent, key] for each field and list element. */
function paths(v: unknown, at: (string | number)[] = []): Array<(string | number)[]> {
    if (Array.isArray(v)) return v.flatMap((x, i) => [[...at, i], ...paths(x, [...at, i])]);
    if (v !== null && typeof v === "object") return Object.entries(v).flatMap(([k, x]) => [[...at, k], ...paths(x, [...at, k])]);
    return [];
}

function setAt(root: Config, p: (string | number)[], value: unknown | typeof DELETE): void {
    let o = root;
    for (const k of p.slice(0, -1)) o = o[k];
    const last = p[p.length - 1];
    if (value === DELETE) {
        if (Array.isArray(o)) o.splice(last as number, 1);
        else delete o[last];
    } else {
        o[last] = value;
    }
}
const DELETE = Symbol("delete");

describe("a sweep of mutations of every field of every committed stack", () => {
    for (const stack of Object.keys(STACKS)) {
        it(`${stack}: every mutation is accepted or refused by path, none crashes`, () => {
            const base = operatorConfig(STACKS[stack]());
            const counts = { cases: 0, refused: 0, accepted: 0 };
            const crashes: string[] = [];
            const unpathed: string[] = [];
            const unescaped: string[] = [];
            const mutations: Array<[string, (c: Config) => void]> = [];
            for (const p of paths(base.config)) {
                if (p[0] === "coop:sshPrivateKey") continue;
                for (const v of [DELETE, ...VALUES]) mutations.push([`${p.join(".")} = ${v === DELETE ? "(deleted)" : JSON.stringify(v)}`, (c) => setAt(c, p, clone(v))]);
                mutations.push([
                    `${p.join(".")} duplicated`,
                    (c) => {
                        let o = c;
                        for (const k of p.slice(0, -1)) o = o[k];
                        if (Array.isArray(o)) o.push(clone(o[p[p.length - 1] as number]));
                    },
                ]);
            }
            for (const p of paths(base.config).filter((q) => typeof q[q.length - 1] === "string")) {
                mutations.push([
                    `${p.join(".")} gains an unknown key`,
                    (c) => {
                        let o = c;
                        for (const k of p) o = o?.[k];
                        if (o !== null && typeof o === "object" && !Array.isArray(o)) o.colour = "red";
                    },
                ]);
            }
            for (const [what, edit] of mutations) {
                const config = clone(base.config);
                edit(config);
                const o = throughProgram(stack, config, base.plaintext);
                counts.cases++;
                if ("crashed" in o) crashes.push(`${what}: ${o.crashed.stack?.split("\n").slice(0, 3).join(" | ")}`);
                else if ("refused" in o) {
                    counts.refused++;
                    for (const l of o.refused) if (!/^[a-z]+:[^\s]*: /.test(l) && o.by === "program") unpathed.push(`${what}: ${l}`);
                    for (const l of o.refused) if (/[\p{Cc}\p{Cf}]/u.test(l) && o.by === "program") unescaped.push(`${what}: ${JSON.stringify(l)}`);
                } else counts.accepted++;
            }
            assert.deepEqual(crashes, [], "no mutation crashes the program");
            assert.deepEqual(unpathed, [], "every refusal names its path");
            assert.deepEqual(unescaped, [], "no refusal prints a control or invisible character raw");
            console.log(`# ${stack}: ${counts.cases} mutations, ${counts.refused} refused by path, ${counts.accepted} accepted`);
        });
    }
});
