// The whole program through the real Pulumi CLI on the suite's own stack (Pulumi.suite.yaml, a copy
// of the local stack's file) and host: up with two co-ops on
// their domains, checks over SSH and HTTP, a no-change up, a new digest for one co-op, a secret
// sentinel through config, removing a co-op, destroy, and nothing left behind.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { quote } from "../../components/remote/shell";
import { exec } from "../../components/remote/ssh";
import { ROOT, RunResult, SUITE_STACK, SUITE_STACK_FILE, pulumi, run, secretPlaces, suiteGet, suiteHost, suiteHostUp, suiteTarget } from "../support";

const STACK_FILE = SUITE_STACK_FILE;
const SENTINEL = "sentinel-api-token-e2e-6d2c";
/** The suite host's name in the stack (.local/machine.suite.json). */
const HOST = "suite-1";

async function onHost(command: string): Promise<string> {
    const r = await exec(suiteTarget(), command);
    assert.equal(r.code, 0, `${command}: ${r.stderr}`);
    return r.stdout.trim();
}

async function served(domain: string): Promise<{ version: string; schema: number; config: string | null }> {
    const res = await suiteGet("/state", domain);
    assert.equal(res.status, 200, `${domain}: ${res.body}`);
    return JSON.parse(res.body);
}

function images(): Record<string, string> {
    return JSON.parse(readFileSync(path.join(ROOT, ".local", "images.json"), "utf8")).images;
}

function up(...extra: string[]): RunResult {
    const r = pulumi(["up", "--stack", SUITE_STACK, "--yes", "--skip-preview", ...extra]);
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    return r;
}

/** Lines of `pulumi up` output that report a resource being changed. */
function changedResources(out: string): string[] {
    return out
        .split("\n")
        .filter((l) => /\b(created|updated|deleted|replaced)\b/.test(l) && /coop:/.test(l))
        .map((l) => l.trim().split(/\s+/)[2]);
}

