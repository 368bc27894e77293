// Bad input to the setup scripts: one clear line saying what is wrong and what to do.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { createServer, Server } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { ROOT, run } from "../support";

const script = (name: string) => path.join(ROOT, "scripts", name);

describe("setup scripts refuse bad input clearly", () => {
    let busy: Server;
    let busyPort = 0;
    let closedPort = 0;
    const tmp = mkdtempSync(path.join(tmpdir(), "coop-scripts-"));

    before(async () => {
        busy = createServer();
        await new Promise<void>((r) => busy.listen(0, "127.0.0.1", r));
        busyPort = (busy.address() as { port: number }).port;
        const probe = createServer();
        await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
        closedPort = (probe.address() as { port: number }).port;
        await new Promise((r) => probe.close(r));
    });

    after(() => {
        busy.close();
        rmSync(tmp, { recursive: true, force: true });
    });

    it("toolchain.sh without Go says to install it", () => {
        // A PATH with just what the script needs before it looks for Go.
        const bin = path.join(tmp, "bin-without-go");
        mkdirSync(bin);
        for (const tool of ["bash", "dirname", "basename"]) {
            symlinkSync(run("bash", ["-c", `command -v ${tool}`]).stdout.trim(), path.join(bin, tool));
        }
        const r = run(script("toolchain.sh"), [], { env: { PATH: bin } });
        assert.equal(r.status, 1);
        assert.equal(r.stderr.trim(), "toolchain.sh: go not found: install Go 1.25 or later (https://go.dev/dl) and re-run");
    });

    it("toolchain.sh names the component whose build failed and what to check", () => {
        const r = run(script("toolchain.sh"), ["--force"], {
            env: {
                COOP_TOOLCHAIN_CACHE: path.join(tmp, "cache"),
                GOMODCACHE: path.join(tmp, "modcache"),
                // Nothing listens there: every module fetch is refused at once.
                GOPROXY_OVERRIDE: `http://127.0.0.1:${closedPort}`,
                PULUMI_HOME: path.join(tmp, "home"),
            },
            timeoutMs: 120000,
        });
        assert.equal(r.status, 1);
        const last = r.stderr.trim().split("\n").pop();
        assert.equal(last, "toolchain.sh: building pulumi 3.248.0 failed (log above); check that the Go module proxy answers (go env GOPROXY) and re-run");
    });

    it("local-hosts.sh refuses a port another program holds, and says which variable moves it", () => {
        const r = run(script("local-hosts.sh"), ["up"], {
            env: { COOP_LOCAL_STATE: path.join(tmp, "state"), COOP_REGISTRY_PORT: String(busyPort) },
        });
        assert.equal(r.status, 1);
        assert.equal(r.stderr.trim().split("\n").pop(), `local-hosts.sh: port ${busyPort} is in use by another program; stop it or set COOP_REGISTRY_PORT to a free port`);
    });
});
