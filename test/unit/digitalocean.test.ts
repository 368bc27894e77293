// The infrastructure layer's pure parts: the coop:digitalocean parser (every error by path), the
// firewall rules, the certificate names, the DNS records, and the exact cloud-init text.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, SECRET_PRESENT, parseStackConfig } from "../../components/config";
import { cloudInit } from "../../components/digitalocean/cloudInit";
import { firewallRules } from "../../components/digitalocean/network";
import { certificateNames, dnsRecords, zoneOf } from "../../components/digitalocean/dns";

/** Parses with the deploy key set as a secret, as every stack has it. */
const parse = (raw: Record<string, unknown>) => parseStackConfig(raw, ["sshPrivateKey"]);

const DIGEST = `ghcr.io/example-coop/coop-app@sha256:${"b".repeat(64)}`;
const PROXY = `ghcr.io/example-coop/kamal-proxy@sha256:${"c".repeat(64)}`;
const DEPLOY_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKhSIrBDJO3FZ6GraOLKddfv/BRbJpD+ATtojKA5puLX deploy@coop";

function cloud(environment: string, d: Record<string, unknown> = {}, coops?: unknown[]): Record<string, unknown> {
    return {
        environment,
        proxy: { image: PROXY },
        agent: `ghcr.io/example-coop/coop-agent@sha256:${"9".repeat(64)}`,
        sshPrivateKey: SECRET_PRESENT,
        digitalocean: {
            region: "ams3",
            vpcIpRange: "10.130.0.0/20",
            sshAllowlist: ["203.0.113.10/32"],
            deployPublicKey: DEPLOY_KEY,
            droplets: { count: 2, size: "s-2vcpu-4gb" },
            database: { size: "db-s-1vcpu-1gb" },
            cache: { size: "db-s-1vcpu-1gb" },
            dnsZones: ["coophost.example"],
            ...d,
        },
        coops: coops ?? [{ id: "alpha", domains: ["alpha.coophost.example"], image: DIGEST }],
    };
}

function errorsOf(raw: Record<string, unknown>): string[] {
    try {
        parseStackConfig(raw, ["sshPrivateKey"]);
    } catch (e) {
        assert.ok(e instanceof ConfigError, String(e));
        return e.errors;
    }
    assert.fail("expected the config to be refused");
}

