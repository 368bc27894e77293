import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HostStatusReport, parseReport } from "../../components/release";
import { formatStatus, statusRows } from "../../components/status";

const img = (v: string) => `127.0.0.1:5001/coop-demo@sha256:${v.repeat(64).slice(0, 64)}`;

/** What `coop-agent status --coops` prints, parsed as `npm run status` parses it. */
function report(coops: unknown[]): HostStatusReport {
    const json = JSON.stringify({ proxy: { running: true, image: "kamal-proxy", routes: [] }, coops });
    return parseReport(HostStatusReport, "status", json);
}

const slot = (s: string, v: string, running: boolean) => ({ slot: s, image: img(v), running, since: running ? "2026-12-01T12:00:00Z" : "" });

describe("statusRows", () => {
    it("agrees when the host serves, running, the digest the stack's history says", () => {
        const rows = statusRows({ alpha: img("2") }, [
            { host: "h1", report: report([{ coop: "alpha", live: slot("green", "2", true), idle: slot("blue", "1", false), healthy: true, lock: "", last: null }]) },
        ]);
        assert.equal(rows.length, 1);
        assert.equal(rows[0].agrees, true);
        assert.deepEqual(rows[0].idle, { image: img("1"), running: false });
        assert.equal(rows[0].since, "2026-12-01T12:00:00Z");
    });

    it("differs when the digest differs, when the live container is stopped, and when the host lacks a co-op or has one the stack does not", () => {
        const rows = statusRows({ alpha: img("2"), beta: img("1"), gamma: img("1") }, [
            {
                host: "h1",
                report: report([
                    { coop: "alpha", live: slot("blue", "1", true), idle: null, healthy: true, lock: "", last: null },
                    { coop: "beta", live: slot("blue", "1", false), idle: null, healthy: null, lock: "", last: null },
                    { coop: "zeta", live: slot("blue", "1", true), idle: null, healthy: true, lock: "", last: null },
                ]),
            },
        ]);
        assert.deepEqual(
            rows.map((r) => [r.coop, r.agrees]),
            [
                ["alpha", false],
                ["beta", false],
                ["gamma", false],
                ["zeta", false],
            ],
        );
        assert.equal(rows.find((r) => r.coop === "gamma")!.live, null);
        assert.equal(rows.find((r) => r.coop === "zeta")!.stack, null);
    });

    it("gives a row per co-op and host", () => {
        const one = report([{ coop: "alpha", live: slot("blue", "1", true), idle: null, healthy: true, lock: "", last: null }]);
        const rows = statusRows({ alpha: img("1") }, [
            { host: "h1", report: one },
            { host: "h2", report: one },
        ]);
        assert.deepEqual(
            rows.map((r) => `${r.coop}@${r.host}`),
            ["alpha@h1", "alpha@h2"],
        );
    });
});

describe("formatStatus", () => {
    it("shows short digests, the rollback slot, a failing health check, the lock's holder and a difference", () => {
        const text = formatStatus(
            statusRows({ alpha: img("2") }, [
                {
                    host: "h1",
                    report: report([{ coop: "alpha", live: slot("green", "3", true), idle: slot("blue", "2", true), healthy: false, lock: "pid 7 on h1", last: null }]),
                },
            ]),
        );
        const [header, row] = text.split("\n");
        assert.match(header, /^CO-OP\s+HOST\s+LIVE\s+SINCE\s+IDLE \(ROLLBACK\)\s+HEALTH\s+RELEASE RUNNING\s+STACK$/);
        assert.match(
            row,
            /^alpha\s+h1\s+coop-demo@333333333333\s+2026-12-01T12:00:00Z\s+coop-demo@222222222222 \(running\)\s+FAILING\s+pid 7 on h1\s+DIFFERS: stack coop-demo@222222222222$/,
        );
    });

    it("shows until when an idle slot runs in its rollback window", () => {
        const idle = { ...slot("blue", "2", true), until: "2026-12-01T12:15:00Z" };
        const rows = statusRows({ alpha: img("3") }, [
            { host: "h1", report: report([{ coop: "alpha", live: slot("green", "3", true), idle, healthy: true, lock: "", last: null }]) },
        ]);
        assert.deepEqual(rows[0].idle, { image: img("2"), running: true, until: "2026-12-01T12:15:00Z" });
        assert.match(formatStatus(rows).split("\n")[1], /coop-demo@222222222222 \(running until 2026-12-01T12:15:00Z\)\s+ok\s/);
    });

    it("refuses a report that does not match the agent's schema, naming what", () => {
        assert.throws(
            () => report([{ coop: "alpha", live: { slot: "red", image: "x", running: true, since: "" }, idle: null, healthy: true, lock: "", last: null }]),
            /status: .*coops\.0\.live\.slot/,
        );
    });
});
