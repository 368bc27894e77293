// The whole program through the real Pulumi CLI against the local hosts: up, check what it
// made over SSH and HTTP, a second up with no changes, destroy, and nothing left behind.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { request } from "node:http";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { exec } from "../../components/remote/ssh";
import { ROOT, localHostsUp, localTarget, pulumi } from "../support";

function httpGet(url: string, host: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
        const req = request(url, { headers: { host }, timeout: 5000 }, (res) => {
            let body = "";
            res.on("data", (c) => (body += c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("error", reject);
        req.end();
    });
}

async function onHost(command: string): Promise<string> {
    const r = await exec(localTarget(), command);
    assert.equal(r.code, 0, `${command}: ${r.stderr}`);
    return r.stdout.trim();
}

function images(): Record<string, string> {
    return JSON.parse(readFileSync(path.join(ROOT, ".local", "images.json"), "utf8")).images;
}

describe("local stack through the real CLI", () => {
    before(() => {
        localHostsUp();
        const r = pulumi(["destroy", "--stack", "local", "--yes", "--skip-preview"]);
        assert.equal(r.status, 0, r.stderr);
    });

    after(async () => {
        await exec(localTarget(), "docker rm -f e2e-probe >/dev/null 2>&1; true");
    });

    let tool = "";

    it("pulumi up bootstraps the host", () => {
        const r = pulumi(["up", "--stack", "local", "--yes", "--skip-preview"]);
        assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
        const outputs = JSON.parse(pulumi(["stack", "output", "--stack", "local", "--json"]).stdout);
        assert.deepEqual(outputs.proxyUrls, ["http://127.0.0.1:8080/"]);
        tool = outputs.hostTools["local-1"];
        assert.match(tool, /^\/opt\/coop\/bin\/coopctl-[0-9a-f]{12}$/);
    });

    it("left the deploy tool, the network and the proxy on the host (checked over SSH)", async () => {
        const source = readFileSync(path.join(ROOT, "host", "coopctl"));
        const sha = createHash("sha256").update(source).digest("hex");
        assert.equal(await onHost(`stat -c %a ${tool} && sha256sum < ${tool} | cut -d' ' -f1`), `755\n${sha}`);
        assert.equal(await onHost("docker network inspect coop --format '{{.Driver}}'"), "bridge");
        assert.equal(
            await onHost("docker inspect coop-proxy --format '{{.State.Running}} {{.Config.Image}} {{.HostConfig.RestartPolicy.Name}} {{index .HostConfig.LogConfig.Config \"max-size\"}}'"),
            `true ${images()["kamal-proxy"]} unless-stopped 10m`,
        );
        const status = JSON.parse(await onHost(`${tool} status`));
        assert.equal(status.proxy.running, true);
    });

    it("the proxy routes a domain to a container on the network (checked over HTTP)", async () => {
        const demo = images()["demo:v1"];
        await onHost(`docker run -d --name e2e-probe --network coop ${demo} >/dev/null`);
        await onHost("docker exec coop-proxy /kamal-proxy deploy e2e-probe --target e2e-probe:8080 --host probe.localhost --health-check-path /health");
        const res = await httpGet("http://127.0.0.1:8080/version", "probe.localhost");
        assert.deepEqual(res, { status: 200, body: "v1\n" });
        const unknown = await httpGet("http://127.0.0.1:8080/version", "nobody.localhost");
        assert.equal(unknown.status, 404);
        await onHost("docker exec coop-proxy /kamal-proxy remove e2e-probe && docker rm -f e2e-probe >/dev/null");
    });

    it("a second up changes nothing", () => {
        const r = pulumi(["up", "--stack", "local", "--yes", "--skip-preview", "--expect-no-changes"]);
        assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
        assert.match(r.stdout, /\d+ unchanged/);
        assert.doesNotMatch(r.stdout, /\b(created|updated|deleted|replaced)\b/);
    });

    it("keeps the deploy key out of the state in plaintext", () => {
        const key = readFileSync(path.join(ROOT, ".local", "ssh", "deploy_ed25519"), "utf8");
        const body = key.split("\n")[1];
        const state = pulumi(["stack", "export", "--stack", "local"]).stdout;
        assert.ok(state.includes('"RemoteCommand"') || state.includes("RemoteCommand"));
        assert.ok(!state.includes(body), "state holds the private key in plaintext");
    });

    it("pulumi destroy removes everything up made", async () => {
        const r = pulumi(["destroy", "--stack", "local", "--yes", "--skip-preview"]);
        assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
        assert.equal(await onHost("docker ps -a --filter name=coop-proxy -q | wc -l"), "0");
        assert.equal(await onHost("docker network ls --filter name=^coop$ -q | wc -l"), "0");
        assert.equal(await onHost("docker volume ls --filter name=coop-proxy-state -q | wc -l"), "0");
        assert.equal(await onHost("test -e /opt/coop/bin -o -e /opt/coop/coops && echo present || echo gone"), "gone");
        const state = JSON.parse(pulumi(["stack", "export", "--stack", "local"]).stdout);
        assert.deepEqual(state.deployment.resources ?? [], []);
    });
});
