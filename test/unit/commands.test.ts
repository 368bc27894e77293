import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { agentCommand, currentAgentBeside, removeCommand, renderEnvFile } from "../../components/coopCommands";
import {
    bootWaitCommand,
    dockerConfig,
    holderId,
    installAgentCommand,
    loginsDir,
    removeLoginsCommand,
    uninstallAgentCommand,
    writeLoginsCommand,
} from "../../components/hostCommands";
import { DeployReport, HostUpReport, agentLink, agentPath, deployTimeoutMs, hostDocument, parseReport, releaseDocument } from "../../components/release";
import { AND, PIPE, chain, options, quote, render } from "../../components/remote/shell";

describe("shell", () => {
    it("leaves safe words bare and single-quotes the rest", () => {
        assert.equal(quote("/opt/coop/bin"), "/opt/coop/bin");
        assert.equal(quote("a b"), "'a b'");
        assert.equal(quote(""), "''");
        assert.equal(quote("it's"), "'it'\\''s'");
        assert.equal(quote("$(reboot)"), "'$(reboot)'");
    });

    it("renders operators unquoted and values quoted once", () => {
        assert.equal(render(["echo", "a;b", PIPE, "wc", "-c"]), "echo 'a;b' | wc -c");
        assert.equal(render(chain(["true"], ["echo", "x y"])), "true && echo 'x y'");
        assert.equal(render(["a", AND, "b"]), "a && b");
    });

    it("turns options into flags, skipping undefined and false", () => {
        assert.deepEqual(options({ a: "1", b: 2, c: true, d: false, e: undefined }), ["--a", "1", "--b", "2", "--c"]);
    });
});

