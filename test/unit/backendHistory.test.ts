// The file backend's history read without the CLI: the page, its order, and every case where it
// answers undefined so that the CLI is asked instead. That its page is the CLI's, field for field,
// is asserted against the real CLI on a real history (test/e2e/rollback.test.ts).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { backendHistory, cliUpdate, fileBackendDir } from "../../scripts/backendHistory";

/** A backend directory holding `files` (name → content) in the stack's history directory. */
function backend(files: Record<string, unknown>): string {
    const dir = mkdtempSync(path.join(tmpdir(), "coop-backend-"));
    const history = path.join(dir, ".pulumi", "history", "coop", "dev");
    mkdirSync(history, { recursive: true });
    for (const [name, content] of Object.entries(files)) writeFileSync(path.join(history, name), typeof content === "string" ? content : JSON.stringify(content));
    return dir;
}

const update = (startTime: number, message: string, config: Record<string, unknown> = {}) => ({
    kind: "update",
    startTime,
    message,
    environment: { "git.head": "abc" },
    config,
    version: 0,
    result: "succeeded",
    endTime: startTime + 12,
    resourceChanges: { same: 3 },
});

describe("backendHistory", () => {
    it("gives the newest updates first, a page of them, skipping checkpoints and attributes", () => {
        const dir = backend({
            "dev-1796000000000000001.history.json": update(1796000000, "first"),
            "dev-1796000000000000002.history.json": update(1796000100, "second"),
            "dev-1796000000000000003.history.json": update(1796000200, "third"),
            "dev-1796000000000000003.checkpoint.json": { version: 3 },
            "dev-1796000000000000003.history.json.attrs": "{}",
        });
        assert.deepEqual(
            backendHistory(dir, "coop", "dev", 2)?.map((u) => u.message),
            ["third", "second"],
        );
        assert.deepEqual(
            backendHistory(dir, "coop", "dev", 20)?.map((u) => u.startTime),
            ["2026-11-30T00:56:40.000Z", "2026-11-30T00:55:00.000Z", "2026-11-30T00:53:20.000Z"],
        );
    });

    it("prints config as the CLI does without --show-secrets: secrets without a value, objects as Go's JSON text", () => {
        const u = cliUpdate(
            update(1796000000, "m", {
                "coop:environment": "dev",
                "coop:token": { secure: "v1:abc" },
                "coop:proxy": { tls: true, httpPort: 80, note: "<a&b>" },
                "coop:coops": [{ id: "alpha", env: { KEY: { secure: "v1:def" } } }],
            }),
        );
        assert.deepEqual(u?.config, {
            "coop:environment": { value: "dev", secret: false },
            "coop:token": { secret: true },
            "coop:proxy": { value: '{"httpPort":80,"note":"\\u003ca\\u0026b\\u003e","tls":true}', secret: false, objectValue: { tls: true, httpPort: 80, note: "<a&b>" } },
            "coop:coops": { secret: true },
        });
    });

    it("answers undefined, for the CLI to read, when the backend keeps the history another way", () => {
        const cases: Array<[string, string]> = [
            ["no history directory for the stack", backend({})],
            ["a compressed history file in the page", backend({ "dev-1796000000000000001.history.json.gz": "\x1f\x8b" })],
            ["a file that is not JSON", backend({ "dev-1796000000000000001.history.json": "{" })],
            ["a start time that is not a number", backend({ "dev-1796000000000000001.history.json": { ...update(0, "m"), startTime: "yesterday" } })],
            ["a config value of an unknown kind", backend({ "dev-1796000000000000001.history.json": update(1796000000, "m", { "coop:x": null }) })],
        ];
        for (const [what, dir] of cases) {
            const stack = what.startsWith("no history") ? "uat" : "dev";
            assert.equal(backendHistory(dir, "coop", stack, 20), undefined, what);
        }
    });

    it("reads only a file backend at an absolute path", () => {
        assert.equal(fileBackendDir("file:///srv/state"), "/srv/state");
        assert.equal(fileBackendDir("file://~/state"), undefined);
        assert.equal(fileBackendDir("s3://bucket"), undefined);
        assert.equal(fileBackendDir(undefined), undefined);
    });
});
