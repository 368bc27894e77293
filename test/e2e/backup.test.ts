// A database backup before every release with migrations, and its restore on rollback, against a
// stack of its own on the local host: the real CLI, the real agent, the real PostgreSQL of the
// local stack (scripts/local-data.sh), the real S3 server (versitygw) and a real framework's
// migrations (app/django: v2 adds a table and deletes the visits recorded before it).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { images, initLocalStack } from "../../bench/common";
import { coopSchema } from "../../components/config";
import { uptimeTargets } from "../../components/digitalocean/monitoring";
import { exec } from "../../components/remote/ssh";
import { ROOT, suiteHost, suiteHostUp, suiteTarget, suiteGet, pulumi, run, storedBackups, within } from "../support";

const STACK = "it-backup";
const COOP = "it-backup";
const SITE = `${COOP}.localhost`;
/** Where versitygw keeps the local stack's backups of this stack's co-op. */
const { dir: STORED, dumps } = storedBackups(STACK, COOP);

describe("backups before migrations and rollback --restore-db (real PostgreSQL, real S3 server, Django)", () => {
    let backend = "";
    let env: NodeJS.ProcessEnv = {};
    const cf = ["--stack", STACK];
    const up = () => pulumi(["up", ...cf, "--yes", "--skip-preview"], { env });
    const setImage = (tag: string) => assert.equal(pulumi(["config", "set", ...cf, "--path", "coop:coops[0].image", images()[tag]], { env }).status, 0);
    const rollback = (args: string[]) => run(path.join(ROOT, "scripts", "node-env.sh"), ["rollback", "--stack", STACK, ...args], { env });
    const visits = async (): Promise<number> => {
        const r = await suiteGet("/", SITE);
        assert.equal(r.status, 200, r.body);
        return JSON.parse(r.body).visits as number;
    };

    before(() => {
        suiteHostUp();
        backend = mkdtempSync(path.join(tmpdir(), "coop-backup-"));
        env = { PULUMI_BACKEND_URL: `file://${backend}`, PULUMI_CONFIG_PASSPHRASE: "backup-test-only" };
        rmSync(STORED, { recursive: true, force: true });
        initLocalStack(STACK, [{ id: COOP, domains: [SITE], image: images()["django"], migrate: ["migrate"], healthTimeout: 60 }], env, suiteHost());
        assert.equal(pulumi(["config", "set", ...cf, "--path", "coop:backups.image", images()["coop-pgtools"]], { env }).status, 0);
        assert.equal(pulumi(["config", "set", ...cf, "--path", "coop:backups.keep", "2"], { env }).status, 0);
    });

    after(async () => {
        pulumi(["destroy", ...cf, "--yes", "--skip-preview"], { env });
        pulumi(["stack", "rm", ...cf, "--yes", "--force"], { env });
        rmSync(path.join(ROOT, `Pulumi.${STACK}.yaml`), { force: true });
        rmSync(backend, { recursive: true, force: true });
        rmSync(STORED, { recursive: true, force: true });
        await exec(suiteTarget(), `docker rm -f coop-${COOP}-blue coop-${COOP}-green >/dev/null 2>&1; true`);
    });

    it("takes a dump before each release's migrations, stores it off the host and keeps the newest N", async () => {
        const first = up();
        assert.equal(first.status, 0, first.stdout + first.stderr);
        assert.equal(dumps().length, 1, "a dump before the first release's migrations");
        for (let i = 0; i < 5; i++) await visits();
        assert.equal(await visits(), 6, "the rows the app wrote through the local PostgreSQL");

        setImage("django:v2");
        const second = up();
        assert.equal(second.status, 0, second.stdout + second.stderr);
        assert.equal((await suiteGet("/version", SITE)).body.trim(), "v2");
        assert.equal(await visits(), 1, "v2's migration deleted the visits recorded before it");
        assert.equal(dumps().length, 2);
        // The up says so: the stack's releases output names the dump this update took.
        const outputs = JSON.parse(pulumi(["stack", "output", "releases", ...cf, "--json"], { env }).stdout);
        assert.match(outputs[COOP][suiteHost().name].backup, new RegExp(`^${STACK}/${COOP}/\\S+\\.dump$`));
        assert.match(second.stdout, new RegExp(`backup\\s*: "${STACK}/${COOP}/\\S+\\.dump"`));

        const preview = rollback(["--preview"]);
        assert.equal(preview.status, 0, preview.stdout + preview.stderr);
        assert.match(
            preview.stdout,
            new RegExp(
                `backup: ${COOP}: ${STACK}/${COOP}/\\S+\\.dump \\(\\d+ bytes, taken \\S+ while ${images()["django"].replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} served, before the migrations of \\S+django@sha256:[0-9a-f]+\\); --restore-db restores it`,
            ),
        );
        assert.match(preview.stdout, /preview only: nothing was changed/);
    });

    it("refuses to roll back past the migration without --restore-db or --keep-db, saying why", async () => {
        const r = rollback([]);
        assert.equal(r.status, 1, r.stdout + r.stderr);
        assert.match(
            r.stderr,
            /migrations ran after update \d+ and a database backup from before them exists \(it-backup\): run again with --restore-db to restore it .* or with --keep-db to roll back the code only.*nothing was changed/,
        );
        assert.equal((await suiteGet("/version", SITE)).body.trim(), "v2", "nothing was changed");
    });

    it("--restore-db holds the traffic, restores the rows written before the migration and starts the old release", async (t) => {
        const r = rollback(["--restore-db"]);
        t.diagnostic(
            `rollback --restore-db: restore ${/ in (\d+) ms; its traffic is held/.exec(r.stdout)?.[1] ?? "?"} ms, held ${/held for (\d+) ms/.exec(r.stdout)?.[1] ?? "?"} ms, ${/rolled back in (\S+) s/.exec(r.stdout)?.[1] ?? "?"} s in all`,
        );
        assert.equal(r.status, 0, r.stdout + r.stderr);
        assert.match(r.stdout, new RegExp(`${COOP}: database restored from ${STACK}/${COOP}/\\S+\\.dump`));
        assert.match(r.stdout, new RegExp(`${COOP}: traffic let through again, held for \\d+ ms`));
        // The old release sat in the idle slot: it serves as soon as it is switched to, and the
        // traffic goes through then, not after the pulumi up that records the rollback.
        assert.match(r.stdout, new RegExp(`fast path: ${COOP} on ${suiteHost().name} switched to the retained release`));
        assert.ok(r.stdout.indexOf("traffic let through again") < r.stdout.indexOf("Updating ("), `let through before the up:\n${r.stdout}`);
        assert.equal((await suiteGet("/version", SITE)).body.trim(), "v1");
        // The 6 visits of v1 are back (the one v2 recorded is gone with its schema), and this is the 7th.
        assert.equal(await visits(), 7);
        // v2's table and its migration's record went with the restore: the schema is v1's again.
        const sql = (q: string) =>
            run("psql", ["--no-psqlrc", "-tA", "-h", "127.0.0.1", "-p", "5433", "-U", "postgres", "-d", "coop_it_backup_it_backup", "-c", q], {
                env: { PGPASSWORD: readFileSync(path.join(ROOT, ".local", "postgres", "admin-password"), "utf8").trim() },
            });
        const tables = sql("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE tablename LIKE 'site_%'");
        assert.equal(tables.stdout.trim(), "site_visit", tables.stderr);
        const applied = sql("SELECT string_agg(name, ',' ORDER BY name) FROM django_migrations WHERE app = 'site'");
        assert.equal(applied.stdout.trim(), "0001_initial", applied.stderr);
        assert.ok(dumps().length <= 2, `the store keeps the newest 2: ${dumps().join(", ")}`);
    });

    it("a failed backup stops the release before any migration runs, the old slot serving", async () => {
        // An image that is not coop-pgtools stands in for a backup that cannot be taken: the demo
        // app's entrypoint takes pg_dump's arguments and exits 2 (a real failure, in the real engine).
        assert.equal(pulumi(["config", "set", ...cf, "--path", "coop:backups.image", images()["demo:v1"]], { env }).status, 0);
        // v2 with a new setting: a new release (the idle slot's v2 would be switched to as it is).
        setImage("django:v2");
        assert.equal(pulumi(["config", "set", ...cf, "--path", "coop:coops[0].env.NOTE", "a new setting"], { env }).status, 0);
        const r = up();
        assert.notEqual(r.status, 0, "the release failed");
        assert.match(r.stdout + r.stderr, /deploy it-backup: backup failed: .*; no migration ran/);
        assert.equal((await suiteGet("/version", SITE)).body.trim(), "v1", "the old slot serves");
        assert.equal(await visits(), 8, "v2's migration (which deletes the visits) did not run");
    });

    it("hold, as rollback --restore-db runs it on every host but the one that restores: 503 and both slots stopped, until resume", async () => {
        const agent = "/opt/coop/bin/coop-agent";
        const out = pulumi(["stack", "output", "backupSections", ...cf, "--json", "--show-secrets"], { env });
        const stdin = JSON.stringify(JSON.parse(out.stdout)[COOP]);
        const list = await exec(suiteTarget(), `${agent} backups ${COOP}`, { stdin });
        const key = (JSON.parse(list.stdout) as { backups: Array<{ key: string }> }).backups.at(-1)!.key;
        const running = async () => (await exec(suiteTarget(), `docker ps -q --filter label=coop.id=${COOP}`)).stdout.trim();
        assert.notEqual(await running(), "", "a slot serves before");

        const held = await exec(suiteTarget(), `${agent} hold ${COOP} --key ${key}`, { stdin });
        assert.equal(held.code, 0, held.stderr);
        assert.deepEqual([JSON.parse(held.stdout).held, JSON.parse(held.stdout).restored], [true, false]);
        assert.equal((await suiteGet("/version", SITE)).status, 503, "the proxy refuses the co-op's requests");
        // kamal-proxy answers the health path itself while held; the uptime checks ask for the
        // uptime path (its default here), which shows the co-op down.
        assert.equal((await suiteGet("/health", SITE)).status, 200, "the proxy's own answer to the health path");
        const uptime = new URL(uptimeTargets([{ domain: SITE, uptimePath: coopSchema().parse({ id: COOP, domains: [SITE], image: images()["django"] }).uptimePath }])[0].target);
        assert.equal((await suiteGet(uptime.pathname, SITE)).status, 503, "what the uptime check asks for is down");
        assert.equal(await running(), "", "no slot runs: nothing writes to the database, nothing holds a connection");

        // What the rollback's switch and its resume do afterwards, here by hand: the live slot back, the traffic through.
        const back = await exec(suiteTarget(), `${agent} resume ${COOP} && ${agent} reconcile >/dev/null`);
        assert.equal(back.code, 0, back.stderr);
        // The reconcile starts the slot and leaves it: the proxy answers 502 until Django listens.
        await within(60, "v1 answering again", async () => (await suiteGet("/version", SITE)).body.trim() === "v1");
    });

    it("--restore-db never offers a dump taken before the target's update: rows written on its schema since are kept", async () => {
        // v2 again, its backups working: a dump while v1 serves, then v2's migrations.
        assert.equal(pulumi(["config", "set", ...cf, "--path", "coop:backups.image", images()["coop-pgtools"]], { env }).status, 0);
        setImage("django:v2");
        const migrated = up();
        assert.equal(migrated.status, 0, migrated.stdout + migrated.stderr);
        // Back to v1 keeping the database (v2's schema), and a row written there.
        const kept = rollback(["--keep-db"]);
        assert.equal(kept.status, 0, kept.stdout + kept.stderr);
        assert.equal((await suiteGet("/version", SITE)).body.trim(), "v1");
        const written = await visits();
        // v2 once more, from its retained slot: no migration runs, so no dump is taken.
        setImage("django:v2");
        const again = up();
        assert.equal(again.status, 0, again.stdout + again.stderr);
        assert.equal((await suiteGet("/version", SITE)).body.trim(), "v2");

        const preview = rollback(["--preview"]);
        assert.equal(preview.status, 0, preview.stdout + preview.stderr);
        assert.doesNotMatch(preview.stdout, /^backup: /m, "the dump from before the --keep-db rollback is not offered");
        assert.match(
            preview.stdout,
            /no backup: it-backup: no backup taken since update \d+ while \S+ served is in the store .*an older one would lose the rows written on its schema since/,
        );
        const refused = rollback(["--restore-db"]);
        assert.equal(refused.status, 1, refused.stdout + refused.stderr);
        assert.match(refused.stderr, /--restore-db: there is no backup to restore .*nothing was changed/);
        assert.equal((await suiteGet("/version", SITE)).body.trim(), "v2", "nothing was changed");
        assert.equal(await visits(), written + 1, "the row written on v2's schema under v1 is still there");
    });
});
