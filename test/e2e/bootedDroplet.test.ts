// A droplet booted from the user data the program generates (scripts/droplet.sh: systemd as PID
// 1 in namespaces of its own, cloud-init from a NoCloud seed), then used by the program as a host
// through the real CLI. What the emulation changes, and what it leaves unverified, is in the
// script's header; the user data differs from a dev droplet's in one input (`docker`), which
// the first test checks.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { Client } from "ssh2";
import { cloudInit } from "../../components/digitalocean/cloudInit";
import { bootWaitCommand } from "../../components/hostCommands";
import { generateHostKey } from "../../components/remote/hostKey";
import { render } from "../../components/remote/shell";
import { SshTarget, exec } from "../../components/remote/ssh";
import { ROOT, getVia, localHostsUp, pulumi, run, runOk, within } from "../support";

const STACK = "droplet";
const STACK_FILE = path.join(ROOT, `Pulumi.${STACK}.yaml`);
const DIR = path.join(ROOT, ".local", "droplet-test");
const DROPLET = path.join(ROOT, "scripts", "droplet.sh");
const env = { PULUMI_CONFIG_PASSPHRASE: "local-stack-only-not-a-secret" };

/** A dev droplet's cloud-init arguments (appHosts.ts: the stack's deploy user, hostRoot and key, a host key of its own). */
function dropletArgs() {
    const deploy = generateHostKey("coop-deploy");
    return { deploy, args: { deployUser: "deploy", deployPublicKey: deploy.publicKey, hostRoot: "/opt/coop", hostKey: generateHostKey("droplet-1") } };
}

