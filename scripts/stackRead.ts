// Reading a stack through the CLI, with nothing heavy imported: the commands that read a stack
// (rollback, status, logs, releases) import this first, so that the CLI runs while the rest of
// the command loads. Each CLI run costs about half a second of CPU before it reads anything, and
// rollback's fast path waits for it: one run for a stack on this machine's hosts, two for a cloud
// stack.
import { execFile } from "child_process";
import { existsSync } from "fs";
import * as path from "path";
import { machineFile } from "../components/config/machineFile";

/** The repository root (this file runs from build/scripts/). */
export const ROOT = path.resolve(__dirname, "..", "..");

/** The local stack's documented passphrase, unless the caller set one (every other stack needs its own). */
export function useLocalPassphrase(name: string): void {
    if (name === "local" && !process.env.PULUMI_CONFIG_PASSPHRASE && !process.env.PULUMI_CONFIG_PASSPHRASE_FILE) {
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

const reads = new Map<string, Promise<RawStack>>();

/**
 * Starts reading the stack, once per process: later calls get the same reading. A command that
 * reaches the hosts (`reach`) needs the deploy key and the hosts: a stack on this machine's hosts
 * has both in its machine file, so one run reads it; any other stack's deploy key is a secret of
 * the live update's config, and its hosts are outputs. Without `reach` (a listing), the history
 * alone, without secrets.
 */
export function startStackRead(name: string, reach = true): Promise<RawStack> {
    const local = existsSync(path.join(ROOT, machineFile(name)));
    const remote = reach && !local;
    let read = reads.get(`${name} ${remote}`);
    if (!read) {
        useLocalPassphrase(name);
        read = Promise.all([
            cli(["stack", "history", "--stack", name, "--json", "--page-size", "1000000", ...(remote ? ["--show-secrets"] : [])]),
            remote ? cli(["stack", "output", "--stack", name, "--json"]) : undefined,
        ]).then(([history, outputs]) => ({ history, outputs }));
        // A command that stops on a bad argument before it reads the stack must not die of this.
        read.catch(() => undefined);
        reads.set(`${name} ${remote}`, read);
    }
    return read;
}

// Imported first: start on the command line's --stack right away (`releases` without --host
// only lists: it reaches no host).
const at = process.argv.indexOf("--stack");
const listing = path.basename(process.argv[1] ?? "") === "releases.js" && !process.argv.includes("--host");
if (at > 1 && /^[A-Za-z0-9_.-]+$/.test(process.argv[at + 1] ?? "")) void startStackRead(process.argv[at + 1], !listing);
