/**
 * The pack under the real CLI: `pulumi preview --policy-pack policy` of the fixture program
 * (test/fixtures/coop-stack), on a throwaway file backend in a temporary directory. The bad variant
 * must fail with each co-op rule's name and message; with config/dev.json the same stack passes
 * with advisories; the good variant passes, one of its releases with an image that is unknown at
 * preview. A preview only calls the dynamic provider's check/diff: nothing is deployed, no host is
 * contacted.
 *
 * Needs the project's toolchain on PATH (test.sh sources scripts/env.sh): pulumi 3.248, the
 * language host and pulumi-analyzer-policy-coop-nodejs from scripts/toolchain.sh.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { IMAGE_DIGEST_HINT } from "../../components/rules";

/** policy/, from this file compiled to policy/build/policy/test/ (tsconfig.json: rootDir ..). */
const POLICY_DIR = resolve(__dirname, "..", "..", "..");
const FIXTURE_SRC = join(POLICY_DIR, "test", "fixtures", "coop-stack");
const FIXTURE_JS = join(POLICY_DIR, "build", "policy", "test", "fixtures", "coop-stack", "index.js");
const RULE_TYPE = "pulumi-nodejs:dynamic/coop:CoopRelease";

let work = "";
let env: NodeJS.ProcessEnv = {};

interface Run {
    code: number | null;
    output: string;
    seconds: number;
}

