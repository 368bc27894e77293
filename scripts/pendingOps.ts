// Run by scripts/pulumi.sh before `up`, `preview` and `destroy`: drops the pending creates that an
// interrupted update left and the next `up` redoes anyway (components/pending.ts says which), and
// names the rest with what to do. Exits 0 either way: it never blocks the command it precedes.
//   node build/scripts/pendingOps.js STACK
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { judgePending, pendingOperations } from "../components/pending";

const ROOT = path.resolve(__dirname, "..", "..");
const stack = process.argv[2];
const say = (m: string) => console.error(`pulumi.sh: ${m}`);

function pulumi(args: string[], input?: string): string {
    return execFileSync("pulumi", [...args, "--stack", stack, "--non-interactive"], {
        cwd: ROOT,
        input,
        encoding: "utf8",
        maxBuffer: 512 * 1024 * 1024,
        stdio: ["pipe", "pipe", "pipe"],
    });
}

function main(): void {
    let exported: { deployment?: { pending_operations?: unknown } };
    try {
        exported = JSON.parse(pulumi(["stack", "export"]));
    } catch {
        return; // no such stack yet, or no access: the command itself will say so
    }
    const ops = pendingOperations(exported);
    const { drop, keep } = judgePending(ops);
    if (drop.length > 0) {
        const left = (exported.deployment!.pending_operations as unknown[]).filter((_, i) => !drop.includes(ops[i]));
        const next = { ...exported, deployment: { ...exported.deployment, pending_operations: left.length > 0 ? left : undefined } };
        pulumi(["stack", "import"], JSON.stringify(next));
        say(`dropped ${drop.length} pending create(s) an interrupted update left; the next up redoes them: ${drop.map((d) => d.resource.urn.split("::").at(-1)).join(", ")}`);
    }
    for (const k of keep) {
        const what = ({ creating: "create", updating: "update", deleting: "delete", reading: "read", importing: "import" } as Record<string, string>)[k.type] ?? k.type;
        say(`an interrupted update left a pending ${what} of ${k.resource.urn}: see README, "Runbook: an update was interrupted"`);
    }
}

main();
