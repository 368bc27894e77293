// A cloud stack set up the way an operator sets it up before the first preview, outside the
// working tree: a project directory whose Pulumi.yaml is this repository's with `main` pointing at
// its build (the same program and declarations), a copy of the committed stack file (optionally
// edited), a throwaway deploy key set as the secret coop:sshPrivateKey with its public half as
// deployPublicKey, a dummy DigitalOcean token (a preview of new resources never calls the API)
// and a throwaway file backend. Used by the real-preview test and the scale benchmark.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { ROOT, RunResult, run } from "./support";

const yaml = require("js-yaml") as { load(text: string): unknown; dump(v: unknown): string };

export interface CloudProject {
    dir: string;
    stack: string;
    env: NodeJS.ProcessEnv;
    /** The deploy key's private half (the harness needs it to run the same stack under mocks). */
    privateKey: string;
    /** The pinned CLI in this project, non-interactive. */
    pulumi(args: string[], opts?: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): RunResult;
}

/** The version of the DigitalOcean plugin @pulumi/digitalocean asks for. */
export const DIGITALOCEAN_PLUGIN = (JSON.parse(readFileSync(path.join(ROOT, "node_modules", "@pulumi", "digitalocean", "package.json"), "utf8")) as { version: string }).version;

/** Whether the CLI finds that plugin (under PULUMI_HOME, where Pulumi looks). */
export function digitaloceanPluginInstalled(): boolean {
    const r = run(path.join(ROOT, "scripts", "pulumi.sh"), ["plugin", "ls", "--json", "--non-interactive"]);
    if (r.status !== 0) return false;
    const plugins = JSON.parse(r.stdout || "[]") as Array<{ name: string; kind: string; version: string }>;
    return plugins.some((p) => p.name === "digitalocean" && p.kind === "resource" && p.version === DIGITALOCEAN_PLUGIN);
}

export function cloudProject(parent: string, stack: "dev" | "uat" | "prod", edit?: (config: Record<string, any>) => void): CloudProject {
    const dir = mkdtempSync(path.join(parent, `${stack}-`));
    const pulumiYaml = readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8");
    if (!/^main: build\/$/m.test(pulumiYaml)) throw new Error("Pulumi.yaml no longer says main: build/");
    writeFileSync(path.join(dir, "Pulumi.yaml"), pulumiYaml.replace(/^main: build\/$/m, `main: ${path.relative(dir, path.join(ROOT, "build"))}/`));
    const doc = yaml.load(readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, any> };
    edit?.(doc.config);
    writeFileSync(path.join(dir, `Pulumi.${stack}.yaml`), yaml.dump(doc));

    const keyFile = path.join(dir, "deploy_ed25519");
    const keygen = run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "preview-only", "-f", keyFile]);
    if (keygen.status !== 0) throw new Error(`ssh-keygen: ${keygen.stderr}`);
    const privateKey = readFileSync(keyFile, "utf8");
    const publicKey = readFileSync(`${keyFile}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ");

    const env = { PULUMI_BACKEND_URL: `file://${dir}/.state`, PULUMI_CONFIG_PASSPHRASE: "preview-only", DIGITALOCEAN_TOKEN: "dop_v1_preview_only_not_a_token" };
    run("mkdir", ["-p", `${dir}/.state`]);
    const pulumi: CloudProject["pulumi"] = (args, opts = {}) =>
        run(path.join(ROOT, "scripts", "pulumi.sh"), ["--cwd", dir, ...args, "--non-interactive"], {
            env: { ...env, ...opts.env },
            input: opts.input,
            timeoutMs: opts.timeoutMs ?? 15 * 60 * 1000,
        });
    const must = (r: RunResult, what: string) => {
        if (r.status !== 0) throw new Error(`${what}: ${r.stderr || r.stdout}`);
    };
    must(pulumi(["stack", "init", stack]), "stack init");
    must(pulumi(["config", "set", "--secret", "coop:sshPrivateKey", "--stack", stack], { input: privateKey }), "set the deploy key");
    must(pulumi(["config", "set", "--path", "coop:digitalocean.deployPublicKey", publicKey, "--stack", stack]), "set its public half");
    return { dir, stack, env, privateKey, pulumi };
}