describe("coop:digitalocean", () => {
    it("fills defaults: prod backs up and protects, two hosts put TLS on the load balancer", () => {
        const cfg = parse(cloud("prod", { droplets: { count: 2, size: "s-2vcpu-4gb" } }));
        const d = cfg.digitalocean!;
        assert.deepEqual(d.droplets, { count: 2, size: "s-2vcpu-4gb", image: "ubuntu-24-04-x64", backups: true, backupPolicy: { plan: "weekly", weekday: "SUN", hour: 4 } });
        assert.deepEqual(d.database, { version: "16", size: "db-s-1vcpu-1gb", nodes: 1, region: "ams3", poolSize: 3, envName: "DATABASE_URL" });
        assert.deepEqual(d.cache, { version: "8", size: "db-s-1vcpu-1gb", nodes: 1, region: "ams3", evictionPolicy: "allkeys-lru", envName: "REDIS_URL" });
        assert.equal(d.protect, true);
        assert.equal(cfg.proxy.tls, false, "the load balancer terminates TLS");
        assert.equal(parse(cloud("dev", { droplets: { count: 1, size: "s-1vcpu-2gb" } })).proxy.tls, true, "a single host does its own TLS");
        assert.equal(parse(cloud("dev")).digitalocean!.protect, false);
    });

    it("lists every mistake by path before anything is registered", () => {
        const errors = errorsOf(
            cloud(
                "prod",
                {
                    regoin: "ams3",
                    sshAllowlist: ["203.0.113.10/32", "0.0.0.0/0", "10.0.0.0/33"],
                    droplets: { count: 0, size: "s-2vcpu-4gb", backups: false },
                    database: { size: "db-s-1vcpu-1gb", region: "nyc3", nodes: "two" },
                    cache: { size: 5 },
                    protect: false,
                },
                [
                    { id: "alpha", domains: ["alpha.coophost.example"], image: DIGEST },
                    { id: "beta", domains: ["alpha.coophost.example", "beta.elsewhere.example"], image: DIGEST },
                ],
            ),
        );
        assert.deepEqual(errors, [
            "coop:digitalocean.regoin: unknown key (known: region, vpcIpRange, sshAllowlist, sshKeyFingerprints, deployPublicKey, droplets, database, cache, dnsZones, loadBalancerSizeUnits, alerts, protect)",
            'coop:digitalocean.sshAllowlist[1]: "0.0.0.0/0" opens SSH to the whole internet, which prod refuses; list the operators\' addresses',
            'coop:digitalocean.sshAllowlist[2]: "10.0.0.0/33" is not a valid CIDR',
            "coop:digitalocean.droplets.count: must be an integer from 1 to 20",
            "coop:digitalocean.droplets.backups: must be true in prod",
            "coop:digitalocean.database.nodes: must be an integer from 1 to 3",
            "coop:digitalocean.cache.size: must be a non-empty string",
            "coop:digitalocean.protect: must stay true in prod: it is what stops a destroy from deleting the databases",
            'coop:digitalocean.database.region: "nyc3" differs from the VPC\'s region "ams3"; a cluster joins a VPC only in its own region',
            'coop:coops[1].domains[0]: "alpha.coophost.example" is already served by coop "alpha"',
            'coop:coops[1].domains[1]: "beta.elsewhere.example" is in none of coop:digitalocean.dnsZones (coophost.example)',
        ]);
    });

    it("allows SSH from anywhere in dev only, refuses hosts lists and infrastructure on the wrong stacks", () => {
        assert.doesNotThrow(() => parse(cloud("dev", { sshAllowlist: ["0.0.0.0/0"] })));
        assert.deepEqual(errorsOf(cloud("uat", { sshAllowlist: ["::/0"] })), [
            'coop:digitalocean.sshAllowlist[0]: "::/0" opens SSH to the whole internet, which uat refuses; list the operators\' addresses',
        ]);
        assert.deepEqual(errorsOf({ ...cloud("dev"), hosts: [] }), ["coop:hosts: must not be set on dev: its hosts are the droplets coop:digitalocean declares"]);
        const { digitalocean: _, ...noInfra } = cloud("uat");
        assert.deepEqual(errorsOf(noInfra), ["coop:digitalocean: is required on uat (region, VPC, droplets, database, cache, DNS zones)"]);
        assert.deepEqual(errorsOf({ ...cloud("prod"), proxy: { image: PROXY, tls: true } }), [
            "coop:proxy.tls: must be false when droplets.count > 1: the load balancer terminates TLS and forwards plain HTTP",
        ]);
    });

    it("refuses a co-op that sets the variables the stack fills from its database and cache", () => {
        const errors = errorsOf(cloud("dev", {}, [{ id: "alpha", domains: ["alpha.coophost.example"], image: DIGEST, env: { REDIS_URL: "redis://x" } }]));
        assert.deepEqual(errors, ["coop:coops[0]: sets REDIS_URL, which the stack sets from its managed database or cache"]);
    });

    it("refuses more certificate names than Let's Encrypt issues", () => {
        const zones = Array.from({ length: 51 }, (_, i) => `coop${i}.example`);
        const coops = zones.map((z, i) => ({ id: `c${i}`, domains: [`www.${z}`], image: DIGEST }));
        // A database large enough for 51 pools, so that only the certificate is wrong.
        assert.deepEqual(errorsOf(cloud("prod", { dnsZones: zones, database: { size: "db-s-8vcpu-32gb" } }, coops)), [
            "coop:coops: the co-op domains need 102 names on the load balancer's certificate; Let's Encrypt allows 100 (put co-ops one label below a zone: one wildcard covers them all)",
        ]);
    });
});

describe("firewallRules", () => {
    it("takes web traffic only from the load balancer when there is one, SSH only from the allowlist, and allows outbound", () => {
        assert.deepEqual(firewallRules({ sshAllowlist: ["203.0.113.10/32"], loadBalancerUid: "lb-1" }), {
            inbound: [
                { protocol: "tcp", portRange: "22", sourceAddresses: ["203.0.113.10/32"] },
                { protocol: "tcp", portRange: "80", sourceLoadBalancerUids: ["lb-1"] },
                { protocol: "tcp", portRange: "443", sourceLoadBalancerUids: ["lb-1"] },
                { protocol: "icmp", sourceAddresses: ["0.0.0.0/0", "::/0"] },
            ],
            outbound: [
                { protocol: "tcp", portRange: "1-65535", destinationAddresses: ["0.0.0.0/0", "::/0"] },
                { protocol: "udp", portRange: "1-65535", destinationAddresses: ["0.0.0.0/0", "::/0"] },
                { protocol: "icmp", destinationAddresses: ["0.0.0.0/0", "::/0"] },
            ],
        });
        assert.deepEqual(firewallRules({ sshAllowlist: [] }).inbound[1], { protocol: "tcp", portRange: "80", sourceAddresses: ["0.0.0.0/0", "::/0"] });
    });
});

