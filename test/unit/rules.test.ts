// The shared rule table (test/rules/cases.json) through the TypeScript rules. The host agent's Go
// tests run the same rows (host/internal/rules): a rule that differs between the two fails one side.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { LIMITS, isCoopId, isDomain, isEnvName, isImageDigest, isIpAddress, isSshPublicKey } from "../../components/rules";
import { ROOT } from "../support";

const RULES: Record<string, (v: string) => boolean> = {
    imageDigest: isImageDigest,
    coopId: isCoopId,
    envName: isEnvName,
    sshPublicKey: isSshPublicKey,
    domain: isDomain,
    ipAddress: isIpAddress,
};

const table = JSON.parse(readFileSync(path.join(ROOT, "test", "rules", "cases.json"), "utf8")) as Record<string, { accept: string[]; refuse: string[] } | string> & {
    _limits: Record<string, number | string>;
};

describe("the shared rule table", () => {
    it("has a TypeScript rule for every table and a table for every rule", () => {
        assert.deepEqual(
            Object.keys(table)
                .filter((k) => !k.startsWith("_"))
                .sort(),
            Object.keys(RULES).sort(),
        );
    });
    it("holds a release to the table's limits", () => {
        const { _comment, ...limits } = table._limits;
        assert.deepEqual(LIMITS, limits);
    });
    for (const [name, rule] of Object.entries(RULES)) {
        const rows = table[name] as { accept: string[]; refuse: string[] };
        it(`${name}: accepts ${rows.accept.length} and refuses ${rows.refuse.length}`, () => {
            for (const v of rows.accept) assert.equal(rule(v), true, `${name} should accept ${JSON.stringify(v)}`);
            for (const v of rows.refuse) assert.equal(rule(v), false, `${name} should refuse ${JSON.stringify(v)}`);
        });
    }
});
