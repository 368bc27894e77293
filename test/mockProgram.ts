// Runs the whole program (index.ts, as the CLI would) against Pulumi's engine mocked, for one
// stack file, and prints what it registered as JSON: the unit tests' view of each committed
// stack and the scale benchmark's measure of program evaluation. Usage:
//   node build/test/mockProgram.js STACK_FILE [--coops N]
// --coops N replaces the stack's co-ops with N copies of its first one (ids and domains numbered).
import * as pulumi from "@pulumi/pulumi";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { generateHostKey } from "../components/remote/hostKey";
import { CliConfigError, cliConfig } from "./cliConfig";

const ROOT = path.resolve(__dirname, "..", "..");

export interface Registered {
    type: string;
    name: string;
    inputs: Record<string, unknown>;
    /** Whether the resource was registered with `protect`. */
    protect: boolean;
    /** Names of the resources in its `dependsOn` option. */
    dependsOn: string[];
}

export interface MockRun {
    stack: string;
    resources: Registered[];
    /** The program's error message, when it refused to run. */
    error?: string;
    /** Resources registered twice under one type and name (the real engine refuses the second). */
    duplicates: string[];
    /** Wall time of the program's evaluation, ms. */
    ms: number;
    /** Peak resident memory of this process, KiB. */
    maxRssKb: number;
}

/**
 * A stack file as an operator has it before the first preview: the committed file, plus the deploy
 * key (`pulumi config set --secret coop:sshPrivateKey`) and, on a cloud stack, its public half as
 * `coop:digitalocean.deployPublicKey`. `coops` replaces the co-ops with N copies of the first one
 * (ids and domains numbered). Returns the file (in a temporary directory) and the secret's plaintext.
 */
export function operatorStackFile(
    stackFile: string,
    opts: { coops?: number; edit?: (config: Record<string, any>) => void } = {},
): { file: string; plaintext: Record<string, string> } {
    const yaml = require("js-yaml") as { load(text: string): unknown; dump(v: unknown): string };
    const doc = yaml.load(readFileSync(stackFile, "utf8")) as { config?: Record<string, any> };
    const config = { ...(doc.config ?? {}) };
    const plaintext: Record<string, string> = {};
    if (!("coop:sshPrivateKey" in config)) {
        const key = deployKey();
        config["coop:sshPrivateKey"] = { secure: "v1:operator-key" };
        plaintext["coop:sshPrivateKey"] = key.private;
        if (config["coop:digitalocean"]) config["coop:digitalocean"] = { ...config["coop:digitalocean"], deployPublicKey: key.public };
    }
    if (opts.coops !== undefined) {
        const list = config["coop:coops"] as Array<Record<string, unknown>>;
        const first = list[0];
        const domain = (first.domains as string[])[0];
        const zone = domain.slice(domain.indexOf(".") + 1);
        config["coop:coops"] = Array.from({ length: opts.coops }, (_, i) => ({ ...first, id: `coop-${i + 1}`, domains: [`coop-${i + 1}.${zone}`] }));
    }
    opts.edit?.(config);
    const dir = mkdtempSync(path.join(tmpdir(), "coop-stack-"));
    const file = path.join(dir, path.basename(stackFile));
    writeFileSync(file, yaml.dump({ ...doc, config }));
    return { file, plaintext };
}

let cachedKey: { private: string; public: string } | undefined;
/** One ed25519 deploy key per process, as `ssh-keygen` would make it (OpenSSH formats). */
export function deployKey(): { private: string; public: string } {
    if (!cachedKey) {
        const pair = generateHostKey("test-deploy");
        cachedKey = { private: pair.privateKey, public: pair.publicKey };
    }
    return cachedKey;
}

let seq = 0;
/** Outputs a real provider would fill in, shaped so the program's applies can run. */
function mockState(type: string, name: string, inputs: Record<string, any>): Record<string, unknown> {
    const n = ++seq;
    const s: Record<string, unknown> = { ...inputs };
    const short = type.split(":").at(-1) ?? type;
    switch (short) {
        case "RemoteCommand":
            s.stdout = name.endsWith("/up") ? JSON.stringify({ network: "coop", networkCreated: true, proxy: { container: "coop-proxy", image: "proxy", changed: true } }) : "";
            break;
        case "CoopRelease":
            s.stdout = JSON.stringify({ coop: inputs.release?.coop, changed: false, slot: "blue", image: inputs.release?.image, releaseKey: "k" });
            break;
        case "RandomSecret":
            s.value = `mock-random-${n}`;
            break;
        case "SshHostKey":
            s.publicKey = `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockHostKey${n} ${inputs.comment}`;
            s.privateKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nmock\n-----END OPENSSH PRIVATE KEY-----\n";
            break;
        case "Droplet":
            s.ipv4Address = `192.0.2.${n % 250}`;
            s.dropletUrn = `do:droplet:${n}`;
            break;
        case "ReservedIp":
            s.ipAddress = "192.0.2.250";
            s.reservedIpUrn = `do:reservedip:${n}`;
            break;
        case "LoadBalancer":
            s.ip = "192.0.2.251";
            s.loadBalancerUrn = `do:loadbalancer:${n}`;
            break;
        case "DatabaseCluster":
            s.privateUri = `${inputs.engine}://mock-admin:mock-password-${n}@private-${inputs.name}.db.ondigitalocean.com:25060`;
            s.clusterUrn = `do:dbaas:${n}`;
            break;
        case "DatabaseConnectionPool":
            s.privateUri = `postgresql://${inputs.user}:mock-password-${n}@private-pool.db.ondigitalocean.com:25061/${inputs.name}`;
            break;
        case "Domain":
            s.domainUrn = `do:domain:${inputs.name}`;
            break;
    }
    return s;
}

