// scripts/publish-images.sh against the real local registry and engine: the agent and the proxy as
// one image each for linux/amd64 and linux/arm64, by digest, each platform's binary of its own
// architecture, and the stack files' two lines set to them (the images workflow runs the same).
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { ROOT, localHostsUp, run, runOk } from "../support";

const PREFIX = "127.0.0.1:5001/publish-test";
const ELF_MACHINE: Record<string, number> = { amd64: 0x3e, arm64: 0xb7 };

/** A manifest from the local registry, as the engine would ask for it. */
function manifest(repo: string, ref: string): { mediaType: string; manifests?: { digest: string; platform: { architecture: string; os: string } }[] } {
    const accept = "application/vnd.docker.distribution.manifest.list.v2+json,application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.v2+json";
    const r = runOk("curl", ["-fsS", "-H", `Accept: ${accept}`, `http://127.0.0.1:5001/v2/${repo}/manifests/${ref}`]);
    return JSON.parse(r.stdout);
}

/** The e_machine field of FILE inside IMAGE (one platform's, pulled as PLATFORM). */
function elfMachine(image: string, platform: string, file: string, dir: string): number {
    runOk("docker", ["pull", "-q", "--platform", platform, image]);
    const id = runOk("docker", ["create", "--platform", platform, image]).stdout.trim();
    try {
        const out = path.join(dir, `${platform.replace("/", "-")}-${path.basename(file)}`);
        runOk("docker", ["cp", `${id}:${file}`, out]);
        return readFileSync(out).readUInt16LE(18);
    } finally {
        run("docker", ["rm", id]);
    }
}

describe("publish-images.sh (real registry and engine)", () => {
    let dir = "";
    let refs: { "coop-agent": string; "kamal-proxy": string };

    before(() => {
        localHostsUp();
        dir = mkdtempSync(path.join(tmpdir(), "coop-publish-"));
        for (const s of ["dev", "uat", "prod"]) copyFileSync(path.join(ROOT, `Pulumi.${s}.yaml`), path.join(dir, `Pulumi.${s}.yaml`));
        runOk(path.join(ROOT, "scripts", "publish-images.sh"), [PREFIX, "--out", path.join(dir, "out.json"), "--stack-files", dir]);
        refs = JSON.parse(readFileSync(path.join(dir, "out.json"), "utf8"));
    });

    after(() => rmSync(dir, { recursive: true, force: true }));

    for (const name of ["coop-agent", "kamal-proxy"] as const) {
        it(`${name}: one list of linux/amd64 and linux/arm64, each its own architecture's binary`, () => {
            const ref = refs[name];
            assert.match(ref, new RegExp(`^${PREFIX.replace(/[.]/g, "\\.")}/${name}@sha256:[0-9a-f]{64}$`));
            const list = manifest(`publish-test/${name}`, ref.slice(ref.indexOf("@") + 1));
            assert.ok(list.manifests, `a list, not one image: ${list.mediaType}`);
            assert.deepEqual(list.manifests!.map((m) => `${m.platform.os}/${m.platform.architecture}`).sort(), ["linux/amd64", "linux/arm64"]);
            const binary = name === "coop-agent" ? "/coop-agent" : "/kamal-proxy";
            for (const m of list.manifests!) {
                // Each platform's own image, by the digest the list names for it.
                const image = `${ref.slice(0, ref.indexOf("@"))}@${m.digest}`;
                assert.equal(elfMachine(image, `linux/${m.platform.architecture}`, binary, dir), ELF_MACHINE[m.platform.architecture], `${name} for ${m.platform.architecture}`);
            }
        });
    }

    it("the agent by the list's digest installs and runs on this machine's platform", () => {
        const r = runOk("docker", ["run", "--rm", "--network", "none", refs["coop-agent"], "version"]);
        assert.match(r.stdout, /"version"/);
    });

    it("sets exactly coop:agent and coop:proxy.image in each stack file", () => {
        for (const s of ["dev", "uat", "prod"]) {
            const before = readFileSync(path.join(ROOT, `Pulumi.${s}.yaml`), "utf8").split("\n");
            const now = readFileSync(path.join(dir, `Pulumi.${s}.yaml`), "utf8").split("\n");
            assert.equal(now.length, before.length);
            const changed = now.filter((l, i) => l !== before[i]);
            assert.deepEqual(changed, [`    image: ${refs["kamal-proxy"]}`, `  coop:agent: ${refs["coop-agent"]}`], s);
        }
    });

    it("refuses a prefix it cannot push to by name, before building anything", () => {
        const r = run(path.join(ROOT, "scripts", "publish-images.sh"), ["GHCR.io/Org"]);
        assert.equal(r.status, 1);
        assert.match(r.stderr, /PREFIX GHCR\.io\/Org: must be REGISTRY\/OWNER in lower case/);
    });
});
