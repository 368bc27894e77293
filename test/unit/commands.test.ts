import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { coopDir, deployCommand, prepareCoopCommand, removeCommand, renderEnvFile } from "../../components/coopCommands";
import { hostDownCommand, hostUpCommand, prepareCommand, toolPath, unprepareCommand } from "../../components/hostCommands";
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
    const proxy = { image: `r/kp@sha256:${"b".repeat(64)}`, bindAddress: "127.0.0.1", httpPort: 8080, httpsPort: 8443, tls: false };

    it("puts each version of the tool at its own path", () => {
        // sha256("v1") = 3bfc269594ef649228e9a74bab00f042efc91d5acc6fbee31a382e80d42388fe
        assert.equal(toolPath("/opt/coop", "v1"), "/opt/coop/bin/coopctl-3bfc269594ef");
        assert.match(toolPath("/opt/coop", "v1"), /^\/opt\/coop\/bin\/coopctl-[0-9a-f]{12}$/);
        assert.notEqual(toolPath("/opt/coop", "v1"), toolPath("/opt/coop", "v2"));
        assert.equal(toolPath("/opt/coop", "v1"), toolPath("/opt/coop", "v1"));
    });

    it("renders the exact bootstrap commands", () => {
        assert.equal(render(prepareCommand("/opt/coop")), "mkdir -p /opt/coop/bin /opt/coop/coops");
        assert.equal(render(unprepareCommand("/opt/coop")), "rmdir --ignore-fail-on-non-empty /opt/coop/bin /opt/coop/coops");
        assert.equal(
            render(hostUpCommand("/opt/coop/bin/coopctl-abc", "coop", proxy)),
            `/opt/coop/bin/coopctl-abc host-up --network coop --proxy-image r/kp@sha256:${"b".repeat(64)} --bind 127.0.0.1 --http-port 8080 --https-port 8443`,
        );
        assert.equal(render(hostDownCommand("/opt/coop/bin/coopctl-abc", "coop")), "/opt/coop/bin/coopctl-abc host-down --network coop");
    });
});

describe("co-op commands", () => {
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
        deleteDataOnRemove: false,
    };

    it("renders the exact deploy command", () => {
        assert.equal(
            render(deployCommand("/opt/coop/bin/coopctl-abc", coop, { network: "coop", tls: true, drainTimeoutSeconds: 30 })),
            "/opt/coop/bin/coopctl-abc deploy alpha --image ghcr.io/org/app@sha256:" +
                "e".repeat(64) +
                " --port 3000 --health-path /up --network coop --memory 512m --cpus 0.5 --retain 2 --health-timeout 60 --drain-timeout 30 --tls" +
                " --domain alpha.example.org --domain www.alpha.example.org --migrate bin/migrate --migrate --to --migrate latest",
        );
    });

    it("leaves out what is not set and quotes what needs it", () => {
        const plain = { ...coop, memory: undefined, cpus: undefined, migrate: ["rake db:migrate VERSION='1'"] };
        assert.equal(
            render(deployCommand("/t", plain, { network: "coop", tls: false })),
            `/t deploy alpha --image ghcr.io/org/app@sha256:${"e".repeat(64)} --port 3000 --health-path /up --network coop --retain 2 --health-timeout 60 --drain-timeout 30` +
                ` --domain alpha.example.org --domain www.alpha.example.org --migrate 'rake db:migrate VERSION='\\''1'\\'''`,
        );
    });

    it("asks for the switch alone on a rollback's fast path", () => {
        assert.match(render(deployCommand("/t", coop, { network: "coop", tls: false, onlyIfRetained: true })), / --drain-timeout 30 --only-if-retained --domain /);
    });

    it("deletes data on removal only when the co-op says so", () => {
        assert.equal(render(removeCommand("/t", coop)), "/t remove alpha");
        assert.equal(render(removeCommand("/t", { ...coop, deleteDataOnRemove: true })), "/t remove alpha --delete-data");
        assert.equal(render(prepareCoopCommand("/t", "alpha")), "/t prepare alpha");
        assert.equal(coopDir("/opt/coop", "alpha"), "/opt/coop/coops/alpha");
    });

    it("writes env files sorted, one literal line a variable, and refuses what cannot be one", () => {
        assert.equal(renderEnvFile({ B: "x y", A: "it's=1" }), "A=it's=1\nB=x y\n");
        assert.throws(() => renderEnvFile({ A: "1\n2" }), /environment variable A: the value spans lines/);
        assert.throws(() => renderEnvFile({ "A-B": "1" }), /environment variable name "A-B" is not valid/);
    });
});
