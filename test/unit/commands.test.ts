import assert from "node:assert/strict";
import { describe, it } from "node:test";
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
        assert.equal(render(prepareCommand("/opt/coop")), "mkdir -p /opt/coop/bin");
        assert.equal(render(unprepareCommand("/opt/coop")), "rmdir --ignore-fail-on-non-empty /opt/coop/bin");
        assert.equal(
            render(hostUpCommand("/opt/coop/bin/coopctl-abc", "coop", proxy)),
            `/opt/coop/bin/coopctl-abc host-up --network coop --proxy-image r/kp@sha256:${"b".repeat(64)} --bind 127.0.0.1 --http-port 8080 --https-port 8443`,
        );
        assert.equal(render(hostDownCommand("/opt/coop/bin/coopctl-abc", "coop")), "/opt/coop/bin/coopctl-abc host-down --network coop");
    });
});
