// npm run rollback -- --stack S [--to N] [--coop ID] [--preview]
// Puts back the image digests of an earlier successful update (by default the one before the
// live one), sets them in the stack config and runs `pulumi up`. Only digests are copied.
import { execFileSync } from "child_process";
import * as path from "path";
import { RollbackError, planRollback, releasesFromHistory } from "../components/releases";
import { ROOT, currentCoops, fail, openStack, parseArgs } from "./stackTools";

const USAGE = "usage: npm run rollback -- --stack S [--to N] [--coop ID] [--preview]";

async function main(): Promise<void> {
    const args = parseArgs(process.argv.slice(2), { stack: "string", to: "string", coop: "string", preview: "boolean" }, USAGE);
    if (typeof args.stack !== "string") fail(`--stack is required\n${USAGE}`);
    let to: number | undefined;
    if (args.to !== undefined) {
        to = Number(args.to);
        if (!Number.isInteger(to) || to < 1) fail(`--to ${args.to}: must be an update number (see npm run releases -- --stack ${args.stack})`);
    }
    const stack = await openStack(args.stack);
    const releases = releasesFromHistory(await stack.history(1_000_000, 1));
    const coops = await currentCoops(stack);
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

    for (const c of plan.changes) {
        await stack.setConfig(`coop:coops[${coops[c.coop].index}].image`, { value: c.to }, true);
    }
    const started = Date.now();
    const message = `rollback to update ${plan.target.number}: ${plan.changes.map((c) => c.coop).join(", ")}`;
    try {
        await stack.up({ message, onOutput: (s) => process.stdout.write(s) });
    } catch (e) {
        fail(`pulumi up failed (the stack config now holds update ${plan.target.number}'s digests): ${(e as Error).message.split("\n").slice(-5).join("\n")}`);
    }
    console.log(`rolled back in ${((Date.now() - started) / 1000).toFixed(1)} s`);

    const file = `Pulumi.${args.stack}.yaml`;
    let diff = "";
    try {
        diff = execFileSync("git", ["diff", "-U0", "--", file], { cwd: ROOT, encoding: "utf8" });
    } catch {
        // not a git checkout: print the values instead
    }
    const lines = diff.split("\n").filter((l) => /^[+-]\s+image:/.test(l));
    console.log(`\nCommit this so the repository and the stack agree (${path.join(ROOT, file)}):`);
    console.log(lines.length > 0 ? lines.join("\n") : plan.changes.map((c) => `  coop:coops[${coops[c.coop].index}].image: ${c.to}`).join("\n"));
}

main().catch((e) => fail((e as Error).message));
