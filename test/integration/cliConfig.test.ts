// The engine-mocked harness must hand the program the config the real CLI hands it. Here the real
// CLI (pinned 3.248) previews a probe program that only records what it receives
// (`runtime.allConfig()` and which keys are secret), with this project's Pulumi.yaml and a copy of
// each stack file, and the harness (test/cliConfig.ts) builds its map from the same files: the two
// must be equal, key by key, secret by secret. No provider plugin is needed: the probe registers
// nothing. Secret values are not compared (the harness makes them up; the CLI decrypts them).
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { CliConfig, CliConfigError, cliConfig } from "../cliConfig";
import { ROOT, run } from "../support";

const PROBE = `// Records the config this program receives, as the SDK reads it.
const pulumi = require("@pulumi/pulumi");
const { isConfigSecret } = require("@pulumi/pulumi/runtime/config");
const config = pulumi.runtime.allConfig();
require("fs").writeFileSync(process.env.COOP_PROBE_OUT, JSON.stringify({ config, secretKeys: Object.keys(config).filter(isConfigSecret).sort() }));
`;

let work = "";
const PROBE_OUT = () => path.join(work, "probe.json");
/** Each project its own file backend, so stacks of the same name never meet. */
const env = (project: string, passphrase = "cli-config-test-only"): NodeJS.ProcessEnv => ({
    PULUMI_BACKEND_URL: `file://${path.join(project, ".state")}`,
    PULUMI_CONFIG_PASSPHRASE: passphrase,
    COOP_PROBE_OUT: PROBE_OUT(),
});

function cli(project: string, args: string[], opts: { input?: string; passphrase?: string } = {}) {
    mkdirSync(path.join(project, ".state"), { recursive: true });
    return run(path.join(ROOT, "scripts", "pulumi.sh"), ["--cwd", project, ...args, "--non-interactive"], { env: env(project, opts.passphrase), input: opts.input });
}

/**
 * A project directory: Pulumi.yaml (this repository's, or `pulumiYaml`) with the probe as its
 * program (index.js beside it, instead of `main: build/`), and node_modules.
 */
function project(name: string, pulumiYaml = readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")): string {
    const dir = path.join(work, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, "Pulumi.yaml"), pulumiYaml.replace(/^main: .*\n/m, "").replace("typescript: true", "typescript: false"));
    writeFileSync(path.join(dir, "index.js"), PROBE);
    if (!existsSync(path.join(dir, "node_modules"))) symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
    return dir;
}

/** What the real CLI hands the probe for `stack` (its stack file already in `dir`), or the CLI's error. */
function real(dir: string, stack: string, passphrase?: string): CliConfig | { error: string } {
    rmSync(PROBE_OUT(), { force: true });
    const r = cli(dir, ["preview", "--stack", stack], { passphrase });
    if (r.status !== 0) return { error: `${r.stdout}\n${r.stderr}` };
    return JSON.parse(readFileSync(PROBE_OUT(), "utf8")) as CliConfig;
}

function harness(dir: string, stack: string): CliConfig | { error: string } {
    try {
        return cliConfig(dir, stack);
    } catch (e) {
        if (e instanceof CliConfigError) return { error: e.message };
        throw e;
    }
}

/** Values compared as what they mean: JSON text by its value (Go and Node order keys differently). */
function meaning(v: string): unknown {
    try {
        return JSON.parse(v);
    } catch {
        return v;
    }
}

function assertSame(dir: string, stack: string, passphrase?: string): CliConfig {
    const r = real(dir, stack, passphrase);
    const h = harness(dir, stack);
    assert.ok(!("error" in r), `the CLI refused ${stack}: ${"error" in r ? r.error.slice(-1500) : ""}`);
    assert.ok(!("error" in h), `the harness refused ${stack}: ${"error" in h ? h.error : ""}`);
    assert.deepEqual(Object.keys(h.config).sort(), Object.keys(r.config).sort(), "the same keys");
    assert.deepEqual(h.secretKeys, r.secretKeys, "the same secret keys");
    for (const key of Object.keys(r.config)) {
        if (r.secretKeys.includes(key)) continue;
        assert.deepEqual(meaning(h.config[key]), meaning(r.config[key]), `${key}: harness ${h.config[key]} / CLI ${r.config[key]}`);
        assert.equal(typeof h.config[key], "string");
    }
    return r;
}

/** A copy of a committed stack file with the deploy key set as a secret, as an operator sets it. */
function operatorStack(dir: string, stack: string): void {
    copyFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), path.join(dir, `Pulumi.${stack}.yaml`));
    const init = cli(dir, ["stack", "init", stack, "--secrets-provider", "passphrase"]);
    assert.equal(init.status, 0, init.stderr);
    const set = cli(dir, ["config", "set", "--secret", "coop:sshPrivateKey", "--stack", stack], {
        input: "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n",
    });
    assert.equal(set.status, 0, set.stderr);
}

