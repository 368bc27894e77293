// npm run bench:rolling — keep-alive load through the load balancer (haproxy in front of the
// namespaced hosts of scripts/netns-hosts.sh) while one co-op's release rolls across every host
// of the `multi` stack, host after host, by `pulumi up`; then the same release on one host alone
// (`--target` its release on the first host), for the ratio of the two wall times.
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { ROOT } from "../test/support";
import { keepStackFile, multiHostSkipReason, multiHostsUp, multiMachine, multiPulumi, multiUp, setCoopImage } from "../test/multiHost";
import { buildLoadgen, images, must, printFigures, sleep, startLoad } from "./common";

const DOMAIN = "alpha.localhost";
const RATE = Number(process.env.BENCH_RATE ?? 200);

/** The URN of co-op alpha's release on `host` in the multi stack. */
function releaseUrn(host: string): string {
    const project = /^name:\s*(\S+)/m.exec(readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8"))![1];
    return `urn:pulumi:multi::${project}::coop:app:Coop$pulumi-nodejs:dynamic/coop:CoopRelease::alpha/${host}`;
}

/** `pulumi up` on the multi stack; its wall time in ms. */
function timedUp(what: string, ...extra: string[]): number {
    const started = performance.now();
    must(multiUp(...extra), what);
    return performance.now() - started;
}

async function main(): Promise<void> {
    const skip = multiHostSkipReason();
    if (skip) throw new Error(`bench:rolling cannot run here: ${skip}`);
    multiHostsUp();
    const img = images();
    const hosts = multiMachine().hosts.map((h) => h.name);
    const lb = multiMachine().loadBalancer.address;
    const restore = keepStackFile();
    try {
        setCoopImage(0, img["demo:v1"]);
        must(multiUp(), "the baseline up (every host on v1)");
        const loadgen = buildLoadgen();
        const load = startLoad(loadgen, ["-url", `http://${lb}/state`, "-host", DOMAIN, "-rate", String(RATE), "-duration", "30m", "-connections", "16", "-timeout", "10s"]);
        await sleep(2000);
        setCoopImage(0, img["demo:v2"]);
        const rollingMs = timedUp("the rolling release (v1 -> v2 on every host)");
        await sleep(2000);
        const r = await load.stop();

        // The same release on one host: v2 -> v1 on the first host only.
        setCoopImage(0, img["demo:v1"]);
        const singleMs = timedUp("the release on one host", "--target", releaseUrn(hosts[0]));
        must(multiUp(), "putting every host back on v1");
        must(multiPulumi(["stack", "output", "releases", "--json"]), "stack output");

        printFigures({
            hosts: hosts.length,
            rate_target_rps: RATE,
            requests: r.requests,
            ok_2xx: r.ok_2xx,
            failed_requests: r.failed_requests,
            socket_errors: r.socket_errors,
            timeouts: r.timeouts,
            p99_ms: r.p99_ms,
            max_ms: r.max_ms,
            rolling_release_wall_ms: Math.round(rollingMs),
            single_host_release_wall_ms: Math.round(singleMs),
            rolling_over_single_ratio: rollingMs / singleMs,
        });
    } finally {
        restore();
    }
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
