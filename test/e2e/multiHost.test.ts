// The multi stack on three hosts of their own (network and mount namespaces, each with its own
// sshd, dockerd and proxy; scripts/netns-hosts.sh) behind haproxy, through the real CLI:
// (a) a release whose health check fails on the first host reaches no other host, and every host
// keeps serving the old one; (b) a host cut off (its link down) in the middle of a rolling release:
// `up` fails naming it, the others serve through the balancer, and a plain `up` converges once it
// is back; (c) three hosts to two takes the dropped host out of the balancer before its co-ops
// stop, and two to three deploys every co-op on the new host before the balancer sends it traffic;
// (d) a co-op whose releases migrate the shared database (the local PostgreSQL and S3 server,
// relayed to the hosts): one dump per release, taken on the first host before its migrations, and
// `rollback --restore-db` holds the co-op on every host, restores the rows and puts the old release back.
import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it, TestContext } from "node:test";
import { images } from "../../bench/common";
import {
    BackgroundUp,
    balancerStates,
    MULTI_STACK,
    MULTI_STACK_FILE,
    keepStackFile,
    multiHostSkipReason,
    multiHostsUp,
    multiMachine,
    multiPulumi,
    multiUp,
    multiUpAsync,
    netns,
    onMultiHost,
    setCoopImage,
    versionOn,
} from "../multiHost";
import { ROOT, RunResult, getVia, run, runOk, storedBackups } from "../support";

const skip = multiHostSkipReason();
const DOMAINS = ["alpha.localhost", "beta.localhost"];

