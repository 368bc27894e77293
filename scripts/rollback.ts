// npm run rollback -- --stack S [--to N] [--coop ID] [--preview] [--restore-db | --keep-db]
// Puts back the image digests of an earlier successful update (by default the one before the
// live one), sets them in the stack config and runs `pulumi up`. Only digests are copied. When
// migrations ran after the target and the agent took a database backup before them, the
// rollback offers it: --restore-db restores it (the co-op's traffic held meanwhile), --keep-db
// rolls the code back only; without either it refuses.
// First: it starts reading the stack while the rest loads.
import "./stackRead";
import * as path from "path";
import { BackupSection, DeployReport, releaseDocument } from "../components/release";
import { RollbackPlan, RollbackError, StoredBackup, backupBefore, liveRelease, planRollback, releasesFromHistory } from "../components/releases";
import { render } from "../components/remote/shell";
import { DeployedStack, ROOT, cli, closeConnections, currentCoops, fail, openStack, parseArgs, readHistory, readStack } from "./stackTools";

const USAGE = "usage: npm run rollback -- --stack S [--to N] [--coop ID] [--preview] [--restore-db | --keep-db]";

/** What a co-op's rollback can restore: the backup taken while the target release served, before the migrations after it. */
interface Offer {
    coop: string;
    section: BackupSection;
    backup: StoredBackup;
}

/** Each co-op's backup section, from the stack's secret output (asked only when coop:backups is set: a failed read is an error). */
async function backupSections(stack: string): Promise<Record<string, BackupSection>> {
    try {
        return JSON.parse(await cli(["stack", "output", "backupSections", "--stack", stack, "--json", "--show-secrets"])) ?? {};
    } catch (e) {
        fail(`reading the stack's backup sections (pulumi stack output backupSections) failed: ${(e as Error).message}; nothing was changed`);
    }
}

/**
 * For each co-op whose migrations ran after the target: the backup taken before the first of
 * them ({@link backupBefore}), from the list of the first host's agent (the store is shared; the
 * hosts are not asked one by one).
 */
async function findOffers(stack: string, deployed: DeployedStack, plan: RollbackPlan, migrated: string[]): Promise<{ offers: Offer[]; missing: string[] }> {
    // Without coop:backups no dump was taken: the stack's outputs are not read (it costs a CLI run).
    const sections = migrated.length && deployed.config["coop:backups"] !== undefined ? await backupSections(stack) : {};
    const host = deployed.hosts[0];
    const releases = releasesFromHistory(deployed.history);
    const offers: Offer[] = [];
    const missing: string[] = [];
    for (const coop of migrated) {
        const section = sections[coop];
        const to = plan.changes.find((c) => c.coop === coop)!.to;
        if (!section || !host) {
            missing.push(`${coop}: no database backups are taken for it (coop:backups is not set)`);
            continue;
        }
        const r = await deployed.run(host, render([deployed.agent, "backups", coop]), { stdin: JSON.stringify(section) });
        if (r.code !== 0) fail(`${coop}: listing its backups on ${host.name} failed: ${r.stderr.trim().split("\n").pop()}; nothing was changed`);
        const list = (JSON.parse(r.stdout) as { backups: StoredBackup[] }).backups;
        const backup = backupBefore(releases, plan.target, coop, list);
        if (backup) offers.push({ coop, section, backup });
        else
            missing.push(
                `${coop}: no backup taken since update ${plan.target.number} while ${to} served is in the store (${list.length} kept); an older one would lose the rows written on its schema since`,
            );
    }
    return { offers, missing };
}

/**
 * For each offer: holds the co-op's traffic and stops its slots on every other host first (the
 * database is theirs too: no writes from them, no connection that holds up the restore), then
 * restores its database from the first host, which holds it there as well.
 */
