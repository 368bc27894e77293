import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, decodeRawConfig, parseStackConfig } from "../../components/config";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVGOpX7ih5+O7tL+Gvkn0JmyjHewtl2gl30Y5SrMMyi";
const IMAGE = `127.0.0.1:5001/kamal-proxy@sha256:${"a".repeat(64)}`;

function local(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    return {
        environment: "local",
        hosts: [{ name: "local-1", address: "127.0.0.1", port: 2222, hostKey: KEY }],
        proxy: { image: IMAGE, bindAddress: "127.0.0.1", httpPort: 8080, httpsPort: 8443 },
        ...overrides,
    };
}

function errorsOf(raw: Record<string, unknown>): string[] {
    try {
        parseStackConfig(raw);
    } catch (e) {
        assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
        return e.errors;
    }
    assert.fail("expected the config to be refused");
}

describe("parseStackConfig", () => {
    it("reads a local stack and fills defaults", () => {
        const cfg = parseStackConfig(local());
        assert.deepEqual(cfg, {
            environment: "local",
            sshUser: "deploy",
            hosts: [{ name: "local-1", address: "127.0.0.1", port: 2222, hostKey: KEY }],
            hostRoot: "/opt/coop",
            network: "coop",
            proxy: { image: IMAGE, bindAddress: "127.0.0.1", httpPort: 8080, httpsPort: 8443, tls: false },
        });
    });

    it("turns TLS on by default outside the local stack", () => {
        assert.equal(parseStackConfig(local({ environment: "prod" })).proxy.tls, true);
    });

    it("names every bad field by its path, all at once", () => {
        const errors = errorsOf(
            local({
                environment: "staging",
                colour: "blue",
                hosts: [
                    { name: "a", address: "127.0.0.1", hostKey: "not a key", extra: 1 },
                    { name: "a", address: "127.0.0.1", port: 70000, hostKey: KEY },
                ],
                proxy: { image: "kamal-proxy:latest", httpPort: 8080, httpsPort: 8080 },
            }),
        );
        assert.deepEqual(errors, [
            "coop:colour: unknown key (known: environment, sshUser, hosts, hostRoot, network, proxy, sshPrivateKey)",
            "coop:environment: must be one of local, dev, uat, prod",
            "coop:hosts[0].extra: unknown key (known: name, address, port, hostKey)",
            'coop:hosts[0].hostKey: must be the host\'s OpenSSH public key, such as "ssh-ed25519 AAAA..." (remote commands never trust an unknown host key)',
            'coop:hosts[1].name: duplicates the name of an earlier host ("a")',
            "coop:hosts[1].port: must be an integer from 1 to 65535",
            "coop:proxy.image: must be pinned by digest: REPOSITORY@sha256:<64 hex digits>",
            "coop:proxy.httpsPort: must differ from coop:proxy.httpPort",
        ]);
    });

    it("requires hosts on the local stack and a proxy everywhere", () => {
        assert.deepEqual(errorsOf({ environment: "local" }), [
            "coop:hosts: is required on the local stack (scripts/local-hosts.sh up writes it)",
            "coop:proxy: is required",
        ]);
    });

    it("refuses a host root that is not a plain absolute path", () => {
        assert.deepEqual(errorsOf(local({ hostRoot: "opt/coop; rm -rf /" })), [
            "coop:hostRoot: must be an absolute path of letters, digits, '.', '_', '-' and '/'",
        ]);
    });
});

describe("decodeRawConfig", () => {
    it("strips the namespace, decodes JSON values and drops secret keys", () => {
        const raw = decodeRawConfig({
            "coop:environment": "local",
            "coop:hosts": '[{"name":"h"}]',
            "coop:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----",
            "digitalocean:token": "x",
        });
        assert.deepEqual(raw, { environment: "local", hosts: [{ name: "h" }] });
    });
});
