// scripts/commit-stack-file.sh with real git: the workflows' way of keeping the repository and
// the stack in agreement after a deploy or rollback changed digests. A bare repository stands in
// for GitHub; a second clone pushes first, as another promotion stage would.
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { ROOT, run, runOk } from "../support";

const dir = mkdtempSync(path.join(tmpdir(), "coop-commit-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const git = (cwd: string, ...args: string[]) => runOk("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd }).stdout.trim();

function setUp(): { origin: string; runner: string; other: string } {
    const origin = path.join(dir, "origin.git");
    const seed = path.join(dir, "seed");
    runOk("git", ["init", "--quiet", "--bare", "--initial-branch=main", origin]);
    runOk("git", ["clone", "--quiet", origin, seed]);
    mkdirSync(path.join(seed, "scripts"));
    for (const f of ["commit-stack-file.sh", "lib.sh"]) copyFileSync(path.join(ROOT, "scripts", f), path.join(seed, "scripts", f));
    writeFileSync(path.join(seed, "Pulumi.dev.yaml"), "config:\n  coop:image: app@sha256:1111\n");
    writeFileSync(path.join(seed, "Pulumi.uat.yaml"), "config:\n  coop:image: app@sha256:1111\n");
    git(seed, "add", ".");
    git(seed, "commit", "--quiet", "-m", "seed");
    git(seed, "push", "--quiet", "origin", "main");
    const runner = path.join(dir, "runner");
    const other = path.join(dir, "other");
    runOk("git", ["clone", "--quiet", origin, runner]);
    runOk("git", ["clone", "--quiet", origin, other]);
    return { origin, runner, other };
}

describe("commit-stack-file.sh (real git)", () => {
    const { origin, runner, other } = setUp();
    const script = path.join(runner, "scripts", "commit-stack-file.sh");
    const env = {
        GITHUB_REF_NAME: "main",
        GIT_AUTHOR_NAME: "deploy-bot",
        GIT_AUTHOR_EMAIL: "bot@example.invalid",
        GIT_COMMITTER_NAME: "deploy-bot",
        GIT_COMMITTER_EMAIL: "bot@example.invalid",
    };

    it("does nothing when the stack file did not change", () => {
        const r = run(script, ["dev", "Deploy alpha to dev"], { cwd: runner, env });
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stderr, /Pulumi\.dev\.yaml is unchanged: nothing to commit/);
        assert.equal(git(origin, "rev-list", "--count", "main"), "1");
    });

    it("commits only the stack file, with [skip ci], on top of a push that came first", () => {
        writeFileSync(path.join(other, "Pulumi.uat.yaml"), "config:\n  coop:image: app@sha256:2222\n");
        git(other, "commit", "--quiet", "-am", "uat first");
        git(other, "push", "--quiet", "origin", "main");

        writeFileSync(path.join(runner, "Pulumi.dev.yaml"), "config:\n  coop:image: app@sha256:3333\n");
        writeFileSync(path.join(runner, "stray.txt"), "not for the commit\n");
        const r = run(script, ["dev", "Deploy alpha app@sha256:3333 to dev"], { cwd: runner, env });
        assert.equal(r.status, 0, r.stderr);
        assert.deepEqual(git(origin, "log", "--format=%s", "main").split("\n"), ["Deploy alpha app@sha256:3333 to dev [skip ci]", "uat first", "seed"]);
        assert.equal(git(origin, "show", "--name-only", "--format=", "main"), "Pulumi.dev.yaml");
        assert.equal(git(origin, "show", "main:Pulumi.uat.yaml"), "config:\n  coop:image: app@sha256:2222");
        assert.equal(readFileSync(path.join(runner, "stray.txt"), "utf8"), "not for the commit\n");
    });

    it("refuses a missing argument or stack file, naming it", () => {
        assert.match(run(script, ["dev"], { cwd: runner, env }).stderr, /usage: scripts\/commit-stack-file\.sh STACK MESSAGE/);
        const r = run(script, ["qa", "x"], { cwd: runner, env });
        assert.equal(r.status, 1);
        assert.match(r.stderr, /Pulumi\.qa\.yaml does not exist/);
    });
});