function pulumi(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> {
    const started = Date.now();
    return new Promise((done, fail) => {
        const child = spawn("pulumi", [...args, "--non-interactive", "--color", "never"], {
            cwd: join(work, "program"),
            env: { ...env, ...extraEnv },
            stdio: ["ignore", "pipe", "pipe"],
        });
        let output = "";
        child.stdout.on("data", (d: Buffer) => (output += d.toString()));
        child.stderr.on("data", (d: Buffer) => (output += d.toString()));
        child.on("error", fail);
        child.on("close", (code) => done({ code, output, seconds: (Date.now() - started) / 1000 }));
    });
}

/** A preview of the fixture as variant `fixture` on its own stack, with the pack and a config file. */
function preview(stack: string, fixture: "good" | "bad", config?: string, extra: string[] = []): Promise<Run> {
    const args = ["preview", "--stack", stack, "--policy-pack", POLICY_DIR, ...extra];
    if (config) {
        args.push("--policy-pack-config", join(POLICY_DIR, "config", `${config}.json`));
    }
    return pulumi(args, { COOP_FIXTURE: fixture });
}

before(async () => {
    const which = spawnSync("pulumi", ["version"], { encoding: "utf8" });
    assert.equal(which.status, 0, "the project's pulumi CLI must be on PATH: source scripts/env.sh after scripts/toolchain.sh");
    const shim = spawnSync("sh", ["-c", "command -v pulumi-analyzer-policy-coop-nodejs"], { encoding: "utf8" });
    assert.equal(shim.status, 0, "pulumi-analyzer-policy-coop-nodejs is not on PATH: run scripts/toolchain.sh");

    // Outside the repository: the language host would otherwise take policy/package.json (whose
    // main is the pack) for the program's. node_modules is the pack's (it has @pulumi/pulumi).
    work = mkdtempSync(join(tmpdir(), "coop-policy-preview-"));
    const program = join(work, "program");
    spawnSync("mkdir", ["-p", program, join(work, "state"), join(work, "home")]);
    copyFileSync(join(FIXTURE_SRC, "Pulumi.yaml"), join(program, "Pulumi.yaml"));
    copyFileSync(FIXTURE_JS, join(program, "index.js"));
    writeFileSync(join(program, "package.json"), JSON.stringify({ name: "coop-policy-fixture", version: "0.0.0", private: true, main: "index.js" }));
    symlinkSync(join(POLICY_DIR, "node_modules"), join(program, "node_modules"));
    env = {
        ...process.env,
        PULUMI_BACKEND_URL: `file://${join(work, "state")}`,
        PULUMI_HOME: join(work, "home"),
        PULUMI_CONFIG_PASSPHRASE: "x",
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    };
    for (const stack of ["bad-prod", "bad-dev", "good-prod"]) {
        const init = await pulumi(["stack", "init", stack]);
        assert.equal(init.code, 0, init.output);
    }
});

after(() => {
    if (work) {
        rmSync(work, { recursive: true, force: true });
    }
});

/** One `- [level]  policy  (type: name)` entry of the preview's Policies section, with its message. */
function violation(level: string, policy: string, resource: string, message: string): RegExp {
    const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    return new RegExp(`- \\[${level}\\]\\s+${esc(policy)}\\s+\\(${esc(RULE_TYPE)}: ${esc(resource)}\\)\\n.*\\n\\s+${esc(message)}\\n`);
}

const BAD = [
    ["coop-image-pinned-by-digest", "alpha/local-1", `release.image: "127.0.0.1:5001/coop-demo:v1" is not pinned by digest (${IMAGE_DIGEST_HINT})`],
    ["coop-health-check", "beta/local-1", 'release.healthPath: "health" is not an absolute path (starts with /)'],
    ["coop-release-retention", "beta/local-1", "release.retain: 0 keeps no previous release (needs >= 1 for rollback)"],
    ["no-plaintext-secrets", "alpha/local-1", "connection.privateKey: a private key block in plaintext; pass it as a Pulumi secret"],
] as const;

test("real CLI: previews with the pack (bad stack fails, advisory in dev, good stack passes)", async (t) => {
    // One after the other: each preview runs several node processes, and in parallel they only
    // fight for the same cores.
    const badProd = await preview("bad-prod", "bad", "prod");
    const badDev = await preview("bad-dev", "bad", "dev");
    // --diff: the inputs are printed, so the test can see that gamma's release.image is unknown.
    const goodProd = await preview("good-prod", "good", "prod", ["--diff"]);
    t.diagnostic(`preview seconds: bad/prod ${badProd.seconds}, bad/dev ${badDev.seconds}, good/prod ${goodProd.seconds}`);

    // prod: mandatory, the preview fails, each rule by name with its message.
    assert.notEqual(badProd.code, 0, badProd.output);
    assert.match(badProd.output, /❌ coop-policies@v0\.1\.0/, badProd.output);
    for (const [policy, resource, message] of BAD) {
        assert.match(badProd.output, violation("mandatory", policy, resource, message), badProd.output);
    }
    // Exactly those: beta's key and both env files (a password in DATABASE_URL) are Pulumi secrets
    // and are not reported.
    assert.equal(badProd.output.match(/- \[mandatory\]/g)?.length, BAD.length, badProd.output);

    // dev: the same violations, advisory, and the preview succeeds.
    assert.equal(badDev.code, 0, badDev.output);
    for (const [policy, resource, message] of BAD) {
        assert.match(badDev.output, violation("advisory", policy, resource, message), badDev.output);
    }
    assert.doesNotMatch(badDev.output, /\[mandatory\]/, badDev.output);

    // The compliant stack passes.
    assert.equal(goodProd.code, 0, goodProd.output);
    // (With --diff the CLI prints no ✅ summary for a pack that passed; it lists the packs run.)
    assert.match(goodProd.output, /Policy Packs run:\n.*\n\s+coop-policies\|local\|/, goodProd.output);
    assert.doesNotMatch(goodProd.output, /\[(mandatory|advisory)\]/, goodProd.output);
    // gamma's release.image is unknown at preview (its image is built in the same update): no
    // violation, and no "can't run ... during preview" note from the SDK either.
    assert.match(goodProd.output, /CoopRelease::gamma\/local-1\][^]*?image\s+: \[unknown\]/, goodProd.output);
    assert.doesNotMatch(goodProd.output, /can't (run|be known)/, goodProd.output);
    // And nothing was deployed: a preview leaves the stacks empty (stack, 3 releases, 1 image).
    assert.match(goodProd.output, /\+ 5 to create/, goodProd.output);
});
