// What the program refuses, it refuses before it registers anything, under the real CLI and its
// language host (which, unlike the mocks, runs the whole program): a copy of the project whose
// machine never ran scripts/local-data.sh, with a local stack that turns backups on.
import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { deployKey } from "../mockProgram";
import { ROOT, run, runOk } from "../support";

const DIGEST = (name: string) => `127.0.0.1:5001/${name}@sha256:${"a".repeat(64)}`;

describe("refusals come before any resource (the real CLI and language host)", () => {
    let work = "";
    let env: NodeJS.ProcessEnv = {};
    const pulumi = (args: string[], input?: string) => run(path.join(ROOT, "scripts", "pulumi.sh"), ["--cwd", path.join(work, "project"), ...args], { env, input });

    before(() => {
        work = mkdtempSync(path.join(tmpdir(), "coop-order-"));
        const project = path.join(work, "project");
        mkdirSync(project);
        // The project as built here, without this machine's .local/ (no local data, no machine file).
        for (const f of ["Pulumi.yaml", "package.json", "tsconfig.json", "index.ts", "components", "build"]) cpSync(path.join(ROOT, f), path.join(project, f), { recursive: true });
        symlinkSync(path.join(ROOT, "node_modules"), path.join(project, "node_modules"));
        mkdirSync(path.join(work, "state"));
        env = { ...process.env, PULUMI_BACKEND_URL: `file://${path.join(work, "state")}`, PULUMI_CONFIG_PASSPHRASE: "order-test-only" };
        const stackFile = {
            "coop:environment": "local",
            "coop:hosts": [{ name: "local-1", address: "127.0.0.1", port: 2222, hostKey: deployKey().public }],
            "coop:proxy": { image: DIGEST("kamal-proxy"), bindAddress: "127.0.0.1", httpPort: 8080, httpsPort: 8443, tls: false },
            "coop:agent": DIGEST("coop-agent"),
            "coop:coops": [{ id: "order", domains: ["order.localhost"], image: DIGEST("coop-demo") }],
            "coop:backups": { image: DIGEST("coop-pgtools") },
        };
        writeFileSync(path.join(project, "Pulumi.order.yaml"), `config: ${JSON.stringify(stackFile)}\n`);
        runOk(path.join(ROOT, "scripts", "pulumi.sh"), ["--cwd", project, "stack", "init", "order", "--non-interactive"], { env });
        runOk(path.join(ROOT, "scripts", "pulumi.sh"), ["--cwd", project, "config", "set", "--secret", "coop:sshPrivateKey", "--stack", "order"], {
            env,
            input: deployKey().private,
        });
    });

    after(() => rmSync(work, { recursive: true, force: true }));

    it("local backups on a machine without the local data: refused by path, and no host resource is registered", () => {
        const r = pulumi(["preview", "--stack", "order", "--non-interactive", "--json"]);
        const out = r.stdout + r.stderr;
        assert.notEqual(r.status, 0, out);
        assert.match(out, /coop:backups: the local stack's PostgreSQL and S3 server are not set up on this machine \(run scripts\/local-data.sh up\)/);
        const planned = (JSON.parse(r.stdout) as { steps?: Array<{ urn: string }> }).steps ?? [];
        const registered = planned.map((s) => s.urn).filter((u) => !u.includes("pulumi:pulumi:Stack"));
        assert.deepEqual(registered, [], "nothing but the stack itself");
        assert.doesNotMatch(out, /\n\s+at .+\(.+:\d+:\d+\)/, "no stack trace");
    });
});
