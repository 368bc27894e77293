import assert from "node:assert/strict";
import { test } from "node:test";
import { parseDeployCommand, tokenize } from "../src/coopctl";

const DIGEST = "sha256:" + "ab".repeat(32);

// Exactly what components/coopCommands.ts deployCommand + components/remote/shell.ts render give.
const RENDERED =
    `/opt/coop/bin/coopctl-0a1b2c3d4e5f deploy alpha --image 127.0.0.1:5001/coop-demo@${DIGEST} --port 8080 ` +
    "--health-path /health --network coop --retain 2 --health-timeout 10 --drain-timeout 30 --tls " +
    "--domain alpha.localhost --domain www.alpha.localhost --migrate migrate --migrate '--to' --migrate 'it'\\''s'";

test("tokenize: bare words, single quotes with '\\'' escapes, double quotes, operators", () => {
    assert.deepEqual(tokenize(`a 'b c' 'it'\\''s' "d \\"e\\"" f\\ g && h|i 2>&1`), [
        { word: "a" },
        { word: "b c" },
        { word: "it's" },
        { word: 'd "e"' },
        { word: "f g" },
        { op: "&&" },
        { word: "h" },
        { op: "|" },
        { word: "i" },
        { op: "2>&1" },
    ]);
    assert.throws(() => tokenize("a 'b"), /unterminated single quote/);
});

test("parseDeployCommand reads the rendered deploy command", () => {
    assert.deepEqual(parseDeployCommand(RENDERED), {
        tool: "/opt/coop/bin/coopctl-0a1b2c3d4e5f",
        id: "alpha",
        options: {
            image: [`127.0.0.1:5001/coop-demo@${DIGEST}`],
            port: ["8080"],
            "health-path": ["/health"],
            network: ["coop"],
            retain: ["2"],
            "health-timeout": ["10"],
            "drain-timeout": ["30"],
            domain: ["alpha.localhost", "www.alpha.localhost"],
            migrate: ["migrate", "--to", "it's"],
        },
        flags: ["tls"],
    });
});

test("parseDeployCommand finds the deploy in a chain and ignores other coopctl subcommands", () => {
    const d = parseDeployCommand(`mkdir -p /opt/coop && coopctl deploy beta --image x@${DIGEST} --only-if-retained`);
    assert.deepEqual(d, { tool: "coopctl", id: "beta", options: { image: [`x@${DIGEST}`] }, flags: ["only-if-retained"] });
    assert.equal(parseDeployCommand("/opt/coop/bin/coopctl-0a1b prepare alpha"), undefined);
    assert.equal(parseDeployCommand("/opt/coop/bin/coopctl-0a1b remove alpha --delete-data"), undefined);
    assert.equal(parseDeployCommand("echo deploy alpha --image x:latest"), undefined);
    assert.equal(parseDeployCommand("coopctl deploy 'alpha"), undefined);
});
