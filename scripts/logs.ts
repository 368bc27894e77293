// npm run logs -- --stack S --coop ID [--follow] [--since 10m]
// The co-op's container log from every host of the stack, each line prefixed with its host; with
// --follow it goes on until interrupted.
// First: it starts reading the stack while the rest loads.
import "./stackRead";
import { render } from "../components/remote/shell";
import { execStream } from "../components/remote/ssh";
import { isCoopId } from "../components/rules";
import { closeConnections, fail, parseArgs, readStack } from "./stackTools";

const USAGE = "usage: npm run logs -- --stack S --coop ID [--follow] [--since 10m]";

/** Prefixes each complete line with the host; keeps a partial line until its end arrives. */
function linePrefixer(prefix: string, write: (s: string) => void): { push(chunk: string): void; end(): void } {
    let partial = "";
    return {
        push(chunk) {
            const lines = (partial + chunk).split("\n");
            partial = lines.pop()!;
            for (const l of lines) write(`${prefix}${l}\n`);
        },
        end() {
            if (partial !== "") write(`${prefix}${partial}\n`);
        },
    };
}

async function main(): Promise<void> {
    const args = parseArgs(process.argv.slice(2), { stack: "string", coop: "string", follow: "boolean", since: "string" }, USAGE);
    if (typeof args.stack !== "string") fail(`--stack is required\n${USAGE}`);
    if (typeof args.coop !== "string" || !isCoopId(args.coop)) fail(`--coop must be a co-op id\n${USAGE}`);
    const since = typeof args.since === "string" ? args.since : "1h";
    if (!/^[0-9]+(ms|s|m|h)$/.test(since)) fail(`--since ${since}: must be a duration such as 10m or 2h`);
    const { cfg, hosts, agent, target } = await readStack(args.stack);
    if (!cfg.coops.some((c) => c.id === args.coop)) fail(`--coop ${args.coop}: the stack has no such co-op (${cfg.coops.map((c) => c.id).join(", ")})`);
    const width = Math.max(...hosts.map((h) => h.name.length));
    // Ctrl-C or SIGTERM (what ends --follow) closes every host's connection, which ends the agent's
    // `logs --follow --while-stdin-open` on the host; then the command ends.
    const stop = new AbortController();
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
        process.once(sig, () => {
            process.exitCode = sig === "SIGINT" ? 130 : 143;
            stop.abort();
            closeConnections();
        });
    }
    const codes = await Promise.all(
        hosts.map(async (h) => {
            const out = linePrefixer(`${h.name.padEnd(width)} | `, (s) => process.stdout.write(s));
            const err = linePrefixer(`${h.name.padEnd(width)} ! `, (s) => process.stderr.write(s));
            const command = render([agent, "logs", args.coop as string, "--since", since, ...(args.follow ? ["--follow", "--while-stdin-open"] : [])]);
            const code = await execStream(target(h), command, (chunk, stream) => (stream === "stdout" ? out : err).push(chunk), {
                holdStdin: args.follow === true,
                signal: stop.signal,
            });
            out.end();
            err.end();
            return code;
        }),
    );
    if (!stop.signal.aborted && codes.some((c) => c !== 0)) process.exitCode = 1;
}

// The stack's reading opened connections to its hosts (stackTools): closed too, or the process could not exit.
main().then(closeConnections, (e) => fail((e as Error).message));