describe("local stack through the real CLI", () => {
    let stackFile = "";
    const logs: string[] = [];

    before(() => {
        suiteHostUp();
        stackFile = readFileSync(STACK_FILE, "utf8");
        const r = pulumi(["destroy", "--stack", SUITE_STACK, "--yes", "--skip-preview"]);
        assert.equal(r.status, 0, r.stderr);
        // beta keeps the committed file's lack of an image: it runs the machine's demo v1, as after
        // scripts/up.sh.
        pulumi(["config", "set", "--stack", SUITE_STACK, "--path", "coop:coops[0].image", images()["demo:v1"]]);
    });

    after(() => {
        writeFileSync(STACK_FILE, stackFile);
    });

    let agent = "";

    it("pulumi up bootstraps the host and deploys both co-ops on their domains", async () => {
        const r = up();
        logs.push(r.stdout, r.stderr);
        const outputs = JSON.parse(pulumi(["stack", "output", "--stack", SUITE_STACK, "--json"]).stdout);
        assert.deepEqual(outputs.proxyUrls, [`http://${suiteHost().proxy}/`]);
        assert.deepEqual(outputs.hosts, [{ name: HOST, address: suiteTarget().host, port: suiteTarget().port, hostKey: suiteTarget().hostKey.split(" ").slice(0, 2).join(" ") }]);
        assert.deepEqual(outputs.coopUrls, {
            alpha: ["http://alpha.localhost:8080/"],
            beta: ["http://beta.localhost:8080/", "http://www.beta.localhost:8080/"],
        });
        assert.equal(outputs.releases.alpha[HOST].image, images()["demo:v1"]);
        agent = outputs.agents[HOST];
        assert.equal(agent, `/opt/coop/bin/coop-agent-${images()["coop-agent"].split("@sha256:")[1].slice(0, 12)}`);

        const alpha = await served("alpha.localhost");
        assert.deepEqual([alpha.version, alpha.schema], ["v1", 1]);
        assert.equal(alpha.config, "name: Alpha Housing Co-op\nmodules: [members, meetings]\n");
        assert.equal((await served("beta.localhost")).version, "v1");
        assert.equal((await served("www.beta.localhost")).version, "v1");
        assert.equal((await suiteGet("/", "nobody.localhost")).status, 404);
    });

    it("status finds every co-op serving the stack's live release, beta's image from the machine file too", () => {
        const r = run(path.join(ROOT, "scripts", "node-env.sh"), ["status", "--stack", SUITE_STACK, "--json"]);
        assert.equal(r.status, 0, r.stdout + r.stderr);
        const rows = JSON.parse(r.stdout).rows as Array<{ coop: string; stack: string; agrees: boolean }>;
        assert.deepEqual(
            rows.map((x) => [x.coop, x.stack, x.agrees]),
            [
                ["alpha", images()["demo:v1"], true],
                ["beta", images()["demo:v1"], true],
            ],
        );
    });

    it("gives each co-op a DATABASE_URL that says the local cluster has no TLS, so drivers that default to requiring it connect", async () => {
        const url = (await onHost("sed -n 's/^DATABASE_URL=//p' /opt/coop/coops/alpha/env")).trim();
        assert.match(url, /^postgresql:\/\/coop_suite_alpha:[0-9a-f]+@[0-9.]+:5433\/coop_suite_alpha\?sslmode=disable$/);
        // From a container on the co-op network, as the app connects (psql of the backup tools' image).
        const psql = (u: string) => exec(suiteTarget(), `docker run --rm --network coop ${images()["coop-pgtools"]} psql --no-psqlrc -tA -c 'SELECT current_user' ${quote(u)}`);
        const ok = await psql(url);
        assert.equal(ok.stdout.trim(), "coop_suite_alpha", ok.stderr);
        // What Go's lib/pq does without it (its default is require): refused.
        const strict = await psql(url.replace("sslmode=disable", "sslmode=require"));
        assert.notEqual(strict.code, 0);
        assert.match(strict.stderr, /does not support SSL/);
    });

    it("left the host agent of the stack's image, the network and the proxy on the host (checked over SSH)", async () => {
        assert.equal(await onHost(`stat -c '%a %U' ${agent}`), "755 deploy");
        assert.match(await onHost(`${agent} version`), /"version"/);
        assert.equal(await onHost("docker network inspect coop --format '{{.Driver}}'"), "bridge");
        assert.equal(
            await onHost(
                "docker inspect coop-proxy --format '{{.State.Running}} {{.Config.Image}} {{.HostConfig.RestartPolicy.Name}} {{index .HostConfig.LogConfig.Config \"max-size\"}}'",
            ),
            `true ${images()["kamal-proxy"]} unless-stopped 10m`,
        );
        assert.equal(await onHost("docker inspect coop-alpha-blue --format '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}'"), "134217728 500000000");
        assert.equal(await onHost("stat -c %a /opt/coop/coops/beta/env"), "600");
    });

    it("a second up changes nothing", () => {
        const r = up("--expect-no-changes");
        assert.match(r.stdout, /\d+ unchanged/);
        assert.deepEqual(changedResources(r.stdout), []);
    });

    it("a new digest for one co-op cuts over that co-op only", async () => {
        pulumi(["config", "set", "--stack", SUITE_STACK, "--path", "coop:coops[0].image", images()["demo:v2"]]);
        const r = up();
        logs.push(r.stdout, r.stderr);
        assert.deepEqual(changedResources(r.stdout), [`alpha/${HOST}`]);
        const alpha = await served("alpha.localhost");
        assert.deepEqual([alpha.version, alpha.schema], ["v2", 2]);
        assert.equal((await served("beta.localhost")).version, "v1");
        const outputs = JSON.parse(pulumi(["stack", "output", "--stack", SUITE_STACK, "--json"]).stdout);
        assert.deepEqual(outputs.releases.alpha[HOST], { slot: "green", image: images()["demo:v2"] });
    });

    it("a pulumi up killed mid-deploy blocks nothing: the next up converges", async () => {
        pulumi(["config", "set", "--stack", SUITE_STACK, "--path", "coop:coops[0].image", images()["demo:v3-broken"]]);
        const child = spawn(path.join(ROOT, "scripts", "pulumi.sh"), ["up", "--stack", SUITE_STACK, "--yes", "--skip-preview"], { cwd: ROOT, detached: true, stdio: "ignore" });
        // Kill it (and its language host and providers) once the new release is starting on the host.
        await onHost(
            `for i in $(seq 300); do docker ps --no-trunc --filter name=coop-alpha- --format '{{.Image}}' | grep -q '${images()["demo:v3-broken"].slice(-20)}' && exit 0; sleep 0.1; done; exit 1`,
        );
        const exited = new Promise((resolve) => child.on("exit", resolve));
        process.kill(-child.pid!, "SIGKILL");
        await exited;
        // The next command of this project, whatever it is, clears the killed run's lock.
        const set = pulumi(["config", "set", "--stack", SUITE_STACK, "--path", "coop:coops[0].image", images()["demo:v2"]]);
        assert.match(set.stderr, /removed a stale lock on stack suite left by pid \d+, which no longer runs/);
        up();
        assert.equal((await served("alpha.localhost")).version, "v2");
        // The abandoned deploy on the host gives up by itself (its client is gone), puts the
        // slot back and frees the lock: no orphan, no lock held forever.
        assert.equal(
            await onHost(
                "for i in $(seq 300); do n=$(docker ps --filter name=coop-alpha- -q | wc -l); [ $n = 1 ] && [ ! -e /opt/coop/coops/alpha/lock ] && break; sleep 0.1; done; docker ps -a --filter name=coop-alpha- --format '{{.Names}}' | sort | tr '\\n' ' '; docker ps --filter name=coop-alpha- -q | wc -l",
            ),
            "coop-alpha-blue coop-alpha-green 1",
        );
        assert.equal(await onHost("test -e /opt/coop/coops/alpha/lock && echo held || echo free"), "free");
    });

    it("a secret set in config reaches the app and no log or state in plaintext", async () => {
        const set = pulumi(["config", "set", "--stack", SUITE_STACK, "--secret", "coop:betaApiToken", SENTINEL]);
        assert.equal(set.status, 0, set.stderr);
        const r = up();
        logs.push(r.stdout, r.stderr);
        assert.deepEqual(changedResources(r.stdout).sort(), [`beta/${HOST}`]);
        assert.equal(
            await onHost("docker inspect coop-beta-green --format '{{range .Config.Env}}{{println .}}{{end}}' | grep -c '^API_TOKEN=sentinel-api-token-e2e-6d2[c]$'"),
            "1",
        );

        const places = await secretPlaces(logs, onHost);
        const leaked = Object.entries(places)
            .filter(([, text]) => text.includes(SENTINEL))
            .map(([where]) => where);
        assert.deepEqual(leaked, []);
    });

    it("removing a co-op from config stops it and its route and keeps its data", async () => {
        const rm = pulumi(["config", "rm", "--stack", SUITE_STACK, "--path", "coop:coops[1]"]);
        assert.equal(rm.status, 0, rm.stderr);
        // Its secret must go too: a key nothing reads is refused, by name, before anything runs.
        const refused = pulumi(["up", "--stack", SUITE_STACK, "--yes", "--skip-preview"]);
        assert.notEqual(refused.status, 0);
        assert.match(refused.stdout + refused.stderr, /coop:betaApiToken: unknown key/);
        assert.doesNotMatch(refused.stdout + refused.stderr, /at parseStackConfig/, "a config error prints no stack trace");
        assert.equal(pulumi(["config", "rm", "--stack", SUITE_STACK, "coop:betaApiToken"]).status, 0);
        assert.equal((await served("beta.localhost")).version, "v1", "nothing changed while the config was refused");
        up();
        assert.equal((await suiteGet("/", "beta.localhost")).status, 404);
        assert.equal(await onHost("docker ps -a --filter name=coop-beta- -q | wc -l"), "0");
        assert.equal(await onHost("docker volume ls -q --filter name=coop-beta-data"), "coop-beta-data");
        assert.equal((await served("alpha.localhost")).version, "v2");
    });

    it("pulumi destroy removes everything up made (alpha's data, by its flag, too)", async () => {
        const r = pulumi(["destroy", "--stack", SUITE_STACK, "--yes", "--skip-preview"]);
        assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
        assert.equal(await onHost("docker ps -a --filter name=coop- -q | wc -l"), "0");
        assert.equal(await onHost("docker network ls --filter name=^coop$ -q | wc -l"), "0");
        assert.equal(await onHost("docker volume ls -q --filter name=coop-proxy-state --filter name=coop-alpha-data | wc -l"), "0");
        assert.equal(await onHost("test -e /opt/coop/bin -o -e /opt/coop/coops -o -e /opt/coop/proxy && echo present || echo gone"), "gone");
        const state = JSON.parse(pulumi(["stack", "export", "--stack", SUITE_STACK]).stdout);
        assert.deepEqual(state.deployment.resources ?? [], []);
        // beta's volume was kept on purpose when beta was removed; this run's leftovers go now.
        await onHost("docker volume rm coop-beta-data >/dev/null");
    });
});
