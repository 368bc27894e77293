// Releases and rollback end to end, through the real CLI on the suite's own stack (a copy of the local stack's file, on a host of its own): v1, v2, a v3 whose
// health check fails, rollback (v1 back, by a proxy switch), the release list, rollback --to the
// v2 update, and every refusal leaving the stack file and the history as they were.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { exec } from "../../components/remote/ssh";
import { backendHistory, fileBackendDir, projectName } from "../../scripts/backendHistory";
import { ROOT, RunResult, SUITE_STACK, SUITE_STACK_FILE, pulumi, run, suiteGet, suiteHostUp, suiteTarget } from "../support";

const STACK_FILE = SUITE_STACK_FILE;

function images(): Record<string, string> {
    return JSON.parse(readFileSync(path.join(ROOT, ".local", "images.json"), "utf8")).images;
}

async function version(domain: string): Promise<string> {
    return (await suiteGet("/version", domain)).body.trim();
}

const script = (name: string, args: string[], env: NodeJS.ProcessEnv = {}): RunResult => run(path.join(ROOT, "scripts", "node-env.sh"), [name, ...args], { env });

function releases(): Array<{ number: number; kind: string; result: string; images: Record<string, string> }> {
    const r = script("releases", ["--stack", SUITE_STACK, "--json"]);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout).releases;
}

/** What the project's environment (scripts/env.sh) sets `name` to. */
const projectEnv = (name: string): string => run("bash", ["-c", `source scripts/env.sh && printf %s "$${name}"`]).stdout;

/**
 * A `pulumi` first on PATH that writes each command line it runs to a log, then runs the pinned
 * CLI: which CLI runs a command started, and in what order.
 */
