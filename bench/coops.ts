// npm run bench:coops — the real CLI with 1 and with 20 co-ops on one host: after changing one
// co-op's digest, how many remote operations `pulumi up` runs and how long it takes.
// It uses its own stacks (Pulumi.bench-coops-N.yaml, git-ignored, removed afterwards) and takes
// the local stack down first: both would share the host's proxy.
import { rmSync } from "node:fs";
import * as path from "node:path";
import { ROOT, localHostsUp, pulumi } from "../test/support";
import { images, initLocalStack, must, printFigures } from "./common";

/** Resources whose remote operation ran in an update (created, updated, replaced or deleted). */
function remoteOps(out: string): string[] {
    return out
        .split("\n")
        .filter((l) => /coop:Remote(Command|File)/.test(l) && /\b(created|updated|deleted|replaced)\b/.test(l))
        .map((l) => l.trim().split(/\s+/)[2]);
}

async function measure(coops: number): Promise<{ initialS: number; updateS: number; ops: string[] }> {
    const stack = `bench-coops-${coops}`;
    const file = path.join(ROOT, `Pulumi.${stack}.yaml`);
    const cf = ["--stack", stack];
    const img = images();
    const env = { PULUMI_CONFIG_PASSPHRASE: "bench-only" };
    const set = (...args: string[]) => must(pulumi(["config", "set", ...cf, ...args], { env }), `config set ${args[0]}`);
    try {
        initLocalStack(
            stack,
            Array.from({ length: coops }, (_, i) => ({
                id: `scale-${String(i).padStart(2, "0")}`,
                domains: [`scale-${String(i).padStart(2, "0")}.localhost`],
                image: img["demo:v1"],
                migrate: ["migrate"],
                memory: "64m",
                deleteDataOnRemove: true,
            })),
            env,
        );

        let t = performance.now();
        must(pulumi(["up", ...cf, "--yes", "--skip-preview"], { env }), `initial up (${coops} co-ops)`);
        const initialS = (performance.now() - t) / 1000;

        set("--path", "coop:coops[0].image", img["demo:v2"]);
        t = performance.now();
        const r = must(pulumi(["up", ...cf, "--yes", "--skip-preview"], { env }), `update (${coops} co-ops)`);
        const updateS = (performance.now() - t) / 1000;
        return { initialS, updateS, ops: remoteOps(r.stdout) };
    } finally {
        pulumi(["destroy", ...cf, "--yes", "--skip-preview"], { env: { PULUMI_CONFIG_PASSPHRASE: "bench-only" } });
        pulumi(["stack", "rm", "--stack", stack, "--yes", "--force"]);
        rmSync(file, { force: true });
    }
}

async function main(): Promise<void> {
    localHostsUp();
    must(pulumi(["destroy", "--stack", "local", "--yes", "--skip-preview"]), "destroy local stack");
    const one = await measure(1);
    const twenty = await measure(20);
    console.error(`remote operations in the 20-co-op update: ${twenty.ops.join(", ")}`);
    printFigures({
        initial_up_s_1_coop: one.initialS,
        initial_up_s_20_coops: twenty.initialS,
        update_one_digest_s_1_coop: one.updateS,
        update_one_digest_s_20_coops: twenty.updateS,
        update_wall_ratio_20_over_1: twenty.updateS / one.updateS,
        remote_commands_run_1_coop: one.ops.filter((o) => !o.includes("-env") && !o.includes("-config-")).length,
        remote_commands_run_20_coops: twenty.ops.filter((o) => !o.includes("-env") && !o.includes("-config-")).length,
        remote_operations_run_20_coops: twenty.ops.length,
    });
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
