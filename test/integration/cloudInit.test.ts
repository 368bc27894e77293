// The droplets' boot config checked by the real tools that will read it: cloud-init's own schema
// validator, ssh-keygen on the host key the program generates, and sshd's config test with the
// hardening drop-in. No droplet is needed to find a typo that would brick one.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { cloudInit } from "../../components/digitalocean/cloudInit";
import { generateHostKey } from "../../components/remote/hostKey";
import { run } from "../support";

const dir = mkdtempSync(path.join(tmpdir(), "coop-cloudinit-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const key = generateHostKey("prod-app-1");
const deployKey = generateHostKey("deploy@coop").publicKey;
const userData = cloudInit({ deployUser: "deploy", deployPublicKey: deployKey, hostRoot: "/opt/coop", hostKey: key });

describe("droplet boot config (real tools)", () => {
    it("passes cloud-init's schema validation", () => {
        const file = path.join(dir, "user-data");
        writeFileSync(file, userData);
        const r = run("cloud-init", ["schema", "--config-file", file]);
        assert.equal(r.status, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /Valid cloud-config/);
    });

    it("installs a systemd unit for the host's healing that systemd-analyze accepts, running the agent's stable path", () => {
        const unit = /path: "\/etc\/systemd\/system\/coop-agent\.service"\n.*\n {4}content: \|\n((?: {6}.*\n|\n)+)/.exec(userData);
        assert.ok(unit, "the unit is in write_files");
        const text = unit[1].replace(/^ {6}/gm, "");
        assert.match(text, /^ExecStart=\/opt\/coop\/bin\/coop-agent watch$/m);
        assert.match(userData, /^ {2}- \[systemctl, enable, --now, coop-agent\.service\]$/m);
        const which = run("bash", ["-c", "command -v systemd-analyze"]);
        if (which.status !== 0) {
            console.log("systemd-analyze is not installed: the unit's text is checked, not its syntax");
            return;
        }
        const file = path.join(dir, "coop-agent.service");
        writeFileSync(file, text);
        // verify also wants the binary to exist; a missing one is the only complaint allowed.
        const r = run("systemd-analyze", ["verify", file]);
        const complaints = (r.stdout + r.stderr)
            .split("\n")
            .filter((l) => l.trim() !== "" && !/Command \/opt\/coop\/bin\/coop-agent is not executable: No such file or directory$/.test(l));
        assert.deepEqual(complaints, [], r.stdout + r.stderr);
    });

    it("carries a host key that ssh-keygen reads, and whose public half is the one connections pin", () => {
        const file = path.join(dir, "host_key");
        writeFileSync(file, key.privateKey, { mode: 0o600 });
        const r = run("ssh-keygen", ["-y", "-f", file]);
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stdout.trim().split(" ").slice(0, 2).join(" "), key.publicKey.split(" ").slice(0, 2).join(" "));
        assert.ok(userData.includes(`ed25519_public: ${JSON.stringify(key.publicKey)}`));
    });

    it("hardens sshd with a drop-in sshd accepts: no passwords, no root", () => {
        const dropIn = /path: "\/etc\/ssh\/sshd_config\.d\/10-coop-hardening\.conf"\n.*\n {4}content: \|\n((?: {6}.*\n)+)/.exec(userData);
        assert.ok(dropIn, "the drop-in is in write_files");
        const text = dropIn[1].replace(/^ {6}/gm, "");
        const conf = path.join(dir, "sshd_config");
        writeFileSync(conf, `${text}HostKey ${path.join(dir, "host_key")}\n`);
        const r = run("/usr/sbin/sshd", ["-T", "-f", conf]);
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout, /^passwordauthentication no$/m);
        assert.match(r.stdout, /^permitrootlogin no$/m);
        assert.match(r.stdout, /^kbdinteractiveauthentication no$/m);
        assert.ok(readFileSync(conf, "utf8").includes("PasswordAuthentication no"));
    });
});