function ok(r: RunResult, what: string): void {
    assert.equal(r.status, 0, `${what}:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
}

/**
 * A background `up` and a load through the balancer that end with the test, pass or fail: the
 * next test never meets a run still going, and the file's process is left nothing to wait for.
 */
function endWithTest(t: TestContext, up: BackgroundUp, load?: { stop: () => Promise<unknown> }): void {
    t.after(async () => {
        await load?.stop();
        await up.done;
    });
}

/** The version each host's own proxy serves for `domain`, by host name. */
async function versions(domain: string): Promise<Record<string, string | undefined>> {
    const hosts = multiMachine().hosts;
    return Object.fromEntries(await Promise.all(hosts.map(async (h) => [h.name, await versionOn(h.address, domain)] as const)));
}

/** `n` GETs of `domain` through the balancer; the statuses and versions seen. */
async function throughBalancer(domain: string, n: number): Promise<{ statuses: number[]; versions: Set<string> }> {
    const lb = multiMachine().loadBalancer.address;
    const statuses: number[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
        const r = await getVia(lb, "/state", domain);
        statuses.push(r.status);
        if (r.status === 200) seen.add((JSON.parse(r.body) as { version: string }).version);
    }
    return { statuses, versions: seen };
}

/** GETs through the balancer, one after another, until `stop()`: resolves with the failures. */
function steadyLoad(domain: string): { stop: () => Promise<{ requests: number; failed: number[] }> } {
    const lb = multiMachine().loadBalancer.address;
    let running = true;
    let requests = 0;
    const failed: number[] = [];
    const loop = (async () => {
        while (running) {
            const r = await getVia(lb, "/health", domain, 15000);
            requests++;
            if (r.status !== 200) failed.push(r.status);
        }
    })();
    return {
        stop: async () => {
            running = false;
            await loop;
            return { requests, failed };
        },
    };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("several hosts behind a load balancer (the multi stack)", { skip }, () => {
    let restore = () => {};

    before(() => {
        multiHostsUp();
        restore = keepStackFile();
        ok(multiUp(), "the first up (both co-ops on v1 on every host)");
    });

    after(() => {
        restore();
        runOk("ip", ["link", "set", "coopv2", "up"]);
    });

    it("serves both co-ops from every host, round robin through the balancer", async () => {
        for (const d of DOMAINS) {
            assert.deepEqual(await versions(d), { "node-1": "v1", "node-2": "v1", "node-3": "v1" }, d);
        }
        assert.deepEqual(balancerStates(), { "node-1": "UP", "node-2": "UP", "node-3": "UP" });
        const lb = multiMachine().loadBalancer.address;
        // Each host's first migration has its own time: three hosts answer, one after the other.
        const migrations = new Set<string>();
        for (let i = 0; i < 6; i++) migrations.add(JSON.parse((await getVia(lb, "/state", "alpha.localhost")).body).migrations[0]);
        assert.equal(migrations.size, 3, [...migrations].join(", "));
    });

    it("the balancer refuses a host it has no server for, naming it, and changes nothing", async () => {
        const { provider } = await import("../../components/local/balancer");
        const lb = multiMachine().loadBalancer;
        const before = balancerStates();
        const inputs = {
            adminSocket: path.resolve(ROOT, ".local", lb.adminSocket),
            backend: "coop",
            serversFile: path.join(ROOT, ".local", "netns", "lb-servers"),
            servers: ["node-1", "node-9"],
        };
        await assert.rejects(provider.create!(inputs), /host node-9: haproxy's backend coop has no server for it \(it has node-1, node-2, node-3/);
        assert.deepEqual(balancerStates(), before);
    });

    it("(a) a release whose health fails on the first host never reaches the second; every host serves the old one", async () => {
        const broken = images()["demo:v3-broken"];
        setCoopImage(0, broken);
        const r = multiUp();
        assert.notEqual(r.status, 0, "up must fail");
        assert.match(r.stdout + r.stderr, /alpha\/node-1/);
        assert.deepEqual(await versions("alpha.localhost"), { "node-1": "v1", "node-2": "v1", "node-3": "v1" });
        for (const host of ["node-2", "node-3"]) {
            const seen = await onMultiHost(host, "docker ps -a --format '{{.Image}}'");
            assert.ok(!seen.includes(broken.split("@")[1]), `${host} never got v3: ${seen}`);
        }
        const lb = await throughBalancer("alpha.localhost", 9);
        assert.deepEqual(lb.statuses, Array(9).fill(200));
        assert.deepEqual([...lb.versions], ["v1"]);
        setCoopImage(0, images()["demo:v1"]);
        ok(multiUp(), "up back on v1");
    });

    it("(b) a host cut off in the middle of a release: up fails naming it, the others serve, a plain up converges", async (t) => {
        setCoopImage(0, images()["demo:v2"]);
        const load = steadyLoad("alpha.localhost");
        const up = multiUpAsync();
        endWithTest(t, up, load);
        // The release has reached the first host: cut the second off before it gets there.
        const deadline = Date.now() + 300000;
        while ((await versionOn("10.231.0.11", "alpha.localhost")) !== "v2") {
            assert.ok(!up.result(), `up ended (exit ${up.result()?.status}) before node-1 served v2:\n${up.printed().slice(-6000)}`);
            assert.ok(Date.now() < deadline, `node-1 did not serve v2 within 300 s of the up's start; the up so far:\n${up.printed().slice(-6000)}`);
            await sleep(100);
        }
        runOk("ip", ["link", "set", "coopv2", "down"]);
        const r = await up.done;
        const { requests, failed } = await load.stop();
        assert.notEqual(r.status, 0, "up must fail");
        assert.match(r.stdout + r.stderr, /node-2/);
        assert.match(r.stdout + r.stderr, /10\.231\.0\.12/);
        assert.deepEqual(failed, [], `${failed.length} of ${requests} requests through the balancer failed`);
        assert.equal(balancerStates()["node-2"], "DOWN");
        const lb = await throughBalancer("alpha.localhost", 6);
        assert.deepEqual(lb.statuses, Array(6).fill(200));

        runOk("ip", ["link", "set", "coopv2", "up"]);
        ok(multiUp(), "the plain up once node-2 is back");
        assert.deepEqual(await versions("alpha.localhost"), { "node-1": "v2", "node-2": "v2", "node-3": "v2" });
        const deadline2 = Date.now() + 15000;
        while (balancerStates()["node-2"] !== "UP") {
            assert.ok(Date.now() < deadline2, "node-2 not back in the balancer");
            await sleep(200);
        }
        const after = await throughBalancer("alpha.localhost", 6);
        assert.deepEqual([...after.versions], ["v2"]);
    });

    it("(c) three hosts to two: the host leaves the balancer before its co-ops stop; two to three: every co-op on it before it gets traffic", async (t) => {
        const hosts = multiMachine().hosts;
        // Three to two: the stack file names the first two hosts (JSON is YAML; the file wins over the machine's).
        const committed = readFileSync(MULTI_STACK_FILE, "utf8");
        writeFileSync(MULTI_STACK_FILE, committed.replace(/^config:\n/m, `config:\n  coop:hosts: ${JSON.stringify(hosts.slice(0, 2))}\n`));
        const load = steadyLoad("alpha.localhost");
        let outOfBalancer = 0;
        let stopped = 0;
        const started = Date.now();
        const down = multiUpAsync();
        endWithTest(t, down, load);
        while (!down.result() && !stopped) {
            if (!outOfBalancer && balancerStates()["node-3"] === "MAINT") outOfBalancer = Date.now();
            if (!stopped && (await versionOn(hosts[2].address, "alpha.localhost")) === undefined) stopped = Date.now();
            await sleep(50);
        }
        const shrunk = await down.done;
        ok(shrunk, "up with two hosts");
        t.diagnostic(`three to two: ${Math.round((Date.now() - started) / 1000)} s`);
        const { requests, failed } = await load.stop();
        assert.ok(outOfBalancer > 0 && stopped > 0, `out of the balancer at ${outOfBalancer}, co-op stopped at ${stopped}`);
        assert.ok(outOfBalancer < stopped, "node-3 left the balancer before its co-op stopped");
        assert.deepEqual(failed, [], `${failed.length} of ${requests} requests through the balancer failed`);
        const left = netns(["exec", "3", "docker", "ps", "-a", "--format", "{{.Names}}"]);
        assert.equal(left.status, 0, left.stderr);
        assert.doesNotMatch(left.stdout, /alpha|beta/, "node-3's co-ops are gone");
        assert.deepEqual(JSON.parse(multiPulumi(["stack", "output", "balancer", "--json"]).stdout).servers, ["node-1", "node-2"]);

        // Two to three: the machine's hosts again.
        writeFileSync(MULTI_STACK_FILE, committed);
        let servedAll = 0;
        let inBalancer = 0;
        const grow = multiUpAsync();
        endWithTest(t, grow);
        while (!grow.result()) {
            const state = balancerStates()["node-3"];
            if (!inBalancer && state !== "MAINT") inBalancer = Date.now();
            if (!servedAll) {
                const v = await Promise.all(DOMAINS.map((d) => versionOn(hosts[2].address, d)));
                if (v.every((x) => x !== undefined)) servedAll = Date.now();
            }
            await sleep(50);
        }
        ok(await grow.done, "up with three hosts");
        t.diagnostic(`two to three: ${Math.round((Date.now() - started) / 1000)} s since the start`);
        assert.ok(servedAll > 0 && inBalancer > 0, `served at ${servedAll}, in the balancer at ${inBalancer}`);
        assert.ok(servedAll <= inBalancer, "node-3 served every co-op before the balancer sent it traffic");
        assert.deepEqual(balancerStates(), { "node-1": "UP", "node-2": "UP", "node-3": "UP" });
        for (const d of DOMAINS) {
            const v = await versions(d);
            assert.ok(v["node-3"] !== undefined && v["node-3"] === v["node-1"], `${d}: ${JSON.stringify(v)}`);
        }
    });

    it("(d) migrations against the shared database: one dump a release, on the first host; rollback --restore-db holds the co-op everywhere and restores its rows", async () => {
        const yaml = require("js-yaml") as { load(t: string): any; dump(v: unknown): string };
        const hosts = multiMachine().hosts;
        const site = "gamma.localhost";
        const { dir: stored, dumps } = storedBackups(MULTI_STACK, "gamma");
        const visits = async (): Promise<number> => {
            const r = await getVia(multiMachine().loadBalancer.address, "/", site);
            assert.equal(r.status, 200, r.body);
            return JSON.parse(r.body).visits as number;
        };
        const everyHost = async (p: string) =>
            Object.fromEntries(await Promise.all(hosts.map(async (h) => [h.name, (await getVia(`${h.address}:8080`, p, site)).body.trim()] as const)));
        rmSync(stored, { recursive: true, force: true });
        const doc = yaml.load(readFileSync(MULTI_STACK_FILE, "utf8"));
        doc.config["coop:backups"] = { image: images()["coop-pgtools"], keep: 5 };
        doc.config["coop:coops"].push({ id: "gamma", domains: [site], image: images()["django"], migrate: ["migrate"], healthTimeout: 60 });
        writeFileSync(MULTI_STACK_FILE, yaml.dump(doc));

        ok(multiUp(), "gamma on v1 on every host");
        assert.equal(dumps().length, 1, `one dump before the first release's migrations: ${dumps().join(", ")}`);
        for (let i = 0; i < 5; i++) await visits();
        assert.equal(await visits(), 6, "the rows the app wrote through the relayed PostgreSQL, from every host");

        setCoopImage(2, images()["django:v2"]);
        ok(multiUp(), "gamma on v2 on every host");
        assert.deepEqual(await everyHost("/version"), { "node-1": "v2", "node-2": "v2", "node-3": "v2" });
        assert.equal(await visits(), 1, "v2's migration deleted the visits recorded before it");
        // One dump for the release, taken before node-1's migrations: one taken on node-2 or node-3 would already hold them.
        assert.equal(dumps().length, 2, `one dump a release: ${dumps().join(", ")}`);

        const rollback = run(path.join(ROOT, "scripts", "node-env.sh"), ["rollback", "--stack", MULTI_STACK, "--restore-db"]);
        assert.equal(rollback.status, 0, rollback.stdout + rollback.stderr);
        assert.match(rollback.stdout, /gamma: database restored from multi\/gamma\/\S+\.dump on node-1 \(held on node-1, node-2, node-3\)/);
        assert.match(rollback.stdout, /gamma: traffic let through again/);
        assert.deepEqual(await everyHost("/version"), { "node-1": "v1", "node-2": "v1", "node-3": "v1" });
        // The 6 visits written under v1 are back (the one v2 recorded went with its schema), and this is the 7th.
        assert.equal(await visits(), 7);
    });
});