describe("host commands", () => {
    const agentImage = `127.0.0.1:5001/coop-agent@sha256:0123456789ab${"f".repeat(52)}`;

    it("puts each agent version at a path of its own, named by its image digest", () => {
        assert.equal(agentPath("/opt/coop", agentImage), "/opt/coop/bin/coop-agent-0123456789ab");
        assert.notEqual(agentPath("/opt/coop", agentImage), agentPath("/opt/coop", agentImage.replace("0123", "4567")));
    });

    it("renders the exact bootstrap commands", () => {
        assert.equal(render(bootWaitCommand()), "cloud-init status --wait");
        assert.equal(
            render(installAgentCommand("/opt/coop", agentImage, "coop.local.local")),
            `mkdir -p /opt/coop/bin /opt/coop/coops && docker run --rm --network none --volume /opt/coop/bin:/out ${agentImage} install --holder coop.local.local /out/coop-agent-0123456789ab`,
        );
        assert.equal(
            render(uninstallAgentCommand("/opt/coop", agentImage, "coop.local.local")),
            "if test -x /opt/coop/bin/coop-agent-0123456789ab ; then /opt/coop/bin/coop-agent-0123456789ab uninstall --holder coop.local.local /opt/coop/bin/coop-agent-0123456789ab ; " +
                "elif test -x /opt/coop/bin/coop-agent ; then /opt/coop/bin/coop-agent uninstall --holder coop.local.local /opt/coop/bin/coop-agent-0123456789ab ; fi" +
                " && find /opt/coop -mindepth 1 -maxdepth 1 -type d '(' -name bin -o -name coops ')' -empty -delete",
        );
    });

    it("names a stack's host as the agent's holder in letters, digits, '-', '_' and '.', one name never two", () => {
        assert.equal(holderId("coop", "local", "local"), "coop.local.local");
        assert.equal(holderId("coop", "bench-drift", "suite-host"), "coop.bench-drift.suite-host");
        // '.' and '_' are escaped, so that the three parts stay apart.
        assert.equal(holderId("coop", "a.b", "c_d"), "coop.a_2eb.c_5fd");
        assert.notEqual(holderId("coop", "a.b", "c"), holderId("coop", "a", "b.c"));
        assert.equal(holderId("-x", "s", "h/é"), "_2dx.s.h_2f_c3_a9");
        const long = holderId("coop", "s".repeat(300), "h");
        assert.equal(long.length, 200);
        assert.notEqual(long, holderId("coop", "s".repeat(301), "h"));
        for (const id of [holderId("coop", "local", "local"), holderId("-x", "s", "h/é"), long]) {
            assert.match(id, /^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$/);
        }
    });

    it("runs the agent a stack installed, or the host's current one when that file is gone", () => {
        assert.equal(currentAgentBeside(agentPath("/opt/coop", agentImage)), agentLink("/opt/coop"));
        assert.equal(
            render(agentCommand("/opt/coop/bin/coop-agent-0123456789ab", ["state", "alpha"])),
            "if test -x /opt/coop/bin/coop-agent-0123456789ab ; then /opt/coop/bin/coop-agent-0123456789ab state alpha ; else /opt/coop/bin/coop-agent state alpha ; fi",
        );
    });

    describe("the fallback, run by sh", () => {
        const root = mkdtempSync(path.join(tmpdir(), "coop-fallback-"));
        after(() => rmSync(root, { recursive: true, force: true }));
        const agent = agentPath(root, agentImage);
        const newer = `${root}/bin/coop-agent-ba9876543210`;
        // Each agent prints its own name and its arguments, and reads its stdin (a document).
        const place = (file: string) => writeFileSync(file, `#!/bin/sh\necho "$(basename "$0") $* $(cat)"\n`, { mode: 0o755 });
        const sh = (command: string) => spawnSync("sh", ["-c", command], { input: "{doc}", encoding: "utf8" });
        mkdirSync(`${root}/bin`);
        mkdirSync(`${root}/coops`);

        it("runs the recorded agent while it is there, with the document on stdin", () => {
            place(agent);
            place(newer);
            symlinkSync("coop-agent-ba9876543210", agentLink(root));
            const r = sh(render(agentCommand(agent, ["host-up"])));
            assert.equal(r.status, 0, r.stderr);
            assert.equal(r.stdout, "coop-agent-0123456789ab host-up {doc}\n");
        });

        it("runs the host's current agent (the link's) once the recorded one is gone", () => {
            rmSync(agent);
            const r = sh(render(removeCommand(agent, "alpha", true)));
            assert.equal(r.status, 0, r.stderr);
            assert.equal(r.stdout, "coop-agent remove alpha --delete-data {doc}\n");
        });

        it("fails, naming the link, when neither is there", () => {
            rmSync(newer);
            const r = sh(render(agentCommand(agent, ["host-down"])));
            assert.equal(r.status, 127);
            assert.match(r.stderr, new RegExp(`${agentLink(root)}: .*not found`));
        });

        it("uninstalls by the recorded agent, by the current one, or by neither when both are gone", () => {
            const holder = holderId("coop", "local", "h1");
            place(newer);
            let r = sh(render(uninstallAgentCommand(root, agentImage, holder)));
            assert.equal(r.status, 0, r.stderr);
            assert.equal(r.stdout, `coop-agent uninstall --holder coop.local.h1 ${agent} {doc}\n`);
            place(agent);
            r = sh(render(uninstallAgentCommand(root, agentImage, holder)));
            assert.equal(r.status, 0, `${r.stderr} (the first removed ROOT/coops: nothing else there)`);
            assert.equal(r.stdout, `coop-agent-0123456789ab uninstall --holder coop.local.h1 ${agent} {doc}\n`);
            rmSync(agent);
            rmSync(newer);
            rmSync(agentLink(root));
            r = sh(render(uninstallAgentCommand(root, agentImage, holder)));
            assert.equal(r.status, 0, r.stderr);
            assert.equal(r.stdout, "");
            assert.ok(!existsSync(`${root}/bin`) && !existsSync(`${root}/coops`), "the empty directories went");
        });
    });

    describe("a stack's registry logins on a host", () => {
        const root = mkdtempSync(path.join(tmpdir(), "coop-logins-"));
        const token = "ghp_sentinel-registry-token-4d1f";
        const config = dockerConfig([{ server: "ghcr.io", username: "coop-bot", password: token }]);

        it("go in a docker CLI config, the token in stdin only, readable by the deploy user alone", () => {
            assert.deepEqual(JSON.parse(config), { auths: { "ghcr.io": { auth: Buffer.from(`coop-bot:${token}`).toString("base64") } } });
            const command = render(writeLoginsCommand(root, "coop.prod.node-1"));
            assert.ok(!command.includes(token) && !command.includes(Buffer.from(`coop-bot:${token}`).toString("base64")), "the token is not in the command");
            const r = spawnSync("sh", ["-c", command], { input: config, encoding: "utf8" });
            assert.equal(r.status, 0, r.stderr);
            const file = `${loginsDir(root, "coop.prod.node-1")}/config.json`;
            assert.equal(readFileSync(file, "utf8"), config);
            assert.equal(statSync(file).mode & 0o777, 0o600);
            assert.equal(statSync(loginsDir(root, "coop.prod.node-1")).mode & 0o777, 0o700);
            assert.equal(statSync(`${root}/registries`).mode & 0o777, 0o700);
            assert.equal(
                render(installAgentCommand(root, `r/coop-agent@sha256:${"c".repeat(64)}`, "coop.prod.node-1", true))
                    .split(" && ")[1]
                    .split(" run ")[0],
                `docker --config ${loginsDir(root, "coop.prod.node-1")}`,
                "the agent's own image is pulled with them",
            );
        });

        it("go when the stack lets them go, another stack's staying", () => {
            spawnSync("sh", ["-c", render(writeLoginsCommand(root, "coop.dev.node-1"))], { input: config });
            let r = spawnSync("sh", ["-c", render(removeLoginsCommand(root, "coop.prod.node-1"))], { encoding: "utf8" });
            assert.equal(r.status, 0, r.stderr);
            assert.ok(!existsSync(loginsDir(root, "coop.prod.node-1")) && existsSync(`${loginsDir(root, "coop.dev.node-1")}/config.json`));
            r = spawnSync("sh", ["-c", render(removeLoginsCommand(root, "coop.dev.node-1"))], { encoding: "utf8" });
            assert.equal(r.status, 0, r.stderr);
            assert.ok(!existsSync(`${root}/registries`), "the last stack's removal leaves no directory");
            r = spawnSync("sh", ["-c", render(removeLoginsCommand(root, "coop.dev.node-1"))], { encoding: "utf8" });
            assert.equal(r.status, 0, `removing what is gone is no error: ${r.stderr}`);
        });
    });

    it("hands host-up its document: the network and the proxy, nothing else", () => {
        const proxy = { image: `r/kp@sha256:${"b".repeat(64)}`, bindAddress: "127.0.0.1", httpPort: 8080, httpsPort: 8443, tls: false };
        assert.deepEqual(hostDocument("coop", proxy), { network: "coop", proxy: { image: proxy.image, bindAddress: "127.0.0.1", httpPort: 8080, httpsPort: 8443 } });
    });
});

