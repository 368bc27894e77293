// npm run rollback -- --stack S [--to N] [--coop ID] [--preview]
// Puts back the image digests of an earlier successful update (by default the one before the
// live one), sets them in the stack config and runs `pulumi up`. Only digests are copied.
import * as path from "path";
import type { ConfigMap } from "@pulumi/pulumi/automation";
import { releaseDocument } from "../components/release";
import { RollbackPlan, RollbackError, planRollback, releasesFromHistory } from "../components/releases";
import { exec } from "../components/remote/ssh";
import { render } from "../components/remote/shell";
import { ROOT, currentCoops, fail, openStack, parseArgs, readStack, sshTarget, stackConfig, stackHosts } from "./stackTools";

const USAGE = "usage: npm run rollback -- --stack S [--to N] [--coop ID] [--preview]";

/**
 * The fast path: on every host where the target release still sits in the co-op's idle slot,
 * switch to it now (the agent's deploy --only-if-retained: no pull, no migration). The `pulumi up`
 * that follows finds those hosts already on the target and changes nothing there; hosts where it
 * was pruned get the full deploy from that up. The release document is built by the same function
 * the Coop component uses, from the same config, so both agree on the release.
 */
async function switchRetained(all: ConfigMap, outputs: Record<string, { value: unknown }>, plan: RollbackPlan): Promise<void> {
    const cfg = stackConfig(all);
    const agents = (outputs.agents?.value ?? {}) as Record<string, string>;
    await Promise.all(
        plan.changes.flatMap((change) => {
            const coop = cfg.coops.find((c) => c.id === change.coop);
            return stackHosts(cfg, outputs).map(async (h) => {
                if (!coop || !agents[h.name]) return;
                const started = Date.now();
                const release = releaseDocument({ ...coop, image: change.to }, { network: cfg.network, tls: cfg.proxy.tls });
                const r = await exec(sshTarget(cfg, all, h), render([agents[h.name], "deploy", "--only-if-retained"]), { stdin: JSON.stringify(release) });
                if (r.code === 0) {
                    console.log(`fast path: ${coop.id} on ${h.name} switched to the retained release in ${Date.now() - started} ms`);
                } else if (r.code === 3) {
                    console.log(`${coop.id} on ${h.name}: the release is no longer retained; pulumi up will pull and deploy it`);
                } else {
                    console.log(`${coop.id} on ${h.name}: the fast switch failed (${r.stderr.trim().split("\n").pop()}); pulumi up will deploy it`);
                }
            });
        }),
    );
}

async function main(): Promise<void> {
    const args = parseArgs(process.argv.slice(2), { stack: "string", to: "string", coop: "string", preview: "boolean" }, USAGE);
    if (typeof args.stack !== "string") fail(`--stack is required\n${USAGE}`);
    let to: number | undefined;
    if (args.to !== undefined) {
        to = Number(args.to);
        if (!Number.isInteger(to) || to < 1) fail(`--to ${args.to}: must be an update number (see npm run releases -- --stack ${args.stack})`);
    }
    const { history, config: all, outputs } = await readStack(args.stack);
    const releases = releasesFromHistory(history);
    const coops = currentCoops(all);
    const current = Object.fromEntries(Object.entries(coops).map(([id, c]) => [id, c.image]));

    let plan;
    try {
        plan = planRollback(releases, current, { to, coop: args.coop as string | undefined });
    } catch (e) {
        if (e instanceof RollbackError) fail(`${e.message}; nothing was changed`);
        throw e;
    }

    console.log(`rollback of stack ${args.stack} to update ${plan.target.number} (${plan.target.time}, "${plan.target.message}"); live now: update ${plan.current.number}`);
    for (const c of plan.changes) console.log(`  ${c.coop}: ${c.from} -> ${c.to}`);
    for (const w of plan.warnings) console.log(`warning: ${w}`);
    if (args.preview) {
        console.log("preview only: nothing was changed");
        return;
    }

    const started = Date.now();
    await switchRetained(all, outputs, plan);
    const stack = await openStack(args.stack);
    for (const c of plan.changes) {
        await stack.setConfig(`coop:coops[${coops[c.coop].index}].image`, { value: c.to }, true);
    }
    const message = `rollback to update ${plan.target.number}: ${plan.changes.map((c) => c.coop).join(", ")}`;
    try {
        await stack.up({ message, onOutput: (s) => process.stdout.write(s) });
    } catch (e) {
        fail(`pulumi up failed (the stack config now holds update ${plan.target.number}'s digests): ${(e as Error).message.split("\n").slice(-5).join("\n")}`);
    }
    console.log(`rolled back in ${((Date.now() - started) / 1000).toFixed(1)} s`);

    // What this rollback changed, and nothing else: the working copy may hold other edits (the
    // local hosts' machine values, a colleague's change), which are not this command's to report.
    const file = path.join(ROOT, `Pulumi.${args.stack}.yaml`);
    console.log(`\nCommit this so the repository and the stack agree (${file}):`);
    for (const c of plan.changes) {
        console.log(`  coop:coops[${coops[c.coop].index}].image (${c.coop}): ${c.from} -> ${c.to}`);
    }
}

main().catch((e) => fail((e as Error).message));
