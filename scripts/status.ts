// npm run status -- --stack S [--json]
// Per co-op and host: the live release (digest, since when), the one kept for an instant
// rollback, the live release's health, the lock's holder while a release runs, and whether the
// host agrees with the stack's history. One SSH call per host, all at once. Exits 2 when a host
// differs from the stack or a live release fails its health check.
// First: it starts reading the stack while the rest loads.
import "./stackRead";
import { HostStatusReport, parseReport } from "../components/release";
import { render } from "../components/remote/shell";
import { formatStatus, statusRows } from "../components/status";
import { closeConnections, fail, parseArgs, readStack } from "./stackTools";

const USAGE = "usage: npm run status -- --stack S [--json]";

async function main(): Promise<void> {
    const args = parseArgs(process.argv.slice(2), { stack: "string", json: "boolean" }, USAGE);
    if (typeof args.stack !== "string") fail(`--stack is required\n${USAGE}`);
    const deployed = await readStack(args.stack);
    const stackLive = deployed.images;
    const hosts = await Promise.all(
        deployed.hosts.map(async (h) => {
            const r = await deployed.run(h, render([deployed.agent, "status", "--coops"]));
            if (r.code !== 0) fail(`status on ${h.name} (${h.address}:${h.port}) exited ${r.code}: ${r.stderr.trim().split("\n").pop()}`);
            return { host: h.name, report: parseReport(HostStatusReport, `status on ${h.name}`, r.stdout) };
        }),
    );
    const rows = statusRows(stackLive, hosts);
    if (args.json) {
        console.log(JSON.stringify({ stack: args.stack, rows, proxies: Object.fromEntries(hosts.map((h) => [h.host, h.report.proxy])) }, null, 2));
    } else {
        for (const h of hosts) {
            if (!h.report.proxy.running) console.log(`warning: ${h.host}: the proxy is not running`);
        }
        console.log(formatStatus(rows));
    }
    if (rows.some((r) => !r.agrees || r.healthy === false)) process.exitCode = 2;
}

main().then(closeConnections, (e) => fail((e as Error).message));
