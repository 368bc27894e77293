// A dynamic provider runs from its serialized code, in the engine's dynamic-provider process, not
// from this repository's modules. Here SshHostKey's provider (a droplet's host key; no real `up`
// of a cloud stack runs here) is serialized as the SDK serializes it and run in a fresh process.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { isSshPublicKey } from "../../components/rules";
import { ROOT, run } from "../support";

describe("SshHostKey's serialized provider", () => {
    it("makes a well-formed key pair in a process of its own", async () => {
        const { provider } = await import("../../components/remote/hostKey");
        const serialized = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: false });
        // Inside the repository: the plugin resolves the code's requires (ssh2) from the project's node_modules.
        const dir = mkdtempSync(path.join(ROOT, "build", "provider-"));
        try {
            const file = path.join(dir, "provider.js");
            writeFileSync(file, serialized.text);
            const script = `require(${JSON.stringify(file)}).handler().create({ comment: "prod-app-9" }).then((r) => process.stdout.write(JSON.stringify(r.outs)))`;
            const r = run(process.execPath, ["-e", script], { cwd: ROOT });
            assert.equal(r.status, 0, r.stderr);
            const outs = JSON.parse(r.stdout) as { publicKey: string; privateKey: string; comment: string };
            assert.ok(isSshPublicKey(outs.publicKey), outs.publicKey);
            assert.match(outs.publicKey, / prod-app-9$/);
            assert.match(outs.privateKey, /^-----BEGIN OPENSSH PRIVATE KEY-----/);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });
});
