// The local stack's data services (scripts/local-data.sh) come back by themselves, as DigitalOcean
// keeps the managed cluster and Spaces up: the real PostgreSQL and the real S3 server, each
// stopped behind the stack's back, answer again within seconds through their supervisor.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import { ROOT, localHostsUp, run, within } from "../support";

const STATE = path.join(ROOT, ".local");
const PG_PORT = 5433;
const S3_PORT = 7070;

function psql(sql: string) {
    return run("psql", ["--no-psqlrc", "-tA", "-h", "127.0.0.1", "-p", String(PG_PORT), "-U", "postgres", "-d", "postgres", "-c", sql], {
        env: { PGPASSWORD: readFileSync(path.join(STATE, "postgres", "admin-password"), "utf8").trim(), PGCONNECT_TIMEOUT: "2" },
    });
}

function listening(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const s = connect({ host: "127.0.0.1", port });
        s.once("connect", () => (s.destroy(), resolve(true)));
        s.once("error", () => resolve(false));
    });
}

describe("the local data services' supervisor (real PostgreSQL, real versitygw)", () => {
    before(() => localHostsUp());

    it("starts PostgreSQL again after it went down (an immediate shutdown, as a crash leaves it)", async () => {
        const dataDir = psql("SHOW data_directory");
        assert.equal(dataDir.status, 0, dataDir.stderr);
        const postmaster = Number(readFileSync(path.join(dataDir.stdout.trim(), "postmaster.pid"), "utf8").split("\n")[0]);
        process.kill(postmaster, "SIGQUIT");
        await within(10, "PostgreSQL going down", () => psql("SELECT 1").status !== 0);
        await within(30, "PostgreSQL answering again", () => psql("SELECT 1").stdout.trim() === "1");
        assert.notEqual(Number(readFileSync(path.join(dataDir.stdout.trim(), "postmaster.pid"), "utf8").split("\n")[0]), postmaster);
    });

    it("starts the S3 server again after it was killed", async () => {
        const pid = Number(readFileSync(path.join(STATE, "s3.pid"), "utf8"));
        process.kill(pid, "SIGKILL");
        await within(10, "versitygw going away", async () => !(await listening(S3_PORT)));
        await within(30, "versitygw listening again", () => listening(S3_PORT));
        assert.notEqual(Number(readFileSync(path.join(STATE, "s3.pid"), "utf8")), pid, "a new process");
        assert.match(readFileSync(path.join(STATE, "data-supervisor.log"), "utf8"), /versitygw is not running; starting it again/);
    });
});