describe("a droplet booted from its own cloud-init, then a host of the program", () => {
    const { deploy, args } = dropletArgs();
    let target: SshTarget;
    let address = "";
    const devNull = statSync("/dev/null");

    before(() => {
        localHostsUp();
        mkdirSync(DIR, { recursive: true });
        writeFileSync(path.join(DIR, "user-data"), cloudInit({ ...args, docker: "preinstalled" }), { mode: 0o600 });
        address = runOk(DROPLET, ["boot", "1", path.join(DIR, "user-data")], { timeoutMs: 900000 })
            .stdout.trim()
            .split("\n")
            .at(-1)!;
        target = { host: address, port: 22, user: "deploy", privateKey: deploy.privateKey, hostKey: args.hostKey.publicKey, connectTimeoutMs: 120000 };
    });

    after(() => {
        pulumi(["destroy", "--stack", STACK, "--yes", "--skip-preview"], { env });
        run(DROPLET, ["down", "1"]);
        const now = statSync("/dev/null");
        assert.deepEqual([now.mode, now.uid, now.gid], [devNull.mode, devNull.uid, devNull.gid], "this machine's /dev/null is as it was");
    });

    it("boots the program's user data, which differs from a dev droplet's in the Docker packages alone", () => {
        const dev = cloudInit(args).split("\n");
        const booted = cloudInit({ ...args, docker: "preinstalled" }).split("\n");
        assert.deepEqual(
            dev.filter((l) => !booted.includes(l)),
            [
                "apt:",
                "  sources:",
                "    docker.list:",
                '      source: "deb [signed-by=$KEY_FILE] https://download.docker.com/linux/ubuntu $RELEASE stable"',
                '      keyid: "9DC858229FC7DD38854AE2D88D81803C0EBFCD88"',
                "package_update: true",
                "package_upgrade: true",
                "packages: [docker-ce, docker-ce-cli, containerd.io, docker-buildx-plugin, docker-compose-plugin, unattended-upgrades]",
            ],
        );
        assert.deepEqual(
            booted.filter((l) => !dev.includes(l)),
            [],
        );
    });

    it("finishes cloud-init without an error, presenting the host key the program made (the connection pins it)", async () => {
        // What a cloud stack's first remote command on a droplet runs (`<host>/boot`).
        const r = await exec(target, render(bootWaitCommand()));
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /^status: done$/m);
        assert.match((await exec(target, "cloud-init status --long")).stdout, /DataSourceNoCloud/);
    });

    it("lets in the deploy key only: sshd offers no password or keyboard-interactive login, and root gets none", async () => {
        const offered = await new Promise<string[]>((resolve, reject) => {
            const c = new Client();
            c.on("error", () => undefined);
            c.connect({
                host: address,
                port: 22,
                username: "root",
                hostVerifier: () => true,
                readyTimeout: 20000,
                // ssh2 asks first with no list (then "none" learns what the server offers), then with the server's list.
                authHandler: (methodsLeft, _partial, next) => {
                    if (methodsLeft === null) return next({ type: "none", username: "root" });
                    c.end();
                    resolve(methodsLeft);
                    return next(false as unknown as "none");
                },
            });
            setTimeout(() => reject(new Error("no answer from sshd")), 30000);
        });
        assert.deepEqual(offered, ["publickey"]);
        await assert.rejects(exec({ ...target, user: "root", connectTimeoutMs: 5000 }, "true"), /authentication/i, "the deploy key does not log in as root");
        const pid = runOk(DROPLET, ["pid", "1"]).stdout.trim();
        const effective = runOk("nsenter", ["-t", pid, "-a", "sshd", "-T"]).stdout;
        for (const line of ["passwordauthentication no", "kbdinteractiveauthentication no", "permitrootlogin no", "pubkeyauthentication yes"]) {
            assert.match(effective, new RegExp(`^${line}$`, "m"));
        }
    });

    it("makes the deploy user (in docker, no sudo), its hostRoot, and the agent's unit, enabled and waiting for an agent", async () => {
        const r = await exec(
            target,
            "id -nG; stat -c '%U %a' /opt/coop; docker info --format '{{.ServerVersion}}' >/dev/null && echo docker-ok; sudo -n true 2>/dev/null && echo sudo || echo no-sudo; systemctl is-enabled coop-agent.service",
        );
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(r.stdout.trim().split("\n"), ["deploy docker", "deploy 755", "docker-ok", "no-sudo", "enabled"]);
    });

    it("is a host of the program: pulumi up deploys a co-op to it over SSH, which serves, and the unit then runs the agent's watch", async () => {
        // The local stack's file on this droplet: its machine file names the droplet, its key and this machine's images.
        writeFileSync(path.join(DIR, "deploy_ed25519"), deploy.privateKey, { mode: 0o600 });
        writeFileSync(
            path.join(ROOT, ".local", `machine.${STACK}.json`),
            JSON.stringify({
                hosts: [{ name: "droplet-1", address, port: 22, hostKey: args.hostKey.publicKey }],
                deployKeyFile: "droplet-test/deploy_ed25519",
                imagesFile: "images.json",
            }),
        );
        const local = readFileSync(path.join(ROOT, "Pulumi.local.yaml"), "utf8");
        assert.match(local, /^ {4}bindAddress: 127\.0\.0\.1$/m);
        writeFileSync(
            STACK_FILE,
            `# Written by test/e2e/bootedDroplet.test.ts: the local stack on an emulated droplet.\n${local.replace(/^( {4}bindAddress:) 127\.0\.0\.1$/m, "$1 0.0.0.0")}`,
        );
        if (pulumi(["stack", "ls", "--json"], { env }).stdout.includes(`"name": "${STACK}"`) === false) {
            assert.equal(pulumi(["stack", "init", STACK, "--no-select"], { env }).status, 0);
        }
        const r = pulumi(["up", "--stack", STACK, "--yes", "--skip-preview"], { env });
        assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
        const served = await getVia(`${address}:8080`, "/version", "alpha.localhost");
        assert.deepEqual([served.status, served.body.trim()], [200, "v1"]);
        await within(30, "coop-agent.service active", async () => (await exec(target, "systemctl is-active coop-agent.service")).stdout.trim() === "active");
        assert.equal((await exec(target, "pgrep -u deploy -f 'coop-agent watch' >/dev/null && echo watching")).stdout.trim(), "watching");
    });
});
