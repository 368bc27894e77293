import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HistoryEntry, RollbackError, StoredBackup, backupBefore, formatReleases, liveUpdate, planRollback, releasesFromHistory } from "../../components/releases";

const img = (v: string) => `127.0.0.1:5001/coop-demo@sha256:${v.repeat(64).slice(0, 64)}`;

function update(minute: number, result: string, alpha: string, beta: string, migrate = true): HistoryEntry {
    const coops = [
        { id: "alpha", image: img(alpha), migrate: migrate ? ["migrate"] : [] },
        { id: "beta", image: img(beta) },
    ];
    return {
        kind: "update",
        startTime: new Date(Date.UTC(2026, 10, 23, 12, minute)).toISOString(),
        message: `deploy ${alpha}/${beta}\nbody`,
        result,
        environment: { "git.author": "ana" },
        config: { "coop:coops": { value: JSON.stringify(coops) }, "coop:sshPrivateKey": { secret: true } },
    };
}

// Newest first, as the CLI returns it.
const history: HistoryEntry[] = [
    update(4, "failed", "3", "1"),
    update(3, "succeeded", "2", "1"),
    { kind: "refresh", startTime: new Date(Date.UTC(2026, 10, 23, 12, 2)).toISOString(), message: "", result: "succeeded" },
    update(1, "succeeded", "1", "1"),
];

describe("liveUpdate", () => {
    it("is the last successful update: its config is what the hosts run, not a failed update's after it", () => {
        assert.equal(liveUpdate(history), history[1]);
    });

    it("orders as the release numbers do: of two updates in one second, the CLI's first is the newer", () => {
        const a = { ...update(5, "succeeded", "4", "1"), startTime: history[0].startTime };
        const b = { ...update(5, "succeeded", "5", "1"), startTime: history[0].startTime };
        assert.equal(liveUpdate([b, a]), b);
        assert.equal(liveUpdate([a, b]), a);
    });

    it("is none before the first successful update (a destroy or a refresh deploys nothing)", () => {
        assert.equal(liveUpdate([history[0], history[2]]), undefined);
    });
});

