// Wiring only: read and validate the stack config, then build the components.
import * as pulumi from "@pulumi/pulumi";
import { readFileSync } from "fs";
import * as path from "path";
import { decodeRawConfig, parseStackConfig } from "./components/config";
import { HostBootstrap } from "./components/host";

const cfg = parseStackConfig(decodeRawConfig(pulumi.runtime.allConfig()));
const privateKey = new pulumi.Config("coop").requireSecret("sshPrivateKey");
const toolSource = readFileSync(path.join(__dirname, "host", "coopctl"), "utf8");

const hosts = cfg.hosts.map(
    (h) =>
        new HostBootstrap(h.name, {
            connection: { host: h.address, port: h.port, user: cfg.sshUser, privateKey, hostKey: h.hostKey },
            root: cfg.hostRoot,
            network: cfg.network,
            proxy: cfg.proxy,
            toolSource,
        }),
);

export const environment = cfg.environment;
export const hostTools = Object.fromEntries(cfg.hosts.map((h, i) => [h.name, hosts[i].tool]));
export const proxyUrls = cfg.hosts.map((h) => `http://${cfg.proxy.bindAddress === "0.0.0.0" ? h.address : cfg.proxy.bindAddress}:${cfg.proxy.httpPort}/`);
