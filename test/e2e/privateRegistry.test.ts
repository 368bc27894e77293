// Private images through the real CLI, on the suite's own stack and host: every image (the agent,
// the proxy, a co-op's app and migrations, the backups' tools) behind the registry of
// scripts/local-hosts.sh that needs a login (htpasswd), coop:registries naming it and a secret
// key holding its token. The token reaches the host through stdin into a 0600 file; a wrong token
// or a missing image is refused by config path before anything changes; the token is in no log,
// state, stack file or process argument.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { holderId } from "../../components/hostCommands";
import { exec } from "../../components/remote/ssh";
import { RunResult, SUITE_STACK, SUITE_STACK_FILE, behindLogin, localImages, privateRegistry, pulumi, secretPlaces, suiteGet, suiteHostUp, suiteTarget } from "../support";

const HOST = "suite-1";
const LOGINS = `/opt/coop/registries/${holderId("coop", SUITE_STACK, HOST)}`;

async function onHost(command: string): Promise<string> {
    const r = await exec(suiteTarget(), command);
    assert.equal(r.code, 0, `${command}: ${r.stderr}`);
    return r.stdout.trim();
}

async function version(domain: string): Promise<string> {
    const res = await suiteGet("/version", domain);
    assert.equal(res.status, 200, `${domain}: ${res.body}`);
    return res.body.trim();
}

function set(key: string, value: string, ...flags: string[]): void {
    const r = pulumi(["config", "set", "--stack", SUITE_STACK, ...flags, key, value]);
    assert.equal(r.status, 0, r.stderr);
}

function up(): RunResult {
    return pulumi(["up", "--stack", SUITE_STACK, "--yes", "--skip-preview"]);
}

describe("private images through the real CLI (a registry that needs a login)", () => {
    let stackFile = "";
    const logs: string[] = [];
    let images: Record<string, string>;
    let token = "";

    before(async () => {
        suiteHostUp();
        stackFile = readFileSync(SUITE_STACK_FILE, "utf8");
        assert.equal(pulumi(["destroy", "--stack", SUITE_STACK, "--yes", "--skip-preview"]).status, 0);
        images = localImages();
        token = privateRegistry().password;
        // As on a host that never pulled them under the private registry's name.
        await onHost("docker image ls --digests --format '{{.Repository}}@{{.Digest}}' | grep '^127.0.0.1:5002/' | xargs -r docker image rm >/dev/null 2>&1; true");
        const p = privateRegistry();
        set("coop:registries", JSON.stringify([{ server: p.server, username: p.username, passwordKey: "registryToken" }]));
        set("coop:registryToken", token, "--secret");
        set("coop:agent", behindLogin(images["coop-agent"]));
        set("coop:proxy.image", behindLogin(images["kamal-proxy"]), "--path");
        set("coop:backups.image", behindLogin(images["coop-pgtools"]), "--path");
        set("coop:coops[0].image", behindLogin(images["demo:v1"]), "--path");
    });

    after(() => {
        pulumi(["destroy", "--stack", SUITE_STACK, "--yes", "--skip-preview"]);
        writeFileSync(SUITE_STACK_FILE, stackFile);
    });

    it("up pulls every image with the stack's login, which the host keeps in a file only the deploy user reads", async () => {
        const r = up();
        logs.push(r.stdout, r.stderr);
        assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
        assert.equal(await version("alpha.localhost"), "v1");
        assert.equal(await onHost(`stat -c '%a %U' ${LOGINS} ${LOGINS}/config.json`), "700 deploy\n600 deploy");
        assert.equal(await onHost("docker inspect coop-proxy --format '{{.Config.Image}}'"), behindLogin(images["kamal-proxy"]));
        assert.equal(await onHost("docker inspect coop-alpha-blue --format '{{.Config.Image}}'"), behindLogin(images["demo:v1"]));
        assert.match(
            await onHost("docker image ls --digests --format '{{.Repository}}@{{.Digest}}'"),
            new RegExp(`^${behindLogin(images["coop-agent"]).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "m"),
        );
    });

    it("a wrong token, or an image the registry does not hold, is refused by config path before anything changes", async () => {
        set("coop:registryToken", "not-the-token", "--secret");
        set("coop:coops[0].image", behindLogin(images["demo:v2"]), "--path");
        let r = up();
        logs.push(r.stdout, r.stderr);
        assert.notEqual(r.status, 0);
        assert.match(
            r.stdout + r.stderr,
            /coop:agent: 127\.0\.0\.1:5002\/coop-agent@sha256:[0-9a-f]{64}: 127\.0\.0\.1:5002 refused the pull as coop \(coop:registries\[0\]\): HTTP 401 .*; check the token in coop:registryToken/,
        );
        assert.match(r.stdout + r.stderr, /coop:coops\[0\]\.image: .*refused the pull as coop/);
        assert.doesNotMatch(
            r.stdout + r.stderr,
            /(coop:app:|dynamic\/coop:)\w+\s+\S+\s+(creating|updating|deleting|replacing|created|updated|deleted|replaced)\b/,
            "nothing was touched",
        );
        assert.doesNotMatch(r.stdout + r.stderr, /at checkImages|at Object\.<anonymous>/, "no stack trace");
        assert.equal(await version("alpha.localhost"), "v1");

        set("coop:registryToken", token, "--secret");
        set("coop:coops[0].image", behindLogin(images["demo:v2"]).replace(/@sha256:.*/, `@sha256:${"0".repeat(64)}`), "--path");
        r = up();
        assert.notEqual(r.status, 0);
        assert.match(r.stdout + r.stderr, /coop:coops\[0\]\.image: 127\.0\.0\.1:5002\/coop-demo@sha256:0{64}: 127\.0\.0\.1:5002 has no such image \(HTTP 404 MANIFEST_UNKNOWN/);
        assert.equal(await version("alpha.localhost"), "v1");
    });

    it("with the token right again, a release with migrations pulls the app and the backup tools with it", async () => {
        set("coop:registryToken", token, "--secret");
        set("coop:coops[0].image", behindLogin(images["demo:v2"]), "--path");
        const r = up();
        logs.push(r.stdout, r.stderr);
        assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
        assert.equal(await version("alpha.localhost"), "v2");
        assert.match(
            await onHost("docker image ls --digests --format '{{.Repository}}@{{.Digest}}'"),
            /^127\.0\.0\.1:5002\/coop-pgtools@sha256:/m,
            "the backup before the migrations ran the private tools",
        );
    });

    it("the token is in no log, state, stack file or process argument, and leaves the host with the stack", async () => {
        const b64 = Buffer.from(`coop:${token}`).toString("base64");
        const places = await secretPlaces(logs, onHost);
        const leaked = Object.entries(places)
            .filter(([, text]) => text.includes(token) || text.includes(b64))
            .map(([where]) => where);
        assert.deepEqual(leaked, []);

        const r = pulumi(["destroy", "--stack", SUITE_STACK, "--yes", "--skip-preview"]);
        assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
        assert.equal(await onHost("test -e /opt/coop/registries && echo there || echo gone"), "gone");
    });
});
