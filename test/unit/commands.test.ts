import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { removeCommand, renderEnvFile } from "../../components/coopCommands";
import { bootWaitCommand, installAgentCommand, uninstallAgentCommand } from "../../components/hostCommands";
import { DeployReport, HostUpReport, agentPath, deployTimeoutMs, hostDocument, parseReport, releaseDocument } from "../../components/release";
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
            render(installAgentCommand("/opt/coop", agentImage)),
            `mkdir -p /opt/coop/bin /opt/coop/coops && docker run --rm --network none --volume /opt/coop/bin:/out ${agentImage} install /out/coop-agent-0123456789ab`,
        );
        assert.equal(
            render(uninstallAgentCommand("/opt/coop", agentImage)),
            "rm -f /opt/coop/bin/coop-agent-0123456789ab && find /opt/coop/bin -maxdepth 1 -name coop-agent -lname coop-agent-0123456789ab -delete && rmdir --ignore-fail-on-non-empty /opt/coop/bin /opt/coop/coops",
        );
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
        assert.equal(render(removeCommand("/t", "alpha", false)), "/t remove alpha");
        assert.equal(render(removeCommand("/t", "alpha", true)), "/t remove alpha --delete-data");
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
