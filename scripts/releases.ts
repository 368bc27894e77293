// npm run releases -- --stack S [--json] [--host]
// The stack's update history as releases: per update, the digest each co-op ran and whether it
// changed. --host adds what each host's own release record says, and flags a mismatch.
// First: it starts reading the stack while the rest loads.
import { startStackRead } from "./stackRead";
import { ReleaseRecord, parseReport } from "../components/release";
import { render } from "../components/remote/shell";
import { formatReleases, releasesFromHistory } from "../components/releases";
import { closeConnections, fail, parseArgs, readStack } from "./stackTools";

const USAGE = "usage: npm run releases -- --stack S [--json] [--host]";

async function hostRecords(name: string) {
    const deployed = await readStack(name, { whole: true });
    const live = deployed.images;
    const rows: Array<{ coop: string; host: string; stack: string; host_record: string; match: boolean }> = [];
    for (const h of deployed.hosts) {
        for (const [coop, image] of Object.entries(live)) {
            const r = await deployed.run(h, render([deployed.agent, "releases", coop]));
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
    let history;
    try {
        history = JSON.parse((await startStackRead(args.stack, { whole: true, reach: args.host === true })).history);
    } catch (e) {
        fail(`--stack ${args.stack}: ${(e as Error).message}`);
    }
    const releases = releasesFromHistory(history);
    const host = args.host ? await hostRecords(args.stack) : undefined;
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

main().then(closeConnections, (e) => fail((e as Error).message));
