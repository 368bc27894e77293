// The host agent's co-op release against the real parts on this machine: the Docker engine, the
// registry (images pulled by digest), sshd (every command runs over SSH as the deploy user) and
// the kamal-proxy container. The agent is installed from its image, as hosts get it, and is given
// each release as a JSON document on stdin. Co-op ids start with "it-" so they never meet the
// local stack's.
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { dockerConfig, removeLoginsCommand, writeLoginsCommand } from "../../components/hostCommands";
import { quote, render } from "../../components/remote/shell";
import type { ReleaseDocument } from "../../components/release";
import { ExecResult, connect, exec, writeFile } from "../../components/remote/ssh";
import { ROOT, behindLogin, installTool, privateRegistry, suiteEnginePid, suiteHost, suiteHostUp, suiteTarget, suiteGet, run, runOk, within } from "../support";

const TOOL = "/opt/coop/bin/coop-agent-it";
const SENTINEL = "sentinel-secret-3e8a71";

function images(): Record<string, string> {
    return JSON.parse(readFileSync(path.join(ROOT, ".local", "images.json"), "utf8")).images;
}

async function sh(command: string): Promise<ExecResult> {
    return exec(suiteTarget(), command);
}

async function ok(command: string): Promise<string> {
    const r = await sh(command);
    assert.equal(r.code, 0, `${command}\n${r.stderr}`);
    return r.stdout.trim();
}

async function version(id: string): Promise<string> {
    return (await suiteGet("/version", `${id}.localhost`)).body.trim();
}

/** The suite host's log (scripts/netns-hosts.sh): its watch's reconcile rounds report there. */
const WATCH_LOG = path.join(ROOT, ".local", "netns", "suite-1", "host.log");

function watchLogSize(): number {
    return existsSync(WATCH_LOG) ? statSync(WATCH_LOG).size : 0;
}

function watchLogSince(offset: number): string {
    return readFileSync(WATCH_LOG).subarray(offset).toString("utf8");
}

async function prepare(id: string, env: string): Promise<void> {
    await ok(`${TOOL} prepare ${id}`);
    await writeFile(suiteTarget(), `/opt/coop/coops/${id}/env`, env, 0o600);
}

/** The test's release of `image` for co-op `id`, with fields replaced by `change`. */
function release(id: string, image: string, change: Partial<ReleaseDocument> = {}): ReleaseDocument {
    return {
        coop: id,
        image,
        port: 8080,
        healthPath: "/health",
        domains: [`${id}.localhost`],
        migrate: ["migrate"],
        network: "coop",
        retain: 2,
        tls: false,
        healthTimeoutSeconds: 10,
        drainTimeoutSeconds: 5,
        rollbackWindowSeconds: 0,
        ...change,
    };
}

/** A shell command that runs the deploy with its document piped in (for runs in the background). */
function deployCmd(id: string, image: string, change: Partial<ReleaseDocument> = {}): string {
    return `printf '%s' ${quote(JSON.stringify(release(id, image, change)))} | nohup ${TOOL} deploy`;
}

async function deploy(id: string, image: string, change: Partial<ReleaseDocument> = {}, flags = ""): Promise<ExecResult> {
    return exec(suiteTarget(), `${TOOL} deploy${flags ? ` ${flags}` : ""}`, { stdin: JSON.stringify(release(id, image, change)) });
}