describe("the harness's config is the CLI's (real CLI, probe program)", () => {
    before(() => {
        work = mkdtempSync(path.join(tmpdir(), "coop-cli-config-"));
    });
    after(() => rmSync(work, { recursive: true, force: true }));

    for (const stack of ["dev", "uat", "prod"]) {
        it(`Pulumi.${stack}.yaml with the deploy key set`, () => {
            const dir = project(stack);
            operatorStack(dir, stack);
            const r = assertSame(dir, stack);
            assert.deepEqual(r.secretKeys, ["coop:sshPrivateKey"]);
            assert.equal(r.config["coop:environment"], stack);
        });
    }

    // The local stacks' files are complete as committed: this machine's values are in .local/.
    for (const stack of ["local", "multi"]) {
        it(`Pulumi.${stack}.yaml as committed (no machine values; its demo secret encrypted under the public passphrase)`, () => {
            const file = path.join(ROOT, `Pulumi.${stack}.yaml`);
            const text = readFileSync(file, "utf8");
            assert.doesNotMatch(text, /coop:sshPrivateKey|coop:hosts|coop:agent|hostKey|sha256:/, "no machine value in the committed file");
            const dir = project(stack);
            copyFileSync(file, path.join(dir, `Pulumi.${stack}.yaml`));
            const passphrase = "local-stack-only-not-a-secret";
            const init = cli(dir, ["stack", "init", stack, "--secrets-provider", "passphrase"], { passphrase });
            assert.equal(init.status, 0, init.stderr);
            assert.equal(readFileSync(path.join(dir, `Pulumi.${stack}.yaml`), "utf8"), text, "stack init keeps the committed file as it is");
            const r = assertSame(dir, stack, passphrase);
            assert.deepEqual(r.secretKeys, ["coop:betaApiToken"]);
        });
    }

    it("values of every shape, nested secrets, and the project's defaults, values and types", () => {
        const yaml = `name: edge
runtime:
  name: nodejs
  options:
    typescript: true
config:
  greeting:
    type: string
    default: hello
  replicas:
    type: integer
    default: 3
  verbose:
    type: boolean
    default: false
  zones:
    type: array
    items:
      type: string
    default: [a.example, b.example]
  limits:
    default: { cpus: 0.5, memory: 512m }
  aws:region:
    value: eu-west-1
  port:
    type: integer
`;
        const dir = project("edge", yaml);
        const stackFile = `config:
  edge:port: 8080
  edge:ratio: 0.25
  edge:flag: true
  edge:quoted: "true"
  edge:zero: "0123"
  edge:empty: ""
  edge:list: [1, two, { three: 3 }]
  edge:nested: { b: 1, a: [x, y], c: { d: null } }
  edge:unicode: "Grüße ✓"
  edge:replicas: "5"
  other:thing: kept
`;
        writeFileSync(path.join(dir, "Pulumi.edge.yaml"), stackFile);
        assert.equal(cli(dir, ["stack", "init", "edge", "--secrets-provider", "passphrase"]).status, 0);
        // A secret at the top and one inside an object, written by the real CLI.
        for (const [key, extra] of [
            ["edge:token", []],
            ["edge:db.password", ["--path"]],
        ] as const) {
            const set = cli(dir, ["config", "set", ...extra, "--secret", key, "s3cret-value", "--stack", "edge"]);
            assert.equal(set.status, 0, set.stderr);
        }
        const r = assertSame(dir, "edge");
        assert.deepEqual(r.secretKeys, ["edge:db", "edge:token"]);
        assert.equal(r.config["edge:greeting"], "hello");
        assert.equal(r.config["aws:region"], "eu-west-1");
    });

    it("refuses what the CLI refuses, with the CLI's words", () => {
        const base = readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8");
        const cases: Array<[string, string, string]> = [
            [
                "missing",
                `${base}  siteOwner:\n    type: string\n  billingEmail:\n    type: string\n`,
                "Stack 'prod' is missing configuration values 'billingEmail' and 'siteOwner'",
            ],
            ["typed", `${base}  ports:\n    type: integer\n    default: 1\n`, "Stack 'prod' with configuration key 'ports' must be of type 'integer'"],
        ];
        for (const [name, yaml, message] of cases) {
            const dir = project(name, yaml);
            operatorStack(dir, "prod");
            if (name === "typed") {
                const set = cli(dir, ["config", "set", "coop:ports", "eighty", "--stack", "prod"]);
                assert.equal(set.status, 0, set.stderr);
            }
            const r = real(dir, "prod");
            const h = harness(dir, "prod");
            assert.ok("error" in r && r.error.includes(message), `the CLI: ${"error" in r ? r.error.slice(-800) : "no error"}`);
            assert.ok("error" in h, "the harness refuses too");
            assert.equal(h.error, message);
        }
    });
});
