// Reading a stack, with nothing heavy imported: the commands that read a stack (rollback, status,
// logs, releases) import this first, so that the reading runs while the rest of the command
// loads. The CLI reads one file per update of the history, which only grows: what runs on the
// hosts needs only the newest updates (a page), and the whole history is read only to number it.
// Each CLI run costs about half a second of CPU before it reads anything, and under load that was
// the longest wait before rollback's switch: a page of a stack on this machine's hosts (no
// secrets needed) is read from a file backend's own files (backendHistory.ts), without the CLI.
// Whole histories, secrets and outputs come from the CLI.
import { execFile } from "child_process";
import { existsSync } from "fs";
import * as path from "path";
import { machineFile } from "../components/config/machineFile";
import { backendHistory, fileBackendDir, projectName } from "./backendHistory";

/** The repository root (this file runs from build/scripts/). */
export const ROOT = path.resolve(__dirname, "..", "..");

/** The stacks whose secrets are encrypted under the documented passphrase (scripts/pulumi.sh names the same two). */
const DOCUMENTED_PASSPHRASE_STACKS = ["local", "multi", "suite"];

/** The documented passphrase for the local and multi stacks, unless the caller set one (every other stack needs its own). */
export function useLocalPassphrase(name: string): void {
    if (DOCUMENTED_PASSPHRASE_STACKS.includes(name) && !process.env.PULUMI_CONFIG_PASSPHRASE && !process.env.PULUMI_CONFIG_PASSPHRASE_FILE) {
        process.env.PULUMI_CONFIG_PASSPHRASE = process.env.COOP_LOCAL_PASSPHRASE;
    }
}

/** Runs the pulumi CLI in the project; the error is its first line that says error. */
export function cli(args: string[]): Promise<string> {
    return new Promise((resolve, reject) =>
        execFile("pulumi", [...args, "--non-interactive"], { cwd: ROOT, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) =>
            err
                ? reject(
                      new Error(
                          stderr
                              .trim()
                              .split("\n")
                              .find((l) => /error/i.test(l)) ?? stderr.trim(),
                      ),
                  )
                : resolve(stdout),
        ),
    );
}

/**
 * The stack as the CLI prints it (JSON text): its history, each update with the config it ran
 * with, and its outputs (cloud stacks: the hosts DigitalOcean made are only there).
 */
export interface RawStack {
    history: string;
    /** Absent for a stack on this machine's hosts (its machine file names them) and for a listing. */
    outputs?: string;
}

/**
 * How many of the newest updates a page holds: the live release (the newest successful update)
 * and the one before it are in it unless that many updates in a row failed. COOP_HISTORY_PAGE
 * sets it (the tests make it small, to take the paged path on a short history).
 */
export const PAGE = /^[1-9][0-9]{0,5}$/.test(process.env.COOP_HISTORY_PAGE ?? "") ? Number(process.env.COOP_HISTORY_PAGE) : 20;

/** What to read: `whole` history or its newest {@link PAGE}; `reach`: the command reaches the hosts. */
export interface ReadOptions {
    whole?: boolean;
    reach?: boolean;
}

/** The newest {@link PAGE} of the stack's history from a file backend's files, as the CLI prints it; undefined when they cannot be read so. */
function pageFromBackend(name: string): string | undefined {
    const dir = fileBackendDir(process.env.PULUMI_BACKEND_URL);
    const project = dir && projectName(ROOT);
    const page = project ? backendHistory(dir, project, name, PAGE) : undefined;
    return page && JSON.stringify(page);
}

const reads = new Map<string, Promise<RawStack>>();

/**
 * Starts reading the stack, once per process and kind of read: later calls get the same reading.
 * A command that reaches the hosts needs the deploy key and the hosts: a stack on this machine's
 * hosts has both in its machine file, so its history alone is read (a page from a file backend's
 * files, without the CLI); any other stack's deploy key is a secret of the live update's config,
 * and its hosts are outputs. A command that does not reach them (a listing) reads the history
 * alone, without secrets.
 */
export function startStackRead(name: string, { whole = false, reach = true }: ReadOptions = {}): Promise<RawStack> {
    const local = existsSync(path.join(ROOT, machineFile(name)));
    const remote = reach && !local;
    const key = JSON.stringify([name, whole, remote]);
    let read = reads.get(key);
    if (!read) {
        useLocalPassphrase(name);
        const fromFiles = whole || remote ? undefined : pageFromBackend(name);
        read = Promise.all([
            fromFiles ??
                cli(["stack", "history", "--stack", name, "--json", "--page-size", whole ? "1000000" : String(PAGE), "--page", "1", ...(remote ? ["--show-secrets"] : [])]),
            remote ? cli(["stack", "output", "--stack", name, "--json"]) : undefined,
        ]).then(([history, outputs]) => ({ history, outputs }));
        // A command that stops on a bad argument before it reads the stack must not die of this.
        read.catch(() => undefined);
        reads.set(key, read);
    }
    return read;
}

// Imported first: start on the command line's --stack right away. `releases` numbers the whole
// history (without --host it only lists: it reaches no host); so does `rollback --to N`. The
// others start with a page.
const at = process.argv.indexOf("--stack");
const command = path.basename(process.argv[1] ?? "", ".js");
const first: ReadOptions = {
    whole: command === "releases" || (command === "rollback" && process.argv.includes("--to")),
    reach: !(command === "releases" && !process.argv.includes("--host")),
};
if (at > 1 && /^[A-Za-z0-9_.-]+$/.test(process.argv[at + 1] ?? "")) void startStackRead(process.argv[at + 1], first);