describe("releasesFromHistory", () => {
    const releases = releasesFromHistory(history);

    it("numbers updates by position, oldest first, and reads each update's digests", () => {
        assert.deepEqual(
            releases.map((r) => [r.number, r.kind, r.result, r.images.alpha?.slice(-3) ?? "", r.changed.join(",")]),
            [
                [1, "update", "succeeded", "111", "alpha,beta"],
                [2, "refresh", "succeeded", "", ""],
                [3, "update", "succeeded", "222", "alpha"],
                [4, "update", "failed", "333", "alpha"],
            ],
        );
        assert.equal(releases[0].message, "deploy 1/1");
        assert.equal(releases[0].who, "ana");
    });

    it("keeps the CLI's order for updates that started in the same second", () => {
        const sameSecond = [update(5, "succeeded", "2", "2"), { ...update(5, "succeeded", "", ""), kind: "destroy", config: {} }];
        assert.deepEqual(
            releasesFromHistory(sameSecond).map((r) => [r.number, r.kind]),
            [
                [1, "destroy"],
                [2, "update"],
            ],
        );
    });

    it("prints a table with a column per co-op and * where the image changed", () => {
        const lines = formatReleases(releases).split("\n");
        assert.match(lines[0], /^#\s+time\s+kind\s+result\s+who: message\s+alpha\s+beta$/);
        assert.match(lines[3], /^3\s+2026-11-23 12:03:00\s+update\s+succeeded\s+ana: deploy 2\/1\s+coop-demo@222222222222 \*\s+coop-demo@111111111111$/);
    });
});

describe("planRollback", () => {
    const releases = releasesFromHistory(history);
    const config = { alpha: img("3"), beta: img("1") }; // the failed update's config is what the stack file holds

    it("goes back to the successful update before the live one, digests only", () => {
        const plan = planRollback(releases, config);
        assert.equal(plan.current.number, 3);
        assert.equal(plan.target.number, 1);
        assert.deepEqual(plan.changes, [{ coop: "alpha", from: img("3"), to: img("1") }]);
        assert.deepEqual(plan.warnings, [
            "alpha: migrations ran with update 3 (after update 1); they are not rolled back — check that the old release works with the newer schema",
        ]);
    });

    it("takes --to and --coop", () => {
        const plan = planRollback(releases, config, { to: 3, coop: "alpha" });
        assert.deepEqual(plan.changes, [{ coop: "alpha", from: img("3"), to: img("2") }]);
        // A failed update may have migrated before it failed (migrations come before the health gate).
        assert.deepEqual(planRollback(releases, config, { to: 3 }).warnings, [
            "alpha: migrations ran with update 4 (after update 3); they are not rolled back — check that the old release works with the newer schema",
        ]);
    });

    it("refuses a failed update, an unknown number, a non-update, a live target and an unknown co-op", () => {
        const refused = (opts: { to?: number; coop?: string }, cfg: Record<string, string> = config) => {
            try {
                planRollback(releases, cfg, opts);
            } catch (e) {
                assert.ok(e instanceof RollbackError);
                return e.message;
            }
            assert.fail("expected a refusal");
        };
        assert.equal(refused({ to: 4 }), "--to 4: update 4 failed; only a successful update can be rolled back to");
        assert.equal(refused({ to: 9 }), "--to 9: no such update (this stack has updates 1 to 4; see npm run releases)");
        assert.equal(refused({ to: 2 }), "--to 2: update 2 was a refresh, not an update that deployed co-ops");
        assert.equal(refused({ to: 1 }, { alpha: img("1"), beta: img("1") }), "update 1's digests are already the stack's: nothing to roll back");
        assert.equal(refused({ coop: "gamma" }), "--coop gamma: no such co-op in the stack's config (co-ops: alpha, beta)");
        assert.equal(refused({}, {}), "update 1's digests are already the stack's: nothing to roll back", "no co-op in the config means nothing to change");
    });

    it("needs a successful update before the live one", () => {
        assert.throws(() => planRollback(releasesFromHistory([update(1, "succeeded", "1", "1")]), config), /no successful update before update 1/);
        assert.throws(() => planRollback(releasesFromHistory([update(1, "failed", "1", "1")]), config), /no successful update in this stack's history/);
    });
});

describe("backupBefore", () => {
    const dump = (n: number, live: string, before: string): StoredBackup => ({
        key: `alpha/${n}.dump`,
        bytes: n,
        time: `2026-11-23T12:0${n}:00Z`,
        live: img(live),
        before: img(before),
    });
    const releases = releasesFromHistory(history);
    const target = releases[0]; // alpha 1; migrations ran with update 3 (alpha 2) and the failed update 4 (alpha 3)

    it("is the first dump before the first migrating release: of a release's dumps taken on every host, the first host's", () => {
        const stored = [dump(1, "1", "2"), dump(2, "1", "2"), dump(3, "1", "2"), dump(4, "2", "3")];
        assert.equal(backupBefore(releases, target, "alpha", stored), stored[0]);
    });

    it("is the dump before a failed release whose migrations ran, not a later one taken on its schema", () => {
        const failedFirst = releasesFromHistory([update(3, "succeeded", "3", "1"), update(2, "failed", "2", "1"), update(1, "succeeded", "1", "1")]);
        const stored = [dump(1, "1", "2"), dump(2, "1", "3")];
        assert.equal(backupBefore(failedFirst, failedFirst[0], "alpha", stored), stored[0]);
    });

    it("falls back to the newest dump taken while the target served, and offers none taken while another release served", () => {
        const other = [dump(1, "1", "9"), dump(2, "1", "8")];
        assert.equal(backupBefore(releases, target, "alpha", other), other[1]);
        assert.equal(backupBefore(releases, target, "alpha", [dump(4, "2", "3")]), undefined);
    });

    it("offers no dump taken before the target's update: rows written on the target's schema since would be lost", () => {
        // v1; v2 (a dump before its migrations, while v1 served); a rollback to v1 keeping the
        // database (rows written on v2's schema); v2 again from its retained slot (no migration, no dump).
        const redeployed = releasesFromHistory([
            update(4, "succeeded", "2", "1"),
            update(3, "succeeded", "1", "1"),
            update(2, "succeeded", "2", "1"),
            update(1, "succeeded", "1", "1"),
        ]);
        const rolledBackTo = redeployed.find((r) => r.number === 3)!;
        const stale = dump(2, "1", "2");
        assert.equal(backupBefore(redeployed, rolledBackTo, "alpha", [stale]), undefined);
        // A dump taken after it, before v2's migrations ran again, is the one.
        const fresh = dump(4, "1", "2");
        assert.equal(backupBefore(redeployed, rolledBackTo, "alpha", [stale, fresh]), fresh);
    });
});