describe("the release document", () => {
    const coop = {
        id: "alpha",
        domains: ["alpha.example.org", "www.alpha.example.org"],
        image: `ghcr.io/org/app@sha256:${"e".repeat(64)}`,
        port: 3000,
        healthPath: "/up",
        uptimePath: "/",
        healthTimeout: 60,
        migrate: ["bin/migrate", "--to", "latest"],
        env: {},
        secretEnv: {},
        generatedSecrets: [],
        configFiles: {},
        memory: "512m",
        cpus: "0.5",
        retain: 2,
        rollbackWindow: 900,
        deleteDataOnRemove: false,
        dataVolume: "scratch" as const,
    };

    it("is the co-op's release as data, field by field", () => {
        assert.deepEqual(releaseDocument(coop, { network: "coop", tls: true }), {
            coop: "alpha",
            image: coop.image,
            port: 3000,
            healthPath: "/up",
            domains: ["alpha.example.org", "www.alpha.example.org"],
            migrate: ["bin/migrate", "--to", "latest"],
            memory: "512m",
            cpus: "0.5",
            network: "coop",
            retain: 2,
            tls: true,
            healthTimeoutSeconds: 60,
            drainTimeoutSeconds: 30,
            rollbackWindowSeconds: 900,
        });
    });

    it("leaves out the limits that are not set (the agent takes them as none)", () => {
        const { memory: _m, cpus: _c, ...plain } = coop;
        const doc = releaseDocument(plain, { network: "coop", tls: false });
        assert.equal("memory" in doc || "cpus" in doc, false);
    });

    it("gives the deploy command longer than the health gate and the drain together", () => {
        const doc = releaseDocument({ ...coop, healthTimeout: 3600 }, { network: "coop", tls: false });
        assert.ok(deployTimeoutMs(doc) > (3600 + 30) * 1000);
    });

    it("deletes data on removal only when the co-op says so", () => {
        const agent = "/opt/coop/bin/coop-agent-0123456789ab";
        const fallback = (args: string) => `if test -x ${agent} ; then ${agent} ${args} ; else /opt/coop/bin/coop-agent ${args} ; fi`;
        assert.equal(render(removeCommand(agent, "alpha", false)), fallback("remove alpha"));
        assert.equal(render(removeCommand(agent, "alpha", true)), fallback("remove alpha --delete-data"));
    });

    it("writes env files sorted, one literal line a variable, and refuses what cannot be one", () => {
        assert.equal(renderEnvFile({ B: "x y", A: "it's=1" }), "A=it's=1\nB=x y\n");
        assert.throws(() => renderEnvFile({ A: "1\n2" }), /environment variable A: the value spans lines/);
        assert.throws(() => renderEnvFile({ A: "1\r2" }), /environment variable A: the value spans lines or holds a NUL byte/);
        assert.throws(() => renderEnvFile({ "A-B": "1" }), /environment variable name "A-B" is not valid/);
    });
});

describe("the agent's reports", () => {
    it("are checked against their schema where they are read", () => {
        const ok = { coop: "a", changed: false, slot: "blue", image: "x", releaseKey: "k" };
        assert.deepEqual(parseReport(DeployReport, "deploy", JSON.stringify(ok)), ok);
        assert.throws(() => parseReport(DeployReport, "deploy of a", "not json"), /deploy of a: the agent's report is not JSON/);
        assert.throws(() => parseReport(DeployReport, "deploy of a", JSON.stringify({ ...ok, slot: "red" })), /deploy of a: the agent's report does not match its schema/);
        assert.throws(() => parseReport(HostUpReport, "host-up", JSON.stringify({ network: "coop" })), /does not match its schema/);
    });
});
