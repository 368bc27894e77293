// CoopRelease's reading of the host: the agent's state report, drift against the last deploy, and
// what a deploy whose connection was cut became, in words.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AgentState, drifted, outcome, parseAgentState } from "../../components/remote/coopRelease";

const V1 = `127.0.0.1:5001/coop-demo@sha256:${"1".repeat(64)}`;
const V2 = `127.0.0.1:5001/coop-demo@sha256:${"2".repeat(64)}`;
const report = JSON.stringify({ coop: "alpha", changed: true, reused: false, slot: "green", previousSlot: "blue", image: V2, releaseKey: "k2", timings: {} });

describe("CoopRelease and the host's state", () => {
    it("reads the agent's state report, and refuses one that is not", () => {
        const st = parseAgentState(
            JSON.stringify({
                coop: "alpha",
                live: { slot: "green", image: V2, releaseKey: "k2", running: true },
                deploying: false,
                last: { deployId: "d", image: V2, slot: "green", time: "t" },
            }),
        );
        assert.deepEqual(st, { live: { slot: "green", image: V2, releaseKey: "k2", running: true }, deploying: false, last: { deployId: "d", image: V2, slot: "green" } });
        assert.deepEqual(parseAgentState('{"coop":"alpha","live":null,"deploying":true,"last":null}'), { live: null, deploying: true, last: null });
        assert.throws(() => parseAgentState('{"live":{"slot":1},"deploying":false,"last":null}'), /live is not a release/);
        assert.throws(() => parseAgentState("[]"), /is not one/);
    });

    it("sees drift only when a refresh read something other than the last deploy's release", () => {
        const live = { slot: "green", image: V2, releaseKey: "k2", running: true };
        assert.equal(drifted({ stdout: report }), false, "never refreshed");
        assert.equal(drifted({ stdout: report, live }), false);
        assert.equal(drifted({ stdout: report, live: { running: true, releaseKey: "k2", image: V2, slot: "green" } }), false, "keys in the state's order");
        assert.equal(drifted({ stdout: report, live: { ...live, image: V1, releaseKey: "k1", slot: "blue" } }), true, "deployed by hand");
        assert.equal(drifted({ stdout: report, live: null }), true, "removed");
        assert.equal(drifted({ stdout: report, live: { ...live, running: false } }), true, "stopped");
    });

    it("says whether a cut deploy switched, and to what", () => {
        const finished: AgentState = {
            live: { slot: "green", image: V2, releaseKey: "k2", running: true },
            deploying: false,
            last: { deployId: "mine", image: V2, slot: "green" },
        };
        assert.equal(outcome("alpha", finished, "mine"), `the host finished the release: alpha runs ${V2} (slot green)`);
        const back: AgentState = { live: { slot: "blue", image: V1, releaseKey: "k1", running: true }, deploying: false, last: { deployId: "earlier", image: V1, slot: "blue" } };
        assert.equal(outcome("alpha", back, "mine"), `the host rolled back: still serving ${V1} (slot blue)`);
        assert.equal(outcome("alpha", { live: null, deploying: false, last: null }, "mine"), "the host rolled back: nothing serves alpha there");
    });
});