describe("names in DNS", () => {
    it("finds a domain's zone by the longest suffix", () => {
        assert.equal(zoneOf("a.uat.coophost.example", ["coophost.example", "uat.coophost.example"]), "uat.coophost.example");
        assert.equal(zoneOf("coophost.example", ["coophost.example"]), "coophost.example");
        assert.equal(zoneOf("notcoophost.example", ["coophost.example"]), undefined);
    });

    it("covers co-ops one label below a zone with its wildcard, deeper ones by name", () => {
        assert.deepEqual(
            certificateNames(["alpha.coophost.example", "beta.coophost.example", "x.y.coophost.example", "riverside.example"], ["coophost.example", "riverside.example"]),
            ["*.coophost.example", "*.riverside.example", "coophost.example", "riverside.example", "x.y.coophost.example"],
        );
    });

    it("makes a wildcard per zone for the co-ops one label below it, @ for an apex, deeper names one by one", () => {
        const domains = ["riverside.example", "www.riverside.example", "a.b.coophost.example", "alpha.coophost.example", "beta.coophost.example"];
        assert.deepEqual(dnsRecords(domains, ["coophost.example", "riverside.example"]), [
            { zone: "coophost.example", domain: "*.coophost.example", name: "*" },
            { zone: "riverside.example", domain: "*.riverside.example", name: "*" },
            { zone: "coophost.example", domain: "a.b.coophost.example", name: "a.b" },
            { zone: "riverside.example", domain: "riverside.example", name: "@" },
        ]);
        // More co-ops under a zone, no more records.
        const many = Array.from({ length: 200 }, (_, i) => `c${i}.coophost.example`);
        assert.equal(dnsRecords(many, ["coophost.example"]).length, 1);
    });
});

describe("cloudInit", () => {
    const hostKey = {
        publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKey prod-app-1",
        privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nxyz\n-----END OPENSSH PRIVATE KEY-----\n",
    };
    const args = { deployUser: "deploy", deployPublicKey: DEPLOY_KEY, hostRoot: "/opt/coop", hostKey };

    it("writes the exact document", () => {
        assert.equal(
            cloudInit(args),
            `#cloud-config
disable_root: true
ssh_pwauth: false
ssh_deletekeys: true
ssh_keys:
  ed25519_private: |
    -----BEGIN OPENSSH PRIVATE KEY-----
    xyz
    -----END OPENSSH PRIVATE KEY-----
  ed25519_public: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKey prod-app-1"
groups: [docker]
users:
  - name: "deploy"
    groups: [docker]
    shell: /bin/bash
    lock_passwd: true
    ssh_authorized_keys: ["${DEPLOY_KEY}"]
apt:
  sources:
    docker.list:
      source: "deb [signed-by=$KEY_FILE] https://download.docker.com/linux/ubuntu $RELEASE stable"
      keyid: "9DC858229FC7DD38854AE2D88D81803C0EBFCD88"
package_update: true
package_upgrade: true
packages: [docker-ce, docker-ce-cli, containerd.io, docker-buildx-plugin, docker-compose-plugin, unattended-upgrades]
write_files:
  - path: "/etc/ssh/sshd_config.d/10-coop-hardening.conf"
    permissions: "0644"
    content: |
      PasswordAuthentication no
      KbdInteractiveAuthentication no
      PermitRootLogin no
      PubkeyAuthentication yes
  - path: "/etc/apt/apt.conf.d/20auto-upgrades"
    permissions: "0644"
    content: |
      APT::Periodic::Update-Package-Lists "1";
      APT::Periodic::Unattended-Upgrade "1";
  - path: "/etc/docker/daemon.json"
    permissions: "0644"
    content: |
      {"log-driver":"json-file","log-opts":{"max-size":"10m","max-file":"3"},"live-restore":true}
  - path: "/etc/systemd/system/coop-agent.service"
    permissions: "0644"
    content: |
      [Unit]
      Description=coop host agent: the proxy and each co-op's live slot back whenever the Docker engine starts
      After=docker.service
      Wants=docker.service
      StartLimitIntervalSec=0

      [Service]
      User=deploy
      ExecStart=/opt/coop/bin/coop-agent watch
      Restart=always
      RestartSec=5

      [Install]
      WantedBy=multi-user.target
runcmd:
  - [install, -d, -o, "deploy", -g, "deploy", -m, "0755", "/opt/coop"]
  - [systemctl, enable, --now, docker]
  - [systemctl, restart, docker]
  - [systemctl, restart, ssh]
  - [systemctl, daemon-reload]
  - [systemctl, enable, --now, coop-agent.service]
`,
        );
    });

    it("refuses a host key that is not ed25519", () => {
        assert.throws(() => cloudInit({ ...args, hostKey: { ...hostKey, publicKey: "ssh-rsa AAAA" } }), /hostKey.publicKey must be an ssh-ed25519 key/);
    });
});

describe("host keys", () => {
    it("are always well-formed (ssh2's generator alone is not: about one in 230 is a byte short)", () => {
        const { generateHostKey } = require("../../components/remote/hostKey") as typeof import("../../components/remote/hostKey");
        const { isSshPublicKey } = require("../../components/rules") as typeof import("../../components/rules");
        const { utils } = require("ssh2") as typeof import("ssh2");
        for (let i = 0; i < 2000; i++) {
            const k = generateHostKey("h");
            assert.ok(isSshPublicKey(k.publicKey), k.publicKey);
            assert.ok(!(utils.parseKey(k.privateKey) instanceof Error));
        }
    });
});
