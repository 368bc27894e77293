// Reading a stack through the CLI, with nothing heavy imported: the commands that read a stack
// (rollback, status, logs) import this first, so that the three CLI runs start while the rest of
// the command loads (about a second each, and as long again under load).
import { execFile } from "child_process";
import * as path from "path";

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

/** The stack's history, config (secrets shown) and outputs, as the CLI prints them (JSON text). */
export interface RawStack {
    history: string;
    config: string;
    outputs: string;
}

const reads = new Map<string, Promise<RawStack>>();

/** Starts reading the stack, once per process: later calls get the same reading. */
export function startStackRead(name: string): Promise<RawStack> {
    let read = reads.get(name);
    if (!read) {
        useLocalPassphrase(name);
        read = Promise.all([
            cli(["stack", "history", "--stack", name, "--json", "--page-size", "1000000"]),
            cli(["config", "--stack", name, "--json", "--show-secrets"]),
            cli(["stack", "output", "--stack", name, "--json"]),
        ]).then(([history, config, outputs]) => ({ history, config, outputs }));
        // A command that stops on a bad argument before it reads the stack must not die of this.
        read.catch(() => undefined);
        reads.set(name, read);
    }
    return read;
}

// Imported first: start on the command line's --stack right away.
const at = process.argv.indexOf("--stack");
if (at > 1 && /^[A-Za-z0-9_.-]+$/.test(process.argv[at + 1] ?? "")) void startStackRead(process.argv[at + 1]);