function loggedCli(): { env: NodeJS.ProcessEnv; calls: () => string[] } {
    const dir = mkdtempSync(path.join(tmpdir(), "coop-cli-"));
    const log = path.join(dir, "calls.log");
    const real = run("bash", ["-c", "source scripts/env.sh && command -v pulumi"]).stdout.trim();
    writeFileSync(path.join(dir, "pulumi"), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
    writeFileSync(log, "");
    return {
        env: { PATH: `${dir}:${path.dirname(real)}:${process.env.PATH}` },
        calls: () => readFileSync(log, "utf8").trim().split("\n").filter(Boolean),
    };
}

function setAlpha(image: string): void {
    assert.equal(pulumi(["config", "set", "--stack", SUITE_STACK, "--path", "coop:coops[0].image", image]).status, 0);
}

describe("releases and rollback (real CLI, the suite's copy of the local stack)", () => {
    let stackFile = "";
    let img: Record<string, string>;
    const n: Record<string, number> = {};

    before(() => {
        suiteHostUp();
        img = images();
        stackFile = readFileSync(STACK_FILE, "utf8");
        assert.equal(pulumi(["destroy", "--stack", SUITE_STACK, "--yes", "--skip-preview"]).status, 0);
        assert.equal(pulumi(["config", "set", "--stack", SUITE_STACK, "--path", "coop:coops[1].image", img["demo:v1"]]).status, 0);
    });

    after(async () => {
        writeFileSync(STACK_FILE, stackFile);
        pulumi(["destroy", "--stack", SUITE_STACK, "--yes", "--skip-preview"]);
        await exec(suiteTarget(), "docker volume rm coop-beta-data >/dev/null 2>&1; true");
    });

    it("v1, v2, then a v3 whose health check fails: the update fails and v2 keeps serving", async () => {
        for (const [tag, image] of [
            ["v1", img["demo:v1"]],
            ["v2", img["demo:v2"]],
        ]) {
            setAlpha(image);
            const r = pulumi(["up", "--stack", SUITE_STACK, "--yes", "--skip-preview", "--message", `alpha ${tag}`]);
            assert.equal(r.status, 0, r.stdout + r.stderr);
            n[tag] = releases().length;
            assert.equal(await version("alpha.localhost"), tag);
        }
        setAlpha(img["demo:v3-broken"]);
        const r = pulumi(["up", "--stack", SUITE_STACK, "--yes", "--skip-preview", "--message", "alpha v3"]);
        assert.notEqual(r.status, 0);
        assert.match(r.stdout + r.stderr, /deploy alpha: health check failed: coop-alpha-blue did not become healthy/);
        n.v3 = releases().length;
        assert.equal(await version("alpha.localhost"), "v2");
    });

    it("rollback puts v1 back by switching to the slot that still holds it, and says what to commit", async () => {
        // A page of three updates holds v3 (failed), v2 (live) and v1: the switch is planned on it,
        // and the numbers printed come from the whole history.
        const cli = loggedCli();
        const r = script("rollback", ["--stack", SUITE_STACK], { COOP_HISTORY_PAGE: "3", ...cli.env });
        assert.equal(r.status, 0, r.stdout + r.stderr);
        // The page came from the file backend's files: before the up, the only history the CLI
        // read is the whole (the Automation API's up reads one more after it).
        const calls = cli.calls();
        const up = calls.findIndex((c) => c.startsWith("up "));
        assert.ok(up > 0, calls.join("\n"));
        const histories = calls.slice(0, up).filter((c) => c.startsWith("stack history"));
        assert.deepEqual(
            histories.map((c) => /--page-size (\d+)/.exec(c)?.[1]),
            ["1000000"],
            calls.join("\n"),
        );
        assert.match(r.stdout, new RegExp(`rollback of stack ${SUITE_STACK} to update ${n.v1} .*live now: update ${n.v2}`));
        assert.match(r.stdout, /warning: alpha: migrations ran with update \d+ \(after update \d+\); they are not rolled back/);
        // Exactly the line it changed, from what to what; nothing else of the working copy.
        const commit = r.stdout.slice(r.stdout.indexOf("Commit this so the repository and the stack agree"));
        assert.deepEqual(commit.trim().split("\n").slice(1), [`  coop:coops[0].image (alpha): ${img["demo:v3-broken"]} -> ${img["demo:v1"]}`]);
        assert.equal(await version("alpha.localhost"), "v1");
        const host = await exec(suiteTarget(), "cat /opt/coop/coops/alpha/releases.log | tail -n 1");
        const last = JSON.parse(host.stdout);
        assert.deepEqual([last.image, last.reused], [img["demo:v1"], true], "a proxy switch: no pull, no migration");
        n.rollback = releases().length;
    });

    it("a page read from the file backend's files is the page the CLI prints", () => {
        // The history now: v1, v2, the failed v3 and the rollback, with a secret and object config.
        const dir = fileBackendDir(projectEnv("PULUMI_BACKEND_URL"));
        assert.ok(dir, "the project's backend is a file backend");
        const project = projectName(ROOT);
        assert.equal(project, "coop", "the project's name, from Pulumi.yaml");
        for (const size of [1, 3, 1000]) {
            const cli = pulumi(["stack", "history", "--stack", SUITE_STACK, "--json", "--page-size", String(size), "--page", "1"]);
            assert.equal(cli.status, 0, cli.stderr);
            assert.deepEqual(backendHistory(dir, project!, SUITE_STACK, size), JSON.parse(cli.stdout), `page of ${size}`);
        }
    });

    it("releases lists the four updates with their results and digests", () => {
        const list = releases().slice(-4);
        assert.deepEqual(
            list.map((r) => [r.number, r.result, r.images.alpha]),
            [
                [n.v1, "succeeded", img["demo:v1"]],
                [n.v2, "succeeded", img["demo:v2"]],
                [n.v3, "failed", img["demo:v3-broken"]],
                [n.rollback, "succeeded", img["demo:v1"]],
            ],
        );
        const table = script("releases", ["--stack", SUITE_STACK]);
        assert.match(table.stdout, new RegExp(`\\n${n.v3}\\s+\\S+ \\S+\\s+update\\s+failed\\s+[^\\n]*: alpha v3`));
    });

    it("releases --host finds the hosts' own records in agreement", () => {
        const r = script("releases", ["--stack", SUITE_STACK, "--host"]);
        assert.equal(r.status, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /alpha {2}suite-1 {2}match\nbeta {2}suite-1 {2}match/);
    });

    it("refuses a failed update, an unknown number, a live target and an unknown co-op, changing nothing", () => {
        const before = readFileSync(STACK_FILE, "utf8");
        const count = releases().length;
        const cases: Array<[string[], RegExp]> = [
            [["--to", String(n.v3)], new RegExp(`--to ${n.v3}: update ${n.v3} failed; only a successful update can be rolled back to; nothing was changed`)],
            [["--to", "99999"], /--to 99999: no such update \(this stack has updates 1 to \d+; see npm run releases\); nothing was changed/],
            [["--to", "two"], /--to two: must be an update number/],
            [["--to", String(n.v1)], new RegExp(`update ${n.v1}'s digests are already the stack's: nothing to roll back; nothing was changed`)],
            [["--coop", "gamma"], /--coop gamma: no such co-op in the stack's config \(co-ops: alpha, beta\); nothing was changed/],
            [["--stack"], /--stack needs a value/],
        ];
        for (const [args, message] of cases) {
            const r = script("rollback", ["--stack", SUITE_STACK, ...args]);
            assert.equal(r.status, 1, `${args.join(" ")}: ${r.stdout}`);
            assert.match(r.stderr, message);
        }
        assert.equal(readFileSync(STACK_FILE, "utf8"), before, "the stack file is untouched");
        assert.equal(releases().length, count, "no update ran");
    });

    it("a page without the target: rollback reads the whole history and plans on it", () => {
        // The newest update alone (the rollback's, live): the target is older than the page.
        const r = script("rollback", ["--stack", SUITE_STACK, "--preview"], { COOP_HISTORY_PAGE: "1" });
        assert.equal(r.status, 0, r.stdout + r.stderr);
        assert.match(
            r.stdout,
            new RegExp(
                `rollback of stack ${SUITE_STACK} to update ${n.v2} .*live now: update ${n.rollback}\\n  alpha: ${img["demo:v1"].replace(/[.]/g, "\\.")} -> ${img["demo:v2"].replace(/[.]/g, "\\.")}\\n`,
            ),
        );
        assert.match(r.stdout, /preview only: nothing was changed/);
    });

    it("--preview shows the change without applying it", async () => {
        const before = readFileSync(STACK_FILE, "utf8");
        const r = script("rollback", ["--stack", SUITE_STACK, "--to", String(n.v2), "--preview"]);
        assert.equal(r.status, 0, r.stderr);
        assert.match(
            r.stdout,
            new RegExp(`alpha: ${img["demo:v1"].replace(/[.]/g, "\\.")} -> ${img["demo:v2"].replace(/[.]/g, "\\.")}\\n[\\s\\S]*preview only: nothing was changed`),
        );
        assert.equal(readFileSync(STACK_FILE, "utf8"), before);
        assert.equal(await version("alpha.localhost"), "v1");
    });

    it("rollback --to the v2 update puts v2 back", async () => {
        const r = script("rollback", ["--stack", SUITE_STACK, "--to", String(n.v2), "--coop", "alpha"]);
        assert.equal(r.status, 0, r.stdout + r.stderr);
        assert.equal(await version("alpha.localhost"), "v2");
        assert.equal(releases().at(-1)!.result, "succeeded");
    });
});