describe("host agent co-op release (real engine, registry, sshd, proxy)", () => {
    let img: Record<string, string>;

    before(async () => {
        suiteHostUp();
        img = images();
        assert.equal(await installTool("coop-agent-it", suiteHost()), TOOL);
        // Start from nothing: no co-op of an earlier run, no image of the demo app on the host.
        await sh(
            `for id in it-a it-b it-c it-w it-l; do ${TOOL} remove $id --delete-data; done >/dev/null 2>&1; docker image rm $(docker image ls -q 127.0.0.1:5001/coop-demo) >/dev/null 2>&1; true`,
        );
    });

    after(async () => {
        await sh(`for id in it-a it-b it-c it-w it-l; do ${TOOL} remove $id --delete-data; done >/dev/null 2>&1; rm -f ${TOOL}`);
    });

    it("is installed from its image: owned by the deploy user, mode 755, named by its version", async () => {
        assert.equal(await ok(`stat -c '%U %a' ${TOOL}`), "deploy 755");
        assert.deepEqual(JSON.parse(await ok(`${TOOL} version`)), { version: "coop-agent-it" });
        const status = JSON.parse(await ok(`${TOOL} status`));
        assert.equal(status.proxy.running, true);
        assert.equal(status.proxy.image, images()["kamal-proxy"]);
    });

    it("reaches the proxy's command socket from the host, through a directory only the deploy user enters", async () => {
        assert.equal(await ok("stat -c '%U %a' /opt/coop/proxy /opt/coop/proxy/run | tr '\\n' ' '"), "deploy 700 deploy 700");
        assert.equal(await ok("stat -c '%F' /opt/coop/proxy/run/kamal-proxy.sock"), "socket");
        const mounts = JSON.parse(await ok("docker inspect coop-proxy --format '{{json .Mounts}}'")) as { Source: string; Destination: string }[];
        assert.ok(
            mounts.some((m) => m.Source === "/opt/coop/proxy/run" && m.Destination === "/run/kamal-proxy"),
            JSON.stringify(mounts),
        );
        // The host's copy of kamal-proxy is the proxy's own binary.
        assert.equal(await ok("sha256sum </opt/coop/proxy/kamal-proxy"), await ok("docker cp coop-proxy:/kamal-proxy - | tar -xO | sha256sum"));
        assert.equal(await ok("XDG_RUNTIME_DIR=/opt/coop/proxy/run /opt/coop/proxy/kamal-proxy list >/dev/null && echo answered"), "answered");
    });

    it("refuses a document with an unknown field, naming it, and touches nothing", async () => {
        await prepare("it-a", `COOP_ID=it-a\nSECRET_KEY=${SENTINEL}\n`);
        const doc = { ...release("it-a", img["demo:v1"]), imagee: img["demo:v1"] };
        const r = await exec(suiteTarget(), `${TOOL} deploy`, { stdin: JSON.stringify(doc) });
        assert.equal(r.code, 1);
        assert.equal(r.stdout, "");
        assert.match(r.stderr, /release: unknown field "imagee"/);
        const tag = await exec(suiteTarget(), `${TOOL} deploy`, { stdin: JSON.stringify(release("it-a", "127.0.0.1:5001/coop-demo:v1")) });
        assert.equal(tag.code, 1);
        assert.match(tag.stderr, /release\.image: must be pinned by digest/);
        const trailing = await exec(suiteTarget(), `${TOOL} deploy`, { stdin: `${JSON.stringify(release("it-a", img["demo:v1"]))} {}` });
        assert.match(trailing.stderr, /release: trailing data after the document/);
        const host = await exec(suiteTarget(), `${TOOL} host-up`, {
            stdin: JSON.stringify({ network: "coop", proxy: { image: images()["kamal-proxy"], bindAddress: "127.0.0.1", httpPort: 8080, httpsPort: 8443, bind: "0.0.0.0" } }),
        });
        assert.equal(host.code, 1);
        assert.match(host.stderr, /host\.proxy: unknown field "bind"/);
        assert.equal(await ok("docker ps -a --filter name=coop-it-a- -q | wc -l"), "0");
        assert.equal(await ok("test -e /opt/coop/coops/it-a/releases.log && echo recorded || echo none"), "none");
    });

    it("deploys: pulls by digest, migrates, starts a slot, routes the domain to it", async () => {
        await prepare("it-a", `COOP_ID=it-a\nSECRET_KEY=${SENTINEL}\n`);
        const r = await deploy("it-a", img["demo:v1"]);
        assert.equal(r.code, 0, r.stderr);
        const report = JSON.parse(r.stdout);
        assert.equal(report.changed, true);
        assert.equal(report.slot, "blue");
        assert.equal(report.image, img["demo:v1"]);
        assert.ok(report.timings.pullMs > 0 && report.timings.totalMs >= report.timings.switchMs);
        assert.equal(await version("it-a"), "v1");
        const state = JSON.parse((await suiteGet("/state", "it-a.localhost")).body);
        assert.equal(state.schema, 1);
        assert.equal(state.coop, "it-a");
        assert.equal(await ok("docker inspect coop-it-a-blue --format '{{.Config.Image}} {{.HostConfig.RestartPolicy.Name}}'"), `${img["demo:v1"]} unless-stopped`);
    });

    it("a re-run with nothing changed does nothing", async () => {
        const before = await ok("docker inspect coop-it-a-blue --format '{{.Id}} {{.State.StartedAt}}'");
        const r = await deploy("it-a", img["demo:v1"]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(JSON.parse(r.stdout).changed, false);
        assert.equal(await ok("docker inspect coop-it-a-blue --format '{{.Id}} {{.State.StartedAt}}'"), before);
        assert.equal((await ok("cat /opt/coop/coops/it-a/releases.log")).split("\n").length, 1);
    });

    it("a new digest cuts over to the other slot and keeps the old one stopped", async () => {
        const since = await ok("date +%s.%N");
        const r = await deploy("it-a", img["demo:v2"]);
        assert.equal(r.code, 0, r.stderr);
        // The switch ran on the host through the proxy's socket: no docker exec in the proxy for it.
        const execs = await ok(`docker events --since ${since} --until $(date +%s.%N) --filter container=coop-proxy --filter event=exec_create --format '{{.Action}}'`);
        assert.ok(!execs.includes("coop-it-a"), execs);
        assert.deepEqual([JSON.parse(r.stdout).slot, JSON.parse(r.stdout).previousSlot], ["green", "blue"]);
        assert.equal(await version("it-a"), "v2");
        assert.equal(JSON.parse((await suiteGet("/state", "it-a.localhost")).body).schema, 2);
        assert.equal(await ok("docker inspect coop-it-a-blue --format '{{.State.Status}} {{.Config.Image}}'"), `exited ${img["demo:v1"]}`);
        assert.ok((await ok("docker image ls --digests --format '{{.Digest}}'")).includes(img["demo:v1"].split("@")[1]), "old image kept");
    });

    it("a changed env file makes a new release even with the same image", async () => {
        await writeFile(suiteTarget(), "/opt/coop/coops/it-a/env", `COOP_ID=it-a\nSECRET_KEY=${SENTINEL}\nGREETING=changed\n`, 0o600);
        const r = await deploy("it-a", img["demo:v2"]);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual([JSON.parse(r.stdout).changed, JSON.parse(r.stdout).slot], [true, "blue"]);
        assert.equal(await version("it-a"), "v2");
    });

    it("a failing health check leaves the old slot serving and says why, with the container's log", async () => {
        const r = await deploy("it-a", img["demo:v3-broken"]);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /deploy it-a: health check failed: coop-it-a-green did not become healthy on \/health within 10 s/);
        assert.match(r.stderr, /last lines of coop-it-a-green:\n[\s\S]*GET \/health 503/);
        assert.equal(await version("it-a"), "v2");
        assert.equal(await ok("docker inspect coop-it-a-blue --format '{{.State.Running}}'"), "true");
        // The release the idle slot held was set aside during the attempt and put back after it.
        assert.equal(await ok("docker inspect coop-it-a-green --format '{{.State.Running}} {{.Config.Image}}'"), `false ${img["demo:v2"]}`);
        assert.equal(await ok("docker ps -a --filter name=coop-it-a- --format '{{.Names}}' | sort | tr '\\n' ' '"), "coop-it-a-blue coop-it-a-green");
    });

    it("an app that does not listen where the proxy connects fails its health check naming the address and port", async () => {
        // The demo listens on $PORT: 9090 here, while the release says 8080 (an app on 127.0.0.1 looks the same from outside).
        await prepare("it-l", "COOP_ID=it-l\nPORT=9090\n");
        const r = await deploy("it-l", img["demo:v1"], { healthTimeoutSeconds: 3, migrate: [] });
        assert.equal(r.code, 1);
        assert.match(
            r.stderr,
            /deploy it-l: health check failed: coop-it-l-blue did not become healthy on \/health within 3 s; container running \(exit 0\); proxy: .*; nothing accepts connections on [0-9.]+:8080 \(the container's address on coop, port 8080 of the release\): the app must listen on all interfaces \(0\.0\.0\.0 or ::\), on that port, not on 127\.0\.0\.1/,
        );
        await sh(`${TOOL} remove it-l --delete-data`);
    });

    it("going back to the release the idle slot holds is a switch: no pull, no migration", async () => {
        await writeFile(suiteTarget(), "/opt/coop/coops/it-a/env", `COOP_ID=it-a\nSECRET_KEY=${SENTINEL}\n`, 0o600);
        const r = await deploy("it-a", img["demo:v2"]);
        assert.equal(r.code, 0, r.stderr);
        const report = JSON.parse(r.stdout);
        assert.deepEqual([report.reused, report.slot, report.timings.pullMs < 100, report.timings.migrateMs < 50], [true, "green", true, true]);
        assert.equal(await version("it-a"), "v2");
    });

    it("--only-if-retained exits 3 and changes nothing when the idle slot does not hold the release", async () => {
        // The last deploy stops its old slot off its own path, after the drain: let that end first,
        // or it changes the slots under this test's snapshot (the next deploy would wait for it).
        const stopper = 'p=$(cut -d\' \' -f1 /opt/coop/coops/it-a/stopping.pid 2>/dev/null); [ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo running || echo done';
        await within(60, "the last deploy's stop of its old slot", async () => (await ok(stopper)) === "done");
        const before = await ok("docker ps -a --filter name=coop-it-a- --format '{{.Names}} {{.State}} {{.Image}}' | sort");
        const r = await deploy("it-a", img["demo:v1"], {}, "--only-if-retained");
        assert.equal(r.code, 3, r.stderr);
        assert.deepEqual(JSON.parse(r.stdout), { coop: "it-a", changed: false, retained: false, image: img["demo:v1"] });
        assert.equal(await ok("docker ps -a --filter name=coop-it-a- --format '{{.Names}} {{.State}} {{.Image}}' | sort"), before);
        assert.equal(await version("it-a"), "v2");
    });

    it("keeps the old slot running for the rollback window: going back inside it is the switch alone; the host's watch stops it after", async () => {
        const window = { rollbackWindowSeconds: 8 };
        const startedAt = (name: string) => ok(`docker inspect -f '{{.State.Running}} {{.State.StartedAt}}' ${name}`);
        await prepare("it-w", "COOP_ID=it-w\n");
        assert.equal((await deploy("it-w", img["demo:v1"], window)).code, 0);
        const second = await deploy("it-w", img["demo:v2"], window);
        assert.equal(second.code, 0, second.stderr);
        assert.equal(await version("it-w"), "v2");
        // v1's slot runs on, drained and idle.
        const blue = await startedAt("coop-it-w-blue");
        assert.match(blue, /^true /);

        const back = await deploy("it-w", img["demo:v1"], window, "--only-if-retained");
        assert.equal(back.code, 0, back.stderr);
        assert.deepEqual([JSON.parse(back.stdout).reused, JSON.parse(back.stdout).slot], [true, "blue"]);
        assert.equal(await version("it-w"), "v1");
        assert.equal(await startedAt("coop-it-w-blue"), blue, "the kept slot was not started again");
        // Now v2's slot (green) is the one kept; the host's own watch stops it once its window ends.
        assert.match(await startedAt("coop-it-w-green"), /^true /);
        assert.equal(
            await ok("for i in $(seq 60); do [ \"$(docker inspect -f '{{.State.Running}}' coop-it-w-green)\" = false ] && echo stopped && exit; sleep 0.5; done; echo running"),
            "stopped",
            "the watch left the idle slot running 30 s after its window",
        );
        assert.equal(await version("it-w"), "v1");
        assert.equal(await ok("test -e /opt/coop/coops/it-w/rollback-window && echo open || echo closed"), "closed");
        await ok(`${TOOL} remove it-w --delete-data >/dev/null`);
    });

    it("a failing migration leaves the old slot serving, the data untouched, and says why", async () => {
        const r = await deploy("it-a", img["demo:v4-badmigration"]);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /migration output:\n.*migration to schema 3 failed/);
        assert.match(r.stderr, /deploy it-a: migration failed: exit 3 from migrate/);
        assert.equal(await version("it-a"), "v2");
        assert.equal(JSON.parse((await suiteGet("/state", "it-a.localhost")).body).schema, 2);
        assert.equal(await ok("docker ps -a --filter name=coop-it-a-migrate -q | wc -l"), "0");
    });

    it("a pull that cannot succeed fails the deploy and changes nothing", async () => {
        const missing = `${img["demo:v1"].split("@")[0]}@sha256:${"0".repeat(64)}`;
        const r = await deploy("it-a", missing);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /deploy it-a: pull failed: .* could not be pulled after 3 attempts/);
        assert.equal(await version("it-a"), "v2");
    });

    it("pulls a private image with the login in ROOT/registries; no login or a wrong token fails once, naming the registry, the old release serving", async () => {
        const p = privateRegistry();
        // An image no host has had under any name: a Docker engine that once pulled a digest
        // serves a later pull of it from its own store, asking no registry (Docker 20.10 here).
        const tag = `127.0.0.1:5001/coop-demo:login-${process.pid}-${Date.now()}`;
        runOk("sh", [
            "-c",
            `printf 'FROM %s\\nLABEL coop.test.login=%s\\n' ${quote(img["demo:v1"])} ${quote(tag)} | DOCKER_BUILDKIT=0 docker build -q -t ${quote(tag)} - && docker push -q ${quote(tag)}`,
        ]);
        const image = behindLogin(runOk("docker", ["image", "inspect", tag, "--format", "{{index .RepoDigests 0}}"]).stdout.trim());
        runOk("docker", ["image", "rm", tag]);
        const logins = (holder: string, password: string) =>
            exec(suiteTarget(), render(writeLoginsCommand("/opt/coop", holder)), { stdin: dockerConfig([{ server: p.server, username: p.username, password }]) });
        // As on a host that never pulled it under this name (the layers may be there).
        await sh(`docker image rm ${image} >/dev/null 2>&1; true`);
        let r = await deploy("it-a", image);
        assert.equal(r.code, 1);
        assert.match(
            r.stderr,
            /was not pulled: the registry refused the pull: pulling 127\.0\.0\.1:5002\/coop-demo@sha256:[0-9a-f]{64} from 127\.0\.0\.1:5002 anonymously \(no login for it: coop:registries names none\)/,
        );
        assert.doesNotMatch(r.stderr, /attempt 2 of 3/, "a refused login is not tried again");
        assert.equal(await version("it-a"), "v2");

        assert.equal((await logins("it.wrong", "not-the-token")).code, 0);
        r = await deploy("it-a", image);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /the registry refused the pull: .* from 127\.0\.0\.1:5002 as coop: .*unauthorized/i);
        assert.ok(!r.stderr.includes("not-the-token"), "the error shows no token");
        assert.equal(await version("it-a"), "v2", "the old release serves");

        // The newest login for a registry wins: the right token, written after.
        await new Promise((res) => setTimeout(res, 20));
        assert.equal((await logins("it.right", p.password)).code, 0);
        r = await deploy("it-a", image);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(await version("it-a"), "v1");
        for (const holder of ["it.wrong", "it.right"]) assert.equal((await exec(suiteTarget(), render(removeLoginsCommand("/opt/coop", holder)))).code, 0);
        assert.equal(await ok("test -e /opt/coop/registries && echo there || echo gone"), "gone");
        assert.equal((await deploy("it-a", img["demo:v2"])).code, 0);
    });

    it("an interrupted deploy (process killed) converges on the next run: no orphan, no lock held", async () => {
        const pid = await ok(`${deployCmd("it-a", img["demo:v3-broken"], { healthTimeoutSeconds: 15 })} >/tmp/coop-it-interrupted.log 2>&1 & echo $!`);
        // Wait until it holds the lock and has started the new slot, then kill it outright.
        await ok(
            `for i in $(seq 100); do docker inspect coop-it-a-blue --format '{{.State.Running}} {{.Config.Image}}' 2>/dev/null | grep -q 'true .*${img["demo:v3-broken"].slice(-12)}' && break; sleep 0.1; done`,
        );
        const watchLogFrom = watchLogSize();
        await ok(`kill -9 ${pid}`);
        assert.equal(await ok("test -d /opt/coop/coops/it-a/lock && echo held"), "held");

        // The next run to take the lock repairs the co-op: this deploy, or the host's own watch
        // when one of its reconcile rounds comes first (the deploy then waits for it).
        const r = await deploy("it-a", img["demo:v2"]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(JSON.parse(r.stdout).changed, false, "the live release is the one asked for");
        const byWatch = /waiting for the lock held by another deploy \(pid=\d+ .*by=reconcile/.test(r.stderr);
        const repairLog = byWatch ? watchLogSince(watchLogFrom) : r.stderr;
        if (!byWatch) assert.match(r.stderr, /took over a stale lock \(pid=\d+/);
        assert.match(repairLog, /waiting for the proxy switch of an interrupted deploy to finish/);
        assert.match(repairLog, /putting back coop-it-a-blue's previous release, set aside by an interrupted deploy/);
        assert.equal(await version("it-a"), "v2");
        assert.equal(await ok("docker ps --filter name=coop-it-a- --format '{{.Names}}'"), "coop-it-a-green");
        assert.equal(await ok("docker ps -a --filter name=coop-it-a- --format '{{.Names}}' | sort | tr '\\n' ' '"), "coop-it-a-blue coop-it-a-green");
        assert.equal(await ok("test -d /opt/coop/coops/it-a/lock && echo held || echo free"), "free");
    });

    it("two deploys of one co-op at once run one after the other", async () => {
        await prepare("it-b", "COOP_ID=it-b\n");
        const [a, b] = await Promise.all([deploy("it-b", img["demo:v1"]), deploy("it-b", img["demo:v2"])]);
        assert.equal(a.code, 0, a.stderr);
        assert.equal(b.code, 0, b.stderr);
        const waited = [a, b].filter((r) => /waiting for the lock held by another deploy/.test(r.stderr));
        assert.equal(waited.length, 1, "exactly one of them waited for the other");
        const releases = (await ok("cat /opt/coop/coops/it-b/releases.log")).split("\n").map((l) => JSON.parse(l));
        assert.equal(releases.length, 2);
        assert.equal(await version("it-b"), releases[1].image === img["demo:v2"] ? "v2" : "v1");
    });

    it("an SSH session cut before the switch switches nothing and puts everything back", async () => {
        await prepare("it-c", "COOP_ID=it-c\n");
        const first = await deploy("it-c", img["demo:v1"]);
        assert.equal(first.code, 0, first.stderr);
        // Start a release over a connection of its own and cut that connection during the migration.
        const client = await connect(suiteTarget());
        const closed = new Promise<void>((resolve) => client.on("close", () => resolve()));
        client.exec(`${TOOL} deploy`, (e, stream) => {
            assert.ifError(e);
            stream.on("data", () => undefined);
            stream.stderr.on("data", () => undefined);
            stream.end(JSON.stringify(release("it-c", img["demo:v2"])));
        });
        await ok("for i in $(seq 150); do docker ps -a --filter name=coop-it-c-migrate -q | grep -q . && exit 0; sleep 0.1; done; exit 1");
        client.end();
        await closed;
        // The agent notices, gives up before the switch and lets go of the lock.
        await ok("for i in $(seq 150); do test -d /opt/coop/coops/it-c/lock || exit 0; sleep 0.1; done; exit 1");
        assert.equal(await version("it-c"), "v1");
        assert.equal(await ok("docker ps --filter name=coop-it-c- --format '{{.Names}}'"), "coop-it-c-blue");
        assert.equal((await ok("cat /opt/coop/coops/it-c/releases.log")).split("\n").length, 1);
        // And the next release goes through as usual.
        const next = await deploy("it-c", img["demo:v2"]);
        assert.equal(next.code, 0, next.stderr);
        assert.equal(await version("it-c"), "v2");
    });

    it("keeps secrets out of process arguments, the proxy and the release record", async () => {
        // The pattern is written so that this command's own text does not match it.
        const pattern = `'${SENTINEL.slice(0, -1)}[${SENTINEL.slice(-1)}]'`;
        const leaks = await sh(`ps -eo args | grep -c ${pattern}; docker inspect coop-proxy | grep -c ${pattern}; grep -c ${pattern} /opt/coop/coops/it-a/releases.log; true`);
        assert.equal(leaks.stdout.trim(), "0\n0\n0");
        assert.equal(await ok(`docker inspect coop-it-a-blue | grep -c ${SENTINEL}`), "1", "the app container has its env, as it must");
        assert.equal(await ok("stat -c %a /opt/coop/coops/it-a /opt/coop/coops/it-a/env"), "700\n600");
    });

    it("never lets the engine make a co-op's missing directory (as root): the start fails, the next deploy makes it", async () => {
        const live = JSON.parse(await ok(`${TOOL} state it-c`)).live;
        assert.equal(live.slot, "green");
        await ok("docker stop coop-it-c-green >/dev/null && rm -rf /opt/coop/coops/it-c/config");
        const started = await sh("docker start coop-it-c-green");
        assert.notEqual(started.code, 0);
        assert.match(started.stderr, /bind source path does not exist/);
        assert.equal(await ok("test -e /opt/coop/coops/it-c/config && stat -c %U /opt/coop/coops/it-c/config || echo absent"), "absent");
        const r = await deploy("it-c", img["demo:v2"]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(await ok("stat -c '%U %a' /opt/coop/coops/it-c/config"), "deploy 755");
        assert.equal(await version("it-c"), "v2");
    });

    it("state says which release is live, whether a deploy is under way, and the last deploy's id", async () => {
        const r = await deploy("it-c", img["demo:v1"], {}, "--deploy-id it-state-1");
        assert.equal(r.code, 0, r.stderr);
        const s = JSON.parse(await ok(`${TOOL} state it-c`));
        assert.deepEqual(s.live, { slot: JSON.parse(r.stdout).slot, image: img["demo:v1"], releaseKey: JSON.parse(r.stdout).releaseKey, running: true });
        assert.equal(s.deploying, false);
        assert.equal(s.last.deployId, "it-state-1");
        assert.deepEqual(JSON.parse(await ok(`${TOOL} state it-none`)), { coop: "it-none", live: null, deploying: false, last: null });
    });

    it("removal stops the co-op and its route and keeps its data unless told otherwise", async () => {
        const r = JSON.parse(await ok(`${TOOL} remove it-b`));
        assert.deepEqual(r, { coop: "it-b", removed: true, data: "kept" });
        assert.equal(await ok("docker ps -a --filter name=coop-it-b- -q | wc -l"), "0");
        assert.equal((await suiteGet("/version", "it-b.localhost")).status, 404);
        assert.equal(await ok("docker volume ls -q --filter name=coop-it-b-data"), "coop-it-b-data");
        assert.equal(await ok("test -e /opt/coop/coops/it-b && echo present || echo gone"), "gone");
        assert.deepEqual(JSON.parse(await ok(`${TOOL} remove it-b --delete-data`)).data, "deleted");
        assert.equal(await ok("docker volume ls -q --filter name=coop-it-b-data | wc -l"), "0");
    });

    it("after the Docker engine restarts, the proxy and the co-op serve again", async () => {
        const before = await version("it-a");
        const diag =
            before === "v2"
                ? ""
                : (await sh("docker ps -a --format '{{.Names}} {{.Status}}'; docker exec coop-proxy /kamal-proxy list; docker logs --tail 30 coop-proxy 2>&1")).stdout;
        assert.equal(before, "v2", diag);
        // A graceful stop (SIGTERM) of the suite host's engine. Its supervisor starts the engine
        // again, as systemd does on a droplet; the dockerd that was stopped is gone for good.
        runOk("bash", ["-c", `pid=${suiteEnginePid()}; kill -TERM $pid; for i in $(seq 300); do kill -0 $pid 2>/dev/null || exit 0; sleep 0.1; done; exit 1`]);
        suiteHostUp();
        let v = "";
        for (let i = 0; i < 300 && v !== "v2"; i++) {
            v = await version("it-a").catch(() => "");
            if (v !== "v2") await new Promise((r) => setTimeout(r, 200));
        }
        const why = v === "v2" ? "" : (await sh("docker ps -a --format '{{.Names}} {{.Status}}'; docker logs --tail 15 coop-proxy 2>&1")).stdout;
        assert.equal(v, "v2", `not serving 60 s after the restart:\n${why}`);
        assert.equal(await ok("docker inspect coop-it-a-blue --format '{{.State.Running}}'"), "false", "the kept slot stays stopped");
    });

    it("after the engine is killed (SIGKILL) mid-cutover, every co-op answers again with no operator, and the deploy says the engine went away", async () => {
        assert.equal(await version("it-a"), "v2");
        assert.equal(await version("it-c"), "v1");
        assert.match(run(path.join(ROOT, "scripts", "netns-hosts.sh"), ["status"], { env: { COOP_NETNS_SET: "suite" } }).stdout, /^suite-1: up on /m);
        // A cutover of it-c whose health gate lasts (v3 never becomes healthy): the engine is
        // killed while the proxy polls the new slot.
        const log = "/tmp/coop-it-sigkill.log";
        await ok(`${deployCmd("it-c", img["demo:v3-broken"], { healthTimeoutSeconds: 20 })} >${log} 2>&1 & true`);
        await ok(
            `for i in $(seq 150); do docker inspect coop-it-c-blue --format '{{.State.Running}} {{.Config.Image}}' 2>/dev/null | grep -q 'true .*${img["demo:v3-broken"].slice(-12)}' && exit 0; sleep 0.1; done; exit 1`,
        );
        await new Promise((r) => setTimeout(r, 500));
        const killedAt = Date.now();
        const killed = suiteEnginePid();
        runOk("bash", ["-c", `pid=${killed}; kill -KILL $pid; for i in $(seq 100); do kill -0 $pid 2>/dev/null || exit 0; sleep 0.05; done; exit 1`]);
        // No operator from here on: the supervisor starts the engine again (systemd on a droplet),
        // and the host agent's watch reconciles the host. Serving again means under the new engine:
        // right after the kill, the containers the old one started still answer for a moment.
        const serving = async (): Promise<boolean> =>
            suiteEnginePid() !== killed &&
            (await sh("docker ps --filter name=coop-it- --format '{{.Names}}'")).stdout.includes("coop-it-c-green") &&
            (await version("it-a").catch(() => "")) === "v2" &&
            (await version("it-c").catch(() => "")) === "v1";
        let back = false;
        while (!back && Date.now() - killedAt < 90000) {
            back = await serving();
            if (!back) await new Promise((r) => setTimeout(r, 250));
        }
        const why = back ? "" : (await sh("docker ps -a --format '{{.Names}} {{.Status}}'; tail -n 20 ${WATCH_LOG} 2>&1")).stdout;
        assert.ok(back, `not serving 90 s after the engine was killed:\n${why}`);
        console.log(`every co-op answered again ${Date.now() - killedAt} ms after SIGKILL`);
        const deployLog = await ok(`for i in $(seq 100); do grep -q 'deploy it-c' ${log} && break; sleep 0.2; done; cat ${log}`);
        assert.match(deployLog, /deploy it-c: the Docker engine went away during the health check/);
        assert.doesNotMatch(deployLog, /did not become healthy/);
        // Nothing half-switched: the live slots run, the idle ones are stopped and hold what they held.
        assert.equal(await ok("docker ps --filter name=coop-it- --format '{{.Names}}' | sort | tr '\\n' ' '"), "coop-it-a-green coop-it-c-green");
        assert.equal(await ok("docker inspect coop-it-c-blue --format '{{.Config.Image}}'"), img["demo:v2"]);
        assert.equal(await ok("docker ps -a --filter name=coop-it-c-blue-old -q | wc -l"), "0");
        assert.equal(await ok("test -d /opt/coop/coops/it-c/lock && echo held || echo free"), "free");
        // And the next release goes through.
        const next = await deploy("it-c", img["demo:v2"]);
        assert.equal(next.code, 0, next.stderr);
        assert.equal(await version("it-c"), "v2");
    });
});
