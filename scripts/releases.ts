// npm run releases -- --stack S [--json] [--host]
// The stack's update history as releases: per update, the digest each co-op ran and whether it
// changed. --host adds what each host's own release record says, and flags a mismatch.
import { ReleaseRecord, parseReport } from "../components/release";
import { render } from "../components/remote/shell";
import { exec } from "../components/remote/ssh";
import { formatReleases, liveRelease, releasesFromHistory } from "../components/releases";
import { fail, openStack, parseArgs, sshTarget, stackConfig, stackHosts, withMachine } from "./stackTools";

const USAGE = "usage: npm run releases -- --stack S [--json] [--host]";

async function hostRecords(stack: Awaited<ReturnType<typeof openStack>>, live: Record<string, string>) {
    const [all, outputs] = await Promise.all([stack.getAllConfig().then((c) => withMachine(c, stack.name)), stack.outputs()]);
    const cfg = stackConfig(all);
    const agents = (outputs.agents?.value ?? {}) as Record<string, string>;
    const rows: Array<{ coop: string; host: string; stack: string; host_record: string; match: boolean }> = [];
    for (const h of stackHosts(cfg, outputs)) {
        const target = sshTarget(cfg, all, h);
        for (const [coop, image] of Object.entries(live)) {
            const agent = agents[h.name];
            if (!agent) fail(`the stack has no agent on ${h.name}: run pulumi up first`);
            const r = await exec(target, render([agent, "releases", coop]));
            const last = r.stdout.trim().split("\n").filter(Boolean).pop();
            const onHost = last ? parseReport(ReleaseRecord, `the release record of ${coop} on ${h.name}`, last).image : "";
            rows.push({ coop, host: h.name, stack: image, host_record: onHost, match: onHost === image });
        }
    }
    return rows;
}

async function main(): Promise<void> {
    const args = parseArgs(process.argv.slice(2), { stack: "string", json: "boolean", host: "boolean" }, USAGE);
    if (typeof args.stack !== "string") fail(`--stack is required\n${USAGE}`);
    const stack = await openStack(args.stack);
    // The CLI returns 10 entries unless asked for more; positions only mean something over all of them.
    const releases = releasesFromHistory(await stack.history(1_000_000, 1));
    const live = liveRelease(releases);
    const host = args.host ? await hostRecords(stack, live?.images ?? {}) : undefined;
    if (args.json) {
        console.log(JSON.stringify({ stack: args.stack, releases, ...(host ? { host } : {}) }, null, 2));
        return;
    }
    console.log(formatReleases(releases));
    console.log("(* = the co-op's image changed in that update; numbers are positions in the history, oldest first)");
    if (host) {
        console.log("\nco-op  host  stack's live digest vs the host's last release record");
        for (const r of host) {
            console.log(`${r.coop}  ${r.host}  ${r.match ? "match" : `MISMATCH: stack ${r.stack}, host ${r.host_record || "(no record)"}`}`);
        }
        if (host.some((r) => !r.match)) process.exitCode = 2;
    }
}

main().catch((e) => fail((e as Error).message));
