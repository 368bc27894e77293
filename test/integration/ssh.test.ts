// The SSH client against the real sshd that scripts/local-hosts.sh runs on loopback.
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { before, describe, it } from "node:test";
import { exec, removeFile, writeFile } from "../../components/remote/ssh";
import { localHostsUp, localTarget } from "../support";

describe("ssh client (real sshd)", () => {
    before(() => localHostsUp());

    it("runs a command as the deploy user and reports its exit status and output", async () => {
        const r = await exec(localTarget(), "id -un; echo oops >&2; exit 7");
        assert.equal(r.code, 7);
        assert.equal(r.stdout, "deploy\n");
        assert.equal(r.stderr, "oops\n");
    });

    it("hands stdin to the command without putting it in the command line", async () => {
        const secret = "sentinel-stdin-5b9d";
        const r = await exec(localTarget(), "cat; ps -eo args", { stdin: secret });
        assert.equal(r.code, 0);
        assert.ok(r.stdout.startsWith(secret));
        assert.equal(r.stdout.split(secret).length, 2, "the secret shows up only as cat's output, in no process's arguments");
    });

    it("refuses a server whose host key is not the pinned one", async () => {
        const other = generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "der" });
        // An OpenSSH ed25519 blob: string "ssh-ed25519" + string(32-byte key).
        const raw = other.subarray(other.length - 32);
        const blob = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from("ssh-ed25519"), Buffer.from([0, 0, 0, 32]), raw]);
        const target = { ...localTarget(), hostKey: `ssh-ed25519 ${blob.toString("base64")}` };
        await assert.rejects(exec(target, "touch /tmp/coop-should-not-exist"), /host key of 127\.0\.0\.1:\d+ does not match the pinned key/);
        const check = await exec(localTarget(), "test -e /tmp/coop-should-not-exist");
        assert.equal(check.code, 1, "nothing ran on the host");
    });

    it("fails fast with a clear message when nothing listens", async () => {
        const target = { ...localTarget(), port: 1, connectTimeoutMs: 0 };
        await assert.rejects(exec(target, "true"), /ssh deploy@127\.0\.0\.1:1: .*ECONNREFUSED/);
    });

    it("writes a file atomically with its mode, and removes it idempotently", async () => {
        const t = localTarget();
        const file = `/tmp/coop-it-${process.pid}`;
        await writeFile(t, file, "first\n", 0o600);
        await writeFile(t, file, "second\n", 0o640);
        const r = await exec(t, `stat -c '%a %U' ${file}; cat ${file}; ls ${file}.tmp-* 2>/dev/null | wc -l`);
        assert.equal(r.stdout, "640 deploy\nsecond\n0\n");
        await removeFile(t, file);
        await removeFile(t, file);
        assert.equal((await exec(t, `test -e ${file}`)).code, 1);
    });
});
