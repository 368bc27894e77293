// CoopRelease's deploy against the real local host when its SSH connection drops mid-release: the
// agent finishes (after the switch) or rolls back (before it) on its own, and the provider, once
// the host answers again, says which and to what. The connection is cut on the host's side, by
// ending the sshd session that runs the agent, as a network drop would. Co-op ids start with "cr-".
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import type { ReleaseDocument } from "../../components/release";
import { State, deploy } from "../../components/remote/coopRelease";
import { exec } from "../../components/remote/ssh";
import { ROOT, installTool, suiteHost, suiteHostUp, suiteTarget, suiteGet } from "../support";

const TOOL = "/opt/coop/bin/coop-agent-cr";

function images(): Record<string, string> {
    return JSON.parse(readFileSync(path.join(ROOT, ".local", "images.json"), "utf8")).images;
}

async function ok(command: string): Promise<string> {
    const r = await exec(suiteTarget(), command);
    assert.equal(r.code, 0, `${command}\n${r.stderr}`);
    return r.stdout.trim();
}

function state(image: string, change: Partial<ReleaseDocument> = {}): State {
    return {
        connection: suiteTarget(),
        agent: TOOL,
        root: "/opt/coop",
        release: {
            coop: "cr-a",
            image,
            port: 8080,
            healthPath: "/health",
            domains: ["cr-a.localhost"],
            migrate: ["migrate"],
            network: "coop",
            retain: 2,
            tls: false,
            healthTimeoutSeconds: 10,
            drainTimeoutSeconds: 20,
            rollbackWindowSeconds: 0,
            ...change,
        },
        env: "COOP_ID=cr-a\n",
        configFiles: {},
        deleteData: true,
        timeoutMs: 120000,
    };
}

/** Ends the sshd session that runs the agent's deploy of `image` (the client's connection drops). */
async function cutWhen(condition: string): Promise<void> {
    await ok(`for i in $(seq 300); do ${condition} && break; sleep 0.1; done`);
    await ok(
        `pid=$(pgrep -u deploy -f -- '${TOOL} deploy --deploy-id' | head -1); test -n "$pid"; session=$(ps -o ppid= -p $pid | tr -d ' '); [ "$(ps -o comm= -p $session)" = sshd ] || session=$(ps -o ppid= -p $session | tr -d ' '); kill $session`,
    );
}

const version = async (): Promise<string> => (await suiteGet("/version", "cr-a.localhost")).body.trim();

describe("CoopRelease when the connection drops during a release (real sshd, engine, proxy)", () => {
    let img: Record<string, string>;
    before(async () => {
        suiteHostUp();
        img = images();
        assert.equal(await installTool("coop-agent-cr", suiteHost()), TOOL);
        await exec(suiteTarget(), `${TOOL} remove cr-a --delete-data >/dev/null 2>&1; true`);
        await deploy(state(img["demo:v1"]));
        assert.equal(await version(), "v1");
    });

    after(async () => {
        await exec(suiteTarget(), `${TOOL} remove cr-a --delete-data >/dev/null 2>&1; rm -f ${TOOL}`);
    });

    it("cut after the switch: the host finishes, and up says it runs the new release", async () => {
        // A request in flight on the old slot keeps the deploy draining after the switch.
        const slow = suiteGet("/slow?ms=8000", "cr-a.localhost", 30000);
        await new Promise((r) => setTimeout(r, 300));
        const released = deploy(state(img["demo:v2"])).then(
            () => "",
            (e: Error) => e.message,
        );
        await cutWhen(`curl -fsS -H 'Host: cr-a.localhost' http://127.0.0.1:8080/version 2>/dev/null | grep -q v2`);
        const message = await released;
        assert.match(
            message,
            new RegExp(
                `^deploy of cr-a on ${suiteTarget().host.replace(/[.]/g, "\\.")}:\\d+: the connection dropped; the host finished the release: cr-a runs ${img["demo:v2"].replace(/[.]/g, "\\.")} \\(slot green\\)`,
            ),
        );
        assert.equal(await version(), "v2");
        assert.equal((await slow).status, 200, "the request in flight finished");
    });

    it("cut before the health gate ends: the host rolls back, and up says what it still serves", async () => {
        const released = deploy(state(img["demo:v3-broken"], { healthTimeoutSeconds: 5 })).then(
            () => "",
            (e: Error) => e.message,
        );
        await cutWhen(`docker inspect coop-cr-a-blue --format '{{.State.Running}} {{.Config.Image}}' 2>/dev/null | grep -q 'true .*${img["demo:v3-broken"].slice(-12)}'`);
        const message = await released;
        assert.match(
            message,
            new RegExp(
                `^deploy of cr-a on ${suiteTarget().host.replace(/[.]/g, "\\.")}:\\d+: the connection dropped; the host rolled back: still serving ${img["demo:v2"].replace(/[.]/g, "\\.")} \\(slot green\\)`,
            ),
        );
        assert.equal(await version(), "v2");
    });
});
