// HostBootstrap with Pulumi's engine mocked: which resources it registers, with what inputs,
// and that nothing secret leaks into the parts of state that are stored in plaintext.
import * as pulumi from "@pulumi/pulumi";
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";

interface Registered {
    type: string;
    name: string;
    inputs: Record<string, unknown>;
}

const registered: Registered[] = [];
const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nsentinel-private-key-7c1e\n-----END OPENSSH PRIVATE KEY-----\n";
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVGOpX7ih5+O7tL+Gvkn0JmyjHewtl2gl30Y5SrMMyi";
const IMAGE = `127.0.0.1:5001/kamal-proxy@sha256:${"c".repeat(64)}`;

before(async () => {
    await pulumi.runtime.setMocks(
        {
            newResource(args) {
                registered.push({ type: args.type, name: args.name, inputs: args.inputs });
                const stdout = args.name.endsWith("/up")
                    ? JSON.stringify({ network: "coop", networkCreated: true, proxy: { container: "coop-proxy", image: IMAGE, changed: true } })
                    : "";
                return { id: `${args.name}-id`, state: { ...args.inputs, stdout } };
            },
            call: () => ({}),
        },
        "coop",
        "local",
        false,
    );
});

async function settle<T>(o: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => o.apply(resolve));
}

const AGENT_IMAGE = `127.0.0.1:5001/coop-agent@sha256:abcdef012345${"0".repeat(52)}`;

describe("HostBootstrap", () => {
    it("installs the agent of the stack's image, then runs host-up with its document on stdin", async () => {
        const { HostBootstrap } = await import("../../components/host");
        const host = new HostBootstrap("h1", {
            connection: { host: "127.0.0.1", port: 2222, user: "deploy", privateKey: pulumi.secret(KEY), hostKey: HOST_KEY },
            root: "/opt/coop",
            network: "coop",
            proxy: { image: IMAGE, bindAddress: "127.0.0.1", httpPort: 8080, httpsPort: 8443, tls: false },
            agentImage: AGENT_IMAGE,
        });
        const status = await settle(host.status);

        assert.deepEqual(
            registered.map((r) => `${r.type} ${r.name}`),
            ["coop:app:HostBootstrap h1", "pulumi-nodejs:dynamic/coop:RemoteCommand h1/agent", "pulumi-nodejs:dynamic/coop:RemoteCommand h1/up"],
        );
        assert.equal(host.agent, "/opt/coop/bin/coop-agent-abcdef012345");
        const agent = registered.find((r) => r.name === "h1/agent")!;
        assert.equal(
            agent.inputs.create,
            `mkdir -p /opt/coop/bin /opt/coop/coops && docker run --rm --network none --volume /opt/coop/bin:/out ${AGENT_IMAGE} install --holder coop.local.h1 /out/coop-agent-abcdef012345`,
        );
        // The holder is the mocked project and stack and the host's name; uninstall lets it go.
        assert.match(
            agent.inputs.delete as string,
            /^if test -x \/opt\/coop\/bin\/coop-agent-abcdef012345 ; then \S+ uninstall --holder coop\.local\.h1 \/opt\/coop\/bin\/coop-agent-abcdef012345 ; /,
        );
        const up = registered.find((r) => r.name === "h1/up")!;
        const agentOr = (args: string) =>
            `if test -x /opt/coop/bin/coop-agent-abcdef012345 ; then /opt/coop/bin/coop-agent-abcdef012345 ${args} ; else /opt/coop/bin/coop-agent ${args} ; fi`;
        assert.equal(up.inputs.create, agentOr("host-up"));
        assert.equal(up.inputs.delete, agentOr("host-down"));
        assert.deepEqual(JSON.parse(up.inputs.stdin as string), { network: "coop", proxy: { image: IMAGE, bindAddress: "127.0.0.1", httpPort: 8080, httpsPort: 8443 } });
        assert.equal(status.proxy.container, "coop-proxy");
    });

    it("keeps the private key out of the serialized provider code", () => {
        for (const r of registered.filter((x) => x.type.startsWith("pulumi-nodejs:dynamic"))) {
            const code = String(r.inputs.__provider);
            assert.ok(code.length > 100, `${r.name} has a serialized provider`);
            assert.ok(!code.includes("sentinel-private-key"), `${r.name}: provider code contains the private key`);
        }
    });
});