/**
 * Runs the program for one stack under mocks, with the config the CLI would hand it for that
 * stack file (test/cliConfig.ts). Call once per process (the program is a module).
 */
export async function runProgram(stackFile: string, opts: { plaintext?: Record<string, string>; projectDir?: string } = {}): Promise<MockRun> {
    const stack = path.basename(stackFile).replace(/^Pulumi\.|\.yaml$/g, "");
    const resources: Registered[] = [];
    const protectedNames = new Set<string>();
    const dependsOn = new Map<string, string[]>();
    const started = process.hrtime.bigint();
    await pulumi.runtime.setMocks(
        {
            newResource(args) {
                resources.push({ type: args.type, name: args.name, inputs: args.inputs, protect: false, dependsOn: [] });
                return {
                    id: args.type.startsWith("digitalocean:index/droplet") ? String(100000 + resources.length) : `${args.name}-id`,
                    state: mockState(args.type, args.name, args.inputs),
                };
            },
            call: () => ({}),
        },
        "coop",
        stack,
        false,
    );
    let error: string | undefined;
    // The program asks the registries whether its images exist before it registers anything. The
    // engine is mocked here and so is the network: every registry is unreachable, as on a machine
    // with no network (the program warns and goes on). test/integration/registryCheck.test.ts
    // and the e2e tests check the images against real registries.
    globalThis.fetch = async () => {
        throw Object.assign(new TypeError("fetch failed"), { cause: { code: "ENETUNREACH" } });
    };
    try {
        const cli = cliConfig(opts.projectDir ?? ROOT, stack, { stackFile, plaintext: (key) => opts.plaintext?.[key] ?? `mock-secret-of-${key}` });
        pulumi.runtime.setAllConfig(cli.config, cli.secretKeys);
        process.chdir(ROOT);
        // As the CLI's language host does: the program runs inside the root stack resource.
        const { runInPulumiStack } = require("@pulumi/pulumi/runtime/stack") as { runInPulumiStack(init: () => Promise<unknown>): Promise<unknown> };
        await runInPulumiStack(async () => {
            // The mocks do not see resource options; a stack transformation does.
            pulumi.runtime.registerStackTransformation((t) => {
                if (t.opts.protect === true) protectedNames.add(`${t.type}::${t.name}`);
                const deps = t.opts.dependsOn;
                // A resource's name is not public; the SDK keeps it as __name.
                if (Array.isArray(deps))
                    dependsOn.set(
                        `${t.type}::${t.name}`,
                        deps.map((d) => (d as unknown as { __name: string }).__name),
                    );
                return undefined;
            });
            // What the CLI runs (Pulumi.yaml: main build/): the compiled program, a function
            // the language host calls and awaits (its result: the stack's outputs).
            const program = require(path.join(ROOT, "build", "index.js")) as unknown;
            return typeof program === "function" ? (program as () => Promise<unknown>)() : program;
        });
        await pulumi.runtime.disconnect();
    } catch (e) {
        error = e instanceof CliConfigError ? `the CLI refuses the stack: ${e.message}` : e instanceof Error ? e.message : String(e);
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    for (const r of resources) {
        r.protect = protectedNames.has(`${r.type}::${r.name}`);
        r.dependsOn = dependsOn.get(`${r.type}::${r.name}`) ?? [];
    }
    const seen = new Set<string>();
    const duplicates = resources.map((r) => `${r.type}::${r.name}`).filter((k) => (seen.has(k) ? true : (seen.add(k), false)));
    return { stack, resources, duplicates, error, ms, maxRssKb: process.resourceUsage().maxRSS };
}

if (require.main === module) {
    // mockProgram.js STACK_FILE [--coops N] [--as-is] [--project DIR] [--plaintext FILE]: the stack file as an operator
    // has it (operatorStackFile), or with --as-is exactly as given (its secure values made up);
    // --project takes Pulumi.yaml from DIR instead of the repository's.
    const args = process.argv.slice(2);
    const stackFile = args[0];
    const coopsAt = args.indexOf("--coops");
    const coops = coopsAt > 0 ? Number(args[coopsAt + 1]) : undefined;
    if (!stackFile || (coops !== undefined && !Number.isInteger(coops))) {
        console.error("usage: mockProgram.js STACK_FILE [--coops N] [--as-is]");
        process.exit(2);
    }
    // --plaintext FILE: a JSON map of secret key to plaintext, for a stack file with real ciphertext.
    const plaintextAt = args.indexOf("--plaintext");
    const given = plaintextAt > 0 ? (JSON.parse(readFileSync(args[plaintextAt + 1], "utf8")) as Record<string, string>) : {};
    const prepared = args.includes("--as-is") ? { file: path.resolve(stackFile), plaintext: given } : operatorStackFile(path.resolve(stackFile), { coops });
    // The runtime logs a refused program and sets a failing exit code; the JSON reports it instead.
    const projectAt = args.indexOf("--project");
    const projectDir = projectAt > 0 ? path.resolve(args[projectAt + 1]) : undefined;
    runProgram(prepared.file, { plaintext: prepared.plaintext, projectDir }).then((r) => process.stdout.write(JSON.stringify(r), () => process.exit(0)));
}