async function restoreDatabases(deployed: DeployedStack, offers: Offer[]): Promise<Map<string, number>> {
    const heldSince = new Map<string, number>();
    const [first, ...others] = deployed.hosts;
    const heldUntil = (coop: string) => `its traffic stays held (503) until \`${deployed.agent} resume ${coop}\` on each host that held it`;
    for (const o of offers) {
        const started = Date.now();
        heldSince.set(o.coop, started);
        const stdin = JSON.stringify(o.section);
        const holds = await Promise.all(others.map(async (h) => ({ h, r: await deployed.run(h, render([deployed.agent, "hold", o.coop, "--key", o.backup.key]), { stdin }) })));
        for (const { h, r } of holds) {
            if (r.code !== 0) fail(`${o.coop}: holding it on ${h.name} failed: ${r.stderr.trim().split("\n").slice(-3).join(" ")}; nothing was restored; ${heldUntil(o.coop)}`);
        }
        const r = await deployed.run(first, render([deployed.agent, "restore", o.coop, "--key", o.backup.key]), { stdin });
        if (r.code !== 0) fail(`${o.coop}: the restore on ${first.name} failed: ${r.stderr.trim().split("\n").slice(-3).join(" ")}; ${heldUntil(o.coop)}`);
        const where = others.length ? ` (held on ${deployed.hosts.map((h) => h.name).join(", ")})` : "";
        console.log(`${o.coop}: database restored from ${o.backup.key} on ${first.name}${where} in ${Date.now() - started} ms; its traffic is held until the old release serves`);
    }
    return heldSince;
}

/** Lets the restored co-ops' traffic through again, on every host, saying how long it was held. */
async function resume(deployed: DeployedStack, offers: Offer[], heldSince: Map<string, number>): Promise<void> {
    for (const o of offers) {
        for (const h of deployed.hosts) {
            const r = await deployed.run(h, render([deployed.agent, "resume", o.coop]));
            if (r.code !== 0) console.log(`warning: ${o.coop} on ${h.name}: resume failed: ${r.stderr.trim().split("\n").pop()}`);
        }
        console.log(`${o.coop}: traffic let through again, held for ${Date.now() - (heldSince.get(o.coop) ?? Date.now())} ms`);
    }
}

/**
 * The fast path: on every host where the target release still sits in the co-op's idle slot,
 * switch to it now (the agent's deploy --only-if-retained: no pull, no migration). The `pulumi up`
 * that follows finds those hosts already on the target and changes nothing there; hosts where it
 * was pruned get the full deploy from that up. The release document is built by the same function
 * the Coop component uses, from the live release's config, so both agree on the release.
 */
async function switchRetained(deployed: DeployedStack, plan: RollbackPlan): Promise<Switch[]> {
    const { cfg } = deployed;
    const said = await Promise.all(
        plan.changes.flatMap((change) => {
            const coop = cfg.coops.find((c) => c.id === change.coop);
            return deployed.hosts.map(async (h): Promise<Switch | undefined> => {
                if (!coop) return undefined;
                const at = { coop: coop.id, host: h.name };
                const started = Date.now();
                const release = releaseDocument({ ...coop, image: change.to }, { network: cfg.network, tls: cfg.proxy.tls });
                const r = await deployed.run(h, render([deployed.agent, "deploy", "--only-if-retained"]), { stdin: JSON.stringify(release) });
                if (r.code === 0) {
                    // The agent had nothing to do when the host already served the release.
                    if (unchanged(r.stdout)) return { ...at, serves: true, line: `${coop.id} on ${h.name}: already serves the release; nothing to switch` };
                    return { ...at, serves: true, line: `fast path: ${coop.id} on ${h.name} switched to the retained release in ${Date.now() - started} ms` };
                }
                if (r.code === 3) return { ...at, serves: false, line: `${coop.id} on ${h.name}: the release is no longer retained; pulumi up will pull and deploy it` };
                return { ...at, serves: false, line: `${coop.id} on ${h.name}: the fast switch failed (${r.stderr.trim().split("\n").pop()}); pulumi up will deploy it` };
            });
        }),
    );
    return said.filter((x): x is Switch => x !== undefined);
}

