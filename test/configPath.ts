// A stack document through the path the program's config takes at `pulumi preview`: the CLI's
// config map (test/cliConfig.ts: Pulumi.yaml's declarations, the stack file, secrets), then the
// program's reading (readConfig, parseStackConfig). No engine: for the many cases of the bad-input
// tests, each a fraction of a millisecond.
import { ConfigError, StackConfig, parseStackConfig, readConfig } from "../components/config";
import { CliConfigError, cliConfig } from "./cliConfig";
import { deployKey } from "./mockProgram";
import { ROOT } from "./support";

export type Outcome = { ok: StackConfig } | { refused: string[]; by: "program" | "cli" } | { crashed: Error };

/** A committed stack's config as an operator has it: with the deploy key (and on a cloud stack its public half). */
export function operatorConfig(config: Record<string, unknown>): { config: Record<string, unknown>; plaintext: Record<string, string> } {
    const key = deployKey();
    const out: Record<string, unknown> = { ...config };
    const plaintext: Record<string, string> = {};
    if (!("coop:sshPrivateKey" in out)) {
        out["coop:sshPrivateKey"] = { secure: "v1:operator" };
        plaintext["coop:sshPrivateKey"] = key.private;
        if (out["coop:digitalocean"]) out["coop:digitalocean"] = { ...(out["coop:digitalocean"] as object), deployPublicKey: key.public };
    }
    return { config: out, plaintext };
}

/** What the program makes of `config` on `stack`: the parsed config, a refusal (by whom), or a crash. */
export function throughProgram(stack: string, config: Record<string, unknown>, plaintext: Record<string, string> = {}): Outcome {
    try {
        const cli = cliConfig(ROOT, stack, { stackDoc: { config }, plaintext: (k) => plaintext[k] ?? `mock-secret-of-${k}` });
        const read = readConfig(cli.config, cli.secretKeys);
        return { ok: parseStackConfig(read.raw, read.secretKeys, { ...read.ctx, stack }) };
    } catch (e) {
        if (e instanceof ConfigError) return { refused: e.errors, by: "program" };
        if (e instanceof CliConfigError) return { refused: [e.message], by: "cli" };
        return { crashed: e as Error };
    }
}
