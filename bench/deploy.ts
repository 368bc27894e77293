// npm run bench:deploy — wall time of one co-op's cutover with the image already on the host,
// against the floor: `docker run` of the same image plus its first healthy response.
import { request } from "node:http";
import { installTool, localHostsUp, runOk } from "../test/support";
import { BenchCoop, images, median, printFigures, sleep } from "./common";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);

function healthy(ip: string): Promise<boolean> {
    return new Promise((resolve) => {
        const req = request({ host: ip, port: 8080, path: "/health", timeout: 1000, agent: false }, (res) => {
            res.resume();
            resolve(res.statusCode === 200);
        });
        req.on("error", () => resolve(false));
        req.end();
    });
}

/** docker run of the image on the co-ops' network, until /health answers 200 from its address. */
async function floorMs(image: string, i: number): Promise<number> {
    const name = `bench-floor-${process.pid}-${i}`;
    const started = performance.now();
    runOk("docker", ["run", "-d", "--name", name, "--network", "coop", image]);
    const ip = runOk("docker", ["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name]).stdout.trim();
    while (!(await healthy(ip))) {
        await sleep(5);
    }
    const ms = performance.now() - started;
    runOk("docker", ["rm", "-f", "-v", name]);
    return ms;
}

async function main(): Promise<void> {
    localHostsUp();
    const img = images();
    const coop = new BenchCoop(await installTool("coop-agent-bench"), "bench-deploy");
    await coop.reset();
    await coop.env(0);
    await coop.deploy(img["demo:v1"]);
    await coop.env(-1);
    await coop.deploy(img["demo:v2"]);

    const wall: number[] = [];
    const onHost: number[] = [];
    const overhead: number[] = [];
    const floor: number[] = [];
    for (let i = 1; i <= ROUNDS; i++) {
        const image = img[i % 2 ? "demo:v1" : "demo:v2"];
        await coop.env(i);
        const d = await coop.deploy(image);
        if (!d.report.changed) throw new Error(`round ${i}: the agent saw no new release`);
        const t = d.report.timings;
        if (process.env.BENCH_VERBOSE) console.error(`round ${i}: wall ${Math.round(d.wallMs)} ms, on host ${JSON.stringify(t)}`);
        wall.push(d.wallMs);
        onHost.push(t.totalMs);
        // The agent's own share: the release less starting the container and the health gate + switch.
        overhead.push(t.totalMs - t.startMs - t.switchMs);
        floor.push(await floorMs(image, i));
    }
    await coop.remove();
    printFigures({
        rounds: ROUNDS,
        deploy_wall_ms_median: median(wall),
        deploy_on_host_ms_median: median(onHost),
        agent_overhead_ms: median(overhead),
        floor_docker_run_to_healthy_ms_median: median(floor),
        deploy_over_floor_ratio: median(wall) / median(floor),
    });
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