/** What the fast path did for one co-op on one host: whether the host now serves the target. */
interface Switch {
    coop: string;
    host: string;
    serves: boolean;
    line: string;
}

/** The agent's deploy report says it changed nothing. */
function unchanged(stdout: string): boolean {
    try {
        return DeployReport.parse(JSON.parse(stdout)).changed === false;
    } catch {
        return false;
    }
}

/** The plan against the stack's live release, or the refusal's reason. */
function planOn(deployed: DeployedStack, opts: { to?: number; coop?: string }): RollbackPlan | RollbackError {
    const releases = releasesFromHistory(deployed.history);
    // Planned against what the hosts run (the live release, as status reads it); the stack file is made to agree after the switch.
    const live = liveRelease(releases)?.images ?? {};
    try {
        return planRollback(releases, live, opts);
    } catch (e) {
        if (e instanceof RollbackError) return e;
        throw e;
    }
}

/** Two plans put back the same digests and see the same migrations (their update numbers aside). */
function samePlan(a: RollbackPlan, b: RollbackPlan): boolean {
    const what = (p: RollbackPlan) => JSON.stringify([p.changes, p.migrated]);
    return what(a) === what(b);
}

async function main(): Promise<void> {
    const args = parseArgs(process.argv.slice(2), { stack: "string", to: "string", coop: "string", preview: "boolean", "restore-db": "boolean", "keep-db": "boolean" }, USAGE);
    if (args["restore-db"] && args["keep-db"]) fail(`--restore-db and --keep-db exclude each other\n${USAGE}`);
    if (typeof args.stack !== "string") fail(`--stack is required\n${USAGE}`);
    let to: number | undefined;
    if (args.to !== undefined) {
        to = Number(args.to);
        if (!Number.isInteger(to) || to < 1) fail(`--to ${args.to}: must be an update number (see npm run releases -- --stack ${args.stack})`);
    }
    const opts = { to, coop: args.coop as string | undefined };
    // The newest page of the history holds the live release and, unless --to names an older
    // one, the target: the switch needs nothing more, and goes first. What is printed comes
    // from the whole history, which numbers the updates.
    let deployed = await readStack(args.stack, { whole: to !== undefined });
    let plan = planOn(deployed, opts);
    if (plan instanceof RollbackError && !deployed.whole) {
        deployed = await readStack(args.stack, { whole: true });
        plan = planOn(deployed, opts);
    }
    if (plan instanceof RollbackError) fail(`${plan.message}; nothing was changed`);
    const { offers, missing } = await findOffers(args.stack, deployed, plan, plan.migrated);
    // Nothing to show or ask first (a preview, a restore, a refusal): switch on the page's plan.
    const refused = offers.length > 0 && !args["restore-db"] && !args["keep-db"];
    const switchNow = !deployed.whole && !args.preview && !args["restore-db"] && !refused;
    const switched = switchNow ? await switchRetained(deployed, plan) : undefined;
    if (!deployed.whole) {
        const paged = plan;
        deployed = { ...deployed, history: await readHistory(args.stack), whole: true };
        plan = planOn(deployed, opts);
        if (plan instanceof RollbackError || !samePlan(paged, plan)) {
            const done = switched?.some((x) => x.serves)
                ? `the hosts holding it were switched to ${paged.changes.map((c) => `${c.coop} ${c.to}`).join(", ")} (the stack's config is unchanged: pulumi up puts its release back)`
                : "nothing was changed";
            fail(`the stack's history changed while this rollback read it (another update ran?); ${done}; run rollback again`);
        }
    }

    console.log(`rollback of stack ${args.stack} to update ${plan.target.number} (${plan.target.time}, "${plan.target.message}"); live now: update ${plan.current.number}`);
    for (const c of plan.changes) console.log(`  ${c.coop}: ${c.from} -> ${c.to}`);
    for (const w of plan.warnings) console.log(`warning: ${w}`);
    for (const o of offers) {
        console.log(
            `backup: ${o.coop}: ${o.backup.key} (${o.backup.bytes} bytes, taken ${o.backup.time} while ${o.backup.live} served, before the migrations of ${o.backup.before}); --restore-db restores it`,
        );
    }
    for (const m of missing) console.log(`no backup: ${m}`);
    if (args.preview) {
        console.log("preview only: nothing was changed");
        return;
    }
    if (refused) {
        fail(
            `migrations ran after update ${plan.target.number} and a database backup from before them exists (${offers.map((o) => o.coop).join(", ")}): ` +
                "run again with --restore-db to restore it (rows written since it was taken are lost; the co-op's traffic is held while it runs), " +
                "or with --keep-db to roll back the code only, on the newer schema; nothing was changed",
        );
    }
    if (args["restore-db"] && offers.length === 0)
        fail(`--restore-db: there is no backup to restore (${missing.join("; ") || "no migrations ran after the target"}); nothing was changed`);

    const started = Date.now();
    const restoring = args["restore-db"] ? offers : [];
    const heldSince = await restoreDatabases(deployed, restoring);
    const switches = switched ?? (await switchRetained(deployed, plan));
    for (const s of switches) console.log(s.line);
    // A restored co-op that every host now serves on the target is let through at once; one that
    // a host still has to deploy (pulumi up below) stays held until that deploy is done, so that
    // no request meets the newer release on the restored schema.
    const servesEverywhere = (coop: string) => deployed.hosts.every((h) => switches.some((s) => s.coop === coop && s.host === h.name && s.serves));
    const early = restoring.filter((o) => servesEverywhere(o.coop));
    const late = restoring.filter((o) => !servesEverywhere(o.coop));
    await resume(deployed, early, heldSince);

    // The stack file now: the rolled-back co-ops' images become the target's, wherever the file
    // differs from it (a failed update's digest too), so that the up records the release.
    const stack = await openStack(args.stack);
    const coops = currentCoops(await stack.getAllConfig());
    const edits = plan.changes.flatMap(({ coop, to: image }) => {
        if (!coops[coop]) {
            console.log(`warning: ${coop} is no longer in the stack's config: the up that follows removes it`);
            return [];
        }
        return coops[coop].image === image ? [] : [{ coop, index: coops[coop].index, from: coops[coop].image, to: image }];
    });
    for (const e of edits) {
        await stack.setConfig(`coop:coops[${e.index}].image`, { value: e.to }, true);
    }
    const message = `rollback to update ${plan.target.number}: ${plan.changes.map((c) => c.coop).join(", ")}`;
    try {
        await stack.up({ message, onOutput: (s) => process.stdout.write(s) });
    } catch (e) {
        fail(
            `pulumi up failed (the stack config now holds update ${plan.target.number}'s digests${late.length ? `; the traffic of ${late.map((o) => o.coop).join(", ")} stays held until their agent's resume` : ""}): ${(e as Error).message.split("\n").slice(-5).join("\n")}`,
        );
    }
    await resume(deployed, late, heldSince);
    console.log(`rolled back in ${((Date.now() - started) / 1000).toFixed(1)} s`);

    // What this rollback changed, and nothing else: the working copy may hold other edits (the
    // local hosts' machine values, a colleague's change), which are not this command's to report.
    const file = path.join(ROOT, `Pulumi.${args.stack}.yaml`);
    if (edits.length === 0) return;
    console.log(`\nCommit this so the repository and the stack agree (${file}):`);
    for (const e of edits) {
        console.log(`  coop:coops[${e.index}].image (${e.coop}): ${e.from} -> ${e.to}`);
    }
}

main().then(closeConnections, (e) => fail((e as Error).message));
